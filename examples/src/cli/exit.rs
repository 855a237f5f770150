//! [`Exit`]: what `opsbook`'s exit status says.

use ops_core::ErrorKind;
use ops_core::OpsError;
use ops_core::run::{ActionStatus, Report, RunOutcome};

/// `opsbook`'s exit statuses, so scripts can tell "fixed" from "needs a human".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// 0: healthy, recovered, or (dry run) the plan is made.
    Ok = 0,
    /// 1: the run failed (a backend error, a missing target): its report says how far it got.
    Error = 1,
    /// 2: the command line is wrong (clap's own status).
    Usage = 2,
    /// 3: something is wrong and the run could not fix it: a human is needed.
    Unresolved = 3,
    /// 4: a change was denied (answered no, timed out, not allowed): nothing past it ran.
    Denied = 4,
    /// 5: the system file is wrong, or names a secret this environment does not have.
    Config = 5,
    /// 130: cancelled by Ctrl-C (journaled as cancelled; a change under way was finished).
    Cancelled = 130,
}

impl Exit {
    /// The status a run's report (and its error, for a failed run) calls for.
    ///
    /// # Examples
    /// ```
    /// use ops_core::run::{Mode, Report, RunId, RunOutcome};
    /// use ops_examples::cli::Exit;
    /// let mut report = Report::new(RunId::generate(jiff::Timestamp::UNIX_EPOCH), "api_down", Mode::DryRun, "shop/service/api", jiff::Timestamp::UNIX_EPOCH);
    /// report.outcome = RunOutcome::Planned;
    /// assert_eq!(Exit::of_run(&report, None), Exit::Ok);
    /// report.outcome = RunOutcome::Unresolved;
    /// assert_eq!(Exit::of_run(&report, None), Exit::Unresolved);
    /// ```
    pub fn of_run(report: &Report, error: Option<&OpsError>) -> Self {
        if let Some(e) = error {
            return if e.kind() == ErrorKind::Cancelled {
                Self::Cancelled
            } else {
                Self::Error
            };
        }
        match report.outcome {
            RunOutcome::Healthy | RunOutcome::Recovered | RunOutcome::Planned => Self::Ok,
            RunOutcome::Unresolved
                if report.actions_with(ActionStatus::Denied).next().is_some() =>
            {
                Self::Denied
            }
            RunOutcome::Unresolved => Self::Unresolved,
            _ => Self::Error,
        }
    }

    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        Self::from(e.code())
    }
}
