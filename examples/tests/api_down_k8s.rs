//! `api-down` against a Kubernetes workload, as a user runs it: a kubeconfig, a namespace and
//! `deployment/NAME`, here on the API server double with a crash-looping release. The dry run
//! plans the rollback and writes nothing to the cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::time::Duration;

use k8s_double::{ApiServer, PodFault};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_plans_a_rollback_on_kubernetes_and_writes_nothing() {
    let server = ApiServer::new()
        .tick(Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    let cluster = server.cluster();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    let deployment = |image: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}
        })
    };
    cluster.create(deployment("shop/api:1")).unwrap();
    cluster.settle(Duration::from_secs(10)).await.unwrap();
    cluster.fail_image("api:2", PodFault::CrashLoopBackOff);
    cluster
        .modify("Deployment", "shop", "api", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("shop/api:2");
            d["metadata"]["generation"] = json!(2);
        })
        .unwrap();
    cluster.settle(Duration::from_secs(10)).await.ok();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.clear_requests();

    // The health endpoint is down: nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let health = format!("http://{}/health", closed.local_addr().unwrap());
    drop(closed);
    let journal = dir.path().join("journal.db");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_api-down"));
    command
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--namespace", "shop", "--workload", "deployment/api"])
        .args(["--health-url", &health, "--json", "--journal"])
        .arg(&journal)
        .env_remove("OPSBOOK_PG_URL")
        .env_remove("OPSBOOK_REDIS_URL");
    // The double serves from this process's runtime: wait for the binary off its threads.
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(report["outcome"], json!("planned"), "{stdout}");
    let planned: Vec<&str> = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["step"].as_str())
        .collect();
    assert!(planned.contains(&"rollback"), "{planned:?}");
    let writes: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "a dry run wrote {writes:?}");
}
