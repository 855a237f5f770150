//! Metric-driven runbooks: a high 5xx rate, and memory exhaustion (OOM).

use super::Targets;
use super::autoscale::ScaledOut;
use super::restart::restart_verify_rollback;
use super::verify::{rollback_and_verify, verify_healthy, wait_rollout};
use crate::error::OpsError;
use crate::incident::{Classification, Signals};
use crate::metrics::MetricQuery;
use crate::notify::Notification;
use crate::platform::{LogFilter, LogOptions, RestartOptions};
use crate::run::{Acted, Finding, Report, Run, RunContext, RunFailure, RunOutcome, Step};
use crate::text;

/// A high rate of 5xx responses (seed: "High error rate").
///
/// Reads the error rate (`sum(rate(http_requests_total{status=~"5.."}[w])) / sum(rate(…[w]))`
/// for `config.metrics_job`) and classifies it with the context's thresholds (`RunContext::incident_policy`, the seeds' 1 / 5 /
/// 10 % lines). Below the lowest line: nothing to do. Otherwise it reads the workload, its
/// error logs and its revisions: when the current revision is younger than
/// `config.recent_deploy` and a previous one exists, the deploy is the suspect and it rolls
/// back; when instances are unready it restarts (and rolls back if that does not help);
/// otherwise it reports the evidence and leaves the decision to a human (a restart does not
/// fix a failing dependency or a bad request mix).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a metrics source or probe; the metric query
/// failing; errors of disruptive steps.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::metrics::{MetricQuery, MetricWindow};
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{high_error_rate, Targets};
/// use ops_core::testing::{FakeMetrics, FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let metrics = FakeMetrics::default().with_scalar(&MetricQuery::error_rate("api", &MetricWindow::minutes(5)), 0.002);
/// let t = Targets::new(Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 2))), api)
///     .with_metrics(Arc::new(metrics)).with_probe(Arc::new(ScriptedProbe::new("api")));
/// assert_eq!(high_error_rate(&RunContext::builder().build(), &t).await?.outcome, RunOutcome::Healthy);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "high_error_rate", target = %t.workload, mode = %ctx.mode()))]
pub async fn high_error_rate(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("high_error_rate", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let metrics = t.metrics()?;
        t.probe()?;
        let cfg = &t.config;
        let query = MetricQuery::error_rate(&cfg.metrics_job, &cfg.metrics_window);
        let result = run.read(Step::read_only("error_rate").target(&query), || metrics.query(&query, None)).await?;
        let Some(rate) = result.max_value() else {
            run.finding(Finding::warning(format!("no error-rate data for job {:?} (no traffic, or the job label is wrong)", cfg.metrics_job)));
            return Ok(RunOutcome::Unresolved);
        };
        let classification = run.observe(Signals::default().with_error_rate(rate));
        if classification.reasons.is_empty() {
            let low = ctx.incident_policy().thresholds.error_rate_low;
            run.finding(Finding::info(format!("error rate {:.2}% is below {:.0}%", rate * 100.0, low * 100.0)));
            return Ok(RunOutcome::Healthy);
        }
        open_incident(&run, "high_error_rate", format!("{:.1}% of requests to {} fail", rate * 100.0, t.workload), &classification).await;
        run.finding(classification.reasons.iter().fold(Finding::critical(format!("error rate {:.1}%", rate * 100.0)), |f, r| f.with_evidence(r.clone())));

        let logs = LogOptions::default().with_tail(cfg.log_tail).with_since(cfg.log_since).with_filter(LogFilter::errors());
        let (status, errors, revisions) = tokio::join!(
            run.read(Step::read_only("workload_status"), || t.platform.workload(&t.workload)),
            run.read(Step::read_only("error_logs"), || t.platform.logs(&t.workload, logs.clone())),
            run.read(Step::read_only("revisions"), || async {
                // A platform without history has no revisions, which is not a failure here.
                match t.platform.revisions(&t.workload).await {
                    Err(e) if e.kind() == crate::ErrorKind::Unsupported => Ok(Vec::new()),
                    other => other,
                }
            }),
        );
        let status = status?;
        if let Ok(lines) = &errors
            && let Some(first) = lines.last()
        {
            run.finding(Finding::warning(format!("{} error lines in the logs", lines.len())).with_evidence(format!("{}: {}", first.instance, text::evidence(&first.text, 300))));
        }
        // One read serves both: revisions come newest first, the current one flagged.
        // A history that could not be read is unknown, not empty: say so.
        let revisions = revisions.unwrap_or_else(|e| {
            run.finding(Finding::warning("deploy history unknown: the revisions could not be read").with_evidence(e.chain()));
            Vec::new()
        });
        let current = revisions.iter().find(|r| r.current).cloned();
        let previous = revisions.into_iter().find(|r| !r.current);
        let now = ctx.clock().now();
        let recent = current.as_ref().and_then(|c| c.created_at).is_some_and(|at| {
            now.duration_since(at).unsigned_abs() < cfg.recent_deploy
        });
        if let (true, Some(prev)) = (recent, &previous) {
            run.finding(Finding::critical(format!(
                "revision {} was deployed less than {} min ago: the deploy is the prime suspect",
                current.as_ref().map_or(0, |c| c.number),
                cfg.recent_deploy.as_secs() / 60
            )));
            return rollback_and_verify(&run, t, prev).await;
        }
        if !status.is_healthy() {
            return restart_verify_rollback(&run, t, &status).await;
        }
        run.summary(format!(
            "{:.1}% of requests fail while every instance is ready and no recent deploy is known: check dependencies and upstream providers (no automatic action).",
            rate * 100.0
        ));
        Ok(RunOutcome::Unresolved)
    })
    .await;
    run.conclude(body).await
}

/// Memory exhaustion / OOM kills (seed: "Out of memory / memory leak").
///
/// Reads the workload (OOMKilled terminations) and per-instance memory against its limit.
/// Instances at or above `config.memory_warn` are findings.
///
/// When instances were OOM-killed at their limit, it raises the memory limit of every
/// container that has one by `config.oom.step` (e.g. `x1.5` or `+256Mi`), never above
/// `config.oom.ceiling` (approved, journaled; the plan shows each container's limit before
/// and after); Kubernetes rolls the change out, Compose updates the containers in place and
/// they are restarted; then it waits and verifies. No raise when no container has a limit, when
/// every instance still uses less than `config.oom.far_below` of its limit (the kills came
/// from memory pressure elsewhere), or when no ceiling is configured (the default): then, and
/// when instances are only above the warning line, a rolling restart frees memory for now. At
/// the ceiling it says so, raises the severity to P0 and notifies, then restarts. The report
/// always says that a restart only buys time: raise the limit or find the leak.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a probe; errors of disruptive steps.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{oom, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let t = Targets::new(Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 2))), api)
///     .with_probe(Arc::new(ScriptedProbe::new("api")));
/// assert_eq!(oom(&RunContext::builder().build(), &t).await?.outcome, RunOutcome::Healthy);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "oom", target = %t.workload, mode = %ctx.mode()))]
pub async fn oom(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("oom", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        t.probe()?;
        let (status, usage) = tokio::join!(
            run.read(Step::read_only("workload_status"), || t.platform.workload(&t.workload)),
            run.read(Step::read_only("resource_usage"), || t.platform.resource_usage(&t.workload)),
        );
        let status = status?;
        let killed: Vec<String> = status.oom_killed_instances().map(|i| format!("{}: OOMKilled, {} restarts", i.name, i.restarts)).collect();
        let usage = usage.unwrap_or_else(|e| {
            run.finding(Finding::warning("memory usage unavailable").with_evidence(e.chain()));
            Vec::new()
        });
        let high: Vec<String> = usage
            .iter()
            .filter_map(|u| u.memory_ratio().filter(|r| *r >= t.config.memory_warn).map(|r| format!("{}: {:.0}% of its memory limit", u.instance, r * 100.0)))
            .collect();
        if killed.is_empty() && high.is_empty() {
            run.finding(Finding::info(format!("no instance of {} is near its memory limit or was OOM-killed", t.workload)));
            return Ok(RunOutcome::Healthy);
        }
        // OOM kills take instances down: a critical feature down (P1 by default). Memory near
        // the limit alone fires no rule (the seeds: "investigate"), so it sets no severity.
        if !killed.is_empty() {
            run.observe(Signals::default().with_critical_feature_down(true));
        }
        let evidence = killed.iter().chain(high.iter());
        run.finding(evidence.fold(Finding::critical("memory exhaustion"), |f, e| f.with_evidence(e.clone())).with_evidence(
            "a restart only buys time: raise the memory limit or find the leak (heap profile, metrics over days)",
        ));
        // OOM-killed at the limit → raise it (up to the ceiling).
        if !killed.is_empty()
            && let Some(outcome) = super::limits::raise_memory_limit(&run, t, &status, &usage).await?
        {
            return Ok(outcome);
        }
        let restart = Step::disruptive("restart")
            .describe(format!("rolling restart of {} to free memory", t.workload))
            .target(&t.workload)
            .changes_all(status.instances.iter().map(|i| format!("replace instance {}", i.name)));
        match run.act(restart, || t.platform.rollout_restart(&t.workload, RestartOptions::default())).await? {
            Acted::Done(()) => {}
            Acted::Planned => return Ok(RunOutcome::Planned),
            Acted::Denied { .. } => return Ok(RunOutcome::Unresolved),
        }
        Ok(if wait_rollout(&run, t, "wait_rolled_out").await? && verify_healthy(&run, t, "verify_health").await? {
            RunOutcome::Recovered
        } else {
            RunOutcome::Unresolved
        })
    })
    .await;
    run.conclude(body).await
}

/// The instances' resource usage when it was read and is not empty; otherwise a finding that
/// says CPU usage is unknown (never a made-up zero) and `None`.
/// Mean CPU per instance, against the limits when every instance has one.
struct CpuLoad {
    /// A fraction of the limit (`of_limit`) or cores.
    mean: f64,
    of_limit: bool,
}

impl CpuLoad {
    #[allow(clippy::cast_precision_loss, reason = "a mean")]
    fn of(usage: &[crate::platform::ResourceUsage]) -> Self {
        let n = usage.len().max(1) as f64;
        let ratios: Option<Vec<f64>> = usage
            .iter()
            .map(crate::platform::ResourceUsage::cpu_ratio)
            .collect();
        match ratios {
            Some(r) if !r.is_empty() => Self {
                mean: r.iter().sum::<f64>() / n,
                of_limit: true,
            },
            _ => Self {
                mean: usage.iter().map(|u| u.cpu_cores).sum::<f64>() / n,
                of_limit: false,
            },
        }
    }
}

impl std::fmt::Display for CpuLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.of_limit {
            write!(f, "{:.0}% of the CPU limit per instance", self.mean * 100.0)
        } else {
            write!(
                f,
                "{:.2} cores per instance (no CPU limit on every instance: compared in cores)",
                self.mean
            )
        }
    }
}

fn known_usage(
    run: &Run<'_>,
    usage: Result<Vec<crate::platform::ResourceUsage>, OpsError>,
) -> Option<Vec<crate::platform::ResourceUsage>> {
    let evidence = match usage {
        Ok(usage) if !usage.is_empty() => return Some(usage),
        Ok(_) => "resource_usage returned no instances".to_owned(),
        Err(e) => e.chain(),
    };
    run.finding(
        Finding::warning("CPU usage unknown: it could not be read").with_evidence(evidence),
    );
    run.summary("Latency is high and CPU usage is unknown, so no scale-out was decided: check the instances' CPU by hand.");
    None
}

/// High latency (seed: "slow response times"): the p95 from the metrics source
/// (`histogram_quantile(0.95, …http_request_duration_seconds_bucket…)`) classified with
/// `config.thresholds` (the seeds' 2 / 3 / 5 s lines). Above the lowest line it looks for the
/// cause in parallel: CPU per instance, the slowest statements (`pg_stat_statements`) and the
/// cache hit ratio. When the instances are CPU-bound (mean at or above `config.cpu_scale_out`
/// cores) it scales out by one replica, up to `config.max_replicas` (approved, journaled) —
/// unless a horizontal autoscaler owns the workload: then it raises the autoscaler's minimum to
/// one more than the replicas running (never above the autoscaler's maximum, which is then
/// reported), since scaling the workload itself would be undone by the autoscaler. Otherwise it
/// reports the evidence (a slow query or a cold cache is not fixed by more pods).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a metrics source; the metric query failing;
/// errors of the scale step.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::metrics::{MetricQuery, MetricWindow};
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{high_latency, Targets};
/// use ops_core::testing::{FakeMetrics, FakePlatform};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let metrics = FakeMetrics::default().with_scalar(&MetricQuery::p95_latency("api", &MetricWindow::minutes(5)), 0.25);
/// let t = Targets::new(Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 2))), api)
///     .with_metrics(Arc::new(metrics));
/// assert_eq!(high_latency(&RunContext::builder().build(), &t).await?.outcome, RunOutcome::Healthy);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "high_latency", target = %t.workload, mode = %ctx.mode()))]
pub async fn high_latency(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("high_latency", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let metrics = t.metrics()?;
        let cfg = &t.config;
        let query = MetricQuery::p95_latency(&cfg.metrics_job, &cfg.metrics_window);
        let result = run.read(Step::read_only("p95_latency").target(&query), || metrics.query(&query, None)).await?;
        let Some(p95) = result.max_value().filter(|v| *v >= 0.0) else {
            run.finding(Finding::warning(format!("no latency data for job {:?}", cfg.metrics_job)));
            return Ok(RunOutcome::Unresolved);
        };
        let p95 = std::time::Duration::from_secs_f64(p95.min(86_400.0));
        let classification = run.observe(Signals::default().with_p95_latency(p95));
        if classification.reasons.is_empty() {
            let low = ctx.incident_policy().thresholds.p95_low;
            run.finding(Finding::info(format!("p95 {} ms is below {} ms", p95.as_millis(), low.as_millis())));
            return Ok(RunOutcome::Healthy);
        }
        open_incident(&run, "high_latency", format!("{} answers slowly (p95 {} ms)", t.workload, p95.as_millis()), &classification).await;
        run.finding(classification.reasons.iter().fold(Finding::critical(format!("p95 latency {} ms", p95.as_millis())), |f, r| f.with_evidence(r.clone())));

        let (status, usage, slow, cache) = tokio::join!(
            run.read(Step::read_only("workload_status"), || t.platform.workload(&t.workload)),
            run.read(Step::read_only("resource_usage"), || t.platform.resource_usage(&t.workload)),
            async {
                match &t.database {
                    Some(db) => Some(run.read(Step::read_only("slow_queries"), || db.slow_queries(crate::database::SlowQueryOptions::default())).await),
                    None => None,
                }
            },
            async {
                match &t.cache {
                    Some(c) => Some(run.read(Step::read_only("cache_info"), || c.info()).await),
                    None => None,
                }
            },
        );
        let status = status?;
        if let Some(Ok(queries)) = slow
            && let Some(worst) = queries.iter().max_by(|a, b| a.mean_ms.total_cmp(&b.mean_ms))
        {
            run.finding(Finding::warning(format!("slowest statement: {:.0} ms mean over {} calls", worst.mean_ms, worst.calls)).with_evidence(text::evidence(&worst.query, 200)));
        }
        if let Some(Ok(info)) = cache
            && let Some(ratio) = info.hit_ratio()
            && ratio < cfg.cache.min_hit_ratio
        {
            run.finding(Finding::warning(format!("cache hit ratio {:.1}% (below {:.0}%): requests fall through to the database", ratio * 100.0, cfg.cache.min_hit_ratio * 100.0)));
        }
        // A CPU figure that could not be read is unknown, never zero: no decision rests on it.
        let Some(usage) = known_usage(&run, usage) else {
            return Ok(RunOutcome::Unresolved);
        };
        let load = CpuLoad::of(&usage);
        if load.mean < cfg.cpu_scale_out {
            run.finding(Finding::info(format!("mean CPU {load}: not CPU-bound, no scale-out")));
            run.summary("Latency is high but the instances are not CPU-bound: look at the slow statements, the cache and the upstreams above.");
            return Ok(RunOutcome::Unresolved);
        }
        // An autoscaler owns the replica count → raise its minimum.
        let scaled = super::autoscale::scale_out_by_one(&run, t, status.desired, &load.to_string()).await?;
        Ok(match scaled {
            ScaledOut::Done => {
                if !wait_rollout(&run, t, "wait_scaled").await? {
                    return Ok(RunOutcome::Unresolved);
                }
                // The p95 is a rate over the window: it only says "recovered" once it is back.
                let after = run.read(Step::read_only("p95_after"), || metrics.query(&query, None)).await?;
                if after.max_value().is_some_and(|v| v < run.ctx().incident_policy().thresholds.p95_low.as_secs_f64()) {
                    RunOutcome::Recovered
                } else {
                    run.summary(format!(
                        "Scaled out; the p95 is measured over {}: run this again then to confirm it is back under {} ms.",
                        cfg.metrics_window,
                        run.ctx().incident_policy().thresholds.p95_low.as_millis()
                    ));
                    RunOutcome::Unresolved
                }
            }
            ScaledOut::Planned => RunOutcome::Planned,
            ScaledOut::Stopped(outcome) => outcome,
        })
    })
    .await;
    run.conclude(body).await
}

/// The first status update of a metric incident (Investigating: the cause is not known yet),
/// with the rules that fired; the run sends the later ones as its status changes.
async fn open_incident(
    run: &Run<'_>,
    runbook: &str,
    title: String,
    classification: &Classification,
) {
    let body = classification
        .reasons
        .iter()
        .map(|r| format!("- {}", text::markdown_inline(r)))
        .collect::<Vec<_>>()
        .join("\n");
    let key = format!("{runbook}:{}", run.snapshot().target);
    run.notify(Notification::new(classification.severity, title, body).with_dedup_key(key))
        .await;
}
