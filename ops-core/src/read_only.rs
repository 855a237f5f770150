//! [`ReadOnly`]: a view of a platform, database or cache whose every mutating method fails.
//!
//! In [`crate::run::Mode::DryRun`] a runbook sees its targets only through these views
//! ([`crate::runbooks::Targets::for_mode`]), so a dry run cannot change anything even if a
//! runbook calls a mutating method outside [`crate::run::Run::act`]: the call fails loudly
//! with [`ErrorKind::PermissionDenied`] and never reaches the backend.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::cache::{
    Cache, CacheCapabilities, CacheInfo, ClientFilter, ClientInfo, FlushScope, KeyCount,
    PurgeOptions, PurgeOutcome, SlowlogEntry, SnapshotOutcome,
};
use crate::database::{
    BackupInfo, BackupOptions, BlockedQuery, ConnectionStats, Database, DatabaseCapabilities,
    DatabaseSize, IndexUsage, Maintenance, MaintenanceOutcome, Ping, ReplicaLag, RestoreOptions,
    RestoreOutcome, RowRetention, RowsDeleted, ServerInfo, Session, SessionFilter, SettingChange,
    SlowQuery, SlowQueryOptions, TableSize,
};
use crate::error::{ErrorKind, OpsError};
use crate::platform::{
    ConfigChange, ConfigUpdate, DeleteOptions, EventOptions, ExecCommand, ExecOutput,
    ExportOptions, Lockdown, LockdownId, LockdownOptions, LockdownScope, LogLine, LogOptions,
    NamespaceExport, Platform, PlatformCapabilities, PlatformEvent, ResourceUsage, RestartOptions,
    Revision, RollbackChange, RollbackOptions, RolloutStatus, ScaleChange, ScaleOptions,
    StopOptions, WorkloadStatus,
};
use crate::refs::{InstanceRef, KeyPattern, Namespace, Pid, TableRef, WorkloadRef};

/// A read-only view of `T`: reads pass through, every mutating method fails with
/// [`ErrorKind::PermissionDenied`] ("dry run") without reaching `T`.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::read_only::ReadOnly;
/// use ops_core::platform::{Platform, RestartOptions, WorkloadStatus};
/// use ops_core::testing::FakePlatform;
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let fake = std::sync::Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 2)));
/// let view = ReadOnly::new(std::sync::Arc::clone(&fake));
/// assert_eq!(view.workload(&api).await?.ready, 2);
/// let err = view.rollout_restart(&api, RestartOptions::default()).await.unwrap_err();
/// assert_eq!(err.kind(), ops_core::ErrorKind::PermissionDenied);
/// assert!(fake.mutations().is_empty());
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ReadOnly<T>(T);

impl<T> ReadOnly<T> {
    /// A read-only view of `inner`.
    pub fn new(inner: T) -> Self {
        Self(inner)
    }
}

/// The error of a mutation attempted through a [`ReadOnly`] view.
fn refused(backend: &'static str, operation: &'static str, target: impl Into<String>) -> OpsError {
    let err = OpsError::new(ErrorKind::PermissionDenied, backend, operation, target)
        .with_detail("dry run: this view is read-only, nothing was changed");
    tracing::error!(backend, operation, "a dry run attempted a change; refused");
    err
}

#[async_trait]
impl<T: Platform + ?Sized, P: std::ops::Deref<Target = T> + Send + Sync + std::fmt::Debug + 'static>
    Platform for ReadOnly<P>
{
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    fn capabilities(&self) -> PlatformCapabilities {
        self.0.capabilities()
    }
    async fn list_workloads(&self, namespace: &Namespace) -> Result<Vec<WorkloadRef>, OpsError> {
        self.0.list_workloads(namespace).await
    }
    async fn workload(&self, workload: &WorkloadRef) -> Result<WorkloadStatus, OpsError> {
        self.0.workload(workload).await
    }
    async fn rollout_restart(
        &self,
        workload: &WorkloadRef,
        _: RestartOptions,
    ) -> Result<(), OpsError> {
        Err(refused(
            self.0.backend(),
            "rollout_restart",
            workload.to_string(),
        ))
    }
    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, OpsError> {
        self.0.rollout_status(workload).await
    }
    async fn scale(
        &self,
        workload: &WorkloadRef,
        _: u32,
        _: ScaleOptions,
    ) -> Result<ScaleChange, OpsError> {
        Err(refused(self.0.backend(), "scale", workload.to_string()))
    }
    async fn stop(&self, workload: &WorkloadRef, _: StopOptions) -> Result<(), OpsError> {
        Err(refused(self.0.backend(), "stop", workload.to_string()))
    }
    async fn start(&self, workload: &WorkloadRef, _: StopOptions) -> Result<(), OpsError> {
        Err(refused(self.0.backend(), "start", workload.to_string()))
    }
    async fn revisions(&self, workload: &WorkloadRef) -> Result<Vec<Revision>, OpsError> {
        self.0.revisions(workload).await
    }
    async fn rollback(
        &self,
        workload: &WorkloadRef,
        _: RollbackOptions,
    ) -> Result<RollbackChange, OpsError> {
        Err(refused(self.0.backend(), "rollback", workload.to_string()))
    }
    async fn delete_instance(
        &self,
        instance: &InstanceRef,
        _: DeleteOptions,
    ) -> Result<(), OpsError> {
        Err(refused(
            self.0.backend(),
            "delete_instance",
            instance.to_string(),
        ))
    }
    async fn logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<Vec<LogLine>, OpsError> {
        self.0.logs(workload, opts).await
    }
    async fn follow_logs(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, OpsError>>, OpsError> {
        self.0.follow_logs(workload, opts).await
    }
    async fn events(
        &self,
        workload: &WorkloadRef,
        opts: EventOptions,
    ) -> Result<Vec<PlatformEvent>, OpsError> {
        self.0.events(workload, opts).await
    }
    /// Refused: a command in a container may change anything.
    async fn exec(&self, instance: &InstanceRef, _: &ExecCommand) -> Result<ExecOutput, OpsError> {
        Err(refused(self.0.backend(), "exec", instance.to_string()))
    }
    async fn copy_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> {
        self.0.copy_from(instance, path).await
    }
    async fn copy_from_into(
        &self,
        instance: &InstanceRef,
        path: &str,
        sink: &mut crate::platform::CopySink,
    ) -> Result<u64, OpsError> {
        self.0.copy_from_into(instance, path, sink).await
    }
    async fn archive_from(&self, instance: &InstanceRef, path: &str) -> Result<Vec<u8>, OpsError> {
        self.0.archive_from(instance, path).await
    }
    async fn copy_to(&self, instance: &InstanceRef, _: &str, _: Vec<u8>) -> Result<(), OpsError> {
        Err(refused(self.0.backend(), "copy_to", instance.to_string()))
    }
    async fn resource_usage(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>, OpsError> {
        self.0.resource_usage(workload).await
    }
    async fn update_config(
        &self,
        workload: &WorkloadRef,
        _: ConfigUpdate,
    ) -> Result<ConfigChange, OpsError> {
        Err(refused(
            self.0.backend(),
            "update_config",
            workload.to_string(),
        ))
    }
    async fn set_image(
        &self,
        workload: &WorkloadRef,
        _: crate::platform::ImageUpdate,
    ) -> Result<crate::platform::ImageChange, OpsError> {
        Err(refused(self.0.backend(), "set_image", workload.to_string()))
    }
    async fn lockdown(
        &self,
        scope: &LockdownScope,
        _: LockdownOptions,
    ) -> Result<Lockdown, OpsError> {
        Err(refused(self.0.backend(), "lockdown", scope.to_string()))
    }
    async fn lockdowns(&self, namespace: &Namespace) -> Result<Vec<Lockdown>, OpsError> {
        self.0.lockdowns(namespace).await
    }
    async fn lift_lockdown(
        &self,
        namespace: &Namespace,
        id: &LockdownId,
    ) -> Result<Lockdown, OpsError> {
        Err(refused(
            self.0.backend(),
            "lift_lockdown",
            format!("{namespace}/{id}"),
        ))
    }
    async fn export(
        &self,
        namespace: &Namespace,
        opts: ExportOptions,
    ) -> Result<NamespaceExport, OpsError> {
        self.0.export(namespace, opts).await
    }
    // A read, passed through.
    async fn inspect(
        &self,
        namespace: &Namespace,
        opts: crate::platform::InspectOptions,
    ) -> Result<crate::platform::Inspection, OpsError> {
        self.0.inspect(namespace, opts).await
    }
    // The read passes, the changes are refused.
    async fn secret_users(
        &self,
        namespace: &Namespace,
        name: &crate::refs::ResourceName,
    ) -> Result<Vec<WorkloadRef>, OpsError> {
        self.0.secret_users(namespace, name).await
    }
    async fn copy_secret(
        &self,
        namespace: &Namespace,
        _: crate::platform::SecretCopy,
    ) -> Result<crate::platform::SecretCreated, OpsError> {
        Err(refused(
            self.0.backend(),
            "copy_secret",
            namespace.to_string(),
        ))
    }
    async fn repoint_secret(
        &self,
        workload: &WorkloadRef,
        _: &crate::refs::ResourceName,
        _: &crate::refs::ResourceName,
    ) -> Result<crate::platform::SecretRepoint, OpsError> {
        Err(refused(
            self.0.backend(),
            "repoint_secret",
            workload.to_string(),
        ))
    }
    async fn delete_secret(
        &self,
        namespace: &Namespace,
        _: &crate::refs::ResourceName,
    ) -> Result<(), OpsError> {
        Err(refused(
            self.0.backend(),
            "delete_secret",
            namespace.to_string(),
        ))
    }
    async fn resources(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Vec<crate::platform::ContainerResources>, OpsError> {
        self.0.resources(workload).await
    }
    async fn set_resources(
        &self,
        workload: &WorkloadRef,
        _: crate::platform::ResourceUpdate,
    ) -> Result<crate::platform::ResourceChange, OpsError> {
        Err(refused(
            self.0.backend(),
            "set_resources",
            workload.to_string(),
        ))
    }
    async fn autoscaler(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Option<crate::platform::Autoscaler>, OpsError> {
        self.0.autoscaler(workload).await
    }
    async fn set_autoscaler(
        &self,
        workload: &WorkloadRef,
        _: crate::platform::AutoscalerSpec,
    ) -> Result<crate::platform::AutoscalerChange, OpsError> {
        Err(refused(
            self.0.backend(),
            "set_autoscaler",
            workload.to_string(),
        ))
    }
}

#[async_trait]
impl<T: Database + ?Sized, P: std::ops::Deref<Target = T> + Send + Sync + std::fmt::Debug + 'static>
    Database for ReadOnly<P>
{
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    fn capabilities(&self) -> DatabaseCapabilities {
        self.0.capabilities()
    }
    async fn ping(&self) -> Result<Ping, OpsError> {
        self.0.ping().await
    }
    async fn server_info(&self) -> Result<ServerInfo, OpsError> {
        self.0.server_info().await
    }
    async fn connection_stats(&self) -> Result<ConnectionStats, OpsError> {
        self.0.connection_stats().await
    }
    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, OpsError> {
        self.0.sessions(filter).await
    }
    async fn terminate(&self, _: &[Pid], _: &SessionFilter) -> Result<Vec<Session>, OpsError> {
        Err(refused(self.0.backend(), "terminate", "sessions"))
    }
    async fn cancel(&self, pid: Pid) -> Result<bool, OpsError> {
        Err(refused(self.0.backend(), "cancel", pid.to_string()))
    }
    async fn long_running(&self, min: Duration) -> Result<Vec<Session>, OpsError> {
        self.0.long_running(min).await
    }
    async fn blocked(&self) -> Result<Vec<BlockedQuery>, OpsError> {
        self.0.blocked().await
    }
    async fn slow_queries(&self, opts: SlowQueryOptions) -> Result<Vec<SlowQuery>, OpsError> {
        self.0.slow_queries(opts).await
    }
    async fn database_sizes(&self) -> Result<Vec<DatabaseSize>, OpsError> {
        self.0.database_sizes().await
    }
    async fn table_sizes(&self, limit: u32) -> Result<Vec<TableSize>, OpsError> {
        self.0.table_sizes(limit).await
    }
    async fn index_usage(&self) -> Result<Vec<IndexUsage>, OpsError> {
        self.0.index_usage().await
    }
    async fn maintain(
        &self,
        _: Maintenance,
        table: Option<TableRef>,
    ) -> Result<MaintenanceOutcome, OpsError> {
        let target = table.map_or_else(|| "database".to_owned(), |t| t.to_string());
        Err(refused(self.0.backend(), "maintain", target))
    }
    async fn setting(&self, name: &str) -> Result<String, OpsError> {
        self.0.setting(name).await
    }
    async fn set_setting(&self, _: &str, _: &str) -> Result<SettingChange, OpsError> {
        Err(refused(self.0.backend(), "set_setting", "settings"))
    }
    async fn count_older_than(&self, retention: &RowRetention) -> Result<u64, OpsError> {
        self.0.count_older_than(retention).await
    }
    async fn delete_older_than(&self, retention: &RowRetention) -> Result<RowsDeleted, OpsError> {
        Err(refused(
            self.0.backend(),
            "delete_older_than",
            retention.table.to_string(),
        ))
    }
    async fn replication(&self) -> Result<Vec<ReplicaLag>, OpsError> {
        self.0.replication().await
    }
    /// Refused: a backup loads the server and writes files.
    async fn backup(&self, opts: &BackupOptions) -> Result<BackupInfo, OpsError> {
        Err(refused(
            self.0.backend(),
            "backup",
            opts.database.to_string(),
        ))
    }
    async fn verify_backup(&self, path: &Path) -> Result<BackupInfo, OpsError> {
        self.0.verify_backup(path).await
    }
    async fn list_backups(&self, dir: &Path) -> Result<Vec<BackupInfo>, OpsError> {
        self.0.list_backups(dir).await
    }
    async fn restore(&self, opts: &RestoreOptions) -> Result<RestoreOutcome, OpsError> {
        Err(refused(self.0.backend(), "restore", opts.into.to_string()))
    }
}

#[async_trait]
impl<T: Cache + ?Sized, P: std::ops::Deref<Target = T> + Send + Sync + std::fmt::Debug + 'static>
    Cache for ReadOnly<P>
{
    fn backend(&self) -> &'static str {
        self.0.backend()
    }
    fn capabilities(&self) -> CacheCapabilities {
        self.0.capabilities()
    }
    async fn ping(&self) -> Result<Duration, OpsError> {
        self.0.ping().await
    }
    async fn info(&self) -> Result<CacheInfo, OpsError> {
        self.0.info().await
    }
    async fn count(&self, pattern: &KeyPattern, opts: &PurgeOptions) -> Result<KeyCount, OpsError> {
        self.0.count(pattern, opts).await
    }
    async fn sample(&self, pattern: &KeyPattern, n: usize) -> Result<Vec<String>, OpsError> {
        self.0.sample(pattern, n).await
    }
    async fn purge(
        &self,
        pattern: &KeyPattern,
        _: &PurgeOptions,
    ) -> Result<PurgeOutcome, OpsError> {
        Err(refused(self.0.backend(), "purge", pattern.to_string()))
    }
    async fn flush(&self, _: FlushScope) -> Result<(), OpsError> {
        Err(refused(self.0.backend(), "flush", "cache"))
    }
    /// Refused: `BGSAVE` writes to disk and forks the server.
    async fn snapshot(&self, _: Duration) -> Result<SnapshotOutcome, OpsError> {
        Err(refused(self.0.backend(), "snapshot", "cache"))
    }
    async fn rewrite_aof(&self) -> Result<(), OpsError> {
        Err(refused(self.0.backend(), "rewrite_aof", "cache"))
    }
    async fn memory_doctor(&self) -> Result<String, OpsError> {
        self.0.memory_doctor().await
    }
    async fn clients(&self, filter: &ClientFilter) -> Result<Vec<ClientInfo>, OpsError> {
        self.0.clients(filter).await
    }
    async fn kill_clients(&self, _: &[u64], _: &ClientFilter) -> Result<Vec<u64>, OpsError> {
        Err(refused(self.0.backend(), "kill_clients", "clients"))
    }
    async fn slowlog(&self, n: u32) -> Result<Vec<SlowlogEntry>, OpsError> {
        self.0.slowlog(n).await
    }
}
