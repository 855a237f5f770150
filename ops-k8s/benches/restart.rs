//! `cargo bench -p ops-k8s --bench restart`: restart every Deployment of a namespace.
//!
//! The API server double runs as its own process (this benchmark re-executes itself), so
//! opsbook and kubectl pay the same loopback HTTP path. One namespace holds `DEPLOYMENTS`
//! (default 100) Deployments. Per round, in rotating order:
//! - **opsbook**: `KubePlatform::restart_namespace` (one list, one patch per Deployment, at
//!   most `OPSBOOK_K8S_CONCURRENCY` (default 16) in flight);
//! - **kubectl all**: one `kubectl rollout restart deployment -n NS` (what a user types);
//! - **kubectl loop**: one `kubectl rollout restart deployment/NAME` process per Deployment
//!   (what a script over a list does).
//!
//! kubectl keeps a warm discovery cache (`--cache-dir`), as it does for a user. Between
//! methods every Deployment is rolled out again and at least one second passes (kubectl and
//! opsbook both refuse a second restart within the same second). Then the wait for all to
//! roll out is timed for opsbook (`wait_namespace_rolled_out`) and for `kubectl wait
//! --for=condition=available --all`. `OPSBOOK_BENCH_ROUNDS` rounds (default 3); 10
//! Deployments with `OPSBOOK_BENCH_QUICK=1`. Last line: `RESULT deployments=… opsbook_s=…
//! kubectl_all_s=… kubectl_loop_s=… opsbook_wait_s=… kubectl_wait_s=…` (per-round lists).
#![forbid(unsafe_code)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    missing_docs,
    reason = "a benchmark binary"
)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use ops_core::Namespace;
use ops_tests::bench::{ResultLine, Samples, env_usize, order, rounds, size};
use serde_json::json;

const SERVE: &str = "OPSBOOK_K8S_DOUBLE_SERVE";
const NS: &str = "bench";

fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every Deployment rolled out, then the clock past the current second.
async fn quiesce(k8s: &ops_k8s::KubePlatform, ns: &Namespace) {
    k8s.wait_namespace_rolled_out(ns, Duration::from_secs(300), Duration::from_millis(100))
        .await
        .expect("rolled out");
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

fn main() {
    if std::env::var_os(SERVE).is_some() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(k8s_double::serve_until_stdin_closes(
            k8s_double::ApiServer::new().tick(Duration::from_millis(20)),
        ))
        .expect("double serves");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench());
}

#[allow(
    clippy::too_many_lines,
    reason = "one measured sequence, read top to bottom"
)]
async fn bench() {
    let deployments = size("DEPLOYMENTS", 100, 10);
    let rounds = rounds();
    let concurrency = env_usize("OPSBOOK_K8S_CONCURRENCY", 16);

    // The double in its own process.
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(SERVE, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("double process");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("listening line");
    let url = first.trim().trim_start_matches("listening on ").to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, k8s_double::kubeconfig(&url)).expect("kubeconfig");
    let cache = dir.path().join("kubectl-cache");

    let k8s = ops_k8s::KubePlatformBuilder::from_env()
        .kubeconfig(&kubeconfig)
        .with_concurrency(concurrency)
        .build()
        .await
        .expect("platform");
    let file = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config"),
    )
    .expect("client");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
    let api: Api<Deployment> = Api::namespaced(client, NS);
    for i in 0..deployments {
        let name = format!("svc-{i:03}");
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "bench/app:1"}]}}}
        }))
        .expect("deployment");
        api.create(&PostParams::default(), &d)
            .await
            .expect("created");
    }
    let ns = Namespace::new(NS).expect("namespace");
    // Warm kubectl's discovery cache, as a user's is.
    kubectl(
        &kubeconfig,
        &cache,
        &["get", "deployments", "-n", NS, "-o", "name"],
    );
    quiesce(&k8s, &ns).await;

    let names: Vec<String> = (0..deployments).map(|i| format!("svc-{i:03}")).collect();
    let (mut ours, mut all, mut each, mut our_wait, mut their_wait) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    for round in 0..rounds {
        for method in order(round, 3) {
            match method {
                0 => {
                    let t = Instant::now();
                    let outcome = k8s.restart_namespace(&ns, false).await.expect("restart");
                    ours.push_secs(t.elapsed());
                    assert_eq!(outcome.restarted.len(), deployments);
                    // The same annotation on every object.
                    for d in api
                        .list(&kube::api::ListParams::default())
                        .await
                        .expect("list")
                        .items
                    {
                        let stamp = d
                            .spec
                            .and_then(|s| s.template.metadata)
                            .and_then(|m| m.annotations)
                            .and_then(|a| a.get(ops_k8s::RESTARTED_AT).cloned());
                        assert_eq!(stamp.as_deref(), Some(outcome.restarted_at.as_str()));
                    }
                    let t = Instant::now();
                    k8s.wait_namespace_rolled_out(
                        &ns,
                        Duration::from_secs(300),
                        Duration::from_millis(100),
                    )
                    .await
                    .expect("rolled out");
                    our_wait.push_secs(t.elapsed());
                }
                1 => {
                    let t = Instant::now();
                    kubectl(
                        &kubeconfig,
                        &cache,
                        &["rollout", "restart", "deployment", "-n", NS],
                    );
                    all.push_secs(t.elapsed());
                    let t = Instant::now();
                    kubectl(
                        &kubeconfig,
                        &cache,
                        &[
                            "wait",
                            "--for=condition=available",
                            "deployment",
                            "--all",
                            "-n",
                            NS,
                            "--timeout=300s",
                        ],
                    );
                    their_wait.push_secs(t.elapsed());
                }
                _ => {
                    let t = Instant::now();
                    for name in &names {
                        let target = format!("deployment/{name}");
                        kubectl(
                            &kubeconfig,
                            &cache,
                            &["rollout", "restart", &target, "-n", NS],
                        );
                    }
                    each.push_secs(t.elapsed());
                }
            }
            quiesce(&k8s, &ns).await;
        }
        println!(
            "round {round}: opsbook {:.3}s, kubectl all {:.3}s, kubectl loop {:.3}s",
            ours.last(),
            all.last(),
            each.last()
        );
    }
    drop(child.stdin.take());
    let _ = child.wait();

    ResultLine::new()
        .value("deployments", deployments)
        .samples("opsbook_s", &ours, 3)
        .samples("kubectl_all_s", &all, 3)
        .samples("kubectl_loop_s", &each, 3)
        .samples("opsbook_wait_s", &our_wait, 3)
        .samples("kubectl_wait_s", &their_wait, 3)
        .print();
}
