//! [`OpsError`] and [`ErrorKind`]: the error of every core trait method and runbook.

use std::fmt;

use crate::text;

/// The most characters of a target an error keeps (every valid ref fits).
const TARGET_MAX: usize = 600;
/// The most characters of a detail an error keeps.
const DETAIL_MAX: usize = 1000;
/// The most characters of [`OpsError::chain`].
const CHAIN_MAX: usize = 2000;

/// What went wrong, in terms a runbook can act on.
///
/// # Examples
/// ```
/// use ops_core::ErrorKind;
/// assert!(ErrorKind::Timeout.is_retryable());
/// assert!(!ErrorKind::InvalidInput.is_retryable());
/// assert_eq!(ErrorKind::NotFound.to_string(), "not found");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The thing asked for does not exist (HTTP 404, unknown workload, missing key).
    NotFound,
    /// The backend could not be reached or is overloaded (refused, reset, 5xx, pool exhausted).
    Unavailable,
    /// A deadline passed before the backend answered.
    Timeout,
    /// The state changed under us or forbids the operation (HTTP 409, paused rollout).
    Conflict,
    /// The caller passed something invalid; retrying will not help.
    InvalidInput,
    /// Authentication or authorisation failed (HTTP 401/403), or an approval was denied.
    PermissionDenied,
    /// The backend cannot do this at all; the error says why.
    Unsupported,
    /// Any other backend failure; the source error has the details.
    Backend,
    /// The run was cancelled before the operation finished.
    Cancelled,
}

impl ErrorKind {
    /// Whether an operation failing with this kind may succeed when tried again:
    /// only [`ErrorKind::Unavailable`] and [`ErrorKind::Timeout`].
    ///
    /// # Examples
    /// ```
    /// assert!(ops_core::ErrorKind::Unavailable.is_retryable());
    /// assert!(!ops_core::ErrorKind::Conflict.is_retryable());
    /// ```
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable | Self::Timeout)
    }

    /// The stable `snake_case` name used in journals and reports.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(ops_core::ErrorKind::PermissionDenied.as_str(), "permission_denied");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Conflict => "conflict",
            Self::InvalidInput => "invalid_input",
            Self::PermissionDenied => "permission_denied",
            Self::Unsupported => "unsupported",
            Self::Backend => "backend",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

/// The error of every core trait method and runbook.
///
/// A struct plus a kind, like [`std::io::Error`]: every failure names the backend, the
/// operation and the target; [`crate::run::Run::read`] and [`crate::run::Run::act`] add the step name. The backend's
/// own error stays reachable through [`std::error::Error::source`] and is not repeated in the
/// message; binaries print the chain.
///
/// # Examples
/// ```
/// use ops_core::{ErrorKind, OpsError};
/// let err = OpsError::new(ErrorKind::Unavailable, "redis", "ping", "cache:6379");
/// assert_eq!(err.to_string(), "redis: ping failed for cache:6379: unavailable");
/// assert!(err.is_retryable());
/// let err = err.with_step("ping_cache");
/// assert_eq!(err.step(), Some("ping_cache"));
/// ```
pub struct OpsError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    backend: &'static str,
    operation: &'static str,
    target: String,
    step: Option<String>,
    detail: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Debug for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        f.debug_struct("OpsError")
            .field("kind", &i.kind)
            .field("backend", &i.backend)
            .field("operation", &i.operation)
            .field("target", &i.target)
            .field("step", &i.step)
            .field("detail", &i.detail)
            .field("source", &i.source)
            .finish()
    }
}

impl fmt::Display for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        if let Some(step) = &i.step {
            write!(f, "step {step}: ")?;
        }
        write!(
            f,
            "{}: {} failed for {}: {}",
            i.backend, i.operation, i.target, i.kind
        )
    }
}

impl std::error::Error for OpsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl OpsError {
    /// A new error of `kind` raised by `backend` while doing `operation` on `target`.
    ///
    /// `target` must not contain secrets: pass a name or `host:port`, never a URL with a password.
    /// Control characters in it are escaped and it is cut to 600 characters
    /// ([`crate::text::bounded`]), so no target can forge a log line.
    ///
    /// # Examples
    /// ```
    /// use ops_core::{ErrorKind, OpsError};
    /// let err = OpsError::new(ErrorKind::NotFound, "k8s", "workload", "prod/deployment/api");
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// ```
    pub fn new(
        kind: ErrorKind,
        backend: &'static str,
        operation: &'static str,
        target: impl Into<String>,
    ) -> Self {
        Self(Box::new(Inner {
            kind,
            backend,
            operation,
            target: text::bounded(&target.into(), TARGET_MAX),
            step: None,
            detail: None,
            source: None,
        }))
    }

    /// An [`ErrorKind::InvalidInput`] error for a value that failed validation.
    ///
    /// `value` is the rejected input, untrusted: it is quoted with [`crate::text::quote`]
    /// (cut to [`crate::text::QUOTE_MAX`] characters, control characters escaped), so neither
    /// a 100 000-character value nor one carrying CR/LF/ESC reaches a message whole.
    ///
    /// # Examples
    /// ```
    /// let err = ops_core::OpsError::invalid("workload_ref", "Bad_Name", "must be a DNS-1123 label");
    /// assert_eq!(err.kind(), ops_core::ErrorKind::InvalidInput);
    /// assert!(err.detail().unwrap().contains("DNS-1123"));
    /// let err = ops_core::OpsError::invalid("run_id", "x\r\nFAKE LOG LINE", "bad");
    /// assert_eq!(err.target(), r"x\r\nFAKE LOG LINE");
    /// ```
    pub fn invalid(
        operation: &'static str,
        value: impl AsRef<str>,
        why: impl Into<String>,
    ) -> Self {
        Self::new(
            ErrorKind::InvalidInput,
            "core",
            operation,
            text::quote(value.as_ref()),
        )
        .with_detail(why)
    }

    /// The [`ErrorKind::InvalidInput`] error of a change whose guard matches everything
    /// without saying so (`SessionFilter::all`, `ClientFilter::all`): a forgotten criterion
    /// must never become "everyone".
    ///
    /// # Examples
    /// ```
    /// let err = ops_core::OpsError::unbounded_guard("postgres", "terminate");
    /// assert_eq!(err.kind(), ops_core::ErrorKind::InvalidInput);
    /// ```
    pub fn unbounded_guard(backend: &'static str, operation: &'static str) -> Self {
        Self::new(ErrorKind::InvalidInput, backend, operation, "guard").with_detail(
            "the guard has no criterion: build it with all() to mean every session or client",
        )
    }

    /// An [`ErrorKind::Unsupported`] error explaining why the backend cannot do `operation`.
    ///
    /// # Examples
    /// ```
    /// let err = ops_core::OpsError::unsupported("compose", "rollback", "api", "no previous image known");
    /// assert_eq!(err.kind(), ops_core::ErrorKind::Unsupported);
    /// ```
    pub fn unsupported(
        backend: &'static str,
        operation: &'static str,
        target: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Self::new(ErrorKind::Unsupported, backend, operation, target).with_detail(why)
    }

    /// Attach the backend's own error, reachable through [`std::error::Error::source`].
    #[must_use]
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Attach a human explanation (shown by [`OpsError::detail`], reports and the error chain).
    ///
    /// The detail must not contain secrets. Control characters in it are escaped and it is cut
    /// to 1000 characters ([`crate::text::bounded`]): a detail may carry a peer's message.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(text::bounded(&detail.into(), DETAIL_MAX));
        self
    }

    /// Tag the error with the runbook step it happened in (done by `Run::read` and `Run::act`).
    #[must_use]
    pub fn with_step(mut self, step: impl Into<String>) -> Self {
        self.0.step = Some(step.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The backend that raised it, e.g. `"redis"`.
    pub fn backend(&self) -> &'static str {
        self.0.backend
    }

    /// The operation that failed, e.g. `"rollout_restart"`.
    pub fn operation(&self) -> &'static str {
        self.0.operation
    }

    /// What the operation was acting on (never a secret).
    pub fn target(&self) -> &str {
        &self.0.target
    }

    /// The runbook step, when the error passed through `Run::read` or `Run::act`.
    pub fn step(&self) -> Option<&str> {
        self.0.step.as_deref()
    }

    /// A human explanation, when the raiser gave one.
    pub fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }

    /// Whether trying again may help ([`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.0.kind.is_retryable()
    }

    /// The message and its cause chain on one line, as reports and journals store it.
    ///
    /// Control characters anywhere in the chain (a backend error may quote its peer) are
    /// escaped and the line is cut to 2000 characters ([`crate::text::bounded`]).
    ///
    /// # Examples
    /// ```
    /// use ops_core::{ErrorKind, OpsError};
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
    /// let err = OpsError::new(ErrorKind::Unavailable, "pg", "ping", "db:5432").with_source(io);
    /// assert_eq!(err.chain(), "pg: ping failed for db:5432: unavailable: connection refused");
    /// ```
    pub fn chain(&self) -> String {
        use std::error::Error as _;
        let mut out = self.to_string();
        if let Some(detail) = &self.0.detail {
            out.push_str(" (");
            out.push_str(detail);
            out.push(')');
        }
        let mut cause = self.source();
        while let Some(err) = cause {
            out.push_str(": ");
            out.push_str(&err.to_string());
            cause = err.source();
        }
        text::bounded(&out, CHAIN_MAX)
    }
}

/// A shorthand for results whose error is [`OpsError`].
pub type Result<T, E = OpsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_and_timeout_are_retryable() {
        let all = [
            ErrorKind::NotFound,
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Conflict,
            ErrorKind::InvalidInput,
            ErrorKind::PermissionDenied,
            ErrorKind::Unsupported,
            ErrorKind::Backend,
            ErrorKind::Cancelled,
        ];
        let retryable: Vec<_> = all.iter().filter(|k| k.is_retryable()).collect();
        assert_eq!(retryable, [&ErrorKind::Unavailable, &ErrorKind::Timeout]);
    }

    #[test]
    fn message_names_step_backend_operation_target_and_not_source() {
        let io = std::io::Error::other("secret-bearing source text");
        let err = OpsError::new(ErrorKind::Backend, "pg", "vacuum", "public.users")
            .with_source(io)
            .with_step("vacuum_tables");
        let msg = err.to_string();
        assert_eq!(
            msg,
            "step vacuum_tables: pg: vacuum failed for public.users: backend"
        );
        assert!(!msg.contains("secret-bearing"));
        assert!(std::error::Error::source(&err).is_some());
    }
}
