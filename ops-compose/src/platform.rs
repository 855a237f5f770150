//! [`ComposePlatform`]: the [`Platform`] implementation, and the helpers every area shares.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use futures::stream::BoxStream;
use ops_core::platform::{
    ConfigChange, ConfigUpdate, DeleteOptions, EventOptions, ExecCommand, ExecOutput,
    ExportOptions, Lockdown, LockdownId, LockdownOptions, LockdownScope, LogLine, LogOptions,
    NamespaceExport, Platform, PlatformCapabilities, PlatformEvent, ResourceUsage, RestartOptions,
    Revision, RollbackChange, RollbackOptions, RolloutStatus, ScaleChange, ScaleOptions,
    StopOptions, WorkloadStatus,
};
use ops_core::{InstanceRef, Namespace, OpsError, WorkloadRef};
use tokio::sync::OnceCell;

use crate::config::{ComposeConfig, ComposePlatformBuilder};
use crate::error::{Error, Result};
use crate::labels;

/// Docker Compose services as a [`Platform`], over the Docker Engine API.
///
/// A workload is `project/service/name` ([`WorkloadRef::compose_service`]): the containers
/// labelled `com.docker.compose.project=project` and `com.docker.compose.service=name`,
/// one-off (`docker compose run`) containers excluded. Instances are containers, named as
/// compose names them (`project-service-N`).
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), ops_core::OpsError> {
/// use ops_core::Platform;
/// let platform = ops_compose::ComposePlatform::builder().build()?;
/// let api = ops_core::WorkloadRef::compose_service("shop", "api")?;
/// let status = platform.workload(&api).await?;
/// println!("{} of {} ready", status.ready, status.desired);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ComposePlatform {
    client: Docker,
    negotiated: OnceCell<Docker>,
    config: ComposeConfig,
    raw: Option<crate::raw::Endpoint>,
    #[cfg(feature = "fault-injection")]
    fail_at: Option<crate::recreate::RecreatePoint>,
}

/// One container of a service, as listed.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) number: u32,
    pub(crate) running: bool,
}

impl ComposePlatform {
    /// A builder reading `OPSBOOK_COMPOSE_*` and `DOCKER_HOST`.
    pub fn builder() -> ComposePlatformBuilder {
        ComposePlatformBuilder::from_env()
    }

    /// Wrap an existing client (the API version is negotiated on first use).
    pub fn from_client(client: Docker) -> Self {
        Self::with_parts(client, ComposeConfig::default(), None)
    }

    pub(crate) fn with_parts(
        client: Docker,
        config: ComposeConfig,
        raw: Option<crate::raw::Endpoint>,
    ) -> Self {
        Self {
            client,
            negotiated: OnceCell::new(),
            config,
            raw,
            #[cfg(feature = "fault-injection")]
            fail_at: None,
        }
    }

    /// Make every container swap of a recreate fail at `point` (feature `fault-injection`,
    /// for tests of the undo).
    #[cfg(feature = "fault-injection")]
    #[must_use]
    pub fn fail_recreate_at(mut self, point: crate::recreate::RecreatePoint) -> Self {
        self.fail_at = Some(point);
        self
    }

    #[cfg(feature = "fault-injection")]
    pub(crate) fn injected_failure(&self) -> Option<crate::recreate::RecreatePoint> {
        self.fail_at
    }

    /// The plain endpoint for fast log reads, when the client came from `DOCKER_HOST`.
    pub(crate) fn raw_endpoint(&self) -> Option<&crate::raw::Endpoint> {
        self.raw.as_ref()
    }

    /// The deadlines in use.
    pub fn config(&self) -> &ComposeConfig {
        &self.config
    }

    /// Check that the engine answers, negotiating the API version.
    ///
    /// # Errors
    /// `Unavailable` when the engine cannot be reached; `Timeout` past the request deadline.
    pub async fn ping(&self) -> Result<()> {
        let docker = self.docker().await?;
        self.call("ping", "docker engine", docker.ping()).await?;
        Ok(())
    }

    /// The negotiated client. Negotiation failures are not cached: the next call retries.
    pub(crate) async fn docker(&self) -> Result<&Docker> {
        let timeout = self.config.request_timeout;
        self.negotiated
            .get_or_try_init(|| async {
                match tokio::time::timeout(timeout, self.client.clone().negotiate_version()).await {
                    Ok(Ok(d)) => Ok(d),
                    Ok(Err(source)) => {
                        Err(Error::engine("negotiate_version", "docker engine", source))
                    }
                    Err(_) => Err(Error::Timeout {
                        operation: "negotiate_version",
                        target: "docker engine".to_owned(),
                        after: timeout,
                    }),
                }
            })
            .await
    }

    /// Run one Engine call under the request deadline.
    pub(crate) async fn call<T>(
        &self,
        operation: &'static str,
        target: &str,
        fut: impl Future<Output = std::result::Result<T, bollard::errors::Error>>,
    ) -> Result<T> {
        self.call_within(self.config.request_timeout, operation, target, fut)
            .await
    }

    /// Run one Engine call under an explicit deadline (stop/restart add their grace period).
    pub(crate) async fn call_within<T>(
        &self,
        deadline: Duration,
        operation: &'static str,
        target: &str,
        fut: impl Future<Output = std::result::Result<T, bollard::errors::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(deadline, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(Error::engine(operation, target, source)),
            Err(_) => Err(Error::Timeout {
                operation,
                target: target.to_owned(),
                after: deadline,
            }),
        }
    }

    /// Every non-one-off container of `project` (or one of its services), any state.
    pub(crate) async fn list(
        &self,
        project: &str,
        service: Option<&str>,
    ) -> Result<Vec<ContainerSummary>> {
        let docker = self.docker().await?;
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&labels::filters(project, service))
            .build();
        let target = service.map_or_else(|| project.to_owned(), |s| format!("{project}/{s}"));
        let all = self
            .call(
                "list_containers",
                &target,
                docker.list_containers(Some(opts)),
            )
            .await?;
        Ok(all
            .into_iter()
            .filter(|c| !labels::is_oneoff(c.labels.as_ref()))
            .collect())
    }

    /// The containers of a service in container-number order; `NotFound` when there are none.
    pub(crate) async fn members(
        &self,
        workload: &WorkloadRef,
        operation: &'static str,
    ) -> Result<Vec<Member>> {
        let (project, service) = labels::project_service(workload)?;
        let mut members: Vec<Member> = self
            .list(project, Some(service))
            .await?
            .iter()
            .filter_map(|c| {
                Some(Member {
                    id: c.id.clone()?,
                    name: labels::summary_name(c)?,
                    number: labels::container_number(c.labels.as_ref()),
                    // A restarting container is meant to run (its restart policy says so).
                    running: matches!(
                        c.state,
                        Some(
                            bollard::models::ContainerSummaryStateEnum::RUNNING
                                | bollard::models::ContainerSummaryStateEnum::RESTARTING
                        )
                    ),
                })
            })
            .collect();
        if members.is_empty() {
            return Err(Error::NotFound {
                operation,
                target: workload.to_string(),
            });
        }
        members.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.name.cmp(&b.name)));
        Ok(members)
    }

    /// Inspect one container by id or name.
    pub(crate) async fn inspect(&self, container: &str) -> Result<ContainerInspectResponse> {
        let docker = self.docker().await?;
        self.call(
            "inspect_container",
            container,
            docker.inspect_container(container, None::<InspectContainerOptions>),
        )
        .await
    }

    /// Inspect the container an [`InstanceRef`] names, checking it belongs to the workload.
    pub(crate) async fn resolve_instance(
        &self,
        instance: &InstanceRef,
        operation: &'static str,
    ) -> Result<ContainerInspectResponse> {
        let (project, service) = labels::project_service(instance.workload())?;
        // InstanceRef checked the name by the engine's rule (WorkloadKind::instance_rule).
        let name = instance.name().as_str();
        let inspect = match self.inspect(name).await {
            Err(e) if e.status_code() == Some(404) => {
                return Err(Error::NotFound {
                    operation,
                    target: instance.to_string(),
                });
            }
            other => other?,
        };
        let l = inspect.config.as_ref().and_then(|c| c.labels.as_ref());
        let belongs = l.is_some_and(|l| {
            l.get(labels::PROJECT).map(String::as_str) == Some(project)
                && l.get(labels::SERVICE).map(String::as_str) == Some(service)
        });
        if !belongs || labels::is_oneoff(l) {
            return Err(Error::NotFound {
                operation,
                target: instance.to_string(),
            });
        }
        Ok(inspect)
    }

    /// Services of a project (one-offs excluded), sorted.
    ///
    /// # Errors
    /// [`Error::InvalidName`]; engine errors.
    pub async fn services(&self, project: &str) -> Result<Vec<String>> {
        labels::validate_project(project)?;
        let services: BTreeSet<String> = self
            .list(project, None)
            .await?
            .into_iter()
            .filter_map(|c| c.labels?.get(labels::SERVICE).cloned())
            .collect();
        Ok(services.into_iter().collect())
    }
}

fn refuse_dry_run(dry_run: bool, operation: &'static str, workload: &impl ToString) -> Result<()> {
    if dry_run {
        Err(Error::Unsupported {
            operation,
            target: workload.to_string(),
            reason: "the Docker engine has no server-side dry run; plan the step through RunContext in Mode::DryRun".to_owned(),
        })
    } else {
        Ok(())
    }
}

#[async_trait]
impl Platform for ComposePlatform {
    fn backend(&self) -> &'static str {
        crate::error::BACKEND
    }

    fn capabilities(&self) -> PlatformCapabilities {
        let mut caps = PlatformCapabilities::all();
        caps.dry_run = false;
        // Per service: when a previous image is known (see `image_revisions`); refused with
        // `Unsupported` otherwise.
        caps.rollback = true;
        // The compose file and `.env` define the service: the next `docker compose up`
        // recreates it from them (recreate drops the config hash so it does).
        caps.durable_config = false;
        // The engine keeps no Secrets of its own.
        caps.secret_versions = false;
        // Compose has no horizontal autoscaler.
        caps.autoscaling = false;
        caps
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %namespace))]
    async fn list_workloads(&self, namespace: &Namespace) -> Result<Vec<WorkloadRef>, OpsError> {
        let project = namespace.as_str();
        let services = self.services(project).await?;
        services
            .iter()
            .map(|s| WorkloadRef::compose_service(project, s))
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn workload(&self, workload: &WorkloadRef) -> Result<WorkloadStatus, OpsError> {
        Ok(self.workload_status(workload).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn rollout_restart(
        &self,
        workload: &WorkloadRef,
        opts: RestartOptions,
    ) -> Result<(), OpsError> {
        refuse_dry_run(opts.dry_run, "restart", workload)?;
        self.restart_service(workload, opts.stop_timeout).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, OpsError> {
        let status = self.workload_status(workload).await?;
        Ok(crate::status::rollout_status(&status))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn scale(
        &self,
        workload: &WorkloadRef,
        replicas: u32,
        opts: ScaleOptions,
    ) -> Result<ScaleChange, OpsError> {
        refuse_dry_run(opts.dry_run, "scale", workload)?;
        Ok(Box::pin(self.scale_service(workload, replicas, opts.expect_current)).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn stop(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> {
        refuse_dry_run(opts.dry_run, "stop", workload)?;
        self.stop_service(workload, opts.timeout).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn start(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> {
        refuse_dry_run(opts.dry_run, "start", workload)?;
        self.start_service(workload).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn revisions(&self, workload: &WorkloadRef) -> Result<Vec<Revision>, OpsError> {
        Ok(self.image_revisions(workload).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn rollback(
        &self,
        workload: &WorkloadRef,
        opts: RollbackOptions,
    ) -> Result<RollbackChange, OpsError> {
        refuse_dry_run(opts.dry_run, "rollback", workload)?;
        Ok(Box::pin(self.rollback_image(workload, opts.revision)).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %instance))]
    async fn delete_instance(
        &self,
        instance: &InstanceRef,
        opts: DeleteOptions,
    ) -> Result<(), OpsError> {
        refuse_dry_run(opts.dry_run, "delete_instance", instance)?;
        self.remove_instance(instance, opts.grace_period).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<Vec<LogLine>, OpsError> {
        Ok(self.service_logs(workload, &opts).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn follow_logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, OpsError>>, OpsError> {
        Ok(self.follow_service_logs(workload, &opts).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn events(
        &self,
        workload: &WorkloadRef,
        opts: EventOptions,
    ) -> Result<Vec<PlatformEvent>, OpsError> {
        Ok(self.service_events(workload, &opts).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %instance))]
    async fn exec(
        &self,
        instance: &InstanceRef,
        command: &ExecCommand,
    ) -> Result<ExecOutput, OpsError> {
        Ok(self.exec_in(instance, command).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %instance))]
    async fn copy_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> {
        Ok(self.copy_file_from(instance, path).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %instance))]
    async fn copy_from_into(
        &self,
        instance: &InstanceRef,
        path: &str,
        sink: &mut ops_core::platform::CopySink,
    ) -> Result<u64, OpsError> {
        Ok(self.copy_file_into(instance, path, sink).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %instance))]
    async fn archive_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> {
        let (parent, base) = ops_core::archive::split_dir(path)?;
        let full = format!("{}/{base}", parent.trim_end_matches('/'));
        let archive = self.copy_dir_from(instance, &full).await?;
        ops_core::archive::check_archive(&archive, base)?;
        Ok(archive)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %instance))]
    async fn copy_to(
        &self,
        instance: &InstanceRef,
        path: &str,
        contents: Vec<u8>,
    ) -> Result<(), OpsError> {
        Ok(self.copy_file_to(instance, path, contents).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn resource_usage(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>, OpsError> {
        Ok(self.service_usage(workload).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn update_config(
        &self,
        workload: &WorkloadRef,
        update: ConfigUpdate,
    ) -> Result<ConfigChange, OpsError> {
        refuse_dry_run(update.dry_run, "update_config", workload)?;
        Ok(Box::pin(self.update_env(workload, &update)).await?)
    }
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn resources(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Vec<ops_core::platform::ContainerResources>, OpsError> {
        Ok(self.service_resources(workload).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn set_resources(
        &self,
        workload: &WorkloadRef,
        update: ops_core::platform::ResourceUpdate,
    ) -> Result<ops_core::platform::ResourceChange, OpsError> {
        refuse_dry_run(update.dry_run, "set_resources", workload)?;
        Ok(Box::pin(self.set_service_resources(workload, &update)).await?)
    }
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %workload))]
    async fn set_image(
        &self,
        workload: &WorkloadRef,
        update: ops_core::platform::ImageUpdate,
    ) -> Result<ops_core::platform::ImageChange, OpsError> {
        Box::pin(self.release_image(workload, &update)).await
    }
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %scope))]
    async fn lockdown(
        &self,
        scope: &LockdownScope,
        opts: LockdownOptions,
    ) -> Result<Lockdown, OpsError> {
        Ok(self.isolate(scope, opts).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %namespace))]
    async fn lockdowns(&self, namespace: &Namespace) -> Result<Vec<Lockdown>, OpsError> {
        Ok(self.active_lockdowns(namespace).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %namespace))]
    async fn lift_lockdown(
        &self,
        namespace: &Namespace,
        id: &LockdownId,
    ) -> Result<Lockdown, OpsError> {
        Ok(self.lift(namespace, id).await?)
    }
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %namespace))]
    async fn export(
        &self,
        namespace: &Namespace,
        _: ExportOptions,
    ) -> Result<NamespaceExport, OpsError> {
        // Compose has no namespace events to export; the engine's events are per container.
        Ok(self.export_project(namespace).await?)
    }
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "compose", target = %namespace))]
    async fn inspect(
        &self,
        namespace: &Namespace,
        opts: ops_core::platform::InspectOptions,
    ) -> Result<ops_core::platform::Inspection, OpsError> {
        Ok(Box::pin(self.inspect_project(namespace, &opts)).await?)
    }
}
