//! The three workload kinds behind one type ([`Object`]), label selectors, and finding the
//! pods a workload controls (by owner, not merely by label).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, ListParams};
use ops_core::{WorkloadKind, WorkloadRef};

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};

/// A Deployment, StatefulSet or DaemonSet as read from the server.
#[derive(Debug, Clone)]
pub(crate) enum Object {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    DaemonSet(Box<DaemonSet>),
}

impl Object {
    pub(crate) fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Deployment(d) => &d.metadata,
            Self::StatefulSet(s) => &s.metadata,
            Self::DaemonSet(d) => &d.metadata,
        }
    }

    pub(crate) fn uid(&self) -> Option<&str> {
        self.metadata().uid.as_deref()
    }

    pub(crate) fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Self::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Self::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
            Self::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        }
    }

    pub(crate) fn selector(&self) -> Option<&LabelSelector> {
        match self {
            Self::Deployment(d) => d.spec.as_ref().map(|s| &s.selector),
            Self::StatefulSet(s) => s.spec.as_ref().map(|s| &s.selector),
            Self::DaemonSet(d) => d.spec.as_ref().map(|s| &s.selector),
        }
    }

    pub(crate) fn paused(&self) -> bool {
        match self {
            Self::Deployment(d) => d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false),
            _ => false,
        }
    }

    /// `spec.replicas` as the API server defaults it (1 when unset); `None` for a DaemonSet.
    pub(crate) fn spec_replicas(&self) -> Option<i32> {
        match self {
            Self::Deployment(d) => Some(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
            Self::StatefulSet(s) => Some(s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
            Self::DaemonSet(_) => None,
        }
    }

    pub(crate) fn images(&self) -> Vec<String> {
        self.template().map(template_images).unwrap_or_default()
    }
}

/// The images of a pod template's containers, in order.
pub(crate) fn template_images(template: &PodTemplateSpec) -> Vec<String> {
    template
        .spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The owner reference marked `controller: true`, if any.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

/// True when `meta`'s controller is the object with `uid`.
pub(crate) fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|o| o.uid == uid)
}

/// A label selector as the API's `labelSelector` query string.
///
/// # Errors
/// `Malformed` for an operator the API does not define; an empty selector is refused too
/// (it would select every pod of the namespace).
pub(crate) fn selector_query(selector: &LabelSelector, target: &str) -> Result<String> {
    let mut parts = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        parts.push(format!("{k}={v}"));
    }
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            "DoesNotExist" => format!("!{}", expr.key),
            other => {
                return Err(Error::Malformed {
                    operation: "select_pods",
                    target: target.to_owned(),
                    reason: format!("unknown selector operator {other:?}"),
                });
            }
        });
    }
    if parts.is_empty() {
        return Err(Error::Malformed {
            operation: "select_pods",
            target: target.to_owned(),
            reason: "the workload's selector is empty".to_owned(),
        });
    }
    Ok(parts.join(","))
}

/// The revision annotation of a Deployment or ReplicaSet.
pub(crate) fn revision_of(meta: &ObjectMeta) -> Option<u64> {
    meta.annotations
        .as_ref()?
        .get("deployment.kubernetes.io/revision")?
        .parse()
        .ok()
}

/// The pod-template-hash label a Deployment's controller adds to `ReplicaSets` and pods.
pub(crate) const HASH_LABEL: &str = "pod-template-hash";

fn unsupported_kind(operation: &'static str, workload: &WorkloadRef) -> Error {
    Error::Unsupported {
        operation,
        target: workload.to_string(),
        reason: "a compose service is not a Kubernetes workload: use a deployment, statefulset \
                 or daemonset"
            .to_owned(),
    }
}

impl KubePlatform {
    /// Read the workload object.
    pub(crate) async fn object(
        &self,
        operation: &'static str,
        workload: &WorkloadRef,
    ) -> Result<Object> {
        let ns = workload.namespace().as_str();
        let name = workload.name().as_str();
        let target = workload.to_string();
        match workload.kind() {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("get", "deployments", ns);
                let d = self
                    .call(operation, &target, &req, Retry::Transient, || api.get(name))
                    .await?;
                Ok(Object::Deployment(Box::new(d)))
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("get", "statefulsets", ns);
                let s = self
                    .call(operation, &target, &req, Retry::Transient, || api.get(name))
                    .await?;
                Ok(Object::StatefulSet(Box::new(s)))
            }
            WorkloadKind::DaemonSet => {
                let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("get", "daemonsets", ns);
                let d = self
                    .call(operation, &target, &req, Retry::Transient, || api.get(name))
                    .await?;
                Ok(Object::DaemonSet(Box::new(d)))
            }
            _ => Err(unsupported_kind(operation, workload)),
        }
    }

    /// The `ReplicaSets` a Deployment controls (selector match, then controller uid).
    pub(crate) async fn replica_sets(
        &self,
        operation: &'static str,
        workload: &WorkloadRef,
        object: &Object,
    ) -> Result<Vec<ReplicaSet>> {
        let ns = workload.namespace().as_str();
        let target = workload.to_string();
        let Some(selector) = object.selector() else {
            return Ok(Vec::new());
        };
        let query = selector_query(selector, &target)?;
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        let lp = ListParams::default().labels(&query);
        let req = Request::new("list", "replicasets", ns);
        let list = self
            .call(operation, &target, &req, Retry::Transient, || api.list(&lp))
            .await?;
        let uid = object.uid().unwrap_or_default();
        Ok(list
            .items
            .into_iter()
            .filter(|rs| controlled_by(&rs.metadata, uid))
            .collect())
    }

    /// The pods the workload controls, each with the revision it runs (Deployments: its
    /// ReplicaSet's revision).
    pub(crate) async fn pods(
        &self,
        operation: &'static str,
        workload: &WorkloadRef,
        object: &Object,
    ) -> Result<Vec<(Pod, Option<u64>)>> {
        let ns = workload.namespace().as_str();
        let target = workload.to_string();
        let Some(selector) = object.selector() else {
            return Ok(Vec::new());
        };
        let query = selector_query(selector, &target)?;
        // Which controllers count as this workload's, with the revision each stands for.
        let owners: BTreeMap<String, Option<u64>> = match object {
            Object::Deployment(_) => self
                .replica_sets(operation, workload, object)
                .await?
                .iter()
                .filter_map(|rs| Some((rs.metadata.uid.clone()?, revision_of(&rs.metadata))))
                .collect(),
            _ => object
                .uid()
                .map(|u| (u.to_owned(), None))
                .into_iter()
                .collect(),
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let lp = ListParams::default().labels(&query);
        let req = Request::new("list", "pods", ns);
        let list = self
            .call(operation, &target, &req, Retry::Transient, || api.list(&lp))
            .await?;
        let mut pods: Vec<(Pod, Option<u64>)> = list
            .items
            .into_iter()
            .filter_map(|pod| {
                let owner = controller_of(&pod.metadata)?;
                let revision = owners.get(&owner.uid)?;
                Some((pod, *revision))
            })
            .collect();
        pods.sort_by(|a, b| a.0.metadata.name.cmp(&b.0.metadata.name));
        Ok(pods)
    }

    /// Every Deployment, StatefulSet and DaemonSet of a namespace.
    pub(crate) async fn workloads_in(&self, namespace: &str) -> Result<Vec<WorkloadRef>> {
        let lp = ListParams::default();
        let target = format!("namespace {namespace}");
        let mut out = Vec::new();
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let req = Request::new("list", "deployments", namespace);
        let list = self
            .call("list_workloads", &target, &req, Retry::Transient, || {
                deployments.list_metadata(&lp)
            })
            .await?;
        push_refs(&mut out, namespace, WorkloadKind::Deployment, &list.items);
        let sets: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
        let req = Request::new("list", "statefulsets", namespace);
        let list = self
            .call("list_workloads", &target, &req, Retry::Transient, || {
                sets.list_metadata(&lp)
            })
            .await?;
        push_refs(&mut out, namespace, WorkloadKind::StatefulSet, &list.items);
        let daemons: Api<DaemonSet> = Api::namespaced(self.client.clone(), namespace);
        let req = Request::new("list", "daemonsets", namespace);
        let list = self
            .call("list_workloads", &target, &req, Retry::Transient, || {
                daemons.list_metadata(&lp)
            })
            .await?;
        push_refs(&mut out, namespace, WorkloadKind::DaemonSet, &list.items);
        Ok(out)
    }
}

fn push_refs<K>(
    out: &mut Vec<WorkloadRef>,
    namespace: &str,
    kind: WorkloadKind,
    items: &[kube::core::PartialObjectMeta<K>],
) {
    for item in items {
        // Names come from the server; one that our refs would refuse is skipped, not fatal.
        if let Some(r) = item
            .metadata
            .name
            .as_deref()
            .and_then(|n| WorkloadRef::new(namespace, kind, n).ok())
        {
            out.push(r);
        }
    }
}
