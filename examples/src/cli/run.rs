//! Running a subcommand: load the system, build the targets and the run context (mode,
//! approver, journal, notifier, progress, Ctrl-C), run the runbook, print the report, and
//! turn its outcome into the exit status.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};
use ops_core::platform::{ConfigTarget, LockdownId, LockdownScope};
use ops_core::run::{Mode, Report, RunContext, RunFailure, TerminalApprover};
use ops_core::runbooks::{self, RecoveryPlan, SecretRotation, Targets};
use ops_core::{KeyPattern, Namespace};
use secrecy::ExposeSecret as _;
use tokio_util::sync::CancellationToken;

use super::backends::{self, ConfigProblem};
use super::{Cli, CliApprover, Command, Exit, RunOpts, check, journal, progress, yes_to_rule};
use crate::live::{LiveView, Style};
use crate::system::{ConfigErrors, SecretSource, System};

/// `opsbook`'s `main`: parse the command line, run the subcommand, and return its
/// [`Exit`] status. Errors end with one line on stderr (`opsbook: …`), never a backtrace.
pub async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Errors only by default: the live view already shows every step, finding and denial
    // (as warnings they would interleave with the prompts); RUST_LOG shows more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    ops_probes::config::install_crypto_provider();
    match dispatch(&cli).await {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("opsbook: {e:#}");
            let config = e.downcast_ref::<ConfigProblem>().is_some()
                || e.downcast_ref::<ConfigErrors>().is_some();
            if config { Exit::Config } else { Exit::Error }.into()
        }
    }
}

async fn dispatch(cli: &Cli) -> anyhow::Result<Exit> {
    match &cli.command {
        Command::CheckConfig => return Ok(check::check_config(&cli.system, cli.json)),
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "opsbook",
                &mut std::io::stdout(),
            );
            return Ok(Exit::Ok);
        }
        Command::Journal { command } => {
            journal::journal(&journal_path(cli, None), command, cli.json).await?;
            return Ok(Exit::Ok);
        }
        _ => {}
    }
    let Some((runbook, opts)) = cli.command.run_opts() else {
        anyhow::bail!("this subcommand runs no runbook");
    };
    let system = System::load(&cli.system)?;
    Box::pin(run_runbook(cli, &system, runbook, opts)).await
}

/// `--journal`, else the system file's, else `.opsbook/journal.db`.
fn journal_path(cli: &Cli, system: Option<&System>) -> PathBuf {
    if let Some(p) = &cli.journal {
        return p.clone();
    }
    if let Some(s) = system {
        return s.journal.clone();
    }
    System::load(&cli.system).map_or_else(|_| PathBuf::from(".opsbook/journal.db"), |s| s.journal)
}

async fn run_runbook(
    cli: &Cli,
    system: &System,
    runbook: &'static str,
    opts: &RunOpts,
) -> anyhow::Result<Exit> {
    let default_service = match &cli.command {
        Command::CacheFailure(_) | Command::CacheBackup(_) => {
            system.cache.as_ref().and_then(|c| c.service.as_deref())
        }
        _ => None,
    };
    let service = system
        .service(opts.service.as_deref().or(default_service))
        .map_err(ConfigProblem)?;
    let targets = backends::targets(system, service, runbook).await?;
    let targets = with_parameters(&cli.command, system, targets)?;
    let mut rules = system.approval.allow.clone();
    for text in &opts.yes_to {
        rules.push(yes_to_rule(runbook, text).map_err(ConfigProblem)?);
    }
    let journal_path = journal_path(cli, Some(system));
    if let Some(dir) = journal_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let journal = Arc::new(
        ops_db::SqliteJournal::open(&journal_path)
            .await
            .with_context(|| format!("cannot open the journal {}", journal_path.display()))?,
    );
    let who = std::env::var("USER").unwrap_or_else(|_| "terminal".to_owned());
    let ask = TerminalApprover::stdio(who).with_timeout(system.approval.timeout);
    let view = Arc::new(LiveView::new(Style::detect(cli.quiet)));
    let cancel = CancellationToken::new();
    watch_interrupts(cancel.clone())?;
    let mode = if opts.execute {
        Mode::Execute
    } else {
        Mode::DryRun
    };
    let ctx = RunContext::builder()
        .mode(mode)
        .approver(CliApprover::new(rules, Arc::new(ask)))
        .approval_timeout(system.approval.timeout + Duration::from_secs(10))
        .journal(journal)
        .notifier(backends::notifier(system)?)
        .incident_policy(system.incident.clone())
        .observer(Arc::clone(&view))
        .cancellation(cancel)
        .build();
    eprintln!(
        "opsbook: {runbook} on {} ({}){}",
        targets.workload,
        system.name,
        if opts.execute {
            ", execute: each change is asked for"
        } else {
            ", plan only (add --execute to act)"
        }
    );
    let beat = progress::heartbeat(Arc::clone(&view), Duration::from_secs(10));
    let result = run(&cli.command, &ctx, &targets, system).await;
    beat.abort();
    let (report, error) = match result? {
        Ok(report) => (report, None),
        Err(failure) => {
            let (report, error) = failure.into_parts();
            (report, Some(error))
        }
    };
    if cli.json {
        println!("{}", report.to_json()?);
    } else {
        println!("{}", report.to_markdown());
    }
    let exit = Exit::of_run(&report, error.as_ref());
    if let Some(e) = &error {
        let how = if exit == Exit::Cancelled {
            "was cancelled"
        } else {
            "failed"
        };
        eprintln!("opsbook: {runbook} {how}: {}", e.chain());
    }
    eprintln!(
        "opsbook: {runbook}: {} (run {}, journal {}, exit {})",
        report.outcome.label(),
        report.run_id,
        journal_path.display(),
        exit.code()
    );
    Ok(exit)
}

/// Ctrl-C (SIGINT) cancels the run: the engine stops between steps, finishes a change under
/// way, journals the run as cancelled. A second Ctrl-C abandons it at once.
fn watch_interrupts(cancel: CancellationToken) -> anyhow::Result<()> {
    #[cfg(unix)]
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch for Ctrl-C")?;
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut next = async || interrupts.recv().await.is_some();
        #[cfg(not(unix))]
        let mut next = async || tokio::signal::ctrl_c().await.is_ok();
        if next().await {
            eprintln!(
                "\nopsbook: cancelling: a change under way is finished first (Ctrl-C again to abandon it)"
            );
            cancel.cancel();
        }
        if next().await {
            eprintln!("\nopsbook: abandoned: see `opsbook journal list` for what was in progress");
            std::process::exit(i32::from(Exit::Cancelled.code()));
        }
    });
    Ok(())
}

/// What some runbooks take beyond the system file: the backup to restore, the secret to
/// rotate.
fn with_parameters(command: &Command, system: &System, mut t: Targets) -> anyhow::Result<Targets> {
    match command {
        Command::DatabaseRecovery(a) => {
            let database = database_name(system, a.database.as_deref())?;
            t.config.recovery = Some(RecoveryPlan::new(a.backup.clone(), database));
        }
        Command::SecretRotation(a) => {
            let value = SecretSource::Env(a.value_env.clone())
                .read()
                .map_err(ConfigProblem)?;
            let target = match (&a.secret, &a.configmap) {
                (Some(name), _) => ConfigTarget::Secret(parse_name(name)?),
                (None, Some(name)) => ConfigTarget::ConfigMap(parse_name(name)?),
                (None, None) => ConfigTarget::Env,
            };
            t.config.rotation = Some(SecretRotation::new(target, &a.key, value.expose_secret()));
        }
        _ => {}
    }
    Ok(t)
}

fn parse_name(name: &str) -> anyhow::Result<ops_core::refs::ResourceName> {
    name.parse()
        .map_err(|e: ops_core::OpsError| ConfigProblem(format!("{name:?}: {}", e.chain())).into())
}

fn database_name(
    system: &System,
    flag: Option<&str>,
) -> anyhow::Result<ops_core::refs::Identifier> {
    match flag {
        Some(name) => name.parse().map_err(|e: ops_core::OpsError| {
            ConfigProblem(format!("--database {name:?}: {}", e.chain())).into()
        }),
        None => system
            .database
            .as_ref()
            .and_then(|d| d.name.clone())
            .ok_or_else(|| {
                ConfigProblem(
                    "name the database: --database NAME, or name = \"…\" in [database]".to_owned(),
                )
                .into()
            }),
    }
}

/// Run the runbook `command` stands for.
async fn run(
    command: &Command,
    ctx: &RunContext,
    t: &Targets,
    system: &System,
) -> anyhow::Result<Result<Report, RunFailure>> {
    Ok(match command {
        Command::ApiDown(_) => runbooks::api_down(ctx, t).await,
        Command::HighErrorRate(_) => runbooks::high_error_rate(ctx, t).await,
        Command::HighLatency(_) => runbooks::high_latency(ctx, t).await,
        Command::DbConnections(_) => runbooks::db_connections(ctx, t).await,
        Command::DatabaseFull(_) => runbooks::database_full(ctx, t).await,
        Command::DbMaintenance(_) => runbooks::db_maintenance(ctx, t).await,
        Command::DatabaseRecovery(_) => runbooks::database_recovery(ctx, t).await,
        Command::Backup(a) => {
            let database = database_name(system, a.database.as_deref())?;
            let dir = a
                .dir
                .clone()
                .or_else(|| system.database.as_ref().map(|d| d.backup_dir.clone()))
                .unwrap_or_else(|| PathBuf::from("backups"));
            runbooks::database_backup(ctx, t, &database, &dir).await
        }
        Command::CacheFailure(_) => runbooks::cache_failure(ctx, t).await,
        Command::CacheBackup(a) => runbooks::cache_backup(ctx, t, &a.dir).await,
        Command::DirBackup(a) => runbooks::directory_backup(ctx, t, &a.path, &a.dir).await,
        Command::SessionInvalidation(_) => runbooks::session_invalidation(ctx, t).await,
        Command::CachePurge(a) => {
            let pattern: KeyPattern = a.pattern.parse().map_err(|e: ops_core::OpsError| {
                ConfigProblem(format!("--pattern {:?}: {}", a.pattern, e.chain()))
            })?;
            runbooks::cache_purge(ctx, t, &pattern).await
        }
        Command::MorningChecks(_) => runbooks::morning_checks(ctx, t).await,
        Command::CertCheck(_) => runbooks::certificate_expiry(ctx, t).await,
        Command::NetworkCheck(_) => runbooks::network_connectivity(ctx, t).await,
        Command::ProviderCheck(_) => runbooks::provider_failure(ctx, t).await,
        Command::AuthCheck(_) => runbooks::auth_failures(ctx, t).await,
        Command::SecretRotation(_) => runbooks::secret_rotation(ctx, t).await,
        Command::RecoverAll(_) => {
            runbooks::complete_service_recovery(ctx, t, &system.recovery_order()).await
        }
        Command::Oom(_) => runbooks::oom(ctx, t).await,
        Command::Restart(_) => runbooks::restart_and_verify(ctx, t).await,
        Command::Lockdown(a) => {
            let scope = if a.namespace_wide {
                LockdownScope::namespace_wide(t.workload.namespace().clone())
            } else {
                LockdownScope::workloads(vec![t.workload.clone()])?
            };
            let mut plan = runbooks::LockdownPlan::new(scope, &a.evidence_dir);
            if let Some(reason) = &a.reason {
                plan = plan.with_reason(reason);
            }
            runbooks::emergency_lockdown(ctx, t, &plan).await
        }
        Command::LiftLockdown(a) => {
            let id: LockdownId = a.id.parse().map_err(|e: ops_core::OpsError| {
                ConfigProblem(format!("--id {:?}: {}", a.id, e.chain()))
            })?;
            let namespace: Namespace = match &a.namespace {
                Some(ns) => ns.parse().map_err(|e: ops_core::OpsError| {
                    ConfigProblem(format!("--namespace {ns:?}: {}", e.chain()))
                })?,
                None => t.workload.namespace().clone(),
            };
            runbooks::lift_lockdown(ctx, t, &namespace, &id).await
        }
        Command::Evidence(a) => {
            let workloads = if a.namespace_wide {
                Vec::new()
            } else {
                vec![t.workload.clone()]
            };
            let opts = ops_core::evidence::EvidenceOptions::default();
            runbooks::evidence_capture(ctx, t, t.workload.namespace(), &workloads, &a.dir, &opts)
                .await
        }
        Command::Deploy(a) => runbooks::deploy_release(ctx, t, &a.update()?).await,
        Command::DeploymentFailure(_) => runbooks::deployment_failure(ctx, t).await,
        Command::Maintenance(a) => runbooks::planned_maintenance(ctx, t, &a.plan()?).await,
        Command::Journal { .. } | Command::CheckConfig | Command::Completions { .. } => {
            anyhow::bail!("this subcommand runs no runbook")
        }
    })
}
