//! `metrics.k8s.io/v1beta1` `PodMetrics` from the usage tests set.

use serde_json::{Value, json};

use crate::json;
use crate::meta;
use crate::store::State;

/// `250m` for 250 millicores, `2` for 2000.
pub(crate) fn cpu_quantity(millicores: u64) -> String {
    if millicores.is_multiple_of(1000) {
        (millicores / 1000).to_string()
    } else {
        format!("{millicores}m")
    }
}

/// `128Mi`, `300Ki`, or plain bytes, whichever is exact.
pub(crate) fn memory_quantity(bytes: u64) -> String {
    const KI: u64 = 1024;
    if bytes == 0 {
        "0".to_owned()
    } else if bytes.is_multiple_of(KI * KI * KI) {
        format!("{}Gi", bytes / (KI * KI * KI))
    } else if bytes.is_multiple_of(KI * KI) {
        format!("{}Mi", bytes / (KI * KI))
    } else if bytes.is_multiple_of(KI) {
        format!("{}Ki", bytes / KI)
    } else {
        bytes.to_string()
    }
}

/// `PodMetrics` for a running pod (containers without a set usage report zero).
pub(crate) fn pod_metrics(state: &State, pod: &Value) -> Option<Value> {
    if json::str_at(pod, &["status", "phase"]) != Some("Running") {
        return None;
    }
    let (ns, name) = (meta::namespace(pod), meta::name(pod));
    let containers: Vec<Value> = json::array_at(pod, &["spec", "containers"])
        .iter()
        .filter_map(|c| json::str_at(c, &["name"]))
        .map(|c| {
            let (cpu, memory) = state
                .sim
                .usage
                .get(&(ns.to_owned(), name.to_owned(), c.to_owned()))
                .copied()
                .unwrap_or((0, 0));
            json!({"name": c, "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)}})
        })
        .collect();
    let mut metadata = json!({"name": name, "namespace": ns, "creationTimestamp": meta::now()});
    if let Some(labels) = json::at(pod, &["metadata", "labels"]) {
        metadata["labels"] = labels.clone();
    }
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": metadata,
        "timestamp": meta::now(),
        "window": "30s",
        "containers": containers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu_quantity(250), "250m");
        assert_eq!(cpu_quantity(2000), "2");
        assert_eq!(memory_quantity(128 * 1024 * 1024), "128Mi");
        assert_eq!(memory_quantity(1536), "1536");
        assert_eq!(memory_quantity(2048), "2Ki");
    }
}
