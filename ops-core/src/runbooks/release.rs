//! Releases: `deploy_release` (the seeds' deploy, and "rollback to previous version" when it
//! does not come up healthy), `deployment_failure` (CrashLoopBackOff, ImagePullBackOff /
//! `ErrImagePull`, a rollout past its progress deadline) and `planned_maintenance` (seed 001's
//! maintenance window).

use std::path::PathBuf;

use super::Targets;
use super::autoscale::{owning_autoscaler, pin_bounds, restore_bounds};
use super::on_demand::backup_and_verify;
use super::verify::{rollback_and_verify, rollback_step, verify_healthy, wait_rollout};
use crate::error::{ErrorKind, OpsError};
use crate::incident::{Severity, Signals};
use crate::metrics::MetricQuery;
use crate::notify::Notification;
use crate::platform::{
    Autoscaler, EventOptions, ImageChange, ImageUpdate, LogOptions, PlatformExt as _, Revision,
    ScaleOptions, WorkloadStatus,
};
use crate::refs::Identifier;
use crate::run::{Acted, Finding, Report, Run, RunContext, RunFailure, RunOutcome, Step};
use crate::text;

/// What a maintenance window does besides its targets: the release it applies, the number
/// of instances that run during it, and the database backed up first.
///
/// # Examples
/// ```
/// use ops_core::platform::ImageUpdate;
/// use ops_core::runbooks::MaintenancePlan;
/// let plan = MaintenancePlan::new(ImageUpdate::new("shop/api:2".parse()?))
///     .with_scale_to(1)
///     .with_backup("app".parse()?, "/backups");
/// assert_eq!(plan.scale_to, Some(1));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MaintenancePlan {
    /// The release applied during the window.
    pub release: ImageUpdate,
    /// Instances to run during the window (fewer than now: scaled down, then back).
    pub scale_to: Option<u32>,
    /// The database backed up before anything changes, and the folder the dump goes to.
    pub backup: Option<(Identifier, PathBuf)>,
}

impl MaintenancePlan {
    /// A window that applies `release`.
    pub fn new(release: ImageUpdate) -> Self {
        Self {
            release,
            scale_to: None,
            backup: None,
        }
    }

    /// Run `instances` instances during the window.
    #[must_use]
    pub fn with_scale_to(mut self, instances: u32) -> Self {
        self.scale_to = Some(instances);
        self
    }

    /// Back `database` up into `dir` first (`database_backup`'s steps).
    #[must_use]
    pub fn with_backup(mut self, database: Identifier, dir: impl Into<PathBuf>) -> Self {
        self.backup = Some((database, dir.into()));
        self
    }
}

/// Deploy a release: set the workload's image, wait for the rollout, verify health (and the
/// error rate when a metrics source is given), and roll back to the revision that ran
/// before when any of that fails.
///
/// 1. Read the workload (the plan names the image it runs now and each instance replaced).
/// 2. Set the image (disruptive: approval, journal), recording `release`'s change cause.
/// 3. Wait until rolled out (`config.rollout_timeout`), probe until
///    `config.verify_successes` consecutive checks pass, and, with metrics, check that the
///    error rate is below the context's `incident_policy().thresholds.error_rate_low`.
/// 4. Otherwise roll back to the previous revision (disruptive), wait, verify.
///
/// Outcome: [`RunOutcome::Recovered`] when the release runs and is verified ("done");
/// [`RunOutcome::Unresolved`] when it was rolled back (the summary says whether the
/// rollback is healthy), denied, or failed with nothing to roll back to;
/// [`RunOutcome::Planned`] in a dry run, whose plan holds the release and the conditional
/// rollback. On a platform whose changes do not last (Compose) a finding says where the
/// image must also be written.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] without a probe; errors of the status read and of the
/// disruptive steps (a release the platform refuses: an unknown container, an image that
/// cannot be pulled on Compose).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::{ImageUpdate, WorkloadStatus};
/// use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
/// use ops_core::runbooks::{deploy_release, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let mut seed = WorkloadStatus::healthy(api.clone(), 2);
/// seed.images = vec!["shop/api:1".into()];
/// let platform = Arc::new(FakePlatform::default().with_workload(seed));
/// let probe = Arc::new(ScriptedProbe::tracking("api-health", Arc::clone(&platform), api.clone()));
/// let ctx = RunContext::builder().mode(Mode::Execute).allow_volatile_journal().approver(ApprovalPolicy::approve_all("oncall")).build();
/// let release = ImageUpdate::new("shop/api:2".parse()?);
/// let report = deploy_release(&ctx, &Targets::new(platform.clone(), api.clone()).with_probe(probe), &release).await?;
/// assert_eq!(report.outcome, RunOutcome::Recovered);
/// assert_eq!(platform.status(&api).unwrap().images, ["shop/api:2"]);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "deploy_release", target = %t.workload, mode = %ctx.mode()))]
pub async fn deploy_release(
    ctx: &RunContext,
    t: &Targets,
    release: &ImageUpdate,
) -> Result<Report, RunFailure> {
    let run = ctx.begin("deploy_release", &t.workload).await;
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
        run.finding(Finding::info(format!(
            "{} runs {} ({}/{} ready)",
            t.workload,
            images_of(&before),
            before.ready,
            before.desired
        )));
        let acted = match release_step(&run, t, &before, release).await {
            Err(e) => return release_failed(&run, t, release, e).await,
            Ok(acted) => acted,
        };
        match acted {
            Acted::Done(_) => {}
            Acted::Planned => {
                plan_rollback(&run, t, &before).await?;
                return Ok(RunOutcome::Planned);
            }
            Acted::Denied { reason } => {
                run.summary(format!("{} was not deployed: {reason}.", release.image));
                return Ok(RunOutcome::Unresolved);
            }
        }
        let outcome = verify_or_roll_back(&run, t, release, "wait_rolled_out").await?;
        if outcome == RunOutcome::Recovered {
            run.summary(format!(
                "{} runs {} and passes its checks.",
                t.workload, release.image
            ));
        }
        Ok(outcome)
    })
    .await;
    run.conclude(body).await
}

/// The images of a status, for messages.
fn images_of(status: &WorkloadStatus) -> String {
    if status.images.is_empty() {
        "an unknown image".to_owned()
    } else {
        status.images.join(", ")
    }
}

/// Set the image through the gate; a change that does not last gets a finding saying where
/// it must also be made.
async fn release_step(
    run: &Run<'_>,
    t: &Targets,
    before: &WorkloadStatus,
    release: &ImageUpdate,
) -> Result<Acted<ImageChange>, OpsError> {
    let container = release
        .container()
        .map(|c| format!(" (container {c})"))
        .unwrap_or_default();
    let cause = release
        .change_cause()
        .map(|c| format!(", change cause {}", text::quote(c)))
        .unwrap_or_default();
    let step = Step::disruptive("set_image")
        .describe(format!(
            "run {} in {}{container}{cause}",
            release.image, t.workload
        ))
        .target(&t.workload)
        .change(format!(
            "{}{container}: image {} -> {}",
            t.workload,
            images_of(before),
            release.image
        ))
        .changes_all(
            before
                .instances
                .iter()
                .map(|i| format!("replace instance {}", i.name)),
        );
    let acted = run
        .act(step, || t.platform.set_image(&t.workload, release.clone()))
        .await?;
    if let Acted::Done(change) = &acted {
        if !change.rollout_started {
            run.finding(Finding::info(format!(
                "{} already ran {}: nothing rolled out",
                t.workload, change.to
            )));
        }
        if let Some(place) = &change.persist_in {
            run.finding(
                Finding::warning(format!(
                    "the release of {} lasts only until the next deploy from its definition",
                    t.workload
                ))
                .with_evidence(format!("write {} in {place}", change.to)),
            );
        }
    }
    Ok(acted)
}

/// The release step failed. When it applied nonetheless, at least in part (Compose stops at
/// the first new container that does not become ready; a deadline passed after the platform
/// took the change), the release is rolled back; otherwise nothing changed and the error is
/// returned.
async fn release_failed(
    run: &Run<'_>,
    t: &Targets,
    release: &ImageUpdate,
    error: OpsError,
) -> Result<RunOutcome, OpsError> {
    let image = release.image.to_string();
    let now = run
        .read(
            Step::read_only("status_after_release").target(&t.workload),
            || t.platform.workload(&t.workload),
        )
        .await?;
    let applied = now.images.contains(&image)
        || now
            .instances
            .iter()
            .any(|i| i.image.as_deref() == Some(image.as_str()));
    if !applied {
        return Err(error);
    }
    run.finding(
        Finding::critical(format!(
            "{image} did not come up: the release stopped part-way"
        ))
        .with_evidence(error.chain()),
    );
    roll_back_release(run, t, release).await
}

/// In a dry run: plan the rollback that follows a release that does not come up healthy.
async fn plan_rollback(
    run: &Run<'_>,
    t: &Targets,
    before: &WorkloadStatus,
) -> Result<(), OpsError> {
    let current = run
        .read(Step::read_only("revisions").target(&t.workload), || async {
            match t.platform.revisions(&t.workload).await {
                Ok(r) => Ok(r.into_iter().find(|r| r.current)),
                Err(e) if e.kind() == ErrorKind::Unsupported => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
    let back_to = current.unwrap_or_else(|| {
        Revision::new(before.revision.unwrap_or(0), before.images.clone(), false)
    });
    let step = rollback_step(t, &back_to, " if the release does not become healthy");
    run.act(step, || async { Ok::<(), OpsError>(()) }).await?;
    Ok(())
}

/// Below the error-rate threshold, or no metrics source: `Ok(true)`. Above it: a finding
/// and `Ok(false)`. No data is a warning, not a failure.
async fn error_rate_ok(run: &Run<'_>, t: &Targets) -> Result<bool, OpsError> {
    let Some(metrics) = &t.metrics else {
        return Ok(true);
    };
    let cfg = &t.config;
    let query = MetricQuery::error_rate(&cfg.metrics_job, &cfg.metrics_window);
    let result = run
        .read(Step::read_only("error_rate").target(&query), || {
            metrics.query(&query, None)
        })
        .await?;
    match result.max_value() {
        None => {
            run.finding(Finding::warning(format!(
                "no error-rate data for job {} (no traffic yet, or the job label is wrong)",
                text::quote(&cfg.metrics_job)
            )));
            Ok(true)
        }
        Some(rate) if rate >= run.ctx().incident_policy().thresholds.error_rate_low => {
            run.finding(Finding::critical(format!(
                "error rate {:.1}% after the release (limit {:.1}%)",
                rate * 100.0,
                run.ctx().incident_policy().thresholds.error_rate_low * 100.0
            )));
            Ok(false)
        }
        Some(rate) => {
            run.finding(Finding::info(format!(
                "error rate {:.2}% after the release",
                rate * 100.0
            )));
            Ok(true)
        }
    }
}

/// Wait, verify health and the error rate; roll back to the previous revision when any of
/// it fails. `Recovered` when the release is verified; `Unresolved` otherwise.
async fn verify_or_roll_back(
    run: &Run<'_>,
    t: &Targets,
    release: &ImageUpdate,
    wait_step: &'static str,
) -> Result<RunOutcome, OpsError> {
    let verified = wait_rollout(run, t, wait_step).await?
        && verify_healthy(run, t, "verify_health").await?
        && error_rate_ok(run, t).await?;
    if verified {
        run.finding(Finding::info(format!(
            "{} runs {} and passes its checks",
            t.workload, release.image
        )));
        return Ok(RunOutcome::Recovered);
    }
    roll_back_release(run, t, release).await
}

/// The release failed its checks: roll back to the revision before it.
async fn roll_back_release(
    run: &Run<'_>,
    t: &Targets,
    release: &ImageUpdate,
) -> Result<RunOutcome, OpsError> {
    let previous = run
        .read(
            Step::read_only("previous_revision").target(&t.workload),
            || t.platform.previous_revision(&t.workload),
        )
        .await?;
    let Some(previous) = previous else {
        run.finding(
            Finding::critical(format!(
                "{} failed its checks and there is no previous revision to roll back to",
                release.image
            ))
            .with_evidence("deploy the last good image with deploy_release"),
        );
        run.summary(format!("{} failed and is still running.", release.image));
        return Ok(RunOutcome::Unresolved);
    };
    let outcome = rollback_and_verify(run, t, &previous).await?;
    run.summary(if outcome == RunOutcome::Recovered {
        format!(
            "{} failed its checks; {} was rolled back to revision {} and is healthy.",
            release.image, t.workload, previous.number
        )
    } else {
        format!(
            "{} failed its checks and the rollback to revision {} did not bring {} back: it needs a human.",
            release.image, previous.number, t.workload
        )
    });
    // The release is not live either way.
    Ok(RunOutcome::Unresolved)
}

/// What is wrong with a deployment.
#[derive(Debug, Default)]
struct Failure {
    crash_looping: Vec<String>,
    image_pull: Vec<String>,
    deadline: Option<String>,
}

impl Failure {
    fn of(status: &WorkloadStatus, rollout_message: Option<&str>) -> Self {
        let mut f = Self::default();
        for i in &status.instances {
            match &i.waiting {
                Some(w) if w.is_image_problem() => f.image_pull.push(format!(
                    "{}: {w}{}",
                    i.name,
                    i.image
                        .as_deref()
                        .map(|im| format!(" ({im})"))
                        .unwrap_or_default()
                )),
                _ if i.is_crash_looping() => f.crash_looping.push(format!(
                    "{}: CrashLoopBackOff, {} restarts{}",
                    i.name,
                    i.restarts,
                    i.last_termination
                        .as_ref()
                        .map(|t| format!(", last exit {} ({})", t.exit_code, t.reason))
                        .unwrap_or_default()
                )),
                _ => {}
            }
        }
        let condition = status.conditions.iter().find(|c| {
            c.kind == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        f.deadline = rollout_message.map(str::to_owned).or_else(|| {
            condition.map(|c| {
                c.message
                    .clone()
                    .unwrap_or_else(|| "ProgressDeadlineExceeded".to_owned())
            })
        });
        f
    }

    fn is_empty(&self) -> bool {
        self.crash_looping.is_empty() && self.image_pull.is_empty() && self.deadline.is_none()
    }

    /// What a human does when there is nothing to roll back to.
    fn next_steps(&self, images: &str) -> Vec<String> {
        let mut steps = Vec::new();
        if !self.image_pull.is_empty() {
            steps.push(format!(
                "check that {images} exists in the registry and that the platform can pull it (name, tag, registry credentials), then deploy a correct image with deploy_release"
            ));
        }
        if !self.crash_looping.is_empty() {
            steps.push("the previous containers' logs above say why they exit: fix the configuration or deploy a fixed image with deploy_release".to_owned());
        }
        if self.deadline.is_some() {
            steps.push("read the events above (quota, scheduling, failing readiness probes) and describe the new instances".to_owned());
        }
        steps
    }
}

/// Deployment failure: a release whose instances crash loop (`CrashLoopBackOff`), cannot
/// pull their image (`ImagePullBackOff` / `ErrImagePull`) or whose rollout passed its
/// progress deadline (`ProgressDeadlineExceeded`). Collects the evidence (warning events,
/// the previous containers' logs of every instance), rolls back to the previous revision,
/// waits and verifies.
///
/// Outcome: [`RunOutcome::Healthy`] when nothing failed; [`RunOutcome::Recovered`] when the
/// rollback brought the workload back; [`RunOutcome::Unresolved`] when it did not, when it
/// was denied, or when there is no previous revision (a finding then lists the next steps);
/// [`RunOutcome::Planned`] in a dry run.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] without a probe; the status read failing; errors of the
/// disruptive steps.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{deployment_failure, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let platform = Arc::new(FakePlatform::default()
///     .with_workload(WorkloadStatus::crash_looping(api.clone(), 2))
///     .with_previous_revision(&api, 1, vec!["shop/api:1".into()]));
/// let probe = Arc::new(ScriptedProbe::tracking("api-health", Arc::clone(&platform), api.clone()));
/// let report = deployment_failure(&RunContext::builder().build(), &Targets::new(platform.clone(), api).with_probe(probe)).await?;
/// assert_eq!(report.outcome, RunOutcome::Planned);
/// assert!(platform.mutations().is_empty());
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "deployment_failure", target = %t.workload, mode = %ctx.mode()))]
pub async fn deployment_failure(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("deployment_failure", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        t.probe()?;
        let cfg = &t.config;
        let events_opts = EventOptions {
            warnings_only: true,
            limit: Some(20),
            ..EventOptions::default()
        };
        let logs_opts = LogOptions::default()
            .with_previous(true)
            .with_tail(cfg.log_tail)
            .with_timestamps(true);
        let (status, rollout, events, logs) = tokio::join!(
            run.read(
                Step::read_only("workload_status").target(&t.workload),
                || t.platform.workload(&t.workload)
            ),
            run.read(
                Step::read_only("rollout_status").target(&t.workload),
                || t.platform.rollout_status(&t.workload)
            ),
            run.read(
                Step::read_only("warning_events").target(&t.workload),
                || t.platform.events(&t.workload, events_opts.clone())
            ),
            run.read(
                Step::read_only("previous_logs")
                    .describe("the logs of every instance's previous (crashed) container")
                    .target(&t.workload),
                || t.platform.logs(&t.workload, logs_opts.clone())
            ),
        );
        let status = status?;
        let rollout_failed = match &rollout {
            Ok(r) if r.failed => Some(r.message.clone()),
            _ => None,
        };
        let failure = Failure::of(&status, rollout_failed.as_deref());
        if failure.is_empty() {
            run.summary(format!(
                "{}: no crash loop, image pull failure or failed rollout ({}/{} ready).",
                t.workload, status.ready, status.desired
            ));
            return Ok(if status.is_healthy() {
                RunOutcome::Healthy
            } else {
                run.finding(Finding::warning(format!(
                    "{} is not healthy but its deployment has not failed: see api_down",
                    t.workload
                )));
                RunOutcome::Unresolved
            });
        }
        // No instance ready: the service is down (P0 by default); some: a critical feature
        // is down (P1).
        run.observe(if status.ready == 0 {
            Signals::default().with_service_down(true)
        } else {
            Signals::default().with_critical_feature_down(true)
        });
        report_failure(&run, &failure);
        report_evidence(&run, t, events, logs);
        remediate_failure(&run, t, &status, &failure).await
    })
    .await;
    run.conclude(body).await
}

/// Notify, roll back to the previous revision (or say what to do without one), notify the
/// result.
async fn remediate_failure(
    run: &Run<'_>,
    t: &Targets,
    status: &WorkloadStatus,
    failure: &Failure,
) -> Result<RunOutcome, OpsError> {
    run.notify(
        Notification::new(
            run.severity().unwrap_or(Severity::High),
            format!("deployment of {} failed", t.workload),
            run.snapshot()
                .findings
                .iter()
                .map(|f| format!("- {}", text::markdown_inline(&f.title)))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .with_dedup_key(format!("deployment_failure:{}", t.workload)),
    )
    .await;
    let previous = run
        .read(
            Step::read_only("previous_revision").target(&t.workload),
            || t.platform.previous_revision(&t.workload),
        )
        .await?;
    let outcome = if let Some(previous) = previous {
        rollback_and_verify(run, t, &previous).await?
    } else {
        run.finding(failure.next_steps(&images_of(status)).into_iter().fold(
            Finding::critical(format!(
                "{} has no previous revision to roll back to",
                t.workload
            )),
            Finding::with_evidence,
        ));
        RunOutcome::Unresolved
    };
    run.summary(match outcome {
        RunOutcome::Recovered => format!("{} was rolled back and is healthy again.", t.workload),
        RunOutcome::Planned => format!(
            "Dry run: the deployment of {} failed; the actions below would be taken.",
            t.workload
        ),
        _ => format!("The deployment of {} failed and needs a human.", t.workload),
    });
    // The run sends the closing status update itself.
    Ok(outcome)
}

fn report_failure(run: &Run<'_>, failure: &Failure) {
    if !failure.image_pull.is_empty() {
        run.finding(failure.image_pull.iter().fold(
            Finding::critical(format!(
                "{} instance(s) cannot pull their image",
                failure.image_pull.len()
            )),
            |f, e| f.with_evidence(e.clone()),
        ));
    }
    if !failure.crash_looping.is_empty() {
        run.finding(failure.crash_looping.iter().fold(
            Finding::critical(format!(
                "{} instance(s) in CrashLoopBackOff",
                failure.crash_looping.len()
            )),
            |f, e| f.with_evidence(e.clone()),
        ));
    }
    if let Some(message) = &failure.deadline {
        run.finding(
            Finding::critical("the rollout passed its progress deadline")
                .with_evidence(text::evidence(message, 300)),
        );
    }
}

/// Warning events and the previous containers' last lines, as evidence.
fn report_evidence(
    run: &Run<'_>,
    t: &Targets,
    events: Result<Vec<crate::platform::PlatformEvent>, OpsError>,
    logs: Result<Vec<crate::platform::LogLine>, OpsError>,
) {
    match events {
        Ok(events) if !events.is_empty() => run.finding(events.iter().rev().take(10).fold(
            Finding::info(format!("{} warning events", events.len())),
            |f, e| {
                f.with_evidence(format!(
                    "{} {}: {} (x{})",
                    e.reason,
                    e.object,
                    text::evidence(&e.message, 300),
                    e.count
                ))
            },
        )),
        Ok(_) => {}
        Err(e) => run.finding(Finding::warning("could not read events").with_evidence(e.chain())),
    }
    match logs {
        Ok(lines) if !lines.is_empty() => {
            let skip = lines.len().saturating_sub(t.config.log_evidence);
            run.finding(lines.iter().skip(skip).fold(
                Finding::info(format!(
                    "last lines of the previous containers ({} read)",
                    lines.len()
                )),
                |f, l| f.with_evidence(format!("{}: {}", l.instance, text::evidence(&l.text, 300))),
            ));
        }
        Ok(_) => {}
        // A container that never ran has no previous logs; that is not a failure.
        Err(e) => run.finding(Finding::info("no previous container logs").with_evidence(e.chain())),
    }
}

/// Planned maintenance (seed 001's window): notify that it starts, back up the database when
/// one is configured (`database_backup`'s steps), record the current revision, scale down to
/// `plan.scale_to`, apply `plan.release`, wait, scale back to the count before (an undo of
/// the scale-down: it runs on every path in which the scale-down ran, even a cancelled
/// one), verify health and the error rate, roll back on failure, and notify that it ended.
///
/// When a horizontal autoscaler owns the replica count, a scale-down would be undone by it
/// (and the platform refuses to fight it): the window pins the autoscaler's bounds to
/// `plan.scale_to` instead (step `pin_autoscaler`) and gives them back after the release
/// (`restore_autoscaler`, on the same paths as the scale-back).
///
/// Nothing changes before the backup is verified: a denied or failed backup ends the window
/// with nothing else done.
///
/// Outcome: [`RunOutcome::Recovered`] when the release runs and is verified;
/// [`RunOutcome::Unresolved`] when a step was denied or the release was rolled back;
/// [`RunOutcome::Planned`] in a dry run (the plan lists every step in order).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] without a probe, or with a backup but no database; errors of
/// the reads and of the disruptive steps (the scale-back is attempted before any of them is
/// returned).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::{ImageUpdate, WorkloadStatus};
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{planned_maintenance, MaintenancePlan, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let platform = Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 3)));
/// let probe = Arc::new(ScriptedProbe::tracking("api-health", Arc::clone(&platform), api.clone()));
/// let plan = MaintenancePlan::new(ImageUpdate::new("shop/api:2".parse()?)).with_scale_to(1);
/// let report = planned_maintenance(&RunContext::builder().build(), &Targets::new(platform.clone(), api).with_probe(probe), &plan).await?;
/// assert_eq!(report.outcome, RunOutcome::Planned);
/// let steps: Vec<_> = report.actions.iter().map(|a| a.step.as_str()).collect();
/// assert_eq!(steps, ["notify", "scale_down", "set_image", "scale_back", "rollback", "notify"]);
/// assert!(platform.mutations().is_empty());
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "planned_maintenance", target = %t.workload, mode = %ctx.mode()))]
pub async fn planned_maintenance(
    ctx: &RunContext,
    t: &Targets,
    plan: &MaintenancePlan,
) -> Result<Report, RunFailure> {
    let run = ctx.begin("planned_maintenance", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        t.probe()?;
        if plan.backup.is_some() {
            t.database()?;
        }
        notify_start(&run, t, plan).await;
        // The run closes the announcement itself when it finishes (Resolved once the release
        // is live, still open otherwise), with the window's summary as its impact.
        maintenance_window(&run, t, plan).await
    })
    .await;
    run.conclude(body).await
}

/// Tell that the window starts.
async fn notify_start(run: &Run<'_>, t: &Targets, plan: &MaintenancePlan) {
    run.notify(
        Notification::new(
            Severity::Low,
            format!("maintenance of {}", t.workload),
            format!(
                "The window starts: release {} to {}{}.",
                plan.release.image,
                t.workload,
                plan.scale_to
                    .map(|n| format!(", running {n} instance(s) during the window"))
                    .unwrap_or_default()
            ),
        )
        .with_dedup_key(format!("planned_maintenance:{}", t.workload)),
    )
    .await;
}

/// Read the workload and record the revision it runs before the window.
async fn record_current(run: &Run<'_>, t: &Targets) -> Result<WorkloadStatus, OpsError> {
    let (before, revisions) = tokio::join!(
        run.read(
            Step::read_only("workload_status").target(&t.workload),
            || t.platform.workload(&t.workload)
        ),
        run.read(Step::read_only("revisions").target(&t.workload), || async {
            match t.platform.revisions(&t.workload).await {
                Err(e) if e.kind() == ErrorKind::Unsupported => Ok(Vec::new()),
                other => other,
            }
        }),
    );
    let before = before?;
    match revisions?.iter().find(|r| r.current) {
        Some(r) => run.finding(Finding::info(format!(
            "before the window {} runs revision {} ({}){}",
            t.workload,
            r.number,
            r.images.join(", "),
            r.change_cause
                .as_deref()
                .map(|c| format!(", change cause {}", text::quote(c)))
                .unwrap_or_default()
        ))),
        None => run.finding(Finding::info(format!(
            "before the window {} runs {} (the platform keeps no revision history)",
            t.workload,
            images_of(&before)
        ))),
    }
    Ok(before)
}

/// The reason an act was denied, if it was.
fn denied_reason<T>(acted: Acted<T>) -> Option<String> {
    match acted {
        Acted::Denied { reason } => Some(reason),
        Acted::Done(_) | Acted::Planned => None,
    }
}

/// Scale down to `n` for the window, only if the workload still wants `desired`.
async fn scale_down(
    run: &Run<'_>,
    t: &Targets,
    desired: u32,
    n: u32,
) -> Result<Acted<crate::platform::ScaleChange>, OpsError> {
    let step = Step::disruptive("scale_down")
        .describe(format!(
            "run {n} instance(s) of {} during the window; back to {desired} after it, whatever happens",
            t.workload
        ))
        .target(&t.workload)
        .change(format!("{}: {desired} -> {n} instances", t.workload))
        .change(format!(
            "{}: back to {desired} instances after the release",
            t.workload
        ));
    let opts = ScaleOptions::default().expecting(desired);
    run.act(step, || t.platform.scale(&t.workload, n, opts))
        .await
}

/// Undo the window's reduction to `n`: give the autoscaler its bounds back, or scale back to
/// `desired`; a failure is also a critical finding.
async fn give_back(
    run: &Run<'_>,
    t: &Targets,
    hpa: Option<&Autoscaler>,
    desired: u32,
    n: u32,
) -> Result<(), OpsError> {
    let back = if let Some(hpa) = hpa {
        restore_bounds(run, t, hpa, n).await.map(|_| ())
    } else {
        let step = Step::disruptive("scale_back")
            .describe(format!("scale {} back to {desired} instances", t.workload))
            .target(&t.workload)
            .change(format!("{}: back to {desired} instances", t.workload))
            .undoing("scale_down");
        run.act(step, || {
            t.platform
                .scale(&t.workload, desired, ScaleOptions::default())
        })
        .await
        .map(|_| ())
    };
    if let Err(e) = &back {
        run.finding(
            Finding::critical(match hpa {
                Some(hpa) => format!(
                    "{}: its autoscaler {} could not get its bounds {}..{} back",
                    t.workload, hpa.name, hpa.min_replicas, hpa.max_replicas
                ),
                None => format!(
                    "{} could not be scaled back to {desired} instances",
                    t.workload
                ),
            })
            .with_evidence(e.chain()),
        );
    }
    back
}

async fn maintenance_window(
    run: &Run<'_>,
    t: &Targets,
    plan: &MaintenancePlan,
) -> Result<RunOutcome, OpsError> {
    if let Some((database, dir)) = &plan.backup
        && backup_and_verify(run, t, database, dir).await? == Err(RunOutcome::Unresolved)
    {
        run.summary(format!(
            "Maintenance of {} stopped before any change: the database was not backed up.",
            t.workload
        ));
        return Ok(RunOutcome::Unresolved);
    }
    let before = record_current(run, t).await?;
    let desired = before.desired;
    let scale_to = plan.scale_to.filter(|n| *n < desired);
    // An autoscaler that owns the replica count would undo a scale-down: pin its bounds instead.
    let hpa = match scale_to {
        Some(_) => owning_autoscaler(run, t).await?,
        None => None,
    };
    // `Some(denied reason)` when the reduction was asked for and refused.
    let denied = match (scale_to, &hpa) {
        (Some(0), Some(hpa)) => {
            run.summary(format!(
                "Maintenance of {} stopped before any change: its autoscaler {hpa} keeps at least \
                 one instance, so the window cannot run 0; plan at least 1, or remove the \
                 autoscaler first.",
                t.workload
            ));
            return Ok(RunOutcome::Unresolved);
        }
        (Some(n), Some(hpa)) => denied_reason(pin_bounds(run, t, hpa, n).await?),
        (Some(n), None) => denied_reason(scale_down(run, t, desired, n).await?),
        (None, _) => None,
    };
    if let Some(reason) = denied {
        run.summary(format!(
            "Maintenance of {} stopped before any change: {reason}.",
            t.workload
        ));
        return Ok(RunOutcome::Unresolved);
    }
    // From here on the scale-back runs on every path.
    let released = async {
        let acted = release_step(run, t, &before, &plan.release).await?;
        let rolled_out = match &acted {
            Acted::Done(change) if change.rollout_started => {
                wait_rollout(run, t, "wait_release").await?
            }
            _ => true,
        };
        Ok::<_, OpsError>((acted, rolled_out))
    }
    .await;
    if let Some(n) = scale_to
        && let Err(e) = give_back(run, t, hpa.as_ref(), desired, n).await
    {
        released?;
        return Err(e);
    }
    let (acted, rolled_out) = match released {
        Ok(done) => done,
        Err(e) => return release_failed(run, t, &plan.release, e).await,
    };
    match acted {
        Acted::Done(_) => {}
        Acted::Planned => {
            plan_rollback(run, t, &before).await?;
            return Ok(RunOutcome::Planned);
        }
        Acted::Denied { reason } => {
            run.summary(format!(
                "{} was not released: {reason}; {} runs {} as before.",
                plan.release.image,
                t.workload,
                images_of(&before)
            ));
            return Ok(RunOutcome::Unresolved);
        }
    }
    let outcome = if rolled_out {
        verify_or_roll_back(run, t, &plan.release, "wait_rolled_out").await?
    } else {
        roll_back_release(run, t, &plan.release).await?
    };
    if outcome == RunOutcome::Recovered {
        run.summary(format!(
            "Maintenance of {} done: {} is live and passes its checks.",
            t.workload, plan.release.image
        ));
    }
    Ok(outcome)
}
