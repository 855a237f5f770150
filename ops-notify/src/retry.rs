//! Delivery with retries: 429 and 5xx answers and transport failures are retried with
//! exponential backoff, honouring `Retry-After` (seconds or an HTTP date).

use std::time::Duration;

use ops_core::text::Redactor;
use reqwest::header::HeaderMap;

use crate::error::{Error, Result};

/// How much of a receiver's answer is read (the rest is dropped unread).
const MAX_ANSWER: usize = 64 * 1024;

/// How a notifier retries one delivery.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let p = ops_notify::RetryPolicy::default().with_max_attempts(2).with_base_backoff(Duration::from_millis(100));
/// assert_eq!(p.max_attempts, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, at least 1 (default 4).
    pub max_attempts: u32,
    /// Wait after the first failure when the receiver gives no `Retry-After`; doubles each
    /// time (default 500 ms).
    pub base_backoff: Duration,
    /// Longest computed backoff (default 30 s).
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a longer one gives up at once (default 60 s).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Set the number of attempts.
    #[must_use]
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Set the first backoff.
    #[must_use]
    pub fn with_base_backoff(mut self, d: Duration) -> Self {
        self.base_backoff = d;
        self
    }

    /// Set the longest honoured `Retry-After`.
    #[must_use]
    pub fn with_max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }
}

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP date.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// assert_eq!(ops_notify::retry_after("7"), Some(Duration::from_secs(7)));
/// assert_eq!(ops_notify::retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
/// assert_eq!(ops_notify::retry_after("soon"), None);
/// ```
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let left = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// One outgoing request, rebuilt for every attempt.
#[derive(Debug)]
pub(crate) struct Delivery<'a> {
    pub(crate) receiver: &'a str,
    pub(crate) target: &'a str,
    pub(crate) url: &'a url::Url,
    /// Every secret the request carries, stripped from what the receiver answers.
    pub(crate) secrets: &'a Redactor,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) timeout: Duration,
}

/// Reads at most [`MAX_ANSWER`] bytes of an answer; `true` when that was all of it. A body
/// that fails midway counts as cut short.
async fn read_answer(mut resp: reqwest::Response) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() >= room {
                    return (body, false);
                }
            }
            Ok(None) => return (body, true),
            Err(_) => return (body, false),
        }
    }
}

/// POSTs the delivery, retrying per `policy`; returns the status and body of the success.
pub(crate) async fn post(
    client: &reqwest::Client,
    d: Delivery<'_>,
    policy: RetryPolicy,
) -> Result<(u16, Vec<u8>)> {
    let mut backoff = policy.base_backoff;
    let attempts = policy.max_attempts.max(1);
    for attempt in 1..=attempts {
        let sent = client
            .post(d.url.clone())
            .headers(d.headers.clone())
            .body(d.body.clone())
            .timeout(d.timeout)
            .send()
            .await;
        let wait = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let asked = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after);
                let (body, complete) = read_answer(resp).await;
                if (200..300).contains(&status) {
                    return Ok((status, body));
                }
                let retryable = status == 429 || status >= 500;
                let too_long = asked.is_some_and(|a| a > policy.max_retry_after);
                if !retryable || attempt == attempts || too_long {
                    return Err(Error::Status {
                        receiver: d.receiver.to_owned(),
                        target: d.target.to_owned(),
                        status,
                        attempts: attempt,
                        message: d.secrets.peer_text(&body, complete),
                    });
                }
                tracing::debug!(
                    receiver = d.receiver,
                    status,
                    attempt,
                    "delivery refused, retrying"
                );
                asked.unwrap_or(backoff)
            }
            Err(e) => {
                let retryable = e.is_timeout() || e.is_connect() || e.is_request();
                if !retryable || attempt == attempts {
                    return Err(Error::Transport {
                        receiver: d.receiver.to_owned(),
                        target: d.target.to_owned(),
                        attempts: attempt,
                        source: e.without_url(),
                    });
                }
                tracing::debug!(receiver = d.receiver, attempt, "delivery failed, retrying");
                backoff
            }
        };
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
    // The loop returns on its last attempt; this is only reached with zero attempts, which
    // `max(1)` rules out.
    Err(Error::Config {
        receiver: d.receiver.to_owned(),
        why: "no delivery attempt was made".to_owned(),
    })
}
