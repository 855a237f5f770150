//! Delivery with retries: 429 and 5xx answers and transport failures are retried under
//! ops-core's [`RetryPolicy`], honouring `Retry-After` (seconds or an HTTP date).

use std::time::Duration;

use ops_core::text::Redactor;
use reqwest::header::HeaderMap;

use crate::error::{Error, Result};

/// How much of a receiver's answer is read (the rest is dropped unread).
const MAX_ANSWER: usize = 64 * 1024;

/// How a notifier retries one delivery: ops-core's policy, the workspace's one (exponential
/// backoff with full jitter, attempts, deadline, the receiver's `Retry-After` honoured up to
/// [`RetryPolicy::max_retry_after`]), re-exported here where it has always been named.
pub use ops_core::run::RetryPolicy;
/// The wait a `Retry-After` header asks for (ops-core's parser, re-exported).
pub use ops_core::run::retry_after;

/// The notifiers' default policy: 4 attempts, waits from 500 ms doubling up to 30 s with full
/// jitter, a `Retry-After` of up to 60 s honoured.
///
/// # Examples
/// ```
/// let p = ops_notify::delivery_policy();
/// assert_eq!(p.max_attempts, 4);
/// assert_eq!(p.ceiling(1), std::time::Duration::from_millis(500));
/// ```
pub fn delivery_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(4)
        .with_initial_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_max_retry_after(Duration::from_mins(1))
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
/// Each attempt ends at `d.timeout` or at the policy's deadline, whichever comes first.
pub(crate) async fn post(
    client: &reqwest::Client,
    d: Delivery<'_>,
    policy: RetryPolicy,
) -> Result<(u16, Vec<u8>)> {
    let start = tokio::time::Instant::now();
    let mut attempt = 1;
    loop {
        // An attempt ends by the policy's deadline too: no attempt outlives the send's budget.
        let timeout = policy
            .deadline
            .map_or(d.timeout, |deadline| {
                d.timeout.min(deadline.saturating_sub(start.elapsed()))
            })
            .max(Duration::from_millis(1));
        let sent = client
            .post(d.url.clone())
            .headers(d.headers.clone())
            .body(d.body.clone())
            .timeout(timeout)
            .send()
            .await;
        match sent {
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
                let wait = retryable
                    .then(|| policy.next_wait(attempt, asked, start.elapsed()))
                    .flatten();
                let Some(wait) = wait else {
                    return Err(Error::Status {
                        receiver: d.receiver.to_owned(),
                        target: d.target.to_owned(),
                        status,
                        attempts: attempt,
                        message: d.secrets.peer_text(&body, complete),
                    });
                };
                tracing::debug!(
                    receiver = d.receiver,
                    status,
                    attempt,
                    "delivery refused, retrying"
                );
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                let retryable = e.is_timeout() || e.is_connect() || e.is_request();
                let wait = retryable
                    .then(|| policy.next_wait(attempt, None, start.elapsed()))
                    .flatten();
                let Some(wait) = wait else {
                    return Err(Error::Transport {
                        receiver: d.receiver.to_owned(),
                        target: d.target.to_owned(),
                        attempts: attempt,
                        source: e.without_url(),
                    });
                };
                tracing::debug!(receiver = d.receiver, attempt, "delivery failed, retrying");
                tokio::time::sleep(wait).await;
            }
        }
        attempt += 1;
    }
}
