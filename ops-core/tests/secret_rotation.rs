//! `secret_rotation` by a new Secret (issue 14 item 6) over the fakes: create the new Secret,
//! point every user at it, wait, verify, and only then delete the old one; on failure point
//! back and delete the new one; a dry run plans it all and changes nothing; the value never
//! shows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default,
    reason = "tests fail loudly; non-exhaustive types are built by assignment"
)]

use std::sync::Arc;
use std::time::Duration;

use ops_core::platform::{ConfigTarget, PlatformCapabilities, WorkloadStatus};
use ops_core::run::{
    ActionStatus, ApprovalPolicy, ApprovalRule, Mode, Report, RunContext, RunOutcome,
};
use ops_core::runbooks::{RunbookConfig, SecretRotation, Targets, secret_rotation};
use ops_core::testing::{FakePlatform, Healing, ScriptedProbe};
use ops_core::{Namespace, ResourceName, WorkloadRef};

const NEW_VALUE: &str = "n3w-v4lue-9f2c-kept-out-of-reports";
const OLD_VALUE: &str = "0ld-v4lue-31ab";

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn worker() -> WorkloadRef {
    "prod/deployment/worker".parse().unwrap()
}

fn prod() -> Namespace {
    "prod".parse().unwrap()
}

fn name(n: &str) -> ResourceName {
    n.parse().unwrap()
}

/// `db-creds` (password and user) used by api and worker.
fn platform() -> FakePlatform {
    FakePlatform::default()
        .with_workload(WorkloadStatus::healthy(api(), 2))
        .with_workload(WorkloadStatus::healthy(worker(), 1))
        .with_secret(
            &prod(),
            &name("db-creds"),
            &[("password", OLD_VALUE), ("user", "app")],
        )
        .with_secret_user(&api(), &name("db-creds"))
        .with_secret_user(&worker(), &name("db-creds"))
}

fn targets(p: &Arc<FakePlatform>) -> Targets {
    let mut cfg =
        RunbookConfig::default().with_verify(2, Duration::from_secs(1), Duration::from_secs(30));
    cfg.rotation = Some(SecretRotation::new(
        ConfigTarget::Secret(name("db-creds")),
        "password",
        NEW_VALUE,
    ));
    cfg.rollout_timeout = Duration::from_secs(60);
    Targets::new(Arc::clone(p) as _, api())
        .with_probe(Arc::new(ScriptedProbe::tracking(
            "api",
            Arc::clone(p),
            api(),
        )))
        .with_config(cfg)
}

fn execute() -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .build()
}

fn steps(report: &Report) -> Vec<String> {
    report.timeline.iter().map(|s| s.step.clone()).collect()
}

fn no_value_anywhere(report: &Report, p: &FakePlatform) {
    let json = report.to_json().unwrap();
    let md = report.to_markdown();
    for text in [json.as_str(), md.as_str(), &format!("{report:?}")] {
        assert!(
            !text.contains(NEW_VALUE) && !text.contains(OLD_VALUE),
            "a value leaked: {text}"
        );
    }
    for line in p.mutations().iter().chain(p.calls().iter()) {
        assert!(
            !line.contains(NEW_VALUE) && !line.contains(OLD_VALUE),
            "{line}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_old_secret_is_deleted_only_after_every_user_rolled_out_on_the_new_one() {
    let p = Arc::new(platform());
    let report = secret_rotation(&execute(), &targets(&p)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        p.mutations(),
        [
            "copy_secret prod/db-creds -> db-creds-v2 set=[\"password\"]",
            "repoint_secret prod/deployment/api db-creds -> db-creds-v2",
            "repoint_secret prod/deployment/worker db-creds -> db-creds-v2",
            "delete_secret prod/db-creds",
        ]
    );
    let order = steps(&report);
    let pos = |s: &str| {
        order
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} in {order:?}"))
    };
    let last_wait = order.iter().rposition(|x| x == "wait_rolled_out").unwrap();
    assert!(pos("create_secret") < pos("repoint_workloads"));
    assert!(pos("repoint_workloads") < pos("wait_rolled_out"));
    assert_eq!(
        order.iter().filter(|s| *s == "wait_rolled_out").count(),
        2,
        "one per user"
    );
    assert!(last_wait < pos("verify_health") && pos("verify_health") < pos("delete_old_secret"));
    let new = p
        .secret(&prod(), &name("db-creds-v2"))
        .expect("the new secret");
    assert_eq!(new["password"], NEW_VALUE);
    assert_eq!(new["user"], "app", "keys not rotated are copied");
    assert!(p.secret(&prod(), &name("db-creds")).is_none());
    for w in [api(), worker()] {
        assert_eq!(
            p.secrets_used_by(&w).into_iter().collect::<Vec<_>>(),
            [name("db-creds-v2")]
        );
    }
    no_value_anywhere(&report, &p);
}

#[tokio::test(start_paused = true)]
async fn a_rollout_that_never_completes_points_back_and_deletes_the_new_secret() {
    let p = Arc::new(platform().restart_heals(Healing::StaysBroken));
    let report = secret_rotation(&execute(), &targets(&p)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Unresolved,
        "{}",
        report.to_markdown()
    );
    let m = p.mutations();
    assert!(
        m.contains(&"repoint_secret prod/deployment/api db-creds-v2 -> db-creds".to_owned()),
        "{m:?}"
    );
    assert!(
        m.contains(&"repoint_secret prod/deployment/worker db-creds-v2 -> db-creds".to_owned()),
        "{m:?}"
    );
    assert_eq!(
        m.last().map(String::as_str),
        Some("delete_secret prod/db-creds-v2")
    );
    assert!(
        !m.iter().any(|x| x == "delete_secret prod/db-creds"),
        "the old secret is never deleted"
    );
    assert_eq!(
        p.secret(&prod(), &name("db-creds")).unwrap()["password"],
        OLD_VALUE
    );
    assert!(p.secret(&prod(), &name("db-creds-v2")).is_none());
    for w in [api(), worker()] {
        assert_eq!(
            p.secrets_used_by(&w).into_iter().collect::<Vec<_>>(),
            [name("db-creds")]
        );
    }
    assert!(
        report.summary.contains("point at db-creds again"),
        "{}",
        report.summary
    );
    no_value_anywhere(&report, &p);
}

#[tokio::test(start_paused = true)]
async fn a_repoint_failing_part_way_is_undone_for_the_workloads_already_changed() {
    // worker uses the secret but is no workload the platform knows: its repoint fails after
    // api's succeeded.
    let p = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_secret(&prod(), &name("db-creds"), &[("password", OLD_VALUE)])
            .with_secret_user(&api(), &name("db-creds"))
            .with_secret_user(&worker(), &name("db-creds")),
    );
    let report = secret_rotation(&execute(), &targets(&p)).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert_eq!(
        p.mutations(),
        [
            "copy_secret prod/db-creds -> db-creds-v2 set=[\"password\"]",
            "repoint_secret prod/deployment/api db-creds -> db-creds-v2",
            "repoint_secret prod/deployment/api db-creds-v2 -> db-creds",
            "delete_secret prod/db-creds-v2",
        ]
    );
    let failed: Vec<_> = report
        .actions_with(ActionStatus::Failed)
        .map(|a| a.step.clone())
        .collect();
    assert_eq!(failed, ["repoint_workloads"]);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_plans_create_repoint_and_delete_and_changes_nothing() {
    let p = Arc::new(platform());
    let report = secret_rotation(&RunContext::builder().build(), &targets(&p))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert!(p.mutations().is_empty());
    let planned: Vec<_> = report
        .actions_with(ActionStatus::Planned)
        .map(|a| a.step.clone())
        .collect();
    assert_eq!(
        planned,
        ["create_secret", "repoint_workloads", "delete_old_secret"]
    );
    let md = report.to_markdown();
    assert!(
        md.contains("prod/deployment/worker: references to db-creds now name db-creds-v2"),
        "{md}"
    );
    no_value_anywhere(&report, &p);
}

#[tokio::test(start_paused = true)]
async fn a_denied_creation_changes_nothing_and_a_denied_deletion_keeps_the_old_secret() {
    let p = Arc::new(platform());
    let deny_all = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::allow([]))
        .build();
    let report = secret_rotation(&deny_all, &targets(&p)).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(p.mutations().is_empty());

    let p = Arc::new(platform());
    let no_delete = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::allow_steps_anywhere([
            "create_secret",
            "repoint_workloads",
        ]))
        .build();
    let report = secret_rotation(&no_delete, &targets(&p)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert!(p.secret(&prod(), &name("db-creds")).is_some(), "kept");
    assert_eq!(
        p.secrets_used_by(&api()).into_iter().collect::<Vec<_>>(),
        [name("db-creds-v2")]
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("deleting it was denied"))
    );
    let _ = ApprovalRule::step_anywhere("x");
}

#[tokio::test(start_paused = true)]
async fn without_secret_versions_the_rotation_updates_the_secret_in_place_as_before() {
    let mut caps = PlatformCapabilities::all();
    caps.secret_versions = false;
    let p = Arc::new(platform().with_capabilities(caps));
    let report = secret_rotation(&execute(), &targets(&p)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let m = p.mutations();
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        m[0].starts_with("update_config prod/deployment/api"),
        "{m:?}"
    );
}
