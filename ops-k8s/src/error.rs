//! [`Error`]: what went wrong talking to the Kubernetes API, mapped to [`OpsError`] by meaning.

use std::time::Duration;

use ops_core::{ErrorKind, OpsError};

/// The backend name used in errors and spans.
pub(crate) const BACKEND: &str = "k8s";

/// One API request, named the way an RBAC rule names it: the verb, the resource and the
/// namespace. A `403` names all three so the operator knows which grant is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The RBAC verb: `get`, `list`, `watch`, `patch`, `update`, `delete`, `create`.
    pub verb: &'static str,
    /// The resource with its subresource, e.g. `deployments`, `deployments/scale`, `pods/log`.
    pub resource: &'static str,
    /// The namespace.
    pub namespace: String,
}

impl Request {
    pub(crate) fn new(verb: &'static str, resource: &'static str, namespace: &str) -> Self {
        Self {
            verb,
            resource,
            namespace: namespace.to_owned(),
        }
    }
}

/// An ops-k8s failure. Converts into [`OpsError`] by meaning: 404 -> `NotFound`,
/// 409 -> `Conflict`, 401/403 -> `PermissionDenied` (naming verb, resource and namespace),
/// 400/422 -> `InvalidInput`, 429/5xx, connection failures and a broken exec stream ->
/// `Unavailable`, deadline -> `Timeout`, output past the limit -> `InvalidInput`, anything else
/// (a command the runtime could not run) -> `Backend`.
///
/// # Examples
/// ```
/// use ops_core::{ErrorKind, OpsError};
/// let err = ops_k8s::Error::Refused {
///     operation: "rollout_restart",
///     target: "shop/deployment/api".to_owned(),
///     reason: "can't restart paused deployment (run rollout resume first)".to_owned(),
/// };
/// assert_eq!(OpsError::from(err).kind(), ErrorKind::Conflict);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No client configuration could be loaded (kubeconfig, context or in-cluster account).
    #[error("cannot configure a Kubernetes client: {reason}")]
    Config {
        /// What was tried and why it failed.
        reason: String,
        /// The loader's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The API server answered with an error, or could not be reached.
    #[error("kubernetes {operation} failed for {target} ({} {} in namespace {})", request.verb, request.resource, request.namespace)]
    Api {
        /// The operation (`rollout_restart`, `scale`, ...).
        operation: &'static str,
        /// What it was about.
        target: String,
        /// The request that failed.
        request: Request,
        /// kube's error (its `Status` for answered requests). Not shown as a source: the
        /// server's message may quote what it refused; [`OpsError`]'s detail carries it
        /// with credentials redacted.
        cause: Box<kube::Error>,
    },
    /// A request did not answer within its deadline.
    #[error("kubernetes {operation} for {target} did not answer within {after:?}")]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// The deadline.
        after: Duration,
    },
    /// Something the operation needs does not exist (no pods, no such revision).
    #[error("{operation}: {target}: {reason}")]
    NotFound {
        /// The operation.
        operation: &'static str,
        /// What was looked for.
        target: String,
        /// What is missing.
        reason: String,
    },
    /// The workload's state refuses the operation the way kubectl refuses it (paused, owned by
    /// an autoscaler, a restart already made within the same second).
    #[error("{operation} refused for {target}: {reason}")]
    Refused {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// Why, in kubectl's words where kubectl has them.
        reason: String,
    },
    /// The operation has no meaning for this workload kind or this cluster.
    #[error("{operation} is not supported for {target}: {reason}")]
    Unsupported {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// Why.
        reason: String,
    },
    /// The caller gave an argument the operation cannot take.
    #[error("invalid argument for {operation} of {target}: {reason}")]
    InvalidArgument {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// Why.
        reason: String,
    },
    /// A command run in a pod could not run, or failed in a way the operation cannot use (the
    /// runtime's own failure, `tar` refusing an archive); the reason quotes its stderr.
    #[error("{operation} in {target} failed: {reason}")]
    CommandFailed {
        /// The operation (`exec`, `copy_from`, `copy_to`).
        operation: &'static str,
        /// The pod.
        target: String,
        /// What the runtime or the command said.
        reason: String,
    },
    /// The exec stream broke before the command's status arrived.
    #[error("the exec stream of {target} broke during {operation}")]
    Stream {
        /// The operation.
        operation: &'static str,
        /// The pod.
        target: String,
        /// kube's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Output or contents larger than [`crate::KubeConfig::exec_output_limit`].
    #[error("{operation} of {target}: {what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The operation.
        operation: &'static str,
        /// The pod.
        target: String,
        /// What was too large (`stdout`, `stderr`, `the file`).
        what: &'static str,
        /// The limit, bytes.
        limit: usize,
    },
    /// Writing a copied file to its destination (the caller's sink) failed.
    #[error("writing the copy of {target} failed")]
    Sink {
        /// The operation.
        operation: &'static str,
        /// The pod and path.
        target: String,
        /// The sink's error.
        #[source]
        source: std::io::Error,
    },
    /// An object did not have the shape the operation needs (a missing template, an
    /// unreadable revision, an unparsable quantity).
    #[error("unexpected object for {operation} of {target}: {reason}")]
    Malformed {
        /// The operation.
        operation: &'static str,
        /// What it was about.
        target: String,
        /// What was wrong.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The operation that failed.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Config { .. } => "connect",
            Self::Api { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::NotFound { operation, .. }
            | Self::Refused { operation, .. }
            | Self::Unsupported { operation, .. }
            | Self::InvalidArgument { operation, .. }
            | Self::CommandFailed { operation, .. }
            | Self::Stream { operation, .. }
            | Self::TooLarge { operation, .. }
            | Self::Sink { operation, .. }
            | Self::Malformed { operation, .. } => operation,
        }
    }

    /// What the operation was about.
    pub fn target(&self) -> String {
        match self {
            Self::Config { .. } => "kubernetes api".to_owned(),
            Self::Api { target, .. }
            | Self::Timeout { target, .. }
            | Self::NotFound { target, .. }
            | Self::Refused { target, .. }
            | Self::Unsupported { target, .. }
            | Self::InvalidArgument { target, .. }
            | Self::CommandFailed { target, .. }
            | Self::Stream { target, .. }
            | Self::TooLarge { target, .. }
            | Self::Sink { target, .. }
            | Self::Malformed { target, .. } => target.clone(),
        }
    }

    /// The HTTP status the API server answered with, when it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::Api { cause, .. } => match cause.as_ref() {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            _ => None,
        }
    }

    /// The [`ErrorKind`] this error means.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config { .. } | Self::Stream { .. } => ErrorKind::Unavailable,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Refused { .. } => ErrorKind::Conflict,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::InvalidArgument { .. } | Self::TooLarge { .. } => ErrorKind::InvalidInput,
            Self::Malformed { .. } | Self::CommandFailed { .. } | Self::Sink { .. } => {
                ErrorKind::Backend
            }
            Self::Api { cause, .. } => kind_of(cause),
        }
    }

    /// How long the server asked the client to wait before trying again (`Status.details
    /// .retryAfterSeconds`), at most 30 s.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { cause, .. } => match cause.as_ref() {
                kube::Error::Api(status) => status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(u64::from(s)).min(crate::config::MAX_RETRY_AFTER)),
                _ => None,
            },
            _ => None,
        }
    }

    /// True when the server refused the write because the object changed since it was read.
    pub(crate) fn is_conflict(&self) -> bool {
        self.status_code() == Some(409)
    }
}

/// What a kube error means.
fn kind_of(source: &kube::Error) -> ErrorKind {
    match source {
        kube::Error::Api(status) => match status.code {
            404 | 410 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            401 | 403 => ErrorKind::PermissionDenied,
            400 | 422 => ErrorKind::InvalidInput,
            429 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Backend,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Backend,
    }
}

/// The detail an operator reads: the missing grant for a 403, the server's own words
/// (credentials redacted, bounded) otherwise.
fn detail_of(err: &Error) -> Option<String> {
    match err {
        Error::Config { reason, .. }
        | Error::NotFound { reason, .. }
        | Error::Refused { reason, .. }
        | Error::Unsupported { reason, .. }
        | Error::InvalidArgument { reason, .. }
        | Error::Malformed { reason, .. } => Some(reason.clone()),
        Error::CommandFailed { reason, .. } => Some(ops_core::text::evidence(reason, 400)),
        Error::Timeout { .. } | Error::Stream { .. } | Error::Sink { .. } => None,
        Error::TooLarge { what, limit, .. } => Some(format!(
            "{what} exceeds {limit} bytes: narrow the command or raise exec_output_limit"
        )),
        Error::Api { request, cause, .. } => match cause.as_ref() {
            kube::Error::Api(status) if matches!(status.code, 401 | 403) => Some(format!(
                "forbidden: this identity may not {} {} in namespace {}: grant it in a Role bound \
                 to the identity opsbook runs as",
                request.verb, request.resource, request.namespace
            )),
            kube::Error::Api(status) => Some(ops_core::text::evidence(&status.message, 400)),
            other => Some(ops_core::text::evidence(&other.to_string(), 400)),
        },
    }
}

impl From<Error> for OpsError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let detail = detail_of(&err);
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

    fn answered(code: u16) -> Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "message": "boom password=hunter2", "reason": "X"
        }))
        .unwrap_or_default();
        Error::Api {
            operation: "scale",
            target: "shop/deployment/api".to_owned(),
            request: Request::new("update", "deployments/scale", "shop"),
            cause: Box::new(kube::Error::Api(Box::new(status))),
        }
    }

    #[test]
    fn status_codes_map_by_meaning() {
        for (code, kind) in [
            (404, ErrorKind::NotFound),
            (409, ErrorKind::Conflict),
            (403, ErrorKind::PermissionDenied),
            (401, ErrorKind::PermissionDenied),
            (422, ErrorKind::InvalidInput),
            (429, ErrorKind::Unavailable),
            (503, ErrorKind::Unavailable),
            (418, ErrorKind::Backend),
        ] {
            assert_eq!(answered(code).kind(), kind, "{code}");
        }
        assert!(answered(409).is_conflict());
    }

    #[test]
    fn forbidden_names_the_missing_grant() {
        let ops = OpsError::from(answered(403));
        let detail = ops.detail().unwrap_or_default();
        assert!(
            detail.contains("update deployments/scale in namespace shop"),
            "{detail}"
        );
    }

    #[test]
    fn server_messages_are_redacted_everywhere() {
        let ops = OpsError::from(answered(500));
        let detail = ops.detail().unwrap_or_default();
        assert!(!detail.contains("hunter2"), "{detail}");
        assert!(detail.contains("boom"), "{detail}");
        assert!(!ops.chain().contains("hunter2"), "{}", ops.chain());
    }
}
