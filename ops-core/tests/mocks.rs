//! Where the order or absence of calls is the point, mockall mocks make it strict.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;

use mockall::predicate::always;
use ops_core::OpsError;
use ops_core::platform::{MockPlatform, PlatformCapabilities, WorkloadStatus};
use ops_core::probe::{MockProbe, ProbeResult};
use ops_core::run::{RunContext, RunOutcome};
use ops_core::runbooks::{Targets, api_down};

/// A strict mock: any call not expected here (a restart, a rollback, a scale) panics.
#[tokio::test(start_paused = true)]
async fn api_down_dry_run_only_reads_from_the_platform() {
    let api: ops_core::WorkloadRef = "prod/deployment/api".parse().unwrap();
    let mut platform = MockPlatform::new();
    let status = WorkloadStatus::crash_looping(api.clone(), 2);
    platform.expect_backend().return_const("mock");
    platform
        .expect_capabilities()
        .return_const(PlatformCapabilities::default());
    platform
        .expect_workload()
        .with(always())
        .returning(move |_| Ok(status.clone()));
    platform.expect_logs().returning(|_, _| Ok(Vec::new()));
    platform.expect_events().returning(|_, _| Ok(Vec::new()));
    platform.expect_revisions().returning(|_| {
        Err(OpsError::unsupported(
            "mock",
            "revisions",
            "api",
            "no history",
        ))
    });
    let mut probe = MockProbe::new();
    probe.expect_name().return_const("api-health".to_owned());
    probe
        .expect_check()
        .times(1)
        .returning(|| Ok(ProbeResult::down("503")));
    let targets = Targets::new(Arc::new(platform), api).with_probe(Arc::new(probe));
    let report = api_down(
        &RunContext::builder().allow_volatile_journal().build(),
        &targets,
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
}
