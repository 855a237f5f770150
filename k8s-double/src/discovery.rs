//! Discovery documents in the legacy (non-aggregated) format: `/version`, `/api`, `/apis`,
//! `/api/v1`, `/apis/{group}/{version}`.

use serde_json::{Value, json};

use crate::resources::{self, RESOURCES};

/// The version the double reports; kubectl's dispatcher picks its client from the minor version.
pub(crate) const GIT_VERSION: &str = "v1.33.1";

/// `/version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-05-15T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `/apis`: every group with its versions, newest preferred.
pub(crate) fn groups(metrics: bool) -> Value {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (group, version) in resources::group_versions(metrics) {
        if group.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, versions)) => versions.push(version),
            None => groups.push((group, vec![version])),
        }
    }
    let list: Vec<Value> = groups
        .iter()
        .map(|(group, versions)| group_doc(group, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list})
}

fn group_doc(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis/{group}`, when the group is served.
pub(crate) fn group(group: &str, metrics: bool) -> Option<Value> {
    let versions: Vec<&str> = resources::group_versions(metrics)
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(_, v)| v)
        .collect();
    if versions.is_empty() {
        return None;
    }
    let mut doc = group_doc(group, &versions);
    if let Some(map) = doc.as_object_mut() {
        map.insert("kind".to_owned(), json!("APIGroup"));
        map.insert("apiVersion".to_owned(), json!("v1"));
    }
    Some(doc)
}

/// `/api/v1` or `/apis/{group}/{version}`: the resources with their subresources.
pub(crate) fn resource_list(group: &str, version: &str, metrics: bool) -> Option<Value> {
    if !resources::group_versions(metrics).contains(&(group, version)) {
        return None;
    }
    let mut list = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        if r.status_subresource {
            list.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
        if r.scale {
            list.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": true,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        if r.kind == "Pod" {
            list.push(json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_group_only_when_enabled() {
        let without = groups(false).to_string();
        assert!(!without.contains("metrics.k8s.io"));
        assert!(groups(true).to_string().contains("metrics.k8s.io"));
        assert!(resource_list("metrics.k8s.io", "v1beta1", false).is_none());
        let apps = resource_list("apps", "v1", false).unwrap().to_string();
        assert!(apps.contains("deployments/scale"));
        assert!(!apps.contains("daemonsets/scale"));
    }
}
