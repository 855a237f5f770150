//! [`KubePlatform`]: the [`Platform`] trait over the Kubernetes API, and the one place every
//! request goes through (deadline, retries, error mapping).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use ops_core::platform::{
    ConfigChange, ConfigUpdate, DeleteOptions, EventOptions, ExecCommand, ExecOutput,
    ExportOptions, Lockdown, LockdownId, LockdownOptions, LockdownScope, LogLine, LogOptions,
    NamespaceExport, PlatformCapabilities, PlatformEvent, ResourceUsage, RestartOptions, Revision,
    RollbackChange, RollbackOptions, RolloutStatus, ScaleChange, ScaleOptions, StopOptions,
    WorkloadStatus,
};
use ops_core::{InstanceRef, Namespace, OpsError, Platform, WorkloadRef};

use crate::config::KubeConfig;
use crate::discovery::{Discovered, METRICS_API};
use crate::error::{BACKEND, Error, Request, Result};

/// A Kubernetes cluster as a [`Platform`]: Deployments, StatefulSets and DaemonSets with
/// kubectl's rollout semantics.
///
/// Build one with [`crate::KubePlatformBuilder`]. Every request is bounded by
/// [`KubeConfig::request_timeout`]; 409 Conflicts are retried after a fresh read, 429 and 5xx
/// answers with backoff where retrying cannot apply a change twice.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), ops_core::OpsError> {
/// use ops_core::platform::{RestartOptions, RolloutOptions};
/// use ops_core::{Platform, PlatformExt, WorkloadKind, WorkloadRef};
/// let k8s = ops_k8s::KubePlatformBuilder::from_env().context("prod").build().await?;
/// let api = WorkloadRef::new("shop", WorkloadKind::Deployment, "api")?;
/// k8s.rollout_restart(&api, RestartOptions::default()).await?;
/// k8s.wait_rolled_out(&api, RolloutOptions::default()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KubePlatform {
    pub(crate) client: kube::Client,
    pub(crate) config: KubeConfig,
    default_namespace: String,
    /// Whether `metrics.k8s.io` is served, shared by clones (discovered once).
    pub(crate) metrics: Arc<Discovered>,
}

impl std::fmt::Debug for KubePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubePlatform")
            .field("default_namespace", &self.default_namespace)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Whether a failed request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// A read, or a write guarded by a resourceVersion: 429, 5xx and unanswered requests are
    /// tried again with backoff.
    Transient,
    /// A write that could apply twice: only a 429 (refused before it was processed) is tried
    /// again.
    RefusedOnly,
}

impl KubePlatform {
    pub(crate) fn new(client: kube::Client, default_namespace: String, config: KubeConfig) -> Self {
        Self {
            client,
            config,
            default_namespace,
            metrics: Arc::default(),
        }
    }

    /// The configuration in use.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo() -> Result<(), ops_k8s::Error> {
    /// let k8s = ops_k8s::KubePlatformBuilder::from_env().build().await?;
    /// assert_eq!(k8s.config().field_manager, "opsbook");
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &KubeConfig {
        &self.config
    }

    /// The namespace of the kubeconfig context (or the service account), for callers that
    /// want a default.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo() -> Result<(), ops_k8s::Error> {
    /// let k8s = ops_k8s::KubePlatformBuilder::from_env().build().await?;
    /// println!("default namespace: {}", k8s.default_namespace());
    /// # Ok(()) }
    /// ```
    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    /// Send one request under the deadline, retrying as `retry` allows, and map its failure.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        target: &str,
        request: &Request,
        retry: Retry,
        mut send: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = kube::Result<T>>,
    {
        let deadline = self.config.request_timeout;
        let policy = self.config.retry_policy();
        let start = tokio::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match tokio::time::timeout(deadline, send()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(cause)) => Error::Api {
                    operation,
                    target: target.to_owned(),
                    request: request.clone(),
                    cause: Box::new(cause),
                },
                Err(_) => Error::Timeout {
                    operation,
                    target: target.to_owned(),
                    after: deadline,
                },
            };
            let again = match retry {
                Retry::Transient => matches!(
                    err.kind(),
                    ops_core::ErrorKind::Unavailable | ops_core::ErrorKind::Timeout
                ),
                Retry::RefusedOnly => err.status_code() == Some(429),
            };
            // ops-core's policy decides: attempts left, the server's own `retryAfterSeconds`
            // (429s carry it; cut to 30 s by `Error::retry_after`), else full-jitter backoff.
            let wait = again
                .then(|| policy.next_wait(attempt, err.retry_after(), start.elapsed()))
                .flatten();
            let Some(wait) = wait else {
                return Err(err);
            };
            tracing::debug!(operation, attempt, wait_ms = wait.as_millis(), error = %err, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Run `attempt` again after a 409 Conflict (it re-reads what it changes), at most
    /// [`KubeConfig::conflict_retries`] more times.
    pub(crate) async fn on_conflict_retry<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let policy = self.config.retry_policy();
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(e) if e.is_conflict() && tries < self.config.conflict_retries => {
                    tries += 1;
                    tokio::time::sleep(policy.delay(tries)).await;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl Platform for KubePlatform {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// Everything, except `resource_usage` unless API discovery found `metrics.k8s.io`
    /// (metrics-server) served: asked when the platform is built, and again by
    /// [`Platform::resource_usage`] while no answer came.
    fn capabilities(&self) -> PlatformCapabilities {
        let mut caps = PlatformCapabilities::all();
        caps.resource_usage = self.metrics.known() == Some(true);
        caps
    }

    async fn list_workloads(&self, namespace: &Namespace) -> Result<Vec<WorkloadRef>, OpsError> {
        Ok(self.workloads_in(namespace.as_str()).await?)
    }

    async fn workload(&self, workload: &WorkloadRef) -> Result<WorkloadStatus, OpsError> {
        Ok(self.status_of(workload).await?)
    }

    async fn rollout_restart(
        &self,
        workload: &WorkloadRef,
        opts: RestartOptions,
    ) -> Result<(), OpsError> {
        self.restart(workload, opts.dry_run).await?;
        Ok(())
    }

    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, OpsError> {
        Ok(self.rollout_verdict(workload).await?)
    }

    async fn scale(
        &self,
        workload: &WorkloadRef,
        replicas: u32,
        opts: ScaleOptions,
    ) -> Result<ScaleChange, OpsError> {
        Ok(self.scale_to(workload, replicas, &opts).await?)
    }

    async fn stop(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> {
        Ok(self.stop_workload(workload, opts.dry_run).await?)
    }

    async fn start(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> {
        Ok(self.start_workload(workload, opts.dry_run).await?)
    }

    async fn revisions(&self, workload: &WorkloadRef) -> Result<Vec<Revision>, OpsError> {
        Ok(self.history(workload).await?)
    }

    async fn rollback(
        &self,
        workload: &WorkloadRef,
        opts: RollbackOptions,
    ) -> Result<RollbackChange, OpsError> {
        Ok(self.undo(workload, &opts).await?)
    }

    async fn delete_instance(
        &self,
        instance: &InstanceRef,
        opts: DeleteOptions,
    ) -> Result<(), OpsError> {
        Ok(self.delete_pod(instance, &opts).await?)
    }

    async fn logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<Vec<LogLine>, OpsError> {
        Ok(self.read_logs(workload, &opts).await?)
    }

    async fn follow_logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, OpsError>>, OpsError> {
        Ok(self.follow(workload, opts).await?)
    }

    async fn events(
        &self,
        workload: &WorkloadRef,
        opts: EventOptions,
    ) -> Result<Vec<PlatformEvent>, OpsError> {
        Ok(self.events_of(workload, &opts).await?)
    }

    async fn exec(
        &self,
        instance: &InstanceRef,
        command: &ExecCommand,
    ) -> Result<ExecOutput, OpsError> {
        Ok(self.exec_command(instance, command).await?)
    }

    async fn copy_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> {
        Ok(self.copy_out(instance, path).await?)
    }

    async fn copy_from_into(
        &self,
        instance: &InstanceRef,
        path: &str,
        sink: &mut ops_core::platform::CopySink,
    ) -> Result<u64, OpsError> {
        Ok(self.copy_out_into(instance, path, sink).await?)
    }

    async fn archive_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> {
        let (parent, base) = ops_core::archive::split_dir(path)?;
        let archive = self.archive_out(instance, parent, base).await?;
        ops_core::archive::check_archive(&archive, base)?;
        Ok(archive)
    }

    async fn copy_to(
        &self,
        instance: &InstanceRef,
        path: &str,
        contents: Vec<u8>,
    ) -> Result<(), OpsError> {
        Ok(self.copy_in(instance, path, &contents).await?)
    }

    async fn resource_usage(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>, OpsError> {
        if self.metrics_served().await == Some(false) {
            return Err(Error::Unsupported {
                operation: "resource_usage",
                target: workload.to_string(),
                reason: format!(
                    "the cluster does not serve {METRICS_API} (install metrics-server to read \
                     CPU and memory)"
                ),
            }
            .into());
        }
        Ok(self.usage_of(workload).await?)
    }

    async fn update_config(
        &self,
        workload: &WorkloadRef,
        update: ConfigUpdate,
    ) -> Result<ConfigChange, OpsError> {
        Ok(self.apply_config(workload, update).await?)
    }
    async fn resources(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Vec<ops_core::platform::ContainerResources>, OpsError> {
        Ok(self.template_resources(workload).await?)
    }

    async fn set_resources(
        &self,
        workload: &WorkloadRef,
        update: ops_core::platform::ResourceUpdate,
    ) -> Result<ops_core::platform::ResourceChange, OpsError> {
        Ok(self.set_template_resources(workload, &update).await?)
    }
    async fn autoscaler(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Option<ops_core::platform::Autoscaler>, OpsError> {
        Ok(self.hpa_view(workload).await?)
    }

    async fn set_autoscaler(
        &self,
        workload: &WorkloadRef,
        spec: ops_core::platform::AutoscalerSpec,
    ) -> Result<ops_core::platform::AutoscalerChange, OpsError> {
        Ok(self.put_hpa(workload, &spec).await?)
    }
    async fn set_image(
        &self,
        workload: &WorkloadRef,
        update: ops_core::platform::ImageUpdate,
    ) -> Result<ops_core::platform::ImageChange, OpsError> {
        self.set_container_image(workload, &update).await
    }
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "k8s", target = %scope))]
    async fn lockdown(
        &self,
        scope: &LockdownScope,
        opts: LockdownOptions,
    ) -> Result<Lockdown, OpsError> {
        Ok(self.isolate(scope, opts).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "k8s", target = %namespace))]
    async fn lockdowns(&self, namespace: &Namespace) -> Result<Vec<Lockdown>, OpsError> {
        Ok(self.active_lockdowns(namespace).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "k8s", target = %namespace))]
    async fn lift_lockdown(
        &self,
        namespace: &Namespace,
        id: &LockdownId,
    ) -> Result<Lockdown, OpsError> {
        Ok(self.lift(namespace, id).await?)
    }
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "k8s", target = %namespace))]
    async fn export(
        &self,
        namespace: &Namespace,
        opts: ExportOptions,
    ) -> Result<NamespaceExport, OpsError> {
        Ok(self.export_namespace(namespace, &opts).await?)
    }
    async fn inspect(
        &self,
        namespace: &Namespace,
        opts: ops_core::platform::InspectOptions,
    ) -> Result<ops_core::platform::Inspection, OpsError> {
        Ok(self.inspect_namespace(namespace, &opts).await)
    }
    async fn secret_users(
        &self,
        namespace: &Namespace,
        name: &ops_core::ResourceName,
    ) -> Result<Vec<WorkloadRef>, OpsError> {
        Ok(self.workloads_using_secret(namespace, name).await?)
    }

    async fn copy_secret(
        &self,
        namespace: &Namespace,
        copy: ops_core::platform::SecretCopy,
    ) -> Result<ops_core::platform::SecretCreated, OpsError> {
        Ok(self.copy_secret_to(namespace, &copy).await?)
    }

    async fn repoint_secret(
        &self,
        workload: &WorkloadRef,
        from: &ops_core::ResourceName,
        to: &ops_core::ResourceName,
    ) -> Result<ops_core::platform::SecretRepoint, OpsError> {
        Ok(self.repoint_secret_refs(workload, from, to).await?)
    }

    async fn delete_secret(
        &self,
        namespace: &Namespace,
        name: &ops_core::ResourceName,
    ) -> Result<(), OpsError> {
        Ok(self.delete_unused_secret(namespace, name).await?)
    }
}
