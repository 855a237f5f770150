//! From the file as written ([`raw`](super::raw)) to a [`System`]: every value checked,
//! every error collected with its place.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ops_core::WorkloadRef;
use ops_core::incident::{SeverityScale, Thresholds};
use ops_core::metrics::MetricWindow;
use ops_core::refs::{KeyPattern, WorkloadKind};
use ops_core::run::IncidentPolicy;
use ops_core::runbooks::RunbookConfig;
use toml::Spanned;

use super::diagnostics::{Collector, ConfigError, ConfigErrors, key_at, line_column};
use super::raw::{RawCache, RawDatabase, RawPlatform, RawService, RawSystem, RawThresholds, Text};
use super::{
    ApprovalSpec, CacheSpec, CheckSpec, DatabaseSpec, HealthSpec, NotifierKind, NotifierSpec,
    PlatformSpec, SecretSource, ServiceSpec, System, parse_duration,
};

/// Parse and validate `text`.
pub(super) fn parse(text: &str, file: &Path) -> Result<System, ConfigErrors> {
    let raw: RawSystem = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = e.span().map_or((0, 0), |s| line_column(text, s.start));
        ConfigErrors {
            file: file.to_owned(),
            errors: vec![ConfigError {
                line,
                column,
                key: key_at(text, offset),
                message: e.message().trim_end().to_owned(),
            }],
        }
    })?;
    let mut c = Collector::new(text);
    let name = raw.name.get_ref().trim().to_owned();
    if name.is_empty() {
        c.at(raw.name.span(), "name", "the system needs a name");
    }
    let platform = platform(&mut c, &raw.platform);
    let services = services(&mut c, &raw, platform.as_ref());
    let primary = primary(&mut c, &raw, &services);
    let known: BTreeSet<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let database = raw
        .database
        .as_ref()
        .and_then(|d| database(&mut c, d, &known));
    let cache = raw.cache.as_ref().and_then(|d| cache(&mut c, d, &known));
    let mut config = thresholds(&mut c, &raw.thresholds);
    providers(&mut c, &raw.providers, &mut config);
    if let Some(auth) = &raw.auth {
        config.auth = auth.clone();
    }
    let classified = IncidentPolicy::default().with_thresholds(levels(&mut c, &raw.thresholds));
    let incident = super::incident::incident_policy(&mut c, &raw.incident, classified);
    if let Some(raw_cache) = &raw.cache {
        cache_patterns(&mut c, raw_cache.get_ref(), &mut config);
    }
    let metrics = raw
        .metrics
        .as_ref()
        .and_then(|m| metrics(&mut c, m, &mut config));
    let checks = raw.checks.iter().filter_map(|k| check(&mut c, k)).collect();
    let notifiers = raw
        .notifiers
        .iter()
        .filter_map(|n| notifier(&mut c, n, &incident.scale))
        .collect();
    let approval = approval(&mut c, &raw);
    c.finish(file)?;
    let Some(platform) = platform else {
        unreachable!("a missing platform is an error reported above")
    };
    Ok(System {
        name,
        description: raw.description,
        platform,
        services,
        primary,
        database,
        cache,
        metrics,
        checks,
        notifiers,
        config,
        incident,
        approval,
        journal: raw
            .journal
            .path
            .map_or_else(|| PathBuf::from(".opsbook/journal.db"), PathBuf::from),
    })
}

/// `[[providers]]` (issue 14): names, fallbacks (no cycle) and URLs checked here, so
/// `provider-check` cannot start with a chain it could not follow.
fn providers(
    c: &mut Collector<'_>,
    raw: &[Spanned<ops_core::runbooks::ProviderSpec>],
    cfg: &mut RunbookConfig,
) {
    cfg.providers.providers = raw.iter().map(|p| p.get_ref().clone()).collect();
    if let Err(e) = cfg.providers.validate() {
        let span = raw
            .iter()
            .find(|p| e.chain().contains(&p.get_ref().name))
            .or(raw.first())
            .map(Spanned::span);
        if let Some(span) = span {
            c.at(span, "providers", e.chain());
        }
    }
    for p in raw {
        if let Err(e) = ops_probes::provider_probe(p.get_ref()) {
            c.at(p.span(), "providers.url", format!("{e}"));
        }
    }
}

fn platform(c: &mut Collector<'_>, p: &Spanned<RawPlatform>) -> Option<PlatformSpec> {
    let raw = p.get_ref();
    let forbid = |c: &mut Collector<'_>, v: &Option<Text>, key: &str, kind: &str| {
        if let Some(v) = v {
            c.at(
                v.span(),
                format!("platform.{key}"),
                format!("{key} is not a setting of a {kind} platform"),
            );
        }
    };
    match raw.kind.get_ref().as_str() {
        "compose" => {
            forbid(c, &raw.namespace, "namespace", "compose");
            forbid(c, &raw.context, "context", "compose");
            forbid(c, &raw.kubeconfig, "kubeconfig", "compose");
            let Some(project) = &raw.project else {
                c.at(
                    p.span(),
                    "platform.project",
                    "a compose platform needs project = \"NAME\" (the compose project)",
                );
                return None;
            };
            Some(PlatformSpec::Compose {
                project: project.get_ref().clone(),
            })
        }
        "kubernetes" => {
            forbid(c, &raw.project, "project", "kubernetes");
            let Some(namespace) = &raw.namespace else {
                c.at(
                    p.span(),
                    "platform.namespace",
                    "a kubernetes platform needs namespace = \"NAME\"",
                );
                return None;
            };
            Some(PlatformSpec::Kubernetes {
                namespace: namespace.get_ref().clone(),
                context: raw.context.as_ref().map(|s| s.get_ref().clone()),
                kubeconfig: raw.kubeconfig.as_ref().map(|s| PathBuf::from(s.get_ref())),
            })
        }
        other => {
            c.at(
                raw.kind.span(),
                "platform.kind",
                format!("unknown platform {other:?}: write \"compose\" or \"kubernetes\""),
            );
            None
        }
    }
}

fn services(
    c: &mut Collector<'_>,
    raw: &RawSystem,
    platform: Option<&PlatformSpec>,
) -> Vec<ServiceSpec> {
    let mut in_order: Vec<(&String, &Spanned<RawService>)> = raw.services.iter().collect();
    in_order.sort_by_key(|(_, s)| s.span().start);
    let mut out = Vec::new();
    for (name, spanned) in in_order {
        let s = spanned.get_ref();
        let key = format!("services.{name}");
        let workload = platform.and_then(|p| workload(c, p, name, s, spanned.span(), &key));
        let health = s.health.as_ref().and_then(|h| {
            let url = url(c, h, &format!("{key}.health"))?;
            Some(HealthSpec {
                url,
                expect_status: s
                    .expect_status
                    .as_ref()
                    .map(|v| v.get_ref().clone())
                    .unwrap_or_default(),
                timeout: duration(c, s.timeout.as_ref(), &format!("{key}.timeout"))
                    .unwrap_or(Duration::from_secs(5)),
            })
        });
        if let Some(v) = &s.expect_status
            && v.get_ref().iter().any(|code| !(100..=599).contains(code))
        {
            c.at(
                v.span(),
                format!("{key}.expect_status"),
                "HTTP statuses are 100 to 599",
            );
        }
        for d in &s.depends_on {
            if !raw.services.contains_key(d.get_ref()) {
                c.at(
                    d.span(),
                    format!("{key}.depends_on"),
                    format!("no service {:?} in this file", d.get_ref()),
                );
            }
        }
        if let Some(workload) = workload {
            out.push(ServiceSpec {
                name: name.clone(),
                workload,
                health,
                depends_on: s.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
            });
        }
    }
    let placed: usize = tiers(&out).iter().map(Vec::len).sum();
    if placed < out.len() {
        let stuck = out
            .iter()
            .find(|s| !tiers(&out).iter().flatten().any(|t| t.name == s.name));
        if let Some(s) = stuck {
            let span = raw.services.get(&s.name).map_or(0..0, Spanned::span);
            c.at(
                span,
                format!("services.{}.depends_on", s.name),
                "depends_on makes a cycle: no order can start these services",
            );
        }
    }
    out
}

fn workload(
    c: &mut Collector<'_>,
    platform: &PlatformSpec,
    name: &str,
    s: &RawService,
    span: std::ops::Range<usize>,
    key: &str,
) -> Option<WorkloadRef> {
    let key = format!("{key}.workload");
    let result = match platform {
        PlatformSpec::Compose { project } => {
            let service = s.workload.as_ref().map_or(name, |w| w.get_ref().as_str());
            WorkloadRef::compose_service(project, service).map_err(|e| e.chain())
        }
        PlatformSpec::Kubernetes { namespace, .. } => {
            let Some(w) = &s.workload else {
                c.at(span, key, "a Kubernetes service needs workload = \"KIND/NAME\" (deployment/api, statefulset/db, daemonset/agent)");
                return None;
            };
            match w.get_ref().split_once('/') {
                Some((kind, wname)) => kind
                    .parse::<WorkloadKind>()
                    .and_then(|kind| WorkloadRef::new(namespace, kind, wname))
                    .map_err(|e| e.chain()),
                None => Err("write KIND/NAME, e.g. deployment/api".to_owned()),
            }
        }
    };
    match result {
        Ok(w) => Some(w),
        Err(e) => {
            let at = s.workload.as_ref().map_or(span, Spanned::span);
            c.at(at, key, format!("not a workload: {e}"));
            None
        }
    }
}

fn primary(c: &mut Collector<'_>, raw: &RawSystem, services: &[ServiceSpec]) -> String {
    if let Some(p) = &raw.primary {
        if !raw.services.contains_key(p.get_ref()) {
            c.at(
                p.span(),
                "primary",
                format!("no service {:?} in this file", p.get_ref()),
            );
        }
        return p.get_ref().clone();
    }
    if let Some(s) = services.first() {
        return s.name.clone();
    }
    if raw.services.is_empty() {
        c.at(
            raw.name.span(),
            "services",
            "describe at least one service: [services.NAME]",
        );
    }
    String::new()
}

/// The services in tiers: each after every service it depends on, by ops-core's one
/// start-up order ([`ops_core::tiers::dependency_tiers`]). Services in a cycle are left out.
pub(super) fn tiers(services: &[ServiceSpec]) -> Vec<Vec<&ServiceSpec>> {
    let deps: BTreeMap<&str, BTreeSet<&str>> = services
        .iter()
        .map(|s| {
            let d = s.depends_on.iter().map(String::as_str).collect();
            (s.name.as_str(), d)
        })
        .collect();
    let placed = ops_core::tiers::dependency_tiers(&deps).unwrap_or_else(|cycle| cycle.placed);
    placed
        .into_iter()
        .map(|tier| {
            services
                .iter()
                .filter(|s| tier.contains(&s.name.as_str()))
                .collect()
        })
        .collect()
}

fn service_ref(
    c: &mut Collector<'_>,
    s: Option<&Text>,
    known: &BTreeSet<&str>,
    key: &str,
) -> Option<String> {
    let s = s?;
    if !known.contains(s.get_ref().as_str()) {
        c.at(
            s.span(),
            key,
            format!("no service {:?} in this file", s.get_ref()),
        );
    }
    Some(s.get_ref().clone())
}

fn database(
    c: &mut Collector<'_>,
    d: &Spanned<RawDatabase>,
    known: &BTreeSet<&str>,
) -> Option<DatabaseSpec> {
    let raw = d.get_ref();
    let url = source(
        c,
        raw.url_env.as_ref(),
        raw.url_file.as_ref(),
        d.span(),
        "database",
    )?;
    let name = raw.name.as_ref().and_then(|n| match n.get_ref().parse() {
        Ok(id) => Some(id),
        Err(e) => {
            c.at(
                n.span(),
                "database.name",
                format!("not a database name: {}", ops_core::OpsError::chain(&e)),
            );
            None
        }
    });
    Some(DatabaseSpec {
        url,
        service: service_ref(c, raw.service.as_ref(), known, "database.service"),
        name,
        backup_dir: raw
            .backup_dir
            .as_ref()
            .map_or_else(|| PathBuf::from("backups"), |p| PathBuf::from(p.get_ref())),
    })
}

fn cache(
    c: &mut Collector<'_>,
    d: &Spanned<RawCache>,
    known: &BTreeSet<&str>,
) -> Option<CacheSpec> {
    let raw = d.get_ref();
    let url = source(
        c,
        raw.url_env.as_ref(),
        raw.url_file.as_ref(),
        d.span(),
        "cache",
    )?;
    Some(CacheSpec {
        url,
        service: service_ref(c, raw.service.as_ref(), known, "cache.service"),
    })
}

fn cache_patterns(c: &mut Collector<'_>, raw: &RawCache, config: &mut RunbookConfig) {
    let pattern =
        |c: &mut Collector<'_>, t: &Text, key: &str| match t.get_ref().parse::<KeyPattern>() {
            Ok(p) if p.is_match_all() => {
                c.at(
                    t.span(),
                    key,
                    "this pattern matches every key: name the keys (e.g. \"cache:*\")",
                );
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                c.at(t.span(), key, format!("not a key pattern: {}", e.chain()));
                None
            }
        };
    if let Some(p) = raw
        .session_pattern
        .as_ref()
        .and_then(|t| pattern(c, t, "cache.session_pattern"))
    {
        config.cache.session_pattern = p;
    }
    config.cache.purgeable = raw
        .purgeable
        .iter()
        .filter_map(|t| pattern(c, t, "cache.purgeable"))
        .collect();
}

/// One of `url_env` and `url_file`, exactly.
fn source(
    c: &mut Collector<'_>,
    env: Option<&Text>,
    file: Option<&Text>,
    span: std::ops::Range<usize>,
    table: &str,
) -> Option<SecretSource> {
    match (env, file) {
        (Some(e), None) => env_name(c, e, &format!("{table}.url_env")).map(SecretSource::Env),
        (None, Some(f)) => Some(SecretSource::File(PathBuf::from(f.get_ref()))),
        (Some(e), Some(_)) => {
            c.at(
                e.span(),
                format!("{table}.url_env"),
                "give url_env or url_file, not both",
            );
            None
        }
        (None, None) => {
            c.at(span, format!("{table}.url_env"), "say where the URL comes from: url_env = \"VAR\" or url_file = \"/run/secrets/…\" (never the URL itself: it holds the password)");
            None
        }
    }
}

fn env_name(c: &mut Collector<'_>, t: &Text, key: &str) -> Option<String> {
    let v = t.get_ref();
    if ops_core::names::EnvKey::check(v) {
        Some(v.clone())
    } else if v.contains("://") {
        c.at(t.span(), key, "this is a URL, not the name of a variable: put the URL in the environment and name the variable here");
        None
    } else {
        c.at(
            t.span(),
            key,
            format!(
                "{v:?} is not {}",
                ops_core::names::NameRule::EnvVar.describe()
            ),
        );
        None
    }
}

/// An http(s) URL with no credentials in it.
fn url(c: &mut Collector<'_>, t: &Text, key: &str) -> Option<String> {
    match url::Url::parse(t.get_ref()) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            c.at(
                t.span(),
                key,
                format!("an http or https URL is needed, not {}", u.scheme()),
            );
            None
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            c.at(t.span(), key, "credentials do not belong in the system file: name an environment variable instead");
            None
        }
        Ok(_) => Some(t.get_ref().clone()),
        Err(e) => {
            c.at(t.span(), key, format!("not a URL: {e}"));
            None
        }
    }
}

pub(super) fn duration(c: &mut Collector<'_>, t: Option<&Text>, key: &str) -> Option<Duration> {
    let t = t?;
    match parse_duration(t.get_ref()) {
        Ok(d) => Some(d),
        Err(e) => {
            c.at(t.span(), key, e);
            None
        }
    }
}

fn fraction(c: &mut Collector<'_>, v: Option<&Spanned<f64>>, key: &str) -> Option<f64> {
    let v = v?;
    let x = *v.get_ref();
    if (0.0..=1.0).contains(&x) {
        Some(x)
    } else {
        c.at(
            v.span(),
            key,
            format!("{x} is not a fraction: write 0.8 for 80 %"),
        );
        None
    }
}

fn thresholds(c: &mut Collector<'_>, t: &RawThresholds) -> RunbookConfig {
    let mut cfg = RunbookConfig::default();
    durations(c, t, &mut cfg);
    fractions(c, t, &mut cfg);
    if let Some(n) = &t.verify_successes {
        if *n.get_ref() == 0 {
            c.at(
                n.span(),
                "thresholds.verify_successes",
                "at least 1 healthy check is needed to call a service recovered",
            );
        }
        cfg.verify_successes = (*n.get_ref()).max(1);
    }
    cfg.log_tail = t.log_tail.unwrap_or(cfg.log_tail);
    cfg.max_replicas = t.max_replicas.unwrap_or(cfg.max_replicas);
    cfg.db.size_warn_bytes = t.db.size_warn_bytes.unwrap_or(cfg.db.size_warn_bytes);
    if let Some(v) = &t.cpu_scale_out {
        if *v.get_ref() > 0.0 {
            cfg.cpu_scale_out = *v.get_ref();
        } else {
            c.at(
                v.span(),
                "thresholds.cpu_scale_out",
                "a positive fraction of the CPU limit (0.8) or of a core",
            );
        }
    }
    oom_limits(c, t, &mut cfg);
    cfg
}

/// `[thresholds.oom]` (§resources, issue 14): step, ceiling and the far-below fraction.
fn oom_limits(c: &mut Collector<'_>, t: &RawThresholds, cfg: &mut RunbookConfig) {
    if let Some(step) = &t.oom.step {
        match step.get_ref().parse::<ops_core::runbooks::MemoryStep>() {
            Ok(s) => cfg.oom.step = s,
            Err(e) => c.at(
                step.span(),
                "thresholds.oom.step",
                e.detail().unwrap_or("write x1.5 or +256Mi").to_owned(),
            ),
        }
    }
    if let Some(ceiling) = &t.oom.ceiling {
        match ops_core::platform::MemoryQuantity::parse(ceiling.get_ref()) {
            Ok(q) if q.bytes() > 0 => cfg.oom.ceiling = Some(q),
            Ok(_) => c.at(
                ceiling.span(),
                "thresholds.oom.ceiling",
                "a ceiling of 0 raises nothing: leave it out instead",
            ),
            Err(e) => c.at(
                ceiling.span(),
                "thresholds.oom.ceiling",
                e.detail()
                    .unwrap_or("a memory quantity such as 2Gi")
                    .to_owned(),
            ),
        }
    }
    if let Some(f) = fraction(c, t.oom.far_below.as_ref(), "thresholds.oom.far_below") {
        cfg.oom.far_below = f;
    }
}

fn durations(c: &mut Collector<'_>, t: &RawThresholds, cfg: &mut RunbookConfig) {
    let durations: [(&mut Duration, Option<&Text>, &str); 10] = [
        (
            &mut cfg.rollout_timeout,
            t.rollout_timeout.as_ref(),
            "rollout_timeout",
        ),
        (
            &mut cfg.rollout_poll,
            t.rollout_poll.as_ref(),
            "rollout_poll",
        ),
        (
            &mut cfg.verify_interval,
            t.verify_interval.as_ref(),
            "verify_interval",
        ),
        (
            &mut cfg.verify_timeout,
            t.verify_timeout.as_ref(),
            "verify_timeout",
        ),
        (&mut cfg.log_since, t.log_since.as_ref(), "log_since"),
        (
            &mut cfg.recent_deploy,
            t.recent_deploy.as_ref(),
            "recent_deploy",
        ),
        (
            &mut cfg.db.idle_limit,
            t.db.idle_limit.as_ref(),
            "db.idle_limit",
        ),
        (
            &mut cfg.db.idle_in_transaction_limit,
            t.db.idle_in_transaction_limit.as_ref(),
            "db.idle_in_transaction_limit",
        ),
        (
            &mut cfg.db.long_query,
            t.db.long_query.as_ref(),
            "db.long_query",
        ),
        (
            &mut cfg.cache.idle_client_limit,
            t.cache.idle_client_limit.as_ref(),
            "cache.idle_client_limit",
        ),
    ];
    for (slot, value, key) in durations {
        if let Some(d) = duration(c, value, &format!("thresholds.{key}")) {
            *slot = d;
        }
    }
}

fn fractions(c: &mut Collector<'_>, t: &RawThresholds, cfg: &mut RunbookConfig) {
    let fractions: [(&mut f64, Option<&Spanned<f64>>, &str); 6] = [
        (&mut cfg.memory_warn, t.memory_warn.as_ref(), "memory_warn"),
        (
            &mut cfg.db.warn_utilisation,
            t.db.warn_utilisation.as_ref(),
            "db.warn_utilisation",
        ),
        (
            &mut cfg.db.critical_utilisation,
            t.db.critical_utilisation.as_ref(),
            "db.critical_utilisation",
        ),
        (
            &mut cfg.cache.memory_critical,
            t.cache.memory_critical.as_ref(),
            "cache.memory_critical",
        ),
        (
            &mut cfg.cache.min_hit_ratio,
            t.cache.min_hit_ratio.as_ref(),
            "cache.min_hit_ratio",
        ),
        (
            &mut cfg.cache.clients_critical,
            t.cache.clients_critical.as_ref(),
            "cache.clients_critical",
        ),
    ];
    for (slot, value, key) in fractions {
        if let Some(x) = fraction(c, value, &format!("thresholds.{key}")) {
            *slot = x;
        }
    }
}

/// The error-rate and p95 levels, each ordered high ≥ medium ≥ low.
fn levels(c: &mut Collector<'_>, t: &RawThresholds) -> Thresholds {
    let mut levels = Thresholds::default();
    if let Some(l) = &t.error_rate {
        let [h, m, lo] =
            [&l.high, &l.medium, &l.low].map(|v| fraction(c, Some(v), "thresholds.error_rate"));
        if let (Some(h), Some(m), Some(lo)) = (h, m, lo) {
            if h >= m && m >= lo {
                (
                    levels.error_rate_high,
                    levels.error_rate_medium,
                    levels.error_rate_low,
                ) = (h, m, lo);
            } else {
                c.at(
                    l.high.span(),
                    "thresholds.error_rate",
                    "levels must go high ≥ medium ≥ low",
                );
            }
        }
    }
    if let Some(l) = &t.p95 {
        let [h, m, lo] =
            [&l.high, &l.medium, &l.low].map(|v| duration(c, Some(v), "thresholds.p95"));
        if let (Some(h), Some(m), Some(lo)) = (h, m, lo) {
            if h >= m && m >= lo {
                (levels.p95_high, levels.p95_medium, levels.p95_low) = (h, m, lo);
            } else {
                c.at(
                    l.high.span(),
                    "thresholds.p95",
                    "levels must go high ≥ medium ≥ low",
                );
            }
        }
    }
    levels
}

fn metrics(
    c: &mut Collector<'_>,
    m: &Spanned<super::raw::RawMetrics>,
    cfg: &mut RunbookConfig,
) -> Option<SecretSource> {
    let raw = m.get_ref();
    if let Some(job) = &raw.job {
        cfg.metrics_job.clone_from(job.get_ref());
    }
    if let Some(w) = &raw.window {
        match MetricWindow::new(w.get_ref()) {
            Ok(window) => cfg.metrics_window = window,
            Err(e) => c.at(
                w.span(),
                "metrics.window",
                format!("not a window: {}", e.chain()),
            ),
        }
    }
    match (&raw.url, &raw.url_env) {
        (Some(u), None) => url(c, u, "metrics.url").map(SecretSource::Plain),
        (None, Some(e)) => env_name(c, e, "metrics.url_env").map(SecretSource::Env),
        (Some(u), Some(_)) => {
            c.at(u.span(), "metrics.url", "give url or url_env, not both");
            None
        }
        (None, None) => {
            c.at(
                m.span(),
                "metrics.url",
                "say where Prometheus is: url = \"http://…\" or url_env = \"VAR\"",
            );
            None
        }
    }
}

fn check(c: &mut Collector<'_>, k: &Spanned<super::raw::RawCheck>) -> Option<CheckSpec> {
    let raw = k.get_ref();
    let name = raw.name.get_ref().clone();
    let host_port = |c: &mut Collector<'_>, t: &Text, key: &str| -> Option<(String, u16)> {
        let parsed = t
            .get_ref()
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)));
        match parsed {
            Some((h, p)) if !h.is_empty() && p > 0 => Some((h, p)),
            _ => {
                c.at(t.span(), key, "write HOST:PORT, e.g. db.internal:5432");
                None
            }
        }
    };
    match (&raw.tcp, &raw.tls, &raw.http) {
        (Some(t), None, None) => {
            host_port(c, t, "checks.tcp").map(|(host, port)| CheckSpec::Tcp { name, host, port })
        }
        (None, Some(t), None) => host_port(c, t, "checks.tls").map(|(host, port)| CheckSpec::Tls {
            name,
            host,
            port,
            warn_days: raw.warn_days.as_ref().map(|d| *d.get_ref()),
        }),
        (None, None, Some(t)) => url(c, t, "checks.http").map(|url| CheckSpec::Http { name, url }),
        _ => {
            c.at(
                k.span(),
                "checks",
                format!("check {name:?} needs exactly one of tcp, tls or http"),
            );
            None
        }
    }
}

fn notifier(
    c: &mut Collector<'_>,
    n: &Spanned<super::raw::RawNotifier>,
    scale: &SeverityScale,
) -> Option<NotifierSpec> {
    let raw = n.get_ref();
    let (kind, secret) = match raw.kind.get_ref().as_str() {
        "console" => (NotifierKind::Console, None),
        "slack" => (NotifierKind::Slack, Some(("url_env", raw.url_env.as_ref()))),
        "webhook" => (
            NotifierKind::Webhook,
            Some(("url_env", raw.url_env.as_ref())),
        ),
        "pagerduty" => (
            NotifierKind::PagerDuty,
            Some(("routing_key_env", raw.routing_key_env.as_ref())),
        ),
        other => {
            c.at(
                raw.kind.span(),
                "notifiers.kind",
                format!("unknown notifier {other:?}: console, slack, pagerduty or webhook"),
            );
            return None;
        }
    };
    let secret_env = match secret {
        None => None,
        Some((key, Some(t))) => Some(env_name(c, t, &format!("notifiers.{key}"))?),
        Some((key, None)) => {
            c.at(
                n.span(),
                format!("notifiers.{key}"),
                format!("a {} notifier needs {key} = \"VAR\"", raw.kind.get_ref()),
            );
            return None;
        }
    };
    let severities = super::incident::severities(c, scale, &raw.severities, "notifiers.severities");
    Some(NotifierSpec {
        kind,
        secret_env,
        severities,
    })
}

fn approval(c: &mut Collector<'_>, raw: &RawSystem) -> ApprovalSpec {
    let a = &raw.approval;
    let timeout =
        duration(c, a.timeout.as_ref(), "approval.timeout").unwrap_or(Duration::from_mins(2));
    let mut allow = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &a.allow {
        match r.get_ref().parse() {
            Ok(rule) => {
                if seen.insert(r.get_ref().clone()) {
                    allow.push(rule);
                }
            }
            Err(e) => c.at(
                r.span(),
                "approval.allow",
                format!("not a rule: {}", ops_core::OpsError::chain(&e)),
            ),
        }
    }
    ApprovalSpec { timeout, allow }
}
