//! Conformance tests for [`Platform::lockdown`], [`Platform::lockdowns`] and
//! [`Platform::lift_lockdown`] (issue 14 §lockdown): the same checks run against the fake and
//! every backend that can lock down.

use crate::error::ErrorKind;
use crate::platform::{LockdownId, LockdownOptions, LockdownScope, Platform};
use crate::refs::WorkloadRef;

/// Lock `workload` down as lockdown `id`, find it from the platform, refuse the same id twice,
/// lift it, find it gone, refuse a second lift, and find the workload still there.
///
/// # Panics
/// When a step does not behave so.
pub async fn isolate_list_lift(platform: &dyn Platform, workload: &WorkloadRef, id: &LockdownId) {
    let ns = workload.namespace();
    let scope = LockdownScope::workloads(vec![workload.clone()])
        .unwrap_or_else(|e| panic!("{}", e.chain()));
    let made = platform
        .lockdown(&scope, LockdownOptions::default().with_id(id.clone()))
        .await
        .unwrap_or_else(|e| panic!("lockdown failed: {}", e.chain()));
    assert_eq!(&made.id, id);
    assert_eq!(made.scope, scope);
    assert!(
        !made.isolated.is_empty(),
        "a lockdown says what it isolated"
    );
    let listed = platform
        .lockdowns(ns)
        .await
        .unwrap_or_else(|e| panic!("lockdowns failed: {}", e.chain()));
    let found = listed
        .iter()
        .find(|l| &l.id == id)
        .unwrap_or_else(|| panic!("lockdown {id} is listed: {listed:?}"));
    assert_eq!(found.scope, scope, "the platform's record keeps the scope");
    let twice = platform
        .lockdown(&scope, LockdownOptions::default().with_id(id.clone()))
        .await
        .err()
        .map(|e| e.kind());
    assert_eq!(twice, Some(ErrorKind::Conflict), "an id is used once");
    let undone = platform
        .lift_lockdown(ns, id)
        .await
        .unwrap_or_else(|e| panic!("lift failed: {}", e.chain()));
    assert_eq!(&undone.id, id);
    let after = platform
        .lockdowns(ns)
        .await
        .unwrap_or_else(|e| panic!("lockdowns failed: {}", e.chain()));
    assert!(after.iter().all(|l| &l.id != id), "lifted: {after:?}");
    let again = platform.lift_lockdown(ns, id).await.err().map(|e| e.kind());
    assert_eq!(
        again,
        Some(ErrorKind::NotFound),
        "a lifted lockdown is gone"
    );
    platform
        .workload(workload)
        .await
        .unwrap_or_else(|e| panic!("a lockdown deleted {workload}: {}", e.chain()));
}
