//! [`PgDatabase`]: the [`Database`] trait for PostgreSQL; each area lives in its own module.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ops_core::database::{
    BackupInfo, BackupOptions, BlockedQuery, ConnectionStats, DatabaseCapabilities, DatabaseSize,
    IndexUsage, Maintenance, MaintenanceOutcome, Ping, ReplicaLag, RestoreOptions, RestoreOutcome,
    RowRetention, RowsDeleted, ServerInfo, Session, SessionFilter, SettingChange, SlowQuery,
    SlowQueryOptions, TableSize,
};
use ops_core::{Database, OpsError, Pid, TableRef};
use secrecy::SecretString;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::config::PgDatabaseConfig;
use crate::error::Error;

/// PostgreSQL behind the [`Database`] trait (sqlx pool, lazy connect).
///
/// Every call runs under a deadline: the server-side `statement_timeout` and `lock_timeout` of
/// each pooled connection, and a client-side timeout around the whole call. Identifiers are
/// always quoted; values always travel as bind parameters. Pooled connections carry a private
/// `application_name`, so [`Database::sessions`] and [`Database::terminate`] never see or touch
/// our own backends, nor any non-client backend (autovacuum, WAL sender, checkpointer...).
///
/// # Examples
/// ```no_run
/// use std::sync::Arc;
/// use ops_core::Database;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db: Arc<dyn Database> = Arc::new(ops_db::PgDatabaseBuilder::from_env().build()?);
/// let stats = db.connection_stats().await?;
/// println!("{} of {} connections in use", stats.total, stats.max_connections);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgDatabase {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    /// The one connection opened by [`PgDatabase::hold_connection`] and kept for diagnosis and
    /// termination, so they still work when the server refuses new connections.
    pub(crate) held: tokio::sync::OnceCell<PgPool>,
    /// Options of pooled connections (our `application_name` and session deadlines).
    pub(crate) session: PgConnectOptions,
    /// Connection options without our session settings (for tools and maintenance connections).
    pub(crate) connect: PgConnectOptions,
    pub(crate) password: Option<SecretString>,
    pub(crate) application_name: String,
    /// `host:port/database`, shown in errors.
    pub(crate) target: String,
    pub(crate) config: PgDatabaseConfig,
    /// Whether `pg_stat_statements` was seen answering.
    pub(crate) slow_query_probe: crate::capabilities::SlowQueryProbe,
}

impl fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDatabase")
            .field("target", &self.shared.target)
            .field("application_name", &self.shared.application_name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl PgDatabase {
    /// `host:port/database` of the server (no credentials).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ops_db::Error> {
    /// let db = ops_db::PgDatabaseBuilder::new("postgres://u:pw@db:5432/app").build()?;
    /// assert_eq!(db.target(), "db:5432/app");
    /// # Ok(()) }
    /// ```
    pub fn target(&self) -> &str {
        &self.shared.target
    }

    /// The `application_name` of this backend's own connections (excluded from sessions).
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ops_db::Error> {
    /// let db = ops_db::PgDatabaseBuilder::new("postgres://db/app").build()?;
    /// assert!(db.application_name().starts_with("opsbook-"));
    /// # Ok(()) }
    /// ```
    pub fn application_name(&self) -> &str {
        &self.shared.application_name
    }

    /// The configuration in use.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ops_db::Error> {
    /// let db = ops_db::PgDatabaseBuilder::new("postgres://db/app").build()?;
    /// assert_eq!(db.config().max_connections, 4);
    /// # Ok(()) }
    /// ```
    pub fn config(&self) -> &PgDatabaseConfig {
        &self.shared.config
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.shared.pool
    }

    /// The pool for diagnosis and termination: the held connection once
    /// [`PgDatabase::hold_connection`] opened it, the shared pool otherwise.
    pub(crate) fn control(&self) -> &PgPool {
        self.shared.held.get().unwrap_or(&self.shared.pool)
    }

    /// Opens one connection now and holds it for the life of this handle (no idle timeout, no
    /// maximum lifetime; reopened if the server drops it), for the calls that diagnose and end
    /// sessions: [`Database::ping`], [`Database::server_info`], [`Database::connection_stats`],
    /// [`Database::sessions`], [`Database::terminate`], [`Database::cancel`],
    /// [`Database::long_running`] and [`Database::blocked`]. They then keep working while the
    /// server refuses new connections (`too_many_connections`), the incident
    /// `runbooks::db_connections` exists for. Call it at start, before connections run out;
    /// calling it again does nothing.
    ///
    /// One connection, not more: a pool with room for a second would try to open one when the
    /// first is busy, which an exhausted server refuses. Those calls therefore run one at a
    /// time. A role allowed reserved connections (`pg_use_reserved_connections`, PostgreSQL
    /// 16+) can also connect during exhaustion; see the crate README, "Operator role".
    ///
    /// # Errors
    /// [`Error::Query`] when the connection cannot be opened (for exhaustion its
    /// [`OpsError`] says so: [`ops_core::database::is_connections_exhausted`]).
    ///
    /// # Examples
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ops_db::Error> {
    /// let db = ops_db::PgDatabaseBuilder::from_env().build()?;
    /// db.hold_connection().await?;
    /// assert!(db.holds_connection());
    /// # Ok(()) }
    /// ```
    pub async fn hold_connection(&self) -> Result<(), Error> {
        let options = self.shared.session.clone();
        let target = self.shared.target.clone();
        self.shared
            .held
            .get_or_try_init(|| async move {
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(self.shared.config.acquire_timeout)
                    .test_before_acquire(true)
                    .connect_with(options)
                    .await
                    .map_err(|e| Error::query("hold_connection", target, e))
            })
            .await?;
        Ok(())
    }

    /// Whether [`PgDatabase::hold_connection`] opened the held connection.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ops_db::Error> {
    /// let db = ops_db::PgDatabaseBuilder::new("postgres://db/app").build()?;
    /// assert!(!db.holds_connection());
    /// # Ok(()) }
    /// ```
    pub fn holds_connection(&self) -> bool {
        self.shared.held.initialized()
    }

    /// Runs `fut` under the statement deadline (plus the time to acquire a connection).
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        fut: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let after = self.shared.config.statement_timeout + self.shared.config.acquire_timeout;
        self.within(operation, self.shared.target.clone(), after, fut)
            .await
    }

    /// Runs `fut` with a client-side deadline `after`.
    pub(crate) async fn within<T>(
        &self,
        operation: &'static str,
        target: String,
        after: Duration,
        fut: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(after, fut).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                operation,
                target,
                after,
            }),
        }
    }

    /// A dedicated (unpooled) connection with its own `statement_timeout` (or the server's), to `database` or the
    /// configured one; it carries our `application_name`, so it is never a terminate target.
    pub(crate) async fn dedicated(
        &self,
        operation: &'static str,
        database: Option<&str>,
        statement_timeout: Option<Duration>,
    ) -> Result<sqlx::PgConnection, Error> {
        use sqlx::ConnectOptions as _;
        let mut options = self
            .shared
            .connect
            .clone()
            .application_name(&self.shared.application_name);
        if let Some(timeout) = statement_timeout {
            let ms = timeout.as_millis().to_string();
            options = options.options([("statement_timeout", ms.as_str())]);
        }
        if let Some(database) = database {
            options = options.database(database);
        }
        let after = self.shared.config.acquire_timeout;
        self.within(operation, self.shared.target.clone(), after, async {
            options.connect().await.map_err(self.err(operation))
        })
        .await
    }

    /// Maps a driver error for `operation` on the server.
    pub(crate) fn err(&self, operation: &'static str) -> impl Fn(sqlx::Error) -> Error + '_ {
        move |source| Error::query(operation, self.shared.target.clone(), source)
    }
}

#[async_trait]
impl Database for PgDatabase {
    fn backend(&self) -> &'static str {
        crate::error::BACKEND
    }

    fn capabilities(&self) -> DatabaseCapabilities {
        self.known_capabilities()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn ping(&self) -> Result<Ping, OpsError> {
        Ok(self.ping_impl().await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn server_info(&self) -> Result<ServerInfo, OpsError> {
        Ok(self.server_info_impl().await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn connection_stats(&self) -> Result<ConnectionStats, OpsError> {
        Ok(self.connection_stats_impl().await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, OpsError> {
        Ok(self.sessions_impl(filter).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn terminate(
        &self,
        pids: &[Pid],
        guard: &SessionFilter,
    ) -> Result<Vec<Session>, OpsError> {
        guard.require_bounded("pg", "terminate")?;
        Ok(self.terminate_impl(pids, guard).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %pid))]
    async fn cancel(&self, pid: Pid) -> Result<bool, OpsError> {
        Ok(self.cancel_impl(pid).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn long_running(&self, min: Duration) -> Result<Vec<Session>, OpsError> {
        Ok(self.long_running_impl(min).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn blocked(&self) -> Result<Vec<BlockedQuery>, OpsError> {
        Ok(self.blocked_impl().await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn slow_queries(&self, opts: SlowQueryOptions) -> Result<Vec<SlowQuery>, OpsError> {
        Ok(self.slow_queries_impl(&opts).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn database_sizes(&self) -> Result<Vec<DatabaseSize>, OpsError> {
        Ok(self.database_sizes_impl().await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn table_sizes(&self, limit: u32) -> Result<Vec<TableSize>, OpsError> {
        Ok(self.table_sizes_impl(limit).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn index_usage(&self) -> Result<Vec<IndexUsage>, OpsError> {
        Ok(self.index_usage_impl().await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = ?table))]
    async fn maintain(
        &self,
        op: Maintenance,
        table: Option<TableRef>,
    ) -> Result<MaintenanceOutcome, OpsError> {
        Ok(self.maintain_impl(op, table.as_ref()).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %name))]
    async fn setting(&self, name: &str) -> Result<String, OpsError> {
        Ok(self.setting_impl(name).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %name))]
    async fn set_setting(&self, name: &str, value: &str) -> Result<SettingChange, OpsError> {
        Ok(Box::pin(self.set_setting_impl(name, value)).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %retention.table))]
    async fn count_older_than(&self, retention: &RowRetention) -> Result<u64, OpsError> {
        Ok(self.count_older_than_impl(retention).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %retention.table))]
    async fn delete_older_than(&self, retention: &RowRetention) -> Result<RowsDeleted, OpsError> {
        Ok(self.delete_older_than_impl(retention).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %self.shared.target))]
    async fn replication(&self) -> Result<Vec<ReplicaLag>, OpsError> {
        Ok(self.replication_impl().await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %opts.database))]
    async fn backup(&self, opts: &BackupOptions) -> Result<BackupInfo, OpsError> {
        Ok(Box::pin(self.backup_impl(opts, &|_| {})).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %path.display()))]
    async fn verify_backup(&self, path: &Path) -> Result<BackupInfo, OpsError> {
        Ok(crate::backup::verify(path).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %dir.display()))]
    async fn list_backups(&self, dir: &Path) -> Result<Vec<BackupInfo>, OpsError> {
        Ok(crate::backup::list(dir).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "pg", target = %opts.into))]
    async fn restore(&self, opts: &RestoreOptions) -> Result<RestoreOutcome, OpsError> {
        Ok(Box::pin(self.restore_impl(opts)).await?)
    }
}
