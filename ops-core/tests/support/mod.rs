//! An in-memory receiver the notifier conformance checks can script, and a notifier that
//! delivers to it under ops-core's `RetryPolicy`: the shape every HTTP notifier has, without
//! HTTP. Its flaws switch off one behaviour each, for the broken fakes of
//! `conformance_fails.rs`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ops_core::notify::{Notification, Notifier};
use ops_core::run::RetryPolicy;
use ops_core::testing::conformance::notifier::{Answer, DeliveryLimits, ScriptedReceiver};
use ops_core::{ErrorKind, OpsError};

/// The secret the notifier's URL carries: no error may show it.
pub(crate) const SECRET: &str = "SECRETPATH";

/// A receiver in memory: scripted answers, then 2xx.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    script: Mutex<VecDeque<Answer>>,
    requests: AtomicUsize,
}

impl Inbox {
    /// Take one attempt: its answer, or `None` for 2xx.
    fn answer(&self) -> Option<Answer> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.script.lock().unwrap().pop_front()
    }
}

impl ScriptedReceiver for Inbox {
    fn script(&self, answers: &[Answer]) {
        *self.script.lock().unwrap() = answers.iter().copied().collect();
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Behaviours a broken notifier drops, one each.
#[derive(Debug, Clone, Copy, Default)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one switch per broken behaviour"
)]
pub(crate) struct Flaws {
    /// Waits its own backoff instead of what `Retry-After` asks.
    pub(crate) ignores_retry_after: bool,
    /// Retries 4xx answers as if they were 5xx.
    pub(crate) retries_client_errors: bool,
    /// Calls every failure `Backend`.
    pub(crate) untyped: bool,
    /// Puts its URL in errors.
    pub(crate) shows_url: bool,
    /// Gives no attempt a timeout (waits for an answer forever).
    pub(crate) no_timeout: bool,
}

/// A notifier delivering to an [`Inbox`] under a retry policy with a deadline.
#[derive(Debug)]
pub(crate) struct InboxNotifier {
    inbox: Arc<Inbox>,
    policy: RetryPolicy,
    limits: DeliveryLimits,
    flaws: Flaws,
}

impl InboxNotifier {
    /// The notifier, its inbox and its limits: 4 attempts, 100 ms first wait, 500 ms per
    /// attempt, 3 s per send.
    pub(crate) fn new(flaws: Flaws) -> (Self, Arc<Inbox>, DeliveryLimits) {
        let limits = DeliveryLimits::new(Duration::from_millis(500), Duration::from_secs(3));
        let inbox = Arc::new(Inbox::default());
        let policy = RetryPolicy::default()
            .with_max_attempts(4)
            .with_initial_delay(Duration::from_millis(100))
            .with_deadline(limits.deadline);
        let notifier = Self {
            inbox: Arc::clone(&inbox),
            policy,
            limits,
            flaws,
        };
        (notifier, inbox, limits)
    }

    fn error(&self, kind: ErrorKind, why: String) -> OpsError {
        let kind = if self.flaws.untyped {
            ErrorKind::Backend
        } else {
            kind
        };
        let target = if self.flaws.shows_url {
            format!("https://hooks.example/{SECRET}")
        } else {
            "hooks.example:443".to_owned()
        };
        OpsError::new(kind, "inbox", "send", target).with_detail(why)
    }
}

#[async_trait]
impl Notifier for InboxNotifier {
    fn name(&self) -> &'static str {
        "inbox"
    }

    async fn send(&self, _n: &Notification) -> Result<(), OpsError> {
        let started = tokio::time::Instant::now();
        let mut attempt = 1;
        loop {
            let elapsed = started.elapsed();
            let (status, asked) = match self.inbox.answer() {
                None => return Ok(()),
                Some(Answer::Status(s)) => (s, None),
                Some(Answer::TooManyRequests { retry_after_secs }) => {
                    (429, Some(Duration::from_secs(retry_after_secs)))
                }
                Some(Answer::Silence) => {
                    if self.flaws.no_timeout {
                        std::future::pending::<()>().await;
                    }
                    let left = self.limits.deadline.saturating_sub(elapsed);
                    tokio::time::sleep(self.limits.attempt_timeout.min(left)).await;
                    match self.policy.next_wait(attempt, None, started.elapsed()) {
                        Some(wait) => {
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            continue;
                        }
                        None => {
                            return Err(self.error(ErrorKind::Timeout, "no answer".to_owned()));
                        }
                    }
                }
            };
            let retryable = status == 429 || status >= 500 || self.flaws.retries_client_errors;
            let asked = asked.filter(|_| !self.flaws.ignores_retry_after);
            let wait = retryable
                .then(|| self.policy.next_wait(attempt, asked, started.elapsed()))
                .flatten();
            let Some(wait) = wait else {
                let kind = match status {
                    400 => ErrorKind::InvalidInput,
                    401 | 403 => ErrorKind::PermissionDenied,
                    429 | 500..=599 => ErrorKind::Unavailable,
                    _ => ErrorKind::Backend,
                };
                return Err(self.error(kind, format!("answered {status} after {attempt} attempts")));
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}
