//! `opsbook deployment-failure` and `opsbook deploy` against a Kubernetes system, on the API
//! server double with a crash-looping release (`shop/api:2`): the plan names the rollback and
//! writes nothing; executed, the crash loop is diagnosed and rolled back to `shop/api:1`; a
//! release of the crash-looping image is set, fails, and is rolled back; a maintenance window
//! scales down, releases, scales back and rolls back. The health URL is
//! dead, so the verifications after each rollback fail and the runs end unresolved (exit 3):
//! what is checked is what reached the cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::process::Output;

use serde_json::{Value, json};

/// The image of the `api` Deployment's only container.
fn image(cluster: &k8s_double::Cluster) -> Value {
    cluster.get("Deployment", "shop", "api").unwrap()["spec"]["template"]["spec"]["containers"]
        [0]["image"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsbook_rolls_back_a_crash_loop_and_a_release_that_does_not_hold() {
    let env = support::crash_looping_api().await;
    let system = env.system_file();
    // Short waits: the double's crash loop never becomes ready.
    let mut text = std::fs::read_to_string(&system).unwrap();
    text.push_str(
        "\n[thresholds]\nrollout_timeout = \"4s\"\nrollout_poll = \"200ms\"\nverify_successes = 1\n\
         verify_interval = \"200ms\"\nverify_timeout = \"1s\"\n",
    );
    std::fs::write(&system, text).unwrap();
    let opsbook = |args: &[&str]| support::opsbook(&system, args);

    // The plan: the crash loop found, the rollback planned, nothing written.
    let out = opsbook(&["--json", "deployment-failure"]).await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan = report(&out);
    assert_eq!(plan["outcome"], json!("planned"), "{plan}");
    assert!(plan.to_string().contains("\"step\":\"rollback\""), "{plan}");
    assert!(plan.to_string().contains("CrashLoopBackOff"), "{plan}");
    assert!(support::writes(&env.cluster).is_empty());

    // Executed: rolled back to the release before the crash loop.
    let out = opsbook(&[
        "--json",
        "deployment-failure",
        "--execute",
        "--yes-to",
        "rollback",
        "--yes-to",
        "notify",
    ])
    .await
    .unwrap();
    let done = report(&out);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{done}");
    assert_eq!(image(&env.cluster), json!("shop/api:1"), "{done}");

    // A release of the crash-looping image: set with its cause, then rolled back.
    env.cluster.clear_requests();
    let out = opsbook(&[
        "--json",
        "deploy",
        "--image",
        "shop/api:2",
        "--cause",
        "release 2 again",
        "--execute",
        "--yes-to",
        "set_image",
        "--yes-to",
        "rollback",
    ])
    .await
    .unwrap();
    let deployed = report(&out);
    assert_eq!(out.status.code(), Some(3), "{deployed}");
    let released = taken(&deployed);
    assert_eq!(released, ["set_image", "rollback"], "{deployed}");
    assert_eq!(image(&env.cluster), json!("shop/api:1"), "{deployed}");
    let patches = support::writes(&env.cluster);
    assert_eq!(patches.len(), 2, "one set image, one undo: {patches:?}");

    // A maintenance window: scaled down to 1, released, scaled back to 2 (always), and the
    // release rolled back because the service never answers.
    env.cluster.clear_requests();
    let out = opsbook(&[
        "--json",
        "maintenance",
        "--image",
        "shop/api:3",
        "--scale-to",
        "1",
        "--execute",
        "--yes-to",
        "notify",
        "--yes-to",
        "scale_down",
        "--yes-to",
        "set_image",
        "--yes-to",
        "scale_back",
        "--yes-to",
        "rollback",
    ])
    .await
    .unwrap();
    let window = report(&out);
    assert_eq!(out.status.code(), Some(3), "{window}");
    let windowed = taken(&window);
    assert_eq!(
        windowed,
        ["scale_down", "set_image", "scale_back", "rollback"],
        "{window}"
    );
    let api = env.cluster.get("Deployment", "shop", "api").unwrap();
    assert_eq!(api["spec"]["replicas"], json!(2), "{window}");
    assert_eq!(image(&env.cluster), json!("shop/api:1"), "{window}");

    // A bad image reference is the system-file/usage class of error, naming the flag.
    let out = opsbook(&["deploy", "--image", "Shop/API:2"]).await.unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--image"));
}

/// The JSON report a `--json` run printed.
fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// The steps a report says were taken, notifications left out, in order.
fn taken(report: &Value) -> Vec<String> {
    report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "taken" && a["step"] != "notify")
        .filter_map(|a| a["step"].as_str().map(str::to_owned))
        .collect()
}
