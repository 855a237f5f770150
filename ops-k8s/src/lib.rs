//! # ops-k8s
//!
//! [`KubePlatform`]: the opsbook [`Platform`](ops_core::Platform) for Kubernetes
//! Deployments, StatefulSets and DaemonSets, with kubectl's semantics rather than kube-rs's
//! helpers:
//!
//! - **rollout restart** writes kubectl's `kubectl.kubernetes.io/restartedAt` pod template
//!   annotation in a strategic merge patch, refuses a paused Deployment with kubectl's words
//!   and a same-second repeat with a typed error; [`KubePlatform::restart_namespace`] restarts
//!   every Deployment of a namespace with bounded concurrency;
//! - **rollout status** follows kubectl's status viewers per kind (observed generation,
//!   updated / available counts, `ProgressDeadlineExceeded`, StatefulSet partitions, DaemonSet
//!   scheduling; `OnDelete` refused);
//! - **rollout undo** picks the revision from the `ReplicaSets` (`ControllerRevisions` for
//!   StatefulSets and DaemonSets), skips when already there, refuses a paused Deployment and
//!   sends kubectl's patch;
//! - **scale** goes through the `scale` subresource with a resourceVersion precondition and
//!   refuses to fight a `HorizontalPodAutoscaler`; stop / start remember the count on the object;
//! - **logs** of every pod and container, merged in time order; followed across pods that
//!   appear; **events** of the workload, its `ReplicaSets` and pods; **resource usage** from
//!   `metrics.k8s.io` against each pod's limits; **configuration** (ConfigMap, Secret, env);
//! - **exec** in a pod over the pod exec WebSocket (`v5.channel.k8s.io`, else `v4`): an argv,
//!   never a shell string, in [`ExecCommand::container`](ops_core::platform::ExecCommand) or the
//!   pod's only container; stdout and stderr apart; the exit code from the status channel; the
//!   whole exec under `ExecCommand::timeout` (else the request deadline) and each stream bounded
//!   by [`KubeConfig::exec_output_limit`]. A 403 names `create pods/exec`;
//! - **copy** of one regular file out of a pod (`tar cf - PATH` over exec, as `kubectl cp` runs
//!   it; links, directories and unexpected members are refused) or into one (a one-file
//!   archive to `tar xmf - -C DIR`); paths are absolute without `.` or `..`.
//!
//! Exec and copy reach only pods the workload controls (its `ReplicaSets`' pods for a
//! Deployment): an [`InstanceRef`](ops_core::InstanceRef) naming another pod is `NotFound`
//! before anything runs.
//!
//! Every request has a deadline; 409s are retried after a fresh read, 429 / 5xx with backoff
//! where a retry cannot apply a change twice; 403 becomes `PermissionDenied` naming the verb,
//! resource and namespace to grant.
//!
//! The crate installs no TLS crypto provider: kube builds its rustls configuration from the
//! process default, which the workspace's single provider (ring) supplies.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ops_core::OpsError> {
//! use ops_core::{Platform, PlatformExt, WorkloadKind, WorkloadRef};
//! use ops_core::platform::{RestartOptions, RolloutOptions};
//! let k8s = ops_k8s::KubePlatformBuilder::from_env().context("prod").build().await?;
//! let api = WorkloadRef::new("shop", WorkloadKind::Deployment, "api")?;
//! let status = k8s.workload(&api).await?;
//! println!("{}/{} ready", status.ready, status.desired);
//! k8s.rollout_restart(&api, RestartOptions::default()).await?;
//! k8s.wait_rolled_out(&api, RolloutOptions::default()).await?;
//! # Ok(()) }
//! ```
//!
//! Exec and copy:
//!
//! ```no_run
//! # async fn demo(k8s: &ops_k8s::KubePlatform) -> Result<(), ops_core::OpsError> {
//! use ops_core::platform::ExecCommand;
//! use ops_core::{InstanceRef, Platform};
//! let pod: InstanceRef = "shop/deployment/api/api-7f9c-x2".parse()?;
//! let out = k8s.exec(&pod, &ExecCommand::new(["cat", "/etc/app.conf"])?).await?;
//! assert!(out.success());
//! let config = k8s.copy_from(&pod, "/etc/app.conf").await?;
//! k8s.copy_to(&pod, "/tmp/app.conf.bak", config).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod autoscaling;
mod config;
mod config_update;
mod copy;
mod discovery;
mod error;
mod events;
mod exec;
mod export;
mod inspect;
mod lockdown;
mod logs;
mod platform;
mod release;
mod resources;
mod restart;
mod rollback;
mod scale;
mod secrets;
mod status;
mod usage;
mod workload;

pub use config::{KubeConfig, KubePlatformBuilder};
pub use error::{Error, Request, Result};
pub use export::{REDACTED_KEYS, strip_server_fields};
pub use lockdown::{LOCKDOWN_LABEL, LOCKDOWN_WORKLOAD, MANAGED_BY};
pub use platform::KubePlatform;
pub use restart::{NamespaceRestart, RESTARTED_AT};
pub use rollback::CHANGE_CAUSE;
pub use scale::STOPPED_REPLICAS;
pub use secrets::ROTATED_FROM;
pub use usage::{QuantityError, parse_quantity};
