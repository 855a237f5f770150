//! Issue 14, resources and autoscaling, with kubectl as the oracle: `kubectl set resources`
//! and `kubectl autoscale` act in one namespace of the API server double, `KubePlatform` on
//! identical objects in another, and the tests compare what each sent and the objects that
//! result (kubectl's HPA is taken from its client-side dry run: see the autoscale test). What
//! kubectl has no verb for (a memory target, raising an HPA's minimum, refusals)
//! is checked on opsbook alone, against the objects in the double.
//!
//! With `CI=true` these tests run, never skip: scripts/provision puts kubectl on the PATH.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use ops_core::platform::{
    AutoscalerSpec, ContainerSelector, CpuQuantity, MemoryQuantity, ResourceChange, ResourceUpdate,
    ScaleOptions,
};
use ops_core::testing::conformance;
use ops_core::{ErrorKind, Platform as _};
use serde_json::{Value, json};
use support::{Env, comparable, kubectl_available, workload, writes};

const K: &str = "by-kubectl";
const O: &str = "by-opsbook";

fn cpu(s: &str) -> CpuQuantity {
    s.parse().unwrap()
}

fn mem(s: &str) -> MemoryQuantity {
    s.parse().unwrap()
}

/// A Deployment with an `app` container and a `side` container holding a CPU limit.
fn two_container_deployment(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "app", "image": "shop/web:1"},
                    {"name": "side", "image": "shop/side:1", "resources": {"limits": {"cpu": "50m"}}},
                ]},
            },
        },
    })
}

async fn twins(env: &Env, name: &str) {
    for ns in [K, O] {
        env.create(two_container_deployment(ns, name)).await;
    }
}

/// The Deployment's spec, annotations and status with identity and times removed.
fn deployment_state(env: &Env, ns: &str, name: &str) -> Value {
    let d = comparable(env.get("Deployment", ns, name));
    json!({"annotations": d["metadata"]["annotations"], "spec": d["spec"], "status": d["status"]})
}

/// The pods' containers (name and resources) of a namespace, sorted.
fn pod_resources(env: &Env, ns: &str) -> Vec<Value> {
    let mut out: Vec<Value> = env
        .cluster
        .list("Pod", ns)
        .into_iter()
        .map(|p| {
            json!(
                p["spec"]["containers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| json!({"name": c["name"], "resources": c["resources"]}))
                    .collect::<Vec<_>>()
            )
        })
        .collect();
    out.sort_by_key(ToString::to_string);
    out
}

/// `kubectl set resources deployment/web ARGS` in one namespace, `update` by opsbook in the
/// other: the same writes and the same Deployment after the rollout; opsbook's change.
async fn set_by_both(env: &Env, args: &[&str], update: ResourceUpdate) -> ResourceChange {
    twins(env, "web").await;
    env.cluster.clear_requests();
    let mut command = vec!["set", "resources", "deployment/web", "-n", K];
    command.extend_from_slice(args);
    let run = env.kubectl(&command).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let change = env
        .platform
        .set_resources(&workload(O, "deployment", "web"), update)
        .await
        .expect("opsbook set_resources");
    env.settle().await;
    let (k, o) = (writes(&env.cluster, K), writes(&env.cluster, O));
    assert_eq!(o, k, "same method, path, patch type and body as kubectl");
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].2, "application/strategic-merge-patch+json");
    assert_eq!(
        deployment_state(env, O, "web"),
        deployment_state(env, K, "web")
    );
    change
}

#[tokio::test]
async fn set_resources_on_one_container_sends_kubectls_patch_and_ends_in_the_same_objects() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    let update = ResourceUpdate::new(ContainerSelector::named("app"))
        .limit_cpu(cpu("200m"))
        .limit_memory(mem("512Mi"))
        .request_cpu(cpu("100m"))
        .request_memory(mem("256Mi"));
    let args = [
        "-c=app",
        "--limits=cpu=200m,memory=512Mi",
        "--requests=cpu=100m,memory=256Mi",
    ];
    let change = set_by_both(&env, &args, update).await;
    assert_eq!(
        pod_resources(&env, O),
        pod_resources(&env, K),
        "the pods rolled out alike"
    );
    assert!(change.rolled_out);
    assert_eq!(change.before.len(), 1);
    assert_eq!(
        change.lines(),
        vec!["app: requests cpu none -> 100m, memory none -> 256Mi; limits cpu none -> 200m, memory none -> 512Mi".to_owned()]
    );
    // What opsbook reads back is what kubectl wrote in its namespace.
    let by_kubectl = env
        .platform
        .resources(&workload(K, "deployment", "web"))
        .await
        .unwrap();
    let web = workload(O, "deployment", "web");
    assert_eq!(env.platform.resources(&web).await.unwrap(), by_kubectl);
    let app = &env.get("Deployment", O, "web")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        app["resources"],
        json!({"limits": {"cpu": "200m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}})
    );
}

#[tokio::test]
async fn set_resources_on_every_container_matches_kubectl_without_c() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    let update = ResourceUpdate::new(ContainerSelector::All).limit_memory(mem("1.5Gi"));
    let change = set_by_both(&env, &["--limits=memory=1.5Gi"], update).await;
    assert_eq!(change.after.len(), 2);
    // The side container keeps its CPU limit; both get 1536Mi, kubectl's canonical form.
    let side = &env.get("Deployment", O, "web")["spec"]["template"]["spec"]["containers"][1];
    assert_eq!(
        side["resources"]["limits"],
        json!({"cpu": "50m", "memory": "1536Mi"})
    );
}

#[tokio::test]
async fn resources_conform_and_refusals_send_nothing() {
    let env = Env::start().await;
    env.create(two_container_deployment(O, "web")).await;
    let web = workload(O, "deployment", "web");
    conformance::resources::resources_set_and_read_back(&env.platform, &web, "app").await;
    env.settle().await;
    // The conformance function's refusals (request above limit, unknown container, stale
    // expectation) were decided before sending: one patch only.
    let sent = writes(&env.cluster, O);
    assert_eq!(sent.len(), 1, "{sent:?}");
    // A server-side dry run sends the patch with dryRun and changes nothing.
    let before = env.get("Deployment", O, "web");
    env.cluster.clear_requests();
    env.platform
        .set_resources(
            &web,
            ResourceUpdate::new(ContainerSelector::All)
                .limit_memory(mem("2Gi"))
                .with_dry_run(true),
        )
        .await
        .expect("dry run");
    let requests = env.cluster.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PATCH" && r.query.contains("dryRun=All")),
        "{requests:?}"
    );
    assert_eq!(
        comparable(env.get("Deployment", O, "web")),
        comparable(before)
    );
}

/// kubectl 1.32 creates HPAs through its typed client, which speaks protobuf to the server
/// (the double speaks JSON only): kubectl's own object is taken from `kubectl autoscale
/// --dry-run=client -o json`, which reads the Deployment from the double and prints the HPA it
/// would send, and opsbook's create must send and store the same object.
#[tokio::test]
async fn autoscale_creates_kubectls_hpa_and_finds_it_by_its_scale_target() {
    if !kubectl_available() {
        return;
    }
    let env = Env::start().await;
    twins(&env, "web").await;
    env.cluster.clear_requests();
    let run = env
        .kubectl(&[
            "autoscale",
            "deployment",
            "web",
            "--min=2",
            "--max=10",
            "--cpu-percent=70",
            "-n",
            K,
            "--dry-run=client",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let by_kubectl: Value = serde_json::from_str(&run.stdout).expect("kubectl printed JSON");
    assert!(
        writes(&env.cluster, K).is_empty(),
        "a client dry run sends nothing"
    );
    let web = workload(O, "deployment", "web");
    let spec = AutoscalerSpec::new(2, 10)
        .unwrap()
        .with_cpu_target(70)
        .unwrap();
    let change = env
        .platform
        .set_autoscaler(&web, spec)
        .await
        .expect("opsbook autoscale");
    assert!(change.created());

    let o = writes(&env.cluster, O);
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(
        (o[0].0.as_str(), o[0].1.as_str()),
        (
            "POST",
            "/apis/autoscaling/v2/namespaces/NS/horizontalpodautoscalers"
        )
    );
    assert_eq!(
        by_kubectl["apiVersion"],
        json!("autoscaling/v2"),
        "{by_kubectl}"
    );
    assert_eq!(o[0].3["apiVersion"], by_kubectl["apiVersion"]);
    assert_eq!(o[0].3["kind"], by_kubectl["kind"]);
    assert_eq!(o[0].3["metadata"]["name"], by_kubectl["metadata"]["name"]);
    assert_eq!(
        o[0].3["spec"], by_kubectl["spec"],
        "the same spec as kubectl's"
    );
    let stored = comparable(env.get("HorizontalPodAutoscaler", O, "web"));
    assert_eq!(stored["spec"], by_kubectl["spec"]);

    // Found by its scaleTargetRef and read as created.
    let mine = env.platform.autoscaler(&web).await.unwrap().expect("found");
    assert_eq!(
        (
            mine.min_replicas,
            mine.max_replicas,
            mine.cpu_utilization,
            mine.memory_utilization
        ),
        (2, 10, Some(70), None)
    );
    // kubectl sees it as the Deployment's autoscaler too.
    let run = env
        .kubectl(&["get", "hpa", "web", "-n", O, "-o", "json"])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(seen["spec"]["scaleTargetRef"]["name"], json!("web"));
    // Scaling by hand is refused while the HPA owns the replicas.
    let err = env
        .platform
        .scale(&web, 5, ScaleOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn the_seeds_hpa_with_a_memory_target_conforms_and_other_metrics_survive_an_update() {
    let env = Env::start().await;
    env.create(two_container_deployment(O, "web")).await;
    env.create(two_container_deployment(O, "other")).await;
    let web = workload(O, "deployment", "web");
    // An HPA for another Deployment is not web's.
    env.cluster
        .create(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "other-hpa", "namespace": O},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"},
                     "minReplicas": 1, "maxReplicas": 3},
        }))
        .unwrap();
    conformance::resources::autoscaler_create_then_raise_min(&env.platform, &web).await;
    let hpa = env.get("HorizontalPodAutoscaler", O, "web");
    assert_eq!(hpa["apiVersion"], json!("autoscaling/v2"));
    assert_eq!(
        hpa["spec"]["metrics"],
        json!([
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}},
        ])
    );
    assert_eq!(hpa["spec"]["minReplicas"], json!(3));

    // A Pods metric and the behaviour set by someone else survive opsbook's update.
    env.cluster
        .modify("HorizontalPodAutoscaler", O, "web", |h| {
            h["spec"]["metrics"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "100"}}}));
            h["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 300}});
        })
        .unwrap();
    let current = env.platform.autoscaler(&web).await.unwrap().unwrap();
    env.platform
        .set_autoscaler(
            &web,
            AutoscalerSpec::from_autoscaler(&current)
                .unwrap()
                .with_min(4)
                .unwrap()
                .expecting_min(3),
        )
        .await
        .expect("raise");
    let hpa = env.get("HorizontalPodAutoscaler", O, "web");
    assert_eq!(hpa["spec"]["minReplicas"], json!(4));
    assert_eq!(hpa["spec"]["metrics"].as_array().unwrap().len(), 3);
    assert_eq!(hpa["spec"]["metrics"][2]["type"], json!("Pods"));
    assert_eq!(
        hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        json!(300)
    );
    // The other Deployment's HPA was never touched.
    assert_eq!(
        env.get("HorizontalPodAutoscaler", O, "other-hpa")["spec"]["maxReplicas"],
        json!(3)
    );
    // A DaemonSet has no replicas to autoscale.
    let ds = workload(O, "daemonset", "agent");
    let err = env
        .platform
        .set_autoscaler(&ds, AutoscalerSpec::new(1, 2).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn a_paused_deployment_takes_the_new_limits_without_a_rollout() {
    let env = Env::start().await;
    env.create(two_container_deployment(O, "web")).await;
    env.cluster
        .modify("Deployment", O, "web", |d| {
            d["spec"]["paused"] = json!(true);
        })
        .unwrap();
    let change = env
        .platform
        .set_resources(
            &workload(O, "deployment", "web"),
            ResourceUpdate::new(ContainerSelector::named("app")).limit_memory(mem("1Gi")),
        )
        .await
        .unwrap();
    assert!(
        !change.rolled_out,
        "paused: nothing rolls out until resumed"
    );
    let app = &env.get("Deployment", O, "web")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(app["resources"]["limits"]["memory"], json!("1Gi"));
}
