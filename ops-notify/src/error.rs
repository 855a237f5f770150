//! [`Error`]: what can go wrong delivering a notification, mapped to [`OpsError`] by meaning.

use ops_core::{ErrorKind, OpsError};

/// What went wrong while building or using a notifier.
///
/// Messages never contain webhook URLs or keys: receivers are named (`slack`, `pagerduty`)
/// and shown as `host:port`.
///
/// # Examples
/// ```
/// let err = ops_notify::SlackNotifier::builder().build().unwrap_err();
/// assert!(matches!(err, ops_notify::Error::Config { .. }));
/// let ops: ops_core::OpsError = err.into();
/// assert_eq!(ops.kind(), ops_core::ErrorKind::InvalidInput);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or invalid.
    #[error("invalid configuration for {receiver}: {why}")]
    Config {
        /// The receiver name.
        receiver: String,
        /// What is wrong.
        why: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the http client for {receiver}")]
    Client {
        /// The receiver name.
        receiver: String,
        /// The client error (URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// No answer arrived (refused, reset, timeout) after every retry.
    #[error("{receiver} at {target} could not be reached after {attempts} attempts")]
    Transport {
        /// The receiver name.
        receiver: String,
        /// `host:port`.
        target: String,
        /// Attempts made.
        attempts: u32,
        /// The last transport error (URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// The receiver answered with an error status (after retries for 429 and 5xx).
    #[error("{receiver} at {target} answered {status} after {attempts} attempts: {message}")]
    Status {
        /// The receiver name.
        receiver: String,
        /// `host:port`.
        target: String,
        /// The HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The start of the answer body, with every secret the request carried (URL path and
        /// query, routing key, header values) redacted and control characters escaped: at
        /// most [`ops_core::text::PEER_MAX`] characters
        /// ([`ops_core::text::Redactor::peer_text`]).
        message: String,
    },
    /// Writing to the console failed.
    #[error("cannot write the notification to the console")]
    Write(#[source] std::io::Error),
    /// Some receivers of a [`crate::Router`] failed; the others got the notification.
    #[error("{} of {total} receivers failed: {}", failed.len(), failed.join(", "))]
    Partial {
        /// Names of the receivers that failed.
        failed: Vec<String>,
        /// Receivers tried.
        total: usize,
        /// The kind most worth acting on among the failures.
        kind: ErrorKind,
    },
}

/// A shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn receiver(&self) -> String {
        match self {
            Self::Config { receiver, .. }
            | Self::Client { receiver, .. }
            | Self::Transport { receiver, .. }
            | Self::Status { receiver, .. } => receiver.clone(),
            Self::Write(_) => "console".to_owned(),
            Self::Partial { .. } => "router".to_owned(),
        }
    }

    /// The [`ErrorKind`] this error maps to.
    ///
    /// # Examples
    /// ```
    /// let err = ops_notify::Error::Status { receiver: "slack".into(), target: "hooks.slack.com:443".into(),
    ///     status: 403, attempts: 1, message: "invalid_token".into() };
    /// assert_eq!(err.kind(), ops_core::ErrorKind::PermissionDenied);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config { .. } | Self::Client { .. } => ErrorKind::InvalidInput,
            Self::Transport { source, .. } if source.is_timeout() => ErrorKind::Timeout,
            Self::Transport { .. } | Self::Write(_) => ErrorKind::Unavailable,
            Self::Status { status, .. } => match status {
                401 | 403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                400 | 413 | 422 => ErrorKind::InvalidInput,
                408 | 504 => ErrorKind::Timeout,
                429 | 500..=599 => ErrorKind::Unavailable,
                _ => ErrorKind::Backend,
            },
            Self::Partial { kind, .. } => *kind,
        }
    }
}

impl From<Error> for OpsError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let target = err.receiver();
        OpsError::new(kind, "notify", "send", target).with_source(err)
    }
}
