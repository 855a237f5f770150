//! The system file (`opsbook.toml`): the system described once — platform, services and
//! their health checks, where the database and cache URLs come from, checks, notifiers,
//! thresholds and approval policy — so that every `opsbook` command can act on it.
//!
//! Secrets never stand in the file: the database, cache, Slack, webhook and PagerDuty
//! credentials are named by environment variable (`url_env`) or file (`url_file`), and a
//! URL written in the file must carry no user or password. Durations are written `30s`,
//! `5m`, `1h30m`. Unknown keys are errors. [`System::parse`] reports every error it finds with
//! its line, column and dotted key; a file that is not TOML, or has a key the schema does not
//! know or a value of the wrong type, stops at that first error (the parser cannot go on).
//!
//! ```toml
//! name = "shop"
//!
//! [platform]
//! kind = "compose"          # or "kubernetes" with namespace, context, kubeconfig
//! project = "shop"
//!
//! [services.api]
//! health = "http://127.0.0.1:8080/health"
//! depends_on = ["db", "cache"]
//!
//! [services.db]
//! [services.cache]
//!
//! [database]
//! url_env = "SHOP_PG_URL"   # the URL, with its password, is read from here
//! service = "db"
//! name = "app"
//!
//! [cache]
//! url_env = "SHOP_REDIS_URL"
//! service = "cache"
//!
//! [thresholds]
//! rollout_timeout = "5m"
//! error_rate = { high = 0.10, medium = 0.05, low = 0.01 }
//!
//! [incident]                # how severities are labelled, announced and escalated
//! scale = "p1-p4"           # the seeds' P1–P4 (default "p0-p3")
//! updates = { P1 = "15m", P2 = "1h" }   # next status update, by severity
//!
//! [[incident.escalation]]   # in the order the levels fall due
//! after = "30m"
//! contact = "team lead"
//!
//! [[incident.escalation]]
//! after = "1h"
//! contact = "director of engineering"
//! severities = ["P1", "P2"] # default: every severity
//!
//! [approval]
//! timeout = "2m"
//!
//! [[providers]]             # provider-check: each probed with its credential
//! name = "stripe"
//! url = "https://api.stripe.com/v1/balance"
//! credential = { env = "STRIPE_KEY" }     # or { file = "/run/secrets/stripe", header = "X-Api-Key" }
//! fallbacks = [{ provider = "adyen" }, { degraded = "queue payments and retry later" }]
//!
//! [[providers]]
//! name = "adyen"
//! url = "https://checkout.adyen.com/health"
//!
//! [auth]                    # auth-check
//! signing_key_env = "JWT_SECRET"
//! clock_skew_max = "30s"
//! ```

mod diagnostics;
mod duration;
mod incident;
mod raw;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ops_core::WorkloadRef;
use ops_core::incident::Severity;
use ops_core::refs::Identifier;
use ops_core::run::{ApprovalRule, IncidentPolicy};
use ops_core::runbooks::{RecoveryOrder, RunbookConfig};
use secrecy::SecretString;

pub use diagnostics::{ConfigError, ConfigErrors};
pub use duration::parse_duration;

/// A validated system file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct System {
    /// The system's name.
    pub name: String,
    /// One line about it.
    pub description: Option<String>,
    /// Where its workloads run.
    pub platform: PlatformSpec,
    /// Its services, in the order of the file.
    pub services: Vec<ServiceSpec>,
    /// The service runbooks act on when none is named.
    pub primary: String,
    /// Its database.
    pub database: Option<DatabaseSpec>,
    /// Its cache.
    pub cache: Option<CacheSpec>,
    /// Its metrics source (Prometheus).
    pub metrics: Option<SecretSource>,
    /// Dependency, certificate and provider checks.
    pub checks: Vec<CheckSpec>,
    /// Who is told.
    pub notifiers: Vec<NotifierSpec>,
    /// The runbooks' thresholds and windows.
    pub config: RunbookConfig,
    /// How incidents are classified (the `[thresholds]` error-rate and p95 levels), labelled,
    /// escalated and announced: handed to the run context.
    pub incident: IncidentPolicy,
    /// How changes are approved.
    pub approval: ApprovalSpec,
    /// The journal file.
    pub journal: PathBuf,
}

/// Where the workloads run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlatformSpec {
    /// A Docker Compose project on the engine `DOCKER_HOST` names (or the local one).
    Compose {
        /// The project name.
        project: String,
    },
    /// A Kubernetes namespace.
    Kubernetes {
        /// The namespace.
        namespace: String,
        /// The kubeconfig context (default: the current one).
        context: Option<String>,
        /// The kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).
        kubeconfig: Option<PathBuf>,
    },
}

/// A service of the system.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceSpec {
    /// Its name in the file.
    pub name: String,
    /// Its workload on the platform.
    pub workload: WorkloadRef,
    /// Its health check.
    pub health: Option<HealthSpec>,
    /// The services it needs up first.
    pub depends_on: Vec<String>,
}

/// An HTTP health check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthSpec {
    /// The URL (no credentials).
    pub url: String,
    /// Statuses that count as healthy; empty means 200-299.
    pub expect_status: Vec<u16>,
    /// How long one check may take.
    pub timeout: Duration,
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (its first line; trailing white space dropped).
    File(PathBuf),
    /// Written in the file: only for values that hold no credentials (a metrics URL).
    Plain(String),
}

impl SecretSource {
    /// Read the value now.
    ///
    /// # Errors
    /// A sentence naming the variable or file when it is unset, empty or unreadable (never
    /// the value).
    pub fn read(&self) -> Result<SecretString, String> {
        match self {
            Self::Env(name) => std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(SecretString::from)
                .ok_or_else(|| format!("the environment variable {name} is not set")),
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|text| {
                    text.lines()
                        .next()
                        .map(str::trim_end)
                        .filter(|l| !l.is_empty())
                        .map(|l| SecretString::from(l.to_owned()))
                        .ok_or_else(|| format!("{} is empty", path.display()))
                }),
            Self::Plain(value) => Ok(SecretString::from(value.clone())),
        }
    }

    /// Where it comes from, for messages (`$SHOP_PG_URL`, a path): never the value.
    pub fn describe(&self) -> String {
        match self {
            Self::Env(name) => format!("${name}"),
            Self::File(path) => path.display().to_string(),
            Self::Plain(_) => "the system file".to_owned(),
        }
    }
}

/// The database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatabaseSpec {
    /// Where its URL comes from.
    pub url: SecretSource,
    /// The service that runs it.
    pub service: Option<String>,
    /// The database `backup` and `restore` act on.
    pub name: Option<Identifier>,
    /// Where `backup` writes.
    pub backup_dir: PathBuf,
}

/// The cache.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheSpec {
    /// Where its URL comes from.
    pub url: SecretSource,
    /// The service that runs it.
    pub service: Option<String>,
}

/// A dependency, certificate or provider check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckSpec {
    /// A TCP connect.
    Tcp {
        /// Its name.
        name: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
    /// A TLS handshake and certificate check.
    Tls {
        /// Its name.
        name: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Days left under which the certificate is expiring soon.
        warn_days: Option<u32>,
    },
    /// An HTTP GET answering 2xx.
    Http {
        /// Its name.
        name: String,
        /// The URL (no credentials).
        url: String,
    },
}

/// Kinds of notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifierKind {
    /// Standard error.
    Console,
    /// A Slack incoming webhook.
    Slack,
    /// PagerDuty Events v2.
    PagerDuty,
    /// A generic webhook.
    Webhook,
}

/// A notifier and the severities it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotifierSpec {
    /// Its kind.
    pub kind: NotifierKind,
    /// The variable holding its URL or routing key (not for the console).
    pub secret_env: Option<String>,
    /// The severities it gets; empty means all.
    pub severities: Vec<Severity>,
}

/// How changes are approved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalSpec {
    /// How long a prompt waits for an answer before it counts as no.
    pub timeout: Duration,
    /// Changes approved without asking.
    pub allow: Vec<ApprovalRule>,
}

impl System {
    /// Read and validate the system file at `path`.
    ///
    /// # Errors
    /// Every error found, each with its line, column and key (a file that cannot be read:
    /// one error saying why).
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            file: path.to_owned(),
            errors: vec![ConfigError {
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the system file: {e}"),
            }],
        })?;
        Self::parse(&text, path)
    }

    /// Validate `text`, the contents of `file` (used in messages only).
    ///
    /// # Errors
    /// Every error found, each with its line, column and key.
    ///
    /// # Examples
    /// ```
    /// use std::path::Path;
    /// use ops_examples::system::System;
    /// let text = "name = \"shop\"\n[platform]\nkind = \"compose\"\nproject = \"shop\"\n[services.api]\nhealth = \"http://127.0.0.1:8080/health\"\n";
    /// let system = System::parse(text, Path::new("opsbook.toml"))?;
    /// assert_eq!(system.primary, "api");
    /// let bad = System::parse(&text.replace("health", "helth"), Path::new("opsbook.toml")).unwrap_err();
    /// assert_eq!((bad.errors[0].line, bad.errors[0].key.as_str()), (6, "services.api.helth"));
    /// # Ok::<(), ops_examples::system::ConfigErrors>(())
    /// ```
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigErrors> {
        validate::parse(text, file)
    }

    /// The service named `name`, or the primary one.
    ///
    /// # Errors
    /// A sentence listing the services when there is none of that name.
    pub fn service(&self, name: Option<&str>) -> Result<&ServiceSpec, String> {
        let name = name.unwrap_or(&self.primary);
        self.services
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "no service {name:?} in system {}: it has {}",
                    self.name,
                    known.join(", ")
                )
            })
    }

    /// The order `recover-all` brings the services back in: tiers by `depends_on`, each
    /// tier after the ones it depends on (the file guarantees there is no cycle).
    pub fn recovery_order(&self) -> RecoveryOrder {
        validate::tiers(&self.services)
            .into_iter()
            .fold(RecoveryOrder::new(), |order, tier| {
                order.then(tier.into_iter().map(|s| s.workload.clone()))
            })
    }

    /// What the file names that this environment does not have (unset variables, missing
    /// files): not errors, since the file may be checked elsewhere than it is used.
    pub fn warnings(&self) -> Vec<String> {
        let mut sources: Vec<(&str, &SecretSource)> = Vec::new();
        if let Some(db) = &self.database {
            sources.push(("database.url", &db.url));
        }
        if let Some(cache) = &self.cache {
            sources.push(("cache.url", &cache.url));
        }
        if let Some(m) = &self.metrics {
            sources.push(("metrics.url", m));
        }
        let mut out: Vec<String> = sources
            .into_iter()
            .filter_map(|(key, s)| s.read().err().map(|e| format!("{key}: {e}")))
            .collect();
        for n in &self.notifiers {
            if let Some(var) = &n.secret_env
                && std::env::var_os(var).is_none_or(|v| v.is_empty())
            {
                out.push(format!(
                    "notifiers: the environment variable {var} is not set"
                ));
            }
        }
        out
    }
}
