//! Conformance tests for [`Notifier`] backends.

use std::time::Duration;

use crate::error::{ErrorKind, OpsError};
use crate::incident::{IncidentStatus, Severity};
use crate::notify::{Notification, Notifier};

const TITLE: &str = "conformance: api down";
const DEDUP: &str = "INC-conformance";

fn trigger() -> Notification {
    Notification::new(Severity::High, TITLE, "health checks **fail**")
        .with_incident(DEDUP)
        .with_field("service", "api")
}

/// A trigger and its resolution are both delivered, and the name is fit for reports.
///
/// # Panics
/// When delivery fails or the name leaks a URL.
pub async fn delivers_trigger_and_resolve(notifier: &dyn Notifier) {
    let name = notifier.name();
    assert!(
        !name.contains("://") && !name.contains('@'),
        "a notifier name never carries its URL or key"
    );
    let trigger = trigger();
    notifier
        .send(&trigger)
        .await
        .unwrap_or_else(|e| panic!("send failed: {}", e.chain()));
    let resolve = trigger.with_status(IncidentStatus::Resolved);
    notifier
        .send(&resolve)
        .await
        .unwrap_or_else(|e| panic!("send failed: {}", e.chain()));
}

/// The deliveries in `after` that were not in `before` (as a multiset: an inbox merged from
/// several receivers need not keep arrival order).
fn arrived(before: &[String], after: &[String]) -> Vec<String> {
    let mut old: Vec<&String> = before.iter().collect();
    let mut new = Vec::new();
    for d in after {
        match old.iter().position(|o| *o == d) {
            Some(i) => {
                old.swap_remove(i);
            }
            None => new.push(d.clone()),
        }
    }
    new
}

/// What arrived at the receiver, checked on the receiver's side: `inbox` returns every
/// delivery the receiver got so far, each as text (a request body, a log line). The trigger
/// arrives (at least one new delivery, each naming the title and the dedup key
/// `INC-conformance`), then the resolution (new deliveries, each with the dedup key, saying
/// "resolve" in some form, none equal to a trigger delivery), and no delivery holds any of
/// `secrets` (webhook URL paths, signing secrets: what the receiver must never be sent).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::testing::{RecordingNotifier, conformance};
/// let n = RecordingNotifier::default();
/// let inbox = || n.sent().iter().map(|m| format!("{} {} {:?}", m.title, m.dedup_key, m.status)).collect();
/// conformance::notifier::receiver_gets_trigger_then_resolve(&n, &inbox, &[]).await;
/// # });
/// ```
///
/// # Panics
/// When the receiver did not get what was sent, or got a secret.
pub async fn receiver_gets_trigger_then_resolve(
    notifier: &dyn Notifier,
    inbox: &(dyn Fn() -> Vec<String> + Sync),
    secrets: &[&str],
) {
    let before = inbox();
    let trigger = trigger();
    notifier
        .send(&trigger)
        .await
        .unwrap_or_else(|e| panic!("send failed: {}", e.chain()));
    let got = inbox();
    let triggered = arrived(&before, &got);
    assert!(
        !triggered.is_empty(),
        "{}: the receiver got nothing for the trigger",
        notifier.name()
    );
    for d in &triggered {
        assert!(d.contains(TITLE), "the trigger names its title: {d}");
        assert!(d.contains(DEDUP), "the trigger carries its dedup key: {d}");
    }
    notifier
        .send(&trigger.with_status(IncidentStatus::Resolved))
        .await
        .unwrap_or_else(|e| panic!("send failed: {}", e.chain()));
    let resolved = arrived(&got, &inbox());
    assert!(
        !resolved.is_empty(),
        "{}: the receiver got nothing for the resolution",
        notifier.name()
    );
    for d in &resolved {
        assert!(
            d.contains(DEDUP),
            "the resolution carries the dedup key: {d}"
        );
        assert!(
            d.to_lowercase().contains("resolve"),
            "the resolution says so: {d}"
        );
        assert!(
            !triggered.contains(d),
            "the resolution is not the trigger again: {d}"
        );
    }
    for d in triggered.iter().chain(&resolved) {
        for secret in secrets {
            assert!(!d.contains(secret), "a delivery holds a secret: {d}");
        }
    }
}

/// One answer a [`ScriptedReceiver`] gives to one delivery attempt. Exhaustive on purpose: a
/// new answer must be taught to every receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Answer with this HTTP status.
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: {retry_after_secs}`.
    TooManyRequests {
        /// The seconds `Retry-After` asks for.
        retry_after_secs: u64,
    },
    /// Take the request and never answer.
    Silence,
}

/// The receiver a notifier under test delivers to, answering as the checks script it.
///
/// # Examples
/// See `ops-notify/tests/receivers.rs` (HTTP receivers) and `ops-core/tests/support` (an
/// in-memory one).
pub trait ScriptedReceiver: Send + Sync {
    /// Answer the next attempts with `answers`, in order, replacing any answers left over;
    /// attempts after them are accepted (2xx).
    fn script(&self, answers: &[Answer]);
    /// Delivery attempts received so far, answered or not.
    fn requests(&self) -> usize;
}

/// How the notifier under test was built: the deadline of one attempt and of one send (every
/// attempt and wait together). The checks need at least two attempts, a deadline of at least
/// 3 s and a `Retry-After` of 1 s honoured.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::testing::conformance::notifier::DeliveryLimits;
/// let l = DeliveryLimits::new(Duration::from_millis(500), Duration::from_secs(3));
/// assert_eq!(l.deadline, Duration::from_secs(3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryLimits {
    /// Deadline of one attempt.
    pub attempt_timeout: Duration,
    /// Deadline of one send: every attempt and every wait.
    pub deadline: Duration,
}

impl DeliveryLimits {
    /// Limits.
    pub fn new(attempt_timeout: Duration, deadline: Duration) -> Self {
        Self {
            attempt_timeout,
            deadline,
        }
    }
}

/// Scheduling slack allowed past a deadline.
const SLACK: Duration = Duration::from_secs(1);

/// Sends the trigger after scripting `answers`; returns the result, the attempts the receiver
/// saw and the time taken. A send that outlives the deadline (and the slack) fails the check.
async fn send_scripted(
    notifier: &dyn Notifier,
    receiver: &dyn ScriptedReceiver,
    limits: DeliveryLimits,
    answers: &[Answer],
) -> (Result<(), OpsError>, usize, Duration) {
    receiver.script(answers);
    let before = receiver.requests();
    let started = tokio::time::Instant::now();
    let bound = limits.deadline + limits.attempt_timeout + SLACK;
    let result = tokio::time::timeout(bound, notifier.send(&trigger()))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{}: a send scripted {answers:?} outlived its deadline {:?}",
                notifier.name(),
                limits.deadline
            )
        });
    receiver.script(&[]);
    (result, receiver.requests() - before, started.elapsed())
}

/// Panics when the error's text (its chain or `Debug`) holds one of `secrets`.
fn assert_no_secret(err: &OpsError, secrets: &[&str]) {
    let (chain, debug) = (err.chain(), format!("{err:?}"));
    for secret in secrets {
        assert!(
            !chain.contains(secret) && !debug.contains(secret),
            "an error holds a secret: {chain}"
        );
    }
}

/// A 4xx answer (other than 429) is not retried and is typed by meaning: 400 is
/// `InvalidInput`, 401 and 403 are `PermissionDenied`; no error text holds `secrets`.
///
/// # Panics
/// When a client error is retried, succeeds, is typed otherwise or leaks a secret.
pub async fn client_errors_are_typed_and_not_retried(
    notifier: &dyn Notifier,
    receiver: &dyn ScriptedReceiver,
    limits: DeliveryLimits,
    secrets: &[&str],
) {
    for (status, kind) in [
        (400, ErrorKind::InvalidInput),
        (401, ErrorKind::PermissionDenied),
        (403, ErrorKind::PermissionDenied),
    ] {
        let (result, attempts, _) =
            send_scripted(notifier, receiver, limits, &[Answer::Status(status)]).await;
        let err = result.err().unwrap_or_else(|| {
            panic!(
                "{}: a {status} answer was taken as delivered",
                notifier.name()
            )
        });
        assert_eq!(err.kind(), kind, "{status} is {kind:?}: {}", err.chain());
        assert_eq!(attempts, 1, "a {status} answer is not retried");
        assert_no_secret(&err, secrets);
    }
}

/// A 5xx answer is retried: 503 then success is delivered within the deadline in two
/// attempts; a receiver answering 503 to every attempt is `Unavailable` after at least two
/// attempts, within the deadline, without `secrets` in the error.
///
/// # Panics
/// When a server error is not retried, or retried past the deadline.
pub async fn server_errors_are_retried_within_the_deadline(
    notifier: &dyn Notifier,
    receiver: &dyn ScriptedReceiver,
    limits: DeliveryLimits,
    secrets: &[&str],
) {
    let (result, attempts, took) =
        send_scripted(notifier, receiver, limits, &[Answer::Status(503)]).await;
    if let Err(e) = result {
        panic!(
            "{}: 503 then 200 must be delivered: {}",
            notifier.name(),
            e.chain()
        );
    }
    assert_eq!(attempts, 2, "a 503 is retried once, then delivered");
    assert!(
        took < limits.deadline,
        "delivered within the deadline: {took:?}"
    );

    let (result, attempts, took) =
        send_scripted(notifier, receiver, limits, &[Answer::Status(503); 64]).await;
    let err = result
        .err()
        .unwrap_or_else(|| panic!("{}: a receiver answering only 503 took it", notifier.name()));
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(attempts >= 2, "a 503 is retried: {attempts} attempts");
    assert!(
        took <= limits.deadline + SLACK,
        "retries stop at the deadline {:?}: {took:?}",
        limits.deadline
    );
    assert_no_secret(&err, secrets);
}

/// A 429 with `Retry-After: 1` is retried no sooner than a second later and delivered; a 429
/// asking for longer than the whole deadline is `Unavailable` at once (not waited for).
///
/// # Panics
/// When `Retry-After` is ignored, or waited for past the deadline.
pub async fn retry_after_is_honoured_up_to_the_deadline(
    notifier: &dyn Notifier,
    receiver: &dyn ScriptedReceiver,
    limits: DeliveryLimits,
    secrets: &[&str],
) {
    let asked = [Answer::TooManyRequests {
        retry_after_secs: 1,
    }];
    let (result, attempts, took) = send_scripted(notifier, receiver, limits, &asked).await;
    if let Err(e) = result {
        panic!(
            "{}: a 429 then 200 must be delivered: {}",
            notifier.name(),
            e.chain()
        );
    }
    assert_eq!(attempts, 2, "a 429 is retried once, then delivered");
    assert!(
        took >= Duration::from_secs(1),
        "the retry waited for Retry-After: 1, took {took:?}"
    );

    let too_long = [Answer::TooManyRequests {
        retry_after_secs: limits.deadline.as_secs() + 1,
    }];
    let (result, attempts, took) = send_scripted(notifier, receiver, limits, &too_long).await;
    let err = result.err().unwrap_or_else(|| {
        panic!(
            "{}: a Retry-After past the deadline must give up",
            notifier.name()
        )
    });
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert_eq!(
        attempts, 1,
        "a Retry-After past the deadline is not waited for"
    );
    assert!(
        took < Duration::from_secs(1),
        "giving up on a Retry-After past the deadline is at once: {took:?}"
    );
    assert_no_secret(&err, secrets);
}

/// A receiver that takes every request and never answers gives `Timeout` within the deadline
/// (after at least one attempt's timeout, or the deadline when that is shorter: no attempt
/// outlives the send's deadline), without `secrets` in the error.
///
/// # Panics
/// When the send succeeds, is typed otherwise or outlives the deadline.
pub async fn silence_is_timeout_within_the_deadline(
    notifier: &dyn Notifier,
    receiver: &dyn ScriptedReceiver,
    limits: DeliveryLimits,
    secrets: &[&str],
) {
    let (result, attempts, took) =
        send_scripted(notifier, receiver, limits, &[Answer::Silence; 64]).await;
    let err = result
        .err()
        .unwrap_or_else(|| panic!("{}: a receiver that never answers took it", notifier.name()));
    assert_eq!(err.kind(), ErrorKind::Timeout, "{}", err.chain());
    assert!(attempts >= 1, "the receiver was tried");
    assert!(
        took >= limits.attempt_timeout.min(limits.deadline),
        "an attempt waits for its timeout or the deadline: {took:?}"
    );
    assert!(
        took <= limits.deadline + SLACK,
        "the send gives up at its deadline {:?}: {took:?}",
        limits.deadline
    );
    assert_no_secret(&err, secrets);
}

/// Every failure check, for a notifier built with `limits` that delivers to `receiver`.
///
/// # Panics
/// When any fails.
pub async fn delivery_failures(
    notifier: &dyn Notifier,
    receiver: &dyn ScriptedReceiver,
    limits: DeliveryLimits,
    secrets: &[&str],
) {
    client_errors_are_typed_and_not_retried(notifier, receiver, limits, secrets).await;
    server_errors_are_retried_within_the_deadline(notifier, receiver, limits, secrets).await;
    retry_after_is_honoured_up_to_the_deadline(notifier, receiver, limits, secrets).await;
    silence_is_timeout_within_the_deadline(notifier, receiver, limits, secrets).await;
}
