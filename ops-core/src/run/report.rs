//! [`Report`]: what a run found, did or planned, and when; renders Markdown and JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::text::{markdown_cell, markdown_code, markdown_inline as inline};
use crate::vocab::{
    ActionStatus, FindingLevel, Mode, RunId, RunOutcome, Severity, StepKind, StepStatus,
};

/// Something the diagnosis established, with its evidence.
///
/// # Examples
/// ```
/// use ops_core::run::{Finding, FindingLevel};
/// let f = Finding::critical("2 of 3 pods in CrashLoopBackOff").with_evidence("api-1: 7 restarts");
/// assert_eq!(f.level, FindingLevel::Critical);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// How serious.
    pub level: FindingLevel,
    /// One line.
    pub title: String,
    /// Evidence lines (log lines, values, states).
    pub evidence: Vec<String>,
}

impl Finding {
    /// A finding.
    pub fn new(level: FindingLevel, title: impl Into<String>) -> Self {
        Self {
            level,
            title: title.into(),
            evidence: Vec::new(),
        }
    }

    /// An info finding.
    pub fn info(title: impl Into<String>) -> Self {
        Self::new(FindingLevel::Info, title)
    }

    /// A warning finding.
    pub fn warning(title: impl Into<String>) -> Self {
        Self::new(FindingLevel::Warning, title)
    }

    /// A critical finding.
    pub fn critical(title: impl Into<String>) -> Self {
        Self::new(FindingLevel::Critical, title)
    }

    /// Add an evidence line.
    #[must_use]
    pub fn with_evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }
}

/// A disruptive action: taken, planned, skipped, denied or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Action {
    /// The step name.
    pub step: String,
    /// What it does.
    pub description: String,
    /// What it changes (or would change).
    pub changes: Vec<String>,
    /// What became of it.
    pub status: ActionStatus,
    /// Why (denial reason, skip reason, error).
    pub note: Option<String>,
}

/// One step in the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRecord {
    /// The step name.
    pub step: String,
    /// Read-only or disruptive.
    pub kind: StepKind,
    /// When it started.
    pub started_at: jiff::Timestamp,
    /// How long it took.
    #[serde(rename = "duration_ms", with = "crate::serde_util::duration_ms")]
    pub duration: Duration,
    /// How it ended.
    pub status: StepStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The error chain, when it failed.
    pub error: Option<String>,
}

/// What a run found, did or planned, and when.
///
/// Built by [`crate::run::Run`]; rendered with [`Report::to_markdown`] and [`Report::to_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The run's id (also the journal key).
    pub run_id: RunId,
    /// The runbook's name.
    pub runbook: String,
    /// Dry run or execute.
    pub mode: Mode,
    /// What the run was about.
    pub target: String,
    /// When it started.
    pub started_at: jiff::Timestamp,
    /// When it finished.
    pub finished_at: Option<jiff::Timestamp>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The incident severity the evidence supports, if any: the context's classifier on the
    /// run's signals ([`crate::run::Run::observe`]), or a level a seed mandates.
    pub severity: Option<Severity>,
    /// `severity` labelled on the context's [`crate::incident::SeverityScale`] (`"P1"` for
    /// [`Severity::Critical`] on the seeds' P1–P4 scale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_label: Option<String>,
    /// Why: every classifier rule that fired, labelled on the same scale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity_reasons: Vec<String>,
    /// One paragraph.
    pub summary: String,
    /// What the diagnosis established.
    pub findings: Vec<Finding>,
    /// Disruptive actions and what became of them.
    pub actions: Vec<Action>,
    /// Every step in order.
    pub timeline: Vec<StepRecord>,
    /// The error chain that ended a [`RunOutcome::Failed`] run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// An empty, in-progress report.
    pub fn new(
        run_id: RunId,
        runbook: impl Into<String>,
        mode: Mode,
        target: impl Into<String>,
        started_at: jiff::Timestamp,
    ) -> Self {
        Self {
            run_id,
            runbook: runbook.into(),
            mode,
            target: target.into(),
            started_at,
            finished_at: None,
            outcome: RunOutcome::InProgress,
            severity: None,
            severity_label: None,
            severity_reasons: Vec::new(),
            summary: String::new(),
            findings: Vec::new(),
            actions: Vec::new(),
            timeline: Vec::new(),
            error: None,
        }
    }

    /// Actions with `status`.
    pub fn actions_with(&self, status: ActionStatus) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(move |a| a.status == status)
    }

    /// The timeline record of `step` (the last one when it ran more than once).
    pub fn step(&self, step: &str) -> Option<&StepRecord> {
        self.timeline.iter().rev().find(|r| r.step == step)
    }

    /// The report as pretty JSON.
    ///
    /// # Errors
    /// Never in practice; serialisation of these types cannot fail.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// The report as Markdown, for the post-mortem and chat.
    ///
    /// Every value that may come from outside (target, summary, titles, evidence, notes,
    /// changes, errors) goes through [`crate::text::markdown_inline`],
    /// [`crate::text::markdown_code`] or [`crate::text::markdown_cell`]: it stays on its line
    /// and in its element, so hostile evidence can neither start a block nor break the
    /// timeline table.
    ///
    /// # Examples
    /// ```
    /// use ops_core::run::{Finding, Mode, Report, RunId};
    /// let mut r = Report::new(RunId::generate(jiff::Timestamp::UNIX_EPOCH), "demo", Mode::DryRun, "db", jiff::Timestamp::UNIX_EPOCH);
    /// r.findings.push(Finding::warning("slow").with_evidence("q\n# not a heading\n| x |"));
    /// let md = r.to_markdown();
    /// assert!(md.contains(r"  - `q\n# not a heading\n| x |`"));
    /// assert!(!md.lines().any(|l| l.starts_with("# not")));
    /// ```
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Runbook `{}`: {}",
            code(&self.runbook),
            self.outcome.label()
        );
        let _ = writeln!(md);
        let _ = writeln!(md, "- **Run:** `{}` ({})", self.run_id, self.mode);
        let _ = writeln!(md, "- **Target:** {}", inline(&self.target));
        let _ = writeln!(md, "- **Started:** {}", self.started_at);
        if let Some(end) = self.finished_at {
            let _ = writeln!(md, "- **Finished:** {end}");
        }
        if let Some(sev) = self.severity {
            let label = self
                .severity_label
                .clone()
                .unwrap_or_else(|| sev.to_string());
            let _ = writeln!(md, "- **Severity:** {}", inline(&label));
            for reason in &self.severity_reasons {
                let _ = writeln!(md, "  - {}", inline(reason));
            }
        }
        if let Some(error) = &self.error {
            let _ = writeln!(md, "- **Failed with:** {}", inline(error));
        }
        if !self.summary.is_empty() {
            let _ = writeln!(md, "\n{}", inline(&self.summary));
        }
        let _ = writeln!(md, "\n## Findings\n");
        if self.findings.is_empty() {
            let _ = writeln!(md, "_None._");
        }
        for f in &self.findings {
            let level = match f.level {
                FindingLevel::Info => "info",
                FindingLevel::Warning => "warning",
                FindingLevel::Critical => "critical",
            };
            let _ = writeln!(md, "- **{level}**: {}", inline(&f.title));
            for e in &f.evidence {
                let _ = writeln!(md, "  - {}", markdown_code(e));
            }
        }
        let _ = writeln!(md, "\n## Actions\n");
        if self.actions.is_empty() {
            let _ = writeln!(md, "_None._");
        }
        for a in &self.actions {
            let _ = write!(
                md,
                "- [{}] `{}`: {}",
                a.status.label(),
                code(&a.step),
                inline(&a.description)
            );
            if let Some(note) = &a.note {
                let _ = write!(md, " ({})", inline(note));
            }
            let _ = writeln!(md);
            for c in &a.changes {
                let _ = writeln!(md, "  - {}", inline(c));
            }
        }
        let _ = writeln!(md, "\n## Timeline\n");
        let _ = writeln!(md, "| time | step | kind | result | duration |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for r in &self.timeline {
            let result = match &r.error {
                Some(e) => markdown_cell(&format!("{}: {e}", r.status.label())),
                None => r.status.label().to_owned(),
            };
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} | {} ms |",
                r.started_at.strftime("%H:%M:%S"),
                markdown_cell(&code(&r.step)),
                r.kind,
                result,
                r.duration.as_millis()
            );
        }
        md
    }
}

/// Text inside an inline code span we open and close ourselves: no backtick, one line.
fn code(s: &str) -> String {
    inline(&s.replace('`', "'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "# Heading\r\n| a | b |\n- item\u{2028}```\n<!-- hide\u{85}\\|`tick`";

    /// Unescaped `|` in a table row (a `\|` or `\\` pair does not count).
    fn cells(row: &str) -> usize {
        let mut n = 0;
        let mut chars = row.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '|' => n += 1,
                _ => {}
            }
        }
        n
    }

    #[test]
    fn hostile_text_cannot_start_a_block_or_break_the_table() {
        let at = jiff::Timestamp::UNIX_EPOCH;
        let mut r = Report::new(RunId::generate(at), "demo", Mode::Execute, HOSTILE, at);
        r.summary = HOSTILE.to_owned();
        r.error = Some(HOSTILE.to_owned());
        r.findings.push(
            Finding::critical(HOSTILE)
                .with_evidence(HOSTILE)
                .with_evidence("plain"),
        );
        r.actions.push(Action {
            step: format!("restart{HOSTILE}"),
            description: HOSTILE.to_owned(),
            changes: vec![HOSTILE.to_owned()],
            status: ActionStatus::Failed,
            note: Some(HOSTILE.to_owned()),
        });
        r.timeline.push(StepRecord {
            step: format!("restart{HOSTILE}"),
            kind: StepKind::Disruptive,
            started_at: at,
            duration: Duration::from_millis(5),
            status: StepStatus::Failed,
            attempts: 1,
            error: Some(HOSTILE.to_owned()),
        });
        let md = r.to_markdown();
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(headings.len(), 4, "{md}");
        for line in md.lines() {
            assert!(
                line.is_empty()
                    || line.starts_with("# Runbook ")
                    || line.starts_with("## ")
                    || line.starts_with("- ")
                    || line.starts_with("  - ")
                    || line.starts_with('|')
                    || line == "_None._"
                    || line.starts_with(r"\# Heading"),
                "a value started a block: {line:?}\n{md}"
            );
            if line.starts_with('|') {
                assert_eq!(cells(line), 6, "a value broke the table: {line:?}");
            }
        }
        assert!(
            md.contains(
                r"  - `# Heading\r\n| a | b |\n- item\u{2028}'''\n<!-- hide\u{85}\|'tick'`"
            ),
            "{md}"
        );
        assert!(md.contains("  - `plain`"));
    }
}
