//! kube-rs against the double: typed get/list/patch, conflicts, dry run, scale, logs and watch.

mod common;

use std::time::Duration;

use common::{Harness, deployment};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use serde_json::json;

#[allow(clippy::unwrap_used, reason = "test helper")]
fn client(h: &Harness) -> kube::Client {
    let config = kube::Config::new(h.server.url().parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_watch_sees_rollout_from_resource_version() {
    let h = Harness::start().await;
    let client = client(&h);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.clone().unwrap();
    let mut stream = api
        .watch(
            &WatchParams::default()
                .fields("metadata.name=web")
                .timeout(10),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    h.cluster
        .create(deployment("web", 2, "nginx:1.27"))
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        let mut added = false;
        while let Some(event) = stream.try_next().await.unwrap() {
            match event {
                WatchEvent::Added(d) => added = d.metadata.name.as_deref() == Some("web"),
                WatchEvent::Modified(d) if added => {
                    let status = d.status.unwrap_or_default();
                    if status.available_replicas == Some(2) && status.updated_replicas == Some(2) {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(seen, "watch ended before the rollout was seen");
    // A runtime watcher (list, then watch with bookmarks) sees pods too.
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let watcher = kube::runtime::watcher(
        pods,
        kube::runtime::watcher::Config::default().labels("app=web"),
    );
    let first = tokio::time::timeout(
        Duration::from_secs(10),
        kube::runtime::WatchStreamExt::applied_objects(watcher)
            .boxed()
            .try_next(),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert!(first.metadata.name.unwrap().starts_with("web-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_conflicts_patches_dry_run_and_scale() {
    let h = Harness::start().await;
    h.deployment("web", 1, "nginx:1.27").await;
    let api: Api<Deployment> = Api::namespaced(client(&h), "default");
    let mut stale = api.get("web").await.unwrap();
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .unwrap();
    stale.metadata.labels = None;
    let err = api
        .replace("web", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );

    let failed_test = Patch::<()>::Json(
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 7}]))
            .unwrap(),
    );
    let err = api
        .patch("web", &PatchParams::default(), &failed_test)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422),
        "{err:?}"
    );

    let before = api.get("web").await.unwrap();
    let dry = api
        .patch("web", &PatchParams::default().dry_run(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}})))
        .await
        .unwrap();
    assert_eq!(
        dry.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("nginx:1.28")
    );
    let after = api.get("web").await.unwrap();
    assert_eq!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );

    let current = api.get_scale("web").await.unwrap();
    assert_eq!(
        current.metadata.resource_version,
        after.metadata.resource_version
    );
    assert_eq!(current.status.unwrap().selector.as_deref(), Some("app=web"));
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    h.settle().await;
    assert_eq!(
        api.get("web").await.unwrap().status.unwrap().ready_replicas,
        Some(3)
    );

    let missing = api.get("nope").await.unwrap_err();
    assert!(
        matches!(&missing, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"),
        "{missing:?}"
    );

    let pods: Api<Pod> = Api::namespaced(client(&h), "default");
    let pod = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
        .remove(0);
    let name = pod.metadata.name.unwrap();
    h.cluster.append_log("default", &name, "app", "hello");
    let text = pods
        .logs(
            &name,
            &LogParams {
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(text, "hello\n");

    api.delete("web", &DeleteParams::foreground())
        .await
        .unwrap();
    h.settle().await;
    assert!(h.cluster.list("ReplicaSet", "default").is_empty());
    assert!(h.cluster.list("Pod", "default").is_empty());
    assert!(h.cluster.get("Deployment", "default", "web").is_none());
}
