//! `TlsProbe` against local TLS servers with rcgen certificates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::type_complexity,
    reason = "test helpers outside #[test] fns"
)]

mod support;

use std::time::Duration;

use ops_core::Probe;
use ops_core::probe::Outcome;
use ops_core::testing::conformance;
use ops_probes::{TlsProbe, TlsVersion};

fn probe(port: u16, ca: &support::Ca) -> TlsProbe {
    TlsProbe::new("localhost", port)
        .unwrap()
        .with_ca_pem(ca.pem().as_bytes())
        .unwrap()
        .with_timeout(Duration::from_secs(5))
}

async fn check(p: &TlsProbe) -> ops_core::probe::ProbeResult {
    tokio::time::timeout(Duration::from_secs(20), p.check())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn valid_certificate_is_up_with_days_issuer_and_version() {
    let ca = support::Ca::root("opsbook root");
    let leaf = support::leaf(&["localhost"], -1, 90, Some(&ca));
    let addr = support::serve_tls(vec![leaf.der, ca.der()], leaf.key).await;
    let p = probe(addr.port(), &ca)
        .with_expected_issuer("opsbook root")
        .with_min_version(TlsVersion::Tls12);
    let r = check(&p).await;
    assert_eq!(r.outcome, Outcome::Up, "{}", r.detail);
    let report = p.inspect().await.unwrap();
    assert!((89..=90).contains(&report.leaf.days_left), "{report:?}");
    assert_eq!(report.version, Some(TlsVersion::Tls13));
    assert!(report.hostname_matches && report.verification_error.is_none());
    assert!(report.leaf.issuer.contains("CN=opsbook root"));
    tokio::time::timeout(
        Duration::from_secs(20),
        conformance::probe::healthy_target_is_up(&p),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn certificate_expiring_in_three_days_is_degraded() {
    let ca = support::Ca::root("opsbook root");
    let leaf = support::leaf(&["localhost"], -1, 3, Some(&ca));
    let addr = support::serve_tls(vec![leaf.der, ca.der()], leaf.key).await;
    let r = check(&probe(addr.port(), &ca)).await;
    assert_eq!(r.outcome, Outcome::Degraded, "{}", r.detail);
    assert!(
        r.detail.contains("expires in 2 days") || r.detail.contains("expires in 3 days"),
        "{}",
        r.detail
    );
    tokio::time::timeout(
        Duration::from_secs(20),
        conformance::probe::soft_failure_is_degraded(&probe(addr.port(), &ca)),
    )
    .await
    .unwrap();
    let r = check(&probe(addr.port(), &ca).with_critical_days(7)).await;
    assert_eq!(r.outcome, Outcome::Down, "{}", r.detail);
}

#[tokio::test]
async fn expired_certificate_is_down() {
    let ca = support::Ca::root("opsbook root");
    let leaf = support::leaf(&["localhost"], -30, -1, Some(&ca));
    let addr = support::serve_tls(vec![leaf.der, ca.der()], leaf.key).await;
    let p = probe(addr.port(), &ca);
    let r = check(&p).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("expired"), "{}", r.detail);
    tokio::time::timeout(
        Duration::from_secs(20),
        conformance::probe::failing_target_is_down(&p),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn wrong_host_is_down_with_hostname_mismatch() {
    let ca = support::Ca::root("opsbook root");
    let leaf = support::leaf(&["api.example.test"], -1, 90, Some(&ca));
    let addr = support::serve_tls(vec![leaf.der, ca.der()], leaf.key).await;
    let p = probe(addr.port(), &ca);
    let report = p.inspect().await.unwrap();
    assert!(!report.hostname_matches);
    let r = check(&p).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("not valid for localhost"), "{}", r.detail);
    let ok = check(&p.clone().with_server_name("api.example.test").unwrap()).await;
    assert_eq!(ok.outcome, Outcome::Up, "{}", ok.detail);
}

#[tokio::test]
async fn self_signed_certificate_is_untrusted() {
    let ca = support::Ca::root("opsbook root");
    let leaf = support::leaf(&["localhost"], -1, 90, None);
    let addr = support::serve_tls(vec![leaf.der], leaf.key).await;
    let r = check(&probe(addr.port(), &ca)).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("unknown issuer"), "{}", r.detail);
}

#[tokio::test]
async fn intermediate_expiring_before_the_leaf_is_reported() {
    let root = support::Ca::root("opsbook root");
    let intermediate = support::Ca::new("opsbook intermediate", -1, 2, Some(&root));
    let leaf = support::leaf(&["localhost"], -1, 60, Some(&intermediate));
    let addr = support::serve_tls(vec![leaf.der, intermediate.der()], leaf.key).await;
    let p = probe(addr.port(), &root);
    let report = p.inspect().await.unwrap();
    assert!(report.leaf.days_left >= 59);
    assert!(
        report.earliest().subject.contains("opsbook intermediate"),
        "{report:?}"
    );
    assert!(report.earliest().days_left <= 2);
    let r = check(&p).await;
    assert_eq!(r.outcome, Outcome::Degraded, "{}", r.detail);
    assert!(r.detail.contains("chain certificate"), "{}", r.detail);
}

#[tokio::test]
async fn unexpected_issuer_and_closed_port() {
    let ca = support::Ca::root("opsbook root");
    let leaf = support::leaf(&["localhost"], -1, 90, Some(&ca));
    let addr = support::serve_tls(vec![leaf.der, ca.der()], leaf.key).await;
    let r = check(&probe(addr.port(), &ca).with_expected_issuer("Let's Encrypt")).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("expected Let's Encrypt"), "{}", r.detail);
    let r = check(&probe(support::closed_port(), &ca)).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("no TLS handshake"), "{}", r.detail);
}
