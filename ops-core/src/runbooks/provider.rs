//! `provider_failure` (seeds 000 and 003: "Provider API failures", "third-party API down"):
//! probe every external provider with its credential, classify what is wrong (rate limited,
//! credential refused, timeout, unreachable, outage) and say which fallback applies.
//!
//! Configuration is [`ProviderChecks`] (`RunbookConfig::providers`); the checks themselves are
//! [`ProviderCheck`]s in [`Targets::providers`] (`ops_probes::HttpProbe` implements it). Each
//! credential is read when the run needs it, from an environment variable or a file, held as a
//! [`SecretString`] and sent by the check; it never reaches a finding, an error or a log.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{EnvKey, Targets};
use crate::error::{ErrorKind, OpsError};
use crate::incident::{IncidentStatus, Signals};
use crate::names::NameRule;
use crate::notify::Notification;
use crate::probe::{Credential, Exchange, Outcome, ProbeResult, ProviderCheck, RetryAfter};
use crate::run::{Finding, Report, Run, RunContext, RunFailure, RunOutcome, Step};
use crate::text;

/// The providers `provider_failure` checks, and whether it notifies.
///
/// # Examples
/// ```
/// let cfg: ops_core::runbooks::ProviderChecks = serde_json::from_str(r#"{
///   "providers": [
///     {"name": "stripe", "url": "https://api.stripe.com/v1/balance",
///      "credential": {"env": "STRIPE_KEY"},
///      "fallbacks": [{"provider": "adyen"}, {"degraded": "queue payments and retry later"}]},
///     {"name": "adyen", "url": "https://checkout.adyen.com/health",
///      "credential": {"file": "/run/secrets/adyen", "header": "X-Api-Key"}}
///   ],
///   "notify": true
/// }"#).unwrap();
/// cfg.validate()?;
/// assert_eq!(cfg.providers[0].fallbacks.len(), 2);
/// assert!(!format!("{cfg:?}").contains("api.stripe.com/v1"));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderChecks {
    /// The providers, in report order.
    pub providers: Vec<ProviderSpec>,
    /// Whether a run that finds a provider down sends a notification (through the run's
    /// notifier, under the approval policy): false.
    pub notify: bool,
}

impl ProviderChecks {
    /// Checks `providers`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a name that is not a DNS-1123 subdomain, a name used
    /// twice, a fallback naming an unknown provider or the provider itself, an empty degraded
    /// mode, or a cycle of fallbacks (`a → b → a`: each would fall back on the other).
    ///
    /// # Examples
    /// ```
    /// let cfg: ops_core::runbooks::ProviderChecks = serde_json::from_str(r#"{"providers": [
    ///   {"name": "a", "url": "https://a.example/", "fallbacks": [{"provider": "b"}]},
    ///   {"name": "b", "url": "https://b.example/", "fallbacks": [{"provider": "a"}]}
    /// ]}"#).unwrap();
    /// assert!(cfg.validate().unwrap_err().to_string().contains("invalid input"));
    /// ```
    pub fn validate(&self) -> Result<(), OpsError> {
        let mut names = BTreeSet::new();
        for p in &self.providers {
            if !NameRule::Dns1123Subdomain.check(&p.name) {
                return Err(OpsError::invalid(
                    "providers",
                    text::quote(&p.name),
                    format!(
                        "a provider name is {}",
                        NameRule::Dns1123Subdomain.describe()
                    ),
                ));
            }
            if !names.insert(p.name.as_str()) {
                return Err(OpsError::invalid(
                    "providers",
                    &p.name,
                    "two providers have this name",
                ));
            }
        }
        for p in &self.providers {
            for f in &p.fallbacks {
                match f {
                    Fallback::Provider(n) if n == &p.name => {
                        return Err(OpsError::invalid(
                            "providers",
                            &p.name,
                            "a provider cannot be its own fallback",
                        ));
                    }
                    Fallback::Provider(n) if !names.contains(n.as_str()) => {
                        return Err(OpsError::invalid(
                            "providers",
                            &p.name,
                            format!("fallback {} is not a configured provider", text::quote(n)),
                        ));
                    }
                    Fallback::Degraded(mode) if mode.trim().is_empty() => {
                        return Err(OpsError::invalid(
                            "providers",
                            &p.name,
                            "a degraded mode needs a name",
                        ));
                    }
                    _ => {}
                }
            }
        }
        if let Some(cycle) = self.fallback_cycle() {
            return Err(OpsError::invalid(
                "providers",
                &cycle[0],
                format!("fallbacks form a cycle: {}", cycle.join(" -> ")),
            ));
        }
        Ok(())
    }

    /// A cycle in the graph "provider → its provider fallbacks", as the names along it with
    /// the first repeated at the end.
    fn fallback_cycle(&self) -> Option<Vec<String>> {
        let edges: BTreeMap<&str, Vec<&str>> = self
            .providers
            .iter()
            .map(|p| {
                let next = p
                    .fallbacks
                    .iter()
                    .filter_map(|f| match f {
                        Fallback::Provider(n) => Some(n.as_str()),
                        Fallback::Degraded(_) => None,
                    })
                    .collect();
                (p.name.as_str(), next)
            })
            .collect();
        // Depth-first search with the path on a stack; an edge back into the path is a cycle.
        let mut done: BTreeSet<&str> = BTreeSet::new();
        for start in edges.keys() {
            let mut path: Vec<(&str, usize)> = vec![(*start, 0)];
            while let Some((node, next)) = path.last_mut() {
                let node = *node;
                if done.contains(node) {
                    path.pop();
                    continue;
                }
                let Some(&to) = edges.get(node).and_then(|e| e.get(*next)) else {
                    done.insert(node);
                    path.pop();
                    continue;
                };
                *next += 1;
                if let Some(at) = path.iter().position(|(n, _)| *n == to) {
                    let mut cycle: Vec<String> =
                        path[at..].iter().map(|(n, _)| (*n).to_owned()).collect();
                    cycle.push(to.to_owned());
                    return Some(cycle);
                }
                path.push((to, 0));
            }
        }
        None
    }

    /// The provider named `name`.
    pub fn get(&self, name: &str) -> Option<&ProviderSpec> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// One external provider: where to check it, its credential and its fallbacks.
///
/// `Debug` shows the URL's scheme, host and port only (a path or query may hold a key).
///
/// # Examples
/// ```
/// let p: ops_core::runbooks::ProviderSpec = serde_json::from_str(
///     r#"{"name": "openai", "url": "https://api.openai.com/v1/models", "timeout": "5s",
///         "credential": {"env": "OPENAI_API_KEY"}, "fallbacks": [{"provider": "anthropic"}]}"#,
/// ).unwrap();
/// assert_eq!(p.method, "GET");
/// assert_eq!(p.timeout, Some(std::time::Duration::from_secs(5)));
/// assert_eq!(format!("{p:?}").contains("/v1/models"), false);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderSpec {
    /// The name in reports and fallbacks, a DNS-1123 subdomain (`stripe`, `kiro.ai`).
    pub name: String,
    /// The URL to check (a cheap authenticated endpoint: `/v1/health`, `/v1/models`).
    pub url: String,
    /// The HTTP method: `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Where the credential comes from; `None` sends none.
    #[serde(default)]
    pub credential: Option<CredentialSource>,
    /// The check's deadline; `None` uses the probe's default.
    #[serde(default, with = "crate::serde_util::opt_duration_ms")]
    pub timeout: Option<Duration>,
    /// What to use while this provider is down, in order of preference.
    #[serde(default)]
    pub fallbacks: Vec<Fallback>,
}

fn default_method() -> String {
    "GET".to_owned()
}

impl ProviderSpec {
    /// A provider checked with `GET url`, no credential, no fallback.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            method: default_method(),
            credential: None,
            timeout: None,
            fallbacks: Vec::new(),
        }
    }

    /// Set the credential's source.
    #[must_use]
    pub fn with_credential(mut self, credential: CredentialSource) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Add a fallback (tried in the order added).
    #[must_use]
    pub fn with_fallback(mut self, fallback: Fallback) -> Self {
        self.fallbacks.push(fallback);
        self
    }

    /// Set the deadline.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl fmt::Debug for ProviderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSpec")
            .field("name", &self.name)
            .field("url", &origin(&self.url))
            .field("method", &self.method)
            .field("credential", &self.credential)
            .field("timeout", &self.timeout)
            .field("fallbacks", &self.fallbacks)
            .finish()
    }
}

/// `scheme://host:port` of a URL, without user info, path or query.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}")
}

/// Where a credential is read from, and the header that carries it.
///
/// Serialized as `{"env": "NAME"}` or `{"file": "/path"}`, plus `"header": "X-Api-Key"` when
/// it is not a bearer token.
///
/// # Examples
/// ```
/// use ops_core::runbooks::{CredentialSource, SecretFrom};
/// let c: CredentialSource = serde_json::from_str(r#"{"env": "SENDGRID_KEY"}"#).unwrap();
/// assert!(matches!(c.from, SecretFrom::Env(_)));
/// assert_eq!(c.header, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CredentialSource {
    /// Where the secret is.
    #[serde(flatten)]
    pub from: SecretFrom,
    /// The header that carries it; `None` sends `Authorization: Bearer <secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

impl CredentialSource {
    /// A bearer token read from `from`.
    pub fn new(from: SecretFrom) -> Self {
        Self { from, header: None }
    }

    /// Send it in header `name` instead.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>) -> Self {
        self.header = Some(name.into());
        self
    }

    /// Read the secret now (never shown; an error names the variable or file, never a value).
    ///
    /// A file's trailing line break is dropped (files written by `echo` and secret mounts).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when the variable is unset or the file is missing;
    /// [`ErrorKind::PermissionDenied`] when the file cannot be read for permissions;
    /// [`ErrorKind::InvalidInput`] when the value is empty or not UTF-8.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ops_core::runbooks::{CredentialSource, SecretFrom};
    /// let c = CredentialSource::new(SecretFrom::Env("OPSBOOK_DOC_SURELY_UNSET".parse()?));
    /// assert_eq!(c.read().await.unwrap_err().kind(), ops_core::ErrorKind::NotFound);
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    pub async fn read(&self) -> Result<Credential, OpsError> {
        let secret = self.from.read().await?;
        Ok(match &self.header {
            Some(h) => Credential::header(h.clone(), secret),
            None => Credential::bearer(secret),
        })
    }
}

/// The place a secret is read from.
///
/// # Examples
/// ```
/// use ops_core::runbooks::SecretFrom;
/// let s = SecretFrom::File("/run/secrets/stripe".into());
/// assert_eq!(s.to_string(), "file /run/secrets/stripe");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecretFrom {
    /// An environment variable of this process.
    Env(EnvKey),
    /// A file (a mounted secret).
    File(PathBuf),
}

impl SecretFrom {
    async fn read(&self) -> Result<SecretString, OpsError> {
        let value = match self {
            Self::Env(key) => match std::env::var(key.as_str()) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => {
                    return Err(OpsError::new(
                        ErrorKind::NotFound,
                        "core",
                        "read_credential",
                        self.to_string(),
                    )
                    .with_detail("the variable is not set"));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(OpsError::invalid(
                        "read_credential",
                        self.to_string(),
                        "the value is not UTF-8",
                    ));
                }
            },
            Self::File(path) => {
                let read = tokio::fs::read(path).await.map_err(|e| {
                    let kind = match e.kind() {
                        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                        _ => ErrorKind::Unavailable,
                    };
                    OpsError::new(kind, "core", "read_credential", self.to_string()).with_source(e)
                })?;
                let text = String::from_utf8(read).map_err(|_| {
                    OpsError::invalid("read_credential", self.to_string(), "the file is not UTF-8")
                })?;
                let trimmed = text.strip_suffix('\n').unwrap_or(&text);
                trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
            }
        };
        if value.is_empty() {
            return Err(OpsError::invalid(
                "read_credential",
                self.to_string(),
                "the credential is empty",
            ));
        }
        Ok(SecretString::from(value))
    }
}

impl fmt::Display for SecretFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(key) => write!(f, "env {key}"),
            Self::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// What to use while a provider is down.
///
/// # Examples
/// ```
/// use ops_core::runbooks::Fallback;
/// let f: Vec<Fallback> = serde_json::from_str(
///     r#"[{"provider": "sendgrid"}, {"degraded": "queue and retry later"}]"#).unwrap();
/// assert_eq!(f[0].to_string(), "provider sendgrid");
/// assert_eq!(f[1].to_string(), "degraded mode queue and retry later");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fallback {
    /// Another configured provider; it applies only when its own check is healthy.
    Provider(String),
    /// A degraded mode of the application ("queue and retry later", "cached responses"); it
    /// always applies.
    Degraded(String),
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Provider(n) => write!(f, "provider {n}"),
            Self::Degraded(mode) => write!(f, "degraded mode {}", text::quote(mode)),
        }
    }
}

/// What a provider check found.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::probe::{Exchange, ProbeResult, RetryAfter};
/// use ops_core::runbooks::ProviderState;
/// let r = ProbeResult::down("429").with_exchange(
///     Exchange::answered(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(120))));
/// assert_eq!(ProviderState::of(&r), ProviderState::RateLimited { retry_after: Some(Duration::from_secs(120)) });
/// assert_eq!(ProviderState::of(&ProbeResult::down("503").with_exchange(Exchange::answered(503))),
///            ProviderState::Outage { status: Some(503) });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderState {
    /// Answers as expected.
    Healthy,
    /// 429 Too Many Requests; `retry_after` when it said how long to wait.
    RateLimited {
        /// From `Retry-After`.
        #[serde(with = "crate::serde_util::opt_duration_ms")]
        retry_after: Option<Duration>,
    },
    /// The credential was refused (401, 403) or could not be read (`status` is `None`).
    AuthFailure {
        /// The status, when the provider answered.
        status: Option<u16>,
    },
    /// No answer within the deadline.
    Timeout,
    /// No connection: refused, DNS, TLS.
    Unreachable,
    /// The provider is failing (5xx), or a non-HTTP check is down.
    Outage {
        /// The status, when the provider answered.
        status: Option<u16>,
    },
    /// Answered with a status the runbook has no rule for (404, 400, an unmet condition).
    Unexpected {
        /// The status.
        status: u16,
    },
}

impl ProviderState {
    /// Classify a check's result: by its [`Exchange`] when it has one (429, 401/403, 5xx,
    /// timeout, unreachable; a 2xx/3xx that met its conditions is healthy), otherwise by its
    /// outcome (up or degraded is healthy, down is an outage).
    pub fn of(result: &ProbeResult) -> Self {
        match &result.exchange {
            Some(Exchange::Answered { status, .. }) => match status {
                429 => Self::RateLimited {
                    retry_after: result.exchange.as_ref().and_then(Exchange::retry_after),
                },
                401 | 403 => Self::AuthFailure {
                    status: Some(*status),
                },
                500..=599 => Self::Outage {
                    status: Some(*status),
                },
                _ if result.outcome != Outcome::Down => Self::Healthy,
                s => Self::Unexpected { status: *s },
            },
            Some(Exchange::TimedOut) => Self::Timeout,
            Some(Exchange::Unreachable { .. }) => Self::Unreachable,
            Some(Exchange::Failed) | None if result.outcome == Outcome::Down => {
                Self::Outage { status: None }
            }
            Some(Exchange::Failed) | None => Self::Healthy,
        }
    }

    /// Classify a check that could not run: by its error's kind.
    fn of_error(e: &OpsError) -> Self {
        match e.kind() {
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::PermissionDenied => Self::AuthFailure { status: None },
            ErrorKind::Unavailable => Self::Unreachable,
            _ => Self::Outage { status: None },
        }
    }

    /// Whether it is [`ProviderState::Healthy`].
    pub fn is_healthy(self) -> bool {
        self == Self::Healthy
    }

    /// What to do about it, in words.
    fn next_step(self, spec: &ProviderSpec) -> String {
        match self {
            Self::Healthy => String::new(),
            Self::RateLimited { retry_after } => format!(
                "back off{}; check the plan's quota and the request rate",
                retry_after.map_or_else(String::new, |d| format!(
                    " for {} s (Retry-After)",
                    d.as_secs()
                ))
            ),
            Self::AuthFailure { .. } => format!(
                "check the credential in {} (expired, revoked or rotated?)",
                spec.credential
                    .as_ref()
                    .map_or_else(|| "none configured".to_owned(), |c| c.from.to_string())
            ),
            Self::Timeout => {
                "check the provider's status page; keep client timeouts and circuit breakers short"
                    .to_owned()
            }
            Self::Unreachable => {
                "check DNS, egress network policy and TLS trust towards the provider".to_owned()
            }
            Self::Outage { .. } => {
                "check the provider's status page and contact its support".to_owned()
            }
            Self::Unexpected { .. } => {
                "the endpoint answered unexpectedly: check the configured URL and method".to_owned()
            }
        }
    }
}

impl fmt::Display for ProviderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Healthy => f.write_str("healthy"),
            Self::RateLimited {
                retry_after: Some(d),
            } => write!(f, "rate limited (retry after {} s)", d.as_secs()),
            Self::RateLimited { retry_after: None } => f.write_str("rate limited"),
            Self::AuthFailure { status: Some(s) } => write!(f, "credential refused ({s})"),
            Self::AuthFailure { status: None } => f.write_str("credential unavailable"),
            Self::Timeout => f.write_str("timed out"),
            Self::Unreachable => f.write_str("unreachable"),
            Self::Outage { status: Some(s) } => write!(f, "outage ({s})"),
            Self::Outage { status: None } => f.write_str("down"),
            Self::Unexpected { status } => write!(f, "unexpected answer ({status})"),
        }
    }
}

/// One provider's check, as the verdict needs it.
struct Checked {
    state: ProviderState,
    evidence: Vec<String>,
}

/// Find, read the credential for and run the check of `spec`.
async fn check_one(run: &Run<'_>, spec: &ProviderSpec, check: &Arc<dyn ProviderCheck>) -> Checked {
    let mut evidence = Vec::new();
    let credential = match &spec.credential {
        None => None,
        Some(source) => {
            let step = Step::read_only("read_credential")
                .target(format!("{} ({})", spec.name, source.from));
            match run.read(step, || source.read()).await {
                Ok(c) => Some(c),
                Err(e) => {
                    evidence.push(format!("credential: {}", e.chain()));
                    return Checked {
                        state: ProviderState::AuthFailure { status: None },
                        evidence,
                    };
                }
            }
        }
    };
    let step = Step::read_only("check_provider").target(&spec.name);
    match run.read(step, || check.check(credential.clone())).await {
        Ok(r) => {
            let state = ProviderState::of(&r);
            if let Some(x) = &r.exchange {
                if let Some(status) = x.status() {
                    evidence.push(format!("status = {status}"));
                }
                match x {
                    Exchange::Answered {
                        retry_after: Some(RetryAfter::Delay(d)),
                        ..
                    } => evidence.push(format!("retry-after = {} s", d.as_secs())),
                    Exchange::Answered {
                        retry_after: Some(unparsed),
                        ..
                    } => evidence.push(unparsed.to_string()),
                    Exchange::Unreachable { cause } => {
                        evidence.push(format!("connection: {cause}"));
                    }
                    _ => {}
                }
            }
            evidence.push(format!("latency = {} ms", r.latency.as_millis()));
            evidence.push(r.detail.clone());
            Checked { state, evidence }
        }
        Err(e) => {
            evidence.push(format!("the check could not run: {}", e.chain()));
            Checked {
                state: ProviderState::of_error(&e),
                evidence,
            }
        }
    }
}

/// The first fallback of `spec` that applies (a degraded mode, or a provider whose check is
/// healthy), and why each one before it does not.
fn choose_fallback<'a>(
    spec: &'a ProviderSpec,
    states: &BTreeMap<&str, ProviderState>,
) -> (Option<&'a Fallback>, Vec<String>) {
    let mut passed = Vec::new();
    for f in &spec.fallbacks {
        match f {
            Fallback::Degraded(_) => return (Some(f), passed),
            Fallback::Provider(n) => match states.get(n.as_str()) {
                Some(s) if s.is_healthy() => return (Some(f), passed),
                Some(s) => passed.push(format!("fallback {f} is not usable: {s}")),
                None => passed.push(format!("fallback {f} was not checked")),
            },
        }
    }
    (None, passed)
}

/// Provider/external API failures (seeds 000 "Provider API Failures" and 003): check every
/// provider of [`ProviderChecks`] concurrently, each with its credential read at run time, and
/// classify what each answered ([`ProviderState`]): healthy, rate limited (429, with
/// `Retry-After`), credential refused (401/403) or unreadable, timed out, unreachable
/// (refused, DNS, TLS), outage (5xx), or an unexpected status.
///
/// For each provider that is not healthy the report says which fallback applies: the first in
/// its chain that is a degraded mode or a provider whose own check is healthy; with none,
/// "no healthy fallback: escalate". Severity through the [`crate::incident::Classifier`]: every unhealthy
/// provider is a degraded dependency, and one without a fallback that applies is a critical
/// feature down. With [`ProviderChecks::notify`] a run that finds a provider down notifies.
/// Read-only: it changes nothing, and a dry run checks the same way.
///
/// Outcome: [`RunOutcome::Healthy`] when every provider is, else [`RunOutcome::Unresolved`].
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when no provider is configured, the configuration is invalid
/// ([`ProviderChecks::validate`]), or a configured provider has no check in
/// [`Targets::providers`] (or a check no configuration).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::probe::{Exchange, ProbeResult};
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{provider_failure, Fallback, ProviderSpec, RunbookConfig, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProviderCheck};
/// let mut cfg = RunbookConfig::default();
/// cfg.providers.providers = vec![
///     ProviderSpec::new("stripe", "https://api.stripe.com/v1/balance")
///         .with_fallback(Fallback::Provider("adyen".into())),
///     ProviderSpec::new("adyen", "https://checkout.adyen.com/health"),
/// ];
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/deployment/api".parse()?)
///     .with_config(cfg)
///     .with_provider(Arc::new(ScriptedProviderCheck::always("stripe",
///         ProbeResult::down("503").with_exchange(Exchange::answered(503)))))
///     .with_provider(Arc::new(ScriptedProviderCheck::always("adyen",
///         ProbeResult::up().with_exchange(Exchange::answered(200)))));
/// let report = provider_failure(&RunContext::builder().build(), &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Unresolved);
/// assert!(report.findings[0].title.contains("fallback provider adyen applies"));
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "provider_failure", mode = %ctx.mode()))]
pub async fn provider_failure(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let cfg = &t.config.providers;
    let run = ctx
        .begin(
            "provider_failure",
            format!("{} provider(s)", cfg.providers.len()),
        )
        .await;
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let checks = wire(cfg, t)?;
        let results = join_all(
            checks
                .iter()
                .map(|(spec, check)| check_one(&run, spec, check)),
        )
        .await;
        let states: BTreeMap<&str, ProviderState> = checks
            .iter()
            .zip(&results)
            .map(|((spec, _), c)| (spec.name.as_str(), c.state))
            .collect();
        let mut degraded = Vec::new();
        let mut stranded = Vec::new();
        let mut lines = Vec::new();
        for ((spec, _), checked) in checks.iter().zip(results) {
            let finding = verdict(
                spec,
                checked,
                &states,
                &mut degraded,
                &mut stranded,
                &mut lines,
            );
            run.finding(finding);
        }
        if degraded.is_empty() {
            run.summary(format!("All {} provider(s) are healthy.", checks.len()));
            return Ok(RunOutcome::Healthy);
        }
        let signals = Signals::default()
            .with_degraded_dependency(degraded.join(", "))
            .with_critical_feature_down(!stranded.is_empty());
        let classification = run.observe(signals);
        run.summary(format!(
            "{} Severity: {}.",
            lines.join(" "),
            classification.reasons.join("; ")
        ));
        if cfg.notify {
            run.notify(
                Notification::new(
                    classification.severity,
                    format!("provider failure: {}", degraded.join(", ")),
                    super::api_down::findings_markdown(&run),
                )
                .with_dedup_key(format!("provider_failure:{}", degraded.join(",")))
                .with_status(IncidentStatus::Identified),
            )
            .await;
        }
        Ok(RunOutcome::Unresolved)
    })
    .await;
    run.conclude(body).await
}

/// A configured provider and its check.
type Wired<'a> = (&'a ProviderSpec, &'a Arc<dyn ProviderCheck>);

/// Pair each configured provider with its check, in configuration order.
fn wire<'a>(cfg: &'a ProviderChecks, t: &'a Targets) -> Result<Vec<Wired<'a>>, OpsError> {
    if cfg.providers.is_empty() {
        return Err(OpsError::invalid(
            "provider_failure",
            "providers",
            "no provider configured (RunbookConfig::providers)",
        ));
    }
    cfg.validate()?;
    if let Some(extra) = t.providers.iter().find(|c| cfg.get(c.name()).is_none()) {
        return Err(OpsError::invalid(
            "provider_failure",
            text::quote(extra.name()),
            "a provider check without configuration",
        ));
    }
    cfg.providers
        .iter()
        .map(|spec| {
            t.providers
                .iter()
                .find(|c| c.name() == spec.name)
                .map(|c| (spec, c))
                .ok_or_else(|| {
                    OpsError::invalid(
                        "provider_failure",
                        &spec.name,
                        "no check for this provider (Targets::with_provider)",
                    )
                })
        })
        .collect()
}

/// The finding of one provider; collects the unhealthy ones (`degraded`), those with no
/// fallback that applies (`stranded`) and a sentence for the summary.
fn verdict(
    spec: &ProviderSpec,
    checked: Checked,
    states: &BTreeMap<&str, ProviderState>,
    degraded: &mut Vec<String>,
    stranded: &mut Vec<String>,
    lines: &mut Vec<String>,
) -> Finding {
    let Checked { state, evidence } = checked;
    let name = &spec.name;
    if state.is_healthy() {
        return evidence.into_iter().fold(
            Finding::info(format!("{name}: healthy")),
            Finding::with_evidence,
        );
    }
    degraded.push(name.clone());
    let (chosen, passed) = choose_fallback(spec, states);
    let (finding, line) = if let Some(f) = chosen {
        (
            Finding::warning(format!("{name}: {state}: fallback {f} applies")),
            format!("{name} is {state}: use {f}."),
        )
    } else {
        stranded.push(name.clone());
        (
            Finding::critical(format!("{name}: {state}: no healthy fallback: escalate")),
            format!("{name} is {state} and no fallback applies: escalate."),
        )
    };
    lines.push(line);
    evidence
        .into_iter()
        .chain(passed)
        .chain(std::iter::once(format!("next: {}", state.next_step(spec))))
        .fold(finding, Finding::with_evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(edges: &[(&str, &[&str])]) -> ProviderChecks {
        ProviderChecks {
            providers: edges
                .iter()
                .map(|(n, fs)| {
                    fs.iter()
                        .fold(ProviderSpec::new(*n, "https://x.example/"), |p, f| {
                            p.with_fallback(Fallback::Provider((*f).to_owned()))
                        })
                })
                .collect(),
            notify: false,
        }
    }

    #[test]
    fn cycles_are_found_and_chains_are_not() {
        assert!(
            chain(&[("a", &["b"]), ("b", &["c"]), ("c", &[])])
                .validate()
                .is_ok()
        );
        assert!(
            chain(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])])
                .validate()
                .is_ok()
        );
        let err = chain(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])])
            .validate()
            .unwrap_err();
        assert!(err.chain().contains("a -> b -> c -> a"), "{}", err.chain());
        assert!(chain(&[("a", &["a"])]).validate().is_err());
        assert!(chain(&[("a", &["z"])]).validate().is_err());
        assert!(chain(&[("a", &[]), ("a", &[])]).validate().is_err());
        assert!(chain(&[("A B", &[])]).validate().is_err());
    }

    #[test]
    fn origin_drops_credentials_path_and_query() {
        assert_eq!(
            origin("https://u:pw@api.example.com:8443/v1/x?key=abc"),
            "https://api.example.com:8443"
        );
        assert_eq!(origin("nonsense"), "://nonsense");
    }
}
