//! `opsbook` against a Kubernetes system, as a user runs it: a system file naming a kubeconfig
//! and a namespace, here on the API server double with a crash-looping release. The plan
//! (`api-down`, and `restart`) names the rollback and the restart and writes nothing to the
//! cluster; `--json` is parsed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::time::Duration;

use k8s_double::{ApiServer, PodFault};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsbook_plans_on_kubernetes_from_a_system_file_and_writes_nothing() {
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
    let system = dir.path().join("opsbook.toml");
    std::fs::write(
        &system,
        format!(
            "name = \"shop\"\n\n[platform]\nkind = \"kubernetes\"\nnamespace = \"shop\"\nkubeconfig = \"{}\"\n\n\
             [services.api]\nworkload = \"deployment/api\"\nhealth = \"{health}\"\n\n[journal]\npath = \"{}\"\n",
            kubeconfig.display(),
            dir.path().join("journal.db").display()
        ),
    )
    .unwrap();
    let opsbook = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_opsbook"));
        command
            .arg("--system")
            .arg(&system)
            .args(args)
            .env_remove("OPSBOOK_JOURNAL");
        // The double serves from this process's runtime: wait for the binary off its threads.
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let out = opsbook(&["--json", "api-down"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(report["outcome"], json!("planned"), "{stdout}");
    assert_eq!(report["target"], json!("shop/deployment/api"), "{stdout}");
    let planned: Vec<&str> = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["step"].as_str())
        .collect();
    assert!(planned.contains(&"rollback"), "{planned:?}");

    let out = opsbook(&["restart"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("restart"), "{stdout}");

    let writes: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "a plan wrote {writes:?}");
}
