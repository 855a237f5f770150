//! Shared by the ops-k8s tests: an API server double per test, a `KubePlatform` built from the
//! kubeconfig it writes (the path users take), the real kubectl against the same server, and
//! object builders.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "each test binary uses a different subset; tests fail loudly"
)]

use std::path::PathBuf;
use std::time::Duration;

use k8s_double::{ApiServer, Cluster, Kubectl, RunningServer};
use ops_k8s::{KubePlatform, KubePlatformBuilder};
use serde_json::{Value, json};

/// A double, a platform and kubectl pointed at it.
pub struct Env {
    pub server: RunningServer,
    pub cluster: Cluster,
    pub kubeconfig: PathBuf,
    pub platform: KubePlatform,
    /// A plain kube client, for setting scenes through the API as a user's tools would.
    pub client: kube::Client,
    dir: tempfile::TempDir,
}

/// One kubectl run.
pub type Run = k8s_double::KubectlRun;

/// Whether the real kubectl is on the PATH. With `CI=true` its absence fails the test: the
/// oracle never skips in CI.
pub fn kubectl_available() -> bool {
    let found = Kubectl::on_path();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but kubectl is not on the PATH (scripts/provision installs it)"
        );
        eprintln!("skipping: kubectl is not on the PATH");
    }
    found
}

impl Env {
    pub async fn start() -> Self {
        Self::with(ApiServer::new().tick(Duration::from_millis(10))).await
    }

    pub async fn with(builder: ApiServer) -> Self {
        let server = builder.start().await.expect("double starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
        let platform = KubePlatformBuilder::from_env()
            .kubeconfig(&kubeconfig)
            .context("double")
            .with_request_timeout(Duration::from_secs(10))
            .build()
            .await
            .expect("platform from the kubeconfig");
        let cluster = server.cluster();
        let file = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig reads");
        let config =
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .expect("kube config");
        let client = kube::Client::try_from(config).expect("kube client");
        Self {
            server,
            cluster,
            kubeconfig,
            platform,
            client,
            dir,
        }
    }

    /// `kubectl ARGS` against the double, off the runtime's threads.
    pub async fn kubectl(&self, args: &[&str]) -> Run {
        Kubectl::new(&self.kubeconfig, self.dir.path().join("cache"))
            .run(args)
            .await
            .expect("kubectl runs")
    }

    pub async fn settle(&self) {
        self.cluster
            .settle(Duration::from_secs(20))
            .await
            .expect("simulation settles");
    }

    pub fn get(&self, kind: &str, ns: &str, name: &str) -> Value {
        self.cluster
            .get(kind, ns, name)
            .unwrap_or_else(|| panic!("{kind} {ns}/{name} exists"))
    }

    /// Create `obj` and let the controllers settle.
    pub async fn create(&self, obj: Value) -> Value {
        self.cluster.create(obj).expect("object created");
        self.settle().await;
        Value::Null
    }

    /// Deploy `image` to a Deployment through the API (a new revision, with a change cause),
    /// as `kubectl set image` would, and let it roll out.
    pub async fn set_image(&self, ns: &str, name: &str, image: &str) {
        use k8s_openapi::api::apps::v1::Deployment;
        use kube::api::{Api, Patch, PatchParams};
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let patch = json!({
            "metadata": {"annotations": {"kubernetes.io/change-cause": format!("deploy {image}")}},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
        });
        api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .expect("image patched");
        self.settle().await;
    }
}

pub fn template(name: &str, image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    })
}

pub fn deployment(ns: &str, name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template(name, image)},
    })
}

pub fn statefulset(ns: &str, name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}}, "template": template(name, image)},
    })
}

pub fn daemonset(ns: &str, name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name, image)},
    })
}

pub fn workload(ns: &str, kind: &str, name: &str) -> ops_core::WorkloadRef {
    ops_core::WorkloadRef::new(ns, kind.parse().expect("kind"), name).expect("workload ref")
}

/// An object with what differs between two namespaces or two moments removed: identity,
/// versions, times, owner uids, the restart timestamp value, and names derived from hashes.
pub fn comparable(mut v: Value) -> Value {
    strip(&mut v);
    v
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for key in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "namespace",
                "managedFields",
                "selfLink",
                "deletionTimestamp",
                "lastUpdateTime",
                "lastTransitionTime",
                "startTime",
                "startedAt",
                "finishedAt",
            ] {
                map.remove(key);
            }
            if let Some(Value::String(s)) = map.get_mut(ops_k8s::RESTARTED_AT) {
                "<time>".clone_into(s);
            }
            // A ReplicaSet's name ends in the hash of its template, which holds the restart
            // time: two restarts a second apart name their ReplicaSets differently.
            if let Some(Value::String(s)) = map.get_mut("message")
                && let Some((before, rest)) = s.split_once("ReplicaSet \"")
                && let Some((_, after)) = rest.split_once('"')
            {
                *s = format!("{before}ReplicaSet \"<replicaset>\"{after}");
            }
            for (_, child) in map.iter_mut() {
                strip(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// The recorded writes (not GET/LIST/WATCH) to paths under namespace `ns`, as
/// (method, path with the namespace replaced by `NS`, content type, comparable body).
pub fn writes(cluster: &Cluster, ns: &str) -> Vec<(String, String, String, Value)> {
    let prefix = format!("/namespaces/{ns}/");
    cluster
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.path.contains(&prefix))
        .map(|r| {
            let body = r.json.clone().map_or(Value::Null, comparable);
            (
                r.method.clone(),
                r.path.replace(&prefix, "/namespaces/NS/"),
                r.content_type
                    .clone()
                    .unwrap_or_default()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                body,
            )
        })
        .collect()
}

/// Up when every pod of the workload is ready and none waits: what a `/health` behind a
/// Service would say (the double runs no real service).
#[derive(Debug)]
pub struct PodsReady {
    pub platform: KubePlatform,
    pub workload: ops_core::WorkloadRef,
}

#[async_trait::async_trait]
impl ops_core::probe::Probe for PodsReady {
    fn name(&self) -> &'static str {
        "pods-ready"
    }

    async fn check(&self) -> Result<ops_core::probe::ProbeResult, ops_core::OpsError> {
        use ops_core::Platform as _;
        let status = self.platform.workload(&self.workload).await?;
        Ok(if status.is_healthy() && !status.instances.is_empty() {
            ops_core::probe::ProbeResult::up()
        } else {
            ops_core::probe::ProbeResult::down(format!("{}/{} ready", status.ready, status.desired))
        })
    }
}

/// The paths of the PATCH requests the double recorded, in order.
pub fn patched_paths(cluster: &Cluster) -> Vec<String> {
    cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path)
        .collect()
}
