//! [`FakePlatform`]: an in-memory platform with rollouts, revisions, logs and events.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt as _};

use super::Faults;
use crate::error::{ErrorKind, OpsError};
use crate::platform::{
    Autoscaler, AutoscalerChange, AutoscalerSpec, ConfigChange, ConfigUpdate, ContainerResources,
    DeleteOptions, EventOptions, ExecCommand, ExecOutput, InstanceStatus, LogLine, LogOptions,
    MemoryQuantity, Platform, PlatformCapabilities, PlatformEvent, ResourceChange, ResourceUpdate,
    ResourceUsage, ResourceValues, RestartOptions, Revision, RollbackChange, RollbackOptions,
    RolloutStatus, ScaleChange, ScaleOptions, StopOptions, Termination, WorkloadStatus,
};
use crate::refs::{InstanceRef, Namespace, ResourceName, WorkloadKind, WorkloadRef};

/// What a restart or rollback does to a broken workload in the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Healing {
    /// It comes back healthy once the rollout completes.
    #[default]
    Heals,
    /// It stays broken: the rollout never completes.
    StaysBroken,
}

#[derive(Debug, Clone)]
struct FakeWorkload {
    status: WorkloadStatus,
    revisions: Vec<Revision>,
    logs: Vec<LogLine>,
    events: Vec<PlatformEvent>,
    config: BTreeMap<String, String>,
    /// Unready reads left before the current rollout completes (`None`: no rollout running).
    rollout_reads_left: Option<u32>,
    /// Replicas to come back to after `stop`.
    stopped_replicas: Option<u32>,
    /// CPU per instance that `resource_usage` reports, in cores.
    cpu_cores: f64,
    /// CPU limit per instance that `resource_usage` reports, in cores (`None`: no limit).
    cpu_limit: Option<f64>,
    // §resources (issue 14)
    /// Requests and limits per container (default: one container named after the workload
    /// with a 256Mi memory limit, the limit `resource_usage` always reported).
    resources: Vec<ContainerResources>,
    /// Memory per instance that `resource_usage` reports, bytes (default 64 MiB).
    memory_used: u64,
    // §autoscaling (issue 14)
    /// The autoscaler that targets the workload.
    autoscaler: Option<Autoscaler>,
}

/// The memory limit of the default container of a seeded workload.
const DEFAULT_MEMORY_LIMIT: u64 = 256 << 20;

#[derive(Debug, Default)]
struct State {
    workloads: BTreeMap<WorkloadRef, FakeWorkload>,
    ready_after: u32,
    restart: Healing,
    rollback: Healing,
    capabilities: Capabilities,
}

/// The fake's capabilities: everything unless a test says otherwise.
#[derive(Debug)]
struct Capabilities(PlatformCapabilities);

impl Default for Capabilities {
    fn default() -> Self {
        Self(PlatformCapabilities::all())
    }
}

impl std::ops::Deref for Capabilities {
    type Target = PlatformCapabilities;
    fn deref(&self) -> &PlatformCapabilities {
        &self.0
    }
}

/// An in-memory [`Platform`].
///
/// Restarts and rollbacks start a rollout that reports progress for
/// [`FakePlatform::ready_after`] reads, then completes; whether the workload is then healthy
/// follows [`FakePlatform::restart_heals`] / [`FakePlatform::rollback_heals`].
#[derive(Debug, Default)]
pub struct FakePlatform {
    state: Mutex<State>,
    faults: Faults,
}

super::faults::fake_common!(FakePlatform, "Platform");

impl FakePlatform {
    /// Seed a workload with its status (revision 1 unless the status says otherwise).
    #[must_use]
    pub fn with_workload(self, status: WorkloadStatus) -> Self {
        self.with_state(|s| {
            let revision = status.revision.unwrap_or(1);
            let images = status.images.clone();
            let workload_name = status.workload.name().to_string();
            s.workloads.insert(
                status.workload.clone(),
                FakeWorkload {
                    status,
                    revisions: vec![Revision::new(revision, images, true)],
                    logs: Vec::new(),
                    events: Vec::new(),
                    config: BTreeMap::new(),
                    rollout_reads_left: None,
                    stopped_replicas: None,
                    cpu_cores: 0.1,
                    cpu_limit: None,
                    resources: vec![
                        ContainerResources::new(workload_name.clone()).with_limits(
                            ResourceValues::default()
                                .with_memory(MemoryQuantity::from_bytes(DEFAULT_MEMORY_LIMIT)),
                        ),
                    ],
                    memory_used: 64 << 20,
                    autoscaler: None,
                },
            );
        })
    }

    /// Seed older revisions (newest first) so rollbacks are possible.
    #[must_use]
    pub fn with_previous_revision(
        self,
        workload: &WorkloadRef,
        revision: u64,
        images: Vec<String>,
    ) -> Self {
        self.seed(workload, |w| {
            w.revisions.push(Revision::new(revision, images, false));
        })
    }

    /// Set the CPU per instance that `resource_usage` reports (default 0.1 cores).
    #[must_use]
    pub fn with_cpu(self, workload: &WorkloadRef, cores: f64) -> Self {
        self.seed(workload, |w| {
            w.cpu_cores = cores;
        })
    }

    /// Set the CPU limit per instance that `resource_usage` reports, in cores.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use ops_core::platform::{Platform, WorkloadStatus};
    /// use ops_core::testing::FakePlatform;
    /// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
    /// let p = FakePlatform::default()
    ///     .with_workload(WorkloadStatus::healthy(api.clone(), 1))
    ///     .with_cpu(&api, 0.4)
    ///     .with_cpu_limit(&api, 0.5);
    /// assert_eq!(p.resource_usage(&api).await?[0].cpu_ratio(), Some(0.8));
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_cpu_limit(self, workload: &WorkloadRef, cores: f64) -> Self {
        self.seed(workload, |w| {
            w.cpu_limit = Some(cores);
        })
    }

    /// Set when the current revision was created (for "recent deploy" decisions).
    #[must_use]
    pub fn deployed_at(self, workload: &WorkloadRef, at: jiff::Timestamp) -> Self {
        self.seed(workload, |w| {
            for r in w.revisions.iter_mut().filter(|r| r.current) {
                r.created_at = Some(at);
            }
        })
    }

    /// Seed log lines.
    #[must_use]
    pub fn with_logs(self, workload: &WorkloadRef, lines: Vec<LogLine>) -> Self {
        self.seed(workload, |w| {
            w.logs.extend(lines);
        })
    }

    /// Seed events.
    #[must_use]
    pub fn with_events(self, workload: &WorkloadRef, events: Vec<PlatformEvent>) -> Self {
        self.seed(workload, |w| {
            w.events.extend(events);
        })
    }

    /// Rollouts report `n` unfinished reads before completing (default 0).
    #[must_use]
    pub fn ready_after(self, n: u32) -> Self {
        self.with_state(|s| s.ready_after = n)
    }

    /// Whether a restart heals a broken workload (default: heals).
    #[must_use]
    pub fn restart_heals(self, healing: Healing) -> Self {
        self.with_state(|s| s.restart = healing)
    }

    /// Report these capabilities (default: [`PlatformCapabilities::all`]), e.g. a platform
    /// whose configuration changes do not last (`durable_config: false`, like Compose).
    #[must_use]
    pub fn with_capabilities(self, capabilities: PlatformCapabilities) -> Self {
        self.with_state(|s| s.capabilities = Capabilities(capabilities))
    }

    /// Whether a rollback heals a broken workload (default: heals).
    #[must_use]
    pub fn rollback_heals(self, healing: Healing) -> Self {
        self.with_state(|s| s.rollback = healing)
    }

    // §resources (issue 14)
    /// Seed the containers' requests and limits (replacing the default container).
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use ops_core::platform::{ContainerResources, Platform, ResourceValues, WorkloadStatus};
    /// use ops_core::testing::FakePlatform;
    /// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
    /// let app = ContainerResources::new("app").with_limits(ResourceValues::default().with_memory("512Mi".parse()?));
    /// let p = FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1)).with_resources(&api, vec![app.clone()]);
    /// assert_eq!(p.resources(&api).await?, vec![app]);
    /// assert_eq!(p.resource_usage(&api).await?[0].memory_limit_bytes, Some(512 << 20));
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_resources(
        self,
        workload: &WorkloadRef,
        resources: Vec<ContainerResources>,
    ) -> Self {
        self.seed(workload, |w| {
            w.resources = resources;
        })
    }

    /// Set the memory per instance that `resource_usage` reports (default 64 MiB).
    #[must_use]
    pub fn with_memory_used(self, workload: &WorkloadRef, bytes: u64) -> Self {
        self.seed(workload, |w| {
            w.memory_used = bytes;
        })
    }

    /// The OOM scenario: every instance was OOM-killed (one more restart each) and uses its
    /// whole memory limit (the containers' limits summed; 0 when a container has none).
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use ops_core::platform::{Platform, WorkloadStatus};
    /// use ops_core::testing::FakePlatform;
    /// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
    /// let p = FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 2)).oom_killed_at_limit(&api);
    /// assert_eq!(p.workload(&api).await?.oom_killed_instances().count(), 2);
    /// assert_eq!(p.resource_usage(&api).await?[0].memory_ratio(), Some(1.0));
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn oom_killed_at_limit(self, workload: &WorkloadRef) -> Self {
        self.seed(workload, |w| {
            w.memory_used = memory_limit(&w.resources).unwrap_or(0);
            for i in &mut w.status.instances {
                *i = i
                    .clone()
                    .with_restarts(i.restarts + 1)
                    .terminated(Termination::oom_killed());
            }
        })
    }

    // §autoscaling (issue 14)
    /// Seed the autoscaler that targets `workload`.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use ops_core::platform::{Autoscaler, Platform, WorkloadStatus};
    /// use ops_core::testing::FakePlatform;
    /// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
    /// let hpa = Autoscaler::new("api".parse()?, 2, 10).with_cpu_target(70);
    /// let p = FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 2)).with_autoscaler(&api, hpa.clone());
    /// assert_eq!(p.autoscaler(&api).await?, Some(hpa));
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_autoscaler(self, workload: &WorkloadRef, autoscaler: Autoscaler) -> Self {
        self.seed(workload, |w| {
            w.autoscaler = Some(autoscaler);
        })
    }

    /// The current status of a seeded workload.
    pub fn status(&self, workload: &WorkloadRef) -> Option<WorkloadStatus> {
        self.lock()
            .workloads
            .get(workload)
            .map(|w| w.status.clone())
    }

    /// Replace the status of a seeded workload (e.g. to break it mid-test).
    pub fn set_status(&self, status: WorkloadStatus) {
        if let Some(w) = self.lock().workloads.get_mut(&status.workload) {
            w.status = status;
        }
    }

    /// Change a seeded workload (no-op for an unknown one).
    fn seed(self, workload: &WorkloadRef, f: impl FnOnce(&mut FakeWorkload)) -> Self {
        self.with_state(|s| {
            if let Some(w) = s.workloads.get_mut(workload) {
                f(w);
            }
        })
    }

    /// Record a call of `op` and read the workload, or `NotFound`.
    fn read<R>(
        &self,
        op: &'static str,
        workload: &WorkloadRef,
        f: impl FnOnce(&FakeWorkload) -> R,
    ) -> Result<R, OpsError> {
        self.call(op, workload)?;
        self.lock()
            .workloads
            .get(workload)
            .map(f)
            .ok_or_else(|| Self::not_found(op, workload))
    }

    fn call(&self, op: &'static str, target: &dyn std::fmt::Display) -> Result<(), OpsError> {
        self.faults.call("fake", op, &target.to_string())
    }

    fn not_found(op: &'static str, target: &dyn std::fmt::Display) -> OpsError {
        OpsError::new(ErrorKind::NotFound, "fake", op, target.to_string())
    }

    fn start_rollout(
        state: &mut State,
        workload: &WorkloadRef,
        healing: Healing,
        revision: Option<u64>,
    ) -> Result<(), OpsError> {
        let reads = state.ready_after;
        let w = state
            .workloads
            .get_mut(workload)
            .ok_or_else(|| Self::not_found("rollout", workload))?;
        if w.status.paused {
            return Err(OpsError::new(
                ErrorKind::Conflict,
                "fake",
                "rollout",
                workload.to_string(),
            )
            .with_detail("rollouts are paused"));
        }
        w.rollout_reads_left = Some(reads);
        if healing == Healing::Heals {
            let desired = w.status.desired;
            let mut healed = WorkloadStatus::healthy(workload.clone(), desired);
            healed.revision = revision.or(w.status.revision);
            healed.images.clone_from(&w.status.images);
            w.status = healed;
        } else {
            w.status.ready = 0;
            w.status.available = 0;
        }
        Ok(())
    }
}

#[async_trait]
impl Platform for FakePlatform {
    fn backend(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> PlatformCapabilities {
        self.lock().capabilities.0
    }

    async fn list_workloads(&self, namespace: &Namespace) -> Result<Vec<WorkloadRef>, OpsError> {
        self.call("list_workloads", namespace)?;
        Ok(self
            .lock()
            .workloads
            .keys()
            .filter(|w| w.namespace() == namespace)
            .cloned()
            .collect())
    }

    async fn workload(&self, workload: &WorkloadRef) -> Result<WorkloadStatus, OpsError> {
        self.read("workload", workload, |w| w.status.clone())
    }

    async fn rollout_restart(
        &self,
        workload: &WorkloadRef,
        opts: RestartOptions,
    ) -> Result<(), OpsError> {
        self.call("rollout_restart", workload)?;
        if opts.dry_run {
            return Ok(());
        }
        let mut s = self.lock();
        let healing = s.restart;
        Self::start_rollout(&mut s, workload, healing, None)?;
        drop(s);
        self.faults.mutate(format!("rollout_restart {workload}"));
        Ok(())
    }

    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, OpsError> {
        self.call("rollout_status", workload)?;
        let mut s = self.lock();
        let w = s
            .workloads
            .get_mut(workload)
            .ok_or_else(|| Self::not_found("rollout_status", workload))?;
        let desired = w.status.desired;
        let name = workload.name();
        match w.rollout_reads_left {
            Some(0) | None if w.status.is_healthy() => {
                w.rollout_reads_left = None;
                let mut done = RolloutStatus::complete(desired);
                done.message = format!("{} \"{name}\" successfully rolled out", workload.kind());
                done.revision = w.status.revision;
                Ok(done)
            }
            Some(n) if n > 0 => {
                w.rollout_reads_left = Some(n - 1);
                Ok(RolloutStatus::progressing(
                    0,
                    desired,
                    format!(
                        "Waiting for {} \"{name}\" rollout to finish: 0 of {desired} updated replicas are available...",
                        workload.kind()
                    ),
                ))
            }
            _ => {
                let ready = w.status.ready;
                Ok(RolloutStatus::progressing(
                    ready,
                    desired,
                    format!(
                        "Waiting for {} \"{name}\" rollout to finish: {ready} of {desired} updated replicas are available...",
                        workload.kind()
                    ),
                ))
            }
        }
    }

    async fn scale(
        &self,
        workload: &WorkloadRef,
        replicas: u32,
        opts: ScaleOptions,
    ) -> Result<ScaleChange, OpsError> {
        self.call("scale", workload)?;
        let mut s = self.lock();
        let w = s
            .workloads
            .get_mut(workload)
            .ok_or_else(|| Self::not_found("scale", workload))?;
        let from = w.status.desired;
        if let Some(hpa) = &w.autoscaler {
            return Err(OpsError::new(
                ErrorKind::Conflict,
                "fake",
                "scale",
                workload.to_string(),
            )
            .with_detail(format!(
                "autoscaler {hpa} scales this workload: change its minimum instead of fighting it"
            )));
        }
        if let Some(expected) = opts.expect_current
            && expected != from
        {
            return Err(OpsError::new(
                crate::ErrorKind::Conflict,
                "fake",
                "scale",
                workload.to_string(),
            )
            .with_detail(format!("Expected replicas to be {expected}, was {from}")));
        }
        if !opts.dry_run {
            let mut next = WorkloadStatus::healthy(workload.clone(), replicas);
            next.revision = w.status.revision;
            next.images.clone_from(&w.status.images);
            w.status = next;
            drop(s);
            self.faults
                .mutate(format!("scale {workload} {from}->{replicas}"));
        }
        Ok(ScaleChange::new(from, replicas))
    }

    async fn stop(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> {
        self.call("stop", workload)?;
        if opts.dry_run {
            return Ok(());
        }
        let mut s = self.lock();
        let w = s
            .workloads
            .get_mut(workload)
            .ok_or_else(|| Self::not_found("stop", workload))?;
        w.stopped_replicas = Some(w.status.desired);
        let mut stopped = WorkloadStatus::new(workload.clone(), 0);
        stopped.revision = w.status.revision;
        w.status = stopped;
        drop(s);
        self.faults.mutate(format!("stop {workload}"));
        Ok(())
    }

    async fn start(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> {
        self.call("start", workload)?;
        if opts.dry_run {
            return Ok(());
        }
        let mut s = self.lock();
        let w = s
            .workloads
            .get_mut(workload)
            .ok_or_else(|| Self::not_found("start", workload))?;
        let replicas = w.stopped_replicas.take().unwrap_or(w.status.desired.max(1));
        let revision = w.status.revision;
        w.status = WorkloadStatus::healthy(workload.clone(), replicas);
        w.status.revision = revision;
        drop(s);
        self.faults.mutate(format!("start {workload}"));
        Ok(())
    }

    async fn revisions(&self, workload: &WorkloadRef) -> Result<Vec<Revision>, OpsError> {
        let mut revisions = self.read("revisions", workload, |w| w.revisions.clone())?;
        revisions.sort_by_key(|r| std::cmp::Reverse(r.number));
        Ok(revisions)
    }

    async fn rollback(
        &self,
        workload: &WorkloadRef,
        opts: RollbackOptions,
    ) -> Result<RollbackChange, OpsError> {
        self.call("rollback", workload)?;
        let mut s = self.lock();
        let w = s
            .workloads
            .get(workload)
            .ok_or_else(|| Self::not_found("rollback", workload))?;
        let current = w.revisions.iter().find(|r| r.current).map(|r| r.number);
        let target = match opts.revision {
            Some(n) => w.revisions.iter().find(|r| r.number == n && !r.current),
            None => w
                .revisions
                .iter()
                .filter(|r| !r.current)
                .max_by_key(|r| r.number),
        }
        .cloned()
        .ok_or_else(|| {
            OpsError::new(
                ErrorKind::NotFound,
                "fake",
                "rollback",
                workload.to_string(),
            )
            .with_detail("no previous revision")
        })?;
        if opts.dry_run {
            return Ok(RollbackChange::new(current, target.number));
        }
        let healing = s.rollback;
        // Like Kubernetes: the old template becomes a new, current revision.
        let next_number = s.workloads.get(workload).map_or(1, |w| {
            w.revisions.iter().map(|r| r.number).max().unwrap_or(0) + 1
        });
        Self::start_rollout(&mut s, workload, healing, Some(next_number))?;
        if let Some(w) = s.workloads.get_mut(workload) {
            w.revisions.retain(|r| r.number != target.number);
            for r in &mut w.revisions {
                r.current = false;
            }
            w.revisions
                .push(Revision::new(next_number, target.images.clone(), true));
            w.status.images.clone_from(&target.images);
        }
        drop(s);
        self.faults
            .mutate(format!("rollback {workload} to {}", target.number));
        Ok(RollbackChange::new(current, target.number))
    }

    async fn delete_instance(
        &self,
        instance: &InstanceRef,
        opts: DeleteOptions,
    ) -> Result<(), OpsError> {
        self.call("delete_instance", instance)?;
        let s = self.lock();
        let w = s
            .workloads
            .get(instance.workload())
            .ok_or_else(|| Self::not_found("delete_instance", instance))?;
        if !w
            .status
            .instances
            .iter()
            .any(|i| &i.name == instance.name())
        {
            return Err(Self::not_found("delete_instance", instance));
        }
        drop(s);
        if !opts.dry_run {
            // The controller replaces it at once with a fresh instance of the same name.
            let mut s = self.lock();
            if let Some(w) = s.workloads.get_mut(instance.workload())
                && let Some(i) = w
                    .status
                    .instances
                    .iter_mut()
                    .find(|i| &i.name == instance.name())
            {
                *i = InstanceStatus::new(i.name.clone());
            }
            drop(s);
            self.faults.mutate(format!("delete_instance {instance}"));
        }
        Ok(())
    }

    async fn logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<Vec<LogLine>, OpsError> {
        let lines = self.read("logs", workload, |w| w.logs.clone())?;
        let mut per_instance: BTreeMap<_, Vec<LogLine>> = BTreeMap::new();
        for line in lines {
            if opts.instance.as_ref().is_some_and(|i| i != &line.instance) {
                continue;
            }
            per_instance
                .entry(line.instance.clone())
                .or_default()
                .push(line);
        }
        let tailed = per_instance
            .into_values()
            .map(|mut lines| {
                if let Some(n) = opts.tail {
                    let keep = usize::try_from(n).unwrap_or(usize::MAX);
                    let skip = lines.len().saturating_sub(keep);
                    lines.drain(..skip);
                }
                lines
            })
            .collect();
        let mut merged = crate::platform::merge_logs(tailed);
        if let Some(filter) = &opts.filter {
            merged.retain(|l| filter.is_match(&l.text));
        }
        Ok(merged)
    }

    async fn follow_logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, OpsError>>, OpsError> {
        let lines = self.logs(workload, opts).await?;
        Ok(stream::iter(lines.into_iter().map(Ok)).boxed())
    }

    async fn events(
        &self,
        workload: &WorkloadRef,
        opts: EventOptions,
    ) -> Result<Vec<PlatformEvent>, OpsError> {
        let mut events: Vec<PlatformEvent> = self.read("events", workload, |w| {
            w.events
                .iter()
                .filter(|e| !opts.warnings_only || e.warning)
                .cloned()
                .collect()
        })?;
        if let Some(limit) = opts.limit {
            let skip = events.len().saturating_sub(limit);
            events.drain(..skip);
        }
        Ok(events)
    }

    async fn exec(
        &self,
        instance: &InstanceRef,
        command: &ExecCommand,
    ) -> Result<ExecOutput, OpsError> {
        self.call("exec", instance)?;
        self.faults
            .mutate(format!("exec {instance} {}", command.argv().join(" ")));
        Ok(ExecOutput::new(Some(0), Vec::new(), Vec::new()))
    }

    async fn copy_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> {
        self.call("copy_from", instance)?;
        Err(OpsError::new(
            ErrorKind::NotFound,
            "fake",
            "copy_from",
            format!("{instance}:{path}"),
        ))
    }

    async fn copy_to(
        &self,
        instance: &InstanceRef,
        path: &str,
        contents: Vec<u8>,
    ) -> Result<(), OpsError> {
        self.call("copy_to", instance)?;
        self.faults.mutate(format!(
            "copy_to {instance}:{path} ({} bytes)",
            contents.len()
        ));
        Ok(())
    }

    async fn resource_usage(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>, OpsError> {
        let (status, cpu, limit, used, memory_limit) =
            self.read("resource_usage", workload, |w| {
                (
                    w.status.clone(),
                    w.cpu_cores,
                    w.cpu_limit,
                    w.memory_used,
                    memory_limit(&w.resources),
                )
            })?;
        Ok(status
            .instances
            .into_iter()
            .map(|i| {
                let usage = ResourceUsage::new(i.name, cpu, used, memory_limit);
                match limit {
                    Some(l) => usage.with_cpu_limit(l),
                    None => usage,
                }
            })
            .collect())
    }

    async fn update_config(
        &self,
        workload: &WorkloadRef,
        update: ConfigUpdate,
    ) -> Result<ConfigChange, OpsError> {
        use secrecy::ExposeSecret as _;
        self.call("update_config", workload)?;
        let keys_set: Vec<String> = update.set.keys().cloned().collect();
        let keys_removed: Vec<String> = update.remove.iter().cloned().collect();
        if !update.dry_run {
            let mut s = self.lock();
            let w = s
                .workloads
                .get_mut(workload)
                .ok_or_else(|| Self::not_found("update_config", workload))?;
            for (k, v) in &update.set {
                w.config.insert(k.clone(), v.expose_secret().to_owned());
            }
            for k in &update.remove {
                w.config.remove(k);
            }
            drop(s);
            self.faults.mutate(format!(
                "update_config {workload} set={keys_set:?} removed={keys_removed:?}"
            ));
        }
        let rolled_out = update.rollout && !update.dry_run;
        if rolled_out {
            let mut s = self.lock();
            let healing = s.restart;
            Self::start_rollout(&mut s, workload, healing, None)?;
        }
        let durable = self.lock().capabilities.durable_config;
        Ok(ConfigChange {
            keys_set,
            keys_removed,
            rolled_out,
            persist_in: (!durable).then(|| format!("the definition of {workload}")),
        })
    }
    // §resources (issue 14): methods of this section go here, kept together.
    async fn resources(&self, workload: &WorkloadRef) -> Result<Vec<ContainerResources>, OpsError> {
        self.read("resources", workload, |w| w.resources.clone())
    }

    async fn set_resources(
        &self,
        workload: &WorkloadRef,
        update: ResourceUpdate,
    ) -> Result<ResourceChange, OpsError> {
        self.call("set_resources", workload)?;
        let mut s = self.lock();
        let durable = s.capabilities.durable_config;
        let healing = s.restart;
        let w = s
            .workloads
            .get_mut(workload)
            .ok_or_else(|| Self::not_found("set_resources", workload))?;
        let after_all = update.apply_to(&workload.to_string(), &w.resources)?;
        let selected = |list: &[ContainerResources]| -> Vec<ContainerResources> {
            list.iter()
                .filter(|c| update.containers.selects(&c.container))
                .cloned()
                .collect()
        };
        let mut change = ResourceChange::new(selected(&w.resources), selected(&after_all));
        change.persist_in = (!durable).then(|| format!("the definition of {workload}"));
        if update.dry_run {
            return Ok(change);
        }
        w.resources = after_all;
        // Like Kubernetes, a template change rolls out; like Compose, an in-place update
        // does not restart anything.
        change.rolled_out = durable;
        if durable {
            Self::start_rollout(&mut s, workload, healing, None)?;
        }
        drop(s);
        self.faults.mutate(format!(
            "set_resources {workload} {}",
            change.lines().join("; ")
        ));
        Ok(change)
    }
    // §autoscaling (issue 14): methods of this section go here, kept together.
    async fn autoscaler(&self, workload: &WorkloadRef) -> Result<Option<Autoscaler>, OpsError> {
        if !self.lock().capabilities.autoscaling {
            return Err(OpsError::unsupported(
                "fake",
                "autoscaler",
                workload.to_string(),
                "this platform has no horizontal autoscaling",
            ));
        }
        self.read("autoscaler", workload, |w| w.autoscaler.clone())
    }

    async fn set_autoscaler(
        &self,
        workload: &WorkloadRef,
        spec: AutoscalerSpec,
    ) -> Result<AutoscalerChange, OpsError> {
        self.call("set_autoscaler", workload)?;
        if !self.lock().capabilities.autoscaling || workload.kind() == WorkloadKind::DaemonSet {
            return Err(OpsError::unsupported(
                "fake",
                "set_autoscaler",
                workload.to_string(),
                "no horizontal autoscaling for this workload",
            ));
        }
        let mut s = self.lock();
        let w = s
            .workloads
            .get_mut(workload)
            .ok_or_else(|| Self::not_found("set_autoscaler", workload))?;
        let before = w.autoscaler.clone();
        if let Some(expected) = spec.expect_min
            && before.as_ref().map(|h| h.min_replicas) != Some(expected)
        {
            return Err(OpsError::new(
                ErrorKind::Conflict,
                "fake",
                "set_autoscaler",
                workload.to_string(),
            )
            .with_detail(format!(
                "expected an autoscaler with minimum {expected}, found {}",
                before
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), ToString::to_string)
            )));
        }
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| ResourceName::trusted(workload.name().to_string()));
        let after = spec.applied(before.as_ref(), name);
        let change = AutoscalerChange::new(before, after.clone());
        if spec.dry_run {
            return Ok(change);
        }
        w.autoscaler = Some(after.clone());
        // The autoscaler keeps the replicas within its bounds at once.
        let desired = w
            .status
            .desired
            .clamp(after.min_replicas, after.max_replicas);
        if desired != w.status.desired {
            let mut next = WorkloadStatus::healthy(workload.clone(), desired);
            next.revision = w.status.revision;
            next.images.clone_from(&w.status.images);
            w.status = next;
        }
        drop(s);
        self.faults
            .mutate(format!("set_autoscaler {workload} {change}"));
        Ok(change)
    }
    // §releases (issue 14): methods of this section go here, kept together.
    // §lockdown (issue 14): methods of this section go here, kept together.
    // §evidence (issue 14): methods of this section go here, kept together.
    // §inspection (issue 14): methods of this section go here, kept together.
    // §secrets (issue 14): methods of this section go here, kept together.
}

/// The memory limit of an instance: the containers' limits summed, `None` when one has none.
fn memory_limit(resources: &[ContainerResources]) -> Option<u64> {
    resources
        .iter()
        .map(|c| c.limits.memory.map(MemoryQuantity::bytes))
        .sum()
}
