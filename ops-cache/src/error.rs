//! [`Error`]: what can go wrong talking to Redis, and its mapping to [`OpsError`].

use std::time::Duration;

use ops_core::{ErrorKind, OpsError};

/// A shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in `ops-cache`.
///
/// Converts into [`OpsError`] by meaning (see the `From` impl); the original error stays
/// reachable through [`std::error::Error::source`]. No variant carries a URL or a password:
/// targets are `host:port`.
///
/// # Examples
/// ```
/// use ops_cache::Error;
/// let err = Error::Config { reason: "OPSBOOK_REDIS_URL is not set".into() };
/// let ops: ops_core::OpsError = err.into();
/// assert_eq!(ops.kind(), ops_core::ErrorKind::InvalidInput);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (bad URL, unreadable CA file, bad number).
    #[error("invalid redis configuration: {reason}")]
    Config {
        /// What is wrong (never a secret).
        reason: String,
    },
    /// A command failed (connection refused or dropped, server error, auth failure).
    #[error("redis {command} failed on {target}")]
    Command {
        /// The command, e.g. `"SCAN"`.
        command: &'static str,
        /// `host:port`.
        target: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A command did not answer within its deadline.
    #[error("redis {command} timed out after {after:?} on {target}")]
    Timeout {
        /// The command, e.g. `"INFO"`.
        command: &'static str,
        /// `host:port`.
        target: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The server answered something this crate cannot interpret.
    #[error("unexpected reply to redis {command} from {target}: {detail}")]
    Protocol {
        /// The command.
        command: &'static str,
        /// `host:port`.
        target: String,
        /// What was unexpected.
        detail: String,
    },
    /// `BGSAVE` finished but the server reports it failed.
    #[error("redis snapshot failed on {target}: {status}")]
    SnapshotFailed {
        /// `host:port`.
        target: String,
        /// `rdb_last_bgsave_status`.
        status: String,
    },
    /// A purge stopped part-way; `deleted` keys are gone, a rerun deletes the rest.
    #[error("redis purge of {pattern} on {target} interrupted after deleting {deleted} keys")]
    PurgeInterrupted {
        /// The pattern as sent to `SCAN MATCH` (key prefix included).
        pattern: String,
        /// `host:port`.
        target: String,
        /// Keys in the scanned databases when the purge began.
        scanned: u64,
        /// Matching keys seen so far.
        matched: u64,
        /// Keys unlinked before the failure.
        deleted: u64,
        /// Why it stopped.
        #[source]
        source: Box<Error>,
    },
    /// The server or this backend cannot do it (e.g. a command disabled by ACL rename).
    #[error("redis {operation} is not supported on {target}: {reason}")]
    Unsupported {
        /// The operation.
        operation: &'static str,
        /// `host:port`.
        target: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The operation name used in [`OpsError`]: `ping`, `info`, `purge`, ...
    ///
    /// # Examples
    /// ```
    /// let err = ops_cache::Error::Config { reason: "x".into() };
    /// assert_eq!(err.operation(), "configure");
    /// ```
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Config { .. } => "configure",
            Self::Command { command, .. }
            | Self::Timeout { command, .. }
            | Self::Protocol { command, .. } => command_operation(command),
            Self::SnapshotFailed { .. } => "snapshot",
            Self::PurgeInterrupted { .. } => "purge",
            Self::Unsupported { operation, .. } => operation,
        }
    }

    /// What the failing call acted on: `host:port` (never a URL or a password).
    ///
    /// # Examples
    /// ```
    /// let err = ops_cache::Error::Config { reason: "x".into() };
    /// assert_eq!(err.target(), "redis");
    /// ```
    pub fn target(&self) -> &str {
        match self {
            Self::Config { .. } => "redis",
            Self::Command { target, .. }
            | Self::Timeout { target, .. }
            | Self::Protocol { target, .. }
            | Self::SnapshotFailed { target, .. }
            | Self::PurgeInterrupted { target, .. }
            | Self::Unsupported { target, .. } => target,
        }
    }

    /// Keys deleted before a purge stopped ([`Error::PurgeInterrupted`]), else `None`.
    ///
    /// # Examples
    /// ```
    /// let err = ops_cache::Error::Config { reason: "x".into() };
    /// assert_eq!(err.deleted_so_far(), None);
    /// ```
    pub fn deleted_so_far(&self) -> Option<u64> {
        match self {
            Self::PurgeInterrupted { deleted, .. } => Some(*deleted),
            _ => None,
        }
    }

    /// The [`ErrorKind`] this error maps to.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let err = ops_cache::Error::Timeout { command: "PING", target: "cache:6379".into(), after: Duration::from_secs(1) };
    /// assert_eq!(err.kind(), ops_core::ErrorKind::Timeout);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config { .. } => ErrorKind::InvalidInput,
            Self::Command { source, .. } => redis_kind(source),
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Protocol { .. } | Self::SnapshotFailed { .. } => ErrorKind::Backend,
            Self::PurgeInterrupted { source, .. } => source.kind(),
            Self::Unsupported { .. } => ErrorKind::Unsupported,
        }
    }
}

/// Map a client error by meaning.
fn redis_kind(err: &redis::RedisError) -> ErrorKind {
    use redis::{ErrorKind as K, ServerErrorKind as S};
    if err.is_timeout() {
        return ErrorKind::Timeout;
    }
    match err.kind() {
        K::AuthenticationFailed | K::Server(S::NoPerm) => return ErrorKind::PermissionDenied,
        K::InvalidClientConfig => return ErrorKind::InvalidInput,
        K::Server(S::BusyLoading | S::TryAgain | S::ClusterDown | S::MasterDown) => {
            return ErrorKind::Unavailable;
        }
        K::Server(S::ReadOnly) => return ErrorKind::Conflict,
        _ => {}
    }
    if matches!(err.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM")) {
        return ErrorKind::PermissionDenied;
    }
    if err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || matches!(err.kind(), K::ClusterConnectionNotFound)
    {
        return ErrorKind::Unavailable;
    }
    ErrorKind::Backend
}

/// The trait-level operation name for a Redis command.
fn command_operation(command: &str) -> &'static str {
    match command {
        "PING" | "CONNECT" => "ping",
        "INFO" | "CLUSTER SLOTS" => "info",
        "SCAN" | "DBSIZE" => "scan",
        "UNLINK" => "purge",
        "FLUSHDB" | "FLUSHALL" => "flush",
        "BGSAVE" | "LASTSAVE" => "snapshot",
        "BGREWRITEAOF" => "rewrite_aof",
        "MEMORY DOCTOR" => "memory_doctor",
        "CLIENT LIST" | "CLIENT ID" => "clients",
        "CLIENT KILL" => "kill_clients",
        "SLOWLOG GET" => "slowlog",
        _ => "command",
    }
}

impl From<Error> for OpsError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let operation = err.operation();
        let target = err.target().to_owned();
        let detail = match &err {
            Error::PurgeInterrupted {
                deleted,
                matched,
                scanned,
                ..
            } => Some(format!(
                "purge interrupted: deleted {deleted} of {matched} matching keys seen so far \
                 ({scanned} keys in scope); rerun to finish"
            )),
            Error::Config { reason } | Error::Unsupported { reason, .. } => Some(reason.clone()),
            Error::SnapshotFailed { status, .. } => {
                Some(format!("rdb_last_bgsave_status: {status}"))
            }
            _ => None,
        };
        let ops = OpsError::new(kind, "redis", operation, target).with_source(err);
        match detail {
            Some(detail) => ops.with_detail(detail),
            None => ops,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error() -> redis::RedisError {
        redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ))
    }

    #[test]
    fn refused_connection_is_unavailable() {
        let err = Error::Command {
            command: "PING",
            target: "cache:6379".into(),
            source: io_error(),
        };
        let ops = OpsError::from(err);
        assert_eq!(ops.kind(), ErrorKind::Unavailable);
        assert_eq!(ops.operation(), "ping");
        assert_eq!(ops.target(), "cache:6379");
        assert!(ops.is_retryable());
    }

    #[test]
    fn auth_failure_is_permission_denied() {
        let source = redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "denied"));
        let err = Error::Command {
            command: "PING",
            target: "cache:6379".into(),
            source,
        };
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn interrupted_purge_carries_the_deleted_count_in_detail_and_source() {
        let err = Error::PurgeInterrupted {
            pattern: "session:*".into(),
            target: "cache:6379".into(),
            scanned: 100,
            matched: 60,
            deleted: 42,
            source: Box::new(Error::Command {
                command: "UNLINK",
                target: "cache:6379".into(),
                source: io_error(),
            }),
        };
        assert_eq!(err.deleted_so_far(), Some(42));
        let ops = OpsError::from(err);
        assert_eq!(ops.kind(), ErrorKind::Unavailable);
        assert_eq!(ops.operation(), "purge");
        assert!(ops.detail().unwrap().contains("deleted 42"));
        let source = std::error::Error::source(&ops).unwrap();
        let typed = source.downcast_ref::<Error>().unwrap();
        assert_eq!(typed.deleted_so_far(), Some(42));
    }

    #[test]
    fn messages_are_lowercase_and_do_not_repeat_the_source() {
        let err = Error::Command {
            command: "INFO",
            target: "cache:6379".into(),
            source: io_error(),
        };
        assert_eq!(err.to_string(), "redis INFO failed on cache:6379");
    }
}
