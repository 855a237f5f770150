//! The run context: how a runbook runs safely against production.
//!
//! [`RunContext`] holds the rules (mode, approver, journal, notifier, clock, timeouts, retries,
//! cancellation); [`RunContext::begin`] starts a [`Run`], whose [`Run::read`] and [`Run::act`]
//! apply them to each [`Step`]; [`Run::finish`] returns the [`Report`], and [`Run::conclude`]
//! returns it inside a [`RunFailure`] when the runbook's body failed.

mod approval;
mod clock;
mod context;
mod failure;
mod observer;
mod report;
mod retry;
mod step;
mod terminal;

#[cfg(feature = "mock")]
pub use approval::MockApprover;
pub use approval::{
    ApprovalPolicy, ApprovalRequest, ApprovalRule, Approver, CallbackApprover, Decision, Matches,
};
pub use clock::{Clock, SystemClock, TokioClock};
pub use context::{Acted, IncidentPolicy, Run, RunContext, RunContextBuilder};
pub use failure::RunFailure;
pub use observer::{RunEvent, RunObserver};
pub use report::{Action, Finding, Report, StepRecord};
pub use retry::{RetryPolicy, retry_after};
pub use step::{ReadStep, Step};
pub use terminal::TerminalApprover;

/// The vocabulary of runs, defined in [`crate::vocab`] and re-exported here.
pub use crate::vocab::{ActionStatus, FindingLevel, Mode, RunId, RunOutcome, StepKind, StepStatus};
