//! Releases: `kubectl set image` (recorded with a change cause, as `--record` or
//! `kubectl annotate … kubernetes.io/change-cause` records it). The Deployment controller
//! copies the cause onto the new ReplicaSet, so `kubectl rollout history` and
//! [`ops_core::Platform::revisions`] show it, and rollout undo returns to the previous image.

use kube::api::{Api, ApiResource, DynamicObject, Patch};
use ops_core::platform::{ImageChange, ImageUpdate};
use ops_core::{WorkloadKind, WorkloadRef};
use serde_json::{Value, json};

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};
use crate::rollback::CHANGE_CAUSE;

/// The strategic merge patch `kubectl set image` sends: the changed container by its merge
/// key, `$setElementOrder` keeping the containers' order, and (when given) the change cause
/// in the object's annotations, as `--record` adds it to the same patch.
pub(crate) fn set_image_patch(
    containers: &[&str],
    container: &str,
    image: &str,
    change_cause: Option<&str>,
) -> Value {
    let order: Vec<Value> = containers.iter().map(|c| json!({"name": c})).collect();
    let mut patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": order,
        "containers": [{"name": container, "image": image}],
    }}}});
    if let (Some(cause), Value::Object(map)) = (change_cause, &mut patch) {
        map.insert(
            "metadata".to_owned(),
            json!({"annotations": {CHANGE_CAUSE: cause}}),
        );
    }
    patch
}

fn resource(workload: &WorkloadRef) -> Result<&'static str> {
    match workload.kind() {
        WorkloadKind::Deployment => Ok("deployments"),
        WorkloadKind::StatefulSet => Ok("statefulsets"),
        WorkloadKind::DaemonSet => Ok("daemonsets"),
        _ => Err(Error::Unsupported {
            operation: "set_image",
            target: workload.to_string(),
            reason: "not a Kubernetes workload: use a deployment, statefulset or daemonset"
                .to_owned(),
        }),
    }
}

impl KubePlatform {
    /// `kubectl set image KIND/NAME CONTAINER=IMAGE`, with the change cause annotation.
    pub(crate) async fn set_container_image(
        &self,
        workload: &WorkloadRef,
        update: &ImageUpdate,
    ) -> Result<ImageChange, ops_core::OpsError> {
        let plural = resource(workload)?;
        let object = self.object("set_image", workload).await?;
        let containers: Vec<String> = object
            .template()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let names: Vec<&str> = containers.iter().map(String::as_str).collect();
        let target = workload.to_string();
        let container = update.select_container(&names, crate::error::BACKEND, &target)?;
        let from = object
            .template()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.containers.iter().find(|c| c.name == container))
            .and_then(|c| c.image.clone());
        let image = update.image.to_string();
        let mut change = ImageChange::new(container, from.clone(), update.image.clone(), false);
        if from.as_deref() == Some(image.as_str()) && update.change_cause().is_none() {
            // The template already runs it: no new revision, nothing to send.
            return Ok(change);
        }
        let patch = set_image_patch(&names, container, &image, update.change_cause());
        let ns = workload.namespace().as_str();
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            ns,
            &ApiResource {
                group: "apps".to_owned(),
                version: "v1".to_owned(),
                api_version: "apps/v1".to_owned(),
                kind: String::new(),
                plural: plural.to_owned(),
            },
        );
        let pp = self.patch_params_for(update.dry_run);
        let patch = Patch::Strategic(patch);
        let req = Request::new("patch", plural, ns);
        let name = workload.name().as_str();
        // The patch sets values (no list appends): sending it twice gives the same object.
        self.call("set_image", &target, &req, Retry::Transient, || {
            api.patch(name, &pp, &patch)
        })
        .await?;
        change.rollout_started =
            !update.dry_run && from.as_deref() != Some(image.as_str()) && !object.paused();
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_is_kubectls_with_the_cause_in_the_annotations() {
        let p = set_image_patch(&["app", "proxy"], "app", "shop/web:2", Some("release 2"));
        assert_eq!(
            p,
            json!({
                "metadata": {"annotations": {"kubernetes.io/change-cause": "release 2"}},
                "spec": {"template": {"spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "proxy"}],
                    "containers": [{"name": "app", "image": "shop/web:2"}],
                }}},
            })
        );
        assert!(
            set_image_patch(&["app"], "app", "x:1", None)
                .get("metadata")
                .is_none()
        );
    }
}
