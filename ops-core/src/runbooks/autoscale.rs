//! Scaling out where a horizontal autoscaler owns the replica count: raise its minimum (never
//! above its maximum) instead of scaling the workload, which the autoscaler would undo; and
//! holding it at a count for a maintenance window by pinning both bounds, then restoring them.

use super::Targets;
use crate::error::{ErrorKind, OpsError};
use crate::platform::ScaleOptions;
use crate::platform::{Autoscaler, AutoscalerChange, AutoscalerSpec};
use crate::run::{Acted, Finding, Run, RunOutcome, Step};

/// How a scale-out step ended.
#[derive(Debug)]
pub(crate) enum ScaledOut {
    /// It ran: wait and verify.
    Done,
    /// Dry run: planned.
    Planned,
    /// Nothing to run, or denied: the run ends with this outcome.
    Stopped(RunOutcome),
}

/// The autoscaler that targets the workload; `None` when there is none or the platform has
/// no autoscaling (Compose).
pub(crate) async fn owning_autoscaler(
    run: &Run<'_>,
    t: &Targets,
) -> Result<Option<Autoscaler>, OpsError> {
    if !t.platform.capabilities().autoscaling {
        return Ok(None);
    }
    run.read(Step::read_only("autoscaler"), || async {
        match t.platform.autoscaler(&t.workload).await {
            Err(e) if e.kind() == ErrorKind::Unsupported => Ok(None),
            other => other,
        }
    })
    .await
}

/// Raise `hpa`'s minimum to one more than the replicas running now (`current`), never above
/// its maximum; the act changes it only if the minimum is still the one the plan saw.
pub(crate) async fn raise_min(
    run: &Run<'_>,
    t: &Targets,
    hpa: &Autoscaler,
    current: u32,
) -> Result<ScaledOut, OpsError> {
    let to = (current.max(hpa.min_replicas) + 1).min(hpa.max_replicas);
    if to <= hpa.min_replicas || to <= current {
        run.finding(Finding::warning(format!(
            "autoscaler {hpa} owns {} and is at its maximum: raise its maxReplicas to scale further",
            t.workload
        )));
        run.summary(format!(
            "Latency is high and CPU-bound, and the autoscaler of {} is at its maximum of {} replicas: raise its maximum or find what makes requests expensive.",
            t.workload, hpa.max_replicas
        ));
        return Ok(ScaledOut::Stopped(RunOutcome::Unresolved));
    }
    run.finding(Finding::info(format!(
        "autoscaler {hpa} owns the replica count: its minimum is raised instead of scaling {} (which it would undo)",
        t.workload
    )));
    let spec = AutoscalerSpec::from_autoscaler(hpa)?
        .with_min(to)?
        .expecting_min(hpa.min_replicas);
    let step = Step::disruptive("raise_autoscaler_min")
        .describe(format!(
            "raise the minimum of autoscaler {} of {} so it runs one more replica",
            hpa.name, t.workload
        ))
        .target(&t.workload)
        .change(format!(
            "{}: autoscaler {} minReplicas {} -> {to} (maxReplicas {}, {current} running)",
            t.workload, hpa.name, hpa.min_replicas, hpa.max_replicas
        ));
    Ok(
        match run
            .act(step, || t.platform.set_autoscaler(&t.workload, spec))
            .await?
        {
            Acted::Done(change) => {
                run.finding(Finding::info(format!("autoscaler changed: {change}")));
                ScaledOut::Done
            }
            Acted::Planned => ScaledOut::Planned,
            Acted::Denied { .. } => ScaledOut::Stopped(RunOutcome::Unresolved),
        },
    )
}

/// One more replica for CPU-bound instances (`load` describes the CPU): through the owning
/// autoscaler's minimum when there is one, else by scaling the workload from `current`, up to
/// `config.max_replicas`.
pub(crate) async fn scale_out_by_one(
    run: &Run<'_>,
    t: &Targets,
    current: u32,
    load: &str,
) -> Result<ScaledOut, OpsError> {
    if let Some(hpa) = owning_autoscaler(run, t).await? {
        run.finding(Finding::warning(format!("mean CPU {load}: CPU-bound")));
        return raise_min(run, t, &hpa, current).await;
    }
    let max = t.config.max_replicas;
    let to = (current + 1).min(max);
    if to <= current {
        run.finding(Finding::warning(format!(
            "already at the maximum of {max} replicas"
        )));
        return Ok(ScaledOut::Stopped(RunOutcome::Unresolved));
    }
    run.finding(Finding::warning(format!("mean CPU {load}: CPU-bound")));
    let step = Step::disruptive("scale_out")
        .describe(format!("scale {} out by one replica", t.workload))
        .target(&t.workload)
        .change(format!("{}: replicas {current} -> {to}", t.workload));
    let scale = || {
        t.platform
            .scale(&t.workload, to, ScaleOptions::default().expecting(current))
    };
    Ok(match run.act(step, scale).await? {
        Acted::Done(change) => {
            run.finding(Finding::info(format!(
                "scaled from {} to {} replicas",
                change.from, change.to
            )));
            ScaledOut::Done
        }
        Acted::Planned => ScaledOut::Planned,
        Acted::Denied { .. } => ScaledOut::Stopped(RunOutcome::Unresolved),
    })
}

/// Hold the workload at `n` replicas for a maintenance window by setting both bounds of its
/// autoscaler `hpa` to `n` (scaling the workload would be undone by the autoscaler); the act
/// changes it only if the minimum is still the one the plan saw. [`restore_bounds`] undoes it.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for `n == 0`: an autoscaler keeps at least one replica.
pub(crate) async fn pin_bounds(
    run: &Run<'_>,
    t: &Targets,
    hpa: &Autoscaler,
    n: u32,
) -> Result<Acted<AutoscalerChange>, OpsError> {
    let spec = AutoscalerSpec::from_autoscaler(hpa)?
        .with_bounds(n, n)?
        .expecting_min(hpa.min_replicas);
    let step = Step::disruptive("pin_autoscaler")
        .describe(format!(
            "hold {} at {n} instance(s) during the window through its autoscaler {} (it owns \
             the replica count and would undo a scale); its bounds go back after it, whatever \
             happens",
            t.workload, hpa.name
        ))
        .target(&t.workload)
        .change(format!(
            "{}: autoscaler {} replicas {}..{} -> {n}..{n}",
            t.workload, hpa.name, hpa.min_replicas, hpa.max_replicas
        ))
        .change(format!(
            "{}: autoscaler {} back to {}..{} after the release",
            t.workload, hpa.name, hpa.min_replicas, hpa.max_replicas
        ));
    run.act(step, || t.platform.set_autoscaler(&t.workload, spec))
        .await
}

/// Put back the bounds `hpa` had before [`pin_bounds`] set both to `n`; the autoscaler then
/// chooses the replica count again.
pub(crate) async fn restore_bounds(
    run: &Run<'_>,
    t: &Targets,
    hpa: &Autoscaler,
    n: u32,
) -> Result<Acted<AutoscalerChange>, OpsError> {
    let spec = AutoscalerSpec::from_autoscaler(hpa)?.expecting_min(n);
    let step = Step::disruptive("restore_autoscaler")
        .describe(format!(
            "give the autoscaler {} of {} its bounds back",
            hpa.name, t.workload
        ))
        .target(&t.workload)
        .change(format!(
            "{}: autoscaler {} replicas {n}..{n} -> {}..{}",
            t.workload, hpa.name, hpa.min_replicas, hpa.max_replicas
        ))
        .undoing("pin_autoscaler");
    run.act(step, || t.platform.set_autoscaler(&t.workload, spec))
        .await
}
