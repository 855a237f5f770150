//! Logs benchmark: the lines of a compose service's log that match a filter, read the way
//! runbooks read them, against the shell.
//!
//! ```sh
//! cargo bench -p ops-compose --bench logs      # or scripts/bench compose-logs
//! ```
//!
//! A container of a compose service writes `OPSBOOK_BENCH_LINES` lines (default 1 000 000;
//! 20 000 with `OPSBOOK_BENCH_QUICK=1`), `request N ok`; the filter `7 ok$` keeps one in ten
//! (the same regex for grep and Rust). Per round (`OPSBOOK_BENCH_ROUNDS`, default 3), in an
//! order rotated each round:
//! - **opsbook**: `Platform::logs` with the filter: timestamps parsed, one `LogLine` per kept
//!   line, instances merged (what runbooks call);
//! - **docker logs | grep**: `docker logs C 2>&1 | grep '7 ok$'`, lines out;
//! - **docker logs | grep -c**: the same counting only (the cheapest shell form);
//! - **opsbook follow**: `Platform::follow_logs` of the stopped container, drained to its end;
//! - **docker logs -f | grep**: its shell counterpart;
//! - **memory**: the peak resident growth of this process (kernel `VmHWM`, reset through
//!   `/proc/self/clear_refs` before each read) while `Platform::logs` reads the whole log and
//!   while it reads its last quarter (`tail`), with a filter that keeps almost nothing: the
//!   difference is what reading 4× more log costs in memory, which must stay flat.
//!
//! Before timing, opsbook's kept lines are checked against grep's, line by line, and every
//! line must carry its timestamp. Last line: `RESULT lines=… matched=… opsbook_s=…
//! docker_grep_s=… docker_grep_c_s=… follow_s=… docker_follow_grep_s=… mem_full_mib=…
//! mem_quarter_mib=… mem_growth_mib=…` (per-round lists).
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
use ops_core::platform::{LogFilter, LogOptions};
use ops_core::{Platform as _, WorkloadRef};
use ops_tests::bench::{PeakRss, ResultLine, Samples, order, rounds, size};

/// Matches one line in ten (`... 7 ok`), the same in grep's basic regex and Rust's.
const PATTERN: &str = "7 ok$";
/// Matches one line in 100 000: the memory legs read the log, not the result.
const RARE: &str = "99999 ok$";

/// `docker logs [-f] ID 2>&1 | grep [-c] PATTERN` through `sh`, as a user types it; stdout.
fn shell(id: &str, follow: bool, count: bool) -> (Duration, String) {
    let script = format!(
        "docker logs {}{id} 2>&1 | grep {}'{PATTERN}'",
        if follow { "-f " } else { "" },
        if count { "-c " } else { "" }
    );
    let t = Instant::now();
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh runs");
    let took = t.elapsed();
    assert!(out.status.success(), "{script}: {out:?}");
    (took, String::from_utf8(out.stdout).expect("utf-8"))
}

/// A container of service `writer` in a fresh compose project that has written `lines` lines
/// and exited; `(project, container name, id)`.
async fn writer(docker: &Docker, image: String, lines: usize) -> (String, String, String) {
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
    (project, name, id)
}

#[allow(clippy::too_many_lines, reason = "a benchmark reads top to bottom")]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let lines = size("OPSBOOK_BENCH_LINES", 1_000_000, 20_000);
    let rounds = rounds();
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
    let (project, _name, id) = writer(&docker, image, lines).await;

    let platform = ComposePlatform::builder()
        .with_request_timeout(Duration::from_secs(60))
        .build()
        .expect("platform");
    let service = WorkloadRef::compose_service(&project, "writer").unwrap();
    let opts = LogOptions::default().with_filter(LogFilter::new(PATTERN).unwrap());
    let rare = LogOptions::default().with_filter(LogFilter::new(RARE).unwrap());
    let quarter = u32::try_from(lines / 4).unwrap_or(u32::MAX);

    // Correctness first (and a warm-up for both): opsbook keeps exactly grep's lines.
    let ours = platform.logs(&service, opts.clone()).await.expect("logs");
    let (_, grep) = shell(&id, false, false);
    let theirs: Vec<&str> = grep.lines().collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "opsbook and grep keep as many lines"
    );
    assert!(
        ours.iter().zip(&theirs).all(|(o, t)| o.text == *t),
        "opsbook and grep keep the same lines"
    );
    assert!(
        ours.iter().all(|l| l.timestamp.is_some()),
        "every line has its timestamp"
    );
    assert_eq!(ours.len(), (lines + 3) / 10, "one line in ten matches");
    let matched = ours.len();
    drop(ours);

    let (mut s_ours, mut s_grep, mut s_count) =
        (Samples::default(), Samples::default(), Samples::default());
    let (mut s_follow, mut s_follow_grep) = (Samples::default(), Samples::default());
    let (mut mem_full, mut mem_quarter, mut mem_growth) =
        (Samples::default(), Samples::default(), Samples::default());
    for round in 0..rounds {
        for method in order(round, 6) {
            match method {
                0 => {
                    let t = Instant::now();
                    let got = platform.logs(&service, opts.clone()).await.expect("logs");
                    s_ours.push_secs(t.elapsed());
                    assert_eq!(got.len(), matched);
                }
                1 => {
                    let (took, out) = shell(&id, false, false);
                    s_grep.push_secs(took);
                    assert_eq!(out.lines().count(), matched);
                }
                2 => {
                    let (took, out) = shell(&id, false, true);
                    s_count.push_secs(took);
                    assert_eq!(out.trim().parse::<usize>().ok(), Some(matched));
                }
                3 => {
                    let t = Instant::now();
                    let got: Vec<_> = platform
                        .follow_logs(&service, opts.clone())
                        .await
                        .expect("follow")
                        .collect()
                        .await;
                    s_follow.push_secs(t.elapsed());
                    assert_eq!(got.iter().filter(|l| l.is_ok()).count(), matched);
                }
                4 => {
                    let (took, out) = shell(&id, true, false);
                    s_follow_grep.push_secs(took);
                    assert_eq!(out.lines().count(), matched);
                }
                _ => {
                    let peak = PeakRss::start();
                    let all = platform.logs(&service, rare.clone()).await.expect("logs");
                    let full = peak.growth_mib();
                    drop(all);
                    let peak = PeakRss::start();
                    let last = platform
                        .logs(&service, rare.clone().with_tail(quarter))
                        .await
                        .expect("logs");
                    let part = peak.growth_mib();
                    drop(last);
                    mem_full.push(full);
                    mem_quarter.push(part);
                    mem_growth.push(full - part);
                }
            }
        }
        eprintln!(
            "round {round}: opsbook {:.3}s, docker logs | grep {:.3}s, | grep -c {:.3}s, follow {:.3}s, docker logs -f | grep {:.3}s, peak RSS growth {:.1} MiB (whole) vs {:.1} MiB (quarter)",
            s_ours.last(),
            s_grep.last(),
            s_count.last(),
            s_follow.last(),
            s_follow_grep.last(),
            mem_full.last(),
            mem_quarter.last()
        );
    }

    let _ = docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    ResultLine::new()
        .value("lines", lines)
        .value("matched", matched)
        .samples("opsbook_s", &s_ours, 3)
        .samples("docker_grep_s", &s_grep, 3)
        .samples("docker_grep_c_s", &s_count, 3)
        .samples("follow_s", &s_follow, 3)
        .samples("docker_follow_grep_s", &s_follow_grep, 3)
        .samples("mem_full_mib", &mem_full, 1)
        .samples("mem_quarter_mib", &mem_quarter, 1)
        .samples("mem_growth_mib", &mem_growth, 1)
        .print();
}
