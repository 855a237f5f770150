//! `GET pods/{name}/log`: container choice, `previous`, `tailLines`, `sinceSeconds`, `sinceTime`,
//! `timestamps` and `follow`, with the API server's and kubelet's error wording.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::SinkExt;
use futures::channel::mpsc;
use serde_json::Value;

use crate::error::ApiError;
use crate::json;
use crate::logs::{LogLine, stamp};
use crate::meta;
use crate::server::Shared;

/// The query of a log request.
#[derive(Debug, Default)]
pub(crate) struct LogQuery {
    pub(crate) container: Option<String>,
    pub(crate) previous: bool,
    pub(crate) tail_lines: Option<usize>,
    pub(crate) since_seconds: Option<i64>,
    pub(crate) since_time: Option<String>,
    pub(crate) timestamps: bool,
    pub(crate) follow: bool,
}

/// A log answer: the text so far, and a stream when following.
#[derive(Debug)]
pub(crate) enum LogReply {
    Text(String),
    Stream(Body),
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    json::array_at(pod, &["spec", list])
        .iter()
        .filter_map(|c| json::str_at(c, &["name"]).map(str::to_owned))
        .collect()
}

fn render(lines: &[LogLine], query: &LogQuery) -> String {
    let since = query
        .since_time
        .as_deref()
        .and_then(meta::parse_time)
        .or_else(|| {
            query.since_seconds.and_then(|s| {
                jiff::Timestamp::now()
                    .checked_sub(jiff::SignedDuration::from_secs(s))
                    .ok()
            })
        });
    let kept: Vec<&LogLine> = lines
        .iter()
        .filter(|l| since.is_none_or(|s| l.time >= s))
        .collect();
    let start = query.tail_lines.map_or(0, |n| kept.len().saturating_sub(n));
    kept.get(start..)
        .unwrap_or_default()
        .iter()
        .map(|l| format_line(l, query.timestamps))
        .collect()
}

fn format_line(line: &LogLine, timestamps: bool) -> String {
    if timestamps {
        format!("{} {}\n", stamp(line.time), line.text)
    } else {
        format!("{}\n", line.text)
    }
}

/// Answers a log request for `namespace/pod`.
///
/// # Errors
/// 404 for a missing pod; 400 for a missing or unknown container, a container that never started,
/// or `previous` without an earlier instance.
#[allow(
    clippy::too_many_lines,
    reason = "the checks in the API server's order, then the follow loop"
)]
pub(crate) fn read(
    shared: &Arc<Shared>,
    namespace: &str,
    pod_name: &str,
    query: &LogQuery,
) -> Result<LogReply, ApiError> {
    let state = shared.lock();
    let pod = state
        .get("Pod", namespace, pod_name)
        .ok_or_else(|| ApiError::not_found("", "pods", pod_name))?;
    let containers = names(pod, "containers");
    let inits = names(pod, "initContainers");
    let container = match &query.container {
        Some(c) if !c.is_empty() => c.clone(),
        _ if containers.len() == 1 => containers[0].clone(),
        _ => {
            let mut message = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !inits.is_empty() {
                let _ = write!(
                    message,
                    " or one of the init containers: [{}]",
                    inits.join(" ")
                );
            }
            return Err(ApiError::bad_request(message));
        }
    };
    if !containers.contains(&container) && !inits.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {pod_name}"
        )));
    }
    let status = json::array_at(pod, &["status", "containerStatuses"])
        .iter()
        .find(|s| json::str_at(s, &["name"]) == Some(container.as_str()));
    if !query.previous && state.sim.logs.instances(namespace, pod_name, &container) == 0 {
        let reason = status
            .and_then(|s| json::str_at(s, &["state", "waiting", "reason"]))
            .map_or("ContainerCreating", |r| {
                if r == "ImagePullBackOff" {
                    "trying and failing to pull image"
                } else {
                    r
                }
            });
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
        )));
    }
    let Some(lines) = state
        .sim
        .logs
        .read(namespace, pod_name, &container, query.previous)
    else {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{pod_name}\" not found"
        )));
    };
    let text = render(lines, query);
    if !query.follow || query.previous {
        return Ok(LogReply::Text(text));
    }
    let mut seen = lines.len();
    let instances = state.sim.logs.instances(namespace, pod_name, &container);
    let uid = meta::uid(pod).to_owned();
    drop(state);
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let shared = Arc::clone(shared);
    let (namespace, pod_name) = (namespace.to_owned(), pod_name.to_owned());
    let timestamps = query.timestamps;
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(text))).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let fresh: Option<String> = {
                let state = shared.lock();
                let alive = state
                    .get("Pod", &namespace, &pod_name)
                    .is_some_and(|p| meta::uid(p) == uid);
                let same_instance =
                    state.sim.logs.instances(&namespace, &pod_name, &container) == instances;
                match state
                    .sim
                    .logs
                    .read(&namespace, &pod_name, &container, false)
                {
                    Some(lines) if alive && same_instance && !shared.is_shut_down() => {
                        let new: String = lines
                            .iter()
                            .skip(seen)
                            .map(|l| format_line(l, timestamps))
                            .collect();
                        seen = lines.len();
                        Some(new)
                    }
                    _ => None,
                }
            };
            match fresh {
                None => return,
                Some(text) if text.is_empty() => {
                    if tx.is_closed() {
                        return;
                    }
                }
                Some(text) => {
                    if tx.send(Ok(Bytes::from(text))).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(LogReply::Stream(Body::from_stream(rx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_and_timestamps() {
        let now = jiff::Timestamp::now();
        let lines: Vec<LogLine> = ["a", "b", "c"]
            .iter()
            .map(|t| LogLine {
                time: now,
                text: (*t).to_owned(),
            })
            .collect();
        let q = LogQuery {
            tail_lines: Some(2),
            ..LogQuery::default()
        };
        assert_eq!(render(&lines, &q), "b\nc\n");
        let q = LogQuery {
            tail_lines: Some(1),
            timestamps: true,
            ..LogQuery::default()
        };
        let out = render(&lines, &q);
        assert!(out.ends_with("Z c\n"), "{out}");
        let q = LogQuery {
            tail_lines: Some(0),
            ..LogQuery::default()
        };
        assert_eq!(render(&lines, &q), "");
    }
}
