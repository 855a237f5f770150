//! [`PagerDutyNotifier`]: PagerDuty Events API v2 (trigger, acknowledge, resolve with
//! `dedup_key`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::incident::Severity;
use ops_core::notify::Notification;
use ops_core::text::Redactor;
use ops_core::{Notifier, OpsError};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};

use crate::config::{default_timeout, http_client, secret_url};
use crate::error::{Error, Result};
use crate::retry::{Delivery, RetryPolicy, post};

/// The Events API v2 endpoint.
const EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// An Events API v2 action.
///
/// # Examples
/// ```
/// assert_eq!(ops_notify::EventAction::Acknowledge.as_str(), "acknowledge");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventAction {
    /// Open or update an alert.
    Trigger,
    /// Someone is on it.
    Acknowledge,
    /// Over.
    Resolve,
}

impl EventAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trigger => "trigger",
            Self::Acknowledge => "acknowledge",
            Self::Resolve => "resolve",
        }
    }
}

/// The PagerDuty severity of a level: critical, error, warning, info.
///
/// # Examples
/// ```
/// use ops_core::incident::Severity;
/// assert_eq!(ops_notify::pagerduty_severity(Severity::High), "error");
/// ```
pub fn pagerduty_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "info",
    }
}

/// Builds a [`PagerDutyNotifier`]; `build` validates and does no network I/O.
///
/// # Examples
/// ```
/// let pd = ops_notify::PagerDutyNotifier::builder()
///     .with_routing_key("R0UT1NGKEY00000000000000000000000".into())
///     .with_source("opsbook-drill")
///     .build()?;
/// assert!(!format!("{pd:?}").contains("R0UT1NG"));
/// # Ok::<(), ops_notify::Error>(())
/// ```
#[must_use]
pub struct PagerDutyNotifierBuilder {
    key: Option<SecretString>,
    url: SecretString,
    source: String,
    component: Option<String>,
    group: Option<String>,
    class: Option<String>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    client: Option<reqwest::Client>,
}

impl Default for PagerDutyNotifierBuilder {
    fn default() -> Self {
        Self {
            key: None,
            url: SecretString::from(EVENTS_URL.to_owned()),
            source: "opsbook".to_owned(),
            component: None,
            group: None,
            class: None,
            timeout: None,
            retry: crate::retry::delivery_policy(),
            client: None,
        }
    }
}

impl fmt::Debug for PagerDutyNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyNotifierBuilder")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl PagerDutyNotifierBuilder {
    /// Reads `OPSBOOK_PAGERDUTY_ROUTING_KEY` and optionally `OPSBOOK_PAGERDUTY_URL`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut b = Self {
            key: var("OPSBOOK_PAGERDUTY_ROUTING_KEY").map(SecretString::from),
            ..Self::default()
        };
        if let Some(url) = var("OPSBOOK_PAGERDUTY_URL") {
            b.url = SecretString::from(url);
        }
        b
    }

    /// The integration's routing key (a secret).
    pub fn with_routing_key(mut self, key: SecretString) -> Self {
        self.key = Some(key);
        self
    }

    /// Another events endpoint (EU region, a test receiver).
    pub fn with_events_url(mut self, url: SecretString) -> Self {
        self.url = url;
        self
    }

    /// `payload.source` (default `opsbook`).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// `payload.component`.
    pub fn with_component(mut self, v: impl Into<String>) -> Self {
        self.component = Some(v.into());
        self
    }

    /// `payload.group`.
    pub fn with_group(mut self, v: impl Into<String>) -> Self {
        self.group = Some(v.into());
        self
    }

    /// `payload.class`.
    pub fn with_class(mut self, v: impl Into<String>) -> Self {
        self.class = Some(v.into());
        self
    }

    /// Deadline of one attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The retry policy (default [`delivery_policy`](crate::delivery_policy)).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Use this client. Build it with `reqwest::redirect::Policy::none()`, as the shared
    /// client is: a webhook URL is a credential and must not follow a redirect elsewhere.
    pub fn from_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::Config`] without a routing key or with a bad URL; [`Error::Client`].
    pub fn build(self) -> Result<PagerDutyNotifier> {
        let name = "pagerduty".to_owned();
        let key = self
            .key
            .filter(|k| !k.expose_secret().trim().is_empty())
            .ok_or_else(|| Error::Config {
                receiver: name.clone(),
                why: "no routing key (OPSBOOK_PAGERDUTY_ROUTING_KEY)".to_owned(),
            })?;
        if self.source.trim().is_empty() {
            return Err(Error::Config {
                receiver: name,
                why: "payload.source must not be empty".to_owned(),
            });
        }
        let url = secret_url(&name, &self.url)?;
        let client = match self.client {
            Some(c) => c,
            None => http_client(&name)?,
        };
        Ok(PagerDutyNotifier {
            name,
            secrets: url.secrets.with_secret(key.expose_secret()),
            key,
            url: url.url,
            target: url.target,
            source: self.source,
            component: self.component,
            group: self.group,
            class: self.class,
            timeout: self.timeout.unwrap_or_else(default_timeout),
            retry: self.retry,
            client,
        })
    }
}

/// Sends PagerDuty Events API v2 events. [`Notifier::send`] triggers (or updates) the alert
/// keyed by the notification's `dedup_key`, and resolves it when the notification is
/// resolved; [`PagerDutyNotifier::acknowledge`] acknowledges.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ops_core::{Notifier, incident::{IncidentStatus, Severity}, notify::Notification};
/// let pd = ops_notify::PagerDutyNotifier::builder().with_routing_key("..".into()).build()?;
/// let n = Notification::new(Severity::Critical, "api down", "").with_incident("INC-7");
/// pd.send(&n).await?;                                     // trigger
/// pd.acknowledge(&n).await?;                              // acknowledge
/// pd.send(&n.with_status(IncidentStatus::Resolved)).await?; // resolve
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PagerDutyNotifier {
    name: String,
    key: SecretString,
    url: url::Url,
    target: String,
    secrets: Redactor,
    source: String,
    component: Option<String>,
    group: Option<String>,
    class: Option<String>,
    timeout: Duration,
    retry: RetryPolicy,
    client: reqwest::Client,
}

impl fmt::Debug for PagerDutyNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyNotifier")
            .field("target", &self.target)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl PagerDutyNotifier {
    /// A builder.
    pub fn builder() -> PagerDutyNotifierBuilder {
        PagerDutyNotifierBuilder::default()
    }

    /// The event body for `action` (the routing key included: never log it).
    fn event(&self, action: EventAction, n: &Notification) -> Value {
        let mut event = Map::new();
        event.insert("routing_key".to_owned(), json!(self.key.expose_secret()));
        event.insert("event_action".to_owned(), json!(action.as_str()));
        event.insert("dedup_key".to_owned(), json!(clip(&n.dedup_key, 255)));
        if action == EventAction::Trigger {
            let mut details = Map::new();
            if !n.body.is_empty() {
                details.insert("body".to_owned(), json!(n.body));
            }
            details.insert("status".to_owned(), json!(n.status.to_string()));
            details.insert("priority".to_owned(), json!(n.severity_label));
            if let Some(id) = &n.incident_id {
                details.insert("incident_id".to_owned(), json!(id));
            }
            for (k, v) in &n.fields {
                details.insert(k.clone(), json!(v));
            }
            let mut payload = Map::new();
            payload.insert("summary".to_owned(), json!(clip(&n.title, 1024)));
            payload.insert("source".to_owned(), json!(self.source));
            payload.insert("severity".to_owned(), json!(pagerduty_severity(n.severity)));
            payload.insert(
                "timestamp".to_owned(),
                json!(jiff::Timestamp::now().to_string()),
            );
            for (k, v) in [
                ("component", &self.component),
                ("group", &self.group),
                ("class", &self.class),
            ] {
                if let Some(v) = v {
                    payload.insert(k.to_owned(), json!(v));
                }
            }
            payload.insert("custom_details".to_owned(), Value::Object(details));
            event.insert("payload".to_owned(), Value::Object(payload));
            event.insert("client".to_owned(), json!("opsbook"));
            if !n.links.is_empty() {
                let links: Vec<Value> = n
                    .links
                    .iter()
                    .map(|(text, href)| json!({"href": href, "text": text}))
                    .collect();
                event.insert("links".to_owned(), Value::Array(links));
            }
        }
        Value::Object(event)
    }

    /// Sends one event.
    ///
    /// # Errors
    /// [`ops_core::ErrorKind::InvalidInput`] for an event PagerDuty rejects (400);
    /// [`ops_core::ErrorKind::Unavailable`] after retries on 429/5xx or transport failures;
    /// [`ops_core::ErrorKind::Timeout`].
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pagerduty", target = %self.target, action = action.as_str()))]
    pub async fn send_event(
        &self,
        action: EventAction,
        n: &Notification,
    ) -> std::result::Result<(), OpsError> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        let delivery = Delivery {
            receiver: &self.name,
            target: &self.target,
            url: &self.url,
            secrets: &self.secrets,
            headers,
            body: self.event(action, n).to_string().into_bytes(),
            timeout: self.timeout,
        };
        post(&self.client, delivery, self.retry).await?;
        Ok(())
    }

    /// Acknowledges the alert with `n.dedup_key`.
    ///
    /// # Errors
    /// As [`PagerDutyNotifier::send_event`].
    pub async fn acknowledge(&self, n: &Notification) -> std::result::Result<(), OpsError> {
        self.send_event(EventAction::Acknowledge, n).await
    }

    /// Resolves the alert with `n.dedup_key`.
    ///
    /// # Errors
    /// As [`PagerDutyNotifier::send_event`].
    pub async fn resolve(&self, n: &Notification) -> std::result::Result<(), OpsError> {
        self.send_event(EventAction::Resolve, n).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Notifier for PagerDutyNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> std::result::Result<(), OpsError> {
        let action = if n.resolved {
            EventAction::Resolve
        } else {
            EventAction::Trigger
        };
        self.send_event(action, n).await
    }
}
