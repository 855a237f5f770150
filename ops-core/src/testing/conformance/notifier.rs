//! Conformance tests for [`Notifier`] backends.

use crate::incident::{IncidentStatus, Severity};
use crate::notify::{Notification, Notifier};

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
    let trigger = Notification::new(
        Severity::High,
        "conformance: api down",
        "health checks **fail**",
    )
    .with_incident("INC-conformance")
    .with_field("service", "api");
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
