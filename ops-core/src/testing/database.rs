//! [`FakeDatabase`]: an in-memory database server with sessions, rows, sizes and backups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::Faults;
use super::database_dumps::{self as dumps, Rows, Tables};
use crate::database::{
    BackupInfo, BackupOptions, BlockedQuery, ConnectionStats, Database, DatabaseCapabilities,
    DatabaseSize, IndexUsage, Maintenance, MaintenanceOutcome, Ping, ReplicaLag, RestoreOptions,
    RestoreOutcome, RowRetention, RowsDeleted, ServerInfo, Session, SessionFilter, SettingChange,
    SlowQuery, SlowQueryOptions, TableSize,
};
use crate::error::{ErrorKind, OpsError};
use crate::refs::{Identifier, Pid, TableRef};

/// The database a [`FakeDatabase`] is connected to unless [`FakeDatabase::connected_to`] says
/// otherwise.
const DEFAULT_DATABASE: &str = "app";

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
    /// Rows per database and table.
    databases: BTreeMap<String, Tables>,
    /// Backups seeded with [`FakeDatabase::with_backup`] or written while `disk_backups` was
    /// off: descriptions only, no file behind them.
    backups: Vec<BackupInfo>,
    /// Whether [`Database::backup`] writes dump files with sidecars.
    disk_backups: bool,
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
            databases: BTreeMap::new(),
            backups: Vec::new(),
            disk_backups: false,
        }
    }
}

/// An in-memory [`Database`]. Seeded client sessions never include "our own" session, just as
/// real backends exclude it.
///
/// It keeps rows per table (their time column), so retention counts and deletes what is
/// there; a cancelled query leaves its session idle; settings other than the known ones are
/// refused. With [`FakeDatabase::with_backups_on_disk`] backups are dump files with a
/// `.sha256` sidecar, verified byte for byte, and a restore brings their rows back into the
/// target database, which [`FakeDatabase::connected_to`] reads.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use ops_core::Database;
/// use ops_core::database::RowRetention;
/// use ops_core::testing::FakeDatabase;
/// let day = Duration::from_secs(86_400);
/// let db = FakeDatabase::default()
///     .with_rows("public.events".parse()?, "created_at".parse()?, 90 * day, 3)
///     .with_rows("public.events".parse()?, "created_at".parse()?, day, 2);
/// let old = RowRetention::new("public.events".parse()?, "created_at".parse()?, 30 * day);
/// assert_eq!(db.count_older_than(&old).await?, 3);
/// assert_eq!(db.delete_older_than(&old).await?.rows, 3);
/// assert_eq!(db.count_older_than(&old).await?, 0);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct FakeDatabase {
    state: Arc<Mutex<State>>,
    faults: Arc<Faults>,
    /// The database this handle is connected to.
    database: String,
}

impl Default for FakeDatabase {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            faults: Arc::default(),
            database: DEFAULT_DATABASE.to_owned(),
        }
    }
}

super::faults::fake_common!(FakeDatabase, "Database");

/// Milliseconds since the epoch of the instant `age` ago.
fn ms_ago(age: Duration) -> i64 {
    let now = jiff::Timestamp::now().as_millisecond();
    now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

impl FakeDatabase {
    /// Another handle on the same server, connected to `database` (what a real backend
    /// built with another database name in its URL is): it shares rows, sessions, settings,
    /// backups and the mutation log with this one.
    ///
    /// # Examples
    /// ```
    /// let db = ops_core::testing::FakeDatabase::default();
    /// let restored = db.connected_to("app_restored");
    /// assert!(restored.mutations().is_empty());
    /// ```
    #[must_use]
    pub fn connected_to(&self, database: &str) -> Self {
        Self {
            state: Arc::clone(&self.state),
            faults: Arc::clone(&self.faults),
            database: database.to_owned(),
        }
    }

    /// Seed `n` rows of `table` (in the connected database) whose time `column` is `age` ago.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let db = ops_core::testing::FakeDatabase::default()
    ///     .with_rows("public.events".parse()?, "created_at".parse()?, Duration::from_secs(60), 10);
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    #[must_use]
    pub fn with_rows(self, table: TableRef, column: Identifier, age: Duration, n: u64) -> Self {
        let database = self.database.clone();
        self.with_state(|s| {
            let rows = s
                .databases
                .entry(database)
                .or_default()
                .entry(table)
                .or_default();
            rows.column = Some(column);
            let at = ms_ago(age);
            rows.at.extend(std::iter::repeat_n(
                at,
                usize::try_from(n).unwrap_or(usize::MAX),
            ));
        })
    }

    /// Write backups as dump files with `.sha256` sidecars into the directory asked for
    /// (which must exist), as real backends do; without this they are kept in memory.
    ///
    /// # Examples
    /// ```
    /// let db = ops_core::testing::FakeDatabase::default().with_backups_on_disk();
    /// ```
    #[must_use]
    pub fn with_backups_on_disk(self) -> Self {
        self.with_state(|s| s.disk_backups = true)
    }

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

    /// Seed rows older than any retention age in `table` (dated at the epoch; any time column
    /// name is accepted for them).
    #[must_use]
    pub fn with_old_rows(self, table: TableRef, rows: u64) -> Self {
        let database = self.database.clone();
        self.with_state(|s| {
            s.databases
                .entry(database)
                .or_default()
                .entry(table)
                .or_default()
                .at
                .extend(std::iter::repeat_n(
                    0,
                    usize::try_from(rows).unwrap_or(usize::MAX),
                ));
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

    /// The rows `retention` names in the connected database: `NotFound` for an unknown table or
    /// time column.
    fn rows<'s>(
        &self,
        s: &'s mut State,
        operation: &'static str,
        retention: &RowRetention,
    ) -> Result<&'s mut Rows, OpsError> {
        let not_found =
            |target: String| OpsError::new(ErrorKind::NotFound, "fake", operation, target);
        let rows = s
            .databases
            .get_mut(&self.database)
            .and_then(|tables| tables.get_mut(&retention.table))
            .ok_or_else(|| not_found(retention.table.to_string()))?;
        if rows.column.as_ref().is_some_and(|c| c != &retention.column) {
            return Err(not_found(format!(
                "{}.{}",
                retention.table, retention.column
            )));
        }
        Ok(rows)
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
        let mut s = self.lock();
        // Only a running query can be cancelled; the session stays, idle from now on.
        let Some(session) = s
            .sessions
            .iter_mut()
            .find(|x| x.pid == pid && x.state == crate::database::SessionState::Active)
        else {
            return Ok(false);
        };
        session.state = crate::database::SessionState::Idle;
        session.state_age = Some(Duration::ZERO);
        drop(s);
        self.faults.mutate(format!("cancel pid {pid}"));
        Ok(true)
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
        let s = self.lock();
        let mut t = s.tables.clone();
        // Tables holding rows report them as statistics would: live and dead since VACUUM.
        for (table, rows) in s.databases.get(&self.database).into_iter().flatten() {
            if !t.iter().any(|x| &x.table == table) {
                t.push(TableSize::new(table.clone(), 0));
            }
            if let Some(size) = t.iter_mut().find(|x| &x.table == table) {
                size.live_rows = rows.at.len() as u64;
                size.dead_rows = rows.dead;
                size.total_bytes = size
                    .total_bytes
                    .max(8192 + 64 * (size.live_rows + size.dead_rows));
            }
        }
        drop(s);
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
        if let Some(t) = &table {
            let mut s = self.lock();
            let seeded = s.tables.iter().any(|x| &x.table == t);
            let rows = s
                .databases
                .get_mut(&self.database)
                .and_then(|tables| tables.get_mut(t));
            match rows {
                Some(rows)
                    if matches!(op, Maintenance::Vacuum { .. } | Maintenance::VacuumFull) =>
                {
                    rows.dead = 0;
                }
                Some(_) => {}
                None if seeded => {}
                None => {
                    return Err(OpsError::new(
                        ErrorKind::NotFound,
                        "fake",
                        "maintain",
                        target,
                    ));
                }
            }
        }
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
        let old = match s.settings.get(name) {
            Some(old) => old.clone(),
            None if name == "max_connections" => s.info.max_connections.to_string(),
            None => {
                return Err(OpsError::new(
                    ErrorKind::InvalidInput,
                    "fake",
                    "set_setting",
                    name.to_owned(),
                )
                .with_detail("unknown setting"));
            }
        };
        let needs_restart = name == "max_connections";
        if !needs_restart {
            s.settings.insert(name.to_owned(), value.to_owned());
        }
        drop(s);
        self.faults.mutate(format!("set_setting {name}={value}"));
        Ok(SettingChange {
            name: name.to_owned(),
            new: if needs_restart {
                old.clone()
            } else {
                value.to_owned()
            },
            old,
            needs_restart,
        })
    }

    async fn count_older_than(&self, retention: &RowRetention) -> Result<u64, OpsError> {
        self.call("count_older_than", &retention.table.to_string())?;
        let mut s = self.lock();
        let rows = self.rows(&mut s, "count_older_than", retention)?;
        let cutoff = ms_ago(retention.older_than);
        Ok(rows.at.iter().filter(|&&at| at < cutoff).count() as u64)
    }

    async fn delete_older_than(&self, retention: &RowRetention) -> Result<RowsDeleted, OpsError> {
        self.call("delete_older_than", &retention.table.to_string())?;
        let mut s = self.lock();
        let rows = self.rows(&mut s, "delete_older_than", retention)?;
        let cutoff = ms_ago(retention.older_than);
        let batch_size = u64::from(retention.batch_size.max(1));
        let (mut deleted, mut batches) = (0u64, 0u64);
        // Batch by batch as the real backend does: a batch short of its limit ends the run.
        let complete = loop {
            let budget = retention.max_rows.map(|m| m.saturating_sub(deleted));
            if budget == Some(0) {
                break !rows.at.iter().any(|&at| at < cutoff);
            }
            let limit = budget.map_or(batch_size, |b| b.min(batch_size));
            let mut n = 0u64;
            rows.at.retain(|&at| {
                let goes = at < cutoff && n < limit;
                n += u64::from(goes);
                !goes
            });
            deleted += n;
            batches += 1;
            if n < limit {
                break true;
            }
        };
        rows.dead += deleted;
        drop(s);
        self.faults.mutate(format!(
            "delete_older_than {} rows={deleted}",
            retention.table
        ));
        Ok(RowsDeleted::new(deleted, batches, complete))
    }

    async fn replication(&self) -> Result<Vec<ReplicaLag>, OpsError> {
        self.call("replication", "db")?;
        Ok(Vec::new())
    }

    async fn backup(&self, opts: &BackupOptions) -> Result<BackupInfo, OpsError> {
        self.call("backup", opts.database.as_str())?;
        let mut s = self.lock();
        let info = if s.disk_backups {
            let known = opts.database.as_str() == self.database
                || s.databases.contains_key(opts.database.as_str());
            if !known {
                return Err(OpsError::new(
                    ErrorKind::NotFound,
                    "fake",
                    "backup",
                    opts.database.to_string(),
                ));
            }
            let tables = s
                .databases
                .get(opts.database.as_str())
                .cloned()
                .unwrap_or_default();
            dumps::write(&opts.dir, opts.database.as_str(), &tables)?
        } else {
            let path = opts.dir.join(format!("{}.dump", opts.database));
            let mut info = BackupInfo::new(path, "0".repeat(64), 1024);
            info.database = Some(opts.database.to_string());
            s.backups.push(info.clone());
            info
        };
        drop(s);
        self.faults.mutate(format!("backup {}", opts.database));
        Ok(info)
    }

    async fn verify_backup(&self, path: &Path) -> Result<BackupInfo, OpsError> {
        self.call("verify_backup", &path.display().to_string())?;
        let seeded = self.lock().backups.iter().find(|b| b.path == path).cloned();
        match seeded {
            Some(info) => Ok(info),
            None => dumps::verify("verify_backup", path).map(|(info, _)| info),
        }
    }

    async fn list_backups(&self, dir: &Path) -> Result<Vec<BackupInfo>, OpsError> {
        self.call("list_backups", &dir.display().to_string())?;
        let mut found: Vec<BackupInfo> = self
            .lock()
            .backups
            .iter()
            .filter(|b| b.path.parent() == Some(dir))
            .cloned()
            .rev()
            .collect();
        match dumps::list(dir)? {
            Some(files) => found.extend(files),
            None if found.is_empty() => {
                return Err(OpsError::new(
                    ErrorKind::NotFound,
                    "fake",
                    "list_backups",
                    dir.display().to_string(),
                ));
            }
            None => {}
        }
        found.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.path.cmp(&a.path))
        });
        Ok(found)
    }

    async fn restore(&self, opts: &RestoreOptions) -> Result<RestoreOutcome, OpsError> {
        let seeded = self
            .lock()
            .backups
            .iter()
            .find(|b| b.path == opts.backup)
            .cloned();
        // Checksum first: a mismatch touches nothing.
        let (verified, tables) = if let Some(seeded) = seeded {
            (seeded, None)
        } else {
            let (verified, tables) = dumps::verify("restore", &opts.backup)?;
            (verified, Some(tables))
        };
        self.call("restore", opts.into.as_str())?;
        let into = opts.into.as_str();
        let mut s = self.lock();
        let exists = into == self.database || s.databases.contains_key(into);
        let previous =
            (opts.swap && (exists || tables.is_none())).then(|| format!("{into}_before_restore"));
        // A dump file brings its rows back; a seeded backup has none to bring.
        if let Some(tables) = tables {
            let old = s.databases.insert(into.to_owned(), tables);
            if let (Some(old), Some(renamed)) = (old, &previous) {
                s.databases.insert(renamed.clone(), old);
            }
        }
        drop(s);
        self.faults.mutate(format!(
            "restore {} into {}",
            PathBuf::from(&opts.backup).display(),
            opts.into
        ));
        Ok(RestoreOutcome {
            database: into.to_owned(),
            previous_renamed_to: previous,
            sha256: verified.sha256,
        })
    }
}
