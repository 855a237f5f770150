//! Inspection beyond workloads (issue 14 item 7) against the real Docker engine: services with
//! their published ports and healthy containers, the engine root's free space against `df`,
//! and `docker system df` against the docker CLI. Skips (prints why) without an engine or
//! images, unless CI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::process::Command;
use std::time::Duration;

use ops_core::platform::{InspectOptions, Inspection, RolloutOptions, Section};
use ops_core::{Platform, PlatformExt as _};
use support::Spec;

const WAIT: Duration = Duration::from_secs(90);

async fn inspect(p: &support::Project) -> Inspection {
    tokio::time::timeout(
        WAIT,
        p.platform
            .inspect(&p.name.parse().unwrap(), InspectOptions::default()),
    )
    .await
    .expect("bounded")
    .expect("inspect")
}

fn run(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_list_published_ports_and_ready_containers() {
    let p = project_or_skip!("insp");
    let published = Spec {
        publish: true,
        ..Spec::default()
    };
    p.add("api", 1, &published).await;
    p.add("api", 2, &published).await;
    p.add(
        "worker",
        1,
        &Spec {
            health_cmd: Some("exit 1".to_owned()),
            ..Spec::script("sleep 120")
        },
    )
    .await;
    let rollout = RolloutOptions::default()
        .with_timeout(Duration::from_secs(60))
        .with_poll_interval(Duration::from_millis(250));
    tokio::time::timeout(WAIT, p.platform.wait_rolled_out(&p.service("api"), rollout))
        .await
        .expect("bounded")
        .unwrap();
    // The worker's HEALTHCHECK fails after its first run (1 s interval).
    tokio::time::sleep(Duration::from_secs(3)).await;

    let i = inspect(&p).await;
    let services = i.services.read().expect("services read");
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["api", "worker"]);
    let api = &services[0];
    assert_eq!((api.ready.len(), api.not_ready.len()), (2, 0), "{api:?}");
    let worker = &services[1];
    assert_eq!(
        (worker.ready.len(), worker.not_ready.len()),
        (0, 1),
        "{worker:?}"
    );
    assert!(worker.ports.is_empty());
    // The published ports are the ones `docker port` shows, each once.
    let mut expected: Vec<u16> = Vec::new();
    for n in 1..=2 {
        let out = run(&["docker", "port", &format!("{}-api-{n}", p.name), "8080/tcp"]);
        for line in out.lines() {
            expected.push(line.rsplit(':').next().unwrap().trim().parse().unwrap());
        }
    }
    expected.sort_unstable();
    expected.dedup();
    let mut ours: Vec<u16> = api.ports.iter().map(|p| p.port).collect();
    ours.sort_unstable();
    assert_eq!(ours, expected);
    assert!(
        api.ports
            .iter()
            .all(|p| p.target == "8080" && p.protocol == "TCP")
    );
    // Compose has no nodes, quotas or policies; the project's events are the engine's.
    assert!(matches!(i.nodes, Section::Unsupported(_)));
    assert!(matches!(i.quotas, Section::Unsupported(_)));
    assert!(matches!(i.network_policies, Section::Unsupported(_)));
    let events = i.events.read().expect("events read");
    assert!(
        events.iter().filter(|e| e.reason == "start").count() >= 3,
        "{events:?}"
    );
    let stamps: Vec<_> = events.iter().map(|e| e.at).collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted, "newest last");
}

/// `df -B1 --output=size,used,avail` of `path`: (size, used, available) in bytes.
fn df(path: &str) -> (u64, u64, u64) {
    let out = run(&["df", "-B1", "--output=size,used,avail", path]);
    let cols: Vec<u64> = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|c| c.parse().unwrap())
        .collect();
    (cols[0], cols[1], cols[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_roots_free_space_is_what_df_reports() {
    let p = project_or_skip!("disk");
    let i = inspect(&p).await;
    let disks = match &i.disks {
        Section::Read(d) => d,
        other => panic!("a local engine's root is measured: {other:?}"),
    };
    assert_eq!(disks.len(), 1);
    let d = &disks[0];
    let root = run(&["docker", "info", "--format", "{{.DockerRootDir}}"]);
    let root = root.trim();
    assert_eq!(d.what, format!("docker root {root}"));
    let (size, used, avail) = df(root);
    assert_eq!(d.total_bytes, size, "df's size");
    // Other processes write meanwhile: within 64 MiB.
    let near = |a: u64, b: u64| a.abs_diff(b) < 64 << 20;
    assert!(
        near(d.used_bytes(), used),
        "used {} vs df {used}",
        d.used_bytes()
    );
    assert!(
        near(d.available_bytes, avail),
        "avail {} vs df {avail}",
        d.available_bytes
    );
    let pcent = run(&["df", "--output=pcent", root]);
    let pcent: u64 = pcent
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(
        d.percent_used().unwrap().abs_diff(pcent) <= 1,
        "{:?} vs df {pcent}%",
        d.percent_used()
    );
}

/// `docker system df`'s human sizes (`1.23GB`, `512MB`, `0B`) in bytes, as the CLI rounds them.
fn human(size: &str) -> f64 {
    let split = size.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (n, unit) = size.split_at(split);
    let n: f64 = n.parse().unwrap();
    let factor = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        other => panic!("unit {other}"),
    };
    n * factor
}

/// Our (count, bytes) of a `docker system df` row; the build cache's count is not compared
/// (the CLI counts records, we keep bytes only).
fn pick(kind: &str, d: &ops_core::platform::EngineDiskUsage) -> (Option<u64>, u64) {
    match kind {
        "Images" => (Some(d.images), d.images_bytes),
        "Containers" => (Some(d.containers), d.containers_bytes),
        "Local Volumes" => (Some(d.volumes), d.volumes_bytes),
        "Build Cache" => (None, d.build_cache_bytes),
        other => panic!("type {other}"),
    }
}

#[allow(
    clippy::cast_precision_loss,
    reason = "sizes compared within a percent"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_df_is_what_the_docker_cli_reports() {
    let p = project_or_skip!("sysdf");
    // Other tests create and remove containers meanwhile: the CLI's figure must lie between
    // two of our readings, one before and one after it.
    let before = inspect(&p).await.engine_disk_usage;
    let cli = run(&[
        "docker",
        "system",
        "df",
        "--format",
        "{{.Type}}\t{{.TotalCount}}\t{{.Size}}",
    ]);
    let after = inspect(&p).await.engine_disk_usage;
    let (before, after) = (
        before.read().expect("df read"),
        after.read().expect("df read"),
    );
    for line in cli.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let (count, size) = (cols[1].parse::<u64>().unwrap(), human(cols[2]));
        let (c1, s1) = pick(cols[0], before);
        let (c2, s2) = pick(cols[0], after);
        if let (Some(c1), Some(c2)) = (c1, c2) {
            assert!(
                (c1.min(c2)..=c1.max(c2)).contains(&count),
                "{}: cli {count}, ours {c1}..{c2}",
                cols[0]
            );
        }
        // The CLI prints three significant digits: within 1 % (and 1 kB) of a reading.
        let (lo, hi) = (s1.min(s2) as f64, s1.max(s2) as f64);
        assert!(
            size >= lo * 0.99 - 1e3 && size <= hi * 1.01 + 1e3,
            "{}: cli {} ({size}), ours {lo}..{hi}",
            cols[0],
            cols[2]
        );
    }
}
