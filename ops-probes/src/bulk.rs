//! Checking many probes at once under a concurrency limit, results in input order.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use ops_core::probe::ProbeResult;
use ops_core::{OpsError, Probe};

/// Options for [`check_all`].
///
/// # Examples
/// ```
/// let opts = ops_probes::BulkOptions::default().with_concurrency(64);
/// assert_eq!(opts.concurrency, 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkOptions {
    /// How many checks run at the same time (at least 1). Default 64.
    pub concurrency: usize,
    /// A deadline per check on top of the probe's own; a check over it is down. Default none.
    pub timeout: Option<Duration>,
}

impl Default for BulkOptions {
    fn default() -> Self {
        Self {
            concurrency: 64,
            timeout: None,
        }
    }
}

impl BulkOptions {
    /// Set the concurrency limit.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Set a per-check deadline.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Runs every probe's check, at most `opts.concurrency` at a time, and returns the results in
/// the order of `probes`.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::Probe;
/// let probes: Vec<Arc<dyn Probe>> = vec![
///     Arc::new(ops_probes::TcpProbe::new("127.0.0.1", 9)?),
///     Arc::new(ops_probes::TcpProbe::new("127.0.0.1", 7)?),
/// ];
/// let results = ops_probes::check_all(&probes, ops_probes::BulkOptions::default()).await;
/// assert_eq!(results.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub async fn check_all(
    probes: &[Arc<dyn Probe>],
    opts: BulkOptions,
) -> Vec<Result<ProbeResult, OpsError>> {
    futures::stream::iter(probes.iter().map(|p| async move {
        match opts.timeout {
            None => p.check().await,
            Some(t) => match tokio::time::timeout(t, p.check()).await {
                Ok(r) => r,
                Err(_) => Ok(ProbeResult::down(format!(
                    "{}: no result within {} ms",
                    p.name(),
                    t.as_millis()
                ))
                .with_latency(t)),
            },
        }
    }))
    .buffered(opts.concurrency.max(1))
    .collect()
    .await
}
