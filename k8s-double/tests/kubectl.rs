//! The real kubectl against the double: what it sends, and that it gets the answers a cluster gives.

mod common;

use std::time::Duration;

use common::{Harness, RunExt as _, daemonset, kubectl_available, replica_sets, statefulset};
use k8s_double::PodFault;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_sees_created_objects() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    h.deployment("web", 2, "nginx:1.27").await;
    let out = h.kubectl(&["get", "deploy,rs,pods", "-o", "json"]).await;
    let items = out.ok().json()["items"].as_array().cloned().unwrap();
    let kinds: Vec<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "Deployment").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "ReplicaSet").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "Pod").count(),
        2,
        "{kinds:?}"
    );
    let deployment = items.iter().find(|i| i["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["status"]["availableReplicas"], 2);
    // kubectl create with server-side dry run stores nothing.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cm.json");
    std::fs::write(&file, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}}).to_string()).unwrap();
    let file = file.to_str().unwrap();
    h.kubectl(&["create", "--validate=false", "--dry-run=server", "-f", file])
        .await
        .ok();
    assert!(h.cluster.get("ConfigMap", "default", "cfg").is_none());
    h.kubectl(&["create", "--validate=false", "-f", file])
        .await
        .ok();
    assert_eq!(
        h.cluster.get("ConfigMap", "default", "cfg").unwrap()["data"]["a"],
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_restart_sends_strategic_merge_patch_and_rolls_out_revision_2() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    h.deployment("web", 3, "nginx:1.27").await;
    h.cluster.clear_requests();
    h.kubectl(&["rollout", "restart", "deployment/web"])
        .await
        .ok();
    let patch = h.patch_sent(
        "/apis/apps/v1/namespaces/default/deployments/web",
        "application/strategic-merge-patch+json",
    );
    let body = patch.json.expect("JSON body");
    let restarted =
        &body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"];
    assert!(
        restarted
            .as_str()
            .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
        "{body}"
    );
    let status = h
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .await;
    status.ok();
    assert!(
        status.stdout.contains("successfully rolled out"),
        "{}",
        status.stdout
    );
    let sets = replica_sets(&h.cluster, "web");
    assert_eq!(
        sets.iter().map(|s| (s.0, s.2)).collect::<Vec<_>>(),
        [(1, 0), (2, 3)]
    );
    let d = h.cluster.get("Deployment", "default", "web").unwrap();
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        d["status"]["conditions"][1]["reason"],
        "NewReplicaSetAvailable"
    );
    let events = h.cluster.list("Event", "default");
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "ScalingReplicaSet" && e["involvedObject"]["name"] == "web")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_fails_on_progress_deadline_exceeded() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    h.deployment("web", 2, "nginx:1.27").await;
    h.cluster.pause_controllers();
    h.cluster
        .set_progress_deadline_exceeded("default", "web")
        .unwrap();
    let out = h
        .kubectl(&["rollout", "status", "deployment/web", "--watch=false"])
        .await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("deployment \"web\" exceeded its progress deadline"),
        "{out:?}"
    );
    // observedGeneration lagging is "waiting", exit 0 without --watch.
    let h2 = Harness::start().await;
    h2.deployment("api", 1, "nginx:1.27").await;
    h2.cluster.pause_controllers();
    h2.cluster
        .set_generation("Deployment", "default", "api", 5)
        .unwrap();
    let out = h2
        .kubectl(&["rollout", "status", "deployment/api", "--watch=false"])
        .await;
    assert!(
        out.stdout
            .contains("Waiting for deployment spec update to be observed"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_undo_history_and_paused_refusal() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    h.deployment("web", 2, "nginx:1.26").await;
    h.kubectl(&["set", "image", "deployment/web", "app=nginx:1.27"])
        .await
        .ok();
    h.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .await
        .ok();
    h.kubectl(&[
        "annotate",
        "deployment/web",
        "kubernetes.io/change-cause=bump to 1.28",
    ])
    .await
    .ok();
    h.kubectl(&["set", "image", "deployment/web", "app=nginx:1.28"])
        .await
        .ok();
    h.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .await
        .ok();
    let history = h.kubectl(&["rollout", "history", "deployment/web"]).await;
    assert!(
        history.ok().stdout.contains("bump to 1.28"),
        "{}",
        history.stdout
    );
    assert_eq!(replica_sets(&h.cluster, "web").len(), 3);

    h.cluster.clear_requests();
    h.kubectl(&["rollout", "undo", "deployment/web"]).await.ok();
    h.patch_sent(
        "/apis/apps/v1/namespaces/default/deployments/web",
        "application/json-patch+json",
    );
    h.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .await
        .ok();
    let d = h.cluster.get("Deployment", "default", "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert!(
        d["spec"]["template"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none()
    );
    // The 1.27 ReplicaSet is reused with the next revision and remembers its old one.
    let sets = replica_sets(&h.cluster, "web");
    assert_eq!(sets.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 3, 4]);
    let reused = h.cluster.get("ReplicaSet", "default", &sets[2].1).unwrap();
    assert_eq!(
        reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "2"
    );

    h.kubectl(&["rollout", "undo", "deployment/web", "--to-revision=1"])
        .await
        .ok();
    h.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .await
        .ok();
    let d = h.cluster.get("Deployment", "default", "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    let missing = h
        .kubectl(&["rollout", "undo", "deployment/web", "--to-revision=42"])
        .await;
    assert!(
        missing.code != 0
            && missing
                .stderr
                .contains("unable to find specified revision 42"),
        "{missing:?}"
    );

    h.kubectl(&["rollout", "pause", "deployment/web"])
        .await
        .ok();
    let paused_undo = h.kubectl(&["rollout", "undo", "deployment/web"]).await;
    assert!(
        paused_undo.code != 0
            && paused_undo
                .stderr
                .contains("you cannot rollback a paused deployment"),
        "{paused_undo:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_restart_refuses_paused_deployment() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    h.deployment("web", 1, "nginx:1.27").await;
    h.kubectl(&["rollout", "pause", "deployment/web"])
        .await
        .ok();
    h.cluster.clear_requests();
    let out = h.kubectl(&["rollout", "restart", "deployment/web"]).await;
    assert!(
        out.code != 0 && out.stderr.contains("can't restart paused deployment"),
        "{out:?}"
    );
    assert!(h.cluster.requests().iter().all(|r| r.method != "PATCH"));
    h.settle().await;
    let d = h.cluster.get("Deployment", "default", "web").unwrap();
    assert_eq!(d["status"]["conditions"][1]["reason"], "DeploymentPaused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_uses_scale_subresource_and_checks_current_replicas() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    h.deployment("web", 2, "nginx:1.27").await;
    h.cluster.clear_requests();
    h.kubectl(&["scale", "deployment/web", "--replicas=4"])
        .await
        .ok();
    let patch = h.patch_sent(
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        "application/merge-patch+json",
    );
    assert_eq!(patch.json, Some(json!({"spec": {"replicas": 4}})));
    h.settle().await;
    assert_eq!(h.cluster.list("Pod", "default").len(), 4);
    let wrong = h
        .kubectl(&[
            "scale",
            "deployment/web",
            "--current-replicas=2",
            "--replicas=3",
        ])
        .await;
    assert!(
        wrong.code != 0 && wrong.stderr.contains("Expected replicas to be 2, was 4"),
        "{wrong:?}"
    );
    h.cluster.clear_requests();
    h.kubectl(&[
        "scale",
        "deployment/web",
        "--current-replicas=4",
        "--replicas=1",
    ])
    .await
    .ok();
    assert!(
        h.cluster
            .requests()
            .iter()
            .any(|r| r.method == "PUT" && r.path.ends_with("/scale"))
    );
    h.settle().await;
    assert_eq!(
        h.cluster.get("Deployment", "default", "web").unwrap()["status"]["replicas"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_statefulset_with_partition() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    let mut sts = statefulset("db", 3, "postgres:16");
    sts["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
    h.cluster.create(sts).unwrap();
    h.settle().await;
    let out = h
        .kubectl(&["rollout", "status", "statefulset/db", "--timeout=30s"])
        .await;
    assert!(
        out.ok().stdout.contains("partitioned roll out complete"),
        "{out:?}"
    );
    h.kubectl(&["set", "image", "statefulset/db", "app=postgres:17"])
        .await
        .ok();
    let out = h
        .kubectl(&["rollout", "status", "statefulset/db", "--timeout=30s"])
        .await;
    assert!(
        out.ok()
            .stdout
            .contains("partitioned roll out complete: 2 new pods have been updated"),
        "{out:?}"
    );
    let image = |n: &str| {
        h.cluster.get("Pod", "default", n).unwrap()["spec"]["containers"][0]["image"].clone()
    };
    assert_eq!(
        (image("db-0"), image("db-1"), image("db-2")),
        (
            json!("postgres:16"),
            json!("postgres:17"),
            json!("postgres:17")
        )
    );
    let revisions = h.cluster.list("ControllerRevision", "default");
    assert_eq!(revisions.len(), 2);
    let history = h.kubectl(&["rollout", "history", "statefulset/db"]).await;
    assert!(history.ok().stdout.contains('2'), "{history:?}");
    // OnDelete is not something rollout status can follow.
    h.kubectl(&[
        "patch",
        "statefulset/db",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}"#,
    ])
    .await
    .ok();
    let out = h
        .kubectl(&["rollout", "status", "statefulset/db", "--watch=false"])
        .await;
    assert!(
        out.code != 0 && out.stderr.contains("only available for RollingUpdate"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_daemonset() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    h.cluster.create(daemonset("agent", "fluentbit:3")).unwrap();
    let out = h
        .kubectl(&["rollout", "status", "daemonset/agent", "--timeout=30s"])
        .await;
    assert!(
        out.ok()
            .stdout
            .contains("daemon set \"agent\" successfully rolled out"),
        "{out:?}"
    );
    assert_eq!(h.cluster.list("Pod", "default").len(), 3);
    h.kubectl(&["rollout", "restart", "daemonset/agent"])
        .await
        .ok();
    h.kubectl(&["rollout", "status", "daemonset/agent", "--timeout=30s"])
        .await
        .ok();
    let ds = h.cluster.get("DaemonSet", "default", "agent").unwrap();
    assert_eq!(ds["status"]["updatedNumberScheduled"], 3);
    assert_eq!(ds["status"]["numberAvailable"], 3);
    let nodes: std::collections::BTreeSet<String> = h
        .cluster
        .list("Pod", "default")
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(nodes.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_tail_previous_and_container_choice() {
    if !kubectl_available() {
        return;
    }
    let h = Harness::with(
        k8s_double::ApiServer::new()
            .tick(Duration::from_millis(10))
            .crash_backoff(Duration::from_millis(50)),
    )
    .await;
    h.cluster.fail_image("crashy", PodFault::CrashLoopBackOff);
    h.cluster.create(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "one", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})).unwrap();
    h.cluster.create(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "two", "namespace": "default"},
        "spec": {"containers": [{"name": "a", "image": "nginx:1.27"}, {"name": "b", "image": "crashy:1"}]}})).unwrap();
    h.settle().await;
    for i in 0..5 {
        h.cluster
            .append_log("default", "one", "app", &format!("line {i}"));
    }
    let out = h.kubectl(&["logs", "pod/one", "--tail=2"]).await;
    assert_eq!(out.ok().stdout, "line 3\nline 4\n");
    let out = h
        .kubectl(&["logs", "pod/one", "--tail=1", "--timestamps"])
        .await;
    let (stamp, text) = out.ok().stdout.trim_end().split_once(' ').unwrap();
    assert_eq!(text, "line 4");
    assert_eq!(
        stamp.len(),
        "2026-01-01T00:00:00.000000000Z".len(),
        "{stamp}"
    );
    let prev = h.kubectl(&["logs", "pod/one", "--previous"]).await;
    assert!(
        prev.code != 0
            && prev
                .stderr
                .contains("previous terminated container \"app\" in pod \"one\" not found"),
        "{prev:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let crashed = h
        .kubectl(&["logs", "pod/two", "-c", "b", "--previous"])
        .await;
    assert!(crashed.ok().stdout.contains("fatal error"), "{crashed:?}");
    let pod = h.cluster.get("Pod", "default", "two").unwrap();
    let b = &pod["status"]["containerStatuses"][1];
    assert_eq!(b["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(b["lastState"]["terminated"]["exitCode"], 1);
    assert!(b["restartCount"].as_i64().unwrap() >= 2, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_pod_is_replaced() {
    let Some(h) = Harness::for_kubectl().await else {
        return;
    };
    h.deployment("web", 2, "nginx:1.27").await;
    let before: Vec<String> = h
        .cluster
        .list("Pod", "default")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let victim = before[0].clone();
    h.kubectl(&["delete", "pod", &victim, "--timeout=30s"])
        .await
        .ok();
    h.settle().await;
    let after: Vec<String> = h
        .cluster
        .list("Pod", "default")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(!after.contains(&victim));
    let events = h.cluster.list("Event", "default");
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "SuccessfulCreate"
                && e["involvedObject"]["kind"] == "ReplicaSet")
    );
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "Killing" && e["involvedObject"]["name"] == victim.as_str())
    );
}
