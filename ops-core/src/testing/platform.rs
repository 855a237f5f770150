//! [`FakePlatform`]: an in-memory platform with rollouts, revisions, logs and events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt as _};

use super::Faults;
use crate::error::{ErrorKind, OpsError};
use crate::platform::{
    Autoscaler, AutoscalerChange, AutoscalerSpec, ConfigChange, ConfigUpdate, ContainerResources,
    DeleteOptions, EventOptions, ExecCommand, ExecOutput, ExportOptions, ExportedObject,
    ImageChange, ImageUpdate, InstanceStatus, Lockdown, LockdownId, LockdownOptions, LockdownScope,
    LogLine, LogOptions, MemoryQuantity, NamespaceExport, Platform, PlatformCapabilities,
    PlatformEvent, ResourceChange, ResourceUpdate, ResourceUsage, ResourceValues, RestartOptions,
    Revision, RollbackChange, RollbackOptions, RolloutStatus, ScaleChange, ScaleOptions,
    StopOptions, Termination, WaitingReason, WorkloadStatus,
};
use crate::platform::{InspectOptions, Inspection, Section};
use crate::platform::{SecretCopy, SecretCreated, SecretRepoint};
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

/// How an image fails once rolled out in the fake ([`FakePlatform::image_fails`]).
///
/// # Examples
/// ```
/// use ops_core::testing::{FakePlatform, ImageFault};
/// let p = FakePlatform::default().image_fails("shop/api:bad", ImageFault::CannotBePulled);
/// assert!(p.mutations().is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageFault {
    /// Its containers start and crash: `CrashLoopBackOff`, last exit code 1.
    CrashLoops,
    /// It cannot be pulled: `ErrImagePull` / `ImagePullBackOff`.
    CannotBePulled,
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
    /// Container names, in the order of `status.images` (empty: one, named as the workload).
    containers: Vec<String>,
    /// Why the current rollout will fail once its progress reads are used up.
    rollout_failure: Option<String>,
    /// Requests and limits per container (default: one container named after the workload
    /// with a 256Mi memory limit, the limit `resource_usage` always reported).
    resources: Vec<ContainerResources>,
    /// Memory per instance that `resource_usage` reports, bytes (default 64 MiB).
    memory_used: u64,
    /// The autoscaler that targets the workload.
    autoscaler: Option<Autoscaler>,
}

/// The memory limit of the default container of a seeded workload.
const DEFAULT_MEMORY_LIMIT: u64 = 256 << 20;

#[derive(Debug, Default)]
struct State {
    workloads: BTreeMap<WorkloadRef, FakeWorkload>,
    /// Files in instances, by instance and absolute path ([`FakePlatform::with_file`],
    /// `copy_to`).
    files: BTreeMap<(InstanceRef, String), Vec<u8>>,
    ready_after: u32,
    restart: Healing,
    rollback: Healing,
    capabilities: Capabilities,
    /// Active lockdowns, as a platform would record them.
    lockdowns: Vec<Lockdown>,
    /// Images that fail once rolled out.
    bad_images: BTreeMap<String, ImageFault>,
    // What `inspect` reports, by namespace.
    inspections: BTreeMap<Namespace, Inspection>,
    // Secrets by namespace and name, and which workloads use which.
    secrets: BTreeMap<(Namespace, ResourceName), BTreeMap<String, String>>,
    secret_refs: BTreeMap<WorkloadRef, BTreeSet<ResourceName>>,
    /// What `exec` answers, by instance and argv ([`FakePlatform::with_exec`]); anything
    /// else exits 0 with no output.
    exec_outputs: BTreeMap<(InstanceRef, Vec<String>), ExecOutput>,
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
    /// Put a file at `path` in `instance` (what `copy_from` reads and `copy_to` writes).
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ops_core::Platform as _;
    /// let pod: ops_core::InstanceRef = "prod/statefulset/redis/redis-0".parse()?;
    /// let fake = ops_core::testing::FakePlatform::default().with_file(&pod, "/data/dump.rdb", b"REDIS0011");
    /// assert_eq!(fake.copy_from(&pod, "/data/dump.rdb").await?, b"REDIS0011");
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_file(self, instance: &InstanceRef, path: &str, contents: &[u8]) -> Self {
        self.with_state(|s| {
            s.files
                .insert((instance.clone(), path.to_owned()), contents.to_vec());
        })
    }

    /// Script what `exec` of `argv` in `instance` answers (other commands exit 0 with no
    /// output). Each exec is still recorded in the mutation log.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ops_core::Platform as _;
    /// use ops_core::platform::{ExecCommand, ExecOutput};
    /// let pod: ops_core::InstanceRef = "prod/deployment/api/api-0".parse()?;
    /// let fake = ops_core::testing::FakePlatform::default()
    ///     .with_exec(&pod, ["date", "+%s"], ExecOutput::new(Some(0), b"1700000000\n".to_vec(), Vec::new()));
    /// let out = fake.exec(&pod, &ExecCommand::new(["date", "+%s"])?).await?;
    /// assert_eq!(out.stdout, b"1700000000\n");
    /// assert!(fake.exec(&pod, &ExecCommand::new(["true"])?).await?.stdout.is_empty());
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_exec<I, S>(self, instance: &InstanceRef, argv: I, output: ExecOutput) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        self.with_state(|s| {
            s.exec_outputs.insert((instance.clone(), argv), output);
        })
    }

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
                    containers: Vec::new(),
                    rollout_failure: None,
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

    /// Rolling `image` out makes the workload fail as `fault` says: its instances crash loop
    /// or cannot pull, warning events are recorded, and its rollout reports failure
    /// (`ProgressDeadlineExceeded`) after the [`FakePlatform::ready_after`] reads. A rollback
    /// or release to another image heals it.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ops_core::platform::{ImageUpdate, Platform, WorkloadStatus};
    /// use ops_core::testing::{FakePlatform, ImageFault};
    /// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
    /// let mut seed = WorkloadStatus::healthy(api.clone(), 2);
    /// seed.images = vec!["shop/api:1".into()];
    /// let p = FakePlatform::default().with_workload(seed).image_fails("shop/api:2", ImageFault::CrashLoops);
    /// p.set_image(&api, ImageUpdate::new("shop/api:2".parse()?)).await?;
    /// assert!(p.rollout_status(&api).await?.failed);
    /// assert_eq!(p.workload(&api).await?.crash_looping_instances().count(), 2);
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn image_fails(self, image: &str, fault: ImageFault) -> Self {
        self.with_state(|s| {
            s.bad_images.insert(image.to_owned(), fault);
        })
    }

    /// Name the workload's containers, in the order of its status's images (default: one
    /// container named as the workload).
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ops_core::platform::{ImageUpdate, Platform, WorkloadStatus};
    /// use ops_core::testing::FakePlatform;
    /// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
    /// let p = FakePlatform::default()
    ///     .with_workload(WorkloadStatus::healthy(api.clone(), 1))
    ///     .with_containers(&api, &["api", "proxy"]);
    /// // Two containers: the update must name one.
    /// assert!(p.set_image(&api, ImageUpdate::new("envoy:2".parse()?)).await.is_err());
    /// let update = ImageUpdate::new("envoy:2".parse()?).in_container("proxy")?;
    /// assert_eq!(p.set_image(&api, update).await?.container, "proxy");
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_containers(self, workload: &WorkloadRef, names: &[&str]) -> Self {
        self.seed(workload, |w| {
            w.containers = names.iter().map(|n| (*n).to_owned()).collect();
        })
    }

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

    /// Whether an active lockdown isolates `workload` (§lockdown, issue 14).
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use ops_core::platform::{LockdownOptions, LockdownScope, Platform, WorkloadStatus};
    /// use ops_core::testing::FakePlatform;
    /// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
    /// let p = FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1));
    /// let l = p.lockdown(&LockdownScope::workloads(vec![api.clone()])?, LockdownOptions::default()).await?;
    /// assert!(p.is_isolated(&api));
    /// p.lift_lockdown(api.namespace(), &l.id).await?;
    /// assert!(!p.is_isolated(&api));
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    pub fn is_isolated(&self, workload: &WorkloadRef) -> bool {
        self.lock()
            .lockdowns
            .iter()
            .any(|l| l.scope.covers(workload))
    }

    /// Replace the status of a seeded workload (e.g. to break it mid-test).
    pub fn set_status(&self, status: WorkloadStatus) {
        if let Some(w) = self.lock().workloads.get_mut(&status.workload) {
            w.status = status;
        }
    }

    /// Seed what [`Platform::inspect`] reports for `namespace` (its events section, when not
    /// seeded, is the events of the namespace's workloads, newest last).
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use ops_core::platform::{InspectOptions, Inspection, NodeStatus, Platform, Section};
    /// use ops_core::testing::FakePlatform;
    /// let mut seen = Inspection::default();
    /// seen.nodes = Section::Read(vec![NodeStatus::new("node-1")]);
    /// let ns: ops_core::Namespace = "prod".parse()?;
    /// let p = FakePlatform::default().with_inspection(&ns, seen);
    /// let got = p.inspect(&ns, InspectOptions::default()).await?;
    /// assert_eq!(got.nodes.read().map(Vec::len), Some(1));
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_inspection(self, namespace: &Namespace, inspection: Inspection) -> Self {
        self.with_state(|s| {
            s.inspections.insert(namespace.clone(), inspection);
        })
    }

    /// Seed a Secret with its keys and values.
    #[must_use]
    pub fn with_secret(
        self,
        namespace: &Namespace,
        name: &ResourceName,
        data: &[(&str, &str)],
    ) -> Self {
        self.with_state(|s| {
            s.secrets.insert(
                (namespace.clone(), name.clone()),
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            );
        })
    }

    /// Seed that `workload`'s instances use the Secret `secret`.
    #[must_use]
    pub fn with_secret_user(self, workload: &WorkloadRef, secret: &ResourceName) -> Self {
        self.with_state(|s| {
            s.secret_refs
                .entry(workload.clone())
                .or_default()
                .insert(secret.clone());
        })
    }

    /// The keys and values of a Secret, for tests to check what a rotation made.
    pub fn secret(
        &self,
        namespace: &Namespace,
        name: &ResourceName,
    ) -> Option<BTreeMap<String, String>> {
        self.lock()
            .secrets
            .get(&(namespace.clone(), name.clone()))
            .cloned()
    }

    /// The Secrets `workload` uses now.
    pub fn secrets_used_by(&self, workload: &WorkloadRef) -> BTreeSet<ResourceName> {
        self.lock()
            .secret_refs
            .get(workload)
            .cloned()
            .unwrap_or_default()
    }

    fn users_of(state: &State, namespace: &Namespace, name: &ResourceName) -> Vec<WorkloadRef> {
        state
            .secret_refs
            .iter()
            .filter(|(w, used)| w.namespace() == namespace && used.contains(name))
            .map(|(w, _)| w.clone())
            .collect()
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

    /// `Unsupported` when the capabilities this fake was given lack what `has` picks, so
    /// capabilities and behaviour agree as they must on a real backend.
    fn capable(
        &self,
        op: &'static str,
        target: &dyn std::fmt::Display,
        has: impl FnOnce(&PlatformCapabilities) -> bool,
    ) -> Result<(), OpsError> {
        if has(&self.lock().capabilities.0) {
            Ok(())
        } else {
            Err(
                OpsError::new(ErrorKind::Unsupported, "fake", op, target.to_string())
                    .with_detail("the capabilities this fake was given lack it"),
            )
        }
    }

    fn secrets_supported(&self, op: &'static str, namespace: &Namespace) -> Result<(), OpsError> {
        if self.lock().capabilities.secret_versions {
            Ok(())
        } else {
            Err(OpsError::new(
                ErrorKind::Unsupported,
                "fake",
                op,
                namespace.to_string(),
            ))
        }
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
        w.rollout_failure = None;
        // A rollout replaces every instance: each one starts now.
        let now = jiff::Timestamp::now();
        for i in &mut w.status.instances {
            i.started_at = Some(now);
        }
        let fault = w
            .status
            .images
            .iter()
            .find_map(|i| state.bad_images.get(i).map(|f| (i.clone(), *f)));
        if let Some((image, fault)) = fault {
            Self::break_with(w, workload, &image, fault);
        }
        Ok(())
    }

    /// The workload's instances fail as `fault` says for `image`; its rollout will fail.
    fn break_with(w: &mut FakeWorkload, workload: &WorkloadRef, image: &str, fault: ImageFault) {
        let name = workload.name();
        let mut broken = WorkloadStatus::new(workload.clone(), w.status.desired);
        for (i, mut instance) in w.status.instances.clone().into_iter().enumerate() {
            instance = match fault {
                ImageFault::CrashLoops => instance
                    .with_restarts(5)
                    .waiting(WaitingReason::CrashLoopBackOff)
                    .terminated(Termination::new("Error", 1)),
                ImageFault::CannotBePulled => instance.waiting(if i % 2 == 0 {
                    WaitingReason::ImagePullBackOff
                } else {
                    WaitingReason::ErrImagePull
                }),
            };
            instance.image = Some(image.to_owned());
            broken = broken.with_instance(instance);
        }
        broken.updated = 0;
        broken.revision = w.status.revision;
        broken.images.clone_from(&w.status.images);
        w.status = broken;
        let (reason, message) = match fault {
            ImageFault::CrashLoops => {
                ("BackOff", "Back-off restarting failed container".to_owned())
            }
            ImageFault::CannotBePulled => (
                "Failed",
                format!("Failed to pull image \"{image}\": manifest unknown"),
            ),
        };
        let mut event = PlatformEvent::new(reason, message, format!("pod/{name}"));
        event.warning = true;
        w.events.push(event);
        w.rollout_failure = Some(format!(
            "{} \"{name}\" exceeded its progress deadline",
            workload.kind()
        ));
    }

    /// The container names of a workload, in the order of its images.
    fn container_names(w: &FakeWorkload, workload: &WorkloadRef) -> Vec<String> {
        if w.containers.is_empty() {
            vec![workload.name().to_string()]
        } else {
            w.containers.clone()
        }
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
        self.capable("rollout_restart", workload, |c| c.rollout_restart)?;
        if opts.dry_run {
            self.capable("rollout_restart", workload, |c| c.dry_run)?;
        }
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
            Some(0) | None if w.rollout_failure.is_some() => {
                let message = w.rollout_failure.clone().unwrap_or_default();
                Ok(RolloutStatus::failed(message))
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
        self.capable("scale", workload, |c| c.scale)?;
        if opts.dry_run {
            self.capable("scale", workload, |c| c.dry_run)?;
        }
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
            // New instances of a failing image fail as the old ones did.
            let images = w.status.images.clone();
            let fault = images
                .iter()
                .find_map(|i| s.bad_images.get(i).map(|f| (i.clone(), *f)));
            if let Some((image, fault)) = fault
                && let Some(w) = s.workloads.get_mut(workload)
            {
                Self::break_with(w, workload, &image, fault);
            }
            drop(s);
            self.faults
                .mutate(format!("scale {workload} {from}->{replicas}"));
        }
        Ok(ScaleChange::new(from, replicas))
    }

    async fn stop(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> {
        self.call("stop", workload)?;
        self.capable("stop", workload, |c| c.stop_start)?;
        if opts.dry_run {
            self.capable("stop", workload, |c| c.dry_run)?;
        }
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
        stopped.images.clone_from(&w.status.images);
        w.status = stopped;
        drop(s);
        self.faults.mutate(format!("stop {workload}"));
        Ok(())
    }

    async fn start(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> {
        self.call("start", workload)?;
        self.capable("start", workload, |c| c.stop_start)?;
        if opts.dry_run {
            self.capable("start", workload, |c| c.dry_run)?;
        }
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
        let images = std::mem::take(&mut w.status.images);
        w.status = WorkloadStatus::healthy(workload.clone(), replicas);
        w.status.revision = revision;
        w.status.images = images;
        drop(s);
        self.faults.mutate(format!("start {workload}"));
        Ok(())
    }

    async fn revisions(&self, workload: &WorkloadRef) -> Result<Vec<Revision>, OpsError> {
        self.capable("revisions", workload, |c| c.rollback)?;
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
        self.capable("rollback", workload, |c| c.rollback)?;
        if opts.dry_run {
            self.capable("rollback", workload, |c| c.dry_run)?;
        }
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
        if let Some(w) = s.workloads.get_mut(workload)
            && !target.images.is_empty()
        {
            // The rollout starts from the old template: its images (and their faults).
            w.status.images.clone_from(&target.images);
        }
        Self::start_rollout(&mut s, workload, healing, Some(next_number))?;
        if let Some(w) = s.workloads.get_mut(workload) {
            w.revisions.retain(|r| r.number != target.number);
            for r in &mut w.revisions {
                r.current = false;
            }
            let mut revision = Revision::new(next_number, target.images.clone(), true);
            revision.change_cause.clone_from(&target.change_cause);
            w.revisions.push(revision);
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
        self.capable("delete_instance", instance, |c| c.delete_instance)?;
        if opts.dry_run {
            self.capable("delete_instance", instance, |c| c.dry_run)?;
        }
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
                let mut fresh = InstanceStatus::new(i.name.clone());
                fresh.started_at = Some(jiff::Timestamp::now());
                *i = fresh;
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
        let (lines, instances) = self.read("logs", workload, |w| {
            let names: BTreeSet<ResourceName> =
                w.status.instances.iter().map(|i| i.name.clone()).collect();
            (w.logs.clone(), names)
        })?;
        if let Some(wanted) = &opts.instance
            && !instances.contains(wanted)
        {
            return Err(Self::not_found("logs", &format!("{workload}/{wanted}")));
        }
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
        self.capable("follow_logs", workload, |c| c.follow_logs)?;
        let lines = self.logs(workload, opts).await?;
        Ok(stream::iter(lines.into_iter().map(Ok)).boxed())
    }

    async fn events(
        &self,
        workload: &WorkloadRef,
        opts: EventOptions,
    ) -> Result<Vec<PlatformEvent>, OpsError> {
        self.capable("events", workload, |c| c.events)?;
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
        self.capable("exec", instance, |c| c.exec)?;
        // An instance exists when its workload lists it, or when a test scripted it.
        let s = self.lock();
        let known = s.workloads.get(instance.workload()).is_some_and(|w| {
            w.status
                .instances
                .iter()
                .any(|i| &i.name == instance.name())
        }) || s.exec_outputs.keys().any(|(i, _)| i == instance);
        drop(s);
        if !known {
            return Err(Self::not_found("exec", instance));
        }
        self.faults
            .mutate(format!("exec {instance} {}", command.argv().join(" ")));
        let scripted = self
            .lock()
            .exec_outputs
            .get(&(instance.clone(), command.argv().to_vec()))
            .cloned();
        Ok(scripted.unwrap_or_else(|| ExecOutput::new(Some(0), Vec::new(), Vec::new())))
    }

    async fn copy_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> {
        self.call("copy_from", instance)?;
        self.capable("copy_from", instance, |c| c.copy)?;
        let state = self.lock();
        if let Some(data) = state.files.get(&(instance.clone(), path.to_owned())) {
            return Ok(data.clone());
        }
        // A directory of the seeded files is refused as the real backends refuse it.
        let dir = format!("{}/", path.trim_end_matches('/'));
        let kind = if state
            .files
            .keys()
            .any(|(i, p)| i == instance && p.starts_with(&dir))
        {
            ErrorKind::InvalidInput
        } else {
            ErrorKind::NotFound
        };
        Err(OpsError::new(
            kind,
            "fake",
            "copy_from",
            format!("{instance}:{path}"),
        ))
    }

    async fn archive_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> {
        self.call("archive_from", instance)?;
        self.capable("archive_from", instance, |c| c.copy)?;
        let (parent, base) = crate::archive::split_dir(path)?;
        let top = format!("{}/{base}/", parent.trim_end_matches('/'));
        let files: Vec<(String, Vec<u8>)> = self
            .lock()
            .files
            .iter()
            .filter(|((i, p), _)| i == instance && p.starts_with(&top))
            .map(|((_, p), data)| (format!("{base}/{}", &p[top.len()..]), data.clone()))
            .collect();
        if files.is_empty() {
            return Err(OpsError::new(
                ErrorKind::NotFound,
                "fake",
                "archive_from",
                format!("{instance}:{path}"),
            ));
        }
        let mut builder = tar::Builder::new(Vec::new());
        let io = |e: std::io::Error| {
            OpsError::new(ErrorKind::Backend, "fake", "archive_from", path)
                .with_detail(e.to_string())
        };
        let mut dir = tar::Header::new_ustar();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        builder
            .append_data(&mut dir, format!("{base}/"), std::io::empty())
            .map_err(io)?;
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            builder
                .append_data(&mut h, name, data.as_slice())
                .map_err(io)?;
        }
        builder.into_inner().map_err(io)
    }

    async fn copy_to(
        &self,
        instance: &InstanceRef,
        path: &str,
        contents: Vec<u8>,
    ) -> Result<(), OpsError> {
        self.call("copy_to", instance)?;
        self.capable("copy_to", instance, |c| c.copy)?;
        self.faults.mutate(format!(
            "copy_to {instance}:{path} ({} bytes)",
            contents.len()
        ));
        self.lock()
            .files
            .insert((instance.clone(), path.to_owned()), contents);
        Ok(())
    }

    async fn resource_usage(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>, OpsError> {
        self.capable("resource_usage", workload, |c| c.resource_usage)?;
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
        self.capable("update_config", workload, |c| c.update_config)?;
        if update.dry_run {
            self.capable("update_config", workload, |c| c.dry_run)?;
        }
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
    async fn resources(&self, workload: &WorkloadRef) -> Result<Vec<ContainerResources>, OpsError> {
        self.capable("resources", workload, |c| c.resources)?;
        self.read("resources", workload, |w| w.resources.clone())
    }

    async fn set_resources(
        &self,
        workload: &WorkloadRef,
        update: ResourceUpdate,
    ) -> Result<ResourceChange, OpsError> {
        self.call("set_resources", workload)?;
        self.capable("set_resources", workload, |c| c.resources)?;
        if update.dry_run {
            self.capable("set_resources", workload, |c| c.dry_run)?;
        }
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
        self.capable("set_autoscaler", workload, |c| c.autoscaling)?;
        if spec.dry_run {
            self.capable("set_autoscaler", workload, |c| c.dry_run)?;
        }
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
    async fn set_image(
        &self,
        workload: &WorkloadRef,
        update: ImageUpdate,
    ) -> Result<ImageChange, OpsError> {
        self.call("set_image", workload)?;
        self.capable("set_image", workload, |c| c.set_image)?;
        if update.dry_run {
            self.capable("set_image", workload, |c| c.dry_run)?;
        }
        let mut s = self.lock();
        let durable = s.capabilities.durable_config;
        let w = s
            .workloads
            .get_mut(workload)
            .ok_or_else(|| Self::not_found("set_image", workload))?;
        let names = Self::container_names(w, workload);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let target = workload.to_string();
        let container = update.select_container(&refs, "fake", &target)?.to_owned();
        let index = names.iter().position(|n| *n == container).unwrap_or(0);
        let from = w.status.images.get(index).cloned();
        let to = update.image.to_string();
        let mut change = ImageChange::new(&container, from.clone(), update.image.clone(), false);
        change.persist_in =
            (!durable).then(|| format!("the image of {container} in the definition of {workload}"));
        if update.dry_run || from.as_deref() == Some(to.as_str()) {
            // Nothing changes: a dry run, or the template already runs that image.
            return Ok(change);
        }
        let mut images = w.status.images.clone();
        if images.len() <= index {
            images.resize(index + 1, String::new());
        }
        images[index].clone_from(&to);
        w.status.images.clone_from(&images);
        let next = w.revisions.iter().map(|r| r.number).max().unwrap_or(0) + 1;
        for r in &mut w.revisions {
            r.current = false;
        }
        let mut revision = Revision::new(next, images, true);
        revision.change_cause = update.change_cause().map(str::to_owned);
        w.revisions.push(revision);
        Self::start_rollout(&mut s, workload, Healing::Heals, Some(next))?;
        drop(s);
        self.faults
            .mutate(format!("set_image {workload} {container}={to}"));
        change.rollout_started = true;
        Ok(change)
    }
    async fn lockdown(
        &self,
        scope: &LockdownScope,
        opts: LockdownOptions,
    ) -> Result<Lockdown, OpsError> {
        self.call("lockdown", scope)?;
        self.capable("lockdown", scope, |c| c.lockdown)?;
        if opts.dry_run {
            self.capable("lockdown", scope, |c| c.dry_run)?;
        }
        let mut s = self.lock();
        let isolated: Vec<String> = match scope.chosen() {
            Some(chosen) => {
                if let Some(missing) = chosen.iter().find(|w| !s.workloads.contains_key(*w)) {
                    return Err(Self::not_found("lockdown", missing));
                }
                chosen.iter().map(|w| format!("{w} isolated")).collect()
            }
            None => vec![format!(
                "every workload of namespace {} isolated",
                scope.namespace()
            )],
        };
        let id = opts
            .id
            .unwrap_or_else(|| LockdownId::generate(jiff::Timestamp::now()));
        if s.lockdowns
            .iter()
            .any(|l| l.id == id && l.namespace() == scope.namespace())
        {
            return Err(OpsError::new(
                ErrorKind::Conflict,
                "fake",
                "lockdown",
                format!("{}/{id}", scope.namespace()),
            )
            .with_detail("a lockdown with this id is active"));
        }
        let mut lockdown = Lockdown::new(id, scope.clone());
        lockdown.created_at = Some(jiff::Timestamp::now());
        lockdown.reason = opts.reason;
        lockdown.isolated = isolated;
        if !opts.dry_run {
            s.lockdowns.push(lockdown.clone());
            drop(s);
            self.faults
                .mutate(format!("lockdown {scope} as {}", lockdown.id));
        }
        Ok(lockdown)
    }

    async fn lockdowns(&self, namespace: &Namespace) -> Result<Vec<Lockdown>, OpsError> {
        self.call("lockdowns", namespace)?;
        self.capable("lockdowns", namespace, |c| c.lockdown)?;
        Ok(self
            .lock()
            .lockdowns
            .iter()
            .filter(|l| l.namespace() == namespace)
            .cloned()
            .collect())
    }

    async fn lift_lockdown(
        &self,
        namespace: &Namespace,
        id: &LockdownId,
    ) -> Result<Lockdown, OpsError> {
        let target = format!("{namespace}/{id}");
        self.call("lift_lockdown", &target)?;
        self.capable("lift_lockdown", &target, |c| c.lockdown)?;
        let mut s = self.lock();
        let at = s
            .lockdowns
            .iter()
            .position(|l| &l.id == id && l.namespace() == namespace)
            .ok_or_else(|| Self::not_found("lift_lockdown", &target))?;
        let lifted = s.lockdowns.remove(at);
        drop(s);
        self.faults.mutate(format!("lift_lockdown {target}"));
        Ok(lifted)
    }
    async fn export(
        &self,
        namespace: &Namespace,
        opts: ExportOptions,
    ) -> Result<NamespaceExport, OpsError> {
        self.call("export", namespace)?;
        self.capable("export", namespace, |c| c.export)?;
        let s = self.lock();
        let mut out = NamespaceExport::new(namespace.clone());
        for (w, fake) in s
            .workloads
            .iter()
            .filter(|(w, _)| w.namespace() == namespace)
        {
            let name = w.name().to_string();
            let mut status = fake.status.clone();
            let instances = std::mem::take(&mut status.instances);
            out = out.with_object(ExportedObject::new(
                w.kind().to_string(),
                &name,
                serde_json::to_value(&status).unwrap_or_default(),
            ));
            for i in instances {
                out = out.with_object(ExportedObject::new(
                    "Instance",
                    i.name.to_string(),
                    serde_json::to_value(&i).unwrap_or_default(),
                ));
            }
            if opts.events {
                for (n, e) in fake.events.iter().enumerate() {
                    out = out.with_object(ExportedObject::new(
                        "Event",
                        format!("{name}.{n}"),
                        serde_json::to_value(e).unwrap_or_default(),
                    ));
                }
            }
            // The fake's configuration stands for a Secret: key names only.
            if !fake.config.is_empty() {
                let keys: Vec<&String> = fake.config.keys().collect();
                out = out
                    .with_object(ExportedObject::new(
                        "Secret",
                        format!("{name}-config"),
                        serde_json::json!({ "keys": keys }),
                    ))
                    .noting(format!(
                        "Secret {name}-config: {} keys, values left out",
                        keys.len()
                    ));
            }
        }
        out.sort();
        Ok(out)
    }
    async fn inspect(
        &self,
        namespace: &Namespace,
        opts: InspectOptions,
    ) -> Result<Inspection, OpsError> {
        if !self.capabilities().inspect {
            return Err(OpsError::new(
                ErrorKind::Unsupported,
                "fake",
                "inspect",
                namespace.to_string(),
            ));
        }
        self.call("inspect", namespace)?;
        self.capable("inspect", namespace, |c| c.inspect)?;
        let state = self.lock();
        let mut out = state
            .inspections
            .get(namespace)
            .cloned()
            .unwrap_or_default();
        if matches!(out.events, Section::Unsupported(_)) {
            let mut events: Vec<PlatformEvent> = state
                .workloads
                .iter()
                .filter(|(w, _)| w.namespace() == namespace)
                .flat_map(|(_, w)| w.events.iter().cloned())
                .collect();
            events.sort_by_key(|e| e.at);
            if let Some(limit) = opts.events_limit {
                let excess = events.len().saturating_sub(limit);
                events.drain(..excess);
            }
            out.events = Section::Read(events);
        }
        Ok(out)
    }
    async fn secret_users(
        &self,
        namespace: &Namespace,
        name: &ResourceName,
    ) -> Result<Vec<WorkloadRef>, OpsError> {
        self.secrets_supported("secret_users", namespace)?;
        self.call("secret_users", &format!("{namespace}/{name}"))?;
        Ok(Self::users_of(&self.lock(), namespace, name))
    }

    async fn copy_secret(
        &self,
        namespace: &Namespace,
        copy: SecretCopy,
    ) -> Result<SecretCreated, OpsError> {
        use secrecy::ExposeSecret as _;
        self.secrets_supported("copy_secret", namespace)?;
        let target = format!("{namespace}/{}", copy.to);
        self.call("copy_secret", &target)?;
        let mut s = self.lock();
        let mut data = s
            .secrets
            .get(&(namespace.clone(), copy.from.clone()))
            .cloned()
            .ok_or_else(|| Self::not_found("copy_secret", &format!("{namespace}/{}", copy.from)))?;
        if s.secrets
            .contains_key(&(namespace.clone(), copy.to.clone()))
        {
            return Err(
                OpsError::new(ErrorKind::Conflict, "fake", "copy_secret", target)
                    .with_detail("the secret exists"),
            );
        }
        for (k, v) in &copy.set {
            data.insert(k.clone(), v.expose_secret().to_owned());
        }
        let keys = data.keys().cloned().collect();
        s.secrets.insert((namespace.clone(), copy.to.clone()), data);
        drop(s);
        self.faults.mutate(format!(
            "copy_secret {namespace}/{} -> {} set={:?}",
            copy.from,
            copy.to,
            copy.keys_set()
        ));
        Ok(SecretCreated::new(copy.to, keys))
    }

    async fn repoint_secret(
        &self,
        workload: &WorkloadRef,
        from: &ResourceName,
        to: &ResourceName,
    ) -> Result<SecretRepoint, OpsError> {
        self.secrets_supported("repoint_secret", workload.namespace())?;
        self.call("repoint_secret", workload)?;
        let mut s = self.lock();
        if !s.workloads.contains_key(workload) {
            return Err(Self::not_found("repoint_secret", workload));
        }
        let used = s.secret_refs.entry(workload.clone()).or_default();
        if !used.remove(from) {
            return Ok(SecretRepoint::new(workload.clone(), 0));
        }
        used.insert(to.clone());
        let healing = s.restart;
        Self::start_rollout(&mut s, workload, healing, None)?;
        drop(s);
        self.faults
            .mutate(format!("repoint_secret {workload} {from} -> {to}"));
        Ok(SecretRepoint::new(workload.clone(), 1))
    }

    async fn delete_secret(
        &self,
        namespace: &Namespace,
        name: &ResourceName,
    ) -> Result<(), OpsError> {
        self.secrets_supported("delete_secret", namespace)?;
        let target = format!("{namespace}/{name}");
        self.call("delete_secret", &target)?;
        let mut s = self.lock();
        let users = Self::users_of(&s, namespace, name);
        if !users.is_empty() {
            return Err(
                OpsError::new(ErrorKind::Conflict, "fake", "delete_secret", target)
                    .with_detail(format!("still used by {} workloads", users.len())),
            );
        }
        s.secrets
            .remove(&(namespace.clone(), name.clone()))
            .ok_or_else(|| Self::not_found("delete_secret", &target))?;
        drop(s);
        self.faults.mutate(format!("delete_secret {target}"));
        Ok(())
    }
}

/// The memory limit of an instance: the containers' limits summed, `None` when one has none.
fn memory_limit(resources: &[ContainerResources]) -> Option<u64> {
    resources
        .iter()
        .map(|c| c.limits.memory.map(MemoryQuantity::bytes))
        .sum()
}
