//! Fan-out benchmark: `ENDPOINTS` HTTP endpoints (default 500; 50 with
//! `OPSBOOK_BENCH_QUICK=1`) that each answer after 50 ms, checked all at once.
//!
//! ```sh
//! cargo bench -p ops-probes --bench fanout      # or scripts/bench fanout
//! ```
//!
//! The endpoints run in a child process (this benchmark re-executes itself), so the CPU
//! figures are the client's alone. Every answer carries `Connection: close`: each check of
//! every method opens its own connection, as separate curl processes must. Per round
//! (`OPSBOOK_BENCH_ROUNDS`, default 3), in an order rotated each round:
//! - **opsbook**: `check_all` over one `HttpProbe` per endpoint, all in flight at once,
//!   from a process whose probe client is built (it is built once per process);
//! - **one check**: the median of five single checks, the floor a fan-out can reach;
//! - **curl --parallel**: `curl --parallel --parallel-max 500` over every URL;
//! - **xargs -P 64 curl**: one curl process per URL, 64 at a time;
//! - **sequential curl loop** (round 0 only, context): one curl after another.
//!
//! CPU comes from the kernel's accounting in `/proc/self/stat`, in its own units (clock
//! ticks, converted with `getconf CLK_TCK`): this process's user + system time for opsbook,
//! the waited-for children's for curl (the endpoint process is not waited for until the end,
//! so it never counts). Before timing, each method must see every endpoint answer 200.
//! Last line: `RESULT endpoints=… wall_ms=… single_ms=… curl_parallel_ms=… xargs_ms=…
//! curl_loop_ms=… cpu_ms_per_probe=… curl_parallel_cpu_ms_per_probe=…
//! xargs_cpu_ms_per_probe=…` (per-round lists).
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    reason = "benchmark binary"
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use ops_core::Probe;
use ops_probes::{BulkOptions, HttpProbe, check_all};
use ops_tests::bench::{CpuTimes, ResultLine, Samples, clock_ticks, order, rounds, size};

const SERVE: &str = "OPSBOOK_BENCH_FANOUT_SERVE";
const DELAY: Duration = Duration::from_millis(50);

/// The child: `n` endpoints, their ports on one line, served until stdin closes.
async fn serve(n: usize) {
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let router = Router::new().route(
            "/",
            get(|| async {
                tokio::time::sleep(DELAY).await;
                ([(axum::http::header::CONNECTION, "close")], "ok")
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(listener.local_addr().unwrap().port().to_string());
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    println!("{}", ports.join(","));
    std::io::stdout().flush().unwrap();
    tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    })
    .await
    .unwrap();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(n) = std::env::var(SERVE).ok().and_then(|v| v.parse().ok()) {
        rt.block_on(serve(n));
        return;
    }
    rt.block_on(run());
}

fn curl_args() -> [&'static str; 7] {
    [
        "-s",
        "-w",
        "%{http_code}\n",
        "--max-time",
        "10",
        "-o",
        "/dev/null",
    ]
}

/// Runs `cmd`, checks that it printed `200` once per URL; (wall, children's CPU).
fn run_curl(mut cmd: Command, stdin: Option<String>, urls: usize, hz: f64) -> (Duration, f64) {
    let before = CpuTimes::now(hz);
    let t = Instant::now();
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl is installed (scripts/provision)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let wall = t.elapsed();
    let cpu = CpuTimes::now(hz).since(before).children;
    assert!(out.status.success(), "{cmd:?}: {}", out.status);
    let ok = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "200")
        .count();
    assert_eq!(ok, urls, "{cmd:?}: every endpoint answers 200");
    (wall, cpu)
}

#[allow(clippy::too_many_lines, reason = "a benchmark reads top to bottom")]
async fn run() {
    let endpoints = size("ENDPOINTS", 500, 50);
    let rounds = rounds();
    let hz = clock_ticks();
    let mut server = Command::new(std::env::current_exe().unwrap())
        .env(SERVE, (endpoints + 6).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut ports: Vec<u16> = line.trim().split(',').map(|p| p.parse().unwrap()).collect();
    // Six for the single checks (one warms the process's probe client), the rest fanned out.
    let spare = ports.split_off(endpoints);
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/"))
        .collect();
    let probe = |url: &str| {
        Arc::new(
            HttpProbe::builder(url)
                .with_timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        ) as Arc<dyn Probe>
    };
    let probes: Vec<Arc<dyn Probe>> = urls.iter().map(|u| probe(u)).collect();
    let singles: Vec<Arc<dyn Probe>> = spare
        .iter()
        .map(|p| probe(&format!("http://127.0.0.1:{p}/")))
        .collect();
    assert!(singles[0].check().await.unwrap().outcome.is_up());

    let (mut wall, mut single, mut cpu) =
        (Samples::default(), Samples::default(), Samples::default());
    let (mut par, mut par_cpu) = (Samples::default(), Samples::default());
    let (mut xargs, mut xargs_cpu, mut seq) =
        (Samples::default(), Samples::default(), Samples::default());
    let n = endpoints as f64;
    for round in 0..rounds {
        for method in order(round, 5) {
            match method {
                0 => {
                    let before = CpuTimes::now(hz);
                    let t = Instant::now();
                    let results =
                        check_all(&probes, BulkOptions::default().with_concurrency(endpoints))
                            .await;
                    let took = t.elapsed();
                    let spent = CpuTimes::now(hz).since(before).own;
                    let up = results
                        .iter()
                        .filter(|r| r.as_ref().is_ok_and(|r| r.outcome.is_up()))
                        .count();
                    assert_eq!(up, endpoints, "every endpoint answers");
                    wall.push(took.as_secs_f64() * 1000.0);
                    cpu.push(spent * 1000.0 / n);
                }
                1 => {
                    let mut times = Vec::new();
                    for p in &singles[1..] {
                        let t = Instant::now();
                        let r = p.check().await.unwrap();
                        times.push(t.elapsed());
                        assert!(r.outcome.is_up(), "{}", r.detail);
                    }
                    times.sort();
                    single.push(times[times.len() / 2].as_secs_f64() * 1000.0);
                }
                2 => {
                    let mut cmd = Command::new("curl");
                    cmd.args(["--parallel", "--parallel-max", "500"]).args([
                        "-s",
                        "-w",
                        "%{http_code}\n",
                        "--max-time",
                        "10",
                    ]);
                    for u in &urls {
                        cmd.args(["-o", "/dev/null", u]);
                    }
                    let (took, spent) =
                        tokio::task::spawn_blocking(move || run_curl(cmd, None, endpoints, hz))
                            .await
                            .unwrap();
                    par.push(took.as_secs_f64() * 1000.0);
                    par_cpu.push(spent * 1000.0 / n);
                }
                3 => {
                    let mut cmd = Command::new("xargs");
                    cmd.args(["-P", "64", "-n", "1", "curl"]).args(curl_args());
                    let input = urls.join("\n");
                    let (took, spent) = tokio::task::spawn_blocking(move || {
                        run_curl(cmd, Some(input), endpoints, hz)
                    })
                    .await
                    .unwrap();
                    xargs.push(took.as_secs_f64() * 1000.0);
                    xargs_cpu.push(spent * 1000.0 / n);
                }
                _ if round == 0 => {
                    let urls = urls.clone();
                    let took = tokio::task::spawn_blocking(move || {
                        let t = Instant::now();
                        for u in urls {
                            let mut cmd = Command::new("curl");
                            cmd.args(curl_args()).arg(u);
                            run_curl(cmd, None, 1, hz);
                        }
                        t.elapsed()
                    })
                    .await
                    .unwrap();
                    seq.push(took.as_secs_f64() * 1000.0);
                }
                _ => {}
            }
        }
        eprintln!(
            "round {round}: check_all {:.1} ms ({:.3} ms CPU/probe), one check {:.1} ms, curl --parallel {:.1} ms ({:.3} ms CPU/probe), xargs -P 64 curl {:.1} ms ({:.3} ms CPU/probe), sequential loop {:.0} ms",
            wall.last(),
            cpu.last(),
            single.last(),
            par.last(),
            par_cpu.last(),
            xargs.last(),
            xargs_cpu.last(),
            seq.last()
        );
    }
    drop(server.stdin.take());
    let _ = server.wait();
    ResultLine::new()
        .value("endpoints", endpoints)
        .value("clk_tck", hz)
        .samples("wall_ms", &wall, 1)
        .samples("single_ms", &single, 1)
        .samples("curl_parallel_ms", &par, 1)
        .samples("xargs_ms", &xargs, 1)
        .samples("curl_loop_ms", &seq, 0)
        .samples("cpu_ms_per_probe", &cpu, 3)
        .samples("curl_parallel_cpu_ms_per_probe", &par_cpu, 3)
        .samples("xargs_cpu_ms_per_probe", &xargs_cpu, 3)
        .print();
}
