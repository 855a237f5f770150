//! `api_down`: the seed runbook "API down / health check failing", as a typed procedure.

use std::collections::BTreeMap;

use super::Targets;
use super::restart::restart_verify_rollback;
use super::verify::rollback_and_verify;
use crate::error::OpsError;
use crate::incident::{Severity, Signals};
use crate::notify::Notification;
use crate::platform::{
    EventOptions, LogFilter, LogLine, LogOptions, PlatformExt as _, Revision, WorkloadStatus,
};
use crate::probe::{Outcome, ProbeResult};
use crate::run::{Finding, Mode, Report, Run, RunContext, RunFailure, RunOutcome, Step};
use crate::text;

/// What the diagnosis found, and what it means.
#[derive(Debug)]
struct Evidence {
    health: Result<ProbeResult, OpsError>,
    status: WorkloadStatus,
    errors: Vec<LogLine>,
    database: Option<Result<(), OpsError>>,
    cache: Option<Result<(), OpsError>>,
}

/// The remediation the evidence calls for.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Everything answers: nothing to do.
    Healthy,
    /// A dependency is down: restarting the API will not help.
    DependencyDown(Vec<&'static str>),
    /// The image cannot be pulled (a restart pulls the same image) or the instances crash
    /// loop, and a previous revision exists: roll back to it.
    RollBack(Revision),
    /// Restart, verify, and roll back if that does not help.
    Restart,
}

/// API down: find out why the service fails its health check, fix what can be fixed safely,
/// verify, notify and report.
///
/// Diagnosis (read-only, in parallel): the health probe, the workload's state (including
/// `CrashLoopBackOff`, image pull failures and `OOMKilled` terminations), error lines from the
/// logs of **every** instance (not one pod as `kubectl logs deployment/x` would), warning
/// events, and a ping of the database and cache when given.
///
/// Decision:
/// - probe up and workload healthy: nothing to do ([`RunOutcome::Healthy`]);
/// - database or cache unreachable: the API is a victim; no restart (it would not help and
///   adds load), severity P0, [`RunOutcome::Unresolved`] with the dependency named;
/// - image pull failure: roll back to the previous revision (a restart pulls the same image);
/// - crash loop with a previous revision: roll back;
/// - otherwise: rolling restart, wait, verify, and roll back when that does not recover it.
///
/// It notifies when it finds a problem and again with the result (resolved or not); in dry
/// run both notifications are planned actions, like every change.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a probe; the workload status read failing (the
/// platform is unreachable: nothing can be decided); errors of disruptive steps.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{ActionStatus, RunContext, RunOutcome};
/// use ops_core::runbooks::{api_down, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let platform = Arc::new(FakePlatform::default().with_workload(WorkloadStatus::crash_looping(api.clone(), 2)));
/// let probe = Arc::new(ScriptedProbe::tracking("api-health", Arc::clone(&platform), api.clone()));
/// let ctx = RunContext::builder().build(); // dry run
/// let report = api_down(&ctx, &Targets::new(platform.clone(), api).with_probe(probe)).await?;
/// assert_eq!(report.outcome, RunOutcome::Planned);
/// assert!(report.actions_with(ActionStatus::Planned).any(|a| a.step == "restart"));
/// assert!(platform.mutations().is_empty());
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "api_down", target = %t.workload, mode = %ctx.mode()))]
pub async fn api_down(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("api_down", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        t.probe()?;
        let evidence = diagnose(&run, t).await?;
        let decision = decide(&run, t, &evidence).await?;
        remediate(&run, t, &evidence, decision).await
    })
    .await;
    run.conclude(body).await
}

async fn diagnose(run: &Run<'_>, t: &Targets) -> Result<Evidence, OpsError> {
    let probe = t.probe()?;
    let cfg = &t.config;
    let logs_opts = LogOptions::default()
        .with_tail(cfg.log_tail)
        .with_since(cfg.log_since)
        .with_timestamps(true)
        .with_filter(LogFilter::errors());
    let events_opts = EventOptions {
        warnings_only: true,
        limit: Some(20),
        ..EventOptions::default()
    };
    let (health, status, errors, events, database, cache) = tokio::join!(
        run.read(Step::read_only("probe_health").target(probe.name()), || {
            probe.check()
        }),
        run.read(
            Step::read_only("workload_status").target(&t.workload),
            || t.platform.workload(&t.workload)
        ),
        run.read(
            Step::read_only("error_logs")
                .describe("error lines from every instance")
                .target(&t.workload),
            || { t.platform.logs(&t.workload, logs_opts.clone()) }
        ),
        run.read(
            Step::read_only("warning_events").target(&t.workload),
            || t.platform.events(&t.workload, events_opts.clone())
        ),
        async {
            match &t.database {
                Some(db) => Some(
                    run.read(Step::read_only("database_ping"), || db.ping())
                        .await
                        .map(|_| ()),
                ),
                None => None,
            }
        },
        async {
            match &t.cache {
                Some(cache) => Some(
                    run.read(Step::read_only("cache_ping"), || cache.ping())
                        .await
                        .map(|_| ()),
                ),
                None => None,
            }
        },
    );
    // Without the workload's state nothing can be decided safely.
    let status = status?;
    let errors = errors.unwrap_or_else(|e| {
        run.finding(Finding::warning("could not read logs").with_evidence(e.chain()));
        Vec::new()
    });
    if let Ok(events) = events
        && !events.is_empty()
    {
        let mut f = Finding::info(format!("{} warning events", events.len()));
        for e in events.iter().rev().take(5) {
            f = f.with_evidence(format!(
                "{} {}: {} (x{})",
                e.reason,
                e.object,
                text::evidence(&e.message, 300),
                e.count
            ));
        }
        run.finding(f);
    }
    Ok(Evidence {
        health,
        status,
        errors,
        database,
        cache,
    })
}

async fn decide(run: &Run<'_>, t: &Targets, ev: &Evidence) -> Result<Decision, OpsError> {
    let s = &ev.status;
    let health_up = matches!(&ev.health, Ok(r) if r.outcome == Outcome::Up);
    report_health(run, &ev.health);
    run.finding(Finding::info(format!(
        "{}: {}/{} ready, {} available, {} restarts",
        t.workload,
        s.ready,
        s.desired,
        s.available,
        s.total_restarts()
    )));
    let crash: Vec<String> = s
        .crash_looping_instances()
        .map(|i| format!("{}: CrashLoopBackOff, {} restarts", i.name, i.restarts))
        .collect();
    if !crash.is_empty() {
        run.finding(crash.iter().fold(
            Finding::critical(format!("{} instance(s) in CrashLoopBackOff", crash.len())),
            |f, c| f.with_evidence(c.clone()),
        ));
    }
    let oom: Vec<String> = s
        .oom_killed_instances()
        .map(|i| format!("{}: OOMKilled (exit 137)", i.name))
        .collect();
    if !oom.is_empty() {
        run.finding(
            oom.iter()
                .fold(Finding::critical(format!("{} instance(s) killed for memory (OOMKilled)", oom.len())), |f, c| f.with_evidence(c.clone()))
                .with_evidence("a restart frees memory for now; raise the memory limit or fix the leak (see the oom runbook)"),
        );
    }
    let image = s
        .instances
        .iter()
        .filter_map(|i| {
            i.waiting
                .as_ref()
                .filter(|w| w.is_image_problem())
                .map(|w| format!("{}: {w}", i.name))
        })
        .collect::<Vec<_>>();
    if !image.is_empty() {
        run.finding(
            image
                .iter()
                .fold(Finding::critical("the image cannot be pulled"), |f, c| {
                    f.with_evidence(c.clone())
                }),
        );
    }
    summarize_logs(run, t, &ev.errors);

    let mut down_deps = Vec::new();
    for (name, result) in [("database", &ev.database), ("cache", &ev.cache)] {
        if let Some(Err(e)) = result {
            run.finding(Finding::critical(format!("{name} unreachable")).with_evidence(e.chain()));
            down_deps.push(name);
        }
    }

    // Signals: no instance ready or a dependency down is the service down (P0 by default);
    // a failing health check or unready instances, a critical feature down (P1).
    if s.ready == 0 || !down_deps.is_empty() {
        run.observe(Signals::default().with_service_down(true));
    } else if !health_up || !s.is_healthy() {
        run.observe(Signals::default().with_critical_feature_down(true));
    }

    let previous = if !crash.is_empty() || !image.is_empty() {
        run.read(
            Step::read_only("previous_revision").target(&t.workload),
            || t.platform.previous_revision(&t.workload),
        )
        .await?
    } else {
        None
    };
    Ok(if !down_deps.is_empty() {
        Decision::DependencyDown(down_deps)
    } else if health_up && s.is_healthy() {
        Decision::Healthy
    } else if let Some(previous) = previous {
        // Only read when there is a crash loop or an image problem.
        Decision::RollBack(previous)
    } else {
        Decision::Restart
    })
}

/// One last look, so the report says how the workload stands now: one status read and one
/// probe, never a wait. Everything that could be waited for was waited for by the step that
/// acted, and after a denied or refused restart there is nothing to wait for: a wait there
/// kept the engineer who answered "no" for the rollout and verify windows (minutes).
async fn final_look(run: &Run<'_>, t: &Targets) {
    let status = run
        .read(Step::read_only("final_status").target(&t.workload), || {
            t.platform.workload(&t.workload)
        })
        .await;
    if let Ok(s) = status {
        run.finding(Finding::info(format!(
            "{} now: {}/{} ready, {} available",
            t.workload, s.ready, s.desired, s.available
        )));
    }
    if let Ok(probe) = t.probe() {
        let health = run
            .read(Step::read_only("final_health").target(probe.name()), || {
                probe.check()
            })
            .await;
        report_health(run, &health);
    }
}

fn report_health(run: &Run<'_>, health: &Result<ProbeResult, OpsError>) {
    match health {
        Ok(r) if r.outcome != Outcome::Up => {
            let mut f = Finding::critical(format!("health check {}: {}", r.outcome, r.detail));
            for o in r.failed() {
                f = f.with_evidence(format!("{} = {}", o.name, o.value));
            }
            run.finding(f);
        }
        Err(e) => {
            run.finding(Finding::critical("health check could not run").with_evidence(e.chain()));
        }
        Ok(_) => {}
    }
}

/// Group error lines by message (ignoring digits, so ids and timestamps collapse) and quote the
/// most frequent ones as evidence.
fn summarize_logs(run: &Run<'_>, t: &Targets, lines: &[LogLine]) {
    if lines.is_empty() {
        return;
    }
    let mut groups: BTreeMap<String, (usize, &LogLine)> = BTreeMap::new();
    for line in lines {
        let key: String = line
            .text
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(160)
            .collect();
        groups.entry(key).or_insert((0, line)).0 += 1;
    }
    let mut ranked: Vec<(usize, &LogLine)> = groups.into_values().collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
    let instances: std::collections::BTreeSet<&str> =
        lines.iter().map(|l| l.instance.as_str()).collect();
    let mut f = Finding::warning(format!(
        "{} error lines in the logs of {} instance(s)",
        lines.len(),
        instances.len()
    ));
    for (count, line) in ranked.into_iter().take(t.config.log_evidence) {
        f = f.with_evidence(format!(
            "{} (x{count}) {}",
            line.instance,
            text::evidence(&line.text, 300)
        ));
    }
    run.finding(f);
}

async fn remediate(
    run: &Run<'_>,
    t: &Targets,
    ev: &Evidence,
    decision: Decision,
) -> Result<RunOutcome, OpsError> {
    let severity = run.severity().unwrap_or(Severity::Low);
    let title = format!("{} is down", t.workload);
    if decision == Decision::Healthy {
        run.summary(format!(
            "{} answers its health check and every instance is ready; nothing to do.",
            t.workload
        ));
        return Ok(RunOutcome::Healthy);
    }
    run.notify(
        Notification::new(severity, title, findings_markdown(run))
            .with_dedup_key(format!("api_down:{}", t.workload)),
    )
    .await;

    let outcome = match &decision {
        Decision::DependencyDown(deps) => {
            let reason = format!(
                "the {} is unreachable; restarting {} would not help and would add reconnect load (run the {} runbook)",
                deps.join(" and "),
                t.workload,
                deps.iter()
                    .map(|d| if *d == "database" {
                        "db_connections"
                    } else {
                        "cache_failure"
                    })
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
            run.skip(
                Step::disruptive("restart").describe(format!("rolling restart of {}", t.workload)),
                reason.clone(),
            )
            .await;
            run.summary(format!(
                "{} fails because its {} is down.",
                t.workload,
                deps.join(" and ")
            ));
            RunOutcome::Unresolved
        }
        Decision::RollBack(previous) => rollback_and_verify(run, t, previous).await?,
        Decision::Restart => restart_verify_rollback(run, t, &ev.status).await?,
        Decision::Healthy => RunOutcome::Healthy,
    };

    if run.mode() == Mode::Execute
        && outcome == RunOutcome::Unresolved
        && matches!(decision, Decision::Restart)
    {
        final_look(run, t).await;
    }

    let summary = match outcome {
        RunOutcome::Recovered => format!("{} recovered and passes its health check.", t.workload),
        RunOutcome::Planned => format!(
            "Dry run: {} is down; the actions below would be taken.",
            t.workload
        ),
        _ => format!("{} is still down and needs a human.", t.workload),
    };
    if outcome != RunOutcome::Unresolved || !matches!(decision, Decision::DependencyDown(_)) {
        run.summary(summary);
    }
    // The run sends the closing status update (Resolved, or still Investigating) itself.
    Ok(outcome)
}

pub(super) fn findings_markdown(run: &Run<'_>) -> String {
    run.snapshot()
        .findings
        .iter()
        .map(|f| format!("- {}", text::markdown_inline(&f.title)))
        .collect::<Vec<_>>()
        .join("\n")
}
