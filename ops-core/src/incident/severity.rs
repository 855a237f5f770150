//! Severity levels and configurable severity scales.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::OpsError;
use crate::vocab::Severity;

/// One level of a [`SeverityScale`]: its label, meaning and required response time.
///
/// # Examples
/// ```
/// let scale = ops_core::incident::SeverityScale::default();
/// let p0 = scale.level(ops_core::incident::Severity::Critical);
/// assert_eq!(p0.label, "P0");
/// assert_eq!(p0.response_time.as_secs(), 15 * 60);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SeverityLevel {
    /// The label people use, e.g. `"P0"` or `"SEV-1"`.
    pub label: String,
    /// What the level means, e.g. `"complete outage"`.
    pub meaning: String,
    /// How fast someone must respond.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub response_time: Duration,
}

impl SeverityLevel {
    /// A level with a label, meaning and response time.
    pub fn new(
        label: impl Into<String>,
        meaning: impl Into<String>,
        response_time: Duration,
    ) -> Self {
        Self {
            label: label.into(),
            meaning: meaning.into(),
            response_time,
        }
    }
}

/// How the four [`Severity`] levels are named and how fast each must be answered.
///
/// [`SeverityScale::default`] is P0–P3 (15 min / 1 h / 4 h / 24 h, the incident-response seed);
/// [`SeverityScale::p1_to_p4`] is the other seeds' P1–P4 naming with the same response times.
///
/// # Examples
/// ```
/// use ops_core::incident::{Severity, SeverityScale};
/// let seeds = SeverityScale::p1_to_p4();
/// assert_eq!(seeds.label(Severity::Critical), "P1");
/// assert_eq!(seeds.parse("P4")?, Severity::Low);
/// assert_eq!(SeverityScale::default().label(Severity::Low), "P3");
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityScale {
    levels: [SeverityLevel; 4],
}

impl Default for SeverityScale {
    fn default() -> Self {
        Self::labelled(["P0", "P1", "P2", "P3"])
    }
}

impl SeverityScale {
    /// A scale with custom levels, most urgent first.
    pub fn new(levels: [SeverityLevel; 4]) -> Self {
        Self { levels }
    }

    /// The seeds' P1–P4 labels with the default meanings and response times.
    pub fn p1_to_p4() -> Self {
        Self::labelled(["P1", "P2", "P3", "P4"])
    }

    fn labelled(labels: [&str; 4]) -> Self {
        let [a, b, c, d] = labels;
        Self {
            levels: [
                SeverityLevel::new(
                    a,
                    "complete outage, data loss or security breach",
                    Duration::from_mins(15),
                ),
                SeverityLevel::new(
                    b,
                    "major degradation affecting many users",
                    Duration::from_hours(1),
                ),
                SeverityLevel::new(
                    c,
                    "partial degradation with a workaround",
                    Duration::from_hours(4),
                ),
                SeverityLevel::new(
                    d,
                    "minor issue with little user impact",
                    Duration::from_hours(24),
                ),
            ],
        }
    }

    /// The level description for `severity`.
    pub fn level(&self, severity: Severity) -> &SeverityLevel {
        &self.levels[usize::from(severity.rank())]
    }

    /// The label for `severity` on this scale.
    pub fn label(&self, severity: Severity) -> &str {
        &self.level(severity).label
    }

    /// Parse a label of this scale (case-insensitive).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `label` is not one of this scale's labels.
    pub fn parse(&self, label: &str) -> Result<Severity, OpsError> {
        Severity::ALL
            .into_iter()
            .find(|s| self.label(*s).eq_ignore_ascii_case(label))
            .ok_or_else(|| {
                OpsError::invalid("severity", label, "not a label of this severity scale")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_map_labels_both_ways() {
        for scale in [SeverityScale::default(), SeverityScale::p1_to_p4()] {
            for s in Severity::ALL {
                assert_eq!(scale.parse(scale.label(s)).unwrap(), s);
            }
        }
        assert!(SeverityScale::default().parse("P4").is_err());
    }

    #[test]
    fn ordering_is_by_urgency() {
        let mut v = vec![
            Severity::Low,
            Severity::Critical,
            Severity::Medium,
            Severity::High,
        ];
        v.sort();
        assert_eq!(
            v,
            [
                Severity::Low,
                Severity::Medium,
                Severity::High,
                Severity::Critical
            ]
        );
    }
}
