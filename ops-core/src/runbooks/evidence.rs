//! Evidence capture on demand (issue 14 §evidence): the bundle of [`crate::evidence`] as a
//! run of its own, journaled, planned in a dry run and approved in execute mode (it writes
//! files; on the platform it only reads).

use std::path::Path;

use super::Targets;
use crate::evidence::{EvidenceOptions, capture};
use crate::refs::{Namespace, WorkloadRef};
use crate::run::{Acted, Finding, Report, RunContext, RunFailure, RunOutcome, Step};

/// Capture evidence about `workloads` (empty: every workload of `namespace`) into a new
/// bundle `<dir>/<namespace>-<UTC time>/` with its `SHA256SUMS` manifest.
///
/// Outcome: [`RunOutcome::Recovered`] when the bundle is written ("done"),
/// [`RunOutcome::Planned`] in a dry run, [`RunOutcome::Unresolved`] when denied.
///
/// # Errors
/// The capture's errors ([`crate::ErrorKind::Conflict`] when the bundle exists, the
/// platform's read errors); nothing is left at the destination on failure.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::evidence::EvidenceOptions;
/// use ops_core::platform::WorkloadStatus;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{evidence_capture, Targets};
/// use ops_core::testing::FakePlatform;
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let p = Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1)));
/// let t = Targets::new(p, api.clone());
/// let report = evidence_capture(&RunContext::builder().build(), &t, api.namespace(), &[], "/evidence".as_ref(), &EvidenceOptions::default()).await?;
/// assert_eq!(report.outcome, RunOutcome::Planned);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "evidence_capture", target = %namespace, mode = %ctx.mode()))]
pub async fn evidence_capture(
    ctx: &RunContext,
    t: &Targets,
    namespace: &Namespace,
    workloads: &[WorkloadRef],
    dir: &Path,
    opts: &EvidenceOptions,
) -> Result<Report, RunFailure> {
    let run = ctx.begin("evidence_capture", namespace).await;
    let t = &t.for_mode(ctx.mode());
    let body = Box::pin(async {
        let stamp = run.ctx().clock().now().strftime("%Y%m%dT%H%M%SZ");
        let dest = dir.join(format!("{namespace}-{stamp}"));
        let what = if workloads.is_empty() {
            format!("every workload of {namespace}")
        } else {
            workloads
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let step = Step::disruptive("capture_evidence")
            .describe(format!(
                "write logs (previous containers too), status and events of {what} and the export of {namespace} to {} with a SHA256SUMS manifest (read-only on the platform)",
                dest.display()
            ))
            .target(dest.display())
            .change(format!("new directory {} and its SHA256SUMS", dest.display()))
            .timeout(std::time::Duration::from_secs(600));
        let platform = &*t.platform;
        let bundle = match run
            .act(step, || capture(platform, namespace, workloads, &dest, opts))
            .await?
        {
            Acted::Done(b) => b,
            Acted::Planned => return Ok(RunOutcome::Planned),
            Acted::Denied { reason } => {
                run.summary(format!("No evidence was written: {reason}."));
                return Ok(RunOutcome::Unresolved);
            }
        };
        for w in &bundle.warnings {
            run.finding(Finding::warning(format!("evidence: {w}")));
        }
        run.summary(format!(
            "Evidence written to {} ({} files; SHA256SUMS sha256 {}; check with `sha256sum -c SHA256SUMS` in that directory).",
            bundle.dir.display(),
            bundle.files.len(),
            bundle.manifest_sha256().unwrap_or("?")
        ));
        Ok(RunOutcome::Recovered)
    })
    .await;
    run.conclude(body).await
}
