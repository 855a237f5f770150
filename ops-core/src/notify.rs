//! The [`Notifier`] trait and [`Notification`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::OpsError;
use crate::vocab::{IncidentStatus, Severity};

/// A message to people: a page, a chat post, a log line.
///
/// # Examples
/// ```
/// use ops_core::incident::{IncidentStatus, Severity};
/// use ops_core::notify::Notification;
/// let n = Notification::new(Severity::Critical, "api down", "health checks fail on all pods")
///     .with_incident("INC-42")
///     .with_status(IncidentStatus::Identified);
/// assert_eq!(n.dedup_key, "INC-42");
/// assert_eq!(n.severity_label, "P0"); // the default scale until a run labels it
/// assert!(!n.resolved);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Notification {
    /// How urgent.
    pub severity: Severity,
    /// `severity` as people read it on the configured [`crate::incident::SeverityScale`]
    /// (`"P0"` by default for [`Severity::Critical`], `"P1"` on the seeds' P1–P4 scale).
    /// Receivers show this, never `severity`'s own `Display`, which knows no scale.
    #[serde(default)]
    pub severity_label: String,
    /// One line.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Incident id, when part of an incident.
    pub incident_id: Option<String>,
    /// Incident status.
    pub status: IncidentStatus,
    /// Key that groups updates of one incident (PagerDuty `dedup_key`).
    pub dedup_key: String,
    /// This notification resolves the incident.
    pub resolved: bool,
    /// Extra fields shown as a table (name, value).
    pub fields: Vec<(String, String)>,
    /// Links (title, url).
    pub links: Vec<(String, String)>,
}

impl Notification {
    /// A notification; the dedup key defaults to the title.
    pub fn new(severity: Severity, title: impl Into<String>, body: impl Into<String>) -> Self {
        let title = title.into();
        Self {
            severity,
            severity_label: severity.to_string(),
            dedup_key: title.clone(),
            title,
            body: body.into(),
            incident_id: None,
            status: IncidentStatus::Investigating,
            resolved: false,
            fields: Vec::new(),
            links: Vec::new(),
        }
    }

    /// Attach an incident id (also used as dedup key).
    #[must_use]
    pub fn with_incident(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        self.dedup_key.clone_from(&id);
        self.incident_id = Some(id);
        self
    }

    /// Set the status; [`IncidentStatus::Resolved`] also sets `resolved`.
    #[must_use]
    pub fn with_status(mut self, status: IncidentStatus) -> Self {
        self.resolved = status == IncidentStatus::Resolved;
        self.status = status;
        self
    }

    /// Label the severity on a scale other than the default P0–P3.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Severity, SeverityScale};
    /// use ops_core::notify::Notification;
    /// let scale = SeverityScale::p1_to_p4();
    /// let n = Notification::new(Severity::Critical, "api down", "")
    ///     .with_severity_label(scale.label(Severity::Critical));
    /// assert_eq!(n.severity_label, "P1");
    /// ```
    #[must_use]
    pub fn with_severity_label(mut self, label: impl Into<String>) -> Self {
        self.severity_label = label.into();
        self
    }

    /// Add a field.
    #[must_use]
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    /// Set the dedup key.
    #[must_use]
    pub fn with_dedup_key(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = key.into();
        self
    }
}

/// A receiver of notifications.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Notifier: fmt::Debug + Send + Sync + 'static {
    /// A short name for reports, e.g. `slack` (never the webhook URL).
    fn name(&self) -> &str;

    /// Deliver one notification.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unavailable`] when the receiver cannot be reached, or answers 429 or
    /// 5xx, after retries (a `Retry-After` is waited for, unless it ends past the deadline);
    /// [`crate::ErrorKind::Timeout`] when no answer came within the deadline;
    /// [`crate::ErrorKind::PermissionDenied`] for a rejected key (401, 403, not retried);
    /// [`crate::ErrorKind::InvalidInput`] for a payload the receiver refuses (400, not retried).
    /// No error text holds the receiver's URL or key.
    async fn send(&self, notification: &Notification) -> Result<(), OpsError>;
}

macro_rules! forward_notifier {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: Notifier + ?Sized> Notifier for $ptr<T> {
            fn name(&self) -> &str { (**self).name() }
            async fn send(&self, notification: &Notification) -> Result<(), OpsError> { (**self).send(notification).await }
        }
    )*};
}
forward_notifier!(Arc, Box);

/// A notifier that writes each notification as a `tracing` event and drops it: the default
/// when a [`crate::run::RunContext`] has no notifier.
///
/// # Examples
/// ```
/// # tokio_test_block_on(async {
/// use ops_core::notify::{LogNotifier, Notification, Notifier};
/// use ops_core::incident::Severity;
/// LogNotifier.send(&Notification::new(Severity::Low, "disk at 81%", "")).await?;
/// # Ok::<(), ops_core::OpsError>(()) });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output { tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(&self, n: &Notification) -> Result<(), OpsError> {
        tracing::info!(severity = %n.severity_label, status = %n.status, title = %n.title, "notification");
        Ok(())
    }
}
