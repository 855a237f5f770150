//! The Deployment controller: `ReplicaSets` per pod template, revisions, rolling and recreate updates,
//! history cleanup and the status kubectl's rollout status reads.

use serde_json::{Value, json};

use super::{create, delete, int_or_percent, set_condition, write, write_status};
use crate::events::{self, EventType};
use crate::json;
use crate::meta;
use crate::store::State;

const COMPONENT: &str = "deployment-controller";
const REVISION: &str = "deployment.kubernetes.io/revision";
const HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";

/// Deployment annotations the controller does not copy onto `ReplicaSets`.
const SKIPPED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    HISTORY,
    DESIRED,
    MAX,
    "deprecated.deployment.rollback.to",
];

pub(super) fn step(state: &mut State) {
    let deployments: Vec<Value> = state.all("Deployment", None).cloned().collect();
    for d in deployments {
        if !meta::is_terminating(&d) {
            sync(state, &d);
        }
    }
}

/// The template without the hash label and without empty fields, for comparing templates.
fn comparable(template: &Value) -> Value {
    let mut t = template.clone();
    json::remove_at(&mut t, &["metadata", "labels", HASH_LABEL]);
    json::pruned(&t)
}

/// The `pod-template-hash` of a template.
pub(crate) fn template_hash(template: &Value, collisions: i64) -> String {
    let text = format!("{}{collisions}", json::canonical(&comparable(template)));
    meta::safe_encode(meta::fnv32a(&text))
}

fn revision(rs: &Value) -> i64 {
    json::str_at(rs, &["metadata", "annotations", REVISION])
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn replicas(obj: &Value) -> i64 {
    json::i64_at(obj, &["spec", "replicas"]).unwrap_or(0)
}

fn status_count(obj: &Value, field: &str) -> i64 {
    json::i64_at(obj, &["status", field]).unwrap_or(0)
}

fn owned_replica_sets(state: &State, d: &Value) -> Vec<Value> {
    let mut list: Vec<Value> = state
        .owned_by("ReplicaSet", meta::uid(d))
        .filter(|rs| {
            meta::namespace(rs) == meta::namespace(d)
                && meta::controller_uid(rs) == Some(meta::uid(d))
                && !meta::is_terminating(rs)
        })
        .cloned()
        .collect();
    list.sort_by(|a, b| {
        let key = |o: &Value| {
            json::str_at(o, &["metadata", "creationTimestamp"])
                .unwrap_or_default()
                .to_owned()
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| meta::name(a).cmp(meta::name(b)))
    });
    list
}

/// Copies the Deployment's annotations (minus the skipped ones) and the revision onto `rs`.
fn set_annotations(d: &Value, rs: &mut Value, revision: i64, max_surge: i64) {
    let annotations = json::object_mut(rs, &["metadata", "annotations"]);
    for (k, v) in json::string_map(d, &["metadata", "annotations"]) {
        if !SKIPPED.contains(&k.as_str()) {
            annotations.insert(k, json!(v));
        }
    }
    annotations.insert(REVISION.to_owned(), json!(revision.to_string()));
    annotations.insert(DESIRED.to_owned(), json!(replicas(d).to_string()));
    annotations.insert(MAX.to_owned(), json!((replicas(d) + max_surge).to_string()));
}

fn scale_rs(state: &mut State, d: &Value, rs: &Value, to: i64, max_surge: i64) {
    let from = replicas(rs);
    if from == to {
        return;
    }
    let Some(mut current) = state
        .get("ReplicaSet", meta::namespace(rs), meta::name(rs))
        .cloned()
    else {
        return;
    };
    json::set_at(&mut current, &["spec", "replicas"], json!(to));
    json::set_at(
        &mut current,
        &["metadata", "annotations", DESIRED],
        json!(replicas(d).to_string()),
    );
    json::set_at(
        &mut current,
        &["metadata", "annotations", MAX],
        json!((replicas(d) + max_surge).to_string()),
    );
    write(state, current);
    let direction = if to > from { "up" } else { "down" };
    events::record(
        state,
        d,
        EventType::Normal,
        "ScalingReplicaSet",
        &format!(
            "Scaled {direction} replica set {} from {from} to {to}",
            meta::name(rs)
        ),
        COMPONENT,
    );
}

#[allow(
    clippy::too_many_lines,
    reason = "one pass of the controller's sync, in its order"
)]
fn sync(state: &mut State, d: &Value) {
    let namespace = meta::namespace(d).to_owned();
    let template = json::at(d, &["spec", "template"])
        .cloned()
        .unwrap_or(json!({}));
    let want = replicas(d);
    let paused = json::bool_at(d, &["spec", "paused"]);
    let recreate = json::str_at(d, &["spec", "strategy", "type"]) == Some("Recreate");
    let rolling = json::at(d, &["spec", "strategy", "rollingUpdate"]);
    let (max_surge, mut max_unavailable) = if recreate {
        (0, 0)
    } else {
        (
            int_or_percent(rolling.and_then(|r| r.get("maxSurge")), want, true, 0),
            int_or_percent(
                rolling.and_then(|r| r.get("maxUnavailable")),
                want,
                false,
                0,
            ),
        )
    };
    if !recreate && max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    let all = owned_replica_sets(state, d);
    let wanted = comparable(&template);
    let mut new_rs = all
        .iter()
        .find(|rs| {
            comparable(json::at(rs, &["spec", "template"]).unwrap_or(&Value::Null)) == wanted
        })
        .cloned();
    let max_revision = all.iter().map(revision).max().unwrap_or(0);
    let mut created = false;

    if !paused {
        match new_rs.clone() {
            None => {
                let old_total: i64 = all.iter().map(replicas).sum();
                let initial = if recreate {
                    if old_total > 0 { 0 } else { want }
                } else if old_total == 0 {
                    want
                } else {
                    (want + max_surge - old_total).clamp(0, want)
                };
                let hash = template_hash(
                    &template,
                    json::i64_at(d, &["status", "collisionCount"]).unwrap_or(0),
                );
                let mut rs_template = template.clone();
                json::set_at(
                    &mut rs_template,
                    &["metadata", "labels", HASH_LABEL],
                    json!(hash),
                );
                let mut selector = json::at(d, &["spec", "selector"])
                    .cloned()
                    .unwrap_or(json!({}));
                json::set_at(&mut selector, &["matchLabels", HASH_LABEL], json!(hash));
                let labels = json::at(&rs_template, &["metadata", "labels"])
                    .cloned()
                    .unwrap_or(json!({}));
                let mut rs = json!({
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": format!("{}-{hash}", meta::name(d)),
                        "namespace": namespace,
                        "labels": labels,
                        "ownerReferences": [meta::controller_ref(d)],
                    },
                    "spec": {"replicas": initial, "selector": selector, "template": rs_template},
                });
                if let Some(min_ready) = json::at(d, &["spec", "minReadySeconds"]) {
                    json::set_at(&mut rs, &["spec", "minReadySeconds"], min_ready.clone());
                }
                set_annotations(d, &mut rs, max_revision + 1, max_surge);
                if let Some(rs) = create(state, rs) {
                    created = true;
                    if initial > 0 {
                        events::record(
                            state,
                            d,
                            EventType::Normal,
                            "ScalingReplicaSet",
                            &format!(
                                "Scaled up replica set {} from 0 to {initial}",
                                meta::name(&rs)
                            ),
                            COMPONENT,
                        );
                    }
                    new_rs = Some(rs);
                }
            }
            Some(rs) => {
                let current = revision(&rs);
                let next = if current < max_revision {
                    max_revision + 1
                } else {
                    current
                };
                let mut updated = rs.clone();
                if next != current && current > 0 {
                    let history = json::str_at(&rs, &["metadata", "annotations", HISTORY])
                        .unwrap_or_default();
                    let history = if history.is_empty() {
                        current.to_string()
                    } else {
                        format!("{history},{current}")
                    };
                    json::set_at(
                        &mut updated,
                        &["metadata", "annotations", HISTORY],
                        json!(history),
                    );
                }
                set_annotations(d, &mut updated, next, max_surge);
                write(state, updated);
                new_rs = state
                    .get("ReplicaSet", &namespace, meta::name(&rs))
                    .cloned();
            }
        }
    }

    // Keep the Deployment's revision annotation in step with its newest ReplicaSet.
    if let Some(rs) = &new_rs
        && let Some(mut current) = state.get("Deployment", &namespace, meta::name(d)).cloned()
    {
        let rev = revision(rs).to_string();
        if json::str_at(&current, &["metadata", "annotations", REVISION]) != Some(rev.as_str()) {
            json::set_at(
                &mut current,
                &["metadata", "annotations", REVISION],
                json!(rev),
            );
            write(state, current);
        }
    }

    let new_name = new_rs.as_ref().map(|rs| meta::name(rs).to_owned());
    let olds: Vec<Value> = owned_replica_sets(state, d)
        .into_iter()
        .filter(|rs| Some(meta::name(rs)) != new_name.as_deref())
        .collect();
    let new_rs = new_name.and_then(|n| state.get("ReplicaSet", &namespace, &n).cloned());

    if paused {
        if let Some(rs) = &new_rs
            && olds.iter().all(|o| replicas(o) == 0)
        {
            scale_rs(state, d, rs, want, max_surge);
        }
    } else if let Some(rs) = &new_rs {
        if recreate {
            for old in &olds {
                scale_rs(state, d, old, 0, max_surge);
            }
            if olds.iter().all(|o| status_count(o, "replicas") == 0) {
                scale_rs(state, d, rs, want, max_surge);
            }
        } else {
            roll(state, d, rs, &olds, want, max_surge, max_unavailable);
        }
    }

    cleanup(state, d, new_rs.as_ref());
    update_status(state, d, new_rs.as_ref(), want, max_unavailable, created);
}

#[allow(
    clippy::too_many_arguments,
    reason = "the rolling update's inputs, computed once by sync"
)]
fn roll(
    state: &mut State,
    d: &Value,
    new_rs: &Value,
    olds: &[Value],
    want: i64,
    max_surge: i64,
    max_unavailable: i64,
) {
    // Scale the new ReplicaSet up within the surge budget.
    let new_spec = replicas(new_rs);
    let total: i64 = olds.iter().map(replicas).sum::<i64>() + new_spec;
    if new_spec > want {
        scale_rs(state, d, new_rs, want, max_surge);
    } else if new_spec < want {
        let room = want + max_surge - total;
        if room > 0 {
            scale_rs(
                state,
                d,
                new_rs,
                new_spec + room.min(want - new_spec),
                max_surge,
            );
        }
    }
    // Scale old ReplicaSets down while keeping the minimum available.
    let old_total: i64 = olds.iter().map(replicas).sum();
    if old_total == 0 {
        return;
    }
    let new_rs = state
        .get("ReplicaSet", meta::namespace(new_rs), meta::name(new_rs))
        .cloned()
        .unwrap_or_else(|| new_rs.clone());
    let all_pods = old_total + replicas(&new_rs);
    let min_available = want - max_unavailable;
    let new_unavailable = (replicas(&new_rs) - status_count(&new_rs, "availableReplicas")).max(0);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return;
    }
    let mut cleaned = 0;
    let mut remaining: Vec<(Value, i64)> = olds.iter().map(|o| (o.clone(), replicas(o))).collect();
    for (old, spec) in &mut remaining {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = *spec - status_count(old, "availableReplicas");
        if *spec == 0 || unhealthy <= 0 {
            continue;
        }
        let down = unhealthy.min(max_scaled_down - cleaned);
        *spec -= down;
        cleaned += down;
    }
    let available: i64 = olds
        .iter()
        .map(|o| status_count(o, "availableReplicas"))
        .sum::<i64>()
        + status_count(&new_rs, "availableReplicas");
    let mut budget = available - min_available;
    for (old, spec) in &mut remaining {
        if budget <= 0 {
            break;
        }
        let down = (*spec).min(budget);
        *spec -= down;
        budget -= down;
        let _ = old;
    }
    for (old, spec) in remaining {
        scale_rs(state, d, &old, spec, max_surge);
    }
}

fn cleanup(state: &mut State, d: &Value, new_rs: Option<&Value>) {
    let limit = json::i64_at(d, &["spec", "revisionHistoryLimit"])
        .unwrap_or(10)
        .max(0);
    let new_name = new_rs.map(meta::name);
    let mut idle: Vec<Value> = owned_replica_sets(state, d)
        .into_iter()
        .filter(|rs| {
            Some(meta::name(rs)) != new_name
                && replicas(rs) == 0
                && status_count(rs, "replicas") == 0
        })
        .collect();
    let excess = usize::try_from(limit)
        .ok()
        .and_then(|l| idle.len().checked_sub(l))
        .unwrap_or(0);
    idle.sort_by_key(revision);
    for rs in idle.into_iter().take(excess) {
        delete(state, "ReplicaSet", meta::namespace(&rs), meta::name(&rs));
    }
}

/// The Progressing condition for a rollout past its deadline.
pub(crate) fn deadline_condition(rs_name: &str) -> (&'static str, &'static str, String) {
    (
        "False",
        "ProgressDeadlineExceeded",
        format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
    )
}

#[allow(
    clippy::too_many_lines,
    reason = "the counts, then both conditions in the controller's order"
)]
fn update_status(
    state: &mut State,
    d: &Value,
    new_rs: Option<&Value>,
    want: i64,
    max_unavailable: i64,
    created: bool,
) {
    let Some(mut current) = state
        .get("Deployment", meta::namespace(d), meta::name(d))
        .cloned()
    else {
        return;
    };
    let all = owned_replica_sets(state, d);
    let new_rs = new_rs.and_then(|rs| {
        state
            .get("ReplicaSet", meta::namespace(rs), meta::name(rs))
            .cloned()
    });
    let sum = |field: &str| all.iter().map(|rs| status_count(rs, field)).sum::<i64>();
    let (total_pods, ready, available) = (
        sum("replicas"),
        sum("readyReplicas"),
        sum("availableReplicas"),
    );
    let spec_total: i64 = all.iter().map(replicas).sum();
    let updated = new_rs.as_ref().map_or(0, |rs| status_count(rs, "replicas"));
    let old_status = current.get("status").cloned().unwrap_or(json!({}));
    let mut status = old_status.clone();
    let generation = json::i64_at(&current, &["metadata", "generation"]).unwrap_or(1);
    json::set_at(&mut status, &["observedGeneration"], json!(generation));
    json::set_at(&mut status, &["replicas"], json!(total_pods));
    json::set_at(&mut status, &["updatedReplicas"], json!(updated));
    json::set_at(&mut status, &["readyReplicas"], json!(ready));
    json::set_at(&mut status, &["availableReplicas"], json!(available));
    json::set_at(
        &mut status,
        &["unavailableReplicas"],
        json!((spec_total - available).max(0)),
    );
    for field in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ] {
        if json::i64_at(&status, &[field]) == Some(0) {
            json::remove_at(&mut status, &[field]);
        }
    }
    if available >= want - max_unavailable {
        set_condition(
            &mut status,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            false,
        );
    } else {
        set_condition(
            &mut status,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            false,
        );
    }
    let rs_name = new_rs
        .as_ref()
        .map(|rs| meta::name(rs).to_owned())
        .unwrap_or_default();
    let previous_reason = json::array_at(&old_status, &["conditions"])
        .iter()
        .find(|c| json::str_at(c, &["type"]) == Some("Progressing"))
        .and_then(|c| json::str_at(c, &["reason"]).map(str::to_owned));
    let previous_update = json::array_at(&old_status, &["conditions"])
        .iter()
        .find(|c| json::str_at(c, &["type"]) == Some("Progressing"))
        .and_then(|c| json::str_at(c, &["lastUpdateTime"]))
        .and_then(meta::parse_time);
    let complete = new_rs.is_some() && updated == want && available >= want && total_pods == want;
    let progressed = ["updatedReplicas", "readyReplicas", "availableReplicas"]
        .iter()
        .any(|f| {
            json::i64_at(&status, &[f]).unwrap_or(0) > json::i64_at(&old_status, &[f]).unwrap_or(0)
        });
    let deadline = json::i64_at(d, &["spec", "progressDeadlineSeconds"]).unwrap_or(600);
    let marked = state.sim.deadline_exceeded.get(meta::uid(d)) == Some(&generation);
    let timed_out = !complete
        && !progressed
        && previous_reason
            .as_deref()
            .is_some_and(|r| r == "ReplicaSetUpdated" || r == "NewReplicaSetCreated")
        && previous_update.is_some_and(|t| {
            jiff::Timestamp::now().duration_since(t) > jiff::SignedDuration::from_secs(deadline)
        });
    if json::bool_at(d, &["spec", "paused"]) {
        set_condition(
            &mut status,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            false,
        );
    } else if previous_reason.as_deref() == Some("DeploymentPaused") {
        set_condition(
            &mut status,
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed",
            false,
        );
    } else if marked
        || (timed_out || previous_reason.as_deref() == Some("ProgressDeadlineExceeded"))
            && !complete
            && !progressed
    {
        let (s, reason, message) = deadline_condition(&rs_name);
        set_condition(&mut status, "Progressing", s, reason, &message, false);
    } else if complete {
        set_condition(
            &mut status,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            false,
        );
    } else if created {
        set_condition(
            &mut status,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            &format!("Created new replica set \"{rs_name}\""),
            false,
        );
    } else if !rs_name.is_empty() {
        set_condition(
            &mut status,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs_name}\" is progressing."),
            progressed,
        );
    }
    order_conditions(&mut status);
    json::set_at(&mut current, &["status"], status);
    write_status(state, current);
}

/// Available first, then Progressing, as the controller keeps them.
fn order_conditions(status: &mut Value) {
    if let Some(Value::Array(list)) = status.get_mut("conditions") {
        list.sort_by_key(|c| match json::str_at(c, &["type"]) {
            Some("Available") => 0,
            Some("Progressing") => 1,
            _ => 2,
        });
    }
}
