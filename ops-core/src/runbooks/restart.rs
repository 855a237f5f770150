//! `restart_and_verify`: restart, wait for the rollout, verify health, roll back if needed.

use super::Targets;
use super::verify::{rollback_and_verify, rollback_step, verify_healthy, wait_rollout};
use crate::error::{ErrorKind, OpsError};
use crate::platform::{PlatformExt as _, RestartOptions, WorkloadStatus};
use crate::run::{Acted, Finding, Report, Run, RunContext, RunFailure, RunOutcome, Step};

/// Restart a workload and make sure it comes back healthy.
///
/// 1. Read the workload and its previous revision.
/// 2. Rolling restart (disruptive: approval, journal).
/// 3. Wait until rolled out (`config.rollout_timeout`).
/// 4. Probe until `config.verify_successes` consecutive checks pass.
/// 5. If it did not recover and a previous revision exists, roll back (disruptive), wait, verify.
///
/// In dry run, the report lists the restart (one change per instance) and the conditional
/// rollback as planned actions; nothing is changed.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without a probe; errors of the platform's reads and of the
/// restart itself (tagged with the step). An unhealthy result is *not* an error: the report's
/// outcome is [`RunOutcome::Unresolved`].
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
/// use ops_core::runbooks::{restart_and_verify, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let platform = Arc::new(FakePlatform::default().with_workload(WorkloadStatus::crash_looping(api.clone(), 2)));
/// let probe = Arc::new(ScriptedProbe::tracking("api-health", Arc::clone(&platform), api.clone()));
/// let ctx = RunContext::builder().mode(Mode::Execute).allow_volatile_journal().approver(ApprovalPolicy::approve_all("test")).build();
/// let report = restart_and_verify(&ctx, &Targets::new(platform.clone(), api).with_probe(probe)).await?;
/// assert_eq!(report.outcome, RunOutcome::Recovered);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "restart_and_verify", target = %t.workload, mode = %ctx.mode()))]
pub async fn restart_and_verify(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("restart_and_verify", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        t.probe()?;
        let before = run
            .read(
                Step::read_only("workload_status").target(&t.workload),
                || t.platform.workload(&t.workload),
            )
            .await?;
        restart_verify_rollback(&run, t, &before).await
    })
    .await;
    run.conclude(body).await
}

/// The shared remediation: restart, wait, verify, roll back when needed.
pub(crate) async fn restart_verify_rollback(
    run: &Run<'_>,
    t: &Targets,
    before: &WorkloadStatus,
) -> Result<RunOutcome, OpsError> {
    let previous = run
        .read(
            Step::read_only("previous_revision").target(&t.workload),
            || t.platform.previous_revision(&t.workload),
        )
        .await?;
    let restart = Step::disruptive("restart")
        .describe(format!("rolling restart of {}", t.workload))
        .target(&t.workload)
        .changes_all(
            before
                .instances
                .iter()
                .map(|i| format!("replace instance {}", i.name)),
        );
    let acted = run
        .act(restart, || {
            t.platform
                .rollout_restart(&t.workload, RestartOptions::default())
        })
        .await;
    let acted = match (acted, &previous) {
        // A restart whose new instance never became ready (Compose's rolling restart stops
        // with a conflict at the first container that crashes; a deadline) is a restart
        // that did not recover the workload: roll back, as when it rolled out unhealthy.
        (Err(e), Some(prev)) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::Timeout) => {
            run.finding(
                Finding::critical(format!("the restart did not bring {} back", t.workload))
                    .with_evidence(e.chain()),
            );
            return rollback_and_verify(run, t, prev).await;
        }
        (acted, _) => acted?,
    };
    match acted {
        Acted::Done(()) => {}
        Acted::Planned => {
            if let Some(prev) = &previous {
                let step = rollback_step(t, prev, " if the restart does not recover it");
                run.act(step, || async { Ok::<(), OpsError>(()) }).await?;
            }
            return Ok(RunOutcome::Planned);
        }
        Acted::Denied { .. } => return Ok(RunOutcome::Unresolved),
    }
    if wait_rollout(run, t, "wait_rolled_out").await?
        && verify_healthy(run, t, "verify_health").await?
    {
        run.finding(Finding::info(format!(
            "{} recovered after a rolling restart",
            t.workload
        )));
        return Ok(RunOutcome::Recovered);
    }
    if let Some(prev) = previous {
        return rollback_and_verify(run, t, &prev).await;
    }
    run.finding(Finding::critical(format!(
        "{} did not recover after a restart and has no previous revision to roll back to",
        t.workload
    )));
    Ok(RunOutcome::Unresolved)
}
