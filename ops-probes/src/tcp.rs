//! [`TcpProbe`]: can a TCP connection be opened, and how fast.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use ops_core::probe::{Observation, ProbeResult};
use ops_core::{OpsError, Probe, text};
use rustls::pki_types::ServerName;

use crate::config::default_timeout;
use crate::error::{Error, Result};

/// A TCP connect check: up when the connection opens within the timeout, degraded when it
/// opens slower than the budget.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ops_core::Probe;
/// let probe = ops_probes::TcpProbe::new("db.internal", 5432)?
///     .with_timeout(Duration::from_secs(2));
/// assert!(probe.check().await?.outcome.is_up());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TcpProbe {
    name: String,
    host: String,
    port: u16,
    timeout: Duration,
    budget: Option<Duration>,
}

impl TcpProbe {
    /// A probe of `host:port`, named after it.
    ///
    /// # Errors
    /// [`Error::Config`] for port 0 or a host that is not a DNS name or IP address.
    ///
    /// # Examples
    /// ```
    /// assert!(ops_probes::TcpProbe::new("", 80).is_err());
    /// assert_eq!(ops_core::Probe::name(&ops_probes::TcpProbe::new("db", 5432)?), "db:5432");
    /// # Ok::<(), ops_probes::Error>(())
    /// ```
    pub fn new(host: &str, port: u16) -> Result<Self> {
        if port == 0 || ServerName::try_from(host).is_err() {
            return Err(Error::Config {
                target: text::quote(&format!("{host}:{port}")),
                why: "need a DNS name or IP address and a non-zero port".to_owned(),
            });
        }
        Ok(Self {
            name: format!("{host}:{port}"),
            host: host.to_owned(),
            port,
            timeout: default_timeout(),
            budget: None,
        })
    }

    /// The name in reports.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The connect deadline.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connections slower than `budget` make the check degraded.
    #[must_use]
    pub fn with_connect_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }
}

#[async_trait]
impl Probe for TcpProbe {
    fn name(&self) -> &str {
        &self.name
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "tcp", target = %self.name))]
    async fn check(&self) -> std::result::Result<ProbeResult, OpsError> {
        let started = Instant::now();
        let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        let res = tokio::time::timeout(self.timeout, connect).await;
        let latency = started.elapsed();
        let connected = |ok: bool| {
            Observation::new("[CONNECTED]", ok.to_string(), ok)
                .with_condition("[CONNECTED] == true")
        };
        Ok(match res {
            Ok(Ok(_stream)) => {
                let ms = latency.as_millis();
                match self.budget {
                    Some(b) if latency > b => ProbeResult::degraded(format!(
                        "{}: connected in {ms} ms, over the {} ms budget",
                        self.name,
                        b.as_millis()
                    ))
                    .with_observation(
                        Observation::new("[RESPONSE_TIME]", format!("{ms}ms"), false)
                            .with_condition(format!("[RESPONSE_TIME] <= {}ms", b.as_millis())),
                    ),
                    _ => {
                        let mut r = ProbeResult::up();
                        r.detail = format!("{}: connected in {ms} ms", self.name);
                        r
                    }
                }
                .with_observation(connected(true))
            }
            Ok(Err(e)) => ProbeResult::down(format!("{}: connection failed: {e}", self.name))
                .with_observation(connected(false)),
            Err(_) => ProbeResult::down(format!(
                "{}: no connection within {} ms",
                self.name,
                self.timeout.as_millis()
            ))
            .with_observation(connected(false)),
        }
        .with_latency(latency))
    }
}
