//! Cache runbooks: connection failure / memory pressure, and session invalidation.

use std::time::Duration;

use super::Targets;
use super::verify::wait_rollout;
use crate::cache::{CacheInfo, ClientFilter, PurgeOptions};
use crate::error::OpsError;
use crate::incident::Signals;
use crate::platform::RestartOptions;
use crate::refs::KeyPattern;
use crate::run::{
    Acted, Finding, FindingLevel, Mode, Report, RetryPolicy, Run, RunContext, RunFailure,
    RunOutcome, Step,
};

/// Findings from INFO; returns (memory critical, clients critical).
pub(crate) fn info_findings(run: &Run<'_>, t: &Targets, info: &CacheInfo) -> (bool, bool) {
    let limits = &t.config.cache;
    let mut memory_critical = false;
    match info.memory.used_ratio() {
        Some(r) if r >= limits.memory_critical => {
            memory_critical = true;
            run.finding(
                Finding::critical(format!("memory at {:.0}% of maxmemory", r * 100.0))
                    .with_evidence(format!(
                        "used {} MiB of {} MiB",
                        info.memory.used_bytes >> 20,
                        info.memory.max_bytes >> 20
                    ))
                    .with_evidence(format!("policy {}", info.memory.policy)),
            );
        }
        Some(r) => run.finding(Finding::info(format!(
            "memory at {:.0}% of maxmemory ({})",
            r * 100.0,
            info.memory.policy
        ))),
        None => run.finding(Finding::info(format!(
            "memory used {} MiB, no maxmemory set",
            info.memory.used_bytes >> 20
        ))),
    }
    if info.stats.evicted_keys > 0 {
        run.finding(Finding::warning(format!(
            "{} keys evicted since start",
            info.stats.evicted_keys
        )));
    }
    if info.stats.rejected_connections > 0 {
        run.finding(Finding::warning(format!(
            "{} connections rejected (maxclients reached)",
            info.stats.rejected_connections
        )));
    }
    #[allow(clippy::cast_precision_loss, reason = "a ratio")]
    let clients_ratio = if info.max_clients > 0 {
        info.connected_clients as f64 / info.max_clients as f64
    } else {
        0.0
    };
    let clients_critical = clients_ratio >= limits.clients_critical;
    if clients_critical {
        run.finding(Finding::critical(format!(
            "{} of {} clients connected",
            info.connected_clients, info.max_clients
        )));
    }
    if let Some(ratio) = info.hit_ratio() {
        let level = if ratio < limits.min_hit_ratio {
            FindingLevel::Warning
        } else {
            FindingLevel::Info
        };
        run.finding(Finding::new(
            level,
            format!("hit ratio {:.1}%", ratio * 100.0),
        ));
    }
    if !info.persistence.last_bgsave_ok {
        run.finding(Finding::warning(
            "the last background save failed: persistence is at risk",
        ));
    }
    (memory_critical, clients_critical)
}

/// The outcome of a run whose remedy is one purge: nothing matched is healthy.
pub(crate) fn purge_outcome(acted: &Acted<u64>) -> RunOutcome {
    match acted {
        Acted::Done(0) => RunOutcome::Healthy,
        Acted::Done(_) => RunOutcome::Recovered,
        Acted::Planned => RunOutcome::Planned,
        Acted::Denied { .. } => RunOutcome::Unresolved,
    }
}

/// Purge `pattern` through the gate; the plan says how many keys and shows a sample.
pub(crate) async fn purge_step(
    run: &Run<'_>,
    t: &Targets,
    name: &'static str,
    pattern: &KeyPattern,
) -> Result<Acted<u64>, OpsError> {
    let cache = t.cache()?;
    if pattern.is_match_all() && !t.config.cache.allow_match_all {
        return Err(OpsError::invalid(
            "purge",
            pattern.as_str(),
            "this pattern deletes every key; set config.cache.allow_match_all to allow it",
        ));
    }
    let opts = PurgeOptions::default();
    let count = run
        .read(Step::read_only("count_keys").target(pattern), || {
            cache.count(pattern, &opts)
        })
        .await?;
    let sample = run
        .read(Step::read_only("sample_keys").target(pattern), || {
            cache.sample(pattern, 5)
        })
        .await?;
    if count.matched == 0 {
        run.finding(Finding::info(format!("no key matches {pattern}")));
        return Ok(Acted::Done(0));
    }
    let step = Step::disruptive(name)
        .describe(format!("unlink keys matching {pattern} with SCAN + UNLINK in batches (never KEYS, never FLUSHDB)"))
        .target(pattern)
        .change(format!("unlink {} keys matching {pattern} (e.g. {})", count.matched, sample.join(", ")))
        .timeout(Duration::from_mins(30));
    Ok(match run.act(step, || cache.purge(pattern, &opts)).await? {
        Acted::Done(outcome) => {
            run.finding(Finding::info(format!(
                "unlinked {} of {} matching keys ({} scanned) in {} ms",
                outcome.deleted,
                outcome.matched,
                outcome.scanned,
                outcome.duration.as_millis()
            )));
            Acted::Done(outcome.deleted)
        }
        Acted::Planned => Acted::Planned,
        Acted::Denied { reason } => Acted::Denied { reason },
    })
}

/// Cache connection failure and memory pressure (seed: "Redis connection failed").
///
/// - Unreachable: restart the cache's workload (`targets.workload`) through the gate, wait for
///   it, ping again.
/// - Reachable: typed INFO (memory vs `maxmemory`, evictions, clients, hit ratio,
///   persistence). Under memory pressure, purge only the patterns configured as disposable
///   (`config.cache.purgeable`) — never `FLUSHDB`/`FLUSHALL`, which would also drop sessions;
///   with too many clients, kill clients idle longer than `cache.idle_client_limit` — never
///   the ones in use while idle (Pub/Sub subscribers, blocked consumers, replicas, the master
///   link, `MONITOR`: [`crate::cache::ClientFlags::in_use`]), which the plan leaves out.
/// - Verify with INFO again.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a cache; errors of disruptive steps.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{cache_failure, Targets};
/// use ops_core::testing::{FakeCache, FakePlatform};
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/statefulset/redis".parse()?)
///     .with_cache(Arc::new(FakeCache::default()));
/// let report = cache_failure(&RunContext::builder().build(), &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Healthy);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "cache_failure", target = %t.workload, mode = %ctx.mode()))]
pub async fn cache_failure(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("cache_failure", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let cache = t.cache()?;
        if let Err(e) = run.read(Step::read_only("ping"), || cache.ping()).await {
            // Sessions and cached reads fail with it.
            run.observe(Signals::default().with_critical_feature_down(true));
            run.finding(Finding::critical("cache unreachable").with_evidence(e.chain()));
            let status = run.read(Step::read_only("cache_workload"), || t.platform.workload(&t.workload)).await?;
            let restart = Step::disruptive("restart_cache")
                .describe(format!("restart {} (the cache does not answer)", t.workload))
                .target(&t.workload)
                .changes_all(status.instances.iter().map(|i| format!("restart instance {}", i.name)));
            match run.act(restart, || t.platform.rollout_restart(&t.workload, RestartOptions::default())).await? {
                Acted::Done(()) => {}
                Acted::Planned => return Ok(RunOutcome::Planned),
                Acted::Denied { .. } => return Ok(RunOutcome::Unresolved),
            }
            if !wait_rollout(&run, t, "wait_cache_restarted").await? {
                return Ok(RunOutcome::Unresolved);
            }
            let retry = RetryPolicy::default().with_max_attempts(10).with_initial_delay(Duration::from_millis(500));
            return Ok(match run.read(Step::read_only("ping_after_restart").retry(retry), || cache.ping()).await {
                Ok(latency) => {
                    run.finding(Finding::info(format!("cache answers again ({} ms)", latency.as_millis())));
                    RunOutcome::Recovered
                }
                Err(e) => {
                    run.finding(Finding::critical("cache still unreachable after a restart").with_evidence(e.chain()));
                    RunOutcome::Unresolved
                }
            });
        }
        let info = run.read(Step::read_only("info"), || cache.info()).await?;
        let (memory_critical, clients_critical) = info_findings(&run, t, &info);
        if !memory_critical && !clients_critical {
            return Ok(RunOutcome::Healthy);
        }
        run.observe(Signals::default().with_degraded_dependency(format!("cache {}", t.workload)));
        let mut acted = false;
        if memory_critical {
            if t.config.cache.purgeable.is_empty() {
                run.finding(Finding::warning(
                    "no disposable key patterns configured (config.cache.purgeable): raise maxmemory or use an allkeys-* eviction policy",
                ));
            }
            for pattern in &t.config.cache.purgeable {
                acted |= !matches!(purge_step(&run, t, "purge_disposable_keys", pattern).await?, Acted::Denied { .. });
            }
        }
        if clients_critical {
            let filter = ClientFilter::default().idle_longer_than(t.config.cache.idle_client_limit);
            let idle = run.read(Step::read_only("idle_clients"), || cache.clients(&filter)).await?;
            if !idle.is_empty() {
                let step = Step::disruptive("kill_idle_clients")
                    .describe(format!("close {} client(s) idle longer than {}s", idle.len(), t.config.cache.idle_client_limit.as_secs()))
                    .changes_all(idle.iter().map(|c| format!("kill client {} ({}, idle {}s)", c.id, c.addr, c.idle.as_secs())));
                let ids: Vec<u64> = idle.iter().map(|c| c.id).collect();
                if let Acted::Done(killed) = run.act(step, || cache.kill_clients(&ids, &filter)).await? {
                    acted = true;
                    if killed.len() < ids.len() {
                        run.finding(Finding::info(format!(
                            "{} approved client(s) were no longer idle or connected when the step ran and were left alone",
                            ids.len() - killed.len()
                        )));
                    }
                } else if run.mode() == Mode::DryRun {
                    acted = true;
                }
            }
        }
        if run.mode() == Mode::DryRun {
            return Ok(if acted { RunOutcome::Planned } else { RunOutcome::Unresolved });
        }
        let after = run.read(Step::read_only("info_after"), || cache.info()).await?;
        let still = after.memory.used_ratio().is_some_and(|r| r >= t.config.cache.memory_critical);
        Ok(if acted && !still { RunOutcome::Recovered } else { RunOutcome::Unresolved })
    })
    .await;
    run.conclude(body).await
}

/// Log every user out by deleting their sessions (seed: "invalidate all sessions").
///
/// Purges `config.cache.session_pattern` (default `session:*`) with SCAN + UNLINK. The seeds
/// use `KEYS session:* | xargs DEL` (blocks the server) or `FLUSHDB`/`FLUSHALL` (drops the
/// whole cache); neither is ever used here. The plan states how many keys would go.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a cache; a purge failing mid-way (its detail
/// says how many keys were deleted; rerunning finishes the job).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
/// use ops_core::runbooks::{session_invalidation, Targets};
/// use ops_core::testing::{FakeCache, FakePlatform};
/// let cache = Arc::new(FakeCache::default().with_keys("session:", 40).with_keys("cache:", 10));
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/statefulset/redis".parse()?).with_cache(cache.clone());
/// let ctx = RunContext::builder().mode(Mode::Execute).allow_volatile_journal().approver(ApprovalPolicy::approve_all("oncall")).build();
/// let report = session_invalidation(&ctx, &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Recovered);
/// assert_eq!(cache.len(), 10); // only the sessions went
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "session_invalidation", mode = %ctx.mode()))]
pub async fn session_invalidation(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let pattern = t.config.cache.session_pattern.clone();
    let run = ctx.begin("session_invalidation", &pattern).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        t.cache()?;
        Ok(purge_outcome(
            &purge_step(&run, t, "purge_sessions", &pattern).await?,
        ))
    })
    .await;
    run.conclude(body).await
}
