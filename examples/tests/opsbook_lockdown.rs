//! `opsbook lockdown` and `opsbook lift-lockdown` (issue 14 §lockdown) as a user runs them,
//! against a Kubernetes system on the API server double: the plan writes nothing; executed,
//! the deny-all NetworkPolicy is made, the evidence bundle is written with its SHA256SUMS, and
//! the report ends with the undo command, which, run as printed, removes only that policy;
//! `opsbook evidence` writes a bundle of its own and nothing to the cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use serde_json::{Value, json};

/// The real `sha256sum -c --strict` accepts the bundle's manifest.
fn sha256sum_checks(bundle: &std::path::Path) {
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(bundle)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::too_many_lines,
    reason = "one user session: plan, lock down, lift as printed, capture"
)]
async fn opsbook_locks_down_captures_evidence_and_its_printed_undo_lifts_it() {
    let env = support::crash_looping_api().await;
    let system = env.system_file();
    let (cluster, dir) = (&env.cluster, &env.dir);
    let evidence = dir.path().join("evidence");
    std::fs::create_dir(&evidence).unwrap();
    let opsbook = |args: Vec<String>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_opsbook"));
        command
            .arg("--system")
            .arg(&system)
            .arg("--json")
            .args(args)
            .env_remove("OPSBOOK_JOURNAL")
            .stdin(std::process::Stdio::null());
        // The double serves from this process's runtime: wait for the binary off its threads.
        tokio::task::spawn_blocking(move || {
            let out = command.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let report: Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
            (out.status.code(), report)
        })
    };
    let ev = evidence.display().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        ["lockdown", "--evidence-dir", &ev, "--reason", "leaked key"]
            .iter()
            .chain(extra)
            .map(ToString::to_string)
            .collect()
    };

    // The plan writes nothing.
    let (code, plan) = opsbook(args(&[])).await.unwrap();
    assert_eq!(code, Some(0), "{plan}");
    assert_eq!(plan["outcome"], json!("planned"));
    assert!(support::writes(cluster).is_empty());
    assert_eq!(std::fs::read_dir(&evidence).unwrap().count(), 0);

    // Executed with every step approved.
    let (code, report) = opsbook(args(&[
        "--execute",
        "--yes-to",
        "isolate",
        "--yes-to",
        "capture_evidence",
        "--yes-to",
        "notify",
    ]))
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["outcome"], json!("recovered"), "{report}");
    let policies = cluster.list("NetworkPolicy", "shop");
    assert_eq!(policies.len(), 1);
    assert_eq!(
        policies[0]["spec"]["podSelector"],
        json!({"matchLabels": {"app": "api"}})
    );
    let summary = report["summary"].as_str().unwrap();
    let undo = summary
        .split("Undo after verification: ")
        .nth(1)
        .expect("the summary names the undo")
        .trim();
    assert!(
        undo.starts_with("opsbook lift-lockdown --namespace shop --id ld-"),
        "{undo}"
    );
    let id = undo.rsplit(' ').next().unwrap();
    let bundle = evidence.join(id);
    sha256sum_checks(&bundle);
    assert!(bundle.join("workloads/api.json").is_file());

    // The undo, as printed (the api still crash-loops, so the run ends unresolved: exit 3).
    let mut lift: Vec<String> = undo.split(' ').skip(1).map(str::to_owned).collect();
    lift.extend(["--execute", "--yes-to", "lift", "--yes-to", "notify"].map(String::from));
    let (code, lifted) = opsbook(lift).await.unwrap();
    assert_eq!(lifted["runbook"], json!("lift_lockdown"), "{lifted}");
    assert!(cluster.list("NetworkPolicy", "shop").is_empty(), "{lifted}");
    assert_eq!(code, Some(3), "{lifted}");
    assert_eq!(lifted["outcome"], json!("unresolved"));
    assert_eq!(
        cluster.list("Deployment", "shop").len(),
        1,
        "nothing else deleted"
    );

    // Evidence on its own: a bundle beside the first, checked by sha256sum, and no write to
    // the cluster.
    cluster.clear_requests();
    let on_demand = dir.path().join("on-demand");
    std::fs::create_dir(&on_demand).unwrap();
    let (code, captured) = opsbook(
        [
            "evidence",
            "--dir",
            &on_demand.display().to_string(),
            "--execute",
            "--yes-to",
            "capture_evidence",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{captured}");
    assert!(support::writes(cluster).is_empty());
    let bundle = std::fs::read_dir(&on_demand)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    sha256sum_checks(&bundle);
}
