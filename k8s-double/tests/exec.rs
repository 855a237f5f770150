//! `pods/exec` over WebSocket: kube-rs (`v5`/`v4.channel.k8s.io`) and the real kubectl run
//! commands in the simulated containers.

mod common;

use std::time::Duration;

use common::Harness;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[allow(clippy::unwrap_used, reason = "test helper")]
fn client(h: &Harness) -> kube::Client {
    let config = kube::Config::new(h.server.url().parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

/// A running pod `web-0` with one container `app` (env `MODE=fast`) and `/etc/x` in it.
#[allow(clippy::unwrap_used, reason = "test helper")]
async fn pod(h: &Harness) {
    h.cluster
        .create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                     "env": [{"name": "MODE", "value": "fast"}]}]},
        }))
        .unwrap();
    h.settle().await;
    h.cluster
        .write_file("default", "web-0", "app", "/etc/x", "hello from x\n")
        .unwrap();
}

/// Runs `argv` through kube-rs; returns (stdout, stderr, status).
#[allow(clippy::unwrap_used, reason = "test helper")]
async fn kube_exec(h: &Harness, argv: &[&str], stdin: Option<&[u8]>) -> (Vec<u8>, Vec<u8>, Status) {
    let api: Api<Pod> = Api::namespaced(client(h), "default");
    let params = AttachParams::default().stdin(stdin.is_some());
    let mut attached = api.exec("web-0", argv.to_vec(), &params).await.unwrap();
    let mut out = attached.stdout().unwrap();
    let mut err = attached.stderr().unwrap();
    let status = attached.take_status().unwrap();
    if let Some(data) = stdin {
        let mut writer = attached.stdin().unwrap();
        writer.write_all(data).await.unwrap();
        writer.shutdown().await.unwrap();
    }
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let all = async {
        let (a, b, status) = tokio::join!(
            out.read_to_end(&mut stdout),
            err.read_to_end(&mut stderr),
            status
        );
        a.unwrap();
        b.unwrap();
        status.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .unwrap();
    attached.join().await.unwrap();
    (stdout, stderr, status)
}

/// The first exec request the double answered.
#[allow(clippy::unwrap_used, reason = "test helper")]
fn first_exec(h: &Harness) -> k8s_double::RecordedRequest {
    h.cluster
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/exec"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_exec_gets_stdout_stderr_and_exit_code() {
    let h = Harness::start().await;
    pod(&h).await;
    let (out, err, status) = kube_exec(&h, &["cat", "/etc/x"], None).await;
    assert_eq!(out, b"hello from x\n");
    assert!(err.is_empty());
    assert_eq!(status.status.as_deref(), Some("Success"));
    let (out, err, status) = kube_exec(&h, &["cat", "/etc/x", "/nope"], None).await;
    assert_eq!(out, b"hello from x\n");
    assert_eq!(err, b"cat: /nope: No such file or directory\n");
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &status.details.unwrap().causes.unwrap()[0];
    assert_eq!(
        (cause.reason.as_deref(), cause.message.as_deref()),
        (Some("ExitCode"), Some("1"))
    );
    let (out, _, _) = kube_exec(&h, &["printenv", "MODE"], None).await;
    assert_eq!(out, b"fast\n");
    let (_, err, status) = kube_exec(&h, &["rm", "-rf", "/"], None).await;
    assert_eq!(err, b"rm: command not found\n");
    assert_eq!(
        status.details.unwrap().causes.unwrap()[0]
            .message
            .as_deref(),
        Some("127")
    );
    // stdin reaches the command: a tar archive extracted into the container.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(5);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "new.txt", &b"fresh"[..])
        .unwrap();
    let archive = builder.into_inner().unwrap();
    let (_, err, status) = kube_exec(&h, &["tar", "xmf", "-", "-C", "/tmp"], Some(&archive)).await;
    assert_eq!(status.status.as_deref(), Some("Success"), "{err:?}");
    assert_eq!(
        h.cluster
            .read_file("default", "web-0", "app", "/tmp/new.txt"),
        Some(b"fresh".to_vec())
    );
    let exec = first_exec(&h);
    assert_eq!(exec.status, 101);
    assert_eq!(exec.query_param("command").as_deref(), Some("cat"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_refuses_unknown_pods_and_containers_before_upgrading() {
    let h = Harness::start().await;
    pod(&h).await;
    let api: Api<Pod> = Api::namespaced(client(&h), "default");
    let err = api
        .exec("nope", vec!["true"], &AttachParams::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "{err:?}"
    );
    let err = api
        .exec(
            "web-0",
            vec!["true"],
            &AttachParams::default().container("sidecar"),
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message == "container sidecar is not valid for pod web-0"),
        "{err:?}"
    );
    h.cluster.pause_controllers();
    h.cluster
        .modify("Pod", "default", "web-0", |p| {
            p["status"]["containerStatuses"][0]["state"] =
                json!({"waiting": {"reason": "CrashLoopBackOff"}});
        })
        .unwrap();
    let err = api
        .exec("web-0", vec!["true"], &AttachParams::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message.contains("container not found")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_runs_in_the_simulated_container() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    pod(&h).await;
    let run = h.kubectl(&["exec", "web-0", "--", "cat", "/etc/x"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "hello from x\n");
    let run = h.kubectl(&["exec", "web-0", "--", "false"]).await;
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    let run = h
        .kubectl(&["exec", "web-0", "--", "sh", "-c", "exit 3"])
        .await;
    assert_eq!(run.code, 3, "{} {}", run.stdout, run.stderr);
    let run = h.kubectl(&["exec", "web-0", "--", "cat", "/nope"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cat: /nope: No such file or directory"),
        "{}",
        run.stderr
    );
    let exec = first_exec(&h);
    assert_eq!(exec.status, 101, "kubectl upgraded to a WebSocket");
}
