//! The scenarios: how each fault is injected, which runbook answers it, and how recovery is
//! verified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bollard::models::ContainerConfig;
use bollard::query_parameters::CommitContainerOptionsBuilder;
use ops_core::platform::{ExecCommand, StopOptions};
use ops_core::probe::Probe as _;
use ops_core::run::{Report, RunContext};
use ops_core::runbooks::{self, RunbookConfig, Targets};
use ops_core::{Platform as _, WorkloadRef};

use ops_examples::stack::{APP_CLIENT, PG_MAX_CONNECTIONS, Stack, until};

/// A fault the drill injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// demo-api reports unhealthy (`/admin/fault {"unhealthy":true}`): `api_down` restarts it.
    ApiUnhealthy,
    /// Redis is stopped: `cache_failure` restarts it.
    RedisDown,
    /// A bad release, deployed with `docker-compose up -d`, crashes at start: `api_down` sees
    /// the crash loop and rolls back to the image of the container compose replaced.
    CrashLoop,
    /// Sessions left idle in a transaction take every ordinary connection slot of PostgreSQL:
    /// `db_connections`, as a non-superuser operator on its held connection, terminates them.
    DbConnectionsExhausted,
}

impl Scenario {
    pub(crate) const ALL: [Self; 4] = [
        Self::ApiUnhealthy,
        Self::RedisDown,
        Self::CrashLoop,
        Self::DbConnectionsExhausted,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ApiUnhealthy => "api-unhealthy",
            Self::RedisDown => "redis-down",
            Self::CrashLoop => "crash-loop",
            Self::DbConnectionsExhausted => "db-connections-exhausted",
        }
    }

    pub(crate) fn runbook(self) -> &'static str {
        match self {
            Self::ApiUnhealthy | Self::CrashLoop => "api_down",
            Self::RedisDown => "cache_failure",
            Self::DbConnectionsExhausted => "db_connections",
        }
    }
}

/// The drill's backends, shared by every scenario.
pub(crate) struct Backends {
    pub(crate) http: reqwest::Client,
    pub(crate) health: Arc<ops_probes::HttpProbe>,
    pub(crate) ready: Arc<ops_probes::HttpProbe>,
    pub(crate) database: Arc<ops_db::PgDatabase>,
    pub(crate) cache: Arc<ops_cache::RedisCache>,
}

/// The outcome of one scenario.
pub(crate) struct Outcome {
    pub(crate) scenario: Scenario,
    pub(crate) report: Report,
    pub(crate) recovered: bool,
    pub(crate) inject: Duration,
    pub(crate) runbook: Duration,
    pub(crate) verify: Duration,
    /// The post-mortem skeleton of the run, from its journal (filled in by the drill).
    pub(crate) postmortem: String,
}

/// Thresholds for the drill: the documented defaults, with windows shortened so a drill takes
/// seconds (sessions idle in a transaction for 3 s count as stuck here, 5 min in production).
pub(crate) fn drill_config() -> RunbookConfig {
    let mut cfg = RunbookConfig::default()
        .with_rollout_timeout(Duration::from_secs(60))
        .with_rollout_poll(Duration::from_millis(500))
        .with_verify(3, Duration::from_secs(1), Duration::from_secs(45));
    cfg.log_since = Duration::from_mins(10);
    cfg.db.idle_in_transaction_limit = Duration::from_secs(3);
    cfg
}

async fn is_up(probe: &ops_probes::HttpProbe) -> bool {
    probe.check().await.is_ok_and(|r| r.outcome.is_up())
}

/// Wait until the whole stack serves: api healthy on the platform and `/health/ready` up.
pub(crate) async fn wait_stack_ready(stack: &Stack, b: &Backends) -> anyhow::Result<()> {
    let api = stack.service("api");
    stack
        .platform
        .wait_healthy(&api, Some(Duration::from_secs(60)))
        .await?;
    until(
        "/health/ready answers 200",
        Duration::from_secs(30),
        async || is_up(&b.ready).await,
    )
    .await
}

/// Inject the fault and wait until it shows.
async fn inject(stack: &Stack, b: &Backends, scenario: Scenario) -> anyhow::Result<()> {
    let api = stack.service("api");
    match scenario {
        Scenario::ApiUnhealthy => {
            eprintln!(
                "  fault: POST /admin/fault {{\"unhealthy\":true}}; waiting for the HEALTHCHECK to notice"
            );
            stack.make_api_unhealthy(&b.http).await
        }
        Scenario::RedisDown => {
            let cache = stack.service("cache");
            stack
                .platform
                .stop(
                    &cache,
                    StopOptions::default().with_timeout(Duration::from_secs(2)),
                )
                .await?;
            eprintln!("  fault: redis stopped; waiting for /health/ready to fail");
            until("/health/ready fails", Duration::from_secs(30), async || {
                !is_up(&b.ready).await
            })
            .await
        }
        Scenario::CrashLoop => deploy_bad_release(stack, &api).await,
        Scenario::DbConnectionsExhausted => {
            // The application's role (not a superuser) opens more sessions than there are
            // slots, each idle in a transaction: every slot but the superuser-reserved ones is
            // taken, and the rest are refused. A probe that still gets in means a session lost
            // a race with it: one more is opened until a probe is refused. opsbook acts through the connection it opened
            // at start and holds, as a non-superuser operator role.
            let n = PG_MAX_CONNECTIONS;
            let db = stack.service("db");
            let instance = db.instance(&ops_compose::labels::container_name(
                &stack.project,
                "db",
                1,
            ))?;
            let script = format!(
                "for i in $(seq 1 {n}); do (echo 'BEGIN; SELECT 1;'; sleep 600) | psql -q -U {APP_CLIENT} -d app >/dev/null 2>&1 & done; \
                 for t in $(seq 1 50); do \
                   if ! psql -U {APP_CLIENT} -d app -c 'SELECT 1' >/dev/null 2>/tmp/refused; then \
                     grep -qE 'too many clients|connection slots are reserved' /tmp/refused && exit 0; \
                   else (echo 'BEGIN; SELECT 1;'; sleep 600) | psql -q -U {APP_CLIENT} -d app >/dev/null 2>&1 & fi; \
                   sleep 0.2; done; echo 'connection slots left free' >&2; exit 1"
            );
            let out = stack
                .platform
                .exec(
                    &instance,
                    &ExecCommand::new(["bash", "-c", &script])?
                        .with_timeout(Duration::from_secs(30)),
                )
                .await?;
            if !out.success() {
                bail!(
                    "could not exhaust the connections: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            eprintln!(
                "  fault: every non-reserved connection slot taken by sessions idle in a transaction (max_connections={PG_MAX_CONNECTIONS}); new connections of ordinary roles are refused"
            );
            // Let them age past the drill's idle-in-transaction limit.
            tokio::time::sleep(Duration::from_secs(4)).await;
            Ok(())
        }
    }
}

/// Deploy a release that crashes at start as a compose user does — the new tag in the
/// service's compose file, `docker-compose up -d` — and wait until it crash-loops. The
/// container compose replaces carries no opsbook label: the runbook finds the previous image
/// the way it would on any compose-deployed service.
async fn deploy_bad_release(stack: &Stack, api: &WorkloadRef) -> anyhow::Result<()> {
    let image = bad_release(stack).await?;
    eprintln!("  fault: deploying {image} (crashes at start) with docker-compose up -d");
    stack.compose_up_api(&image)?;
    until(
        "the api is crash looping",
        Duration::from_secs(30),
        async || {
            stack
                .platform
                .workload(api)
                .await
                .is_ok_and(|s| s.total_restarts() >= 2)
        },
    )
    .await
}

/// A "release" of demo-api that crashes at start: the current image with `FAULT_CRASH=true`.
async fn bad_release(stack: &Stack) -> anyhow::Result<String> {
    let container = ops_compose::labels::container_name(&stack.project, "api", 1);
    let repo = stack
        .images
        .api
        .rsplit_once(':')
        .map_or(stack.images.api.as_str(), |(r, _)| r);
    let tag = format!("{}-bad", stack.project);
    let opts = CommitContainerOptionsBuilder::new()
        .container(&container)
        .repo(repo)
        .tag(&tag)
        .changes("ENV FAULT_CRASH=true")
        .build();
    stack
        .docker
        .commit_container(opts, ContainerConfig::default())
        .await
        .context("cannot build the bad release")?;
    Ok(format!("{repo}:{tag}"))
}

pub(crate) async fn remove_bad_release(stack: &Stack) {
    let repo = stack
        .images
        .api
        .rsplit_once(':')
        .map_or(stack.images.api.as_str(), |(r, _)| r);
    let image = format!("{repo}:{}-bad", stack.project);
    let _ = stack
        .docker
        .remove_image(
            &image,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

fn targets(stack: &Stack, b: &Backends, workload: WorkloadRef) -> Targets {
    Targets::new(Arc::clone(&stack.platform) as _, workload)
        .with_probe(Arc::clone(&b.health) as _)
        .with_database(Arc::clone(&b.database) as _)
        .with_cache(Arc::clone(&b.cache) as _)
        .with_config(drill_config())
}

/// Inject, run the matching runbook, verify.
pub(crate) async fn run(
    stack: &Stack,
    b: &Backends,
    ctx: &RunContext,
    scenario: Scenario,
) -> anyhow::Result<Outcome> {
    let t0 = Instant::now();
    inject(stack, b, scenario).await?;
    let inject_took = t0.elapsed();
    eprintln!("  runbook {} ({})", scenario.runbook(), ctx.mode());
    let t1 = Instant::now();
    let result = match scenario {
        Scenario::ApiUnhealthy | Scenario::CrashLoop => {
            // The database and cache answer: the API itself is at fault.
            runbooks::api_down(ctx, &targets(stack, b, stack.service("api"))).await
        }
        Scenario::RedisDown => {
            runbooks::cache_failure(ctx, &targets(stack, b, stack.service("cache"))).await
        }
        Scenario::DbConnectionsExhausted => {
            runbooks::db_connections(ctx, &targets(stack, b, stack.service("db"))).await
        }
    };
    // A failed run still shows what it did before it failed.
    let report = match result {
        Ok(report) => report,
        Err(failure) => failure.report().clone(),
    };
    let runbook_took = t1.elapsed();
    let t2 = Instant::now();
    let recovered = if ctx.mode() == ops_core::run::Mode::Execute
        && report.outcome == ops_core::run::RunOutcome::Recovered
    {
        eprintln!("  verify: the api answers /health/ready 3 times in a row");
        let mut streak = 0;
        until(
            "the stack serves again",
            Duration::from_secs(45),
            async || {
                streak = if is_up(&b.ready).await { streak + 1 } else { 0 };
                streak >= 3
            },
        )
        .await
        .is_ok()
    } else {
        false
    };
    Ok(Outcome {
        scenario,
        report,
        recovered,
        inject: inject_took,
        runbook: runbook_took,
        verify: t2.elapsed(),
        postmortem: String::new(),
    })
}
