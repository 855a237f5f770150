//! `cargo bench -p ops-k8s --bench logs`: the error lines of every pod of a Deployment.
//!
//! One Deployment with `PODS` pods (default 10; 3 with `OPSBOOK_BENCH_QUICK=1`), each with
//! `LINES` log lines (default 20 000; 2 000 quick), one in ten an error, on the API server double (in this process; kubectl reaches it over the
//! same loopback HTTP as opsbook). Per round, in alternating order:
//! - **opsbook**: `Platform::logs` with the filter `ERROR`, returning the matching lines of
//!   every pod, merged by time (what runbooks call);
//! - **kubectl | grep**: `kubectl logs -l app=NAME --prefix --timestamps --tail=-1
//!   --max-log-requests=PODS | grep ERROR` (lines out; kubectl's selector default would read
//!   only 10 lines per pod).
//!
//! Both must return every error line (checked before timing and in every round).
//! `OPSBOOK_BENCH_ROUNDS` rounds (default 3). Last line: `RESULT pods=… lines=… matched=…
//! opsbook_s=… kubectl_grep_s=…` (per-round lists).
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
use ops_tests::bench::{ResultLine, Samples, order, rounds, size};
use serde_json::json;

const NS: &str = "bench";

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
    let pods = size("PODS", 10, 3);
    let lines = size("LINES", 20_000, 2_000);
    let rounds = rounds();

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
    let matched = pods * lines.div_ceil(10);
    // Correctness first, and kubectl's discovery cache warm, as a user's is.
    assert_eq!(kubectl_grep(&kubeconfig, &cache, pods), matched);
    let got = k8s.logs(&api, opts.clone()).await.expect("logs");
    assert_eq!(got.len(), matched, "opsbook sees every error line");
    assert!(
        got.iter()
            .all(|l| l.text.starts_with("ERROR") && l.timestamp.is_some())
    );
    assert!(
        got.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
        "merged by time"
    );

    let (mut ours, mut theirs) = (Samples::default(), Samples::default());
    for round in 0..rounds {
        for method in order(round, 2) {
            if method == 0 {
                let t = Instant::now();
                let got = k8s.logs(&api, opts.clone()).await.expect("logs");
                ours.push_secs(t.elapsed());
                assert_eq!(got.len(), matched);
            } else {
                let kubeconfig = kubeconfig.clone();
                let cache = cache.clone();
                let t = Instant::now();
                let got =
                    tokio::task::spawn_blocking(move || kubectl_grep(&kubeconfig, &cache, pods))
                        .await
                        .expect("kubectl task");
                theirs.push_secs(t.elapsed());
                assert_eq!(got, matched, "kubectl sees every error line");
            }
        }
        println!(
            "round {round}: opsbook {:.3}s, kubectl | grep {:.3}s",
            ours.last(),
            theirs.last()
        );
    }
    ResultLine::new()
        .value("pods", pods)
        .value("lines", pods * lines)
        .value("matched", matched)
        .samples("opsbook_s", &ours, 3)
        .samples("kubectl_grep_s", &theirs, 3)
        .print();
}
