//! Log filter benchmark: a container that has written 1 M log lines; count the lines matching
//! a regex with opsbook's streaming filter (`ComposePlatform::count_matching`) and with
//! `docker logs CONTAINER 2>&1 | grep -c PATTERN`, in one run.
//!
//! ```sh
//! cargo bench -p ops-compose --bench logs
//! ```
//!
//! Last line: `RESULT lines=1000000 opsbook_s=X docker_grep_s=Y ratio=R peak_rss_mb=M`, with
//! R = Y / X (above 1: opsbook is faster) and M the benchmark process's peak RSS, which does
//! not grow with the log's size (lines are counted as they stream by). `OPSBOOK_BENCH_LINES`
//! changes the line count.
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HealthConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    WaitContainerOptions,
};
use futures::StreamExt as _;
use ops_compose::{ComposePlatform, labels};
use ops_core::WorkloadRef;
use ops_core::platform::LogFilter;

/// Matches one line in ten (`... 7 ok`), the same in grep's basic regex and Rust's.
const PATTERN: &str = "7 ok$";

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[allow(clippy::too_many_lines, reason = "a benchmark reads top to bottom")]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let lines: u64 = std::env::var("OPSBOOK_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let image = std::env::var("OPSBOOK_IMAGE_DEMO_API")
        .unwrap_or_else(|_| "opsbook/demo-api:local".to_owned());
    let docker = Docker::connect_with_defaults()
        .expect("docker client")
        .negotiate_version()
        .await
        .expect("docker engine (run scripts/provision)");
    docker
        .inspect_image(&image)
        .await
        .unwrap_or_else(|e| panic!("image {image} missing ({e}); run scripts/provision"));

    let project = format!("bench-logs-{:04x}", fastrand::u16(..));
    let name = labels::container_name(&project, "writer", 1);
    let body = ContainerCreateBody {
        image: Some(image),
        entrypoint: Some(vec![
            "seq".into(),
            "-f".into(),
            "request %.0f ok".into(),
            "1".into(),
            lines.to_string(),
        ]),
        labels: Some(HashMap::from([
            (labels::PROJECT.to_owned(), project.clone()),
            (labels::SERVICE.to_owned(), "writer".to_owned()),
            (labels::CONTAINER_NUMBER.to_owned(), "1".to_owned()),
        ])),
        healthcheck: Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..HealthConfig::default()
        }),
        ..ContainerCreateBody::default()
    };
    let id = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await
        .expect("create the writer")
        .id;
    let t = Instant::now();
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await
        .expect("start");
    let _ = docker
        .wait_container(&id, None::<WaitContainerOptions>)
        .next()
        .await;
    eprintln!(
        "writer: {lines} lines logged in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let platform = ComposePlatform::builder()
        .with_request_timeout(Duration::from_secs(60))
        .build()
        .expect("platform");
    let instance = WorkloadRef::compose_service(&project, "writer")
        .unwrap()
        .instance(&name)
        .unwrap();
    let filter = LogFilter::new(PATTERN).unwrap();
    // One warm-up read each, so both start with the log in the page cache.
    let _ = platform
        .count_matching(&instance, &filter)
        .await
        .expect("count");

    let t = Instant::now();
    let ours = platform
        .count_matching(&instance, &filter)
        .await
        .expect("count");
    let opsbook_s = t.elapsed().as_secs_f64();
    let rss = peak_rss_mb();

    let shell = format!("docker logs {id} 2>&1 | grep -c '{PATTERN}'");
    let _ = Command::new("sh").args(["-c", &shell]).output();
    let t = Instant::now();
    let out = Command::new("sh")
        .args(["-c", &shell])
        .output()
        .expect("docker logs | grep");
    let docker_grep_s = t.elapsed().as_secs_f64();
    let theirs: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("grep -c output");

    let _ = docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    assert_eq!(ours, theirs, "opsbook and grep count the same lines");
    eprintln!("matched {ours} of {lines} lines with /{PATTERN}/");
    println!(
        "RESULT lines={lines} opsbook_s={opsbook_s:.3} docker_grep_s={docker_grep_s:.3} ratio={:.2} peak_rss_mb={rss:.1}",
        docker_grep_s / opsbook_s
    );
}
