//! Evidence capture over the fake platform (issue 14 §evidence): what goes in, that the real
//! `sha256sum -c` accepts the manifest (and catches a changed file), that nothing secret goes
//! in, that capture only reads, and that a bundle is never overwritten or left half-written.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::path::Path;
use std::process::Command;

use ops_core::ErrorKind;
use ops_core::evidence::{EvidenceOptions, capture};
use ops_core::platform::{
    ConfigTarget, ConfigUpdate, LogLine, Platform, PlatformEvent, WorkloadStatus,
};
use ops_core::testing::FakePlatform;
use ops_core::{ResourceName, WorkloadRef};

const CANARY: &str = "canary-8c1f0e7d2b";

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn line(instance: &str, second: i64, text: &str) -> LogLine {
    LogLine::new(
        ResourceName::new(instance).unwrap(),
        Some(jiff::Timestamp::from_second(1_800_000_000 + second).unwrap()),
        text,
    )
}

async fn seeded() -> FakePlatform {
    let api = api();
    let web: WorkloadRef = "prod/deployment/web".parse().unwrap();
    let mut event = PlatformEvent::new(
        "BackOff",
        "Back-off restarting failed container",
        "pod/api-1",
    );
    event.warning = true;
    let p = FakePlatform::default()
        .with_workload(WorkloadStatus::healthy(api.clone(), 2))
        .with_workload(WorkloadStatus::healthy(web.clone(), 1))
        .with_logs(
            &api,
            vec![
                line("api-0", 1, "GET /health 200"),
                line("api-1", 2, &format!("connecting with password={CANARY}")),
                line("api-1", 3, "panic: db down"),
            ],
        )
        .with_logs(&web, vec![line("web-0", 1, "ready")])
        .with_events(&api, vec![event]);
    // The fake keeps configuration as a secret would be kept; the export must show key names only.
    p.update_config(
        &api,
        ConfigUpdate::new(ConfigTarget::Env).set("DB_PASSWORD", CANARY),
    )
    .await
    .unwrap();
    p
}

/// Everything of `api`'s namespace into `dest`.
async fn capture_all(
    p: &FakePlatform,
    dest: &Path,
    opts: &EvidenceOptions,
) -> Result<ops_core::evidence::EvidenceBundle, ops_core::OpsError> {
    capture(p, api().namespace(), &[], dest, opts).await
}

fn every_file(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn sha256sum_available() -> bool {
    let found = Command::new("sha256sum").arg("--version").output().is_ok();
    assert!(
        found || std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but sha256sum is not on the PATH"
    );
    found
}

#[tokio::test]
async fn a_bundle_holds_logs_of_every_instance_events_and_the_export_and_sha256sum_accepts_it() {
    let p = seeded().await;
    let before = p.mutations().len();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("evidence-1");
    let bundle = capture_all(&p, &dest, &EvidenceOptions::default())
        .await
        .unwrap();

    let paths: Vec<&str> = bundle.files.iter().map(|f| f.path.as_str()).collect();
    for expected in [
        "bundle.json",
        "workloads/api.json",
        "workloads/web.json",
        "events/api.json",
        "logs/api/api-0.log",
        "logs/api/api-1.log",
        "logs/web/web-0.log",
        "export/deployment-api.json",
        "export/secret-api-config.json",
        "export/notes.txt",
        "SHA256SUMS",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    let api1 = std::fs::read_to_string(dest.join("logs/api/api-1.log")).unwrap();
    assert!(api1.contains("panic: db down"), "{api1}");
    assert!(
        !api1.contains("GET /health"),
        "one file per instance: {api1}"
    );
    let events = std::fs::read_to_string(dest.join("events/api.json")).unwrap();
    assert!(events.contains("BackOff"), "{events}");
    let secret = std::fs::read_to_string(dest.join("export/secret-api-config.json")).unwrap();
    assert!(
        secret.contains("DB_PASSWORD"),
        "key names are kept: {secret}"
    );

    // Read-only on the system under investigation.
    assert_eq!(p.mutations().len(), before, "{:?}", p.mutations());
    // Nothing left beside the bundle.
    let beside: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(beside.len(), 1, "only the bundle, no temporary directory");

    if sha256sum_available() {
        let ok = Command::new("sha256sum")
            .args(["-c", "--strict", "SHA256SUMS"])
            .current_dir(&dest)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "sha256sum -c: {}",
            String::from_utf8_lossy(&ok.stdout)
        );
        // Every file except the manifest is listed.
        let listed = String::from_utf8_lossy(&ok.stdout).lines().count();
        assert_eq!(listed, every_file(&dest).len() - 1);

        // A changed file is caught.
        std::fs::write(dest.join("logs/api/api-0.log"), "tampered\n").unwrap();
        let bad = Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(&dest)
            .output()
            .unwrap();
        assert!(!bad.status.success());
        assert!(String::from_utf8_lossy(&bad.stdout).contains("logs/api/api-0.log: FAILED"));
    }
}

#[tokio::test]
async fn no_secret_value_reaches_the_bundle_or_the_tarball() {
    let p = seeded().await;
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("b");
    let bundle = capture_all(&p, &dest, &EvidenceOptions::default().with_tarball(true))
        .await
        .unwrap();
    let (tar, sha) = bundle.tarball.clone().expect("a tarball");
    let mut files = every_file(tmp.path());
    files.sort();
    assert!(files.contains(&tar));
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "the secret value is in {}",
            f.display()
        );
    }
    assert!(!format!("{bundle:?}").contains(CANARY));
    // The log line is there, with its value hidden.
    let api1 = std::fs::read_to_string(dest.join("logs/api/api-1.log")).unwrap();
    assert!(api1.contains("connecting with password="), "{api1}");
    if sha256sum_available() {
        let ok = Command::new("sha256sum")
            .args(["-c", "b.tar.sha256"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(
            std::fs::read_to_string(tmp.path().join("b.tar.sha256"))
                .unwrap()
                .starts_with(&sha)
        );
        // The tarball unpacks to the same bundle, which checks.
        let out = tempfile::tempdir().unwrap();
        let untar = Command::new("tar")
            .args(["-xf"])
            .arg(&tar)
            .arg("-C")
            .arg(out.path())
            .status()
            .unwrap();
        assert!(untar.success());
        let ok = Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(out.path().join("b"))
            .output()
            .unwrap();
        assert!(ok.status.success());
    }
}

#[tokio::test]
async fn an_existing_bundle_is_never_overwritten_and_a_failed_capture_leaves_nothing() {
    let p = seeded().await;
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("b");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("keep"), "x").unwrap();
    let err = capture_all(&p, &dest, &EvidenceOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(std::fs::read_to_string(dest.join("keep")).unwrap(), "x");

    // The platform fails while logs are read: nothing at the destination, nothing beside it.
    let other = tmp.path().join("c");
    p.faults().fail_always("logs", ErrorKind::Unavailable);
    let err = capture_all(&p, &other, &EvidenceOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["b".to_owned()]);
}

#[tokio::test]
async fn chosen_workloads_only_and_never_outside_the_namespace() {
    let p = seeded().await;
    let tmp = tempfile::tempdir().unwrap();
    let bundle = capture(
        &p,
        api().namespace(),
        &[api()],
        &tmp.path().join("b"),
        &EvidenceOptions::default().with_export(false),
    )
    .await
    .unwrap();
    assert!(bundle.files.iter().all(|f| !f.path.contains("web")));
    assert!(bundle.files.iter().all(|f| !f.path.starts_with("export/")));
    let elsewhere: WorkloadRef = "dev/deployment/api".parse().unwrap();
    let err = capture(
        &p,
        api().namespace(),
        &[elsewhere],
        &tmp.path().join("c"),
        &EvidenceOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

mod runbook {
    use std::sync::Arc;

    use ops_core::evidence::EvidenceOptions;
    use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
    use ops_core::runbooks::{Targets, evidence_capture};

    use super::{api, seeded};

    async fn run(mode: Mode, approver: ApprovalPolicy) -> (RunOutcome, usize, usize) {
        let p = Arc::new(seeded().await);
        let before = p.mutations().len();
        let dir = tempfile::tempdir().unwrap();
        let ctx = RunContext::builder()
            .mode(mode)
            .allow_volatile_journal()
            .approver(approver)
            .build();
        let t = Targets::new(Arc::clone(&p) as _, api());
        let report = evidence_capture(
            &ctx,
            &t,
            api().namespace(),
            &[],
            dir.path(),
            &EvidenceOptions::default(),
        )
        .await
        .unwrap();
        let written = std::fs::read_dir(dir.path()).unwrap().count();
        (report.outcome, written, p.mutations().len() - before)
    }

    #[tokio::test]
    async fn evidence_capture_plans_in_a_dry_run_writes_when_approved_and_never_changes_the_platform()
     {
        assert_eq!(
            run(Mode::DryRun, ApprovalPolicy::DenyAll).await,
            (RunOutcome::Planned, 0, 0)
        );
        assert_eq!(
            run(Mode::Execute, ApprovalPolicy::DenyAll).await,
            (RunOutcome::Unresolved, 0, 0)
        );
        assert_eq!(
            run(Mode::Execute, ApprovalPolicy::approve_all("oncall")).await,
            (RunOutcome::Recovered, 1, 0)
        );
    }
}

mod ids {
    use ops_core::platform::LockdownId;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lockdown_ids_never_panic_and_what_is_accepted_round_trips(s in "\\PC{0,60}") {
            if let Ok(id) = s.parse::<LockdownId>() {
                prop_assert_eq!(id.as_str(), s.as_str());
                let json = serde_json::to_string(&id).unwrap();
                prop_assert_eq!(serde_json::from_str::<LockdownId>(&json).unwrap(), id);
            }
        }

        #[test]
        fn generated_lockdown_ids_parse(secs in 0i64..4_000_000_000) {
            let id = LockdownId::generate(jiff::Timestamp::from_second(secs).unwrap());
            prop_assert_eq!(id.as_str().parse::<LockdownId>().unwrap(), id);
        }

        #[test]
        fn lockdown_ids_of_the_allowed_shape_are_accepted(s in "[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?") {
            prop_assert!(s.parse::<LockdownId>().is_ok());
        }
    }
}
