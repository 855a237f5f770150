//! Inspection beyond workloads (issue 14 item 7) in `morning_checks`, over the fakes: the
//! seeds' disk lines, nodes, quotas and endpoints become findings; a missing or unreadable
//! part never hides the others; nothing is ever changed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default,
    reason = "tests fail loudly; non-exhaustive types are built by assignment"
)]

use std::sync::Arc;

use ops_core::platform::{
    DiskSpace, Endpoint, InspectOptions, Inspection, NodeStatus, Platform, PlatformCapabilities,
    PlatformEvent, QuotaStatus, QuotaUse, Resources, Section, ServiceEndpoints, WorkloadStatus,
};
use ops_core::run::{FindingLevel, Mode, Report, RunContext, RunOutcome};
use ops_core::runbooks::{RunbookConfig, Targets, morning_checks};
use ops_core::testing::FakePlatform;
use ops_core::{ErrorKind, Namespace, WorkloadRef};

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn prod() -> Namespace {
    "prod".parse().unwrap()
}

fn execute() -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .build()
}

const GIB: u64 = 1 << 30;

/// A disk of 100 GiB with `used` GiB used and nothing reserved.
fn disk(what: &str, used: u64) -> DiskSpace {
    DiskSpace::new(what, 100 * GIB, (100 - used) * GIB, (100 - used) * GIB)
}

fn healthy_node(name: &str) -> NodeStatus {
    let mut n = NodeStatus::new(name);
    n.ready = Some(true);
    n.allocatable = Resources::new(4000, 8 * GIB);
    n.requested = Resources::new(1000, 2 * GIB);
    n
}

fn served(name: &str) -> ServiceEndpoints {
    let mut s = ServiceEndpoints::new(name);
    s.ready.push(Endpoint::new(
        Some(format!("{name}-1")),
        Some("10.0.0.1".into()),
    ));
    s
}

/// Everything fine: disks at 50 %, one healthy node, a quota at half, a served service.
fn calm() -> Inspection {
    let mut i = Inspection::default();
    i.services = Section::Read(vec![served("api")]);
    i.nodes = Section::Read(vec![healthy_node("node-1")]);
    i.quotas = Section::Read(vec![QuotaStatus::new(
        "compute",
        vec![QuotaUse::new("pods", "5", "10", Some(0.5))],
    )]);
    i.network_policies = Section::Read(vec!["default-deny".to_owned()]);
    i.disks = Section::Read(vec![disk("docker root /var/lib/docker", 50)]);
    i
}

fn targets(platform: Arc<FakePlatform>) -> Targets {
    Targets::new(platform, api())
}

fn platform(inspection: Inspection) -> Arc<FakePlatform> {
    Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_inspection(&prod(), inspection),
    )
}

fn level_of(report: &Report, prefix: &str) -> FindingLevel {
    report
        .findings
        .iter()
        .find(|f| f.title.starts_with(prefix))
        .unwrap_or_else(|| panic!("no finding {prefix:?} in\n{}", report.to_markdown()))
        .level
}

#[tokio::test(start_paused = true)]
async fn a_calm_namespace_is_healthy_and_inspected_once() {
    let p = platform(calm());
    let report = morning_checks(&execute(), &targets(Arc::clone(&p)))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Healthy,
        "{}",
        report.to_markdown()
    );
    assert!(report.step("inspect").is_some(), "{}", report.to_markdown());
    assert_eq!(level_of(&report, "disk docker root"), FindingLevel::Info);
    assert_eq!(level_of(&report, "node node-1"), FindingLevel::Info);
    assert_eq!(
        level_of(&report, "1 network policy: default-deny"),
        FindingLevel::Info
    );
    assert_eq!(
        p.calls()
            .iter()
            .filter(|c| c.starts_with("inspect "))
            .count(),
        1
    );
    assert!(p.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn disks_are_judged_against_the_seeds_80_85_90_lines() {
    let mut i = calm();
    i.disks = Section::Read(vec![
        disk("a", 79),
        disk("b", 81),
        disk("c", 86),
        disk("d", 91),
    ]);
    let report = morning_checks(&execute(), &targets(platform(i)))
        .await
        .unwrap();
    assert_eq!(level_of(&report, "disk a: 79% used"), FindingLevel::Info);
    assert_eq!(level_of(&report, "disk b: 81% used"), FindingLevel::Warning);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.starts_with("disk b") && f.title.ends_with("(over the 80% line)"))
    );
    assert_eq!(level_of(&report, "disk c: 86% used"), FindingLevel::Warning);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.starts_with("disk c") && f.title.ends_with("(over the 85% line)"))
    );
    assert_eq!(
        level_of(&report, "disk d: 91% used"),
        FindingLevel::Critical
    );
    assert_eq!(report.outcome, RunOutcome::Unresolved);
}

#[tokio::test(start_paused = true)]
async fn disk_lines_are_configuration() {
    let mut i = calm();
    i.disks = Section::Read(vec![disk("d", 91)]);
    let mut config = RunbookConfig::default();
    config.inspection.disk_warn = 0.92;
    config.inspection.disk_high = 0.95;
    config.inspection.disk_critical = 0.98;
    let report = morning_checks(&execute(), &targets(platform(i)).with_config(config))
        .await
        .unwrap();
    assert_eq!(level_of(&report, "disk d: 91% used"), FindingLevel::Info);
    assert_eq!(report.outcome, RunOutcome::Healthy);
}

#[tokio::test(start_paused = true)]
async fn nodes_quotas_and_endpoints_become_findings() {
    let mut i = calm();
    let mut pressed = healthy_node("node-2");
    pressed.disk_pressure = true;
    let mut crowded = healthy_node("node-3");
    crowded.requested = Resources::new(3600, 2 * GIB);
    let mut gone = healthy_node("node-4");
    gone.ready = Some(false);
    i.nodes = Section::Read(vec![healthy_node("node-1"), pressed, crowded, gone]);
    i.quotas = Section::Read(vec![
        QuotaStatus::new(
            "compute",
            vec![
                QuotaUse::new("pods", "10", "10", Some(1.0)),
                QuotaUse::new("requests.cpu", "1", "4", Some(0.25)),
            ],
        ),
        QuotaStatus::new(
            "objects",
            vec![QuotaUse::new("configmaps", "17", "20", Some(0.85))],
        ),
    ]);
    let mut dark = ServiceEndpoints::new("worker");
    dark.not_ready
        .push(Endpoint::new(Some("worker-1".into()), None));
    let mut half = served("web");
    half.not_ready
        .push(Endpoint::new(Some("web-2".into()), None));
    i.services = Section::Read(vec![served("api"), dark, half]);
    let report = morning_checks(&execute(), &targets(platform(i)))
        .await
        .unwrap();
    let md = report.to_markdown();
    assert_eq!(level_of(&report, "node node-1"), FindingLevel::Info, "{md}");
    assert_eq!(level_of(&report, "node node-2"), FindingLevel::Critical);
    assert!(md.contains("DiskPressure"), "{md}");
    assert_eq!(
        level_of(&report, "node node-3: cpu 90% requested"),
        FindingLevel::Warning
    );
    assert_eq!(level_of(&report, "node node-4"), FindingLevel::Critical);
    assert_eq!(
        level_of(&report, "resource quota compute: fullest pods 10/10"),
        FindingLevel::Critical
    );
    assert_eq!(
        level_of(&report, "resource quota objects"),
        FindingLevel::Warning
    );
    assert_eq!(
        level_of(&report, "service worker has no ready endpoint"),
        FindingLevel::Critical
    );
    assert_eq!(
        level_of(&report, "service web: 1 ready, 1 not ready"),
        FindingLevel::Warning
    );
    assert_eq!(
        level_of(&report, "1 of 3 services have every endpoint ready"),
        FindingLevel::Info
    );
    assert_eq!(report.outcome, RunOutcome::Unresolved);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_part_is_a_warning_and_the_others_are_still_reported() {
    let mut i = calm();
    i.nodes = Section::Unreadable("k8s: list nodes forbidden".to_owned());
    i.quotas = Section::unsupported("compose has none");
    let report = morning_checks(&execute(), &targets(platform(i)))
        .await
        .unwrap();
    let nodes = report
        .findings
        .iter()
        .find(|f| f.title == "nodes could not be read")
        .expect("a finding for the unreadable nodes");
    assert_eq!(nodes.level, FindingLevel::Warning);
    assert!(nodes.evidence.iter().any(|e| e.contains("forbidden")));
    assert!(
        !report.findings.iter().any(|f| f.title.contains("quota")),
        "an unsupported part says nothing"
    );
    assert_eq!(level_of(&report, "disk docker root"), FindingLevel::Info);
}

#[tokio::test(start_paused = true)]
async fn a_failed_inspection_is_a_finding_not_a_failed_run() {
    let p = platform(calm());
    // Three attempts: every retry of the read step fails.
    for _ in 0..3 {
        p.faults().fail_next("inspect", ErrorKind::Unavailable);
    }
    let report = morning_checks(&execute(), &targets(Arc::clone(&p)))
        .await
        .unwrap();
    assert_eq!(
        level_of(&report, "namespace inspection failed"),
        FindingLevel::Warning
    );
    assert_eq!(
        level_of(&report, "prod/deployment/api: 2/2 ready"),
        FindingLevel::Info
    );
}

#[tokio::test(start_paused = true)]
async fn a_platform_that_cannot_inspect_is_not_asked() {
    let mut caps = PlatformCapabilities::all();
    caps.inspect = false;
    let p = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_capabilities(caps),
    );
    let report = morning_checks(&execute(), &targets(Arc::clone(&p)))
        .await
        .unwrap();
    assert!(report.step("inspect").is_none());
    assert!(!p.calls().iter().any(|c| c.starts_with("inspect ")));
    assert_eq!(report.outcome, RunOutcome::Healthy);
    let err = p
        .inspect(&prod(), InspectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_inspects_through_the_read_only_view() {
    let mut i = calm();
    i.disks = Section::Read(vec![disk("d", 91)]);
    let p = platform(i);
    let report = morning_checks(&RunContext::builder().build(), &targets(Arc::clone(&p)))
        .await
        .unwrap();
    // The read-only view forwards the read: without it the default `Unsupported` would hide
    // the full disk.
    assert_eq!(
        level_of(&report, "disk d: 91% used"),
        FindingLevel::Critical
    );
    assert!(p.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_fake_reports_the_namespaces_events_newest_last_within_the_limit() {
    let mut events = Vec::new();
    for (i, reason) in ["Pulled", "BackOff", "Killing"].iter().enumerate() {
        let mut e = PlatformEvent::new(*reason, "m", "pod/api-1");
        e.at = jiff::Timestamp::from_second(1_000 + i64::try_from(i).unwrap()).ok();
        e.warning = *reason == "BackOff";
        events.push(e);
    }
    events.reverse();
    let p = FakePlatform::default()
        .with_workload(WorkloadStatus::healthy(api(), 2))
        .with_events(&api(), events);
    let got = p
        .inspect(&prod(), InspectOptions::default().with_events_limit(2))
        .await
        .unwrap();
    let reasons: Vec<_> = got
        .events
        .read()
        .unwrap()
        .iter()
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(reasons, ["BackOff", "Killing"]);
}

#[test]
fn disk_use_is_counted_as_df_counts_it() {
    // 1000 blocks, 100 free of which 50 reserved: df shows 900 used, 50 available, 95%.
    let d = DiskSpace::new("x", 1000, 100, 50);
    assert_eq!(d.used_bytes(), 900);
    assert_eq!(d.percent_used(), Some(95));
    assert!((d.used_ratio().unwrap() - 900.0 / 950.0).abs() < 1e-12);
    assert_eq!(DiskSpace::new("empty", 0, 0, 0).used_ratio(), None);
}
