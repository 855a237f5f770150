//! `KubePlatform` against the API server double: workload state with pods (healthy,
//! crash-looping, OOM-killed, image pull failures), logs of every pod, a followed stream that
//! picks up new pods, events, usage against limits, configuration, stop/start, autoscaler
//! refusal, pod deletion, namespace-wide restart, and the Platform conformance suite with and
//! without metrics-server.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::time::Duration;

use futures::StreamExt as _;
use k8s_double::{ApiServer, PodFault};
use ops_core::platform::{
    ConfigTarget, ConfigUpdate, DeleteOptions, EventOptions, LogFilter, LogOptions, RestartOptions,
    RollbackOptions, RolloutOptions, ScaleOptions, StopOptions, WaitingReason,
};
use ops_core::testing::conformance::platform as conformance;
use ops_core::{ErrorKind, Namespace, Platform as _, PlatformExt as _, ResourceName};
use serde_json::json;
use support::{Env, deployment, workload};

const NS: &str = "shop";

/// The double, serving `metrics.k8s.io` or not, with what [`conformance::run_all`] needs:
/// `web` (two pods that logged the fixture's line, requests and limits on its container, env
/// from the Secret `web-creds`, usage when metrics are served) and `worker` for the
/// autoscaler check.
async fn suite(metrics: bool) -> (Env, conformance::PlatformFixture) {
    let env = Env::with(
        ApiServer::new()
            .tick(Duration::from_millis(10))
            .metrics(metrics),
    )
    .await;
    env.create(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "web-creds", "namespace": NS},
        "data": {"password": "czNjcjN0"},
    }))
    .await;
    let mut web = deployment(NS, "web", 2, "shop/web:1");
    let app = &mut web["spec"]["template"]["spec"]["containers"][0];
    app["resources"] = json!({
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "requests": {"cpu": "250m", "memory": "128Mi"},
    });
    app["envFrom"] = json!([{"secretRef": {"name": "web-creds"}}]);
    env.create(web).await;
    env.create(deployment(NS, "worker", 1, "shop/worker:1"))
        .await;
    let line = "web listening on :8080";
    for pod in env.cluster.list("Pod", NS) {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        env.cluster.append_log(NS, name, "app", line);
        env.cluster.append_log(NS, name, "app", "GET /health 200");
        env.cluster
            .set_pod_usage(NS, name, "app", 100, 64 * 1024 * 1024);
    }
    let fixture = conformance::PlatformFixture::new(workload(NS, "deployment", "web"), line)
        .with_other_image("shop/web:2".parse().unwrap())
        .with_secret("web-creds".parse().unwrap())
        .with_autoscaled(workload(NS, "deployment", "worker"))
        .with_deadline(Duration::from_secs(30));
    (env, fixture)
}

/// How often the platform asked discovery whether `metrics.k8s.io/v1beta1` is served.
fn discoveries(env: &Env) -> usize {
    env.cluster
        .requests()
        .iter()
        .filter(|r| r.path == "/apis/metrics.k8s.io/v1beta1")
        .count()
}

/// The whole Platform suite ([`conformance::run_all`]): every method, every claimed write
/// read back, typed errors, and capabilities that agree with behaviour. With metrics-server
/// (`metrics.k8s.io` served) `resource_usage` is claimed and read for every pod.
#[tokio::test]
async fn whole_platform_suite_passes_on_the_double() {
    let (env, fixture) = suite(true).await;
    assert!(env.platform.capabilities().resource_usage);
    conformance::run_all(&env.platform, &fixture).await;
    assert_eq!(discoveries(&env), 1, "discovered once, when built");
}

/// Without metrics-server `resource_usage` is not claimed, and the suite's check of what a
/// backend lacks finds it refused as `Unsupported`, without asking discovery again.
#[tokio::test]
async fn whole_platform_suite_passes_on_the_double_without_metrics_server() {
    let (env, fixture) = suite(false).await;
    assert!(!env.platform.capabilities().resource_usage);
    conformance::run_all(&env.platform, &fixture).await;
    assert_eq!(discoveries(&env), 1, "the answer is kept");
    let metrics_reads = env
        .cluster
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/apis/metrics.k8s.io/v1beta1/"))
        .count();
    assert_eq!(
        metrics_reads, 0,
        "no usage read from an API that is not served"
    );
}

#[tokio::test]
async fn workload_state_names_every_pod_and_its_trouble() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 3, "shop/api:1")).await;
    let api = workload(NS, "deployment", "api");
    let status = env.platform.workload(&api).await.expect("status");
    assert_eq!((status.desired, status.ready, status.available), (3, 3, 3));
    assert_eq!(status.instances.len(), 3);
    assert!(status.is_healthy());
    assert_eq!(status.revision, Some(1));
    assert_eq!(status.images, ["shop/api:1"]);
    assert!(
        status
            .instances
            .iter()
            .all(|i| i.revision == Some(1) && i.node.is_some())
    );

    // A bad release crash-loops: the new pods say so; the old ones still serve.
    env.cluster.fail_image("api:2", PodFault::CrashLoopBackOff);
    env.set_image(NS, "api", "shop/api:2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = env.platform.workload(&api).await.expect("status");
    let crashing: Vec<_> = status.crash_looping_instances().collect();
    assert!(!crashing.is_empty(), "{status:?}");
    assert!(crashing.iter().all(|i| i.revision == Some(2)));
    assert!(!status.is_healthy());

    let oom = workload(NS, "deployment", "oom");
    env.cluster.fail_image("oom:1", PodFault::OomKilled);
    env.create(deployment(NS, "oom", 1, "shop/oom:1")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = env.platform.workload(&oom).await.expect("status");
    assert!(status.oom_killed_instances().count() >= 1, "{status:?}");

    let pull = workload(NS, "deployment", "pull");
    env.cluster.fail_image("pull:1", PodFault::ImagePullBackOff);
    env.create(deployment(NS, "pull", 1, "shop/pull:1")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = env.platform.workload(&pull).await.expect("status");
    assert!(
        status.instances.iter().any(|i| i
            .waiting
            .as_ref()
            .is_some_and(WaitingReason::is_image_problem)),
        "{status:?}"
    );

    let missing = workload(NS, "deployment", "nope");
    let err = env.platform.workload(&missing).await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let listed = env
        .platform
        .list_workloads(&Namespace::new(NS).expect("ns"))
        .await
        .expect("list");
    assert_eq!(listed.len(), 3, "{listed:?}");
}

#[tokio::test]
async fn logs_come_from_every_pod_merged_in_time_order() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 3, "shop/api:1")).await;
    let api = workload(NS, "deployment", "api");
    let pods: Vec<String> = env
        .cluster
        .list("Pod", NS)
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(pods.len(), 3);
    for (i, pod) in pods.iter().enumerate() {
        env.cluster
            .append_log(NS, pod, "app", &format!("ERROR line {i}"));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lines = env
        .platform
        .logs(
            &api,
            LogOptions::default().with_filter(LogFilter::new("ERROR").expect("filter")),
        )
        .await
        .expect("logs");
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        ["ERROR line 0", "ERROR line 1", "ERROR line 2"],
        "one per pod, in time order"
    );
    let from: std::collections::BTreeSet<_> =
        lines.iter().map(|l| l.instance.to_string()).collect();
    assert_eq!(from.len(), 3, "every pod read, not one");
    assert!(
        lines
            .iter()
            .all(|l| l.container.as_deref() == Some("app") && l.timestamp.is_some())
    );

    // One chosen pod, tail 1.
    let one = ResourceName::new(&pods[0]).expect("name");
    let lines = env
        .platform
        .logs(&api, LogOptions::default().with_instance(one).with_tail(1))
        .await
        .expect("logs");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].text, "ERROR line 0");
}

#[tokio::test]
async fn a_followed_stream_picks_up_pods_that_appear() {
    let mut cfg = ops_k8s::KubeConfig::default();
    cfg.pod_poll_interval = Duration::from_millis(100);
    let env = Env::start().await;
    let platform = ops_k8s::KubePlatformBuilder::from_env()
        .kubeconfig(&env.kubeconfig)
        .with_config(cfg)
        .build()
        .await
        .expect("platform");
    env.create(deployment(NS, "api", 1, "shop/api:1")).await;
    let api = workload(NS, "deployment", "api");
    let mut stream = platform
        .follow_logs(
            &api,
            LogOptions::default().with_filter(LogFilter::new("hello").expect("f")),
        )
        .await
        .expect("follow");
    platform
        .scale(&api, 2, ScaleOptions::default())
        .await
        .expect("scale");
    env.settle().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for pod in env.cluster.list("Pod", NS) {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        env.cluster
            .append_log(NS, &name, "app", &format!("hello from {name}"));
    }
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 2 {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let line = next
            .expect("both pods heard in time")
            .expect("stream open")
            .expect("line");
        seen.insert(line.instance.to_string());
    }
    assert_eq!(seen.len(), 2);
}

#[tokio::test]
async fn events_cover_the_workload_its_replicasets_and_pods() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 2, "shop/api:1")).await;
    let api = workload(NS, "deployment", "api");
    let events = env
        .platform
        .events(&api, EventOptions::default())
        .await
        .expect("events");
    let objects: std::collections::BTreeSet<_> = events
        .iter()
        .map(|e| e.object.split('/').next().unwrap_or_default().to_owned())
        .collect();
    assert!(
        objects.contains("deployment") && objects.contains("replicaset") && objects.contains("pod"),
        "{objects:?}"
    );
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at), "newest last");
    let mut opts = EventOptions::default();
    opts.limit = Some(2);
    assert_eq!(
        env.platform.events(&api, opts).await.expect("events").len(),
        2
    );
}

#[tokio::test]
async fn usage_is_read_against_limits_or_unsupported_without_metrics() {
    let env = Env::with(
        ApiServer::new()
            .tick(Duration::from_millis(10))
            .metrics(true),
    )
    .await;
    let mut d = deployment(NS, "api", 1, "shop/api:1");
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "500m", "memory": "256Mi"}});
    env.create(d).await;
    let pod = env.cluster.list("Pod", NS)[0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    env.cluster
        .set_pod_usage(NS, &pod, "app", 400, 200 * 1024 * 1024);
    let usage = env
        .platform
        .resource_usage(&workload(NS, "deployment", "api"))
        .await
        .expect("usage");
    assert_eq!(usage.len(), 1);
    assert!((usage[0].cpu_cores - 0.4).abs() < 1e-9);
    assert_eq!(usage[0].memory_bytes, 200 * 1024 * 1024);
    assert_eq!(usage[0].memory_limit_bytes, Some(256 * 1024 * 1024));
    assert!((usage[0].cpu_ratio().unwrap_or_default() - 0.8).abs() < 1e-9);

    let plain = Env::with(
        ApiServer::new()
            .tick(Duration::from_millis(10))
            .metrics(false),
    )
    .await;
    plain.create(deployment(NS, "api", 1, "shop/api:1")).await;
    let err = plain
        .platform
        .resource_usage(&workload(NS, "deployment", "api"))
        .await
        .expect_err("no metrics server");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.detail().unwrap_or_default().contains("metrics-server"));
}

#[tokio::test]
async fn stop_remembers_the_count_and_start_restores_it() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 3, "shop/api:1")).await;
    let api = workload(NS, "deployment", "api");
    env.platform
        .stop(&api, StopOptions::default())
        .await
        .expect("stop");
    env.settle().await;
    let d = env.get("Deployment", NS, "api");
    assert_eq!(d["spec"]["replicas"], json!(0));
    assert_eq!(
        d["metadata"]["annotations"][ops_k8s::STOPPED_REPLICAS],
        json!("3")
    );
    // Stopping again changes nothing (the remembered count stays 3).
    env.platform
        .stop(&api, StopOptions::default())
        .await
        .expect("stop again");
    env.platform
        .start(&api, StopOptions::default())
        .await
        .expect("start");
    env.settle().await;
    let d = env.get("Deployment", NS, "api");
    assert_eq!(d["spec"]["replicas"], json!(3));
    assert!(
        d["metadata"]["annotations"]
            .get(ops_k8s::STOPPED_REPLICAS)
            .is_none()
    );
    env.platform
        .wait_rolled_out(
            &api,
            RolloutOptions::default()
                .with_timeout(Duration::from_secs(10))
                .with_poll_interval(Duration::from_millis(50)),
        )
        .await
        .expect("back");

    // A DaemonSet has no count to stop.
    env.create(support::daemonset(NS, "agent", "shop/agent:1"))
        .await;
    let err = env
        .platform
        .stop(&workload(NS, "daemonset", "agent"), StopOptions::default())
        .await
        .expect_err("daemonset");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn an_autoscaled_workload_is_not_fought() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 2, "shop/api:1")).await;
    env.cluster
        .create(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "namespace": NS},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                     "minReplicas": 2, "maxReplicas": 10}
        }))
        .expect("hpa");
    env.cluster.clear_requests();
    let err = env
        .platform
        .scale(
            &workload(NS, "deployment", "api"),
            5,
            ScaleOptions::default(),
        )
        .await
        .expect_err("owned by an HPA");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.detail()
            .unwrap_or_default()
            .contains("HorizontalPodAutoscaler")
    );
    assert!(support::writes(&env.cluster, NS).is_empty());
}

#[tokio::test]
async fn a_pod_without_a_controller_is_not_deleted() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 1, "shop/api:1")).await;
    env.cluster
        .create(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api-debug", "namespace": NS, "labels": {"app": "api"}},
            "spec": {"containers": [{"name": "app", "image": "shop/api:1"}]}}))
        .expect("bare pod");
    let api = workload(NS, "deployment", "api");
    let err = env
        .platform
        .delete_instance(
            &api.instance("api-debug").expect("ref"),
            DeleteOptions::default(),
        )
        .await
        .expect_err("no controller");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(env.cluster.get("Pod", NS, "api-debug").is_some());

    // A pod of another workload, named through this one: refused, untouched.
    env.create(deployment(NS, "other", 1, "shop/other:1")).await;
    let other = workload(NS, "deployment", "other");
    let theirs = env
        .platform
        .workload(&other)
        .await
        .expect("status")
        .instances[0]
        .name
        .clone();
    let err = env
        .platform
        .delete_instance(
            &api.instance(theirs.as_str()).expect("ref"),
            DeleteOptions::default(),
        )
        .await
        .expect_err("not ours");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(env.cluster.get("Pod", NS, theirs.as_str()).is_some());

    let owned = env.platform.workload(&api).await.expect("status").instances[0]
        .name
        .clone();
    env.platform
        .delete_instance(
            &api.instance(owned.as_str()).expect("ref"),
            DeleteOptions::default(),
        )
        .await
        .expect("controlled pod deleted");
    env.settle().await;
    let after = env.platform.workload(&api).await.expect("status");
    assert_eq!(after.instances.len(), 1, "replaced");
    assert_ne!(after.instances[0].name, owned);
}

#[tokio::test]
async fn config_changes_roll_out_and_an_unused_object_is_refused_untouched() {
    let env = Env::start().await;
    let mut d = deployment(NS, "api", 1, "shop/api:1");
    d["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
        json!([{"secretRef": {"name": "api-creds"}}]);
    env.create(d).await;
    env.cluster
        .create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-creds", "namespace": NS}, "data": {"OLD": "eA=="}}))
        .expect("secret");
    let api = workload(NS, "deployment", "api");
    let update = ConfigUpdate::new(ConfigTarget::Secret(
        ResourceName::new("api-creds").expect("n"),
    ))
    .set("API_TOKEN", "s3cr3t-value")
    .remove("OLD");
    let change = env
        .platform
        .update_config(&api, update)
        .await
        .expect("update");
    assert!(change.rolled_out);
    assert_eq!(change.keys_set, ["API_TOKEN"]);
    env.settle().await;
    let secret = env.get("Secret", NS, "api-creds");
    assert_eq!(secret["data"]["API_TOKEN"], json!("czNjcjN0LXZhbHVl"));
    assert!(secret["data"].get("OLD").is_none());
    let d = env.get("Deployment", NS, "api");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        json!("2"),
        "rolled out"
    );

    // A ConfigMap the workload does not use: refused before anything changes.
    env.cluster
        .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": NS}, "data": {"a": "1"}}))
        .expect("cm");
    let update = ConfigUpdate::new(ConfigTarget::ConfigMap(
        ResourceName::new("other").expect("n"),
    ))
    .set("a", "2");
    let err = env
        .platform
        .update_config(&api, update)
        .await
        .expect_err("unused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(env.get("ConfigMap", NS, "other")["data"]["a"], json!("1"));

    // Env on the containers: a template change, rolled out by the controller.
    let update = ConfigUpdate::new(ConfigTarget::Env).set("LOG_LEVEL", "debug");
    env.platform.update_config(&api, update).await.expect("env");
    env.settle().await;
    let env_vars =
        &env.get("Deployment", NS, "api")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env_vars, &json!([{"name": "LOG_LEVEL", "value": "debug"}]));
}

#[tokio::test]
async fn a_namespace_restart_patches_every_deployment_with_one_stamp() {
    let env = Env::start().await;
    for name in ["a", "b", "c"] {
        env.cluster
            .create(deployment(NS, name, 1, "shop/x:1"))
            .expect("created");
    }
    env.cluster
        .create(deployment(NS, "held", 1, "shop/x:1"))
        .expect("created");
    env.settle().await;
    env.cluster
        .modify("Deployment", NS, "held", |d| {
            d["spec"]["paused"] = json!(true);
        })
        .expect("paused");
    let ns = Namespace::new(NS).expect("ns");
    let outcome = env
        .platform
        .restart_namespace(&ns, false)
        .await
        .expect("restart all");
    assert_eq!(outcome.restarted.len(), 3);
    assert_eq!(outcome.refused.len(), 1);
    assert!(outcome.refused[0].1.contains("paused"));
    for name in ["a", "b", "c"] {
        let stamp = &env.get("Deployment", NS, name)["spec"]["template"]["metadata"]["annotations"]
            [ops_k8s::RESTARTED_AT];
        assert_eq!(stamp, &json!(outcome.restarted_at));
    }
    env.platform
        .wait_namespace_available(&ns, Duration::from_secs(20), Duration::from_millis(50))
        .await
        .expect("available");
    // The paused one has nothing pending: kubectl's rule counts it rolled out.
    env.platform
        .wait_namespace_rolled_out(&ns, Duration::from_secs(20), Duration::from_millis(50))
        .await
        .expect("every deployment rolled out");
}

#[tokio::test]
async fn server_side_dry_runs_are_validated_and_change_nothing() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 2, "shop/api:1")).await;
    env.set_image(NS, "api", "shop/api:2").await;
    let api = workload(NS, "deployment", "api");
    let before = env.get("Deployment", NS, "api");
    env.cluster.clear_requests();
    env.platform
        .rollout_restart(&api, RestartOptions::default().with_dry_run(true))
        .await
        .expect("dry restart");
    let mut scale = ScaleOptions::default();
    scale.dry_run = true;
    let change = env.platform.scale(&api, 5, scale).await.expect("dry scale");
    assert_eq!((change.from, change.to), (2, 5));
    let mut undo = RollbackOptions::default();
    undo.dry_run = true;
    env.platform.rollback(&api, undo).await.expect("dry undo");
    env.settle().await;
    let writes: Vec<_> = env
        .cluster
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert!(
        writes
            .iter()
            .all(|r| r.query_param("dryRun").as_deref() == Some("All")),
        "every write carries dryRun=All"
    );
    let after = env.get("Deployment", NS, "api");
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn transient_answers_are_retried_and_conflicts_reread_and_forbidden_names_the_grant() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 2, "shop/api:1")).await;
    let api = workload(NS, "deployment", "api");

    // 429 and 503 on a read: retried with backoff, then answered.
    env.cluster.fail_requests("GET", "/deployments/api", 429, 1);
    env.cluster.fail_requests("GET", "/deployments/api", 503, 1);
    env.cluster.clear_requests();
    let status = env.platform.rollout_status(&api).await.expect("retried");
    assert!(status.done);
    let gets = env
        .cluster
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/deployments/api"))
        .count();
    assert_eq!(gets, 3, "two refused, one answered");

    // 409 on the scale write: read again, write again.
    env.cluster
        .fail_requests("PUT", "/deployments/api/scale", 409, 1);
    env.cluster.clear_requests();
    let change = env
        .platform
        .scale(&api, 3, ScaleOptions::default().expecting(2))
        .await
        .expect("conflict retried");
    assert_eq!((change.from, change.to), (2, 3));
    let scale_calls: Vec<_> = env
        .cluster
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/scale"))
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(
        scale_calls,
        [
            ("GET".to_owned(), 200),
            ("PUT".to_owned(), 409),
            ("GET".to_owned(), 200),
            ("PUT".to_owned(), 200)
        ]
    );

    // 403: PermissionDenied naming what to grant; never retried.
    env.cluster
        .fail_requests("PATCH", "/deployments/api", 403, 1);
    let err = env
        .platform
        .rollout_restart(&api, RestartOptions::default())
        .await
        .expect_err("forbidden");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let detail = err.detail().unwrap_or_default();
    assert!(
        detail.contains("patch deployments in namespace shop"),
        "{detail}"
    );

    // A server that keeps failing: the error after the retries, not a hang (see
    // `a_429_waits_what_the_server_asks_and_retries_stop_after_the_policy_attempts`).
}

/// Retries follow ops-core's `RetryPolicy` (`KubeConfig::retry_policy`): a 429 waits the
/// `retryAfterSeconds` the server sent (the double sends 1 s, as API priority and fairness
/// does), a 503 without one only the jittered backoff (at most 100 ms first), and a server
/// that keeps failing gets `transient_retries` more attempts after the first, no more.
#[tokio::test]
async fn a_429_waits_what_the_server_asks_and_retries_stop_after_the_policy_attempts() {
    let env = Env::start().await;
    env.create(deployment(NS, "api", 2, "shop/api:1")).await;
    let api = workload(NS, "deployment", "api");
    let gets = |env: &Env| {
        env.cluster
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/deployments/api"))
            .count()
    };

    env.cluster.fail_requests("GET", "/deployments/api", 503, 1);
    let t0 = tokio::time::Instant::now();
    env.platform.rollout_status(&api).await.expect("retried");
    let backoff = t0.elapsed();
    assert!(
        backoff < Duration::from_millis(900),
        "a 503 waits the backoff, not a second: {backoff:?}"
    );

    env.cluster.fail_requests("GET", "/deployments/api", 429, 1);
    env.cluster.clear_requests();
    let t0 = tokio::time::Instant::now();
    env.platform.rollout_status(&api).await.expect("retried");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "the 429's retryAfterSeconds (1 s) is honoured: {waited:?}"
    );
    assert_eq!(gets(&env), 2, "one refused, one answered");

    // A server that keeps failing: the error after the retries, not a hang.
    let attempts = env.platform.config().transient_retries + 1;
    env.cluster
        .fail_requests("GET", "/deployments/api", 503, 100);
    env.cluster.clear_requests();
    let err = env
        .platform
        .rollout_status(&api)
        .await
        .expect_err("gives up");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        gets(&env),
        usize::try_from(attempts).unwrap(),
        "the first attempt and transient_retries more"
    );
}
