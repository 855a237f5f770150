//! The StatefulSet controller: ordinal pods, `ControllerRevisions`, `RollingUpdate` with a partition
//! (highest ordinal first, one at a time) and `OnDelete`.

use serde_json::{Value, json};

use super::{create, delete, owned_pods, pod_available, pod_ready, pods, revision, write_status};
use crate::events::{self, EventType};
use crate::json;
use crate::meta;
use crate::store::State;

const COMPONENT: &str = "statefulset-controller";
const HASH_LABEL: &str = "controller-revision-hash";

pub(super) fn step(state: &mut State) {
    let sets: Vec<Value> = state.all("StatefulSet", None).cloned().collect();
    for sts in sets {
        if !meta::is_terminating(&sts) {
            sync(state, &sts);
        }
    }
}

/// Deletes one of the set's pods and records it as the controller does.
fn delete_pod(state: &mut State, sts: &Value, pod: &str) {
    delete(state, "Pod", meta::namespace(sts), pod);
    let message = format!(
        "delete Pod {pod} in StatefulSet {} successful",
        meta::name(sts)
    );
    events::record(
        state,
        sts,
        EventType::Normal,
        "SuccessfulDelete",
        &message,
        COMPONENT,
    );
}

fn ordinal(sts: &Value, pod: &Value) -> Option<i64> {
    meta::name(pod)
        .strip_prefix(meta::name(sts))
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|n| n.parse().ok())
}

#[allow(
    clippy::too_many_lines,
    reason = "one pass of the controller's sync, in its order"
)]
fn sync(state: &mut State, sts: &Value) {
    let namespace = meta::namespace(sts).to_owned();
    let current_rev = json::str_at(sts, &["status", "currentRevision"])
        .unwrap_or_default()
        .to_owned();
    let Some(update) = revision::sync(state, sts, &[current_rev.as_str()]) else {
        return;
    };
    let current_rev = if current_rev.is_empty() {
        update.name.clone()
    } else {
        current_rev
    };
    let want = json::i64_at(sts, &["spec", "replicas"]).unwrap_or(1);
    let rolling = json::str_at(sts, &["spec", "updateStrategy", "type"]) != Some("OnDelete");
    let partition = json::i64_at(
        sts,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
    )
    .unwrap_or(0);
    let parallel = json::str_at(sts, &["spec", "podManagementPolicy"]) == Some("Parallel");
    let min_ready = json::i64_at(sts, &["spec", "minReadySeconds"]).unwrap_or(0);
    let mut pods_now = owned_pods(state, &namespace, meta::uid(sts));
    pods_now.sort_by_key(|p| ordinal(sts, p).unwrap_or(i64::MAX));
    let pod_of = |pods: &[Value], i: i64| pods.iter().find(|p| ordinal(sts, p) == Some(i)).cloned();
    let terminating = state
        .all("Pod", Some(&namespace))
        .any(|p| meta::controller_uid(p) == Some(meta::uid(sts)) && meta::is_terminating(p));

    // Create missing ordinals (in order, waiting for readiness unless Parallel).
    for i in 0..want {
        if pod_of(&pods_now, i).is_some() {
            continue;
        }
        if !parallel
            && (terminating || (0..i).any(|j| pod_of(&pods_now, j).is_none_or(|p| !pod_ready(&p))))
        {
            break;
        }
        let use_current = rolling && i < partition && current_rev != update.name;
        let (rev_name, template) = if use_current {
            let t = state
                .get("ControllerRevision", &namespace, &current_rev)
                .map_or_else(
                    || {
                        json::at(sts, &["spec", "template"])
                            .cloned()
                            .unwrap_or(json!({}))
                    },
                    revision::template,
                );
            (current_rev.clone(), t)
        } else {
            (
                update.name.clone(),
                json::at(sts, &["spec", "template"])
                    .cloned()
                    .unwrap_or(json!({})),
            )
        };
        let name = format!("{}-{i}", meta::name(sts));
        let labels = [
            (HASH_LABEL, rev_name),
            ("statefulset.kubernetes.io/pod-name", name.clone()),
            ("apps.kubernetes.io/pod-index", i.to_string()),
        ];
        let mut pod = pods::from_template(sts, &template, &name, &labels, None);
        json::set_at(&mut pod, &["spec", "hostname"], json!(name));
        if let Some(svc) = json::str_at(sts, &["spec", "serviceName"]).filter(|s| !s.is_empty()) {
            json::set_at(&mut pod, &["spec", "subdomain"], json!(svc));
        }
        if create(state, pod).is_some() {
            events::record(
                state,
                sts,
                EventType::Normal,
                "SuccessfulCreate",
                &format!(
                    "create Pod {name} in StatefulSet {} successful",
                    meta::name(sts)
                ),
                COMPONENT,
            );
        }
        if !parallel {
            break;
        }
    }

    // Scale down from the highest ordinal.
    let extra: Vec<Value> = pods_now
        .iter()
        .filter(|p| ordinal(sts, p).is_none_or(|i| i >= want))
        .cloned()
        .collect();
    for pod in extra.iter().rev() {
        delete_pod(state, sts, meta::name(pod));
        if !parallel {
            break;
        }
    }

    // Rolling update: replace the highest outdated ordinal at or above the partition once all are ready.
    let pods_now = owned_pods(state, &namespace, meta::uid(sts));
    let all_ready = i64::try_from(pods_now.len()).unwrap_or(0) == want
        && pods_now.iter().all(pod_ready)
        && !terminating;
    if rolling && all_ready {
        for i in (partition.max(0)..want).rev() {
            if let Some(pod) = pod_of(&pods_now, i)
                && json::str_at(&pod, &["metadata", "labels", HASH_LABEL])
                    != Some(update.name.as_str())
            {
                delete_pod(state, sts, meta::name(&pod));
                break;
            }
        }
    }

    // Status.
    let Some(mut current) = state
        .get("StatefulSet", &namespace, meta::name(sts))
        .cloned()
    else {
        return;
    };
    let pods_now = owned_pods(state, &namespace, meta::uid(sts));
    let count = |f: &dyn Fn(&Value) -> bool| {
        i64::try_from(pods_now.iter().filter(|p| f(p)).count()).unwrap_or(0)
    };
    let at =
        |rev: &str, p: &Value| json::str_at(p, &["metadata", "labels", HASH_LABEL]) == Some(rev);
    let replicas = count(&|_| true);
    let ready = count(&pod_ready);
    let updated = count(&|p| at(&update.name, p));
    let mut current_rev = current_rev;
    let mut current_replicas = count(&|p| at(&current_rev, p));
    if rolling && updated == replicas && ready == replicas && replicas == want {
        current_rev.clone_from(&update.name);
        current_replicas = updated;
    }
    let status = json!({
        "observedGeneration": json::i64_at(&current, &["metadata", "generation"]).unwrap_or(1),
        "replicas": replicas,
        "readyReplicas": ready,
        "currentReplicas": current_replicas,
        "updatedReplicas": updated,
        "availableReplicas": count(&|p| pod_available(p, min_ready)),
        "currentRevision": current_rev,
        "updateRevision": update.name,
        "collisionCount": 0,
    });
    json::set_at(&mut current, &["status"], status);
    write_status(state, current);
    let _ = update.hash;
}
