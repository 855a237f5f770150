//! Issue 14, runbooks over `KubePlatform` on the API server double: pods OOM-killed at their
//! memory limit (the double kills containers whose image needs more than their limit) get
//! the limit raised by `oom` through the pod template, the rollout brings healthy pods back;
//! at the ceiling the limit stays and the run escalates.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::run::{Mode, RunOutcome};
use ops_core::runbooks::{RunbookConfig, Targets, oom};
use ops_core::testing::{approving_context, assert_outcome};
use ops_core::{Platform, WorkloadRef};
use serde_json::json;
use support::{Env, PodsReady, deployment, workload};

const NS: &str = "shop";

fn targets(env: &Env, w: &WorkloadRef, ceiling: &str) -> Targets {
    let mut cfg = RunbookConfig::default();
    cfg.rollout_timeout = Duration::from_secs(20);
    cfg.verify_interval = Duration::from_millis(50);
    cfg.oom.step = "x1.5".parse().unwrap();
    cfg.oom.ceiling = Some(ceiling.parse().unwrap());
    let probe = PodsReady {
        platform: env.platform.clone(),
        workload: w.clone(),
    };
    Targets::new(Arc::new(env.platform.clone()), w.clone())
        .with_probe(Arc::new(probe))
        .with_config(cfg)
}

/// A worker whose process needs 150Mi under a 128Mi limit: every pod is OOM-killed.
async fn starved_worker(env: &Env) -> WorkloadRef {
    let mut d = deployment(NS, "worker", 2, "shop/worker:1");
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"memory": "128Mi"}, "requests": {"memory": "64Mi"}});
    env.cluster.need_memory("shop/worker", 150 << 20);
    env.create(d).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let w = workload(NS, "deployment", "worker");
    let status = env.platform.workload(&w).await.unwrap();
    assert!(status.oom_killed_instances().count() > 0, "{status:?}");
    w
}

fn template_memory_limit(env: &Env) -> serde_json::Value {
    env.get("Deployment", NS, "worker")["spec"]["template"]["spec"]["containers"][0]["resources"]
        ["limits"]["memory"]
        .clone()
}

#[tokio::test]
async fn oom_raises_the_limit_in_the_pod_template_and_the_new_pods_stay_up() {
    let env = Env::start().await;
    let w = starved_worker(&env).await;

    let plan = oom(&approving_context(Mode::DryRun), &targets(&env, &w, "1Gi"))
        .await
        .unwrap();
    assert_eq!(plan.outcome, RunOutcome::Planned);
    let planned = plan
        .actions
        .iter()
        .find(|a| a.step == "raise_memory_limit")
        .unwrap();
    assert!(
        planned
            .changes
            .iter()
            .any(|c| c.contains("memory 128Mi -> 192Mi")),
        "{:?}",
        planned.changes
    );
    assert_eq!(
        template_memory_limit(&env),
        json!("128Mi"),
        "a dry run changes nothing"
    );

    let report = oom(&approving_context(Mode::Execute), &targets(&env, &w, "1Gi"))
        .await
        .unwrap();
    assert_outcome(&report, RunOutcome::Recovered);
    assert_eq!(template_memory_limit(&env), json!("192Mi"));
    // The request was kept; the rollout replaced the pods, which now run.
    let app = &env.get("Deployment", NS, "worker")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(app["resources"]["requests"]["memory"], json!("64Mi"));
    let status = env.platform.workload(&w).await.unwrap();
    assert!(status.is_healthy(), "{status:?}");
    assert_eq!(status.oom_killed_instances().count(), 0);
    // One patch of the template, no extra restart.
    let patches = support::patched_paths(&env.cluster);
    assert_eq!(
        patches,
        ["/apis/apps/v1/namespaces/shop/deployments/worker"]
    );
}

#[tokio::test]
async fn oom_at_the_ceiling_keeps_the_limit_and_escalates() {
    let env = Env::start().await;
    let w = starved_worker(&env).await;
    let report = oom(
        &approving_context(Mode::Execute),
        &targets(&env, &w, "128Mi"),
    )
    .await
    .unwrap();
    // At the ceiling: a critical feature is down (P1 on the seeds' P0–P3 scale), escalated.
    assert_eq!(template_memory_limit(&env), json!("128Mi"));
    assert_eq!(report.severity, Some(ops_core::incident::Severity::High));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("configured ceiling")),
        "{}",
        report.to_markdown()
    );
    // The restart that buys time still ran, and could not cure it.
    assert_ne!(report.outcome, RunOutcome::Recovered);
}
