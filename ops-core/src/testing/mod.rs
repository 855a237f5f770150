//! In-memory fakes of every trait, for testing runbooks, and the conformance suite that real
//! backends run so fakes and backends cannot drift apart.
//!
//! Each fake is deterministic, `Default`, seeded builder-style, keeps a mutation log (what a
//! dry run must leave empty) and supports failure injection with `fail_next(op, kind)`, where
//! `op` is the trait method's name.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use ops_core::platform::WorkloadStatus;
//! use ops_core::testing::FakePlatform;
//! use ops_core::{ErrorKind, Platform, WorkloadRef};
//! let api: WorkloadRef = "prod/deployment/api".parse()?;
//! let platform = FakePlatform::default()
//!     .with_workload(WorkloadStatus::crash_looping(api.clone(), 3))
//!     .ready_after(2)
//!     .fail_next("rollout_restart", ErrorKind::Unavailable);
//! assert!(platform.rollout_restart(&api, Default::default()).await.is_err());
//! platform.rollout_restart(&api, Default::default()).await?;
//! assert_eq!(platform.mutations(), ["rollout_restart prod/deployment/api"]);
//! # Ok::<(), ops_core::OpsError>(()) }).unwrap();
//! ```

mod cache;
pub mod conformance;
mod database;
mod database_dumps;
mod faults;
mod hostile;
mod metrics;
mod notifier;
mod platform;
mod probe;

pub use cache::FakeCache;
pub use database::FakeDatabase;
pub use faults::Faults;
pub use hostile::{MESSAGE_MAX, assert_safe_error, assert_safe_message};
pub use metrics::FakeMetrics;
pub use notifier::RecordingNotifier;

/// Assert that `report` ended with `outcome`, showing the whole report when it did not.
///
/// # Panics
/// When the outcome differs.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{Mode, RunOutcome};
/// use ops_core::runbooks::{oom, Targets};
/// use ops_core::testing::{approving_context, assert_outcome, FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let t = Targets::new(Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1))), api)
///     .with_probe(Arc::new(ScriptedProbe::new("api")));
/// assert_outcome(&oom(&approving_context(Mode::DryRun), &t).await?, RunOutcome::Healthy);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[track_caller]
pub fn assert_outcome(report: &crate::run::Report, outcome: crate::run::RunOutcome) {
    assert_eq!(report.outcome, outcome, "{}", report.to_markdown());
}

/// Whether one of `action`'s planned or made changes contains every one of `parts`.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::Mode;
/// use ops_core::runbooks::{oom, Targets};
/// use ops_core::testing::{approving_context, has_change, FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let fake = FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1)).oom_killed_at_limit(&api);
/// let t = Targets::new(Arc::new(fake), api).with_probe(Arc::new(ScriptedProbe::new("api")));
/// let report = oom(&approving_context(Mode::DryRun), &t).await?;
/// assert!(has_change(&report.actions[0], &["replace instance", "api-0"]));
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
pub fn has_change(action: &crate::run::Action, parts: &[&str]) -> bool {
    action
        .changes
        .iter()
        .any(|c| parts.iter().all(|p| c.contains(p)))
}

/// A run context for tests in `mode` that approves every step (`ApprovalPolicy::approve_all`)
/// and journals into memory (volatile, allowed).
///
/// # Examples
/// ```
/// use ops_core::run::Mode;
/// let ctx = ops_core::testing::approving_context(Mode::Execute);
/// assert_eq!(ctx.mode(), Mode::Execute);
/// ```
pub fn approving_context(mode: crate::run::Mode) -> crate::run::RunContext {
    crate::run::RunContext::builder()
        .allow_volatile_journal()
        .mode(mode)
        .approver(crate::run::ApprovalPolicy::approve_all("test"))
        .build()
}
pub use platform::{FakePlatform, Healing, ImageFault};
pub use probe::ScriptedProbe;
mod provider;
pub use provider::ScriptedProviderCheck;

pub use crate::journal::MemoryJournal;
