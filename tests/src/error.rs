//! Why a service could not be started, and what a test does about it.

use crate::settings::in_ci;

/// A service helper failed.
#[derive(Debug)]
pub enum ServiceError {
    /// The environment lacks something: no Docker engine, an image not built. Outside CI
    /// the test skips; in CI it fails.
    Unavailable(String),
    /// The service was there but misbehaved: always a test failure.
    Failed(String),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(reason) => write!(f, "{reason}; run scripts/provision"),
            Self::Failed(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for ServiceError {}

impl ServiceError {
    pub(crate) fn failed(what: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Self::Failed(format!("{what}: {err}"))
    }
}

/// What [`require!`](crate::require) does with an error: print and return normally for an
/// [`ServiceError::Unavailable`] outside CI, panic otherwise.
///
/// # Panics
/// When `CI=true`, or when the error is [`ServiceError::Failed`].
pub fn skip_or_fail(err: &ServiceError) {
    match err {
        ServiceError::Unavailable(_) if !in_ci() => {
            eprintln!("skipping test: {err} (with CI=true this fails)");
        }
        ServiceError::Unavailable(_) => panic!("required service unavailable in CI: {err}"),
        ServiceError::Failed(_) => panic!("{err}"),
    }
}
