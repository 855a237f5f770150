//! Issue 14 item 2 on the API server double: where a `HorizontalPodAutoscaler` owns a
//! Deployment's replica count, `planned_maintenance` does not scale the Deployment (the
//! autoscaler would undo it) but pins the autoscaler's bounds for the window and gives them
//! back after it. The double runs the autoscaler's bounds check (replicas outside
//! `[minReplicas, maxReplicas]` go to the nearest bound), so the pin really moves the count;
//! kubectl reads the result.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::platform::ImageUpdate;
use ops_core::run::{Mode, RunOutcome};
use ops_core::runbooks::{MaintenancePlan, RunbookConfig, Targets, planned_maintenance};
use ops_core::testing::approving_context;
use serde_json::{Value, json};
use support::{Env, PodsReady, deployment, workload};

const NS: &str = "shop";

fn hpa(name: &str, min: i64, max: i64) -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min,
            "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70}}}],
        },
    })
}

fn replicas(env: &Env, name: &str) -> i64 {
    env.get("Deployment", NS, name)["spec"]["replicas"]
        .as_i64()
        .unwrap()
}

async fn kubectl_out(env: &Env, args: &[&str]) -> String {
    let run = env.kubectl(args).await;
    assert_eq!(run.code, 0, "kubectl {args:?}: {}", run.stderr);
    run.stdout.trim().to_owned()
}

#[tokio::test]
async fn the_doubles_autoscaler_keeps_replicas_within_its_bounds_as_kubectl_reads() {
    let env = Env::start().await;
    env.create(deployment(NS, "web", 12, "shop/web:1")).await;
    env.create(hpa("web", 2, 10)).await;
    assert_eq!(replicas(&env, "web"), 10, "above the maximum: down to it");
    let status = kubectl_out(
        &env,
        &[
            "get",
            "hpa",
            "web",
            "-n",
            NS,
            "-o",
            "jsonpath={.status.currentReplicas} {.status.desiredReplicas}",
        ],
    )
    .await;
    assert_eq!(status, "10 10", "the status follows the scale");
    env.create(deployment(NS, "idle", 1, "shop/idle:1")).await;
    env.create(hpa("idle", 3, 5)).await;
    assert_eq!(replicas(&env, "idle"), 3, "below the minimum: up to it");
    env.create(deployment(NS, "inside", 4, "shop/inside:1"))
        .await;
    env.create(hpa("inside", 2, 10)).await;
    assert_eq!(replicas(&env, "inside"), 4, "inside the bounds: left alone");
}

#[tokio::test]
async fn planned_maintenance_pins_the_autoscaler_for_the_window_and_gives_its_bounds_back() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 3, "shop/api:1")).await;
    env.create(hpa("api", 2, 10)).await;
    assert_eq!(replicas(&env, "api"), 3);
    let w = workload(NS, "deployment", "api");
    let mut cfg = RunbookConfig::default();
    cfg.rollout_timeout = Duration::from_secs(20);
    cfg.verify_interval = Duration::from_millis(50);
    let probe = PodsReady {
        platform: env.platform.clone(),
        workload: w.clone(),
    };
    let t = Targets::new(Arc::new(env.platform.clone()), w.clone())
        .with_probe(Arc::new(probe))
        .with_config(cfg);
    let plan =
        MaintenancePlan::new(ImageUpdate::new("shop/api:2".parse().unwrap())).with_scale_to(1);

    let planned = planned_maintenance(&approving_context(Mode::DryRun), &t, &plan)
        .await
        .unwrap();
    assert_eq!(planned.outcome, RunOutcome::Planned);
    assert!(
        planned.actions.iter().any(|a| a.step == "pin_autoscaler"
            && a.changes
                .iter()
                .any(|c| c.contains("replicas 2..10 -> 1..1"))),
        "{}",
        planned.to_markdown()
    );
    env.cluster.clear_requests();
    let report = planned_maintenance(&approving_context(Mode::Execute), &t, &plan)
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let writes: Vec<String> = env
        .cluster
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        !writes.iter().any(|w| w.ends_with("/scale")),
        "the Deployment is never scaled against its autoscaler: {writes:?}"
    );
    let hpa_writes = writes
        .iter()
        .filter(|w| w.contains("/horizontalpodautoscalers/api") && !w.ends_with("/status"))
        .count();
    assert_eq!(hpa_writes, 2, "pin and restore: {writes:?}");
    env.settle().await;
    let bounds = kubectl_out(
        &env,
        &[
            "get",
            "hpa",
            "api",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.minReplicas} {.spec.maxReplicas} {.spec.metrics[0].resource.target.averageUtilization}",
        ],
    )
    .await;
    assert_eq!(bounds, "2 10 70", "the bounds and target came back");
    // Held at 1 during the window, the count only rises back to the minimum: the
    // autoscaler, not the runbook, chooses it again.
    assert_eq!(replicas(&env, "api"), 2);
    let image = kubectl_out(
        &env,
        &[
            "get",
            "deployment",
            "api",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    )
    .await;
    assert_eq!(image, "shop/api:2");
}
