//! Releases on the real Docker engine: `set_image` recreates the service's containers with a
//! second local tag of the demo image (the "new release"), the revisions show both images,
//! `rollback` returns to the old one; an image that cannot be pulled changes nothing; and
//! `deploy_release` rolls back a release that crashes at start. Skips (prints why) without
//! an engine or images, unless CI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::time::Duration;

use ops_core::platform::{ImageUpdate, RollbackOptions, RolloutOptions};
use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
use ops_core::runbooks::deploy_release;
use ops_core::testing::conformance::platform as conformance;
use ops_core::{Platform, PlatformExt as _};
use support::{Spec, Tag, demo_image, image_of};

const WAIT: Duration = Duration::from_secs(120);

fn rollout() -> RolloutOptions {
    RolloutOptions::default()
        .with_timeout(Duration::from_secs(60))
        .with_poll_interval(Duration::from_millis(250))
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("bounded wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_recreates_with_the_release_and_rollback_returns_to_the_old_image() {
    let p = project_or_skip!("rel");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    p.add("api", 2, &Spec::default()).await;
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let release = Tag::new(&format!("{}-release", p.name), None);
    let old = demo_image();

    let change = bounded(
        p.platform
            .set_image(&api, ImageUpdate::new(release.0.parse().unwrap())),
    )
    .await
    .unwrap();
    assert_eq!(change.container, "api");
    assert_eq!(change.from.as_deref(), Some(old.as_str()));
    assert!(change.rollout_started);
    let persist = change
        .persist_in
        .expect("compose says where the image must go");
    assert!(persist.starts_with("image: of "), "{persist}");
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let status = p.platform.workload(&api).await.unwrap();
    assert!(status.is_healthy(), "{status:?}");
    assert_eq!(status.images, [release.0.as_str()]);
    for n in [1, 2] {
        assert_eq!(image_of(&format!("{}-api-{n}", p.name)), release.0);
    }
    let revisions = p.platform.revisions(&api).await.unwrap();
    assert_eq!(revisions[0].images, [release.0.as_str()]);
    assert!(revisions[0].current);
    assert_eq!(revisions[1].images, [old.as_str()]);

    // The same image again: nothing recreated.
    let same = p
        .platform
        .set_image(&api, ImageUpdate::new(release.0.parse().unwrap()))
        .await
        .unwrap();
    assert!(!same.rollout_started);

    bounded(p.platform.rollback(&api, RollbackOptions::default()))
        .await
        .unwrap();
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    for n in [1, 2] {
        assert_eq!(image_of(&format!("{}-api-{n}", p.name)), old);
    }
    assert!(p.platform.workload(&api).await.unwrap().is_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_changes_nothing() {
    let p = project_or_skip!("pull");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    let before = p.snapshot().await;
    let missing = format!("opsbook/does-not-exist:{}", p.name);
    let err = bounded(
        p.platform
            .set_image(&api, ImageUpdate::new(missing.parse().unwrap())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.operation(), "pull_image", "{}", err.chain());
    assert_eq!(p.snapshot().await, before, "no container was touched");
    let named = ImageUpdate::new(missing.parse().unwrap())
        .in_container("web")
        .unwrap();
    let err = p.platform.set_image(&api, named).await.unwrap_err();
    assert_eq!(err.kind(), ops_core::ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_release_rolls_back_a_release_that_crashes_at_start() {
    let p = project_or_skip!("deploy", Duration::from_secs(20));
    let api = p.service("api");
    // As compose services usually run: restarted by the engine when they exit.
    let always = Spec {
        restart: Some("always"),
        ..Spec::default()
    };
    let first = p.add("api", 1, &always).await;
    p.add("api", 2, &always).await;
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    // The bad release: the same program, told to crash at start.
    let bad = Tag::crashing(&p, &first);
    let t = support::runbook_targets(&p, &api);
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .build();
    let release = ImageUpdate::new(bad.0.parse().unwrap());
    let report = bounded(deploy_release(&ctx, &t, &release)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Unresolved,
        "{}",
        report.to_markdown()
    );
    assert!(
        report.summary.contains("rolled back") && report.summary.contains("is healthy"),
        "{}",
        report.to_markdown()
    );
    for n in [1, 2] {
        assert_eq!(image_of(&format!("{}-api-{n}", p.name)), demo_image());
    }
    assert!(p.platform.workload(&api).await.unwrap().is_healthy());
}

/// The whole Platform suite ([`conformance::run_all`]) on the real engine: a two-container
/// service of demo-api (which logs "demo-api listening" at start) with a 256 MiB memory
/// limit (doubled and put back), a second tag of its image for `set_image` and `rollback`,
/// `/tmp` for the copies; a lockdown made and lifted. Compose disclaims Secrets and
/// autoscaling: the suite finds those calls `Unsupported`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_platform_suite_passes_on_the_engine() {
    let p = project_or_skip!("suite");
    let api = p.service("api");
    let limited = Spec {
        memory: Some(256 << 20),
        ..Spec::default()
    };
    p.add("api", 1, &limited).await;
    p.add("api", 2, &limited).await;
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let other = Tag::new(&format!("{}-other", p.name), None);
    let fixture = conformance::PlatformFixture::new(api, "demo-api listening")
        .with_other_image(other.0.parse().unwrap())
        .with_deadline(Duration::from_secs(90));
    tokio::time::timeout(
        Duration::from_secs(600),
        conformance::run_all(p.platform.as_ref(), &fixture),
    )
    .await
    .expect("the suite finishes");
}
