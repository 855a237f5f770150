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
//! The test creates a namespace `opsbook-test-<random>` with one Deployment whose pods print an
//! error line, runs the conformance checks (listing, status with pods, unknown workload,
//! rolling restart to healthy, filtered and tailed logs) and deletes the namespace (left
//! behind only if an assertion fails; delete it by hand then). Without the variable it says so
//! and passes: no cluster is reachable from CI. The same function runs against the API server
//! double below, so the code path is exercised on every run.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use ops_core::platform::RolloutOptions;
use ops_core::testing::conformance::platform as conformance;
use ops_core::{PlatformExt as _, WorkloadKind, WorkloadRef};
use serde_json::json;

/// Create a namespace and a Deployment on the cluster of `kubeconfig`, run the conformance
/// checks, delete the namespace. `before_checks` runs once the Deployment is rolled out (the
/// double uses it to give the pods log lines; a real cluster's pods print their own).
async fn conformance_on(kubeconfig: &Path, image: &str, before_checks: impl AsyncFnOnce(&str)) {
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
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "conformance"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "conformance"}},
                 "template": {"metadata": {"labels": {"app": "conformance"}},
                              "spec": {"containers": [{"name": "app", "image": image,
                                  "command": ["sh", "-c", "echo 'ERROR: conformance line'; echo started; exec sleep 3600"]}]}}}
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("deployment created");
    let api = WorkloadRef::new(&ns, WorkloadKind::Deployment, "conformance").expect("ref");
    let ready = RolloutOptions::default()
        .with_timeout(Duration::from_secs(180))
        .with_poll_interval(Duration::from_millis(200));
    platform
        .wait_rolled_out(&api, ready)
        .await
        .expect("rolled out");
    before_checks(&ns).await;

    conformance::status_lists_instances(&platform, &api).await;
    conformance::restart_then_ready(&platform, &api, Duration::from_secs(180)).await;
    conformance::logs_are_filtered_and_tailed(&platform, &api).await;

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
    conformance_on(Path::new(&path), &image, async |_| {}).await;
}

#[tokio::test]
async fn the_real_cluster_test_runs_against_the_double() {
    let env = support::Env::start().await;
    let cluster = env.cluster.clone();
    conformance_on(&env.kubeconfig, "busybox:1.36", async move |ns: &str| {
        // The double runs no process: give each pod the lines its command would print.
        for pod in cluster.list("Pod", ns) {
            let name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            cluster.append_log(ns, &name, "app", "ERROR: conformance line");
            cluster.append_log(ns, &name, "app", "started");
        }
    })
    .await;
}
