//! `auth_failures` (issue 14) against the real Docker engine: containers of one service with
//! different values of the signing secret are found through `printenv` in each container, the
//! odd container is named, the clocks (the host's) agree, and the values appear nowhere in the
//! report's Markdown, JSON or Debug. Skips (prints why) without an engine or images, unless CI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::run::{Mode, Report, RunContext, RunOutcome};
use ops_core::runbooks::{Targets, auth_failures};
use support::Spec;

const VALUE_A: &str = "compose-sig-A-5b8e-never-in-reports";
const VALUE_B: &str = "compose-sig-B-c2f7-never-in-reports";
const WAIT: Duration = Duration::from_secs(120);

fn with_secret(value: &str) -> Spec {
    Spec {
        env: vec![format!("SECRET_KEY={value}")],
        ..Spec::script("sleep 300")
    }
}

fn findings(r: &Report) -> String {
    r.findings
        .iter()
        .map(|f| format!("{} | {}", f.title, f.evidence.join(" | ")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_no_value(r: &Report) {
    for text in [r.to_markdown(), r.to_json().unwrap(), format!("{r:?}")] {
        for value in [VALUE_A, VALUE_B] {
            assert!(!text.contains(value), "{value} leaked: {text}");
            let hash = ops_core::artifact::sha256_hex(value.as_bytes());
            assert!(!text.contains(&hash[..12]), "the hash of {value} leaked");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_with_another_signing_secret_is_found_without_its_value() {
    let p = project_or_skip!("auth");
    p.add("api", 1, &with_secret(VALUE_A)).await;
    let odd = p.add("api", 2, &with_secret(VALUE_B)).await;
    p.add("api", 3, &with_secret(VALUE_A)).await;
    p.add("gw", 1, &with_secret(VALUE_A)).await;
    p.add("gw", 2, &with_secret(VALUE_A)).await;
    let ctx = RunContext::builder()
        .mode(Mode::Execute)
        .allow_volatile_journal()
        .build();

    let t = Targets::new(Arc::clone(&p.platform) as _, p.service("api"));
    let r = tokio::time::timeout(WAIT, auth_failures(&ctx, &t))
        .await
        .expect("bounded")
        .expect("runs");
    assert_eq!(r.outcome, RunOutcome::Unresolved, "{}", findings(&r));
    let f = findings(&r);
    assert!(
        f.contains("SECRET_KEY has 2 distinct values across 3 instances"),
        "{f}"
    );
    let odd_name = ops_compose::labels::container_name(&p.name, "api", 2);
    assert!(f.contains(&format!("value 2: {odd_name}")), "{f}");
    assert!(
        r.summary.contains(&format!("restart {odd_name}")),
        "{}",
        r.summary
    );
    // The containers share the host's clock.
    assert!(f.contains("clocks of all 3 instance(s) agree"), "{f}");
    assert_no_value(&r);
    assert!(!odd.is_empty());

    // The same value everywhere: healthy.
    let t = Targets::new(Arc::clone(&p.platform) as _, p.service("gw"));
    let r = tokio::time::timeout(WAIT, auth_failures(&ctx, &t))
        .await
        .expect("bounded")
        .expect("runs");
    assert_eq!(r.outcome, RunOutcome::Healthy, "{}", findings(&r));
    assert!(findings(&r).contains("SECRET_KEY is the same on all 2 instance(s)"));
    assert_no_value(&r);
}
