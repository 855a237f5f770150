//! [`PrometheusMetrics`]: the Prometheus HTTP API as an [`ops_core::Metrics`], and
//! [`MetricProbe`]: a threshold on a query as an [`ops_core::Probe`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ops_core::metrics::{MetricQuery, QueryResult, Sample, Series, TimeRange};
use ops_core::probe::{Observation, ProbeResult};
use ops_core::text::{self, Redactor};
use ops_core::{Metrics, OpsError, Probe};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{
    Trust, default_timeout, parse_http_url, redact, same_origin_redirects, tls_config,
};
use crate::error::{Error, Result};

/// Settings for [`PrometheusMetrics`], e.g. from a configuration file.
///
/// # Examples
/// ```
/// let config: ops_probes::PrometheusConfig =
///     serde_json::from_str(r#"{"url": "http://prometheus:9090", "timeout_ms": 5000}"#)?;
/// let prom = ops_probes::PrometheusMetricsBuilder::from_config(config).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct PrometheusConfig {
    /// Base URL of the server, e.g. `http://prometheus:9090` (may hold credentials).
    pub url: Option<SecretString>,
    /// A bearer token.
    pub token: Option<SecretString>,
    /// Per-request deadline in milliseconds (`"10s"` is read too).
    #[serde(
        default,
        deserialize_with = "ops_core::duration::deserialize_opt_millis"
    )]
    pub timeout_ms: Option<u64>,
}

/// Builds a [`PrometheusMetrics`]; `build` does no network I/O.
///
/// # Examples
/// ```
/// let prom = ops_probes::PrometheusMetricsBuilder::new("http://127.0.0.1:9090").build()?;
/// assert_eq!(ops_core::Metrics::backend(&prom), "prometheus");
/// # Ok::<(), ops_probes::Error>(())
/// ```
#[must_use]
pub struct PrometheusMetricsBuilder {
    url: Option<SecretString>,
    token: Option<SecretString>,
    timeout: Duration,
    client: Option<reqwest::Client>,
}

impl fmt::Debug for PrometheusMetricsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusMetricsBuilder")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PrometheusMetricsBuilder {
    /// A builder for the server at `url`.
    pub fn new(url: &str) -> Self {
        Self {
            url: Some(SecretString::from(url.to_owned())),
            token: None,
            timeout: default_timeout(),
            client: None,
        }
    }

    /// From `OPSBOOK_PROMETHEUS_URL`, `OPSBOOK_PROMETHEUS_TOKEN` and
    /// `OPSBOOK_PROMETHEUS_TIMEOUT_MS`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self::from_config(PrometheusConfig {
            url: var("OPSBOOK_PROMETHEUS_URL").map(SecretString::from),
            token: var("OPSBOOK_PROMETHEUS_TOKEN").map(SecretString::from),
            timeout_ms: var("OPSBOOK_PROMETHEUS_TIMEOUT_MS").and_then(|v| v.parse().ok()),
        })
    }

    /// From a [`PrometheusConfig`].
    pub fn from_config(config: PrometheusConfig) -> Self {
        Self {
            url: config.url,
            token: config.token,
            timeout: config
                .timeout_ms
                .filter(|ms| *ms > 0)
                .map_or_else(default_timeout, Duration::from_millis),
            client: None,
        }
    }

    /// A bearer token sent with every request.
    pub fn with_token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// The per-request deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Use this client. Build it with `reqwest::redirect::Policy::none()` (or leave the
    /// client to opsbook): the default policy would follow a redirect to another origin.
    pub fn from_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] without a valid `http(s)` URL; [`Error::Client`].
    pub fn build(self) -> Result<PrometheusMetrics> {
        let raw = self.url.ok_or_else(|| Error::InvalidUrl {
            target: "prometheus".to_owned(),
            why: "no URL configured (OPSBOOK_PROMETHEUS_URL)".to_owned(),
        })?;
        let mut base = parse_http_url(raw.expose_secret(), "prometheus")?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let target = redact(&base);
        let mut secrets = Redactor::new()
            .with_url(raw.expose_secret())
            .with_url(base.as_str());
        if let Some(token) = &self.token {
            secrets = secrets.with_secret(token.expose_secret());
        }
        let client = if let Some(c) = self.client {
            c
        } else {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls_config(Trust::System, &target)?)
                .connect_timeout(self.timeout)
                .redirect(same_origin_redirects(10))
                .referer(false)
                .build()
                .map_err(|e| Error::Client {
                    target: target.clone(),
                    source: e.without_url(),
                })?
        };
        Ok(PrometheusMetrics {
            base,
            target,
            secrets,
            token: self.token,
            timeout: self.timeout,
            client,
        })
    }
}

/// The Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`) as [`Metrics`].
///
/// Results are typed (vector, scalar, matrix); API errors (`bad_data`, `execution`,
/// `timeout`) surface as [`Error::Api`] inside the [`OpsError`], mapped by meaning, with the
/// server's words stripped of the URL's secrets and the token. Redirects are followed within
/// the server's origin only, and without a `Referer`.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ops_core::{Metrics, metrics::{MetricQuery, MetricWindow}};
/// let prom = ops_probes::PrometheusMetricsBuilder::from_env().build()?;
/// let rate = prom.query(&MetricQuery::error_rate("api", &MetricWindow::minutes(5)), None).await?;
/// println!("error rate: {:?}", rate.first_value());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PrometheusMetrics {
    base: url::Url,
    target: String,
    /// The URL's path, query and credentials and the token, stripped from every answer.
    secrets: Redactor,
    token: Option<SecretString>,
    timeout: Duration,
    client: reqwest::Client,
}

impl fmt::Debug for PrometheusMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusMetrics")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiAnswer {
    status: String,
    data: Option<ApiData>,
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
    values: Option<Vec<(f64, String)>>,
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

#[allow(
    clippy::cast_possible_truncation,
    reason = "Prometheus times are seconds with millisecond precision"
)]
fn parse_time(t: f64) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond((t * 1000.0).round() as i64).ok()
}

fn point((t, v): &(f64, String)) -> std::result::Result<(jiff::Timestamp, f64), String> {
    Ok((
        parse_time(*t).ok_or_else(|| format!("bad time {t}"))?,
        parse_value(v).ok_or_else(|| format!("bad value {v:?}"))?,
    ))
}

/// Turns the `data` of an API answer into a typed result.
fn decode(data: ApiData) -> std::result::Result<QueryResult, String> {
    match data.result_type.as_str() {
        "scalar" => {
            let p: (f64, String) =
                serde_json::from_value(data.result).map_err(|e| e.to_string())?;
            let (t, v) = point(&p)?;
            Ok(QueryResult::Scalar(t, v))
        }
        "vector" => {
            let raw: Vec<RawSeries> =
                serde_json::from_value(data.result).map_err(|e| e.to_string())?;
            raw.into_iter()
                .map(|s| {
                    let (t, v) = point(s.value.as_ref().ok_or("a sample without value")?)?;
                    Ok(Sample::new(s.metric, t, v))
                })
                .collect::<std::result::Result<_, String>>()
                .map(QueryResult::Vector)
        }
        "matrix" => {
            let raw: Vec<RawSeries> =
                serde_json::from_value(data.result).map_err(|e| e.to_string())?;
            raw.into_iter()
                .map(|s| {
                    let points = s
                        .values
                        .unwrap_or_default()
                        .iter()
                        .map(point)
                        .collect::<std::result::Result<_, String>>()?;
                    Ok(Series::new(s.metric, points))
                })
                .collect::<std::result::Result<_, String>>()
                .map(QueryResult::Matrix)
        }
        other => Err(format!("result type {other} is not supported")),
    }
}

fn secs(t: jiff::Timestamp) -> String {
    let ms = t.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

impl PrometheusMetrics {
    async fn call(
        &self,
        operation: &'static str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<QueryResult> {
        let mut url = self.base.join(path).map_err(|e| Error::InvalidUrl {
            target: self.target.clone(),
            why: e.to_string(),
        })?;
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        let mut req = self.client.get(url).timeout(self.timeout);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose_secret());
        }
        let request_err = |e: reqwest::Error| Error::Request {
            operation,
            target: self.target.clone(),
            source: e.without_url(),
        };
        let resp = req.send().await.map_err(request_err)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(request_err)?;
        let decode_err = |why: String| Error::Decode {
            operation,
            target: self.target.clone(),
            why: self.secrets.scrub(&why, text::PEER_MAX),
        };
        let answer: ApiAnswer = match serde_json::from_slice(&bytes) {
            Ok(a) => a,
            Err(_) if status >= 400 => {
                return Err(Error::Api {
                    operation,
                    target: self.target.clone(),
                    status,
                    error_type: String::new(),
                    message: self.secrets.peer_text(&bytes, true),
                });
            }
            Err(e) => return Err(decode_err(e.to_string())),
        };
        if answer.status != "success" || status >= 400 {
            return Err(Error::Api {
                operation,
                target: self.target.clone(),
                status,
                error_type: text::quote(&answer.error_type.unwrap_or_default()),
                message: self
                    .secrets
                    .scrub(&answer.error.unwrap_or_default(), text::PEER_MAX),
            });
        }
        let data = answer
            .data
            .ok_or_else(|| decode_err("no data".to_owned()))?;
        decode(data).map_err(decode_err)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Metrics for PrometheusMetrics {
    fn backend(&self) -> &'static str {
        "prometheus"
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "prometheus", target = %self.target))]
    async fn query(
        &self,
        query: &MetricQuery,
        at: Option<jiff::Timestamp>,
    ) -> std::result::Result<QueryResult, OpsError> {
        let mut params = vec![("query", query.as_str().to_owned())];
        if let Some(at) = at {
            params.push(("time", secs(at)));
        }
        Ok(self.call("query", "api/v1/query", &params).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "prometheus", target = %self.target))]
    async fn query_range(
        &self,
        query: &MetricQuery,
        range: &TimeRange,
    ) -> std::result::Result<QueryResult, OpsError> {
        let params = [
            ("query", query.as_str().to_owned()),
            ("start", secs(range.start)),
            ("end", secs(range.end)),
            ("step", format!("{:.3}", range.step.as_secs_f64())),
        ];
        Ok(self
            .call("query_range", "api/v1/query_range", &params)
            .await?)
    }
}

/// Which side of the threshold is bad.
///
/// # Examples
/// ```
/// let t = ops_probes::Threshold::Above(0.05);
/// assert!(t.breached(0.1) && !t.breached(0.01));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Threshold {
    /// Down when the value is above this.
    Above(f64),
    /// Down when the value is below this.
    Below(f64),
}

impl Threshold {
    /// Whether `value` is on the bad side (NaN never is).
    pub fn breached(self, value: f64) -> bool {
        match self {
            Self::Above(t) => value > t,
            Self::Below(t) => value < t,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Above(t) => write!(f, "<= {t}"),
            Self::Below(t) => write!(f, ">= {t}"),
        }
    }
}

/// A metric threshold as a probe: runs an instant query and is down when the largest value
/// breaches the threshold, degraded when the query returns no data.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use ops_core::{Probe, metrics::{MetricQuery, MetricWindow}};
/// let prom = Arc::new(ops_probes::PrometheusMetricsBuilder::from_env().build()?);
/// let probe = ops_probes::MetricProbe::new("api-error-rate", prom,
///     MetricQuery::error_rate("api", &MetricWindow::minutes(5)), ops_probes::Threshold::Above(0.05));
/// println!("{}", probe.check().await?.detail);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MetricProbe {
    name: String,
    metrics: Arc<dyn Metrics>,
    query: MetricQuery,
    threshold: Threshold,
}

impl MetricProbe {
    /// A probe named `name`.
    pub fn new(
        name: impl Into<String>,
        metrics: Arc<dyn Metrics>,
        query: MetricQuery,
        threshold: Threshold,
    ) -> Self {
        Self {
            name: name.into(),
            metrics,
            query,
            threshold,
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl Probe for MetricProbe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> std::result::Result<ProbeResult, OpsError> {
        let started = Instant::now();
        let result = self.metrics.query(&self.query, None).await?;
        let latency = started.elapsed();
        let condition = format!("value {}", self.threshold);
        let Some(value) = result.max_value() else {
            return Ok(
                ProbeResult::degraded(format!("{}: the query returned no data", self.name))
                    .with_latency(latency)
                    .with_observation(
                        Observation::new("value", "no data", false).with_condition(condition),
                    ),
            );
        };
        let bad = self.threshold.breached(value);
        let mut r = if bad {
            ProbeResult::down(format!("{}: {value} breaches {condition}", self.name))
        } else {
            let mut r = ProbeResult::up();
            r.detail = format!("{}: {value}", self.name);
            r
        };
        r = r.with_latency(latency).with_observation(
            Observation::new("value", value.to_string(), !bad).with_condition(condition),
        );
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_result_type() {
        let data = |t: &str, v: Value| ApiData {
            result_type: t.to_owned(),
            result: v,
        };
        let v = decode(data(
            "vector",
            serde_json::json!([{"metric": {"job": "api"}, "value": [1.5, "0.25"]}]),
        ))
        .unwrap();
        assert_eq!(v.first_value(), Some(0.25));
        let s = decode(data("scalar", serde_json::json!([1.5, "NaN"]))).unwrap();
        assert!(s.first_value().unwrap().is_nan());
        let m = decode(data(
            "matrix",
            serde_json::json!([{"metric": {}, "values": [[1, "1"], [2, "+Inf"]]}]),
        ))
        .unwrap();
        assert_eq!(m.first_value(), Some(f64::INFINITY));
        assert!(decode(data("string", serde_json::json!([1, "x"]))).is_err());
    }
}
