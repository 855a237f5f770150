//! `PrometheusMetrics` against a real Prometheus (from the test images) scraping demo-api,
//! with demo-api's 5xx fault switched on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::type_complexity,
    reason = "test helpers outside #[test] fns"
)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::metrics::{MetricQuery, QueryResult, TimeRange};
use ops_core::probe::Outcome;
use ops_core::testing::conformance;
use ops_core::{ErrorKind, Metrics, Probe};
use ops_probes::{MetricProbe, PrometheusMetricsBuilder, Threshold};
use ops_tests::{Stack, require, start_prometheus};

#[tokio::test(flavor = "multi_thread")]
async fn error_rate_from_real_prometheus_scraping_demo_api_with_5xx_fault() {
    let stack = Stack::new();
    let pg = require!(stack.postgres().await);
    let redis = require!(stack.redis().await);
    let api = require!(stack.demo_api(&pg, &redis).await);
    let prom = require!(start_prometheus(&api).await);
    let metrics = PrometheusMetricsBuilder::new(prom.base_url())
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    conformance::metrics::run_all(&metrics).await;

    // Half of the work requests fail; drive traffic until the rate shows it.
    api.set_fault(&serde_json::json!({"error_ratio": 0.5}))
        .await
        .unwrap();
    let query = MetricQuery::error_rate("demo-api", &"30s".parse().unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let rate = loop {
        for _ in 0..20 {
            let _ = api.get("/work").await;
        }
        let r = metrics.query(&query, None).await.unwrap();
        match r.first_value() {
            Some(v) if v.is_finite() && v > 0.2 => break v,
            _ if tokio::time::Instant::now() > deadline => {
                panic!("no error rate after 90 s: {r:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    assert!((0.2..=0.8).contains(&rate), "error rate {rate}");

    // Typed vector with labels, matrix over a range.
    let up = metrics
        .query(&MetricQuery::new("up").unwrap(), None)
        .await
        .unwrap();
    let QueryResult::Vector(samples) = &up else {
        panic!("{up:?}")
    };
    assert_eq!(
        samples[0].labels.get("job").map(String::as_str),
        Some("demo-api")
    );
    let now = jiff::Timestamp::now();
    let range = TimeRange::new(
        now - jiff::SignedDuration::from_secs(20),
        now,
        Duration::from_secs(2),
    )
    .unwrap();
    let m = metrics
        .query_range(&MetricQuery::new("up").unwrap(), &range)
        .await
        .unwrap();
    let QueryResult::Matrix(series) = &m else {
        panic!("{m:?}")
    };
    assert!(!series[0].points.is_empty(), "{m:?}");
    assert!(
        series[0].points.windows(2).all(|w| w[0].0 < w[1].0),
        "time order"
    );

    // API errors surface, mapped by meaning.
    let err = metrics
        .query(&MetricQuery::new("sum(rate(").unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}", err.chain());
    assert!(err.chain().contains("bad_data"), "{}", err.chain());

    // The threshold probe pages on the seeds' 5 % error rate.
    let probe = MetricProbe::new(
        "api-error-rate",
        Arc::new(metrics),
        query,
        Threshold::Above(0.05),
    );
    let r = probe.check().await.unwrap();
    assert_eq!(r.outcome, Outcome::Down, "{}", r.detail);
}

#[tokio::test]
async fn unreachable_prometheus_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = PrometheusMetricsBuilder::new(&format!("http://127.0.0.1:{port}"))
        .with_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let err = metrics
        .query(&MetricQuery::new("up").unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(!err.chain().contains("http://"), "{}", err.chain());
}

/// The metrics suite's error kinds: a refused connection is `Unavailable` and a server that
/// accepts and never answers is `Timeout` within the client's deadline.
#[tokio::test]
async fn refused_and_silent_prometheus_give_their_error_kinds() {
    let port = support::closed_port();
    let refused = PrometheusMetricsBuilder::new(&format!("http://127.0.0.1:{port}"))
        .with_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    conformance::metrics::refused_is_unavailable(&refused).await;
    let addr = support::silent_server().await;
    let timeout = Duration::from_secs(1);
    let metrics = PrometheusMetricsBuilder::new(&format!("http://{addr}"))
        .with_timeout(timeout)
        .build()
        .unwrap();
    conformance::metrics::silence_is_timeout(&metrics, timeout).await;
}
