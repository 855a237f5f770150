//! The notifiers' client works in a process where nobody installed a process-wide rustls
//! provider: the crate hands ring to its client itself and installs nothing. A test binary of
//! its own, so no other test can install a default first.
#![allow(clippy::unwrap_used, reason = "test")]

use std::time::Duration;

use axum::routing::post;
use ops_core::Notifier;
use ops_core::notify::Notification;
use ops_core::vocab::Severity;
use ops_notify::WebhookNotifier;
use rustls::crypto::CryptoProvider;

#[tokio::test]
async fn webhook_delivers_without_a_process_default_provider() {
    assert!(
        CryptoProvider::get_default().is_none(),
        "this test needs a process without a default provider"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/hook", post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let hook = WebhookNotifier::builder(format!("http://{addr}/hook").into())
        .build()
        .unwrap();
    let sent = tokio::time::timeout(
        Duration::from_secs(20),
        hook.send(&Notification::new(Severity::Low, "tls provider check", "")),
    )
    .await
    .unwrap();
    assert!(sent.is_ok(), "{sent:?}");
    assert!(ops_notify::config::tls_config().is_ok());
    assert!(
        CryptoProvider::get_default().is_none(),
        "the notifier installed a process-wide provider"
    );
}
