//! `auth_failures` (issue 14) over the fakes: the signing secret compared across instances by
//! hash (the value never shows in the report, its JSON or Debug), the token verify endpoint,
//! and clocks against ours; a dry run runs no command in any instance.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default,
    reason = "tests fail loudly; non-exhaustive types are built by assignment"
)]

use std::sync::Arc;

use ops_core::platform::{ExecOutput, WorkloadStatus};
use ops_core::probe::ProbeResult;
use ops_core::run::{Mode, Report, RunContext, RunOutcome, TokioClock};
use ops_core::runbooks::{AuthChecks, RunbookConfig, Targets, auth_failures};
use ops_core::testing::{FakePlatform, ScriptedProbe};
use ops_core::{ErrorKind, WorkloadRef};

const SECRET_A: &str = "sig-A-7c1e-never-in-reports";
const SECRET_B: &str = "sig-B-94d0-never-in-reports";
const NOW: i64 = 1_764_640_800; // 2025-12-02T02:00:00Z

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn out(stdout: &str, code: i64) -> ExecOutput {
    ExecOutput::new(Some(code), stdout.as_bytes().to_vec(), Vec::new())
}

/// Three instances with the given secret (`None`: unset) and clock offset each.
fn fake(instances: &[(Option<&str>, i64)]) -> FakePlatform {
    let w = api();
    let n = u32::try_from(instances.len()).unwrap();
    let mut p = FakePlatform::default().with_workload(WorkloadStatus::healthy(w.clone(), n));
    for (i, (secret, offset)) in instances.iter().enumerate() {
        let pod = w.instance(&format!("api-{i}")).unwrap();
        let env = match secret {
            Some(s) => out(&format!("{s}\n"), 0),
            None => out("", 1),
        };
        p = p
            .with_exec(&pod, ["printenv", "SECRET_KEY"], env)
            .with_exec(
                &pod,
                ["date", "+%s"],
                out(&format!("{}\n", NOW + offset), 0),
            );
    }
    p
}

fn ctx(mode: Mode) -> RunContext {
    let start = jiff::Timestamp::from_second(NOW).unwrap();
    RunContext::builder()
        .mode(mode)
        .allow_volatile_journal()
        .clock(Arc::new(TokioClock::starting_at(start)))
        .build()
}

fn targets(p: &Arc<FakePlatform>, probe: ScriptedProbe) -> Targets {
    Targets::new(Arc::clone(p) as _, api()).with_probe(Arc::new(probe))
}

fn titles(r: &Report) -> String {
    r.findings
        .iter()
        .map(|f| format!("{} | {}", f.title, f.evidence.join(" | ")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_no_secret(r: &Report) {
    let md = r.to_markdown();
    let json = r.to_json().unwrap();
    let debug = format!("{r:?}");
    for text in [&md, &json, &debug] {
        for secret in [SECRET_A, SECRET_B] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
            // Nor its hash, whole or a prefix of it.
            let hash = ops_core::artifact::sha256_hex(secret.as_bytes());
            assert!(!text.contains(&hash[..12]), "hash of {secret} leaked");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn same_secret_good_clocks_and_endpoint_is_healthy() {
    let p = Arc::new(fake(&[
        (Some(SECRET_A), 0),
        (Some(SECRET_A), 2),
        (Some(SECRET_A), -3),
    ]));
    let r = auth_failures(
        &ctx(Mode::Execute),
        &targets(&p, ScriptedProbe::new("verify")),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, RunOutcome::Healthy, "{}", titles(&r));
    assert!(titles(&r).contains("SECRET_KEY is the same on all 3 instance(s)"));
    assert!(titles(&r).contains("clocks of all 3 instance(s) agree"));
    assert_no_secret(&r);
    // Only the reads it was meant to do: one printenv and one date per instance.
    let m = p.mutations();
    assert_eq!(m.len(), 6, "{m:?}");
    assert!(
        m.iter()
            .all(|e| e.starts_with("exec prod/deployment/api/api-"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_different_secret_names_the_odd_instance_and_never_the_value() {
    let p = Arc::new(fake(&[
        (Some(SECRET_A), 0),
        (Some(SECRET_B), 0),
        (Some(SECRET_A), 0),
    ]));
    let r = auth_failures(
        &ctx(Mode::Execute),
        &targets(&p, ScriptedProbe::new("verify")),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, RunOutcome::Unresolved);
    let t = titles(&r);
    assert!(
        t.contains("SECRET_KEY has 2 distinct values across 3 instances"),
        "{t}"
    );
    assert!(t.contains("value 1 (most instances): api-0, api-2"), "{t}");
    assert!(t.contains("value 2: api-1"), "{t}");
    assert!(
        r.summary.contains("restart api-1 so they pick up"),
        "{}",
        r.summary
    );
    assert_no_secret(&r);
}

#[tokio::test(start_paused = true)]
async fn an_unset_secret_is_a_finding() {
    let p = Arc::new(fake(&[(Some(SECRET_A), 0), (None, 0)]));
    let r = auth_failures(
        &ctx(Mode::Execute),
        &targets(&p, ScriptedProbe::new("verify")),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, RunOutcome::Unresolved);
    assert!(titles(&r).contains("SECRET_KEY is not set in api-1"));
    assert_no_secret(&r);
}

#[tokio::test(start_paused = true)]
async fn a_skewed_clock_is_a_finding_with_its_direction() {
    let p = Arc::new(fake(&[(Some(SECRET_A), 0), (Some(SECRET_A), 95)]));
    let r = auth_failures(
        &ctx(Mode::Execute),
        &targets(&p, ScriptedProbe::new("verify")),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, RunOutcome::Unresolved);
    assert!(
        titles(&r).contains("api-1's clock is 95 s ahead of ours (more than 30 s)"),
        "{}",
        titles(&r)
    );
    assert!(r.summary.contains("NTP"), "{}", r.summary);
}

#[tokio::test(start_paused = true)]
async fn the_configured_skew_is_the_threshold() {
    let p = Arc::new(fake(&[(Some(SECRET_A), -95)]));
    let mut cfg = RunbookConfig::default();
    cfg.auth = serde_json::from_str(r#"{"clock_skew_max": "2m"}"#).unwrap();
    let t = targets(&p, ScriptedProbe::new("verify")).with_config(cfg);
    let r = auth_failures(&ctx(Mode::Execute), &t).await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Healthy, "{}", titles(&r));
}

#[tokio::test(start_paused = true)]
async fn a_down_verify_endpoint_is_found_through_the_named_check() {
    let p = Arc::new(fake(&[(Some(SECRET_A), 0)]));
    let mut cfg = RunbookConfig::default();
    cfg.auth = AuthChecks::default();
    cfg.auth.verify_probe = Some("token-verify".to_owned());
    let t = targets(&p, ScriptedProbe::new("api-health"))
        .with_check(Arc::new(ScriptedProbe::always(
            "token-verify",
            ProbeResult::down("401 from /api/auth/verify"),
        )))
        .with_config(cfg.clone());
    let r = auth_failures(&ctx(Mode::Execute), &t).await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Unresolved);
    assert!(titles(&r).contains("token-verify (token verify) is down: 401"));

    // A name that matches no check is a typed error, not a silent skip.
    cfg.auth.verify_probe = Some("missing".to_owned());
    let err = auth_failures(
        &ctx(Mode::Execute),
        &targets(&p, ScriptedProbe::new("api-health")).with_config(cfg),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::InvalidInput);
}

#[tokio::test(start_paused = true)]
async fn a_failing_exec_is_reported_not_fatal() {
    let p = Arc::new(
        fake(&[(Some(SECRET_A), 0), (Some(SECRET_A), 0)]).fail_next("exec", ErrorKind::NotFound),
    );
    let r = auth_failures(
        &ctx(Mode::Execute),
        &targets(&p, ScriptedProbe::new("verify")),
    )
    .await
    .unwrap();
    assert!(
        titles(&r).contains("api-0: could not read SECRET_KEY"),
        "{}",
        titles(&r)
    );
    assert_no_secret(&r);
}

#[tokio::test(start_paused = true)]
async fn dry_run_runs_no_command_and_says_so() {
    let p = Arc::new(fake(&[(Some(SECRET_A), 0), (Some(SECRET_B), 500)]));
    let r = auth_failures(
        &ctx(Mode::DryRun),
        &targets(&p, ScriptedProbe::new("verify")),
    )
    .await
    .unwrap();
    assert!(p.mutations().is_empty(), "{:?}", p.mutations());
    assert_eq!(r.outcome, RunOutcome::Planned);
    assert!(titles(&r).contains("signing secret SECRET_KEY not compared: a dry run"));
    assert!(titles(&r).contains("clocks not compared"));
}
