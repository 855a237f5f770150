//! Release runbooks over the fakes: `deploy_release`, `deployment_failure`,
//! `planned_maintenance`. Each: success, failure then rollback, dry run (plans only, nothing
//! mutated), approval denied.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;

use ops_core::incident::IncidentStatus;
use ops_core::metrics::{MetricQuery, MetricWindow};
use ops_core::platform::{
    Autoscaler, Condition, ImageUpdate, LogLine, Platform as _, WorkloadStatus,
};
use ops_core::run::{ActionStatus, ApprovalPolicy, Mode, Report, RunContext, RunOutcome};
use ops_core::runbooks::{
    MaintenancePlan, Targets, deploy_release, deployment_failure, planned_maintenance,
};
use ops_core::testing::{
    FakeDatabase, FakeMetrics, FakePlatform, ImageFault, RecordingNotifier, ScriptedProbe,
};
use ops_core::{ErrorKind, WorkloadRef};

const OLD: &str = "shop/api:1";
const NEW: &str = "shop/api:2";

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn running(image: &str, replicas: u32) -> WorkloadStatus {
    let mut s = WorkloadStatus::healthy(api(), replicas);
    s.images = vec![image.to_owned()];
    s
}

fn platform(replicas: u32) -> FakePlatform {
    FakePlatform::default()
        .with_workload(running(OLD, replicas))
        .ready_after(2)
}

fn targets(p: &Arc<FakePlatform>) -> Targets {
    Targets::new(Arc::clone(p) as _, api()).with_probe(Arc::new(ScriptedProbe::tracking(
        "api-health",
        Arc::clone(p),
        api(),
    )))
}

fn ctx(mode: Mode, approver: ApprovalPolicy, notifier: &Arc<RecordingNotifier>) -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(mode)
        .approver(approver)
        .notifier(Arc::clone(notifier) as _)
        .build()
}

fn execute() -> RunContext {
    ctx(
        Mode::Execute,
        ApprovalPolicy::approve_all("oncall"),
        &Arc::new(RecordingNotifier::default()),
    )
}

fn release() -> ImageUpdate {
    ImageUpdate::new(NEW.parse().unwrap())
        .with_change_cause("release 2 (CHG-42)")
        .unwrap()
}

fn steps(report: &Report, status: ActionStatus) -> Vec<String> {
    report
        .actions_with(status)
        .map(|a| a.step.clone())
        .collect()
}

fn images(p: &FakePlatform) -> Vec<String> {
    p.status(&api()).unwrap().images
}

#[tokio::test(start_paused = true)]
async fn deploy_release_sets_the_image_waits_verifies_and_records_the_cause() {
    let p = Arc::new(platform(2));
    let report = deploy_release(&execute(), &targets(&p), &release())
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        p.mutations(),
        [format!("set_image prod/deployment/api api={NEW}")]
    );
    assert_eq!(images(&p), [NEW]);
    let revisions = p.revisions(&api()).await.unwrap();
    assert!(revisions[0].current && revisions[0].images == [NEW]);
    assert_eq!(
        revisions[0].change_cause.as_deref(),
        Some("release 2 (CHG-42)")
    );
    assert!(report.step("wait_rolled_out").is_some() && report.step("verify_health").is_some());
}

#[tokio::test(start_paused = true)]
async fn deploy_release_rolls_back_a_release_that_crash_loops() {
    let p = Arc::new(platform(2).image_fails(NEW, ImageFault::CrashLoops));
    let report = deploy_release(&execute(), &targets(&p), &release())
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Unresolved,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        p.mutations(),
        [
            format!("set_image prod/deployment/api api={NEW}"),
            "rollback prod/deployment/api to 1".to_owned()
        ]
    );
    assert_eq!(images(&p), [OLD]);
    assert!(p.status(&api()).unwrap().is_healthy());
    assert!(
        report
            .summary
            .contains("rolled back to revision 1 and is healthy"),
        "{}",
        report.summary
    );
}

#[tokio::test(start_paused = true)]
async fn deploy_release_rolls_back_on_a_high_error_rate() {
    let p = Arc::new(platform(2));
    let query = MetricQuery::error_rate("api", &MetricWindow::minutes(5));
    let metrics = Arc::new(FakeMetrics::default().with_scalar(&query, 0.2));
    let t = targets(&p).with_metrics(metrics);
    let report = deploy_release(&execute(), &t, &release()).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Unresolved,
        "{}",
        report.to_markdown()
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.starts_with("error rate 20.0%"))
    );
    assert_eq!(images(&p), [OLD], "{:?}", p.mutations());

    // Below the threshold the release stays.
    let p = Arc::new(platform(2));
    let metrics = Arc::new(FakeMetrics::default().with_scalar(&query, 0.001));
    let report = deploy_release(&execute(), &targets(&p).with_metrics(metrics), &release())
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Recovered);
    assert_eq!(images(&p), [NEW]);
}

#[tokio::test(start_paused = true)]
async fn deploy_release_dry_run_plans_the_release_and_the_rollback_and_changes_nothing() {
    let p = Arc::new(platform(2));
    let notifier = Arc::new(RecordingNotifier::default());
    let dry = ctx(Mode::DryRun, ApprovalPolicy::approve_all("x"), &notifier);
    let report = deploy_release(&dry, &targets(&p), &release())
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert!(p.mutations().is_empty());
    assert_eq!(
        steps(&report, ActionStatus::Planned),
        ["set_image", "rollback"]
    );
    let plan = &report.actions[0].changes;
    assert_eq!(
        plan[0],
        format!("prod/deployment/api: image {OLD} -> {NEW}")
    );
    assert_eq!(
        plan[1..],
        ["replace instance api-0", "replace instance api-1"]
    );
    assert!(report.actions[1].changes[0].contains("revision 1"));
    assert_eq!(images(&p), [OLD]);
}

#[tokio::test(start_paused = true)]
async fn deploy_release_denied_changes_nothing() {
    let p = Arc::new(platform(2));
    let notifier = Arc::new(RecordingNotifier::default());
    let denied = ctx(Mode::Execute, ApprovalPolicy::DenyAll, &notifier);
    let report = deploy_release(&denied, &targets(&p), &release())
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(p.mutations().is_empty());
    assert_eq!(steps(&report, ActionStatus::Denied), ["set_image"]);
}

#[tokio::test(start_paused = true)]
async fn deploy_release_to_an_unknown_container_fails_with_its_report() {
    let p = Arc::new(platform(1).with_containers(&api(), &["api", "proxy"]));
    let failure = deploy_release(&execute(), &targets(&p), &release())
        .await
        .unwrap_err();
    assert_eq!(failure.error().kind(), ErrorKind::InvalidInput);
    assert!(
        failure.error().chain().contains("api, proxy"),
        "{}",
        failure.error().chain()
    );
    assert!(p.mutations().is_empty());
    let named = release().in_container("proxy").unwrap();
    let report = deploy_release(&execute(), &targets(&p), &named)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        p.mutations(),
        [format!("set_image prod/deployment/api proxy={NEW}")]
    );
}

/// A release of `NEW` that fails as `fault` says, made before the runbook runs.
async fn failed_release(fault: ImageFault) -> Arc<FakePlatform> {
    let p = Arc::new(platform(2).image_fails(NEW, fault).with_logs(
        &api(),
        vec![LogLine::new(
            "api-0".parse().unwrap(),
            None,
            "panic: DATABASE_URL is not set",
        )],
    ));
    p.set_image(&api(), ImageUpdate::new(NEW.parse().unwrap()))
        .await
        .unwrap();
    p
}

fn titles(report: &Report) -> String {
    report
        .findings
        .iter()
        .flat_map(|f| std::iter::once(f.title.clone()).chain(f.evidence.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(start_paused = true)]
async fn deployment_failure_rolls_back_a_crash_loop_with_events_and_previous_logs() {
    let p = failed_release(ImageFault::CrashLoops).await;
    let notifier = Arc::new(RecordingNotifier::default());
    let run = ctx(
        Mode::Execute,
        ApprovalPolicy::approve_all("oncall"),
        &notifier,
    );
    let report = deployment_failure(&run, &targets(&p)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let text = titles(&report);
    assert!(text.contains("2 instance(s) in CrashLoopBackOff"), "{text}");
    assert!(
        text.contains("BackOff pod/api: Back-off restarting failed container"),
        "{text}"
    );
    assert!(
        text.contains("api-0: panic: DATABASE_URL is not set"),
        "{text}"
    );
    assert_eq!(images(&p), [OLD]);
    assert!(p.status(&api()).unwrap().is_healthy());
    assert_eq!(
        p.mutations().last().unwrap(),
        "rollback prod/deployment/api to 1"
    );
    let statuses: Vec<_> = notifier.sent().iter().map(|n| n.status).collect();
    assert_eq!(
        statuses,
        [
            IncidentStatus::Identified,
            IncidentStatus::Monitoring,
            IncidentStatus::Resolved
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn deployment_failure_rolls_back_an_image_that_cannot_be_pulled() {
    let p = failed_release(ImageFault::CannotBePulled).await;
    let report = deployment_failure(&execute(), &targets(&p)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let text = titles(&report);
    assert!(
        text.contains("2 instance(s) cannot pull their image"),
        "{text}"
    );
    assert!(text.contains("ImagePullBackOff (shop/api:2)"), "{text}");
    assert!(text.contains("Failed to pull image"), "{text}");
    assert_eq!(images(&p), [OLD]);
}

#[tokio::test(start_paused = true)]
async fn deployment_failure_rolls_back_a_rollout_past_its_deadline() {
    let mut stuck = running(NEW, 3);
    stuck.conditions.push(Condition::new(
        "Progressing",
        "False",
        Some("ProgressDeadlineExceeded".to_owned()),
    ));
    stuck.revision = Some(2);
    let p = Arc::new(
        FakePlatform::default()
            .with_workload(stuck)
            .with_previous_revision(&api(), 1, vec![OLD.to_owned()]),
    );
    let report = deployment_failure(&execute(), &targets(&p)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert!(titles(&report).contains("the rollout passed its progress deadline"));
    assert_eq!(images(&p), [OLD]);
}

#[tokio::test(start_paused = true)]
async fn deployment_failure_without_history_says_what_to_do_and_changes_nothing() {
    let p =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::crash_looping(api(), 2)));
    let report = deployment_failure(&execute(), &targets(&p)).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    let text = titles(&report);
    assert!(
        text.contains("has no previous revision to roll back to"),
        "{text}"
    );
    assert!(
        text.contains("fix the configuration or deploy a fixed image"),
        "{text}"
    );
    assert!(p.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn deployment_failure_dry_run_plans_and_denial_changes_nothing() {
    let p = failed_release(ImageFault::CrashLoops).await;
    let before = p.mutations();
    let notifier = Arc::new(RecordingNotifier::default());
    let dry = ctx(Mode::DryRun, ApprovalPolicy::approve_all("x"), &notifier);
    let report = deployment_failure(&dry, &targets(&p)).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert_eq!(
        steps(&report, ActionStatus::Planned),
        ["notify", "rollback", "notify"]
    );
    assert!(notifier.sent().is_empty());
    let denied = ctx(Mode::Execute, ApprovalPolicy::DenyAll, &notifier);
    let report = deployment_failure(&denied, &targets(&p)).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert_eq!(
        steps(&report, ActionStatus::Denied),
        ["notify", "rollback", "notify"]
    );
    assert_eq!(p.mutations(), before);
    assert_eq!(images(&p), [NEW]);
    // A healthy workload has nothing to roll back.
    let healthy = Arc::new(platform(2));
    let report = deployment_failure(&execute(), &targets(&healthy))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Healthy);
    assert!(healthy.mutations().is_empty());
}

fn maintenance() -> MaintenancePlan {
    MaintenancePlan::new(release())
        .with_scale_to(1)
        .with_backup("app".parse().unwrap(), "/backups")
}

#[tokio::test(start_paused = true)]
async fn planned_maintenance_backs_up_scales_down_releases_and_scales_back() {
    let p = Arc::new(platform(3));
    let db = Arc::new(FakeDatabase::default());
    let notifier = Arc::new(RecordingNotifier::default());
    let run = ctx(
        Mode::Execute,
        ApprovalPolicy::approve_all("oncall"),
        &notifier,
    );
    let t = targets(&p).with_database(Arc::clone(&db) as _);
    let report = planned_maintenance(&run, &t, &maintenance()).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert_eq!(db.mutations(), ["backup app"]);
    assert_eq!(
        p.mutations(),
        [
            "scale prod/deployment/api 3->1".to_owned(),
            format!("set_image prod/deployment/api api={NEW}"),
            "scale prod/deployment/api 1->3".to_owned(),
        ]
    );
    let s = p.status(&api()).unwrap();
    assert_eq!((s.desired, s.images.clone()), (3, vec![NEW.to_owned()]));
    assert!(
        titles(&report)
            .contains("before the window prod/deployment/api runs revision 1 (shop/api:1)")
    );
    // The announcement opens it, the run updates it as the window changes things and closes
    // it (Resolved) once the release is live.
    let sent = notifier.sent();
    assert!(
        sent[0].body.contains("The window starts"),
        "{}",
        sent[0].body
    );
    assert!(
        sent.iter()
            .all(|n| n.title == "maintenance of prod/deployment/api")
    );
    let last = sent.last().unwrap();
    assert_eq!(last.status, IncidentStatus::Resolved);
    assert!(last.resolved);
    assert_eq!(sent.iter().filter(|n| n.resolved).count(), 1);
}

#[tokio::test(start_paused = true)]
async fn planned_maintenance_scales_back_and_rolls_back_a_failing_release() {
    let p = Arc::new(platform(3).image_fails(NEW, ImageFault::CrashLoops));
    let t = targets(&p);
    let plan = MaintenancePlan::new(release()).with_scale_to(1);
    let report = planned_maintenance(&execute(), &t, &plan).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Unresolved,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        p.mutations(),
        [
            "scale prod/deployment/api 3->1".to_owned(),
            format!("set_image prod/deployment/api api={NEW}"),
            "scale prod/deployment/api 1->3".to_owned(),
            "rollback prod/deployment/api to 1".to_owned(),
        ]
    );
    let s = p.status(&api()).unwrap();
    assert_eq!((s.desired, s.images.clone()), (3, vec![OLD.to_owned()]));
    assert!(s.is_healthy());
}

#[tokio::test(start_paused = true)]
async fn planned_maintenance_dry_run_plans_every_step_and_changes_nothing() {
    let p = Arc::new(platform(3));
    let db = Arc::new(FakeDatabase::default());
    let notifier = Arc::new(RecordingNotifier::default());
    let dry = ctx(Mode::DryRun, ApprovalPolicy::approve_all("x"), &notifier);
    let t = targets(&p).with_database(Arc::clone(&db) as _);
    let report = planned_maintenance(&dry, &t, &maintenance()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert_eq!(
        steps(&report, ActionStatus::Planned),
        [
            "notify",
            "backup",
            "scale_down",
            "set_image",
            "scale_back",
            "rollback",
            "notify"
        ]
    );
    assert!(p.mutations().is_empty() && db.mutations().is_empty() && notifier.sent().is_empty());
}

#[tokio::test(start_paused = true)]
async fn planned_maintenance_denied_stops_before_any_change() {
    let p = Arc::new(platform(3));
    let db = Arc::new(FakeDatabase::default());
    let notifier = Arc::new(RecordingNotifier::default());
    let denied = ctx(Mode::Execute, ApprovalPolicy::DenyAll, &notifier);
    let t = targets(&p).with_database(Arc::clone(&db) as _);
    let report = planned_maintenance(&denied, &t, &maintenance())
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(
        report.summary.contains("stopped before any change"),
        "{}",
        report.summary
    );
    assert_eq!(
        steps(&report, ActionStatus::Denied),
        ["notify", "backup", "notify"]
    );
    assert!(p.mutations().is_empty() && db.mutations().is_empty());
    // Without a backup, a denied scale-down stops the window too.
    let plan = MaintenancePlan::new(release()).with_scale_to(1);
    let report = planned_maintenance(&denied, &targets(&p), &plan)
        .await
        .unwrap();
    assert_eq!(
        steps(&report, ActionStatus::Denied),
        ["notify", "scale_down", "notify"]
    );
    assert!(p.mutations().is_empty());
}

fn autoscaled(replicas: u32) -> FakePlatform {
    let hpa = Autoscaler::new("api".parse().unwrap(), 2, 10).with_cpu_target(70);
    platform(replicas).with_autoscaler(&api(), hpa)
}

#[tokio::test(start_paused = true)]
async fn planned_maintenance_pins_an_owning_autoscaler_instead_of_fighting_it() {
    let p = Arc::new(autoscaled(3));
    let plan = MaintenancePlan::new(release()).with_scale_to(1);
    let report = planned_maintenance(&execute(), &targets(&p), &plan)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        p.mutations(),
        [
            "set_autoscaler prod/deployment/api api: 2..10 replicas, cpu 70% -> api: 1..1 replicas, cpu 70%"
                .to_owned(),
            format!("set_image prod/deployment/api api={NEW}"),
            "set_autoscaler prod/deployment/api api: 1..1 replicas, cpu 70% -> api: 2..10 replicas, cpu 70%"
                .to_owned(),
        ],
        "no scale call: the autoscaler would undo it"
    );
    let hpa = p.autoscaler(&api()).await.unwrap().unwrap();
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (2, 10));
    assert_eq!(
        hpa.cpu_utilization,
        Some(70),
        "its target survives the window"
    );
    assert_eq!(images(&p), [NEW]);
    assert_eq!(
        steps(&report, ActionStatus::Taken)
            .into_iter()
            .filter(|s| s.contains("autoscaler"))
            .collect::<Vec<_>>(),
        ["pin_autoscaler", "restore_autoscaler"]
    );
}

#[tokio::test(start_paused = true)]
async fn planned_maintenance_gives_the_autoscaler_its_bounds_back_after_a_failed_release() {
    let p = Arc::new(autoscaled(3).image_fails(NEW, ImageFault::CrashLoops));
    let plan = MaintenancePlan::new(release()).with_scale_to(1);
    let report = planned_maintenance(&execute(), &targets(&p), &plan)
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    let hpa = p.autoscaler(&api()).await.unwrap().unwrap();
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (2, 10));
    assert_eq!(images(&p), [OLD]);
    // Dry run: the plan names the pin and its undo, and nothing changes.
    let p = Arc::new(autoscaled(3));
    let notifier = Arc::new(RecordingNotifier::default());
    let dry = ctx(Mode::DryRun, ApprovalPolicy::approve_all("x"), &notifier);
    let report = planned_maintenance(&dry, &targets(&p), &plan)
        .await
        .unwrap();
    assert_eq!(
        steps(&report, ActionStatus::Planned),
        [
            "notify",
            "pin_autoscaler",
            "set_image",
            "restore_autoscaler",
            "rollback",
            "notify"
        ]
    );
    assert!(p.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn planned_maintenance_cannot_pin_an_autoscaler_to_zero_and_changes_nothing() {
    let p = Arc::new(autoscaled(3));
    let plan = MaintenancePlan::new(release()).with_scale_to(0);
    let report = planned_maintenance(&execute(), &targets(&p), &plan)
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(
        report.summary.contains("keeps at least one instance"),
        "{}",
        report.summary
    );
    assert!(p.mutations().is_empty());
}
