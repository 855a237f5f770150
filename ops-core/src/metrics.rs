//! The [`Metrics`] trait: instant and range queries against a metrics source (Prometheus).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::OpsError;

/// A query expression (`PromQL` for Prometheus). Non-empty, no control characters but
/// newlines and tabs.
///
/// The seeds' queries are provided as constructors, which build `PromQL` only from validated
/// parts: a [`MetricWindow`] (a `PromQL` duration) and label values escaped by `PromQL`'s
/// string rules ([`escape_label_value`]), so no argument can change a query's shape.
///
/// # Examples
/// ```
/// use ops_core::metrics::{MetricQuery, MetricWindow};
/// let q = MetricQuery::error_rate("api", &MetricWindow::minutes(5));
/// assert!(q.as_str().contains(r#"status=~"5.."#));
/// assert!(q.as_str().contains("[5m]"));
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
    ///
    /// `job` may be any text: it is escaped as a `PromQL` string.
    ///
    /// # Examples
    /// ```
    /// use ops_core::metrics::{MetricQuery, MetricWindow};
    /// let q = MetricQuery::error_rate(r#"api"}) or vector(1) #"#, &"30s".parse()?);
    /// assert!(q.as_str().starts_with(r#"sum(rate(http_requests_total{job="api\"}) or vector(1) #""#));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn error_rate(job: &str, window: &MetricWindow) -> Self {
        let job = escape_label_value(job);
        Self(format!(
            "sum(rate(http_requests_total{{job=\"{job}\",status=~\"5..\"}}[{window}])) / sum(rate(http_requests_total{{job=\"{job}\"}}[{window}]))"
        ))
    }

    /// 95th percentile latency over `window`, in seconds (the seeds' p95).
    ///
    /// `job` may be any text: it is escaped as a `PromQL` string.
    pub fn p95_latency(job: &str, window: &MetricWindow) -> Self {
        let job = escape_label_value(job);
        Self(format!(
            "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{job=\"{job}\"}}[{window}])))"
        ))
    }

    /// The expression text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `value` as the inside of a double-quoted `PromQL` string: `\` and `"` escaped, and every
/// control character written as an escape (`\n`, `\r`, `\t`, `\u00XX`), which `PromQL`
/// (Go's string rules) reads back as the same character.
///
/// # Examples
/// ```
/// use ops_core::metrics::escape_label_value;
/// assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
/// assert_eq!(escape_label_value("a\nb\u{1b}"), r"a\nb\u001b");
/// ```
pub fn escape_label_value(value: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
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

/// A `PromQL` range duration such as `5m`, `90s` or `1h30m`: the window of a rate.
///
/// Written as Prometheus writes durations: one or more `<number><unit>` with units `y`, `w`,
/// `d`, `h`, `m`, `s`, `ms`, largest first, each at most once; positive; at most 32
/// characters. `Display`, `FromStr` and serde round-trip.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::metrics::MetricWindow;
/// let w: MetricWindow = "1h30m".parse()?;
/// assert_eq!(w.as_duration(), Duration::from_secs(5400));
/// assert_eq!(w.to_string(), "1h30m");
/// for bad in ["", "5", "0s", "5m]) or vector(1", "30m1h", "5 m", "1.5m"] {
///     assert!(bad.parse::<MetricWindow>().is_err(), "{bad}");
/// }
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetricWindow {
    text: String,
    duration: Duration,
}

impl MetricWindow {
    /// A window of `n` minutes (at least one).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(ops_core::metrics::MetricWindow::minutes(5).to_string(), "5m");
    /// ```
    pub fn minutes(n: u32) -> Self {
        let n = n.max(1);
        Self {
            text: format!("{n}m"),
            duration: Duration::from_secs(u64::from(n) * 60),
        }
    }

    /// Validate a `PromQL` duration.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] unless `text` is a positive `PromQL` duration of at
    /// most 32 characters.
    pub fn new(text: &str) -> Result<Self, OpsError> {
        parse_promql_duration(text)
            .filter(|d| !d.is_zero() && text.len() <= 32)
            .map(|duration| Self {
                text: text.to_owned(),
                duration,
            })
            .ok_or_else(|| {
                OpsError::invalid(
                    "metric_window",
                    text,
                    "a window is a positive PromQL duration such as 30s, 5m or 1h30m (units y w d h m s ms, largest first)",
                )
            })
    }

    /// The window as text, e.g. `"5m"`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The window's length.
    pub fn as_duration(&self) -> Duration {
        self.duration
    }
}

impl Default for MetricWindow {
    /// Five minutes, the seeds' `[5m]`.
    fn default() -> Self {
        Self::minutes(5)
    }
}

/// Parses Prometheus' duration syntax (`model.ParseDuration`); `None` when invalid or too long
/// to count in milliseconds.
fn parse_promql_duration(text: &str) -> Option<Duration> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 20 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = if rest.starts_with("ms") {
            "ms"
        } else {
            rest.get(..1)?
        };
        let (index, (_, factor)) = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .find(|(_, (u, _))| *u == unit)?;
        total = total.checked_add(n.checked_mul(*factor)?)?;
        next_unit = index + 1;
        rest = &rest[unit.len()..];
    }
    Some(Duration::from_millis(total))
}

impl fmt::Display for MetricWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for MetricWindow {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for MetricWindow {
    type Error = OpsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<MetricWindow> for String {
    fn from(value: MetricWindow) -> Self {
        value.text
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
