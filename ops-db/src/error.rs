//! [`Error`]: everything that can go wrong in `ops-db`, mapped to [`OpsError`] by meaning.

use std::time::Duration;

use ops_core::{ErrorKind, OpsError};

/// The backend name in every [`OpsError`] raised by [`crate::PgDatabase`].
pub(crate) const BACKEND: &str = "pg";

/// The detail of an exhausted server's error.
const EXHAUSTED: &str = "connections exhausted: the server refuses new connections \
     (too_many_connections); act through a connection opened before \
     (PgDatabase::hold_connection) or a role allowed reserved connections (ops-db README, \
     \"Operator role\")";

/// A shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in `ops-db`. Messages name the operation and target, never a URL or password.
///
/// Converts into [`OpsError`] by meaning; the original stays reachable through `source()`.
///
/// # Examples
/// ```
/// use ops_core::{ErrorKind, OpsError};
/// let err = ops_db::Error::ChecksumMismatch {
///     target: "/backups/app.dump".into(),
///     expected: "aa".into(),
///     actual: "bb".into(),
/// };
/// let ops: OpsError = err.into();
/// assert_eq!(ops.kind(), ErrorKind::Conflict);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (missing or malformed URL, zero timeout).
    #[error("invalid PostgreSQL configuration: {0}")]
    Config(String),
    /// A query failed.
    #[error("pg {operation} failed on {target}")]
    Query {
        /// The operation, e.g. `"terminate"`.
        operation: &'static str,
        /// What it acted on (never a URL).
        target: String,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
    /// The call did not finish within its deadline.
    #[error("pg {operation} on {target} did not finish within {after:?}")]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// What it acted on.
        target: String,
        /// The deadline.
        after: Duration,
    },
    /// Something asked for does not exist (table, column, setting, backup, sidecar).
    #[error("pg {operation}: {target} not found")]
    NotFound {
        /// The operation.
        operation: &'static str,
        /// What is missing.
        target: String,
    },
    /// The input is invalid (bad setting value, hostile path).
    #[error("pg {operation}: invalid input for {target}: {reason}")]
    Invalid {
        /// The operation.
        operation: &'static str,
        /// The offending value.
        target: String,
        /// Why.
        reason: String,
    },
    /// The server lacks what the operation needs; `hint` says how to get it.
    #[error("pg {operation} is not available on {target}: {hint}")]
    Unsupported {
        /// The operation.
        operation: &'static str,
        /// The server.
        target: String,
        /// How to enable it.
        hint: String,
    },
    /// The operator role lacks a privilege the operation needs; `grant` says which to give.
    ///
    /// Raised where PostgreSQL would not refuse but silently do less: sessions of other roles
    /// whose state and query are hidden, a `VACUUM` that skips a table it may not maintain.
    #[error("pg {operation} on {target}: permission denied")]
    Privilege {
        /// The operation.
        operation: &'static str,
        /// What it acted on.
        target: String,
        /// The grant to give the operator role.
        grant: String,
    },
    /// A backup does not match its `.sha256` sidecar.
    #[error("backup {target} does not match its checksum")]
    ChecksumMismatch {
        /// The backup file.
        target: String,
        /// The sidecar's checksum.
        expected: String,
        /// The file's checksum.
        actual: String,
    },
    /// `pg_dump` or `pg_restore` could not be started.
    #[error("cannot run {tool} for {operation} of {target}")]
    Spawn {
        /// The operation.
        operation: &'static str,
        /// What it acted on.
        target: String,
        /// The program.
        tool: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `pg_dump` or `pg_restore` exited unsuccessfully.
    #[error("{tool} failed for {operation} of {target} ({status}): {stderr}")]
    Tool {
        /// The operation.
        operation: &'static str,
        /// What it acted on.
        target: String,
        /// The program.
        tool: &'static str,
        /// The exit status.
        status: String,
        /// The last lines of its standard error.
        stderr: String,
    },
    /// A file operation failed.
    #[error("pg {operation}: file operation failed on {target}")]
    Io {
        /// The operation.
        operation: &'static str,
        /// The path.
        target: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A batched delete failed after some batches committed.
    #[error("pg {operation} on {target} failed after deleting {deleted} rows in {batches} batches")]
    PartialDelete {
        /// The operation.
        operation: &'static str,
        /// The table.
        target: String,
        /// Rows already deleted (committed).
        deleted: u64,
        /// Batches committed.
        batches: u64,
        /// The failure.
        #[source]
        source: Box<Error>,
    },
    /// An operation failed and cleaning up after it failed too; `leftover` says what remains.
    #[error("pg {operation} on {target} failed, and cleaning up failed too: {leftover}")]
    Compensation {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// What remains to be cleaned up by hand.
        leftover: String,
        /// What made the operation fail.
        #[source]
        source: Box<Error>,
    },
    /// A restored scratch database failed verification; the target was not touched.
    #[error("restore of {target} did not verify: {reason}")]
    RestoreVerification {
        /// The target database.
        target: String,
        /// What did not match.
        reason: String,
    },
    /// A journal entry could not be encoded or decoded.
    #[error("journal {operation} could not (de)serialize an entry of {target}")]
    Codec {
        /// The operation.
        operation: &'static str,
        /// The run.
        target: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Journal migrations failed.
    #[error("journal migration failed on {target}")]
    Migrate {
        /// The store.
        target: String,
        /// Why.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

impl Error {
    pub(crate) fn query(
        operation: &'static str,
        target: impl Into<String>,
        source: sqlx::Error,
    ) -> Self {
        Self::Query {
            operation,
            target: target.into(),
            source,
        }
    }

    pub(crate) fn io(
        operation: &'static str,
        target: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            operation,
            target: target.into(),
            source,
        }
    }

    /// The operation that failed.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Config(_) => "build",
            Self::ChecksumMismatch { .. } => "verify_backup",
            Self::RestoreVerification { .. } => "restore",
            Self::Migrate { .. } => "journal_migrate",
            Self::Query { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::NotFound { operation, .. }
            | Self::Invalid { operation, .. }
            | Self::Unsupported { operation, .. }
            | Self::Privilege { operation, .. }
            | Self::Spawn { operation, .. }
            | Self::Tool { operation, .. }
            | Self::Io { operation, .. }
            | Self::PartialDelete { operation, .. }
            | Self::Compensation { operation, .. }
            | Self::Codec { operation, .. } => operation,
        }
    }

    /// What the operation acted on (never a secret).
    pub fn target(&self) -> &str {
        match self {
            Self::Config(_) => "config",
            Self::Query { target, .. }
            | Self::Timeout { target, .. }
            | Self::NotFound { target, .. }
            | Self::Invalid { target, .. }
            | Self::Unsupported { target, .. }
            | Self::Privilege { target, .. }
            | Self::ChecksumMismatch { target, .. }
            | Self::RestoreVerification { target, .. }
            | Self::Spawn { target, .. }
            | Self::Tool { target, .. }
            | Self::Io { target, .. }
            | Self::PartialDelete { target, .. }
            | Self::Compensation { target, .. }
            | Self::Codec { target, .. }
            | Self::Migrate { target, .. } => target,
        }
    }

    /// The [`ErrorKind`] this error means.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) | Self::Invalid { .. } => ErrorKind::InvalidInput,
            Self::Query { source, .. } => sqlx_kind(source),
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Privilege { .. } => ErrorKind::PermissionDenied,
            Self::ChecksumMismatch { .. } => ErrorKind::Conflict,
            Self::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::Unsupported
            }
            Self::Spawn { .. } => ErrorKind::Backend,
            Self::Tool { stderr, .. } => tool_kind(stderr),
            Self::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
                _ => ErrorKind::Backend,
            },
            Self::PartialDelete { source, .. } | Self::Compensation { source, .. } => source.kind(),
            // A migration the role may not run (no CREATE on the database for the schema).
            Self::Migrate {
                source: sqlx::migrate::MigrateError::Execute(e),
                ..
            } => match sqlx_kind(e) {
                ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Backend,
            },
            Self::Codec { .. } | Self::Migrate { .. } | Self::RestoreVerification { .. } => {
                ErrorKind::Backend
            }
        }
    }

    /// Whether the server refused a connection because every slot is taken
    /// (`too_many_connections`, SQLSTATE 53300); its [`OpsError`] carries
    /// [`ops_core::database::ConnectionsExhausted`].
    ///
    /// # Examples
    /// ```
    /// let err = ops_db::Error::Config("x".into());
    /// assert!(!err.is_connections_exhausted());
    /// ```
    pub fn is_connections_exhausted(&self) -> bool {
        match self {
            Self::Query { source, .. } => has_sqlstate(source, "53300"),
            Self::PartialDelete { source, .. } | Self::Compensation { source, .. } => {
                source.is_connections_exhausted()
            }
            _ => false,
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Self::Config(reason)
            | Self::Invalid { reason, .. }
            | Self::RestoreVerification { reason, .. } => Some(reason.clone()),
            Self::Unsupported { hint, .. } | Self::Privilege { grant: hint, .. } => {
                Some(hint.clone())
            }
            Self::Query {
                operation, source, ..
            } if has_sqlstate(source, "42501") => Some(required_grant(operation).to_owned()),
            Self::Migrate {
                source: sqlx::migrate::MigrateError::Execute(e),
                ..
            } if has_sqlstate(e, "42501") => Some(required_grant("journal_migrate").to_owned()),
            Self::ChecksumMismatch {
                expected, actual, ..
            } => Some(format!(
                "sidecar says {expected}, file hashes to {actual}; nothing was restored"
            )),
            Self::PartialDelete {
                deleted, batches, ..
            } => Some(format!(
                "{deleted} rows were already deleted in {batches} committed batches"
            )),
            Self::Timeout { after, .. } => Some(format!("deadline {after:?}")),
            // pg_dump / pg_restore refused by the server: name the grant, then what it said.
            Self::Tool {
                operation,
                stderr,
                status,
                ..
            } if tool_kind(stderr) == ErrorKind::PermissionDenied
                && !stderr.contains("password authentication failed") =>
            {
                Some(format!("{}; {status}: {stderr}", required_grant(operation)))
            }
            Self::Tool { stderr, status, .. } => Some(format!("{status}: {stderr}")),
            Self::Spawn { tool, .. } => Some(format!(
                "{tool} could not be started; install the PostgreSQL client tools (postgresql-client) \
                 or set PgDatabaseConfig::pg_dump / pg_restore"
            )),
            _ => None,
        }
    }
}

/// Whether `err` is a database error with SQLSTATE `code`.
pub(crate) fn has_sqlstate(err: &sqlx::Error, code: &str) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some(code))
}

/// The grant `operation` needs, for the detail of an `insufficient_privilege` (42501) error.
/// ops-db's README ("Operator role") lists the same grants per runbook.
pub(crate) fn required_grant(operation: &str) -> &'static str {
    match operation {
        "terminate" | "cancel" => {
            "grant pg_signal_backend to the operator role (GRANT pg_signal_backend TO <role>); \
             sessions of a superuser can only be ended by a superuser"
        }
        "sessions" | "long_running" | "blocked" | "connection_stats" | "slow_queries"
        | "database_sizes" | "table_sizes" | "index_usage" | "replication" => {
            "grant pg_monitor to the operator role (GRANT pg_monitor TO <role>)"
        }
        "maintain" => {
            "the operator role must own the table (ALTER TABLE <table> OWNER TO <role>), or on \
             PostgreSQL 17+ hold MAINTAIN on it (GRANT MAINTAIN ON <table> TO <role>, or GRANT pg_maintain TO <role>)"
        }
        "count_older_than" | "delete_older_than" => {
            "grant SELECT and DELETE on the table (GRANT SELECT, DELETE ON <table> TO <role>)"
        }
        "set_setting" => {
            "ALTER SYSTEM needs a superuser, or GRANT ALTER SYSTEM ON PARAMETER <name> TO <role> \
             (PostgreSQL 15+) and GRANT EXECUTE ON FUNCTION pg_reload_conf() TO <role>"
        }
        "backup" => {
            "grant pg_read_all_data to the operator role (GRANT pg_read_all_data TO <role>)"
        }
        "restore" => {
            "the operator role needs CREATEDB (ALTER ROLE <role> CREATEDB) and must own the target database"
        }
        "journal_open" | "journal_migrate" | "journal_append" => {
            "grant CREATE on the database (GRANT CREATE ON DATABASE <db> TO <role>) for the journal \
             schema, or open it with PgJournal::open_existing after an administrator created it"
        }
        _ => {
            "the operator role lacks a privilege this operation needs: see ops-db's README, \
              section \"Operator role\""
        }
    }
}

/// Map a driver error by meaning: SQLSTATE classes, I/O, pool exhaustion.
fn sqlx_kind(err: &sqlx::Error) -> ErrorKind {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::Configuration(_) => ErrorKind::InvalidInput,
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        sqlx::Error::Database(db) => db.code().map_or(ErrorKind::Backend, |c| sqlstate_kind(&c)),
        _ => ErrorKind::Backend,
    }
}

/// Map a SQLSTATE to a kind.
pub(crate) fn sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        // query_canceled: statement_timeout or lock_timeout (55P03) fired.
        "57014" | "55P03" => ErrorKind::Timeout,
        // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections.
        "57P01" | "57P02" | "57P03" | "53300" => ErrorKind::Unavailable,
        c if c.starts_with("08") => ErrorKind::Unavailable,
        c if c.starts_with("28") => ErrorKind::PermissionDenied,
        "42501" => ErrorKind::PermissionDenied,
        // undefined_table, undefined_column, undefined_object, invalid_catalog_name, undefined_function.
        "42P01" | "42703" | "42704" | "3D000" | "42883" => ErrorKind::NotFound,
        // invalid_parameter_value, syntax error, invalid text representation, cant_change_runtime_param.
        "22023" | "42601" | "22P02" | "55P02" | "22007" | "22008" => ErrorKind::InvalidInput,
        // object_in_use, serialization failure, deadlock, duplicate database/object.
        "55006" | "40001" | "40P01" | "42P04" | "42710" => ErrorKind::Conflict,
        // object_not_in_prerequisite_state (e.g. pg_stat_statements not preloaded).
        "55000" => ErrorKind::Unsupported,
        _ => ErrorKind::Backend,
    }
}

/// Map a failed `pg_dump`/`pg_restore` by what it printed.
fn tool_kind(stderr: &str) -> ErrorKind {
    let s = stderr.to_ascii_lowercase();
    if s.contains("password authentication failed") || s.contains("permission denied") {
        ErrorKind::PermissionDenied
    } else if s.contains("does not exist") && s.contains("database") {
        ErrorKind::NotFound
    } else if s.contains("timeout") || s.contains("canceling statement due to statement timeout") {
        ErrorKind::Timeout
    } else {
        // Connection refused or lost, server shut down, killed mid-dump: the dump tool or
        // server failed (the trait documents Unavailable for this).
        ErrorKind::Unavailable
    }
}

impl From<Error> for OpsError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let detail = err.detail();
        let mut ops = OpsError::new(kind, BACKEND, err.operation(), err.target().to_owned());
        if err.is_connections_exhausted() {
            // Unavailable (it may pass), marked so a runbook can tell it from a server that is down.
            return ops
                .with_detail(EXHAUSTED)
                .with_source(ops_core::database::ConnectionsExhausted::caused_by(err));
        }
        if let Some(detail) = detail {
            ops = ops.with_detail(detail);
        }
        ops.with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_by_meaning() {
        assert_eq!(sqlstate_kind("57014"), ErrorKind::Timeout);
        assert_eq!(sqlstate_kind("53300"), ErrorKind::Unavailable);
        assert_eq!(sqlstate_kind("08006"), ErrorKind::Unavailable);
        assert_eq!(sqlstate_kind("28P01"), ErrorKind::PermissionDenied);
        assert_eq!(sqlstate_kind("42P01"), ErrorKind::NotFound);
        assert_eq!(sqlstate_kind("22023"), ErrorKind::InvalidInput);
        assert_eq!(sqlstate_kind("XX000"), ErrorKind::Backend);
    }

    #[test]
    fn pool_exhaustion_is_unavailable_and_retryable() {
        let ops: OpsError = Error::query("ping", "db:5432/app", sqlx::Error::PoolTimedOut).into();
        assert_eq!(ops.kind(), ErrorKind::Unavailable);
        assert!(ops.is_retryable());
        assert_eq!(ops.backend(), "pg");
        assert_eq!(ops.target(), "db:5432/app");
        assert!(std::error::Error::source(&ops).is_some());
    }

    #[test]
    fn partial_delete_keeps_inner_kind_and_reports_progress() {
        let inner = Error::Timeout {
            operation: "delete_older_than",
            target: "public.events".into(),
            after: Duration::from_secs(1),
        };
        let err = Error::PartialDelete {
            operation: "delete_older_than",
            target: "public.events".into(),
            deleted: 500,
            batches: 5,
            source: Box::new(inner),
        };
        let ops: OpsError = err.into();
        assert_eq!(ops.kind(), ErrorKind::Timeout);
        assert!(ops.detail().unwrap().contains("500 rows"));
    }
}
