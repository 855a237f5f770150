//! `api-down` against a Kubernetes workload, as a user runs it: a kubeconfig, a namespace and
//! `deployment/NAME`, here on the API server double with a crash-looping release. The dry run
//! plans the rollback and writes nothing to the cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_plans_a_rollback_on_kubernetes_and_writes_nothing() {
    let support::CrashLoop {
        server: _server,
        cluster,
        dir,
        kubeconfig,
        health,
    } = support::crash_looping_api().await;
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
    let writes = support::writes(&cluster);
    assert!(writes.is_empty(), "a dry run wrote {writes:?}");
}
