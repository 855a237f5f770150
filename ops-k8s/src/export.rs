//! Export of a namespace's objects for the record (issue 14 §evidence): Deployments,
//! StatefulSets, DaemonSets, Pods, Services, ConfigMaps, Secrets (key names only), Events,
//! network policies and horizontal pod autoscalers, each without what the server manages (uid,
//! resourceVersion, generation, creationTimestamp, managedFields, selfLink, ownerReferences,
//! status, a Service's cluster IPs) so it can be applied again. Read-only.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};
use ops_core::Namespace;
use ops_core::platform::{ExportOptions, ExportedObject, NamespaceExport};
use serde_json::{Map, Value};

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};

/// The annotation an exported Secret carries instead of its values: its key names, comma
/// separated.
pub const REDACTED_KEYS: &str = "opsbook.dev/redacted-keys";

/// kubectl's copy of what was applied: on a Secret it holds the values, elsewhere it is the
/// client's state, not the object's.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drop what the server manages from an object, in place.
///
/// # Examples
/// ```
/// let mut pod = serde_json::json!({
///     "metadata": {"name": "api", "uid": "1", "resourceVersion": "7", "managedFields": []},
///     "spec": {}, "status": {"phase": "Running"},
/// });
/// ops_k8s::strip_server_fields(&mut pod);
/// assert_eq!(pod, serde_json::json!({"metadata": {"name": "api"}, "spec": {}}));
/// ```
pub fn strip_server_fields(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    map.remove("status");
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        for key in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
            "ownerReferences",
        ] {
            meta.remove(key);
        }
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.remove(LAST_APPLIED);
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    let service = map.get("kind").and_then(Value::as_str) == Some("Service");
    if service && let Some(Value::Object(spec)) = map.get_mut("spec") {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
}

/// A Secret with its values replaced by the list of its key names (an annotation).
fn redact_secret(object: &mut Value) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    if let Some(map) = object.as_object_mut() {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(data)) = map.remove(field) {
                keys.extend(data.keys().cloned());
            }
        }
        keys.sort();
        keys.dedup();
        let meta = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(a) = annotations.as_object_mut() {
                a.insert(REDACTED_KEYS.to_owned(), Value::String(keys.join(",")));
            }
        }
    }
    keys
}

impl KubePlatform {
    async fn list_as_json<K>(&self, namespace: &str, resource: &'static str) -> Result<Vec<Value>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + serde::Serialize,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let lp = ListParams::default();
        let req = Request::new("list", resource, namespace);
        let list = self
            .call("export", namespace, &req, Retry::Transient, || {
                api.list(&lp)
            })
            .await?;
        list.items
            .iter()
            .map(|item| {
                serde_json::to_value(item).map_err(|e| Error::Malformed {
                    operation: "export",
                    target: namespace.to_owned(),
                    reason: format!("cannot serialize a {resource} object: {e}"),
                })
            })
            .collect()
    }

    /// Export `namespace`.
    pub(crate) async fn export_namespace(
        &self,
        namespace: &Namespace,
        opts: &ExportOptions,
    ) -> Result<NamespaceExport> {
        let ns = namespace.as_str();
        let mut lists: Vec<(&str, Vec<Value>)> = vec![
            (
                "Deployment",
                self.list_as_json::<Deployment>(ns, "deployments").await?,
            ),
            (
                "StatefulSet",
                self.list_as_json::<StatefulSet>(ns, "statefulsets").await?,
            ),
            (
                "DaemonSet",
                self.list_as_json::<DaemonSet>(ns, "daemonsets").await?,
            ),
            ("Pod", self.list_as_json::<Pod>(ns, "pods").await?),
            (
                "Service",
                self.list_as_json::<Service>(ns, "services").await?,
            ),
            (
                "ConfigMap",
                self.list_as_json::<ConfigMap>(ns, "configmaps").await?,
            ),
            ("Secret", self.list_as_json::<Secret>(ns, "secrets").await?),
            (
                "NetworkPolicy",
                self.list_as_json::<NetworkPolicy>(ns, "networkpolicies")
                    .await?,
            ),
            (
                "HorizontalPodAutoscaler",
                self.list_as_json::<HorizontalPodAutoscaler>(ns, "horizontalpodautoscalers")
                    .await?,
            ),
        ];
        if opts.events {
            lists.push(("Event", self.list_as_json::<Event>(ns, "events").await?));
        }
        let mut export = NamespaceExport::new(namespace.clone()).noting(
            "server-managed fields (uid, resourceVersion, generation, creationTimestamp, managedFields, selfLink, ownerReferences, status, Service clusterIPs) and kubectl's last-applied-configuration annotation are left out",
        );
        for (kind, items) in lists {
            for mut object in items {
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                strip_server_fields(&mut object);
                if kind == "Secret" {
                    let keys = redact_secret(&mut object);
                    export = export.noting(format!(
                        "Secret {name}: values left out, keys {} (annotation {REDACTED_KEYS})",
                        keys.join(", ")
                    ));
                }
                export = export.with_object(ExportedObject::new(kind, name, object));
            }
        }
        export.sort();
        Ok(export)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_secret_keeps_its_key_names_only_and_the_last_applied_copy_goes() {
        let mut secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "annotations": {LAST_APPLIED: "{\"data\":{\"password\":\"c2VjcmV0\"}}"}},
            "data": {"password": "c2VjcmV0", "user": "dQ=="},
            "stringData": {"token": "plain"},
        });
        strip_server_fields(&mut secret);
        let keys = redact_secret(&mut secret);
        assert_eq!(keys, ["password", "token", "user"]);
        let text = secret.to_string();
        for value in ["c2VjcmV0", "dQ==", "plain"] {
            assert!(!text.contains(value), "{text}");
        }
        assert_eq!(
            secret.pointer("/metadata/annotations/opsbook.dev~1redacted-keys"),
            Some(&json!("password,token,user"))
        );
    }

    #[test]
    fn a_service_loses_its_cluster_ip() {
        let mut svc = json!({"kind": "Service", "metadata": {"name": "api"}, "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": []}});
        strip_server_fields(&mut svc);
        assert_eq!(svc["spec"], json!({"ports": []}));
    }
}
