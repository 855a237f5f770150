//! The endpoints controller: each Service with a selector gets an Endpoints object of the same
//! name listing the pods it selects, ready ones under `addresses`, the others under
//! `notReadyAddresses`, with the service's ports resolved against each pod (a named
//! `targetPort` is looked up in the pod's container ports).

use serde_json::{Value, json};

use super::{create, delete, pod_ready, write};
use crate::json;
use crate::meta;
use crate::selector::LabelSelector;
use crate::store::State;

/// The annotation the controller writes on the Endpoints it manages (as the real one does).
const TRIGGER: &str = "endpoints.kubernetes.io/last-change-trigger-time";

pub(super) fn step(state: &mut State) {
    let services: Vec<Value> = state
        .all("Service", None)
        .filter(|s| !meta::is_terminating(s))
        .cloned()
        .collect();
    for service in &services {
        let selector = json::at(service, &["spec", "selector"])
            .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()));
        let Some(selector) = selector else {
            // No selector: the endpoints are managed by hand.
            continue;
        };
        let Ok(selector) = LabelSelector::from_object(&json!({"matchLabels": selector})) else {
            continue;
        };
        let ns = meta::namespace(service).to_owned();
        let name = meta::name(service).to_owned();
        let subsets = subsets(state, service, &ns, &selector);
        let labels = json::at(service, &["metadata", "labels"])
            .cloned()
            .unwrap_or(json!({}));
        if let Some(mut existing) = state.get("Endpoints", &ns, &name).cloned() {
            let same_subsets = json::at(&existing, &["subsets"]).unwrap_or(&Value::Null)
                == subsets.as_ref().unwrap_or(&Value::Null);
            let same_labels = json::at(&existing, &["metadata", "labels"])
                .cloned()
                .unwrap_or(json!({}))
                == labels;
            if same_subsets && same_labels {
                continue;
            }
            match &subsets {
                Some(s) => json::set_at(&mut existing, &["subsets"], s.clone()),
                None => {
                    json::remove_at(&mut existing, &["subsets"]);
                }
            }
            json::set_at(&mut existing, &["metadata", "labels"], labels);
            json::set_at(
                &mut existing,
                &["metadata", "annotations", TRIGGER],
                json!(meta::now()),
            );
            write(state, existing);
        } else {
            let mut obj = json!({
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": labels,
                             "annotations": {TRIGGER: meta::now()}},
            });
            if let Some(s) = subsets {
                json::set_at(&mut obj, &["subsets"], s);
            }
            let _ = create(state, obj);
        }
    }
    // Endpoints this controller made whose service is gone.
    let orphans: Vec<(String, String)> = state
        .all("Endpoints", None)
        .filter(|e| json::str_at(e, &["metadata", "annotations", TRIGGER]).is_some())
        .filter(|e| {
            state
                .get("Service", meta::namespace(e), meta::name(e))
                .is_none_or(meta::is_terminating)
        })
        .map(|e| (meta::namespace(e).to_owned(), meta::name(e).to_owned()))
        .collect();
    for (ns, name) in orphans {
        delete(state, "Endpoints", &ns, &name);
    }
}

/// The service's port resolved against `pod`, or `None` when a named target port is missing.
fn endpoint_port(port: &Value, pod: &Value) -> Option<Value> {
    let number = match port.get("targetPort") {
        Some(Value::Number(n)) => n.as_i64()?,
        Some(Value::String(named)) => json::array_at(pod, &["spec", "containers"])
            .iter()
            .flat_map(|c| json::array_at(c, &["ports"]))
            .find(|p| json::str_at(p, &["name"]) == Some(named.as_str()))
            .and_then(|p| json::i64_at(p, &["containerPort"]))?,
        _ => json::i64_at(port, &["port"])?,
    };
    let mut out = json!({
        "port": number,
        "protocol": json::str_at(port, &["protocol"]).unwrap_or("TCP"),
    });
    if let Some(name) = json::str_at(port, &["name"]) {
        json::set_at(&mut out, &["name"], json!(name));
    }
    Some(out)
}

/// The subsets: pods grouped by their resolved port list, addresses sorted by IP.
fn subsets(state: &State, service: &Value, ns: &str, selector: &LabelSelector) -> Option<Value> {
    let ports = json::array_at(service, &["spec", "ports"]);
    let mut groups: Vec<(Vec<Value>, Vec<Value>, Vec<Value>)> = Vec::new();
    for pod in state.all("Pod", Some(ns)) {
        if meta::is_terminating(pod)
            || !selector.matches_object(pod)
            || matches!(
                json::str_at(pod, &["status", "phase"]),
                Some("Succeeded" | "Failed")
            )
        {
            continue;
        }
        let Some(ip) = json::str_at(pod, &["status", "podIP"]).filter(|ip| !ip.is_empty()) else {
            continue;
        };
        let resolved: Option<Vec<Value>> = ports.iter().map(|p| endpoint_port(p, pod)).collect();
        let Some(resolved) = resolved else {
            continue;
        };
        let mut address = json!({
            "ip": ip,
            "targetRef": {"kind": "Pod", "namespace": ns, "name": meta::name(pod), "uid": meta::uid(pod)},
        });
        if let Some(node) = json::str_at(pod, &["spec", "nodeName"]) {
            json::set_at(&mut address, &["nodeName"], json!(node));
        }
        let group = if let Some(i) = groups.iter().position(|(p, _, _)| *p == resolved) {
            &mut groups[i]
        } else {
            groups.push((resolved, Vec::new(), Vec::new()));
            groups.last_mut()?
        };
        if pod_ready(pod) {
            group.1.push(address);
        } else {
            group.2.push(address);
        }
    }
    if groups.is_empty() {
        return None;
    }
    let by_ip = |a: &Value, b: &Value| json::str_at(a, &["ip"]).cmp(&json::str_at(b, &["ip"]));
    let subsets: Vec<Value> = groups
        .into_iter()
        .map(|(ports, mut ready, mut not_ready)| {
            ready.sort_by(by_ip);
            not_ready.sort_by(by_ip);
            let mut subset = json!({});
            if !ready.is_empty() {
                json::set_at(&mut subset, &["addresses"], json!(ready));
            }
            if !not_ready.is_empty() {
                json::set_at(&mut subset, &["notReadyAddresses"], json!(not_ready));
            }
            if !ports.is_empty() {
                json::set_at(&mut subset, &["ports"], json!(ports));
            }
            subset
        })
        .collect();
    Some(json!(subsets))
}
