//! [`Error`]: what went wrong talking to the Docker engine, mapped to [`OpsError`] by meaning.

use std::time::Duration;

use ops_core::{ErrorKind, OpsError};

/// The backend name used in errors and spans.
pub(crate) const BACKEND: &str = "compose";

/// An ops-compose failure. Converts into [`OpsError`] by meaning: 404 -> `NotFound`,
/// 409 -> `Conflict`, 401/403 -> `PermissionDenied`, refused/reset/5xx -> `Unavailable`,
/// deadline -> `Timeout`, anything else -> `Backend`.
///
/// # Examples
/// ```
/// use ops_core::{ErrorKind, OpsError};
/// let err = ops_compose::Error::InvalidName {
///     what: "project",
///     value: "Bad Name".to_owned(),
///     reason: "lowercase letters, digits, '-' and '_' only",
/// };
/// assert_eq!(OpsError::from(err).kind(), ErrorKind::InvalidInput);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A project, service or container name that compose would not accept.
    #[error("invalid compose {what} name \"{value}\": {reason}")]
    InvalidName {
        /// `project`, `service` or `container`.
        what: &'static str,
        /// The rejected value, quoted ([`ops_core::text::quote`]: shortened, control
        /// characters escaped).
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The Docker client could not be built from `DOCKER_HOST`.
    #[error("cannot build a docker client")]
    Client {
        /// The client error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An Engine API call failed.
    #[error("docker {operation} failed for {target}")]
    Engine {
        /// The operation (`inspect`, `restart`, ...).
        operation: &'static str,
        /// What it was about.
        target: String,
        /// The engine's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An Engine API call did not answer within its deadline.
    #[error("docker {operation} for {target} did not answer within {after:?}")]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// The deadline.
        after: Duration,
    },
    /// No container carries the service's labels.
    #[error("no containers for {target}")]
    NotFound {
        /// The operation.
        operation: &'static str,
        /// What was looked for.
        target: String,
    },
    /// The operation makes no sense for compose, or its preconditions do not hold.
    #[error("{operation} is not supported for {target}: {reason}")]
    Unsupported {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// Why.
        reason: String,
    },
    /// The engine's state does not allow the operation (e.g. the container is not running).
    #[error("{operation} conflicts with the state of {target}: {reason}")]
    Conflict {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// Why.
        reason: String,
    },
    /// A tar archive could not be read or written.
    #[error("tar archive for {operation} of {target} is unreadable")]
    Archive {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a copied file to its destination (the caller's sink) failed.
    #[error("writing the copy of {target} failed")]
    Sink {
        /// The operation.
        operation: &'static str,
        /// What was copied.
        target: String,
        /// The sink's error.
        #[source]
        source: std::io::Error,
    },
    /// A change failed, and undoing it failed too: the service may be left without a
    /// running container. `failed` says which undo steps failed; `source` is the first error.
    #[error("{operation} of {target} failed and could not be fully undone ({}): the service may need a hand", failed.join("; "))]
    Compensation {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// What made the change fail.
        #[source]
        source: Box<Error>,
        /// The undo steps that failed, in words.
        failed: Vec<String>,
    },
    /// A rolling restart or recreate stopped at a container that did not become ready
    /// (running, and healthy when it has a HEALTHCHECK) within
    /// [`crate::ComposeConfig::health_timeout`], or that exited. The containers after it in
    /// the plan were not touched.
    #[error(
        "{operation} of {target} stopped at container {container}: {state}; the containers after it were left untouched"
    )]
    Unready {
        /// The operation (`restart`, `recreate`).
        operation: &'static str,
        /// The service.
        target: String,
        /// The container that did not become ready.
        container: String,
        /// Its last state, in words (`unhealthy`, `exited with code 3`, ...).
        state: String,
        /// Whether it exited (rather than staying unready until the deadline).
        exited: bool,
        /// How long it was waited for.
        after: Duration,
    },
    /// The caller gave an argument the engine cannot take.
    #[error("invalid argument for {operation} of {target}: {reason}")]
    InvalidArgument {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// Why.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn engine(
        operation: &'static str,
        target: impl Into<String>,
        source: bollard::errors::Error,
    ) -> Self {
        Self::Engine {
            operation,
            target: target.into(),
            source,
        }
    }

    /// The operation that failed.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::InvalidName { .. } => "validate_name",
            Self::Client { .. } => "connect",
            Self::Engine { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::NotFound { operation, .. }
            | Self::Unsupported { operation, .. }
            | Self::Conflict { operation, .. }
            | Self::Archive { operation, .. }
            | Self::Sink { operation, .. }
            | Self::Compensation { operation, .. }
            | Self::Unready { operation, .. }
            | Self::InvalidArgument { operation, .. } => operation,
        }
    }

    /// What the operation was about.
    pub fn target(&self) -> String {
        match self {
            Self::InvalidName { value, .. } => value.clone(),
            Self::Client { .. } => "docker engine".to_owned(),
            Self::Engine { target, .. }
            | Self::Timeout { target, .. }
            | Self::NotFound { target, .. }
            | Self::Unsupported { target, .. }
            | Self::Conflict { target, .. }
            | Self::Archive { target, .. }
            | Self::Sink { target, .. }
            | Self::Compensation { target, .. }
            | Self::Unready { target, .. }
            | Self::InvalidArgument { target, .. } => target.clone(),
        }
    }

    /// The HTTP status the engine answered with, when it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::Engine {
                source: bollard::errors::Error::DockerResponseServerError { status_code, .. },
                ..
            } => Some(*status_code),
            _ => None,
        }
    }

    /// The [`ErrorKind`] this error means.
    pub fn kind(&self) -> ErrorKind {
        use bollard::errors::Error as B;
        match self {
            Self::InvalidName { .. } | Self::InvalidArgument { .. } => ErrorKind::InvalidInput,
            Self::Timeout { .. } | Self::Unready { exited: false, .. } => ErrorKind::Timeout,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Conflict { .. } | Self::Unready { exited: true, .. } => ErrorKind::Conflict,
            Self::Archive { .. } | Self::Sink { .. } => ErrorKind::Backend,
            Self::Compensation { source, .. } => source.kind(),
            Self::Client { source } | Self::Engine { source, .. } => match source {
                B::DockerResponseServerError { status_code, .. } => match status_code {
                    404 => ErrorKind::NotFound,
                    409 => ErrorKind::Conflict,
                    401 | 403 => ErrorKind::PermissionDenied,
                    500..=599 => ErrorKind::Unavailable,
                    _ => ErrorKind::Backend,
                },
                B::RequestTimeoutError => ErrorKind::Timeout,
                B::IOError { .. }
                | B::HyperLegacyError { .. }
                | B::HyperResponseError { .. }
                | B::SocketNotFoundError(_) => ErrorKind::Unavailable,
                _ => ErrorKind::Backend,
            },
        }
    }
}

impl From<Error> for OpsError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let detail = match &err {
            Error::InvalidName { reason, .. } => Some((*reason).to_owned()),
            Error::Unsupported { reason, .. }
            | Error::Conflict { reason, .. }
            | Error::InvalidArgument { reason, .. } => Some(reason.clone()),
            Error::Unready {
                container,
                state,
                after,
                ..
            } => Some(format!(
                "container {container} did not become ready within {after:?} ({state}); the rollout stopped there"
            )),
            Error::Compensation { failed, .. } => Some(format!(
                "undoing it failed too ({}): check the service by hand",
                failed.join("; ")
            )),
            Error::Engine {
                source: bollard::errors::Error::DockerResponseServerError { message, .. },
                ..
            } => Some(message.clone()),
            _ => None,
        };
        let mut ops = OpsError::new(kind, BACKEND, err.operation(), err.target());
        if let Some(detail) = detail {
            ops = ops.with_detail(detail);
        }
        ops.with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16) -> Error {
        Error::engine(
            "inspect",
            "shop-api-1",
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message: "boom".to_owned(),
            },
        )
    }

    #[test]
    fn status_codes_map_by_meaning() {
        assert_eq!(server(404).kind(), ErrorKind::NotFound);
        assert_eq!(server(409).kind(), ErrorKind::Conflict);
        assert_eq!(server(403).kind(), ErrorKind::PermissionDenied);
        assert_eq!(server(500).kind(), ErrorKind::Unavailable);
        assert_eq!(server(400).kind(), ErrorKind::Backend);
    }

    #[test]
    fn io_errors_are_unavailable_and_keep_their_source() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = Error::engine("ping", "docker engine", io.into());
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let ops = OpsError::from(err);
        assert!(ops.is_retryable());
        assert_eq!(ops.backend(), "compose");
        assert!(std::error::Error::source(&ops).is_some());
    }

    #[test]
    fn message_does_not_repeat_the_source() {
        let err = server(404);
        assert_eq!(err.to_string(), "docker inspect failed for shop-api-1");
    }
}
