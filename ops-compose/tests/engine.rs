//! `ComposePlatform` against the real Docker engine: demo-api containers labelled as a compose
//! project, one project per test. Skips (prints why) without an engine or images, unless CI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use futures::StreamExt as _;
use ops_compose::{ComposePlatform, PruneImagesOptions};
use ops_core::platform::{
    ConfigTarget, ConfigUpdate, DeleteOptions, EventOptions, ExecCommand, Health, LogFilter,
    LogOptions, RestartOptions, RolloutOptions, ScaleOptions, StopOptions,
};
use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
use ops_core::runbooks::{RunbookConfig, Targets, api_down, restart_and_verify};
use ops_core::{ErrorKind, Platform, PlatformExt as _};
use support::{Spec, StatusProbe};

const WAIT: Duration = Duration::from_secs(90);

fn rollout() -> RolloutOptions {
    RolloutOptions::default()
        .with_timeout(Duration::from_secs(60))
        .with_poll_interval(Duration::from_millis(250))
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("bounded wait")
}

/// Status of a two-container service: both healthy, named `<project>-<service>-<n>` in
/// order. (Listing, restart and logs are in the whole Platform suite,
/// `releases.rs` `whole_platform_suite_passes_on_the_engine`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_every_container_in_order() {
    let p = project_or_skip!("conf");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    p.add("api", 2, &Spec::default()).await;
    let platform: &dyn Platform = p.platform.as_ref();
    bounded(platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let status = platform.workload(&api).await.unwrap();
    assert_eq!(status.desired, 2);
    assert!(status.instances.iter().all(|i| i.health == Health::Healthy));
    assert_eq!(
        status.instances[0].name.as_str(),
        format!("{}-api-1", p.name)
    );
    assert_eq!(
        status.instances[1].name.as_str(),
        format!("{}-api-2", p.name)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_off_containers_and_other_kinds_are_not_part_of_a_service() {
    let p = project_or_skip!("oneoff");
    p.add("job", 1, &Spec::script("sleep 60")).await;
    p.add(
        "job",
        1,
        &Spec {
            oneoff: true,
            ..Spec::script("sleep 60")
        },
    )
    .await;
    let status = p.platform.workload(&p.service("job")).await.unwrap();
    assert_eq!(status.instances.len(), 1, "the one-off is excluded");
    let k8s: ops_core::WorkloadRef = format!("{}/deployment/job", p.name).parse().unwrap();
    assert_eq!(
        p.platform.workload(&k8s).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    let listed = p
        .platform
        .list_workloads(p.service("job").namespace())
        .await
        .unwrap();
    assert_eq!(listed, vec![p.service("job")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_start_and_start_in_dependency_order() {
    let p = project_or_skip!("order");
    p.add("db", 1, &Spec::default()).await;
    p.add(
        "api",
        1,
        &Spec {
            depends_on: Some("db:service_healthy:false".into()),
            ..Spec::default()
        },
    )
    .await;
    let (db, api) = (p.service("db"), p.service("api"));
    let stop = StopOptions::default().with_timeout(Duration::from_secs(2));
    p.platform.stop(&api, stop.clone()).await.unwrap();
    p.platform.stop(&db, stop).await.unwrap();
    let s = p.platform.rollout_status(&api).await.unwrap();
    assert!(!s.done, "stopped is not rolled out: {}", s.message);
    assert!(s.message.contains("stopped"), "{}", s.message);
    assert_eq!(
        p.platform.dependency_tiers(&p.name).await.unwrap(),
        vec![vec!["db"], vec!["api"]]
    );
    let started = bounded(p.platform.start_project(&p.name)).await.unwrap();
    assert_eq!(started.len(), 2);
    assert_eq!(
        (started[0].workload.clone(), started[0].tier),
        (db.clone(), 0)
    );
    assert_eq!(
        (started[1].workload.clone(), started[1].tier),
        (api.clone(), 1)
    );
    assert!(p.platform.workload(&api).await.unwrap().is_healthy());
    // start of a running service is a no-op
    p.platform.start(&db, StopOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_clones_with_the_next_container_number() {
    let p = project_or_skip!("scale");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    let up = p
        .platform
        .scale(&api, 3, ScaleOptions::default())
        .await
        .unwrap();
    assert_eq!((up.from, up.to), (1, 3));
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let names: Vec<String> = p
        .platform
        .workload(&api)
        .await
        .unwrap()
        .instances
        .iter()
        .map(|i| i.name.to_string())
        .collect();
    assert_eq!(names, [1, 2, 3].map(|n| format!("{}-api-{n}", p.name)));
    let down = p
        .platform
        .scale(&api, 1, ScaleOptions::default())
        .await
        .unwrap();
    assert_eq!((down.from, down.to), (3, 1));
    let left = p.platform.workload(&api).await.unwrap();
    assert_eq!(left.instances.len(), 1);
    assert_eq!(left.instances[0].name.as_str(), format!("{}-api-1", p.name));
    let zero = p
        .platform
        .scale(&api, 0, ScaleOptions::default())
        .await
        .unwrap_err();
    assert_eq!(zero.kind(), ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_config_recreates_with_the_new_environment() {
    let p = project_or_skip!("env");
    let api = p.service("api");
    let old_id = p
        .add(
            "api",
            1,
            &Spec {
                env: vec!["KEEP=1".into(), "DROP=x".into()],
                ..Spec::default()
            },
        )
        .await;
    let update = ConfigUpdate::new(ConfigTarget::Env)
        .set("GREETING", "hello")
        .remove("DROP");
    let change = bounded(p.platform.update_config(&api, update))
        .await
        .unwrap();
    assert_eq!(change.keys_set, ["GREETING"]);
    assert!(change.rolled_out);
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let one = api.instance(&format!("{}-api-1", p.name)).unwrap();
    let env = p
        .platform
        .exec(&one, &ExecCommand::new(["env"]).unwrap())
        .await
        .unwrap();
    let env = String::from_utf8(env.stdout).unwrap();
    assert!(
        env.contains("GREETING=hello") && env.contains("KEEP=1") && !env.contains("DROP="),
        "{env}"
    );
    let inspect = p
        .docker
        .inspect_container(
            &format!("{}-api-1", p.name),
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    assert_ne!(
        inspect.id.unwrap(),
        old_id,
        "a new container under the same name"
    );
    let secret = ConfigUpdate::new(ConfigTarget::Secret("x".parse().unwrap())).set("A", "b");
    assert_eq!(
        p.platform
            .update_config(&api, secret)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_instance_removes_only_that_container() {
    let p = project_or_skip!("del");
    let api = p.service("api");
    p.add("api", 1, &Spec::script("sleep 300")).await;
    p.add("api", 2, &Spec::script("sleep 300")).await;
    let two = api.instance(&format!("{}-api-2", p.name)).unwrap();
    let mut opts = DeleteOptions::default();
    opts.grace_period = Some(Duration::from_secs(1));
    p.platform
        .delete_instance(&two, opts.clone())
        .await
        .unwrap();
    assert_eq!(p.platform.workload(&api).await.unwrap().instances.len(), 1);
    assert_eq!(
        p.platform
            .delete_instance(&two, opts)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let foreign = api.instance("not-in-this-project").unwrap();
    assert_eq!(
        p.platform
            .exec(&foreign, &ExecCommand::new(["true"]).unwrap())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_two_instances_are_merged_in_time_order() {
    let p = project_or_skip!("logs");
    let w = p.service("writer");
    // Two writers interleave on a shared wall-clock schedule: a-1 b-1 a-2 b-2 ... 200 ms
    // apart, starting 2 s from now (container start-up time does not matter); errors go to stderr.
    let t0 = jiff::Timestamp::now().as_nanosecond() + 2_000_000_000;
    let script = |name: &str, offset: i128, stderr: bool| {
        let err = if stderr {
            format!("echo error {name}-$i >&2;")
        } else {
            String::new()
        };
        Spec::script(&format!(
            "for i in 1 2 3 4 5; do d=$(( {t0} + {offset} + (i-1)*400000000 - $(date +%s%N) )); \
             if [ $d -gt 0 ]; then sleep $((d/1000000000)).$(printf %09d $((d%1000000000))); fi; \
             echo {name}-$i; {err} done; sleep 300"
        ))
    };
    p.add("writer", 1, &script("a", 0, true)).await;
    p.add("writer", 2, &script("b", 200_000_000, false)).await;
    let wait = t0 - jiff::Timestamp::now().as_nanosecond() + 2_500_000_000;
    tokio::time::sleep(Duration::from_nanos(u64::try_from(wait).unwrap_or(0))).await;
    let lines = p
        .platform
        .logs(&w, LogOptions::default().with_timestamps(true))
        .await
        .unwrap();
    let out: Vec<&str> = lines
        .iter()
        .filter(|l| l.stream == ops_core::platform::LogStream::Stdout)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(
        out,
        [
            "a-1", "b-1", "a-2", "b-2", "a-3", "b-3", "a-4", "b-4", "a-5", "b-5"
        ]
    );
    assert!(lines.windows(2).all(|p| p[0].timestamp <= p[1].timestamp));
    let errors = p
        .platform
        .logs(&w, LogOptions::default().with_filter(LogFilter::errors()))
        .await
        .unwrap();
    assert_eq!(errors.len(), 5);
    assert!(
        errors
            .iter()
            .all(|l| l.stream == ops_core::platform::LogStream::Stderr)
    );
    let tail = p
        .platform
        .logs(&w, LogOptions::default().with_tail(2))
        .await
        .unwrap();
    assert_eq!(tail.len(), 4, "two per instance");
    let one = p
        .platform
        .logs(
            &w,
            LogOptions::default().with_instance(format!("{}-writer-2", p.name).parse().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 5);
    let recent = p
        .platform
        .logs(
            &w,
            LogOptions::default().with_since(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert_eq!(recent.len(), 15);
    let one_errors = p
        .platform
        .logs(
            &w,
            LogOptions::default()
                .with_instance(format!("{}-writer-1", p.name).parse().unwrap())
                .with_filter(LogFilter::new("^error").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(one_errors.len(), 5);
    // follow: the tail first, then new lines as they are written
    let mut s = p
        .platform
        .follow_logs(&w, LogOptions::default().with_tail(1))
        .await
        .unwrap();
    let first = bounded(s.next()).await.unwrap().unwrap();
    assert!(first.text.contains("-5"), "{}", first.text);
    let one = w.instance(&format!("{}-writer-1", p.name)).unwrap();
    let cmd = ExecCommand::new(["bash", "-c", "echo followed > /proc/1/fd/1"]).unwrap();
    p.platform.exec(&one, &cmd).await.unwrap();
    loop {
        let l = bounded(s.next()).await.unwrap().unwrap();
        if l.text == "followed" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_exec_copy_and_usage() {
    let p = project_or_skip!("misc");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    let one = api.instance(&format!("{}-api-1", p.name)).unwrap();
    let out = p
        .platform
        .exec(
            &one,
            &ExecCommand::new(["sh", "-c", "echo out; echo err >&2; exit 3"]).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_slice(), out.stderr.as_slice()),
        (Some(3), &b"out\n"[..], &b"err\n"[..])
    );
    let slow = ExecCommand::new(["sleep", "10"])
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    assert_eq!(
        p.platform.exec(&one, &slow).await.unwrap_err().kind(),
        ErrorKind::Timeout
    );

    p.platform
        .copy_to(&one, "/tmp/opsbook.txt", b"hello\n".to_vec())
        .await
        .unwrap();
    assert_eq!(
        p.platform
            .copy_from(&one, "/tmp/opsbook.txt")
            .await
            .unwrap(),
        b"hello\n"
    );
    assert_eq!(
        p.platform
            .copy_from(&one, "/tmp/missing")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        p.platform
            .copy_from(&one, "relative")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );

    archive_is_what_docker_cp_writes(&p.platform, &one).await;

    let usage = p.platform.resource_usage(&api).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert!(usage[0].memory_bytes > 0 && usage[0].memory_limit_bytes.is_none());

    p.platform
        .rollout_restart(
            &api,
            RestartOptions::default().with_stop_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    let events = p
        .platform
        .events(&api, EventOptions::default())
        .await
        .unwrap();
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    assert!(
        reasons.contains(&"start") && reasons.contains(&"restart"),
        "{reasons:?}"
    );
    assert!(events.iter().all(|e| e.object == one.name().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_disk_usage_and_rollback_without_history() {
    let p = project_or_skip!("prune");
    let api = p.service("api");
    p.add("api", 1, &Spec::script("sleep 300")).await;
    let du = p.platform.disk_usage().await.unwrap();
    assert!(du.images > 0 && du.images_bytes > 0 && du.containers > 0);
    // Nothing is ten years old: the age filter keeps every image.
    let pruned = p
        .platform
        .prune_images(&PruneImagesOptions::default().older_than(Duration::from_hours(24 * 3650)))
        .await
        .unwrap();
    assert!(pruned.deleted.is_empty());
    let err = p
        .platform
        .rollback(&api, ops_core::platform::RollbackOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.detail().unwrap().contains("no previous image"));
    assert_eq!(p.platform.previous_revision(&api).await.unwrap(), None);
    // After an image change the previous image is known and rollback restores it.
    let tagged = format!(
        "{}:{}",
        support::demo_image().split(':').next().unwrap(),
        p.name
    );
    let status = std::process::Command::new("docker")
        .args(["tag", &support::demo_image(), &tagged])
        .status()
        .unwrap();
    assert!(status.success());
    p.platform
        .recreate_service(
            &api,
            &ops_compose::RecreateOptions::default().with_image(&tagged),
        )
        .await
        .unwrap();
    assert_eq!(
        p.platform.workload(&api).await.unwrap().images,
        std::slice::from_ref(&tagged)
    );
    let back = p
        .platform
        .rollback(&api, ops_core::platform::RollbackOptions::default())
        .await
        .unwrap();
    assert_eq!(back.to_revision, 1);
    assert_eq!(
        p.platform.workload(&api).await.unwrap().images,
        [support::demo_image()]
    );
    let _ = std::process::Command::new("docker")
        .args(["rmi", &tagged])
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_killed_mid_restart_is_reported_and_recovers() {
    let p = project_or_skip!("kill");
    let api = p.service("api");
    // bash as PID 1 ignores SIGTERM: a restart waits the whole grace period.
    let id = p
        .add(
            "api",
            1,
            &Spec::script("trap '' TERM; while true; do sleep 0.2; done"),
        )
        .await;
    let platform = Arc::clone(&p.platform);
    let restart = tokio::spawn({
        let api = api.clone();
        async move {
            platform
                .rollout_restart(
                    &api,
                    RestartOptions::default().with_stop_timeout(Duration::from_secs(8)),
                )
                .await
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    p.docker
        .kill_container(&id, None::<bollard::query_parameters::KillContainerOptions>)
        .await
        .unwrap();
    let result = bounded(restart).await.unwrap();
    // The engine either finishes the restart (start after the kill) or reports the conflict.
    if let Err(e) = &result {
        assert!(
            matches!(
                e.kind(),
                ErrorKind::Conflict | ErrorKind::Backend | ErrorKind::Unavailable
            ),
            "{e}"
        );
        p.platform
            .rollout_restart(
                &api,
                RestartOptions::default().with_stop_timeout(Duration::from_secs(1)),
            )
            .await
            .unwrap();
    }
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    assert!(p.platform.workload(&api).await.unwrap().is_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_unreachable_is_unavailable() {
    // What DOCKER_HOST=tcp://127.0.0.1:1 builds, without touching the process environment.
    let client = Docker::connect_with_host("tcp://127.0.0.1:1").unwrap();
    let platform = ComposePlatform::builder()
        .with_client(client)
        .with_request_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let api = ops_core::WorkloadRef::compose_service("shop", "api").unwrap();
    let err = platform.workload(&api).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(err.is_retryable());
    let err = platform
        .rollout_restart(&api, RestartOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_leaves_containers_untouched() {
    let p = project_or_skip!("dry");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    p.add("api", 2, &Spec::default()).await;
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    // Make it unhealthy so the runbooks have something to plan.
    let one = api.instance(&format!("{}-api-1", p.name)).unwrap();
    let fault = ExecCommand::new(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'POST /admin/fault HTTP/1.0\\r\\nContent-Type: application/json\\r\\nContent-Length: 18\\r\\n\\r\\n{\"unhealthy\":true}' >&3 && cat <&3"]).unwrap();
    let out = p.platform.exec(&one, &fault).await.unwrap();
    assert!(out.success(), "{}", String::from_utf8_lossy(&out.stderr));
    bounded(async {
        while p.platform.workload(&api).await.unwrap().is_healthy() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    let before = p.snapshot().await;
    let ctx = RunContext::builder().allow_volatile_journal().build();
    assert_eq!(ctx.mode(), Mode::DryRun);
    let probe = Arc::new(StatusProbe {
        platform: Arc::clone(&p.platform),
        workload: api.clone(),
    });
    let targets = Targets::new(Arc::clone(&p.platform) as _, api.clone()).with_probe(probe);
    let report = bounded(api_down(&ctx, &targets)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Planned,
        "{}",
        report.to_markdown()
    );
    let report = bounded(restart_and_verify(&ctx, &targets)).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert_eq!(p.snapshot().await, before, "a dry run changes nothing");
    let refused = p
        .platform
        .rollout_restart(&api, RestartOptions::default().with_dry_run(true))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unsupported);
    assert_eq!(p.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_recovers_an_unhealthy_service_on_the_engine() {
    let p = project_or_skip!("rb");
    let api = p.service("api");
    p.add("api", 1, &Spec::default()).await;
    bounded(p.platform.wait_rolled_out(&api, rollout()))
        .await
        .unwrap();
    let one = api.instance(&format!("{}-api-1", p.name)).unwrap();
    let fault = ExecCommand::new(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'POST /admin/fault HTTP/1.0\\r\\nContent-Type: application/json\\r\\nContent-Length: 18\\r\\n\\r\\n{\"unhealthy\":true}' >&3 && cat <&3"]).unwrap();
    p.platform.exec(&one, &fault).await.unwrap();
    // Wait for the HEALTHCHECK to notice (3 retries, 2 s apart).
    bounded(async {
        while p.platform.workload(&api).await.unwrap().is_healthy() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .build();
    let probe = Arc::new(StatusProbe {
        platform: Arc::clone(&p.platform),
        workload: api.clone(),
    });
    let config = RunbookConfig::default()
        .with_rollout_timeout(Duration::from_secs(60))
        .with_rollout_poll(Duration::from_millis(500))
        .with_verify(2, Duration::from_millis(500), Duration::from_secs(30));
    let targets = Targets::new(Arc::clone(&p.platform) as _, api.clone())
        .with_probe(probe)
        .with_config(config);
    let report = bounded(api_down(&ctx, &targets)).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert!(p.platform.workload(&api).await.unwrap().is_healthy());
}

// Needs the `fault-injection` feature (on in scripts/test: --all-features).
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreate_that_fails_at_any_point_leaves_the_old_container_running() {
    use ops_compose::{RecreateOptions, RecreatePoint};
    let p = project_or_skip!("swap");
    let api = p.service("api");
    let original = p
        .add(
            "api",
            1,
            &Spec {
                env: vec!["MARK=old".into()],
                ..Spec::default()
            },
        )
        .await;
    let name = format!("{}-api-1", p.name);
    for point in RecreatePoint::ALL {
        let failing = ComposePlatform::builder()
            .with_stop_timeout(Duration::from_secs(2))
            .build()
            .unwrap()
            .fail_recreate_at(point);
        let err = bounded(
            failing.recreate_service(&api, &RecreateOptions::default().set_env("MARK", "new")),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("recreate"), "{point:?}: {err}");
        assert!(
            !matches!(err, ops_compose::Error::Compensation { .. }),
            "{point:?}: the undo failed: {err}"
        );
        // Exactly the old container, under its name, running, with the old configuration.
        let containers = p.snapshot().await;
        assert_eq!(containers.len(), 1, "{point:?}: {containers:#?}");
        let inspect = p
            .docker
            .inspect_container(
                &name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .unwrap();
        assert_eq!(inspect.id.as_deref(), Some(original.as_str()), "{point:?}");
        assert_eq!(
            inspect.state.and_then(|s| s.running),
            Some(true),
            "{point:?}: the old container is not running"
        );
        let env = inspect.config.and_then(|c| c.env).unwrap_or_default();
        assert!(env.iter().any(|e| e == "MARK=old"), "{point:?}: {env:?}");
    }
    // Without an injected failure the same recreate goes through.
    bounded(
        p.platform
            .recreate_service(&api, &RecreateOptions::default().set_env("MARK", "new")),
    )
    .await
    .unwrap();
    let inspect = p
        .docker
        .inspect_container(
            &name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    assert_ne!(inspect.id.as_deref(), Some(original.as_str()));
    assert!(
        inspect
            .config
            .and_then(|c| c.env)
            .unwrap_or_default()
            .iter()
            .any(|e| e == "MARK=new")
    );
}

// Needs the `fault-injection` feature (on in scripts/test: --all-features).
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_up_that_fails_part_way_removes_what_it_made() {
    use ops_compose::RecreatePoint;
    let p = project_or_skip!("scaleundo");
    let api = p.service("api");
    p.add("api", 1, &Spec::script("sleep 300")).await;
    let failing = ComposePlatform::builder()
        .with_stop_timeout(Duration::from_secs(1))
        .build()
        .unwrap()
        .fail_recreate_at(RecreatePoint::AfterCreate);
    let err = bounded(failing.scale(&api, 3, ScaleOptions::default()))
        .await
        .unwrap_err();
    assert!(err.chain().contains("injected"), "{}", err.chain());
    let containers = p.snapshot().await;
    assert_eq!(containers.len(), 1, "{containers:#?}");
    assert_eq!(p.platform.workload(&api).await.unwrap().instances.len(), 1);
}

/// The regular files of a tar archive: name → contents.
fn tar_files(archive: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let name = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            files.insert(name, data);
        }
    }
    files
}

/// A directory comes out as the same tar `docker cp CONTAINER:DIR -` writes.
async fn archive_is_what_docker_cp_writes(
    platform: &ops_compose::ComposePlatform,
    one: &ops_core::InstanceRef,
) {
    let mkdir = ExecCommand::new(["mkdir", "-p", "/tmp/arch/sub"]).unwrap();
    assert_eq!(platform.exec(one, &mkdir).await.unwrap().exit_code, Some(0));
    for (path, data) in [
        ("/tmp/arch/a.txt", &b"alpha"[..]),
        ("/tmp/arch/sub/b.bin", &[0u8, 1, 2][..]),
    ] {
        platform.copy_to(one, path, data.to_vec()).await.unwrap();
    }
    let ours = platform.archive_from(one, "/tmp/arch").await.unwrap();
    let theirs = std::process::Command::new("docker")
        .args(["cp", &format!("{}:/tmp/arch", one.name()), "-"])
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    assert_eq!(tar_files(&ours), tar_files(&theirs.stdout));
    assert_eq!(
        tar_files(&ours).keys().cloned().collect::<Vec<_>>(),
        ["arch/a.txt", "arch/sub/b.bin"]
    );
    assert_eq!(
        platform
            .archive_from(one, "/tmp/none")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        platform.archive_from(one, "/").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
