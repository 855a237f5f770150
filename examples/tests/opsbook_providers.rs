//! `opsbook provider-check` and `opsbook auth-check` (issue 14), run as a user runs them: a
//! system file with `[[providers]]` and `[auth]`, on the Kubernetes API server double.
//!
//! `provider-check` probes a real local HTTP server (axum on loopback): one provider healthy
//! with the right bearer token read from a file, one refusing a wrong token (fallback: the
//! healthy one), one rate limited with `Retry-After: 120` (fallback: a degraded mode), one in
//! an outage with no fallback; the token appears nowhere in the output. `auth-check --execute`
//! compares the `[auth]` signing key across the pods of a Deployment through the double's exec
//! (`printenv`), and prints no value. Needs no external service: runs with `CI=true` too.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

const TOKEN: &str = "sk_live_cli-7a2d-never-printed";
const SIGNING: &str = "jwt-signing-5be1-never-printed";

async fn provider_api() -> String {
    ops_tests::provider_api(TOKEN).await
}

fn finding<'a>(report: &'a Value, prefix: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no finding {prefix}: {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_check_classifies_real_providers_and_names_the_fallback() {
    let env = support::crash_looping_api().await;
    let base = provider_api().await;
    let right = env.dir.path().join("payments.key");
    let wrong = env.dir.path().join("payments-eu.key");
    std::fs::write(&right, format!("{TOKEN}\n")).unwrap();
    std::fs::write(&wrong, "sk_live_revoked-also-never-printed").unwrap();
    let system = env.system_file();
    let mut text = std::fs::read_to_string(&system).unwrap();
    write!(
        text,
        r#"
[[providers]]
name = "payments"
url = "{base}/v1/health"
timeout = "2s"
credential = {{ file = "{right}" }}

[[providers]]
name = "payments-eu"
url = "{base}/v1/health"
credential = {{ file = "{wrong}" }}
fallbacks = [{{ provider = "payments" }}]

[[providers]]
name = "llm"
url = "{base}/limited"
fallbacks = [{{ degraded = "cached responses" }}]

[[providers]]
name = "email"
url = "{base}/down"
"#,
        right = right.display(),
        wrong = wrong.display(),
    )
    .unwrap();
    std::fs::write(&system, text).unwrap();

    let out = tokio::time::timeout(
        Duration::from_secs(60),
        support::opsbook(&system, &["--json", "provider-check"]),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unresolved: exit 3.
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(report["runbook"], json!("provider_failure"), "{stdout}");
    assert_eq!(
        finding(&report, "payments:")["title"],
        json!("payments: healthy")
    );
    assert_eq!(
        finding(&report, "payments-eu:")["title"],
        json!("payments-eu: credential refused (401): fallback provider payments applies")
    );
    assert_eq!(
        finding(&report, "llm:")["title"],
        json!(
            "llm: rate limited (retry after 120 s): fallback degraded mode cached responses applies"
        )
    );
    assert_eq!(
        finding(&report, "email:")["title"],
        json!("email: outage (503): no healthy fallback: escalate")
    );
    for shown in [&*stdout, &*stderr] {
        assert!(!shown.contains(TOKEN), "the token leaked: {shown}");
        assert!(
            !shown.contains("sk_live_revoked"),
            "the token leaked: {shown}"
        );
    }
    // The Markdown report says the same.
    let out = support::opsbook(&system, &["provider-check"])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("no healthy fallback: escalate"), "{stdout}");
    assert!(!stdout.contains(TOKEN));
    assert!(support::writes(&env.cluster).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_cycle_in_the_system_file_is_a_config_error() {
    let env = support::crash_looping_api().await;
    let system = env.system_file();
    let mut text = std::fs::read_to_string(&system).unwrap();
    text.push_str(
        r#"
[[providers]]
name = "a"
url = "https://a.example/"
fallbacks = [{ provider = "b" }]

[[providers]]
name = "b"
url = "https://b.example/"
fallbacks = [{ provider = "a" }]
"#,
    );
    std::fs::write(&system, text).unwrap();
    let out = support::opsbook(&system, &["provider-check"])
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("cycle"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_check_compares_the_signing_key_across_pods_without_showing_it() {
    let env = support::crash_looping_api().await;
    let base = provider_api().await;
    env.cluster
        .create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "auth", "namespace": "shop"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "auth"}},
                     "template": {"metadata": {"labels": {"app": "auth"}},
                                  "spec": {"containers": [{"name": "app", "image": "shop/auth:1",
                                      "env": [{"name": "JWT_SECRET", "value": SIGNING}]}]}}}
        }))
        .unwrap();
    env.cluster.settle(Duration::from_secs(10)).await.unwrap();
    let system = env.system_file();
    let mut text = std::fs::read_to_string(&system).unwrap();
    write!(
        text,
        "\n[services.auth]\nworkload = \"deployment/auth\"\nhealth = \"{base}/ok\"\n\n\
         [auth]\nsigning_key_env = \"JWT_SECRET\"\nclock_skew_max = \"1m\"\n"
    )
    .unwrap();
    std::fs::write(&system, text).unwrap();

    let out = tokio::time::timeout(
        Duration::from_secs(60),
        support::opsbook(
            &system,
            &["--json", "auth-check", "--service", "auth", "--execute"],
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(report["runbook"], json!("auth_failures"), "{stdout}");
    finding(&report, "JWT_SECRET is the same on all 2 instance(s)");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["title"].as_str().unwrap().contains(" answers")),
        "{report:#}"
    );
    for shown in [&*stdout, &*stderr] {
        assert!(!shown.contains(SIGNING), "the signing key leaked: {shown}");
    }
    // Reading only: nothing written to the cluster.
    let writes = support::writes(&env.cluster);
    assert!(
        writes
            .iter()
            .all(|(method, _)| !matches!(method.as_str(), "PATCH" | "PUT" | "DELETE")),
        "{writes:?}"
    );

    // A plan runs no command in any pod and says so.
    let out = support::opsbook(&system, &["--json", "auth-check", "--service", "auth"])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(report["outcome"], json!("planned"), "{stdout}");
    finding(&report, "signing secret JWT_SECRET not compared");
}
