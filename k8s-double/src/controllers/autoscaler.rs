//! The horizontal pod autoscaler controller, as far as it acts without metrics: a scale target
//! whose replicas lie outside `[minReplicas, maxReplicas]` is brought to the nearest bound
//! (kube-controller-manager's `reconcileAutoscaler` does this before it reads any metric), and
//! `status.currentReplicas`/`desiredReplicas` follow. A target at 0 replicas is left alone
//! (the real controller treats it as scaling disabled). Inside the bounds the double does not
//! scale: it has no metrics pipeline to compute a recommendation from.

use serde_json::{Value, json};

use super::{write, write_status};
use crate::json;
use crate::meta;
use crate::store::State;

pub(super) fn step(state: &mut State) {
    let autoscalers: Vec<Value> = state
        .all("HorizontalPodAutoscaler", None)
        .filter(|h| !meta::is_terminating(h))
        .cloned()
        .collect();
    for mut hpa in autoscalers {
        let ns = meta::namespace(&hpa).to_owned();
        let Some(kind) = json::str_at(&hpa, &["spec", "scaleTargetRef", "kind"]).map(str::to_owned)
        else {
            continue;
        };
        let Some(name) = json::str_at(&hpa, &["spec", "scaleTargetRef", "name"]).map(str::to_owned)
        else {
            continue;
        };
        if !matches!(kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet") {
            continue;
        }
        let Some(mut target) = state.get(&kind, &ns, &name).cloned() else {
            continue;
        };
        if meta::is_terminating(&target) {
            continue;
        }
        let current = json::at(&target, &["spec", "replicas"])
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let min = json::at(&hpa, &["spec", "minReplicas"])
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let max = json::at(&hpa, &["spec", "maxReplicas"])
            .and_then(Value::as_i64)
            .unwrap_or(current);
        let desired = if current == 0 && min != 0 {
            current
        } else {
            current.clamp(min.min(max), max)
        };
        if desired != current {
            json::set_at(&mut target, &["spec", "replicas"], json!(desired));
            write(state, target);
        }
        let mut status = json::at(&hpa, &["status"])
            .cloned()
            .unwrap_or_else(|| json!({}));
        json::set_at(&mut status, &["currentReplicas"], json!(current));
        json::set_at(&mut status, &["desiredReplicas"], json!(desired));
        if json::at(&hpa, &["status"]) == Some(&status) {
            continue;
        }
        json::set_at(&mut hpa, &["status"], status);
        write_status(state, hpa);
    }
}
