//! [`FakeMetrics`]: programmed query results, keyed by query.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::Faults;
use crate::error::{ErrorKind, OpsError};
use crate::metrics::{MetricQuery, Metrics, QueryResult, Sample, Series, TimeRange};

/// What the fake answers to one query.
#[derive(Debug, Clone)]
enum Answer {
    /// This result, instant and over any range.
    Fixed(QueryResult),
    /// One series of a constant value: a one-sample vector at the asked time, or a matrix
    /// with a point at every step of the asked range.
    Constant {
        labels: BTreeMap<String, String>,
        value: f64,
    },
    /// Refused as a server refuses a query it cannot parse.
    Rejected,
}

/// A [`Metrics`] source answering the queries it was programmed with, by query text: a fixed
/// result, a constant series that follows the asked time and range steps, or a rejection
/// (`InvalidInput`). A query it was not programmed with gives an empty vector, as a query
/// for a series nobody scrapes does. It evaluates nothing.
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
    answers: Mutex<BTreeMap<String, Answer>>,
    faults: Faults,
}

impl FakeMetrics {
    fn with_answer(self, query: &MetricQuery, answer: Answer) -> Self {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(query.as_str().to_owned(), answer);
        self
    }

    /// Answer `query` with `result`, instant and over any range.
    #[must_use]
    pub fn with_result(self, query: &MetricQuery, result: QueryResult) -> Self {
        self.with_answer(query, Answer::Fixed(result))
    }

    /// Answer `query` with a scalar.
    #[must_use]
    pub fn with_scalar(self, query: &MetricQuery, value: f64) -> Self {
        self.with_result(
            query,
            QueryResult::Scalar(jiff::Timestamp::UNIX_EPOCH, value),
        )
    }

    /// Answer `query` with one series of the constant `value` labelled `labels`: an instant
    /// query gets one sample at the asked time (now when none), a range query a point at
    /// `start`, `start + step`, ... up to `end`.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use ops_core::metrics::{MetricQuery, Metrics, QueryResult, TimeRange};
    /// use ops_core::testing::FakeMetrics;
    /// let q = MetricQuery::new("up")?;
    /// let m = FakeMetrics::default().with_series(&q, [("job", "api")], 1.0);
    /// let start = jiff::Timestamp::UNIX_EPOCH;
    /// let range = TimeRange::new(start, start + jiff::SignedDuration::from_secs(10), Duration::from_secs(5))?;
    /// let QueryResult::Matrix(series) = m.query_range(&q, &range).await? else { panic!() };
    /// assert_eq!(series[0].points.len(), 3);
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_series<'a>(
        self,
        query: &MetricQuery,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
        value: f64,
    ) -> Self {
        let labels = labels
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.with_answer(query, Answer::Constant { labels, value })
    }

    /// Refuse `query`, instant and over a range, with `InvalidInput` (as Prometheus refuses a
    /// query it cannot parse).
    #[must_use]
    pub fn rejecting(self, query: &MetricQuery) -> Self {
        self.with_answer(query, Answer::Rejected)
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

    fn answer(&self, query: &MetricQuery) -> Option<Answer> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(query.as_str())
            .cloned()
    }

    fn rejected(op: &'static str, query: &MetricQuery) -> OpsError {
        OpsError::new(ErrorKind::InvalidInput, "fake", op, query.as_str())
            .with_detail("bad_data: the query does not parse")
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
        at: Option<jiff::Timestamp>,
    ) -> Result<QueryResult, OpsError> {
        self.faults.call("fake", "query", query.as_str())?;
        Ok(match self.answer(query) {
            None => QueryResult::Vector(Vec::new()),
            Some(Answer::Fixed(result)) => result,
            Some(Answer::Constant { labels, value }) => QueryResult::Vector(vec![Sample::new(
                labels,
                at.unwrap_or_else(jiff::Timestamp::now),
                value,
            )]),
            Some(Answer::Rejected) => return Err(Self::rejected("query", query)),
        })
    }

    async fn query_range(
        &self,
        query: &MetricQuery,
        range: &TimeRange,
    ) -> Result<QueryResult, OpsError> {
        self.faults.call("fake", "query_range", query.as_str())?;
        Ok(match self.answer(query) {
            None => QueryResult::Matrix(Vec::new()),
            Some(Answer::Fixed(result)) => result,
            Some(Answer::Constant { labels, value }) => {
                let step = jiff::SignedDuration::try_from(range.step).map_err(|e| {
                    OpsError::invalid("range", format!("{:?}", range.step), "a step too long")
                        .with_source(e)
                })?;
                let mut points = Vec::new();
                let mut t = range.start;
                while t <= range.end {
                    points.push((t, value));
                    t = match t.checked_add(step) {
                        Ok(next) => next,
                        Err(_) => break,
                    };
                }
                QueryResult::Matrix(vec![Series::new(labels, points)])
            }
            Some(Answer::Rejected) => return Err(Self::rejected("query_range", query)),
        })
    }
}
