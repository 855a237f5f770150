//! `cargo bench -p ops-k8s --bench logs`: the error lines of every pod of a Deployment.
//!
//! One Deployment with `PODS` pods (default 10), each with `LINES` log lines (default 20 000),
//! one in ten an error, on the API server double (in this process; kubectl reaches it over the
//! same loopback HTTP as opsbook). Per round, in alternating order:
//! - **opsbook**: `Platform::logs` with the filter `ERROR`, returning the matching lines of
//!   every pod, merged by time (what runbooks call);
//! - **kubectl | grep**: `kubectl logs -l app=NAME --prefix --timestamps --tail=-1
//!   --max-log-requests=PODS | grep ERROR` (lines out; kubectl's selector default would read
//!   only 10 lines per pod).
//!
//! Medians over `ROUNDS` (default 5). Last line: `RESULT pods=… lines=… opsbook_s=…
//! kubectl_grep_s=… speedup=… matched=…`.
#![forbid(unsafe_code)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    missing_docs,
    reason = "a benchmark binary"
)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ops_core::Platform as _;
use ops_core::platform::{LogFilter, LogOptions};
use serde_json::json;

const NS: &str = "bench";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `kubectl logs … | grep ERROR`, as a shell pipeline of two processes; returns the lines.
fn kubectl_grep(kubeconfig: &std::path::Path, cache: &std::path::Path, pods: usize) -> usize {
    let mut kubectl = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args([
            "logs",
            "-l",
            "app=api",
            "--prefix",
            "--timestamps",
            "--tail=-1",
            "-n",
            NS,
        ])
        .arg(format!("--max-log-requests={pods}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let grep = Command::new("grep")
        .arg("ERROR")
        .stdin(kubectl.stdout.take().expect("pipe"))
        .output()
        .expect("grep runs");
    assert!(kubectl.wait().expect("kubectl exits").success());
    grep.stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench());
}

async fn bench() {
    let pods = env_usize("PODS", 10);
    let lines = env_usize("LINES", 20_000);
    let rounds = env_usize("ROUNDS", 5).max(1);

    let server = k8s_double::ApiServer::new()
        .tick(Duration::from_millis(20))
        .start()
        .await
        .expect("double");
    let cluster = server.cluster();
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
    let cache = dir.path().join("kubectl-cache");
    cluster
        .create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": NS},
            "spec": {"replicas": pods, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}},
                                  "spec": {"containers": [{"name": "app", "image": "bench/api:1"}]}}}
        }))
        .expect("deployment");
    cluster
        .settle(Duration::from_secs(30))
        .await
        .expect("settled");
    let names: Vec<String> = cluster
        .list("Pod", NS)
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names.len(), pods);
    for i in 0..lines {
        for pod in &names {
            let line = if i % 10 == 0 {
                format!("ERROR request {i} failed: upstream timed out after 30s")
            } else {
                format!("INFO request {i} served GET /items in 12ms")
            };
            cluster.append_log(NS, pod, "app", &line);
        }
    }
    cluster.pause_controllers();

    let k8s = ops_k8s::KubePlatformBuilder::from_env()
        .kubeconfig(&kubeconfig)
        .build()
        .await
        .expect("platform");
    let api =
        ops_core::WorkloadRef::new(NS, ops_core::WorkloadKind::Deployment, "api").expect("ref");
    let opts = LogOptions::default().with_filter(LogFilter::new("ERROR").expect("filter"));
    // Warm kubectl's discovery cache, as a user's is.
    let _ = kubectl_grep(&kubeconfig, &cache, pods);

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut matched = 0;
    for round in 0..rounds {
        for method in [round % 2, (round + 1) % 2] {
            if method == 0 {
                let t = Instant::now();
                let got = k8s.logs(&api, opts.clone()).await.expect("logs");
                ours.push(t.elapsed().as_secs_f64());
                matched = got.len();
            } else {
                let kubeconfig = kubeconfig.clone();
                let cache = cache.clone();
                let t = Instant::now();
                let got =
                    tokio::task::spawn_blocking(move || kubectl_grep(&kubeconfig, &cache, pods))
                        .await
                        .expect("kubectl task");
                theirs.push(t.elapsed().as_secs_f64());
                assert_eq!(
                    got,
                    pods * lines.div_ceil(10),
                    "kubectl sees every error line"
                );
            }
        }
        println!(
            "round {round}: opsbook {:.3}s, kubectl | grep {:.3}s",
            ours.last().copied().unwrap_or_default(),
            theirs.last().copied().unwrap_or_default()
        );
    }
    assert_eq!(matched, pods * lines.div_ceil(10));
    let (o, k) = (median(ours), median(theirs));
    println!(
        "RESULT pods={pods} lines={} opsbook_s={o:.3} kubectl_grep_s={k:.3} speedup={:.2} matched={matched}",
        pods * lines,
        k / o
    );
}
