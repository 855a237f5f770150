//! Fan-out benchmark: 500 local HTTP endpoints that each answer after 50 ms, checked with
//! `check_all` against a sequential `curl` loop over the same endpoints.
//!
//! `cargo bench -p ops-probes --bench fanout`. The last line is
//! `RESULT endpoints=500 wall_ms=X single_check_ms=Y ratio=R cpu_ms_per_probe=C speedup_vs_curl_loop=S`
//! with R = X / Y (goal R <= 3, C <= 1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    reason = "benchmark binary"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use ops_core::Probe;
use ops_probes::{BulkOptions, HttpProbe, check_all};

const ENDPOINTS: usize = 500;
const DELAY: Duration = Duration::from_millis(50);

/// CPU time (user + system) of this process, in milliseconds, from /proc/self/stat.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks * 10.0 // USER_HZ is 100 on Linux
}

async fn endpoint() -> u16 {
    let router = Router::new().route(
        "/",
        get(|| async {
            tokio::time::sleep(DELAY).await;
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let mut ports = Vec::with_capacity(ENDPOINTS);
    for _ in 0..ENDPOINTS {
        ports.push(endpoint().await);
    }
    let probes: Vec<Arc<dyn Probe>> = ports
        .iter()
        .map(|p| {
            Arc::new(
                HttpProbe::builder(&format!("http://127.0.0.1:{p}/"))
                    .with_timeout(Duration::from_secs(10))
                    .build()
                    .unwrap(),
            ) as Arc<dyn Probe>
        })
        .collect();

    // Warm the shared client once (first use builds it), on an endpoint not used below.
    let warm = endpoint().await;
    let warm = HttpProbe::builder(&format!("http://127.0.0.1:{warm}/"))
        .build()
        .unwrap();
    assert!(warm.check().await.unwrap().outcome.is_up());

    // One check on a cold endpoint: median of five.
    let mut singles = Vec::new();
    for p in probes.iter().rev().take(5) {
        let t = Instant::now();
        let r = p.check().await.unwrap();
        singles.push(t.elapsed());
        assert!(r.outcome.is_up(), "{}", r.detail);
    }
    singles.sort();
    let single = singles[2];

    let cpu_before = cpu_ms();
    let started = Instant::now();
    let results = check_all(&probes, BulkOptions::default().with_concurrency(ENDPOINTS)).await;
    let wall = started.elapsed();
    let cpu = cpu_ms() - cpu_before;
    let up = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.outcome.is_up()))
        .count();
    assert_eq!(up, ENDPOINTS, "every endpoint answers");

    // The same endpoints, one curl process after another.
    let curl_ports = ports.clone();
    let curl = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        for p in curl_ports {
            let out = std::process::Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "10",
                ])
                .arg(format!("http://127.0.0.1:{p}/"))
                .output()
                .expect("curl is installed (scripts/provision)");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
        }
        t.elapsed()
    })
    .await
    .unwrap();

    let wall_ms = wall.as_secs_f64() * 1000.0;
    let single_ms = single.as_secs_f64() * 1000.0;
    let curl_ms = curl.as_secs_f64() * 1000.0;
    println!("bulk: {ENDPOINTS} checks in {wall_ms:.1} ms, {cpu:.0} ms CPU (server included)");
    println!("single check (median of 5): {single_ms:.1} ms");
    println!("sequential curl loop: {curl_ms:.0} ms");
    println!(
        "RESULT endpoints={ENDPOINTS} wall_ms={wall_ms:.1} single_check_ms={single_ms:.1} ratio={:.2} cpu_ms_per_probe={:.3} speedup_vs_curl_loop={:.1}",
        wall_ms / single_ms,
        cpu / ENDPOINTS as f64,
        curl_ms / wall_ms
    );
}
