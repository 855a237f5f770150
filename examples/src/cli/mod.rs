//! `opsbook`'s command line: one subcommand per runbook of [`ops_core::runbooks`], plus
//! `backup`, `restore`, `cache-backup`, `dir-backup`, `cache-purge`, `journal`, `check-config` and `completions`.
//!
//! Every runbook subcommand plans (dry run) unless `--execute`; in execute mode each change
//! shows its plan and asks `y/N` on the terminal unless `--yes-to STEP` or the system file's
//! `[approval] allow` approves it. See [`Exit`] for the exit statuses.

mod approval;
mod backends;
mod check;
mod exit;
mod journal;
mod progress;
mod release;
mod run;

use std::path::PathBuf;

pub use release::{DeployArgs, MaintenanceArgs};

use clap::{Args, Parser, Subcommand};

pub use approval::{CliApprover, yes_to_rule};
pub use exit::Exit;
pub use run::main;

const EXAMPLES: &str = "\
Examples:
  opsbook check-config                       # validate ./opsbook.toml
  opsbook api-down                           # diagnose the primary service, plan the cure
  opsbook api-down --execute                 # ... and carry it out, asking before each change
  opsbook --json db-connections | jq .outcome
  opsbook journal postmortem RUN_ID > postmortem.md

Exit status: 0 healthy, recovered or planned; 1 error; 2 usage; 3 unresolved;
4 a change was denied; 5 the system file is wrong; 130 cancelled (Ctrl-C).";

/// The on-call engineer's command: run the runbooks against the system `opsbook.toml`
/// describes. Plans (changes nothing) unless `--execute`.
#[derive(Debug, Parser)]
#[command(name = "opsbook", version, after_help = EXAMPLES)]
pub struct Cli {
    /// The system file.
    #[arg(
        long,
        short = 's',
        global = true,
        env = "OPSBOOK_SYSTEM",
        default_value = "opsbook.toml"
    )]
    pub system: PathBuf,
    /// The journal file (default: the system file's `[journal] path`, else
    /// `.opsbook/journal.db`).
    #[arg(long, global = true, env = "OPSBOOK_JOURNAL")]
    pub journal: Option<PathBuf>,
    /// Print only JSON on stdout (progress and prompts go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Progress as plain lines, without the terminal's redrawn status line (also the case
    /// when stderr is not a terminal or `CI` is set).
    #[arg(long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How a runbook runs: plan or execute, what is pre-approved, on which service.
#[derive(Debug, Clone, Default, Args)]
pub struct RunOpts {
    /// Carry out the changes (each asked for at the terminal). Without it: plan only.
    #[arg(long)]
    pub execute: bool,
    /// Approve STEP of this runbook without asking (repeatable), or a full rule
    /// `runbook:step@target` (`*` for any). For scripts; other changes are still asked.
    #[arg(long = "yes-to", value_name = "STEP")]
    pub yes_to: Vec<String>,
    /// The service to act on (default: the system's primary service).
    #[arg(long)]
    pub service: Option<String>,
}

/// `backup`'s options.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// How to run.
    #[command(flatten)]
    pub run: RunOpts,
    /// The database (default: the system file's `[database] name`).
    #[arg(long)]
    pub database: Option<String>,
    /// The folder (default: the system file's `[database] backup_dir`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `cache-backup`'s options.
#[derive(Debug, Clone, Args)]
pub struct CacheBackupArgs {
    /// How to run (`--service` defaults to the system file's `[cache] service`).
    #[command(flatten)]
    pub run: RunOpts,
    /// The folder (default: `backups`).
    #[arg(long, default_value = "backups")]
    pub dir: PathBuf,
}

/// `dir-backup`'s options.
#[derive(Debug, Clone, Args)]
pub struct DirBackupArgs {
    /// How to run.
    #[command(flatten)]
    pub run: RunOpts,
    /// The directory to copy, absolute, inside the service's instances.
    #[arg(long)]
    pub path: String,
    /// The local folder (default: `backups`).
    #[arg(long, default_value = "backups")]
    pub dir: PathBuf,
}

/// `restore`'s options.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// How to run.
    #[command(flatten)]
    pub run: RunOpts,
    /// The backup file (`.dump`, with its `.sha256` beside it).
    #[arg(long)]
    pub backup: PathBuf,
    /// The database (default: the system file's `[database] name`).
    #[arg(long)]
    pub database: Option<String>,
}

/// `cache-purge`'s options.
#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    /// How to run.
    #[command(flatten)]
    pub run: RunOpts,
    /// The keys, as a glob (`model:*`). A pattern matching every key is refused.
    #[arg(long)]
    pub pattern: String,
}

/// `secret-rotation`'s options.
#[derive(Debug, Clone, Args)]
pub struct RotationArgs {
    /// How to run.
    #[command(flatten)]
    pub run: RunOpts,
    /// The key to rotate, e.g. `API_TOKEN`.
    #[arg(long)]
    pub key: String,
    /// The environment variable holding the new value (never a flag: it would stay in the
    /// shell history).
    #[arg(long, value_name = "VAR")]
    pub value_env: String,
    /// Where the key lives on Kubernetes: a Secret (default: the workload's environment).
    #[arg(long, conflicts_with = "configmap")]
    pub secret: Option<String>,
    /// Where the key lives on Kubernetes: a ConfigMap.
    #[arg(long)]
    pub configmap: Option<String>,
}

/// `lockdown`'s options (issue 14 §lockdown).
#[derive(Debug, Clone, Args)]
pub struct LockdownArgs {
    /// How to run (`--service`: the service to isolate).
    #[command(flatten)]
    pub run: RunOpts,
    /// Isolate every workload of the service's namespace (Compose: project), not only the
    /// service.
    #[arg(long)]
    pub namespace_wide: bool,
    /// Where the evidence bundle goes (as `DIR/<lockdown id>/`).
    #[arg(long, value_name = "DIR", default_value = "evidence")]
    pub evidence_dir: PathBuf,
    /// Why, recorded with the lockdown and in the page (never a secret).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `lift-lockdown`'s options (issue 14 §lockdown).
#[derive(Debug, Clone, Args)]
pub struct LiftLockdownArgs {
    /// How to run (`--service`: whose health is verified after the lift).
    #[command(flatten)]
    pub run: RunOpts,
    /// The lockdown's id (the `lockdown` report and page name it).
    #[arg(long)]
    pub id: String,
    /// The namespace (Compose: project) it is in (default: the service's).
    #[arg(long)]
    pub namespace: Option<String>,
}

/// `evidence`'s options (issue 14 §evidence).
#[derive(Debug, Clone, Args)]
pub struct EvidenceArgs {
    /// How to run (`--service`: whose evidence).
    #[command(flatten)]
    pub run: RunOpts,
    /// Every workload of the service's namespace (Compose: project), not only the service.
    #[arg(long)]
    pub namespace_wide: bool,
    /// Where the bundle goes (as `DIR/<namespace>-<time>/`).
    #[arg(long, value_name = "DIR", default_value = "evidence")]
    pub dir: PathBuf,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A service fails its health check: diagnose (status, logs, dependencies) and restart
    /// or roll back.
    #[command(after_help = "Example:\n  opsbook api-down --service api --execute --yes-to restart")]
    ApiDown(RunOpts),
    /// 5xx rate over the thresholds: find the cause, roll back a recent deploy or restart.
    #[command(after_help = "Example:\n  opsbook high-error-rate --service api")]
    HighErrorRate(RunOpts),
    /// p95 latency over the thresholds: find the bottleneck, scale out when CPU-bound.
    #[command(after_help = "Example:\n  opsbook high-latency --service api --execute")]
    HighLatency(RunOpts),
    /// Database connection failures and pool exhaustion: terminate idle sessions.
    #[command(after_help = "Example:\n  opsbook db-connections --execute --yes-to terminate_idle")]
    DbConnections(RunOpts),
    /// Database running out of space: sizes, bloat, vacuum, retention.
    #[command(after_help = "Example:\n  opsbook database-full")]
    DatabaseFull(RunOpts),
    /// Routine database maintenance: vacuum and analyze bloated tables, slow-query logging.
    #[command(after_help = "Example:\n  opsbook db-maintenance --execute")]
    DbMaintenance(RunOpts),
    /// Restore the database from a verified backup: stop the app, restore, start, verify.
    #[command(
        visible_alias = "restore",
        after_help = "Example:\n  opsbook restore --backup backups/app-20261201T031500.000Z.dump --execute"
    )]
    DatabaseRecovery(RestoreArgs),
    /// Back up the database (`pg_dump -Fc`, fsynced, with a `.sha256`), then verify it.
    #[command(after_help = "Example:\n  opsbook backup --execute --yes-to backup")]
    Backup(BackupArgs),
    /// Back up the cache: BGSAVE, copy its RDB file out of the cache's instance, with a
    /// `.sha256` beside it (says when the server loads its AOF instead).
    #[command(after_help = "Example:\n  opsbook cache-backup --dir backups --execute")]
    CacheBackup(CacheBackupArgs),
    /// Copy a directory out of every instance of a service as checked tar archives, each with
    /// a `.sha256` beside it (seed 004's vector-database backup).
    #[command(
        after_help = "Example:\n  opsbook dir-backup --service weaviate --path /var/lib/weaviate --dir backups --execute"
    )]
    DirBackup(DirBackupArgs),
    /// Cache unreachable or under memory pressure: restart it, purge disposable keys.
    #[command(after_help = "Example:\n  opsbook cache-failure --execute")]
    CacheFailure(RunOpts),
    /// Log every user out: purge the session keys (SCAN + UNLINK, never FLUSHDB).
    #[command(after_help = "Example:\n  opsbook session-invalidation --execute")]
    SessionInvalidation(RunOpts),
    /// Purge the cache keys matching a pattern (SCAN + UNLINK, never KEYS).
    #[command(after_help = "Example:\n  opsbook cache-purge --pattern 'model:*' --execute")]
    CachePurge(PurgeArgs),
    /// The morning checks: every service, the database, the cache, the checks.
    #[command(after_help = "Example:\n  opsbook morning-checks --json")]
    MorningChecks(RunOpts),
    /// Certificate expiry: days left, chain and host name of every `tls` check.
    #[command(after_help = "Example:\n  opsbook cert-check")]
    CertCheck(RunOpts),
    /// Network connectivity: every dependency check and the service's own.
    #[command(after_help = "Example:\n  opsbook network-check --service api")]
    NetworkCheck(RunOpts),
    /// External providers (payment, email, LLM APIs), each probed with its credential (read
    /// from the environment or a file at run time, never shown): rate limited (429 with
    /// Retry-After), credential refused, timeout, unreachable, outage, and the fallback that
    /// applies. Reads only.
    #[command(after_help = "Example:\n  opsbook provider-check --json")]
    ProviderCheck(RunOpts),
    /// Authentication failures: the signing secret compared across instances (by hash, never
    /// shown), the token verify endpoint, the instances' clocks. Comparing runs commands in
    /// the instances: only with --execute.
    #[command(after_help = "Example:\n  opsbook auth-check --service api --execute")]
    AuthCheck(RunOpts),
    /// Rotate a secret: set the new value, roll it out, verify (the value is never shown).
    #[command(
        after_help = "Example:\n  NEW_TOKEN=… opsbook secret-rotation --key API_TOKEN --value-env NEW_TOKEN --execute"
    )]
    SecretRotation(RotationArgs),
    /// Bring the whole system back in dependency order, with health gates between tiers.
    #[command(after_help = "Example:\n  opsbook recover-all --execute")]
    RecoverAll(RunOpts),
    /// Out of memory: OOM kills, memory against limits, restart the leaking service.
    #[command(after_help = "Example:\n  opsbook oom --service worker")]
    Oom(RunOpts),
    /// Rolling restart of a service, then verify its health.
    #[command(after_help = "Example:\n  opsbook restart --service api --execute --yes-to restart")]
    Restart(RunOpts),
    /// Security incident: isolate the service (or its namespace) from the network, capture
    /// evidence with a SHA256SUMS manifest, page the P0 security route, report the undo.
    #[command(
        after_help = "Example:\n  opsbook lockdown --service api --reason 'leaked key' --execute --yes-to isolate"
    )]
    Lockdown(LockdownArgs),
    /// Undo a lockdown after verification: lift it, verify health, report.
    #[command(
        after_help = "Example:\n  opsbook lift-lockdown --namespace prod --id ld-20261202t031500z-9f2c4a1b --execute"
    )]
    LiftLockdown(LiftLockdownArgs),
    /// Capture evidence (logs of every container, previous ones too, events, the objects with
    /// secrets as key names) into a bundle with a SHA256SUMS manifest; reads only.
    #[command(
        after_help = "Example:\n  opsbook evidence --service api --dir /var/evidence --execute"
    )]
    Evidence(EvidenceArgs),
    /// Release an image: set it, wait, verify health (and the error rate with metrics), roll
    /// back when the release does not hold.
    #[command(
        after_help = "Example:\n  opsbook deploy --service api --image shop/api:1.4.2 --cause 'release 1.4.2' --execute"
    )]
    Deploy(DeployArgs),
    /// A failed deployment (CrashLoopBackOff, image pull errors, a stuck rollout): events and
    /// the previous containers' logs as evidence, roll back, verify.
    #[command(after_help = "Example:\n  opsbook deployment-failure --service api --execute")]
    DeploymentFailure(RunOpts),
    /// A planned maintenance window: notify, back up, scale down, release, scale back, verify,
    /// roll back on failure, notify.
    #[command(
        after_help = "Example:\n  opsbook maintenance --service api --image shop/api:2 --scale-to 1 --backup-database app --execute"
    )]
    Maintenance(MaintenanceArgs),
    /// Read the journal: the runs, one run's entries, its post-mortem skeleton.
    #[command(
        after_help = "Example:\n  opsbook journal list\n  opsbook journal postmortem 20261201T031500Z-1a2b > postmortem.md"
    )]
    Journal {
        /// What to read.
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Validate the system file; every error names its line and key.
    #[command(after_help = "Example:\n  opsbook --system examples/systems/shop.toml check-config")]
    CheckConfig,
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  opsbook completions bash > /etc/bash_completion.d/opsbook")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `journal`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// The latest runs, newest first.
    #[command(after_help = "Example:\n  opsbook journal list --limit 5")]
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Every entry of one run.
    #[command(after_help = "Example:\n  opsbook journal show 20261201T031500Z-1a2b")]
    Show {
        /// The run's id (from `journal list` or the end of a run).
        run: String,
    },
    /// The post-mortem skeleton of one run, as Markdown: timeline from the journal, the
    /// sections to write, the post-incident checklist.
    #[command(after_help = "Example:\n  opsbook journal postmortem 20261201T031500Z-1a2b > pm.md")]
    Postmortem {
        /// The run's id.
        run: String,
        /// Override the severity the run's report ended with (P0-P3, as journaled).
        #[arg(long)]
        severity: Option<String>,
    },
}

impl Command {
    /// The runbook a runbook subcommand runs, and how; `None` for the others.
    pub fn run_opts(&self) -> Option<(&'static str, &RunOpts)> {
        Some(match self {
            Self::ApiDown(o) => ("api_down", o),
            Self::HighErrorRate(o) => ("high_error_rate", o),
            Self::HighLatency(o) => ("high_latency", o),
            Self::DbConnections(o) => ("db_connections", o),
            Self::DatabaseFull(o) => ("database_full", o),
            Self::DbMaintenance(o) => ("db_maintenance", o),
            Self::DatabaseRecovery(a) => ("database_recovery", &a.run),
            Self::Backup(a) => ("database_backup", &a.run),
            Self::CacheFailure(o) => ("cache_failure", o),
            Self::SessionInvalidation(o) => ("session_invalidation", o),
            Self::CachePurge(a) => ("cache_purge", &a.run),
            Self::CacheBackup(a) => ("cache_backup", &a.run),
            Self::DirBackup(a) => ("directory_backup", &a.run),
            Self::MorningChecks(o) => ("morning_checks", o),
            Self::CertCheck(o) => ("certificate_expiry", o),
            Self::NetworkCheck(o) => ("network_connectivity", o),
            Self::ProviderCheck(o) => ("provider_failure", o),
            Self::AuthCheck(o) => ("auth_failures", o),
            Self::SecretRotation(a) => ("secret_rotation", &a.run),
            Self::RecoverAll(o) => ("complete_service_recovery", o),
            Self::Oom(o) => ("oom", o),
            Self::Restart(o) => ("restart_and_verify", o),
            Self::Lockdown(a) => ("emergency_lockdown", &a.run),
            Self::LiftLockdown(a) => ("lift_lockdown", &a.run),
            Self::Evidence(a) => ("evidence_capture", &a.run),
            Self::Deploy(a) => ("deploy_release", &a.run),
            Self::DeploymentFailure(o) => ("deployment_failure", o),
            Self::Maintenance(a) => ("planned_maintenance", &a.deploy.run),
            Self::Journal { .. } | Self::CheckConfig | Self::Completions { .. } => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent_and_every_subcommand_has_an_example() {
        Cli::command().debug_assert();
        let cli = Cli::command();
        assert!(cli.get_after_help().is_some());
        for sub in cli.get_subcommands() {
            let help = sub
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                help.contains("opsbook "),
                "{} has no example",
                sub.get_name()
            );
        }
    }

    #[test]
    fn every_runbook_subcommand_names_a_runbook() {
        let cli = Cli::try_parse_from(["opsbook", "cert-check"]).unwrap();
        assert_eq!(cli.command.run_opts().unwrap().0, "certificate_expiry");
        let cli = Cli::try_parse_from(["opsbook", "restore", "--backup", "x.dump"]).unwrap();
        assert_eq!(cli.command.run_opts().unwrap().0, "database_recovery");
        let cli = Cli::try_parse_from(["opsbook", "journal", "list"]).unwrap();
        assert!(cli.command.run_opts().is_none());
        let cli = Cli::try_parse_from(["opsbook", "lockdown", "--namespace-wide"]).unwrap();
        assert_eq!(cli.command.run_opts().unwrap().0, "emergency_lockdown");
    }

    #[test]
    fn the_undo_a_lockdown_reports_is_a_command_that_parses() {
        let id = ops_core::platform::LockdownId::generate(jiff::Timestamp::UNIX_EPOCH);
        let undo = ops_core::platform::lift_command(&"prod".parse().unwrap(), &id);
        let cli = Cli::try_parse_from(undo.split(' ')).unwrap();
        let Command::LiftLockdown(a) = &cli.command else {
            panic!("{undo} is not lift-lockdown");
        };
        assert_eq!(a.id, id.as_str());
        assert_eq!(a.namespace.as_deref(), Some("prod"));
    }
}
