//! Status updates in the seeds' template, and the [`Incident`] record a post-mortem is written from.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{IncidentStatus, Severity, SeverityScale};
use crate::error::OpsError;

/// How often stakeholders hear from an incident, by severity.
///
/// The incident-response seed says "update stakeholders every 15-30 minutes"; the defaults
/// take its short end for P0 (15 min) and its long end for P1 (30 min). The seeds say nothing
/// for P2 and P3: 1 h and 4 h are opsbook's choice, within the default scale's response times.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::incident::{Severity, UpdateCadence};
/// let c = UpdateCadence::default();
/// assert_eq!(c.for_severity(Severity::Critical), Duration::from_mins(15));
/// let c: UpdateCadence = serde_json::from_str(r#"{ "high_ms": 1200000 }"#).unwrap();
/// assert_eq!(c.for_severity(Severity::High), Duration::from_mins(20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct UpdateCadence {
    /// Between updates of a P0 incident. Default 15 min.
    #[serde(with = "crate::serde_util::duration_ms", rename = "critical_ms")]
    pub critical: Duration,
    /// Between updates of a P1 incident. Default 30 min.
    #[serde(with = "crate::serde_util::duration_ms", rename = "high_ms")]
    pub high: Duration,
    /// Between updates of a P2 incident. Default 1 h.
    #[serde(with = "crate::serde_util::duration_ms", rename = "medium_ms")]
    pub medium: Duration,
    /// Between updates of a P3 incident. Default 4 h.
    #[serde(with = "crate::serde_util::duration_ms", rename = "low_ms")]
    pub low: Duration,
}

impl Default for UpdateCadence {
    fn default() -> Self {
        Self {
            critical: Duration::from_mins(15),
            high: Duration::from_mins(30),
            medium: Duration::from_hours(1),
            low: Duration::from_hours(4),
        }
    }
}

impl UpdateCadence {
    /// The interval between updates for `severity`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::incident::{Severity, UpdateCadence};
    /// assert_eq!(UpdateCadence::default().for_severity(Severity::High), Duration::from_mins(30));
    /// ```
    pub fn for_severity(&self, severity: Severity) -> Duration {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }
}

/// One stakeholder update, in the shape of the incident-response seed's template:
/// status, impact, current actions, ETA and next update.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::incident::{IncidentStatus, Severity, StatusUpdate};
/// let at: jiff::Timestamp = "2026-11-25T03:15:00Z".parse().unwrap();
/// let u = StatusUpdate::new(IncidentStatus::Investigating, Severity::Critical, "API down", "all requests fail", at)
///     .with_action("restarting the api deployment");
/// assert_eq!(u.next_update, Duration::from_mins(15));
/// let md = u.to_markdown();
/// assert!(md.contains("- **Status:** Investigating"));
/// assert!(md.contains("- **Next Update:** 2026-11-25T03:30:00Z (in 15 min)"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusUpdate {
    /// Where the incident stands.
    pub status: IncidentStatus,
    /// How bad it is.
    pub severity: Severity,
    /// The incident's one-line title.
    pub title: String,
    /// Who and what is affected.
    pub impact: String,
    /// What is being done now.
    pub current_actions: Vec<String>,
    /// When recovery is expected, if known.
    pub eta: Option<jiff::Timestamp>,
    /// Time until the next update (by default from the severity's [`UpdateCadence`]).
    #[serde(with = "crate::serde_util::duration_ms", rename = "next_update_ms")]
    pub next_update: Duration,
    /// When this update was written.
    pub at: jiff::Timestamp,
}

impl StatusUpdate {
    /// An update without actions or ETA; the next update is due after the default
    /// [`UpdateCadence`] for `severity`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::incident::{IncidentStatus, Severity, StatusUpdate};
    /// let u = StatusUpdate::new(IncidentStatus::Monitoring, Severity::High, "slow api", "p95 at 4s", jiff::Timestamp::UNIX_EPOCH);
    /// assert_eq!(u.next_update, Duration::from_mins(30));
    /// ```
    pub fn new(
        status: IncidentStatus,
        severity: Severity,
        title: impl Into<String>,
        impact: impl Into<String>,
        at: jiff::Timestamp,
    ) -> Self {
        Self {
            status,
            severity,
            title: title.into(),
            impact: impact.into(),
            current_actions: Vec::new(),
            eta: None,
            next_update: UpdateCadence::default().for_severity(severity),
            at,
        }
    }

    /// Add a current action.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{IncidentStatus, Severity, StatusUpdate};
    /// let u = StatusUpdate::new(IncidentStatus::Identified, Severity::High, "t", "i", jiff::Timestamp::UNIX_EPOCH)
    ///     .with_action("scaling api to 6 replicas");
    /// assert_eq!(u.current_actions, ["scaling api to 6 replicas"]);
    /// ```
    #[must_use]
    pub fn with_action(mut self, action: impl Into<String>) -> Self {
        self.current_actions.push(action.into());
        self
    }

    /// Set the time until the next update.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::incident::{IncidentStatus, Severity, StatusUpdate};
    /// let u = StatusUpdate::new(IncidentStatus::Monitoring, Severity::Critical, "t", "i", jiff::Timestamp::UNIX_EPOCH)
    ///     .with_next_update(Duration::from_mins(30));
    /// assert!(u.to_markdown().contains("(in 30 min)"));
    /// ```
    #[must_use]
    pub fn with_next_update(mut self, next_update: Duration) -> Self {
        self.next_update = next_update;
        self
    }

    /// When the next update is due; `None` once resolved (there is no next update).
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{IncidentStatus, Severity, StatusUpdate};
    /// let at: jiff::Timestamp = "2026-11-25T03:00:00Z".parse().unwrap();
    /// let u = StatusUpdate::new(IncidentStatus::Identified, Severity::Critical, "t", "i", at);
    /// assert_eq!(u.next_update_at().unwrap().to_string(), "2026-11-25T03:15:00Z");
    /// ```
    pub fn next_update_at(&self) -> Option<jiff::Timestamp> {
        if self.status == IncidentStatus::Resolved {
            return None;
        }
        self.at.checked_add(self.next_update).ok()
    }

    /// The update as Markdown, severity labelled on the default P0–P3 scale.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{IncidentStatus, Severity, StatusUpdate};
    /// let u = StatusUpdate::new(IncidentStatus::Identified, Severity::High, "API errors", "12% of requests fail", jiff::Timestamp::UNIX_EPOCH);
    /// let md = u.to_markdown();
    /// assert!(md.starts_with("**Incident Update - 1970-01-01T00:00:00Z**"));
    /// assert!(md.contains("- **Severity:** P1"));
    /// ```
    pub fn to_markdown(&self) -> String {
        self.to_markdown_with(&SeverityScale::default())
    }

    /// The update as Markdown, severity labelled on `scale`.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{IncidentStatus, Severity, SeverityScale, StatusUpdate};
    /// let u = StatusUpdate::new(IncidentStatus::Identified, Severity::High, "API errors", "12% of requests fail", jiff::Timestamp::UNIX_EPOCH);
    /// assert!(u.to_markdown_with(&SeverityScale::p1_to_p4()).contains("- **Severity:** P2"));
    /// ```
    pub fn to_markdown_with(&self, scale: &SeverityScale) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "**Incident Update - {}** — {}\n",
            self.at,
            super::one_line(&self.title)
        );
        let _ = writeln!(md, "- **Status:** {}", self.status);
        let _ = writeln!(md, "- **Severity:** {}", scale.label(self.severity));
        let _ = writeln!(md, "- **Impact:** {}", super::one_line(&self.impact));
        if self.current_actions.is_empty() {
            let _ = writeln!(md, "- **Current Actions:** none yet");
        } else {
            let _ = writeln!(md, "- **Current Actions:**");
            for a in &self.current_actions {
                let _ = writeln!(md, "  - {}", super::one_line(a));
            }
        }
        let _ = writeln!(md, "- **ETA:** {}", self.eta_text());
        let _ = writeln!(md, "- **Next Update:** {}", self.next_update_text());
        md
    }

    fn eta_text(&self) -> String {
        self.eta
            .map_or_else(|| "unknown".to_owned(), |eta| eta.to_string())
    }

    fn next_update_text(&self) -> String {
        match self.next_update_at() {
            Some(at) => format!("{at} (in {})", super::human_duration(self.next_update)),
            None if self.status == IncidentStatus::Resolved => "none (resolved)".to_owned(),
            None => format!("in {}", super::human_duration(self.next_update)),
        }
    }
}

/// A status change in an [`Incident`]'s history.
///
/// # Examples
/// ```
/// use ops_core::incident::{Incident, IncidentStatus, Severity};
/// let i = Incident::new("INC-1", "API down", Severity::Critical, jiff::Timestamp::UNIX_EPOCH);
/// assert_eq!(i.history()[0].status, IncidentStatus::Investigating);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusChange {
    /// The new status.
    pub status: IncidentStatus,
    /// When it was declared.
    pub at: jiff::Timestamp,
}

/// A human note on an [`Incident`]'s timeline (a decision, a finding, a severity change).
///
/// # Examples
/// ```
/// use ops_core::incident::{Incident, Severity};
/// let mut i = Incident::new("INC-1", "API down", Severity::Critical, jiff::Timestamp::UNIX_EPOCH);
/// i.note(jiff::Timestamp::UNIX_EPOCH, "paged the database team");
/// assert_eq!(i.notes()[0].text, "paged the database team");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimelineNote {
    /// When.
    pub at: jiff::Timestamp,
    /// What.
    pub text: String,
}

/// An incident: what it is, how bad, since when, and its status history.
///
/// Starts [`IncidentStatus::Investigating`] at `started_at`. Status may move freely between
/// Investigating, Identified and Monitoring (a fix that did not hold goes back to
/// Investigating), but a resolved incident stays resolved: a recurrence is a new incident.
///
/// # Examples
/// ```
/// use ops_core::incident::{Incident, IncidentStatus, Severity};
/// let start: jiff::Timestamp = "2026-11-25T03:00:00Z".parse().unwrap();
/// let mut inc = Incident::new("INC-42", "API down", Severity::Critical, start);
/// inc.set_impact("all API requests fail");
/// inc.transition(IncidentStatus::Identified, "2026-11-25T03:10:00Z".parse().unwrap())?;
/// assert_eq!(inc.status(), IncidentStatus::Identified);
/// assert!(inc.postmortem(&[]).to_markdown().contains("all API requests fail"));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    id: String,
    title: String,
    severity: Severity,
    started_at: jiff::Timestamp,
    history: Vec<StatusChange>,
    notes: Vec<TimelineNote>,
    impact: String,
}

impl Incident {
    /// A new incident, investigating since `started_at`.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, IncidentStatus, Severity};
    /// let i = Incident::new("INC-7", "slow checkout", Severity::Medium, jiff::Timestamp::UNIX_EPOCH);
    /// assert_eq!(i.status(), IncidentStatus::Investigating);
    /// assert_eq!(i.id(), "INC-7");
    /// ```
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        severity: Severity,
        started_at: jiff::Timestamp,
    ) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            severity,
            started_at,
            history: vec![StatusChange {
                status: IncidentStatus::Investigating,
                at: started_at,
            }],
            notes: Vec::new(),
            impact: String::new(),
        }
    }

    /// The incident's id.
    ///
    /// # Examples
    /// ```
    /// let i = ops_core::incident::Incident::new("INC-1", "down", ops_core::incident::Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// assert_eq!(i.id(), "INC-1");
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The one-line title.
    ///
    /// # Examples
    /// ```
    /// let i = ops_core::incident::Incident::new("INC-1", "API down", ops_core::incident::Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// assert_eq!(i.title(), "API down");
    /// ```
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The current severity.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, Severity};
    /// let i = Incident::new("INC-1", "down", Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// assert_eq!(i.severity(), Severity::High);
    /// ```
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// When the incident started.
    ///
    /// # Examples
    /// ```
    /// let i = ops_core::incident::Incident::new("INC-1", "down", ops_core::incident::Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// assert_eq!(i.started_at(), jiff::Timestamp::UNIX_EPOCH);
    /// ```
    pub fn started_at(&self) -> jiff::Timestamp {
        self.started_at
    }

    /// The current status.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, IncidentStatus, Severity};
    /// let mut i = Incident::new("INC-1", "down", Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// i.transition(IncidentStatus::Monitoring, jiff::Timestamp::UNIX_EPOCH)?;
    /// assert_eq!(i.status(), IncidentStatus::Monitoring);
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn status(&self) -> IncidentStatus {
        self.history
            .last()
            .map_or(IncidentStatus::Investigating, |c| c.status)
    }

    /// Every status change, oldest first (the first is Investigating at the start).
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, IncidentStatus, Severity};
    /// let mut i = Incident::new("INC-1", "down", Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// i.transition(IncidentStatus::Identified, jiff::Timestamp::UNIX_EPOCH)?;
    /// assert_eq!(i.history().len(), 2);
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn history(&self) -> &[StatusChange] {
        &self.history
    }

    /// The timeline notes, oldest first.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, Severity};
    /// let mut i = Incident::new("INC-1", "down", Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// i.note("2026-01-01T00:10:00Z".parse().unwrap(), "second");
    /// i.note("2026-01-01T00:05:00Z".parse().unwrap(), "first");
    /// assert_eq!(i.notes()[0].text, "first");
    /// ```
    pub fn notes(&self) -> &[TimelineNote] {
        &self.notes
    }

    /// The current impact statement (empty until set).
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, Severity};
    /// let mut i = Incident::new("INC-1", "down", Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// assert_eq!(i.impact(), "");
    /// i.set_impact("checkout fails for EU users");
    /// assert_eq!(i.impact(), "checkout fails for EU users");
    /// ```
    pub fn impact(&self) -> &str {
        &self.impact
    }

    /// When the incident was resolved; `None` while it is open.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, IncidentStatus, Severity};
    /// let mut i = Incident::new("INC-1", "down", Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// assert!(i.resolved_at().is_none());
    /// i.transition(IncidentStatus::Resolved, jiff::Timestamp::UNIX_EPOCH)?;
    /// assert_eq!(i.resolved_at(), Some(jiff::Timestamp::UNIX_EPOCH));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn resolved_at(&self) -> Option<jiff::Timestamp> {
        self.history
            .last()
            .filter(|c| c.status == IncidentStatus::Resolved)
            .map(|c| c.at)
    }

    /// Set the impact statement (the post-mortem quotes it).
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, Severity};
    /// let mut i = Incident::new("INC-1", "down", Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// i.set_impact("all users see errors");
    /// assert_eq!(i.impact(), "all users see errors");
    /// ```
    pub fn set_impact(&mut self, impact: impl Into<String>) {
        self.impact = impact.into();
    }

    /// Change the severity, recording the change as a timeline note at `at`.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, Severity};
    /// let mut i = Incident::new("INC-1", "errors", Severity::Medium, jiff::Timestamp::UNIX_EPOCH);
    /// i.set_severity(Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// assert_eq!(i.severity(), Severity::High);
    /// assert_eq!(i.notes()[0].text, "severity changed from P2 to P1");
    /// ```
    pub fn set_severity(&mut self, severity: Severity, at: jiff::Timestamp) {
        if severity != self.severity {
            let text = format!("severity changed from {} to {severity}", self.severity);
            self.severity = severity;
            self.note(at, text);
        }
    }

    /// Add a note to the timeline at `at` (kept in time order; equal times keep insertion order).
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, Severity};
    /// let mut i = Incident::new("INC-1", "down", Severity::High, jiff::Timestamp::UNIX_EPOCH);
    /// i.note(jiff::Timestamp::UNIX_EPOCH, "rolled back to v1.4.2");
    /// assert_eq!(i.notes().len(), 1);
    /// ```
    pub fn note(&mut self, at: jiff::Timestamp, text: impl Into<String>) {
        let pos = self.notes.partition_point(|n| n.at <= at);
        self.notes.insert(
            pos,
            TimelineNote {
                at,
                text: text.into(),
            },
        );
    }

    /// Move to status `to` at `at`. Moving to the current status does nothing.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when the incident is resolved and `to` is not
    /// Resolved (a resolved incident is never reopened), or when `at` is before the last status
    /// change.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, IncidentStatus, Severity};
    /// let t0 = jiff::Timestamp::UNIX_EPOCH;
    /// let mut i = Incident::new("INC-1", "down", Severity::High, t0);
    /// i.transition(IncidentStatus::Monitoring, t0)?;
    /// i.transition(IncidentStatus::Investigating, t0)?; // the fix did not hold
    /// i.transition(IncidentStatus::Resolved, t0)?;
    /// let err = i.transition(IncidentStatus::Monitoring, t0).unwrap_err();
    /// assert_eq!(err.kind(), ops_core::ErrorKind::InvalidInput);
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn transition(&mut self, to: IncidentStatus, at: jiff::Timestamp) -> Result<(), OpsError> {
        let current = self.status();
        if to == current {
            return Ok(());
        }
        if current == IncidentStatus::Resolved {
            return Err(OpsError::invalid(
                "incident_transition",
                self.id.clone(),
                format!("a resolved incident cannot go back to {to}; open a new incident"),
            ));
        }
        if let Some(last) = self.history.last()
            && at < last.at
        {
            return Err(OpsError::invalid(
                "incident_transition",
                self.id.clone(),
                format!(
                    "status change at {at} is before the last change at {}",
                    last.at
                ),
            ));
        }
        self.history.push(StatusChange { status: to, at });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn incident() -> Incident {
        Incident::new(
            "INC-42",
            "API down",
            Severity::Critical,
            ts("2026-11-25T03:00:00Z"),
        )
    }

    #[test]
    fn resolved_incidents_cannot_go_backwards() {
        let mut i = incident();
        i.transition(IncidentStatus::Resolved, ts("2026-11-25T04:00:00Z"))
            .unwrap();
        for to in [
            IncidentStatus::Investigating,
            IncidentStatus::Identified,
            IncidentStatus::Monitoring,
        ] {
            let err = i.transition(to, ts("2026-11-25T05:00:00Z")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.detail().unwrap().contains("resolved"), "{err:?}");
        }
        assert_eq!(i.status(), IncidentStatus::Resolved);
        assert_eq!(i.history().len(), 2);
        // Resolving again is a no-op, not an error.
        i.transition(IncidentStatus::Resolved, ts("2026-11-25T06:00:00Z"))
            .unwrap();
        assert_eq!(i.resolved_at(), Some(ts("2026-11-25T04:00:00Z")));
    }

    #[test]
    fn open_incidents_may_move_back_to_investigating() {
        let mut i = incident();
        i.transition(IncidentStatus::Monitoring, ts("2026-11-25T03:20:00Z"))
            .unwrap();
        i.transition(IncidentStatus::Investigating, ts("2026-11-25T03:40:00Z"))
            .unwrap();
        let statuses: Vec<_> = i.history().iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                IncidentStatus::Investigating,
                IncidentStatus::Monitoring,
                IncidentStatus::Investigating
            ]
        );
    }

    #[test]
    fn transitions_cannot_go_back_in_time() {
        let mut i = incident();
        i.transition(IncidentStatus::Identified, ts("2026-11-25T03:30:00Z"))
            .unwrap();
        let err = i
            .transition(IncidentStatus::Monitoring, ts("2026-11-25T03:29:59Z"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(i.status(), IncidentStatus::Identified);
    }

    #[test]
    fn status_update_follows_the_seed_template() {
        let at = ts("2026-11-25T03:12:00Z");
        let u = StatusUpdate::new(
            IncidentStatus::Identified,
            Severity::Critical,
            "API down",
            "all requests fail",
            at,
        )
        .with_action("restart api")
        .with_action("check database");
        let md = u.to_markdown();
        let fields: Vec<&str> = md
            .lines()
            .filter_map(|l| l.strip_prefix("- **"))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "Status",
                "Severity",
                "Impact",
                "Current Actions",
                "ETA",
                "Next Update"
            ]
        );
        assert!(
            md.contains("- **Next Update:** 2026-11-25T03:27:00Z (in 15 min)"),
            "{md}"
        );
        assert!(md.contains("  - check database"), "{md}");
    }

    #[test]
    fn severity_changes_are_noted_once() {
        let mut i = incident();
        let now = ts("2026-11-25T03:05:00Z");
        i.set_severity(Severity::High, now);
        assert_eq!(i.notes().len(), 1);
        i.set_severity(Severity::High, now);
        assert_eq!(i.notes().len(), 1, "unchanged severity adds no note");
    }

    #[test]
    fn a_resolved_update_has_no_next_update() {
        let u = StatusUpdate::new(
            IncidentStatus::Resolved,
            Severity::Critical,
            "t",
            "i",
            ts("2026-11-25T04:00:00Z"),
        );
        assert!(u.next_update_at().is_none());
        assert!(u.to_markdown().contains("none (resolved)"));
    }

    #[test]
    fn multiline_text_cannot_break_the_markdown() {
        let u = StatusUpdate::new(
            IncidentStatus::Investigating,
            Severity::Low,
            "two\nlines",
            "a\n- **Status:** fake",
            ts("2026-11-25T03:00:00Z"),
        );
        let md = u.to_markdown();
        let starts = md.lines().filter(|l| l.starts_with("- **Status:**"));
        assert_eq!(starts.count(), 1);
        assert!(md.contains("- **Impact:** a - **Status:** fake\n"));
    }
}
