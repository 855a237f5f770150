//! Watch streams: `{"type": ..., "object": ...}` lines from a resourceVersion, with bookmarks,
//! initial events and `timeoutSeconds`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::SinkExt;
use futures::channel::mpsc;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::resources::Resource;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::WatchEvent;

/// What a watch asks for.
#[derive(Debug)]
pub(crate) struct WatchParams {
    pub(crate) namespace: Option<String>,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) resource_version: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) bookmarks: bool,
    pub(crate) send_initial_events: bool,
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": event_type, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn bookmark(res: &Resource, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": metadata}),
    )
}

impl WatchParams {
    fn wants(&self, res: &Resource, event: &WatchEvent) -> bool {
        event.kind == res.kind
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == event.namespace)
            && self.labels.matches_object(&event.object)
            && self.fields.matches(&event.object)
    }
}

/// Starts a watch; the body streams until the timeout, a lagging subscription or the client leaves.
pub(crate) fn start(shared: &Arc<Shared>, res: &'static Resource, params: WatchParams) -> Body {
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let (backlog, mut receiver, mut last_rv) = {
        let state = shared.lock();
        let receiver = state.subscribe();
        let rv = state.resource_version();
        let from = params
            .resource_version
            .as_deref()
            .filter(|v| !v.is_empty() && *v != "0");
        let mut backlog = Vec::new();
        match from {
            Some(text) if !params.send_initial_events => {
                if let Some(events) = text
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| state.history_since(n))
                {
                    backlog.extend(
                        events
                            .iter()
                            .filter(|e| params.wants(res, e))
                            .map(|e| line(e.event_type, &e.object)),
                    );
                } else {
                    let gone = ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {text} ({rv})"),
                    );
                    backlog.push(line("ERROR", &gone.to_status()));
                }
            }
            _ => {
                let ns = params.namespace.as_deref();
                for obj in state.list(res.kind, ns, &params.labels, &params.fields) {
                    backlog.push(line("ADDED", &obj));
                }
                if params.send_initial_events && params.bookmarks {
                    backlog.push(bookmark(res, rv, true));
                }
            }
        }
        (backlog, receiver, rv)
    };
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        for item in backlog {
            if tx.send(Ok(item)).await.is_err() {
                return;
            }
        }
        let deadline = params.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                () = tokio::time::sleep_until(sleep_until) => return,
                _ = ticker.tick() => {
                    if tx.is_closed() || shared.is_shut_down() {
                        return;
                    }
                    if params.bookmarks && tx.send(Ok(bookmark(res, last_rv, false))).await.is_err() {
                        return;
                    }
                }
                message = receiver.recv() => match message {
                    Ok(event) => {
                        last_rv = event.rv;
                        if params.wants(res, &event) && tx.send(Ok(line(event.event_type, &event.object))).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return,
                },
            }
        }
    });
    Body::from_stream(rx)
}
