//! [`Targets`]: what a runbook acts on, and [`RunbookConfig`]: its tunable limits.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::cache::Cache;
use crate::database::{Database, RowRetention};
use crate::error::OpsError;
use crate::metrics::{MetricWindow, Metrics};
use crate::platform::ConfigTarget;
use crate::platform::Platform;
use crate::probe::{Probe, ProviderCheck};
use crate::refs::{Identifier, KeyPattern, WorkloadRef};

/// Timeouts, windows and limits of the runbooks. Every value is documented with its default;
/// none is a hidden constant.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let cfg = ops_core::runbooks::RunbookConfig::default().with_rollout_timeout(Duration::from_secs(120));
/// assert_eq!(cfg.verify_successes, 3);
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
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
    /// Database limits (`db_connections`, `database_full`, `db_maintenance`).
    pub db: DbLimits,
    /// Cache limits (`cache_failure`, `session_invalidation`, morning checks).
    pub cache: CacheLimits,
    /// Row retention rules `database_full` may apply (none by default: deleting data is
    /// never a default).
    #[serde(skip)]
    pub retention: Vec<RowRetention>,
    /// What `database_recovery` restores.
    #[serde(skip)]
    pub recovery: Option<RecoveryPlan>,
    /// The Prometheus `job` label of the service's metrics: default `"api"`.
    pub metrics_job: String,
    /// The rate window of metric queries: default `5m` (the seeds' `[5m]`); a `PromQL`
    /// duration, checked when the configuration is read.
    pub metrics_window: MetricWindow,
    /// A revision younger than this counts as a recent deploy (rollback first): default 1 h.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub recent_deploy: Duration,
    /// Memory over the limit that is a warning: 0.8 (seeds: "Memory usage > 80%").
    pub memory_warn: f64,
    /// Mean CPU per instance above which `high_latency` scales out: 0.8 (seeds: "CPU usage >
    /// 80% → scale horizontally"). A fraction of each instance's CPU limit when every
    /// instance has one (80 % of the limit); in cores when any has none (0.8 of a core). The
    /// finding says which was used.
    pub cpu_scale_out: f64,
    /// The most replicas `high_latency` scales to: 10.
    pub max_replicas: u32,
    /// What `oom` may do to memory limits (§resources, issue 14): raise by `step` (default
    /// `x1.5`) up to `ceiling` (none by default: no raise).
    pub oom: super::limits::OomLimits,
    /// The new secret `secret_rotation` rolls out.
    #[serde(skip)]
    pub rotation: Option<SecretRotation>,
    /// What morning checks call too full in an inspection: disk 80 / 85 / 90 %, quotas and
    /// node requests 80 %.
    pub inspection: super::InspectionLimits,
    /// What `auth_failures` checks: the signing secret `SECRET_KEY`, clocks within 30 s,
    /// the service probe as the token verify endpoint.
    pub auth: super::AuthChecks,
    /// The external providers `provider_failure` checks, their credentials and fallbacks
    /// (none by default).
    pub providers: super::ProviderChecks,
}

/// A secret to rotate: where it lives, its key, and the new value (never printed).
///
/// # Examples
/// ```
/// use ops_core::platform::ConfigTarget;
/// let r = ops_core::runbooks::SecretRotation::new(ConfigTarget::Env, "DB_PASSWORD", "n3w-s3cret");
/// assert!(!format!("{r:?}").contains("n3w"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SecretRotation {
    /// Where the key lives.
    pub target: ConfigTarget,
    /// The key, e.g. `DB_PASSWORD`.
    pub key: String,
    /// The new value.
    pub value: SecretString,
}

impl SecretRotation {
    /// Rotate `key` in `target` to `value`.
    pub fn new(target: ConfigTarget, key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            target,
            key: key.into(),
            value: SecretString::from(value.into()),
        }
    }
}

impl fmt::Debug for SecretRotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRotation")
            .field("target", &self.target)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Database thresholds, with the seeds' values as defaults.
///
/// # Examples
/// ```
/// let db = ops_core::runbooks::DbLimits::default();
/// assert_eq!(db.warn_utilisation, 0.8);
/// ```
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DbLimits {
    /// Connections over `max_connections` that is a warning: 0.8 (seed: "> 80% of pool").
    pub warn_utilisation: f64,
    /// Connections over `max_connections` that is critical and triggers terminating idle
    /// sessions: 0.95.
    pub critical_utilisation: f64,
    /// Idle sessions older than this are terminated when connections are critical:
    /// 10 min (seed: `state = 'idle' AND query_start < now() - interval '10 minutes'`).
    #[serde(with = "crate::serde_util::duration_ms")]
    pub idle_limit: Duration,
    /// Idle-in-transaction sessions older than this are terminated (they hold locks and
    /// block vacuum): 5 min.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub idle_in_transaction_limit: Duration,
    /// Queries running longer than this are reported: 5 min.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub long_query: Duration,
    /// Dead rows over all rows above which a table is vacuumed: 0.2.
    pub dead_ratio: f64,
    /// Value for `log_min_duration_statement` that `db_maintenance` sets when slow-query
    /// logging is off: `"1000"` (ms).
    pub slow_query_log_ms: String,
    /// Database size in bytes above which `database_full` warns: 0 (no limit known; set it to
    /// 80 % of the volume, the seeds' disk threshold).
    pub size_warn_bytes: u64,
}

impl Default for DbLimits {
    fn default() -> Self {
        Self {
            warn_utilisation: 0.8,
            critical_utilisation: 0.95,
            idle_limit: Duration::from_mins(10),
            idle_in_transaction_limit: Duration::from_mins(5),
            long_query: Duration::from_mins(5),
            dead_ratio: 0.2,
            slow_query_log_ms: "1000".to_owned(),
            size_warn_bytes: 0,
        }
    }
}

/// Cache thresholds, with the seeds' values as defaults.
///
/// # Examples
/// ```
/// let c = ops_core::runbooks::CacheLimits::default();
/// assert_eq!(c.session_pattern.as_str(), "session:*");
/// ```
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CacheLimits {
    /// Memory used over `maxmemory` that is critical: 0.9 (seeds: "Redis OOM: memory > 90%").
    pub memory_critical: f64,
    /// Hit ratio below which morning checks warn: 0.8.
    pub min_hit_ratio: f64,
    /// Connected clients over `maxclients` that is critical: 0.9.
    pub clients_critical: f64,
    /// Clients idle longer than this are killed when clients are critical: 10 min.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub idle_client_limit: Duration,
    /// The session keys `session_invalidation` purges: `session:*`.
    pub session_pattern: KeyPattern,
    /// Keys `cache_failure` may purge under memory pressure (none by default: only
    /// disposable data belongs here, e.g. `cache:*`).
    pub purgeable: Vec<KeyPattern>,
    /// Whether the purging runbooks may purge [`KeyPattern::match_all`], i.e. delete every
    /// key: false. Without it a pattern of `*` in configuration makes the run fail before
    /// anything is deleted.
    pub allow_match_all: bool,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            memory_critical: 0.9,
            min_hit_ratio: 0.8,
            clients_critical: 0.9,
            idle_client_limit: Duration::from_mins(10),
            session_pattern: KeyPattern::trusted("session:*"),
            purgeable: Vec::new(),
            allow_match_all: false,
        }
    }
}

/// What `database_recovery` restores, and into which database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryPlan {
    /// The backup file (its `.sha256` sidecar is verified first).
    pub backup: PathBuf,
    /// The database to restore.
    pub database: Identifier,
}

impl RecoveryPlan {
    /// Restore `backup` into `database`.
    pub fn new(backup: impl Into<PathBuf>, database: Identifier) -> Self {
        Self {
            backup: backup.into(),
            database,
        }
    }
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
            db: DbLimits::default(),
            cache: CacheLimits::default(),
            retention: Vec::new(),
            recovery: None,
            metrics_job: "api".to_owned(),
            metrics_window: MetricWindow::default(),
            recent_deploy: Duration::from_hours(1),
            memory_warn: 0.8,
            cpu_scale_out: 0.8,
            max_replicas: 10,
            oom: super::limits::OomLimits::default(),
            rotation: None,
            inspection: super::InspectionLimits::default(),
            auth: super::AuthChecks::default(),
            providers: super::ProviderChecks::default(),
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
    /// Further checks: dependencies (TCP), certificates (TLS), external providers (HTTP).
    pub checks: Vec<Arc<dyn Probe>>,
    /// External provider checks (`provider_failure`), matched to
    /// [`RunbookConfig::providers`] by name.
    pub providers: Vec<Arc<dyn ProviderCheck>>,
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
            .field(
                "checks",
                &self
                    .checks
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field(
                "providers",
                &self
                    .providers
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Targets {
    /// These targets as a run in `mode` may use them: unchanged in
    /// [`Mode::Execute`](crate::run::Mode::Execute); in [`Mode::DryRun`](crate::run::Mode::DryRun)
    /// the platform, database and cache are [`ReadOnly`](crate::read_only::ReadOnly) views whose
    /// every mutating method fails, so a dry run cannot change anything, by construction.
    /// Every runbook calls this first.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use ops_core::platform::StopOptions;
    /// use ops_core::run::Mode;
    /// use ops_core::runbooks::Targets;
    /// use ops_core::testing::FakePlatform;
    /// let fake = Arc::new(FakePlatform::default());
    /// let t = Targets::new(Arc::clone(&fake) as _, "prod/deployment/api".parse()?);
    /// let dry = t.for_mode(Mode::DryRun);
    /// assert!(dry.platform.stop(&t.workload, StopOptions::default()).await.is_err());
    /// assert!(fake.mutations().is_empty());
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn for_mode(&self, mode: crate::run::Mode) -> Self {
        use crate::read_only::ReadOnly;
        let mut t = self.clone();
        if mode == crate::run::Mode::DryRun {
            t.platform = Arc::new(ReadOnly::new(Arc::clone(&self.platform)));
            t.database = self
                .database
                .as_ref()
                .map(|d| Arc::new(ReadOnly::new(Arc::clone(d))) as Arc<dyn Database>);
            t.cache = self
                .cache
                .as_ref()
                .map(|c| Arc::new(ReadOnly::new(Arc::clone(c))) as Arc<dyn Cache>);
        }
        t
    }

    /// A workload on a platform.
    pub fn new(platform: Arc<dyn Platform>, workload: WorkloadRef) -> Self {
        Self {
            platform,
            workload,
            probe: None,
            database: None,
            cache: None,
            metrics: None,
            checks: Vec::new(),
            providers: Vec::new(),
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

    /// Add a further check (a dependency, a certificate, an external provider).
    #[must_use]
    pub fn with_check(mut self, check: Arc<dyn Probe>) -> Self {
        self.checks.push(check);
        self
    }

    /// Add an external provider check (see [`crate::runbooks::provider_failure`]).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use ops_core::runbooks::Targets;
    /// use ops_core::testing::{FakePlatform, ScriptedProviderCheck};
    /// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/deployment/api".parse()?)
    ///     .with_provider(Arc::new(ScriptedProviderCheck::new("stripe")));
    /// assert_eq!(t.providers.len(), 1);
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    #[must_use]
    pub fn with_provider(mut self, check: Arc<dyn ProviderCheck>) -> Self {
        self.providers.push(check);
        self
    }

    /// Set the limits.
    #[must_use]
    pub fn with_config(mut self, config: RunbookConfig) -> Self {
        self.config = config;
        self
    }

    /// The database, required by the database runbooks.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when no database was given.
    pub fn database(&self) -> Result<&Arc<dyn Database>, OpsError> {
        self.database.as_ref().ok_or_else(|| {
            OpsError::invalid(
                "targets",
                self.workload.to_string(),
                "this runbook needs a database (Targets::with_database)",
            )
        })
    }

    /// The cache, required by the cache runbooks.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when no cache was given.
    pub fn cache(&self) -> Result<&Arc<dyn Cache>, OpsError> {
        self.cache.as_ref().ok_or_else(|| {
            OpsError::invalid(
                "targets",
                self.workload.to_string(),
                "this runbook needs a cache (Targets::with_cache)",
            )
        })
    }

    /// The metrics source, required by the metric-driven runbooks.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when no metrics source was given.
    pub fn metrics(&self) -> Result<&Arc<dyn Metrics>, OpsError> {
        self.metrics.as_ref().ok_or_else(|| {
            OpsError::invalid(
                "targets",
                self.workload.to_string(),
                "this runbook needs a metrics source (Targets::with_metrics)",
            )
        })
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
