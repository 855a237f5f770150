//! [`WebhookNotifier`]: JSON to any URL, optionally as an Alertmanager v4 payload, optionally
//! signed with HMAC-SHA256.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit as _, Mac as _};
use ops_core::notify::Notification;
use ops_core::text::Redactor;
use ops_core::{Notifier, OpsError};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::config::{default_timeout, http_client, secret_url};
use crate::error::{Error, Result};
use crate::pagerduty::pagerduty_severity;
use crate::retry::{Delivery, RetryPolicy, post};

/// Header carrying `sha256=<hex>` when a signing secret is set.
pub const SIGNATURE_HEADER: &str = "x-opsbook-signature";
/// Header carrying the Unix time (seconds) that is part of the signed text.
pub const TIMESTAMP_HEADER: &str = "x-opsbook-timestamp";

/// The body format.
///
/// # Examples
/// ```
/// assert_eq!(ops_notify::WebhookFormat::default(), ops_notify::WebhookFormat::Json);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookFormat {
    /// The notification as JSON (see [`webhook_payload`]).
    #[default]
    Json,
    /// Alertmanager's webhook payload, version 4 (see [`alertmanager_payload`]).
    AlertmanagerV4,
}

/// The signature of a delivery: `sha256=` and the hex HMAC-SHA256 of
/// `"{timestamp}.{body}"` under `secret`. Receivers recompute it and compare in constant time.
///
/// # Examples
/// ```
/// let sig = ops_notify::sign(b"secret", 1_700_000_000, br#"{"a":1}"#);
/// assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
/// assert!(ops_notify::verify(b"secret", 1_700_000_000, br#"{"a":1}"#, &sig));
/// assert!(!ops_notify::verify(b"other", 1_700_000_000, br#"{"a":1}"#, &sig));
/// ```
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks a signature made by [`sign`], in constant time.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(bytes) = hex::decode(hex_sig) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&bytes).is_ok()
}

/// The plain JSON body: the notification's fields plus `sent_at` and `version`.
///
/// # Examples
/// ```
/// use ops_core::{incident::Severity, notify::Notification};
/// let p = ops_notify::webhook_payload(&Notification::new(Severity::High, "db slow", ""));
/// assert_eq!(p["title"], "db slow");
/// assert_eq!(p["severity"], "high");
/// assert_eq!(p["version"], "1");
/// ```
pub fn webhook_payload(n: &Notification) -> Value {
    let mut v = serde_json::to_value(n).unwrap_or_else(|_| json!({"title": n.title}));
    if let Value::Object(map) = &mut v {
        map.insert("version".to_owned(), json!("1"));
        map.insert(
            "sent_at".to_owned(),
            json!(jiff::Timestamp::now().to_string()),
        );
    }
    v
}

/// An Alertmanager webhook payload (version 4) with one alert for `n`: `status` is
/// `firing` or `resolved`, labels hold `alertname`, `severity` and the dedup key,
/// annotations hold summary, description and the fields; the fingerprint derives from the
/// dedup key so updates of one incident group together.
///
/// # Examples
/// ```
/// use ops_core::{incident::Severity, notify::Notification};
/// let p = ops_notify::alertmanager_payload(&Notification::new(Severity::Critical, "api down", ""), "opsbook");
/// assert_eq!(p["version"], "4");
/// assert_eq!(p["alerts"][0]["status"], "firing");
/// assert_eq!(p["alerts"][0]["labels"]["severity"], "critical");
/// ```
pub fn alertmanager_payload(n: &Notification, receiver: &str) -> Value {
    let status = if n.resolved { "resolved" } else { "firing" };
    let now = jiff::Timestamp::now().to_string();
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".to_owned(), json!(n.title));
    labels.insert("severity".to_owned(), json!(pagerduty_severity(n.severity)));
    labels.insert("priority".to_owned(), json!(n.severity_label));
    labels.insert("dedup_key".to_owned(), json!(n.dedup_key));
    if let Some(id) = &n.incident_id {
        labels.insert("incident_id".to_owned(), json!(id));
    }
    let mut annotations = serde_json::Map::new();
    annotations.insert("summary".to_owned(), json!(n.title));
    annotations.insert("description".to_owned(), json!(n.body));
    annotations.insert("status".to_owned(), json!(n.status.to_string()));
    for (k, v) in &n.fields {
        annotations.insert(k.clone(), json!(v));
    }
    let fingerprint = hex::encode(&Sha256::digest(n.dedup_key.as_bytes())[..8]);
    let generator = n
        .links
        .first()
        .map(|(_, url)| url.clone())
        .unwrap_or_default();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{dedup_key=\"{}\"}}", n.dedup_key),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"dedup_key": n.dedup_key},
        "commonLabels": labels.clone(),
        "commonAnnotations": annotations.clone(),
        "externalURL": "",
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": now,
            "endsAt": if n.resolved { now.clone() } else { "0001-01-01T00:00:00Z".to_owned() },
            "generatorURL": generator,
            "fingerprint": fingerprint,
        }]
    })
}

/// Builds a [`WebhookNotifier`]; `build` validates and does no network I/O.
///
/// # Examples
/// ```
/// let hook = ops_notify::WebhookNotifier::builder("https://hooks.example.com/opsbook?token=abc".into())
///     .with_format(ops_notify::WebhookFormat::AlertmanagerV4)
///     .with_signing_secret("shh".into())
///     .build()?;
/// assert!(!format!("{hook:?}").contains("abc"));
/// # Ok::<(), ops_notify::Error>(())
/// ```
#[must_use]
pub struct WebhookNotifierBuilder {
    url: SecretString,
    name: String,
    format: WebhookFormat,
    secret: Option<SecretString>,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    client: Option<reqwest::Client>,
}

impl fmt::Debug for WebhookNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifierBuilder")
            .field("name", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl WebhookNotifierBuilder {
    /// The name in reports (default `webhook`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The body format.
    pub fn with_format(mut self, format: WebhookFormat) -> Self {
        self.format = format;
        self
    }

    /// Sign each delivery (see [`sign`]).
    pub fn with_signing_secret(mut self, secret: SecretString) -> Self {
        self.secret = Some(secret);
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
    /// [`Error::Config`] for a bad URL or an empty secret; [`Error::Client`].
    pub fn build(self) -> Result<WebhookNotifier> {
        let url = secret_url(&self.name, &self.url)?;
        if self
            .secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().is_empty())
        {
            return Err(Error::Config {
                receiver: self.name,
                why: "the signing secret is empty".to_owned(),
            });
        }
        let client = match self.client {
            Some(c) => c,
            None => http_client(&self.name)?,
        };
        let secrets = match &self.secret {
            Some(s) => url.secrets.with_secret(s.expose_secret()),
            None => url.secrets,
        };
        Ok(WebhookNotifier {
            name: self.name,
            url: url.url,
            target: url.target,
            secrets,
            format: self.format,
            secret: self.secret,
            timeout: self.timeout.unwrap_or_else(default_timeout),
            retry: self.retry,
            client,
        })
    }
}

/// POSTs notifications as JSON to a URL.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ops_core::{Notifier, incident::Severity, notify::Notification};
/// let hook = ops_notify::WebhookNotifier::builder("https://hooks.example.com/ops".into()).build()?;
/// hook.send(&Notification::new(Severity::Low, "disk at 81%", "")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WebhookNotifier {
    name: String,
    url: url::Url,
    target: String,
    secrets: Redactor,
    format: WebhookFormat,
    secret: Option<SecretString>,
    timeout: Duration,
    retry: RetryPolicy,
    client: reqwest::Client,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("format", &self.format)
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// A builder for `url` (a secret: it may carry a token).
    pub fn builder(url: SecretString) -> WebhookNotifierBuilder {
        WebhookNotifierBuilder {
            url,
            name: "webhook".to_owned(),
            format: WebhookFormat::default(),
            secret: None,
            timeout: None,
            retry: crate::retry::delivery_policy(),
            client: None,
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "webhook", target = %self.target))]
    async fn send(&self, n: &Notification) -> std::result::Result<(), OpsError> {
        let body = match self.format {
            WebhookFormat::Json => webhook_payload(n),
            WebhookFormat::AlertmanagerV4 => alertmanager_payload(n, &self.name),
        }
        .to_string()
        .into_bytes();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        if let Some(secret) = &self.secret {
            let ts = jiff::Timestamp::now().as_second();
            let sig = sign(secret.expose_secret().as_bytes(), ts, &body);
            // Digits and hex only: always valid header values.
            if let (Ok(t), Ok(s)) = (
                reqwest::header::HeaderValue::from_str(&ts.to_string()),
                reqwest::header::HeaderValue::from_str(&sig),
            ) {
                headers.insert(TIMESTAMP_HEADER, t);
                headers.insert(SIGNATURE_HEADER, s);
            }
        }
        let delivery = Delivery {
            receiver: &self.name,
            target: &self.target,
            url: &self.url,
            secrets: &self.secrets,
            headers,
            body,
            timeout: self.timeout,
        };
        post(&self.client, delivery, self.retry).await?;
        Ok(())
    }
}
