//! Rolling restart and recreate wait for each container to be ready before the next, and a
//! removed container shows as missing: `ComposePlatform` against the real Docker engine.
//! Skips (prints why) without an engine or images, unless CI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bollard::Docker;
use ops_compose::ComposePlatform;
use ops_core::platform::{ConfigTarget, ConfigUpdate, RestartOptions, RolloutOptions};
use ops_core::{ErrorKind, Platform, PlatformExt as _, WorkloadRef};
use support::Spec;

const WAIT: Duration = Duration::from_secs(120);

fn rollout() -> RolloutOptions {
    RolloutOptions::default()
        .with_timeout(Duration::from_secs(60))
        .with_poll_interval(Duration::from_millis(250))
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("bounded wait")
}

/// Samples the service's ready count every 100 ms until stopped; the lowest seen.
struct ReadySampler {
    stop: Arc<AtomicBool>,
    min: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadySampler {
    fn start(platform: Arc<ComposePlatform>, w: WorkloadRef) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let min = Arc::new(AtomicU32::new(u32::MAX));
        let task = tokio::spawn({
            let (stop, min) = (Arc::clone(&stop), Arc::clone(&min));
            async move {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(s) = platform.workload(&w).await {
                        min.fetch_min(s.ready, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self { stop, min, task }
    }

    async fn lowest(self) -> u32 {
        self.stop.store(true, Ordering::SeqCst);
        bounded(self.task).await.unwrap();
        self.min.load(Ordering::SeqCst)
    }
}

async fn started_at(docker: &Docker, name: &str) -> String {
    docker
        .inspect_container(
            name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap()
        .state
        .unwrap()
        .started_at
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_waits_for_each_container_to_be_healthy() {
    let p = project_or_skip!("roll");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    p.add("api", 2, &Spec::default()).await;
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let before = [
        started_at(&p.docker, &format!("{}-api-1", p.name)).await,
        started_at(&p.docker, &format!("{}-api-2", p.name)).await,
    ];
    let sampler = ReadySampler::start(Arc::clone(&p.platform), api.clone());
    bounded(p.platform.rollout_restart(&api, RestartOptions::default()))
        .await
        .unwrap();
    // Returned only once the last container passed its HEALTHCHECK.
    let after = p.platform.workload(&api).await.unwrap();
    assert!(after.is_healthy(), "{after:?}");
    assert_eq!(sampler.lowest().await, 1, "one container stayed ready");
    for (n, b) in [1, 2].iter().zip(before) {
        let now = started_at(&p.docker, &format!("{}-api-{n}", p.name)).await;
        assert_ne!(now, b, "container {n} was restarted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_stops_at_a_container_that_stays_unhealthy() {
    let p = project_or_skip!("rollbad", Duration::from_secs(6));
    let api = p.service("api");
    // Healthy on its first start only: after a restart /tmp/ok is gone for good.
    let bad = Spec {
        health_cmd: Some("test -f /tmp/ok".into()),
        ..Spec::script(
            "rm -f /tmp/ok; [ -f /tmp/started ] || touch /tmp/started /tmp/ok; exec sleep infinity",
        )
    };
    let good = Spec {
        health_cmd: Some("test -f /tmp/ok".into()),
        ..Spec::script("touch /tmp/ok; exec sleep infinity")
    };
    p.add("api", 1, &bad).await;
    p.add("api", 2, &good).await;
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let second = format!("{}-api-2", p.name);
    let before = started_at(&p.docker, &second).await;
    let err = bounded(p.platform.rollout_restart(
        &api,
        RestartOptions::default().with_stop_timeout(Duration::from_secs(1)),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:#}");
    let source = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<ops_compose::Error>())
        .expect("the compose error is the source");
    let ops_compose::Error::Unready { container, .. } = source else {
        panic!("not Unready: {source:?}");
    };
    assert_eq!(
        *container,
        format!("{}-api-1", p.name),
        "names the container"
    );
    assert_eq!(
        started_at(&p.docker, &second).await,
        before,
        "the container after it is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_acts_on_the_containers_it_planned() {
    let p = project_or_skip!("rollplan");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let restart = tokio::spawn({
        let (platform, api) = (Arc::clone(&p.platform), api.clone());
        async move {
            platform
                .rollout_restart(&api, RestartOptions::default())
                .await
        }
    });
    // Container 1 is restarting and waiting for its health check when 2 appears.
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.add("api", 2, &Spec::default()).await;
    let second = format!("{}-api-2", p.name);
    let before = started_at(&p.docker, &second).await;
    bounded(restart).await.unwrap().unwrap();
    assert_eq!(
        started_at(&p.docker, &second).await,
        before,
        "a container that appeared during the rollout is not restarted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_recreate_keeps_one_container_ready() {
    let p = project_or_skip!("rollenv");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    p.add("api", 2, &Spec::default()).await;
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let sampler = ReadySampler::start(Arc::clone(&p.platform), api.clone());
    let update = ConfigUpdate::new(ConfigTarget::Env).set("GREETING", "hello");
    bounded(p.platform.update_config(&api, update))
        .await
        .unwrap();
    let after = p.platform.workload(&api).await.unwrap();
    assert!(after.is_healthy(), "{after:?}");
    assert_eq!(sampler.lowest().await, 1, "one container stayed ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_container_shows_as_missing() {
    let p = project_or_skip!("missing");
    let api = p.service("api");
    for n in 1..=3 {
        p.add("api", n, &Spec::script("exec sleep infinity")).await;
    }
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    // Crashed and removed: compose has no controller to bring it back.
    p.docker
        .remove_container(
            &format!("{}-api-2", p.name),
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .unwrap();
    let s = p.platform.workload(&api).await.unwrap();
    assert_eq!((s.desired, s.ready, s.instances.len()), (3, 2, 2));
    assert!(!s.is_healthy());
    let missing = s
        .conditions
        .iter()
        .find(|c| c.kind == ops_compose::MISSING_CONDITION)
        .expect("a missing-instances condition");
    assert!(
        missing
            .message
            .as_deref()
            .unwrap()
            .contains("container-number 2"),
        "{missing:?}"
    );
    let r = p.platform.rollout_status(&api).await.unwrap();
    assert!(!r.done, "{}", r.message);
    assert!(r.message.contains("missing"), "{}", r.message);
}
