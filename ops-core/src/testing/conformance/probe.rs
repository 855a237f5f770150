//! Conformance tests for [`Probe`] backends.

use crate::probe::{Outcome, Probe};

/// A probe of a healthy target reports `Up` with its latency and a name fit for reports.
///
/// # Panics
/// When it does not.
pub async fn healthy_target_is_up(probe: &dyn Probe) {
    assert!(!probe.name().is_empty(), "a probe has a name");
    assert!(
        !probe.name().contains('@'),
        "a probe name never carries credentials"
    );
    let r = probe
        .check()
        .await
        .unwrap_or_else(|e| panic!("check failed: {}", e.chain()));
    assert_eq!(r.outcome, Outcome::Up, "healthy target: {}", r.detail);
    assert!(r.failed().next().is_none(), "no failed observation when up");
}

/// A probe of a failing target reports `Down` (as a result, not an error) and says why.
///
/// # Panics
/// When it does not.
pub async fn failing_target_is_down(probe: &dyn Probe) {
    let r = probe.check().await.unwrap_or_else(|e| {
        panic!(
            "a down target must be a result, not an error: {}",
            e.chain()
        )
    });
    assert_ne!(r.outcome, Outcome::Up);
    assert!(!r.detail.is_empty(), "a down result says why");
}
