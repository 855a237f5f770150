//! Probe combinators: [`Retry`] ("fails N times in a row"), [`AllOf`], [`AnyOf`], and
//! [`watch`] ("monitor for 30 minutes") with a [`Stability`] summary.
//!
//! All waiting uses `tokio::time`, so tests run them with a paused clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::probe::{Observation, Outcome, ProbeResult};
use ops_core::run::RetryPolicy;
use ops_core::{OpsError, Probe};

/// Retries a probe: down only when it fails `attempts` times in a row, waiting between attempts
/// as ops-core's [`RetryPolicy`] says (default: from 1 s doubling up to 30 s with full jitter;
/// [`Retry::with_policy`] sets a deadline too). Degraded counts as answered. A probe error that
/// is not retryable is returned at once.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
/// use std::time::Duration;
/// use ops_core::Probe;
/// use ops_probes::{Retry, TcpProbe};
/// let flaky = TcpProbe::new("127.0.0.1", 9)?.with_timeout(Duration::from_millis(50));
/// let probe = Retry::new(flaky, 3).with_backoff(Duration::from_millis(10));
/// let r = probe.check().await?;
/// assert!(r.detail.contains("failed 3 times in a row"));
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Retry<P> {
    inner: P,
    policy: RetryPolicy,
}

impl<P: Probe> Retry<P> {
    /// Up to `attempts` tries (at least one), 1 s initial backoff.
    pub fn new(inner: P, attempts: u32) -> Self {
        let policy = RetryPolicy::default()
            .with_max_attempts(attempts)
            .with_initial_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(30));
        Self { inner, policy }
    }

    /// The ceiling of the wait after the first failure; doubles after each further one.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.policy = self.policy.with_initial_delay(backoff);
        self
    }

    /// The whole policy: attempts, backoff, jitter, deadline.
    #[must_use]
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<P: Probe> Probe for Retry<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn check(&self) -> Result<ProbeResult, OpsError> {
        let start = tokio::time::Instant::now();
        let mut attempt = 1;
        let last = loop {
            let detail = match self.inner.check().await {
                Ok(r) if r.outcome != Outcome::Down => {
                    return Ok(r.with_observation(Observation::new(
                        "attempts",
                        attempt.to_string(),
                        true,
                    )));
                }
                Ok(r) => r.detail,
                Err(e) if e.is_retryable() => e.chain(),
                Err(e) => return Err(e),
            };
            match self.policy.next_wait(attempt, None, start.elapsed()) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => break detail,
            }
            attempt += 1;
        };
        let n = attempt;
        Ok(ProbeResult::down(format!(
            "{}: failed {n} times in a row; last: {}",
            self.inner.name(),
            last
        ))
        .with_observation(
            Observation::new("attempts", n.to_string(), false)
                .with_condition(format!("up within {n} attempts")),
        ))
    }
}

async fn check_each(probes: &[Arc<dyn Probe>]) -> Result<Vec<ProbeResult>, OpsError> {
    futures::future::join_all(probes.iter().map(Probe::check))
        .await
        .into_iter()
        .collect()
}

fn combine(
    name: &str,
    results: &[ProbeResult],
    probes: &[Arc<dyn Probe>],
    outcome: Outcome,
    rule: &str,
) -> ProbeResult {
    let mut r = match outcome {
        Outcome::Up => ProbeResult::up(),
        Outcome::Degraded => ProbeResult::degraded(""),
        Outcome::Down => ProbeResult::down(""),
    };
    let not_up: Vec<String> = results
        .iter()
        .zip(probes)
        .filter(|(r, _)| !r.outcome.is_up())
        .map(|(r, _)| r.detail.clone())
        .collect();
    r.detail = if not_up.is_empty() {
        format!("{name}: all {} up", results.len())
    } else {
        format!(
            "{name} ({rule}): {} of {} not up: {}",
            not_up.len(),
            results.len(),
            not_up.join("; ")
        )
    };
    r.latency = results.iter().map(|r| r.latency).max().unwrap_or_default();
    for (res, p) in results.iter().zip(probes) {
        r = r.with_observation(Observation::new(
            p.name(),
            res.outcome.to_string(),
            res.outcome.is_up(),
        ));
    }
    r
}

/// Up only when every probe is up; the outcome is the worst one. Probes run concurrently.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::Probe;
/// let closed = Arc::new(ops_probes::TcpProbe::new("127.0.0.1", 9)?);
/// let all = ops_probes::AllOf::new("stack", vec![closed]);
/// assert!(!all.check().await?.outcome.is_up());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub struct AllOf {
    name: String,
    probes: Vec<Arc<dyn Probe>>,
}

/// Up when at least one probe is up; otherwise the best outcome. Probes run concurrently.
///
/// # Examples
/// ```
/// let any = ops_probes::AnyOf::new("replicas", vec![]);
/// assert_eq!(ops_core::Probe::name(&any), "replicas");
/// ```
pub struct AnyOf {
    name: String,
    probes: Vec<Arc<dyn Probe>>,
}

macro_rules! group {
    ($t:ident, $rule:literal, $pick:expr) => {
        impl $t {
            /// A group named `name`.
            pub fn new(name: impl Into<String>, probes: Vec<Arc<dyn Probe>>) -> Self {
                Self {
                    name: name.into(),
                    probes,
                }
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("name", &self.name)
                    .field(
                        "probes",
                        &self
                            .probes
                            .iter()
                            .map(|p| p.name().to_owned())
                            .collect::<Vec<_>>(),
                    )
                    .finish()
            }
        }

        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl Probe for $t {
            fn name(&self) -> &str {
                &self.name
            }

            async fn check(&self) -> Result<ProbeResult, OpsError> {
                let results = check_each(&self.probes).await?;
                let pick: fn(&[ProbeResult]) -> Outcome = $pick;
                let outcome = if results.is_empty() {
                    Outcome::Up
                } else {
                    pick(&results)
                };
                Ok(combine(&self.name, &results, &self.probes, outcome, $rule))
            }
        }
    };
}

group!(AllOf, "all must be up", |r| r
    .iter()
    .map(|r| r.outcome)
    .max()
    .unwrap_or(Outcome::Up));
group!(AnyOf, "one must be up", |r| r
    .iter()
    .map(|r| r.outcome)
    .min()
    .unwrap_or(Outcome::Up));

/// How often and how long [`watch`] checks.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let opts = ops_probes::WatchOptions::new(Duration::from_secs(30), Duration::from_secs(30 * 60));
/// assert_eq!(opts.interval, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchOptions {
    /// Time between the starts of two checks.
    pub interval: Duration,
    /// How long to watch.
    pub duration: Duration,
}

impl WatchOptions {
    /// Check every `interval` for `duration`.
    pub fn new(interval: Duration, duration: Duration) -> Self {
        Self { interval, duration }
    }
}

/// What a [`watch`] saw.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
/// use std::time::Duration;
/// let probe = ops_probes::TcpProbe::new("127.0.0.1", 9)?.with_timeout(Duration::from_millis(10));
/// let s = ops_probes::watch(&probe, ops_probes::WatchOptions::new(Duration::from_secs(1), Duration::from_secs(3))).await?;
/// assert!(s.checks >= 3);
/// println!("{s}");
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Stability {
    /// Checks run.
    pub checks: u32,
    /// Checks that were up.
    pub up: u32,
    /// Share of checks that were up, 0–100.
    pub up_percent: f64,
    /// Changes between up and not up.
    pub flaps: u32,
    /// Longest run of consecutive not-up checks.
    pub longest_outage: u32,
    /// Median latency.
    pub p50: Duration,
    /// 95th percentile latency (nearest rank).
    pub p95: Duration,
    /// The last result.
    pub last: Option<ProbeResult>,
}

impl Stability {
    /// Whether at least `min_up_percent` of checks were up and nothing flapped.
    pub fn is_stable(&self, min_up_percent: f64) -> bool {
        self.checks > 0 && self.up_percent >= min_up_percent && self.flaps == 0
    }

    fn from_results(results: &[ProbeResult]) -> Self {
        let checks = u32::try_from(results.len()).unwrap_or(u32::MAX);
        let up =
            u32::try_from(results.iter().filter(|r| r.outcome.is_up()).count()).unwrap_or(u32::MAX);
        let flaps = u32::try_from(
            results
                .windows(2)
                .filter(|w| w[0].outcome.is_up() != w[1].outcome.is_up())
                .count(),
        )
        .unwrap_or(u32::MAX);
        let mut longest = 0;
        let mut run = 0;
        for r in results {
            run = if r.outcome.is_up() { 0 } else { run + 1 };
            longest = longest.max(run);
        }
        let mut lat: Vec<Duration> = results.iter().map(|r| r.latency).collect();
        lat.sort_unstable();
        Self {
            checks,
            up,
            up_percent: if checks == 0 {
                0.0
            } else {
                f64::from(up) * 100.0 / f64::from(checks)
            },
            flaps,
            longest_outage: longest,
            p50: percentile(&lat, 50),
            p95: percentile(&lat, 95),
            last: results.last().cloned(),
        }
    }
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

impl fmt::Display for Stability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} checks, {:.1}% up, {} flaps, longest outage {} checks, p50 {} ms, p95 {} ms",
            self.checks,
            self.up_percent,
            self.flaps,
            self.longest_outage,
            self.p50.as_millis(),
            self.p95.as_millis()
        )
    }
}

/// Checks `probe` every `interval` for `duration` (a first check at once, the last no later
/// than `duration`) and summarises stability: up %, flaps, p50/p95 latency.
///
/// Cancellation safe: dropping the future stops watching.
///
/// # Errors
/// The first error of the probe that is not retryable; [`ops_core::ErrorKind::InvalidInput`]
/// for a zero interval.
pub async fn watch(probe: &dyn Probe, opts: WatchOptions) -> Result<Stability, OpsError> {
    if opts.interval.is_zero() {
        return Err(OpsError::invalid(
            "watch",
            probe.name(),
            "interval must be positive",
        ));
    }
    let start = tokio::time::Instant::now();
    let end = start + opts.duration;
    let mut ticker = tokio::time::interval(opts.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut results = Vec::new();
    loop {
        ticker.tick().await;
        if tokio::time::Instant::now() > end && !results.is_empty() {
            break;
        }
        match probe.check().await {
            Ok(r) => results.push(r),
            Err(e) if e.is_retryable() => results.push(ProbeResult::down(e.chain())),
            Err(e) => return Err(e),
        }
    }
    Ok(Stability::from_results(&results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), Duration::from_millis(50));
        assert_eq!(percentile(&v, 95), Duration::from_millis(95));
        assert_eq!(percentile(&v[..1], 95), Duration::from_millis(1));
    }

    #[test]
    fn stability_counts_flaps_and_outages() {
        let up = || ProbeResult::up();
        let down = || ProbeResult::down("x");
        let s = Stability::from_results(&[up(), down(), down(), up(), up()]);
        assert_eq!((s.checks, s.up, s.flaps, s.longest_outage), (5, 3, 2, 2));
        assert!((s.up_percent - 60.0).abs() < 1e-9);
    }
}
