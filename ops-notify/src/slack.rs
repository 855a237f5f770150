//! [`SlackNotifier`]: Slack incoming webhooks with Block Kit, severity colours, fields and
//! links.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::incident::Severity;
use ops_core::notify::Notification;
use ops_core::text::Redactor;
use ops_core::{Notifier, OpsError};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::config::{default_timeout, http_client, secret_url};
use crate::error::{Error, Result};
use crate::retry::{Delivery, RetryPolicy, post};

/// Builds a [`SlackNotifier`]; `build` validates and does no network I/O.
///
/// # Examples
/// ```
/// let slack = ops_notify::SlackNotifier::builder()
///     .with_webhook_url("https://hooks.slack.com/services/T0/B0/XXXX".into())
///     .build()?;
/// assert!(!format!("{slack:?}").contains("XXXX"));
/// # Ok::<(), ops_notify::Error>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct SlackNotifierBuilder {
    url: Option<SecretString>,
    name: Option<String>,
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    client: Option<reqwest::Client>,
}

impl fmt::Debug for SlackNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifierBuilder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SlackNotifierBuilder {
    /// Reads `OPSBOOK_SLACK_WEBHOOK_URL`.
    pub fn from_env() -> Self {
        Self {
            url: std::env::var("OPSBOOK_SLACK_WEBHOOK_URL")
                .ok()
                .filter(|v| !v.is_empty())
                .map(SecretString::from),
            ..Self::default()
        }
    }

    /// The incoming-webhook URL (a secret).
    pub fn with_webhook_url(mut self, url: SecretString) -> Self {
        self.url = Some(url);
        self
    }

    /// The name in reports (default `slack`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Deadline of one attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The retry policy (default [`delivery_policy`](crate::delivery_policy)).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
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
    /// [`Error::Config`] without a valid webhook URL; [`Error::Client`].
    pub fn build(self) -> Result<SlackNotifier> {
        let name = self.name.unwrap_or_else(|| "slack".to_owned());
        let url = self.url.ok_or_else(|| Error::Config {
            receiver: name.clone(),
            why: "no webhook URL (OPSBOOK_SLACK_WEBHOOK_URL)".to_owned(),
        })?;
        let url = secret_url(&name, &url)?;
        let client = match self.client {
            Some(c) => c,
            None => http_client(&name)?,
        };
        Ok(SlackNotifier {
            name,
            url: url.url,
            target: url.target,
            secrets: url.secrets,
            timeout: self.timeout.unwrap_or_else(default_timeout),
            retry: self.retry.unwrap_or_else(crate::retry::delivery_policy),
            client,
        })
    }
}

/// Posts notifications to a Slack incoming webhook: a coloured attachment holding a header,
/// the Markdown body (as Slack mrkdwn), a fields section and links.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ops_core::{Notifier, incident::Severity, notify::Notification};
/// let slack = ops_notify::SlackNotifier::builder().with_webhook_url("https://hooks.slack.com/services/..".into()).build()?;
/// slack.send(&Notification::new(Severity::Medium, "p95 above 2s", "checkout is slow")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SlackNotifier {
    name: String,
    url: url::Url,
    target: String,
    secrets: Redactor,
    timeout: Duration,
    retry: RetryPolicy,
    client: reqwest::Client,
}

impl fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("name", &self.name)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The attachment colour of a severity (green once resolved).
fn colour(n: &Notification) -> &'static str {
    if n.resolved {
        return "#2EB67D";
    }
    match n.severity {
        Severity::Critical => "#D00000",
        Severity::High => "#FF6F00",
        Severity::Medium => "#FFC400",
        Severity::Low => "#439FE0",
    }
}

/// Escapes `&`, `<`, `>` as Slack requires (so `<!channel>`, `<!here>`, `<@U…>` and
/// `<#C…>` in the text are shown, never acted on).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Whether `url` may become a Slack link: `http(s)://` or `mailto:` and nothing that could
/// end the `<url|text>` form early. Anything else (`!channel`, `@U123`, `#C1`) stays text.
fn linkable(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:"))
        && !url
            .chars()
            .any(|c| matches!(c, '<' | '>' | '|') || c.is_whitespace() || c.is_control())
}

/// A `<url|text>` link (`&` in the URL escaped as Slack requires), or escaped text when
/// `url` is not [`linkable`].
fn link(url: &str, text: &str) -> String {
    if linkable(url) {
        format!("<{}|{}>", escape(url), escape(text))
    } else {
        escape(&format!("{text} ({url})"))
    }
}

/// Markdown to Slack mrkdwn: escapes `&`, `<`, `>` as Slack requires, turns `**bold**` into
/// `*bold*` and `[text](url)` into `<url|text>` for web and mail links only, so no text can
/// become a mention (`<!channel|…>`, `<@U…|…>`).
fn mrkdwn(md: &str) -> String {
    let bold = md.replace("**", "*");
    let mut out = String::with_capacity(bold.len());
    let mut rest = bold.as_str();
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let found = after.find("](").and_then(|close| {
            let url_part = &after[close + 2..];
            url_part
                .find(')')
                .map(|end| (close, &url_part[..end], close + 2 + end + 1))
        });
        match found {
            Some((close, url, consumed)) if linkable(url) && !after[..close].contains('[') => {
                out.push_str(&escape(&rest[..open]));
                out.push_str(&link(url, &after[..close]));
                rest = &after[consumed..];
            }
            _ => {
                out.push_str(&escape(&rest[..=open]));
                rest = after;
            }
        }
    }
    out.push_str(&escape(rest));
    out
}

/// A mrkdwn text object taken verbatim: Slack links, mentions and channel names only where
/// we wrote the `<…>` form ourselves, never by guessing from the text.
fn text_object(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// The webhook payload for `n` (public for receivers and tests).
///
/// # Examples
/// ```
/// use ops_core::{incident::Severity, notify::Notification};
/// let p = ops_notify::slack_payload(&Notification::new(Severity::Critical, "api down", "**all** pods"));
/// assert_eq!(p["attachments"][0]["color"], "#D00000");
/// assert_eq!(p["attachments"][0]["blocks"][0]["type"], "header");
/// ```
pub fn slack_payload(n: &Notification) -> Value {
    let state = if n.resolved {
        "Resolved".to_owned()
    } else {
        n.status.to_string()
    };
    // plain_text: Slack shows it as typed and acts on nothing in it.
    let header = truncate(
        &format!("{} {} · {}", n.severity_label, state, n.title),
        150,
    );
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": header, "emoji": true}
    })];
    if !n.body.trim().is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": text_object(&truncate(&mrkdwn(&n.body), 3000))
        }));
    }
    let mut fields = vec![
        text_object(&format!("*Severity*\n{}", n.severity_label)),
        text_object(&format!("*Status*\n{state}")),
    ];
    if let Some(id) = &n.incident_id {
        fields.push(text_object(&format!("*Incident*\n{}", escape(id))));
    }
    for (k, v) in &n.fields {
        if fields.len() == 10 {
            break;
        }
        fields.push(text_object(&truncate(
            &format!("*{}*\n{}", escape(k), mrkdwn(v)),
            2000,
        )));
    }
    blocks.push(json!({"type": "section", "fields": fields}));
    if !n.links.is_empty() {
        let links: Vec<String> = n
            .links
            .iter()
            .map(|(title, url)| link(url, title))
            .collect();
        blocks.push(json!({
            "type": "context",
            "elements": [text_object(&truncate(&links.join(" · "), 3000))]
        }));
    }
    json!({
        // The notification text (pushes, previews) is mrkdwn too: escaped like the rest.
        "text": truncate(&escape(&format!("[{}] {state}: {}", n.severity_label, n.title)), 3000),
        "attachments": [{"color": colour(n), "blocks": blocks}]
    })
}

impl SlackNotifier {
    /// A builder.
    pub fn builder() -> SlackNotifierBuilder {
        SlackNotifierBuilder::default()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "slack", target = %self.target))]
    async fn send(&self, n: &Notification) -> std::result::Result<(), OpsError> {
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
            body: slack_payload(n).to_string().into_bytes(),
            timeout: self.timeout,
        };
        post(&self.client, delivery, self.retry).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_escapes_and_converts_links() {
        assert_eq!(
            mrkdwn("**a** & [docs](https://x.io/a) <b>"),
            "*a* &amp; <https://x.io/a|docs> &lt;b&gt;"
        );
        assert_eq!(mrkdwn("[not a link"), "[not a link");
        assert_eq!(
            mrkdwn("[a <b>](https://x.io)"),
            "<https://x.io|a &lt;b&gt;>"
        );
    }

    #[test]
    fn no_text_becomes_a_mention() {
        for (md, shown) in [
            ("[ping](!channel)", "[ping](!channel)"),
            ("[x](@U012AB)", "[x](@U012AB)"),
            (
                "<!here> <@U1> <#C1> <!subteam^S1>",
                "&lt;!here&gt; &lt;@U1&gt; &lt;#C1&gt; &lt;!subteam^S1&gt;",
            ),
            (
                "[x](https://a|<!channel>)",
                "[x](https://a|&lt;!channel&gt;)",
            ),
        ] {
            assert_eq!(mrkdwn(md), shown, "{md}");
        }
        assert_eq!(link("!here", "t"), "t (!here)");
        assert_eq!(
            link("https://ok.example/a", "<!channel>"),
            "<https://ok.example/a|&lt;!channel&gt;>"
        );
    }
}
