//! [`Targets`]: what a runbook acts on, and [`RunbookConfig`]: its tunable limits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::database::Database;
use crate::error::OpsError;
use crate::metrics::Metrics;
use crate::platform::Platform;
use crate::probe::Probe;
use crate::refs::WorkloadRef;

/// Timeouts, windows and limits of the runbooks. Every value is documented with its default;
/// none is a hidden constant.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let cfg = ops_core::runbooks::RunbookConfig::default().with_rollout_timeout(Duration::from_secs(120));
/// assert_eq!(cfg.verify_successes, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RunbookConfig {
    /// How long a rollout (restart or rollback) may take: default 5 min.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub rollout_timeout: Duration,
    /// How often rollout status is polled: default 2 s.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub rollout_poll: Duration,
    /// Consecutive healthy probes needed to call a service recovered: default 3.
    pub verify_successes: u32,
    /// Time between verification probes: default 5 s.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub verify_interval: Duration,
    /// How long verification may take in total: default 2 min.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub verify_timeout: Duration,
    /// Log lines read per instance: default 500.
    pub log_tail: u32,
    /// Only log lines newer than this: default 15 min.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub log_since: Duration,
    /// Distinct error lines quoted as evidence: default 5.
    pub log_evidence: usize,
}

impl Default for RunbookConfig {
    fn default() -> Self {
        Self {
            rollout_timeout: Duration::from_mins(5),
            rollout_poll: Duration::from_secs(2),
            verify_successes: 3,
            verify_interval: Duration::from_secs(5),
            verify_timeout: Duration::from_mins(2),
            log_tail: 500,
            log_since: Duration::from_mins(15),
            log_evidence: 5,
        }
    }
}

impl RunbookConfig {
    /// Set the rollout timeout.
    #[must_use]
    pub fn with_rollout_timeout(mut self, d: Duration) -> Self {
        self.rollout_timeout = d;
        self
    }

    /// Set the rollout poll interval.
    #[must_use]
    pub fn with_rollout_poll(mut self, d: Duration) -> Self {
        self.rollout_poll = d;
        self
    }

    /// Set verification: `successes` consecutive healthy probes, `interval` apart, within `timeout`.
    #[must_use]
    pub fn with_verify(mut self, successes: u32, interval: Duration, timeout: Duration) -> Self {
        self.verify_successes = successes.max(1);
        self.verify_interval = interval;
        self.verify_timeout = timeout;
        self
    }
}

/// What a runbook acts on: a workload on a platform, and optionally its health probe,
/// database, cache and metrics.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use ops_core::runbooks::Targets;
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/deployment/api".parse()?)
///     .with_probe(Arc::new(ScriptedProbe::new("api-health")));
/// assert!(t.probe().is_ok());
/// assert!(t.database.is_none());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Targets {
    /// Where the workload runs.
    pub platform: Arc<dyn Platform>,
    /// The workload.
    pub workload: WorkloadRef,
    /// Its health check.
    pub probe: Option<Arc<dyn Probe>>,
    /// Its database.
    pub database: Option<Arc<dyn Database>>,
    /// Its cache.
    pub cache: Option<Arc<dyn Cache>>,
    /// Its metrics source.
    pub metrics: Option<Arc<dyn Metrics>>,
    /// Limits and windows.
    pub config: RunbookConfig,
}

impl fmt::Debug for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Targets")
            .field("platform", &self.platform.backend())
            .field("workload", &self.workload.to_string())
            .field("probe", &self.probe.as_ref().map(|p| p.name().to_owned()))
            .field("database", &self.database.as_deref().map(Database::backend))
            .field("cache", &self.cache.as_deref().map(Cache::backend))
            .field("metrics", &self.metrics.as_deref().map(Metrics::backend))
            .finish_non_exhaustive()
    }
}

impl Targets {
    /// A workload on a platform.
    pub fn new(platform: Arc<dyn Platform>, workload: WorkloadRef) -> Self {
        Self {
            platform,
            workload,
            probe: None,
            database: None,
            cache: None,
            metrics: None,
            config: RunbookConfig::default(),
        }
    }

    /// Add the health probe.
    #[must_use]
    pub fn with_probe(mut self, probe: Arc<dyn Probe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Add the database.
    #[must_use]
    pub fn with_database(mut self, database: Arc<dyn Database>) -> Self {
        self.database = Some(database);
        self
    }

    /// Add the cache.
    #[must_use]
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Add the metrics source.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Set the limits.
    #[must_use]
    pub fn with_config(mut self, config: RunbookConfig) -> Self {
        self.config = config;
        self
    }

    /// The health probe, required by runbooks that verify recovery.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when no probe was given.
    pub fn probe(&self) -> Result<&Arc<dyn Probe>, OpsError> {
        self.probe.as_ref().ok_or_else(|| {
            OpsError::invalid(
                "targets",
                self.workload.to_string(),
                "this runbook needs a health probe (Targets::with_probe)",
            )
        })
    }
}
