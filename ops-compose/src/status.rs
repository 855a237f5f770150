//! Workload status from container inspection, and kubectl-style rollout status.

use std::collections::BTreeSet;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use futures::future::join_all;
use ops_core::WorkloadRef;
use ops_core::platform::{
    Condition, Health, InstancePhase, InstanceStatus, RolloutStatus, Termination, WaitingReason,
    WorkloadStatus,
};

use crate::error::Result;
use crate::labels;
use crate::platform::ComposePlatform;

/// Docker's "never" timestamp.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub(crate) fn parse_time(s: Option<&str>) -> Option<jiff::Timestamp> {
    s.filter(|s| !s.starts_with("0001-"))
        .and_then(|s| s.parse().ok())
}

/// One container as an [`InstanceStatus`]; `None` when its name is not a valid instance name.
pub(crate) fn instance_status(inspect: &ContainerInspectResponse) -> Option<InstanceStatus> {
    let name = inspect.name.as_deref()?.trim_start_matches('/');
    let mut i = InstanceStatus::new(ops_core::ResourceName::new(name).ok()?);
    let state = inspect.state.clone().unwrap_or_default();
    let health = match state.health.as_ref().and_then(|h| h.status) {
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        Some(HealthStatusEnum::STARTING) => Health::Starting,
        _ => Health::None,
    };
    let exit_code = i32::try_from(state.exit_code.unwrap_or(0)).unwrap_or(i32::MAX);
    let oom = state.oom_killed.unwrap_or(false);
    i.restarts = u32::try_from(inspect.restart_count.unwrap_or(0)).unwrap_or(u32::MAX);
    i.image = inspect.config.as_ref().and_then(|c| c.image.clone());
    i.started_at = parse_time(state.started_at.as_deref());
    i.health = health;
    let finished = state
        .finished_at
        .as_deref()
        .filter(|f| *f != ZERO_TIME && !f.starts_with("0001-"));
    if finished.is_some() {
        let reason = if oom {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let mut t = Termination::new(reason, exit_code);
        t.finished_at = parse_time(finished);
        i.last_termination = Some(t);
    }
    let status = state.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
    i.phase = match status {
        ContainerStateStatusEnum::RUNNING => InstancePhase::Running,
        ContainerStateStatusEnum::PAUSED => InstancePhase::Paused,
        ContainerStateStatusEnum::CREATED | ContainerStateStatusEnum::RESTARTING => {
            InstancePhase::Pending
        }
        ContainerStateStatusEnum::EXITED if !oom && matches!(exit_code, 0 | 130 | 137 | 143) => {
            InstancePhase::Stopped
        }
        ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD => InstancePhase::Failed,
        _ => InstancePhase::Unknown,
    };
    // Between two crashes a crash-looping container is briefly `running`: restarted at least
    // twice, its last run ended in an error, and this run began moments ago.
    let between_crashes = status == ContainerStateStatusEnum::RUNNING
        && i.restarts >= 2
        && i.last_termination
            .as_ref()
            .is_some_and(|t| t.exit_code != 0)
        && i.started_at.is_some_and(|t| {
            jiff::Timestamp::now().duration_since(t) < jiff::SignedDuration::from_secs(30)
        });
    if status == ContainerStateStatusEnum::RESTARTING || between_crashes {
        // Docker backs off between restarts of a crashing container, as a kubelet does.
        i.waiting = Some(WaitingReason::CrashLoopBackOff);
    } else if status == ContainerStateStatusEnum::CREATED {
        i.waiting = Some(WaitingReason::ContainerCreating);
    }
    i.ready = i.phase == InstancePhase::Running
        && matches!(health, Health::Healthy | Health::None)
        && !between_crashes;
    Some(i)
}

/// Whether a container is ready (running, and healthy when it has a HEALTHCHECK), whether
/// it has exited for good (not restarting), and its state in words.
pub(crate) fn readiness(inspect: &ContainerInspectResponse) -> (bool, bool, String) {
    let state = inspect.state.clone().unwrap_or_default();
    let status = state.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
    let health = state.health.as_ref().and_then(|h| h.status);
    match status {
        ContainerStateStatusEnum::RUNNING => match health {
            Some(HealthStatusEnum::HEALTHY | HealthStatusEnum::NONE | HealthStatusEnum::EMPTY)
            | None => (true, false, "running".to_owned()),
            Some(HealthStatusEnum::UNHEALTHY) => (false, false, "running, unhealthy".to_owned()),
            Some(HealthStatusEnum::STARTING) => {
                (false, false, "running, health check pending".to_owned())
            }
        },
        // Restarting means its process died and the restart policy brings it back: a crash,
        // not a slow start (waiting for it would wait out the whole deadline of a crash loop).
        ContainerStateStatusEnum::RESTARTING => (
            false,
            true,
            format!(
                "crashed with code {} and restarting",
                state.exit_code.unwrap_or(0)
            ),
        ),
        ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD => (
            false,
            true,
            format!("exited with code {}", state.exit_code.unwrap_or(0)),
        ),
        other => (false, false, other.to_string()),
    }
}

impl ComposePlatform {
    /// The service's containers, inspected (vanished containers are skipped).
    pub(crate) async fn inspect_members(
        &self,
        workload: &WorkloadRef,
        operation: &'static str,
    ) -> Result<Vec<ContainerInspectResponse>> {
        let members = self.members(workload, operation).await?;
        let inspected = join_all(members.iter().map(|m| self.inspect(&m.id))).await;
        let mut out = Vec::with_capacity(inspected.len());
        for r in inspected {
            match r {
                Ok(i) => out.push(i),
                Err(e) if e.status_code() == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The service's status: every container with state, health, restarts, exit code and
    /// OOM kill.
    ///
    /// `desired` comes from the project, not from today's count: compose numbers a service's
    /// containers 1..N (`com.docker.compose.container-number`) and neither docker-compose
    /// 1.29 nor compose v2 writes the wanted count anywhere the engine keeps it (it lives in
    /// the compose file only), so `desired` is the highest container number seen, or the
    /// number of containers when that is larger. A container that crashed and was removed
    /// therefore shows as missing: `desired` exceeds the instances, and a condition
    /// `InstancesMissing` (status `True`, reason `ContainerRemoved`) names the numbers.
    /// Only the highest-numbered container's removal goes unseen.
    ///
    /// # Errors
    /// `NotFound` when no container carries the labels; engine errors.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo() -> Result<(), ops_compose::Error> {
    /// let platform = ops_compose::ComposePlatform::builder().build()?;
    /// let api = ops_core::WorkloadRef::compose_service("shop", "api").map_err(|_| ops_compose::Error::NotFound { operation: "demo", target: "shop/api".into() })?;
    /// let status = platform.workload_status(&api).await?;
    /// if status.instances.len() < status.desired as usize {
    ///     println!("{} containers missing", status.desired as usize - status.instances.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn workload_status(&self, workload: &WorkloadRef) -> Result<WorkloadStatus> {
        let inspected = self.inspect_members(workload, "workload").await?;
        let numbers: BTreeSet<u32> = inspected
            .iter()
            .map(|i| labels::container_number(i.config.as_ref().and_then(|c| c.labels.as_ref())))
            .filter(|n| *n > 0)
            .collect();
        let count = u32::try_from(inspected.len()).unwrap_or(u32::MAX);
        let highest = numbers.last().copied().unwrap_or(0);
        let desired = count.max(highest);
        let mut status = WorkloadStatus::new(workload.clone(), desired);
        let mut images: Vec<String> = Vec::new();
        for inspect in &inspected {
            if let Some(i) = instance_status(inspect) {
                if let Some(img) = &i.image
                    && !images.contains(img)
                {
                    images.push(img.clone());
                }
                status = status.with_instance(i);
            }
        }
        status.images = images;
        let missing: Vec<String> = (1..=highest)
            .filter(|n| !numbers.contains(n))
            .map(|n| n.to_string())
            .collect();
        if !missing.is_empty() {
            let mut c = Condition::new(
                MISSING_CONDITION,
                "True",
                Some("ContainerRemoved".to_owned()),
            );
            c.message = Some(format!(
                "{} of {desired} containers missing (container-number {}): compose does not replace a removed container; `docker compose up -d` or a scale brings it back",
                missing.len(),
                missing.join(", ")
            ));
            status.conditions.push(c);
        }
        Ok(status)
    }
}

/// The condition type [`ComposePlatform::workload_status`] sets when containers are missing.
///
/// # Examples
/// ```
/// assert_eq!(ops_compose::MISSING_CONDITION, "InstancesMissing");
/// ```
pub const MISSING_CONDITION: &str = "InstancesMissing";

/// Rollout status of a compose service: done when every container is running and, when it
/// has a HEALTHCHECK, healthy. Failed when a container exited and will not be restarted.
pub(crate) fn rollout_status(status: &WorkloadStatus) -> RolloutStatus {
    let name = status.workload.name().as_str();
    let desired = status.desired;
    let ready = u32::try_from(status.instances.iter().filter(|i| i.ready).count()).unwrap_or(0);
    if let Some(dead) = status
        .instances
        .iter()
        .find(|i| i.phase == InstancePhase::Failed)
    {
        let code = dead.last_termination.as_ref().map_or(0, |t| t.exit_code);
        return RolloutStatus::failed(format!(
            "service {name:?} rollout failed: container {} exited with code {code}",
            dead.name
        ));
    }
    if ready >= desired && desired > 0 {
        let mut s = RolloutStatus::complete(desired);
        s.message = format!("service {name:?} successfully rolled out");
        return s;
    }
    let detail = status
        .instances
        .iter()
        .find(|i| !i.ready)
        .map(|i| match (i.phase, i.health) {
            (InstancePhase::Running, Health::Starting) => {
                format!("{} is starting (health check pending)", i.name)
            }
            (InstancePhase::Running, Health::Unhealthy) => format!("{} is unhealthy", i.name),
            (InstancePhase::Stopped, _) => format!("{} is stopped", i.name),
            (_, _) if i.is_crash_looping() => format!("{} is restarting (crash loop)", i.name),
            (phase, _) => format!("{} is {phase:?}", i.name).to_lowercase(),
        })
        .or_else(|| {
            status
                .conditions
                .iter()
                .find(|c| c.kind == MISSING_CONDITION)
                .and_then(|c| c.message.clone())
        })
        .unwrap_or_default();
    RolloutStatus::progressing(
        ready,
        desired,
        format!(
            "Waiting for service {name:?} rollout to finish: {ready} of {desired} containers are running and healthy ({detail})..."
        ),
    )
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerState, Health as DockerHealth};

    use super::*;

    fn inspect(
        status: ContainerStateStatusEnum,
        health: Option<HealthStatusEnum>,
        exit: i64,
    ) -> ContainerInspectResponse {
        ContainerInspectResponse {
            name: Some("/shop-api-1".to_owned()),
            restart_count: Some(2),
            state: Some(ContainerState {
                status: Some(status),
                exit_code: Some(exit),
                health: health.map(|h| DockerHealth {
                    status: Some(h),
                    ..DockerHealth::default()
                }),
                finished_at: Some("2024-05-01T10:00:00.5Z".to_owned()),
                ..ContainerState::default()
            }),
            ..ContainerInspectResponse::default()
        }
    }

    #[test]
    fn unhealthy_running_container_is_not_ready() {
        let i = instance_status(&inspect(
            ContainerStateStatusEnum::RUNNING,
            Some(HealthStatusEnum::UNHEALTHY),
            0,
        ))
        .unwrap();
        assert_eq!(i.phase, InstancePhase::Running);
        assert!(!i.ready);
        assert_eq!(i.restarts, 2);
    }

    #[test]
    fn restarting_container_is_crash_looping() {
        let i = instance_status(&inspect(ContainerStateStatusEnum::RESTARTING, None, 3)).unwrap();
        assert!(i.is_crash_looping());
        assert_eq!(i.last_termination.unwrap().exit_code, 3);
    }

    #[test]
    fn rollout_waits_for_health_and_fails_on_exit() {
        let w = WorkloadRef::compose_service("shop", "api").unwrap();
        let starting = instance_status(&inspect(
            ContainerStateStatusEnum::RUNNING,
            Some(HealthStatusEnum::STARTING),
            0,
        ))
        .unwrap();
        let s = rollout_status(&WorkloadStatus::new(w.clone(), 1).with_instance(starting));
        assert!(!s.done && !s.failed);
        assert!(
            s.message
                .starts_with("Waiting for service \"api\" rollout to finish: 0 of 1")
        );
        let exited = instance_status(&inspect(ContainerStateStatusEnum::EXITED, None, 3)).unwrap();
        assert!(rollout_status(&WorkloadStatus::new(w.clone(), 1).with_instance(exited)).failed);
        let ok = instance_status(&inspect(ContainerStateStatusEnum::RUNNING, None, 0)).unwrap();
        assert!(rollout_status(&WorkloadStatus::new(w, 1).with_instance(ok)).done);
    }
}
