//! Core v1 Events the simulated controllers and kubelet record, counted like the event correlator does.

use serde_json::{Value, json};

use crate::json;
use crate::meta;
use crate::resources;
use crate::store::{Part, State};

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// Records an event about `involved`; a repeat of the same reason and message bumps `count`.
pub(crate) fn record(
    state: &mut State,
    involved: &Value,
    event_type: EventType,
    reason: &str,
    message: &str,
    component: &str,
) {
    record_at(
        state, involved, None, event_type, reason, message, component,
    );
}

/// As [`record`], about one container (`fieldPath: spec.containers{name}`).
pub(crate) fn record_at(
    state: &mut State,
    involved: &Value,
    field_path: Option<&str>,
    event_type: EventType,
    reason: &str,
    message: &str,
    component: &str,
) {
    let Some(res) = resources::by_kind("Event") else {
        return;
    };
    let namespace = meta::namespace(involved).to_owned();
    let uid = meta::uid(involved);
    let now = meta::now();
    // Repeats are found through an index, not a scan of every event: events pile up (a real
    // cluster keeps them an hour) and a scan per record made big rollouts quadratic.
    let index_key = (
        namespace.clone(),
        uid.to_owned(),
        reason.to_owned(),
        message.to_owned(),
    );
    let existing = state
        .sim
        .event_index
        .get(&index_key)
        .and_then(|name| state.get("Event", &namespace, name))
        .cloned();
    if let Some(mut event) = existing {
        let count = json::i64_at(&event, &["count"]).unwrap_or(1) + 1;
        json::set_at(&mut event, &["count"], json!(count));
        json::set_at(&mut event, &["lastTimestamp"], json!(now));
        let name = meta::name(&event).to_owned();
        let _ = state.update(res, &namespace, &name, event, Part::Main, false);
        return;
    }
    let nanos = jiff::Timestamp::now().as_nanosecond();
    let mut involved_ref = json!({
        "kind": meta::kind(involved),
        "namespace": namespace,
        "name": meta::name(involved),
        "uid": uid,
        "apiVersion": json::str_at(involved, &["apiVersion"]).unwrap_or_default(),
        "resourceVersion": json::str_at(involved, &["metadata", "resourceVersion"]).unwrap_or_default(),
    });
    if let Some(path) = field_path {
        json::set_at(&mut involved_ref, &["fieldPath"], json!(path));
    }
    let host = json::str_at(involved, &["spec", "nodeName"]).filter(|_| component == "kubelet");
    let mut source = json!({"component": component});
    if let Some(host) = host {
        json::set_at(&mut source, &["host"], json!(host));
    }
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{}.{:x}", meta::name(involved), nanos), "namespace": namespace},
        "involvedObject": involved_ref,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": event_type.as_str(),
        "eventTime": null,
        "reportingComponent": component,
        "reportingInstance": host.unwrap_or_default(),
    });
    if let Ok(created) = state.create(res, &namespace, event, false, false) {
        let name = meta::name(&created).to_owned();
        state.sim.event_index.insert(index_key, name);
    }
}
