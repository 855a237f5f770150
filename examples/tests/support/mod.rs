//! What the Kubernetes tests of the example binaries share: a `shop/api` Deployment on the
//! API server double whose second release crash-loops, and a health URL nobody answers.

#![allow(clippy::unwrap_used, reason = "test support fails loudly")]

use std::path::PathBuf;
use std::time::Duration;

use k8s_double::{ApiServer, Cluster, PodFault, RunningServer};
use serde_json::json;

/// The double, its cluster, a kubeconfig for it, and the dead health endpoint.
pub(crate) struct CrashLoop {
    /// Keeps the double serving (held, not read, by the tests that take the whole struct).
    #[allow(dead_code, reason = "held so the double keeps serving")]
    pub(crate) server: RunningServer,
    /// Its objects and recorded requests.
    pub(crate) cluster: Cluster,
    /// Holds the kubeconfig (and whatever the test writes).
    pub(crate) dir: tempfile::TempDir,
    /// A kubeconfig pointing at the double.
    pub(crate) kubeconfig: PathBuf,
    /// A health URL on a port where nothing listens.
    pub(crate) health: String,
}

/// `shop/deployment/api` rolled from `shop/api:1` to a crash-looping `shop/api:2`, with the
/// requests recorded so far cleared.
pub(crate) async fn crash_looping_api() -> CrashLoop {
    let server = ApiServer::new()
        .tick(Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    let cluster = server.cluster();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    cluster
        .create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}},
                                  "spec": {"containers": [{"name": "app", "image": "shop/api:1"}]}}}
        }))
        .unwrap();
    cluster.settle(Duration::from_secs(10)).await.unwrap();
    cluster.fail_image("api:2", PodFault::CrashLoopBackOff);
    cluster
        .modify("Deployment", "shop", "api", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("shop/api:2");
            d["metadata"]["generation"] = json!(2);
        })
        .unwrap();
    cluster.settle(Duration::from_secs(10)).await.ok();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.clear_requests();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let health = format!("http://{}/health", closed.local_addr().unwrap());
    drop(closed);
    CrashLoop {
        server,
        cluster,
        dir,
        kubeconfig,
        health,
    }
}

impl CrashLoop {
    /// A system file for `shop` on this double (the `api` service, its dead health URL, a
    /// journal in the test's folder), written into the test's folder.
    #[allow(dead_code, reason = "not every test binary runs the opsbook command")]
    pub(crate) fn system_file(&self) -> PathBuf {
        let system = self.dir.path().join("opsbook.toml");
        std::fs::write(
            &system,
            format!(
                "name = \"shop\"\n\n[platform]\nkind = \"kubernetes\"\nnamespace = \"shop\"\nkubeconfig = \"{}\"\n\n\
                 [services.api]\nworkload = \"deployment/api\"\nhealth = \"{}\"\n\n[journal]\npath = \"{}\"\n",
                self.kubeconfig.display(),
                self.health,
                self.dir.path().join("journal.db").display()
            ),
        )
        .unwrap();
        system
    }
}

/// The requests that were not reads.
pub(crate) fn writes(cluster: &Cluster) -> Vec<(String, String)> {
    cluster
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path))
        .collect()
}

/// `opsbook --system SYSTEM ARGS`, waited for off the runtime the double serves from.
#[allow(dead_code, reason = "not every test binary runs the opsbook command")]
pub(crate) fn opsbook(
    system: &std::path::Path,
    args: &[&str],
) -> tokio::task::JoinHandle<std::process::Output> {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_opsbook"));
    command
        .arg("--system")
        .arg(system)
        .args(args)
        .env_remove("OPSBOOK_JOURNAL");
    tokio::task::spawn_blocking(move || command.output().unwrap())
}
