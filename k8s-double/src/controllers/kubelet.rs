//! The scheduler and kubelet: assign nodes, start containers (or fail them as configured), restart
//! crashing ones, and finish graceful deletions.

use std::time::Instant;

use serde_json::{Value, json};

use super::{PodFault, node_names, write, write_status};
use crate::events::{self, EventType};
use crate::json;
use crate::meta;
use crate::store::State;

pub(super) fn step(state: &mut State) {
    let pods: Vec<Value> = state.all("Pod", None).cloned().collect();
    for pod in pods {
        if meta::is_terminating(&pod) {
            finish_deletion(state, &pod);
        } else if json::str_at(&pod, &["spec", "nodeName"]).is_none_or(str::is_empty) {
            schedule(state, pod);
        } else if json::array_at(&pod, &["status", "containerStatuses"]).is_empty() {
            start(state, &pod);
        } else {
            restart_crashed(state, &pod);
        }
    }
}

fn container_path(name: &str) -> String {
    format!("spec.containers{{{name}}}")
}

fn finish_deletion(state: &mut State, pod: &Value) {
    if !json::array_at(pod, &["metadata", "finalizers"]).is_empty() {
        return;
    }
    for c in json::array_at(pod, &["status", "containerStatuses"]) {
        if json::at(c, &["state", "running"]).is_some() {
            let name = json::str_at(c, &["name"]).unwrap_or_default();
            events::record_at(
                state,
                pod,
                Some(&container_path(name)),
                EventType::Normal,
                "Killing",
                &format!("Stopping container {name}"),
                "kubelet",
            );
        }
    }
    let (ns, name) = (meta::namespace(pod).to_owned(), meta::name(pod).to_owned());
    state.sim.logs.remove_pod(&ns, &name);
    state.sim.last_restart.remove(meta::uid(pod));
    state.remove(&meta::key(pod));
}

fn schedule(state: &mut State, mut pod: Value) {
    let nodes = node_names(state.sim.nodes.max(1));
    let Some(node) = nodes.get(state.sim.next_node % nodes.len()).cloned() else {
        return;
    };
    state.sim.next_node += 1;
    json::set_at(&mut pod, &["spec", "nodeName"], json!(node));
    let (ns, name) = (
        meta::namespace(&pod).to_owned(),
        meta::name(&pod).to_owned(),
    );
    write(state, pod);
    let Some(mut pod) = state.get("Pod", &ns, &name).cloned() else {
        return;
    };
    let now = meta::now();
    json::set_at(
        &mut pod,
        &["status", "conditions"],
        json!([
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}
        ]),
    );
    write_status(state, pod.clone());
    events::record(
        state,
        &pod,
        EventType::Normal,
        "Scheduled",
        &format!("Successfully assigned {ns}/{name} to {node}"),
        "default-scheduler",
    );
}

fn container_id() -> String {
    let hex: String = (0..64)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
        .collect();
    format!("containerd://{hex}")
}

fn image_id(image: &str) -> String {
    let repo = image.split([':', '@']).next().unwrap_or(image);
    format!("{repo}@sha256:{:064x}", u128::from(meta::fnv32a(image)))
}

fn start_line(container: &str, image: &str) -> String {
    format!("container {container} started from image {image}")
}

fn terminated(fault: PodFault, started: &str) -> Value {
    let (reason, code) = if fault == PodFault::OomKilled {
        ("OOMKilled", 137)
    } else {
        ("Error", 1)
    };
    json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": meta::now(), "containerID": container_id()}})
}

fn backoff_message(container: &str, pod: &Value) -> String {
    format!(
        "back-off 10s restarting failed container={container} pod={}_{}({})",
        meta::name(pod),
        meta::namespace(pod),
        meta::uid(pod)
    )
}

#[allow(
    clippy::too_many_lines,
    reason = "one pass over the containers, then the pod status built from them"
)]
fn start(state: &mut State, pod: &Value) {
    let (ns, name) = (meta::namespace(pod).to_owned(), meta::name(pod).to_owned());
    let now = meta::now();
    let mut statuses = Vec::new();
    let mut unready = Vec::new();
    let mut pulling_failed = false;
    for c in json::array_at(pod, &["spec", "containers"]) {
        let cname = json::str_at(c, &["name"]).unwrap_or_default().to_owned();
        let image = json::str_at(c, &["image"]).unwrap_or_default().to_owned();
        let fault = state.sim.fault_for(&image).or_else(|| {
            state
                .sim
                .oom_for(&image, json::str_at(c, &["resources", "limits", "memory"]))
        });
        let path = container_path(&cname);
        let event = |state: &mut State, t: EventType, reason: &str, message: &str| {
            events::record_at(state, pod, Some(&path), t, reason, message, "kubelet");
        };
        event(
            state,
            EventType::Normal,
            "Pulling",
            &format!("Pulling image \"{image}\""),
        );
        let mut status = json!({"name": cname, "image": image, "imageID": "", "restartCount": 0, "ready": false, "started": false});
        if fault == Some(PodFault::ImagePullBackOff) {
            pulling_failed = true;
            event(
                state,
                EventType::Warning,
                "Failed",
                &format!(
                    "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
                ),
            );
            event(state, EventType::Warning, "Failed", "Error: ErrImagePull");
            event(
                state,
                EventType::Normal,
                "BackOff",
                &format!("Back-off pulling image \"{image}\""),
            );
            event(
                state,
                EventType::Warning,
                "Failed",
                "Error: ImagePullBackOff",
            );
            json::set_at(
                &mut status,
                &["state"],
                json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}}),
            );
            unready.push(cname);
            statuses.push(status);
            continue;
        }
        event(
            state,
            EventType::Normal,
            "Pulled",
            &format!(
                "Successfully pulled image \"{image}\" in 1ms (1ms including waiting). Image size: 1024 bytes."
            ),
        );
        event(
            state,
            EventType::Normal,
            "Created",
            &format!("Created container: {cname}"),
        );
        event(
            state,
            EventType::Normal,
            "Started",
            &format!("Started container {cname}"),
        );
        state
            .sim
            .logs
            .start(&ns, &name, &cname, &start_line(&cname, &image));
        json::set_at(&mut status, &["imageID"], json!(image_id(&image)));
        json::set_at(&mut status, &["containerID"], json!(container_id()));
        match fault {
            Some(f @ (PodFault::CrashLoopBackOff | PodFault::OomKilled)) => {
                crash_lines(state, &ns, &name, &cname, f);
                json::set_at(&mut status, &["lastState"], terminated(f, &now));
                json::set_at(
                    &mut status,
                    &["state"],
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": backoff_message(&cname, pod)}}),
                );
                json::set_at(&mut status, &["restartCount"], json!(1));
                event(
                    state,
                    EventType::Warning,
                    "BackOff",
                    &format!(
                        "Back-off restarting failed container {cname} in pod {name}_{ns}({})",
                        meta::uid(pod)
                    ),
                );
                state
                    .sim
                    .last_restart
                    .insert(meta::uid(pod).to_owned(), Instant::now());
                unready.push(cname);
            }
            Some(PodFault::NeverReady) => {
                json::set_at(
                    &mut status,
                    &["state"],
                    json!({"running": {"startedAt": now}}),
                );
                json::set_at(&mut status, &["started"], json!(true));
                event(
                    state,
                    EventType::Warning,
                    "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                );
                unready.push(cname);
            }
            _ => {
                json::set_at(
                    &mut status,
                    &["state"],
                    json!({"running": {"startedAt": now}}),
                );
                json::set_at(&mut status, &["started"], json!(true));
                json::set_at(&mut status, &["ready"], json!(true));
            }
        }
        statuses.push(status);
    }
    let Some(mut current) = state.get("Pod", &ns, &name).cloned() else {
        return;
    };
    let node_index: u8 = json::str_at(pod, &["spec", "nodeName"])
        .and_then(|n| n.rsplit('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let pod_ip = format!("10.244.{node_index}.{}", fastrand::u8(2..250));
    let ready = if unready.is_empty() {
        json!({"status": "True"})
    } else {
        json!({"status": "False", "reason": "ContainersNotReady", "message": format!("containers with unready status: [{}]", unready.join(" "))})
    };
    let condition = |kind: &str, extra: &Value| {
        let mut c = json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
        if let (Some(map), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            map.extend(extra.clone());
        }
        c
    };
    let mut status = json!({
        "phase": if pulling_failed { "Pending" } else { "Running" },
        "conditions": [
            condition("PodReadyToStartContainers", &json!({})),
            condition("Initialized", &json!({})),
            condition("Ready", &ready),
            condition("ContainersReady", &ready),
            condition("PodScheduled", &json!({})),
        ],
        "hostIP": format!("172.18.0.{}", u16::from(node_index) + 1),
        "hostIPs": [{"ip": format!("172.18.0.{}", u16::from(node_index) + 1)}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        "containerStatuses": statuses,
        "qosClass": json::str_at(&current, &["status", "qosClass"]).unwrap_or("BestEffort"),
    });
    let inits: Vec<Value> = json::array_at(pod, &["spec", "initContainers"]).iter().map(|c| json!({
        "name": json::str_at(c, &["name"]), "image": json::str_at(c, &["image"]), "ready": true, "restartCount": 0, "started": false,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}},
    })).collect();
    if !inits.is_empty() {
        json::set_at(&mut status, &["initContainerStatuses"], json!(inits));
    }
    json::set_at(&mut current, &["status"], status);
    write_status(state, current);
}

fn crash_lines(state: &mut State, ns: &str, pod: &str, container: &str, fault: PodFault) {
    let line = if fault == PodFault::OomKilled {
        "fatal error: runtime: out of memory"
    } else {
        "fatal error: exiting with status 1"
    };
    state.sim.logs.append(ns, pod, container, line);
}

fn restart_crashed(state: &mut State, pod: &Value) {
    let uid = meta::uid(pod).to_owned();
    let due = state
        .sim
        .last_restart
        .get(&uid)
        .is_none_or(|t| t.elapsed() >= state.sim.crash_backoff);
    if !due {
        return;
    }
    let (ns, name) = (meta::namespace(pod).to_owned(), meta::name(pod).to_owned());
    let mut current = pod.clone();
    let mut restarted = false;
    let Some(Value::Array(statuses)) = current.pointer_mut("/status/containerStatuses") else {
        return;
    };
    let mut crashed = Vec::new();
    for status in statuses.iter_mut() {
        if json::str_at(status, &["state", "waiting", "reason"]) != Some("CrashLoopBackOff") {
            continue;
        }
        let cname = json::str_at(status, &["name"])
            .unwrap_or_default()
            .to_owned();
        let image = json::str_at(status, &["image"])
            .unwrap_or_default()
            .to_owned();
        let fault =
            if json::str_at(status, &["lastState", "terminated", "reason"]) == Some("OOMKilled") {
                PodFault::OomKilled
            } else {
                PodFault::CrashLoopBackOff
            };
        let count = json::i64_at(status, &["restartCount"]).unwrap_or(0) + 1;
        json::set_at(status, &["restartCount"], json!(count));
        let started = meta::now();
        json::set_at(status, &["lastState"], terminated(fault, &started));
        crashed.push((cname, image, fault));
        restarted = true;
    }
    if !restarted {
        return;
    }
    for (cname, image, fault) in crashed {
        state
            .sim
            .logs
            .start(&ns, &name, &cname, &start_line(&cname, &image));
        crash_lines(state, &ns, &name, &cname, fault);
        events::record_at(
            state,
            pod,
            Some(&container_path(&cname)),
            EventType::Warning,
            "BackOff",
            &format!("Back-off restarting failed container {cname} in pod {name}_{ns}({uid})"),
            "kubelet",
        );
    }
    state.sim.last_restart.insert(uid, Instant::now());
    write_status(state, current);
}
