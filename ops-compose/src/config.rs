//! [`ComposeConfig`] and [`ComposePlatformBuilder`]: deadlines and how to reach the engine.

use std::time::Duration;

use bollard::Docker;

use crate::error::{Error, Result};
use crate::platform::ComposePlatform;

/// Deadlines of [`ComposePlatform`]. Every Engine API call is bounded by one of them.
///
/// # Examples
/// ```
/// let cfg = ops_compose::ComposeConfig::default();
/// assert_eq!(cfg.request_timeout, std::time::Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ComposeConfig {
    /// Deadline of one Engine API call (default 30 s; `OPSBOOK_COMPOSE_TIMEOUT_MS`).
    #[serde(deserialize_with = "ops_core::duration::deserialize")]
    pub request_timeout: Duration,
    /// Grace period before a stopping container is killed, when the call does not say
    /// (default 10 s, compose's default; `OPSBOOK_COMPOSE_STOP_TIMEOUT_MS`).
    #[serde(deserialize_with = "ops_core::duration::deserialize")]
    pub stop_timeout: Duration,
    /// How long a health gate waits for a service to be running and healthy
    /// (default 2 min; `OPSBOOK_COMPOSE_HEALTH_TIMEOUT_MS`).
    #[serde(deserialize_with = "ops_core::duration::deserialize")]
    pub health_timeout: Duration,
    /// How often health gates poll (default 500 ms).
    #[serde(deserialize_with = "ops_core::duration::deserialize")]
    pub poll_interval: Duration,
    /// The largest file [`ComposePlatform`] copies out of a container (default 64 MiB).
    pub max_copy_bytes: u64,
}

impl Default for ComposeConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(10),
            health_timeout: Duration::from_mins(2),
            poll_interval: Duration::from_millis(500),
            max_copy_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Builds a [`ComposePlatform`]. `build` does no network I/O: the API version is negotiated
/// on first use.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let platform = ops_compose::ComposePlatformBuilder::from_env()
///     .with_request_timeout(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(platform.config().request_timeout, Duration::from_secs(10));
/// # Ok::<(), ops_compose::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ComposePlatformBuilder {
    config: ComposeConfig,
    client: Option<Docker>,
}

fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

impl ComposePlatformBuilder {
    /// Defaults, overridden by `OPSBOOK_COMPOSE_*`; the engine is found through `DOCKER_HOST`
    /// or the local socket.
    pub fn from_env() -> Self {
        let mut config = ComposeConfig::default();
        if let Some(d) = env_ms("OPSBOOK_COMPOSE_TIMEOUT_MS") {
            config.request_timeout = d;
        }
        if let Some(d) = env_ms("OPSBOOK_COMPOSE_STOP_TIMEOUT_MS") {
            config.stop_timeout = d;
        }
        if let Some(d) = env_ms("OPSBOOK_COMPOSE_HEALTH_TIMEOUT_MS") {
            config.health_timeout = d;
        }
        Self {
            config,
            client: None,
        }
    }

    /// Use this configuration.
    #[must_use]
    pub fn with_config(mut self, config: ComposeConfig) -> Self {
        self.config = config;
        self
    }

    /// Set the per-call deadline.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Set the default stop grace period.
    #[must_use]
    pub fn with_stop_timeout(mut self, timeout: Duration) -> Self {
        self.config.stop_timeout = timeout;
        self
    }

    /// Set how long health gates wait.
    #[must_use]
    pub fn with_health_timeout(mut self, timeout: Duration) -> Self {
        self.config.health_timeout = timeout;
        self
    }

    /// Set how often health gates poll.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// Use an existing client instead of `DOCKER_HOST` (its version is still negotiated).
    #[must_use]
    pub fn with_client(mut self, client: Docker) -> Self {
        self.client = Some(client);
        self
    }

    /// Build the platform.
    ///
    /// # Errors
    /// [`Error::Client`] when `DOCKER_HOST` names an unsupported scheme.
    pub fn build(self) -> Result<ComposePlatform> {
        let (client, raw) = match self.client {
            Some(c) => (c, None),
            None => (
                Docker::connect_with_defaults().map_err(|source| Error::Client { source })?,
                crate::raw::Endpoint::from_env(),
            ),
        };
        Ok(ComposePlatform::with_parts(client, self.config, raw))
    }
}
