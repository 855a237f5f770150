//! The [`Metrics`] trait: instant and range queries against a metrics source (Prometheus).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::OpsError;

/// A query expression (`PromQL` for Prometheus). Non-empty, no control characters but newlines.
///
/// The seeds' queries are provided as constructors.
///
/// # Examples
/// ```
/// use ops_core::metrics::MetricQuery;
/// let q = MetricQuery::error_rate("api", "5m");
/// assert!(q.as_str().contains(r#"status=~"5.."#));
/// assert!(MetricQuery::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetricQuery(String);

impl MetricQuery {
    /// Validate an expression.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when empty or containing control characters.
    pub fn new(expr: &str) -> Result<Self, OpsError> {
        if expr.trim().is_empty()
            || expr
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(OpsError::invalid(
                "metric_query",
                expr,
                "a query is non-empty text",
            ));
        }
        Ok(Self(expr.to_owned()))
    }

    /// Fraction of requests answered 5xx over `window`, for `job` (the seeds' error rate).
    pub fn error_rate(job: &str, window: &str) -> Self {
        let job = escape_label(job);
        Self(format!(
            "sum(rate(http_requests_total{{job=\"{job}\",status=~\"5..\"}}[{window}])) / sum(rate(http_requests_total{{job=\"{job}\"}}[{window}]))"
        ))
    }

    /// 95th percentile latency over `window`, in seconds (the seeds' p95).
    pub fn p95_latency(job: &str, window: &str) -> Self {
        let job = escape_label(job);
        Self(format!(
            "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{job=\"{job}\"}}[{window}])))"
        ))
    }

    /// The expression text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

impl fmt::Display for MetricQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MetricQuery {
    type Error = OpsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<MetricQuery> for String {
    fn from(value: MetricQuery) -> Self {
        value.0
    }
}

/// One labelled value at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sample {
    /// Series labels.
    pub labels: BTreeMap<String, String>,
    /// When.
    pub at: jiff::Timestamp,
    /// The value (may be NaN or infinite, as Prometheus allows).
    pub value: f64,
}

impl Sample {
    /// A sample.
    pub fn new(labels: BTreeMap<String, String>, at: jiff::Timestamp, value: f64) -> Self {
        Self { labels, at, value }
    }
}

/// One labelled series of points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Series {
    /// Series labels.
    pub labels: BTreeMap<String, String>,
    /// `(time, value)` points in time order.
    pub points: Vec<(jiff::Timestamp, f64)>,
}

impl Series {
    /// A series.
    pub fn new(labels: BTreeMap<String, String>, points: Vec<(jiff::Timestamp, f64)>) -> Self {
        Self { labels, points }
    }
}

/// A typed query result.
///
/// # Examples
/// ```
/// use ops_core::metrics::QueryResult;
/// let r = QueryResult::Scalar(jiff::Timestamp::UNIX_EPOCH, 0.02);
/// assert_eq!(r.first_value(), Some(0.02));
/// assert_eq!(QueryResult::Vector(vec![]).first_value(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum QueryResult {
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A scalar.
    Scalar(jiff::Timestamp, f64),
    /// A range matrix.
    Matrix(Vec<Series>),
}

impl QueryResult {
    /// The first value: the scalar, the first sample, or the last point of the first series.
    pub fn first_value(&self) -> Option<f64> {
        match self {
            Self::Vector(v) => v.first().map(|s| s.value),
            Self::Scalar(_, v) => Some(*v),
            Self::Matrix(m) => m.first().and_then(|s| s.points.last()).map(|p| p.1),
        }
    }

    /// The largest finite value in the result.
    pub fn max_value(&self) -> Option<f64> {
        let values: Vec<f64> = match self {
            Self::Vector(v) => v.iter().map(|s| s.value).collect(),
            Self::Scalar(_, v) => vec![*v],
            Self::Matrix(m) => m
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .collect(),
        };
        values
            .into_iter()
            .filter(|v| v.is_finite())
            .reduce(f64::max)
    }
}

/// A range query window.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimeRange {
    /// Start.
    pub start: jiff::Timestamp,
    /// End.
    pub end: jiff::Timestamp,
    /// Resolution step.
    pub step: Duration,
}

impl TimeRange {
    /// A range.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `end < start` or `step` is zero.
    pub fn new(
        start: jiff::Timestamp,
        end: jiff::Timestamp,
        step: Duration,
    ) -> Result<Self, OpsError> {
        if end < start || step.is_zero() {
            return Err(OpsError::invalid(
                "range",
                format!("{start}..{end}"),
                "need start <= end and a non-zero step",
            ));
        }
        Ok(Self { start, end, step })
    }
}

/// A metrics source.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Metrics: fmt::Debug + Send + Sync + 'static {
    /// Short backend name, e.g. `"prometheus"`.
    fn backend(&self) -> &'static str;

    /// An instant query at `at` (now when `None`).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for a query the server rejects;
    /// [`crate::ErrorKind::Unavailable`]; [`crate::ErrorKind::Timeout`].
    async fn query(
        &self,
        query: &MetricQuery,
        at: Option<jiff::Timestamp>,
    ) -> Result<QueryResult, OpsError>;

    /// A range query.
    ///
    /// # Errors
    /// As [`Metrics::query`].
    async fn query_range(
        &self,
        query: &MetricQuery,
        range: &TimeRange,
    ) -> Result<QueryResult, OpsError>;
}

macro_rules! forward_metrics {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: Metrics + ?Sized> Metrics for $ptr<T> {
            fn backend(&self) -> &'static str { (**self).backend() }
            async fn query(&self, query: &MetricQuery, at: Option<jiff::Timestamp>) -> Result<QueryResult, OpsError> { (**self).query(query, at).await }
            async fn query_range(&self, query: &MetricQuery, range: &TimeRange) -> Result<QueryResult, OpsError> { (**self).query_range(query, range).await }
        }
    )*};
}
forward_metrics!(Arc, Box);
