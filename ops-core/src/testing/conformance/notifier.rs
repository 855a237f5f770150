//! Conformance tests for [`Notifier`] backends.

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
