//! The system file as written: every table rejects unknown keys, and every value a later
//! check may reject keeps its place in the file ([`Spanned`]) so the error can point at it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A string and where it stands.
pub(crate) type Text = Spanned<String>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSystem {
    pub(crate) name: Text,
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// The service runbooks act on when `--service` is not given (default: the first one).
    #[serde(default)]
    pub(crate) primary: Option<Text>,
    pub(crate) platform: Spanned<RawPlatform>,
    #[serde(default)]
    pub(crate) services: BTreeMap<String, Spanned<RawService>>,
    #[serde(default)]
    pub(crate) database: Option<Spanned<RawDatabase>>,
    #[serde(default)]
    pub(crate) cache: Option<Spanned<RawCache>>,
    #[serde(default)]
    pub(crate) metrics: Option<Spanned<RawMetrics>>,
    #[serde(default)]
    pub(crate) checks: Vec<Spanned<RawCheck>>,
    #[serde(default)]
    pub(crate) notifiers: Vec<Spanned<RawNotifier>>,
    #[serde(default)]
    pub(crate) thresholds: RawThresholds,
    /// `[[providers]]` (issue 14): the external providers `provider-check` probes, each with
    /// its credential's source and fallbacks (`ops_core::runbooks::ProviderSpec`).
    #[serde(default)]
    pub(crate) providers: Vec<Spanned<ops_core::runbooks::ProviderSpec>>,
    /// `[auth]` (issue 14): what `auth-check` checks (`ops_core::runbooks::AuthChecks`).
    #[serde(default)]
    pub(crate) auth: Option<ops_core::runbooks::AuthChecks>,
    /// `[incident]`: the severity scale, the status-update cadence and the escalation ladder.
    #[serde(default)]
    pub(crate) incident: RawIncident,
    #[serde(default)]
    pub(crate) approval: RawApproval,
    #[serde(default)]
    pub(crate) journal: RawJournal,
}

/// `[platform]`: `kind = "compose"` with `project`, or `kind = "kubernetes"` with
/// `namespace` (and optionally `context`, `kubeconfig`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlatform {
    pub(crate) kind: Text,
    #[serde(default)]
    pub(crate) project: Option<Text>,
    #[serde(default)]
    pub(crate) namespace: Option<Text>,
    #[serde(default)]
    pub(crate) context: Option<Text>,
    #[serde(default)]
    pub(crate) kubeconfig: Option<Text>,
}

/// `[services.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawService {
    /// Kubernetes: `deployment/api`; compose: the compose service (default: the table's name).
    pub(crate) workload: Option<Text>,
    /// The health endpoint (HTTP or HTTPS URL, no credentials).
    pub(crate) health: Option<Text>,
    /// Statuses that count as healthy (default 200-299).
    pub(crate) expect_status: Option<Spanned<Vec<u16>>>,
    /// How long one health check may take (default 5s).
    pub(crate) timeout: Option<Text>,
    /// Services that must be up before this one (`recover-all` order).
    pub(crate) depends_on: Vec<Text>,
}

/// `[database]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawDatabase {
    /// The variable holding the URL (with its credentials).
    pub(crate) url_env: Option<Text>,
    /// Or the file holding it.
    pub(crate) url_file: Option<Text>,
    /// The service that runs it (restarted by the database runbooks, if they must).
    pub(crate) service: Option<Text>,
    /// The database `backup` and `restore` act on.
    pub(crate) name: Option<Text>,
    /// Where `backup` writes (default `./backups`).
    pub(crate) backup_dir: Option<Text>,
}

/// `[cache]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawCache {
    /// The variable holding the URL (with its credentials).
    pub(crate) url_env: Option<Text>,
    /// Or the file holding it.
    pub(crate) url_file: Option<Text>,
    /// The service that runs it (`cache-failure` restarts it when unreachable).
    pub(crate) service: Option<Text>,
    /// The session keys (`session-invalidation`), default `session:*`.
    pub(crate) session_pattern: Option<Text>,
    /// Patterns `cache-failure` may purge under memory pressure.
    pub(crate) purgeable: Vec<Text>,
}

/// `[metrics]`: a Prometheus server.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawMetrics {
    /// The server's URL when it holds no credentials.
    pub(crate) url: Option<Text>,
    /// Or the variable that holds it.
    pub(crate) url_env: Option<Text>,
    /// The `job` label of the service's metrics (default `api`).
    pub(crate) job: Option<Text>,
    /// The rate window, e.g. `5m`.
    pub(crate) window: Option<Text>,
}

/// `[[checks]]`: a dependency, certificate or provider check; exactly one of `tcp`, `tls`,
/// `http`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    pub(crate) name: Text,
    #[serde(default)]
    pub(crate) tcp: Option<Text>,
    #[serde(default)]
    pub(crate) tls: Option<Text>,
    #[serde(default)]
    pub(crate) http: Option<Text>,
    /// TLS: days left under which the certificate is "expiring soon".
    #[serde(default)]
    pub(crate) warn_days: Option<Spanned<u32>>,
}

/// `[[notifiers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotifier {
    pub(crate) kind: Text,
    /// Slack and webhook: the variable holding the URL.
    #[serde(default)]
    pub(crate) url_env: Option<Text>,
    /// PagerDuty: the variable holding the routing key.
    #[serde(default)]
    pub(crate) routing_key_env: Option<Text>,
    /// The severities sent to it (default: every one).
    #[serde(default)]
    pub(crate) severities: Vec<Text>,
}

/// `[thresholds]`: onto `RunbookConfig`; durations as `30s`, `5m`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawThresholds {
    pub(crate) rollout_timeout: Option<Text>,
    pub(crate) rollout_poll: Option<Text>,
    pub(crate) verify_successes: Option<Spanned<u32>>,
    pub(crate) verify_interval: Option<Text>,
    pub(crate) verify_timeout: Option<Text>,
    pub(crate) log_tail: Option<u32>,
    pub(crate) log_since: Option<Text>,
    pub(crate) recent_deploy: Option<Text>,
    pub(crate) memory_warn: Option<Spanned<f64>>,
    pub(crate) cpu_scale_out: Option<Spanned<f64>>,
    pub(crate) max_replicas: Option<u32>,
    pub(crate) error_rate: Option<RawLevels<f64>>,
    pub(crate) p95: Option<RawLevels<String>>,
    pub(crate) db: RawDbLimits,
    pub(crate) cache: RawCacheLimits,
    pub(crate) oom: RawOomLimits,
}

/// `[thresholds.oom]`: how `oom` may raise memory limits.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawOomLimits {
    /// `x1.5` or `+256Mi`.
    pub(crate) step: Option<Text>,
    /// A memory quantity, `2Gi`; none: never raise.
    pub(crate) ceiling: Option<Text>,
    pub(crate) far_below: Option<Spanned<f64>>,
}

/// Three levels of a signal: P1 (`high`), P2 (`medium`), P3 (`low`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLevels<T> {
    pub(crate) high: Spanned<T>,
    pub(crate) medium: Spanned<T>,
    pub(crate) low: Spanned<T>,
}

/// `[thresholds.db]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawDbLimits {
    pub(crate) warn_utilisation: Option<Spanned<f64>>,
    pub(crate) critical_utilisation: Option<Spanned<f64>>,
    pub(crate) idle_limit: Option<Text>,
    pub(crate) idle_in_transaction_limit: Option<Text>,
    pub(crate) long_query: Option<Text>,
    pub(crate) size_warn_bytes: Option<u64>,
}

/// `[thresholds.cache]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawCacheLimits {
    pub(crate) memory_critical: Option<Spanned<f64>>,
    pub(crate) min_hit_ratio: Option<Spanned<f64>>,
    pub(crate) clients_critical: Option<Spanned<f64>>,
    pub(crate) idle_client_limit: Option<Text>,
}

/// `[incident]`: how severities are labelled, how often status updates go out and who is
/// escalated to while a run stays unresolved.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawIncident {
    /// `"p0-p3"` (the default) or `"p1-p4"`.
    pub(crate) scale: Option<Text>,
    /// The next status update's delay per severity, keyed by the scale's labels:
    /// `{ P0 = "15m", P1 = "30m" }`; severities left out keep the seeds' cadence.
    pub(crate) updates: Option<Spanned<BTreeMap<String, Text>>>,
    /// The escalation ladder, in the order its levels fall due (absent: the seeds' ladder;
    /// empty: nobody is escalated to).
    pub(crate) escalation: Option<Vec<Spanned<RawEscalationLevel>>>,
}

/// `[[incident.escalation]]`: one level of the ladder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEscalationLevel {
    /// How long after the incident started this level is notified: `30m`.
    pub(crate) after: Text,
    /// Who: a role or a name, as the notification should say it.
    pub(crate) contact: Text,
    /// The severities (labels on the scale) this level applies to (default: every one).
    #[serde(default)]
    pub(crate) severities: Vec<Text>,
}

/// `[approval]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawApproval {
    /// How long a prompt waits before it counts as no (default 2m).
    pub(crate) timeout: Option<Text>,
    /// Steps approved without asking, as `runbook:step@target` rules.
    pub(crate) allow: Vec<Text>,
}

/// `[journal]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawJournal {
    /// The SQLite file (default `.opsbook/journal.db`).
    pub(crate) path: Option<String>,
}
