//! Conformance tests for [`Metrics`] backends.

use crate::error::ErrorKind;
use crate::metrics::{MetricQuery, Metrics, QueryResult, TimeRange};

/// The last 10 s at 2 s steps.
fn last_ten_seconds() -> TimeRange {
    let now = jiff::Timestamp::now();
    TimeRange::new(
        now - jiff::SignedDuration::from_secs(10),
        now,
        std::time::Duration::from_secs(2),
    )
    .unwrap_or_else(|e| panic!("{}", e.chain()))
}

/// `1+1` is the scalar 2, and an empty query is refused before it is sent.
///
/// # Panics
/// When the backend answers differently.
pub async fn scalar_arithmetic(metrics: &dyn Metrics) {
    let q = MetricQuery::new("1+1").unwrap_or_else(|e| panic!("{}", e.chain()));
    let r = metrics
        .query(&q, None)
        .await
        .unwrap_or_else(|e| panic!("query failed: {}", e.chain()));
    assert!(
        matches!(r, QueryResult::Scalar(_, v) if (v - 2.0).abs() < f64::EPSILON),
        "1+1 is scalar 2, got {r:?}"
    );
    assert_eq!(
        MetricQuery::new(" ").map_err(|e| e.kind()).err(),
        Some(ErrorKind::InvalidInput)
    );
}

/// `vector(1)` is one sample of value 1, and the same expression over the last 10 s at 2 s
/// steps is one series with a point at each step (5 to 7 points, in time order, inside the
/// range), all 1.
///
/// # Panics
/// When the backend answers differently.
pub async fn vector_and_range(metrics: &dyn Metrics) {
    let q = MetricQuery::new("vector(1)").unwrap_or_else(|e| panic!("{}", e.chain()));
    let r = metrics
        .query(&q, None)
        .await
        .unwrap_or_else(|e| panic!("query failed: {}", e.chain()));
    let QueryResult::Vector(samples) = &r else {
        panic!("vector(1) is a vector, got {r:?}")
    };
    assert_eq!(samples.len(), 1, "one sample: {samples:?}");
    assert!((samples[0].value - 1.0).abs() < f64::EPSILON);
    let range = last_ten_seconds();
    let m = metrics
        .query_range(&q, &range)
        .await
        .unwrap_or_else(|e| panic!("query_range failed: {}", e.chain()));
    let QueryResult::Matrix(series) = &m else {
        panic!("a range query is a matrix, got {m:?}")
    };
    assert_eq!(series.len(), 1, "one series: {series:?}");
    let points = &series[0].points;
    assert!(
        (5..=7).contains(&points.len()),
        "a point at each 2 s step of 10 s: {series:?}"
    );
    assert!(
        points.windows(2).all(|w| w[0].0 < w[1].0),
        "points in time order: {series:?}"
    );
    let slack = jiff::SignedDuration::from_secs(2);
    assert!(
        points
            .iter()
            .all(|(t, _)| *t >= range.start - slack && *t <= range.end + slack),
        "points inside the range: {series:?}"
    );
    assert!(
        series[0]
            .points
            .iter()
            .all(|(_, v)| (v - 1.0).abs() < f64::EPSILON)
    );
}

/// A query the server rejects (`sum(`) is `InvalidInput`, instant and over a range.
///
/// # Panics
/// When it is accepted or fails otherwise.
pub async fn rejected_query_is_invalid_input(metrics: &dyn Metrics) {
    let q = MetricQuery::new("sum(").unwrap_or_else(|e| panic!("{}", e.chain()));
    let err = metrics.query(&q, None).await.err().map(|e| e.kind());
    assert_eq!(err, Some(ErrorKind::InvalidInput), "a parse error");
    let range = last_ten_seconds();
    let err = metrics
        .query_range(&q, &range)
        .await
        .err()
        .map(|e| e.kind());
    assert_eq!(
        err,
        Some(ErrorKind::InvalidInput),
        "a parse error over a range"
    );
}

/// `0/0` is a value, not an error: the scalar NaN ([`crate::metrics::Sample`] values may be
/// NaN or infinite, as Prometheus allows), which [`QueryResult::max_value`] skips.
///
/// # Panics
/// When it fails or is anything but a NaN scalar.
pub async fn nan_is_a_value(metrics: &dyn Metrics) {
    let q = MetricQuery::new("0/0").unwrap_or_else(|e| panic!("{}", e.chain()));
    let r = metrics
        .query(&q, None)
        .await
        .unwrap_or_else(|e| panic!("0/0 is a value, not an error: {}", e.chain()));
    assert!(
        matches!(r, QueryResult::Scalar(_, v) if v.is_nan()),
        "0/0 is the scalar NaN, got {r:?}"
    );
    assert_eq!(r.max_value(), None, "NaN is not a finite maximum");
}

/// `metrics` points at a port where nothing listens: a query is `Unavailable`, quickly.
///
/// # Panics
/// When it answers or fails otherwise.
pub async fn refused_is_unavailable(metrics: &dyn Metrics) {
    let q = MetricQuery::new("1+1").unwrap_or_else(|e| panic!("{}", e.chain()));
    let err = metrics.query(&q, None).await.err().map(|e| e.kind());
    assert_eq!(err, Some(ErrorKind::Unavailable), "nothing listens");
}

/// `metrics` (with a client timeout of `timeout`) points at a server that accepts and never
/// answers: a query is `Timeout` within `timeout` and 2 s more.
///
/// # Panics
/// When it answers, fails otherwise or takes longer.
pub async fn silence_is_timeout(metrics: &dyn Metrics, timeout: std::time::Duration) {
    let q = MetricQuery::new("1+1").unwrap_or_else(|e| panic!("{}", e.chain()));
    let started = std::time::Instant::now();
    let err = metrics.query(&q, None).await.err().map(|e| e.kind());
    assert_eq!(err, Some(ErrorKind::Timeout), "the server never answers");
    assert!(
        started.elapsed() < timeout + std::time::Duration::from_secs(2),
        "the deadline holds: {:?}",
        started.elapsed()
    );
}

/// Every check against a live backend.
///
/// # Panics
/// When any fails.
pub async fn run_all(metrics: &dyn Metrics) {
    scalar_arithmetic(metrics).await;
    vector_and_range(metrics).await;
    rejected_query_is_invalid_input(metrics).await;
    nan_is_a_value(metrics).await;
}
