//! The ReplicaSet controller: keeps `spec.replicas` pods, reports ready and available counts.

use serde_json::{Value, json};

use super::{create, delete, owned_pods, pod_available, pod_ready, pods, write_status};
use crate::events::{self, EventType};
use crate::json;
use crate::meta;
use crate::store::State;

const COMPONENT: &str = "replicaset-controller";

pub(super) fn step(state: &mut State) {
    let sets: Vec<Value> = state.all("ReplicaSet", None).cloned().collect();
    for rs in sets {
        if !meta::is_terminating(&rs) {
            sync(state, &rs);
        }
    }
}

fn sync(state: &mut State, rs: &Value) {
    let namespace = meta::namespace(rs).to_owned();
    let want = json::i64_at(rs, &["spec", "replicas"]).unwrap_or(0);
    let mut pods_now = owned_pods(state, &namespace, meta::uid(rs));
    let have = i64::try_from(pods_now.len()).unwrap_or(i64::MAX);
    let template = json::at(rs, &["spec", "template"])
        .cloned()
        .unwrap_or(json!({}));
    if have < want {
        for _ in have..want {
            let name = format!("{}-{}", meta::name(rs), meta::random_suffix(5));
            let pod = pods::from_template(rs, &template, &name, &[], None);
            if create(state, pod).is_some() {
                events::record(
                    state,
                    rs,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                    COMPONENT,
                );
            }
        }
    } else if have > want {
        // Delete the least useful first: not ready, then unscheduled, then the newest.
        pods_now.sort_by_key(|p| {
            (
                pod_ready(p),
                json::str_at(p, &["spec", "nodeName"]).is_some(),
                std::cmp::Reverse(
                    json::str_at(p, &["metadata", "creationTimestamp"])
                        .unwrap_or_default()
                        .to_owned(),
                ),
            )
        });
        let excess = usize::try_from(have - want).unwrap_or(0);
        for pod in pods_now.iter().take(excess) {
            delete(state, "Pod", &namespace, meta::name(pod));
            events::record(
                state,
                rs,
                EventType::Normal,
                "SuccessfulDelete",
                &format!("Deleted pod: {}", meta::name(pod)),
                COMPONENT,
            );
        }
    }
    let Some(mut current) = state.get("ReplicaSet", &namespace, meta::name(rs)).cloned() else {
        return;
    };
    let pods_now = owned_pods(state, &namespace, meta::uid(rs));
    let min_ready = json::i64_at(rs, &["spec", "minReadySeconds"]).unwrap_or(0);
    let count = |f: &dyn Fn(&Value) -> bool| {
        i64::try_from(pods_now.iter().filter(|p| f(p)).count()).unwrap_or(0)
    };
    let total = count(&|_| true);
    let ready = count(&pod_ready);
    let available = count(&|p| pod_available(p, min_ready));
    let mut status = json!({
        "replicas": total,
        "fullyLabeledReplicas": total,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": json::i64_at(&current, &["metadata", "generation"]).unwrap_or(1),
    });
    if let Some(map) = status.as_object_mut() {
        map.retain(|k, v| k == "replicas" || k == "observedGeneration" || v.as_i64() != Some(0));
    }
    json::set_at(&mut current, &["status"], status);
    write_status(state, current);
}
