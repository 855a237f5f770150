//! The [`Probe`] trait: one health check (HTTP, TCP, TLS certificate, metric threshold).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::OpsError;

mod exchange;
mod provider;
pub use exchange::*;
pub use provider::*;

/// The verdict of a check.
///
/// # Examples
/// ```
/// use ops_core::probe::Outcome;
/// assert!(Outcome::Up.is_up());
/// assert!(Outcome::Down > Outcome::Degraded); // ordered by badness
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every condition holds.
    Up,
    /// Serving, but a soft condition failed (slow, certificate expiring soon).
    Degraded,
    /// Not serving, or a hard condition failed.
    Down,
}

impl Outcome {
    /// Whether it is [`Outcome::Up`].
    pub fn is_up(self) -> bool {
        self == Self::Up
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
        })
    }
}

/// One thing a probe looked at, e.g. `status = 200` or `days_left = 12`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Observation {
    /// What was observed, e.g. `status`.
    pub name: String,
    /// The value seen.
    pub value: String,
    /// Whether it met its condition.
    pub ok: bool,
    /// The condition, in words, e.g. `[STATUS] == 200`.
    pub condition: Option<String>,
}

impl Observation {
    /// An observation.
    pub fn new(name: impl Into<String>, value: impl Into<String>, ok: bool) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            ok,
            condition: None,
        }
    }

    /// Set the condition text.
    #[must_use]
    pub fn with_condition(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }
}

/// What one [`Probe::check`] found.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::probe::{Observation, ProbeResult};
/// let r = ProbeResult::down("connection refused").with_latency(Duration::from_millis(3));
/// assert!(!r.outcome.is_up());
/// let r = ProbeResult::up().with_observation(Observation::new("status", "200", true));
/// assert_eq!(r.failed().count(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeResult {
    /// The verdict.
    pub outcome: Outcome,
    /// How long the check took.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub latency: Duration,
    /// What it looked at.
    pub observations: Vec<Observation>,
    /// One human sentence.
    pub detail: String,
    /// How the HTTP exchange ended (status, `Retry-After`, or why there was no answer):
    /// set by HTTP probes, `None` for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
}

impl ProbeResult {
    /// An up result.
    pub fn up() -> Self {
        Self {
            outcome: Outcome::Up,
            latency: Duration::ZERO,
            observations: Vec::new(),
            detail: "ok".to_owned(),
            exchange: None,
        }
    }

    /// A down result with a reason.
    pub fn down(detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Down,
            latency: Duration::ZERO,
            observations: Vec::new(),
            detail: detail.into(),
            exchange: None,
        }
    }

    /// A degraded result with a reason.
    pub fn degraded(detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Degraded,
            latency: Duration::ZERO,
            observations: Vec::new(),
            detail: detail.into(),
            exchange: None,
        }
    }

    /// Set the latency.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Add an observation.
    #[must_use]
    pub fn with_observation(mut self, o: Observation) -> Self {
        self.observations.push(o);
        self
    }

    /// Set how the HTTP exchange ended.
    ///
    /// # Examples
    /// ```
    /// use ops_core::probe::{Exchange, ProbeResult};
    /// let r = ProbeResult::down("503").with_exchange(Exchange::answered(503));
    /// assert_eq!(r.exchange.and_then(|e| e.status()), Some(503));
    /// ```
    #[must_use]
    pub fn with_exchange(mut self, exchange: Exchange) -> Self {
        self.exchange = Some(exchange);
        self
    }

    /// Observations whose condition failed.
    pub fn failed(&self) -> impl Iterator<Item = &Observation> {
        self.observations.iter().filter(|o| !o.ok)
    }
}

/// One health check.
///
/// `check` reports a down service as `Ok(ProbeResult { outcome: Down, .. })`; an `Err` means
/// the probe itself could not run (bad configuration, no local resources).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Probe: fmt::Debug + Send + Sync + 'static {
    /// A short name for reports, e.g. `api-health` (never a URL with credentials).
    fn name(&self) -> &str;

    /// Run the check once, within the probe's own timeout.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when the probe is misconfigured.
    async fn check(&self) -> Result<ProbeResult, OpsError>;
}

macro_rules! forward_probe {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: Probe + ?Sized> Probe for $ptr<T> {
            fn name(&self) -> &str { (**self).name() }
            async fn check(&self) -> Result<ProbeResult, OpsError> { (**self).check().await }
        }
    )*};
}
forward_probe!(Arc, Box);
