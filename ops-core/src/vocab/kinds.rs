//! The kinds and statuses runs, steps, reports and incidents are described with.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether a step changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Only reads: always runs, may be retried.
    ReadOnly,
    /// Changes something: planned in dry run, approved, journaled before and after.
    Disruptive,
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadOnly => "read_only",
            Self::Disruptive => "disruptive",
        })
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingLevel {
    /// Context.
    Info,
    /// Worth attention.
    Warning,
    /// A cause or an outage.
    Critical,
}

/// What became of a disruptive action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Carried out.
    Taken,
    /// Dry run: would have been carried out.
    Planned,
    /// Not needed according to the evidence.
    Skipped,
    /// The approver said no.
    Denied,
    /// Tried and failed (see the note).
    Failed,
}

impl ActionStatus {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Taken => "taken",
            Self::Planned => "planned",
            Self::Skipped => "skipped",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// How a step ended, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Ran past its timeout.
    TimedOut,
    /// The run was cancelled.
    Cancelled,
    /// Dry run: planned only.
    Planned,
    /// Approval denied.
    Denied,
    /// Not needed.
    Skipped,
}

impl StepStatus {
    /// A short label (`ok`, `failed`, `timed out`, …), as the report prints it.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(ops_core::run::StepStatus::TimedOut.label(), "timed out");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "ok",
            Self::Failed => "failed",
            Self::TimedOut => "timed out",
            Self::Cancelled => "cancelled",
            Self::Planned => "planned",
            Self::Denied => "denied",
            Self::Skipped => "skipped",
        }
    }
}

/// How a run ended overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Still running.
    InProgress,
    /// Nothing was wrong, nothing was done.
    Healthy,
    /// Something was wrong and it is fixed (verified).
    Recovered,
    /// Dry run: the plan is in the actions.
    Planned,
    /// Something is wrong and the run could not fix it (needs a human).
    Unresolved,
    /// The run itself failed.
    Failed,
}

impl RunOutcome {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Self::InProgress => "in progress",
            Self::Healthy => "healthy",
            Self::Recovered => "recovered",
            Self::Planned => "planned (dry run)",
            Self::Unresolved => "unresolved",
            Self::Failed => "failed",
        }
    }
}

/// Where an incident stands, as status updates say it.
///
/// # Examples
/// ```
/// use ops_core::incident::IncidentStatus;
/// assert_eq!(IncidentStatus::Monitoring.to_string(), "Monitoring");
/// assert!(IncidentStatus::Identified < IncidentStatus::Resolved);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Looking for the cause.
    Investigating,
    /// Cause known, fix under way.
    Identified,
    /// Fix applied, watching.
    Monitoring,
    /// Over.
    Resolved,
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Investigating => "Investigating",
            Self::Identified => "Identified",
            Self::Monitoring => "Monitoring",
            Self::Resolved => "Resolved",
        })
    }
}
