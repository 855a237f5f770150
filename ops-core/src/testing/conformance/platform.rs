//! Conformance tests for [`Platform`] backends.

use std::time::Duration;

use crate::error::ErrorKind;
use crate::platform::{
    LogFilter, LogOptions, Platform, PlatformExt as _, RestartOptions, RolloutOptions,
};
use crate::refs::WorkloadRef;

mod suite;
pub use suite::*;

/// The workload is listed, its status names its instances, and an unknown one is `NotFound`.
///
/// # Panics
/// When it is not.
pub async fn status_lists_instances(platform: &dyn Platform, workload: &WorkloadRef) {
    let listed = platform
        .list_workloads(workload.namespace())
        .await
        .unwrap_or_else(|e| panic!("list failed: {}", e.chain()));
    assert!(
        listed.contains(workload),
        "{workload} is listed in its namespace: {listed:?}"
    );
    let status = platform
        .workload(workload)
        .await
        .unwrap_or_else(|e| panic!("workload failed: {}", e.chain()));
    assert_eq!(&status.workload, workload);
    assert!(
        !status.instances.is_empty(),
        "a running workload has instances"
    );
    let missing = WorkloadRef::new(
        workload.namespace().as_str(),
        workload.kind(),
        "opsbook-no-such-workload",
    )
    .unwrap_or_else(|e| panic!("{}", e.chain()));
    let err = platform.workload(&missing).await.err().map(|e| e.kind());
    assert_eq!(
        err,
        Some(ErrorKind::NotFound),
        "an unknown workload is NotFound"
    );
}

/// A rolling restart is accepted and the workload is rolled out and healthy within `deadline`.
///
/// # Panics
/// When it is not.
pub async fn restart_then_ready(
    platform: &dyn Platform,
    workload: &WorkloadRef,
    deadline: Duration,
) {
    platform
        .rollout_restart(workload, RestartOptions::default())
        .await
        .unwrap_or_else(|e| panic!("restart failed: {}", e.chain()));
    let opts = RolloutOptions::default()
        .with_timeout(deadline)
        .with_poll_interval(Duration::from_millis(200));
    let status = platform
        .wait_rolled_out(workload, opts)
        .await
        .unwrap_or_else(|e| panic!("rollout failed: {}", e.chain()));
    assert!(status.done);
    let after = platform
        .workload(workload)
        .await
        .unwrap_or_else(|e| panic!("workload failed: {}", e.chain()));
    assert!(after.is_healthy(), "healthy after the rollout: {after:?}");
}

/// A log filter only lets matching lines through, and `tail` bounds each instance.
///
/// # Panics
/// When it does not.
pub async fn logs_are_filtered_and_tailed(platform: &dyn Platform, workload: &WorkloadRef) {
    let filter = LogFilter::new("(?i)error").unwrap_or_else(|e| panic!("{}", e.chain()));
    let lines = platform
        .logs(
            workload,
            LogOptions::default()
                .with_filter(filter.clone())
                .with_tail(1000),
        )
        .await
        .unwrap_or_else(|e| panic!("logs failed: {}", e.chain()));
    assert!(
        lines.iter().all(|l| filter.is_match(&l.text)),
        "every line passes the filter"
    );
    let status = platform
        .workload(workload)
        .await
        .unwrap_or_else(|e| panic!("workload failed: {}", e.chain()));
    let tailed = platform
        .logs(workload, LogOptions::default().with_tail(1))
        .await
        .unwrap_or_else(|e| panic!("logs failed: {}", e.chain()));
    assert!(
        tailed.len() <= status.instances.len(),
        "tail 1 gives at most one line per instance"
    );
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| l.timestamp);
    assert_eq!(
        sorted, lines,
        "lines of all instances are merged in time order"
    );
}
