//! The [`Journal`] trait: an append-only record of runs and steps.
//!
//! [`crate::run::RunContext`] writes a [`JournalEntry`] *before* each disruptive step and
//! another after it, so a crash, a cancellation or a timeout leaves a step that says it was
//! in progress ([`JournalExt::in_progress`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, OpsError};
use crate::vocab::{Mode, RunId, Severity, StepKind};

/// What happened at one point of a run.
///
/// # Examples
/// ```
/// use ops_core::journal::JournalEvent;
/// assert!(JournalEvent::StepStarted.is_step_start());
/// assert!(JournalEvent::StepSucceeded.is_step_end());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalEvent {
    /// The run began.
    RunStarted,
    /// The run ended; `ok` is false when the runbook returned an error.
    RunFinished {
        /// Whether the run succeeded.
        ok: bool,
    },
    /// A step is about to run (always written before a disruptive step acts).
    StepStarted,
    /// The step finished successfully.
    StepSucceeded,
    /// The step failed.
    StepFailed {
        /// The error kind.
        kind: ErrorKind,
    },
    /// The step ran past its deadline and was abandoned.
    StepTimedOut,
    /// The run was cancelled while the step ran.
    StepCancelled,
    /// Dry run: the step was planned, not run.
    StepPlanned,
    /// The approver said no; the step did not run.
    StepDenied,
    /// The step was skipped because the evidence did not call for it.
    StepSkipped,
    /// A free-form note (a finding, a decision).
    Note,
}

impl JournalEvent {
    /// Whether this event opens a step.
    pub fn is_step_start(&self) -> bool {
        matches!(self, Self::StepStarted)
    }

    /// Whether this event closes a step.
    pub fn is_step_end(&self) -> bool {
        matches!(
            self,
            Self::StepSucceeded
                | Self::StepFailed { .. }
                | Self::StepTimedOut
                | Self::StepCancelled
                | Self::StepPlanned
                | Self::StepDenied
                | Self::StepSkipped
        )
    }

    /// A short `snake_case` name, e.g. `"step_failed"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RunStarted => "run_started",
            Self::RunFinished { .. } => "run_finished",
            Self::StepStarted => "step_started",
            Self::StepSucceeded => "step_succeeded",
            Self::StepFailed { .. } => "step_failed",
            Self::StepTimedOut => "step_timed_out",
            Self::StepCancelled => "step_cancelled",
            Self::StepPlanned => "step_planned",
            Self::StepDenied => "step_denied",
            Self::StepSkipped => "step_skipped",
            Self::Note => "note",
        }
    }
}

impl fmt::Display for JournalEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One record in the journal.
///
/// # Examples
/// ```
/// use ops_core::journal::{JournalEntry, JournalEvent};
/// use ops_core::run::{Mode, RunId, StepKind};
/// let run: RunId = "20261125T031500Z-1".parse()?;
/// let e = JournalEntry::new(run, "api_down", Mode::Execute, jiff::Timestamp::UNIX_EPOCH, JournalEvent::StepStarted)
///     .with_step("restart", StepKind::Disruptive)
///     .with_detail("rolling restart of prod/deployment/api");
/// assert_eq!(e.step.as_deref(), Some("restart"));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JournalEntry {
    /// The run this entry belongs to.
    pub run_id: RunId,
    /// The runbook's stable name.
    pub runbook: String,
    /// The run's mode.
    pub mode: Mode,
    /// When it happened.
    pub at: jiff::Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub event: JournalEvent,
    /// The step's name, for step events.
    pub step: Option<String>,
    /// Read-only or disruptive, for step events.
    pub step_kind: Option<StepKind>,
    /// Human detail: what the step does, the error chain, the note (never a secret).
    pub detail: String,
    /// What changed or would change (one line per change).
    pub changes: Vec<String>,
    /// The severity of the run's report, on the `RunFinished` entry (the canonical level: label
    /// it with the scale in use). Absent on other entries and in entries written before it
    /// existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

impl JournalEntry {
    /// A new entry without step, detail or changes.
    pub fn new(
        run_id: RunId,
        runbook: impl Into<String>,
        mode: Mode,
        at: jiff::Timestamp,
        event: JournalEvent,
    ) -> Self {
        Self {
            run_id,
            runbook: runbook.into(),
            mode,
            at,
            event,
            step: None,
            step_kind: None,
            detail: String::new(),
            changes: Vec::new(),
            severity: None,
        }
    }

    /// Set the step.
    #[must_use]
    pub fn with_step(mut self, step: impl Into<String>, kind: StepKind) -> Self {
        self.step = Some(step.into());
        self.step_kind = Some(kind);
        self
    }

    /// Set the detail.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Set the changes.
    #[must_use]
    pub fn with_changes(mut self, changes: Vec<String>) -> Self {
        self.changes = changes;
        self
    }

    /// Set the report's severity (on a `RunFinished` entry).
    ///
    /// # Examples
    /// ```
    /// use ops_core::incident::Severity;
    /// use ops_core::journal::{JournalEntry, JournalEvent};
    /// use ops_core::run::{Mode, RunId};
    /// let e = JournalEntry::new("r1".parse::<RunId>()?, "api_down", Mode::Execute, jiff::Timestamp::UNIX_EPOCH, JournalEvent::RunFinished { ok: true })
    ///     .with_severity(Some(Severity::High));
    /// assert_eq!(e.severity, Some(Severity::High));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    #[must_use]
    pub fn with_severity(mut self, severity: Option<Severity>) -> Self {
        self.severity = severity;
        self
    }
}

/// Which runs [`Journal::runs`] returns.
///
/// # Examples
/// ```
/// let q = ops_core::journal::RunQuery::default().with_limit(10).with_runbook("api_down");
/// assert_eq!(q.limit, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunQuery {
    /// At most this many runs, newest first.
    pub limit: usize,
    /// Only runs of this runbook.
    pub runbook: Option<String>,
    /// Only runs started at or after this time.
    pub since: Option<jiff::Timestamp>,
}

impl Default for RunQuery {
    fn default() -> Self {
        Self {
            limit: 50,
            runbook: None,
            since: None,
        }
    }
}

impl RunQuery {
    /// Limit the number of runs.
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Only runs of `runbook`.
    #[must_use]
    pub fn with_runbook(mut self, runbook: impl Into<String>) -> Self {
        self.runbook = Some(runbook.into());
        self
    }

    /// Only runs started at or after `since`.
    #[must_use]
    pub fn with_since(mut self, since: jiff::Timestamp) -> Self {
        self.since = Some(since);
        self
    }
}

/// A run as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// The run's id.
    pub run_id: RunId,
    /// The runbook's name.
    pub runbook: String,
    /// The run's mode.
    pub mode: Mode,
    /// When the run started.
    pub started_at: jiff::Timestamp,
    /// When it finished and whether it succeeded; `None` while in progress (or after a crash).
    pub finished: Option<(jiff::Timestamp, bool)>,
    /// The severity its report ended with (from the `RunFinished` entry), if any.
    #[serde(default)]
    pub severity: Option<Severity>,
}

impl RunSummary {
    /// Build a summary from a run's entries in order; `None` when there is no `RunStarted`.
    ///
    /// Journal backends can use this to answer [`Journal::runs`].
    pub fn from_entries(entries: &[JournalEntry]) -> Option<Self> {
        let start = entries
            .iter()
            .find(|e| e.event == JournalEvent::RunStarted)?;
        let finish = entries
            .iter()
            .rev()
            .find(|e| matches!(e.event, JournalEvent::RunFinished { .. }));
        let finished = finish.and_then(|e| match e.event {
            JournalEvent::RunFinished { ok } => Some((e.at, ok)),
            _ => None,
        });
        Some(Self {
            run_id: start.run_id.clone(),
            runbook: start.runbook.clone(),
            mode: start.mode,
            started_at: start.at,
            finished,
            severity: finish.and_then(|e| e.severity),
        })
    }
}

/// What the journal backend supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JournalCapabilities {
    /// Entries survive a process restart.
    pub durable: bool,
    /// Several processes may write the same journal at once.
    pub shared: bool,
}

/// An append-only record of runs and steps.
///
/// Entries are never updated or deleted through this trait. Implementations keep the order of
/// appends per run.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Journal: fmt::Debug + Send + Sync + 'static {
    /// Short backend name, e.g. `"sqlite"`.
    fn backend(&self) -> &'static str;

    /// What this journal supports.
    fn capabilities(&self) -> JournalCapabilities;

    /// Append one entry. Returns once the entry is durable (for durable journals).
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`] when the store cannot be written.
    async fn append(&self, entry: &JournalEntry) -> Result<(), OpsError>;

    /// Every entry of `run`, in append order.
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`] when the store cannot be read; an unknown run gives an empty list.
    async fn entries(&self, run: &RunId) -> Result<Vec<JournalEntry>, OpsError>;

    /// Runs, newest first.
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`] when the store cannot be read.
    async fn runs(&self, query: &RunQuery) -> Result<Vec<RunSummary>, OpsError>;
}

/// Conveniences over any [`Journal`].
#[async_trait]
pub trait JournalExt: Journal {
    /// Steps of `run` that were started and never closed: what a crash left in progress.
    ///
    /// # Errors
    /// As [`Journal::entries`].
    async fn in_progress(&self, run: &RunId) -> Result<Vec<JournalEntry>, OpsError> {
        let entries = self.entries(run).await?;
        Ok(open_steps(&entries))
    }
}

impl<T: Journal + ?Sized> JournalExt for T {}

/// The `StepStarted` entries without a later end entry for the same step.
pub(crate) fn open_steps(entries: &[JournalEntry]) -> Vec<JournalEntry> {
    let mut open: Vec<JournalEntry> = Vec::new();
    for e in entries {
        if e.event.is_step_start() {
            open.push(e.clone());
        } else if e.event.is_step_end()
            && let Some(pos) = open.iter().rposition(|o| o.step == e.step)
        {
            open.remove(pos);
        }
    }
    open
}

macro_rules! forward_journal {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: Journal + ?Sized> Journal for $ptr<T> {
            fn backend(&self) -> &'static str { (**self).backend() }
            fn capabilities(&self) -> JournalCapabilities { (**self).capabilities() }
            async fn append(&self, entry: &JournalEntry) -> Result<(), OpsError> { (**self).append(entry).await }
            async fn entries(&self, run: &RunId) -> Result<Vec<JournalEntry>, OpsError> { (**self).entries(run).await }
            async fn runs(&self, query: &RunQuery) -> Result<Vec<RunSummary>, OpsError> { (**self).runs(query).await }
        }
    )*};
}
forward_journal!(Arc, Box);

/// A journal in memory: the default of a [`crate::run::RunContext`] without one, and the
/// journal fake for tests (with failure injection).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::journal::{Journal, JournalEntry, JournalEvent, MemoryJournal, RunQuery};
/// use ops_core::run::{Mode, RunId};
/// let journal = MemoryJournal::default();
/// let run: RunId = "r1".parse()?;
/// journal.append(&JournalEntry::new(run.clone(), "demo", Mode::DryRun, jiff::Timestamp::UNIX_EPOCH, JournalEvent::RunStarted)).await?;
/// assert_eq!(journal.entries(&run).await?.len(), 1);
/// assert_eq!(journal.runs(&RunQuery::default()).await?[0].runbook, "demo");
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryJournal {
    state: std::sync::Mutex<MemoryJournalState>,
}

#[derive(Debug, Default)]
struct MemoryJournalState {
    entries: Vec<JournalEntry>,
    /// Appends that succeed before every further append fails (`None`: never fail).
    fail_after: Option<usize>,
}

impl MemoryJournal {
    /// Make every append after the next `n` fail with [`ErrorKind::Unavailable`].
    #[must_use]
    pub fn fail_after(self, n: usize) -> Self {
        self.lock().fail_after = Some(n);
        self
    }

    /// Every entry of every run, in append order.
    pub fn all(&self) -> Vec<JournalEntry> {
        self.lock().entries.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryJournalState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> JournalCapabilities {
        JournalCapabilities {
            durable: false,
            shared: false,
        }
    }

    async fn append(&self, entry: &JournalEntry) -> Result<(), OpsError> {
        let mut state = self.lock();
        if let Some(n) = state.fail_after {
            if n == 0 {
                return Err(OpsError::new(
                    ErrorKind::Unavailable,
                    "memory",
                    "journal_append",
                    entry.run_id.to_string(),
                )
                .with_detail("injected failure"));
            }
            state.fail_after = Some(n - 1);
        }
        state.entries.push(entry.clone());
        Ok(())
    }

    async fn entries(&self, run: &RunId) -> Result<Vec<JournalEntry>, OpsError> {
        Ok(self
            .lock()
            .entries
            .iter()
            .filter(|e| &e.run_id == run)
            .cloned()
            .collect())
    }

    async fn runs(&self, query: &RunQuery) -> Result<Vec<RunSummary>, OpsError> {
        let entries = self.all();
        let mut ids: Vec<&RunId> = Vec::new();
        for e in &entries {
            if !ids.contains(&&e.run_id) {
                ids.push(&e.run_id);
            }
        }
        let mut runs: Vec<RunSummary> = ids
            .into_iter()
            .filter_map(|id| {
                let of_run: Vec<JournalEntry> = entries
                    .iter()
                    .filter(|e| &e.run_id == id)
                    .cloned()
                    .collect();
                RunSummary::from_entries(&of_run)
            })
            .filter(|r| query.runbook.as_ref().is_none_or(|b| &r.runbook == b))
            .filter(|r| query.since.is_none_or(|s| r.started_at >= s))
            .collect();
        runs.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| b.run_id.cmp(&a.run_id))
        });
        runs.truncate(query.limit);
        Ok(runs)
    }
}
