//! `HttpProbe` against real local servers (axum, and TLS with rcgen certificates).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::type_complexity,
    reason = "test helpers outside #[test] fns"
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use ops_core::Probe;
use ops_core::probe::Outcome;
use ops_core::testing::conformance;
use ops_probes::{BulkOptions, HttpProbe, Redirects, check_all};

async fn app() -> String {
    let router = Router::new()
        .route(
            "/health",
            get(|| async {
                axum::Json(serde_json::json!({
                    "status": "ok", "queue": {"depth": 3}, "version": "1.4.2", "replicas": [1, 2]
                }))
            }),
        )
        .route(
            "/degraded",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(serde_json::json!({"status": "degraded", "queue": {"depth": 250}})),
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow but fine"
            }),
        )
        .route(
            "/auth",
            get(|headers: HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer t0ken-s3cret") => (StatusCode::OK, "welcome").into_response(),
                    _ => StatusCode::UNAUTHORIZED.into_response(),
                }
            }),
        )
        .route("/moved", get(|| async { Redirect::temporary("/health") }));
    format!("http://{}", support::serve(router).await)
}

fn timeout<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(20), f)
}

#[tokio::test]
async fn healthy_endpoint_is_up_and_passes_conformance() {
    let base = app().await;
    let probe = HttpProbe::builder(&format!("{base}/health"))
        .with_name("api-health")
        .expect_status([200])
        .json_eq("/status", "ok")
        .json_ne("/status", "down")
        .json_lt("/queue/depth", 100.0)
        .json_gt("/queue/depth", 0.0)
        .json_present("/version")
        .json_matches("/version", r"^1\.\d+\.\d+$")
        .body_contains("replicas")
        .body_matches(r#""status":\s*"ok""#)
        .with_condition("len([BODY].replicas) == 2")
        .with_condition("[RESPONSE_TIME] < 2s")
        .build()
        .unwrap();
    let r = timeout(probe.check()).await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Up, "{}", r.detail);
    assert_eq!(r.observations.len(), 11);
    timeout(conformance::probe::healthy_target_is_up(&probe))
        .await
        .unwrap();
}

#[tokio::test]
async fn failing_endpoint_lists_each_failed_condition_in_words() {
    let base = app().await;
    let probe = HttpProbe::builder(&format!("{base}/degraded"))
        .expect_status([200])
        .json_eq("/status", "ok")
        .json_lt("/queue/depth", 100.0)
        .json_present("/version")
        .build()
        .unwrap();
    let r = timeout(probe.check()).await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.failed().count(), 4, "{r:?}");
    for words in [
        "4 conditions failed",
        "[STATUS] == 200 (got 503)",
        "[BODY]/status == ok (got \"degraded\")",
        "[BODY]/queue/depth < 100 (got 250)",
        "has([BODY]/version) == true (got false)",
    ] {
        assert!(
            r.detail.contains(words),
            "{words:?} missing from {}",
            r.detail
        );
    }
    timeout(conformance::probe::failing_target_is_down(&probe))
        .await
        .unwrap();
}

#[tokio::test]
async fn slow_answers_degrade_and_timeouts_take_the_check_down() {
    let base = app().await;
    let budget = HttpProbe::builder(&format!("{base}/slow"))
        .with_response_time_budget(Duration::from_millis(100))
        .build()
        .unwrap();
    let r = timeout(budget.check()).await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Degraded, "{}", r.detail);
    assert!(
        r.detail.contains("[RESPONSE_TIME] <= 100ms"),
        "{}",
        r.detail
    );
    assert!(r.latency >= Duration::from_millis(300));
    timeout(conformance::probe::soft_failure_is_degraded(&budget))
        .await
        .unwrap();

    let tight = HttpProbe::builder(&format!("{base}/slow"))
        .with_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let r = timeout(tight.check()).await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("timed out after 100 ms"), "{}", r.detail);
    assert!(r.latency < Duration::from_millis(290));
}

#[tokio::test]
async fn bearer_token_is_sent_and_never_shown() {
    let base = app().await;
    let with = HttpProbe::builder(&format!("{base}/auth"))
        .with_bearer_token("t0ken-s3cret".into())
        .build()
        .unwrap();
    let r = timeout(with.check()).await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Up, "{}", r.detail);
    let without = HttpProbe::builder(&format!("{base}/auth")).build().unwrap();
    let r = timeout(without.check()).await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("(got 401)"), "{}", r.detail);
    let shown = format!("{with:?} {r:?}");
    assert!(!shown.contains("t0ken"), "{shown}");
}

#[tokio::test]
async fn redirect_policy_is_honoured() {
    let base = app().await;
    let follow = HttpProbe::builder(&format!("{base}/moved"))
        .build()
        .unwrap();
    assert!(
        timeout(follow.check())
            .await
            .unwrap()
            .unwrap()
            .outcome
            .is_up()
    );
    let stay = HttpProbe::builder(&format!("{base}/moved"))
        .with_redirects(Redirects::None)
        .with_condition("[STATUS] == 307")
        .expect_status([307])
        .build()
        .unwrap();
    let r = timeout(stay.check()).await.unwrap().unwrap();
    assert!(r.outcome.is_up(), "{}", r.detail);
}

#[tokio::test]
async fn refused_connection_is_down_not_an_error() {
    let port = support::closed_port();
    let probe = HttpProbe::builder(&format!("http://127.0.0.1:{port}/"))
        .build()
        .unwrap();
    let r = timeout(probe.check()).await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("connection failed"), "{}", r.detail);
    assert!(
        !r.detail.contains("http://"),
        "no URL in the detail: {}",
        r.detail
    );
}

#[tokio::test]
async fn https_verifies_against_a_custom_ca_and_reads_certificate_expiration() {
    let ca = support::Ca::root("opsbook test CA");
    let leaf = support::leaf(&["localhost"], -1, 3, Some(&ca));
    let addr = support::serve_tls(vec![leaf.der.clone(), ca.der()], leaf.key).await;
    let url = format!("https://localhost:{}/", addr.port());

    let trusted = HttpProbe::builder(&url)
        .with_ca_pem(ca.pem())
        .with_condition("[CERTIFICATE_EXPIRATION] > 7d")
        .build()
        .unwrap();
    let r = timeout(trusted.check()).await.unwrap().unwrap();
    assert_eq!(
        r.outcome,
        Outcome::Degraded,
        "3 days left is below 7d: {}",
        r.detail
    );
    assert!(
        r.detail.contains("[CERTIFICATE_EXPIRATION] > 7d"),
        "{}",
        r.detail
    );

    let system_roots = HttpProbe::builder(&url).build().unwrap();
    let r = timeout(system_roots.check()).await.unwrap().unwrap();
    assert_eq!(
        r.outcome,
        Outcome::Down,
        "unknown CA must fail verification"
    );

    let unverified = HttpProbe::builder(&url)
        .with_tls_verify(false)
        .build()
        .unwrap();
    assert!(
        timeout(unverified.check())
            .await
            .unwrap()
            .unwrap()
            .outcome
            .is_up()
    );
}

#[tokio::test]
async fn bulk_runner_keeps_input_order_under_the_concurrency_limit() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (Arc::clone(&in_flight), Arc::clone(&peak));
    let router = Router::new().route(
        "/{n}",
        get(move |axum::extract::Path(n): axum::extract::Path<u64>| {
            let (f, p) = (Arc::clone(&f), Arc::clone(&p));
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                // Later inputs answer sooner, so completion order differs from input order.
                tokio::time::sleep(Duration::from_millis(60 - n * 2)).await;
                f.fetch_sub(1, Ordering::SeqCst);
                if n % 3 == 0 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let base = format!("http://{}", support::serve(router).await);
    let probes: Vec<Arc<dyn Probe>> = (0..20)
        .map(|n| {
            Arc::new(
                HttpProbe::builder(&format!("{base}/{n}"))
                    .with_name(format!("p{n}"))
                    .build()
                    .unwrap(),
            ) as Arc<dyn Probe>
        })
        .collect();
    let results = timeout(check_all(
        &probes,
        BulkOptions::default().with_concurrency(5),
    ))
    .await
    .unwrap();
    assert_eq!(results.len(), 20);
    for (n, r) in results.iter().enumerate() {
        let r = r.as_ref().unwrap();
        assert!(r.detail.starts_with(&format!("p{n}:")), "{n}: {}", r.detail);
        assert_eq!(r.outcome.is_up(), n % 3 != 0);
    }
    assert!(
        peak.load(Ordering::SeqCst) <= 5,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
}

/// The probe suite's up/down, refused and silent checks against real local servers: the
/// same probe sees its server up, then down once the server is gone; a closed port is down
/// at once; a server that never answers is down within the probe's timeout.
#[tokio::test]
async fn http_probe_sees_up_then_down_refused_and_silent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/health", get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let timeout_after = Duration::from_secs(1);
    let probe = HttpProbe::builder(&format!("http://{addr}/health"))
        .with_name("conformance-up-down")
        .with_timeout(timeout_after)
        .build()
        .unwrap();
    let take_down = async move {
        let _ = stop.send(());
        let _ = server.await;
    };
    timeout(conformance::probe::sees_up_then_down(
        &probe,
        take_down,
        Duration::from_secs(10),
    ))
    .await
    .unwrap();

    let refused = HttpProbe::builder(&format!(
        "http://127.0.0.1:{}/health",
        support::closed_port()
    ))
    .with_timeout(Duration::from_secs(5))
    .build()
    .unwrap();
    timeout(conformance::probe::refused_is_down(
        &refused,
        Duration::from_secs(5),
    ))
    .await
    .unwrap();

    let addr = support::silent_server().await;
    let quiet = HttpProbe::builder(&format!("http://{addr}/health"))
        .with_timeout(timeout_after)
        .build()
        .unwrap();
    timeout(conformance::probe::silence_is_down_within_timeout(
        &quiet,
        timeout_after,
    ))
    .await
    .unwrap();
}
