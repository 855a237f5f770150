//! [`Router`]: sends each notification to the receivers for its severity, concurrently, so
//! one failing receiver does not stop the others.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ops_core::incident::Severity;
use ops_core::notify::Notification;
use ops_core::{ErrorKind, Notifier, OpsError};

use crate::error::Error;

/// What a [`Router::deliver`] did: who got the notification and who failed (with why).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Delivery {
    /// Receivers that accepted it.
    pub delivered: Vec<String>,
    /// Receivers that failed, with their errors.
    pub failed: Vec<(String, OpsError)>,
}

impl Delivery {
    /// Whether every routed receiver accepted it.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

struct Route {
    severities: Vec<Severity>,
    notifier: Arc<dyn Notifier>,
}

/// Routes by severity with fan-out and failure isolation.
///
/// [`Router::standard`] is the seeds' policy: P0/P1 page and chat, P2 chat, P3 log.
/// As a [`Notifier`], `send` succeeds only if every routed receiver succeeded; its error
/// names the ones that failed (the others still got the notification). Use
/// [`Router::deliver`] for the full picture.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::{Arc, Mutex};
/// use ops_core::{incident::Severity, notify::Notification};
/// use ops_notify::{ConsoleNotifier, Router};
/// let buf = Arc::new(Mutex::new(Vec::new()));
/// let chat = Arc::new(ConsoleNotifier::with_buffer(Arc::clone(&buf)));
/// let router = Router::new().route(&[Severity::Critical, Severity::High, Severity::Medium], chat);
/// let d = router.deliver(&Notification::new(Severity::Medium, "p95 2.4s", "")).await;
/// assert_eq!(d.delivered, ["console"]);
/// let d = router.deliver(&Notification::new(Severity::Low, "disk 81%", "")).await;
/// assert!(d.delivered.is_empty());
/// # });
/// ```
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| {
                let s: Vec<String> = r.severities.iter().map(ToString::to_string).collect();
                format!("{} -> {}", s.join("/"), r.notifier.name())
            })
            .collect();
        f.debug_struct("Router").field("routes", &routes).finish()
    }
}

impl Router {
    /// A router with no routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Send notifications of `severities` to `notifier` too.
    #[must_use]
    pub fn route(mut self, severities: &[Severity], notifier: Arc<dyn Notifier>) -> Self {
        self.routes.push(Route {
            severities: severities.to_vec(),
            notifier,
        });
        self
    }

    /// The seeds' policy: P0 and P1 to `pager` and `chat`, P2 to `chat`, P3 to `log`.
    pub fn standard(
        pager: Arc<dyn Notifier>,
        chat: Arc<dyn Notifier>,
        log: Arc<dyn Notifier>,
    ) -> Self {
        Self::new()
            .route(&[Severity::Critical, Severity::High], pager)
            .route(
                &[Severity::Critical, Severity::High, Severity::Medium],
                chat,
            )
            .route(&[Severity::Low], log)
    }

    /// The receivers `n` goes to.
    pub fn receivers(&self, severity: Severity) -> Vec<&str> {
        self.routes
            .iter()
            .filter(|r| r.severities.contains(&severity))
            .map(|r| r.notifier.name())
            .collect()
    }

    /// Sends `n` to every receiver routed for its severity, concurrently; never stops at a
    /// failure.
    pub async fn deliver(&self, n: &Notification) -> Delivery {
        let targets: Vec<&Route> = self
            .routes
            .iter()
            .filter(|r| r.severities.contains(&n.severity))
            .collect();
        if targets.is_empty() {
            tracing::warn!(severity = %n.severity, "no receiver routed for this severity");
        }
        let results = futures::future::join_all(targets.iter().map(|r| r.notifier.send(n))).await;
        let mut d = Delivery::default();
        for (r, res) in targets.iter().zip(results) {
            let name = r.notifier.name().to_owned();
            match res {
                Ok(()) => d.delivered.push(name),
                Err(e) => {
                    tracing::warn!(receiver = %name, error = %e, "notification not delivered");
                    d.failed.push((name, e));
                }
            }
        }
        d
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Notifier for Router {
    fn name(&self) -> &'static str {
        "router"
    }

    async fn send(&self, n: &Notification) -> Result<(), OpsError> {
        let d = self.deliver(n).await;
        if d.failed.is_empty() {
            return Ok(());
        }
        let total = d.delivered.len() + d.failed.len();
        let kind = d
            .failed
            .iter()
            .map(|(_, e)| e.kind())
            .find(|k| !k.is_retryable())
            .unwrap_or(ErrorKind::Unavailable);
        let detail = d
            .failed
            .iter()
            .map(|(name, e)| format!("{name}: {}", e.chain()))
            .collect::<Vec<_>>()
            .join("; ");
        let failed = d.failed.into_iter().map(|(name, _)| name).collect();
        Err(OpsError::from(Error::Partial {
            failed,
            total,
            kind,
        })
        .with_detail(detail))
    }
}
