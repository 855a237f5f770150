//! State shared by every request.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::deps::Deps;
use crate::fault::FaultSwitch;
use crate::memory::Ballast;
use crate::metrics::Metrics;

/// Everything a handler can reach.
#[derive(Debug)]
pub(crate) struct AppState {
    /// Postgres and Redis.
    pub(crate) deps: Deps,
    /// Faults in effect.
    pub(crate) faults: FaultSwitch,
    /// Request counters and latency histograms.
    pub(crate) metrics: Metrics,
    /// Memory held by the memory-growth fault.
    pub(crate) ballast: Ballast,
    /// The `items` table exists and is seeded.
    pub(crate) schema: tokio::sync::OnceCell<()>,
    /// When the process started (monotonic, for uptime).
    pub(crate) started: Instant,
    /// When the process started, in seconds since the Unix epoch.
    pub(crate) started_unix: f64,
}

impl AppState {
    /// State for `config`, with lazy dependency clients.
    pub(crate) fn new(config: Config) -> Result<Self, String> {
        let deps = Deps::new(config.database_url.as_deref(), config.redis_url.as_deref())?;
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        Ok(Self {
            deps,
            faults: FaultSwitch::new(config.faults),
            metrics: Metrics::default(),
            ballast: Ballast::default(),
            schema: tokio::sync::OnceCell::new(),
            started: Instant::now(),
            started_unix,
        })
    }
}
