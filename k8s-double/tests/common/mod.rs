//! Shared helpers: a double per test, kubectl against it, and seeds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different subset"
)]

use std::path::PathBuf;
use std::time::Duration;

use k8s_double::{ApiServer, Cluster, Kubectl, RunningServer};
use serde_json::{Value, json};

/// A running double plus a kubeconfig and kubectl cache directory for it.
pub struct Harness {
    pub server: RunningServer,
    pub cluster: Cluster,
    pub kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

/// The result of one kubectl run.
pub type Run = k8s_double::KubectlRun;

/// Assertions on a kubectl run.
pub trait RunExt {
    fn ok(&self) -> &Self;
    fn json(&self) -> Value;
}

impl RunExt for Run {
    fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "kubectl failed: {}{}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Whether kubectl is on the PATH; with `CI=true` its absence fails the test.
pub fn kubectl_available() -> bool {
    let found = Kubectl::on_path();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but kubectl is not on the PATH"
        );
        eprintln!("skipping: kubectl is not on the PATH");
    }
    found
}

impl Harness {
    pub async fn start() -> Self {
        Self::with(ApiServer::new().tick(Duration::from_millis(10))).await
    }

    /// A harness when kubectl is available (see [`kubectl_available`]), else `None`.
    pub async fn for_kubectl() -> Option<Self> {
        if kubectl_available() {
            Some(Self::start().await)
        } else {
            None
        }
    }

    /// The first recorded request with `method`.
    pub fn first(&self, method: &str) -> k8s_double::RecordedRequest {
        self.cluster
            .requests()
            .into_iter()
            .find(|r| r.method == method)
            .unwrap_or_else(|| panic!("no {method} request was recorded"))
    }

    /// The first PATCH, checked to target `path` with `content_type`.
    pub fn patch_sent(&self, path: &str, content_type: &str) -> k8s_double::RecordedRequest {
        let request = self.first("PATCH");
        assert_eq!(request.path, path);
        assert_eq!(request.content_type.as_deref(), Some(content_type));
        request
    }

    pub async fn with(builder: ApiServer) -> Self {
        let server = builder.start().await.expect("double starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
        let cluster = server.cluster();
        Self {
            server,
            cluster,
            kubeconfig,
            dir,
        }
    }

    /// Runs `kubectl ARGS` against the double (off the async runtime's threads).
    pub async fn kubectl(&self, args: &[&str]) -> Run {
        Kubectl::new(&self.kubeconfig, self.dir.path().join("cache"))
            .run(args)
            .await
            .expect("kubectl runs")
    }

    pub async fn settle(&self) {
        self.cluster
            .settle(Duration::from_secs(10))
            .await
            .expect("simulation settles");
    }

    /// Creates a Deployment `name` with `replicas` and image `image` and waits for it to roll out.
    pub async fn deployment(&self, name: &str, replicas: i64, image: &str) -> Value {
        self.cluster
            .create(deployment(name, replicas, image))
            .expect("deployment created");
        self.settle().await;
        self.cluster
            .get("Deployment", "default", name)
            .expect("deployment exists")
    }
}

fn template(name: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}})
}

pub fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template(name, image)},
    })
}

pub fn statefulset(name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}}, "template": template(name, image)},
    })
}

pub fn daemonset(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name, image)},
    })
}

/// The `ReplicaSets` of Deployment `name`, as (revision, name, replicas).
pub fn replica_sets(cluster: &Cluster, name: &str) -> Vec<(i64, String, i64)> {
    let mut out: Vec<(i64, String, i64)> = cluster
        .list("ReplicaSet", "default")
        .iter()
        .filter(|rs| {
            rs["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&format!("{name}-")))
        })
        .map(|rs| {
            (
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0),
                rs["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                rs["spec"]["replicas"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}
