//! The vocabulary every other module speaks: ids, modes, kinds, severities and statuses.
//!
//! A leaf: it imports no behaviour module (only [`crate::OpsError`] for its parse errors), so
//! the journal, the run engine, the incident model and the notifiers can all use it without
//! importing each other. The types are re-exported where they were first defined
//! (`ops_core::run::Mode`, `ops_core::incident::Severity`, ...); both paths name the same type.

mod ids;
mod kinds;
mod severity;

pub use ids::{Mode, RunId};
pub use kinds::{ActionStatus, FindingLevel, IncidentStatus, RunOutcome, StepKind, StepStatus};
pub use severity::Severity;
