//! The `autoscaling/v2` `HorizontalPodAutoscaler` of a workload: found by its
//! `scaleTargetRef`, created as `kubectl autoscale` creates it, updated with a merge patch
//! guarded by the resourceVersion read (bounds and the CPU / memory targets; other metrics and
//! the behaviour are kept).

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PostParams};
use ops_core::platform::{Autoscaler, AutoscalerChange, AutoscalerSpec};
use ops_core::{ResourceName, WorkloadKind, WorkloadRef};
use serde_json::json;

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};

fn count(v: i32) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(0)
}

/// The `Utilization` target of the `Resource` metric named `resource`.
fn utilization(spec: &HorizontalPodAutoscalerSpec, resource: &str) -> Option<u32> {
    spec.metrics.iter().flatten().find_map(|m| {
        let r = m.resource.as_ref().filter(|_| m.type_ == "Resource")?;
        (r.name == resource && r.target.type_ == "Utilization")
            .then(|| r.target.average_utilization.map(count))
            .flatten()
    })
}

/// The opsbook view of an HPA.
fn view(hpa: &HorizontalPodAutoscaler, target: &str) -> Result<Autoscaler> {
    let raw = hpa.metadata.name.clone().unwrap_or_default();
    let name = ResourceName::new(&raw).map_err(|e| Error::Malformed {
        operation: "autoscaler",
        target: target.to_owned(),
        reason: e.detail().unwrap_or_default().to_owned(),
    })?;
    let spec = hpa.spec.clone().unwrap_or_default();
    let mut out = Autoscaler::new(
        name,
        count(spec.min_replicas.unwrap_or(1)),
        count(spec.max_replicas),
    );
    out.cpu_utilization = utilization(&spec, "cpu");
    out.memory_utilization = utilization(&spec, "memory");
    if let Some(status) = &hpa.status {
        out.current_replicas = status.current_replicas.map(count);
        out.desired_replicas = Some(count(status.desired_replicas));
    }
    Ok(out)
}

fn resource_metric(resource: &str, percent: u32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".to_owned(),
        resource: Some(ResourceMetricSource {
            name: resource.to_owned(),
            target: MetricTarget {
                type_: "Utilization".to_owned(),
                average_utilization: Some(i32::try_from(percent).unwrap_or(i32::MAX)),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

/// `metrics` with the CPU / memory utilisation targets of `spec` set (replacing a `Resource`
/// metric of the same name, else appended), everything else kept in order.
fn merged_metrics(metrics: &[MetricSpec], spec: &AutoscalerSpec) -> Vec<MetricSpec> {
    let mut out = metrics.to_vec();
    for (resource, percent) in [
        ("cpu", spec.cpu_utilization()),
        ("memory", spec.memory_utilization()),
    ] {
        let Some(percent) = percent else { continue };
        let metric = resource_metric(resource, percent);
        match out.iter_mut().find(|m| {
            m.type_ == "Resource" && m.resource.as_ref().is_some_and(|r| r.name == resource)
        }) {
            Some(existing) => *existing = metric,
            None => out.push(metric),
        }
    }
    out
}

fn target_kind(workload: &WorkloadRef) -> Result<&'static str> {
    match workload.kind() {
        WorkloadKind::Deployment => Ok("Deployment"),
        WorkloadKind::StatefulSet => Ok("StatefulSet"),
        _ => Err(Error::Unsupported {
            operation: "set_autoscaler",
            target: workload.to_string(),
            reason: "a DaemonSet runs one pod per eligible node and has no replica count to scale"
                .to_owned(),
        }),
    }
}

impl KubePlatform {
    /// The HPA whose `scaleTargetRef` names the workload, as opsbook sees it.
    pub(crate) async fn hpa_view(&self, workload: &WorkloadRef) -> Result<Option<Autoscaler>> {
        if workload.kind() == WorkloadKind::DaemonSet {
            return Ok(None);
        }
        // The workload must exist: an autoscaler of nothing is not an answer.
        self.object("autoscaler", workload).await?;
        let target = workload.to_string();
        self.autoscaler_of("autoscaler", workload)
            .await?
            .map(|h| view(&h, &target))
            .transpose()
    }

    /// Create the HPA (`kubectl autoscale`'s object) or update the one that targets the
    /// workload; an expectation on the minimum is checked against each fresh read.
    pub(crate) async fn put_hpa(
        &self,
        workload: &WorkloadRef,
        spec: &AutoscalerSpec,
    ) -> Result<AutoscalerChange> {
        let kind = target_kind(workload)?;
        let target = workload.to_string();
        self.object("set_autoscaler", workload).await?;
        self.on_conflict_retry(|| async {
            let existing = self.autoscaler_of("set_autoscaler", workload).await?;
            let before = existing.as_ref().map(|h| view(h, &target)).transpose()?;
            if let Some(expected) = spec.expect_min
                && before.as_ref().map(|b| b.min_replicas) != Some(expected)
            {
                return Err(Error::Refused {
                    operation: "set_autoscaler",
                    target: target.clone(),
                    reason: format!(
                        "expected an autoscaler with minReplicas {expected}, found {}",
                        before
                            .as_ref()
                            .map_or_else(|| "none".to_owned(), ToString::to_string)
                    ),
                });
            }
            let after = match existing {
                Some(hpa) => self.update_hpa(workload, &hpa, spec).await?,
                None => self.create_hpa(workload, kind, spec).await?,
            };
            Ok(AutoscalerChange::new(before, view(&after, &target)?))
        })
        .await
    }

    async fn create_hpa(
        &self,
        workload: &WorkloadRef,
        kind: &str,
        spec: &AutoscalerSpec,
    ) -> Result<HorizontalPodAutoscaler> {
        let ns = workload.namespace().as_str();
        let name = spec
            .name
            .as_ref()
            .map_or_else(|| workload.name().to_string(), ToString::to_string);
        let hpa = HorizontalPodAutoscaler {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(ns.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".to_owned()),
                    kind: kind.to_owned(),
                    name: workload.name().to_string(),
                },
                min_replicas: Some(i32::try_from(spec.min_replicas()).unwrap_or(i32::MAX)),
                max_replicas: i32::try_from(spec.max_replicas()).unwrap_or(i32::MAX),
                metrics: Some(merged_metrics(&[], spec)),
                behavior: None,
            }),
            status: None,
        };
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("create", "horizontalpodautoscalers", ns);
        let pp = PostParams {
            dry_run: spec.dry_run,
            field_manager: Some(self.config.field_manager.clone()),
        };
        // A create that went through and is sent again is a 409 AlreadyExists: only a refused
        // (429) request is sent again.
        self.call(
            "set_autoscaler",
            &workload.to_string(),
            &req,
            Retry::RefusedOnly,
            || api.create(&pp, &hpa),
        )
        .await
    }

    async fn update_hpa(
        &self,
        workload: &WorkloadRef,
        hpa: &HorizontalPodAutoscaler,
        spec: &AutoscalerSpec,
    ) -> Result<HorizontalPodAutoscaler> {
        let ns = workload.namespace().as_str();
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let current = hpa.spec.clone().unwrap_or_default();
        let metrics = merged_metrics(current.metrics.as_deref().unwrap_or_default(), spec);
        let patch = Patch::Merge(json!({
            "metadata": {"resourceVersion": hpa.metadata.resource_version},
            "spec": {
                "minReplicas": spec.min_replicas(),
                "maxReplicas": spec.max_replicas(),
                "metrics": metrics,
            },
        }));
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("patch", "horizontalpodautoscalers", ns);
        let pp = self.patch_params_for(spec.dry_run);
        // Guarded by the resourceVersion read: a second delivery is a 409, never a double write.
        self.call(
            "set_autoscaler",
            &workload.to_string(),
            &req,
            Retry::Transient,
            || api.patch(&name, &pp, &patch),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_replace_their_own_metric_and_keep_the_others() {
        let custom = MetricSpec {
            type_: "Pods".to_owned(),
            ..MetricSpec::default()
        };
        let before = vec![resource_metric("cpu", 50), custom.clone()];
        let spec = AutoscalerSpec::new(1, 3)
            .unwrap()
            .with_cpu_target(70)
            .unwrap()
            .with_memory_target(80)
            .unwrap();
        let after = merged_metrics(&before, &spec);
        assert_eq!(
            after,
            vec![
                resource_metric("cpu", 70),
                custom,
                resource_metric("memory", 80)
            ]
        );
    }
}
