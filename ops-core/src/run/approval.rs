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

/// One part of an [`ApprovalRule`]: a name, or any name said explicitly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Matches {
    /// Any value (written `*`).
    Any,
    /// Exactly this value.
    Exactly(String),
}

impl Matches {
    fn accepts(&self, value: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exactly(v) => v == value,
        }
    }

    fn parse(part: &str) -> Self {
        if part == "*" {
            Self::Any
        } else {
            Self::Exactly(part.to_owned())
        }
    }
}

impl fmt::Display for Matches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Exactly(v) => f.write_str(v),
        }
    }
}

/// What an [`ApprovalPolicy::Allow`] approves: a step of a runbook on a target, each either
/// named or explicitly any (`*`). Written `runbook:step@target`, e.g.
/// `api_down:restart@prod/deployment/api` or `*:notify@*`.
///
/// # Examples
/// ```
/// use ops_core::run::ApprovalRule;
/// let rule: ApprovalRule = "api_down:restart@prod/deployment/api".parse()?;
/// assert!(rule.allows("api_down", "restart", "prod/deployment/api"));
/// assert!(!rule.allows("api_down", "restart", "prod/deployment/billing"));
/// assert!(!rule.allows("high_latency", "restart", "prod/deployment/api"));
/// let anywhere: ApprovalRule = "*:notify@*".parse()?;
/// assert!(anywhere.allows("oom", "notify", "slack"));
/// assert!("restart".parse::<ApprovalRule>().is_err(), "runbook and target must be said");
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApprovalRule {
    /// The runbook.
    pub runbook: Matches,
    /// The step's name.
    pub step: Matches,
    /// The step's target.
    pub target: Matches,
}

impl ApprovalRule {
    /// `step` of `runbook` on `target`.
    pub fn new(runbook: Matches, step: Matches, target: Matches) -> Self {
        Self {
            runbook,
            step,
            target,
        }
    }

    /// The step named `step` in any runbook, on any target: the broadest rule, said so.
    pub fn step_anywhere(step: impl Into<String>) -> Self {
        Self::new(Matches::Any, Matches::Exactly(step.into()), Matches::Any)
    }

    /// Whether this rule approves `step` of `runbook` on `target`.
    pub fn allows(&self, runbook: &str, step: &str, target: &str) -> bool {
        self.runbook.accepts(runbook) && self.step.accepts(step) && self.target.accepts(target)
    }
}

impl fmt::Display for ApprovalRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}@{}", self.runbook, self.step, self.target)
    }
}

impl std::str::FromStr for ApprovalRule {
    type Err = crate::error::OpsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &str| {
            crate::error::OpsError::invalid(
                "approval rule",
                text,
                format!(
                    "{why}: write runbook:step@target, with * for any (e.g. api_down:restart@prod/deployment/api)"
                ),
            )
        };
        let (runbook, rest) = text.split_once(':').ok_or_else(|| invalid("no runbook"))?;
        let (step, target) = rest.split_once('@').ok_or_else(|| invalid("no target"))?;
        let name_ok = |s: &str| {
            s == "*"
                || (!s.is_empty()
                    && s.len() <= 64
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        };
        if !name_ok(runbook) || !name_ok(step) {
            return Err(invalid("runbook and step are snake_case names or *"));
        }
        if target.is_empty() || target.len() > 512 || target.chars().any(char::is_control) {
            return Err(invalid(
                "the target is empty, too long or has control characters",
            ));
        }
        Ok(Self::new(
            Matches::parse(runbook),
            Matches::parse(step),
            Matches::parse(target),
        ))
    }
}

/// A fixed policy.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::run::{ApprovalPolicy, ApprovalRequest, Approver};
/// let policy = ApprovalPolicy::allow(["api_down:restart@prod/deployment/api".parse()?]);
/// let mut req = ApprovalRequest::new("api_down", "restart", "");
/// req.target = "prod/deployment/api".into();
/// assert!(policy.decide(&req).await.is_approved());
/// req.target = "prod/deployment/billing".into();
/// assert!(!policy.decide(&req).await.is_approved());
/// assert!(!ApprovalPolicy::DenyAll.decide(&req).await.is_approved());
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
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
    /// Approve what one of these rules allows; deny the rest.
    Allow(BTreeSet<ApprovalRule>),
}

impl ApprovalPolicy {
    /// Approve everything as `by`.
    pub fn approve_all(by: impl Into<String>) -> Self {
        Self::ApproveAll { by: by.into() }
    }

    /// Approve what one of `rules` allows.
    pub fn allow(rules: impl IntoIterator<Item = ApprovalRule>) -> Self {
        Self::Allow(rules.into_iter().collect())
    }

    /// Approve the named steps in any runbook, on any target ([`ApprovalRule::step_anywhere`]):
    /// the broadest grant, named so at the call site. Prefer [`ApprovalPolicy::allow`].
    pub fn allow_steps_anywhere<I, S>(steps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::allow(steps.into_iter().map(ApprovalRule::step_anywhere))
    }
}

#[async_trait]
impl Approver for ApprovalPolicy {
    async fn decide(&self, request: &ApprovalRequest) -> Decision {
        match self {
            Self::ApproveAll { by } => Decision::approve(by.clone()),
            Self::DenyAll => Decision::deny("policy", "the policy denies every disruptive step"),
            Self::Allow(rules) => match rules
                .iter()
                .find(|r| r.allows(&request.runbook, &request.step, &request.target))
            {
                Some(rule) => Decision::approve(format!("policy ({rule})")),
                None => Decision::deny(
                    "policy",
                    format!(
                        "no rule allows {}:{}@{}",
                        request.runbook, request.step, request.target
                    ),
                ),
            },
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
