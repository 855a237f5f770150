//! `auth_failures` (seeds 001 and 003: "401 on all authenticated requests", "Invalid token"):
//! the three configuration checks the seeds do by hand, without their leaks. The signing secret
//! must be the same on every instance: each instance's value is read with `printenv KEY` (an
//! argv, no shell), hashed in process with sha256 and dropped; only how many distinct values
//! there are and which instances hold which is reported, never a value and never a hash (a hash
//! of a weak secret can be brute-forced). The token-verify endpoint must answer (a configured
//! probe). The instances' clocks must agree with ours within [`AuthChecks::clock_skew_max`]
//! (`date +%s` in each). Read-only: the report says what to do (restart the odd instances so
//! they pick up the current secret; fix NTP).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Targets;
use crate::artifact::sha256_hex;
use crate::error::OpsError;
use crate::incident::Signals;
use crate::names::EnvKey;
use crate::platform::ExecCommand;
use crate::probe::{Outcome, Probe};
use crate::refs::InstanceRef;
use crate::run::{Finding, Mode, Report, Run, RunContext, RunFailure, RunOutcome, Step};

/// What `auth_failures` checks, with documented defaults.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let a: ops_core::runbooks::AuthChecks =
///     serde_json::from_str(r#"{"signing_key_env": "JWT_SECRET", "clock_skew_max": "1m"}"#).unwrap();
/// assert_eq!(a.clock_skew_max, Duration::from_mins(1));
/// let d = ops_core::runbooks::AuthChecks::default();
/// assert_eq!(d.signing_key_env.unwrap().as_str(), "SECRET_KEY");
/// assert_eq!(d.clock_skew_max, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AuthChecks {
    /// The environment variable holding the token signing secret: `SECRET_KEY` (seed 001);
    /// `None` skips the comparison.
    pub signing_key_env: Option<EnvKey>,
    /// The largest difference between an instance's clock and ours that is not a finding:
    /// 30 s (tokens carry `iat`/`nbf`/`exp` in seconds; skew beyond a verifier's leeway
    /// rejects fresh tokens). A duration such as `"30s"` or milliseconds.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub clock_skew_max: Duration,
    /// The name of the check in [`Targets::checks`] that calls the token-verify endpoint;
    /// `None` uses the service probe ([`Targets::probe`]).
    pub verify_probe: Option<String>,
}

impl Default for AuthChecks {
    fn default() -> Self {
        Self {
            signing_key_env: Some(EnvKey::from_static("SECRET_KEY")),
            clock_skew_max: Duration::from_secs(30),
            verify_probe: None,
        }
    }
}

/// Parse what `date +%s` printed: whole seconds since the epoch.
fn epoch_seconds(stdout: &[u8]) -> Option<i64> {
    std::str::from_utf8(stdout).ok()?.trim().parse().ok()
}

/// How far `remote` lies outside `[before, after]` (our clock around the exec), signed:
/// positive when the instance is ahead.
fn skew(remote: i64, before: i64, after: i64) -> i64 {
    if remote < before {
        remote - before
    } else if remote > after {
        remote - after
    } else {
        0
    }
}

/// What a check found, for the verdict.
#[derive(Debug, Default)]
struct Problems {
    secret: bool,
    verify: bool,
    clocks: bool,
    /// Instances holding a value other than the majority's, or none.
    odd: Vec<String>,
    skewed: Vec<String>,
}

/// Authentication failures (seeds 001, 003): are the signing secret, the token-verify endpoint
/// and the clocks in order? Three read-only checks:
///
/// 1. **Signing secret** ([`AuthChecks::signing_key_env`]): `printenv KEY` in each instance,
///    the value hashed with sha256 in process and dropped; the report says how many distinct
///    values there are and which instances differ from the majority (or lack the key), never a
///    value or a hash.
/// 2. **Token verify endpoint**: the check named [`AuthChecks::verify_probe`] in
///    [`Targets::checks`], or the service probe.
/// 3. **Clocks**: `date +%s` in each instance against our clock; a skew over
///    [`AuthChecks::clock_skew_max`] is a finding.
///
/// Outcome: [`RunOutcome::Healthy`] when all hold, otherwise [`RunOutcome::Unresolved`] with
/// findings and next steps (restart the odd instances so they pick up the current secret, fix
/// NTP). Running a command in an instance is not read-only in general, so a dry run (whose
/// platform is a read-only view) skips checks 1 and 3, says so, and ends
/// [`RunOutcome::Planned`] unless the endpoint check already found a problem.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] when `verify_probe` names no check in `targets.checks`,
/// or an instance name is not valid; the platform's error when the workload cannot be read.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use ops_core::platform::{ExecOutput, WorkloadStatus};
/// use ops_core::run::{Mode, RunContext, RunOutcome};
/// use ops_core::runbooks::{auth_failures, Targets};
/// use ops_core::testing::{FakePlatform, ScriptedProbe};
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let mut fake = FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 2));
/// for (pod, value) in [("api-0", "s3cret-a"), ("api-1", "s3cret-b")] {
///     let out = ExecOutput::new(Some(0), format!("{value}\n").into_bytes(), Vec::new());
///     fake = fake.with_exec(&api.instance(pod)?, ["printenv", "SECRET_KEY"], out);
/// }
/// let t = Targets::new(Arc::new(fake), api).with_probe(Arc::new(ScriptedProbe::new("api-health")));
/// let ctx = RunContext::builder().mode(Mode::Execute).allow_volatile_journal().build();
/// let report = auth_failures(&ctx, &t).await?;
/// assert_eq!(report.outcome, RunOutcome::Unresolved);
/// assert!(!report.to_markdown().contains("s3cret"));
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[tracing::instrument(skip_all, fields(runbook = "auth_failures", target = %t.workload, mode = %ctx.mode()))]
pub async fn auth_failures(ctx: &RunContext, t: &Targets) -> Result<Report, RunFailure> {
    let run = ctx.begin("auth_failures", &t.workload).await;
    // In a dry run the targets are read-only views: nothing can change them.
    let t = &t.for_mode(ctx.mode());
    // Boxed: a runbook body holds many steps; callers get a small future.
    let body = Box::pin(async {
        let cfg = &t.config.auth;
        let probe = verify_probe(t)?;
        let status = run
            .read(
                Step::read_only("workload_status").target(&t.workload),
                || t.platform.workload(&t.workload),
            )
            .await?;
        let instances = status
            .instances
            .iter()
            .map(|i| t.workload.instance(i.name.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut problems = Problems::default();
        let exec_skipped = if ctx.mode() == Mode::DryRun {
            Some("a dry run does not run commands in instances; run with execute to compare")
        } else if !t.platform.capabilities().exec {
            Some("this platform cannot run commands in instances")
        } else {
            None
        };
        match (exec_skipped, &cfg.signing_key_env) {
            (_, None) => run.finding(Finding::info(
                "signing secret not compared: no signing_key_env configured",
            )),
            (Some(why), Some(key)) => run.finding(Finding::info(format!(
                "signing secret {key} not compared: {why}"
            ))),
            (None, Some(key)) => signing_secret(&run, t, &instances, key, &mut problems).await,
        }
        match probe {
            Some(p) => verify_endpoint(&run, p, &mut problems).await,
            None => run.finding(Finding::info(
                "token verify endpoint not checked: no verify_probe and no service probe",
            )),
        }
        match exec_skipped {
            Some(why) => run.finding(Finding::info(format!("clocks not compared: {why}"))),
            None => clocks(&run, ctx, t, &instances, &mut problems).await,
        }
        Ok(verdict(&run, &problems, exec_skipped.is_some()))
    })
    .await;
    run.conclude(body).await
}

/// The probe of the token-verify endpoint, if any.
fn verify_probe(t: &Targets) -> Result<Option<&Arc<dyn Probe>>, OpsError> {
    match &t.config.auth.verify_probe {
        Some(name) => t
            .checks
            .iter()
            .find(|c| c.name() == name)
            .map(Some)
            .ok_or_else(|| {
                OpsError::invalid(
                    "auth_failures",
                    name,
                    "verify_probe names no check in Targets::checks",
                )
            }),
        None => Ok(t.probe.as_ref()),
    }
}

/// Compare the signing secret across instances by sha256, never by value.
async fn signing_secret(
    run: &Run<'_>,
    t: &Targets,
    instances: &[InstanceRef],
    key: &EnvKey,
    problems: &mut Problems,
) {
    let timeout = run.ctx().step_timeout();
    // Instance names by the hash of the value they hold.
    let mut by_hash: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unset: Vec<String> = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    for instance in instances {
        let name = instance.name().to_string();
        let step = Step::read_only("signing_secret").target(instance);
        let read = run
            .read(step, || async {
                let cmd = ExecCommand::new(["printenv", key.as_str()])?.with_timeout(timeout);
                let out = t.platform.exec(instance, &cmd).await?;
                // Hashed here and dropped: the value never leaves this closure.
                Ok::<_, OpsError>(match out.exit_code {
                    Some(0) => {
                        let value = out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout);
                        Some(Some(sha256_hex(value)))
                    }
                    // printenv exits 1 when the variable is not set.
                    Some(1) => Some(None),
                    _ => None,
                })
            })
            .await;
        match read {
            Ok(Some(Some(hash))) => by_hash.entry(hash).or_default().push(name),
            Ok(Some(None)) => unset.push(name),
            Ok(None) => unreadable.push(name),
            Err(e) => {
                run.finding(
                    Finding::warning(format!("{name}: could not read {key}"))
                        .with_evidence(e.chain()),
                );
                unreadable.push(name);
            }
        }
    }
    let mut groups: Vec<Vec<String>> = by_hash.into_values().collect();
    // The largest group first: the value most instances hold.
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    if !unreadable.is_empty() {
        run.finding(Finding::warning(format!(
            "{key} could not be read in {}",
            unreadable.join(", ")
        )));
    }
    if !unset.is_empty() {
        problems.secret = true;
        problems.odd.extend(unset.iter().cloned());
        run.finding(Finding::critical(format!(
            "{key} is not set in {}",
            unset.join(", ")
        )));
    }
    match groups.as_slice() {
        [all] if unset.is_empty() => run.finding(Finding::info(format!(
            "{key} is the same on all {} instance(s) read (compared by sha256, never by value)",
            all.len()
        ))),
        // None read, or one value and some instances without it (reported above).
        [] | [_] => {}
        [majority, rest @ ..] => {
            problems.secret = true;
            problems.odd.extend(rest.iter().flatten().cloned());
            let finding = Finding::critical(format!(
                "{key} has {} distinct values across {} instances: tokens signed by one are \
                 rejected by the others",
                groups.len(),
                groups.iter().map(Vec::len).sum::<usize>()
            ))
            .with_evidence(format!("value 1 (most instances): {}", majority.join(", ")));
            let finding = rest.iter().enumerate().fold(finding, |f, (i, g)| {
                f.with_evidence(format!("value {}: {}", i + 2, g.join(", ")))
            });
            run.finding(finding);
        }
    }
}

/// Does the token-verify endpoint answer?
async fn verify_endpoint(run: &Run<'_>, probe: &Arc<dyn Probe>, problems: &mut Problems) {
    let name = probe.name().to_owned();
    let step = Step::read_only("verify_endpoint").target(&name);
    match run.read(step, || probe.check()).await {
        Ok(r) if r.outcome == Outcome::Up => {
            run.finding(Finding::info(format!("{name} answers: {}", r.detail)));
        }
        Ok(r) => {
            problems.verify = true;
            let f = if r.outcome == Outcome::Down {
                Finding::critical(format!("{name} (token verify) is down: {}", r.detail))
            } else {
                Finding::warning(format!("{name} (token verify) is degraded: {}", r.detail))
            };
            run.finding(f);
        }
        Err(e) => {
            problems.verify = true;
            run.finding(
                Finding::critical(format!("{name} (token verify) could not be checked"))
                    .with_evidence(e.chain()),
            );
        }
    }
}

/// Compare each instance's clock with ours.
async fn clocks(
    run: &Run<'_>,
    ctx: &RunContext,
    t: &Targets,
    instances: &[InstanceRef],
    problems: &mut Problems,
) {
    let max = i64::try_from(t.config.auth.clock_skew_max.as_secs()).unwrap_or(i64::MAX);
    let timeout = ctx.step_timeout();
    let mut agree = 0usize;
    for instance in instances {
        let name = instance.name().to_string();
        let step = Step::read_only("clock").target(instance);
        let read = run
            .read(step, || async {
                let cmd = ExecCommand::new(["date", "+%s"])?.with_timeout(timeout);
                let before = ctx.clock().now().as_second();
                let out = t.platform.exec(instance, &cmd).await?;
                let after = ctx.clock().now().as_second();
                Ok::<_, OpsError>(
                    out.success()
                        .then(|| epoch_seconds(&out.stdout))
                        .flatten()
                        .map(|remote| skew(remote, before, after)),
                )
            })
            .await;
        match read {
            Ok(Some(s)) if s.abs() <= max => agree += 1,
            Ok(Some(s)) => {
                problems.clocks = true;
                problems.skewed.push(name.clone());
                let way = if s > 0 { "ahead of" } else { "behind" };
                run.finding(Finding::warning(format!(
                    "{name}'s clock is {} s {way} ours (more than {} s): tokens look expired or \
                     not yet valid there",
                    s.unsigned_abs(),
                    max
                )));
            }
            Ok(None) => run.finding(Finding::warning(format!(
                "{name}: `date +%s` did not print the time"
            ))),
            Err(e) => run.finding(
                Finding::warning(format!("{name}: could not read the clock"))
                    .with_evidence(e.chain()),
            ),
        }
    }
    if agree == instances.len() && agree > 0 {
        run.finding(Finding::info(format!(
            "the clocks of all {agree} instance(s) agree with ours within {max} s"
        )));
    }
}

fn verdict(run: &Run<'_>, p: &Problems, exec_skipped: bool) -> RunOutcome {
    let mut next = Vec::new();
    if p.secret {
        next.push(format!(
            "restart {} so they pick up the current signing secret (restart_and_verify); users \
             whose tokens were signed with the other value must log in again",
            p.odd.join(", ")
        ));
    }
    if p.verify {
        next.push("find why the token verify endpoint fails (its logs, its dependencies)".into());
    }
    if p.clocks {
        next.push(format!(
            "fix time synchronisation (NTP) on the hosts of {}",
            p.skewed.join(", ")
        ));
    }
    if next.is_empty() {
        if exec_skipped {
            run.summary("The token verify endpoint answers; the secret and clock comparisons need commands in instances and did not run.");
            return if run.mode() == Mode::DryRun {
                RunOutcome::Planned
            } else {
                RunOutcome::Unresolved
            };
        }
        run.summary("Signing secret, token verify endpoint and clocks are in order.");
        return RunOutcome::Healthy;
    }
    // Tokens rejected (secret mismatch, verify failing) is login down; clock skew alone
    // degrades it.
    run.observe(if p.secret || p.verify {
        Signals::default().with_critical_feature_down(true)
    } else {
        Signals::default().with_degraded_dependency("authentication (clock skew)")
    });
    run.summary(format!("Next: {}.", next.join("; ")));
    RunOutcome::Unresolved
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn skew_is_zero_inside_the_exec_window() {
        assert_eq!(skew(105, 100, 110), 0);
        assert_eq!(skew(95, 100, 110), -5);
        assert_eq!(skew(150, 100, 110), 40);
    }

    #[test]
    fn epoch_seconds_reads_date_output() {
        assert_eq!(epoch_seconds(b"1700000000\n"), Some(1_700_000_000));
        assert_eq!(epoch_seconds(b"Tue Dec  1\n"), None);
        assert_eq!(epoch_seconds(&[0xff, 0xfe]), None);
    }

    proptest! {
        #[test]
        fn epoch_seconds_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = epoch_seconds(&bytes);
        }

        #[test]
        fn epoch_seconds_round_trips(n in any::<i64>()) {
            prop_assert_eq!(epoch_seconds(format!("{n}\n").as_bytes()), Some(n));
        }
    }
}
