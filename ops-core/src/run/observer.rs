//! [`RunObserver`]: a hook that sees a run as it happens (live views, progress bars, metrics,
//! audit sinks), without parsing logs.

use std::fmt;
use std::sync::Arc;

use super::{ApprovalRequest, Decision, Finding, Mode, RunId, RunOutcome, StepKind, StepRecord};

/// Something that happened in a run. Every event names its run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RunEvent {
    /// The run began.
    Started {
        /// The run.
        run_id: RunId,
        /// The runbook.
        runbook: &'static str,
        /// What the run is about.
        target: String,
        /// Dry run or execute.
        mode: Mode,
    },
    /// A step began (a read, or an approved change about to run).
    StepStarted {
        /// The run.
        run_id: RunId,
        /// The step's name.
        step: String,
        /// Read-only or disruptive.
        kind: StepKind,
    },
    /// A step ended: succeeded, failed, timed out, cancelled, planned, denied or skipped.
    StepFinished {
        /// The run.
        run_id: RunId,
        /// Its timeline record.
        record: StepRecord,
    },
    /// The diagnosis established something.
    Finding {
        /// The run.
        run_id: RunId,
        /// What.
        finding: Finding,
    },
    /// A change waits for the approver.
    ApprovalAsked {
        /// The run.
        run_id: RunId,
        /// What is asked.
        request: ApprovalRequest,
    },
    /// The approver answered (a timeout is a denial).
    ApprovalAnswered {
        /// The run.
        run_id: RunId,
        /// The step it was about.
        step: String,
        /// The answer.
        decision: Decision,
    },
    /// The run ended.
    Finished {
        /// The run.
        run_id: RunId,
        /// How.
        outcome: RunOutcome,
    },
}

impl RunEvent {
    /// The run the event belongs to.
    pub fn run_id(&self) -> &RunId {
        match self {
            Self::Started { run_id, .. }
            | Self::StepStarted { run_id, .. }
            | Self::StepFinished { run_id, .. }
            | Self::Finding { run_id, .. }
            | Self::ApprovalAsked { run_id, .. }
            | Self::ApprovalAnswered { run_id, .. }
            | Self::Finished { run_id, .. } => run_id,
        }
    }
}

/// Sees every [`RunEvent`] of the runs of a context, in order, as they happen. Called on the
/// run's task: keep it quick (print, count, send on a channel), never block.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::{Arc, Mutex};
/// use ops_core::run::{RunContext, RunEvent, RunObserver, Step};
/// #[derive(Debug, Default)]
/// struct Steps(Mutex<Vec<String>>);
/// impl RunObserver for Steps {
///     fn observe(&self, event: &RunEvent) {
///         if let RunEvent::StepStarted { step, .. } = event {
///             self.0.lock().unwrap().push(step.clone());
///         }
///     }
/// }
/// let steps = Arc::new(Steps::default());
/// let ctx = RunContext::builder().observer(steps.clone()).build();
/// let run = ctx.begin("example", "demo").await;
/// run.read(Step::read_only("status"), || async { Ok::<_, ops_core::OpsError>(()) }).await?;
/// assert_eq!(*steps.0.lock().unwrap(), ["status"]);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
pub trait RunObserver: fmt::Debug + Send + Sync + 'static {
    /// One event.
    fn observe(&self, event: &RunEvent);
}

impl<T: RunObserver + ?Sized> RunObserver for Arc<T> {
    fn observe(&self, event: &RunEvent) {
        (**self).observe(event);
    }
}
