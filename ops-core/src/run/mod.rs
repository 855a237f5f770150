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
mod ids;
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
pub use context::{Acted, Run, RunContext, RunContextBuilder};
pub use failure::RunFailure;
pub use ids::{Mode, RunId};
pub use observer::{RunEvent, RunObserver};
pub use report::{
    Action, ActionStatus, Finding, FindingLevel, Report, RunOutcome, StepRecord, StepStatus,
};
pub use retry::RetryPolicy;
pub use step::{ReadStep, Step, StepKind};
pub use terminal::TerminalApprover;
