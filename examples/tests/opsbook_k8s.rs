//! `opsbook` against a Kubernetes system, as a user runs it: a system file naming a kubeconfig
//! and a namespace, here on the API server double with a crash-looping release. The plan
//! (`api-down`, and `restart`) names the rollback and the restart and writes nothing to the
//! cluster; `--json` is parsed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsbook_plans_on_kubernetes_from_a_system_file_and_writes_nothing() {
    let env = support::crash_looping_api().await;
    let system = env.system_file();
    let cluster = &env.cluster;
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

    let writes = support::writes(cluster);
    assert!(writes.is_empty(), "a plan wrote {writes:?}");
}
