//! Runbook procedures: typed, tested versions of the seed runbooks.
//!
//! Each runbook is `pub async fn name(ctx: &RunContext, targets: &Targets) -> Result<Report, RunFailure>`:
//! read-only diagnosis (in parallel where independent), a decision from the evidence,
//! remediation through the approval gate, verification, notification, and a [`Report`]. A
//! runbook that fails returns a [`RunFailure`] holding the report of what it did up to then.
//!
//! [`Report`]: crate::run::Report
//! [`RunFailure`]: crate::run::RunFailure

mod api_down;
mod cache;
mod checks;
mod config;
mod database;
mod directory_backup;
mod limits;
mod on_demand;
mod recovery;
mod restart;
mod targets;
mod traffic;
mod verify;
pub use limits::{MemoryStep, OomLimits};
mod autoscale;
mod release;
pub use release::{MaintenancePlan, deploy_release, deployment_failure, planned_maintenance};
mod lockdown;
pub use lockdown::{LockdownPlan, emergency_lockdown, lift_lockdown};
mod evidence;
pub use evidence::evidence_capture;
mod inspection;
pub use inspection::InspectionLimits;
mod auth;
mod secrets;
pub use crate::names::EnvKey;
pub use auth::{AuthChecks, auth_failures};
mod provider;
pub use provider::{
    CredentialSource, Fallback, ProviderChecks, ProviderSpec, ProviderState, SecretFrom,
    provider_failure,
};

pub use api_down::api_down;
pub use cache::{cache_failure, session_invalidation};
pub use checks::morning_checks;
pub use config::{certificate_expiry, network_connectivity, secret_rotation};
pub use database::{database_full, database_recovery, db_connections, db_maintenance};
pub use directory_backup::directory_backup;
pub use on_demand::{cache_backup, cache_purge, database_backup};
pub use recovery::{RecoveryOrder, complete_service_recovery};
pub use restart::restart_and_verify;
pub use targets::{CacheLimits, DbLimits, RecoveryPlan, RunbookConfig, SecretRotation, Targets};
pub use traffic::{high_error_rate, high_latency, oom};
