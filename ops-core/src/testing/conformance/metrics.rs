//! Conformance tests for [`Metrics`] backends.

use crate::error::ErrorKind;
use crate::metrics::{MetricQuery, Metrics, QueryResult};

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
