//! [`CliApprover`]: rules first (the system file's `[approval] allow`, `--yes-to`), then the
//! person at the terminal.

use std::sync::Arc;

use async_trait::async_trait;
use ops_core::run::{ApprovalPolicy, ApprovalRequest, ApprovalRule, Approver, Decision};

/// Approves what a rule allows without asking; asks `ask` (a [`TerminalApprover`]) about the
/// rest. Both are the run engine's own approvers: this only chains them.
///
/// [`TerminalApprover`]: ops_core::run::TerminalApprover
#[derive(Debug)]
pub struct CliApprover {
    rules: ApprovalPolicy,
    ask: Arc<dyn Approver>,
}

impl CliApprover {
    /// Approve what `rules` allow; ask `ask` about everything else.
    pub fn new(rules: Vec<ApprovalRule>, ask: Arc<dyn Approver>) -> Self {
        Self {
            rules: ApprovalPolicy::allow(rules),
            ask,
        }
    }
}

#[async_trait]
impl Approver for CliApprover {
    async fn decide(&self, request: &ApprovalRequest) -> Decision {
        let by_rule = self.rules.decide(request).await;
        if by_rule.is_approved() {
            return by_rule;
        }
        self.ask.decide(request).await
    }
}

/// The rule `--yes-to TEXT` stands for in a run of `runbook`: a bare step name approves that
/// step of this runbook on any target; a full rule (`runbook:step@target`) is taken as written.
///
/// # Errors
/// A sentence saying how to write it.
///
/// # Examples
/// ```
/// use ops_examples::cli::yes_to_rule;
/// let rule = yes_to_rule("api_down", "restart")?;
/// assert!(rule.allows("api_down", "restart", "shop/service/api"));
/// assert!(!rule.allows("oom", "restart", "shop/service/api"));
/// assert!(yes_to_rule("api_down", "restart; rm").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn yes_to_rule(runbook: &str, text: &str) -> Result<ApprovalRule, String> {
    let rule = if text.contains(':') || text.contains('@') {
        text.to_owned()
    } else {
        format!("{runbook}:{text}@*")
    };
    rule.parse()
        .map_err(|e: ops_core::OpsError| format!("--yes-to {text:?}: {}", e.chain()))
}

#[cfg(test)]
mod tests {
    use ops_core::run::CallbackApprover;

    use super::*;

    #[tokio::test]
    async fn rules_approve_without_asking_and_the_rest_is_asked() {
        let ask = Arc::new(CallbackApprover::new(|req: ApprovalRequest| async move {
            Decision::deny("alice", format!("asked about {}", req.step))
        }));
        let approver = CliApprover::new(vec![yes_to_rule("api_down", "restart").unwrap()], ask);
        let mut req = ApprovalRequest::new("api_down", "restart", "rolling restart");
        req.target = "shop/service/api".into();
        assert!(approver.decide(&req).await.is_approved());
        req.step = "rollback".into();
        assert_eq!(
            approver.decide(&req).await,
            Decision::deny("alice", "asked about rollback")
        );
    }
}
