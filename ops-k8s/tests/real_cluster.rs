//! The Platform conformance suite on a real cluster.
//!
//! Set `OPSBOOK_TEST_KUBECONFIG` to a kubeconfig whose current context may create and delete
//! a namespace (and, optionally, `OPSBOOK_TEST_IMAGE` to an image with `sh`, default
//! `busybox:1.36`):
//!
//! ```sh
//! OPSBOOK_TEST_KUBECONFIG=~/.kube/config cargo test --workspace -- real_cluster
//! ```
//!
//! The test creates a namespace `opsbook-test-<random>` with a Secret, a Deployment whose pods
//! use it, have requests and limits and print a known line, and a second Deployment; runs the
//! whole Platform suite (`run_all`: every method; `set_image` to `OPSBOOK_TEST_OTHER_IMAGE`,
//! default `busybox:1.37`, and back; `resource_usage` claimed only where metrics-server
//! answers) and deletes the namespace (left behind only if an assertion fails; delete it by
//! hand then). Without the variable it says so and passes: no cluster is reachable from CI.
//! The same function runs against the API server double below, so the code path is exercised
//! on every run.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use ops_core::platform::RolloutOptions;
use ops_core::testing::conformance::platform as conformance;
use ops_core::{PlatformExt as _, WorkloadKind, WorkloadRef};
use serde_json::json;

/// Create a namespace, a Secret and two Deployments on the cluster of `kubeconfig`, run the
/// whole conformance suite, delete the namespace. `before_checks` runs once the Deployment is rolled out (the
/// double uses it to give the pods log lines; a real cluster's pods print their own).
async fn conformance_on(
    kubeconfig: &Path,
    image: &str,
    other_image: &str,
    before_checks: impl AsyncFnOnce(&str),
) {
    let platform = ops_k8s::KubePlatformBuilder::from_env()
        .kubeconfig(kubeconfig)
        .build()
        .await
        .expect("platform from the kubeconfig");
    let file = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let ns = format!("opsbook-test-{:08x}", fastrand::u32(..));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "conformance-creds"},
        "data": {"password": "czNjcjN0"},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret created");
    let deployment = |name: &str, replicas: u32, app: serde_json::Value| -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [app]}}}
        }))
        .expect("deployment")
    };
    let sleeper = json!({"name": "app", "image": image,
        "command": ["sh", "-c", "echo 'ERROR: conformance line'; echo started; exec sleep 3600"],
        "resources": {"limits": {"cpu": "200m", "memory": "64Mi"},
                      "requests": {"cpu": "50m", "memory": "32Mi"}},
        "envFrom": [{"secretRef": {"name": "conformance-creds"}}]});
    let worker = json!({"name": "app", "image": image, "command": ["sleep", "3600"]});
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    for d in [
        deployment("conformance", 2, sleeper),
        deployment("worker", 1, worker),
    ] {
        deployments
            .create(&PostParams::default(), &d)
            .await
            .expect("deployment created");
    }
    let api = WorkloadRef::new(&ns, WorkloadKind::Deployment, "conformance").expect("ref");
    let ready = RolloutOptions::default()
        .with_timeout(Duration::from_secs(180))
        .with_poll_interval(Duration::from_millis(200));
    platform
        .wait_rolled_out(&api, ready)
        .await
        .expect("rolled out");
    before_checks(&ns).await;

    let fixture = conformance::PlatformFixture::new(api, "ERROR: conformance line")
        .with_other_image(other_image.parse().expect("image"))
        .with_secret("conformance-creds".parse().expect("name"))
        .with_autoscaled(WorkloadRef::new(&ns, WorkloadKind::Deployment, "worker").expect("ref"))
        .with_deadline(Duration::from_secs(180));
    conformance::run_all(&platform, &fixture).await;

    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("namespace deleted");
}

#[tokio::test]
async fn real_cluster_conformance_when_opsbook_test_kubeconfig_is_set() {
    let Some(path) = std::env::var_os("OPSBOOK_TEST_KUBECONFIG") else {
        eprintln!(
            "skipping: set OPSBOOK_TEST_KUBECONFIG to run the conformance suite on a real cluster"
        );
        return;
    };
    let image = std::env::var("OPSBOOK_TEST_IMAGE").unwrap_or_else(|_| "busybox:1.36".to_owned());
    let other =
        std::env::var("OPSBOOK_TEST_OTHER_IMAGE").unwrap_or_else(|_| "busybox:1.37".to_owned());
    conformance_on(Path::new(&path), &image, &other, async |_| {}).await;
}

#[tokio::test]
async fn the_real_cluster_test_runs_against_the_double() {
    let env = support::Env::start().await;
    let cluster = env.cluster.clone();
    conformance_on(
        &env.kubeconfig,
        "busybox:1.36",
        "busybox:1.37",
        async move |ns: &str| {
            // The double runs no process: give each pod the lines its command would print.
            for pod in cluster.list("Pod", ns) {
                let name = pod["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                cluster.append_log(ns, &name, "app", "ERROR: conformance line");
                cluster.append_log(ns, &name, "app", "started");
            }
        },
    )
    .await;
}
