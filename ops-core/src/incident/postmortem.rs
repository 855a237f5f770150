//! After the incident: the post-incident checklist and the post-mortem skeleton, whose
//! timeline comes from the runbook journal.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Incident, IncidentStatus, Severity, SeverityScale, StatusChange, TimelineNote};
use crate::journal::{JournalEntry, JournalEvent};
use crate::vocab::Mode;

/// The marker on every post-mortem section that still needs a human.
///
/// # Examples
/// ```
/// use ops_core::incident::{Incident, Severity, TO_FILL_IN};
/// let pm = Incident::new("INC-1", "down", Severity::High, jiff::Timestamp::UNIX_EPOCH).postmortem(&[]);
/// assert!(pm.to_markdown().contains(TO_FILL_IN));
/// ```
pub const TO_FILL_IN: &str = "TO FILL IN";

/// How soon after resolution the post-mortem of a paging (P0/P1) incident is due: 48 hours,
/// the incident-response seed's "within 48 hours of P0/P1 incidents" (the compose seed says
/// 24–48 hours).
///
/// # Examples
/// ```
/// assert_eq!(ops_core::incident::POSTMORTEM_WITHIN.as_secs(), 48 * 3600);
/// ```
pub const POSTMORTEM_WITHIN: Duration = Duration::from_hours(48);

/// One task of the operations seed's post-incident checklist.
///
/// # Examples
/// ```
/// use ops_core::incident::PostIncidentTask;
/// assert_eq!(PostIncidentTask::ALL.len(), 7);
/// assert_eq!(PostIncidentTask::IdentifyRootCause.to_string(), "Identify root cause");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostIncidentTask {
    /// Update the incident log with the resolution.
    UpdateIncidentLog,
    /// Create the post-mortem document.
    WritePostMortem,
    /// Identify the root cause.
    IdentifyRootCause,
    /// Create action items to prevent a recurrence.
    CreateActionItems,
    /// Update the runbook if a new procedure was discovered.
    UpdateRunbook,
    /// Communicate the resolution to stakeholders.
    CommunicateResolution,
    /// Schedule the follow-up review.
    ScheduleFollowUp,
}

impl PostIncidentTask {
    /// Every task, in the seed's order.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::PostIncidentTask;
    /// assert_eq!(PostIncidentTask::ALL[0], PostIncidentTask::UpdateIncidentLog);
    /// ```
    pub const ALL: [Self; 7] = [
        Self::UpdateIncidentLog,
        Self::WritePostMortem,
        Self::IdentifyRootCause,
        Self::CreateActionItems,
        Self::UpdateRunbook,
        Self::CommunicateResolution,
        Self::ScheduleFollowUp,
    ];

    /// The task in the seed's words.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::PostIncidentTask;
    /// assert_eq!(PostIncidentTask::WritePostMortem.description(), "Create post-mortem document");
    /// ```
    pub fn description(self) -> &'static str {
        match self {
            Self::UpdateIncidentLog => "Update incident log with resolution",
            Self::WritePostMortem => "Create post-mortem document",
            Self::IdentifyRootCause => "Identify root cause",
            Self::CreateActionItems => "Create action items to prevent recurrence",
            Self::UpdateRunbook => "Update runbook if new procedure discovered",
            Self::CommunicateResolution => "Communicate resolution to stakeholders",
            Self::ScheduleFollowUp => "Schedule follow-up review",
        }
    }
}

impl fmt::Display for PostIncidentTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A checklist task and whether it is done.
///
/// # Examples
/// ```
/// use ops_core::incident::{ChecklistItem, PostIncidentTask};
/// let item = ChecklistItem::new(PostIncidentTask::UpdateRunbook);
/// assert!(!item.done);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChecklistItem {
    /// The task.
    pub task: PostIncidentTask,
    /// Whether it is done.
    pub done: bool,
}

impl ChecklistItem {
    /// A pending item.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{ChecklistItem, PostIncidentTask};
    /// assert_eq!(ChecklistItem::new(PostIncidentTask::IdentifyRootCause).task, PostIncidentTask::IdentifyRootCause);
    /// ```
    pub fn new(task: PostIncidentTask) -> Self {
        Self { task, done: false }
    }
}

/// The post-incident checklist from the operations seed; every task pending by default.
///
/// # Examples
/// ```
/// use ops_core::incident::{PostIncidentChecklist, PostIncidentTask};
/// let list = PostIncidentChecklist::default();
/// assert_eq!(list.items.len(), PostIncidentTask::ALL.len());
/// assert!(list.to_markdown().starts_with("- [ ] Update incident log with resolution\n- [ ] "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PostIncidentChecklist {
    /// The items, in order.
    pub items: Vec<ChecklistItem>,
}

impl Default for PostIncidentChecklist {
    fn default() -> Self {
        Self {
            items: PostIncidentTask::ALL
                .into_iter()
                .map(ChecklistItem::new)
                .collect(),
        }
    }
}

impl PostIncidentChecklist {
    /// The checklist as Markdown task-list lines.
    ///
    /// # Examples
    /// ```
    /// let md = ops_core::incident::PostIncidentChecklist::default().to_markdown();
    /// assert_eq!(md.lines().count(), 7);
    /// assert!(md.lines().all(|l| l.starts_with("- [ ] ")));
    /// ```
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        for item in &self.items {
            let mark = if item.done { 'x' } else { ' ' };
            let _ = writeln!(md, "- [{mark}] {}", item.task);
        }
        md
    }
}

/// A section of the post-mortem that people write (the timeline is generated).
///
/// # Examples
/// ```
/// use ops_core::incident::PostMortemSection;
/// assert_eq!(PostMortemSection::RootCause.title(), "Root cause");
/// assert!(PostMortemSection::ActionItems.prompt().contains("owner"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostMortemSection {
    /// What happened, briefly.
    Summary,
    /// Who and what was affected.
    Impact,
    /// Why it happened.
    RootCause,
    /// What ended it.
    Resolution,
    /// What we learned.
    LessonsLearned,
    /// What we will change.
    ActionItems,
}

impl PostMortemSection {
    /// Every section, in document order.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::PostMortemSection;
    /// assert_eq!(PostMortemSection::ALL.last(), Some(&PostMortemSection::ActionItems));
    /// ```
    pub const ALL: [Self; 6] = [
        Self::Summary,
        Self::Impact,
        Self::RootCause,
        Self::Resolution,
        Self::LessonsLearned,
        Self::ActionItems,
    ];

    /// The section heading.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(ops_core::incident::PostMortemSection::LessonsLearned.title(), "Lessons learned");
    /// ```
    pub fn title(self) -> &'static str {
        match self {
            Self::Summary => "Summary",
            Self::Impact => "Impact",
            Self::RootCause => "Root cause",
            Self::Resolution => "Resolution",
            Self::LessonsLearned => "Lessons learned",
            Self::ActionItems => "Action items",
        }
    }

    /// What to write in the section.
    ///
    /// # Examples
    /// ```
    /// assert!(ops_core::incident::PostMortemSection::Impact.prompt().contains("numbers"));
    /// ```
    pub fn prompt(self) -> &'static str {
        match self {
            Self::Summary => {
                "What happened, in two or three sentences: what broke, for whom, for how long."
            }
            Self::Impact => {
                "Who and what was affected and for how long: users, requests, data, money. Give numbers."
            }
            Self::RootCause => {
                "Why it happened. Keep asking why until you reach causes you can act on; list contributing factors."
            }
            Self::Resolution => {
                "What ended the incident and why it worked; the journal timeline shows what the runbooks did."
            }
            Self::LessonsLearned => "What went well, what went badly, where we got lucky.",
            Self::ActionItems => {
                "Changes that prevent a recurrence or shorten the next one, one per line: `- [ ] action (owner, due date)`."
            }
        }
    }
}

/// The post-mortem skeleton of an incident: facts from the incident record, a timeline built
/// only from the runbook journal, the sections people write (marked [`TO_FILL_IN`]) and the
/// post-incident checklist.
///
/// # Examples
/// ```
/// use ops_core::incident::{Incident, IncidentStatus, PostMortem, Severity, TO_FILL_IN};
/// use ops_core::journal::{JournalEntry, JournalEvent};
/// use ops_core::run::{Mode, RunId, StepKind};
/// let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
/// let mut inc = Incident::new("INC-42", "API down", Severity::Critical, t("2026-11-25T03:00:00Z"));
/// inc.transition(IncidentStatus::Resolved, t("2026-11-25T03:40:00Z"))?;
/// let run: RunId = "r1".parse()?;
/// let journal = [
///     JournalEntry::new(run.clone(), "api_down", Mode::Execute, t("2026-11-25T03:05:00Z"), JournalEvent::StepStarted)
///         .with_step("restart", StepKind::Disruptive)
///         .with_detail("rolling restart of prod/deployment/api"),
///     JournalEntry::new(run, "api_down", Mode::Execute, t("2026-11-25T03:06:00Z"), JournalEvent::StepSucceeded)
///         .with_step("restart", StepKind::Disruptive),
/// ];
/// let pm = PostMortem::from_journal(&inc, &journal);
/// assert_eq!(pm.timeline.len(), 2);
/// let md = pm.to_markdown();
/// assert_eq!(md.matches(TO_FILL_IN).count(), 6 + 1); // the sections, and the note on them
/// assert!(md.contains("`restart` (disruptive): started — rolling restart of prod/deployment/api"));
/// assert!(md.contains("- **Post-mortem due:** 2026-11-27T03:40:00Z"));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PostMortem {
    /// The incident's id.
    pub incident_id: String,
    /// The incident's title.
    pub title: String,
    /// The incident's severity.
    pub severity: Severity,
    /// When the incident started.
    pub started_at: jiff::Timestamp,
    /// When it was resolved, if it was.
    pub resolved_at: Option<jiff::Timestamp>,
    /// The declared status changes, from the incident record.
    pub status_history: Vec<StatusChange>,
    /// The people's notes, from the incident record.
    pub notes: Vec<TimelineNote>,
    /// The last impact statement made during the incident (a hint for the Impact section).
    pub stated_impact: String,
    /// The journal entries, in time order (equal times keep journal order). Nothing else.
    pub timeline: Vec<JournalEntry>,
    /// The post-incident checklist.
    pub checklist: PostIncidentChecklist,
}

impl PostMortem {
    /// The skeleton for `incident`, with its timeline built from `entries` (the journal entries
    /// of the runs made during the incident, from [`crate::Journal::entries`]).
    ///
    /// Every entry becomes exactly one timeline line; nothing else enters the timeline.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, PostMortem, Severity};
    /// let inc = Incident::new("INC-1", "slow api", Severity::Medium, jiff::Timestamp::UNIX_EPOCH);
    /// let pm = PostMortem::from_journal(&inc, &[]);
    /// assert!(pm.timeline.is_empty());
    /// assert!(pm.due_by().is_none()); // not resolved, and P2 needs no post-mortem deadline
    /// ```
    pub fn from_journal(incident: &Incident, entries: &[JournalEntry]) -> Self {
        let mut timeline = entries.to_vec();
        timeline.sort_by_key(|e| e.at); // stable
        Self {
            incident_id: incident.id().to_owned(),
            title: incident.title().to_owned(),
            severity: incident.severity(),
            started_at: incident.started_at(),
            resolved_at: incident.resolved_at(),
            status_history: incident.history().to_vec(),
            notes: incident.notes().to_vec(),
            stated_impact: incident.impact().to_owned(),
            timeline,
            checklist: PostIncidentChecklist::default(),
        }
    }

    /// When the post-mortem is due: [`POSTMORTEM_WITHIN`] after resolution, for incidents
    /// that page (P0/P1). `None` for other severities or while unresolved.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, IncidentStatus, Severity};
    /// let mut i = Incident::new("INC-1", "down", Severity::Critical, "2026-01-01T00:00:00Z".parse().unwrap());
    /// i.transition(IncidentStatus::Resolved, "2026-01-01T01:00:00Z".parse().unwrap())?;
    /// assert_eq!(i.postmortem(&[]).due_by().unwrap().to_string(), "2026-01-03T01:00:00Z");
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn due_by(&self) -> Option<jiff::Timestamp> {
        if !self.severity.pages() {
            return None;
        }
        self.resolved_at?.checked_add(POSTMORTEM_WITHIN).ok()
    }

    /// The post-mortem as Markdown.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, Severity};
    /// let md = Incident::new("INC-1", "API down", Severity::High, jiff::Timestamp::UNIX_EPOCH).postmortem(&[]).to_markdown();
    /// assert!(md.starts_with("# Post-mortem: INC-1 — API down\n"));
    /// assert!(md.contains("## Root cause"));
    /// ```
    pub fn to_markdown(&self) -> String {
        self.to_markdown_with(&SeverityScale::default())
    }

    /// The post-mortem as Markdown, the severity labelled on `scale`.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, Severity, SeverityScale};
    /// let pm = Incident::new("INC-1", "API down", Severity::Critical, jiff::Timestamp::UNIX_EPOCH).postmortem(&[]);
    /// assert!(pm.to_markdown_with(&SeverityScale::p1_to_p4()).contains("- **Severity:** P1\n"));
    /// ```
    pub fn to_markdown_with(&self, scale: &SeverityScale) -> String {
        let label = scale.label(self.severity);
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Post-mortem: {} — {}\n",
            super::one_line(&self.incident_id),
            super::one_line(&self.title)
        );
        let _ = writeln!(md, "- **Severity:** {}", super::one_line(label));
        let _ = writeln!(md, "- **Started:** {}", self.started_at);
        match self.resolved_at {
            Some(end) => {
                let lasted = Duration::try_from(end.duration_since(self.started_at))
                    .unwrap_or(Duration::ZERO);
                let _ = writeln!(md, "- **Resolved:** {end}");
                let _ = writeln!(md, "- **Duration:** {}", super::human_duration(lasted));
            }
            None => {
                let _ = writeln!(md, "- **Resolved:** not yet");
            }
        }
        if let Some(due) = self.due_by() {
            let _ = writeln!(
                md,
                "- **Post-mortem due:** {due} (within {} of resolving a {} incident)",
                super::human_duration(POSTMORTEM_WITHIN),
                super::one_line(label)
            );
        }
        let _ = writeln!(
            md,
            "\n_Skeleton: sections marked **{TO_FILL_IN}** are for the people who ran the incident. \
             The runbook timeline comes from the journal and nothing else._"
        );
        for section in [PostMortemSection::Summary, PostMortemSection::Impact] {
            self.write_section(&mut md, section);
        }
        self.write_timeline(&mut md);
        for section in &PostMortemSection::ALL[2..] {
            self.write_section(&mut md, *section);
        }
        let _ = writeln!(md, "\n## Post-incident checklist\n");
        md.push_str(&self.checklist.to_markdown());
        md
    }

    fn write_section(&self, md: &mut String, section: PostMortemSection) {
        let _ = writeln!(md, "\n## {}\n", section.title());
        let _ = writeln!(md, "> **{TO_FILL_IN}:** {}", section.prompt());
        if section == PostMortemSection::Impact && !self.stated_impact.trim().is_empty() {
            let _ = writeln!(
                md,
                ">\n> Stated during the incident: {}",
                super::one_line(&self.stated_impact)
            );
        }
    }

    fn write_timeline(&self, md: &mut String) {
        let _ = writeln!(md, "\n## Timeline\n");
        let _ = writeln!(md, "### Incident record\n");
        let mut record: Vec<(jiff::Timestamp, String)> = self
            .status_history
            .iter()
            .map(|c| (c.at, format!("status: {}", c.status)))
            .chain(
                self.notes
                    .iter()
                    .map(|n| (n.at, format!("note: {}", super::one_line(&n.text)))),
            )
            .collect();
        record.sort_by_key(|(at, _)| *at);
        for (at, line) in record {
            let _ = writeln!(md, "- {at} {line}");
        }
        let _ = writeln!(md, "\n### Runbook journal\n");
        if self.timeline.is_empty() {
            let _ = writeln!(md, "_No journal entries._");
        }
        for e in &self.timeline {
            md.push_str(&timeline_line(e));
        }
    }
}

impl Incident {
    /// The incident one run stands for, read back from its journal entries: id the run id,
    /// title the runbook and run, severity the one its report ended with (the `RunFinished`
    /// entry; [`Severity::Low`] when the run recorded none), started at its first entry,
    /// resolved at its end when it finished well. `None` for no entries.
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, IncidentStatus, Severity};
    /// use ops_core::journal::{JournalEntry, JournalEvent};
    /// use ops_core::run::{Mode, RunId};
    /// let run: RunId = "r1".parse()?;
    /// let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    /// let entries = [
    ///     JournalEntry::new(run.clone(), "api_down", Mode::Execute, at("2026-11-25T03:00:00Z"), JournalEvent::RunStarted),
    ///     JournalEntry::new(run, "api_down", Mode::Execute, at("2026-11-25T03:04:00Z"), JournalEvent::RunFinished { ok: true })
    ///         .with_severity(Some(Severity::Critical)),
    /// ];
    /// let incident = Incident::from_journal(&entries).unwrap();
    /// assert_eq!(incident.severity(), Severity::Critical);
    /// assert_eq!(incident.status(), IncidentStatus::Resolved);
    /// assert_eq!(incident.title(), "api_down (run r1)");
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn from_journal(entries: &[JournalEntry]) -> Option<Self> {
        let first = entries.iter().min_by_key(|e| e.at)?;
        let finish = entries
            .iter()
            .rev()
            .find(|e| matches!(e.event, JournalEvent::RunFinished { .. }));
        let severity = finish.and_then(|e| e.severity).unwrap_or(Severity::Low);
        let run = first.run_id.to_string();
        let title = format!("{} (run {run})", first.runbook);
        let mut incident = Incident::new(run, title, severity, first.at);
        if let Some(e) = finish
            && e.event == (JournalEvent::RunFinished { ok: true })
        {
            // The start is the earliest entry, so this cannot go back in time; a resolved
            // incident is the only other refusal, and this one was just opened.
            let _ = incident.transition(IncidentStatus::Resolved, e.at);
        }
        Some(incident)
    }

    /// The post-mortem skeleton of this incident, with its timeline from `entries`
    /// ([`PostMortem::from_journal`]).
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::{Incident, Severity};
    /// let pm = Incident::new("INC-9", "cache down", Severity::High, jiff::Timestamp::UNIX_EPOCH).postmortem(&[]);
    /// assert_eq!(pm.incident_id, "INC-9");
    /// ```
    pub fn postmortem(&self, entries: &[JournalEntry]) -> PostMortem {
        PostMortem::from_journal(self, entries)
    }
}

/// One journal entry as one timeline line, plus one indented line per change.
fn timeline_line(e: &JournalEntry) -> String {
    let mut line = format!("- {} `{}`", e.at, e.runbook);
    if let Some(step) = &e.step {
        let _ = write!(line, " / `{step}`");
        if let Some(kind) = e.step_kind {
            let _ = write!(line, " ({kind})");
        }
    }
    let what = match &e.event {
        JournalEvent::RunStarted => format!("run started ({}, run `{}`)", e.mode, e.run_id),
        JournalEvent::RunFinished { ok: true } => "run finished: ok".to_owned(),
        JournalEvent::RunFinished { ok: false } => "run finished: failed".to_owned(),
        JournalEvent::StepStarted => "started".to_owned(),
        JournalEvent::StepSucceeded => "succeeded".to_owned(),
        JournalEvent::StepFailed { kind } => format!("failed ({kind})"),
        JournalEvent::StepTimedOut => "timed out".to_owned(),
        JournalEvent::StepCancelled => "cancelled".to_owned(),
        JournalEvent::StepPlanned => "planned, not run (dry run)".to_owned(),
        JournalEvent::StepDenied => "denied by the approver, not run".to_owned(),
        JournalEvent::StepSkipped => "skipped".to_owned(),
        JournalEvent::Note => "note".to_owned(),
    };
    let _ = write!(line, ": {what}");
    if !e.detail.trim().is_empty() {
        let _ = write!(line, " — {}", super::one_line(&e.detail));
    }
    line.push('\n');
    let verb = if e.mode == Mode::DryRun || e.event == JournalEvent::StepPlanned {
        "would change"
    } else {
        "change"
    };
    for change in &e.changes {
        let _ = writeln!(line, "  - {verb}: {}", super::one_line(change));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::incident::IncidentStatus;
    use crate::run::{RunId, StepKind};

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn entry(at: &str, event: JournalEvent) -> JournalEntry {
        JournalEntry::new(
            "r1".parse::<RunId>().unwrap(),
            "api_down",
            Mode::Execute,
            ts(at),
            event,
        )
    }

    fn resolved_incident() -> Incident {
        let mut i = Incident::new(
            "INC-42",
            "API down",
            Severity::Critical,
            ts("2026-11-25T03:00:00Z"),
        );
        i.set_impact("every request returned 503");
        i.transition(IncidentStatus::Identified, ts("2026-11-25T03:10:00Z"))
            .unwrap();
        i.transition(IncidentStatus::Resolved, ts("2026-11-25T03:42:00Z"))
            .unwrap();
        i
    }

    fn journal() -> Vec<JournalEntry> {
        vec![
            entry("2026-11-25T03:05:00Z", JournalEvent::RunStarted),
            entry("2026-11-25T03:05:01Z", JournalEvent::StepStarted)
                .with_step("check_health", StepKind::ReadOnly)
                .with_detail("GET /health/ready"),
            entry(
                "2026-11-25T03:05:02Z",
                JournalEvent::StepFailed {
                    kind: ErrorKind::Unavailable,
                },
            )
            .with_step("check_health", StepKind::ReadOnly)
            .with_detail("http: check failed for api:8080: unavailable"),
            entry("2026-11-25T03:06:00Z", JournalEvent::StepStarted)
                .with_step("restart", StepKind::Disruptive)
                .with_detail("rolling restart of prod/deployment/api")
                .with_changes(vec!["restart pod api-1".into(), "restart pod api-2".into()]),
            entry("2026-11-25T03:07:00Z", JournalEvent::StepSucceeded)
                .with_step("restart", StepKind::Disruptive),
            entry("2026-11-25T03:07:30Z", JournalEvent::StepDenied)
                .with_step("flush_cache", StepKind::Disruptive)
                .with_detail("approver: not during business hours"),
            entry(
                "2026-11-25T03:08:00Z",
                JournalEvent::RunFinished { ok: true },
            ),
        ]
    }

    fn journal_lines(md: &str) -> Vec<&str> {
        let start = md.find("### Runbook journal").unwrap();
        let end = md[start..].find("\n## ").map_or(md.len(), |e| start + e);
        md[start..end]
            .lines()
            .filter(|l| l.starts_with("- "))
            .collect()
    }

    #[test]
    fn timeline_is_one_line_per_entry_in_time_order() {
        let mut entries = journal();
        entries.reverse(); // the order given must not matter
        let pm = PostMortem::from_journal(&resolved_incident(), &entries);
        let times: Vec<_> = pm.timeline.iter().map(|e| e.at).collect();
        assert!(times.is_sorted());
        let md = pm.to_markdown();
        let lines = journal_lines(&md);
        assert_eq!(
            lines,
            [
                "- 2026-11-25T03:05:00Z `api_down`: run started (execute, run `r1`)",
                "- 2026-11-25T03:05:01Z `api_down` / `check_health` (read_only): started — GET /health/ready",
                "- 2026-11-25T03:05:02Z `api_down` / `check_health` (read_only): failed (unavailable) — http: check failed for api:8080: unavailable",
                "- 2026-11-25T03:06:00Z `api_down` / `restart` (disruptive): started — rolling restart of prod/deployment/api",
                "- 2026-11-25T03:07:00Z `api_down` / `restart` (disruptive): succeeded",
                "- 2026-11-25T03:07:30Z `api_down` / `flush_cache` (disruptive): denied by the approver, not run — approver: not during business hours",
                "- 2026-11-25T03:08:00Z `api_down`: run finished: ok",
            ]
        );
        assert!(md.contains("  - change: restart pod api-1\n  - change: restart pod api-2\n"));
    }

    #[test]
    fn timeline_never_contains_anything_not_in_the_journal() {
        let entries = journal();
        let pm = resolved_incident().postmortem(&entries[1..3]);
        assert_eq!(pm.timeline, entries[1..3]);
        let md = pm.to_markdown();
        let lines = journal_lines(&md);
        assert_eq!(lines.len(), 2);
        for line in lines {
            assert!(line.contains("check_health"), "{line}");
        }
        assert!(!md.contains("restart"));
        assert!(!md.contains("run started"));
    }

    #[test]
    fn equal_times_keep_journal_order() {
        let same = "2026-11-25T03:05:00Z";
        let entries = vec![
            entry(same, JournalEvent::StepStarted).with_step("b", StepKind::ReadOnly),
            entry(same, JournalEvent::StepStarted).with_step("a", StepKind::ReadOnly),
        ];
        let pm = PostMortem::from_journal(&resolved_incident(), &entries);
        let steps: Vec<_> = pm.timeline.iter().map(|e| e.step.as_deref()).collect();
        assert_eq!(steps, [Some("b"), Some("a")]);
    }

    #[test]
    fn dry_run_plans_are_marked_as_not_run() {
        let mut planned = entry("2026-11-25T03:06:00Z", JournalEvent::StepPlanned)
            .with_step("restart", StepKind::Disruptive)
            .with_changes(vec!["restart pod api-1".into()]);
        planned.mode = Mode::DryRun;
        let md = resolved_incident().postmortem(&[planned]).to_markdown();
        assert!(md.contains("`restart` (disruptive): planned, not run (dry run)\n"));
        assert!(md.contains("  - would change: restart pod api-1\n"));
    }

    #[test]
    fn every_written_section_is_marked_to_fill_in() {
        let pm = resolved_incident().postmortem(&journal());
        let md = pm.to_markdown();
        assert_eq!(md.matches(&format!("> **{TO_FILL_IN}:**")).count(), 6);
        assert!(md.contains("> Stated during the incident: every request returned 503"));
        let headings: Vec<_> = md.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(
            headings,
            [
                "## Summary",
                "## Impact",
                "## Timeline",
                "## Root cause",
                "## Resolution",
                "## Lessons learned",
                "## Action items",
                "## Post-incident checklist",
            ]
        );
    }

    #[test]
    fn header_states_duration_and_deadline_for_paging_incidents() {
        let pm = resolved_incident().postmortem(&[]);
        assert_eq!(pm.due_by(), Some(ts("2026-11-27T03:42:00Z")));
        let md = pm.to_markdown();
        assert!(md.contains("- **Duration:** 42 min\n"));
        assert!(md.contains("_No journal entries._"));
        let mut low = Incident::new("INC-2", "typo", Severity::Low, ts("2026-11-25T03:00:00Z"));
        low.transition(IncidentStatus::Resolved, ts("2026-11-25T04:00:00Z"))
            .unwrap();
        assert!(low.postmortem(&[]).due_by().is_none());
    }

    #[test]
    fn checklist_starts_with_every_seed_task_pending() {
        let mut list = PostIncidentChecklist::default();
        let tasks: Vec<PostIncidentTask> = list.items.iter().map(|i| i.task).collect();
        assert_eq!(tasks, PostIncidentTask::ALL);
        assert_eq!(list.to_markdown().matches("- [ ] ").count(), 7);
        list.items[0].done = true;
        assert!(list.to_markdown().starts_with("- [x] "));
    }
}
