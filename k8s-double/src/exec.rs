//! `pods/{name}/exec` over WebSocket, speaking the Kubernetes remote-command subprotocols
//! `v5.channel.k8s.io` (kubectl 1.30+) and `v4.channel.k8s.io`: binary frames whose first byte
//! is the channel (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize); v5 adds `[255, channel]`
//! to close one channel (the client's end of stdin). The command runs in the simulated
//! container ([`crate::commands`]); its exit is reported as a `Status` on channel 3 and the
//! connection then closes normally.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts as _;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::commands::{self, Context, Outcome};
use crate::error::ApiError;
use crate::json;
use crate::server::Shared;

/// The subprotocols served, by name.
const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

/// The most stdin an exec may send (a `kubectl cp` of a large file stops here).
const STDIN_LIMIT: usize = 64 * 1024 * 1024;
/// Output is sent in frames of at most this many bytes.
const FRAME: usize = 32 * 1024;

/// The namespace and pod of an exec path, `/api/v1/namespaces/{ns}/pods/{name}/exec`.
pub(crate) fn target(segments: &[&str]) -> Option<(String, String)> {
    match segments {
        ["api", "v1", "namespaces", ns, "pods", pod, "exec"] => {
            Some(((*ns).to_owned(), (*pod).to_owned()))
        }
        _ => None,
    }
}

/// One exec to run once the connection is upgraded.
#[derive(Debug)]
struct Job {
    namespace: String,
    pod: String,
    container: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    streams: Streams,
    v5: bool,
}

/// Which streams the client attached.
#[derive(Debug, Clone, Copy)]
struct Streams {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

fn flag(query: &[(String, String)], name: &str) -> bool {
    query
        .iter()
        .any(|(k, v)| k == name && matches!(v.as_str(), "true" | "1"))
}

/// The container's environment as a process in it sees it.
fn environment(pod_name: &str, container: &Value) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ),
        ("HOSTNAME".to_owned(), pod_name.to_owned()),
    ];
    for var in json::array_at(container, &["env"]) {
        if let Some(name) = json::str_at(var, &["name"]) {
            let value = json::str_at(var, &["value"]).unwrap_or_default();
            env.push((name.to_owned(), value.to_owned()));
        }
    }
    env
}

/// Checks the request the way the API server does before it proxies to the kubelet.
fn job(
    shared: &Shared,
    namespace: &str,
    pod_name: &str,
    query: &[(String, String)],
) -> Result<Job, ApiError> {
    let state = shared.lock();
    let pod = state
        .get("Pod", namespace, pod_name)
        .ok_or_else(|| ApiError::not_found("", "pods", pod_name))?;
    let containers = json::array_at(pod, &["spec", "containers"]);
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| json::str_at(c, &["name"]))
        .collect();
    let requested = query
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.as_str())
        .filter(|c| !c.is_empty());
    let container = match requested {
        Some(c) => c,
        None if names.len() == 1 => names[0],
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let Some(spec) = containers
        .iter()
        .find(|c| json::str_at(c, &["name"]) == Some(container))
    else {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {pod_name}"
        )));
    };
    if json::str_at(pod, &["spec", "nodeName"]).is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(format!(
            "pod {pod_name} does not have a host assigned"
        )));
    }
    let running = json::array_at(pod, &["status", "containerStatuses"])
        .iter()
        .any(|s| {
            json::str_at(s, &["name"]) == Some(container)
                && json::at(s, &["state", "running"]).is_some()
        });
    if !running {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: container not found (\"{container}\")"
        )));
    }
    let argv: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if argv.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let (stdin, stdout, stderr) = (
        flag(query, "stdin"),
        flag(query, "stdout"),
        flag(query, "stderr"),
    );
    if !(stdin || stdout || stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least one of stdin, stdout, stderr",
        ));
    }
    if flag(query, "tty") && stderr {
        return Err(ApiError::bad_request("tty and stderr cannot both be true"));
    }
    Ok(Job {
        namespace: namespace.to_owned(),
        pod: pod_name.to_owned(),
        container: container.to_owned(),
        env: environment(pod_name, spec),
        argv,
        streams: Streams {
            stdin,
            stdout,
            stderr,
        },
        v5: false,
    })
}

/// The first subprotocol of the client's list that the double speaks, in the client's order
/// (as the API server's handshake picks it).
fn choose_protocol(parts: &Parts) -> Option<&'static str> {
    parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| match p {
            V5 => Some(V5),
            V4 => Some(V4),
            _ => None,
        })
}

/// Answers an exec request: an error `Status` before the upgrade, or `101 Switching Protocols`
/// and the session. Returns the HTTP status for the request log.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    parts: &mut Parts,
    namespace: &str,
    pod: &str,
    query: &[(String, String)],
) -> Result<(u16, Response), ApiError> {
    let mut job = job(shared, namespace, pod, query)?;
    let protocol = choose_protocol(parts);
    let upgrade = WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|_| ApiError::bad_request("Upgrade request required"))?;
    let Some(protocol) = protocol else {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: requested protocol(s) are not supported: {:?}; supports [{V5} {V4}]",
            parts
                .headers
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        )));
    };
    job.v5 = protocol == V5;
    let mut upgrade = upgrade;
    upgrade.set_selected_protocol(HeaderValue::from_static(protocol));
    let shared = Arc::clone(shared);
    let response = upgrade.on_upgrade(move |socket| session(socket, shared, job));
    Ok((101, response))
}

/// Reads stdin frames until the client closes stdin (v5 `[255, 0]`) or the connection.
/// Returns the bytes and whether the connection is still open.
async fn read_stdin(socket: &mut WebSocket, v5: bool) -> (Vec<u8>, bool, bool) {
    let mut data = Vec::new();
    let mut too_much = false;
    loop {
        match socket.recv().await {
            Some(Ok(Message::Binary(frame))) => match frame.first() {
                Some(&STDIN) if !too_much => {
                    data.extend_from_slice(&frame[1..]);
                    if data.len() > STDIN_LIMIT {
                        too_much = true;
                        data.clear();
                    }
                }
                Some(&CLOSE) if v5 && frame.get(1) == Some(&STDIN) => {
                    return (data, true, too_much);
                }
                _ => {}
            },
            Some(Ok(Message::Close(_)) | Err(_)) | None => return (data, false, too_much),
            Some(Ok(_)) => {}
        }
    }
}

/// The `Status` the kubelet writes on channel 3 when the command ends.
fn status(argv: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            argv.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

async fn send(socket: &mut WebSocket, channel: u8, data: &[u8]) -> bool {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(data);
    socket.send(Message::Binary(frame.into())).await.is_ok()
}

async fn session(mut socket: WebSocket, shared: Arc<Shared>, job: Job) {
    // The API server first writes an empty frame on the lowest writable channel.
    let hello = if job.streams.stdout {
        STDOUT
    } else if job.streams.stderr {
        STDERR
    } else {
        STATUS
    };
    if !send(&mut socket, hello, &[]).await {
        return;
    }
    let (stdin, open, too_much) = if job.streams.stdin {
        read_stdin(&mut socket, job.v5).await
    } else {
        (Vec::new(), true, false)
    };
    let outcome = if too_much {
        Outcome::fail(
            1,
            format!("stdin exceeds the k8s double's limit of {STDIN_LIMIT} bytes\n"),
        )
    } else {
        let mut state = shared.lock();
        let fs = state
            .sim
            .files
            .get_mut(&job.namespace, &job.pod, &job.container);
        let mut ctx = Context {
            fs,
            env: job.env.clone(),
            stdin: &stdin,
        };
        commands::run(&mut ctx, &job.argv)
    };
    if !open {
        return;
    }
    let streams = [
        (STDOUT, job.streams.stdout, &outcome.stdout),
        (STDERR, job.streams.stderr, &outcome.stderr),
    ];
    for (channel, wanted, data) in streams {
        if wanted {
            for chunk in data.chunks(FRAME) {
                if !send(&mut socket, channel, chunk).await {
                    return;
                }
            }
        }
    }
    let status = status(&job.argv, outcome.code).to_string();
    if !send(&mut socket, STATUS, status.as_bytes()).await {
        return;
    }
    let close = Message::Close(Some(CloseFrame {
        code: 1000,
        reason: "".into(),
    }));
    if socket.send(close).await.is_err() {
        return;
    }
    // Wait for the client's close so that nothing sent is cut off by a reset.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_travel_in_the_status_causes() {
        let argv = vec!["false".to_owned()];
        assert_eq!(status(&argv, 0)["status"], "Success");
        let failed = status(&argv, 3);
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failed["details"]["causes"][0]["message"], "3");
    }

    fn offered(protocols: &str) -> Option<&'static str> {
        let request = axum::http::Request::builder()
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocols)
            .body(())
            .unwrap();
        choose_protocol(&request.into_parts().0)
    }

    #[test]
    fn the_first_protocol_the_client_lists_that_is_served_wins() {
        assert_eq!(offered("v5.channel.k8s.io"), Some(V5));
        assert_eq!(offered("v5.channel.k8s.io, v4.channel.k8s.io"), Some(V5));
        assert_eq!(offered("v4.channel.k8s.io,v5.channel.k8s.io"), Some(V4));
        assert_eq!(
            offered("base64.channel.k8s.io, v4.channel.k8s.io"),
            Some(V4)
        );
        assert_eq!(offered("channel.k8s.io"), None);
    }

    #[test]
    fn exec_paths_name_namespace_and_pod() {
        let path = ["api", "v1", "namespaces", "shop", "pods", "api-1", "exec"];
        assert_eq!(target(&path), Some(("shop".to_owned(), "api-1".to_owned())));
        assert_eq!(target(&path[..6]), None);
    }
}
