//! [`Step`]: one named, declared-safe-or-not unit of a runbook.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use super::RetryPolicy;
use crate::vocab::StepKind;

/// A step declaration: name, kind, what it does and changes, and its limits.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::run::{Step, StepKind};
/// let s = Step::disruptive("restart")
///     .describe("rolling restart of prod/deployment/api")
///     .change("restart pod api-7f9c-x2")
///     .timeout(Duration::from_secs(30));
/// assert_eq!(s.kind(), StepKind::Disruptive);
/// assert_eq!(s.changes(), ["restart pod api-7f9c-x2"]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    name: Cow<'static, str>,
    kind: StepKind,
    description: String,
    target: String,
    changes: Vec<String>,
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    undoes: Option<Cow<'static, str>>,
}

/// A read-only step: the only kind [`crate::run::Run::read`] accepts, while
/// [`crate::run::Run::act`] accepts only a disruptive [`Step`], so a change cannot be run as a
/// read in any build. Made by [`Step::read_only`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::run::{ReadStep, Step, StepKind};
/// let s: ReadStep = Step::read_only("workload_status").target("prod/deployment/api").timeout(Duration::from_secs(5));
/// assert_eq!(s.name(), "workload_status");
/// assert_eq!(s.as_step().kind(), StepKind::ReadOnly);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReadStep(Step);

impl ReadStep {
    /// Say what the step reads.
    #[must_use]
    pub fn describe(self, description: impl Into<String>) -> Self {
        Self(self.0.describe(description))
    }

    /// Say what it reads from.
    #[must_use]
    pub fn target(self, target: impl fmt::Display) -> Self {
        Self(self.0.target(target))
    }

    /// Bound each attempt by `timeout` (otherwise the context's default).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        Self(self.0.timeout(timeout))
    }

    /// Retry with `policy` instead of the context's.
    #[must_use]
    pub fn retry(self, policy: RetryPolicy) -> Self {
        Self(self.0.retry(policy))
    }

    /// The stable name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The step's declaration (its kind is always [`StepKind::ReadOnly`]).
    pub fn as_step(&self) -> &Step {
        &self.0
    }
}

impl Step {
    /// A read-only step named `name` (stable `snake_case`), for [`crate::run::Run::read`].
    pub fn read_only(name: impl Into<Cow<'static, str>>) -> ReadStep {
        ReadStep(Self::new(name.into(), StepKind::ReadOnly))
    }

    /// A disruptive step named `name` (stable `snake_case`).
    pub fn disruptive(name: impl Into<Cow<'static, str>>) -> Self {
        Self::new(name.into(), StepKind::Disruptive)
    }

    fn new(name: Cow<'static, str>, kind: StepKind) -> Self {
        Self {
            name,
            kind,
            description: String::new(),
            target: String::new(),
            changes: Vec::new(),
            timeout: None,
            retry: None,
            undoes: None,
        }
    }

    /// Say what the step does.
    #[must_use]
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Say what it acts on.
    #[must_use]
    pub fn target(mut self, target: impl fmt::Display) -> Self {
        self.target = target.to_string();
        self
    }

    /// Add one thing it will change (found by running its read half).
    #[must_use]
    pub fn change(mut self, change: impl Into<String>) -> Self {
        self.changes.push(change.into());
        self
    }

    /// Add the things it will change.
    #[must_use]
    pub fn changes_all<I, S>(mut self, changes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.changes.extend(changes.into_iter().map(Into::into));
        self
    }

    /// Bound each attempt by `timeout` (otherwise the context's default).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The retry policy of a read-only step ([`ReadStep::retry`]); disruptive steps are never
    /// retried (they may not be idempotent).
    #[must_use]
    fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Mark this disruptive step as the undo of `step` (e.g. `start_application` undoes
    /// `stop_application`). When `step` ran in the same run, this one is part of what was
    /// approved for it: it runs without asking again, and it runs even after the run was
    /// cancelled, so a cancelled or failed run never leaves the change half-done. When
    /// `step` did not run, this one is an ordinary disruptive step.
    ///
    /// # Examples
    /// ```
    /// use ops_core::run::Step;
    /// let start = Step::disruptive("start_application").undoing("stop_application");
    /// assert_eq!(start.undoes(), Some("stop_application"));
    /// ```
    #[must_use]
    pub fn undoing(mut self, step: impl Into<Cow<'static, str>>) -> Self {
        self.undoes = Some(step.into());
        self
    }

    /// The step this one undoes, when it is an undo ([`Step::undoing`]).
    pub fn undoes(&self) -> Option<&str> {
        self.undoes.as_deref()
    }

    /// The stable name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read-only or disruptive.
    pub fn kind(&self) -> StepKind {
        self.kind
    }

    /// What it does (the name when not described).
    pub fn description(&self) -> &str {
        if self.description.is_empty() {
            &self.name
        } else {
            &self.description
        }
    }

    /// What it acts on.
    pub fn target_name(&self) -> &str {
        &self.target
    }

    /// What it will change.
    pub fn changes(&self) -> &[String] {
        &self.changes
    }

    /// Its own timeout, when set.
    pub fn timeout_override(&self) -> Option<Duration> {
        self.timeout
    }

    /// Its own retry policy, when set.
    pub fn retry_override(&self) -> Option<RetryPolicy> {
        self.retry
    }
}
