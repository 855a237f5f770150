//! Events of a workload, its `ReplicaSets` and its pods (what `kubectl describe` shows for each,
//! gathered in one list), newest last; and deleting a pod only when a controller will bring
//! it back.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, Preconditions};
use ops_core::platform::{DeleteOptions, EventOptions, PlatformEvent};
use ops_core::{InstanceRef, WorkloadRef};

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};
use crate::workload::{Object, controller_of};

/// When an event last happened: its last timestamp, event time, or first timestamp.
fn when(e: &Event) -> Option<jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
}

pub(crate) fn to_event(e: &Event) -> PlatformEvent {
    let object = format!(
        "{}/{}",
        e.involved_object
            .kind
            .clone()
            .unwrap_or_default()
            .to_lowercase(),
        e.involved_object.name.clone().unwrap_or_default()
    );
    let mut out = PlatformEvent::new(
        e.reason.clone().unwrap_or_default(),
        ops_core::text::evidence(e.message.as_deref().unwrap_or_default(), 1000),
        object,
    );
    out.at = when(e);
    out.warning = e.type_.as_deref() == Some("Warning");
    out.count = e
        .count
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(1)
        .max(1);
    out
}

/// Keep the events `opts` asks for, oldest first, at most `limit` (the newest ones).
pub(crate) fn select(
    mut events: Vec<PlatformEvent>,
    opts: &EventOptions,
    now: jiff::Timestamp,
) -> Vec<PlatformEvent> {
    if opts.warnings_only {
        events.retain(|e| e.warning);
    }
    if let Some(since) = opts.since {
        let since = jiff::SignedDuration::try_from(since).unwrap_or(jiff::SignedDuration::MAX);
        let cutoff = now.checked_sub(since).unwrap_or(jiff::Timestamp::MIN);
        events.retain(|e| e.at.is_none_or(|at| at >= cutoff));
    }
    events.sort_by_key(|e| e.at);
    if let Some(limit) = opts.limit
        && events.len() > limit
    {
        events.drain(..events.len() - limit);
    }
    events
}

impl KubePlatform {
    /// Events of the workload, its `ReplicaSets` and its pods.
    pub(crate) async fn events_of(
        &self,
        workload: &WorkloadRef,
        opts: &EventOptions,
    ) -> Result<Vec<PlatformEvent>> {
        let object = self.object("events", workload).await?;
        let mut uids: BTreeSet<String> = object.uid().map(str::to_owned).into_iter().collect();
        if let Object::Deployment(_) = object {
            for rs in self.replica_sets("events", workload, &object).await? {
                uids.extend(rs.metadata.uid);
            }
        }
        for (pod, _) in self.pods("events", workload, &object).await? {
            uids.extend(pod.metadata.uid);
        }
        let ns = workload.namespace().as_str();
        let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("list", "events", ns);
        let lp = ListParams::default();
        let target = workload.to_string();
        // One list of the namespace's events, matched by uid: events of pods that are gone
        // since still count (they explain what happened).
        let list = self
            .call("events", &target, &req, Retry::Transient, || api.list(&lp))
            .await?;
        let name = workload.name().as_str();
        let events = list
            .items
            .iter()
            .filter(|e| {
                let involved = &e.involved_object;
                involved.uid.as_ref().is_some_and(|u| uids.contains(u))
                    || involved
                        .name
                        .as_deref()
                        .is_some_and(|n| n == name || n.starts_with(&format!("{name}-")))
            })
            .map(to_event)
            .collect();
        Ok(select(events, opts, jiff::Timestamp::now()))
    }

    /// Delete a pod that a controller will replace; a pod without one is refused.
    pub(crate) async fn delete_pod(
        &self,
        instance: &InstanceRef,
        opts: &DeleteOptions,
    ) -> Result<()> {
        let workload = instance.workload();
        let ns = workload.namespace().as_str();
        let name = instance.name().as_str();
        let target = instance.to_string();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("get", "pods", ns);
        let pod = self
            .call("delete_instance", &target, &req, Retry::Transient, || {
                api.get(name)
            })
            .await?;
        if controller_of(&pod.metadata).is_none() {
            return Err(Error::Refused {
                operation: "delete_instance",
                target,
                reason: "the pod has no controller: deleted, it would not come back".to_owned(),
            });
        }
        // Only a pod of this workload: an instance ref naming another workload's pod is refused.
        let object = self.object("delete_instance", workload).await?;
        let ours = self
            .pods("delete_instance", workload, &object)
            .await?
            .iter()
            .any(|(p, _)| p.metadata.uid == pod.metadata.uid);
        if !ours {
            return Err(Error::NotFound {
                operation: "delete_instance",
                target,
                reason: format!("pod {name} is not controlled by {workload}"),
            });
        }
        let dp = DeleteParams {
            dry_run: opts.dry_run,
            grace_period_seconds: opts
                .grace_period
                .map(|d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
            // Delete exactly the pod that was checked, not a namesake created meanwhile.
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let req = Request::new("delete", "pods", ns);
        // A second delivery of a delete that went through would answer 404: send it once.
        self.call("delete_instance", &target, &req, Retry::RefusedOnly, || {
            api.delete(name, &dp)
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, at: i64, warning: bool) -> PlatformEvent {
        let mut e = PlatformEvent::new(reason, "m", "pod/x");
        e.at = jiff::Timestamp::from_second(at).ok();
        e.warning = warning;
        e
    }

    #[test]
    fn newest_last_limited_to_the_newest() {
        let now = jiff::Timestamp::from_second(1_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let all = vec![
            event("c", 900, true),
            event("a", 100, false),
            event("b", 500, true),
        ];
        let mut opts = EventOptions::default();
        opts.limit = Some(2);
        let kept: Vec<_> = select(all.clone(), &opts, now)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(kept, ["b", "c"]);
        let mut opts = EventOptions::default();
        opts.since = Some(Duration::from_secs(200));
        let kept: Vec<_> = select(all.clone(), &opts, now)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(kept, ["c"]);
        let mut opts = EventOptions::default();
        opts.warnings_only = true;
        let kept: Vec<_> = select(all, &opts, now)
            .into_iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(kept, ["b", "c"]);
    }
}
