//! [`TerminalApprover`]: the on-call engineer approves each change at a `y/N` prompt.

use std::fmt::{self, Write as _};
use std::io::{BufRead, Write};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{ApprovalRequest, Approver, Decision};

/// Asks a person at a terminal: prints the plan (runbook, step, target, every change), asks
/// `approve? [y/N]`, and takes `y` or `yes` as approval. Anything else, no answer within the
/// timeout, or a closed input is a denial.
///
/// Lines are read on a thread of their own, and lines typed before a question are dropped,
/// so an answer is never carried over to the next question. Control characters in the plan
/// are escaped before they reach the terminal.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::io::Write as _;
/// use ops_core::run::{ApprovalRequest, Approver, TerminalApprover};
/// let (keyboard, mut typing) = std::io::pipe()?;
/// let approver = TerminalApprover::new(std::io::BufReader::new(keyboard), std::io::sink(), "alice");
/// let req = ApprovalRequest::new("api_down", "restart", "rolling restart of shop/service/api");
/// let answer = tokio::spawn(async move {
///     tokio::time::sleep(std::time::Duration::from_millis(20)).await;
///     typing.write_all(b"y\n")
/// });
/// assert!(approver.decide(&req).await.is_approved());
/// answer.await.unwrap()?;
/// # Ok::<(), std::io::Error>(()) }).unwrap();
/// ```
pub struct TerminalApprover {
    lines: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    out: Mutex<Box<dyn Write + Send>>,
    who: String,
    timeout: Duration,
}

impl fmt::Debug for TerminalApprover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalApprover")
            .field("who", &self.who)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TerminalApprover {
    /// Read answers from `input`, write questions to `output`; approvals are recorded as
    /// given by `who`. The default timeout is 2 minutes.
    pub fn new(
        input: impl BufRead + Send + 'static,
        output: impl Write + Send + 'static,
        who: impl Into<String>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in input.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            lines: tokio::sync::Mutex::new(rx),
            out: Mutex::new(Box::new(output)),
            who: who.into(),
            timeout: Duration::from_secs(120),
        }
    }

    /// Standard input and standard error, as `who` (e.g. the `USER`).
    pub fn stdio(who: impl Into<String>) -> Self {
        Self::new(
            std::io::BufReader::new(std::io::stdin()),
            std::io::stderr(),
            who,
        )
    }

    /// How long to wait for an answer before denying.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn say(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // A terminal that cannot be written is not an approval: the answer decides.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

#[async_trait]
impl Approver for TerminalApprover {
    async fn decide(&self, request: &ApprovalRequest) -> Decision {
        let mut lines = self.lines.lock().await;
        while lines.try_recv().is_ok() {} // typed before the question: not an answer
        let mut plan = format!(
            "\n{} wants to run {} on {}:\n  {}\n",
            crate::text::escape(&request.runbook),
            crate::text::escape(&request.step),
            crate::text::escape(&request.target),
            crate::text::escape(&request.description)
        );
        for change in &request.changes {
            let _ = writeln!(plan, "  - {}", crate::text::escape(change));
        }
        let _ = write!(
            plan,
            "approve? [y/N] (no answer in {}s is no): ",
            self.timeout.as_secs()
        );
        self.say(&plan);
        match tokio::time::timeout(self.timeout, lines.recv()).await {
            Ok(Some(answer))
                if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") =>
            {
                Decision::approve(self.who.clone())
            }
            Ok(Some(_)) => Decision::deny(self.who.clone(), "answered no"),
            Ok(None) => {
                self.say("\n");
                Decision::deny(self.who.clone(), "no terminal input (closed)")
            }
            Err(_) => {
                self.say("\n");
                Decision::deny(
                    self.who.clone(),
                    format!("no answer within {}s", self.timeout.as_secs()),
                )
            }
        }
    }
}
