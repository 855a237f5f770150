//! Rollout restart as kubectl does it: the pod template annotation
//! `kubectl.kubernetes.io/restartedAt` (RFC 3339, seconds) in a strategic merge patch, a paused
//! Deployment refused, a same-second repeat refused instead of sending an empty patch; and the
//! namespace-wide restart and wait that the seeds write as `rollout restart deployment --all`
//! and `kubectl wait --for=condition=available --all`.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, ListParams, Patch};
use ops_core::{Namespace, WorkloadKind, WorkloadRef};
use serde_json::json;

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};
use crate::status::{Verdict, deployment_verdict};
use crate::workload::Object;

/// The pod template annotation kubectl writes to restart a workload.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// kubectl's words for a restart of a paused Deployment.
const PAUSED: &str = "can't restart paused deployment (run rollout resume first)";

/// kubectl's words for a restart within the same second as the previous one.
const SAME_SECOND: &str = "if restart has already been triggered within the past second, please wait before attempting to trigger another";

/// Now, as kubectl writes it: RFC 3339 at second precision (UTC).
pub(crate) fn restart_stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The strategic merge patch kubectl computes for a restart at `stamp`.
pub(crate) fn restart_patch(stamp: &str) -> serde_json::Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}})
}

/// Why `object` may not be restarted at `stamp`, in kubectl's words.
fn refusal(object: &Object, stamp: &str) -> Option<&'static str> {
    if object.paused() {
        return Some(PAUSED);
    }
    let current = object
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(RESTARTED_AT));
    (current.map(String::as_str) == Some(stamp)).then_some(SAME_SECOND)
}

/// What a namespace-wide restart did, object by object.
///
/// # Examples
/// ```
/// let outcome = ops_k8s::NamespaceRestart::default();
/// assert!(outcome.restarted.is_empty() && outcome.refused.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamespaceRestart {
    /// The annotation value written on every restarted object.
    pub restarted_at: String,
    /// The workloads restarted.
    pub restarted: Vec<WorkloadRef>,
    /// The workloads left alone, with kubectl's reason (paused, same second).
    pub refused: Vec<(WorkloadRef, String)>,
}

impl KubePlatform {
    /// Send the restart patch for `workload` (already checked).
    async fn send_restart(&self, workload: &WorkloadRef, stamp: &str, dry_run: bool) -> Result<()> {
        let ns = workload.namespace().as_str();
        let name = workload.name().as_str();
        let target = workload.to_string();
        let pp = self.patch_params_for(dry_run);
        let patch = Patch::Strategic(restart_patch(stamp));
        // Sending the same annotation twice changes nothing more: safe to retry.
        match workload.kind() {
            WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("patch", "deployments", ns);
                self.call("rollout_restart", &target, &req, Retry::Transient, || {
                    api.patch(name, &pp, &patch)
                })
                .await?;
            }
            WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("patch", "statefulsets", ns);
                self.call("rollout_restart", &target, &req, Retry::Transient, || {
                    api.patch(name, &pp, &patch)
                })
                .await?;
            }
            WorkloadKind::DaemonSet => {
                let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), ns);
                let req = Request::new("patch", "daemonsets", ns);
                self.call("rollout_restart", &target, &req, Retry::Transient, || {
                    api.patch(name, &pp, &patch)
                })
                .await?;
            }
            _ => {
                return Err(Error::Unsupported {
                    operation: "rollout_restart",
                    target,
                    reason: "not a Kubernetes workload".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Restart one workload as `kubectl rollout restart` does; returns the annotation value.
    pub(crate) async fn restart(&self, workload: &WorkloadRef, dry_run: bool) -> Result<String> {
        let object = self.object("rollout_restart", workload).await?;
        let stamp = restart_stamp();
        if let Some(reason) = refusal(&object, &stamp) {
            return Err(Error::Refused {
                operation: "rollout_restart",
                target: workload.to_string(),
                reason: reason.to_owned(),
            });
        }
        self.send_restart(workload, &stamp, dry_run).await?;
        Ok(stamp)
    }

    /// Restart every Deployment of `namespace` (what the seeds write as
    /// `kubectl rollout restart deployment --all -n NS`): one list, then one patch per
    /// Deployment with at most [`crate::KubeConfig::concurrency`] in flight, the same
    /// annotation value on every object. Paused Deployments are left alone and listed in
    /// [`NamespaceRestart::refused`], as kubectl reports them.
    ///
    /// # Errors
    /// The first failed request; the Deployments restarted before it stay restarted (a
    /// restart has nothing to undo).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(k8s: ops_k8s::KubePlatform) -> Result<(), ops_core::OpsError> {
    /// let shop = ops_core::Namespace::new("shop")?;
    /// let outcome = k8s.restart_namespace(&shop, false).await?;
    /// println!("{} restarted at {}", outcome.restarted.len(), outcome.restarted_at);
    /// # Ok(()) }
    /// ```
    pub async fn restart_namespace(
        &self,
        namespace: &Namespace,
        dry_run: bool,
    ) -> Result<NamespaceRestart, ops_core::OpsError> {
        let ns = namespace.as_str();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("list", "deployments", ns);
        let lp = ListParams::default();
        let target = format!("namespace {ns}");
        let list = self
            .call("restart_namespace", &target, &req, Retry::Transient, || {
                api.list(&lp)
            })
            .await?;
        let stamp = restart_stamp();
        let mut outcome = NamespaceRestart {
            restarted_at: stamp.clone(),
            ..NamespaceRestart::default()
        };
        let mut todo = Vec::new();
        for d in list.items {
            let Some(workload) = d
                .metadata
                .name
                .as_deref()
                .and_then(|n| WorkloadRef::new(ns, WorkloadKind::Deployment, n).ok())
            else {
                continue;
            };
            match refusal(&Object::Deployment(Box::new(d)), &stamp) {
                Some(reason) => outcome.refused.push((workload, reason.to_owned())),
                None => todo.push(workload),
            }
        }
        let stamp = &stamp;
        let restarted: Vec<WorkloadRef> = futures::stream::iter(todo)
            .map(|w| async move {
                self.send_restart(&w, stamp, dry_run).await?;
                Ok::<_, Error>(w)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .try_collect()
            .await?;
        outcome.restarted = restarted;
        outcome.restarted.sort();
        Ok(outcome)
    }

    /// Wait until every Deployment of `namespace` has rolled out by kubectl's rule (one list
    /// per poll, however many Deployments).
    ///
    /// # Errors
    /// `Backend` naming the first Deployment whose progress deadline passed; `Timeout` naming
    /// those still rolling out when `timeout` ends.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(k8s: ops_k8s::KubePlatform) -> Result<(), ops_core::OpsError> {
    /// use std::time::Duration;
    /// let shop = ops_core::Namespace::new("shop")?;
    /// k8s.wait_namespace_rolled_out(&shop, Duration::from_secs(300), Duration::from_secs(1)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_namespace_rolled_out(
        &self,
        namespace: &Namespace,
        timeout: Duration,
        poll: Duration,
    ) -> Result<(), ops_core::OpsError> {
        self.wait_namespace(namespace, timeout, poll, deployment_verdict)
            .await
    }

    /// Wait until every Deployment of `namespace` reports the `Available` condition, as
    /// `kubectl wait --for=condition=available --all deployments -n NS` does.
    ///
    /// # Errors
    /// `Timeout` naming the Deployments not available when `timeout` ends.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(k8s: ops_k8s::KubePlatform) -> Result<(), ops_core::OpsError> {
    /// use std::time::Duration;
    /// let shop = ops_core::Namespace::new("shop")?;
    /// k8s.wait_namespace_available(&shop, Duration::from_secs(300), Duration::from_secs(1)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_namespace_available(
        &self,
        namespace: &Namespace,
        timeout: Duration,
        poll: Duration,
    ) -> Result<(), ops_core::OpsError> {
        self.wait_namespace(namespace, timeout, poll, |d| {
            let available = d
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Available" && c.status == "True");
            if available {
                Verdict::Done("available".to_owned())
            } else {
                Verdict::Waiting("not available".to_owned())
            }
        })
        .await
    }

    async fn wait_namespace(
        &self,
        namespace: &Namespace,
        timeout: Duration,
        poll: Duration,
        judge: impl Fn(&Deployment) -> Verdict + Send + Sync,
    ) -> Result<(), ops_core::OpsError> {
        let ns = namespace.as_str();
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("list", "deployments", ns);
        let lp = ListParams::default();
        let target = format!("namespace {ns}");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let list = self
                .call("wait_namespace", &target, &req, Retry::Transient, || {
                    api.list(&lp)
                })
                .await?;
            let mut waiting = Vec::new();
            for d in &list.items {
                let name = d.metadata.name.clone().unwrap_or_default();
                match judge(d) {
                    Verdict::Done(_) => {}
                    Verdict::Waiting(_) => waiting.push(name),
                    Verdict::Failed(message) | Verdict::Refused(message) => {
                        return Err(ops_core::OpsError::new(
                            ops_core::ErrorKind::Backend,
                            crate::error::BACKEND,
                            "wait_namespace",
                            format!("{ns}/deployment/{name}"),
                        )
                        .with_detail(message));
                    }
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() + poll > deadline {
                waiting.sort();
                return Err(Error::Timeout {
                    operation: "wait_namespace",
                    target: format!("{ns}: {}", waiting.join(", ")),
                    after: timeout,
                }
                .into());
            }
            tokio::time::sleep(poll).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_is_rfc3339_seconds() {
        let s = restart_stamp();
        assert_eq!(s.len(), "2026-12-01T19:00:00Z".len(), "{s}");
        assert!(s.ends_with('Z'));
        assert!(s.parse::<jiff::Timestamp>().is_ok());
    }

    #[test]
    fn patch_is_kubectls_shape() {
        assert_eq!(
            restart_patch("2026-12-01T19:00:00Z").to_string(),
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-12-01T19:00:00Z"}}}}}"#
        );
    }
}
