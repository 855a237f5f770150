//! From a [`System`] to the backends a run acts on: the platform, the service's probe, the
//! database, cache and metrics when the environment provides their URLs, the checks and the
//! notifiers.

use std::fmt;
use std::sync::Arc;

use anyhow::Context as _;
use ops_core::incident::Severity;
use ops_core::runbooks::Targets;
use ops_core::{Cache, Database, Metrics, Notifier, Platform, Probe};
use secrecy::ExposeSecret as _;

use crate::system::{
    CheckSpec, HealthSpec, NotifierKind, PlatformSpec, SecretSource, ServiceSpec, System,
};

/// What a runbook cannot run without, beyond the platform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    pub(crate) database: bool,
    pub(crate) cache: bool,
    pub(crate) metrics: bool,
}

impl Needs {
    /// What `runbook` needs.
    pub(crate) fn of(runbook: &str) -> Self {
        Self {
            database: matches!(
                runbook,
                "db_connections"
                    | "database_full"
                    | "db_maintenance"
                    | "database_recovery"
                    | "database_backup"
            ),
            cache: matches!(
                runbook,
                "cache_failure" | "session_invalidation" | "cache_purge" | "cache_backup"
            ),
            metrics: matches!(runbook, "high_error_rate" | "high_latency"),
        }
    }
}

/// The system file or the environment lacks what the run needs (exit status 5).
#[derive(Debug)]
pub(crate) struct ConfigProblem(pub(crate) String);

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigProblem {}

/// The platform the system runs on.
pub(crate) async fn platform(system: &System) -> anyhow::Result<Arc<dyn Platform>> {
    Ok(match &system.platform {
        PlatformSpec::Compose { .. } => Arc::new(
            ops_compose::ComposePlatformBuilder::from_env()
                .build()
                .context("cannot reach the Docker engine")?,
        ),
        PlatformSpec::Kubernetes {
            context,
            kubeconfig,
            ..
        } => {
            let mut builder = ops_k8s::KubePlatformBuilder::from_env();
            if let Some(path) = kubeconfig {
                builder = builder.kubeconfig(path);
            }
            if let Some(context) = context {
                builder = builder.context(context);
            }
            Arc::new(
                builder
                    .build()
                    .await
                    .context("cannot reach the Kubernetes API")?,
            )
        }
    })
}

/// The HTTP probe of a service's health check.
pub(crate) fn health_probe(service: &str, h: &HealthSpec) -> anyhow::Result<Arc<dyn Probe>> {
    let mut b = ops_probes::HttpProbe::builder(&h.url)
        .with_name(format!("{service}-health"))
        .with_timeout(h.timeout);
    if !h.expect_status.is_empty() {
        b = b.expect_status(h.expect_status.iter().copied());
    }
    Ok(Arc::new(b.build()?))
}

fn check_probe(c: &CheckSpec) -> anyhow::Result<Arc<dyn Probe>> {
    Ok(match c {
        CheckSpec::Tcp { name, host, port } => {
            Arc::new(ops_probes::TcpProbe::new(host, *port)?.with_name(name))
        }
        CheckSpec::Tls {
            name,
            host,
            port,
            warn_days,
        } => {
            let mut p = ops_probes::TlsProbe::new(host, *port)?.with_name(name);
            if let Some(days) = warn_days {
                p = p.with_warn_days(i64::from(*days));
            }
            Arc::new(p)
        }
        CheckSpec::Http { name, url } => Arc::new(
            ops_probes::HttpProbe::builder(url)
                .with_name(name)
                .build()?,
        ),
    })
}

/// Read a secret the run needs (`required`), or may use when present.
fn secret(
    what: &str,
    source: Option<&SecretSource>,
    required: bool,
) -> anyhow::Result<Option<secrecy::SecretString>> {
    let Some(source) = source else {
        if required {
            return Err(ConfigProblem(format!(
                "this runbook needs a {what}: describe it in the system file ([{what}])"
            ))
            .into());
        }
        return Ok(None);
    };
    match source.read() {
        Ok(s) => Ok(Some(s)),
        Err(e) if required => {
            Err(ConfigProblem(format!("this runbook needs the {what}, but {e}")).into())
        }
        Err(e) => {
            eprintln!("opsbook: the {what} is not checked: {e}");
            Ok(None)
        }
    }
}

/// The targets of a run of `runbook` on `service`.
pub(crate) async fn targets(
    system: &System,
    service: &ServiceSpec,
    runbook: &str,
) -> anyhow::Result<Targets> {
    let needs = Needs::of(runbook);
    let mut t = Targets::new(platform(system).await?, service.workload.clone())
        .with_config(system.config.clone());
    if let Some(h) = &service.health {
        t = t.with_probe(health_probe(&service.name, h)?);
    }
    if let Some(url) = secret(
        "database",
        system.database.as_ref().map(|d| &d.url),
        needs.database,
    )? {
        let db: Arc<dyn Database> = Arc::new(
            ops_db::PgDatabaseBuilder::new(url.expose_secret())
                .with_max_connections(2)
                .build()
                .context("the database URL is not usable")?,
        );
        t = t.with_database(db);
    }
    if let Some(url) = secret("cache", system.cache.as_ref().map(|c| &c.url), needs.cache)? {
        let cache: Arc<dyn Cache> = Arc::new(
            ops_cache::RedisCacheBuilder::new()
                .with_url(url.expose_secret())
                .build()
                .context("the cache URL is not usable")?,
        );
        t = t.with_cache(cache);
    }
    if let Some(url) = secret("metrics", system.metrics.as_ref(), needs.metrics)? {
        let metrics: Arc<dyn Metrics> =
            Arc::new(ops_probes::PrometheusMetricsBuilder::new(url.expose_secret()).build()?);
        t = t.with_metrics(metrics);
    }
    for c in &system.checks {
        t = t.with_check(check_probe(c)?);
    }
    if runbook == "provider_failure" {
        for spec in &system.config.providers.providers {
            let probe = ops_probes::provider_probe(spec)
                .with_context(|| format!("provider {} is not usable", spec.name))?;
            t = t.with_provider(Arc::new(probe));
        }
    }
    Ok(t)
}

/// The notifiers of the system, routed by severity; without any, the console (stderr).
pub(crate) fn notifier(system: &System) -> anyhow::Result<Arc<dyn Notifier>> {
    let console = || Arc::new(ops_notify::ConsoleNotifier::with_writer(std::io::stderr()));
    if system.notifiers.is_empty() {
        return Ok(console());
    }
    let mut router = ops_notify::Router::new();
    for n in &system.notifiers {
        let secret = n
            .secret_env
            .as_ref()
            .map(|var| SecretSource::Env(var.clone()).read())
            .transpose()
            .map_err(ConfigProblem)?;
        let notifier: Arc<dyn Notifier> = match (n.kind, secret) {
            (NotifierKind::Slack, Some(url)) => Arc::new(
                ops_notify::SlackNotifier::builder()
                    .with_webhook_url(url)
                    .build()?,
            ),
            (NotifierKind::PagerDuty, Some(key)) => Arc::new(
                ops_notify::PagerDutyNotifier::builder()
                    .with_routing_key(key)
                    .with_source(system.name.clone())
                    .build()?,
            ),
            (NotifierKind::Webhook, Some(url)) => {
                Arc::new(ops_notify::WebhookNotifier::builder(url).build()?)
            }
            _ => console(),
        };
        let severities = if n.severities.is_empty() {
            vec![
                Severity::Critical,
                Severity::High,
                Severity::Medium,
                Severity::Low,
            ]
        } else {
            n.severities.clone()
        };
        router = router.route(&severities, notifier);
    }
    Ok(Arc::new(router))
}
