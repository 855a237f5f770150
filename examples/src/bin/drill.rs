//! The incident drill: start a small stack, break it, let the runbook fix it, prove it.
//!
//! ```sh
//! cargo run -p ops-examples --bin drill        # every scenario, in execute mode
//! cargo run -p ops-examples --bin drill -- --scenario crash-loop --keep
//! cargo run -p ops-examples --bin drill -- --dry-run --json
//! ```
//!
//! It starts demo-api, PostgreSQL and Redis as a Docker Compose project (compose labels, a
//! network of its own) on the local engine through the Engine API. When no engine answers or
//! an image is missing it runs `scripts/provision` first (installing `docker.io` and the
//! tools, starting `dockerd`, building the images), after one line saying what and how long;
//! where that cannot help (`DOCKER_HOST` naming a silent engine, not root, no `apt-get`) it
//! stops with one sentence saying what to do. It brings the stack up in dependency order with
//! health gates. For each scenario (`--scenario`; default: all four in sequence) it injects
//! the fault, runs the matching runbook through `RunContext` in execute mode with an
//! approval policy that approves for the drill (`--dry-run` plans instead), shows each step
//! as it runs, verifies that the API answers `/health/ready` again, journals every run to
//! SQLite (`--journal`, default `./.opsbook/journal.db`) and prints the Markdown report
//! (`--json`: JSON). Severities come from the incident classifier and are labelled on the
//! seeds' P0–P3 scale (`--severity-scale p1-p4` for the other seeds' naming); notifications are
//! status updates (Investigating → Identified → Monitoring → Resolved). At the end it prints
//! each scenario's post-mortem skeleton, its timeline read back from the journal. The stack is
//! removed at the end unless `--keep`.
//!
//! | scenario | fault | runbook | remedy |
//! | --- | --- | --- | --- |
//! | `api-unhealthy` | `POST /admin/fault {"unhealthy":true}` | `api_down` | rolling restart |
//! | `redis-down` | Redis stopped | `cache_failure` | restart Redis |
//! | `crash-loop` | a release that crashes at start, deployed with `docker-compose up -d` (the new tag in the service's compose file) | `api_down` | roll back to the image of the container compose replaced |
//! | `db-connections-exhausted` | sessions idle in a transaction | `db_connections` | terminate them |
//!
//! Exit status 0 only when every scenario recovered; the last line then says "recovered".
//! (`--dry-run` exits 0 when every scenario was planned; nothing changes, nothing recovers.)
//! With `--json` the reports go to stdout as one JSON document and the status lines to stderr.
#![forbid(unsafe_code)]

#[path = "drill/scenarios.rs"]
mod scenarios;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use ops_core::incident::{Incident, SeverityScale};
use ops_core::run::{ApprovalPolicy, IncidentPolicy, Mode, RunContext, RunOutcome};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::scenarios::{Backends, Outcome, Scenario};
use ops_examples::live;
use ops_examples::stack::{self, Images, Stack};

/// Run an incident drill on the local Docker engine.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The fault to inject; every scenario in sequence when not given.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// Plan the remediation instead of running it (nothing is changed by the runbooks).
    #[arg(long)]
    dry_run: bool,
    /// Print the reports as JSON.
    #[arg(long)]
    json: bool,
    /// Leave the stack running at the end.
    #[arg(long)]
    keep: bool,
    /// Where the SQLite journal goes.
    #[arg(long, env = "OPSBOOK_JOURNAL", default_value = ".opsbook/journal.db")]
    journal: PathBuf,
    /// How severities are labelled: the seeds' `p0-p3` (default) or `p1-p4`.
    #[arg(long, value_enum, default_value = "p0-p3")]
    severity_scale: ScaleArg,
}

/// The seeds' two severity scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ScaleArg {
    /// P0 (critical) to P3.
    #[value(name = "p0-p3")]
    P0P3,
    /// P1 (critical) to P4.
    #[value(name = "p1-p4")]
    P1P4,
}

impl ScaleArg {
    fn scale(self) -> SeverityScale {
        match self {
            Self::P0P3 => SeverityScale::default(),
            Self::P1P4 => SeverityScale::p1_to_p4(),
        }
    }
}

/// Errors end the drill with one line on stderr (`drill: <what happened>: <why>`) and exit
/// status 1, never a backtrace.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drill: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false)
                .without_time()
                .compact()
                .with_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "warn".into()),
                ),
        )
        .init();
    ops_probes::config::install_crypto_provider();

    let started = Instant::now();
    let scenarios: Vec<Scenario> = args
        .scenario
        .map_or_else(|| Scenario::ALL.to_vec(), |s| vec![s]);
    eprintln!(
        "opsbook drill: {} scenario(s), {}",
        scenarios.len(),
        if args.dry_run { "dry run" } else { "execute" }
    );

    let images = Images::from_env();
    let docker = stack::ensure_images(&images).await?;
    let t = Instant::now();
    let stack = Stack::start(docker, images).await?;
    let result = drill(&args, &stack, &scenarios, t).await;
    if args.keep {
        eprintln!(
            "stack kept: project {} (remove: docker rm -f $(docker ps -aq --filter label=com.docker.compose.project={}))",
            stack.project, stack.project
        );
    } else {
        scenarios::remove_bad_release(&stack).await;
        stack.teardown().await?;
        eprintln!("stack {} removed", stack.project);
    }
    let outcomes = result?;
    summarize(&args, &outcomes, started.elapsed())
}

#[allow(clippy::too_many_lines, reason = "the drill reads top to bottom")]
async fn drill(
    args: &Args,
    stack: &Stack,
    scenarios: &[Scenario],
    t: Instant,
) -> anyhow::Result<Vec<Outcome>> {
    eprintln!(
        "starting project {} (db, cache, then api: dependency order, health gates)",
        stack.project
    );
    for s in stack.platform.start_project(&stack.project).await? {
        eprintln!(
            "  tier {}: {} ({:.1}s)",
            s.tier,
            s.message,
            s.waited.as_secs_f64()
        );
    }
    stack.create_roles().await?;
    let backends = Backends {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?,
        health: Arc::new(
            ops_probes::HttpProbe::builder(&stack.api_url("/health"))
                .with_name("api-health")
                .expect_status([200])
                .with_timeout(Duration::from_secs(3))
                .build()?,
        ),
        ready: Arc::new(
            ops_probes::HttpProbe::builder(&stack.api_url("/health/ready"))
                .with_name("api-ready")
                .expect_status([200])
                .with_timeout(Duration::from_secs(3))
                .build()?,
        ),
        database: Arc::new(
            ops_db::PgDatabaseBuilder::new(stack.pg_url())
                .with_max_connections(2)
                .with_acquire_timeout(Duration::from_secs(3))
                .build()?,
        ),
        cache: Arc::new(
            ops_cache::RedisCacheBuilder::new()
                .with_url(stack.redis_url())
                .with_timeout(Duration::from_secs(2))
                .with_connect_timeout(Duration::from_secs(2))
                .build()?,
        ),
    };
    scenarios::wait_stack_ready(stack, &backends).await?;
    // Opened now, before any fault, and held: during real connection exhaustion the
    // operator role (not a superuser) has no other way in on PostgreSQL 15.
    backends
        .database
        .hold_connection()
        .await
        .context("cannot open the operator's held connection")?;
    eprintln!(
        "stack ready in {:.1}s (api on 127.0.0.1:{})",
        t.elapsed().as_secs_f64(),
        stack.api_port
    );

    if let Some(dir) = args.journal.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let journal: Arc<dyn ops_core::Journal> = Arc::new(
        ops_db::SqliteJournal::open(&args.journal)
            .await
            .with_context(|| format!("cannot open the journal {}", args.journal.display()))?,
    );
    let notifier: Arc<dyn ops_core::Notifier> = Arc::new(ops_notify::ConsoleNotifier::stdout());
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Execute
    };

    let mut outcomes = Vec::new();
    for &scenario in scenarios {
        eprintln!("\n== scenario {} ==", scenario.name());
        scenarios::wait_stack_ready(stack, &backends).await?;
        let ctx = RunContext::builder()
            .mode(mode)
            .approver(ApprovalPolicy::approve_all("drill"))
            .observer(live::LiveView::new(live::Style::detect(false)))
            .incident_policy(IncidentPolicy::default().with_scale(args.severity_scale.scale()))
            .journal(Arc::clone(&journal))
            .notifier(if args.json {
                Arc::new(ops_notify::ConsoleNotifier::with_writer(std::io::stderr()))
            } else {
                Arc::clone(&notifier)
            })
            .build();
        let mut outcome = scenarios::run(stack, &backends, &ctx, scenario).await?;
        outcome.postmortem = postmortem(journal.as_ref(), &outcome.report, &ctx).await?;
        if !args.json {
            println!("{}", outcome.report.to_markdown());
        }
        eprintln!(
            "  {}: {} (inject {:.1}s, runbook {:.1}s, verify {:.1}s)",
            scenario.name(),
            if outcome.recovered {
                "recovered"
            } else {
                outcome.report.outcome.label()
            },
            outcome.inject.as_secs_f64(),
            outcome.runbook.as_secs_f64(),
            outcome.verify.as_secs_f64()
        );
        let stop = !args.dry_run && !outcome.recovered;
        outcomes.push(outcome);
        if stop {
            break;
        }
        if args.dry_run {
            // Undo the fault so the next scenario starts from a healthy stack.
            stack
                .platform
                .start_service(&stack.service("cache"))
                .await?;
            if scenario == Scenario::ApiUnhealthy || scenario == Scenario::CrashLoop {
                stack
                    .platform
                    .restart_service(&stack.service("api"), Some(Duration::from_secs(2)))
                    .await?;
                if scenario == Scenario::CrashLoop {
                    let _ = stack
                        .platform
                        .rollback_image(&stack.service("api"), None)
                        .await;
                }
            }
        }
    }
    eprintln!("journal: {}", args.journal.display());
    Ok(outcomes)
}

/// The post-mortem skeleton of a run, built from what the journal recorded of it.
async fn postmortem(
    journal: &dyn ops_core::Journal,
    report: &ops_core::run::Report,
    ctx: &RunContext,
) -> anyhow::Result<String> {
    let entries = journal
        .entries(&report.run_id)
        .await
        .with_context(|| format!("cannot read run {} back from the journal", report.run_id))?;
    let incident = Incident::from_journal(&entries)
        .with_context(|| format!("the journal holds nothing of run {}", report.run_id))?;
    Ok(incident
        .postmortem(&entries)
        .to_markdown_with(&ctx.incident_policy().scale))
}

fn summarize(args: &Args, outcomes: &[Outcome], took: Duration) -> anyhow::Result<()> {
    if args.json {
        let reports: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| {
                Ok(serde_json::json!({
                    "scenario": o.scenario.name(),
                    "recovered": o.recovered,
                    "seconds": {"inject": o.inject.as_secs_f64(), "runbook": o.runbook.as_secs_f64(), "verify": o.verify.as_secs_f64()},
                    "report": serde_json::from_str::<serde_json::Value>(&o.report.to_json()?)?,
                    "postmortem": o.postmortem,
                }))
            })
            .collect::<anyhow::Result<_>>()?;
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"scenarios": reports}))?
        );
    }
    if !args.json {
        for o in outcomes {
            println!("{}", o.postmortem);
        }
    }
    let say = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(String::new());
    say("| scenario | runbook | outcome | inject | runbook | verify |".to_owned());
    say("| --- | --- | --- | --- | --- | --- |".to_owned());
    for o in outcomes {
        say(format!(
            "| {} | {} | {} | {:.1}s | {:.1}s | {:.1}s |",
            o.scenario.name(),
            o.scenario.runbook(),
            if o.recovered {
                "recovered"
            } else {
                o.report.outcome.label()
            },
            o.inject.as_secs_f64(),
            o.runbook.as_secs_f64(),
            o.verify.as_secs_f64()
        ));
    }
    let wanted = args.scenario.map_or(Scenario::ALL.len(), |_| 1);
    if args.dry_run {
        let planned = outcomes
            .iter()
            .all(|o| matches!(o.report.outcome, RunOutcome::Planned | RunOutcome::Healthy));
        if planned && outcomes.len() == wanted {
            say(format!(
                "dry run complete in {:.0}s: {} scenario(s) planned, nothing was changed by the runbooks",
                took.as_secs_f64(),
                outcomes.len()
            ));
            return Ok(());
        }
        anyhow::bail!("dry run incomplete: a scenario could not be planned");
    }
    if outcomes.len() == wanted && outcomes.iter().all(|o| o.recovered) {
        say(format!(
            "drill passed in {:.0}s: all {} scenario(s) recovered",
            took.as_secs_f64(),
            outcomes.len()
        ));
        Ok(())
    } else {
        let failed: Vec<&str> = outcomes
            .iter()
            .filter(|o| !o.recovered)
            .map(|o| o.scenario.name())
            .collect();
        say(format!(
            "drill FAILED: {} did not come back",
            failed.join(", ")
        ));
        std::process::exit(1);
    }
}
