//! Shared steps: wait for a rollout, verify health with consecutive probes, roll back.

use std::time::Duration;

use super::Targets;
use crate::error::{ErrorKind, OpsError};
use crate::platform::{PlatformExt as _, Revision, RollbackOptions, RolloutOptions};
use crate::probe::Outcome;
use crate::run::{Acted, Finding, RetryPolicy, Run, RunOutcome, Step};

/// Wait until the workload is rolled out. `Ok(false)` when it timed out or the platform gave up
/// (recorded as a finding); other errors propagate.
pub(crate) async fn wait_rollout(
    run: &Run<'_>,
    t: &Targets,
    step: &'static str,
) -> Result<bool, OpsError> {
    let cfg = &t.config;
    let opts = RolloutOptions::default()
        .with_timeout(cfg.rollout_timeout)
        .with_poll_interval(cfg.rollout_poll);
    let wait = Step::read_only(step)
        .describe(format!(
            "wait until {} is rolled out (up to {}s)",
            t.workload,
            cfg.rollout_timeout.as_secs()
        ))
        .target(&t.workload)
        .timeout(cfg.rollout_timeout + cfg.rollout_poll + Duration::from_secs(5))
        .retry(RetryPolicy::none());
    match run
        .read(wait, || {
            t.platform.wait_rolled_out(&t.workload, opts.clone())
        })
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Backend) => {
            run.finding(
                Finding::critical(format!("{} did not roll out", t.workload))
                    .with_evidence(e.chain()),
            );
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Probe until `verify_successes` consecutive checks are up, or `verify_timeout` passes.
/// `Ok(false)` when it never got there (recorded as a finding).
pub(crate) async fn verify_healthy(
    run: &Run<'_>,
    t: &Targets,
    step: &'static str,
) -> Result<bool, OpsError> {
    let probe = t.probe()?;
    let cfg = &t.config;
    let verify = Step::read_only(step)
        .describe(format!(
            "probe {} until {} consecutive checks pass (every {}s, up to {}s)",
            probe.name(),
            cfg.verify_successes,
            cfg.verify_interval.as_secs(),
            cfg.verify_timeout.as_secs()
        ))
        .target(probe.name())
        .timeout(cfg.verify_timeout + cfg.verify_interval + Duration::from_secs(5))
        .retry(RetryPolicy::none());
    let result = run
        .read(verify, || async {
            let deadline = tokio::time::Instant::now() + cfg.verify_timeout;
            let mut streak = 0;
            let mut last = String::new();
            loop {
                match probe.check().await {
                    Ok(r) if r.outcome == Outcome::Up => streak += 1,
                    Ok(r) => {
                        streak = 0;
                        last = format!("{}: {}", r.outcome, r.detail);
                    }
                    Err(e) => {
                        streak = 0;
                        last = e.chain();
                    }
                }
                if streak >= cfg.verify_successes {
                    return Ok::<_, OpsError>(Ok(true));
                }
                if tokio::time::Instant::now() + cfg.verify_interval > deadline {
                    return Ok(Err(last));
                }
                tokio::time::sleep(cfg.verify_interval).await;
            }
        })
        .await?;
    match result {
        Ok(healthy) => Ok(healthy),
        Err(last) => {
            run.finding(
                Finding::critical(format!("{} is still unhealthy", probe.name()))
                    .with_evidence(last),
            );
            Ok(false)
        }
    }
}

/// The rollback step declaration for `previous`.
pub(crate) fn rollback_step(t: &Targets, previous: &Revision, when: &str) -> Step {
    let images = if previous.images.is_empty() {
        String::new()
    } else {
        format!(" ({})", previous.images.join(", "))
    };
    Step::disruptive("rollback")
        .describe(format!(
            "roll back {} to revision {}{when}",
            t.workload, previous.number
        ))
        .target(&t.workload)
        .change(format!(
            "{}: pod template of revision {}{images}",
            t.workload, previous.number
        ))
}

/// Roll back to `previous`, wait, verify.
pub(crate) async fn rollback_and_verify(
    run: &Run<'_>,
    t: &Targets,
    previous: &Revision,
) -> Result<RunOutcome, OpsError> {
    let step = rollback_step(t, previous, "");
    let opts = RollbackOptions::default().to_revision(previous.number);
    match run
        .act(step, || t.platform.rollback(&t.workload, opts))
        .await?
    {
        Acted::Done(_) => {
            if !t.platform.capabilities().durable_config {
                // Compose: the compose file still names the release that was rolled back.
                run.finding(
                    Finding::warning(format!(
                        "the rollback of {} lasts only until the next deploy from its definition",
                        t.workload
                    ))
                    .with_evidence(format!(
                        "put revision {}'s image{} in the service's definition (compose file or .env) before the next `docker compose up`, which otherwise deploys the bad release again",
                        previous.number,
                        if previous.images.is_empty() { String::new() } else { format!(" ({})", previous.images.join(", ")) }
                    )),
                );
            }
        }
        Acted::Planned => return Ok(RunOutcome::Planned),
        Acted::Denied { .. } => return Ok(RunOutcome::Unresolved),
    }
    if wait_rollout(run, t, "wait_rolled_back").await?
        && verify_healthy(run, t, "verify_after_rollback").await?
    {
        run.finding(Finding::info(format!(
            "recovered by rolling back to revision {}",
            previous.number
        )));
        Ok(RunOutcome::Recovered)
    } else {
        Ok(RunOutcome::Unresolved)
    }
}
