//! Emergency lockdown and its undo (issue 14 §lockdown, seeds 002 and 004): isolate, capture
//! evidence, page the P0 security route, report the undo; lift after verification.
//!
//! Order and failure rules (decided here, tested in `ops-core/tests/lockdown.rs`):
//! - Isolation comes first: it stops the damage, and it destroys no evidence (logs, objects
//!   and events stay readable; Compose exec and logs need no network).
//! - A failed evidence capture never undoes the isolation: the lockdown stays, the run pages
//!   anyway and ends [`RunOutcome::Unresolved`] with the capture's error as a finding, so a
//!   person captures by hand.
//! - A denied or failed isolation captures nothing and pages nothing as isolated: denied is
//!   `Unresolved` (the report says nothing was changed), failed is a [`RunFailure`] whose
//!   report says what the platform left (the backends undo a part-way isolation).
//! - Evidence is written to the local disk, so it is a step of its own that a dry run only
//!   plans (like every write) — a dry run changes nothing anywhere.

use std::path::PathBuf;

use super::Targets;
use super::verify::verify_healthy;
use crate::error::{ErrorKind, OpsError};
use crate::evidence::{EvidenceBundle, EvidenceOptions, capture};
use crate::incident::{IncidentStatus, Severity, Signals};
use crate::notify::Notification;
use crate::platform::{Lockdown, LockdownId, LockdownOptions, LockdownScope, lift_command};
use crate::refs::{Namespace, WorkloadRef};
use crate::run::{Acted, Finding, Report, Run, RunContext, RunFailure, RunOutcome, Step};

/// What [`emergency_lockdown`] isolates and where it writes the evidence.
///
/// # Examples
/// ```
/// use ops_core::platform::LockdownScope;
/// use ops_core::runbooks::LockdownPlan;
/// let plan = LockdownPlan::new(LockdownScope::namespace_wide("prod".parse()?), "/var/evidence")
///     .with_reason("leaked API key");
/// assert_eq!(plan.reason.as_deref(), Some("leaked API key"));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LockdownPlan {
    /// What to isolate.
    pub scope: LockdownScope,
    /// The directory the evidence bundle is written into (as `<dir>/<lockdown id>/`).
    pub evidence_dir: PathBuf,
    /// Why (recorded with the lockdown and in the page; never put a secret here).
    pub reason: Option<String>,
    /// What the evidence holds.
    pub evidence: EvidenceOptions,
}

impl LockdownPlan {
    /// Isolate `scope`, evidence into `evidence_dir`.
    pub fn new(scope: LockdownScope, evidence_dir: impl Into<PathBuf>) -> Self {
        Self {
            scope,
            evidence_dir: evidence_dir.into(),
            reason: None,
            evidence: EvidenceOptions::default(),
        }
    }

    /// Record why.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Set what the evidence holds.
    #[must_use]
    pub fn with_evidence(mut self, evidence: EvidenceOptions) -> Self {
        self.evidence = evidence;
        self
    }
}

fn page(
    scope: &LockdownScope,
    id: &LockdownId,
    title: String,
    body: String,
    status: IncidentStatus,
) -> Notification {
    Notification::new(Severity::Critical, title, body)
        .with_dedup_key(format!("lockdown:{}:{id}", scope.namespace()))
        .with_status(status)
        .with_field("route", "security")
        .with_field("lockdown", id.to_string())
}

/// Isolate `plan.scope` from the network, capture evidence, page the P0 security route and
/// report the undo command.
///
/// Steps: `lockdowns` (read: what is already active), `isolate` (disruptive: names the
/// lockdown id, each workload or the namespace, and the undo), `capture_evidence` (writes
/// `<evidence_dir>/<id>/`: logs of every container including previous ones, events, the
/// namespace export with secrets as key names, `SHA256SUMS`), `notify` (severity Critical,
/// field `route: security`). See the module docs for what happens when a step fails.
///
/// Outcome: [`RunOutcome::Recovered`] when isolated and the evidence is written,
/// [`RunOutcome::Unresolved`] when denied or when the evidence failed (the lockdown stays),
/// [`RunOutcome::Planned`] in a dry run.
///
/// # Errors
/// [`ErrorKind::Unsupported`] when the platform cannot lock down; the isolation's errors.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::{LockdownScope, WorkloadStatus};
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{emergency_lockdown, LockdownPlan, Targets};
/// use ops_core::testing::FakePlatform;
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let p = Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1)));
/// let t = Targets::new(p.clone(), api.clone());
/// let plan = LockdownPlan::new(LockdownScope::workloads(vec![api])?, "/var/evidence");
/// let report = emergency_lockdown(&RunContext::builder().build(), &t, &plan).await?;
/// assert_eq!(report.outcome, RunOutcome::Planned);
/// assert!(p.mutations().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "emergency_lockdown", target = %plan.scope, mode = %ctx.mode()))]
pub async fn emergency_lockdown(
    ctx: &RunContext,
    t: &Targets,
    plan: &LockdownPlan,
) -> Result<Report, RunFailure> {
    let run = ctx.begin("emergency_lockdown", &plan.scope).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    let body = Box::pin(lockdown_body(&run, t, plan)).await;
    run.conclude(body).await
}

async fn lockdown_body(
    run: &Run<'_>,
    t: &Targets,
    plan: &LockdownPlan,
) -> Result<RunOutcome, OpsError> {
    let scope = &plan.scope;
    let ns = scope.namespace();
    if !t.platform.capabilities().lockdown {
        return Err(OpsError::new(
            ErrorKind::Unsupported,
            t.platform.backend(),
            "lockdown",
            scope.to_string(),
        )
        .with_detail("this platform cannot isolate workloads"));
    }
    // A security incident: P0 on every seed (the classifier's rule, not a runbook choice).
    run.observe(Signals::default().with_security_incident(true));
    let active = run
        .read(
            Step::read_only("lockdowns")
                .describe(format!("list the active lockdowns of {ns}"))
                .target(ns),
            || t.platform.lockdowns(ns),
        )
        .await?;
    for l in &active {
        run.finding(Finding::warning(format!(
            "lockdown {} of {} is already active",
            l.id, l.scope
        )));
    }
    let id = LockdownId::generate(run.ctx().clock().now());
    let undo = lift_command(ns, &id);
    let isolate = Step::disruptive("isolate")
        .describe(format!(
            "isolate {scope} from the network (no traffic in or out; nothing deleted) as lockdown {id}"
        ))
        .target(scope)
        .changes_all(match scope.chosen() {
            Some(workloads) => workloads
                .iter()
                .map(|w| format!("isolate {w}"))
                .collect::<Vec<_>>(),
            None => vec![format!("isolate every workload of {ns}")],
        })
        .change(format!("undo: {undo}"));
    let mut opts = LockdownOptions::default().with_id(id.clone());
    opts.reason.clone_from(&plan.reason);
    let lockdown = match run
        .act(isolate, || t.platform.lockdown(scope, opts.clone()))
        .await?
    {
        Acted::Done(l) => l,
        Acted::Planned => {
            run.act(evidence_step(plan, &id), || async { Ok::<_, OpsError>(()) })
                .await?;
            run.notify(page(
                scope,
                &id,
                format!("security lockdown of {scope}"),
                format!("Planned lockdown {id}. Undo: `{undo}`"),
                IncidentStatus::Identified,
            ))
            .await;
            return Ok(RunOutcome::Planned);
        }
        Acted::Denied { reason } => {
            run.summary(format!("Nothing was isolated: {reason}."));
            return Ok(RunOutcome::Unresolved);
        }
    };
    for line in &lockdown.isolated {
        let finding = if line.starts_with("warning:") {
            Finding::warning(line.clone())
        } else {
            Finding::info(line.clone())
        };
        run.finding(finding);
    }
    let evidence = capture_evidence(run, t, plan, &lockdown).await;
    let body = page_body(plan, &lockdown, evidence.as_ref(), &undo);
    run.notify(page(
        scope,
        &id,
        format!("security lockdown of {scope}"),
        body,
        IncidentStatus::Identified,
    ))
    .await;
    let captured = evidence.is_some();
    run.summary(format!(
        "{scope} is isolated as lockdown {id}{}. Undo after verification: {undo}",
        if captured {
            "; evidence captured"
        } else {
            "; the evidence capture FAILED"
        }
    ));
    Ok(if captured {
        RunOutcome::Recovered
    } else {
        RunOutcome::Unresolved
    })
}

/// The page's Markdown: what is isolated, where the evidence is, the undo.
fn page_body(
    plan: &LockdownPlan,
    lockdown: &Lockdown,
    evidence: Option<&EvidenceBundle>,
    undo: &str,
) -> String {
    use std::fmt::Write as _;
    let mut body = format!(
        "Lockdown {} isolates {}{}.\n\n",
        lockdown.id,
        plan.scope,
        plan.reason
            .as_deref()
            .map(|r| format!(" ({})", crate::text::bounded(r, 200)))
            .unwrap_or_default()
    );
    for line in &lockdown.isolated {
        let _ = writeln!(body, "- {line}");
    }
    match evidence {
        Some(b) => {
            let _ = writeln!(
                body,
                "\nEvidence: `{}` ({} files, SHA256SUMS sha256 {}).",
                b.dir.display(),
                b.files.len(),
                b.manifest_sha256().unwrap_or("?")
            );
        }
        None => {
            body.push_str("\nEvidence capture FAILED: capture by hand before anything restarts.\n");
        }
    }
    let _ = writeln!(body, "\nUndo after verification: `{undo}`");
    body
}

fn evidence_step(plan: &LockdownPlan, id: &LockdownId) -> Step {
    let dir = plan.evidence_dir.join(id.as_str());
    Step::disruptive("capture_evidence")
        .describe(format!(
            "write logs (previous containers too), events and the export of {} to {} with a SHA256SUMS manifest (read-only on the platform)",
            plan.scope.namespace(),
            dir.display()
        ))
        .target(dir.display())
        .change(format!("new directory {} and its SHA256SUMS", dir.display()))
        .timeout(std::time::Duration::from_secs(600))
}

/// The capture step; a failure is a critical finding, never an error of the run.
async fn capture_evidence(
    run: &Run<'_>,
    t: &Targets,
    plan: &LockdownPlan,
    lockdown: &Lockdown,
) -> Option<EvidenceBundle> {
    let dir = plan.evidence_dir.join(lockdown.id.as_str());
    let workloads: Vec<WorkloadRef> = plan.scope.chosen().map(<[_]>::to_vec).unwrap_or_default();
    let step = evidence_step(plan, &lockdown.id);
    let platform = &*t.platform;
    let ns = plan.scope.namespace();
    match run
        .act(step, || {
            capture(platform, ns, &workloads, &dir, &plan.evidence)
        })
        .await
    {
        Ok(Acted::Done(bundle)) => {
            run.finding(Finding::info(format!(
                "evidence written to {} ({} files, SHA256SUMS sha256 {})",
                bundle.dir.display(),
                bundle.files.len(),
                bundle.manifest_sha256().unwrap_or("?")
            )));
            for w in &bundle.warnings {
                run.finding(Finding::warning(format!("evidence: {w}")));
            }
            Some(bundle)
        }
        Ok(Acted::Planned) => None,
        Ok(Acted::Denied { reason }) => {
            run.finding(Finding::critical(format!(
                "no evidence was captured: {reason}; the lockdown stays"
            )));
            None
        }
        Err(e) => {
            run.finding(
                Finding::critical("the evidence capture failed; the lockdown stays")
                    .with_evidence(e.chain()),
            );
            None
        }
    }
}

/// Lift lockdown `id` of `namespace` after verification: read it back, lift it (only what the
/// lockdown added goes), verify the isolated workloads are healthy (and the probe passes,
/// when the targets have one), report.
///
/// Outcome: [`RunOutcome::Recovered`] when lifted and healthy, [`RunOutcome::Unresolved`]
/// when denied or unhealthy after the lift, [`RunOutcome::Planned`] in a dry run.
///
/// # Errors
/// [`ErrorKind::NotFound`] when no such lockdown is active; the lift's errors.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::{LockdownOptions, LockdownScope, Platform, WorkloadStatus};
/// use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
/// use ops_core::runbooks::{lift_lockdown, Targets};
/// use ops_core::testing::FakePlatform;
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let p = Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1)));
/// let l = p.lockdown(&LockdownScope::workloads(vec![api.clone()])?, LockdownOptions::default()).await?;
/// let ctx = RunContext::builder().mode(Mode::Execute).allow_volatile_journal()
///     .approver(ApprovalPolicy::approve_all("oncall")).build();
/// let report = lift_lockdown(&ctx, &Targets::new(p.clone(), api.clone()), api.namespace(), &l.id).await?;
/// assert_eq!(report.outcome, RunOutcome::Recovered);
/// assert!(!p.is_isolated(&api));
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "lift_lockdown", target = %id, mode = %ctx.mode()))]
pub async fn lift_lockdown(
    ctx: &RunContext,
    t: &Targets,
    namespace: &Namespace,
    id: &LockdownId,
) -> Result<Report, RunFailure> {
    let run = ctx
        .begin("lift_lockdown", format!("{namespace}/{id}"))
        .await;
    let t = &t.for_mode(ctx.mode());
    let body = Box::pin(lift_body(&run, t, namespace, id)).await;
    run.conclude(body).await
}

async fn lift_body(
    run: &Run<'_>,
    t: &Targets,
    namespace: &Namespace,
    id: &LockdownId,
) -> Result<RunOutcome, OpsError> {
    let active = run
        .read(
            Step::read_only("lockdowns")
                .describe(format!("read lockdown {id} of {namespace}"))
                .target(namespace),
            || t.platform.lockdowns(namespace),
        )
        .await?;
    let Some(lockdown) = active.into_iter().find(|l| &l.id == id) else {
        return Err(OpsError::new(
            ErrorKind::NotFound,
            t.platform.backend(),
            "lift_lockdown",
            format!("{namespace}/{id}"),
        )
        .with_detail("no active lockdown with this id"));
    };
    let step = Step::disruptive("lift")
        .describe(format!(
            "lift lockdown {id} of {}: remove only what it added, put back what it changed",
            lockdown.scope
        ))
        .target(format!("{namespace}/{id}"))
        .changes_all(lockdown.isolated.iter().map(|l| format!("undo: {l}")));
    match run
        .act(step, || t.platform.lift_lockdown(namespace, id))
        .await?
    {
        Acted::Done(_) => {}
        Acted::Planned => return Ok(RunOutcome::Planned),
        Acted::Denied { reason } => {
            run.summary(format!("Lockdown {id} stays: {reason}."));
            return Ok(RunOutcome::Unresolved);
        }
    }
    let workloads = match lockdown.scope.chosen() {
        Some(w) => w.to_vec(),
        None => {
            run.read(Step::read_only("list_workloads").target(namespace), || {
                t.platform.list_workloads(namespace)
            })
            .await?
        }
    };
    let mut healthy = true;
    for w in &workloads {
        let status = run
            .read(Step::read_only("verify_workload").target(w), || {
                t.platform.workload(w)
            })
            .await?;
        if !status.is_healthy() {
            healthy = false;
            run.finding(Finding::critical(format!(
                "{w} is not healthy after the lift: {} of {} ready",
                status.ready, status.desired
            )));
        }
    }
    if healthy && t.probe.is_some() {
        healthy = verify_healthy(run, t, "verify").await?;
    }
    run.notify(page(
        &lockdown.scope,
        id,
        format!("security lockdown of {} lifted", lockdown.scope),
        format!(
            "Lockdown {id} was lifted; the workloads are {}.",
            if healthy { "healthy" } else { "NOT healthy" }
        ),
        IncidentStatus::Monitoring,
    ))
    .await;
    run.summary(format!(
        "Lockdown {id} of {} lifted; {}.",
        lockdown.scope,
        if healthy {
            "every workload is healthy"
        } else {
            "some workloads are not healthy (see the findings)"
        }
    ));
    Ok(if healthy {
        RunOutcome::Recovered
    } else {
        RunOutcome::Unresolved
    })
}
