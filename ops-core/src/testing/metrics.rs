//! [`FakeMetrics`]: canned query results.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::Faults;
use crate::error::{ErrorKind, OpsError};
use crate::metrics::{MetricQuery, Metrics, QueryResult, TimeRange};

/// A [`Metrics`] source answering seeded queries; unknown queries give an empty vector, and
/// `1+1` gives the scalar 2 (as Prometheus does), which the conformance suite uses.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::metrics::{MetricQuery, MetricWindow, Metrics, QueryResult};
/// use ops_core::testing::FakeMetrics;
/// let q = MetricQuery::error_rate("api", &MetricWindow::minutes(5));
/// let m = FakeMetrics::default().with_scalar(&q, 0.12);
/// assert_eq!(m.query(&q, None).await?.first_value(), Some(0.12));
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct FakeMetrics {
    answers: Mutex<BTreeMap<String, QueryResult>>,
    faults: Faults,
}

impl FakeMetrics {
    /// Answer `query` with `result`.
    #[must_use]
    pub fn with_result(self, query: &MetricQuery, result: QueryResult) -> Self {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(query.as_str().to_owned(), result);
        self
    }

    /// Answer `query` with a scalar.
    #[must_use]
    pub fn with_scalar(self, query: &MetricQuery, value: f64) -> Self {
        self.with_result(
            query,
            QueryResult::Scalar(jiff::Timestamp::UNIX_EPOCH, value),
        )
    }

    /// Make the next call of `op` (`query` or `query_range`) fail with `kind`.
    #[must_use]
    pub fn fail_next(self, op: &'static str, kind: ErrorKind) -> Self {
        self.faults.fail_next(op, kind);
        self
    }

    /// Every query asked.
    pub fn calls(&self) -> Vec<String> {
        self.faults.calls()
    }

    fn answer(&self, query: &MetricQuery) -> QueryResult {
        if query.as_str().replace(' ', "") == "1+1" {
            return QueryResult::Scalar(jiff::Timestamp::UNIX_EPOCH, 2.0);
        }
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(query.as_str())
            .cloned()
            .unwrap_or(QueryResult::Vector(Vec::new()))
    }
}

#[async_trait]
impl Metrics for FakeMetrics {
    fn backend(&self) -> &'static str {
        "fake"
    }

    async fn query(
        &self,
        query: &MetricQuery,
        _at: Option<jiff::Timestamp>,
    ) -> Result<QueryResult, OpsError> {
        self.faults.call("fake", "query", query.as_str())?;
        Ok(self.answer(query))
    }

    async fn query_range(
        &self,
        query: &MetricQuery,
        _range: &TimeRange,
    ) -> Result<QueryResult, OpsError> {
        self.faults.call("fake", "query_range", query.as_str())?;
        Ok(self.answer(query))
    }
}
