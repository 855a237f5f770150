//! Container requests and limits, read from and written to the pod template, as
//! `kubectl set resources` does: a strategic merge patch of the changed keys of the selected
//! containers (a rollout), with the `$setElementOrder/containers` directive kubectl's two-way
//! merge patch carries.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Container;
use kube::api::{Api, Patch};
use ops_core::platform::{
    ContainerResources, CpuQuantity, MemoryQuantity, ResourceChange, ResourceUpdate, ResourceValues,
};
use ops_core::{ErrorKind, OpsError, WorkloadKind, WorkloadRef};
use serde_json::{Map, Value, json};

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};
use crate::workload::Object;

/// A core validation error as this crate's error, by meaning.
fn from_core(operation: &'static str, target: &str, err: &OpsError) -> Error {
    let reason = err.detail().unwrap_or_default().to_owned();
    let target = target.to_owned();
    match err.kind() {
        ErrorKind::NotFound => Error::NotFound {
            operation,
            target,
            reason,
        },
        ErrorKind::Conflict => Error::Refused {
            operation,
            target,
            reason,
        },
        _ => Error::InvalidArgument {
            operation,
            target,
            reason,
        },
    }
}

/// The cpu / memory entries of a requests or limits map.
fn values(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
    target: &str,
) -> Result<ResourceValues> {
    let malformed = |e: OpsError| Error::Malformed {
        operation: "resources",
        target: target.to_owned(),
        reason: e.detail().unwrap_or_default().to_owned(),
    };
    let mut out = ResourceValues::default();
    if let Some(map) = map {
        if let Some(q) = map.get("cpu") {
            out = out.with_cpu(CpuQuantity::parse(&q.0).map_err(malformed)?);
        }
        if let Some(q) = map.get("memory") {
            out = out.with_memory(MemoryQuantity::parse(&q.0).map_err(malformed)?);
        }
    }
    Ok(out)
}

fn container_resources(c: &Container, target: &str) -> Result<ContainerResources> {
    let r = c.resources.as_ref();
    Ok(ContainerResources::new(c.name.clone())
        .with_requests(values(r.and_then(|r| r.requests.as_ref()), target)?)
        .with_limits(values(r.and_then(|r| r.limits.as_ref()), target)?))
}

fn template_resources(object: &Object, target: &str) -> Result<Vec<ContainerResources>> {
    let containers = object
        .template()
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    containers
        .iter()
        .map(|c| container_resources(c, target))
        .collect()
}

/// The changed cpu / memory keys of one requests or limits map, as the patch carries them.
fn changed(before: ResourceValues, after: ResourceValues) -> Map<String, Value> {
    let mut out = Map::new();
    if before.cpu != after.cpu
        && let Some(cpu) = after.cpu
    {
        out.insert("cpu".to_owned(), json!(cpu.to_string()));
    }
    if before.memory != after.memory
        && let Some(memory) = after.memory
    {
        out.insert("memory".to_owned(), json!(memory.to_string()));
    }
    out
}

/// kubectl's two-way strategic merge patch from `before` to `after` (same containers, same
/// order); `None` when nothing changes.
fn patch_body(
    before: &[ContainerResources],
    after: &[ContainerResources],
    resource_version: Option<&str>,
) -> Option<Value> {
    let mut containers = Vec::new();
    for (b, a) in before.iter().zip(after) {
        let mut resources = Map::new();
        for (key, bv, av) in [
            ("limits", b.limits, a.limits),
            ("requests", b.requests, a.requests),
        ] {
            let diff = changed(bv, av);
            if !diff.is_empty() {
                resources.insert(key.to_owned(), Value::Object(diff));
            }
        }
        if !resources.is_empty() {
            containers.push(json!({"name": a.container, "resources": resources}));
        }
    }
    if containers.is_empty() {
        return None;
    }
    let order: Vec<Value> = after.iter().map(|c| json!({"name": c.container})).collect();
    let mut body = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": order,
        "containers": containers,
    }}}});
    if let Some(rv) = resource_version {
        body["metadata"] = json!({"resourceVersion": rv});
    }
    Some(body)
}

impl KubePlatform {
    /// The requests and limits of each container of the workload's pod template.
    pub(crate) async fn template_resources(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Vec<ContainerResources>> {
        let object = self.object("resources", workload).await?;
        template_resources(&object, &workload.to_string())
    }

    /// `kubectl set resources`: read the template, apply the update (checked: a request above
    /// its limit, an unknown container and a stale expectation are refused before anything
    /// is sent), send the strategic merge patch of the changed keys. With an expectation the
    /// patch carries the resourceVersion read, so a change in between is a 409 and the whole
    /// check runs again on a fresh read.
    pub(crate) async fn set_template_resources(
        &self,
        workload: &WorkloadRef,
        update: &ResourceUpdate,
    ) -> Result<ResourceChange> {
        let target = workload.to_string();
        self.on_conflict_retry(|| async {
            let object = self.object("set_resources", workload).await?;
            let before = template_resources(&object, &target)?;
            let after = update
                .apply_to(&target, &before)
                .map_err(|e| from_core("set_resources", &target, &e))?;
            let selected = |list: &[ContainerResources]| -> Vec<ContainerResources> {
                list.iter()
                    .filter(|c| update.containers.selects(&c.container))
                    .cloned()
                    .collect()
            };
            let mut change = ResourceChange::new(selected(&before), selected(&after));
            let guard = update
                .expect
                .as_ref()
                .and(object.metadata().resource_version.as_deref());
            let Some(body) = patch_body(&before, &after, guard) else {
                return Ok(change);
            };
            self.patch_template(workload, body, update.dry_run).await?;
            // A paused Deployment takes the new template but rolls it out only when resumed.
            change.rolled_out = !update.dry_run && !object.paused();
            Ok(change)
        })
        .await
    }

    /// Send a strategic merge patch to a Deployment, StatefulSet or DaemonSet. Sending the same
    /// values twice changes nothing more: safe to retry.
    async fn patch_template(
        &self,
        workload: &WorkloadRef,
        body: Value,
        dry_run: bool,
    ) -> Result<()> {
        let ns = workload.namespace().as_str();
        let name = workload.name().as_str();
        let target = workload.to_string();
        let pp = self.patch_params_for(dry_run);
        let patch = Patch::Strategic(body);
        let op = "set_resources";
        match workload.kind() {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("patch", "deployments", ns);
                self.call(op, &target, &req, Retry::Transient, || {
                    api.patch(name, &pp, &patch)
                })
                .await?;
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("patch", "statefulsets", ns);
                self.call(op, &target, &req, Retry::Transient, || {
                    api.patch(name, &pp, &patch)
                })
                .await?;
            }
            WorkloadKind::DaemonSet => {
                let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("patch", "daemonsets", ns);
                self.call(op, &target, &req, Retry::Transient, || {
                    api.patch(name, &pp, &patch)
                })
                .await?;
            }
            _ => {
                return Err(Error::Unsupported {
                    operation: op,
                    target,
                    reason: "only Deployments, StatefulSets and DaemonSets have a pod template"
                        .to_owned(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_carries_only_changed_keys_and_the_container_order() {
        let before = vec![
            ContainerResources::new("app")
                .with_limits(ResourceValues::default().with_cpu(CpuQuantity::from_millis(200))),
            ContainerResources::new("side"),
        ];
        let mut after = before.clone();
        after[0].limits.memory = Some(MemoryQuantity::from_bytes(512 << 20));
        let body = patch_body(&before, &after, None).unwrap();
        assert_eq!(
            body,
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                "containers": [{"name": "app", "resources": {"limits": {"memory": "512Mi"}}}],
            }}}})
        );
        assert_eq!(patch_body(&before, &before, None), None);
    }
}
