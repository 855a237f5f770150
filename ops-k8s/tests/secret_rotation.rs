//! Secret rotation by a new Secret (issue 14 item 6) through the API double, with the real
//! kubectl as the oracle for what is left: every pod template ends on the new Secret, the
//! old one is gone (`kubectl get secret` says `NotFound`) and was deleted only after the
//! rollouts; on failure the workloads are pointed back and the new Secret is gone.
//!
//! With `CI=true` these tests run, never skip: scripts/provision puts kubectl on the PATH.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::platform::ConfigTarget;
use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
use ops_core::runbooks::{RunbookConfig, SecretRotation, Targets, secret_rotation};
use ops_core::testing::ScriptedProbe;
use ops_core::{Platform as _, WorkloadRef};
use serde_json::{Value, json};
use support::{Env, deployment, kubectl_available, statefulset};

const NS: &str = "shop";
const NEW_VALUE: &str = "n3w-k8s-v4lue-77ad";
const OLD_VALUE: &str = "0ld-k8s-v4lue-19be";

/// `s` as the API writes Secret data (base64), through k8s-openapi's own encoding.
fn b64(s: &str) -> String {
    serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

async fn scene(env: &Env) {
    env.create(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db-creds", "namespace": NS, "labels": {"app": "shop"}},
        "data": {"password": b64(OLD_VALUE), "user": b64("app")},
    }))
    .await;
    // api: env secretKeyRef; worker (a StatefulSet): envFrom and a secret volume.
    let mut api = deployment(NS, "api", 2, "shop/api:1");
    api["spec"]["template"]["spec"]["containers"][0]["env"] = json!([
        {"name": "MODE", "value": "db-creds"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}},
    ]);
    env.create(api).await;
    let mut worker = statefulset(NS, "worker", 1, "shop/worker:1");
    worker["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
        json!([{"secretRef": {"name": "db-creds"}}]);
    worker["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "creds", "secret": {"secretName": "db-creds"}}]);
    env.create(worker).await;
    // Another workload on another secret stays as it is.
    env.create(deployment(NS, "other", 1, "shop/other:1")).await;
}

fn targets(env: &Env, probe: ScriptedProbe) -> Targets {
    let mut cfg = RunbookConfig::default().with_verify(
        2,
        Duration::from_millis(100),
        Duration::from_secs(10),
    );
    cfg.rotation = Some(SecretRotation::new(
        ConfigTarget::Secret("db-creds".parse().unwrap()),
        "password",
        NEW_VALUE,
    ));
    cfg.rollout_timeout = Duration::from_secs(30);
    cfg.rollout_poll = Duration::from_millis(100);
    let api: WorkloadRef = format!("{NS}/deployment/api").parse().unwrap();
    Targets::new(Arc::new(env.platform.clone()), api)
        .with_probe(Arc::new(probe))
        .with_config(cfg)
}

fn execute() -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .build()
}

/// Every secret name the pod template of `kind/name` refers to.
fn template_secrets(env: &Env, kind: &str, name: &str) -> Vec<String> {
    let mut template = env.get(kind, NS, name)["spec"]["template"].clone();
    // Literal env values are no references (api's MODE reads "db-creds" on purpose).
    for c in template["spec"]["containers"].as_array_mut().unwrap() {
        if let Some(env) = c["env"].as_array_mut() {
            env.retain(|e| e.get("value").is_none());
        }
    }
    let text = serde_json::to_string(&template).unwrap();
    let mut out: Vec<String> = ["db-creds-v2", "db-creds"]
        .iter()
        .filter(|n| text.contains(&format!("\"{n}\"")))
        .map(|n| (*n).to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn every_template_ends_on_the_new_secret_and_the_old_one_goes_after_the_rollout() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    scene(&env).await;
    env.cluster.clear_requests();
    let report = secret_rotation(&execute(), &targets(&env, ScriptedProbe::new("api")))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    env.settle().await;

    // kubectl: the old secret is gone, the new one holds the new password and the old user.
    let run = env.kubectl(&["get", "secret", "db-creds", "-n", NS]).await;
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("NotFound") || run.stderr.contains("not found"),
        "{}",
        run.stderr
    );
    let run = env
        .kubectl(&["get", "secret", "db-creds-v2", "-n", NS, "-o", "json"])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let secret: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(secret["data"]["password"], json!(b64(NEW_VALUE)));
    assert_eq!(secret["data"]["user"], json!(b64("app")));
    assert_eq!(
        secret["metadata"]["annotations"][ops_k8s::ROTATED_FROM],
        json!("db-creds")
    );
    assert_eq!(secret["metadata"]["labels"]["app"], json!("shop"));

    // Every reference moved; the literal env value that merely reads "db-creds" did not.
    assert_eq!(template_secrets(&env, "Deployment", "api"), ["db-creds-v2"]);
    assert_eq!(
        template_secrets(&env, "StatefulSet", "worker"),
        ["db-creds-v2"]
    );
    let api = env.get("Deployment", NS, "api");
    assert_eq!(
        api["spec"]["template"]["spec"]["containers"][0]["env"][0],
        json!({"name": "MODE", "value": "db-creds"})
    );
    // Every pod runs the new template.
    for pod in env.cluster.list("Pod", NS) {
        let text = serde_json::to_string(&pod["spec"]).unwrap();
        if pod["metadata"]["labels"]["app"] != "other" {
            assert!(
                text.contains("\"db-creds-v2\"")
                    && !text.contains("\"name\":\"db-creds\"")
                    && !text.contains("\"secretName\":\"db-creds\""),
                "{text}"
            );
        }
    }

    // The order on the wire: create, the two patches, then (after the rollouts were read
    // complete) the delete; the delete is the last write.
    let writes: Vec<(String, String)> = env
        .cluster
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let pos = |m: &str, frag: &str| {
        writes
            .iter()
            .position(|(mm, p)| mm == m && p.contains(frag))
            .unwrap_or_else(|| panic!("{m} {frag} in {writes:?}"))
    };
    assert!(pos("POST", "/secrets") < pos("PATCH", "/deployments/api"));
    assert!(pos("PATCH", "/deployments/api") < pos("DELETE", "/secrets/db-creds"));
    assert!(pos("PATCH", "/statefulsets/worker") < pos("DELETE", "/secrets/db-creds"));
    assert_eq!(writes.last().map(|w| w.0.as_str()), Some("DELETE"));
    let order: Vec<&str> = report.timeline.iter().map(|s| s.step.as_str()).collect();
    let delete = order
        .iter()
        .position(|s| *s == "delete_old_secret")
        .unwrap();
    assert!(
        order[..delete]
            .iter()
            .filter(|s| **s == "wait_rolled_out")
            .count()
            == 2,
        "{order:?}"
    );
    let text = format!("{}{}", report.to_json().unwrap(), report.to_markdown());
    assert!(!text.contains(NEW_VALUE) && !text.contains(OLD_VALUE));
}

#[tokio::test]
async fn an_unhealthy_service_points_back_and_deletes_the_new_secret() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    scene(&env).await;
    let report = secret_rotation(
        &execute(),
        &targets(
            &env,
            ScriptedProbe::always(
                "api",
                ops_core::probe::ProbeResult::down("the new password is refused"),
            ),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Unresolved,
        "{}",
        report.to_markdown()
    );
    env.settle().await;
    let run = env
        .kubectl(&["get", "secret", "db-creds-v2", "-n", NS])
        .await;
    assert_ne!(run.code, 0, "the new secret is deleted: {}", run.stdout);
    let run = env
        .kubectl(&["get", "secret", "db-creds", "-n", NS, "-o", "json"])
        .await;
    assert_eq!(run.code, 0, "the old secret stays: {}", run.stderr);
    let secret: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(secret["data"]["password"], json!(b64(OLD_VALUE)));
    assert_eq!(template_secrets(&env, "Deployment", "api"), ["db-creds"]);
    assert_eq!(
        template_secrets(&env, "StatefulSet", "worker"),
        ["db-creds"]
    );
}

#[tokio::test]
async fn a_secret_still_in_use_is_never_deleted() {
    let env = Env::start().await;
    scene(&env).await;
    let err = env
        .platform
        .delete_secret(&NS.parse().unwrap(), &"db-creds".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ops_core::ErrorKind::Conflict, "{}", err.chain());
    assert!(env.cluster.get("Secret", NS, "db-creds").is_some());
    let users = env
        .platform
        .secret_users(&NS.parse().unwrap(), &"db-creds".parse().unwrap())
        .await
        .unwrap();
    let names: Vec<String> = users.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["shop/deployment/api", "shop/statefulset/worker"]);
}
