//! Rollout status as kubectl decides it, one rule set per kind, and a workload's state with
//! its pods ([`WorkloadStatus`]).
//!
//! The verdicts and their messages follow kubectl's status viewers: the tests run
//! `kubectl rollout status --watch=false` on the same objects and compare.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use ops_core::WorkloadRef;
use ops_core::platform::{
    Condition, Health, InstancePhase, InstanceStatus, RolloutStatus, Termination, WaitingReason,
    WorkloadStatus,
};

use crate::error::{Error, Result};
use crate::platform::KubePlatform;
use crate::workload::{Object, revision_of};

/// What kubectl's status viewer says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Still rolling out (kubectl keeps waiting), with kubectl's message.
    Waiting(String),
    /// Rolled out, with kubectl's message.
    Done(String),
    /// The rollout failed (kubectl exits non-zero), with kubectl's message.
    Failed(String),
    /// kubectl refuses to give a status (e.g. an `OnDelete` strategy), with its message.
    Refused(String),
}

fn int(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// kubectl's Deployment rule: the spec must be observed, then no deadline exceeded, every
/// replica updated, no old replica left, every updated replica available.
pub(crate) fn deployment_verdict(d: &Deployment) -> Verdict {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return Verdict::Waiting("Waiting for deployment spec update to be observed...".to_owned());
    }
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    if progressing.is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded")) {
        return Verdict::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let updated = int(status.updated_replicas);
    let replicas = int(status.replicas);
    let available = int(status.available_replicas);
    if let Some(want) = d.spec.as_ref().and_then(|s| s.replicas)
        && updated < want
    {
        return Verdict::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {want} new \
             replicas have been updated..."
        ));
    }
    if replicas > updated {
        return Verdict::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending \
             termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return Verdict::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} \
             updated replicas are available..."
        ));
    }
    Verdict::Done(format!("deployment {name:?} successfully rolled out"))
}

const ROLLING_ONLY: &str = "rollout status is only available for RollingUpdate strategy type";

/// kubectl's StatefulSet rule: `RollingUpdate` only; observed; every pod ready; then the
/// partition (the API server always sets one, 0 by default) decides.
pub(crate) fn statefulset_verdict(s: &StatefulSet) -> Verdict {
    let spec = s.spec.clone().unwrap_or_default();
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    if strategy.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return Verdict::Refused(ROLLING_ONLY.to_owned());
    }
    let status = s.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return Verdict::Waiting(
            "Waiting for statefulset spec update to be observed...".to_owned(),
        );
    }
    let ready = int(status.ready_replicas);
    if let Some(want) = spec.replicas
        && ready < want
    {
        return Verdict::Waiting(format!("Waiting for {} pods to be ready...", want - ready));
    }
    if let Some(rolling) = &strategy.rolling_update {
        if let (Some(want), Some(partition)) = (spec.replicas, rolling.partition)
            && status.updated_replicas.unwrap_or(0) < want - partition
        {
            return Verdict::Waiting(format!(
                "Waiting for partitioned roll out to finish: {} out of {} new pods have been \
                 updated...",
                int(status.updated_replicas),
                want - partition
            ));
        }
        return Verdict::Done(format!(
            "partitioned roll out complete: {} new pods have been updated...",
            int(status.updated_replicas)
        ));
    }
    let update = status.update_revision.clone().unwrap_or_default();
    let current = status.current_revision.clone().unwrap_or_default();
    if update != current {
        return Verdict::Waiting(format!(
            "waiting for statefulset rolling update to complete {} pods at revision {update}...",
            int(status.updated_replicas)
        ));
    }
    Verdict::Done(format!(
        "statefulset rolling update complete {} pods at revision {current}...",
        int(status.current_replicas)
    ))
}

/// kubectl's DaemonSet rule: `RollingUpdate` only; observed; every scheduled pod updated and
/// available.
pub(crate) fn daemonset_verdict(d: &DaemonSet) -> Verdict {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let strategy = d
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.clone());
    if strategy.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return Verdict::Refused(ROLLING_ONLY.to_owned());
    }
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Verdict::Waiting("Waiting for daemon set spec update to be observed...".to_owned());
    }
    let desired = status.desired_number_scheduled;
    let updated = int(status.updated_number_scheduled);
    if updated < desired {
        return Verdict::Waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new \
             pods have been updated..."
        ));
    }
    let available = int(status.number_available);
    if available < desired {
        return Verdict::Waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {available} of {desired} \
             updated pods are available..."
        ));
    }
    Verdict::Done(format!("daemon set {name:?} successfully rolled out"))
}

/// The verdict for any of the three kinds.
pub(crate) fn verdict(object: &Object) -> Verdict {
    match object {
        Object::Deployment(d) => deployment_verdict(d),
        Object::StatefulSet(s) => statefulset_verdict(s),
        Object::DaemonSet(d) => daemonset_verdict(d),
    }
}

/// Counts shown with a verdict: updated-and-available against desired.
fn counts(object: &Object) -> (u32, u32) {
    let clamp = |v: i32| u32::try_from(v.max(0)).unwrap_or(0);
    match object {
        Object::Deployment(d) => {
            let st = d.status.clone().unwrap_or_default();
            let available = int(st.available_replicas).min(int(st.updated_replicas));
            (clamp(available), clamp(object.spec_replicas().unwrap_or(1)))
        }
        Object::StatefulSet(s) => {
            let st = s.status.clone().unwrap_or_default();
            let ready = int(st.ready_replicas).min(int(st.updated_replicas));
            (clamp(ready), clamp(object.spec_replicas().unwrap_or(1)))
        }
        Object::DaemonSet(d) => {
            let st = d.status.clone().unwrap_or_default();
            let available = int(st.number_available).min(int(st.updated_number_scheduled));
            (clamp(available), clamp(st.desired_number_scheduled))
        }
    }
}

/// The revision a workload is at: a Deployment's revision annotation; for StatefulSets and
/// DaemonSets the number is read from their `ControllerRevisions` by the caller.
fn object_revision(object: &Object) -> Option<u64> {
    match object {
        Object::Deployment(d) => revision_of(&d.metadata),
        _ => None,
    }
}

/// Turn a container's state into the instance's waiting reason and last termination.
fn container_state(c: &ContainerStatus) -> (Option<WaitingReason>, Option<Termination>) {
    let state = c.state.clone().unwrap_or_default();
    let waiting = state
        .waiting
        .and_then(|w| w.reason)
        .map(|r| WaitingReason::parse(&r));
    let terminated = c
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .or(state.terminated);
    let termination = terminated.map(|t| {
        let mut out = Termination::new(t.reason.unwrap_or_else(|| "Error".to_owned()), t.exit_code);
        out.finished_at = t.finished_at.map(|f| f.0);
        out
    });
    (waiting, termination)
}

/// A workload condition (the three kinds' condition types have the same fields).
fn condition(
    kind: String,
    status: String,
    reason: Option<String>,
    message: Option<String>,
) -> Condition {
    let mut out = Condition::new(kind, status, reason);
    out.message = message;
    out
}

/// One pod as an [`InstanceStatus`].
pub(crate) fn instance(pod: &Pod, revision: Option<u64>) -> Option<InstanceStatus> {
    let name = ops_core::ResourceName::new(pod.metadata.name.as_deref()?).ok()?;
    let mut out = InstanceStatus::new(name);
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    out.phase = match status.phase.as_deref() {
        Some("Pending") => InstancePhase::Pending,
        Some("Running") => InstancePhase::Running,
        Some("Succeeded") => InstancePhase::Succeeded,
        Some("Failed") => InstancePhase::Failed,
        _ => InstancePhase::Unknown,
    };
    out.ready = ready;
    out.health = match (out.phase, ready) {
        (_, true) => Health::Healthy,
        (InstancePhase::Pending, false) => Health::Starting,
        _ => Health::Unhealthy,
    };
    let containers = status.container_statuses.unwrap_or_default();
    out.restarts = containers
        .iter()
        .map(|c| u32::try_from(c.restart_count.max(0)).unwrap_or(0))
        .sum();
    out.waiting = None;
    out.last_termination = None;
    for c in &containers {
        let (waiting, termination) = container_state(c);
        if out.waiting.is_none() {
            out.waiting = waiting;
        }
        // An OOM kill on any container is the one to report.
        if out.last_termination.is_none()
            || termination.as_ref().is_some_and(Termination::is_oom_killed)
        {
            out.last_termination = termination.or(out.last_termination.take());
        }
    }
    out.image = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone());
    out.node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    out.started_at = status.start_time.map(|t| t.0);
    out.revision = revision;
    Some(out)
}

impl KubePlatform {
    /// The rollout verdict as a [`RolloutStatus`].
    pub(crate) async fn rollout_verdict(&self, workload: &WorkloadRef) -> Result<RolloutStatus> {
        let object = self.object("rollout_status", workload).await?;
        let (updated_available, desired) = counts(&object);
        let mut status = match verdict(&object) {
            Verdict::Done(message) => {
                let mut s = RolloutStatus::complete(desired);
                s.message = message;
                s
            }
            Verdict::Waiting(message) => {
                RolloutStatus::progressing(updated_available, desired, message)
            }
            Verdict::Failed(message) => {
                let mut s = RolloutStatus::failed(message);
                s.updated_available = updated_available;
                s.desired = desired;
                s
            }
            Verdict::Refused(reason) => {
                return Err(Error::Unsupported {
                    operation: "rollout_status",
                    target: workload.to_string(),
                    reason,
                });
            }
        };
        status.revision = object_revision(&object);
        Ok(status)
    }

    /// The workload's counts, conditions and pods.
    pub(crate) async fn status_of(&self, workload: &WorkloadRef) -> Result<WorkloadStatus> {
        let object = self.object("workload", workload).await?;
        let pods = self.pods("workload", workload, &object).await?;
        let clamp = |v: Option<i32>| u32::try_from(v.unwrap_or(0).max(0)).unwrap_or(0);
        let (desired, ready, available, updated, conditions) = match &object {
            Object::Deployment(d) => {
                let st = d.status.clone().unwrap_or_default();
                let conds = st
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| condition(c.type_, c.status, c.reason, c.message));
                (
                    clamp(object.spec_replicas()),
                    clamp(st.ready_replicas),
                    clamp(st.available_replicas),
                    clamp(st.updated_replicas),
                    conds.collect::<Vec<_>>(),
                )
            }
            Object::StatefulSet(s) => {
                let st = s.status.clone().unwrap_or_default();
                let conds = st
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| condition(c.type_, c.status, c.reason, c.message));
                (
                    clamp(object.spec_replicas()),
                    clamp(st.ready_replicas),
                    clamp(st.available_replicas),
                    clamp(st.updated_replicas),
                    conds.collect(),
                )
            }
            Object::DaemonSet(d) => {
                let st = d.status.clone().unwrap_or_default();
                let conds = st
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| condition(c.type_, c.status, c.reason, c.message));
                (
                    clamp(Some(st.desired_number_scheduled)),
                    clamp(Some(st.number_ready)),
                    clamp(st.number_available),
                    clamp(st.updated_number_scheduled),
                    conds.collect(),
                )
            }
        };
        let mut out = WorkloadStatus::new(workload.clone(), desired);
        out.ready = ready;
        out.available = available;
        out.updated = updated;
        out.paused = object.paused();
        out.revision = object_revision(&object);
        out.images = object.images();
        out.conditions = conditions;
        out.instances = pods
            .iter()
            .filter_map(|(pod, revision)| instance(pod, *revision))
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn deployment_waits_for_the_spec_to_be_observed() {
        let d = deployment(serde_json::json!({
            "metadata": {"name": "api", "generation": 3},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
        }));
        assert_eq!(
            deployment_verdict(&d),
            Verdict::Waiting("Waiting for deployment spec update to be observed...".to_owned())
        );
    }

    #[test]
    fn deadline_exceeded_is_a_failure_even_when_counts_look_done() {
        let d = deployment(serde_json::json!({
            "metadata": {"name": "api", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
              "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}
        }));
        assert_eq!(
            deployment_verdict(&d),
            Verdict::Failed("deployment \"api\" exceeded its progress deadline".to_owned())
        );
    }

    #[test]
    fn ondelete_statefulsets_are_refused() {
        let s: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db"},
            "spec": {"serviceName": "db", "selector": {}, "template": {}, "updateStrategy": {"type": "OnDelete"}}
        }))
        .unwrap_or_default();
        assert_eq!(
            statefulset_verdict(&s),
            Verdict::Refused(ROLLING_ONLY.to_owned())
        );
    }
}
