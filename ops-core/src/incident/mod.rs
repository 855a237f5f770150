//! The incident model from the seed runbooks: severities, classification, escalation, status
//! updates, the post-incident checklist and the post-mortem skeleton.

mod classifier;
mod escalation;
mod postmortem;
mod severity;
mod status;

use std::time::Duration;

pub use crate::vocab::{IncidentStatus, Severity};
pub use classifier::{Classification, Classifier, Signals, Thresholds};
pub use escalation::{EscalationLevel, EscalationPolicy};
pub use postmortem::{
    ChecklistItem, POSTMORTEM_WITHIN, PostIncidentChecklist, PostIncidentTask, PostMortem,
    PostMortemSection, TO_FILL_IN,
};
pub use severity::{SeverityLevel, SeverityScale};
pub use status::{Incident, StatusChange, StatusUpdate, TimelineNote, UpdateCadence};

/// A duration the way people say it in an incident channel: `"45 s"`, `"15 min"`, `"1 h 30 min"`.
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// Keep free text on one line so it cannot break the Markdown structure.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(human_duration(Duration::from_secs(45)), "45 s");
        assert_eq!(human_duration(Duration::from_mins(15)), "15 min");
        assert_eq!(human_duration(Duration::from_secs(90)), "1 min 30 s");
        assert_eq!(human_duration(Duration::from_hours(2)), "2 h");
        assert_eq!(human_duration(Duration::from_mins(90)), "1 h 30 min");
    }
}
