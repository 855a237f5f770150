//! [`RunContext`] (how runs behave) and [`Run`] (one run in progress).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{
    Action, ActionStatus, ApprovalPolicy, ApprovalRequest, Approver, Clock, Decision, Finding,
    Mode, ReadStep, Report, RetryPolicy, RunEvent, RunFailure, RunId, RunObserver, RunOutcome,
    Step, StepKind, StepRecord, StepStatus, SystemClock,
};
use crate::error::{ErrorKind, OpsError};
use crate::journal::{Journal, JournalEntry, JournalEvent};
use crate::notify::{LogNotifier, Notification, Notifier};

mod incident;

pub use incident::IncidentPolicy;

/// How runs behave: mode, approval, journal, notifier, clock, timeouts, retries, cancellation.
///
/// Cheap to clone (everything is behind `Arc`). Build with [`RunContext::builder`].
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use ops_core::run::{ApprovalPolicy, Mode, RunContext};
/// use ops_core::testing::MemoryJournal;
/// let ctx = RunContext::builder()
///     .mode(Mode::Execute)
///     .allow_volatile_journal()
///     .approver(ApprovalPolicy::approve_all("drill"))
///     .journal(Arc::new(MemoryJournal::default()))
///     .build();
/// assert_eq!(ctx.mode(), Mode::Execute);
/// ```
#[derive(Clone)]
pub struct RunContext {
    mode: Mode,
    approver: Arc<dyn Approver>,
    journal: Arc<dyn Journal>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    step_timeout: Duration,
    approval_timeout: Duration,
    journal_timeout: Duration,
    finish_grace: Duration,
    volatile_journal_ok: bool,
    retry: RetryPolicy,
    cancel: CancellationToken,
    observers: Vec<Arc<dyn RunObserver>>,
    incident: Arc<IncidentPolicy>,
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("mode", &self.mode)
            .field("approver", &self.approver)
            .field("journal", &self.journal.backend())
            .field("notifier", &self.notifier.name())
            .field("step_timeout", &self.step_timeout)
            .field("journal_timeout", &self.journal_timeout)
            .field("finish_grace", &self.finish_grace)
            .field("retry", &self.retry)
            .field("observers", &self.observers.len())
            .finish_non_exhaustive()
    }
}

impl RunContext {
    /// A builder with safe defaults: dry run, deny-all approver, an in-memory journal, a
    /// tracing-log notifier, the system clock, 60 s step timeout, 3 attempts.
    pub fn builder() -> RunContextBuilder {
        RunContextBuilder::default()
    }

    /// Dry run or execute.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.journal
    }

    /// The notifier.
    pub fn notifier(&self) -> &Arc<dyn Notifier> {
        &self.notifier
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The default per-attempt step timeout.
    pub fn step_timeout(&self) -> Duration {
        self.step_timeout
    }

    /// The deadline of each journal write.
    pub fn journal_timeout(&self) -> Duration {
        self.journal_timeout
    }

    /// How long a disruptive operation that overran its timeout, or was running when the run
    /// was cancelled, is given to finish before it is abandoned.
    pub fn finish_grace(&self) -> Duration {
        self.finish_grace
    }

    /// The default retry policy of read-only steps.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// How runs classify, label, announce and escalate their incident.
    pub fn incident_policy(&self) -> &IncidentPolicy {
        &self.incident
    }

    /// The token that cancels runs of this context; cancel it to stop them between and during steps.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Begin a run of `runbook` about `target`: journals `RunStarted`.
    ///
    /// A journal that cannot be written does not stop diagnosis; it is a warning finding, and
    /// every disruptive step will refuse to run (it could not be journaled).
    pub async fn begin(&self, runbook: &'static str, target: impl fmt::Display) -> Run<'_> {
        let started = self.clock.now();
        let run_id = RunId::generate(started);
        let target = target.to_string();
        let event = RunEvent::Started {
            run_id: run_id.clone(),
            runbook,
            target: target.clone(),
            mode: self.mode,
        };
        // The run's span: every step is a child of it, so each event of a step (and of the
        // backend calls the step makes) carries run_id, runbook, target and mode. At ERROR
        // level so that it is enabled whenever any event is (a `warn` filter keeps it).
        let span = tracing::error_span!("run", run_id = %run_id, runbook, target = %target, mode = %self.mode);
        let report = Report::new(run_id, runbook, self.mode, target, started);
        let run = Run {
            ctx: self,
            runbook,
            span,
            report: Mutex::new(report),
            incident: Mutex::default(),
        };
        run.emit(&event);
        let entry = run.entry(JournalEvent::RunStarted);
        let started = run
            .journal_append(&entry, true)
            .instrument(run.span.clone());
        if let Err(e) = started.await {
            tracing::warn!(parent: &run.span, error = %e.chain(), "journal unavailable at run start");
            run.finding(
                Finding::warning("journal unavailable: disruptive steps will not run")
                    .with_evidence(e.chain()),
            );
        }
        run
    }
}

/// Builds a [`RunContext`].
#[derive(Debug)]
pub struct RunContextBuilder {
    mode: Mode,
    approver: Option<Arc<dyn Approver>>,
    journal: Option<Arc<dyn Journal>>,
    notifier: Option<Arc<dyn Notifier>>,
    clock: Option<Arc<dyn Clock>>,
    step_timeout: Duration,
    approval_timeout: Duration,
    journal_timeout: Duration,
    finish_grace: Duration,
    volatile_journal_ok: bool,
    retry: RetryPolicy,
    cancel: Option<CancellationToken>,
    observers: Vec<Arc<dyn RunObserver>>,
    incident: IncidentPolicy,
}

impl Default for RunContextBuilder {
    fn default() -> Self {
        Self {
            mode: Mode::DryRun,
            approver: None,
            journal: None,
            notifier: None,
            clock: None,
            step_timeout: Duration::from_secs(60),
            approval_timeout: Duration::from_secs(300),
            journal_timeout: Duration::from_secs(10),
            finish_grace: Duration::from_secs(120),
            volatile_journal_ok: false,
            retry: RetryPolicy::default(),
            cancel: None,
            observers: Vec::new(),
            incident: IncidentPolicy::default(),
        }
    }
}

impl RunContextBuilder {
    /// Dry run (default) or execute.
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Who approves disruptive steps (default: deny all).
    #[must_use]
    pub fn approver(mut self, approver: impl Approver) -> Self {
        self.approver = Some(Arc::new(approver));
        self
    }

    /// An approver already behind an `Arc`.
    #[must_use]
    pub fn approver_arc(mut self, approver: Arc<dyn Approver>) -> Self {
        self.approver = Some(approver);
        self
    }

    /// Where runs are journaled (default: an in-memory journal, lost at exit).
    #[must_use]
    pub fn journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Who is told (default: tracing log lines).
    #[must_use]
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The wall clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Per-attempt step timeout unless a step sets its own (default 60 s).
    #[must_use]
    pub fn step_timeout(mut self, timeout: Duration) -> Self {
        self.step_timeout = timeout;
        self
    }

    /// How long to wait for an approver; no answer is a denial (default 5 min).
    #[must_use]
    pub fn approval_timeout(mut self, timeout: Duration) -> Self {
        self.approval_timeout = timeout;
        self
    }

    /// Deadline of each journal write (default 10 s). A write that misses it fails like any
    /// other journal error: a disruptive step whose start cannot be journaled does not run.
    #[must_use]
    pub fn journal_timeout(mut self, timeout: Duration) -> Self {
        self.journal_timeout = timeout;
        self
    }

    /// How long a disruptive operation is given to finish once its step timeout has passed
    /// or the run was cancelled (default 2 min). The engine does not drop a change half-way:
    /// it waits for the backend (whose every call has its own deadline) to finish or
    /// compensate; only past this grace is the operation abandoned, and the report says so.
    #[must_use]
    pub fn finish_grace(mut self, grace: Duration) -> Self {
        self.finish_grace = grace;
        self
    }

    /// Let [`Mode::Execute`] runs change things with a journal that is not durable (the
    /// default in-memory one, lost at exit): for tests and drills. Without it, a disruptive
    /// step of an execute run whose journal is not durable is refused, so a change in
    /// production always leaves a record that survives the process.
    #[must_use]
    pub fn allow_volatile_journal(mut self) -> Self {
        self.volatile_journal_ok = true;
        self
    }

    /// Retry policy of read-only steps (default 3 attempts, 200 ms doubling, jitter).
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Add an observer that sees every event of every run of this context (live views,
    /// progress bars, metrics, audit sinks). Several may be added.
    #[must_use]
    pub fn observer(mut self, observer: impl RunObserver) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// How runs classify, label, announce and escalate their incident (default: the seeds'
    /// thresholds, P0–P3, escalation ladder and update cadence).
    #[must_use]
    pub fn incident_policy(mut self, policy: IncidentPolicy) -> Self {
        self.incident = policy;
        self
    }

    /// Use an existing cancellation token (e.g. one cancelled on Ctrl-C).
    #[must_use]
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Build the context.
    pub fn build(self) -> RunContext {
        RunContext {
            mode: self.mode,
            approver: self
                .approver
                .unwrap_or_else(|| Arc::new(ApprovalPolicy::DenyAll)),
            journal: self
                .journal
                .unwrap_or_else(|| Arc::new(crate::journal::MemoryJournal::default())),
            notifier: self.notifier.unwrap_or_else(|| Arc::new(LogNotifier)),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            step_timeout: self.step_timeout,
            approval_timeout: self.approval_timeout,
            journal_timeout: self.journal_timeout,
            finish_grace: self.finish_grace,
            volatile_journal_ok: self.volatile_journal_ok,
            retry: self.retry,
            cancel: self.cancel.unwrap_or_default(),
            observers: self.observers,
            incident: Arc::new(self.incident),
        }
    }
}

/// What became of a disruptive step ([`Run::act`]).
///
/// # Examples
/// ```
/// use ops_core::run::Acted;
/// let a: Acted<u32> = Acted::Done(3);
/// assert_eq!(a.done(), Some(3));
/// assert!(Acted::<u32>::Planned.done().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acted<T> {
    /// It ran and returned this.
    Done(T),
    /// Dry run: recorded as planned, not run.
    Planned,
    /// The approver said no; not run.
    Denied {
        /// The approver's reason.
        reason: String,
    },
}

impl<T> Acted<T> {
    /// The value when it ran.
    pub fn done(self) -> Option<T> {
        match self {
            Self::Done(v) => Some(v),
            _ => None,
        }
    }

    /// Whether it ran.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done(_))
    }
}

/// One run in progress: runs steps under the context's rules and builds the [`Report`].
///
/// Methods take `&self`, so independent read-only steps run concurrently with `tokio::join!`.
#[derive(Debug)]
pub struct Run<'c> {
    ctx: &'c RunContext,
    runbook: &'static str,
    span: tracing::Span,
    report: Mutex<Report>,
    incident: Mutex<incident::IncidentState>,
}

impl Run<'_> {
    /// The context.
    pub fn ctx(&self) -> &RunContext {
        self.ctx
    }

    /// The run's id.
    pub fn id(&self) -> RunId {
        self.with_report(|r| r.run_id.clone())
    }

    /// Dry run or execute.
    pub fn mode(&self) -> Mode {
        self.ctx.mode
    }

    /// The run's span, `run{run_id, runbook, target, mode}`: the parent of every step's span
    /// `step{step, kind}`. Instrument work of the run done outside a step with it.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let ctx = ops_core::run::RunContext::builder().build();
    /// let run = ctx.begin("example", "demo").await;
    /// use tracing::Instrument as _;
    /// let n = async { 42 }.instrument(run.span().clone()).await;
    /// assert_eq!(n, 42);
    /// # });
    /// ```
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The span of one step: `step{step, kind}`, a child of the run's span.
    fn step_span(&self, step: &Step) -> tracing::Span {
        tracing::error_span!(parent: &self.span, "step", step = step.name(), kind = %step.kind())
    }

    fn with_report<R>(&self, f: impl FnOnce(&mut Report) -> R) -> R {
        // A panic while holding the lock cannot leave a report half-written in a way that
        // matters: every mutation is a single push or assignment.
        let mut guard = self.report.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Tell every observer.
    fn emit(&self, event: &RunEvent) {
        for observer in &self.ctx.observers {
            observer.observe(event);
        }
    }

    fn step_started(&self, step: &Step) {
        if !self.ctx.observers.is_empty() {
            self.emit(&RunEvent::StepStarted {
                run_id: self.id(),
                step: step.name().to_owned(),
                kind: step.kind(),
            });
        }
    }

    fn entry(&self, event: JournalEvent) -> JournalEntry {
        JournalEntry::new(
            self.id(),
            self.runbook,
            self.ctx.mode,
            self.ctx.clock.now(),
            event,
        )
    }

    fn step_entry(&self, step: &Step, event: JournalEvent) -> JournalEntry {
        self.entry(event)
            .with_step(step.name(), step.kind())
            .with_detail(step.description())
            .with_changes(step.changes().to_vec())
    }

    /// Append to the journal under the journal deadline; with `cancellable`, also give up
    /// when the run is cancelled (writes made before a change; the records of what happened
    /// are written even after a cancellation).
    async fn journal_append(
        &self,
        entry: &JournalEntry,
        cancellable: bool,
    ) -> Result<(), OpsError> {
        let timeout = self.ctx.journal_timeout;
        let timed_out = || {
            OpsError::new(ErrorKind::Timeout, "core", "journal", self.runbook).with_detail(format!(
                "the journal did not answer within {}ms",
                timeout.as_millis()
            ))
        };
        let write = tokio::time::timeout(timeout, self.ctx.journal.append(entry));
        if cancellable {
            tokio::select! {
                biased;
                () = self.ctx.cancel.cancelled() => Err(OpsError::new(ErrorKind::Cancelled, "core", "journal", self.runbook)
                    .with_detail("the run was cancelled")),
                r = write => r.unwrap_or_else(|_| Err(timed_out())),
            }
        } else {
            write.await.unwrap_or_else(|_| Err(timed_out()))
        }
    }

    /// Append to the journal, logging (not failing) when it cannot be written.
    async fn journal_best_effort(&self, entry: JournalEntry) {
        // Boxed: the write's deadline machinery would otherwise sit in every step's future.
        if let Err(e) = Box::pin(self.journal_append(&entry, false)).await {
            tracing::warn!(runbook = self.runbook, step = ?entry.step, error = %e.chain(), "journal write failed");
        }
    }

    /// Record a finding, with the credentials its title and evidence carry redacted
    /// ([`crate::text::redact_credentials`]).
    pub fn finding(&self, mut finding: Finding) {
        // Evidence comes from the systems under diagnosis: whatever a runbook quoted, no
        // credential it carries reaches the report (sites quote through `text::evidence`
        // already; this is the backstop for every runbook, present and future).
        finding.title = crate::text::redact_credentials(&finding.title);
        for line in &mut finding.evidence {
            *line = crate::text::redact_credentials(line);
        }
        tracing::info!(parent: &self.span, level = ?finding.level, title = %finding.title, "finding");
        if !self.ctx.observers.is_empty() {
            self.emit(&RunEvent::Finding {
                run_id: self.id(),
                finding: finding.clone(),
            });
        }
        self.with_report(|r| r.findings.push(finding));
    }

    /// Set the summary paragraph.
    pub fn summary(&self, summary: impl Into<String>) {
        let summary = summary.into();
        self.with_report(|r| r.summary = summary);
    }

    /// A copy of the report so far.
    pub fn snapshot(&self) -> Report {
        self.with_report(|r| r.clone())
    }

    /// Record a disruptive step that the evidence did not call for.
    pub async fn skip(&self, step: Step, reason: impl Into<String>) {
        let reason = reason.into();
        let now = self.ctx.clock.now();
        self.journal_best_effort(
            self.step_entry(&step, JournalEvent::StepSkipped)
                .with_detail(reason.clone()),
        )
        .instrument(self.step_span(&step))
        .await;
        self.push_action(&step, ActionStatus::Skipped, Some(reason));
        self.record(&step, now, Duration::ZERO, StepStatus::Skipped, 0, None);
    }

    fn check_cancelled(&self, step: &Step) -> Result<(), OpsError> {
        if self.ctx.cancel.is_cancelled() {
            Err(
                OpsError::new(ErrorKind::Cancelled, "core", "step", step.target_name())
                    .with_detail("the run was cancelled")
                    .with_step(step.name()),
            )
        } else {
            Ok(())
        }
    }

    /// Run one attempt under the step timeout and the run's cancellation.
    async fn attempt<T, Fut>(&self, step: &Step, fut: Fut) -> Result<T, OpsError>
    where
        Fut: Future<Output = Result<T, OpsError>>,
    {
        let timeout = step.timeout_override().unwrap_or(self.ctx.step_timeout);
        tokio::select! {
            biased;
            () = self.ctx.cancel.cancelled() => Err(OpsError::new(ErrorKind::Cancelled, "core", "step", step.target_name())
                .with_detail("the run was cancelled")),
            r = tokio::time::timeout(timeout, fut) => match r {
                Ok(r) => r,
                Err(_) => Err(OpsError::new(ErrorKind::Timeout, "core", "step", step.target_name())
                    .with_detail(format!("no result within {}ms", timeout.as_millis()))),
            },
        }
    }

    fn record(
        &self,
        step: &Step,
        started_at: jiff::Timestamp,
        elapsed: Duration,
        status: StepStatus,
        attempts: u32,
        error: Option<String>,
    ) {
        let record = StepRecord {
            step: step.name().to_owned(),
            kind: step.kind(),
            started_at,
            duration: elapsed,
            status,
            attempts,
            error,
        };
        if !self.ctx.observers.is_empty() {
            self.emit(&RunEvent::StepFinished {
                run_id: self.id(),
                record: record.clone(),
            });
        }
        self.with_report(|r| r.timeline.push(record));
    }

    /// Run a read-only step: always runs (also in dry run), each attempt bounded by the step
    /// timeout, retried on retryable errors, recorded in the timeline and journaled.
    ///
    /// # Errors
    /// The operation's last error tagged with the step name; [`ErrorKind::Timeout`] past the
    /// deadline; [`ErrorKind::Cancelled`] when the run is cancelled.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// use ops_core::run::{RunContext, Step};
    /// let ctx = RunContext::builder().build();
    /// let run = ctx.begin("example", "demo").await;
    /// let n = run.read(Step::read_only("count"), || async { Ok::<_, ops_core::OpsError>(42) }).await?;
    /// assert_eq!(n, 42);
    /// assert_eq!(run.snapshot().timeline[0].step, "count");
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    pub async fn read<T, F, Fut>(&self, step: ReadStep, mut op: F) -> Result<T, OpsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OpsError>>,
    {
        let step = step.as_step().clone();
        let span = self.step_span(&step);
        // Boxed so the futures of runbooks, which hold many steps, stay small.
        Box::pin(
            async {
                self.check_cancelled(&step)?;
                self.checkpoint().await;
                self.step_started(&step);
                let started_at = self.ctx.clock.now();
                let start = tokio::time::Instant::now();
                let policy = step.retry_override().unwrap_or(self.ctx.retry);
                let (result, attempts) = policy.retry(|| self.attempt(&step, op())).await;
                let elapsed = start.elapsed();
                match result {
                    Ok(v) => {
                        self.record(
                            &step,
                            started_at,
                            elapsed,
                            StepStatus::Succeeded,
                            attempts,
                            None,
                        );
                        Ok(v)
                    }
                    Err(e) => {
                        let e = e.with_step(step.name());
                        let status = status_of(&e);
                        tracing::warn!(error = %e.chain(), "read-only step failed");
                        self.record(
                            &step,
                            started_at,
                            elapsed,
                            status,
                            attempts,
                            Some(e.chain()),
                        );
                        self.journal_best_effort(
                            self.step_entry(&step, end_event(&e)).with_detail(e.chain()),
                        )
                        .await;
                        Err(e)
                    }
                }
            }
            .instrument(span),
        )
        .await
    }

    /// Run a disruptive step under the rules:
    ///
    /// - dry run: not run; recorded as *planned* with the step's changes;
    /// - execute: the approver decides (no answer within the approval timeout is a denial);
    ///   a denial is recorded and nothing runs;
    /// - approved: a `StepStarted` entry is journaled **before** anything changes (if it cannot
    ///   be written the step does not run), then the operation runs under the step timeout and
    ///   cancellation, then the outcome is journaled. A step that fails, times out or is
    ///   cancelled leaves an entry that says so; a crash leaves the `StepStarted` entry open.
    ///
    /// Disruptive steps are never retried: whether a half-done change may be repeated is the
    /// runbook's decision, taken with fresh evidence.
    ///
    /// # Errors
    /// The operation's error tagged with the step name; [`ErrorKind::Timeout`];
    /// [`ErrorKind::Cancelled`]; [`ErrorKind::Unavailable`] when the journal cannot record the
    /// step before it runs.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// use ops_core::run::{Acted, RunContext, Step};
    /// let ctx = RunContext::builder().build(); // dry run by default
    /// let run = ctx.begin("example", "demo").await;
    /// let acted = run.act(Step::disruptive("flush").change("delete 120 keys"), || async {
    ///     unreachable!("a dry run never calls the operation");
    ///     #[allow(unreachable_code)] Ok::<(), ops_core::OpsError>(())
    /// }).await?;
    /// assert_eq!(acted, Acted::Planned);
    /// assert_eq!(run.snapshot().actions[0].changes, ["delete 120 keys"]);
    /// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
    /// ```
    pub async fn act<T, F, Fut>(&self, step: Step, op: F) -> Result<Acted<T>, OpsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, OpsError>>,
    {
        let span = self.step_span(&step);
        // Boxed so the futures of runbooks, which hold many steps, stay small.
        Box::pin(self.act_inner(step, op).instrument(span)).await
    }

    async fn act_inner<T, F, Fut>(&self, step: Step, op: F) -> Result<Acted<T>, OpsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, OpsError>>,
    {
        // An undo of a change this run made is part of that change's approval, and runs even
        // after a cancellation: it is what keeps a failed or cancelled run from leaving the
        // change half-done.
        let undo_of = step
            .undoes()
            .filter(|undone| self.ran(undone))
            .map(str::to_owned);
        if undo_of.is_none() {
            self.check_cancelled(&step)?;
        }
        self.checkpoint().await;
        let started_at = self.ctx.clock.now();
        if self.ctx.mode == Mode::DryRun {
            self.plan(&step, started_at).await;
            return Ok(Acted::Planned);
        }

        if !self.ctx.journal.capabilities().durable && !self.ctx.volatile_journal_ok {
            let err = OpsError::new(ErrorKind::InvalidInput, "core", "journal", step.name().to_owned())
                .with_detail(format!(
                    "the {} journal is not durable: give the context a durable journal (SQLite, PostgreSQL) or call allow_volatile_journal()",
                    self.ctx.journal.backend()
                ))
                .with_step(step.name());
            return Err(self.refuse(&step, started_at, err));
        }
        let approved_by = if let Some(undone) = &undo_of {
            format!("the approval of {undone}, which it undoes")
        } else {
            match self.approve(&step, started_at).await? {
                Ok(by) => by,
                Err(reason) => return Ok(Acted::Denied { reason }),
            }
        };

        let before = self
            .step_entry(&step, JournalEvent::StepStarted)
            .with_detail(format!(
                "{} (approved by {approved_by})",
                step.description()
            ));
        if let Err(e) = self.journal_append(&before, undo_of.is_none()).await {
            let kind = match e.kind() {
                ErrorKind::Timeout | ErrorKind::Cancelled => e.kind(),
                _ => ErrorKind::Unavailable,
            };
            let err = OpsError::new(kind, "core", "journal", step.name().to_owned())
                .with_detail("the step was not run because the journal could not record it")
                .with_source(e)
                .with_step(step.name());
            return Err(self.refuse(&step, started_at, err));
        }

        self.step_started(&step);
        let start = tokio::time::Instant::now();
        // Disruptive steps are never retried here: whether a half-done change may be
        // repeated is the runbook's call, made with fresh evidence.
        let (result, overran) = self.run_to_completion(&step, op(), undo_of.is_none()).await;
        let elapsed = start.elapsed();
        if let Some(why) = overran {
            self.finding(Finding::warning(format!(
                "step {} {why}; it was left to finish ({}ms in all) so nothing is half-done",
                step.name(),
                elapsed.as_millis()
            )));
        }
        match result {
            Ok(v) => {
                self.journal_best_effort(self.step_entry(&step, JournalEvent::StepSucceeded))
                    .await;
                self.push_action(
                    &step,
                    ActionStatus::Taken,
                    Some(format!("approved by {approved_by}")),
                );
                self.record(&step, started_at, elapsed, StepStatus::Succeeded, 1, None);
                Ok(Acted::Done(v))
            }
            Err(e) => {
                let e = e.with_step(step.name());
                tracing::error!(error = %e.chain(), "disruptive step failed");
                self.journal_best_effort(
                    self.step_entry(&step, end_event(&e)).with_detail(e.chain()),
                )
                .await;
                self.push_action(&step, ActionStatus::Failed, Some(e.chain()));
                self.record(
                    &step,
                    started_at,
                    elapsed,
                    status_of(&e),
                    1,
                    Some(e.chain()),
                );
                Err(e)
            }
        }
    }

    /// Record a disruptive step of a dry run as planned, with its changes.
    async fn plan(&self, step: &Step, started_at: jiff::Timestamp) {
        tracing::info!(changes = ?step.changes(), "dry run: planned");
        self.journal_best_effort(self.step_entry(step, JournalEvent::StepPlanned))
            .await;
        self.push_action(step, ActionStatus::Planned, None);
        self.record(
            step,
            started_at,
            Duration::ZERO,
            StepStatus::Planned,
            0,
            None,
        );
    }

    /// Record a disruptive step refused before it ran (failed, no attempt) and give back the
    /// error.
    fn refuse(&self, step: &Step, started_at: jiff::Timestamp, err: OpsError) -> OpsError {
        self.push_action(step, ActionStatus::Failed, Some(err.chain()));
        self.record(
            step,
            started_at,
            Duration::ZERO,
            StepStatus::Failed,
            0,
            Some(err.chain()),
        );
        err
    }

    /// Whether the disruptive step `name` ran in this run (taken, or failed after starting).
    fn ran(&self, name: &str) -> bool {
        self.with_report(|r| {
            r.timeline
                .iter()
                .any(|rec| rec.step == name && rec.kind == StepKind::Disruptive && rec.attempts > 0)
        })
    }

    /// Drive a disruptive operation to its end. Its step timeout and the run's cancellation
    /// do not drop it half-way: past either, it is given [`RunContext::finish_grace`] more to
    /// finish (its backend bounds every call with its own deadline, and compensates on
    /// failure). Only past the grace is it abandoned, with an error that says the change may
    /// be incomplete. Returns the result and, when it overran, why.
    async fn run_to_completion<T, Fut>(
        &self,
        step: &Step,
        fut: Fut,
        cancellable: bool,
    ) -> (Result<T, OpsError>, Option<String>)
    where
        Fut: Future<Output = Result<T, OpsError>>,
    {
        let timeout = step.timeout_override().unwrap_or(self.ctx.step_timeout);
        // Boxed: keeps every runbook future small (a disruptive step is rare, its allocation cheap).
        let mut fut = Box::pin(fut);
        let interrupted = tokio::select! {
            biased;
            r = &mut fut => return (r, None),
            () = self.ctx.cancel.cancelled(), if cancellable => "was running when the run was cancelled".to_owned(),
            () = tokio::time::sleep(timeout) => format!("overran its timeout of {}ms", timeout.as_millis()),
        };
        tracing::warn!(step = step.name(), why = %interrupted, "letting the change finish");
        let grace = self.ctx.finish_grace;
        if let Ok(r) = tokio::time::timeout(grace, fut).await {
            return (r, Some(interrupted));
        }
        let kind = if self.ctx.cancel.is_cancelled() {
            ErrorKind::Cancelled
        } else {
            ErrorKind::Timeout
        };
        let err = OpsError::new(kind, "core", "step", step.target_name()).with_detail(format!(
            "{interrupted} and did not finish within a further {}ms: abandoned, the change may be incomplete (see the journal)",
            grace.as_millis()
        ));
        (Err(err), Some(interrupted))
    }

    /// Ask the approver (bounded by the approval timeout). `Ok(Ok(by))` when approved,
    /// `Ok(Err(reason))` when denied (already recorded and journaled).
    async fn approve(
        &self,
        step: &Step,
        started_at: jiff::Timestamp,
    ) -> Result<Result<String, String>, OpsError> {
        let mut request = ApprovalRequest::new(self.runbook, step.name(), step.description());
        request.changes = step.changes().to_vec();
        request.target = step.target_name().to_owned();
        if !self.ctx.observers.is_empty() {
            self.emit(&RunEvent::ApprovalAsked {
                run_id: self.id(),
                request: request.clone(),
            });
        }
        let decision = tokio::select! {
            biased;
            () = self.ctx.cancel.cancelled() => return Err(OpsError::new(ErrorKind::Cancelled, "core", "approval", step.target_name()).with_step(step.name())),
            d = tokio::time::timeout(self.ctx.approval_timeout, self.ctx.approver.decide(&request)) => d.unwrap_or_else(|_| {
                Decision::deny("timeout", format!("no approval within {}s", self.ctx.approval_timeout.as_secs()))
            }),
        };
        if !self.ctx.observers.is_empty() {
            self.emit(&RunEvent::ApprovalAnswered {
                run_id: self.id(),
                step: step.name().to_owned(),
                decision: decision.clone(),
            });
        }
        match decision {
            Decision::Approve { by } => Ok(Ok(by)),
            Decision::Deny { by, reason } => {
                let note = format!("denied by {by}: {reason}");
                tracing::warn!(%note, "approval denied");
                self.journal_best_effort(
                    self.step_entry(step, JournalEvent::StepDenied)
                        .with_detail(note.clone()),
                )
                .await;
                self.push_action(step, ActionStatus::Denied, Some(note));
                self.record(
                    step,
                    started_at,
                    Duration::ZERO,
                    StepStatus::Denied,
                    0,
                    None,
                );
                Ok(Err(reason))
            }
        }
    }

    fn push_action(&self, step: &Step, status: ActionStatus, note: Option<String>) {
        self.with_report(|r| {
            r.actions.push(Action {
                step: step.name().to_owned(),
                description: step.description().to_owned(),
                changes: step.changes().to_vec(),
                status,
                note,
            });
        });
    }

    /// Send `notification` as it is ([`Run::notify`] shapes it): in execute mode asks the
    /// approver (step `notify`, target the notifier's name) and sends when approved (a failure
    /// is a warning finding, never fatal); records a planned action in dry run (nobody is
    /// paged by a dry run).
    async fn deliver(&self, notification: Notification) {
        let step = Step::disruptive(incident::NOTIFY)
            .describe(format!(
                "notify {} ({}, {}): {}",
                self.ctx.notifier.name(),
                notification.severity_label,
                notification.status,
                notification.title
            ))
            .target(self.ctx.notifier.name());
        if self.ctx.mode == Mode::DryRun {
            self.push_action(&step, ActionStatus::Planned, None);
            return;
        }
        let started_at = self.ctx.clock.now();
        // Paging people is an effect like any other: the approver decides (a denial is
        // recorded; a cancelled approval sends nothing).
        match self.approve(&step, started_at).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return,
        }
        self.step_started(&step);
        let start = tokio::time::Instant::now();
        let send = self.ctx.notifier.send(&notification);
        match self
            .attempt(&step, send.instrument(self.step_span(&step)))
            .await
        {
            Ok(()) => {
                self.push_action(&step, ActionStatus::Taken, None);
                self.record(
                    &step,
                    started_at,
                    start.elapsed(),
                    StepStatus::Succeeded,
                    1,
                    None,
                );
            }
            Err(e) => {
                self.finding(Finding::warning("notification failed").with_evidence(e.chain()));
                self.push_action(&step, ActionStatus::Failed, Some(e.chain()));
                self.record(
                    &step,
                    started_at,
                    start.elapsed(),
                    status_of(&e),
                    1,
                    Some(e.chain()),
                );
            }
        }
    }

    /// Finish the run: sets the outcome, journals `RunFinished`, returns the report.
    pub async fn finish(self, outcome: RunOutcome) -> Report {
        let ok = !matches!(outcome, RunOutcome::Failed | RunOutcome::Unresolved);
        self.close_incident(outcome).await;
        self.journal_best_effort(
            self.entry(JournalEvent::RunFinished { ok })
                .with_detail(outcome.label())
                .with_severity(self.severity()),
        )
        .await;
        let now = self.ctx.clock.now();
        let mut report = self
            .report
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        report.outcome = outcome;
        report.finished_at = Some(now);
        for observer in &self.ctx.observers {
            observer.observe(&RunEvent::Finished {
                run_id: report.run_id.clone(),
                outcome,
            });
        }
        report
    }

    /// Finish with the result of the runbook's body: `Ok(outcome)` gives the report; an error
    /// is journaled as a failed run and returned with the report of everything the run did
    /// up to then (outcome [`RunOutcome::Failed`], [`Report::error`] set).
    ///
    /// # Errors
    /// The body's error, inside a [`RunFailure`] that carries the report.
    pub async fn conclude(self, body: Result<RunOutcome, OpsError>) -> Result<Report, RunFailure> {
        match body {
            Ok(outcome) => Ok(self.finish(outcome).await),
            Err(e) => {
                self.close_incident(RunOutcome::Failed).await;
                self.journal_best_effort(
                    self.entry(JournalEvent::RunFinished { ok: false })
                        .with_detail(e.chain())
                        .with_severity(self.severity()),
                )
                .await;
                let now = self.ctx.clock.now();
                let mut report = self
                    .report
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner);
                report.outcome = RunOutcome::Failed;
                report.finished_at = Some(now);
                report.error = Some(e.chain());
                for observer in &self.ctx.observers {
                    observer.observe(&RunEvent::Finished {
                        run_id: report.run_id.clone(),
                        outcome: RunOutcome::Failed,
                    });
                }
                Err(RunFailure::new(report, e))
            }
        }
    }
}

fn status_of(e: &OpsError) -> StepStatus {
    match e.kind() {
        ErrorKind::Timeout => StepStatus::TimedOut,
        ErrorKind::Cancelled => StepStatus::Cancelled,
        _ => StepStatus::Failed,
    }
}

fn end_event(e: &OpsError) -> JournalEvent {
    match e.kind() {
        ErrorKind::Timeout => JournalEvent::StepTimedOut,
        ErrorKind::Cancelled => JournalEvent::StepCancelled,
        kind => JournalEvent::StepFailed { kind },
    }
}
