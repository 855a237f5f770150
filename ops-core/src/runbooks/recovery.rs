//! `complete_service_recovery`: bring a whole stack back in dependency order, with health
//! gates between tiers (the seeds' "start the database, `sleep 15`, start the API" without the
//! sleep).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Targets;
use super::verify::verify_healthy;
use crate::error::{ErrorKind, OpsError};
use crate::platform::{
    InstancePhase, PlatformExt as _, RestartOptions, RolloutOptions, StopOptions, WorkloadStatus,
};
use crate::refs::WorkloadRef;
use crate::run::{Acted, Finding, Report, RetryPolicy, RunContext, RunFailure, RunOutcome, Step};

/// The order a stack comes back in: tiers of workloads, each tier started and health-gated
/// before the next (e.g. database and cache, then the API, then the proxy).
///
/// # Examples
/// ```
/// use ops_core::runbooks::RecoveryOrder;
/// let order = RecoveryOrder::new()
///     .then(["shop/service/db".parse()?, "shop/service/cache".parse()?])
///     .then(["shop/service/api".parse()?]);
/// assert_eq!(order.tiers().len(), 2);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryOrder {
    tiers: Vec<Vec<WorkloadRef>>,
}

impl RecoveryOrder {
    /// No tiers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the next tier (empty tiers are ignored).
    #[must_use]
    pub fn then(mut self, tier: impl IntoIterator<Item = WorkloadRef>) -> Self {
        let tier: Vec<WorkloadRef> = tier.into_iter().collect();
        if !tier.is_empty() {
            self.tiers.push(tier);
        }
        self
    }

    /// The order from what each workload depends on: tiers by
    /// [`crate::tiers::dependency_tiers`] (the one start-up order of opsbook, also used by
    /// ops-compose's `start_project`), each after everything it depends on. A dependency
    /// that is not a key of `deps` is ignored (not ours to start).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming the workloads that depend on each other.
    ///
    /// # Examples
    /// ```
    /// use std::collections::{BTreeMap, BTreeSet};
    /// use ops_core::runbooks::RecoveryOrder;
    /// use ops_core::WorkloadRef;
    /// let w = |s: &str| s.parse::<WorkloadRef>().unwrap();
    /// let deps = BTreeMap::from([
    ///     (w("shop/service/proxy"), BTreeSet::from([w("shop/service/api")])),
    ///     (w("shop/service/api"), BTreeSet::from([w("shop/service/db")])),
    ///     (w("shop/service/db"), BTreeSet::new()),
    /// ]);
    /// let order = RecoveryOrder::from_dependencies(&deps)?;
    /// assert_eq!(order.tiers(), [vec![w("shop/service/db")], vec![w("shop/service/api")], vec![w("shop/service/proxy")]]);
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn from_dependencies(
        deps: &BTreeMap<WorkloadRef, BTreeSet<WorkloadRef>>,
    ) -> Result<Self, OpsError> {
        let tiers = crate::tiers::dependency_tiers(deps).map_err(|cycle| {
            let stuck: Vec<String> = cycle.stuck.iter().map(ToString::to_string).collect();
            OpsError::new(
                ErrorKind::InvalidInput,
                "core",
                "recovery_order",
                stuck.join(", "),
            )
            .with_detail("these workloads depend on each other: no order starts them")
        })?;
        Ok(tiers.into_iter().fold(Self::new(), Self::then))
    }

    /// The tiers, first to start first.
    pub fn tiers(&self) -> &[Vec<WorkloadRef>] {
        &self.tiers
    }
}

/// Whether no instance runs (start it) rather than some running badly (restart it).
fn is_down(status: &WorkloadStatus) -> bool {
    status.instances.is_empty()
        || status.instances.iter().all(|i| {
            matches!(
                i.phase,
                InstancePhase::Stopped | InstancePhase::Failed | InstancePhase::Succeeded
            )
        })
}

fn needs_action(status: &WorkloadStatus) -> bool {
    status.desired == 0 || status.instances.is_empty() || !status.is_healthy()
}

/// Complete service recovery: bring every tier of `order` back, in order, with health gates.
///
/// For each tier: read the status of its workloads (in parallel); start the ones that are
/// down and restart the ones that run unhealthy (disruptive: approval, journal); then wait
/// until each is rolled out and healthy (`config.rollout_timeout`) before touching the next
/// tier. A tier that does not come back stops the run: its dependents are not started on a
/// broken dependency. Finally the probe of `t` (if any) must pass `config.verify_successes`
/// times.
///
/// In dry run every start/restart is planned, nothing changes, and the outcome is
/// [`RunOutcome::Planned`] (or [`RunOutcome::Healthy`] when nothing needs doing).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] for an empty order; status reads failing (the platform
/// is unreachable); errors of disruptive steps.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::{Platform, StopOptions, WorkloadStatus};
/// use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
/// use ops_core::runbooks::{complete_service_recovery, RecoveryOrder, Targets};
/// use ops_core::testing::FakePlatform;
/// let db: ops_core::WorkloadRef = "shop/service/db".parse()?;
/// let api: ops_core::WorkloadRef = "shop/service/api".parse()?;
/// let platform = Arc::new(FakePlatform::default()
///     .with_workload(WorkloadStatus::healthy(db.clone(), 1))
///     .with_workload(WorkloadStatus::healthy(api.clone(), 1)));
/// platform.stop(&db, StopOptions::default()).await?;
/// let ctx = RunContext::builder().mode(Mode::Execute).allow_volatile_journal().approver(ApprovalPolicy::approve_all("test")).build();
/// let order = RecoveryOrder::new().then([db]).then([api.clone()]);
/// let report = complete_service_recovery(&ctx, &Targets::new(platform, api), &order).await?;
/// assert_eq!(report.outcome, RunOutcome::Recovered);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[allow(
    clippy::too_many_lines,
    reason = "one pass per tier: read, act, gate; split, it reads worse"
)]
#[tracing::instrument(skip_all, fields(runbook = "complete_service_recovery", target = %t.workload, mode = %ctx.mode()))]
pub async fn complete_service_recovery(
    ctx: &RunContext,
    t: &Targets,
    order: &RecoveryOrder,
) -> Result<Report, RunFailure> {
    let run = ctx.begin("complete_service_recovery", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        if order.tiers().is_empty() {
            return Err(OpsError::invalid(
                "complete_service_recovery",
                t.workload.to_string(),
                "the recovery order has no tiers",
            ));
        }
        let cfg = &t.config;
        let mut acted = false;
        let mut planned = false;
        for (n, tier) in order.tiers().iter().enumerate() {
            let statuses = futures::future::join_all(tier.iter().map(|w| {
                run.read(
                    Step::read_only("tier_status")
                        .describe(format!("status of tier {n}"))
                        .target(w),
                    || t.platform.workload(w),
                )
            }))
            .await;
            for (w, status) in tier.iter().zip(statuses) {
                let status = status?;
                if !needs_action(&status) {
                    run.finding(Finding::info(format!("{w} (tier {n}) is healthy")));
                    continue;
                }
                let down = is_down(&status);
                let step = if down {
                    Step::disruptive("start")
                        .describe(format!("start {w} (tier {n})"))
                        .changes_all(status.instances.iter().map(|i| format!("start instance {}", i.name)))
                } else {
                    Step::disruptive("restart")
                        .describe(format!("restart {w} (tier {n}): it runs but is not healthy"))
                        .changes_all(status.instances.iter().map(|i| format!("restart instance {}", i.name)))
                }
                .target(w);
                let result = run
                    .act(step, || async {
                        if down {
                            t.platform.start(w, StopOptions::default()).await
                        } else {
                            t.platform.rollout_restart(w, RestartOptions::default()).await
                        }
                    })
                    .await?;
                match result {
                    Acted::Done(()) => acted = true,
                    Acted::Planned => planned = true,
                    Acted::Denied { .. } => {
                        run.finding(Finding::critical(format!(
                            "{w} (tier {n}) was not brought back: the action was denied"
                        )));
                        return Ok(RunOutcome::Unresolved);
                    }
                }
            }
            if planned {
                continue;
            }
            for w in tier {
                let opts = RolloutOptions::default()
                    .with_timeout(cfg.rollout_timeout)
                    .with_poll_interval(cfg.rollout_poll);
                let gate = Step::read_only("health_gate")
                    .describe(format!(
                        "wait until {w} (tier {n}) runs and is healthy (up to {}s) before the next tier",
                        cfg.rollout_timeout.as_secs()
                    ))
                    .target(w)
                    .timeout(cfg.rollout_timeout + cfg.rollout_poll + Duration::from_secs(5))
                    .retry(RetryPolicy::none());
                if let Err(e) = run.read(gate, || t.platform.wait_rolled_out(w, opts.clone())).await {
                    run.finding(
                        Finding::critical(format!(
                            "{w} (tier {n}) did not become healthy; later tiers were not started"
                        ))
                        .with_evidence(e.chain()),
                    );
                    return Ok(RunOutcome::Unresolved);
                }
            }
        }
        if planned {
            return Ok(RunOutcome::Planned);
        }
        if t.probe.is_some() && !verify_healthy(&run, t, "verify_health").await? {
            return Ok(RunOutcome::Unresolved);
        }
        if acted {
            run.finding(Finding::info(format!(
                "{} tier(s) brought back in dependency order",
                order.tiers().len()
            )));
            Ok(RunOutcome::Recovered)
        } else {
            Ok(RunOutcome::Healthy)
        }
    })
    .await;
    run.conclude(body).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::platform::Platform;
    use crate::run::{ActionStatus, ApprovalPolicy, Mode};
    use crate::testing::{FakePlatform, Healing};

    fn w(name: &str) -> WorkloadRef {
        WorkloadRef::compose_service("shop", name).unwrap()
    }

    fn stack() -> Arc<FakePlatform> {
        Arc::new(
            FakePlatform::default()
                .with_workload(WorkloadStatus::healthy(w("db"), 1))
                .with_workload(WorkloadStatus::healthy(w("cache"), 1))
                .with_workload(WorkloadStatus::healthy(w("api"), 2)),
        )
    }

    fn order() -> RecoveryOrder {
        RecoveryOrder::new()
            .then([w("db"), w("cache")])
            .then([w("api")])
    }

    fn execute() -> RunContext {
        RunContext::builder()
            .mode(Mode::Execute)
            .allow_volatile_journal()
            .approver(ApprovalPolicy::approve_all("test"))
            .build()
    }

    #[tokio::test(start_paused = true)]
    async fn starts_tiers_in_dependency_order() {
        let p = stack();
        p.stop(&w("cache"), StopOptions::default()).await.unwrap();
        p.stop(&w("api"), StopOptions::default()).await.unwrap();
        let before = p.mutations().len();
        let report = complete_service_recovery(
            &execute(),
            &Targets::new(Arc::clone(&p) as _, w("api")),
            &order(),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Recovered);
        let started: Vec<String> = p.mutations()[before..].to_vec();
        assert_eq!(
            started,
            ["start shop/service/cache", "start shop/service/api"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dry_run_plans_and_changes_nothing() {
        let p = stack();
        p.stop(&w("db"), StopOptions::default()).await.unwrap();
        let before = p.mutations();
        let report = complete_service_recovery(
            &RunContext::builder().build(),
            &Targets::new(Arc::clone(&p) as _, w("api")),
            &order(),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Planned);
        assert_eq!(p.mutations(), before, "nothing changed");
        assert!(
            report
                .actions_with(ActionStatus::Planned)
                .any(|a| a.step == "start")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_tier_stops_before_its_dependents() {
        let p = Arc::new(
            FakePlatform::default()
                .with_workload(WorkloadStatus::crash_looping(w("db"), 1))
                .with_workload(WorkloadStatus::healthy(w("cache"), 1))
                .with_workload(WorkloadStatus::healthy(w("api"), 1))
                .restart_heals(Healing::StaysBroken),
        );
        p.stop(&w("api"), StopOptions::default()).await.unwrap();
        let mut cfg =
            super::super::RunbookConfig::default().with_rollout_timeout(Duration::from_secs(20));
        cfg.rollout_poll = Duration::from_secs(1);
        let t = Targets::new(Arc::clone(&p) as _, w("api")).with_config(cfg);
        let report = complete_service_recovery(&execute(), &t, &order())
            .await
            .unwrap();
        assert_eq!(report.outcome, RunOutcome::Unresolved);
        assert!(
            !p.mutations().iter().any(|m| m == "start shop/service/api"),
            "api not started on a broken db"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn healthy_stack_needs_nothing() {
        let p = stack();
        let report = complete_service_recovery(
            &execute(),
            &Targets::new(Arc::clone(&p) as _, w("api")),
            &order(),
        )
        .await
        .unwrap();
        assert_eq!(report.outcome, RunOutcome::Healthy);
        assert!(p.mutations().is_empty());
    }
}
