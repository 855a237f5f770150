//! Scale through the `scale` subresource (as `kubectl scale --current-replicas` does: read,
//! check, write back with the resourceVersion read), refusing to fight an autoscaler; and
//! stop / start as scale to zero and back, the count remembered on the object itself.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, ListParams, Patch, PostParams};
use ops_core::platform::{ScaleChange, ScaleOptions};
use ops_core::{WorkloadKind, WorkloadRef};
use serde_json::json;

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};
use crate::workload::Object;

/// The annotation where [`KubePlatform`]'s stop remembers the replica count start restores.
pub const STOPPED_REPLICAS: &str = "opsbook.dev/replicas-before-stop";

fn replicas_u32(v: i32) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(0)
}

fn no_replicas(operation: &'static str, workload: &WorkloadRef) -> Error {
    Error::Unsupported {
        operation,
        target: workload.to_string(),
        reason: "a DaemonSet runs one pod per eligible node and has no replica count".to_owned(),
    }
}

impl KubePlatform {
    /// The HPA that scales `workload`, if any, with its bounds.
    pub(crate) async fn autoscaler_of(
        &self,
        operation: &'static str,
        workload: &WorkloadRef,
    ) -> Result<Option<HorizontalPodAutoscaler>> {
        let ns = workload.namespace().as_str();
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("list", "horizontalpodautoscalers", ns);
        let lp = ListParams::default();
        let target = workload.to_string();
        let kind = match workload.kind() {
            WorkloadKind::StatefulSet => "StatefulSet",
            _ => "Deployment",
        };
        let list = match self
            .call(operation, &target, &req, Retry::Transient, || api.list(&lp))
            .await
        {
            Ok(list) => list,
            // A cluster without autoscaling/v2 has no autoscaler to fight.
            Err(e) if e.status_code() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(list.items.into_iter().find(|h| {
            h.spec.as_ref().is_some_and(|s| {
                s.scale_target_ref.kind == kind
                    && s.scale_target_ref.name == workload.name().as_str()
            })
        }))
    }

    /// `kubectl scale --current-replicas=X --replicas=N`: read the scale, check the
    /// expectation, write it back with the resourceVersion read (409 if it moved meanwhile,
    /// which is retried after a fresh read unless an expectation pins the count).
    pub(crate) async fn scale_to(
        &self,
        workload: &WorkloadRef,
        replicas: u32,
        opts: &ScaleOptions,
    ) -> Result<ScaleChange> {
        let target = workload.to_string();
        let resource = match workload.kind() {
            WorkloadKind::Deployment => "deployments/scale",
            WorkloadKind::StatefulSet => "statefulsets/scale",
            _ => return Err(no_replicas("scale", workload)),
        };
        if let Some(hpa) = self.autoscaler_of("scale", workload).await? {
            let spec = hpa.spec.unwrap_or_default();
            return Err(Error::Refused {
                operation: "scale",
                target,
                reason: format!(
                    "HorizontalPodAutoscaler {:?} scales this workload ({}..{} replicas): change \
                     its minReplicas/maxReplicas instead of fighting it",
                    hpa.metadata.name.unwrap_or_default(),
                    spec.min_replicas.unwrap_or(1),
                    spec.max_replicas
                ),
            });
        }
        let want = i32::try_from(replicas).map_err(|_| Error::InvalidArgument {
            operation: "scale",
            target: target.clone(),
            reason: format!("{replicas} replicas is more than the API accepts"),
        })?;
        self.on_conflict_retry(|| async {
            let current = self.read_scale(workload, resource).await?;
            let from = replicas_u32(current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0));
            if let Some(expected) = opts.expect_current
                && expected != from
            {
                return Err(Error::Refused {
                    operation: "scale",
                    target: target.clone(),
                    reason: format!("Expected replicas to be {expected}, was {from}"),
                });
            }
            let mut next = current.clone();
            next.spec.get_or_insert_with(Default::default).replicas = Some(want);
            self.write_scale(workload, resource, &next, opts.dry_run)
                .await?;
            Ok(ScaleChange::new(from, replicas))
        })
        .await
    }

    async fn read_scale(&self, workload: &WorkloadRef, resource: &'static str) -> Result<Scale> {
        let ns = workload.namespace().as_str();
        let name = workload.name().as_str();
        let target = workload.to_string();
        let req = Request::new("get", resource, ns);
        if workload.kind() == WorkloadKind::StatefulSet {
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
            self.call("scale", &target, &req, Retry::Transient, || {
                api.get_scale(name)
            })
            .await
        } else {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
            self.call("scale", &target, &req, Retry::Transient, || {
                api.get_scale(name)
            })
            .await
        }
    }

    async fn write_scale(
        &self,
        workload: &WorkloadRef,
        resource: &'static str,
        scale: &Scale,
        dry_run: bool,
    ) -> Result<Scale> {
        let ns = workload.namespace().as_str();
        let name = workload.name().as_str();
        let target = workload.to_string();
        let req = Request::new("update", resource, ns);
        let pp = PostParams {
            dry_run,
            field_manager: Some(self.config.field_manager.clone()),
        };
        // The body carries the resourceVersion read: a second delivery is refused with 409.
        if workload.kind() == WorkloadKind::StatefulSet {
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
            self.call("scale", &target, &req, Retry::Transient, || {
                api.replace_scale(name, &pp, scale)
            })
            .await
        } else {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
            self.call("scale", &target, &req, Retry::Transient, || {
                api.replace_scale(name, &pp, scale)
            })
            .await
        }
    }

    /// One merge patch setting `spec.replicas` and the remembered count together, guarded by
    /// the resourceVersion read: both change or neither does.
    async fn patch_replicas(
        &self,
        operation: &'static str,
        workload: &WorkloadRef,
        object: &Object,
        replicas: i32,
        remembered: Option<i32>,
        dry_run: bool,
    ) -> Result<()> {
        let ns = workload.namespace().as_str();
        let name = workload.name().as_str();
        let target = workload.to_string();
        let patch = Patch::Merge(json!({
            "metadata": {
                "resourceVersion": object.metadata().resource_version,
                "annotations": {STOPPED_REPLICAS: remembered.map(|r| r.to_string())},
            },
            "spec": {"replicas": replicas},
        }));
        let pp = self.patch_params_for(dry_run);
        if workload.kind() == WorkloadKind::StatefulSet {
            let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
            let req = Request::new("patch", "statefulsets", ns);
            self.call(operation, &target, &req, Retry::Transient, || {
                api.patch(name, &pp, &patch)
            })
            .await?;
        } else {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
            let req = Request::new("patch", "deployments", ns);
            self.call(operation, &target, &req, Retry::Transient, || {
                api.patch(name, &pp, &patch)
            })
            .await?;
        }
        Ok(())
    }

    /// Scale to zero, remembering the count in [`STOPPED_REPLICAS`]. Stopping a stopped
    /// workload changes nothing.
    pub(crate) async fn stop_workload(&self, workload: &WorkloadRef, dry_run: bool) -> Result<()> {
        if workload.kind() == WorkloadKind::DaemonSet {
            return Err(no_replicas("stop", workload));
        }
        self.on_conflict_retry(|| async {
            let object = self.object("stop", workload).await?;
            let replicas = object.spec_replicas().unwrap_or(0);
            if replicas == 0 {
                return Ok(());
            }
            self.patch_replicas("stop", workload, &object, 0, Some(replicas), dry_run)
                .await
        })
        .await
    }

    /// Scale back to the count [`STOPPED_REPLICAS`] remembers and forget it. Starting a
    /// running workload changes nothing; a workload at zero with nothing remembered is an
    /// error (the count to start with is unknown).
    pub(crate) async fn start_workload(&self, workload: &WorkloadRef, dry_run: bool) -> Result<()> {
        if workload.kind() == WorkloadKind::DaemonSet {
            return Err(no_replicas("start", workload));
        }
        self.on_conflict_retry(|| async {
            let object = self.object("start", workload).await?;
            let remembered = object
                .metadata()
                .annotations
                .as_ref()
                .and_then(|a| a.get(STOPPED_REPLICAS))
                .and_then(|v| v.parse::<i32>().ok());
            let replicas = object.spec_replicas().unwrap_or(0);
            match remembered {
                Some(count) if replicas == 0 => {
                    self.patch_replicas("start", workload, &object, count, None, dry_run)
                        .await
                }
                _ if replicas > 0 => Ok(()),
                _ => Err(Error::InvalidArgument {
                    operation: "start",
                    target: workload.to_string(),
                    reason: format!(
                        "the workload is at 0 replicas and no count was remembered \
                         ({STOPPED_REPLICAS}): scale it to a chosen count instead"
                    ),
                }),
            }
        })
        .await
    }
}
