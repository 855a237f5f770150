//! The [`Platform`] trait: where workloads run (Kubernetes, Docker Compose).
//!
//! A workload ([`WorkloadRef`]) is a Deployment/StatefulSet/DaemonSet or a compose service; its
//! instances are pods or containers. Every disruptive method has an options struct whose
//! `dry_run` flag may only be set when [`PlatformCapabilities::dry_run`] is true (server-side
//! validation such as Kubernetes `dryRun=All`); runbooks plan dry runs through
//! [`crate::run::RunContext`] instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::error::{ErrorKind, OpsError};
use crate::refs::{InstanceRef, Namespace, ResourceName, WorkloadRef};

mod lockdown;
pub use lockdown::*;
mod export;
pub use export::*;
mod inspection;
pub use inspection::*;
mod secrets;
pub use secrets::*;
mod quantity;
mod resources;
pub use quantity::*;
pub use resources::*;
mod autoscaling;
pub use autoscaling::*;

/// What a [`Platform`] backend supports; callers check before calling.
///
/// # Examples
/// ```
/// let caps = ops_core::platform::PlatformCapabilities::all();
/// assert!(caps.rollback);
/// assert!(!ops_core::platform::PlatformCapabilities::default().rollback);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(
    clippy::struct_excessive_bools,
    reason = "a capability set is a set of flags"
)]
pub struct PlatformCapabilities {
    /// Server-side dry run of mutations (`opts.dry_run`).
    pub dry_run: bool,
    /// Rolling restart.
    pub rollout_restart: bool,
    /// Scaling.
    pub scale: bool,
    /// Stop and start.
    pub stop_start: bool,
    /// Rollback to a previous revision. Whether a given workload has one to go back to is
    /// per workload: [`Platform::revisions`] says (Compose knows a previous image only for
    /// some services and refuses the others with [`ErrorKind::Unsupported`]).
    pub rollback: bool,
    /// Deleting one instance.
    pub delete_instance: bool,
    /// Following logs as a stream.
    pub follow_logs: bool,
    /// Platform events.
    pub events: bool,
    /// Exec in an instance.
    pub exec: bool,
    /// Copying files in and out.
    pub copy: bool,
    /// CPU and memory usage ([`Platform::resource_usage`]); Kubernetes claims it only where
    /// the cluster serves `metrics.k8s.io` (metrics-server).
    pub resource_usage: bool,
    /// Configuration updates.
    pub update_config: bool,
    /// Configuration and image changes are kept in the platform's own desired state and
    /// survive the platform's next reconciliation (Kubernetes: the Deployment, ConfigMap or
    /// Secret). `false` where the service is defined outside the platform (Docker Compose:
    /// the compose file and `.env`): a change made through the platform lasts only until the
    /// next deploy from that definition, which must be changed too
    /// ([`ConfigChange::persist_in`] says where).
    pub durable_config: bool,
    /// Reading and setting per-container CPU / memory requests and limits
    /// ([`Platform::resources`], [`Platform::set_resources`]).
    pub resources: bool,
    /// Reading and creating / updating the horizontal autoscaler of a workload
    /// ([`Platform::autoscaler`], [`Platform::set_autoscaler`]); false on Compose.
    pub autoscaling: bool,
    /// Setting a workload's image ([`Platform::set_image`]): Kubernetes patches the pod
    /// template; Compose recreates the service's containers with the image.
    pub set_image: bool,
    /// Network isolation of a namespace or workloads, listed and lifted
    /// ([`Platform::lockdown`]).
    pub lockdown: bool,
    /// Export of a namespace's objects for the record ([`Platform::export`]).
    pub export: bool,
    /// Inspection beyond workloads ([`Platform::inspect`]); which parts a backend has is
    /// per section ([`Section::Unsupported`]).
    pub inspect: bool,
    /// Secret rotation by a new Secret ([`Platform::copy_secret`],
    /// [`Platform::repoint_secret`], [`Platform::delete_secret`]): Kubernetes.
    pub secret_versions: bool,
}

impl PlatformCapabilities {
    /// Everything supported (used by fakes).
    pub fn all() -> Self {
        Self {
            dry_run: true,
            rollout_restart: true,
            scale: true,
            stop_start: true,
            rollback: true,
            delete_instance: true,
            follow_logs: true,
            events: true,
            exec: true,
            copy: true,
            resource_usage: true,
            update_config: true,
            durable_config: true,
            resources: true,
            autoscaling: true,
            set_image: true,
            lockdown: true,
            export: true,
            inspect: true,
            secret_versions: true,
        }
    }
}

/// Why a container is waiting instead of running.
///
/// # Examples
/// ```
/// use ops_core::platform::WaitingReason;
/// assert_eq!(WaitingReason::parse("CrashLoopBackOff"), WaitingReason::CrashLoopBackOff);
/// assert!(WaitingReason::parse("ErrImagePull").is_image_problem());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaitingReason {
    /// Restarting after repeated crashes.
    CrashLoopBackOff,
    /// The image cannot be pulled (backing off).
    ImagePullBackOff,
    /// The image pull failed.
    ErrImagePull,
    /// Being created.
    ContainerCreating,
    /// The container config is invalid (missing ConfigMap/Secret key...).
    CreateContainerConfigError,
    /// Any other reason, verbatim.
    Other(String),
}

impl WaitingReason {
    /// Map a platform's reason string.
    pub fn parse(reason: &str) -> Self {
        match reason {
            "CrashLoopBackOff" => Self::CrashLoopBackOff,
            "ImagePullBackOff" => Self::ImagePullBackOff,
            "ErrImagePull" => Self::ErrImagePull,
            "ContainerCreating" => Self::ContainerCreating,
            "CreateContainerConfigError" => Self::CreateContainerConfigError,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the image cannot be fetched.
    pub fn is_image_problem(&self) -> bool {
        matches!(self, Self::ImagePullBackOff | Self::ErrImagePull)
    }
}

impl fmt::Display for WaitingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CrashLoopBackOff => f.write_str("CrashLoopBackOff"),
            Self::ImagePullBackOff => f.write_str("ImagePullBackOff"),
            Self::ErrImagePull => f.write_str("ErrImagePull"),
            Self::ContainerCreating => f.write_str("ContainerCreating"),
            Self::CreateContainerConfigError => f.write_str("CreateContainerConfigError"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

/// How a container last ended.
///
/// # Examples
/// ```
/// use ops_core::platform::Termination;
/// let t = Termination::oom_killed();
/// assert!(t.is_oom_killed());
/// assert_eq!(t.exit_code, 137);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Termination {
    /// The platform's reason (`OOMKilled`, `Error`, `Completed`...).
    pub reason: String,
    /// The exit code.
    pub exit_code: i32,
    /// When it ended, when known.
    pub finished_at: Option<jiff::Timestamp>,
}

impl Termination {
    /// A termination with a reason and exit code.
    pub fn new(reason: impl Into<String>, exit_code: i32) -> Self {
        Self {
            reason: reason.into(),
            exit_code,
            finished_at: None,
        }
    }

    /// Killed by the kernel's OOM killer (exit code 137).
    pub fn oom_killed() -> Self {
        Self::new("OOMKilled", 137)
    }

    /// Whether the OOM killer ended it.
    pub fn is_oom_killed(&self) -> bool {
        self.reason == "OOMKilled"
    }
}

/// The lifecycle phase of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InstancePhase {
    /// Scheduled or being created.
    Pending,
    /// Running (not necessarily ready).
    Running,
    /// Exited successfully and will not restart.
    Succeeded,
    /// Exited with an error and will not restart.
    Failed,
    /// Stopped on purpose (compose `stop`).
    Stopped,
    /// Paused (docker pause).
    Paused,
    /// The platform cannot tell.
    Unknown,
}

/// The result of an instance's health check (readiness probe or Docker HEALTHCHECK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Health {
    /// Passing.
    Healthy,
    /// Failing.
    Unhealthy,
    /// Within its start period.
    Starting,
    /// No health check defined.
    None,
}

/// One instance (pod or container) of a workload.
///
/// # Examples
/// ```
/// use ops_core::platform::{InstanceStatus, WaitingReason};
/// let pod = InstanceStatus::running("api-1").with_restarts(4).waiting(WaitingReason::CrashLoopBackOff);
/// assert!(pod.is_crash_looping());
/// assert!(!pod.ready);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InstanceStatus {
    /// Pod or container name.
    pub name: ResourceName,
    /// Lifecycle phase.
    pub phase: InstancePhase,
    /// Whether it serves traffic.
    pub ready: bool,
    /// Health check result.
    pub health: Health,
    /// Container restarts so far.
    pub restarts: u32,
    /// Why it is waiting, when it is.
    pub waiting: Option<WaitingReason>,
    /// How it last ended, when it has.
    pub last_termination: Option<Termination>,
    /// The image it runs.
    pub image: Option<String>,
    /// The node or host it runs on.
    pub node: Option<String>,
    /// When it started.
    pub started_at: Option<jiff::Timestamp>,
    /// The workload revision it belongs to, when the platform tracks revisions.
    pub revision: Option<u64>,
}

impl InstanceStatus {
    /// A ready, healthy, running instance named `name`.
    ///
    /// # Panics
    /// When `name` is not a valid [`ResourceName`]; use [`InstanceStatus::new`] for untrusted names.
    #[allow(
        clippy::expect_used,
        reason = "documented panic for literal names in tests and examples"
    )]
    pub fn running(name: &str) -> Self {
        Self::new(ResourceName::new(name).expect("valid instance name"))
    }

    /// A ready, healthy, running instance.
    pub fn new(name: ResourceName) -> Self {
        Self {
            name,
            phase: InstancePhase::Running,
            ready: true,
            health: Health::Healthy,
            restarts: 0,
            waiting: None,
            last_termination: None,
            image: None,
            node: None,
            started_at: None,
            revision: None,
        }
    }

    /// Set the restart count.
    #[must_use]
    pub fn with_restarts(mut self, restarts: u32) -> Self {
        self.restarts = restarts;
        self
    }

    /// Mark it waiting for `reason` (not ready, unhealthy).
    #[must_use]
    pub fn waiting(mut self, reason: WaitingReason) -> Self {
        self.waiting = Some(reason);
        self.ready = false;
        self.health = Health::Unhealthy;
        self.phase = InstancePhase::Pending;
        self
    }

    /// Set the last termination.
    #[must_use]
    pub fn terminated(mut self, termination: Termination) -> Self {
        self.last_termination = Some(termination);
        self
    }

    /// Set readiness and health.
    #[must_use]
    pub fn with_ready(mut self, ready: bool) -> Self {
        self.ready = ready;
        self.health = if ready {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        self
    }

    /// Whether it is in `CrashLoopBackOff`.
    pub fn is_crash_looping(&self) -> bool {
        self.waiting == Some(WaitingReason::CrashLoopBackOff)
    }

    /// Whether its last termination was an OOM kill.
    pub fn was_oom_killed(&self) -> bool {
        self.last_termination
            .as_ref()
            .is_some_and(Termination::is_oom_killed)
    }
}

/// A condition reported by the platform (Kubernetes `status.conditions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Condition {
    /// Condition type, e.g. `Progressing`.
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason, e.g. `ProgressDeadlineExceeded`.
    pub reason: Option<String>,
    /// Human message.
    pub message: Option<String>,
}

impl Condition {
    /// A condition with type, status and reason.
    pub fn new(kind: impl Into<String>, status: impl Into<String>, reason: Option<String>) -> Self {
        Self {
            kind: kind.into(),
            status: status.into(),
            reason,
            message: None,
        }
    }
}

/// The state of a workload and its instances.
///
/// # Examples
/// ```
/// use ops_core::platform::{InstanceStatus, WorkloadStatus};
/// let api = ops_core::WorkloadRef::compose_service("shop", "api")?;
/// let s = WorkloadStatus::new(api, 2).with_instance(InstanceStatus::running("shop-api-1"));
/// assert!(!s.is_healthy()); // one of two wanted instances
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkloadStatus {
    /// Which workload.
    pub workload: WorkloadRef,
    /// Wanted replicas.
    pub desired: u32,
    /// Ready replicas.
    pub ready: u32,
    /// Available replicas (ready for at least minReadySeconds).
    pub available: u32,
    /// Replicas on the current template.
    pub updated: u32,
    /// Whether rollouts are paused.
    pub paused: bool,
    /// The current revision, when the platform tracks revisions.
    pub revision: Option<u64>,
    /// The image(s) of the current template.
    pub images: Vec<String>,
    /// Platform conditions.
    pub conditions: Vec<Condition>,
    /// The instances.
    pub instances: Vec<InstanceStatus>,
}

impl WorkloadStatus {
    /// A workload wanting `desired` replicas, with no instances yet; counts follow instances
    /// added with [`WorkloadStatus::with_instance`].
    pub fn new(workload: WorkloadRef, desired: u32) -> Self {
        Self {
            workload,
            desired,
            ready: 0,
            available: 0,
            updated: 0,
            paused: false,
            revision: None,
            images: Vec::new(),
            conditions: Vec::new(),
            instances: Vec::new(),
        }
    }

    /// A healthy workload with `replicas` ready instances named `<name>-0`, `<name>-1`, ...
    ///
    /// # Examples
    /// ```
    /// let w = ops_core::platform::WorkloadStatus::healthy("prod/deployment/api".parse()?, 3);
    /// assert!(w.is_healthy());
    /// assert_eq!(w.instances[2].name.as_str(), "api-2");
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn healthy(workload: WorkloadRef, replicas: u32) -> Self {
        let name = workload.name().to_string();
        (0..replicas).fold(Self::new(workload, replicas), |s, i| {
            s.with_instance(InstanceStatus::new(instance_name(&name, i)))
        })
    }

    /// A workload whose `replicas` instances are all in `CrashLoopBackOff` after 5 restarts,
    /// the last ended with exit code 1.
    ///
    /// # Examples
    /// ```
    /// let w = ops_core::platform::WorkloadStatus::crash_looping("prod/deployment/api".parse()?, 2);
    /// assert_eq!(w.crash_looping_instances().count(), 2);
    /// assert!(!w.is_healthy());
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn crash_looping(workload: WorkloadRef, replicas: u32) -> Self {
        let name = workload.name().to_string();
        (0..replicas).fold(Self::new(workload, replicas), |s, i| {
            s.with_instance(
                InstanceStatus::new(instance_name(&name, i))
                    .with_restarts(5)
                    .waiting(WaitingReason::CrashLoopBackOff)
                    .terminated(Termination::new("Error", 1)),
            )
        })
    }

    /// Add an instance, counting it as updated, and as ready and available when it is ready.
    #[must_use]
    pub fn with_instance(mut self, instance: InstanceStatus) -> Self {
        self.updated += 1;
        if instance.ready {
            self.ready += 1;
            self.available += 1;
        }
        self.instances.push(instance);
        self
    }

    /// All wanted replicas are ready and available and none is waiting.
    pub fn is_healthy(&self) -> bool {
        self.ready >= self.desired
            && self.available >= self.desired
            && self.instances.iter().all(|i| i.waiting.is_none())
    }

    /// Instances in `CrashLoopBackOff`.
    pub fn crash_looping_instances(&self) -> impl Iterator<Item = &InstanceStatus> {
        self.instances.iter().filter(|i| i.is_crash_looping())
    }

    /// Instances whose last termination was an OOM kill.
    pub fn oom_killed_instances(&self) -> impl Iterator<Item = &InstanceStatus> {
        self.instances.iter().filter(|i| i.was_oom_killed())
    }

    /// Restarts summed over instances.
    pub fn total_restarts(&self) -> u32 {
        self.instances.iter().map(|i| i.restarts).sum()
    }
}

/// `<name>-<i>`, falling back to `instance-<i>` if that would be too long.
fn instance_name(name: &str, i: u32) -> ResourceName {
    ResourceName::new(&format!("{name}-{i}"))
        .or_else(|_| ResourceName::new(&format!("instance-{i}")))
        .unwrap_or_else(|_| ResourceName::trusted(format!("instance-{i}")))
}

/// Where a rollout stands ([`Platform::rollout_status`]).
///
/// # Examples
/// ```
/// use ops_core::platform::RolloutStatus;
/// let s = RolloutStatus::progressing(1, 3, "1 of 3 updated replicas are available");
/// assert!(!s.done);
/// assert!(RolloutStatus::complete(3).done);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RolloutStatus {
    /// The rollout finished: every replica is updated and available.
    pub done: bool,
    /// The platform gave up (Kubernetes `ProgressDeadlineExceeded`); waiting longer will not help.
    pub failed: bool,
    /// Updated replicas available so far.
    pub updated_available: u32,
    /// Wanted replicas.
    pub desired: u32,
    /// kubectl-style message, e.g. `Waiting for deployment "api" rollout to finish: 1 of 3 updated replicas are available...`.
    pub message: String,
    /// The revision being rolled out, when known.
    pub revision: Option<u64>,
}

impl RolloutStatus {
    /// A finished rollout of `desired` replicas.
    pub fn complete(desired: u32) -> Self {
        Self {
            done: true,
            failed: false,
            updated_available: desired,
            desired,
            message: "successfully rolled out".to_owned(),
            revision: None,
        }
    }

    /// A rollout in progress.
    pub fn progressing(updated_available: u32, desired: u32, message: impl Into<String>) -> Self {
        Self {
            done: false,
            failed: false,
            updated_available,
            desired,
            message: message.into(),
            revision: None,
        }
    }

    /// A rollout the platform gave up on.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            done: false,
            failed: true,
            updated_available: 0,
            desired: 0,
            message: message.into(),
            revision: None,
        }
    }
}

/// Options for [`Platform::rollout_restart`].
///
/// # Examples
/// ```
/// let o = ops_core::platform::RestartOptions::default().with_stop_timeout(std::time::Duration::from_secs(10));
/// assert_eq!(o.stop_timeout, Some(std::time::Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestartOptions {
    /// Server-side dry run (only when [`PlatformCapabilities::dry_run`]).
    pub dry_run: bool,
    /// How long an instance may take to stop before it is killed (compose).
    pub stop_timeout: Option<Duration>,
}

impl RestartOptions {
    /// Ask for a server-side dry run.
    #[must_use]
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Set the stop timeout.
    #[must_use]
    pub fn with_stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = Some(timeout);
        self
    }
}

/// A progress callback for long waits.
pub type ProgressFn = Arc<dyn Fn(&RolloutStatus) + Send + Sync>;

/// Options for [`PlatformExt::wait_rolled_out`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let o = ops_core::platform::RolloutOptions::default().with_timeout(Duration::from_secs(60));
/// assert_eq!(o.timeout, Duration::from_secs(60));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RolloutOptions {
    /// Give up after this long (default 5 min).
    pub timeout: Duration,
    /// Poll this often (default 2 s).
    pub poll_interval: Duration,
    /// Called with every status read.
    pub progress: Option<ProgressFn>,
}

impl fmt::Debug for RolloutOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RolloutOptions")
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for RolloutOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            progress: None,
        }
    }
}

impl RolloutOptions {
    /// Set the deadline.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Set the poll interval.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Report progress to `f`.
    #[must_use]
    pub fn with_progress(mut self, f: impl Fn(&RolloutStatus) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
}

/// Options for [`Platform::scale`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScaleOptions {
    /// Server-side dry run.
    pub dry_run: bool,
    /// Scale only if the workload still wants this many instances (the count the plan saw):
    /// otherwise fail with `Conflict` and change nothing, like `kubectl scale
    /// --current-replicas`.
    pub expect_current: Option<u32>,
}

impl ScaleOptions {
    /// Scale only if the workload still wants `current` instances.
    ///
    /// # Examples
    /// ```
    /// let opts = ops_core::platform::ScaleOptions::default().expecting(2);
    /// assert_eq!(opts.expect_current, Some(2));
    /// ```
    #[must_use]
    pub fn expecting(mut self, current: u32) -> Self {
        self.expect_current = Some(current);
        self
    }
}

/// What [`Platform::scale`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScaleChange {
    /// Replicas before.
    pub from: u32,
    /// Replicas after.
    pub to: u32,
}

impl ScaleChange {
    /// A change from `from` to `to` replicas.
    pub fn new(from: u32, to: u32) -> Self {
        Self { from, to }
    }
}

/// Options for [`Platform::stop`] and [`Platform::start`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopOptions {
    /// Grace period before a kill.
    pub timeout: Option<Duration>,
    /// Server-side dry run.
    pub dry_run: bool,
}

impl StopOptions {
    /// Set the grace period.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Options for [`Platform::rollback`].
///
/// # Examples
/// ```
/// let o = ops_core::platform::RollbackOptions::default().to_revision(3);
/// assert_eq!(o.revision, Some(3));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RollbackOptions {
    /// Roll back to this revision; `None` means the previous one.
    pub revision: Option<u64>,
    /// Server-side dry run.
    pub dry_run: bool,
}

impl RollbackOptions {
    /// Target a specific revision.
    #[must_use]
    pub fn to_revision(mut self, revision: u64) -> Self {
        self.revision = Some(revision);
        self
    }
}

/// What [`Platform::rollback`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RollbackChange {
    /// The revision that was current.
    pub from_revision: Option<u64>,
    /// The revision whose template is now current.
    pub to_revision: u64,
}

impl RollbackChange {
    /// A rollback from one revision to another.
    pub fn new(from_revision: Option<u64>, to_revision: u64) -> Self {
        Self {
            from_revision,
            to_revision,
        }
    }
}

/// A revision a workload can roll back to ([`Platform::revisions`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Revision {
    /// The revision number.
    pub number: u64,
    /// Its images.
    pub images: Vec<String>,
    /// When it was created.
    pub created_at: Option<jiff::Timestamp>,
    /// Whether it is the current revision.
    pub current: bool,
    /// Why it was made, when the platform recorded it (Kubernetes:
    /// `kubernetes.io/change-cause`, `kubectl rollout history`'s CHANGE-CAUSE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_cause: Option<String>,
}

impl Revision {
    /// A revision with a number and images.
    pub fn new(number: u64, images: Vec<String>, current: bool) -> Self {
        Self {
            number,
            images,
            created_at: None,
            current,
            change_cause: None,
        }
    }
}

/// Options for [`Platform::delete_instance`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteOptions {
    /// Grace period before a kill.
    pub grace_period: Option<Duration>,
    /// Server-side dry run.
    pub dry_run: bool,
}

/// A log filter: keep only lines matching a regular expression.
///
/// # Examples
/// ```
/// let f = ops_core::platform::LogFilter::new("(?i)error|panic")?;
/// assert!(f.is_match("ERROR: db down"));
/// assert!(!f.is_match("all good"));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LogFilter(regex::Regex);

impl LogFilter {
    /// Compile a filter.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `pattern` is not a valid regular expression.
    pub fn new(pattern: &str) -> Result<Self, OpsError> {
        // The regex error quotes the whole pattern over several lines: it goes into the
        // detail quoted, not as a source shown raw.
        regex::Regex::new(pattern).map(Self).map_err(|e| {
            let why = crate::text::quote(&e.to_string());
            OpsError::invalid(
                "log_filter",
                pattern,
                format!("not a valid regular expression: {why}"),
            )
        })
    }

    /// The default error filter: `error`, `exception`, `panic`, `fatal` or `critical`, any case.
    ///
    /// # Panics
    /// Never: the pattern is a constant known to compile (covered by a doctest).
    pub fn errors() -> Self {
        // The pattern is a literal known to compile.
        #[allow(clippy::unwrap_used, reason = "constant pattern")]
        Self(regex::Regex::new(r"(?i)\b(error|exception|panic|fatal|critical)\b").unwrap())
    }

    /// Whether `line` passes the filter.
    pub fn is_match(&self, line: &str) -> bool {
        self.0.is_match(line)
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl PartialEq for LogFilter {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// Options for [`Platform::logs`] and [`Platform::follow_logs`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let o = ops_core::platform::LogOptions::default()
///     .with_tail(200)
///     .with_since(Duration::from_secs(600))
///     .with_filter(ops_core::platform::LogFilter::errors());
/// assert_eq!(o.tail, Some(200));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LogOptions {
    /// Only this instance; `None` reads every instance and merges them in time order.
    pub instance: Option<ResourceName>,
    /// Only this container of a pod.
    pub container: Option<String>,
    /// Last N lines per instance.
    pub tail: Option<u32>,
    /// Only lines newer than this.
    pub since: Option<Duration>,
    /// The previous (crashed) container's logs.
    pub previous: bool,
    /// Ask the platform for timestamps (needed for merging).
    pub timestamps: bool,
    /// Keep only matching lines.
    pub filter: Option<LogFilter>,
}

impl LogOptions {
    /// Last `n` lines per instance.
    #[must_use]
    pub fn with_tail(mut self, n: u32) -> Self {
        self.tail = Some(n);
        self
    }

    /// Lines from the last `since`.
    #[must_use]
    pub fn with_since(mut self, since: Duration) -> Self {
        self.since = Some(since);
        self
    }

    /// Only `instance`.
    #[must_use]
    pub fn with_instance(mut self, instance: ResourceName) -> Self {
        self.instance = Some(instance);
        self
    }

    /// The previous container's logs.
    #[must_use]
    pub fn with_previous(mut self, previous: bool) -> Self {
        self.previous = previous;
        self
    }

    /// Keep only matching lines.
    #[must_use]
    pub fn with_filter(mut self, filter: LogFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Include timestamps.
    #[must_use]
    pub fn with_timestamps(mut self, timestamps: bool) -> Self {
        self.timestamps = timestamps;
        self
    }
}

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One log line of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogLine {
    /// The instance that wrote it.
    pub instance: ResourceName,
    /// When, if the platform said.
    pub timestamp: Option<jiff::Timestamp>,
    /// Which stream.
    pub stream: LogStream,
    /// The text, without the trailing newline.
    pub text: String,
    /// The container that wrote it, when an instance has several (Kubernetes pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl LogLine {
    /// A stdout line.
    pub fn new(
        instance: ResourceName,
        timestamp: Option<jiff::Timestamp>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            instance,
            timestamp,
            stream: LogStream::Stdout,
            text: text.into(),
            container: None,
        }
    }
}

/// Merge per-instance log lines into one list ordered by timestamp (stable for equal or
/// missing timestamps), as `kubectl logs` of a whole deployment should.
///
/// # Examples
/// ```
/// use ops_core::platform::{merge_logs, LogLine};
/// let a = "a".parse()?; let b = "b".parse()?;
/// let t = |s: i64| Some(jiff::Timestamp::from_second(s).unwrap());
/// let merged = merge_logs(vec![
///     vec![LogLine::new(a, t(1), "a1"), LogLine::new("a".parse()?, t(3), "a3")],
///     vec![LogLine::new(b, t(2), "b2")],
/// ]);
/// let texts: Vec<_> = merged.iter().map(|l| l.text.as_str()).collect();
/// assert_eq!(texts, ["a1", "b2", "a3"]);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
pub fn merge_logs(per_instance: Vec<Vec<LogLine>>) -> Vec<LogLine> {
    let mut all: Vec<LogLine> = per_instance.into_iter().flatten().collect();
    all.sort_by_key(|l| l.timestamp);
    all
}

/// Options for [`Platform::events`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventOptions {
    /// Only events newer than this.
    pub since: Option<Duration>,
    /// At most this many, newest last.
    pub limit: Option<usize>,
    /// Only warnings.
    pub warnings_only: bool,
}

/// A platform event (Kubernetes Event, Docker event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlatformEvent {
    /// When it last happened.
    pub at: Option<jiff::Timestamp>,
    /// Whether it is a warning.
    pub warning: bool,
    /// Machine-readable reason (`BackOff`, `Killing`, `die`...).
    pub reason: String,
    /// Human message.
    pub message: String,
    /// The object it is about.
    pub object: String,
    /// How many times it happened.
    pub count: u32,
}

impl PlatformEvent {
    /// A normal event.
    pub fn new(
        reason: impl Into<String>,
        message: impl Into<String>,
        object: impl Into<String>,
    ) -> Self {
        Self {
            at: None,
            warning: false,
            reason: reason.into(),
            message: message.into(),
            object: object.into(),
            count: 1,
        }
    }
}

/// A command to run in an instance: an argv, never a shell string.
///
/// # Examples
/// ```
/// let cmd = ops_core::platform::ExecCommand::new(["pg_isready", "-h", "localhost"])?;
/// assert_eq!(cmd.argv()[0], "pg_isready");
/// assert!(ops_core::platform::ExecCommand::new(Vec::<String>::new()).is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecCommand {
    argv: Vec<String>,
    /// The container of a pod to run in.
    pub container: Option<String>,
    /// Deadline for the command.
    #[serde(with = "crate::serde_util::opt_duration_ms")]
    pub timeout: Option<Duration>,
}

impl ExecCommand {
    /// Build from an argv.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `argv` is empty or an argument contains NUL.
    pub fn new<I, S>(argv: I) -> Result<Self, OpsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        if argv.is_empty() {
            return Err(OpsError::invalid(
                "exec",
                "",
                "a command needs at least the program name",
            ));
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(OpsError::invalid(
                "exec",
                &argv[0],
                "arguments cannot contain NUL",
            ));
        }
        Ok(Self {
            argv,
            container: None,
            timeout: None,
        })
    }

    /// The argv.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// Set the deadline.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// What an exec printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecOutput {
    /// Exit code (`None` when the platform does not say).
    pub exit_code: Option<i64>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// An output with exit code and streams.
    pub fn new(exit_code: Option<i64>, stdout: Vec<u8>, stderr: Vec<u8>) -> Self {
        Self {
            exit_code,
            stdout,
            stderr,
        }
    }

    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// CPU and memory use of one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// The instance.
    pub instance: ResourceName,
    /// CPU in cores (1.0 = one core busy).
    pub cpu_cores: f64,
    /// Memory in use, bytes.
    pub memory_bytes: u64,
    /// The memory limit, bytes, when one is set.
    pub memory_limit_bytes: Option<u64>,
    /// The CPU limit in cores, when every container of the instance has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit_cores: Option<f64>,
}

impl ResourceUsage {
    /// Usage of one instance.
    pub fn new(
        instance: ResourceName,
        cpu_cores: f64,
        memory_bytes: u64,
        memory_limit_bytes: Option<u64>,
    ) -> Self {
        Self {
            instance,
            cpu_cores,
            memory_bytes,
            memory_limit_bytes,
            cpu_limit_cores: None,
        }
    }

    /// The same usage with a CPU limit.
    ///
    /// # Examples
    /// ```
    /// use ops_core::{ResourceName, platform::ResourceUsage};
    /// let u = ResourceUsage::new(ResourceName::new("api-0")?, 0.4, 1, None).with_cpu_limit(0.5);
    /// assert_eq!(u.cpu_ratio(), Some(0.8));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    #[must_use]
    pub fn with_cpu_limit(mut self, cores: f64) -> Self {
        self.cpu_limit_cores = Some(cores);
        self
    }

    /// CPU used as a fraction of the limit, when a limit is set.
    pub fn cpu_ratio(&self) -> Option<f64> {
        self.cpu_limit_cores
            .filter(|l| *l > 0.0)
            .map(|l| self.cpu_cores / l)
    }

    /// Memory used as a fraction of the limit (0.0–1.0+), when a limit is set.
    pub fn memory_ratio(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss, reason = "a ratio needs no exact bytes")]
        self.memory_limit_bytes
            .filter(|l| *l > 0)
            .map(|l| self.memory_bytes as f64 / l as f64)
    }
}

/// Where a configuration update goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConfigTarget {
    /// The workload's environment variables.
    Env,
    /// A Kubernetes ConfigMap the workload uses.
    ConfigMap(ResourceName),
    /// A Kubernetes Secret the workload uses.
    Secret(ResourceName),
}

/// A configuration change: keys to set (values are secrets: never printed) and keys to remove.
///
/// # Examples
/// ```
/// use ops_core::platform::{ConfigTarget, ConfigUpdate};
/// let u = ConfigUpdate::new(ConfigTarget::Env).set("LOG_LEVEL", "debug").remove("OLD_FLAG");
/// assert_eq!(u.keys_set(), vec!["LOG_LEVEL"]);
/// assert!(!format!("{u:?}").contains("debug"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ConfigUpdate {
    /// Where the keys live.
    pub target: ConfigTarget,
    /// Keys to set.
    pub set: BTreeMap<String, SecretString>,
    /// Keys to remove.
    pub remove: BTreeSet<String>,
    /// Roll the workload out so the change applies (default true).
    pub rollout: bool,
    /// Server-side dry run.
    pub dry_run: bool,
}

impl fmt::Debug for ConfigUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigUpdate")
            .field("target", &self.target)
            .field("set", &self.set.keys().collect::<Vec<_>>())
            .field("remove", &self.remove)
            .field("rollout", &self.rollout)
            .finish_non_exhaustive()
    }
}

impl ConfigUpdate {
    /// An empty update of `target`.
    pub fn new(target: ConfigTarget) -> Self {
        Self {
            target,
            set: BTreeMap::new(),
            remove: BTreeSet::new(),
            rollout: true,
            dry_run: false,
        }
    }

    /// Set `key` to `value`.
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set
            .insert(key.into(), SecretString::from(value.into()));
        self
    }

    /// Remove `key`.
    #[must_use]
    pub fn remove(mut self, key: impl Into<String>) -> Self {
        self.remove.insert(key.into());
        self
    }

    /// Names of the keys being set.
    pub fn keys_set(&self) -> Vec<&str> {
        self.set.keys().map(String::as_str).collect()
    }
}

/// What [`Platform::update_config`] changed: key names only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConfigChange {
    /// Keys set.
    pub keys_set: Vec<String>,
    /// Keys removed.
    pub keys_removed: Vec<String>,
    /// Whether a rollout was started.
    pub rolled_out: bool,
    /// Where the change must also be made for it to last, when the platform does not keep
    /// it ([`PlatformCapabilities::durable_config`] false), e.g. the compose files and
    /// `.env` of a Compose project; `None` when the platform's own state now holds it.
    pub persist_in: Option<String>,
}

/// Where [`Platform::copy_from_into`] writes a copied file: any async byte sink that owns
/// its state (an [`crate::artifact::ArtifactWriter`], a `tokio::fs::File`, a `Vec<u8>`).
///
/// # Examples
/// ```
/// let mut buffer = Vec::new();
/// let sink: &mut ops_core::platform::CopySink = &mut buffer;
/// # let _ = sink;
/// ```
pub type CopySink = dyn AsyncWrite + Send + Unpin + 'static;

/// Where workloads run: inspect them, restart them, wait for rollouts.
///
/// Implemented by `ops-k8s` (Kubernetes) and `ops-compose` (Docker Compose). A backend that
/// cannot do something returns [`ErrorKind::Unsupported`] and says so in
/// [`Platform::capabilities`]. Every method honours the backend's request timeout.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Platform: fmt::Debug + Send + Sync + 'static {
    /// Short backend name used in errors and spans, e.g. `"k8s"`.
    fn backend(&self) -> &'static str;

    /// What this backend supports.
    fn capabilities(&self) -> PlatformCapabilities;

    /// Workloads in `namespace`.
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`]/[`ErrorKind::Timeout`] when the platform does not answer;
    /// [`ErrorKind::PermissionDenied`] without list rights.
    async fn list_workloads(&self, namespace: &Namespace) -> Result<Vec<WorkloadRef>, OpsError>;

    /// Current state of `workload` and its instances.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when it does not exist; otherwise as [`Platform::list_workloads`].
    async fn workload(&self, workload: &WorkloadRef) -> Result<WorkloadStatus, OpsError>;

    /// Rolling restart; returns once the platform accepted it (see [`PlatformExt::wait_rolled_out`]).
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when rollouts are paused; [`ErrorKind::NotFound`].
    async fn rollout_restart(
        &self,
        workload: &WorkloadRef,
        opts: RestartOptions,
    ) -> Result<(), OpsError>;

    /// One reading of the rollout's progress.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; transport errors.
    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, OpsError>;

    /// Set the replica count; returns the change.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Unsupported`] for kinds that do not scale (DaemonSet).
    async fn scale(
        &self,
        workload: &WorkloadRef,
        replicas: u32,
        opts: ScaleOptions,
    ) -> Result<ScaleChange, OpsError>;

    /// Stop every instance (compose stop; Kubernetes scales to zero and remembers the count).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Unsupported`].
    async fn stop(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError>;

    /// Start a stopped workload.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Unsupported`].
    async fn start(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError>;

    /// Revisions the workload can roll back to, newest first.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] when the platform keeps no history.
    async fn revisions(&self, workload: &WorkloadRef) -> Result<Vec<Revision>, OpsError>;

    /// Roll back to the previous or a given revision.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when paused; [`ErrorKind::NotFound`] when there is no such
    /// revision; [`ErrorKind::Unsupported`] without history.
    async fn rollback(
        &self,
        workload: &WorkloadRef,
        opts: RollbackOptions,
    ) -> Result<RollbackChange, OpsError>;

    /// Delete one instance (the controller replaces it).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`].
    async fn delete_instance(
        &self,
        instance: &InstanceRef,
        opts: DeleteOptions,
    ) -> Result<(), OpsError>;

    /// Log lines of every instance (or one), merged in time order, filtered.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; transport errors.
    async fn logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<Vec<LogLine>, OpsError>;

    /// Follow logs as a stream until dropped. Not cancellation-safe mid-line: dropping the
    /// stream may lose a partial line.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] when the backend cannot follow.
    async fn follow_logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, OpsError>>, OpsError>;

    /// Recent platform events about the workload and its instances.
    ///
    /// # Errors
    /// Transport errors.
    async fn events(
        &self,
        workload: &WorkloadRef,
        opts: EventOptions,
    ) -> Result<Vec<PlatformEvent>, OpsError>;

    /// Run a command in an instance.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Timeout`] past `command.timeout`.
    async fn exec(
        &self,
        instance: &InstanceRef,
        command: &ExecCommand,
    ) -> Result<ExecOutput, OpsError>;

    /// Read a file out of an instance.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when the instance or path does not exist.
    async fn copy_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError>;

    /// Stream the regular file `path` out of an instance into `sink`, holding a bounded
    /// amount of it in memory (a backend that can stream reads it chunk by chunk; the default
    /// body reads it whole with [`Platform::copy_from`], then writes it). Returns the bytes
    /// written. The sink is written in order and neither flushed nor shut down: finish it
    /// (an [`crate::artifact::ArtifactWriter`] is finished with its `finish`). On an error
    /// the sink may hold part of the file: discard it. Reads only, so dry runs may call it.
    /// Not cancellation safe: dropping the future leaves the sink part-written.
    ///
    /// # Errors
    /// As [`Platform::copy_from`]: [`ErrorKind::NotFound`] when the instance or path does not
    /// exist, [`ErrorKind::InvalidInput`] for a directory, a link or an archive of several
    /// entries; [`ErrorKind::Backend`] when writing to `sink` fails.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use ops_core::Platform as _;
    /// use ops_core::testing::FakePlatform;
    /// let pod: ops_core::InstanceRef = "prod/statefulset/redis/redis-0".parse()?;
    /// let fake = FakePlatform::default().with_file(&pod, "/data/dump.rdb", b"REDIS0011");
    /// let mut sink = Vec::new();
    /// let n = fake.copy_from_into(&pod, "/data/dump.rdb", &mut sink).await?;
    /// assert_eq!((n, sink.as_slice()), (9, &b"REDIS0011"[..]));
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    async fn copy_from_into(
        &self,
        instance: &InstanceRef,
        path: &str,
        sink: &mut CopySink,
    ) -> Result<u64, OpsError> {
        let contents = self.copy_from(instance, path).await?;
        sink.write_all(&contents).await.map_err(|e| {
            OpsError::new(
                ErrorKind::Backend,
                self.backend(),
                "copy_from_into",
                format!("{instance}:{path}"),
            )
            .with_detail(format!("writing the copied file failed: {e}"))
        })?;
        Ok(contents.len() as u64)
    }

    /// Copy the directory `path` out of an instance as a tar archive whose members are named
    /// after the directory (`data/`, `data/a.bin`: what `tar cf - -C /var/lib data` writes),
    /// bounded by the backend's copy limit. Reads only.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when the instance or directory does not exist;
    /// [`ErrorKind::InvalidInput`] for a path that is not absolute, is `/` or holds `..`;
    /// [`ErrorKind::Backend`] for an archive over the limit or with a member outside the
    /// directory.
    async fn archive_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError>;

    /// Write a file into an instance.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; [`ErrorKind::PermissionDenied`].
    async fn copy_to(
        &self,
        instance: &InstanceRef,
        path: &str,
        contents: Vec<u8>,
    ) -> Result<(), OpsError>;

    /// CPU and memory use per instance.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] without a metrics source.
    async fn resource_usage(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>, OpsError>;

    /// Change configuration and (by default) roll it out.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; [`ErrorKind::InvalidInput`] for invalid keys.
    async fn update_config(
        &self,
        workload: &WorkloadRef,
        update: ConfigUpdate,
    ) -> Result<ConfigChange, OpsError>;

    /// The CPU / memory requests and limits of each container of `workload`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Unsupported`] when the backend cannot tell
    /// ([`PlatformCapabilities::resources`]).
    async fn resources(&self, workload: &WorkloadRef) -> Result<Vec<ContainerResources>, OpsError> {
        Err(OpsError::unsupported(
            self.backend(),
            "resources",
            workload.to_string(),
            "this backend does not read resource requests and limits",
        ))
    }

    /// Set requests and/or limits of the selected containers; returns them before and after.
    /// Kubernetes changes the pod template (a rollout); Compose updates the running
    /// containers (and [`ResourceChange::persist_in`] names where the value must also go).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty update or a request above its limit;
    /// [`ErrorKind::NotFound`] for an unknown workload or container; [`ErrorKind::Conflict`]
    /// when [`ResourceUpdate::expect`] no longer holds; [`ErrorKind::Unsupported`].
    async fn set_resources(
        &self,
        workload: &WorkloadRef,
        update: ResourceUpdate,
    ) -> Result<ResourceChange, OpsError> {
        let _ = update;
        Err(OpsError::unsupported(
            self.backend(),
            "set_resources",
            workload.to_string(),
            "this backend does not set resource requests and limits",
        ))
    }
    /// The horizontal autoscaler that targets `workload`, `None` when there is none.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown workload; [`ErrorKind::Unsupported`] where the
    /// platform has no autoscaling ([`PlatformCapabilities::autoscaling`]).
    async fn autoscaler(&self, workload: &WorkloadRef) -> Result<Option<Autoscaler>, OpsError> {
        Err(OpsError::unsupported(
            self.backend(),
            "autoscaler",
            workload.to_string(),
            "this platform has no horizontal autoscaling",
        ))
    }

    /// Create the autoscaler of `workload`, or update the one that targets it.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown workload; [`ErrorKind::Conflict`] when
    /// [`AutoscalerSpec::expect_min`] no longer holds; [`ErrorKind::Unsupported`] for kinds
    /// without replicas (DaemonSet) or platforms without autoscaling.
    async fn set_autoscaler(
        &self,
        workload: &WorkloadRef,
        spec: AutoscalerSpec,
    ) -> Result<AutoscalerChange, OpsError> {
        let _ = spec;
        Err(OpsError::unsupported(
            self.backend(),
            "set_autoscaler",
            workload.to_string(),
            "this platform has no horizontal autoscaling",
        ))
    }
    /// Run another image in one container of the workload (default: its only container)
    /// and start its rollout, recording `update`'s change cause where the platform keeps one
    /// (Kubernetes: `kubernetes.io/change-cause`, shown by `kubectl rollout history` and
    /// [`Revision::change_cause`]). Returns once the platform accepted the change; wait with
    /// [`PlatformExt::wait_rolled_out`]; [`Platform::rollback`] returns to the previous image.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown workload or container;
    /// [`ErrorKind::InvalidInput`] when no container is named and the workload has several;
    /// [`ErrorKind::Unsupported`] where the backend cannot set images
    /// ([`PlatformCapabilities::set_image`]); errors of the rollout's start (Compose: an
    /// image that cannot be found or pulled, before any container is touched).
    async fn set_image(
        &self,
        workload: &WorkloadRef,
        update: ImageUpdate,
    ) -> Result<ImageChange, OpsError> {
        let _ = update;
        Err(OpsError::unsupported(
            self.backend(),
            "set_image",
            workload.to_string(),
            "this platform cannot set images",
        ))
    }
    /// Isolate `scope` from the network (no traffic in or out) without deleting anything,
    /// recorded on the platform so [`Platform::lockdowns`] in a later process finds it.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when a chosen workload does not exist;
    /// [`ErrorKind::Conflict`] when a lockdown with the id exists; [`ErrorKind::Unsupported`]
    /// without [`PlatformCapabilities::lockdown`]. A failure part-way undoes what was done
    /// (or says in its detail what remains).
    async fn lockdown(
        &self,
        scope: &LockdownScope,
        opts: LockdownOptions,
    ) -> Result<Lockdown, OpsError> {
        let _ = opts;
        Err(unsupported(self.backend(), "lockdown", scope.namespace()))
    }

    /// The active lockdowns of `namespace`, read from the platform itself.
    ///
    /// # Errors
    /// Transport errors; [`ErrorKind::Unsupported`] without [`PlatformCapabilities::lockdown`].
    async fn lockdowns(&self, namespace: &Namespace) -> Result<Vec<Lockdown>, OpsError> {
        Err(unsupported(self.backend(), "lockdowns", namespace))
    }

    /// Undo lockdown `id` of `namespace`: remove only what the lockdown added and put back
    /// what it changed. Returns the lockdown as it was.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when no such lockdown is active; [`ErrorKind::Unsupported`].
    async fn lift_lockdown(
        &self,
        namespace: &Namespace,
        id: &LockdownId,
    ) -> Result<Lockdown, OpsError> {
        let _ = id;
        Err(unsupported(self.backend(), "lift_lockdown", namespace))
    }
    /// Export `namespace`'s objects for the record: secrets as key names only, server-managed
    /// fields dropped. Read-only.
    ///
    /// # Errors
    /// Transport errors; [`ErrorKind::Unsupported`] without [`PlatformCapabilities::export`].
    async fn export(
        &self,
        namespace: &Namespace,
        opts: ExportOptions,
    ) -> Result<NamespaceExport, OpsError> {
        let _ = opts;
        Err(unsupported(self.backend(), "export", namespace))
    }
    /// The namespace (Compose: the project) beyond its workloads: services and their
    /// endpoints, nodes, quotas, network policies, events newest last and disk space. Read
    /// only. Each part the backend lacks is [`Section::Unsupported`]; a part it could not
    /// read (no rights to list nodes) is [`Section::Unreadable`] and the others are still
    /// read.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] when the backend cannot inspect at all
    /// ([`PlatformCapabilities::inspect`]).
    async fn inspect(
        &self,
        namespace: &Namespace,
        opts: InspectOptions,
    ) -> Result<Inspection, OpsError> {
        let _ = opts;
        Err(OpsError::new(
            ErrorKind::Unsupported,
            self.backend(),
            "inspect",
            namespace.to_string(),
        ))
    }
    /// Workloads in `namespace` whose instances use the Secret `name` (env `secretKeyRef`,
    /// `envFrom`, secret volumes). Read only.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`] without [`PlatformCapabilities::secret_versions`].
    async fn secret_users(
        &self,
        namespace: &Namespace,
        name: &ResourceName,
    ) -> Result<Vec<WorkloadRef>, OpsError> {
        let _ = name;
        Err(OpsError::new(
            ErrorKind::Unsupported,
            self.backend(),
            "secret_users",
            namespace.to_string(),
        ))
    }

    /// Create the Secret `copy.to` holding every key of `copy.from`, with `copy.set`'s values
    /// replacing (or adding) some. The old Secret is not touched.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] without `copy.from`; [`ErrorKind::Conflict`] when `copy.to`
    /// exists; [`ErrorKind::InvalidInput`] for a key the platform refuses;
    /// [`ErrorKind::Unsupported`].
    async fn copy_secret(
        &self,
        namespace: &Namespace,
        copy: SecretCopy,
    ) -> Result<SecretCreated, OpsError> {
        let _ = copy;
        Err(OpsError::new(
            ErrorKind::Unsupported,
            self.backend(),
            "copy_secret",
            namespace.to_string(),
        ))
    }

    /// Point every reference of `workload` to the Secret `from` at `to` (a change of its
    /// instances' template: it rolls out). No reference: nothing changes, `references` 0.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Conflict`] when the workload changed meanwhile;
    /// [`ErrorKind::Unsupported`].
    async fn repoint_secret(
        &self,
        workload: &WorkloadRef,
        from: &ResourceName,
        to: &ResourceName,
    ) -> Result<SecretRepoint, OpsError> {
        let _ = (from, to);
        Err(OpsError::new(
            ErrorKind::Unsupported,
            self.backend(),
            "repoint_secret",
            workload.to_string(),
        ))
    }

    /// Delete the Secret `name`; refused while a workload still uses it.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] while in use; [`ErrorKind::NotFound`];
    /// [`ErrorKind::Unsupported`].
    async fn delete_secret(
        &self,
        namespace: &Namespace,
        name: &ResourceName,
    ) -> Result<(), OpsError> {
        let _ = name;
        Err(OpsError::new(
            ErrorKind::Unsupported,
            self.backend(),
            "delete_secret",
            namespace.to_string(),
        ))
    }
}

/// The error of a default trait method a backend does not implement.
fn unsupported(backend: &'static str, operation: &'static str, target: &Namespace) -> OpsError {
    OpsError::new(
        ErrorKind::Unsupported,
        backend,
        operation,
        target.to_string(),
    )
    .with_detail("this platform cannot do it")
}

/// Conveniences built on [`Platform`]; nobody implements this by hand.
#[async_trait]
pub trait PlatformExt: Platform {
    /// Poll [`Platform::rollout_status`] until done, failed or past `opts.timeout`.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] past the deadline; [`ErrorKind::Backend`] when the platform gave
    /// up (`ProgressDeadlineExceeded`); errors of `rollout_status`.
    async fn wait_rolled_out(
        &self,
        workload: &WorkloadRef,
        opts: RolloutOptions,
    ) -> Result<RolloutStatus, OpsError> {
        let deadline = tokio::time::Instant::now() + opts.timeout;
        loop {
            let status = self.rollout_status(workload).await?;
            if let Some(progress) = &opts.progress {
                progress(&status);
            }
            if status.done {
                return Ok(status);
            }
            if status.failed {
                return Err(OpsError::new(
                    ErrorKind::Backend,
                    self.backend(),
                    "wait_rolled_out",
                    workload.to_string(),
                )
                .with_detail(status.message));
            }
            if tokio::time::Instant::now() + opts.poll_interval > deadline {
                return Err(OpsError::new(
                    ErrorKind::Timeout,
                    self.backend(),
                    "wait_rolled_out",
                    workload.to_string(),
                )
                .with_detail(format!(
                    "not rolled out after {:?}: {}",
                    opts.timeout, status.message
                )));
            }
            tokio::time::sleep(opts.poll_interval).await;
        }
    }

    /// The previous revision, if the platform keeps one.
    ///
    /// # Errors
    /// As [`Platform::revisions`], except that `Unsupported` gives `Ok(None)`.
    async fn previous_revision(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Option<Revision>, OpsError> {
        match self.revisions(workload).await {
            Ok(revisions) => Ok(revisions.into_iter().find(|r| !r.current)),
            Err(e) if e.kind() == ErrorKind::Unsupported => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<T: Platform + ?Sized> PlatformExt for T {}

macro_rules! forward_platform {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: Platform + ?Sized> Platform for $ptr<T> {
            fn backend(&self) -> &'static str { (**self).backend() }
            fn capabilities(&self) -> PlatformCapabilities { (**self).capabilities() }
            async fn list_workloads(&self, namespace: &Namespace) -> Result<Vec<WorkloadRef>, OpsError> { (**self).list_workloads(namespace).await }
            async fn workload(&self, workload: &WorkloadRef) -> Result<WorkloadStatus, OpsError> { (**self).workload(workload).await }
            async fn rollout_restart(&self, workload: &WorkloadRef, opts: RestartOptions) -> Result<(), OpsError> { (**self).rollout_restart(workload, opts).await }
            async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, OpsError> { (**self).rollout_status(workload).await }
            async fn scale(&self, workload: &WorkloadRef, replicas: u32, opts: ScaleOptions) -> Result<ScaleChange, OpsError> { (**self).scale(workload, replicas, opts).await }
            async fn stop(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> { (**self).stop(workload, opts).await }
            async fn start(&self, workload: &WorkloadRef, opts: StopOptions) -> Result<(), OpsError> { (**self).start(workload, opts).await }
            async fn revisions(&self, workload: &WorkloadRef) -> Result<Vec<Revision>, OpsError> { (**self).revisions(workload).await }
            async fn rollback(&self, workload: &WorkloadRef, opts: RollbackOptions) -> Result<RollbackChange, OpsError> { (**self).rollback(workload, opts).await }
            async fn delete_instance(&self, instance: &InstanceRef, opts: DeleteOptions) -> Result<(), OpsError> { (**self).delete_instance(instance, opts).await }
            async fn logs(&self, workload: &WorkloadRef, opts: LogOptions) -> Result<Vec<LogLine>, OpsError> { (**self).logs(workload, opts).await }
            async fn follow_logs(&self, workload: &WorkloadRef, opts: LogOptions) -> Result<BoxStream<'static, Result<LogLine, OpsError>>, OpsError> { (**self).follow_logs(workload, opts).await }
            async fn events(&self, workload: &WorkloadRef, opts: EventOptions) -> Result<Vec<PlatformEvent>, OpsError> { (**self).events(workload, opts).await }
            async fn exec(&self, instance: &InstanceRef, command: &ExecCommand) -> Result<ExecOutput, OpsError> { (**self).exec(instance, command).await }
            async fn copy_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> { (**self).copy_from(instance, path).await }
            async fn copy_from_into(&self, instance: &InstanceRef, path: &str, sink: &mut CopySink) -> Result<u64, OpsError> { (**self).copy_from_into(instance, path, sink).await }
            async fn archive_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> { (**self).archive_from(instance, path).await }
            async fn copy_to(&self, instance: &InstanceRef, path: &str, contents: Vec<u8>) -> Result<(), OpsError> { (**self).copy_to(instance, path, contents).await }
            async fn resource_usage(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>, OpsError> { (**self).resource_usage(workload).await }
            async fn update_config(&self, workload: &WorkloadRef, update: ConfigUpdate) -> Result<ConfigChange, OpsError> { (**self).update_config(workload, update).await }
            async fn resources(&self, workload: &WorkloadRef) -> Result<Vec<ContainerResources>, OpsError> { (**self).resources(workload).await }
            async fn set_resources(&self, workload: &WorkloadRef, update: ResourceUpdate) -> Result<ResourceChange, OpsError> { (**self).set_resources(workload, update).await }
            async fn autoscaler(&self, workload: &WorkloadRef) -> Result<Option<Autoscaler>, OpsError> { (**self).autoscaler(workload).await }
            async fn set_autoscaler(&self, workload: &WorkloadRef, spec: AutoscalerSpec) -> Result<AutoscalerChange, OpsError> { (**self).set_autoscaler(workload, spec).await }
            async fn set_image(&self, workload: &WorkloadRef, update: ImageUpdate) -> Result<ImageChange, OpsError> { (**self).set_image(workload, update).await }
            async fn lockdown(&self, scope: &LockdownScope, opts: LockdownOptions) -> Result<Lockdown, OpsError> { (**self).lockdown(scope, opts).await }
            async fn lockdowns(&self, namespace: &Namespace) -> Result<Vec<Lockdown>, OpsError> { (**self).lockdowns(namespace).await }
            async fn lift_lockdown(&self, namespace: &Namespace, id: &LockdownId) -> Result<Lockdown, OpsError> { (**self).lift_lockdown(namespace, id).await }
            async fn export(&self, namespace: &Namespace, opts: ExportOptions) -> Result<NamespaceExport, OpsError> { (**self).export(namespace, opts).await }
            async fn inspect(&self, namespace: &Namespace, opts: InspectOptions) -> Result<Inspection, OpsError> { (**self).inspect(namespace, opts).await }
            async fn secret_users(&self, namespace: &Namespace, name: &ResourceName) -> Result<Vec<WorkloadRef>, OpsError> { (**self).secret_users(namespace, name).await }
            async fn copy_secret(&self, namespace: &Namespace, copy: SecretCopy) -> Result<SecretCreated, OpsError> { (**self).copy_secret(namespace, copy).await }
            async fn repoint_secret(&self, workload: &WorkloadRef, from: &ResourceName, to: &ResourceName) -> Result<SecretRepoint, OpsError> { (**self).repoint_secret(workload, from, to).await }
            async fn delete_secret(&self, namespace: &Namespace, name: &ResourceName) -> Result<(), OpsError> { (**self).delete_secret(namespace, name).await }
        }
    )*};
}
forward_platform!(Arc, Box);

// The types of this section.
mod release;
pub use release::*;
