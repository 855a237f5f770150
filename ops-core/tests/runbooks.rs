//! Runbooks over the fakes: what they decide, do, plan and report.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;
use std::time::Duration;

use ops_core::database::Session;
use ops_core::incident::{IncidentStatus, Severity};
use ops_core::journal::{JournalEvent, MemoryJournal};
use ops_core::platform::{
    InstanceStatus, LogLine, PlatformEvent, Termination, WaitingReason, WorkloadStatus,
};
use ops_core::probe::ProbeResult;
use ops_core::run::{
    ActionStatus, ApprovalPolicy, Mode, Report, RetryPolicy, RunContext, RunOutcome,
};
use ops_core::runbooks::{RunbookConfig, Targets, api_down, restart_and_verify};
use ops_core::testing::{
    FakeCache, FakeDatabase, FakePlatform, Healing, RecordingNotifier, ScriptedProbe,
};
use ops_core::{ErrorKind, WorkloadRef};

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

struct Harness {
    platform: Arc<FakePlatform>,
    notifier: Arc<RecordingNotifier>,
    journal: Arc<MemoryJournal>,
}

impl Harness {
    fn new(platform: FakePlatform) -> Self {
        Self {
            platform: Arc::new(platform),
            notifier: Arc::new(RecordingNotifier::default()),
            journal: Arc::new(MemoryJournal::default()),
        }
    }

    fn ctx(&self, mode: Mode, approver: ApprovalPolicy) -> RunContext {
        RunContext::builder()
            .allow_volatile_journal()
            .mode(mode)
            .approver(approver)
            .journal(Arc::clone(&self.journal) as _)
            .notifier(Arc::clone(&self.notifier) as _)
            .retry(RetryPolicy::default().with_jitter(false))
            .build()
    }

    fn execute(&self) -> RunContext {
        self.ctx(Mode::Execute, ApprovalPolicy::approve_all("test"))
    }

    fn targets(&self) -> Targets {
        let probe = ScriptedProbe::tracking("api-health", Arc::clone(&self.platform), api());
        Targets::new(Arc::clone(&self.platform) as _, api())
            .with_probe(Arc::new(probe))
            .with_config(RunbookConfig::default().with_verify(
                3,
                Duration::from_secs(5),
                Duration::from_secs(60),
            ))
    }
}

fn steps(report: &Report) -> Vec<String> {
    report.timeline.iter().map(|r| r.step.clone()).collect()
}

fn taken(report: &Report) -> Vec<String> {
    report
        .actions_with(ActionStatus::Taken)
        .map(|a| a.step.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn restart_and_verify_recovers_a_workload_that_a_restart_heals() {
    let h = Harness::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::crash_looping(api(), 3))
            .ready_after(2),
    );
    let report = restart_and_verify(&h.execute(), &h.targets())
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Recovered);
    assert_eq!(
        h.platform.mutations(),
        ["rollout_restart prod/deployment/api"]
    );
    assert_eq!(
        steps(&report),
        [
            "workload_status",
            "previous_revision",
            "restart",
            "wait_rolled_out",
            "verify_health"
        ]
    );
    let restart = &report.actions[0];
    assert_eq!(
        restart.changes,
        [
            "replace instance api-0",
            "replace instance api-1",
            "replace instance api-2"
        ]
    );
}

/// `restart_and_verify` in execute mode with short deadlines; asserts it recovered.
async fn restart_and_verify_recovers(h: &Harness) -> ops_core::run::Report {
    let targets = h.targets().with_config(
        RunbookConfig::default()
            .with_rollout_timeout(Duration::from_secs(30))
            .with_verify(3, Duration::from_secs(5), Duration::from_secs(60)),
    );
    let report = restart_and_verify(&h.execute(), &targets).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    report
}

#[tokio::test(start_paused = true)]
async fn restart_and_verify_rolls_back_when_the_restart_does_not_help() {
    let platform = FakePlatform::default()
        .with_workload(WorkloadStatus::crash_looping(api(), 2))
        .with_previous_revision(&api(), 0, vec!["api:1.4.1".to_owned()])
        .restart_heals(Healing::StaysBroken);
    let h = Harness::new(platform);
    let report = restart_and_verify_recovers(&h).await;
    assert_eq!(
        h.platform.mutations(),
        [
            "rollout_restart prod/deployment/api",
            "rollback prod/deployment/api to 0"
        ]
    );
    assert_eq!(taken(&report), ["restart", "rollback"]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("did not roll out"))
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("recovered by rolling back to revision 0"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_that_fails_because_the_instance_never_became_ready_is_followed_by_a_rollback() {
    // Compose's rolling restart stops with a conflict at a container that crashes again.
    let platform = FakePlatform::default()
        .with_workload(WorkloadStatus::crash_looping(api(), 2))
        .with_previous_revision(&api(), 0, vec!["api:1.4.1".to_owned()])
        .fail_next("rollout_restart", ErrorKind::Conflict);
    let h = Harness::new(platform);
    let report = restart_and_verify_recovers(&h).await;
    assert_eq!(
        h.platform.mutations(),
        ["rollback prod/deployment/api to 0"]
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title == "the restart did not bring prod/deployment/api back")
    );
}

#[tokio::test(start_paused = true)]
async fn restart_and_verify_is_unresolved_without_a_previous_revision() {
    let h = Harness::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::crash_looping(api(), 1))
            .restart_heals(Healing::StaysBroken),
    );
    let targets = h
        .targets()
        .with_config(RunbookConfig::default().with_rollout_timeout(Duration::from_secs(20)));
    let report = restart_and_verify(&h.execute(), &targets).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("no previous revision"))
    );
    assert_eq!(
        h.platform.mutations(),
        ["rollout_restart prod/deployment/api"]
    );
}

#[tokio::test(start_paused = true)]
async fn restart_and_verify_dry_run_changes_nothing_and_plans_restart_and_rollback() {
    let platform = FakePlatform::default()
        .with_workload(WorkloadStatus::crash_looping(api(), 2))
        .with_previous_revision(&api(), 0, vec!["api:1.4.1".to_owned()]);
    let h = Harness::new(platform);
    let report = restart_and_verify(
        &h.ctx(Mode::DryRun, ApprovalPolicy::approve_all("t")),
        &h.targets(),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert!(h.platform.mutations().is_empty());
    let planned: Vec<_> = report.actions_with(ActionStatus::Planned).collect();
    assert_eq!(planned.len(), 2);
    assert_eq!(
        planned[0].changes,
        ["replace instance api-0", "replace instance api-1"]
    );
    assert!(
        planned[1]
            .description
            .contains("to revision 0 if the restart does not recover it")
    );
    assert!(planned[1].changes[0].contains("api:1.4.1"));
}

#[tokio::test(start_paused = true)]
async fn restart_and_verify_needs_a_probe() {
    let h = Harness::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 1)));
    let targets = Targets::new(Arc::clone(&h.platform) as _, api());
    let err = restart_and_verify(&h.execute(), &targets)
        .await
        .unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::InvalidInput);
    assert!(h.platform.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn restart_failure_is_an_error_tagged_with_the_step_and_journaled() {
    let h = Harness::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::crash_looping(api(), 1))
            .fail_next("rollout_restart", ErrorKind::Conflict),
    );
    let err = restart_and_verify(&h.execute(), &h.targets())
        .await
        .unwrap_err();
    assert_eq!(err.error().step(), Some("restart"));
    assert_eq!(err.error().kind(), ErrorKind::Conflict);
    let events: Vec<JournalEvent> = h.journal.all().into_iter().map(|e| e.event).collect();
    assert!(events.contains(&JournalEvent::StepFailed {
        kind: ErrorKind::Conflict
    }));
    assert_eq!(
        events.last(),
        Some(&JournalEvent::RunFinished { ok: false })
    );
}

#[tokio::test(start_paused = true)]
async fn api_down_on_a_healthy_service_does_nothing_and_notifies_nobody() {
    let h = Harness::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 3)));
    let report = api_down(&h.execute(), &h.targets()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Healthy);
    assert!(h.platform.mutations().is_empty());
    assert!(h.notifier.sent().is_empty());
    assert!(report.severity.is_none());
}

#[tokio::test(start_paused = true)]
async fn api_down_restarts_an_unready_service_verifies_and_notifies_resolution() {
    let broken = WorkloadStatus::new(api(), 2)
        .with_instance(InstanceStatus::running("api-0").with_ready(false))
        .with_instance(InstanceStatus::running("api-1").with_ready(false));
    let platform = FakePlatform::default()
        .with_workload(broken)
        .ready_after(1)
        .with_logs(
            &api(),
            vec![
                LogLine::new(
                    "api-0".parse().unwrap(),
                    Some(jiff::Timestamp::from_second(10).unwrap()),
                    "ERROR upstream timeout id=17",
                ),
                LogLine::new(
                    "api-1".parse().unwrap(),
                    Some(jiff::Timestamp::from_second(11).unwrap()),
                    "ERROR upstream timeout id=18",
                ),
                LogLine::new(
                    "api-1".parse().unwrap(),
                    Some(jiff::Timestamp::from_second(12).unwrap()),
                    "GET /health 200",
                ),
            ],
        )
        .with_events(
            &api(),
            vec![PlatformEvent::new(
                "Unhealthy",
                "Readiness probe failed",
                "pod/api-0",
            )],
        );
    let h = Harness::new(platform);
    let report = api_down(&h.execute(), &h.targets()).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        report.severity,
        Some(Severity::Critical),
        "no instance ready is a complete outage"
    );
    assert_eq!(
        h.platform.mutations(),
        ["rollout_restart prod/deployment/api"]
    );
    let logs = report
        .findings
        .iter()
        .find(|f| f.title.contains("error lines"))
        .unwrap();
    assert_eq!(logs.title, "2 error lines in the logs of 2 instance(s)");
    assert!(
        logs.evidence[0].contains("(x2) ERROR upstream timeout"),
        "lines differing in ids are grouped"
    );
    let sent = h.notifier.sent();
    let statuses: Vec<IncidentStatus> = sent.iter().map(|n| n.status).collect();
    assert_eq!(
        statuses,
        [
            IncidentStatus::Identified,
            IncidentStatus::Monitoring,
            IncidentStatus::Resolved
        ]
    );
    assert!(sent[2].resolved);
    assert!(sent.iter().all(|n| n.dedup_key == sent[0].dedup_key));
}

#[tokio::test(start_paused = true)]
async fn api_down_rolls_back_a_crash_loop_when_a_previous_revision_exists() {
    let platform = FakePlatform::default()
        .with_workload(WorkloadStatus::crash_looping(api(), 2))
        .with_previous_revision(&api(), 0, vec!["api:1.4.1".to_owned()]);
    let h = Harness::new(platform);
    let report = api_down(&h.execute(), &h.targets()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Recovered);
    assert_eq!(
        h.platform.mutations(),
        ["rollback prod/deployment/api to 0"],
        "no restart first: a restart does not fix a bad deploy"
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("CrashLoopBackOff"))
    );
}

#[tokio::test(start_paused = true)]
async fn api_down_rolls_back_an_image_that_cannot_be_pulled() {
    let broken = WorkloadStatus::new(api(), 1)
        .with_instance(InstanceStatus::running("api-0").waiting(WaitingReason::ImagePullBackOff));
    let platform = FakePlatform::default()
        .with_workload(broken)
        .with_previous_revision(&api(), 0, vec!["api:1.4.1".to_owned()]);
    let h = Harness::new(platform);
    let report = api_down(&h.execute(), &h.targets()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Recovered);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title == "the image cannot be pulled")
    );
    assert_eq!(
        h.platform.mutations(),
        ["rollback prod/deployment/api to 0"]
    );
}

#[tokio::test(start_paused = true)]
async fn api_down_reports_oom_kills_and_restarts() {
    let oom = WorkloadStatus::new(api(), 1).with_instance(
        InstanceStatus::running("api-0")
            .with_ready(false)
            .with_restarts(4)
            .terminated(Termination::oom_killed()),
    );
    let h = Harness::new(FakePlatform::default().with_workload(oom));
    let report = api_down(&h.execute(), &h.targets()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Recovered);
    let f = report
        .findings
        .iter()
        .find(|f| f.title.contains("OOMKilled"))
        .unwrap();
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("raise the memory limit"))
    );
}

#[tokio::test(start_paused = true)]
async fn api_down_does_not_restart_when_the_database_is_down() {
    let broken = WorkloadStatus::new(api(), 2)
        .with_instance(InstanceStatus::running("api-0").with_ready(false))
        .with_instance(InstanceStatus::running("api-1").with_ready(false));
    let h = Harness::new(FakePlatform::default().with_workload(broken));
    let db = FakeDatabase::default();
    db.faults().fail_always("ping", ErrorKind::Unavailable);
    let targets = h
        .targets()
        .with_database(Arc::new(db))
        .with_cache(Arc::new(FakeCache::default()));
    let report = api_down(&h.execute(), &targets).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(
        h.platform.mutations().is_empty(),
        "restarting the victim of a dead database helps nobody"
    );
    let skipped: Vec<_> = report.actions_with(ActionStatus::Skipped).collect();
    assert_eq!(skipped[0].step, "restart");
    assert!(
        skipped[0]
            .note
            .as_deref()
            .unwrap()
            .contains("db_connections")
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title == "database unreachable")
    );
    assert_eq!(report.severity, Some(Severity::Critical));
    assert_eq!(h.notifier.sent().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn api_down_dry_run_mutates_nothing_notifies_nobody_and_lists_the_plan() {
    let platform = FakePlatform::default()
        .with_workload(WorkloadStatus::crash_looping(api(), 2))
        .with_previous_revision(&api(), 0, vec!["api:1.4.1".to_owned()]);
    let h = Harness::new(platform);
    let db = Arc::new(FakeDatabase::default().with_sessions(vec![Session::new(
        ops_core::Pid::new(42).unwrap(),
        ops_core::database::SessionState::Idle,
    )]));
    let cache = Arc::new(FakeCache::default().with_keys("session:", 10));
    let targets = h
        .targets()
        .with_database(Arc::clone(&db) as _)
        .with_cache(Arc::clone(&cache) as _);
    let report = api_down(
        &h.ctx(Mode::DryRun, ApprovalPolicy::approve_all("t")),
        &targets,
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert!(h.platform.mutations().is_empty());
    assert!(db.mutations().is_empty());
    assert!(cache.mutations().is_empty());
    assert!(h.notifier.sent().is_empty(), "a dry run pages nobody");
    let planned: Vec<String> = report
        .actions_with(ActionStatus::Planned)
        .map(|a| a.step.clone())
        .collect();
    assert_eq!(planned, ["notify", "rollback", "notify"]);
    let rollback = report
        .actions
        .iter()
        .find(|a| a.step == "rollback")
        .unwrap();
    assert_eq!(
        rollback.changes,
        ["prod/deployment/api: pod template of revision 0 (api:1.4.1)"]
    );
}

#[tokio::test(start_paused = true)]
async fn api_down_denied_restart_changes_nothing_and_stays_unresolved() {
    let h = Harness::new(
        FakePlatform::default().with_workload(WorkloadStatus::crash_looping(api(), 1)),
    );
    // Time is paused: `elapsed` is the time the runbook would have kept the engineer.
    let started = tokio::time::Instant::now();
    let report = api_down(&h.ctx(Mode::Execute, ApprovalPolicy::DenyAll), &h.targets())
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "a \"no\" must not wait out the rollout and verify windows: {:?}",
        started.elapsed()
    );
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(h.platform.mutations().is_empty());
    // The restart and, under the same deny-all policy, both notifications.
    let denied: Vec<&str> = report
        .actions_with(ActionStatus::Denied)
        .map(|a| a.step.as_str())
        .collect();
    assert_eq!(denied, ["notify", "restart", "notify"]);
}

#[tokio::test(start_paused = true)]
async fn api_down_survives_a_failing_notifier_and_unreadable_logs() {
    let platform = FakePlatform::default()
        .with_workload(WorkloadStatus::crash_looping(api(), 1))
        .fail_next("logs", ErrorKind::PermissionDenied);
    let mut h = Harness::new(platform);
    h.notifier = Arc::new(RecordingNotifier::default().fail_next(ErrorKind::Unavailable));
    let report = api_down(&h.execute(), &h.targets()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Recovered);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title == "could not read logs")
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title == "notification failed")
    );
    assert_eq!(
        h.notifier.sent().len(),
        2,
        "the later status updates still went out"
    );
}

#[tokio::test(start_paused = true)]
async fn api_down_fails_cleanly_when_the_platform_is_unreachable() {
    let platform = FakePlatform::default().with_workload(WorkloadStatus::crash_looping(api(), 1));
    platform
        .faults()
        .fail_always("workload", ErrorKind::Unavailable);
    let h = Harness::new(platform);
    let start = tokio::time::Instant::now();
    let err = api_down(&h.execute(), &h.targets()).await.unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::Unavailable);
    assert_eq!(err.error().step(), Some("workload_status"));
    assert!(start.elapsed() < Duration::from_secs(5), "bounded retries");
    assert!(h.platform.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn api_down_verifies_with_a_real_probe_script() {
    // The probe keeps failing after the rollout: not recovered, no previous revision.
    let h = Harness::new(
        FakePlatform::default().with_workload(WorkloadStatus::crash_looping(api(), 1)),
    );
    let probe = ScriptedProbe::always("api-health", ProbeResult::down("HTTP 503"));
    let targets = Targets::new(Arc::clone(&h.platform) as _, api())
        .with_probe(Arc::new(probe))
        .with_config(RunbookConfig::default().with_verify(
            2,
            Duration::from_secs(1),
            Duration::from_secs(10),
        ));
    let report = api_down(&h.execute(), &targets).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("still unhealthy"))
    );
    let last = h.notifier.sent().pop().unwrap();
    assert_eq!(last.status, IncidentStatus::Investigating, "still open");
    assert!(!last.resolved);
}
