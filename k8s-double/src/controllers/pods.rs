//! Pods made from a controller's template.

use serde_json::{Value, json};

use crate::json;
use crate::meta;

/// A pod named `name` from `template`, controlled by `owner`, with `extra_labels` added.
pub(super) fn from_template(
    owner: &Value,
    template: &Value,
    name: &str,
    extra_labels: &[(&str, String)],
    node: Option<&str>,
) -> Value {
    let mut labels = json::at(template, &["metadata", "labels"])
        .cloned()
        .unwrap_or(json!({}));
    for (k, v) in extra_labels {
        json::set_at(&mut labels, &[k], json!(v));
    }
    let mut metadata = json!({
        "name": name,
        "namespace": meta::namespace(owner),
        "labels": labels,
        "ownerReferences": [meta::controller_ref(owner)],
    });
    if let Some(annotations) = json::at(template, &["metadata", "annotations"]) {
        json::set_at(&mut metadata, &["annotations"], annotations.clone());
    }
    if owner.get("kind").and_then(Value::as_str) != Some("StatefulSet") {
        json::set_at(
            &mut metadata,
            &["generateName"],
            json!(format!("{}-", meta::name(owner))),
        );
    }
    let mut spec = json::at(template, &["spec"]).cloned().unwrap_or(json!({}));
    if let Some(node) = node {
        json::set_at(&mut spec, &["nodeName"], json!(node));
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}
