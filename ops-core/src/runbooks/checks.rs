//! `morning_checks`: the seeds' daily health check, read-only.

use super::Targets;
use super::cache::info_findings;
use super::inspection::inspection_findings;
use crate::cache::CacheInfo;
use crate::database::{ConnectionStats, DatabaseSize};
use crate::error::OpsError;
use crate::platform::InspectOptions;
use crate::platform::WorkloadStatus;
use crate::probe::Outcome;
use crate::probe::ProbeResult;
use crate::run::{Finding, FindingLevel, Report, Run, RunContext, RunFailure, RunOutcome, Step};

/// The daily check (seed: "morning checks"): the service's probe and workload, the
/// database (reachable, connections against `max_connections`, sizes), the cache
/// (reachable, memory against `maxmemory`, evictions, hit ratio, persistence) and, where the
/// platform can inspect its namespace, services without ready endpoints, nodes under
/// pressure or crowded, quotas near their limit, recent warning events and disk space
/// against [`InspectionLimits`](super::InspectionLimits)' 80 / 85 / 90 % lines (seed 004). Read-only: it
/// never changes anything, in any mode. The outcome is [`RunOutcome::Healthy`] when no
/// finding is a warning or worse, otherwise [`RunOutcome::Unresolved`] (someone should look).
///
/// # Errors
/// None of its own: every failed read is a finding.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{morning_checks, Targets};
/// use ops_core::testing::{FakeCache, FakeDatabase, FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let t = Targets::new(Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 2))), api)
///     .with_probe(Arc::new(ScriptedProbe::new("api")))
///     .with_database(Arc::new(FakeDatabase::default()))
///     .with_cache(Arc::new(FakeCache::default()));
/// let report = morning_checks(&RunContext::builder().build(), &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Healthy, "{}", report.to_markdown());
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "morning_checks", target = %t.workload))]
pub async fn morning_checks(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("morning_checks", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let (probe, status, db, cache, inspection) = tokio::join!(
            async {
                match &t.probe {
                    Some(p) => Some(
                        run.read(Step::read_only("probe_health"), || p.check())
                            .await,
                    ),
                    None => None,
                }
            },
            run.read(Step::read_only("workload_status"), || t
                .platform
                .workload(&t.workload)),
            async {
                match &t.database {
                    Some(db) => Some(
                        run.read(Step::read_only("database"), || async {
                            let (stats, sizes) =
                                tokio::join!(db.connection_stats(), db.database_sizes());
                            Ok::<_, OpsError>((stats?, sizes?))
                        })
                        .await,
                    ),
                    None => None,
                }
            },
            async {
                match &t.cache {
                    Some(c) => Some(run.read(Step::read_only("cache"), || c.info()).await),
                    None => None,
                }
            },
            // Services, nodes, quotas, events and disk (seed 004).
            async {
                if !t.platform.capabilities().inspect {
                    return None;
                }
                let opts = InspectOptions::default().with_events_limit(t.config.inspection.events);
                let ns = t.workload.namespace();
                Some(
                    run.read(Step::read_only("inspect"), || {
                        t.platform.inspect(ns, opts.clone())
                    })
                    .await,
                )
            },
        );
        report_probe_and_workload(&run, t, probe, status);
        report_dependencies(&run, t, db, cache);
        match inspection {
            Some(Ok(i)) => inspection_findings(&run, &t.config.inspection, &i),
            Some(Err(e)) => run
                .finding(Finding::warning("namespace inspection failed").with_evidence(e.chain())),
            None => {}
        }
        let worst = run.snapshot().findings.iter().map(|f| f.level).max();
        Ok(if worst.is_some_and(|l| l >= FindingLevel::Warning) {
            RunOutcome::Unresolved
        } else {
            RunOutcome::Healthy
        })
    })
    .await;
    run.conclude(body).await
}

type Checked<T> = Option<Result<T, OpsError>>;

fn report_probe_and_workload(
    run: &Run<'_>,
    t: &Targets,
    probe: Checked<ProbeResult>,
    status: Result<WorkloadStatus, OpsError>,
) {
    match probe {
        Some(Ok(r)) if r.outcome == Outcome::Up => {
            run.finding(Finding::info(format!(
                "health check up ({} ms)",
                r.latency.as_millis()
            )));
        }
        Some(Ok(r)) => run.finding(Finding::critical(format!(
            "health check {}: {}",
            r.outcome, r.detail
        ))),
        Some(Err(e)) => {
            run.finding(Finding::critical("health check could not run").with_evidence(e.chain()));
        }
        None => {}
    }
    match status {
        Ok(s) if s.is_healthy() => run.finding(Finding::info(format!(
            "{}: {}/{} ready, {} restarts",
            t.workload,
            s.ready,
            s.desired,
            s.total_restarts()
        ))),
        Ok(s) => run.finding(Finding::warning(format!(
            "{}: {}/{} ready, {} restarts",
            t.workload,
            s.ready,
            s.desired,
            s.total_restarts()
        ))),
        Err(e) => {
            run.finding(Finding::critical("workload state unavailable").with_evidence(e.chain()));
        }
    }
}

fn report_dependencies(
    run: &Run<'_>,
    t: &Targets,
    db: Checked<(ConnectionStats, Vec<DatabaseSize>)>,
    cache: Checked<CacheInfo>,
) {
    match db {
        Some(Ok((connections, sizes))) => {
            let u = connections.utilisation();
            let level = if u >= t.config.db.warn_utilisation {
                FindingLevel::Warning
            } else {
                FindingLevel::Info
            };
            run.finding(Finding::new(
                level,
                format!(
                    "database connections {}/{} ({:.0}%)",
                    connections.total,
                    connections.max_connections,
                    u * 100.0
                ),
            ));
            let total: u64 = sizes.iter().map(|s| s.bytes).sum();
            let level = if t.config.db.size_warn_bytes > 0 && total >= t.config.db.size_warn_bytes {
                FindingLevel::Warning
            } else {
                FindingLevel::Info
            };
            run.finding(Finding::new(
                level,
                format!("databases use {} MiB", total >> 20),
            ));
        }
        Some(Err(e)) => {
            run.finding(Finding::critical("database unreachable").with_evidence(e.chain()));
        }
        None => {}
    }
    match cache {
        Some(Ok(info)) => {
            info_findings(run, t, &info);
        }
        Some(Err(e)) => {
            run.finding(Finding::critical("cache unreachable").with_evidence(e.chain()));
        }
        None => {}
    }
}
