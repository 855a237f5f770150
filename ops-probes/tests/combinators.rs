//! `TcpProbe` and the combinators against real local servers, and watch over a paused clock.
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
use axum::http::StatusCode;
use axum::routing::get;
use ops_core::Probe;
use ops_core::probe::{Outcome, ProbeResult};
use ops_core::testing::{ScriptedProbe, conformance};
use ops_probes::{AllOf, AnyOf, HttpProbe, Retry, TcpProbe, WatchOptions, watch};

/// A server whose first `fail` answers are 503.
async fn flaky(fail: usize) -> String {
    let count = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route(
        "/",
        get(move || {
            let n = count.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < fail {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    format!("http://{}/", support::serve(router).await)
}

fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(20), f)
}

#[tokio::test]
async fn tcp_probe_sees_open_and_closed_ports() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = TcpProbe::new("127.0.0.1", listener.local_addr().unwrap().port()).unwrap();
    within(conformance::probe::healthy_target_is_up(&open))
        .await
        .unwrap();
    let closed = TcpProbe::new("127.0.0.1", support::closed_port())
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    within(conformance::probe::failing_target_is_down(&closed))
        .await
        .unwrap();
    let r = within(closed.check()).await.unwrap().unwrap();
    assert!(r.detail.contains("connection failed"), "{}", r.detail);
}

#[tokio::test]
async fn retry_is_down_only_after_n_failures_in_a_row() {
    let url = flaky(2).await;
    let probe = HttpProbe::builder(&url).build().unwrap();
    let r = within(
        Retry::new(probe, 3)
            .with_backoff(Duration::from_millis(10))
            .check(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.outcome, Outcome::Up, "{}", r.detail);
    assert!(
        r.observations
            .iter()
            .any(|o| o.name == "attempts" && o.value == "3")
    );

    let url = flaky(5).await;
    let probe = HttpProbe::builder(&url).build().unwrap();
    let r = within(
        Retry::new(probe, 2)
            .with_backoff(Duration::from_millis(10))
            .check(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("failed 2 times in a row"), "{}", r.detail);
    assert!(r.detail.contains("(got 503)"), "{}", r.detail);
}

#[tokio::test(start_paused = true)]
async fn retry_follows_the_core_policy_and_stops_at_its_deadline() {
    let probe = Arc::new(ScriptedProbe::always("api", ProbeResult::down("503")));
    let policy = ops_core::run::RetryPolicy::default()
        .with_max_attempts(10)
        .with_initial_delay(Duration::from_secs(1))
        .with_jitter(false)
        .with_deadline(Duration::from_secs(5));
    let start = tokio::time::Instant::now();
    let r = within(
        Retry::new(Arc::clone(&probe), 10)
            .with_policy(policy)
            .check(),
    )
    .await
    .unwrap()
    .unwrap();
    // Waits of 1 s and 2 s fit in 5 s; the next (4 s) would end at 7 s.
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("failed 3 times in a row"), "{}", r.detail);
    assert_eq!(probe.checks(), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test]
async fn all_and_any_combine_outcomes() {
    let up: Arc<dyn Probe> = Arc::new(
        HttpProbe::builder(&flaky(0).await)
            .with_name("up")
            .build()
            .unwrap(),
    );
    let down: Arc<dyn Probe> = Arc::new(
        HttpProbe::builder(&flaky(99).await)
            .with_name("down")
            .build()
            .unwrap(),
    );
    let all = AllOf::new("all", vec![Arc::clone(&up), Arc::clone(&down)]);
    let r = within(all.check()).await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Down);
    assert!(r.detail.contains("1 of 2 not up"), "{}", r.detail);
    let any = AnyOf::new("any", vec![Arc::clone(&down), Arc::clone(&up)]);
    assert_eq!(
        within(any.check()).await.unwrap().unwrap().outcome,
        Outcome::Up
    );
    let none = AnyOf::new("none", vec![Arc::clone(&down)]);
    assert_eq!(
        within(none.check()).await.unwrap().unwrap().outcome,
        Outcome::Down
    );
}

#[tokio::test(start_paused = true)]
async fn watch_summarises_up_percent_flaps_and_latency() {
    let at = |ms| ProbeResult::up().with_latency(Duration::from_millis(ms));
    let probe = ScriptedProbe::new("api")
        .then(at(10))
        .then(at(20))
        .then(ProbeResult::down("503").with_latency(Duration::from_millis(5)))
        .then(at(30))
        .then(at(40));
    // 30 minutes at one check per 6 minutes: checks at 0, 6, 12, 18, 24, 30.
    let opts = WatchOptions::new(Duration::from_secs(360), Duration::from_secs(1800));
    let s = tokio::time::timeout(Duration::from_secs(3600), watch(&probe, opts))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.checks, 6);
    assert_eq!((s.up, s.flaps, s.longest_outage), (5, 2, 1));
    assert!((s.up_percent - 5.0 / 6.0 * 100.0).abs() < 1e-9);
    assert_eq!(s.p50, Duration::from_millis(20)); // 5 10 20 30 40 40
    assert_eq!(s.p95, Duration::from_millis(40));
    assert!(!s.is_stable(99.0));
    assert!(s.to_string().contains("83.3% up, 2 flaps"), "{s}");
}
