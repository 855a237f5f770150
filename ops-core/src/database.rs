//! The [`Database`] trait: a relational database server (PostgreSQL in `ops-db`).
//!
//! Session filters are shared by [`Database::sessions`] (the read half) and
//! [`Database::terminate`] (the act), so a dry run lists exactly who would be terminated.
//! Backends never terminate their own session or non-client backends.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::OpsError;
use crate::refs::{Identifier, Pid, TableRef};

/// What a [`Database`] backend supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(
    clippy::struct_excessive_bools,
    reason = "a capability set is a set of flags"
)]
pub struct DatabaseCapabilities {
    /// `pg_stat_statements` (or equivalent) slow-query statistics.
    pub slow_queries: bool,
    /// Backup and restore.
    pub backup: bool,
    /// Replication status.
    pub replication: bool,
    /// Changing server settings.
    pub settings: bool,
}

impl DatabaseCapabilities {
    /// Everything supported.
    pub fn all() -> Self {
        Self {
            slow_queries: true,
            backup: true,
            replication: true,
            settings: true,
        }
    }
}

/// The result of [`Database::ping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ping {
    /// Round-trip time of a trivial query.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub latency: Duration,
}

impl Ping {
    /// A ping that took `latency`.
    pub fn new(latency: Duration) -> Self {
        Self { latency }
    }
}

/// Facts about the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerInfo {
    /// Version string, e.g. `15.8`.
    pub version: String,
    /// Time since the server started.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub uptime: Duration,
    /// `max_connections`.
    pub max_connections: u32,
    /// Connections reserved for superusers.
    pub reserved_connections: u32,
    /// Whether this is a replica in recovery.
    pub in_recovery: bool,
}

impl ServerInfo {
    /// Server facts.
    pub fn new(version: impl Into<String>, uptime: Duration, max_connections: u32) -> Self {
        Self {
            version: version.into(),
            uptime,
            max_connections,
            reserved_connections: 3,
            in_recovery: false,
        }
    }
}

/// The state of a session (`pg_stat_activity.state`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionState {
    /// Running a query.
    Active,
    /// Waiting for a command.
    Idle,
    /// In a transaction, waiting for a command (holds locks and a snapshot).
    IdleInTransaction,
    /// In a failed transaction.
    IdleInTransactionAborted,
    /// Fast-path function call.
    FastpathFunctionCall,
    /// Disabled tracking.
    Disabled,
    /// Anything else, verbatim.
    Other(String),
}

impl SessionState {
    /// Map `pg_stat_activity.state`.
    ///
    /// # Examples
    /// ```
    /// use ops_core::database::SessionState;
    /// assert_eq!(SessionState::parse("idle in transaction"), SessionState::IdleInTransaction);
    /// ```
    pub fn parse(state: &str) -> Self {
        match state {
            "active" => Self::Active,
            "idle" => Self::Idle,
            "idle in transaction" => Self::IdleInTransaction,
            "idle in transaction (aborted)" => Self::IdleInTransactionAborted,
            "fastpath function call" => Self::FastpathFunctionCall,
            "disabled" => Self::Disabled,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The server's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Idle => "idle",
            Self::IdleInTransaction => "idle in transaction",
            Self::IdleInTransactionAborted => "idle in transaction (aborted)",
            Self::FastpathFunctionCall => "fastpath function call",
            Self::Disabled => "disabled",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Client connections by state, against the slots ordinary roles may use: the
/// pool-exhaustion signal.
///
/// # Examples
/// ```
/// use ops_core::database::{ConnectionStats, SessionState};
/// let s = ConnectionStats::new(100).with(&SessionState::Active, 10).with(&SessionState::IdleInTransaction, 75);
/// assert_eq!(s.total, 85);
/// assert!((s.utilisation() - 0.85).abs() < 1e-9);
/// // With 3 slots reserved (superuser_reserved_connections), 17 of 20 is every usable slot.
/// let full = ConnectionStats::new(20).with_reserved(3).with(&SessionState::IdleInTransaction, 17);
/// assert!((full.utilisation() - 1.0).abs() < 1e-9);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// `max_connections`.
    pub max_connections: u32,
    /// Slots ordinary roles cannot take (PostgreSQL: `superuser_reserved_connections`, plus
    /// `reserved_connections` on 16+).
    #[serde(default)]
    pub reserved_connections: u32,
    /// Client connections in total.
    pub total: u32,
    /// Client connections per state.
    pub by_state: BTreeMap<String, u32>,
    /// Client connections per database.
    pub by_database: BTreeMap<String, u32>,
    /// The oldest idle-in-transaction session's age.
    #[serde(with = "crate::serde_util::opt_duration_ms")]
    pub oldest_idle_in_transaction: Option<Duration>,
}

impl ConnectionStats {
    /// Empty stats for a server with `max_connections`.
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            reserved_connections: 0,
            total: 0,
            by_state: BTreeMap::new(),
            by_database: BTreeMap::new(),
            oldest_idle_in_transaction: None,
        }
    }

    /// Add `n` connections in `state`.
    #[must_use]
    pub fn with(mut self, state: &SessionState, n: u32) -> Self {
        *self.by_state.entry(state.as_str().to_owned()).or_default() += n;
        self.total += n;
        self
    }

    /// Connections in `state`.
    pub fn in_state(&self, state: &SessionState) -> u32 {
        self.by_state.get(state.as_str()).copied().unwrap_or(0)
    }

    /// The same stats with `n` slots reserved for privileged roles.
    #[must_use]
    pub fn with_reserved(mut self, n: u32) -> Self {
        self.reserved_connections = n;
        self
    }

    /// The slots ordinary roles may take: `max_connections` minus the reserved ones.
    pub fn usable_connections(&self) -> u32 {
        match self
            .max_connections
            .saturating_sub(self.reserved_connections)
        {
            0 => self.max_connections,
            n => n,
        }
    }

    /// `total / usable_connections` (0.0 when max is unknown): 1.0 means an ordinary role can
    /// no longer connect, even though reserved slots remain.
    pub fn utilisation(&self) -> f64 {
        match self.usable_connections() {
            0 => 0.0,
            usable => f64::from(self.total) / f64::from(usable),
        }
    }
}

/// Which sessions a call applies to. Every set field must match.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::database::{SessionFilter, SessionState};
/// let f = SessionFilter::default()
///     .with_state(SessionState::IdleInTransaction)
///     .idle_longer_than(Duration::from_secs(600));
/// assert!(!f.is_empty());
/// assert!(SessionFilter::default().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionFilter {
    /// Only these states (any of them).
    pub states: Vec<SessionState>,
    /// In the current state for longer than this.
    #[serde(with = "crate::serde_util::opt_duration_ms")]
    pub idle_longer_than: Option<Duration>,
    /// Running the current query for longer than this.
    #[serde(with = "crate::serde_util::opt_duration_ms")]
    pub running_longer_than: Option<Duration>,
    /// Only this user.
    pub user: Option<Identifier>,
    /// Only this database.
    pub database: Option<Identifier>,
    /// Only this `application_name`.
    pub application: Option<String>,
    /// Built by [`SessionFilter::all`]: matching every session is meant, not an oversight.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_all: bool,
}

impl SessionFilter {
    /// The filter that matches every client session, said explicitly. A filter with no
    /// criterion that was not built here is refused by [`Database::terminate`] as a guard.
    ///
    /// # Examples
    /// ```
    /// use ops_core::database::SessionFilter;
    /// assert!(SessionFilter::default().is_unbounded());
    /// assert!(!SessionFilter::all().is_unbounded());
    /// ```
    pub fn all() -> Self {
        Self {
            match_all: true,
            ..Self::default()
        }
    }

    /// `Ok` when this filter may guard a change; the [`OpsError::unbounded_guard`] error of
    /// `backend`'s `operation` when it is unbounded ([`SessionFilter::is_unbounded`]). Every backend
    /// calls this before it acts.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for an unbounded filter.
    ///
    /// # Examples
    /// ```
    /// use ops_core::database::SessionFilter;
    /// assert!(SessionFilter::default().require_bounded("pg", "terminate").is_err());
    /// assert!(SessionFilter::all().require_bounded("pg", "terminate").is_ok());
    /// ```
    pub fn require_bounded(
        &self,
        backend: &'static str,
        operation: &'static str,
    ) -> Result<(), OpsError> {
        if self.is_unbounded() {
            Err(OpsError::unbounded_guard(backend, operation))
        } else {
            Ok(())
        }
    }

    /// Whether this filter matches everyone without having been built by
    /// [`SessionFilter::all`] (refused as a guard of a change).
    pub fn is_unbounded(&self) -> bool {
        !self.match_all && self.is_empty()
    }

    /// Add a state.
    #[must_use]
    pub fn with_state(mut self, state: SessionState) -> Self {
        self.states.push(state);
        self
    }

    /// In the current state longer than `d`.
    #[must_use]
    pub fn idle_longer_than(mut self, d: Duration) -> Self {
        self.idle_longer_than = Some(d);
        self
    }

    /// Running the current query longer than `d`.
    #[must_use]
    pub fn running_longer_than(mut self, d: Duration) -> Self {
        self.running_longer_than = Some(d);
        self
    }

    /// Only `user`.
    #[must_use]
    pub fn with_user(mut self, user: Identifier) -> Self {
        self.user = Some(user);
        self
    }

    /// Only `database`.
    #[must_use]
    pub fn with_database(mut self, database: Identifier) -> Self {
        self.database = Some(database);
        self
    }

    /// Only `application_name = app`.
    #[must_use]
    pub fn with_application(mut self, app: impl Into<String>) -> Self {
        self.application = Some(app.into());
        self
    }

    /// Whether no criterion is set (matches every client session).
    pub fn is_empty(&self) -> bool {
        Self {
            match_all: false,
            ..self.clone()
        } == Self::default()
    }

    /// Whether `session` passes the filter (used by fakes and client-side checks).
    pub fn matches(&self, session: &Session) -> bool {
        (self.states.is_empty() || self.states.contains(&session.state))
            && self
                .idle_longer_than
                .is_none_or(|d| session.state_age.is_some_and(|a| a > d))
            && self
                .running_longer_than
                .is_none_or(|d| session.query_age.is_some_and(|a| a > d))
            && self
                .user
                .as_ref()
                .is_none_or(|u| session.user.as_deref() == Some(u.as_str()))
            && self
                .database
                .as_ref()
                .is_none_or(|db| session.database.as_deref() == Some(db.as_str()))
            && self
                .application
                .as_ref()
                .is_none_or(|a| session.application.as_deref() == Some(a.as_str()))
    }
}

/// One client session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// Backend pid.
    pub pid: Pid,
    /// User.
    pub user: Option<String>,
    /// Database.
    pub database: Option<String>,
    /// `application_name`.
    pub application: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// State.
    pub state: SessionState,
    /// Time in the current state.
    #[serde(with = "crate::serde_util::opt_duration_ms")]
    pub state_age: Option<Duration>,
    /// Time since the current query started.
    #[serde(with = "crate::serde_util::opt_duration_ms")]
    pub query_age: Option<Duration>,
    /// What it waits on, e.g. `Lock:transactionid`.
    pub wait_event: Option<String>,
    /// The current or last query, truncated.
    pub query: String,
}

impl Session {
    /// A session with a pid and state.
    pub fn new(pid: Pid, state: SessionState) -> Self {
        Self {
            pid,
            user: None,
            database: None,
            application: None,
            client_addr: None,
            state,
            state_age: None,
            query_age: None,
            wait_event: None,
            query: String::new(),
        }
    }

    /// Set the time in the current state.
    #[must_use]
    pub fn aged(mut self, age: Duration) -> Self {
        self.state_age = Some(age);
        self.query_age = Some(age);
        self
    }

    /// Set user and database.
    #[must_use]
    pub fn of(mut self, user: &str, database: &str) -> Self {
        self.user = Some(user.to_owned());
        self.database = Some(database.to_owned());
        self
    }

    /// One line describing the session, for plans and reports.
    pub fn describe(&self) -> String {
        let age = self
            .state_age
            .map(|a| format!(" for {}s", a.as_secs()))
            .unwrap_or_default();
        format!(
            "pid {} ({} on {}, {}{age})",
            self.pid,
            self.user.as_deref().unwrap_or("?"),
            self.database.as_deref().unwrap_or("?"),
            self.state
        )
    }
}

/// A query waiting on locks held by others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockedQuery {
    /// The waiting session.
    pub session: Session,
    /// Pids holding the locks it waits for (`pg_blocking_pids`).
    pub blocked_by: Vec<Pid>,
}

impl BlockedQuery {
    /// `session` waits on locks held by `blocked_by`.
    pub fn new(session: Session, blocked_by: Vec<Pid>) -> Self {
        Self {
            session,
            blocked_by,
        }
    }
}

/// Options for [`Database::slow_queries`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlowQueryOptions {
    /// At most this many (default 10).
    pub limit: u32,
    /// Order by mean (true) or total (false, default) time.
    pub by_mean: bool,
}

impl Default for SlowQueryOptions {
    fn default() -> Self {
        Self {
            limit: 10,
            by_mean: false,
        }
    }
}

/// One normalised statement from `pg_stat_statements`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SlowQuery {
    /// Normalised query text.
    pub query: String,
    /// Calls.
    pub calls: u64,
    /// Total execution time, ms.
    pub total_ms: f64,
    /// Mean execution time, ms.
    pub mean_ms: f64,
    /// Rows returned or affected.
    pub rows: u64,
}

impl SlowQuery {
    /// One statement's statistics.
    pub fn new(
        query: impl Into<String>,
        calls: u64,
        total_ms: f64,
        mean_ms: f64,
        rows: u64,
    ) -> Self {
        Self {
            query: query.into(),
            calls,
            total_ms,
            mean_ms,
            rows,
        }
    }
}

/// Size of one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DatabaseSize {
    /// Database name.
    pub name: String,
    /// Bytes on disk.
    pub bytes: u64,
}

impl DatabaseSize {
    /// A database size.
    pub fn new(name: impl Into<String>, bytes: u64) -> Self {
        Self {
            name: name.into(),
            bytes,
        }
    }
}

/// Size and row counts of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TableSize {
    /// The table.
    pub table: TableRef,
    /// Table, indexes and TOAST (`pg_total_relation_size`).
    pub total_bytes: u64,
    /// Indexes only.
    pub index_bytes: u64,
    /// Live rows (estimate).
    pub live_rows: u64,
    /// Dead rows (estimate).
    pub dead_rows: u64,
    /// Estimated bloat, bytes.
    pub bloat_bytes: u64,
}

impl TableSize {
    /// A table size.
    pub fn new(table: TableRef, total_bytes: u64) -> Self {
        Self {
            table,
            total_bytes,
            index_bytes: 0,
            live_rows: 0,
            dead_rows: 0,
            bloat_bytes: 0,
        }
    }

    /// Dead rows over all rows (0.0 when empty).
    pub fn dead_ratio(&self) -> f64 {
        let all = self.live_rows + self.dead_rows;
        #[allow(clippy::cast_precision_loss, reason = "a ratio")]
        if all == 0 {
            0.0
        } else {
            self.dead_rows as f64 / all as f64
        }
    }
}

/// Usage of one index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IndexUsage {
    /// The table.
    pub table: TableRef,
    /// The index name.
    pub index: Identifier,
    /// Index scans since stats reset.
    pub scans: u64,
    /// Size, bytes.
    pub bytes: u64,
    /// Unique or primary key (never "unused": it enforces a constraint).
    pub unique: bool,
}

impl IndexUsage {
    /// Usage of `index` on `table`.
    pub fn new(table: TableRef, index: Identifier, scans: u64, bytes: u64, unique: bool) -> Self {
        Self {
            table,
            index,
            scans,
            bytes,
            unique,
        }
    }

    /// Whether it is never scanned and enforces nothing.
    pub fn is_unused(&self) -> bool {
        self.scans == 0 && !self.unique
    }
}

/// A maintenance operation for [`Database::maintain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Maintenance {
    /// `VACUUM` (optionally `ANALYZE`): reclaims space for reuse, no exclusive lock.
    Vacuum {
        /// Also analyze.
        analyze: bool,
    },
    /// `VACUUM FULL`: rewrites the table, needs as much free disk as the table and an
    /// exclusive lock for the whole time. Backends warn about both.
    VacuumFull,
    /// `ANALYZE`: refresh planner statistics.
    Analyze,
    /// `REINDEX`: rebuild indexes.
    Reindex,
}

impl Maintenance {
    /// The SQL verb, e.g. `VACUUM (ANALYZE)`.
    pub fn sql_verb(self) -> &'static str {
        match self {
            Self::Vacuum { analyze: false } => "VACUUM",
            Self::Vacuum { analyze: true } => "VACUUM (ANALYZE)",
            Self::VacuumFull => "VACUUM (FULL)",
            Self::Analyze => "ANALYZE",
            Self::Reindex => "REINDEX TABLE",
        }
    }
}

/// What [`Database::maintain`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MaintenanceOutcome {
    /// The statement that ran (identifiers quoted).
    pub statement: String,
    /// How long it took.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub duration: Duration,
    /// Warnings (disk need, locks).
    pub warnings: Vec<String>,
}

impl MaintenanceOutcome {
    /// `statement` ran for `duration`.
    pub fn new(statement: impl Into<String>, duration: Duration, warnings: Vec<String>) -> Self {
        Self {
            statement: statement.into(),
            duration,
            warnings,
        }
    }
}

/// A server setting change ([`Database::set_setting`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SettingChange {
    /// Setting name.
    pub name: String,
    /// Value before.
    pub old: String,
    /// Value after.
    pub new: String,
    /// The setting only applies after a server restart (`pg_settings.context = postmaster`).
    pub needs_restart: bool,
}

impl SettingChange {
    /// `name` went from `old` to `new`.
    pub fn new(
        name: impl Into<String>,
        old: impl Into<String>,
        new: impl Into<String>,
        needs_restart: bool,
    ) -> Self {
        Self {
            name: name.into(),
            old: old.into(),
            new: new.into(),
            needs_restart,
        }
    }
}

/// Which rows [`Database::delete_older_than`] removes.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let opts = ops_core::database::RowRetention::new("public.events".parse()?, "created_at".parse()?, Duration::from_secs(90 * 86400))
///     .with_batch_size(5_000)
///     .with_max_rows(1_000_000);
/// assert_eq!(opts.batch_size, 5_000);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RowRetention {
    /// The table.
    pub table: TableRef,
    /// The timestamp column compared with now.
    pub column: Identifier,
    /// Rows older than this go.
    pub older_than: Duration,
    /// Rows per batch (short transactions; default 10 000).
    pub batch_size: u32,
    /// Stop after this many rows (the budget; default unlimited).
    pub max_rows: Option<u64>,
    /// Pause between batches.
    pub pause: Duration,
}

impl RowRetention {
    /// Delete rows of `table` whose `column` is older than `older_than`.
    pub fn new(table: TableRef, column: Identifier, older_than: Duration) -> Self {
        Self {
            table,
            column,
            older_than,
            batch_size: 10_000,
            max_rows: None,
            pause: Duration::ZERO,
        }
    }

    /// Set the batch size.
    #[must_use]
    pub fn with_batch_size(mut self, n: u32) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Set the row budget.
    #[must_use]
    pub fn with_max_rows(mut self, n: u64) -> Self {
        self.max_rows = Some(n);
        self
    }
}

/// What [`Database::delete_older_than`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RowsDeleted {
    /// Rows deleted.
    pub rows: u64,
    /// Batches run.
    pub batches: u64,
    /// Whether every matching row is gone (false when the budget stopped it).
    pub complete: bool,
}

impl RowsDeleted {
    /// A result.
    pub fn new(rows: u64, batches: u64, complete: bool) -> Self {
        Self {
            rows,
            batches,
            complete,
        }
    }
}

/// Replication lag of one replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReplicaLag {
    /// Replica name (`application_name`) or address.
    pub replica: String,
    /// Replication state (`streaming`...).
    pub state: String,
    /// Bytes behind the primary.
    pub lag_bytes: u64,
    /// Replay lag, when reported.
    #[serde(with = "crate::serde_util::opt_duration_ms")]
    pub replay_lag: Option<Duration>,
}

impl ReplicaLag {
    /// Lag of one replica.
    pub fn new(
        replica: impl Into<String>,
        state: impl Into<String>,
        lag_bytes: u64,
        replay_lag: Option<Duration>,
    ) -> Self {
        Self {
            replica: replica.into(),
            state: state.into(),
            lag_bytes,
            replay_lag,
        }
    }
}

/// Options for [`Database::backup`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupOptions {
    /// Database to dump.
    pub database: Identifier,
    /// Directory the dump and its `.sha256` sidecar go to.
    pub dir: PathBuf,
    /// Deadline for the whole dump.
    pub timeout: Option<Duration>,
}

impl BackupOptions {
    /// Back up `database` into `dir`.
    pub fn new(database: Identifier, dir: impl Into<PathBuf>) -> Self {
        Self {
            database,
            dir: dir.into(),
            timeout: None,
        }
    }
}

/// A backup file and its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BackupInfo {
    /// The dump file.
    pub path: PathBuf,
    /// Lowercase hex sha256 of the file (also in `<path>.sha256`).
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// When it was written.
    pub created_at: Option<jiff::Timestamp>,
    /// The database it came from.
    pub database: Option<String>,
}

impl BackupInfo {
    /// A backup description.
    pub fn new(path: impl Into<PathBuf>, sha256: impl Into<String>, bytes: u64) -> Self {
        Self {
            path: path.into(),
            sha256: sha256.into(),
            bytes,
            created_at: None,
            database: None,
        }
    }
}

/// Options for [`Database::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// The dump to restore (its sidecar is verified first).
    pub backup: PathBuf,
    /// The database to restore into.
    pub into: Identifier,
    /// Restore into a new scratch database, verify, then swap it in under `into`'s name
    /// (the old one is kept renamed). Default true.
    pub swap: bool,
    /// Deadline.
    pub timeout: Option<Duration>,
}

impl RestoreOptions {
    /// Restore `backup` into `into` via a scratch database and swap.
    pub fn new(backup: impl Into<PathBuf>, into: Identifier) -> Self {
        Self {
            backup: backup.into(),
            into,
            swap: true,
            timeout: None,
        }
    }
}

/// What [`Database::restore`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RestoreOutcome {
    /// The database now serving under the target name.
    pub database: String,
    /// Where the previous database went when swapped (renamed), if it existed.
    pub previous_renamed_to: Option<String>,
    /// The verified checksum.
    pub sha256: String,
}

impl RestoreOutcome {
    /// `database` now serves the restored data; the old one went to `previous_renamed_to`.
    pub fn new(
        database: impl Into<String>,
        previous_renamed_to: Option<String>,
        sha256: impl Into<String>,
    ) -> Self {
        Self {
            database: database.into(),
            previous_renamed_to,
            sha256: sha256.into(),
        }
    }
}

/// The marker in an error's source chain that the server refuses new connections because
/// every connection slot is taken (PostgreSQL's `too_many_connections`, SQLSTATE 53300).
///
/// The error itself is [`crate::ErrorKind::Unavailable`] (trying again later may help); this
/// marker tells exhaustion apart from a server that is down, so a runbook can say what it is
/// and act through a connection it already holds. Test for it with
/// [`is_connections_exhausted`].
///
/// # Examples
/// ```
/// use ops_core::database::{ConnectionsExhausted, is_connections_exhausted};
/// use ops_core::{ErrorKind, OpsError};
/// let err = OpsError::new(ErrorKind::Unavailable, "pg", "ping", "db:5432/app")
///     .with_source(ConnectionsExhausted::new());
/// assert!(is_connections_exhausted(&err));
/// assert!(!is_connections_exhausted(&OpsError::new(ErrorKind::Unavailable, "pg", "ping", "db")));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("every connection slot of the server is taken")]
pub struct ConnectionsExhausted {
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ConnectionsExhausted {
    /// The marker without an underlying error (fakes, tests).
    ///
    /// # Examples
    /// ```
    /// let marker = ops_core::database::ConnectionsExhausted::new();
    /// assert!(std::error::Error::source(&marker).is_none());
    /// ```
    pub fn new() -> Self {
        Self { source: None }
    }

    /// The marker around the backend's own error, which stays reachable through `source()`.
    ///
    /// # Examples
    /// ```
    /// let io = std::io::Error::other("too many clients");
    /// let marker = ops_core::database::ConnectionsExhausted::caused_by(io);
    /// assert!(std::error::Error::source(&marker).is_some());
    /// ```
    pub fn caused_by(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            source: Some(Box::new(source)),
        }
    }
}

impl Default for ConnectionsExhausted {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `err` says the server's connection slots are exhausted: a
/// [`ConnectionsExhausted`] anywhere in its source chain.
///
/// # Examples
/// ```
/// use ops_core::database::{ConnectionsExhausted, is_connections_exhausted};
/// use ops_core::{ErrorKind, OpsError};
/// let err = OpsError::new(ErrorKind::Unavailable, "pg", "ping", "db")
///     .with_source(ConnectionsExhausted::new());
/// assert!(is_connections_exhausted(&err));
/// ```
pub fn is_connections_exhausted(err: &OpsError) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = next {
        if e.is::<ConnectionsExhausted>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A relational database server.
///
/// Implemented by `ops-db` for PostgreSQL. Every call has a deadline (the backend's statement
/// timeout). Identifiers are quoted by the backend; nothing is spliced unquoted.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Database: fmt::Debug + Send + Sync + 'static {
    /// Short backend name, e.g. `"pg"`.
    fn backend(&self) -> &'static str;

    /// What this backend supports.
    fn capabilities(&self) -> DatabaseCapabilities;

    /// Round trip a trivial query.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unavailable`] when unreachable or the pool is exhausted;
    /// [`crate::ErrorKind::Timeout`]; [`crate::ErrorKind::PermissionDenied`] on auth failure.
    async fn ping(&self) -> Result<Ping, OpsError>;

    /// Version, uptime, `max_connections`.
    ///
    /// # Errors
    /// As [`Database::ping`].
    async fn server_info(&self) -> Result<ServerInfo, OpsError>;

    /// Client connections by state and database, against `max_connections`.
    ///
    /// # Errors
    /// As [`Database::ping`].
    async fn connection_stats(&self) -> Result<ConnectionStats, OpsError>;

    /// Client sessions matching `filter` (never our own, never background workers).
    ///
    /// # Errors
    /// As [`Database::ping`].
    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, OpsError>;

    /// Terminate exactly the sessions `pids` that still match `guard` now (in one statement);
    /// returns who was terminated. A pid that ended or no longer matches is left alone, and
    /// no session outside `pids` is ever touched: what was approved is what runs. Never our
    /// own session, never non-client backends. Acts at once: there is no rollback.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `guard` is unbounded (no criterion and not
    /// [`SessionFilter::all`]); [`crate::ErrorKind::PermissionDenied`] without the right; as
    /// [`Database::ping`].
    async fn terminate(
        &self,
        pids: &[Pid],
        guard: &SessionFilter,
    ) -> Result<Vec<Session>, OpsError>;

    /// Cancel the running query of `pid` (the session stays). Returns whether a query was cancelled.
    ///
    /// # Errors
    /// As [`Database::terminate`].
    async fn cancel(&self, pid: Pid) -> Result<bool, OpsError>;

    /// Queries running longer than `min`.
    ///
    /// # Errors
    /// As [`Database::ping`].
    async fn long_running(&self, min: Duration) -> Result<Vec<Session>, OpsError>;

    /// Queries waiting on locks, with who blocks them.
    ///
    /// # Errors
    /// As [`Database::ping`].
    async fn blocked(&self) -> Result<Vec<BlockedQuery>, OpsError>;

    /// The most expensive statements.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unsupported`] with a hint when `pg_stat_statements` is not installed.
    async fn slow_queries(&self, opts: SlowQueryOptions) -> Result<Vec<SlowQuery>, OpsError>;

    /// Size of every database.
    ///
    /// # Errors
    /// As [`Database::ping`].
    async fn database_sizes(&self) -> Result<Vec<DatabaseSize>, OpsError>;

    /// The `limit` largest tables of the connected database.
    ///
    /// # Errors
    /// As [`Database::ping`].
    async fn table_sizes(&self, limit: u32) -> Result<Vec<TableSize>, OpsError>;

    /// Index usage of the connected database.
    ///
    /// # Errors
    /// As [`Database::ping`].
    async fn index_usage(&self) -> Result<Vec<IndexUsage>, OpsError>;

    /// Run a maintenance operation on `table` (or the whole database), outside a transaction.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] for an unknown table; as [`Database::ping`].
    async fn maintain(
        &self,
        op: Maintenance,
        table: Option<TableRef>,
    ) -> Result<MaintenanceOutcome, OpsError>;

    /// Current value of a setting.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] for an unknown setting.
    async fn setting(&self, name: &str) -> Result<String, OpsError>;

    /// `ALTER SYSTEM SET` then `pg_reload_conf()`; says when a restart is needed.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for an unknown setting or bad value;
    /// [`crate::ErrorKind::PermissionDenied`].
    async fn set_setting(&self, name: &str, value: &str) -> Result<SettingChange, OpsError>;

    /// How many rows [`Database::delete_older_than`] would delete (its read half).
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] for an unknown table or column.
    async fn count_older_than(&self, retention: &RowRetention) -> Result<u64, OpsError>;

    /// Delete rows older than the retention age in bounded batches within the row budget.
    ///
    /// # Errors
    /// As [`Database::count_older_than`]; a failure mid-way is an error whose detail says how
    /// many rows were already deleted.
    async fn delete_older_than(&self, retention: &RowRetention) -> Result<RowsDeleted, OpsError>;

    /// Replication lag of each replica (empty without replicas).
    ///
    /// # Errors
    /// As [`Database::ping`].
    async fn replication(&self) -> Result<Vec<ReplicaLag>, OpsError>;

    /// Dump a database atomically (temp file, fsync, rename) with a `.sha256` sidecar.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unavailable`] when the dump tool or server fails; no partial file is left.
    async fn backup(&self, opts: &BackupOptions) -> Result<BackupInfo, OpsError>;

    /// Check a backup against its sidecar.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Conflict`] on a checksum mismatch; [`crate::ErrorKind::NotFound`].
    async fn verify_backup(&self, path: &Path) -> Result<BackupInfo, OpsError>;

    /// Backups in `dir`, newest first.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] when `dir` does not exist.
    async fn list_backups(&self, dir: &Path) -> Result<Vec<BackupInfo>, OpsError>;

    /// Restore a verified backup.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Conflict`] when the checksum does not match (nothing is touched).
    async fn restore(&self, opts: &RestoreOptions) -> Result<RestoreOutcome, OpsError>;
}

macro_rules! forward_database {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: Database + ?Sized> Database for $ptr<T> {
            fn backend(&self) -> &'static str { (**self).backend() }
            fn capabilities(&self) -> DatabaseCapabilities { (**self).capabilities() }
            async fn ping(&self) -> Result<Ping, OpsError> { (**self).ping().await }
            async fn server_info(&self) -> Result<ServerInfo, OpsError> { (**self).server_info().await }
            async fn connection_stats(&self) -> Result<ConnectionStats, OpsError> { (**self).connection_stats().await }
            async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, OpsError> { (**self).sessions(filter).await }
            async fn terminate(&self, pids: &[Pid], guard: &SessionFilter) -> Result<Vec<Session>, OpsError> { (**self).terminate(pids, guard).await }
            async fn cancel(&self, pid: Pid) -> Result<bool, OpsError> { (**self).cancel(pid).await }
            async fn long_running(&self, min: Duration) -> Result<Vec<Session>, OpsError> { (**self).long_running(min).await }
            async fn blocked(&self) -> Result<Vec<BlockedQuery>, OpsError> { (**self).blocked().await }
            async fn slow_queries(&self, opts: SlowQueryOptions) -> Result<Vec<SlowQuery>, OpsError> { (**self).slow_queries(opts).await }
            async fn database_sizes(&self) -> Result<Vec<DatabaseSize>, OpsError> { (**self).database_sizes().await }
            async fn table_sizes(&self, limit: u32) -> Result<Vec<TableSize>, OpsError> { (**self).table_sizes(limit).await }
            async fn index_usage(&self) -> Result<Vec<IndexUsage>, OpsError> { (**self).index_usage().await }
            async fn maintain(&self, op: Maintenance, table: Option<TableRef>) -> Result<MaintenanceOutcome, OpsError> { (**self).maintain(op, table).await }
            async fn setting(&self, name: &str) -> Result<String, OpsError> { (**self).setting(name).await }
            async fn set_setting(&self, name: &str, value: &str) -> Result<SettingChange, OpsError> { (**self).set_setting(name, value).await }
            async fn count_older_than(&self, retention: &RowRetention) -> Result<u64, OpsError> { (**self).count_older_than(retention).await }
            async fn delete_older_than(&self, retention: &RowRetention) -> Result<RowsDeleted, OpsError> { (**self).delete_older_than(retention).await }
            async fn replication(&self) -> Result<Vec<ReplicaLag>, OpsError> { (**self).replication().await }
            async fn backup(&self, opts: &BackupOptions) -> Result<BackupInfo, OpsError> { (**self).backup(opts).await }
            async fn verify_backup(&self, path: &Path) -> Result<BackupInfo, OpsError> { (**self).verify_backup(path).await }
            async fn list_backups(&self, dir: &Path) -> Result<Vec<BackupInfo>, OpsError> { (**self).list_backups(dir).await }
            async fn restore(&self, opts: &RestoreOptions) -> Result<RestoreOutcome, OpsError> { (**self).restore(opts).await }
        }
    )*};
}
forward_database!(Arc, Box);
