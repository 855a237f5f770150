//! The runbooks over `KubePlatform` on the API server double: a bad release that crash-loops
//! or cannot be pulled is rolled back, an unhealthy service is restarted and verified, a
//! recent deploy behind a high error rate is rolled back, OOM kills are diagnosed, and a
//! whole namespace is recovered in dependency order. The health probe reads the pods'
//! readiness (the double runs no real service).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_double::PodFault;
use ops_core::metrics::MetricQuery;
use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
use ops_core::runbooks::{
    RecoveryOrder, RunbookConfig, Targets, api_down, complete_service_recovery, high_error_rate,
    oom, restart_and_verify,
};
use ops_core::testing::{FakeMetrics, MemoryJournal};
use ops_core::{Platform, WorkloadRef};
use serde_json::json;
use support::{Env, PodsReady, deployment, workload};

const NS: &str = "shop";

fn ctx() -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .journal(Arc::new(MemoryJournal::default()))
        .build()
}

fn fast_config() -> RunbookConfig {
    let mut cfg = RunbookConfig::default();
    cfg.rollout_timeout = Duration::from_secs(20);
    cfg.verify_interval = Duration::from_millis(50);
    cfg
}

fn targets(env: &Env, w: &WorkloadRef) -> Targets {
    let probe = PodsReady {
        platform: env.platform.clone(),
        workload: w.clone(),
    };
    Targets::new(Arc::new(env.platform.clone()), w.clone())
        .with_probe(Arc::new(probe))
        .with_config(fast_config())
}

fn image_of(env: &Env, name: &str) -> String {
    env.get("Deployment", NS, name)["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A healthy v1, then a v2 that fails with `fault`.
async fn bad_release(env: &Env, name: &str, fault: PodFault) -> WorkloadRef {
    env.create(deployment(NS, name, 2, &format!("shop/{name}:1")))
        .await;
    env.cluster.fail_image(&format!("{name}:2"), fault);
    env.set_image(NS, name, &format!("shop/{name}:2")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    workload(NS, "deployment", name)
}

/// `api_down` on a release failing with `fault`: rolled back to v1 and recovered.
async fn api_down_rolls_back(name: &str, fault: PodFault) {
    let env = Env::start().await;
    let w = bad_release(&env, name, fault).await;
    let report = api_down(&ctx(), &targets(&env, &w)).await.expect("runbook");
    let text = report.to_markdown();
    assert_eq!(report.outcome, RunOutcome::Recovered, "{text}");
    assert!(
        report.actions.iter().any(|a| a.step == "rollback"),
        "{text}"
    );
    assert_eq!(image_of(&env, name), format!("shop/{name}:1"));
}

#[tokio::test]
async fn api_down_rolls_back_a_crash_looping_release() {
    api_down_rolls_back("api", PodFault::CrashLoopBackOff).await;
}

#[tokio::test]
async fn api_down_rolls_back_an_image_that_cannot_be_pulled() {
    api_down_rolls_back("web", PodFault::ImagePullBackOff).await;
}

#[tokio::test]
async fn api_down_rolls_back_an_oom_killed_release() {
    api_down_rolls_back("mem", PodFault::OomKilled).await;
}

#[tokio::test]
async fn api_down_in_dry_run_changes_nothing_on_the_cluster() {
    let env = Env::start().await;
    let api = bad_release(&env, "api", PodFault::CrashLoopBackOff).await;
    env.cluster.clear_requests();
    let dry = RunContext::builder().build();
    let report = api_down(&dry, &targets(&env, &api)).await.expect("runbook");
    assert_eq!(report.outcome, RunOutcome::Planned);
    let writes: Vec<_> = env
        .cluster
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "a dry run sent {writes:?}");
    assert_eq!(image_of(&env, "api"), "shop/api:2");
}

async fn pod_names(env: &Env, w: &WorkloadRef) -> Vec<String> {
    let status = env.platform.workload(w).await.expect("status");
    status
        .instances
        .iter()
        .map(|i| i.name.to_string())
        .collect()
}

#[tokio::test]
async fn restart_and_verify_rolls_the_pods() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 2, "shop/api:1")).await;
    let api = workload(NS, "deployment", "api");
    let before = pod_names(&env, &api).await;
    let report = restart_and_verify(&ctx(), &targets(&env, &api))
        .await
        .expect("runbook");
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let after = pod_names(&env, &api).await;
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} -> {after:?}"
    );
}

#[tokio::test]
async fn high_error_rate_after_a_recent_deploy_rolls_it_back() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 2, "shop/api:1")).await;
    env.set_image(NS, "api", "shop/api:2").await;
    let api = workload(NS, "deployment", "api");
    let cfg = fast_config();
    let query = MetricQuery::error_rate(&cfg.metrics_job, &cfg.metrics_window);
    let t =
        targets(&env, &api).with_metrics(Arc::new(FakeMetrics::default().with_scalar(&query, 0.2)));
    let report = high_error_rate(&ctx(), &t).await.expect("runbook");
    assert!(
        report.actions.iter().any(|a| a.step == "rollback"),
        "{}",
        report.to_markdown()
    );
    assert_eq!(image_of(&env, "api"), "shop/api:1");
}

#[tokio::test]
async fn oom_names_the_killed_pods_and_their_limit() {
    let env = Env::start().await;
    let mut d = deployment(NS, "worker", 1, "shop/worker:1");
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"memory": "128Mi"}});
    env.cluster.fail_image("worker:1", PodFault::OomKilled);
    env.create(d).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let w = workload(NS, "deployment", "worker");
    let dry = RunContext::builder().build();
    let report = oom(&dry, &targets(&env, &w)).await.expect("runbook");
    let text = report.to_markdown();
    assert!(text.contains("OOMKilled"), "{text}");
}

#[tokio::test]
async fn complete_service_recovery_starts_tiers_in_order() {
    let env = Env::start().await;
    env.create(support::statefulset(NS, "db", 1, "shop/db:1"))
        .await;
    env.create(deployment(NS, "api", 2, "shop/api:1")).await;
    let db = workload(NS, "statefulset", "db");
    let api = workload(NS, "deployment", "api");
    for w in [&api, &db] {
        env.platform
            .stop(w, ops_core::platform::StopOptions::default())
            .await
            .expect("stop");
    }
    env.settle().await;
    env.cluster.clear_requests();
    let order = RecoveryOrder::new().then([db.clone()]).then([api.clone()]);
    let report = complete_service_recovery(&ctx(), &targets(&env, &api), &order)
        .await
        .expect("runbook");
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    // The database tier was written before the API tier.
    let patched = support::patched_paths(&env.cluster);
    let first_db = patched.iter().position(|p| p.contains("statefulsets/db"));
    let first_api = patched.iter().position(|p| p.contains("deployments/api"));
    assert!(first_db.is_some() && first_db < first_api, "{patched:?}");
    assert!(env.platform.workload(&api).await.expect("s").is_healthy());
}
