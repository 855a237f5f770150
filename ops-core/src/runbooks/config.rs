//! Checks of certificates and connectivity, and secret rotation.

use futures::future::join_all;

use super::Targets;
use super::verify::{verify_healthy, wait_rollout};
use crate::error::OpsError;
use crate::incident::Signals;
use crate::platform::{ConfigTarget, ConfigUpdate};
use crate::probe::{Outcome, ProbeResult};
use crate::run::{Acted, Finding, Report, Run, RunContext, RunFailure, RunOutcome, Step};

/// Run every probe of `targets.checks` concurrently, one read-only step each, and turn the
/// results into findings. Returns how many were down and degraded.
async fn check_all(run: &Run<'_>, t: &Targets, what: &str) -> (usize, usize) {
    let results = join_all(t.checks.iter().map(|probe| async move {
        let step = Step::read_only(format!("check_{}", probe.name())).target(probe.name());
        (
            probe.name().to_owned(),
            run.read(step, || probe.check()).await,
        )
    }))
    .await;
    let (mut down, mut degraded) = (0, 0);
    for (name, result) in results {
        let finding = match result {
            Ok(r) => {
                let f = match r.outcome {
                    Outcome::Up => Finding::info(format!("{name}: {}", r.detail)),
                    Outcome::Degraded => {
                        degraded += 1;
                        Finding::warning(format!("{name}: {}", r.detail))
                    }
                    Outcome::Down => {
                        down += 1;
                        Finding::critical(format!("{name}: {}", r.detail))
                    }
                };
                observations(f, &r)
            }
            Err(e) => {
                down += 1;
                Finding::critical(format!("{name}: the {what} check could not run"))
                    .with_evidence(e.chain())
            }
        };
        run.finding(finding);
    }
    (down, degraded)
}

fn observations(f: Finding, r: &ProbeResult) -> Finding {
    r.observations.iter().fold(f, |f, o| {
        f.with_evidence(format!(
            "{} = {}{}",
            o.name,
            o.value,
            if o.ok { "" } else { " (failed)" }
        ))
    })
}

/// A check that fails is a critical feature down (P1 by default: an expired certificate or
/// an unreachable peer breaks what depends on it); one that is degraded is a degraded
/// dependency (P2 by default).
fn verdict(run: &Run<'_>, down: usize, degraded: usize) -> RunOutcome {
    if down > 0 {
        run.observe(Signals::default().with_critical_feature_down(true));
    }
    if degraded > 0 {
        run.observe(
            Signals::default().with_degraded_dependency(format!("{degraded} check(s) degraded")),
        );
    }
    if down + degraded == 0 {
        RunOutcome::Healthy
    } else {
        RunOutcome::Unresolved
    }
}

/// Certificate expiry (seed: "SSL certificate expiring/expired"): run every certificate check
/// in `targets.checks` (TLS probes from `ops-probes`, whose thresholds decide *degraded* —
/// expiring soon — and *down* — expired, untrusted or the wrong host) and report days left,
/// issuer and chain per endpoint. Read-only: renewal belongs to your ACME client or CA; the
/// report says which endpoints need it. Expired is P1, expiring soon P2.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] when `targets.checks` is empty.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::probe::ProbeResult;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{certificate_expiry, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/deployment/api".parse()?)
///     .with_check(Arc::new(ScriptedProbe::always("tls-api.example.com", ProbeResult::degraded("certificate expires in 5 days"))));
/// let report = certificate_expiry(&RunContext::builder().build(), &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Unresolved);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "certificate_expiry"))]
pub async fn certificate_expiry(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx
        .begin(
            "certificate_expiry",
            format!("{} endpoint(s)", t.checks.len()),
        )
        .await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        needs_checks(t, "certificate_expiry")?;
        let (down, degraded) = check_all(&run, t, "certificate").await;
        if down + degraded > 0 {
            run.summary(format!(
                "{down} certificate(s) expired or invalid, {degraded} expiring soon: renew them."
            ));
        }
        Ok(verdict(&run, down, degraded))
    })
    .await;
    run.conclude(body).await
}

/// Network connectivity (seed: "network connectivity issues"): run every dependency check in
/// `targets.checks` (TCP/HTTP probes to databases, caches, upstream APIs) concurrently, and
/// the service's own probe when given, and report which paths fail. Read-only. A failing
/// dependency is P1.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] when `targets.checks` is empty.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::probe::ProbeResult;
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{network_connectivity, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let t = Targets::new(Arc::new(FakePlatform::default()), "prod/deployment/api".parse()?)
///     .with_check(Arc::new(ScriptedProbe::always("tcp-db:5432", ProbeResult::up())));
/// let report = network_connectivity(&RunContext::builder().build(), &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Healthy);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "network_connectivity"))]
pub async fn network_connectivity(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("network_connectivity", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        needs_checks(t, "network_connectivity")?;
        let mut all = t.clone();
        if let Some(own) = &t.probe {
            all.checks.insert(0, std::sync::Arc::clone(own));
        }
        let (down, degraded) = check_all(&run, &all, "connectivity").await;
        if down > 0 {
            run.summary(format!(
                "{down} of {} path(s) fail: check DNS, firewall rules and the peers' listeners.",
                all.checks.len()
            ));
        }
        Ok(verdict(&run, down, degraded))
    })
    .await;
    run.conclude(body).await
}

fn needs_checks(t: &Targets, runbook: &str) -> Result<(), OpsError> {
    if t.checks.is_empty() {
        return Err(OpsError::invalid(
            "targets",
            t.workload.to_string(),
            format!("{runbook} needs checks (Targets::with_check)"),
        ));
    }
    Ok(())
}

/// Secret rotation (seed: "rotate a compromised secret"): set the new value of
/// `config.rotation` on the workload (environment, ConfigMap or Secret), roll it out so it
/// applies (a compose restart would not: the backend recreates), wait, and verify health.
/// The value never appears in the plan, the journal, the report or a log — only the key.
///
/// If the service does not come back, the report says so and that the previous value must be
/// restored by a human (it is not known to opsbook, by design).
///
/// Where the platform does not keep configuration ([`crate::platform::PlatformCapabilities::durable_config`]
/// false: Docker Compose, whose compose file and `.env` define the service), the report's
/// summary says first that the new value must be put there before the old one is revoked,
/// and never that the rotation is done: the next `docker compose up` recreates the service
/// from its definition and brings the old value back.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] without `config.rotation` or a probe; errors of the update.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::{ConfigTarget, WorkloadStatus};
/// use ops_core::run::{RunContext, RunOutcome};
/// use ops_core::runbooks::{secret_rotation, RunbookConfig, SecretRotation, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let mut cfg = RunbookConfig::default();
/// cfg.rotation = Some(SecretRotation::new(ConfigTarget::Env, "API_TOKEN", "t0p-s3cret"));
/// let t = Targets::new(Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1))), api)
///     .with_probe(Arc::new(ScriptedProbe::new("api"))).with_config(cfg);
/// let report = secret_rotation(&RunContext::builder().build(), &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Planned);
/// assert!(!report.to_json()?.contains("t0p-s3cret"));
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "secret_rotation", target = %t.workload, mode = %ctx.mode()))]
pub async fn secret_rotation(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("secret_rotation", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        t.probe()?;
        let rotation = t.config.rotation.as_ref().ok_or_else(|| {
            OpsError::invalid("targets", t.workload.to_string(), "secret_rotation needs config.rotation (key and new value)")
        })?;
        // Where the platform keeps Secrets of its own, a new Secret
        // replaces the old one, which goes only once nothing uses it.
        if let ConfigTarget::Secret(old) = &rotation.target
            && t.platform.capabilities().secret_versions
        {
            return super::secrets::rotate_by_new_secret(&run, t, rotation, old).await;
        }
        let mut update = ConfigUpdate::new(rotation.target.clone());
        update.set.insert(rotation.key.clone(), rotation.value.clone());
        let step = Step::disruptive("rotate_secret")
            .describe(format!("set a new value for {} on {} and roll it out", rotation.key, t.workload))
            .target(&t.workload)
            .change(format!("{}: new value for {} in {:?} (value not shown)", t.workload, rotation.key, rotation.target))
            .change(format!("{}: every instance replaced so the value applies", t.workload));
        // Where the service is defined outside the platform (Compose: the compose file and
        // `.env`), the change lasts only until the next deploy from that definition: said
        // first, before anything changes, so nobody revokes the old value too early.
        let durable = t.platform.capabilities().durable_config;
        let keep_out = |place: &str| {
            format!(
                "Do not revoke the old {key} yet: first set the new value in {place}. The change made here lasts only until the next deploy from that definition (e.g. `docker compose up`), which brings the old value back.",
                key = rotation.key
            )
        };
        if !durable {
            run.summary(keep_out(&format!("the definition of {}", t.workload)));
            run.finding(
                Finding::warning(format!("the new {} will not last on its own", rotation.key))
                    .with_evidence(format!("{} is defined outside the platform; the platform keeps no configuration of its own", t.workload)),
            );
        }
        let persist_in = match run.act(step, || t.platform.update_config(&t.workload, update)).await? {
            Acted::Done(change) => {
                run.finding(Finding::info(format!("set {} (rolled out: {})", change.keys_set.join(", "), change.rolled_out)));
                change.persist_in
            }
            Acted::Planned => return Ok(RunOutcome::Planned),
            Acted::Denied { .. } => return Ok(RunOutcome::Unresolved),
        };
        let not_durable = persist_in.or_else(|| (!durable).then(|| format!("the definition of {}", t.workload)));
        if let Some(place) = &not_durable {
            run.summary(keep_out(place));
        }
        if wait_rollout(&run, t, "wait_rolled_out").await? && verify_healthy(&run, t, "verify_health").await? {
            match &not_durable {
                Some(place) => run.summary(format!(
                    "{} The new value is live on {} now; revoke the old value at its issuer only once {place} holds the new one.",
                    keep_out(place),
                    t.workload
                )),
                None => run.summary(format!("{} rotated; revoke the old value at its issuer now.", rotation.key)),
            }
            Ok(RunOutcome::Recovered)
        } else {
            run.observe(Signals::default().with_critical_feature_down(true));
            run.summary(format!(
                "{} did not come back with the new {}: check the value at its issuer; restoring the old value is manual (opsbook never keeps it).",
                t.workload, rotation.key
            ));
            Ok(RunOutcome::Unresolved)
        }
    })
    .await;
    run.conclude(body).await
}
