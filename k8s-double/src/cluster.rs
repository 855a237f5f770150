//! [`Cluster`]: the test's handle on the double's state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::controllers::{self, PodFault, deadline_condition};
use crate::error::{ApiError, Error, Result};
use crate::json;
use crate::meta;
use crate::requests::RecordedRequest;
use crate::resources::{self, Resource};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::Part;

/// A shared handle on the double's objects and simulation.
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), k8s_double::Error> {
/// let server = k8s_double::ApiServer::new().start().await?;
/// let cluster = server.cluster();
/// cluster.create(serde_json::json!({
///     "apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"name": "settings", "namespace": "default"},
///     "data": {"mode": "fast"},
/// }))?;
/// assert!(cluster.get("ConfigMap", "default", "settings").is_some());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

fn resource(kind: &str) -> Result<&'static Resource> {
    resources::by_kind(kind).ok_or_else(|| {
        Error::Api(ApiError::bad_request(format!(
            "kind {kind:?} is not served by the double"
        )))
    })
}

impl Cluster {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Creates any served kind (`kind` and `metadata.namespace` from the object, namespace `default`
    /// when missing, created when it does not exist). Fills uid, resourceVersion, generation and
    /// creationTimestamp; a `status` given is kept.
    ///
    /// # Errors
    /// [`Error::Api`] with 400 for an unknown kind, 409 `AlreadyExists`, 422 `Invalid`.
    pub fn create(&self, obj: Value) -> Result<Value> {
        let res = resource(meta::kind(&obj))?;
        let mut state = self.shared.lock();
        let namespace = if res.namespaced {
            let ns = meta::namespace(&obj);
            let ns = if ns.is_empty() { "default" } else { ns }.to_owned();
            state.ensure_namespace(&ns);
            ns
        } else {
            String::new()
        };
        Ok(state.create(res, &namespace, obj, false, false)?)
    }

    /// The object of `kind` (`"Deployment"`, `"Pod"`...) at `namespace/name` (namespace ignored for
    /// cluster-scoped kinds).
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resources::by_kind(kind)?;
        let ns = if res.namespaced { namespace } else { "" };
        self.shared.lock().get(res.kind, ns, name).cloned()
    }

    /// Every object of `kind` in `namespace` (an empty namespace lists all namespaces).
    pub fn list(&self, kind: &str, namespace: &str) -> Vec<Value> {
        let Some(res) = resources::by_kind(kind) else {
            return Vec::new();
        };
        let ns = (!namespace.is_empty() && res.namespaced).then_some(namespace);
        self.shared.lock().list(
            res.kind,
            ns,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
    }

    /// Replaces `status` wholesale, for hand-crafted states (pause the controllers first so they stay).
    ///
    /// # Errors
    /// [`Error::Api`] with 404 when the object does not exist.
    pub fn replace_status(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        status: Value,
    ) -> Result<()> {
        self.modify(kind, namespace, name, |obj| {
            json::set_at(obj, &["status"], status);
        })
    }

    /// Sets `metadata.generation`, to make `status.observedGeneration` lag behind.
    ///
    /// # Errors
    /// [`Error::Api`] with 404 when the object does not exist.
    pub fn set_generation(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        generation: i64,
    ) -> Result<()> {
        self.modify(kind, namespace, name, |obj| {
            json::set_at(obj, &["metadata", "generation"], json!(generation));
        })
    }

    /// Changes the stored object with `change`, bumping its resourceVersion and notifying watchers.
    ///
    /// # Errors
    /// [`Error::Api`] with 404 when the object does not exist.
    pub fn modify(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Result<()> {
        let res = resource(kind)?;
        let ns = if res.namespaced { namespace } else { "" };
        let mut state = self.shared.lock();
        let mut obj = state
            .get(res.kind, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res.group, res.plural, name))?;
        change(&mut obj);
        state.put(obj);
        Ok(())
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Freezes the controller simulation (the API keeps serving).
    pub fn pause_controllers(&self) {
        self.shared.lock().sim.paused = true;
    }

    /// Lets the controller simulation run again.
    pub fn resume_controllers(&self) {
        self.shared.lock().sim.paused = false;
    }

    /// Runs controller steps back to back until one changes nothing. Returns at once while the
    /// controllers are paused.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the simulation still changes after `timeout` (a crash loop restarting
    /// faster than a step, for example).
    pub async fn settle(&self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let changed = {
                let mut state = self.shared.lock();
                if state.sim.paused {
                    return Ok(());
                }
                controllers::step(&mut state)
            };
            if !changed {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(Error::Timeout);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Containers whose image contains `image_substring` get `fault` from now on (when they start).
    pub fn fail_image(&self, image_substring: &str, fault: PodFault) {
        self.shared
            .lock()
            .sim
            .faults
            .push((image_substring.to_owned(), fault));
    }

    /// Containers whose image contains `image_substring` need `bytes` of memory from now on
    /// (when they start): a memory limit below that OOM-kills them (`OOMKilled`, exit code
    /// 137, restarted into `CrashLoopBackOff`), as the kernel does at the cgroup's limit; with
    /// a limit at or above it, or none, they run. A raised limit in the pod template cures
    /// the new pods.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let server = k8s_double::ApiServer::new().start().await?;
    /// server.cluster().need_memory("shop/worker", 150 << 20);
    /// # Ok::<(), k8s_double::Error>(()) }).unwrap();
    /// ```
    pub fn need_memory(&self, image_substring: &str, bytes: u64) {
        self.shared
            .lock()
            .sim
            .memory_needs
            .push((image_substring.to_owned(), bytes));
    }

    /// The next `times` requests with `method` whose path contains `path_contains` are
    /// answered with `status` (a `Status` with the reason the API server uses for that code:
    /// 403 Forbidden, 409 Conflict, 429 `TooManyRequests`, 503 `ServiceUnavailable`, 500
    /// `InternalError` otherwise) instead of being served: failure injection for clients' retry
    /// and error handling. Requests failed this way are recorded like any other.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let server = k8s_double::ApiServer::new().start().await?;
    /// server.cluster().fail_requests("GET", "/deployments/api", 429, 2);
    /// # Ok::<(), k8s_double::Error>(()) }).unwrap();
    /// ```
    pub fn fail_requests(&self, method: &str, path_contains: &str, status: u16, times: usize) {
        self.shared.lock().sim.request_faults.push((
            method.to_owned(),
            path_contains.to_owned(),
            status,
            times,
        ));
    }

    /// Forgets every registered image fault.
    pub fn clear_faults(&self) {
        self.shared.lock().sim.faults.clear();
    }

    /// Appends a log line (timestamped now) to the container's current instance.
    pub fn append_log(&self, namespace: &str, pod: &str, container: &str, line: &str) {
        self.shared
            .lock()
            .sim
            .logs
            .append(namespace, pod, container, line);
    }

    /// Writes a regular file into the simulated filesystem of `namespace/pod`'s `container`
    /// (parents are made), as if the image had shipped it. What an exec runs there sees it:
    /// `cat`, `ls`, `tar cf -` (and so `kubectl cp`). Relative paths are taken from `/`.
    ///
    /// The filesystems are kept by pod name: a pod recreated under the same name (a
    /// StatefulSet's) finds the files again.
    ///
    /// # Errors
    /// [`Error::Api`] with 400 when `path` is a directory or a parent of it is a file.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run() -> Result<(), k8s_double::Error> {
    /// let server = k8s_double::ApiServer::new().start().await?;
    /// let cluster = server.cluster();
    /// cluster.write_file("default", "web-0", "app", "/etc/app.conf", b"mode=fast\n")?;
    /// assert_eq!(
    ///     cluster.read_file("default", "web-0", "app", "/etc/app.conf").as_deref(),
    ///     Some(&b"mode=fast\n"[..])
    /// );
    /// # Ok(()) }
    /// ```
    pub fn write_file(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        path: &str,
        contents: impl Into<Vec<u8>>,
    ) -> Result<()> {
        self.shared
            .lock()
            .sim
            .files
            .get_mut(namespace, pod, container)
            .write(path, contents.into())
            .map_err(|reason| Error::Api(ApiError::bad_request(reason)))
    }

    /// The contents of the regular file at `path` in `namespace/pod`'s `container`, if there
    /// is one (written by [`Cluster::write_file`] or by an exec such as `tar xmf -`).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run() -> Result<(), k8s_double::Error> {
    /// let server = k8s_double::ApiServer::new().start().await?;
    /// assert!(server.cluster().read_file("default", "web-0", "app", "/nope").is_none());
    /// # Ok(()) }
    /// ```
    pub fn read_file(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        path: &str,
    ) -> Option<Vec<u8>> {
        let state = self.shared.lock();
        let fs = state.sim.files.get(namespace, pod, container)?;
        fs.file(path).map(<[u8]>::to_vec)
    }

    /// Sets what `metrics.k8s.io` reports for a container.
    pub fn set_pod_usage(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        cpu_millicores: u64,
        memory_bytes: u64,
    ) {
        self.shared.lock().sim.usage.insert(
            (namespace.to_owned(), pod.to_owned(), container.to_owned()),
            (cpu_millicores, memory_bytes),
        );
    }

    /// Marks the Deployment's current rollout as past its progress deadline: its Progressing
    /// condition becomes False/`ProgressDeadlineExceeded` now and stays so until the spec changes.
    ///
    /// # Errors
    /// [`Error::Api`] with 404 when the Deployment does not exist.
    pub fn set_progress_deadline_exceeded(&self, namespace: &str, deployment: &str) -> Result<()> {
        let res = resource("Deployment")?;
        let mut state = self.shared.lock();
        let mut d = state
            .get("Deployment", namespace, deployment)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res.group, res.plural, deployment))?;
        let generation = json::i64_at(&d, &["metadata", "generation"]).unwrap_or(1);
        state
            .sim
            .deadline_exceeded
            .insert(meta::uid(&d).to_owned(), generation);
        let rs_name = state
            .all("ReplicaSet", Some(namespace))
            .filter(|rs| meta::controller_uid(rs) == Some(meta::uid(&d)))
            .max_by_key(|rs| {
                json::str_at(
                    rs,
                    &[
                        "metadata",
                        "annotations",
                        "deployment.kubernetes.io/revision",
                    ],
                )
                .and_then(|r| r.parse::<i64>().ok())
                .unwrap_or(0)
            })
            .map(|rs| meta::name(rs).to_owned())
            .unwrap_or_default();
        let (status, reason, message) = deadline_condition(&rs_name);
        let now = meta::now();
        let condition = json!({"type": "Progressing", "status": status, "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now});
        let conditions = json::object_mut(&mut d, &["status"])
            .entry("conditions")
            .or_insert_with(|| json!([]));
        if let Value::Array(list) = conditions {
            list.retain(|c| json::str_at(c, &["type"]) != Some("Progressing"));
            list.push(condition);
        }
        state.update(res, namespace, deployment, d, Part::Status, false)?;
        Ok(())
    }
}
