//! Issue 14, runbooks over the fakes: `oom` raises the memory limit by the configured step up
//! to the ceiling when instances were OOM-killed at it (and not otherwise), and
//! `high_latency` raises an owning autoscaler's minimum instead of scaling the workload.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default,
    reason = "tests fail loudly; non-exhaustive types are built by assignment"
)]

use std::sync::Arc;

use ops_core::metrics::{MetricQuery, MetricWindow};
use ops_core::platform::{
    Autoscaler, ContainerResources, PlatformCapabilities, ResourceValues, WorkloadStatus,
};
use ops_core::run::{ActionStatus, ApprovalPolicy, Mode, Report, RunContext, RunOutcome};
use ops_core::runbooks::{OomLimits, RunbookConfig, Targets, high_latency, oom};
use ops_core::testing::{
    FakeMetrics, FakePlatform, RecordingNotifier, ScriptedProbe, approving_context, has_change,
};
use ops_core::{Platform as _, WorkloadRef};

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn execute() -> RunContext {
    approving_context(Mode::Execute)
}

fn dry() -> RunContext {
    approving_context(Mode::DryRun)
}

fn app(limit: Option<&str>) -> ContainerResources {
    let mut limits = ResourceValues::default();
    limits.memory = limit.map(|l| l.parse().unwrap());
    ContainerResources::new("app").with_limits(limits)
}

/// Two instances OOM-killed at their 256Mi limit.
fn oom_killed(limit: Option<&str>) -> FakePlatform {
    FakePlatform::default()
        .with_workload(WorkloadStatus::healthy(api(), 2))
        .with_resources(&api(), vec![app(limit)])
        .oom_killed_at_limit(&api())
}

fn oom_targets(platform: &Arc<FakePlatform>, step: &str, ceiling: Option<&str>) -> Targets {
    let mut cfg = RunbookConfig::default();
    cfg.oom = OomLimits::default();
    cfg.oom.step = step.parse().unwrap();
    cfg.oom.ceiling = ceiling.map(|c| c.parse().unwrap());
    Targets::new(Arc::clone(platform) as _, api())
        .with_probe(Arc::new(ScriptedProbe::new("api")))
        .with_config(cfg)
}

fn action<'a>(report: &'a Report, step: &str) -> &'a ops_core::run::Action {
    report
        .actions
        .iter()
        .find(|a| a.step == step)
        .unwrap_or_else(|| panic!("no {step} action: {:?}", report.actions))
}

#[tokio::test(start_paused = true)]
async fn oom_raises_the_limit_by_the_step_when_killed_at_it_and_the_rollout_is_the_cure() {
    let platform = Arc::new(oom_killed(Some("256Mi")));
    let report = oom(&execute(), &oom_targets(&platform, "x1.5", Some("1Gi")))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{:?}",
        report.findings
    );
    let raise = action(&report, "raise_memory_limit");
    assert_eq!(raise.status, ActionStatus::Taken);
    assert!(
        has_change(
            raise,
            &["app: limits cpu none -> none, memory 256Mi -> 384Mi"]
        ),
        "{:?}",
        raise.changes
    );
    assert_eq!(
        platform.resources(&api()).await.unwrap()[0]
            .limits
            .memory
            .unwrap()
            .to_string(),
        "384Mi"
    );
    // Kubernetes-like: the limit change is the rollout; no extra restart.
    assert_eq!(
        platform.mutations(),
        ["set_resources prod/deployment/api app: limits cpu none -> none, memory 256Mi -> 384Mi"]
    );
}

#[tokio::test(start_paused = true)]
async fn oom_dry_run_plans_the_exact_before_and_after_and_changes_nothing() {
    let platform = Arc::new(oom_killed(Some("256Mi")));
    let report = oom(&dry(), &oom_targets(&platform, "+256Mi", Some("1Gi")))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    let raise = action(&report, "raise_memory_limit");
    assert_eq!(raise.status, ActionStatus::Planned);
    assert!(
        has_change(raise, &["memory 256Mi -> 512Mi"]),
        "{:?}",
        raise.changes
    );
    assert!(has_change(raise, &["api-0", "api-1"]));
    assert!(platform.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn oom_stops_at_the_ceiling_then_says_so_escalates_and_restarts() {
    // One step would go to 384Mi: the ceiling of 300Mi caps it.
    let platform = Arc::new(oom_killed(Some("256Mi")));
    oom(&execute(), &oom_targets(&platform, "x1.5", Some("300Mi")))
        .await
        .unwrap();
    assert_eq!(
        platform.resources(&api()).await.unwrap()[0]
            .limits
            .memory
            .unwrap()
            .to_string(),
        "300Mi"
    );
    // At the ceiling: no raise, a notification, and the restart that buys time.
    let platform = Arc::new(oom_killed(Some("300Mi")));
    let notifier = Arc::new(RecordingNotifier::default());
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .notifier(Arc::clone(&notifier) as _)
        .build();
    let report = oom(&ctx, &oom_targets(&platform, "x1.5", Some("300Mi")))
        .await
        .unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("at the configured ceiling of 300Mi")),
        "{:?}",
        report.findings
    );
    assert_eq!(
        report.severity,
        Some(ops_core::incident::Severity::High),
        "instances keep dying: a critical feature down, P1"
    );
    let sent = notifier.sent();
    assert!(sent[0].title.contains("ceiling"));
    let last = sent.last().unwrap();
    assert_eq!(
        (report.outcome, last.status),
        (
            RunOutcome::Recovered,
            ops_core::incident::IncidentStatus::Resolved
        ),
        "the restart bought time: the closing update says so"
    );
    assert_eq!(
        platform.mutations(),
        ["rollout_restart prod/deployment/api"]
    );
}

#[tokio::test(start_paused = true)]
async fn oom_does_not_raise_without_a_limit_far_below_it_or_without_a_ceiling() {
    // No limit: the node's memory pressure killed it.
    let no_limit = Arc::new(oom_killed(None));
    oom(&execute(), &oom_targets(&no_limit, "x2", Some("1Gi")))
        .await
        .unwrap();
    assert_eq!(
        no_limit.mutations(),
        ["rollout_restart prod/deployment/api"]
    );
    // Killed, but the instances use 4 % of the limit: not at the limit.
    let far = Arc::new(oom_killed(Some("256Mi")).with_memory_used(&api(), 10 << 20));
    let report = oom(&execute(), &oom_targets(&far, "x2", Some("1Gi")))
        .await
        .unwrap();
    assert_eq!(far.mutations(), ["rollout_restart prod/deployment/api"]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("were not at the limit"))
    );
    // No ceiling configured (the default): raising is off, as before this change.
    let off = Arc::new(oom_killed(Some("256Mi")));
    let t =
        Targets::new(Arc::clone(&off) as _, api()).with_probe(Arc::new(ScriptedProbe::new("api")));
    oom(&execute(), &t).await.unwrap();
    assert_eq!(off.mutations(), ["rollout_restart prod/deployment/api"]);
}

#[tokio::test(start_paused = true)]
async fn oom_on_a_compose_like_platform_raises_in_place_then_restarts_and_says_where_to_persist() {
    let mut caps = PlatformCapabilities::all();
    caps.durable_config = false;
    caps.autoscaling = false;
    let platform = Arc::new(oom_killed(Some("256Mi")).with_capabilities(caps));
    let report = oom(&execute(), &oom_targets(&platform, "x2", Some("1Gi")))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Recovered);
    assert_eq!(
        platform.mutations(),
        [
            "set_resources prod/deployment/api app: limits cpu none -> none, memory 256Mi -> 512Mi",
            "rollout_restart prod/deployment/api"
        ]
    );
    assert!(
        report.summary.contains("lasts only until the next deploy"),
        "{}",
        report.summary
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("will not last"))
    );
}

fn latency_targets(platform: &Arc<FakePlatform>) -> Targets {
    let metrics = FakeMetrics::default().with_scalar(
        &MetricQuery::p95_latency("api", &MetricWindow::minutes(5)),
        6.0,
    );
    Targets::new(Arc::clone(platform) as _, api()).with_metrics(Arc::new(metrics))
}

fn cpu_bound_with(hpa: Autoscaler, replicas: u32) -> FakePlatform {
    FakePlatform::default()
        .with_workload(WorkloadStatus::healthy(api(), replicas))
        .with_cpu(&api(), 0.95)
        .with_autoscaler(&api(), hpa)
}

#[tokio::test(start_paused = true)]
async fn high_latency_raises_the_autoscalers_minimum_instead_of_scaling() {
    let hpa = Autoscaler::new("api".parse().unwrap(), 2, 10)
        .with_cpu_target(70)
        .with_memory_target(80);
    let platform = Arc::new(cpu_bound_with(hpa, 4));
    let plan = high_latency(&dry(), &latency_targets(&platform))
        .await
        .unwrap();
    assert_eq!(plan.outcome, RunOutcome::Planned);
    assert_eq!(
        action(&plan, "raise_autoscaler_min").changes,
        ["prod/deployment/api: autoscaler api minReplicas 2 -> 5 (maxReplicas 10, 4 running)"]
    );
    assert!(platform.mutations().is_empty());

    let report = high_latency(&execute(), &latency_targets(&platform))
        .await
        .unwrap();
    assert_eq!(
        platform.mutations(),
        [
            "set_autoscaler prod/deployment/api api: 2..10 replicas, cpu 70%, memory 80% -> api: 5..10 replicas, cpu 70%, memory 80%"
        ],
        "the Deployment itself is never scaled"
    );
    assert!(report.actions.iter().all(|a| a.step != "scale_out"));
    assert_eq!(platform.status(&api()).unwrap().desired, 5);
}

#[tokio::test(start_paused = true)]
async fn high_latency_at_the_autoscalers_maximum_changes_nothing_and_says_so() {
    let platform = Arc::new(cpu_bound_with(
        Autoscaler::new("api".parse().unwrap(), 2, 4),
        4,
    ));
    let report = high_latency(&execute(), &latency_targets(&platform))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(platform.mutations().is_empty());
    assert!(
        report.summary.contains("at its maximum of 4"),
        "{}",
        report.summary
    );
}
