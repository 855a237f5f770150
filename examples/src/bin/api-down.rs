//! Run the `api_down` runbook against a Docker Compose service: the README's embedding
//! example as a binary.
//!
//! ```sh
//! cargo run -p ops-examples --bin api-down -- --project shop --service api \
//!     --health-url http://127.0.0.1:8080/health            # dry run: diagnose and plan
//! OPSBOOK_PG_URL=postgres://… OPSBOOK_REDIS_URL=redis://… \
//! cargo run -p ops-examples --bin api-down -- --project shop --service api \
//!     --health-url http://127.0.0.1:8080/health --execute \
//!     --allow 'api_down:restart@shop/service/api' --allow 'api_down:notify@*'
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

/// Diagnose and fix a compose service that fails its health check.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Compose project name.
    #[arg(long)]
    project: String,
    /// Compose service name.
    #[arg(long)]
    service: String,
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

    let platform = Arc::new(ops_compose::ComposePlatformBuilder::from_env().build()?);
    let health = Arc::new(
        ops_probes::HttpProbe::builder(&args.health_url)
            .with_name(format!("{}-health", args.service))
            .build()?,
    );
    let journal = Arc::new(ops_db::SqliteJournal::open(&args.journal).await?);
    let workload = ops_core::WorkloadRef::compose_service(&args.project, &args.service)?;
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
