//! `emergency_lockdown` and `lift_lockdown` over the fakes (issue 14 §lockdown): the dry run
//! plans everything and changes nothing, execute isolates, captures evidence, pages the P0
//! security route with the undo, a denial isolates nothing, a failed capture keeps the
//! lockdown, and the lift lifts only an active lockdown and verifies health.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;

use ops_core::incident::{IncidentStatus, Severity};
use ops_core::platform::{
    LockdownOptions, LockdownScope, LogLine, Platform as _, WorkloadStatus, lift_command,
};
use ops_core::run::{ActionStatus, ApprovalPolicy, ApprovalRule, Mode, RunContext, RunOutcome};
use ops_core::runbooks::{LockdownPlan, Targets, emergency_lockdown, lift_lockdown};
use ops_core::testing::{FakePlatform, RecordingNotifier};
use ops_core::{ErrorKind, WorkloadRef};

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn platform() -> Arc<FakePlatform> {
    Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_workload(WorkloadStatus::healthy(
                "prod/deployment/web".parse().unwrap(),
                1,
            ))
            .with_logs(
                &api(),
                vec![LogLine::new(
                    "api-0".parse().unwrap(),
                    None,
                    "GET /admin 200",
                )],
            ),
    )
}

fn ctx(mode: Mode, approver: ApprovalPolicy, notifier: &Arc<RecordingNotifier>) -> RunContext {
    RunContext::builder()
        .mode(mode)
        .allow_volatile_journal()
        .approver(approver)
        .notifier(Arc::clone(notifier) as _)
        .build()
}

fn plan(dir: &std::path::Path) -> LockdownPlan {
    LockdownPlan::new(LockdownScope::workloads(vec![api()]).unwrap(), dir)
        .with_reason("leaked admin token")
}

/// One `emergency_lockdown` of `api` on `p`: its result, what was paged, the evidence folder.
async fn lock(
    p: &Arc<FakePlatform>,
    mode: Mode,
    approver: ApprovalPolicy,
) -> (
    Result<ops_core::run::Report, ops_core::run::RunFailure>,
    Vec<ops_core::notify::Notification>,
    tempfile::TempDir,
) {
    let n = Arc::new(RecordingNotifier::default());
    let dir = tempfile::tempdir().unwrap();
    let result = emergency_lockdown(
        &ctx(mode, approver, &n),
        &Targets::new(Arc::clone(p) as _, api()),
        &plan(dir.path()),
    )
    .await;
    (result, n.sent(), dir)
}

#[tokio::test]
async fn a_dry_run_plans_isolation_evidence_and_the_page_and_changes_nothing() {
    let p = platform();
    let (result, sent, dir) = lock(&p, Mode::DryRun, ApprovalPolicy::DenyAll).await;
    let report = result.unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert!(p.mutations().is_empty(), "{:?}", p.mutations());
    assert!(sent.is_empty(), "a dry run pages nobody");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file written"
    );
    let steps: Vec<&str> = report.actions.iter().map(|a| a.step.as_str()).collect();
    // The page, then the closing update the dry run would send.
    assert_eq!(steps, ["isolate", "capture_evidence", "notify", "notify"]);
    let isolate = &report.actions[0];
    assert!(
        isolate
            .changes
            .contains(&"isolate prod/deployment/api".to_owned())
    );
    assert!(
        isolate
            .changes
            .iter()
            .any(|c| c.starts_with("undo: opsbook lift-lockdown --namespace prod --id ld-")),
        "{:?}",
        isolate.changes
    );
}

#[tokio::test]
async fn execute_isolates_captures_evidence_and_pages_p0_security_with_the_undo() {
    let p = platform();
    let (result, sent, dir) = lock(&p, Mode::Execute, ApprovalPolicy::approve_all("oncall")).await;
    let report = result.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert!(p.is_isolated(&api()));
    assert!(!p.is_isolated(&"prod/deployment/web".parse().unwrap()));
    let active = p.lockdowns(api().namespace()).await.unwrap();
    assert_eq!(active.len(), 1);
    let id = &active[0].id;
    assert_eq!(active[0].reason.as_deref(), Some("leaked admin token"));

    // Evidence of the locked workload only, checked by its manifest.
    let bundle = dir.path().join(id.as_str());
    assert!(bundle.join("SHA256SUMS").is_file());
    assert!(bundle.join("logs/api/api-0.log").is_file());
    assert!(!bundle.join("workloads/web.json").exists());

    // One page, P0, on the security route, with the undo command; then the run's closing
    // update: Monitoring, since a run contains a security incident but does not end it.
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].status,
        IncidentStatus::Monitoring,
        "contained, not over: people declare a security incident resolved"
    );
    assert_eq!(sent[1].dedup_key, sent[0].dedup_key);
    assert_eq!(sent[0].severity, Severity::Critical);
    assert!(
        sent[0]
            .fields
            .contains(&("route".to_owned(), "security".to_owned()))
    );
    let undo = lift_command(api().namespace(), id);
    assert!(sent[0].body.contains(&undo), "{}", sent[0].body);
    assert!(report.summary.contains(&undo));
    // Only the lockdown changed the platform: capture is read-only.
    assert_eq!(p.mutations().len(), 1, "{:?}", p.mutations());
}

#[tokio::test]
async fn a_denied_isolation_changes_nothing_captures_nothing_and_pages_nobody() {
    let p = platform();
    let (result, sent, dir) = lock(&p, Mode::Execute, ApprovalPolicy::DenyAll).await;
    let report = result.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(p.mutations().is_empty());
    assert!(sent.is_empty());
    assert_eq!(report.actions[0].status, ActionStatus::Denied);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_failed_evidence_capture_keeps_the_lockdown_pages_anyway_and_is_unresolved() {
    let p = platform();
    p.faults().fail_always("logs", ErrorKind::Unavailable);
    let (result, sent, dir) = lock(&p, Mode::Execute, ApprovalPolicy::approve_all("oncall")).await;
    let report = result.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(p.is_isolated(&api()), "the lockdown stays");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("evidence capture failed")),
        "{:?}",
        report.findings
    );
    assert_eq!(sent.len(), 2, "the page and the closing update");
    assert!(sent[0].body.contains("Evidence capture FAILED"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing half-written"
    );
}

#[tokio::test]
async fn a_failed_isolation_fails_the_run_with_its_report_and_pages_nobody() {
    let p = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 1))
            .fail_next("lockdown", ErrorKind::Unavailable),
    );
    let (result, sent, _dir) = lock(&p, Mode::Execute, ApprovalPolicy::approve_all("oncall")).await;
    let failure = result.unwrap_err();
    assert_eq!(failure.error().kind(), ErrorKind::Unavailable);
    assert_eq!(failure.report().outcome, RunOutcome::Failed);
    assert!(!p.is_isolated(&api()));
    assert!(sent.is_empty());
}

#[tokio::test]
async fn lift_lifts_only_an_active_lockdown_and_verifies_health() {
    let p = platform();
    let n = Arc::new(RecordingNotifier::default());
    let scope = LockdownScope::workloads(vec![api()]).unwrap();
    let l = p
        .lockdown(&scope, LockdownOptions::default())
        .await
        .unwrap();
    let ns = api().namespace().clone();
    let t = Targets::new(Arc::clone(&p) as _, api());

    // Dry run: planned, still isolated.
    let dry = lift_lockdown(
        &ctx(Mode::DryRun, ApprovalPolicy::DenyAll, &n),
        &t,
        &ns,
        &l.id,
    )
    .await
    .unwrap();
    assert_eq!(dry.outcome, RunOutcome::Planned);
    assert!(p.is_isolated(&api()));

    // Only the lift step approved: the page is denied, the lift happens.
    let only_lift = ApprovalPolicy::allow([ApprovalRule::step_anywhere("lift")]);
    let report = lift_lockdown(&ctx(Mode::Execute, only_lift, &n), &t, &ns, &l.id)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert!(!p.is_isolated(&api()));
    assert!(n.sent().is_empty());

    // Gone: a second lift fails with NotFound and its report.
    let again = lift_lockdown(
        &ctx(Mode::Execute, ApprovalPolicy::approve_all("oncall"), &n),
        &t,
        &ns,
        &l.id,
    )
    .await
    .unwrap_err();
    assert_eq!(again.error().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_workload_unhealthy_after_the_lift_leaves_the_run_unresolved() {
    let p = platform();
    let n = Arc::new(RecordingNotifier::default());
    let l = p
        .lockdown(
            &LockdownScope::namespace_wide(api().namespace().clone()),
            LockdownOptions::default(),
        )
        .await
        .unwrap();
    p.set_status(WorkloadStatus::crash_looping(api(), 2));
    let report = lift_lockdown(
        &ctx(Mode::Execute, ApprovalPolicy::approve_all("oncall"), &n),
        &Targets::new(Arc::clone(&p) as _, api()),
        api().namespace(),
        &l.id,
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(p.lockdowns(api().namespace()).await.unwrap().is_empty());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("not healthy"))
    );
    let sent = n.sent();
    assert_eq!(sent.len(), 2, "the lift and the closing update");
    assert_eq!(sent[0].status, IncidentStatus::Monitoring);
    assert_eq!(sent[1].status, IncidentStatus::Investigating);
}

#[tokio::test]
async fn a_read_only_view_refuses_lockdown_and_lift_and_passes_reads_through() {
    use ops_core::platform::ExportOptions;
    use ops_core::read_only::ReadOnly;

    let p = platform();
    let made = p
        .lockdown(
            &LockdownScope::workloads(vec![api()]).unwrap(),
            LockdownOptions::default(),
        )
        .await
        .unwrap();
    let before = p.mutations();
    let view = ReadOnly::new(Arc::clone(&p));
    let ns = api().namespace().clone();
    let refused = view
        .lockdown(
            &LockdownScope::namespace_wide(ns.clone()),
            LockdownOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied);
    let refused = view.lift_lockdown(&ns, &made.id).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied);
    assert_eq!(view.lockdowns(&ns).await.unwrap().len(), 1);
    assert!(
        !view
            .export(&ns, ExportOptions::default())
            .await
            .unwrap()
            .objects
            .is_empty()
    );
    assert_eq!(p.mutations(), before);
    assert!(p.is_isolated(&api()));
}
