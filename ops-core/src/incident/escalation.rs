//! Who to escalate to, by time since the incident started: the [`EscalationPolicy`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Severity;

/// One rung of an escalation ladder: who is brought in once the incident has run `after`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::incident::EscalationLevel;
/// let l = EscalationLevel::new(1, Duration::from_mins(30), "team lead");
/// assert_eq!(l.to_string(), "level 1 (team lead) after 30 min");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EscalationLevel {
    /// 1 for the first escalation after the on-call engineer, then 2, 3...
    pub level: u8,
    /// Time since the incident started after which this level is due.
    #[serde(with = "crate::serde_util::duration_ms", rename = "after_ms")]
    pub after: Duration,
    /// Who to bring in: a role, a rota or a person (e.g. `"team lead"`).
    pub contact: String,
}

impl EscalationLevel {
    /// A level `level` due `after` the incident started, bringing in `contact`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let l = ops_core::incident::EscalationLevel::new(2, Duration::from_hours(1), "engineering manager");
    /// assert_eq!(l.contact, "engineering manager");
    /// ```
    pub fn new(level: u8, after: Duration, contact: impl Into<String>) -> Self {
        Self {
            level,
            after,
            contact: contact.into(),
        }
    }
}

impl fmt::Display for EscalationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "level {} ({}) after {}",
            self.level,
            self.contact,
            super::human_duration(self.after)
        )
    }
}

/// When to escalate an unresolved incident, by elapsed time and severity.
///
/// `levels` is the ladder for every severity without an entry in `overrides`. The default
/// follows the incident-response seed's escalation path (the on-call engineer responds first):
///
/// | after | level | contact |
/// |---|---|---|
/// | 30 min | 1 | team lead ("if issue not resolved in 30 minutes") |
/// | 1 h | 2 | engineering manager ("Director of Engineering if critical impact > 1 hour"; the Kubernetes seed's "Engineering manager") |
/// | 2 h | 3 | CTO/VP ("CTO if major outage > 2 hours"; the Kubernetes seed's "VP Engineering") |
///
/// Because that seed reserves levels 2 and 3 for critical impact and major outages, the default
/// overrides limit P2 ([`Severity::Medium`]) to level 1 and do not escalate P3
/// ([`Severity::Low`], answered the next business day) at all. P0 and P1 use the full ladder.
/// The Kubernetes seed's faster P0 path (15 min / 30 min / 1 h) is one
/// [`EscalationPolicy::with_override`] away.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::incident::{EscalationLevel, EscalationPolicy, Severity};
/// let policy = EscalationPolicy::default();
/// let due = policy.due(Duration::from_mins(61), Severity::High).unwrap();
/// assert_eq!((due.level, due.contact.as_str()), (2, "engineering manager"));
/// assert!(policy.due(Duration::from_hours(5), Severity::Low).is_none());
///
/// // The Kubernetes seed's P0 path.
/// let policy = policy.with_override(Severity::Critical, vec![
///     EscalationLevel::new(1, Duration::from_mins(15), "senior engineer"),
///     EscalationLevel::new(2, Duration::from_mins(30), "engineering manager"),
///     EscalationLevel::new(3, Duration::from_hours(1), "VP engineering"),
/// ]);
/// assert_eq!(policy.due(Duration::from_mins(20), Severity::Critical).unwrap().contact, "senior engineer");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct EscalationPolicy {
    /// The ladder for severities without an override.
    pub levels: Vec<EscalationLevel>,
    /// Per-severity ladders replacing `levels` (an empty ladder: never escalate).
    pub overrides: BTreeMap<Severity, Vec<EscalationLevel>>,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        let ladder = Self::seed_ladder();
        let first = ladder.iter().take(1).cloned().collect();
        Self {
            levels: ladder,
            overrides: BTreeMap::from([(Severity::Medium, first), (Severity::Low, Vec::new())]),
        }
    }
}

impl EscalationPolicy {
    /// A policy with one ladder for every severity and no overrides.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::incident::{EscalationLevel, EscalationPolicy, Severity};
    /// let p = EscalationPolicy::new(vec![EscalationLevel::new(1, Duration::from_mins(10), "lead")]);
    /// assert_eq!(p.due(Duration::from_mins(10), Severity::Low).unwrap().contact, "lead");
    /// ```
    pub fn new(levels: Vec<EscalationLevel>) -> Self {
        Self {
            levels,
            overrides: BTreeMap::new(),
        }
    }

    fn seed_ladder() -> Vec<EscalationLevel> {
        vec![
            EscalationLevel::new(1, Duration::from_mins(30), "team lead"),
            EscalationLevel::new(2, Duration::from_hours(1), "engineering manager"),
            EscalationLevel::new(3, Duration::from_hours(2), "CTO/VP"),
        ]
    }

    /// Use `levels` for `severity` instead of the common ladder (an empty vector: never
    /// escalate incidents of that severity).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::incident::{EscalationPolicy, Severity};
    /// let p = EscalationPolicy::default().with_override(Severity::High, Vec::new());
    /// assert!(p.due(Duration::from_hours(3), Severity::High).is_none());
    /// ```
    #[must_use]
    pub fn with_override(mut self, severity: Severity, levels: Vec<EscalationLevel>) -> Self {
        self.overrides.insert(severity, levels);
        self
    }

    /// The ladder that applies to `severity`.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{EscalationPolicy, Severity};
    /// let p = EscalationPolicy::default();
    /// assert_eq!(p.levels_for(Severity::Critical).len(), 3);
    /// assert_eq!(p.levels_for(Severity::Medium).len(), 1);
    /// ```
    pub fn levels_for(&self, severity: Severity) -> &[EscalationLevel] {
        self.overrides.get(&severity).unwrap_or(&self.levels)
    }

    /// The highest level due once an incident of `severity` has run `elapsed`: the level with
    /// the latest `after` that is `<= elapsed`. `None` before the first level is due.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::incident::{EscalationPolicy, Severity};
    /// let p = EscalationPolicy::default();
    /// assert!(p.due(Duration::from_mins(29), Severity::Critical).is_none());
    /// assert_eq!(p.due(Duration::from_mins(30), Severity::Critical).unwrap().level, 1);
    /// ```
    pub fn due(&self, elapsed: Duration, severity: Severity) -> Option<&EscalationLevel> {
        Self::due_in(self.levels_for(severity), elapsed)
    }

    fn due_in(levels: &[EscalationLevel], elapsed: Duration) -> Option<&EscalationLevel> {
        levels
            .iter()
            .filter(|l| l.after <= elapsed)
            .max_by_key(|l| (l.after, l.level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn mins(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    #[test]
    fn escalates_at_30_minutes_not_29_and_to_level_2_after_an_hour() {
        let p = EscalationPolicy::default();
        assert!(p.due(mins(29), Severity::High).is_none());
        let l1 = p.due(mins(30), Severity::High).unwrap();
        assert_eq!((l1.level, l1.contact.as_str()), (1, "team lead"));
        assert_eq!(p.due(mins(59), Severity::High).unwrap().level, 1);
        let l2 = p.due(mins(61), Severity::High).unwrap();
        assert_eq!((l2.level, l2.contact.as_str()), (2, "engineering manager"));
        let l3 = p.due(mins(120), Severity::Critical).unwrap();
        assert_eq!((l3.level, l3.contact.as_str()), (3, "CTO/VP"));
        assert_eq!(p.due(mins(600), Severity::Critical).unwrap().level, 3);
    }

    #[test]
    fn default_overrides_keep_low_severities_off_the_management_ladder() {
        let p = EscalationPolicy::default();
        assert_eq!(p.due(mins(240), Severity::Medium).unwrap().level, 1);
        assert!(p.due(mins(240), Severity::Low).is_none());
        let uniform = EscalationPolicy::new(p.levels.clone());
        assert_eq!(uniform.due(mins(240), Severity::Low).unwrap().level, 3);
    }

    #[test]
    fn unordered_configured_ladders_still_pick_by_time() {
        let p: EscalationPolicy = serde_json::from_str(
            r#"{ "levels": [
                { "level": 2, "after_ms": 3600000, "contact": "em" },
                { "level": 1, "after_ms": 600000, "contact": "lead" }
            ] }"#,
        )
        .unwrap();
        // Keys left out keep their defaults: P3 still never escalates.
        assert_eq!(p.overrides, EscalationPolicy::default().overrides);
        assert_eq!(p.due(mins(15), Severity::High).unwrap().contact, "lead");
        assert_eq!(p.due(mins(60), Severity::High).unwrap().contact, "em");
        assert!(p.due(mins(60), Severity::Low).is_none());
    }
}
