//! Run the `api_down` runbook against a Docker Compose service or a Kubernetes workload: the
//! README's embedding example as a binary.
//!
//! ```sh
//! cargo run -p ops-examples --bin api-down -- --project shop --service api \
//!     --health-url http://127.0.0.1:8080/health            # dry run: diagnose and plan
//! OPSBOOK_PG_URL=postgres://… OPSBOOK_REDIS_URL=redis://… \
//! cargo run -p ops-examples --bin api-down -- --project shop --service api \
//!     --health-url http://127.0.0.1:8080/health --execute \
//!     --allow 'api_down:restart@shop/service/api' --allow 'api_down:notify@*'
//! cargo run -p ops-examples --bin api-down -- --context prod --namespace shop \
//!     --workload deployment/api --health-url https://api.shop.example/health
//! ```
//!
//! Dry run unless `--execute`. In execute mode each change is approved at a `y/N` prompt on
//! the terminal (no answer in 2 minutes is no), or, with `--allow`, by rules
//! `runbook:step@target` (`*` for any) and nothing else; what is denied is reported. A failed
//! run still prints its report. The database and cache are checked when
//! `OPSBOOK_PG_URL` / `OPSBOOK_REDIS_URL` are set. Every run is journaled to SQLite
//! (`--journal`, default `./.opsbook/journal.db`); the report is printed as Markdown (`--json`:
//! JSON). Exit status: 0 when the service is healthy or recovered (or the plan is made), 1
//! otherwise.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome, TerminalApprover};
use ops_core::runbooks::{Targets, api_down};

/// Diagnose and fix a service that fails its health check: a compose service
/// (`--project`, `--service`) or a Kubernetes workload (`--namespace`, `--workload`).
#[derive(Debug, Parser)]
#[command(version, about)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["project", "namespace"])))]
struct Args {
    /// Compose project name (a compose target, with `--service`).
    #[arg(long, requires = "service")]
    project: Option<String>,
    /// Compose service name.
    #[arg(long, requires = "project")]
    service: Option<String>,
    /// Kubernetes namespace (a Kubernetes target, with `--workload`).
    #[arg(long, requires = "workload")]
    namespace: Option<String>,
    /// Kubernetes workload as `kind/name`: `deployment/api`, `statefulset/db`, `daemonset/agent`.
    #[arg(long, requires = "namespace")]
    workload: Option<String>,
    /// kubeconfig context (default: the file's current context).
    #[arg(long)]
    context: Option<String>,
    /// kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The service's health endpoint.
    #[arg(long)]
    health_url: String,
    /// Carry out approved steps (default: dry run).
    #[arg(long)]
    execute: bool,
    /// Approve by rule instead of asking: `runbook:step@target`, `*` for any (e.g.
    /// `api_down:restart@shop/service/api`). Without any, each change is asked at the terminal.
    #[arg(long = "allow")]
    allow: Vec<ops_core::run::ApprovalRule>,
    /// SQLite journal file.
    #[arg(long, default_value = ".opsbook/journal.db")]
    journal: PathBuf,
    /// Print the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

/// The platform and workload the flags name.
async fn target(
    args: &Args,
) -> anyhow::Result<(Arc<dyn ops_core::Platform>, ops_core::WorkloadRef)> {
    if let (Some(project), Some(service)) = (&args.project, &args.service) {
        let platform = ops_compose::ComposePlatformBuilder::from_env().build()?;
        let workload = ops_core::WorkloadRef::compose_service(project, service)?;
        return Ok((Arc::new(platform), workload));
    }
    let (Some(namespace), Some(spec)) = (&args.namespace, &args.workload) else {
        anyhow::bail!(
            "name a compose service (--project, --service) or a Kubernetes workload (--namespace, --workload)"
        );
    };
    let (kind, name) = spec
        .split_once('/')
        .context("--workload is kind/name, e.g. deployment/api")?;
    let workload = ops_core::WorkloadRef::new(namespace, kind.parse()?, name)?;
    let mut builder = ops_k8s::KubePlatformBuilder::from_env();
    if let Some(path) = &args.kubeconfig {
        builder = builder.kubeconfig(path);
    }
    if let Some(context) = &args.context {
        builder = builder.context(context);
    }
    Ok((Arc::new(builder.build().await?), workload))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(dir) = args.journal.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    let (platform, workload) = target(&args).await?;
    let health = Arc::new(
        ops_probes::HttpProbe::builder(&args.health_url)
            .with_name(format!("{}-health", workload.name()))
            .build()?,
    );
    let journal = Arc::new(ops_db::SqliteJournal::open(&args.journal).await?);
    let mut targets = Targets::new(platform, workload).with_probe(health);
    if std::env::var_os("OPSBOOK_PG_URL").is_some() {
        targets = targets.with_database(Arc::new(ops_db::PgDatabaseBuilder::from_env().build()?));
    }
    if std::env::var_os("OPSBOOK_REDIS_URL").is_some() {
        targets = targets.with_cache(Arc::new(ops_cache::RedisCacheBuilder::from_env().build()?));
    }

    let approver: Arc<dyn ops_core::run::Approver> = if args.allow.is_empty() {
        let who = std::env::var("USER").unwrap_or_else(|_| "terminal".to_owned());
        Arc::new(TerminalApprover::stdio(who))
    } else {
        Arc::new(ApprovalPolicy::allow(args.allow))
    };
    let ctx = RunContext::builder()
        .mode(if args.execute {
            Mode::Execute
        } else {
            Mode::DryRun
        })
        .approver_arc(approver)
        .journal(journal)
        .notifier(Arc::new(ops_notify::ConsoleNotifier::stdout()))
        .build();
    let report = match api_down(&ctx, &targets).await {
        Ok(report) => report,
        Err(failure) => {
            // What the run did before it failed, then the error.
            println!("{}", failure.report().to_markdown());
            return Err(failure).context("api_down failed");
        }
    };
    if args.json {
        println!("{}", report.to_json()?);
    } else {
        println!("{}", report.to_markdown());
    }
    let ok = matches!(
        report.outcome,
        RunOutcome::Healthy | RunOutcome::Recovered | RunOutcome::Planned
    );
    eprintln!(
        "api_down: {} (run {})",
        report.outcome.label(),
        report.run_id
    );
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
