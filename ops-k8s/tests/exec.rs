//! Exec and copy, with kubectl as the oracle: `kubectl exec` and `KubePlatform::exec` give the
//! same stdout, stderr and exit code on the same pod of the API server double; `kubectl cp`
//! and `copy_from` / `copy_to` move the same bytes. Plus what only opsbook promises: argv,
//! never a shell; only the workload's own pods; paths that cannot escape; bounded output.
//!
//! With `CI=true` the kubectl tests run, never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::fmt::Write as _;
use std::time::Duration;

use ops_core::platform::{ExecCommand, ExecOutput};
use ops_core::{ErrorKind, InstanceRef, Platform as _};
use serde_json::json;
use support::{Env, kubectl_available, workload};

const NS: &str = "shop";

/// Deployment `api` with one replica running `containers`.
fn api_deployment(containers: &serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": containers}}},
    })
}

/// The name of the pod labelled `app=APP`.
fn pod_of(env: &Env, app: &str) -> String {
    let pod = env
        .cluster
        .list("Pod", NS)
        .into_iter()
        .find(|p| p["metadata"]["labels"]["app"] == app)
        .unwrap_or_else(|| panic!("a pod of {app}"));
    pod["metadata"]["name"].as_str().unwrap().to_owned()
}

/// A Deployment `api` (one pod, container `app`, env `MODE=fast`) with `/etc/app.conf` in its
/// container; returns the pod's name.
async fn api_pod(env: &Env) -> String {
    env.create(api_deployment(
        &json!([{"name": "app", "image": "shop/api:1",
                                      "env": [{"name": "MODE", "value": "fast"}]}]),
    ))
    .await;
    let name = pod_of(env, "api");
    env.cluster
        .write_file(NS, &name, "app", "/etc/app.conf", "mode=fast\nport=8080\n")
        .unwrap();
    name
}

/// When kubectl is on the PATH (see [`kubectl_available`]): a double with the api pod.
async fn with_kubectl() -> Option<(Env, String)> {
    if !kubectl_available() {
        return None;
    }
    let env = Env::start().await;
    let pod = api_pod(&env).await;
    Some((env, pod))
}

fn instance(pod: &str) -> InstanceRef {
    workload(NS, "deployment", "api").instance(pod).unwrap()
}

async fn exec(env: &Env, pod: &str, argv: &[&str]) -> ExecOutput {
    env.platform
        .exec(&instance(pod), &ExecCommand::new(argv.to_vec()).unwrap())
        .await
        .expect("exec")
}

/// The exec requests the double answered.
fn exec_requests(env: &Env) -> Vec<k8s_double::RecordedRequest> {
    env.cluster
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/exec"))
        .collect()
}

#[tokio::test]
async fn exec_gives_what_kubectl_exec_gives() {
    let Some((env, pod)) = with_kubectl().await else {
        return;
    };
    for argv in [
        &["cat", "/etc/app.conf"][..],
        &["cat", "/etc/app.conf", "/nope"],
        &["printenv", "MODE"],
        &["echo", "a;b", "$(id)", "`id`"],
        &["false"],
        &["sh", "-c", "exit 3"],
        &["no-such-program", "--flag"],
    ] {
        let ours = exec(&env, &pod, argv).await;
        let mut args = vec!["exec", "-n", NS, pod.as_str(), "--"];
        args.extend_from_slice(argv);
        let theirs = env.kubectl(&args).await;
        let code = ours.exit_code.expect("an exit code");
        assert_eq!(i64::from(theirs.code), code, "{argv:?}: {}", theirs.stderr);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            theirs.stdout,
            "{argv:?}"
        );
        // kubectl adds its own line after the command's stderr when the exit code is not 0.
        let mut expected = String::from_utf8_lossy(&ours.stderr).into_owned();
        if code != 0 {
            let _ = writeln!(expected, "command terminated with exit code {code}");
        }
        assert_eq!(expected, theirs.stderr, "{argv:?}");
    }
}

#[tokio::test]
async fn exec_sends_an_argv_never_a_shell_string() {
    let env = Env::start().await;
    let pod = api_pod(&env).await;
    env.cluster.clear_requests();
    let out = exec(&env, &pod, &["echo", "a; rm -rf /", "$(id)"]).await;
    assert_eq!(out.stdout, b"a; rm -rf / $(id)\n");
    assert!(out.success());
    let requests = exec_requests(&env);
    assert_eq!(requests.len(), 1);
    let sent: Vec<String> = url::form_urlencoded::parse(requests[0].query.as_bytes())
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(sent, ["echo", "a; rm -rf /", "$(id)"]);
    assert_eq!(requests[0].query_param("container").as_deref(), Some("app"));
    assert_eq!(requests[0].status, 101);
}

#[tokio::test]
async fn copy_from_gives_the_bytes_kubectl_cp_gives() {
    let Some((env, pod)) = with_kubectl().await else {
        return;
    };
    // Binary, larger than one frame and one pipe buffer.
    let data: Vec<u8> = (0..251u8).rev().cycle().take(200_000).collect();
    env.cluster
        .write_file(NS, &pod, "app", "/srv/data/report.bin", data.clone())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("report.bin");
    let source = format!("{NS}/{pod}:/srv/data/report.bin");
    let run = env.kubectl(&["cp", &source, local.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let theirs = std::fs::read(&local).unwrap();
    let ours = env
        .platform
        .copy_from(&instance(&pod), "/srv/data/report.bin")
        .await
        .expect("copy_from");
    assert_eq!(theirs, data);
    assert_eq!(ours, theirs);

    let err = env
        .platform
        .copy_from(&instance(&pod), "/srv/data/missing")
        .await
        .expect_err("missing file");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:#}");
    let err = env
        .platform
        .copy_from(&instance(&pod), "/srv/data")
        .await
        .expect_err("a directory");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:#}");

    // Streamed: the same bytes, the same refusals, nothing written for a refusal.
    let mut sink = Vec::new();
    let n = env
        .platform
        .copy_from_into(&instance(&pod), "/srv/data/report.bin", &mut sink)
        .await
        .expect("copy_from_into");
    assert_eq!((n, &sink), (theirs.len() as u64, &theirs));
    for (path, kind) in [
        ("/srv/data/missing", ErrorKind::NotFound),
        ("/srv/data", ErrorKind::InvalidInput),
        ("srv/data/report.bin", ErrorKind::InvalidInput),
    ] {
        let mut sink = Vec::new();
        let err = env
            .platform
            .copy_from_into(&instance(&pod), path, &mut sink)
            .await
            .expect_err(path);
        assert_eq!(err.kind(), kind, "{path}: {err:#}");
        assert!(sink.is_empty(), "{path}: nothing written");
    }
}

#[tokio::test]
async fn archive_from_holds_the_files_kubectl_cp_copies_of_a_directory() {
    let Some((env, pod)) = with_kubectl().await else {
        return;
    };
    let big: Vec<u8> = (0..251u8).cycle().take(100_000).collect();
    for (path, data) in [
        ("/srv/data/schema.json", b"{}".to_vec()),
        ("/srv/data/shards/a.db", big.clone()),
    ] {
        env.cluster.write_file(NS, &pod, "app", path, data).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("data");
    let source = format!("{NS}/{pod}:/srv/data");
    let run = env.kubectl(&["cp", &source, local.to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let ours = env
        .platform
        .archive_from(&instance(&pod), "/srv/data/")
        .await
        .expect("archive_from");
    let mut files = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(ours.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        assert!(name.starts_with("data/"), "{name}");
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            files.insert(name, data);
        }
    }
    let mut theirs = std::collections::BTreeMap::new();
    for rel in ["schema.json", "shards/a.db"] {
        theirs.insert(
            format!("data/{rel}"),
            std::fs::read(local.join(rel)).unwrap(),
        );
    }
    assert_eq!(files, theirs);
    assert_eq!(files["data/shards/a.db"], big);

    let missing = env
        .platform
        .archive_from(&instance(&pod), "/srv/nothing")
        .await
        .expect_err("missing directory");
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing:#}");
    for bad in ["/", "srv/data", "/srv/../etc", "/srv/-rf"] {
        let err = env
            .platform
            .archive_from(&instance(&pod), bad)
            .await
            .expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err:#}");
    }
}

#[tokio::test]
async fn copy_to_leaves_the_file_kubectl_cp_leaves() {
    let Some((env, pod)) = with_kubectl().await else {
        return;
    };
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("upload.bin");
    std::fs::write(&local, &data).unwrap();
    let dest = format!("{NS}/{pod}:/tmp/by-kubectl.bin");
    let run = env.kubectl(&["cp", local.to_str().unwrap(), &dest]).await;
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    env.platform
        .copy_to(&instance(&pod), "/tmp/by-opsbook.bin", data.clone())
        .await
        .expect("copy_to");
    let theirs = env
        .cluster
        .read_file(NS, &pod, "app", "/tmp/by-kubectl.bin");
    let ours = env
        .cluster
        .read_file(NS, &pod, "app", "/tmp/by-opsbook.bin");
    assert_eq!(theirs.as_deref(), Some(&data[..]));
    assert_eq!(ours, theirs);
    // Both ran tar extracting into the destination's directory.
    let commands: Vec<Vec<String>> = exec_requests(&env)
        .iter()
        .map(|r| {
            url::form_urlencoded::parse(r.query.as_bytes())
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .collect();
    assert!(
        commands.contains(&vec![
            "tar".into(),
            "-xmf".into(),
            "-".into(),
            "-C".into(),
            "/tmp".into()
        ]),
        "{commands:?}"
    );
    assert!(
        commands.contains(&vec![
            "tar".into(),
            "xmf".into(),
            "-".into(),
            "-C".into(),
            "/tmp".into()
        ]),
        "{commands:?}"
    );

    // A directory that does not exist is not made up.
    let err = env
        .platform
        .copy_to(&instance(&pod), "/nowhere/x.bin", b"x".to_vec())
        .await
        .expect_err("no such directory");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:#}");
}

#[tokio::test]
async fn paths_escaping_the_destination_are_refused() {
    let env = Env::start().await;
    let pod = api_pod(&env).await;
    env.cluster.clear_requests();
    for path in ["/tmp/../etc/passwd", "tmp/x", "/tmp/./x", "/tmp/", "/"] {
        let err = env
            .platform
            .copy_to(&instance(&pod), path, b"owned".to_vec())
            .await
            .expect_err(path);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{path}: {err:#}");
        let err = env
            .platform
            .copy_from(&instance(&pod), path)
            .await
            .expect_err(path);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{path}: {err:#}");
    }
    assert!(exec_requests(&env).is_empty(), "nothing ran in the pod");
    assert!(
        env.cluster
            .read_file(NS, &pod, "app", "/etc/passwd")
            .is_none()
    );
}

#[tokio::test]
async fn exec_reaches_only_pods_the_workload_controls() {
    let env = Env::start().await;
    api_pod(&env).await;
    // A bare pod wearing the workload's labels, and a pod of another Deployment.
    env.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "impostor", "namespace": NS, "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "app", "image": "evil:1"}]},
    }))
    .await;
    env.create(support::deployment(NS, "other", 1, "shop/other:1"))
        .await;
    let other = pod_of(&env, "other");
    env.cluster.clear_requests();
    for pod in ["impostor", other.as_str()] {
        let err = env
            .platform
            .exec(&instance(pod), &ExecCommand::new(["true"]).unwrap())
            .await
            .expect_err(pod);
        assert_eq!(err.kind(), ErrorKind::NotFound, "{pod}: {err:#}");
        assert!(
            err.detail().unwrap_or_default().contains("does not belong"),
            "{err:#}"
        );
    }
    assert!(
        exec_requests(&env).is_empty(),
        "nothing ran in a foreign pod"
    );
}

#[tokio::test]
async fn the_container_is_chosen_or_named() {
    let env = Env::start().await;
    env.create(api_deployment(
        &json!([{"name": "app", "image": "shop/api:1"},
                                     {"name": "proxy", "image": "envoy:1"}]),
    ))
    .await;
    let pod = pod_of(&env, "api");
    env.cluster
        .write_file(NS, &pod, "proxy", "/etc/envoy.yaml", "admin: {}\n")
        .unwrap();
    let err = env
        .platform
        .exec(&instance(&pod), &ExecCommand::new(["true"]).unwrap())
        .await
        .expect_err("two containers");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let detail = err.detail().unwrap_or_default();
    assert!(
        detail.contains("app") && detail.contains("proxy"),
        "{detail}"
    );
    let mut command = ExecCommand::new(["cat", "/etc/envoy.yaml"]).unwrap();
    command.container = Some("proxy".to_owned());
    let out = env.platform.exec(&instance(&pod), &command).await.unwrap();
    assert_eq!(out.stdout, b"admin: {}\n");
    command.container = Some("sidecar".to_owned());
    let err = env
        .platform
        .exec(&instance(&pod), &command)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn output_and_time_are_bounded() {
    let env = Env::start().await;
    let pod = api_pod(&env).await;
    env.cluster
        .write_file(NS, &pod, "app", "/srv/big", vec![b'x'; 4096])
        .unwrap();
    let small = ops_k8s::KubePlatformBuilder::from_env()
        .kubeconfig(&env.kubeconfig)
        .context("double")
        .with_exec_output_limit(1024)
        .build()
        .await
        .unwrap();
    let err = small
        .exec(
            &instance(&pod),
            &ExecCommand::new(["cat", "/srv/big"]).unwrap(),
        )
        .await
        .expect_err("too much output");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:#}");
    let err = small
        .copy_from(&instance(&pod), "/srv/big")
        .await
        .expect_err("too large a file");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:#}");
    // Streaming holds nothing, so the output limit does not apply to it.
    let mut sink = Vec::new();
    let n = small
        .copy_from_into(&instance(&pod), "/srv/big", &mut sink)
        .await
        .expect("streamed past the output limit");
    assert_eq!((n, sink), (4096, vec![b'x'; 4096]));
    let err = small
        .copy_to(&instance(&pod), "/tmp/big", vec![0; 4096])
        .await
        .expect_err("too large a file");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:#}");
    let hurried = ExecCommand::new(["true"])
        .unwrap()
        .with_timeout(Duration::from_nanos(1));
    let err = env
        .platform
        .exec(&instance(&pod), &hurried)
        .await
        .expect_err("deadline");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:#}");
    assert!(env.platform.capabilities().exec && env.platform.capabilities().copy);
}
