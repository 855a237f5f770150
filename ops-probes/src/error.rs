//! [`Error`]: what can go wrong in this crate, mapped to [`OpsError`] by meaning.

use ops_core::{ErrorKind, OpsError};

use crate::condition::ConditionError;

/// What went wrong while building a probe or querying Prometheus.
///
/// Messages never contain URLs, tokens or header values: targets are shown as `host:port`.
///
/// # Examples
/// ```
/// use ops_probes::{Error, HttpProbe};
/// let err = HttpProbe::builder("not a url").build().unwrap_err();
/// assert!(matches!(err, Error::InvalidUrl { .. }));
/// let ops: ops_core::OpsError = err.into();
/// assert_eq!(ops.kind(), ops_core::ErrorKind::InvalidInput);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL did not parse or is not `http`/`https`.
    #[error("invalid url for {target}: {why}")]
    InvalidUrl {
        /// The probe or client name (never the URL).
        target: String,
        /// Why it is invalid.
        why: String,
    },
    /// A header name or value is not valid HTTP.
    #[error("invalid header {name}")]
    InvalidHeader {
        /// The header name, quoted ([`ops_core::text::quote`]).
        name: String,
    },
    /// A condition string did not parse.
    #[error("invalid condition")]
    Condition(#[from] ConditionError),
    /// Any other invalid setting.
    #[error("invalid configuration for {target}: {why}")]
    Config {
        /// The probe or client name.
        target: String,
        /// What is wrong.
        why: String,
    },
    /// The HTTP client could not be built (TLS roots, CA certificate).
    #[error("cannot build the http client for {target}")]
    Client {
        /// The probe or client name.
        target: String,
        /// The client error (URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// A request to a metrics server failed before an answer arrived.
    #[error("prometheus {operation} request to {target} failed")]
    Request {
        /// `query` or `query_range`.
        operation: &'static str,
        /// `host:port`.
        target: String,
        /// The transport error (URL removed).
        #[source]
        source: reqwest::Error,
    },
    /// The metrics server answered with an API error (its words redacted and escaped, see
    /// [`ops_core::text::Redactor::peer_text`]).
    #[error("prometheus {operation} on {target} answered {status}: {error_type}: {message}")]
    Api {
        /// `query` or `query_range`.
        operation: &'static str,
        /// `host:port`.
        target: String,
        /// The HTTP status.
        status: u16,
        /// Prometheus' `errorType`, e.g. `bad_data`.
        error_type: String,
        /// Prometheus' `error` text.
        message: String,
    },
    /// The answer was not the documented JSON.
    #[error("prometheus {operation} on {target} returned an undecodable answer: {why}")]
    Decode {
        /// `query` or `query_range`.
        operation: &'static str,
        /// `host:port`.
        target: String,
        /// What did not fit.
        why: String,
    },
}

/// A shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn backend(&self) -> &'static str {
        match self {
            Self::Request { .. } | Self::Api { .. } | Self::Decode { .. } => "prometheus",
            _ => "probe",
        }
    }

    fn operation(&self) -> &'static str {
        match self {
            Self::Request { operation, .. }
            | Self::Api { operation, .. }
            | Self::Decode { operation, .. } => operation,
            _ => "build",
        }
    }

    fn target(&self) -> String {
        match self {
            Self::InvalidUrl { target, .. }
            | Self::Config { target, .. }
            | Self::Client { target, .. }
            | Self::Request { target, .. }
            | Self::Api { target, .. }
            | Self::Decode { target, .. } => target.clone(),
            Self::InvalidHeader { name } => name.clone(),
            Self::Condition(e) => e.input().to_owned(),
        }
    }
}

/// The kind for a transport error: deadline, refused/reset, or anything else.
pub(crate) fn transport_kind(err: &reqwest::Error) -> ErrorKind {
    if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_connect() || err.is_request() || err.is_body() {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Backend
    }
}

/// The kind for an HTTP status, per the style guide's table.
pub(crate) fn status_kind(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        400 | 422 => ErrorKind::InvalidInput,
        408 | 504 => ErrorKind::Timeout,
        429 | 500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Backend,
    }
}

impl From<Error> for OpsError {
    fn from(err: Error) -> Self {
        let kind = match &err {
            Error::InvalidUrl { .. }
            | Error::InvalidHeader { .. }
            | Error::Condition(_)
            | Error::Config { .. }
            | Error::Client { .. } => ErrorKind::InvalidInput,
            Error::Request { source, .. } => transport_kind(source),
            Error::Api {
                status, error_type, ..
            } => match error_type.as_str() {
                "bad_data" => ErrorKind::InvalidInput,
                "timeout" => ErrorKind::Timeout,
                "unavailable" => ErrorKind::Unavailable,
                "not_found" => ErrorKind::NotFound,
                _ => status_kind(*status),
            },
            Error::Decode { .. } => ErrorKind::Backend,
        };
        let (backend, operation, target) = (err.backend(), err.operation(), err.target());
        OpsError::new(kind, backend, operation, target).with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_map_by_error_type_then_status() {
        let api = |status, error_type: &str| Error::Api {
            operation: "query",
            target: "prom:9090".to_owned(),
            status,
            error_type: error_type.to_owned(),
            message: "x".to_owned(),
        };
        assert_eq!(
            OpsError::from(api(400, "bad_data")).kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            OpsError::from(api(503, "timeout")).kind(),
            ErrorKind::Timeout
        );
        assert_eq!(OpsError::from(api(503, "")).kind(), ErrorKind::Unavailable);
        assert_eq!(
            OpsError::from(api(401, "")).kind(),
            ErrorKind::PermissionDenied
        );
        assert_eq!(OpsError::from(api(418, "")).kind(), ErrorKind::Backend);
    }
}
