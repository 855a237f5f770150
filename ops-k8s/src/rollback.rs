//! Revisions and rollout undo as kubectl does them.
//!
//! Deployments: the `ReplicaSets` the Deployment controls carry the revisions; undo picks the
//! previous revision (or a given one), refuses a paused Deployment, skips when the template
//! already matches (ignoring `pod-template-hash`), and sends kubectl's JSON patch replacing
//! `/spec/template` and `/metadata/annotations`. StatefulSets and DaemonSets: their
//! `ControllerRevisions` hold the template as a strategic merge patch, which undo sends as is.

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::{Api, ListParams, Patch, PatchParams};
use ops_core::WorkloadRef;
use ops_core::platform::{Revision, RollbackChange, RollbackOptions};
use serde_json::{Value, json};

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};
use crate::workload::{
    HASH_LABEL, Object, controlled_by, revision_of, selector_query, template_images,
};

/// Annotations kubectl keeps from the Deployment rather than copying from the ReplicaSet.
const KEEP_FROM_DEPLOYMENT: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// The annotation that explains a revision (`kubectl rollout history`'s CHANGE-CAUSE).
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// A template as JSON without the `pod-template-hash` label, for comparisons and patches.
fn template_without_hash(template: &PodTemplateSpec) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    normalized(serde_json::to_value(&t).unwrap_or(Value::Null))
}

/// JSON with nulls, empty objects and empty arrays removed, so that two encodings of the same
/// object (one omitting defaults, one spelling them empty) compare equal.
pub(crate) fn normalized(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalized(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalized).collect()),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The ReplicaSet kubectl would roll back to: the one with `to` as revision, or (for 0) the
/// second-newest revision.
fn pick_replica_set<'a>(
    sets: &'a [ReplicaSet],
    to: u64,
    name: &str,
) -> Result<&'a ReplicaSet, String> {
    let mut with_revision: Vec<(u64, &ReplicaSet)> = sets
        .iter()
        .filter_map(|rs| Some((revision_of(&rs.metadata)?, rs)))
        .collect();
    if to > 0 {
        return with_revision
            .into_iter()
            .find(|(r, _)| *r == to)
            .map(|(_, rs)| rs)
            .ok_or_else(|| format!("unable to find specified revision {to} in history"));
    }
    with_revision.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
    with_revision
        .get(1)
        .map(|(_, rs)| *rs)
        .ok_or_else(|| format!("no rollout history found for deployment {name:?}"))
}

/// The Deployment annotations after an undo to `rs`, computed as kubectl computes them.
fn undo_annotations(deployment: &Deployment, rs: &ReplicaSet) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let current = deployment.metadata.annotations.clone().unwrap_or_default();
    for key in KEEP_FROM_DEPLOYMENT {
        if let Some(v) = current.get(key) {
            out.insert(key.to_owned(), Value::String(v.clone()));
        }
    }
    for (k, v) in rs.metadata.annotations.iter().flatten() {
        if !KEEP_FROM_DEPLOYMENT.contains(&k.as_str()) {
            out.insert(k.clone(), Value::String(v.clone()));
        }
    }
    out
}

/// A `ControllerRevision's` template patch, read as JSON.
fn revision_data(cr: &ControllerRevision) -> Value {
    cr.data
        .as_ref()
        .and_then(|d| serde_json::to_value(&d.0).ok())
        .unwrap_or(Value::Null)
}

/// The template patch a StatefulSet or DaemonSet's current template would be stored as.
fn current_as_revision(object: &Object) -> Value {
    let template = object
        .template()
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(Value::Null);
    let mut template = template;
    if let Value::Object(m) = &mut template {
        m.insert("$patch".to_owned(), Value::String("replace".to_owned()));
    }
    json!({"spec": {"template": template}})
}

/// The images a `ControllerRevision's` template runs.
fn revision_images(data: &Value) -> Vec<String> {
    data.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("image")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn rs_revision(rs: &ReplicaSet, current: &Value) -> Option<Revision> {
    let number = revision_of(&rs.metadata)?;
    let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
    let images = template.map(template_images).unwrap_or_default();
    let is_current = template.is_some_and(|t| &template_without_hash(t) == current);
    let mut out = Revision::new(number, images, is_current);
    out.created_at = rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    out.change_cause = rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHANGE_CAUSE))
        .cloned();
    Some(out)
}

fn cr_revision(cr: &ControllerRevision, current: &Value) -> Option<Revision> {
    let data = revision_data(cr);
    let number = u64::try_from(cr.revision).ok()?;
    let is_current = &normalized(data.clone()) == current;
    let mut r = Revision::new(number, revision_images(&data), is_current);
    r.created_at = cr.metadata.creation_timestamp.as_ref().map(|t| t.0);
    r.change_cause = cr
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHANGE_CAUSE))
        .cloned();
    Some(r)
}

impl KubePlatform {
    /// The `ControllerRevisions` a StatefulSet or DaemonSet controls, oldest first.
    async fn controller_revisions(
        &self,
        operation: &'static str,
        workload: &WorkloadRef,
        object: &Object,
    ) -> Result<Vec<ControllerRevision>> {
        let ns = workload.namespace().as_str();
        let target = workload.to_string();
        let Some(selector) = object.selector() else {
            return Ok(Vec::new());
        };
        let query = selector_query(selector, &target)?;
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), ns);
        let lp = ListParams::default().labels(&query);
        let req = Request::new("list", "controllerrevisions", ns);
        let list = self
            .call(operation, &target, &req, Retry::Transient, || api.list(&lp))
            .await?;
        let uid = object.uid().unwrap_or_default();
        let mut out: Vec<ControllerRevision> = list
            .items
            .into_iter()
            .filter(|cr| controlled_by(&cr.metadata, uid))
            .collect();
        out.sort_by_key(|cr| cr.revision);
        Ok(out)
    }

    /// The revisions of a workload, newest first, with images, creation time and change cause.
    pub(crate) async fn history(&self, workload: &WorkloadRef) -> Result<Vec<Revision>> {
        let object = self.object("revisions", workload).await?;
        let mut out = if let Object::Deployment(_) = &object {
            let current = object.template().map_or(Value::Null, template_without_hash);
            self.replica_sets("revisions", workload, &object)
                .await?
                .iter()
                .filter_map(|rs| rs_revision(rs, &current))
                .collect::<Vec<_>>()
        } else {
            let current = normalized(current_as_revision(&object));
            self.controller_revisions("revisions", workload, &object)
                .await?
                .iter()
                .filter_map(|cr| cr_revision(cr, &current))
                .collect()
        };
        out.sort_by_key(|r| std::cmp::Reverse(r.number));
        Ok(out)
    }

    /// `kubectl rollout undo`, to the previous revision or `opts.revision`.
    pub(crate) async fn undo(
        &self,
        workload: &WorkloadRef,
        opts: &RollbackOptions,
    ) -> Result<RollbackChange> {
        let object = self.object("rollback", workload).await?;
        let to = opts.revision.unwrap_or(0);
        match &object {
            Object::Deployment(d) => self.undo_deployment(workload, d, &object, to, opts).await,
            _ => self.undo_from_history(workload, &object, to, opts).await,
        }
    }

    async fn undo_deployment(
        &self,
        workload: &WorkloadRef,
        deployment: &Deployment,
        object: &Object,
        to: u64,
        opts: &RollbackOptions,
    ) -> Result<RollbackChange> {
        let target = workload.to_string();
        let from = revision_of(&deployment.metadata);
        let sets = self.replica_sets("rollback", workload, object).await?;
        let name = workload.name().as_str();
        let rs = pick_replica_set(&sets, to, name).map_err(|reason| Error::NotFound {
            operation: "rollback",
            target: target.clone(),
            reason,
        })?;
        let to_revision = revision_of(&rs.metadata).unwrap_or(to);
        if deployment.spec.as_ref().and_then(|s| s.paused) == Some(true) {
            return Err(Error::Refused {
                operation: "rollback",
                target,
                reason: "you cannot rollback a paused deployment; resume it first with 'kubectl \
                         rollout resume' and try again"
                    .to_owned(),
            });
        }
        let Some(rs_template) = rs.spec.as_ref().and_then(|s| s.template.as_ref()) else {
            return Err(Error::Malformed {
                operation: "rollback",
                target,
                reason: "the ReplicaSet of that revision has no pod template".to_owned(),
            });
        };
        let wanted = template_without_hash(rs_template);
        let current = object.template().map_or(Value::Null, template_without_hash);
        if wanted == current {
            // kubectl: "skipped rollback (current template already matches revision N)".
            return Ok(RollbackChange::new(from, from.unwrap_or(to_revision)));
        }
        let mut template = rs_template.clone();
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(HASH_LABEL);
        }
        let patch = json!([
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": undo_annotations(deployment, rs)},
        ]);
        self.send_json_patch(workload, "deployments", &patch, opts.dry_run)
            .await?;
        Ok(RollbackChange::new(from, to_revision))
    }

    async fn undo_from_history(
        &self,
        workload: &WorkloadRef,
        object: &Object,
        to: u64,
        opts: &RollbackOptions,
    ) -> Result<RollbackChange> {
        let target = workload.to_string();
        let history = self
            .controller_revisions("rollback", workload, object)
            .await?;
        if to == 0 && history.len() <= 1 {
            return Err(Error::NotFound {
                operation: "rollback",
                target,
                reason: "no last revision to roll back to".to_owned(),
            });
        }
        let chosen = if to == 0 {
            history.get(history.len() - 2)
        } else {
            history
                .iter()
                .find(|cr| u64::try_from(cr.revision).ok() == Some(to))
        };
        let Some(chosen) = chosen else {
            return Err(Error::NotFound {
                operation: "rollback",
                target,
                reason: format!("unable to find specified revision {to} in history"),
            });
        };
        let to_revision = u64::try_from(chosen.revision).unwrap_or(0);
        let from = history
            .last()
            .and_then(|cr| u64::try_from(cr.revision).ok());
        let data = revision_data(chosen);
        if normalized(data.clone()) == normalized(current_as_revision(object)) {
            return Ok(RollbackChange::new(from, to_revision));
        }
        let ns = workload.namespace().as_str();
        let name = workload.name().as_str();
        let pp = self.patch_params_for(opts.dry_run);
        let patch = Patch::Strategic(data);
        match object {
            Object::StatefulSet(_) => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("patch", "statefulsets", ns);
                self.call("rollback", &target, &req, Retry::Transient, || {
                    api.patch(name, &pp, &patch)
                })
                .await?;
            }
            Object::DaemonSet(_) => {
                let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("patch", "daemonsets", ns);
                self.call("rollback", &target, &req, Retry::Transient, || {
                    api.patch(name, &pp, &patch)
                })
                .await?;
            }
            Object::Deployment(_) => unreachable_kind(&target)?,
        }
        Ok(RollbackChange::new(from, to_revision))
    }

    pub(crate) fn patch_params_for(&self, dry_run: bool) -> PatchParams {
        PatchParams {
            dry_run,
            field_manager: Some(self.config.field_manager.clone()),
            ..PatchParams::default()
        }
    }

    /// Send a JSON patch (`application/json-patch+json`) to a workload: kube's typed API has
    /// it only behind an extra feature, so the request is built here.
    pub(crate) async fn send_json_patch(
        &self,
        workload: &WorkloadRef,
        resource: &'static str,
        patch: &Value,
        dry_run: bool,
    ) -> Result<()> {
        self.send_json_patch_as("rollback", workload, resource, patch, dry_run)
            .await
    }

    /// [`Self::send_json_patch`] for `operation` (errors name it).
    pub(crate) async fn send_json_patch_as(
        &self,
        operation: &'static str,
        workload: &WorkloadRef,
        resource: &'static str,
        patch: &Value,
        dry_run: bool,
    ) -> Result<()> {
        let ns = workload.namespace().as_str();
        let name = workload.name().as_str();
        let target = workload.to_string();
        let mut uri = format!(
            "/apis/apps/v1/namespaces/{ns}/{resource}/{name}?fieldManager={}",
            self.config.field_manager
        );
        if dry_run {
            uri.push_str("&dryRun=All");
        }
        let body = serde_json::to_vec(patch).map_err(|e| Error::Malformed {
            operation,
            target: target.clone(),
            reason: e.to_string(),
        })?;
        let req = Request::new("patch", resource, ns);
        // The patch replaces whole fields: sending it twice gives the same object.
        self.call(operation, &target, &req, Retry::Transient, || {
            let request = http::Request::patch(uri.as_str())
                .header(http::header::CONTENT_TYPE, "application/json-patch+json")
                .header(http::header::ACCEPT, "application/json")
                .body(body.clone());
            let client = self.client.clone();
            async move {
                let request = request.map_err(kube::Error::HttpError)?;
                client.request::<Value>(request).await.map(|_| ())
            }
        })
        .await
    }
}

fn unreachable_kind(target: &str) -> Result<()> {
    Err(Error::Malformed {
        operation: "rollback",
        target: target.to_owned(),
        reason: "a Deployment has no ControllerRevisions".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(revision: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("api-{revision}"), "annotations": {"deployment.kubernetes.io/revision": revision}}
        }))
        .unwrap_or_default()
    }

    #[test]
    fn previous_is_the_second_newest_revision() {
        let sets = [rs("1"), rs("3"), rs("2")];
        let picked = pick_replica_set(&sets, 0, "api").map(|r| revision_of(&r.metadata));
        assert_eq!(picked, Ok(Some(2)));
        let picked = pick_replica_set(&sets, 1, "api").map(|r| revision_of(&r.metadata));
        assert_eq!(picked, Ok(Some(1)));
        assert_eq!(
            pick_replica_set(&sets, 9, "api").map(|_| ()),
            Err("unable to find specified revision 9 in history".to_owned())
        );
        assert_eq!(
            pick_replica_set(&sets[..1], 0, "api").map(|_| ()),
            Err("no rollout history found for deployment \"api\"".to_owned())
        );
    }

    #[test]
    fn normalized_ignores_empty_and_null_fields() {
        let a = json!({"metadata": {"creationTimestamp": null, "labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "resources": {}}]}});
        let b =
            json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(normalized(a), normalized(b));
    }
}
