//! [`Approver`]: who says yes to a disruptive step.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// What a disruptive step asks permission for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApprovalRequest {
    /// The runbook asking.
    pub runbook: String,
    /// The step's stable name, e.g. `restart`.
    pub step: String,
    /// What the step does, in one sentence.
    pub description: String,
    /// What it will change, one line per change.
    pub changes: Vec<String>,
    /// What it acts on.
    pub target: String,
}

impl ApprovalRequest {
    /// A request.
    pub fn new(
        runbook: impl Into<String>,
        step: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            runbook: runbook.into(),
            step: step.into(),
            description: description.into(),
            changes: Vec::new(),
            target: String::new(),
        }
    }
}

/// An approver's answer.
///
/// # Examples
/// ```
/// use ops_core::run::Decision;
/// assert!(Decision::approve("oncall").is_approved());
/// assert!(!Decision::deny("oncall", "not during peak").is_approved());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Go ahead.
    Approve {
        /// Who approved.
        by: String,
    },
    /// Do not.
    Deny {
        /// Who denied.
        by: String,
        /// Why.
        reason: String,
    },
}

impl Decision {
    /// An approval by `by`.
    pub fn approve(by: impl Into<String>) -> Self {
        Self::Approve { by: by.into() }
    }

    /// A denial by `by` for `reason`.
    pub fn deny(by: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Deny {
            by: by.into(),
            reason: reason.into(),
        }
    }

    /// Whether it is an approval.
    pub fn is_approved(&self) -> bool {
        matches!(self, Self::Approve { .. })
    }
}

/// Decides whether a disruptive step may run. Only asked in [`crate::run::Mode::Execute`].
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Approver: fmt::Debug + Send + Sync + 'static {
    /// Decide on `request`. The context bounds this by its approval timeout (no answer = deny).
    async fn decide(&self, request: &ApprovalRequest) -> Decision;
}

/// A fixed policy.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::run::{ApprovalPolicy, ApprovalRequest, Approver};
/// let only_restarts = ApprovalPolicy::allow_steps(["restart"]);
/// assert!(only_restarts.decide(&ApprovalRequest::new("api_down", "restart", "")).await.is_approved());
/// assert!(!only_restarts.decide(&ApprovalRequest::new("api_down", "rollback", "")).await.is_approved());
/// assert!(!ApprovalPolicy::DenyAll.decide(&ApprovalRequest::new("x", "y", "")).await.is_approved());
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApprovalPolicy {
    /// Approve everything, in the name of `by` (drills, tests, fully automated remediation).
    ApproveAll {
        /// Recorded as the approver.
        by: String,
    },
    /// Deny everything (the default: a context must be given an approver to act).
    DenyAll,
    /// Approve only steps with these names.
    AllowSteps(BTreeSet<String>),
}

impl ApprovalPolicy {
    /// Approve everything as `by`.
    pub fn approve_all(by: impl Into<String>) -> Self {
        Self::ApproveAll { by: by.into() }
    }

    /// Approve only the named steps.
    pub fn allow_steps<I, S>(steps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::AllowSteps(steps.into_iter().map(Into::into).collect())
    }
}

#[async_trait]
impl Approver for ApprovalPolicy {
    async fn decide(&self, request: &ApprovalRequest) -> Decision {
        match self {
            Self::ApproveAll { by } => Decision::approve(by.clone()),
            Self::DenyAll => Decision::deny("policy", "the policy denies every disruptive step"),
            Self::AllowSteps(steps) if steps.contains(&request.step) => Decision::approve("policy"),
            Self::AllowSteps(_) => Decision::deny(
                "policy",
                format!("step {} is not in the allowed list", request.step),
            ),
        }
    }
}

type DecideFn = dyn Fn(ApprovalRequest) -> BoxFuture<'static, Decision> + Send + Sync;

/// An approver backed by an async callback: a terminal prompt, a chat button, a ticket check.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::run::{ApprovalRequest, Approver, CallbackApprover, Decision};
/// let approver = CallbackApprover::new(|req: ApprovalRequest| async move {
///     if req.changes.len() <= 3 { Decision::approve("bot") } else { Decision::deny("bot", "too many changes") }
/// });
/// assert!(approver.decide(&ApprovalRequest::new("r", "s", "")).await.is_approved());
/// # });
/// ```
#[derive(Clone)]
pub struct CallbackApprover(Arc<DecideFn>);

impl CallbackApprover {
    /// Wrap an async callback.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(ApprovalRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Decision> + Send + 'static,
    {
        Self(Arc::new(move |req| Box::pin(f(req))))
    }
}

impl fmt::Debug for CallbackApprover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackApprover").finish_non_exhaustive()
    }
}

#[async_trait]
impl Approver for CallbackApprover {
    async fn decide(&self, request: &ApprovalRequest) -> Decision {
        (self.0)(request.clone()).await
    }
}
