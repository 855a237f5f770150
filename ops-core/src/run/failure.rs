//! [`RunFailure`]: a run that ended in an error, with the report of everything it did.

use std::fmt;

use super::Report;
use crate::error::OpsError;

/// A runbook that failed: the error, and the report of what the run found, did, planned
/// and failed to do up to that point (its outcome is [`super::RunOutcome::Failed`] and its
/// [`Report::error`] holds the error chain).
///
/// Nobody needs the journal to learn what a failed run changed: the report is here. It
/// converts into its [`OpsError`] with `?` where only the error matters.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use ops_core::run::{RunContext, RunOutcome, Step};
/// use ops_core::{ErrorKind, OpsError};
/// let ctx = RunContext::builder().build();
/// let run = ctx.begin("example", "demo").await;
/// let body = run
///     .read(Step::read_only("probe"), || async {
///         Err::<RunOutcome, _>(OpsError::new(ErrorKind::InvalidInput, "core", "probe", "demo"))
///     })
///     .await;
/// let failure = run.conclude(body).await.unwrap_err();
/// assert_eq!(failure.error().kind(), ErrorKind::InvalidInput);
/// assert_eq!(failure.report().outcome, RunOutcome::Failed);
/// assert_eq!(failure.report().timeline[0].step, "probe");
/// # });
/// ```
#[derive(Debug)]
pub struct RunFailure {
    report: Box<Report>,
    error: OpsError,
}

impl RunFailure {
    /// A failure with its report.
    pub fn new(report: Report, error: OpsError) -> Self {
        Self {
            report: Box::new(report),
            error,
        }
    }

    /// The report of the failed run.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The error that ended it.
    pub fn error(&self) -> &OpsError {
        &self.error
    }

    /// Report and error, by value.
    pub fn into_parts(self) -> (Report, OpsError) {
        (*self.report, self.error)
    }
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "runbook {} failed after {} step(s): {}",
            self.report.runbook,
            self.report.timeline.len(),
            self.error
        )
    }
}

impl std::error::Error for RunFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<RunFailure> for OpsError {
    fn from(failure: RunFailure) -> Self {
        failure.error
    }
}
