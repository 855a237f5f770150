//! Defaulting and validation the API server applies on every write, for the fields that matter here.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::json::{self, object_mut};
use crate::resources::Resource;
use crate::selector::LabelSelector;

fn default(map: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_owned(), value);
    }
}

/// Fills the defaults the API server would for `kind`.
pub(crate) fn apply(kind: &str, obj: &mut Value) {
    match kind {
        "Deployment" => {
            let spec = object_mut(obj, &["spec"]);
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default(spec, "strategy", json!({"type": "RollingUpdate"}));
            let strategy = object_mut(obj, &["spec", "strategy"]);
            default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                default(strategy, "rollingUpdate", json!({}));
                let rolling = object_mut(obj, &["spec", "strategy", "rollingUpdate"]);
                default(rolling, "maxSurge", json!("25%"));
                default(rolling, "maxUnavailable", json!("25%"));
            }
            pod_template(obj);
        }
        "StatefulSet" => {
            let spec = object_mut(obj, &["spec"]);
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            let strategy = object_mut(obj, &["spec", "updateStrategy"]);
            default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                default(strategy, "rollingUpdate", json!({}));
                default(
                    object_mut(obj, &["spec", "updateStrategy", "rollingUpdate"]),
                    "partition",
                    json!(0),
                );
            }
            default(
                object_mut(obj, &["spec"]),
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            pod_template(obj);
        }
        "DaemonSet" => {
            let spec = object_mut(obj, &["spec"]);
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            let strategy = object_mut(obj, &["spec", "updateStrategy"]);
            default(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                default(strategy, "rollingUpdate", json!({}));
                let rolling = object_mut(obj, &["spec", "updateStrategy", "rollingUpdate"]);
                default(rolling, "maxUnavailable", json!(1));
                default(rolling, "maxSurge", json!(0));
            }
            pod_template(obj);
        }
        "ReplicaSet" => {
            default(object_mut(obj, &["spec"]), "replicas", json!(1));
            pod_template(obj);
        }
        "Pod" => pod_spec(object_mut(obj, &["spec"])),
        "Service" => service(obj),
        _ => {}
    }
}

fn pod_template(obj: &mut Value) {
    pod_spec(object_mut(obj, &["spec", "template", "spec"]));
}

fn pod_spec(spec: &mut serde_json::Map<String, Value>) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                let tag = image.rsplit('/').next().unwrap_or_default();
                let pull =
                    if image.contains('@') || (tag.contains(':') && !tag.ends_with(":latest")) {
                        "IfNotPresent"
                    } else {
                        "Always"
                    };
                default(c, "imagePullPolicy", json!(pull));
                default(c, "terminationMessagePath", json!("/dev/termination-log"));
                default(c, "terminationMessagePolicy", json!("File"));
                default(c, "resources", json!({}));
                if let Some(Value::Array(ports)) = c.get_mut("ports") {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        default(p, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

fn service(obj: &mut Value) {
    let spec = object_mut(obj, &["spec"]);
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    default(spec, "internalTrafficPolicy", json!("Cluster"));
    default(spec, "ipFamilies", json!(["IPv4"]));
    default(spec, "ipFamilyPolicy", json!("SingleStack"));
    if spec.get("clusterIP").is_none_or(Value::is_null) {
        let ip = format!("10.96.{}.{}", fastrand::u8(0..255), fastrand::u8(1..255));
        spec.insert("clusterIP".to_owned(), json!(ip));
        spec.insert("clusterIPs".to_owned(), json!([ip]));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                default(p, "targetPort", port);
            }
        }
    }
}

/// Whether `name` is a valid DNS-1123 subdomain.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && name
            .as_bytes()
            .last()
            .is_some_and(u8::is_ascii_alphanumeric)
}

/// Validates a write of `obj`; `old` is the stored object on updates.
///
/// # Errors
/// 422 `Invalid` naming each bad field.
pub(crate) fn validate(res: &Resource, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = json::str_at(obj, &["metadata", "name"]).unwrap_or_default();
    let mut causes: Vec<(&str, String)> = Vec::new();
    if !valid_name(name) {
        causes.push((
            "metadata.name",
            format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        ));
    }
    let workload = matches!(
        res.kind,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
    );
    if workload {
        workload_causes(obj, old, &mut causes);
    }
    if res.kind == "Pod" && json::array_at(obj, &["spec", "containers"]).is_empty() {
        causes.push(("spec.containers", "Required value".to_owned()));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(res.kind, res.group, name, &causes))
    }
}

fn workload_causes(obj: &Value, old: Option<&Value>, causes: &mut Vec<(&str, String)>) {
    if json::i64_at(obj, &["spec", "replicas"]).is_some_and(|r| r < 0) {
        causes.push((
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0".to_owned(),
        ));
    }
    let selector = json::at(obj, &["spec", "selector"]);
    match selector.map(LabelSelector::from_object) {
        None => causes.push(("spec.selector", "Required value".to_owned())),
        Some(Err(e)) => causes.push(("spec.selector", e.message().to_owned())),
        Some(Ok(s)) => {
            if !s.matches(&json::string_map(
                obj,
                &["spec", "template", "metadata", "labels"],
            )) {
                causes.push((
                    "spec.template.metadata.labels",
                    "Invalid value: `selector` does not match template `labels`".to_owned(),
                ));
            }
        }
    }
    if let Some(old) = old
        && json::at(old, &["spec", "selector"]) != selector
    {
        causes.push((
            "spec.selector",
            "Invalid value: field is immutable".to_owned(),
        ));
    }
    let containers = json::array_at(obj, &["spec", "template", "spec", "containers"]);
    if containers.is_empty() {
        causes.push(("spec.template.spec.containers", "Required value".to_owned()));
    }
    for c in containers {
        if json::str_at(c, &["name"]).is_none_or(str::is_empty) {
            causes.push((
                "spec.template.spec.containers[].name",
                "Required value".to_owned(),
            ));
        }
        if json::str_at(c, &["image"]).is_none_or(str::is_empty) {
            causes.push((
                "spec.template.spec.containers[].image",
                "Required value".to_owned(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_kind;

    #[test]
    fn deployment_defaults_and_validation() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}});
        apply("Deployment", &mut d);
        assert_eq!(json::i64_at(&d, &["spec", "replicas"]), Some(1));
        assert_eq!(
            json::str_at(&d, &["spec", "strategy", "rollingUpdate", "maxSurge"]),
            Some("25%")
        );
        assert_eq!(
            json::str_at(&d, &["spec", "template", "spec", "containers"]).or(Some("x")),
            Some("x")
        );
        let res = by_kind("Deployment").unwrap();
        assert!(validate(res, &d, None).is_ok());
        json::set_at(
            &mut d,
            &["spec", "template", "metadata", "labels", "app"],
            json!("other"),
        );
        assert_eq!(validate(res, &d, None).unwrap_err().code(), 422);
        assert!(!valid_name("Bad_Name"));
    }
}
