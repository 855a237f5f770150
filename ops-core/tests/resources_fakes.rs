//! Issue 14, resources and autoscaling: the fake platform keeps requests, limits and an
//! autoscaler per workload for real, records every change as a mutation, passes the same
//! conformance functions the Kubernetes and Compose backends run, and a dry-run view refuses
//! the writes.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;

use ops_core::platform::{
    Autoscaler, AutoscalerSpec, ContainerResources, ContainerSelector, PlatformCapabilities,
    ResourceUpdate, ResourceValues, ScaleOptions, WorkloadStatus,
};
use ops_core::read_only::ReadOnly;
use ops_core::testing::{FakePlatform, conformance};
use ops_core::{ErrorKind, Platform as _, WorkloadRef};

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn two_containers(api: &WorkloadRef) -> FakePlatform {
    FakePlatform::default()
        .with_workload(WorkloadStatus::healthy(api.clone(), 2))
        .with_resources(
            api,
            vec![
                ContainerResources::new("app")
                    .with_limits(ResourceValues::default().with_memory("256Mi".parse().unwrap())),
                ContainerResources::new("sidecar")
                    .with_limits(ResourceValues::default().with_cpu("50m".parse().unwrap())),
            ],
        )
}

#[tokio::test(start_paused = true)]
async fn fake_resources_conform_and_each_change_is_a_mutation() {
    let api = api();
    let platform = two_containers(&api);
    conformance::resources::resources_set_and_read_back(&platform, &api, "app").await;
    let mutations = platform.mutations();
    assert_eq!(
        mutations.len(),
        1,
        "only the accepted update: {mutations:?}"
    );
    assert!(
        mutations[0].contains("app: requests cpu none -> 100m, memory none -> 256Mi; limits cpu none -> 200m, memory 256Mi -> 512Mi"),
        "{mutations:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn fake_autoscaler_conforms_and_keeps_replicas_within_its_bounds() {
    let api = api();
    let platform = FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1));
    conformance::resources::autoscaler_create_then_raise_min(&platform, &api).await;
    assert_eq!(platform.mutations().len(), 2, "{:?}", platform.mutations());
    // The minimum of 3 holds the replicas at 3, and scaling by hand is refused.
    assert_eq!(platform.status(&api).unwrap().desired, 3);
    let err = platform
        .scale(&api, 5, ScaleOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.detail().unwrap().contains("autoscaler"),
        "{}",
        err.chain()
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_side_dry_run_reports_the_change_and_changes_nothing() {
    let api = api();
    let platform = two_containers(&api);
    let before = platform.resources(&api).await.unwrap();
    let change = platform
        .set_resources(
            &api,
            ResourceUpdate::new(ContainerSelector::All)
                .limit_memory("1Gi".parse().unwrap())
                .with_dry_run(true),
        )
        .await
        .unwrap();
    assert_eq!(change.after.len(), 2, "both containers selected");
    assert!(!change.rolled_out);
    assert_eq!(platform.resources(&api).await.unwrap(), before);
    let hpa = platform
        .set_autoscaler(&api, AutoscalerSpec::new(2, 4).unwrap().with_dry_run(true))
        .await
        .unwrap();
    assert!(hpa.created());
    assert_eq!(platform.autoscaler(&api).await.unwrap(), None);
    assert!(
        platform.mutations().is_empty(),
        "{:?}",
        platform.mutations()
    );
}

#[tokio::test(start_paused = true)]
async fn a_compose_like_fake_says_where_to_persist_and_has_no_autoscaling() {
    let api: WorkloadRef = "shop/service/api".parse().unwrap();
    let mut caps = PlatformCapabilities::all();
    caps.durable_config = false;
    caps.autoscaling = false;
    let platform = FakePlatform::default()
        .with_workload(WorkloadStatus::healthy(api.clone(), 1))
        .with_capabilities(caps);
    let change = platform
        .set_resources(
            &api,
            ResourceUpdate::new(ContainerSelector::All).limit_memory("512Mi".parse().unwrap()),
        )
        .await
        .unwrap();
    assert!(!change.rolled_out, "an in-place update restarts nothing");
    assert!(change.persist_in.is_some());
    let err = platform.autoscaler(&api).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test(start_paused = true)]
async fn the_dry_run_view_reads_but_refuses_both_writes() {
    let api = api();
    let fake = Arc::new(
        two_containers(&api).with_autoscaler(&api, Autoscaler::new("api".parse().unwrap(), 2, 10)),
    );
    let view = ReadOnly::new(Arc::clone(&fake));
    assert_eq!(view.resources(&api).await.unwrap().len(), 2);
    assert_eq!(
        view.autoscaler(&api).await.unwrap().unwrap().max_replicas,
        10
    );
    let err = view
        .set_resources(
            &api,
            ResourceUpdate::new(ContainerSelector::All).limit_memory("1Gi".parse().unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let err = view
        .set_autoscaler(&api, AutoscalerSpec::new(3, 10).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(fake.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn arc_dyn_platform_forwards_the_new_methods() {
    let api = api();
    let platform: Arc<dyn ops_core::Platform> = Arc::new(two_containers(&api));
    // Through the forwarding impl, not the trait's Unsupported default.
    assert_eq!(platform.resources(&api).await.unwrap().len(), 2);
    assert_eq!(platform.autoscaler(&api).await.unwrap(), None);
    let boxed: Box<dyn ops_core::Platform> = Box::new(two_containers(&api));
    assert_eq!(boxed.resources(&api).await.unwrap().len(), 2);
}
