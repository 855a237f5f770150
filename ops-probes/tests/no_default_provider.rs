//! Every client this crate builds works in a process where nobody installed a process-wide
//! rustls provider: the crate hands ring to each client itself and installs nothing. A test
//! binary of its own, so no other test can install a default first.
#![allow(clippy::unwrap_used, reason = "test")]

mod support;

use std::time::Duration;

use ops_core::Probe;
use ops_core::probe::{Outcome, ProbeResult};
use ops_probes::{HttpProbe, PrometheusMetricsBuilder, TlsProbe};
use rustls::crypto::CryptoProvider;

async fn check(probe: &dyn Probe) -> ProbeResult {
    tokio::time::timeout(Duration::from_secs(20), probe.check())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn clients_work_without_a_process_default_provider() {
    assert!(
        CryptoProvider::get_default().is_none(),
        "this test needs a process without a default provider"
    );
    let ca = support::Ca::root("opsbook test CA");
    let leaf = support::leaf(&["localhost"], -1, 30, Some(&ca));
    let addr = support::serve_tls(vec![leaf.der.clone(), ca.der()], leaf.key).await;
    let url = format!("https://localhost:{}/", addr.port());

    // HTTPS against a custom CA, with the certificate's expiry read from the connection.
    let trusted = HttpProbe::builder(&url)
        .with_ca_pem(ca.pem())
        .with_condition("[CERTIFICATE_EXPIRATION] > 7d")
        .build()
        .unwrap();
    let r = check(&trusted).await;
    assert_eq!(r.outcome, Outcome::Up, "{}", r.detail);
    // Verification off: any certificate, still a real handshake.
    let insecure = HttpProbe::builder(&url)
        .with_tls_verify(false)
        .build()
        .unwrap();
    let r = check(&insecure).await;
    assert_eq!(r.outcome, Outcome::Up, "{}", r.detail);
    // The platform's roots do not know the test CA: down, not a panic.
    let system = HttpProbe::builder(&url).build().unwrap();
    let r = check(&system).await;
    assert_eq!(r.outcome, Outcome::Down, "{}", r.detail);
    // The TLS certificate probe.
    let tls = TlsProbe::new("localhost", addr.port())
        .unwrap()
        .with_ca_pem(ca.pem().as_bytes())
        .unwrap();
    let r = check(&tls).await;
    assert_eq!(r.outcome, Outcome::Up, "{}", r.detail);
    // The Prometheus client builds.
    PrometheusMetricsBuilder::new(&url).build().unwrap();

    assert!(
        CryptoProvider::get_default().is_none(),
        "a client installed a process-wide provider"
    );
}
