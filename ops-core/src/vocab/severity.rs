//! [`Severity`]: how bad an incident is, on the canonical four ranks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::OpsError;

/// How bad an incident is, from [`Severity::Critical`] (worst) to [`Severity::Low`].
///
/// The four levels are the canonical ranks; how they are *named* (P0–P3 by default, the seeds'
/// P1–P4, or your own) and how fast they must be answered is a [`SeverityScale`](crate::incident::SeverityScale).
/// `Display`/`FromStr` use the default P0–P3 labels.
///
/// # Examples
/// ```
/// use ops_core::incident::Severity;
/// assert_eq!(Severity::Critical.to_string(), "P0");
/// assert_eq!("P2".parse::<Severity>()?, Severity::Medium);
/// assert!(Severity::Critical > Severity::High); // ordered by urgency
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Complete outage, data loss or security breach: page now (P0 by default).
    Critical,
    /// Major degradation for many users (P1).
    High,
    /// Partial degradation with a workaround (P2).
    Medium,
    /// Minor issue, no user impact to speak of (P3).
    Low,
}

impl Severity {
    /// All levels from the most to the least urgent.
    pub const ALL: [Severity; 4] = [Self::Critical, Self::High, Self::Medium, Self::Low];

    /// 0 for [`Severity::Critical`] up to 3 for [`Severity::Low`].
    pub fn rank(self) -> u8 {
        match self {
            Self::Critical => 0,
            Self::High => 1,
            Self::Medium => 2,
            Self::Low => 3,
        }
    }

    /// The level of a rank (0–3), if any.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(ops_core::incident::Severity::from_rank(1), Some(ops_core::incident::Severity::High));
    /// assert_eq!(ops_core::incident::Severity::from_rank(4), None);
    /// ```
    pub fn from_rank(rank: u8) -> Option<Self> {
        Self::ALL.get(usize::from(rank)).copied()
    }

    /// Whether this level pages someone under the default routing (P0 and P1).
    pub fn pages(self) -> bool {
        matches!(self, Self::Critical | Self::High)
    }
}

impl PartialOrd for Severity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Severity {
    /// More urgent is greater: `Critical > High > Medium > Low`.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.rank().cmp(&self.rank())
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.rank())
    }
}

impl FromStr for Severity {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "p0" | "critical" => Ok(Self::Critical),
            "p1" | "high" => Ok(Self::High),
            "p2" | "medium" => Ok(Self::Medium),
            "p3" | "low" => Ok(Self::Low),
            _ => Err(OpsError::invalid(
                "severity",
                s,
                "expected P0-P3 or critical/high/medium/low",
            )),
        }
    }
}
