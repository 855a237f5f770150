//! [`HttpProbe`]: an HTTP(S) health check with status, JSON, body and timing conditions.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ops_core::probe::{
    Credential, Exchange, Observation, Outcome, ProbeResult, ProviderCheck, RetryAfter, Unreachable,
};
use ops_core::text::{self, Redactor};
use ops_core::{OpsError, Probe};
use regex::Regex;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::condition::{Condition, Facts, describe_failure};
use crate::config::{Trust, ca_certificates, default_timeout, parse_http_url, redact, tls_config};
use crate::error::{Error, Result};
use crate::redirect::{next_hop, refused};

/// How many bytes of a body are read at most (1 MiB); the rest is ignored.
const MAX_BODY: usize = 1 << 20;

/// Whether and how far redirects are followed.
///
/// A probe follows redirects itself and never sends a credential across origins (scheme,
/// host and port): after a redirect to another origin its headers (every
/// [`HttpProbeBuilder::with_header`] value and the bearer token) are no longer sent, and no
/// request carries a `Referer`, so a query token in the probed URL stays with its origin too.
/// [`Redirects::SameOrigin`] refuses such redirects instead.
///
/// # Examples
/// ```
/// assert_eq!(ops_probes::Redirects::default(), ops_probes::Redirects::Follow(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Redirects {
    /// Report the 3xx answer itself.
    None,
    /// Follow up to this many redirects; credentials stay behind when one leaves the origin.
    Follow(usize),
    /// Follow up to this many redirects within the origin; a redirect to another origin makes
    /// the check down ("refused a redirect to another origin").
    SameOrigin(usize),
}

impl Default for Redirects {
    fn default() -> Self {
        Self::Follow(10)
    }
}

/// Builds an [`HttpProbe`]. `build` validates everything and does no network I/O.
///
/// Defaults: `GET`, status 2xx expected, TLS verification on with the system roots,
/// redirects followed (10), timeout [`crate::config::default_timeout`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_probes::HttpProbe;
/// let probe = HttpProbe::builder("https://api.example.com/health")
///     .with_name("api-health")
///     .with_bearer_token("s3cr3t".into())
///     .expect_status([200])
///     .json_eq("/status", "ok")
///     .json_lt("/queue/depth", 100.0)
///     .with_condition("[RESPONSE_TIME] < 500ms")
///     .with_timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(ops_core::Probe::name(&probe), "api-health");
/// assert!(!format!("{probe:?}").contains("s3cr3t"));
/// # Ok::<(), ops_probes::Error>(())
/// ```
#[must_use]
pub struct HttpProbeBuilder {
    url: SecretString,
    name: Option<String>,
    method: reqwest::Method,
    headers: Vec<(String, SecretString)>,
    bearer: Option<SecretString>,
    body: Option<String>,
    statuses: Option<Vec<u16>>,
    conditions: Vec<Condition>,
    pending: Vec<String>,
    budget: Option<Duration>,
    timeout: Option<Duration>,
    verify_tls: bool,
    ca_pem: Vec<Vec<u8>>,
    redirects: Redirects,
    client: Option<reqwest::Client>,
    invalid: Vec<Error>,
}

impl fmt::Debug for HttpProbeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProbeBuilder")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("conditions", &self.conditions.len())
            .finish_non_exhaustive()
    }
}

impl HttpProbeBuilder {
    fn new(url: &str) -> Self {
        Self {
            url: SecretString::from(url.to_owned()),
            name: None,
            method: reqwest::Method::GET,
            headers: Vec::new(),
            bearer: None,
            body: None,
            statuses: None,
            conditions: Vec::new(),
            pending: Vec::new(),
            budget: None,
            timeout: None,
            verify_tls: true,
            ca_pem: Vec::new(),
            redirects: Redirects::default(),
            client: None,
            invalid: Vec::new(),
        }
    }

    /// The name in reports; defaults to `host:port`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The HTTP method (`GET` by default), e.g. `"HEAD"`.
    pub fn with_method(mut self, method: &str) -> Self {
        match reqwest::Method::from_bytes(method.as_bytes()) {
            Ok(m) => self.method = m,
            Err(_) => self.invalid.push(Error::Config {
                target: text::quote(method),
                why: "not an HTTP method".to_owned(),
            }),
        }
        self
    }

    /// A request header; its value is treated as a secret: never shown, stripped from what
    /// the server answers, and not sent after a redirect to another origin.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.into(), SecretString::from(value.into())));
        self
    }

    /// `Authorization: Bearer <token>` (a secret, like [`HttpProbeBuilder::with_header`]).
    pub fn with_bearer_token(mut self, token: SecretString) -> Self {
        self.bearer = Some(token);
        self
    }

    /// A request body (sent as is).
    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The statuses that count as up (default: any 2xx).
    pub fn expect_status(mut self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.statuses = Some(statuses.into_iter().collect());
        self
    }

    /// The JSON value at `pointer` (RFC 6901, e.g. `/data/status`) equals `value`.
    pub fn json_eq(mut self, pointer: &str, value: impl Into<Value>) -> Self {
        let expected = Condition::json_literal(&value.into());
        self.push_json(pointer, "==", expected);
        self
    }

    /// The JSON value at `pointer` differs from `value` (a missing value fails too).
    pub fn json_ne(mut self, pointer: &str, value: impl Into<Value>) -> Self {
        let expected = Condition::json_literal(&value.into());
        self.push_json(pointer, "!=", expected);
        self
    }

    /// The number at `pointer` is below `limit`.
    pub fn json_lt(mut self, pointer: &str, limit: f64) -> Self {
        self.push_json(pointer, "<", Condition::json_number(limit));
        self
    }

    /// The number at `pointer` is above `limit`.
    pub fn json_gt(mut self, pointer: &str, limit: f64) -> Self {
        self.push_json(pointer, ">", Condition::json_number(limit));
        self
    }

    /// Something is present at `pointer`.
    pub fn json_present(mut self, pointer: &str) -> Self {
        self.push_json(pointer, "present", Condition::json_number(0.0));
        self
    }

    /// The value at `pointer` (as text) matches `regex`.
    pub fn json_matches(mut self, pointer: &str, regex: &str) -> Self {
        match Regex::new(regex) {
            Ok(re) => self.push_json(pointer, "==", Condition::json_regex(re)),
            Err(e) => self.invalid.push(Error::Config {
                target: text::quote(pointer),
                why: format!(
                    "invalid regular expression: {}",
                    text::quote(&e.to_string())
                ),
            }),
        }
        self
    }

    fn push_json(&mut self, pointer: &str, op: &'static str, expected: crate::condition::Expected) {
        if !pointer.starts_with('/') {
            self.invalid.push(Error::Config {
                target: text::quote(pointer),
                why: "a JSON pointer starts with `/`".to_owned(),
            });
            return;
        }
        self.conditions.push(Condition::json(pointer, op, expected));
    }

    /// The body contains `needle`.
    pub fn body_contains(mut self, needle: &str) -> Self {
        self.conditions.push(Condition::body_contains(needle));
        self
    }

    /// The body matches `regex`.
    pub fn body_matches(mut self, regex: &str) -> Self {
        match Regex::new(regex) {
            Ok(re) => self.conditions.push(Condition::body_matches(re)),
            Err(e) => self.invalid.push(Error::Config {
                target: "body".to_owned(),
                why: format!(
                    "invalid regular expression: {}",
                    text::quote(&e.to_string())
                ),
            }),
        }
        self
    }

    /// A condition string (see [`crate::condition`]); parse errors surface from `build`.
    pub fn with_condition(mut self, condition: &str) -> Self {
        self.pending.push(condition.to_owned());
        self
    }

    /// A parsed condition.
    pub fn with_parsed_condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Answers slower than `budget` make the check degraded.
    pub fn with_response_time_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The deadline for the whole exchange, body included.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Turn TLS certificate verification off (on by default). Only for lab endpoints.
    pub fn with_tls_verify(mut self, verify: bool) -> Self {
        self.verify_tls = verify;
        self
    }

    /// Trust only this CA (PEM) instead of the system roots; may be called several times.
    /// `build` fails when a bundle is not PEM or holds no valid certificate.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem.push(pem.into());
        self
    }

    /// The redirect policy.
    pub fn with_redirects(mut self, redirects: Redirects) -> Self {
        self.redirects = redirects;
        self
    }

    /// Use this client (connection pool shared across probes); TLS settings then come from
    /// the client. The probe follows redirects itself, so the client must not: build it with
    /// `reqwest::redirect::Policy::none()`, or it forwards custom headers across origins.
    pub fn from_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Validates and builds the probe.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], [`Error::InvalidHeader`], [`Error::Condition`] (with the column),
    /// [`Error::Config`] for a bad pointer, regex, method or CA bundle, [`Error::Client`].
    pub fn build(mut self) -> Result<HttpProbe> {
        if let Some(err) = self.invalid.pop() {
            return Err(err);
        }
        let name_hint = self.name.clone().unwrap_or_else(|| "http probe".to_owned());
        let url = parse_http_url(self.url.expose_secret(), &name_hint)?;
        let name = self.name.unwrap_or_else(|| redact(&url));
        let mut secrets = Redactor::new()
            .with_url(self.url.expose_secret())
            .with_url(url.as_str());
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &self.headers {
            let invalid = || Error::InvalidHeader {
                name: text::quote(k),
            };
            let key =
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| invalid())?;
            let mut value =
                reqwest::header::HeaderValue::from_str(v.expose_secret()).map_err(|_| invalid())?;
            value.set_sensitive(true);
            headers.append(key, value);
            secrets = secrets.with_secret(v.expose_secret());
        }
        if let Some(token) = &self.bearer {
            secrets = secrets.with_secret(token.expose_secret());
            let mut value = reqwest::header::HeaderValue::from_str(&format!(
                "Bearer {}",
                token.expose_secret()
            ))
            .map_err(|_| Error::InvalidHeader {
                name: "authorization".to_owned(),
            })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut conditions = vec![match &self.statuses {
            Some(s) if !s.is_empty() => Condition::status_in(s),
            _ => Condition::status_2xx(),
        }];
        for text in &self.pending {
            conditions.push(text.parse()?);
        }
        conditions.append(&mut self.conditions);
        if let Some(budget) = self.budget {
            conditions.push(Condition::max_response_time(budget));
        }
        let timeout = self.timeout.unwrap_or_else(default_timeout);
        if timeout.is_zero() {
            return Err(Error::Config {
                target: name,
                why: "timeout must be positive".to_owned(),
            });
        }
        let mut certs = Vec::new();
        for pem in &self.ca_pem {
            certs.extend(ca_certificates(pem, &name)?);
        }
        let client = match self.client {
            Some(c) => c,
            None if self.verify_tls && certs.is_empty() => shared_client(&name)?,
            None => {
                let trust = if self.verify_tls {
                    Trust::Only(certs)
                } else {
                    Trust::Anything
                };
                client_builder(tls_config(trust, &name)?)
                    .build()
                    .map_err(|source| Error::Client {
                        target: name.clone(),
                        source: source.without_url(),
                    })?
            }
        };
        let needs_json = conditions.iter().any(Condition::needs_json);
        Ok(HttpProbe {
            name,
            target: redact(&url),
            url,
            secrets,
            redirects: self.redirects,
            method: self.method,
            headers,
            body: self.body,
            conditions,
            needs_json,
            timeout,
            client,
        })
    }
}

/// A client for probes: it never follows redirects (the probe does, see [`Redirects`]) and
/// never sends a `Referer`.
fn client_builder(tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .tls_info(true)
        .connect_timeout(default_timeout())
        .pool_idle_timeout(Duration::from_secs(30))
}

/// One client for every probe with default settings, so probes share a connection pool and
/// the system roots are loaded once.
fn shared_client(name: &str) -> Result<reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let client = client_builder(tls_config(Trust::System, name)?)
        .build()
        .map_err(|source| Error::Client {
            target: name.to_owned(),
            source: source.without_url(),
        })?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

/// An HTTP(S) health check.
///
/// `check` never fails for a down service: refused connections, timeouts and unmet
/// conditions are a [`Outcome::Down`] result whose detail lists each failed condition in
/// words; slow answers and a soon-expiring certificate are [`Outcome::Degraded`].
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ops_core::Probe;
/// let probe = ops_probes::HttpProbe::builder("http://127.0.0.1:8080/health")
///     .with_condition("[BODY].status == ok")
///     .build()?;
/// let result = probe.check().await?;
/// println!("{}: {} ({:?})", probe.name(), result.outcome, result.latency);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpProbe {
    name: String,
    target: String,
    url: url::Url,
    /// The URL's path and query, header values and token: stripped from what is shown of
    /// the answer.
    secrets: Redactor,
    redirects: Redirects,
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
    body: Option<String>,
    conditions: Vec<Condition>,
    needs_json: bool,
    timeout: Duration,
    client: reqwest::Client,
}

impl fmt::Debug for HttpProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProbe")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("method", &self.method)
            .field(
                "conditions",
                &self
                    .conditions
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpProbe {
    /// A builder for a probe of `url` (which may carry secrets: it is never displayed).
    pub fn builder(url: &str) -> HttpProbeBuilder {
        HttpProbeBuilder::new(url)
    }

    /// The conditions checked, status first.
    ///
    /// # Examples
    /// ```
    /// let p = ops_probes::HttpProbe::builder("http://localhost/").build()?;
    /// assert_eq!(p.conditions()[0].to_string(), "[STATUS] == pat(2??)");
    /// # Ok::<(), ops_probes::Error>(())
    /// ```
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// Sends the request, following redirects per [`Redirects`] without carrying
    /// credentials across origins (`extra` is one more credential header), and reads the
    /// final answer.
    async fn exchange(
        &self,
        extra: Option<&reqwest::header::HeaderMap>,
    ) -> std::result::Result<Answer, Failure> {
        let (mut url, mut method, mut body) =
            (self.url.clone(), self.method.clone(), self.body.clone());
        let mut credentials = true;
        let mut hops = 0;
        loop {
            let mut req = self
                .client
                .request(method.clone(), url.clone())
                .timeout(self.timeout);
            if credentials {
                req = req.headers(self.headers.clone());
                if let Some(extra) = extra {
                    req = req.headers(extra.clone());
                }
            }
            if let Some(body) = &body {
                req = req.body(body.clone());
            }
            let mut resp = req.send().await.map_err(Failure::Transport)?;
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok());
            let max = match self.redirects {
                Redirects::Follow(n) | Redirects::SameOrigin(n) => Some(n),
                Redirects::None => None,
            };
            if let (true, Some(max), Some(location)) =
                (resp.status().is_redirection(), max, location)
            {
                if hops >= max {
                    return Err(Failure::Redirect(format!("more than {max} redirects")));
                }
                let hop =
                    next_hop(&url, &method, resp.status(), location).map_err(Failure::Redirect)?;
                if hop.leaves_origin {
                    if matches!(self.redirects, Redirects::SameOrigin(_)) {
                        return Err(Failure::Redirect(refused(&hop.url)));
                    }
                    credentials = false;
                }
                tracing::debug!(to = %redact(&hop.url), leaves_origin = hop.leaves_origin, "following a redirect");
                if !hop.keep_body {
                    body = None;
                }
                (url, method) = (hop.url, hop.method);
                hops += 1;
                continue;
            }
            let status = resp.status().as_u16();
            let header = |name| {
                resp.headers()
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            };
            let retry_after = header(reqwest::header::RETRY_AFTER);
            let date = header(reqwest::header::DATE);
            let cert = resp
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(reqwest::tls::TlsInfo::peer_certificate)
                .and_then(crate::tls::time_left);
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(Failure::Transport)? {
                let room = MAX_BODY.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY {
                    break;
                }
            }
            return Ok(Answer {
                status,
                body,
                cert,
                retry_after,
                date,
            });
        }
    }
}

/// The final answer of an exchange.
struct Answer {
    status: u16,
    body: Vec<u8>,
    /// Time left on the server's certificate (https only).
    cert: Option<Duration>,
    /// The `Retry-After` header, as sent.
    retry_after: Option<String>,
    /// The `Date` header, as sent.
    date: Option<String>,
}

impl Answer {
    /// How the exchange ended: the status and `Retry-After`, read relative to the answer's
    /// `Date` (our clock when it has none or an invalid one); a value that does not parse is
    /// kept as a note, scrubbed of the request's secrets.
    fn exchange(&self, secrets: &Redactor) -> Exchange {
        let answered = Exchange::answered(self.status);
        let Some(value) = &self.retry_after else {
            return answered;
        };
        let now = self
            .date
            .as_deref()
            .and_then(|d| ops_core::probe::parse_http_date(d).ok())
            .unwrap_or_else(jiff::Timestamp::now);
        let retry_after = match RetryAfter::read(value, now) {
            RetryAfter::Unparsed(note) => {
                RetryAfter::Unparsed(secrets.scrub(&note, text::QUOTE_MAX))
            }
            parsed => parsed,
        };
        answered.with_retry_after(retry_after)
    }
}

/// Why an exchange got no answer.
enum Failure {
    Transport(reqwest::Error),
    /// A redirect that was not followed: too many, refused, or not to an http(s) URL.
    Redirect(String),
}

impl Failure {
    /// How the exchange ended, in the terms of [`Exchange`].
    fn exchange(&self) -> Exchange {
        match self {
            Self::Transport(err) => transport_exchange(err),
            Self::Redirect(_) => Exchange::Failed,
        }
    }

    /// Words for the check's detail, without the URL.
    fn words(&self, timeout: Duration) -> String {
        match self {
            Self::Transport(err) => transport_words(err, timeout),
            Self::Redirect(why) => why.clone(),
        }
    }
}

/// What kind of failure a transport error is: a timeout, no connection (refused, DNS, TLS),
/// or another failure.
fn transport_exchange(err: &reqwest::Error) -> Exchange {
    if err.is_timeout() {
        return Exchange::TimedOut;
    }
    let mut tls = false;
    let mut dns = false;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        let io_inner = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        // The rustls error is not always reachable by type through hyper's wrappers; its
        // messages are then the sign.
        let words = c.to_string();
        tls |= c.downcast_ref::<rustls::Error>().is_some()
            || io_inner
            || [
                "invalid peer certificate",
                "received fatal alert",
                "peer is incompatible",
                "peer sent no certificates",
            ]
            .iter()
            .any(|m| words.starts_with(m));
        // hyper-util's resolver error: "dns error" (no typed error is exported).
        dns |= words.starts_with("dns error");
        cause = c.source();
    }
    if tls {
        Exchange::Unreachable {
            cause: Unreachable::Tls,
        }
    } else if dns {
        Exchange::Unreachable {
            cause: Unreachable::Dns,
        }
    } else if err.is_connect() {
        Exchange::Unreachable {
            cause: Unreachable::Connect,
        }
    } else {
        Exchange::Failed
    }
}

/// Words for a transport failure, without the URL.
pub(crate) fn transport_words(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    let mut words = if err.is_connect() {
        "connection failed".to_owned()
    } else if err.is_redirect() {
        "too many redirects".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut cause = std::error::Error::source(err);
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    if let Some(last) = last {
        words.push_str(": ");
        words.push_str(&last);
    }
    words
}

impl HttpProbe {
    /// One check, with `extra` credential headers (already in `secrets`).
    async fn run_check(
        &self,
        extra: Option<&reqwest::header::HeaderMap>,
        secrets: &Redactor,
    ) -> ProbeResult {
        let started = Instant::now();
        let exchange = tokio::time::timeout(
            self.timeout + Duration::from_millis(50),
            self.exchange(extra),
        )
        .await;
        let latency = started.elapsed();
        let answer = match exchange {
            Ok(Ok(v)) => v,
            Ok(Err(failure)) => {
                let words = secrets.scrub(&failure.words(self.timeout), text::PEER_MAX);
                return ProbeResult::down(format!("{}: {words}", self.name))
                    .with_latency(latency)
                    .with_exchange(failure.exchange())
                    .with_observation(
                        Observation::new("[CONNECTED]", "false", false)
                            .with_condition("[CONNECTED] == true"),
                    );
            }
            Err(_) => {
                return ProbeResult::down(format!(
                    "{}: timed out after {} ms",
                    self.name,
                    self.timeout.as_millis()
                ))
                .with_latency(latency)
                .with_exchange(Exchange::TimedOut);
            }
        };
        let exchange = answer.exchange(secrets);
        let Answer {
            status, body, cert, ..
        } = answer;
        let text = String::from_utf8_lossy(&body);
        let facts = Facts {
            status: Some(status),
            json: if self.needs_json {
                serde_json::from_slice(&body).ok()
            } else {
                None
            },
            body: Some(&text),
            response_time: latency,
            certificate_expiration: cert,
            connected: true,
            secrets: Some(secrets),
        };
        let mut hard = Vec::new();
        let mut soft = Vec::new();
        let mut result = ProbeResult::up()
            .with_latency(latency)
            .with_exchange(exchange);
        for c in &self.conditions {
            let o = c.evaluate(&facts);
            if !o.ok {
                if c.is_soft() { &mut soft } else { &mut hard }.push(describe_failure(&o));
            }
            result = result.with_observation(o);
        }
        let (outcome, failed) = if hard.is_empty() && soft.is_empty() {
            result.detail = format!("{}: {status} in {} ms", self.name, latency.as_millis());
            return result;
        } else if hard.is_empty() {
            (Outcome::Degraded, soft)
        } else {
            hard.extend(soft);
            (Outcome::Down, hard)
        };
        result.outcome = outcome;
        result.detail = format!(
            "{}: {} failed: {}",
            self.name,
            if failed.len() == 1 {
                "1 condition".to_owned()
            } else {
                format!("{} conditions", failed.len())
            },
            failed.join("; ")
        );
        result
    }
}

#[async_trait]
impl Probe for HttpProbe {
    fn name(&self) -> &str {
        &self.name
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "http", target = %self.name))]
    async fn check(&self) -> std::result::Result<ProbeResult, OpsError> {
        Ok(self.run_check(None, &self.secrets).await)
    }
}

/// The probe as an external provider's check: the credential goes in its header
/// (`Authorization: Bearer` unless it names another) on this request only, is marked
/// sensitive, stays behind on a redirect to another origin, and is scrubbed from what is
/// shown of the answer like the probe's own secrets.
#[async_trait]
impl ProviderCheck for HttpProbe {
    fn name(&self) -> &str {
        &self.name
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "http", target = %self.name))]
    async fn check(
        &self,
        credential: Option<Credential>,
    ) -> std::result::Result<ProbeResult, OpsError> {
        let Some(credential) = credential else {
            return Ok(self.run_check(None, &self.secrets).await);
        };
        let secret = credential.secret().expose_secret();
        let invalid = |name: &str| {
            OpsError::from(Error::InvalidHeader {
                name: text::quote(name),
            })
        };
        let (name, value) = match credential.header_name() {
            None => (
                reqwest::header::AUTHORIZATION,
                reqwest::header::HeaderValue::from_str(&format!("Bearer {secret}"))
                    .map_err(|_| invalid("authorization"))?,
            ),
            Some(h) => (
                reqwest::header::HeaderName::from_bytes(h.as_bytes()).map_err(|_| invalid(h))?,
                reqwest::header::HeaderValue::from_str(secret).map_err(|_| invalid(h))?,
            ),
        };
        let mut value = value;
        value.set_sensitive(true);
        let mut extra = reqwest::header::HeaderMap::new();
        extra.insert(name, value);
        let secrets = self.secrets.clone().with_secret(secret);
        Ok(self.run_check(Some(&extra), &secrets).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_reports_condition_column_and_hides_secrets() {
        let err = HttpProbe::builder("http://localhost/")
            .with_condition("[STATUS] => 200")
            .build()
            .unwrap_err();
        let Error::Condition(c) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(c.column(), 10);
        let p = HttpProbe::builder("https://u:pw@example.com/x?token=abc")
            .with_header("X-Api-Key", "k3y")
            .build()
            .unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("pw") && !shown.contains("abc") && !shown.contains("k3y"));
        assert_eq!(Probe::name(&p), "example.com:443");
    }

    #[test]
    fn bad_pointer_is_invalid() {
        let err = HttpProbe::builder("http://localhost/")
            .json_eq("status", "ok")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
    }
}
