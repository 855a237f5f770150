//! The controller simulation: what kube-controller-manager, the scheduler and the kubelet would do,
//! one small step per tick.

mod autoscaler;
mod daemonset;
mod deployment;
mod endpoints;
mod gc;
mod kubelet;
mod pods;
mod quota;
mod replicaset;
mod revision;
mod statefulset;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::containerfs::FileSystems;
use crate::json;
use crate::logs::LogStore;
use crate::meta;
use crate::resources;
use crate::store::{DeleteOptions, Part, State};

pub(crate) use deployment::deadline_condition;

/// A failure the simulated kubelet gives containers whose image contains a substring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PodFault {
    /// The container exits with code 1 after starting; waiting reason `CrashLoopBackOff`, restarts rising.
    CrashLoopBackOff,
    /// The image cannot be pulled; waiting reason `ImagePullBackOff`, never started.
    ImagePullBackOff,
    /// The container is killed with `OOMKilled` (exit code 137) and restarted.
    OomKilled,
    /// The container runs but never becomes ready.
    NeverReady,
}

/// The simulation's knobs and side state (faults, logs, usage), kept under the store lock.
#[derive(Debug)]
pub(crate) struct Sim {
    pub(crate) nodes: usize,
    pub(crate) metrics: bool,
    pub(crate) crash_backoff: Duration,
    pub(crate) paused: bool,
    pub(crate) faults: Vec<(String, PodFault)>,
    pub(crate) logs: LogStore,
    pub(crate) usage: HashMap<(String, String, String), (u64, u64)>,
    /// Deployment uid → the generation whose rollout is marked as past its progress deadline.
    pub(crate) deadline_exceeded: HashMap<String, i64>,
    /// Pod uid → when its crashing containers last restarted.
    pub(crate) last_restart: HashMap<String, Instant>,
    pub(crate) next_node: usize,
    /// Events by (namespace, involved uid, reason, message), to count repeats.
    pub(crate) event_index: HashMap<(String, String, String, String), String>,
    /// The simulated containers' files, by (namespace, pod, container).
    pub(crate) files: FileSystems,
    /// Requests to fail on purpose: (method, path fragment, status code, times left).
    pub(crate) request_faults: Vec<(String, String, u16, usize)>,
    /// Memory the containers of matching images need, bytes: below it their memory limit
    /// OOM-kills them.
    pub(crate) memory_needs: Vec<(String, u64)>,
}

impl Default for Sim {
    fn default() -> Self {
        Self {
            nodes: 3,
            metrics: true,
            crash_backoff: Duration::from_millis(250),
            paused: false,
            faults: Vec::new(),
            logs: LogStore::default(),
            usage: HashMap::new(),
            deadline_exceeded: HashMap::new(),
            last_restart: HashMap::new(),
            next_node: 0,
            event_index: HashMap::new(),
            files: FileSystems::default(),
            request_faults: Vec::new(),
            memory_needs: Vec::new(),
        }
    }
}

impl Sim {
    /// The fault for `image`, the first registered substring that matches.
    pub(crate) fn fault_for(&self, image: &str) -> Option<PodFault> {
        self.faults
            .iter()
            .find(|(needle, _)| image.contains(needle.as_str()))
            .map(|(_, fault)| *fault)
    }

    /// `OomKilled` when `image` needs more memory than `limit` (a quantity such as `128Mi`)
    /// allows; a container without a limit, or with one the double cannot read, runs.
    pub(crate) fn oom_for(&self, image: &str, limit: Option<&str>) -> Option<PodFault> {
        let need = self
            .memory_needs
            .iter()
            .find(|(needle, _)| image.contains(needle.as_str()))
            .map(|(_, bytes)| *bytes)?;
        let limit = memory_bytes(limit?)?;
        (limit < need).then_some(PodFault::OomKilled)
    }
}

/// A whole-number memory quantity (`134217728`, `128Mi`, `1G`) in bytes; `None` otherwise.
fn memory_bytes(quantity: &str) -> Option<u64> {
    let split = quantity
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(quantity.len());
    let (digits, suffix) = quantity.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// The simulated nodes' names.
pub(crate) fn node_names(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("node-{i}")).collect()
}

/// Creates the simulated Node objects.
pub(crate) fn create_nodes(state: &mut State) {
    let Some(res) = resources::by_kind("Node") else {
        return;
    };
    for name in node_names(state.sim.nodes) {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
            "spec": {},
            "status": {
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [
                    {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available"},
                    {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure"},
                    {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available"},
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"},
                ],
                "nodeInfo": {"kubeletVersion": crate::discovery::GIT_VERSION, "operatingSystem": "linux", "architecture": "amd64"},
            },
        });
        let _ = state.create(res, "", node, false, false);
    }
}

/// One step of every controller; returns whether anything changed.
pub(crate) fn step(state: &mut State) -> bool {
    let before = state.resource_version();
    gc::step(state);
    autoscaler::step(state);
    deployment::step(state);
    replicaset::step(state);
    statefulset::step(state);
    daemonset::step(state);
    kubelet::step(state);
    endpoints::step(state);
    quota::step(state);
    state.resource_version() != before
}

/// Writes `obj`'s status back (no-op when unchanged).
fn write_status(state: &mut State, obj: Value) {
    let (kind, ns, name) = meta::key(&obj);
    if let Some(res) = resources::by_kind(&kind) {
        let _ = state.update(res, &ns, &name, obj, Part::Status, false);
    }
}

/// Writes `obj` through the main endpoint (no-op when unchanged).
fn write(state: &mut State, obj: Value) {
    let (kind, ns, name) = meta::key(&obj);
    if let Some(res) = resources::by_kind(&kind) {
        let _ = state.update(res, &ns, &name, obj, Part::Main, false);
    }
}

/// Creates `obj` as a controller does.
fn create(state: &mut State, obj: Value) -> Option<Value> {
    let (kind, ns, _) = meta::key(&obj);
    let res = resources::by_kind(&kind)?;
    state.create(res, &ns, obj, false, false).ok()
}

/// Deletes the object at `kind/ns/name` in the background, as controllers do.
fn delete(state: &mut State, kind: &str, namespace: &str, name: &str) {
    if let Some(res) = resources::by_kind(kind) {
        let _ = state.delete(res, namespace, name, &DeleteOptions::default(), false);
    }
}

/// Pods controlled by `owner_uid` in `namespace` that are not terminating.
fn owned_pods(state: &State, namespace: &str, owner_uid: &str) -> Vec<Value> {
    state
        .owned_by("Pod", owner_uid)
        .filter(|p| {
            meta::namespace(p) == namespace
                && meta::controller_uid(p) == Some(owner_uid)
                && !meta::is_terminating(p)
        })
        .cloned()
        .collect()
}

/// Whether the pod's Ready condition is True.
fn pod_ready(pod: &Value) -> bool {
    json::array_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| {
            json::str_at(c, &["type"]) == Some("Ready")
                && json::str_at(c, &["status"]) == Some("True")
        })
}

/// Whether the pod has been ready for at least `min_ready_seconds`.
fn pod_available(pod: &Value, min_ready_seconds: i64) -> bool {
    if !pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let since = json::array_at(pod, &["status", "conditions"])
        .iter()
        .find(|c| json::str_at(c, &["type"]) == Some("Ready"))
        .and_then(|c| json::str_at(c, &["lastTransitionTime"]))
        .and_then(meta::parse_time);
    since.is_some_and(|t| {
        jiff::Timestamp::now().duration_since(t)
            >= jiff::SignedDuration::from_secs(min_ready_seconds)
    })
}

/// Resolves an int-or-percent (`2`, `"25%"`) against `total`, rounding up or down.
fn int_or_percent(value: Option<&Value>, total: i64, round_up: bool, default: i64) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => {
            let Some(percent) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return s.parse().unwrap_or(default);
            };
            let scaled = percent * total;
            if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            }
        }
        _ => default,
    }
}

/// Sets (or refreshes) a status condition of `type`; timestamps move only when something changed.
fn set_condition(
    status: &mut Value,
    kind: &str,
    state: &str,
    reason: &str,
    message: &str,
    touch: bool,
) {
    let now = meta::now();
    let conditions = json::object_mut(status, &[])
        .entry("conditions")
        .or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Value::Array(list) = conditions else {
        return;
    };
    if let Some(existing) = list
        .iter_mut()
        .find(|c| json::str_at(c, &["type"]) == Some(kind))
    {
        let same_status = json::str_at(existing, &["status"]) == Some(state);
        let same = same_status
            && json::str_at(existing, &["reason"]) == Some(reason)
            && json::str_at(existing, &["message"]) == Some(message);
        if same && !touch {
            return;
        }
        json::set_at(existing, &["status"], json!(state));
        json::set_at(existing, &["reason"], json!(reason));
        json::set_at(existing, &["message"], json!(message));
        json::set_at(existing, &["lastUpdateTime"], json!(now));
        if !same_status {
            json::set_at(existing, &["lastTransitionTime"], json!(now));
        }
    } else {
        list.push(json!({
            "type": kind, "status": state, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_percent_rounds_like_the_controllers() {
        assert_eq!(int_or_percent(Some(&json!("25%")), 3, true, 0), 1);
        assert_eq!(int_or_percent(Some(&json!("25%")), 3, false, 0), 0);
        assert_eq!(int_or_percent(Some(&json!(2)), 3, false, 0), 2);
        assert_eq!(int_or_percent(None, 3, false, 1), 1);
    }
}
