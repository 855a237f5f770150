//! [`FakeDatabase`]: an in-memory database server with sessions, sizes and backups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::Faults;
use crate::database::{
    BackupInfo, BackupOptions, BlockedQuery, ConnectionStats, Database, DatabaseCapabilities,
    DatabaseSize, IndexUsage, Maintenance, MaintenanceOutcome, Ping, ReplicaLag, RestoreOptions,
    RestoreOutcome, RowRetention, RowsDeleted, ServerInfo, Session, SessionFilter, SettingChange,
    SlowQuery, SlowQueryOptions, TableSize,
};
use crate::error::{ErrorKind, OpsError};
use crate::refs::{Pid, TableRef};

#[derive(Debug)]
struct State {
    info: ServerInfo,
    latency: Duration,
    sessions: Vec<Session>,
    sizes: Vec<DatabaseSize>,
    tables: Vec<TableSize>,
    indexes: Vec<IndexUsage>,
    slow: Option<Vec<SlowQuery>>,
    settings: BTreeMap<String, String>,
    old_rows: BTreeMap<TableRef, u64>,
    backups: Vec<BackupInfo>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            info: ServerInfo::new("15.0 (fake)", Duration::from_secs(3600), 100),
            latency: Duration::from_millis(1),
            sessions: Vec::new(),
            sizes: Vec::new(),
            tables: Vec::new(),
            indexes: Vec::new(),
            slow: Some(Vec::new()),
            settings: BTreeMap::from([("log_min_duration_statement".to_owned(), "-1".to_owned())]),
            old_rows: BTreeMap::new(),
            backups: Vec::new(),
        }
    }
}

/// An in-memory [`Database`]. Seeded client sessions never include "our own" session, just as
/// real backends exclude it.
#[derive(Debug, Default)]
pub struct FakeDatabase {
    state: Mutex<State>,
    faults: Faults,
}

super::faults::fake_common!(FakeDatabase, "Database");

impl FakeDatabase {
    /// Set `max_connections`.
    #[must_use]
    pub fn with_max_connections(self, n: u32) -> Self {
        self.with_state(|s| s.info.max_connections = n)
    }

    /// Seed client sessions.
    #[must_use]
    pub fn with_sessions(self, sessions: Vec<Session>) -> Self {
        self.with_state(|s| s.sessions.extend(sessions))
    }

    /// Seed database sizes.
    #[must_use]
    pub fn with_database_sizes(self, sizes: Vec<DatabaseSize>) -> Self {
        self.with_state(|s| s.sizes = sizes)
    }

    /// Seed table sizes.
    #[must_use]
    pub fn with_tables(self, tables: Vec<TableSize>) -> Self {
        self.with_state(|s| s.tables = tables)
    }

    /// Seed index usage.
    #[must_use]
    pub fn with_indexes(self, indexes: Vec<IndexUsage>) -> Self {
        self.with_state(|s| s.indexes = indexes)
    }

    /// Seed slow queries; `None` behaves as if `pg_stat_statements` were missing.
    #[must_use]
    pub fn with_slow_queries(self, slow: Option<Vec<SlowQuery>>) -> Self {
        self.with_state(|s| s.slow = slow)
    }

    /// Seed rows older than any retention age in `table`.
    #[must_use]
    pub fn with_old_rows(self, table: TableRef, rows: u64) -> Self {
        self.with_state(|s| {
            s.old_rows.insert(table, rows);
        })
    }

    /// Seed an existing backup.
    #[must_use]
    pub fn with_backup(self, backup: BackupInfo) -> Self {
        self.with_state(|s| s.backups.push(backup))
    }

    /// Sessions currently open.
    pub fn open_sessions(&self) -> Vec<Session> {
        self.lock().sessions.clone()
    }

    fn call(&self, op: &'static str, target: &str) -> Result<(), OpsError> {
        self.faults.call("fake", op, target)
    }
}

#[async_trait]
impl Database for FakeDatabase {
    fn backend(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> DatabaseCapabilities {
        let mut caps = DatabaseCapabilities::all();
        // Seeded without pg_stat_statements (`with_slow_queries(None)`), it says so.
        caps.slow_queries = self.lock().slow.is_some();
        caps
    }

    async fn ping(&self) -> Result<Ping, OpsError> {
        self.call("ping", "db")?;
        Ok(Ping::new(self.lock().latency))
    }

    async fn server_info(&self) -> Result<ServerInfo, OpsError> {
        self.call("server_info", "db")?;
        Ok(self.lock().info.clone())
    }

    async fn connection_stats(&self) -> Result<ConnectionStats, OpsError> {
        self.call("connection_stats", "db")?;
        let s = self.lock();
        let mut stats = ConnectionStats::new(s.info.max_connections);
        for session in &s.sessions {
            stats = stats.with(&session.state, 1);
            if let Some(db) = &session.database {
                *stats.by_database.entry(db.clone()).or_default() += 1;
            }
            if session.state == crate::database::SessionState::IdleInTransaction {
                stats.oldest_idle_in_transaction =
                    stats.oldest_idle_in_transaction.max(session.state_age);
            }
        }
        Ok(stats)
    }

    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, OpsError> {
        self.call("sessions", "db")?;
        Ok(self
            .lock()
            .sessions
            .iter()
            .filter(|s| filter.matches(s))
            .cloned()
            .collect())
    }

    async fn terminate(
        &self,
        pids: &[Pid],
        guard: &SessionFilter,
    ) -> Result<Vec<Session>, OpsError> {
        guard.require_bounded("fake", "terminate")?;
        self.call("terminate", "db")?;
        let mut s = self.lock();
        let (gone, kept): (Vec<Session>, Vec<Session>) = s
            .sessions
            .drain(..)
            .partition(|x| pids.contains(&x.pid) && guard.matches(x));
        s.sessions = kept;
        drop(s);
        for g in &gone {
            self.faults.mutate(format!("terminate pid {}", g.pid));
        }
        Ok(gone)
    }

    async fn cancel(&self, pid: Pid) -> Result<bool, OpsError> {
        self.call("cancel", &pid.to_string())?;
        let found = self.lock().sessions.iter().any(|s| s.pid == pid);
        if found {
            self.faults.mutate(format!("cancel pid {pid}"));
        }
        Ok(found)
    }

    async fn long_running(&self, min: Duration) -> Result<Vec<Session>, OpsError> {
        self.call("long_running", "db")?;
        let filter = SessionFilter::default()
            .with_state(crate::database::SessionState::Active)
            .running_longer_than(min);
        Ok(self
            .lock()
            .sessions
            .iter()
            .filter(|s| filter.matches(s))
            .cloned()
            .collect())
    }

    async fn blocked(&self) -> Result<Vec<BlockedQuery>, OpsError> {
        self.call("blocked", "db")?;
        Ok(Vec::new())
    }

    async fn slow_queries(&self, opts: SlowQueryOptions) -> Result<Vec<SlowQuery>, OpsError> {
        self.call("slow_queries", "db")?;
        match &self.lock().slow {
            Some(q) => Ok(q
                .iter()
                .take(usize::try_from(opts.limit).unwrap_or(usize::MAX))
                .cloned()
                .collect()),
            None => Err(OpsError::unsupported(
                "fake",
                "slow_queries",
                "db",
                "pg_stat_statements is not installed: add it to shared_preload_libraries and CREATE EXTENSION pg_stat_statements",
            )),
        }
    }

    async fn database_sizes(&self) -> Result<Vec<DatabaseSize>, OpsError> {
        self.call("database_sizes", "db")?;
        Ok(self.lock().sizes.clone())
    }

    async fn table_sizes(&self, limit: u32) -> Result<Vec<TableSize>, OpsError> {
        self.call("table_sizes", "db")?;
        let mut t = self.lock().tables.clone();
        t.sort_by_key(|x| std::cmp::Reverse(x.total_bytes));
        t.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(t)
    }

    async fn index_usage(&self) -> Result<Vec<IndexUsage>, OpsError> {
        self.call("index_usage", "db")?;
        Ok(self.lock().indexes.clone())
    }

    async fn maintain(
        &self,
        op: Maintenance,
        table: Option<TableRef>,
    ) -> Result<MaintenanceOutcome, OpsError> {
        let target = table
            .as_ref()
            .map_or_else(|| "database".to_owned(), ToString::to_string);
        self.call("maintain", &target)?;
        let statement = match &table {
            Some(t) => format!("{} {}", op.sql_verb(), t.quoted()),
            None => op.sql_verb().replace(" TABLE", " DATABASE"),
        };
        let mut warnings = Vec::new();
        if op == Maintenance::VacuumFull {
            warnings.push("VACUUM FULL rewrites the table: it needs free disk equal to the table size and holds an exclusive lock".to_owned());
        }
        self.faults.mutate(format!("maintain {statement}"));
        Ok(MaintenanceOutcome {
            statement,
            duration: Duration::from_millis(5),
            warnings,
        })
    }

    async fn setting(&self, name: &str) -> Result<String, OpsError> {
        self.call("setting", name)?;
        let s = self.lock();
        if name == "max_connections" && !s.settings.contains_key(name) {
            return Ok(s.info.max_connections.to_string());
        }
        s.settings
            .get(name)
            .cloned()
            .ok_or_else(|| OpsError::new(ErrorKind::NotFound, "fake", "setting", name.to_owned()))
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<SettingChange, OpsError> {
        self.call("set_setting", name)?;
        let mut s = self.lock();
        let old = s
            .settings
            .insert(name.to_owned(), value.to_owned())
            .unwrap_or_default();
        drop(s);
        self.faults.mutate(format!("set_setting {name}={value}"));
        Ok(SettingChange {
            name: name.to_owned(),
            old,
            new: value.to_owned(),
            needs_restart: name == "max_connections",
        })
    }

    async fn count_older_than(&self, retention: &RowRetention) -> Result<u64, OpsError> {
        self.call("count_older_than", &retention.table.to_string())?;
        Ok(self
            .lock()
            .old_rows
            .get(&retention.table)
            .copied()
            .unwrap_or(0))
    }

    async fn delete_older_than(&self, retention: &RowRetention) -> Result<RowsDeleted, OpsError> {
        self.call("delete_older_than", &retention.table.to_string())?;
        let mut s = self.lock();
        let available = s.old_rows.get(&retention.table).copied().unwrap_or(0);
        let rows = retention.max_rows.map_or(available, |m| m.min(available));
        s.old_rows.insert(retention.table.clone(), available - rows);
        drop(s);
        let batches = rows.div_ceil(u64::from(retention.batch_size.max(1)));
        self.faults
            .mutate(format!("delete_older_than {} rows={rows}", retention.table));
        Ok(RowsDeleted::new(rows, batches, rows == available))
    }

    async fn replication(&self) -> Result<Vec<ReplicaLag>, OpsError> {
        self.call("replication", "db")?;
        Ok(Vec::new())
    }

    async fn backup(&self, opts: &BackupOptions) -> Result<BackupInfo, OpsError> {
        self.call("backup", opts.database.as_str())?;
        let path = opts.dir.join(format!("{}.dump", opts.database));
        let mut info = BackupInfo::new(path, "0".repeat(64), 1024);
        info.database = Some(opts.database.to_string());
        self.lock().backups.push(info.clone());
        self.faults.mutate(format!("backup {}", opts.database));
        Ok(info)
    }

    async fn verify_backup(&self, path: &Path) -> Result<BackupInfo, OpsError> {
        self.call("verify_backup", &path.display().to_string())?;
        self.lock()
            .backups
            .iter()
            .find(|b| b.path == path)
            .cloned()
            .ok_or_else(|| {
                OpsError::new(
                    ErrorKind::NotFound,
                    "fake",
                    "verify_backup",
                    path.display().to_string(),
                )
            })
    }

    async fn list_backups(&self, dir: &Path) -> Result<Vec<BackupInfo>, OpsError> {
        self.call("list_backups", &dir.display().to_string())?;
        let found: Vec<BackupInfo> = self
            .lock()
            .backups
            .iter()
            .filter(|b| b.path.parent() == Some(dir))
            .cloned()
            .rev()
            .collect();
        if found.is_empty() && !dir.is_dir() {
            return Err(OpsError::new(
                ErrorKind::NotFound,
                "fake",
                "list_backups",
                dir.display().to_string(),
            ));
        }
        Ok(found)
    }

    async fn restore(&self, opts: &RestoreOptions) -> Result<RestoreOutcome, OpsError> {
        let info = self.verify_backup(&opts.backup).await?;
        self.call("restore", opts.into.as_str())?;
        self.faults.mutate(format!(
            "restore {} into {}",
            PathBuf::from(&opts.backup).display(),
            opts.into
        ));
        Ok(RestoreOutcome {
            database: opts.into.to_string(),
            previous_renamed_to: opts.swap.then(|| format!("{}_before_restore", opts.into)),
            sha256: info.sha256,
        })
    }
}
