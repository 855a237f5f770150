//! Secret rotation the safe way: a new Secret made from the old one with some values
//! replaced, the workloads that use the old one pointed at the new one (a JSON patch of each
//! reference, guarded by the resourceVersion read, so the pod template rolls out), and a
//! Secret deleted only when no workload in its namespace still uses it. Values never leave
//! the API objects: no log, error or result holds one.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use ops_core::platform::{SecretCopy, SecretCreated, SecretRepoint};
use ops_core::{Namespace, ResourceName, WorkloadRef};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::config_update::template_uses;
use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};
use crate::workload::Object;

/// The annotation on a Secret made by `Platform::copy_secret`: the Secret it was made from.
///
/// # Examples
/// ```
/// assert_eq!(ops_k8s::ROTATED_FROM, "opsbook.dev/rotated-from");
/// ```
pub const ROTATED_FROM: &str = "opsbook.dev/rotated-from";

/// The JSON-pointer paths, under the workload object, of every reference of the pod template
/// to the Secret `name`: env `valueFrom.secretKeyRef.name`, `envFrom[].secretRef.name` (init
/// containers too), `volumes[].secret.secretName` and projected volumes'
/// `sources[].secret.name`.
pub(crate) fn secret_reference_paths(object: &Value, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let spec = "/spec/template/spec";
    let is = |v: Option<&Value>| v.and_then(Value::as_str) == Some(name);
    for list in ["initContainers", "containers"] {
        let containers = object
            .pointer(&format!("{spec}/{list}"))
            .and_then(Value::as_array);
        for (i, c) in containers.into_iter().flatten().enumerate() {
            for (j, e) in c
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if is(e.pointer("/valueFrom/secretKeyRef/name")) {
                    out.push(format!(
                        "{spec}/{list}/{i}/env/{j}/valueFrom/secretKeyRef/name"
                    ));
                }
            }
            for (j, e) in c
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if is(e.pointer("/secretRef/name")) {
                    out.push(format!("{spec}/{list}/{i}/envFrom/{j}/secretRef/name"));
                }
            }
        }
    }
    let volumes = object
        .pointer(&format!("{spec}/volumes"))
        .and_then(Value::as_array);
    for (k, v) in volumes.into_iter().flatten().enumerate() {
        if is(v.pointer("/secret/secretName")) {
            out.push(format!("{spec}/volumes/{k}/secret/secretName"));
        }
        for (m, s) in v
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if is(s.pointer("/secret/name")) {
                out.push(format!(
                    "{spec}/volumes/{k}/projected/sources/{m}/secret/name"
                ));
            }
        }
    }
    out
}

impl KubePlatform {
    /// Workloads in `namespace` whose pod template uses the Secret `name`.
    pub(crate) async fn workloads_using_secret(
        &self,
        namespace: &Namespace,
        name: &ResourceName,
    ) -> Result<Vec<WorkloadRef>> {
        let ns = namespace.as_str();
        let mut out = Vec::new();
        for workload in self.workloads_in(ns).await? {
            let object = self.object("secret_users", &workload).await?;
            if object
                .template()
                .is_some_and(|t| template_uses(t, name.as_str(), true))
            {
                out.push(workload);
            }
        }
        Ok(out)
    }

    /// Create `copy.to` from `copy.from`'s data with `copy.set` replacing values; refused
    /// (`Conflict`) when `copy.to` exists.
    pub(crate) async fn copy_secret_to(
        &self,
        namespace: &Namespace,
        copy: &SecretCopy,
    ) -> Result<SecretCreated> {
        let ns = namespace.as_str();
        let target = format!("{ns}/secret/{}", copy.to);
        if let Some(bad) = copy
            .set
            .keys()
            .find(|k| !ops_core::names::NameRule::ConfigKey.check(k))
        {
            return Err(Error::InvalidArgument {
                operation: "copy_secret",
                target,
                reason: format!(
                    "{} is not a Secret key (letters, digits, '-', '_', '.')",
                    ops_core::text::quote(bad)
                ),
            });
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("get", "secrets", ns);
        let from = copy.from.as_str();
        let old = self
            .call("copy_secret", &target, &req, Retry::Transient, || {
                api.get(from)
            })
            .await?;
        let mut data: BTreeMap<String, ByteString> = old.data.clone().unwrap_or_default();
        // stringData is write-only: a stored Secret holds data only.
        for (k, v) in &copy.set {
            data.insert(k.clone(), ByteString(v.expose_secret().as_bytes().to_vec()));
        }
        let keys: Vec<String> = data.keys().cloned().collect();
        let mut annotations = BTreeMap::new();
        annotations.insert(ROTATED_FROM.to_owned(), from.to_owned());
        let new = Secret {
            metadata: kube::core::ObjectMeta {
                name: Some(copy.to.as_str().to_owned()),
                namespace: Some(ns.to_owned()),
                labels: old.metadata.labels.clone(),
                annotations: Some(annotations),
                ..kube::core::ObjectMeta::default()
            },
            type_: old.type_.clone(),
            data: Some(data),
            immutable: old.immutable,
            ..Secret::default()
        };
        let req = Request::new("create", "secrets", ns);
        let pp = PostParams {
            field_manager: Some(self.config.field_manager.clone()),
            ..PostParams::default()
        };
        // A create either happened or answers 409 the second time: sending it again is safe,
        // but an AlreadyExists after a lost answer is reported, not taken as success.
        self.call("copy_secret", &target, &req, Retry::RefusedOnly, || {
            api.create(&pp, &new)
        })
        .await?;
        Ok(SecretCreated::new(copy.to.clone(), keys))
    }

    /// Point every reference of `workload`'s pod template to the Secret `from` at `to`.
    pub(crate) async fn repoint_secret_refs(
        &self,
        workload: &WorkloadRef,
        from: &ResourceName,
        to: &ResourceName,
    ) -> Result<SecretRepoint> {
        let target = workload.to_string();
        let object = self.object("repoint_secret", workload).await?;
        let (value, resource) = match &object {
            Object::Deployment(d) => (serde_json::to_value(d), "deployments"),
            Object::StatefulSet(s) => (serde_json::to_value(s), "statefulsets"),
            Object::DaemonSet(d) => (serde_json::to_value(d), "daemonsets"),
        };
        let value = value.map_err(|e| Error::Malformed {
            operation: "repoint_secret",
            target: target.clone(),
            reason: format!("the workload does not serialize: {e}"),
        })?;
        let paths = secret_reference_paths(&value, from.as_str());
        let references = u32::try_from(paths.len()).unwrap_or(u32::MAX);
        if paths.is_empty() {
            return Ok(SecretRepoint::new(workload.clone(), 0));
        }
        let rv = object
            .metadata()
            .resource_version
            .clone()
            .unwrap_or_default();
        // The resourceVersion read is the patch's precondition: a template changed meanwhile
        // answers 409 and nothing is written.
        let mut ops =
            vec![json!({"op": "replace", "path": "/metadata/resourceVersion", "value": rv})];
        ops.extend(
            paths
                .iter()
                .map(|p| json!({"op": "replace", "path": p, "value": to.as_str()})),
        );
        self.send_json_patch_as(
            "repoint_secret",
            workload,
            resource,
            &Value::Array(ops),
            false,
        )
        .await?;
        Ok(SecretRepoint::new(workload.clone(), references))
    }

    /// Delete the Secret `name`, refused (`Conflict`) while a workload in its namespace uses
    /// it; the delete is preconditioned on the uid read.
    pub(crate) async fn delete_unused_secret(
        &self,
        namespace: &Namespace,
        name: &ResourceName,
    ) -> Result<()> {
        let ns = namespace.as_str();
        let target = format!("{ns}/secret/{name}");
        let users = self.workloads_using_secret(namespace, name).await?;
        if !users.is_empty() {
            return Err(Error::Refused {
                operation: "delete_secret",
                target,
                reason: format!(
                    "still used by {}",
                    users
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("get", "secrets", ns);
        let secret = self
            .call("delete_secret", &target, &req, Retry::Transient, || {
                api.get(name.as_str())
            })
            .await?;
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: secret.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let req = Request::new("delete", "secrets", ns);
        self.call("delete_secret", &target, &req, Retry::RefusedOnly, || {
            api.delete(name.as_str(), &dp)
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_reference_is_found() {
        let d = json!({"spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "s"}}]}],
            "containers": [
                {"name": "a", "env": [
                    {"name": "X", "value": "s"},
                    {"name": "P", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}}},
                    {"name": "Q", "valueFrom": {"secretKeyRef": {"name": "other", "key": "p"}}},
                ]},
                {"name": "b", "envFrom": [{"configMapRef": {"name": "s"}}, {"secretRef": {"name": "s"}}]},
            ],
            "volumes": [
                {"name": "v", "secret": {"secretName": "s"}},
                {"name": "c", "configMap": {"name": "s"}},
                {"name": "p", "projected": {"sources": [{"configMap": {"name": "s"}}, {"secret": {"name": "s"}}]}},
            ],
        }}}});
        assert_eq!(
            secret_reference_paths(&d, "s"),
            [
                "/spec/template/spec/initContainers/0/envFrom/0/secretRef/name",
                "/spec/template/spec/containers/0/env/1/valueFrom/secretKeyRef/name",
                "/spec/template/spec/containers/1/envFrom/1/secretRef/name",
                "/spec/template/spec/volumes/0/secret/secretName",
                "/spec/template/spec/volumes/2/projected/sources/1/secret/name",
            ]
        );
        assert!(secret_reference_paths(&d, "nothing").is_empty());
    }
}
