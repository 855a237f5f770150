//! Database runbooks: connection failures, a full database, maintenance, recovery from backup.

use std::time::Duration;

use super::verify::{verify_healthy, wait_rollout};
use super::{RecoveryPlan, Targets};
use crate::database::{
    ConnectionStats, Maintenance, RestoreOptions, RestoreOutcome, Session, SessionFilter,
    SessionState, SlowQueryOptions,
};
use crate::error::{ErrorKind, OpsError};
use crate::incident::Signals;
use crate::platform::{StopOptions, WorkloadStatus};
use crate::refs::Pid;
use crate::run::{Acted, Finding, Report, Run, RunContext, RunFailure, RunOutcome, Step};
use crate::text;

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

fn utilisation_finding(run: &Run<'_>, t: &Targets, stats: &ConnectionStats) {
    let limits = &t.config.db;
    let u = stats.utilisation();
    let title = format!(
        "{} of {} usable connections in use ({}; max_connections {}, {} reserved)",
        stats.total,
        stats.usable_connections(),
        pct(u),
        stats.max_connections,
        stats.reserved_connections
    );
    let mut f = if u >= limits.critical_utilisation {
        // New connections are about to be refused: what needs the database stops working.
        run.observe(Signals::default().with_critical_feature_down(true));
        Finding::critical(title)
    } else if u >= limits.warn_utilisation {
        Finding::warning(title)
    } else {
        Finding::info(title)
    };
    for (state, n) in &stats.by_state {
        f = f.with_evidence(format!("{state}: {n}"));
    }
    run.finding(f);
}

/// Terminate the sessions matching `filter` through the gate: the plan lists each session, and
/// the act terminates only those pids, each re-checked against `filter` when it runs.
async fn terminate_step(
    run: &Run<'_>,
    t: &Targets,
    name: &'static str,
    why: &str,
    filter: &SessionFilter,
) -> Result<Option<Vec<Session>>, OpsError> {
    let db = t.database()?;
    let victims = run
        .read(Step::read_only("sessions_to_terminate"), || {
            db.sessions(filter)
        })
        .await?;
    if victims.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let step = Step::disruptive(name)
        .describe(format!("terminate {} session(s): {why}", victims.len()))
        .target("database")
        .changes_all(
            victims
                .iter()
                .map(|s| format!("terminate {}", s.describe())),
        );
    let pids: Vec<Pid> = victims.iter().map(|s| s.pid).collect();
    match run.act(step, || db.terminate(&pids, filter)).await? {
        Acted::Done(gone) => {
            run.finding(Finding::info(format!(
                "terminated {} session(s): {why}",
                gone.len()
            )));
            let spared: Vec<String> = pids
                .iter()
                .filter(|p| !gone.iter().any(|g| g.pid == **p))
                .map(ToString::to_string)
                .collect();
            if !spared.is_empty() {
                run.finding(Finding::info(format!(
                    "{} approved session(s) no longer matched when the step ran and were left alone",
                    spared.len()
                )).with_evidence(format!("pids {}", spared.join(", "))));
            }
            Ok(Some(gone))
        }
        Acted::Planned | Acted::Denied { .. } => Ok(None),
    }
}

/// Database connection failures, including pool exhaustion and idle-in-transaction sessions
/// (seed: "Database connection failures").
///
/// Diagnosis: ping, server info, connections by state against `max_connections`, long-running
/// and blocked queries, idle-in-transaction sessions. Remediation (approved, journaled):
/// terminate idle-in-transaction sessions older than `db.idle_in_transaction_limit`, and when
/// utilisation is at or above `db.critical_utilisation`, idle sessions older than
/// `db.idle_limit`. Active queries are reported, never killed automatically. Verification:
/// connections again.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] without a database; errors of disruptive steps. An unreachable
/// database is a finding and an [`RunOutcome::Unresolved`] report, not an error; so is one
/// whose connections are exhausted ([`crate::database::is_connections_exhausted`]) when the
/// backend holds no connection to act through, and the finding says so.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use ops_core::database::{Session, SessionState};
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{db_connections, Targets};
/// use ops_core::testing::{FakeDatabase, FakePlatform};
/// let stuck = Session::new(ops_core::Pid::new(7)?, SessionState::IdleInTransaction).aged(Duration::from_secs(3600));
/// let db = Arc::new(FakeDatabase::default().with_sessions(vec![stuck]));
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/deployment/api".parse()?).with_database(db.clone());
/// let report = db_connections(&RunContext::builder().build(), &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Planned);
/// assert!(db.mutations().is_empty());
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "db_connections", mode = %ctx.mode()))]
pub async fn db_connections(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("db_connections", "database").await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let db = t.database()?;
        let limits = &t.config.db;
        if let Err(e) = run.read(Step::read_only("ping"), || db.ping()).await {
            // The seeds' "database down / connection failures": the service is down with it.
            run.observe(Signals::default().with_service_down(true));
            if crate::database::is_connections_exhausted(&e) {
                // The incident itself, not a dead server: say so and how to get in.
                run.finding(Finding::critical("connections exhausted: the database refuses new connections and this run holds none to act through").with_evidence(e.chain()));
                run.summary("Every connection slot is taken. Run db_connections as a role that may use reserved connections (pg_use_reserved_connections on PostgreSQL 16+, a superuser before), or with a connection opened before the incident and held (ops-db: PgDatabase::hold_connection).");
            } else {
                run.finding(Finding::critical("database unreachable").with_evidence(e.chain()));
                run.summary("The database does not answer: check the server's process, disk and logs (database_recovery if it is lost).");
            }
            return Ok(RunOutcome::Unresolved);
        }
        let (stats, long, blocked) = tokio::join!(
            run.read(Step::read_only("connection_stats"), || db.connection_stats()),
            run.read(Step::read_only("long_running"), || db.long_running(limits.long_query)),
            run.read(Step::read_only("blocked"), || db.blocked()),
        );
        let stats = stats?;
        utilisation_finding(&run, t, &stats);
        if let Ok(long) = long
            && !long.is_empty()
        {
            run.finding(long.iter().fold(
                Finding::warning(format!("{} queries running longer than {}s", long.len(), limits.long_query.as_secs())),
                |f, s| f.with_evidence(format!("{}: {}", s.describe(), text::evidence(&s.query, 200))),
            ));
        }
        if let Ok(blocked) = blocked
            && !blocked.is_empty()
        {
            run.finding(blocked.iter().fold(Finding::warning(format!("{} queries waiting on locks", blocked.len())), |f, b| {
                let by: Vec<String> = b.blocked_by.iter().map(ToString::to_string).collect();
                f.with_evidence(format!("pid {} blocked by {}", b.session.pid, by.join(", ")))
            }));
        }

        let mut planned = false;
        let stuck = SessionFilter::default()
            .with_state(SessionState::IdleInTransaction)
            .with_state(SessionState::IdleInTransactionAborted)
            .idle_longer_than(limits.idle_in_transaction_limit);
        let why = format!("idle in transaction for more than {}s (they hold locks and block vacuum)", limits.idle_in_transaction_limit.as_secs());
        planned |= terminate_step(&run, t, "terminate_idle_in_transaction", &why, &stuck).await?.is_none();
        if stats.utilisation() >= limits.critical_utilisation {
            let idle = SessionFilter::default().with_state(SessionState::Idle).idle_longer_than(limits.idle_limit);
            let why = format!("idle for more than {}s while connections are exhausted", limits.idle_limit.as_secs());
            planned |= terminate_step(&run, t, "terminate_idle", &why, &idle).await?.is_none();
        }
        if planned && run.mode() == crate::run::Mode::DryRun {
            return Ok(RunOutcome::Planned);
        }
        let after = run.read(Step::read_only("connection_stats_after"), || db.connection_stats()).await?;
        let healthy = after.utilisation() < limits.warn_utilisation;
        run.summary(format!(
            "Connections: {} before, {} after ({} of the {} usable).",
            stats.total,
            after.total,
            pct(after.utilisation()),
            after.usable_connections()
        ));
        let changed = after.total != stats.total;
        Ok(match (healthy, changed) {
            (true, true) => RunOutcome::Recovered,
            (true, false) => RunOutcome::Healthy,
            (false, _) => RunOutcome::Unresolved,
        })
    })
    .await;
    run.conclude(body).await
}

/// A database that is filling up (seed: "Database full").
///
/// Diagnosis: database and table sizes, dead rows. Remediation, only for retention rules the
/// caller configured (`config.retention`): delete rows older than the rule's age in bounded
/// batches (the plan says how many rows), then plain `VACUUM (ANALYZE)` of those tables so the
/// space is reusable. Tables with many dead rows get a plain `VACUUM` too. `VACUUM FULL` is
/// never run here: it needs free disk as large as the table — exactly what a full disk lacks —
/// and an exclusive lock; the report says so when it would help.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] without a database; errors of the reads and disruptive steps.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use ops_core::database::RowRetention;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{database_full, RunbookConfig, Targets};
/// use ops_core::testing::{FakeDatabase, FakePlatform};
/// let events: ops_core::TableRef = "public.events".parse()?;
/// let db = Arc::new(FakeDatabase::default().with_old_rows(events.clone(), 120_000));
/// let mut cfg = RunbookConfig::default();
/// cfg.retention.push(RowRetention::new(events, "created_at".parse()?, Duration::from_secs(90 * 86_400)));
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/deployment/api".parse()?).with_database(db.clone()).with_config(cfg);
/// let report = database_full(&RunContext::builder().build(), &t).await?;
/// assert!(report.actions[0].changes[0].contains("120000 rows"));
/// assert!(db.mutations().is_empty());
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "database_full", mode = %ctx.mode()))]
pub async fn database_full(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("database_full", "database").await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let db = t.database()?;
        let limits = &t.config.db;
        let (sizes, tables) = tokio::join!(
            run.read(Step::read_only("database_sizes"), || db.database_sizes()),
            run.read(Step::read_only("table_sizes"), || db.table_sizes(10)),
        );
        let sizes = sizes?;
        let tables = tables?;
        let total: u64 = sizes.iter().map(|s| s.bytes).sum();
        let over = limits.size_warn_bytes > 0 && total >= limits.size_warn_bytes;
        if over {
            run.observe(Signals::default().with_degraded_dependency(format!("database storage ({} MiB)", total >> 20)));
        }
        run.finding(sizes.iter().fold(
            if over { Finding::critical(format!("databases use {} MiB", total >> 20)) } else { Finding::info(format!("databases use {} MiB", total >> 20)) },
            |f, s| f.with_evidence(format!("{}: {} MiB", s.name, s.bytes >> 20)),
        ));
        run.finding(tables.iter().fold(Finding::info("largest tables"), |f, t| {
            f.with_evidence(format!("{}: {} MiB, {} live / {} dead rows", t.table, t.total_bytes >> 20, t.live_rows, t.dead_rows))
        }));

        let mut to_vacuum: Vec<crate::refs::TableRef> = Vec::new();
        for rule in &t.config.retention {
            let n = run.read(Step::read_only("count_old_rows").target(&rule.table), || db.count_older_than(rule)).await?;
            if n == 0 {
                continue;
            }
            let budget = rule.max_rows.map(|m| format!(", at most {m}")).unwrap_or_default();
            let step = Step::disruptive("delete_old_rows")
                .describe(format!("delete rows of {} older than {} days", rule.table, rule.older_than.as_secs() / 86_400))
                .target(&rule.table)
                .change(format!(
                    "delete {n} rows from {} where {} < now() - {}s, in batches of {}{budget}",
                    rule.table,
                    rule.column,
                    rule.older_than.as_secs(),
                    rule.batch_size
                ));
            if let Acted::Done(done) = run.act(step, || db.delete_older_than(rule)).await? {
                run.finding(Finding::info(format!("deleted {} rows from {} in {} batches", done.rows, rule.table, done.batches)));
            }
            to_vacuum.push(rule.table.clone());
        }
        for table in tables.iter().filter(|x| x.dead_ratio() >= limits.dead_ratio) {
            if !to_vacuum.contains(&table.table) {
                run.finding(Finding::warning(format!("{} has {:.0}% dead rows", table.table, table.dead_ratio() * 100.0)));
                to_vacuum.push(table.table.clone());
            }
        }
        for table in to_vacuum {
            let op = Maintenance::Vacuum { analyze: true };
            let step = Step::disruptive("vacuum")
                .describe(format!("VACUUM (ANALYZE) {table}: make freed space reusable without an exclusive lock"))
                .target(&table)
                .change(format!("{} {}", op.sql_verb(), table.quoted()))
                .timeout(Duration::from_hours(1));
            run.act(step, || db.maintain(op, Some(table.clone()))).await?;
        }
        run.finding(Finding::info(
            "VACUUM FULL was not run: it rewrites the table, needs free disk equal to its size and locks it exclusively",
        ));
        Ok(if run.mode() == crate::run::Mode::DryRun && !run.snapshot().actions.is_empty() {
            RunOutcome::Planned
        } else if over {
            RunOutcome::Unresolved
        } else {
            RunOutcome::Healthy
        })
    })
    .await;
    run.conclude(body).await
}

/// Routine maintenance (seed: monthly maintenance and "slow queries"): report slow queries,
/// vacuum and analyze tables with many dead rows, report unused indexes, and turn slow-query
/// logging on when it is off (`ALTER SYSTEM` + reload, approved and journaled).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] without a database; errors of disruptive steps.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::run::RunContext;
/// use ops_core::runbooks::{db_maintenance, Targets};
/// use ops_core::testing::{FakeDatabase, FakePlatform};
/// let db = Arc::new(FakeDatabase::default());
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/deployment/api".parse()?).with_database(db.clone());
/// let report = db_maintenance(&RunContext::builder().build(), &t).await?;
/// assert!(report.actions.iter().any(|a| a.step == "enable_slow_query_log"));
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "db_maintenance", mode = %ctx.mode()))]
pub async fn db_maintenance(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("db_maintenance", "database").await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let db = t.database()?;
        let limits = &t.config.db;
        let (slow, tables, indexes, logging) = tokio::join!(
            run.read(Step::read_only("slow_queries"), || db.slow_queries(SlowQueryOptions::default())),
            run.read(Step::read_only("table_sizes"), || db.table_sizes(50)),
            run.read(Step::read_only("index_usage"), || db.index_usage()),
            run.read(Step::read_only("slow_query_setting"), || db.setting("log_min_duration_statement")),
        );
        match slow {
            Ok(q) if !q.is_empty() => run.finding(q.iter().fold(Finding::info("slowest statements (total time)"), |f, s| {
                f.with_evidence(format!("{:.1} ms mean x{}: {}", s.mean_ms, s.calls, text::evidence(&s.query, 160)))
            })),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                run.finding(Finding::warning("slow-query statistics unavailable").with_evidence(e.chain()));
            }
            Err(e) => return Err(e),
        }
        let unused: Vec<String> =
            indexes?.iter().filter(|i| i.is_unused()).map(|i| format!("{} on {} ({} KiB)", i.index, i.table, i.bytes >> 10)).collect();
        if !unused.is_empty() {
            run.finding(unused.iter().fold(Finding::info(format!("{} unused indexes (never scanned, not unique)", unused.len())), |f, u| {
                f.with_evidence(u.clone())
            }));
        }
        for table in tables?.into_iter().filter(|x| x.dead_ratio() >= limits.dead_ratio) {
            let op = Maintenance::Vacuum { analyze: true };
            let step = Step::disruptive("vacuum")
                .describe(format!("VACUUM (ANALYZE) {}: {:.0}% dead rows", table.table, table.dead_ratio() * 100.0))
                .target(&table.table)
                .change(format!("{} {}", op.sql_verb(), table.table.quoted()))
                .timeout(Duration::from_hours(1));
            run.act(step, || db.maintain(op, Some(table.table.clone()))).await?;
        }
        if logging.as_deref().is_ok_and(|v| v == "-1") {
            let step = Step::disruptive("enable_slow_query_log")
                .describe("log statements slower than the threshold (ALTER SYSTEM, then pg_reload_conf())")
                .target("log_min_duration_statement")
                .change(format!("log_min_duration_statement: -1 -> {}", limits.slow_query_log_ms));
            if let Acted::Done(change) = run.act(step, || db.set_setting("log_min_duration_statement", &limits.slow_query_log_ms)).await?
                && change.needs_restart
            {
                run.finding(Finding::warning(format!("{} only applies after a server restart", change.name)));
            }
        }
        Ok(if run.mode() == crate::run::Mode::DryRun && !run.snapshot().actions.is_empty() { RunOutcome::Planned } else { RunOutcome::Healthy })
    })
    .await;
    run.conclude(body).await
}

/// Stop the application, restore onto it only when the stop completed, and start it again
/// in every path in which the stop ran. Returns what became of the stop and the restore
/// (`None`: not attempted); the first error, after the start was attempted.
async fn stop_restore_start(
    run: &Run<'_>,
    t: &Targets,
    plan: &RecoveryPlan,
    before: &WorkloadStatus,
) -> Result<(Acted<()>, Option<Acted<RestoreOutcome>>), OpsError> {
    let db = t.database()?;
    let stop = Step::disruptive("stop_application")
        .describe(format!(
            "stop {} so nothing writes during the restore; it is started again afterwards, \
             whatever happens",
            t.workload
        ))
        .target(&t.workload)
        .changes_all(
            before
                .instances
                .iter()
                .map(|i| format!("stop instance {}", i.name)),
        )
        .change(format!("start {} again after the restore", t.workload));
    let stopped = run
        .act(stop, || {
            t.platform.stop(&t.workload, StopOptions::default())
        })
        .await;
    // Restore only onto a stopped application (or plan it in a dry run).
    let restored = match &stopped {
        Ok(Acted::Done(()) | Acted::Planned) => {
            let restore = Step::disruptive("restore")
                .describe(format!(
                    "restore {} from {} via a scratch database, then swap",
                    plan.database,
                    plan.backup.display()
                ))
                .target(&plan.database)
                .change(format!(
                    "database {} replaced by the backup's contents (the current one is kept renamed)",
                    plan.database
                ))
                .timeout(Duration::from_hours(2));
            let opts = RestoreOptions::new(plan.backup.clone(), plan.database.clone());
            Some(run.act(restore, || db.restore(&opts)).await)
        }
        Ok(Acted::Denied { .. }) | Err(_) => None,
    };
    // Finally: start the application in every path in which the stop ran (done, or
    // failed part-way), approved with the stop and run even after a cancellation.
    let start = Step::disruptive("start_application")
        .describe(format!("start {} again", t.workload))
        .target(&t.workload)
        .undoing("stop_application");
    let started = if stopped.is_err() || matches!(stopped, Ok(Acted::Done(()) | Acted::Planned)) {
        Some(
            run.act(start, || {
                t.platform.start(&t.workload, StopOptions::default())
            })
            .await,
        )
    } else {
        None
    };
    // The first error wins; the start was attempted before any is returned.
    let stopped = stopped?;
    let restored = restored.transpose()?;
    if let Some(started) = started {
        started?;
    }
    Ok((stopped, restored))
}

/// Restore a database from a verified backup (seed: "database recovery from backup").
///
/// Verify the backup's checksum first (a mismatch stops everything before any change); stop
/// the application (`targets.workload`) so nothing writes mid-restore; restore into a scratch
/// database and swap it in (the old one is kept renamed); start the application; wait for the
/// rollout; verify its health. Every change is approved and journaled. The restore runs only
/// after a completed stop; the start runs in every path in which the stop ran (a failed
/// restore, a cancelled run), approved with the stop ([`Step::undoing`]). If a step fails,
/// the [`RunFailure`]'s report says exactly which changes were made.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] without a database, probe or `config.recovery`;
/// [`ErrorKind::Conflict`] when the checksum does not match; errors of disruptive steps.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::database::BackupInfo;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{database_recovery, RecoveryPlan, RunbookConfig, Targets};
/// use ops_core::testing::{FakeDatabase, FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let db = Arc::new(FakeDatabase::default().with_backup(BackupInfo::new("/backups/app.dump", "ab".repeat(32), 10)));
/// let mut cfg = RunbookConfig::default();
/// cfg.recovery = Some(RecoveryPlan::new("/backups/app.dump", "app".parse()?));
/// let t = Targets::new(Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1))), api)
///     .with_database(db.clone()).with_probe(Arc::new(ScriptedProbe::new("api"))).with_config(cfg);
/// let report = database_recovery(&RunContext::builder().build(), &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Planned);
/// assert_eq!(report.actions.len(), 3); // stop, restore, start
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "database_recovery", target = %t.workload, mode = %ctx.mode()))]
pub async fn database_recovery(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("database_recovery", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // A restore from backup is data loss or corruption: P0 on every seed.
    run.observe(Signals::default().with_data_at_risk(true));
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let db = t.database()?;
        t.probe()?;
        let plan = t.config.recovery.as_ref().ok_or_else(|| {
            OpsError::invalid(
                "targets",
                t.workload.to_string(),
                "database_recovery needs config.recovery (the backup and database)",
            )
        })?;
        let info = run
            .read(
                Step::read_only("verify_backup").target(plan.backup.display()),
                || db.verify_backup(&plan.backup),
            )
            .await?;
        run.finding(Finding::info(format!(
            "backup verified: {} ({} bytes, sha256 {})",
            plan.backup.display(),
            info.bytes,
            info.sha256
        )));
        let before = run
            .read(
                Step::read_only("workload_status").target(&t.workload),
                || t.platform.workload(&t.workload),
            )
            .await?;

        let (stopped, restored) = stop_restore_start(&run, t, plan, &before).await?;
        match restored {
            None => {
                let why = match stopped {
                    Acted::Denied { reason } => reason,
                    _ => "the application was not stopped".to_owned(),
                };
                run.summary(format!(
                    "Nothing was restored: stopping {} was denied ({why}).",
                    t.workload
                ));
                return Ok(RunOutcome::Unresolved);
            }
            Some(Acted::Planned) => return Ok(RunOutcome::Planned),
            Some(Acted::Denied { .. }) => return Ok(RunOutcome::Unresolved),
            Some(Acted::Done(outcome)) => {
                let kept = outcome
                    .previous_renamed_to
                    .map(|p| format!("; the previous database is kept as {p}"))
                    .unwrap_or_default();
                run.finding(Finding::info(format!(
                    "restored {} (sha256 {}){kept}",
                    outcome.database, outcome.sha256
                )));
            }
        }
        if wait_rollout(&run, t, "wait_started").await?
            && verify_healthy(&run, t, "verify_health").await?
        {
            Ok(RunOutcome::Recovered)
        } else {
            Ok(RunOutcome::Unresolved)
        }
    })
    .await;
    run.conclude(body).await
}
