//! The incident model from the seed runbooks: severities, classification, escalation, status
//! updates, the post-incident checklist and the post-mortem skeleton.

mod severity;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use severity::{Severity, SeverityLevel, SeverityScale};

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
