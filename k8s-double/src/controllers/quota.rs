//! The resource quota controller: `status.hard` follows `spec.hard` and `status.used` counts
//! what the namespace holds for each resource the quota names: pods that have not terminated
//! and their requests and limits (`requests.cpu`/`cpu`, `requests.memory`/`memory`,
//! `limits.cpu`, `limits.memory`), object counts (`pods`, `services`, `configmaps`,
//! `secrets`, `count/<resource>[.<group>]`). A resource it does not know stays at `0`.
//! Unlike the real API server, the double does not refuse creations over a quota.

use serde_json::{Map, Value, json};

use super::write_status;
use crate::json;
use crate::meta;
use crate::metrics::{cpu_quantity, memory_quantity};
use crate::quantity;
use crate::resources;
use crate::store::State;

pub(super) fn step(state: &mut State) {
    let quotas: Vec<Value> = state
        .all("ResourceQuota", None)
        .filter(|q| !meta::is_terminating(q))
        .cloned()
        .collect();
    for mut quota in quotas {
        let ns = meta::namespace(&quota).to_owned();
        let hard = json::at(&quota, &["spec", "hard"])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut used = Map::new();
        for resource in hard.keys() {
            used.insert(resource.clone(), json!(usage(state, &ns, resource)));
        }
        let status = json!({"hard": hard, "used": used});
        if json::at(&quota, &["status"]) == Some(&status) {
            continue;
        }
        json::set_at(&mut quota, &["status"], status);
        write_status(state, quota);
    }
}

/// Pods that count against a quota: not terminated (phase Succeeded/Failed) and not deleted.
fn live_pods<'a>(state: &'a State, ns: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    state.all("Pod", Some(ns)).filter(|p| {
        !meta::is_terminating(p)
            && !matches!(
                json::str_at(p, &["status", "phase"]),
                Some("Succeeded" | "Failed")
            )
    })
}

/// A pod's request or limit of `resource` as the quota counts it: the larger of the sum over
/// its containers and its largest init container.
fn pod_amount(pod: &Value, kind: &str, resource: &str, read: fn(&str) -> u64) -> u64 {
    let of = |c: &Value| json::str_at(c, &["resources", kind, resource]).map_or(0, read);
    let sum: u64 = json::array_at(pod, &["spec", "containers"])
        .iter()
        .map(of)
        .sum();
    let init = json::array_at(pod, &["spec", "initContainers"])
        .iter()
        .map(of)
        .max()
        .unwrap_or(0);
    sum.max(init)
}

fn usage(state: &State, ns: &str, resource: &str) -> String {
    let compute = |kind: &str, what: &str| -> String {
        let read: fn(&str) -> u64 = if what == "cpu" {
            quantity::millis
        } else {
            quantity::units
        };
        let total: u64 = live_pods(state, ns)
            .map(|p| pod_amount(p, kind, what, read))
            .sum();
        if what == "cpu" {
            cpu_quantity(total)
        } else {
            memory_quantity(total)
        }
    };
    match resource {
        "cpu" | "requests.cpu" => compute("requests", "cpu"),
        "memory" | "requests.memory" => compute("requests", "memory"),
        "limits.cpu" => compute("limits", "cpu"),
        "limits.memory" => compute("limits", "memory"),
        "pods" | "count/pods" => live_pods(state, ns).count().to_string(),
        other => {
            let plural = other.strip_prefix("count/").unwrap_or(other);
            let (plural, group) = plural.split_once('.').unwrap_or((plural, ""));
            resources::RESOURCES
                .iter()
                .find(|r| r.plural == plural && r.group == group && r.namespaced)
                .map_or_else(
                    || "0".to_owned(),
                    |r| state.all(r.kind, Some(ns)).count().to_string(),
                )
        }
    }
}
