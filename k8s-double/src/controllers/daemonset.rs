//! The DaemonSet controller: one pod per simulated node, `ControllerRevisions`, `RollingUpdate` within
//! `maxUnavailable`, `OnDelete`.

use serde_json::{Value, json};

use super::{
    create, delete, int_or_percent, node_names, owned_pods, pod_available, pods, revision,
    write_status,
};
use crate::events::{self, EventType};
use crate::json;
use crate::meta;
use crate::store::State;

const COMPONENT: &str = "daemonset-controller";
const HASH_LABEL: &str = "controller-revision-hash";

pub(super) fn step(state: &mut State) {
    let sets: Vec<Value> = state.all("DaemonSet", None).cloned().collect();
    for ds in sets {
        if !meta::is_terminating(&ds) {
            sync(state, &ds);
        }
    }
}

fn node_of(pod: &Value) -> &str {
    json::str_at(pod, &["spec", "nodeName"]).unwrap_or_default()
}

#[allow(
    clippy::too_many_lines,
    reason = "one pass of the controller's sync, in its order"
)]
fn sync(state: &mut State, ds: &Value) {
    let namespace = meta::namespace(ds).to_owned();
    let Some(update) = revision::sync(state, ds, &[]) else {
        return;
    };
    let nodes = node_names(state.sim.nodes);
    let desired = i64::try_from(nodes.len()).unwrap_or(0);
    let generation = json::i64_at(ds, &["metadata", "generation"]).unwrap_or(1);
    let min_ready = json::i64_at(ds, &["spec", "minReadySeconds"]).unwrap_or(0);
    let template = json::at(ds, &["spec", "template"])
        .cloned()
        .unwrap_or(json!({}));
    let pods_now = owned_pods(state, &namespace, meta::uid(ds));
    let terminating_nodes: Vec<String> = state
        .all("Pod", Some(&namespace))
        .filter(|p| meta::controller_uid(p) == Some(meta::uid(ds)) && meta::is_terminating(p))
        .map(|p| node_of(p).to_owned())
        .collect();
    for node in &nodes {
        let on_node: Vec<&Value> = pods_now.iter().filter(|p| node_of(p) == node).collect();
        if on_node.is_empty() && !terminating_nodes.contains(node) {
            let name = format!("{}-{}", meta::name(ds), meta::random_suffix(5));
            let labels = [
                (HASH_LABEL, update.hash.clone()),
                ("pod-template-generation", generation.to_string()),
            ];
            let pod = pods::from_template(ds, &template, &name, &labels, Some(node));
            if create(state, pod).is_some() {
                events::record(
                    state,
                    ds,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                    COMPONENT,
                );
            }
        }
        for extra in on_node.iter().skip(1) {
            delete(state, "Pod", &namespace, meta::name(extra));
        }
    }
    let outdated = |p: &Value| {
        json::str_at(p, &["metadata", "labels", HASH_LABEL]) != Some(update.hash.as_str())
    };
    if json::str_at(ds, &["spec", "updateStrategy", "type"]) != Some("OnDelete") {
        let max_unavailable = int_or_percent(
            json::at(
                ds,
                &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
            ),
            desired,
            true,
            1,
        )
        .max(1);
        let pods_now = owned_pods(state, &namespace, meta::uid(ds));
        let available = i64::try_from(
            pods_now
                .iter()
                .filter(|p| pod_available(p, min_ready))
                .count(),
        )
        .unwrap_or(0);
        let mut budget = max_unavailable - (desired - available);
        let mut old: Vec<&Value> = pods_now.iter().filter(|p| outdated(p)).collect();
        old.sort_by_key(|p| pod_available(p, min_ready));
        for pod in old {
            let unavailable = !pod_available(pod, min_ready);
            if !unavailable && budget <= 0 {
                break;
            }
            if !unavailable {
                budget -= 1;
            }
            delete(state, "Pod", &namespace, meta::name(pod));
            events::record(
                state,
                ds,
                EventType::Normal,
                "SuccessfulDelete",
                &format!("Deleted pod: {}", meta::name(pod)),
                COMPONENT,
            );
        }
    }
    let Some(mut current) = state.get("DaemonSet", &namespace, meta::name(ds)).cloned() else {
        return;
    };
    let pods_now = owned_pods(state, &namespace, meta::uid(ds));
    let count = |f: &dyn Fn(&Value) -> bool| {
        i64::try_from(pods_now.iter().filter(|p| f(p)).count()).unwrap_or(0)
    };
    let available = count(&|p| pod_available(p, min_ready));
    let status = json!({
        "currentNumberScheduled": count(&|p| nodes.iter().any(|n| n == node_of(p))),
        "numberMisscheduled": 0,
        "desiredNumberScheduled": desired,
        "numberReady": count(&super::pod_ready),
        "observedGeneration": json::i64_at(&current, &["metadata", "generation"]).unwrap_or(1),
        "updatedNumberScheduled": count(&|p| !outdated(p)),
        "numberAvailable": available,
        "numberUnavailable": (desired - available).max(0),
    });
    let mut status = status;
    if let Some(map) = status.as_object_mut() {
        map.retain(|k, v| {
            !matches!(k.as_str(), "numberAvailable" | "numberUnavailable") || v.as_i64() != Some(0)
        });
    }
    json::set_at(&mut current, &["status"], status);
    write_status(state, current);
}
