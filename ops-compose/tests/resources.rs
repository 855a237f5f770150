//! Issue 14, resources: `ComposePlatform` sets requests and limits with the Engine's container
//! update on every container of a service, against the real Docker engine, and what it reads
//! back is what `docker inspect` (the CLI) shows. Skips (prints why) without an engine or
//! images, unless CI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bollard::models::ContainerUpdateBody;
use ops_compose::labels;
use ops_core::platform::{AutoscalerSpec, ContainerSelector, ResourceUpdate};
use ops_core::run::{Mode, RunOutcome};
use ops_core::runbooks::{RunbookConfig, Targets, oom};
use ops_core::testing::{approving_context, assert_outcome, conformance};
use ops_core::{ErrorKind, Platform};
use serde_json::Value;
use support::{Spec, StatusProbe};

const MIB: i64 = 1 << 20;

/// `docker inspect --format '{{json .HostConfig}}' NAME`, from the real CLI.
fn docker_inspect_host_config(container: &str) -> Value {
    let out = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{json .HostConfig}}", container])
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn limited(memory: i64) -> Spec {
    Spec {
        memory: Some(memory),
        labels: vec![
            (
                labels::CONFIG_FILES.to_owned(),
                "/srv/shop/compose.yaml".to_owned(),
            ),
            (labels::WORKING_DIR.to_owned(), "/srv/shop".to_owned()),
        ],
        ..Spec::script("sleep 600")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_resources_updates_every_container_and_docker_inspect_agrees() {
    let p = project_or_skip!("res");
    let api = p.service("api");
    p.add("api", 1, &limited(256 * MIB)).await;
    p.add("api", 2, &limited(256 * MIB)).await;
    let platform: &dyn Platform = p.platform.as_ref();

    let before = platform.resources(&api).await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].container, "api");
    assert_eq!(before[0].limits.memory.unwrap().to_string(), "256Mi");

    conformance::resources::resources_set_and_read_back(platform, &api, "api").await;
    for n in 1..=2 {
        let name = labels::container_name(&p.name, "api", n);
        let host = docker_inspect_host_config(&name);
        assert_eq!(host["Memory"], 512 * MIB, "{name}: {host}");
        // Docker's default swap (twice the memory) followed the new memory.
        assert_eq!(host["MemorySwap"], 1024 * MIB, "{name}");
        assert_eq!(host["NanoCpus"], 200_000_000, "{name}");
        assert_eq!(host["MemoryReservation"], 256 * MIB, "{name}");
        assert_eq!(host["CpuShares"], 102, "{name}");
    }
    // Compose has no autoscaler.
    assert_eq!(
        platform.autoscaler(&api).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        platform
            .set_autoscaler(&api, AutoscalerSpec::new(2, 10).unwrap())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
    assert!(!platform.capabilities().autoscaling);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_raise_past_the_old_swap_works_and_names_the_compose_key() {
    let p = project_or_skip!("swap");
    let api = p.service("api");
    let id = p.add("api", 1, &limited(256 * MIB)).await;
    // The engine's rule: a memory limit above the current MemorySwap (512Mi here) is refused
    // when the swap is not set with it, as `docker update --memory 1g` users hit.
    let naive = p
        .docker
        .update_container(
            &id,
            ContainerUpdateBody {
                memory: Some(1024 * MIB),
                ..ContainerUpdateBody::default()
            },
        )
        .await;
    assert!(naive.is_err(), "the engine refuses memory above the swap");

    let change = p
        .platform
        .set_resources(
            &api,
            ResourceUpdate::new(ContainerSelector::All).limit_memory("1Gi".parse().unwrap()),
        )
        .await
        .expect("memory and swap set together");
    assert!(!change.rolled_out, "docker update restarts nothing");
    assert_eq!(
        change.lines(),
        vec!["api: limits cpu none -> none, memory 256Mi -> 1Gi".to_owned()]
    );
    let persist = change.persist_in.expect("compose must be told");
    assert!(
        persist.contains("deploy.resources.limits.memory (or mem_limit)")
            && persist.contains("/srv/shop/compose.yaml"),
        "{persist}"
    );
    let host = docker_inspect_host_config(&labels::container_name(&p.name, "api", 1));
    assert_eq!(host["Memory"], 1024 * MIB);
    assert_eq!(host["MemorySwap"], 2048 * MIB);
    // The container kept running through the update.
    let status = p.platform.workload(&api).await.unwrap();
    assert_eq!(status.instances[0].restarts, 0);
    assert_eq!(status.ready, 1);
    // A server-side dry run does not exist on the engine: refused, nothing changed.
    let err = p
        .platform
        .set_resources(
            &api,
            ResourceUpdate::new(ContainerSelector::All)
                .limit_memory("2Gi".parse().unwrap())
                .with_dry_run(true),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

/// The oom runbook on the real engine: a process that needs about 60 MB under a 32Mi limit is
/// OOM-killed by the kernel (the container exits with `OOMKilled`); `oom` raises the limit
/// (x4, ceiling 256Mi) with `docker update`, restarts the container, and it stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_raises_a_real_memory_limit_and_the_restarted_container_stays_up() {
    let p = project_or_skip!("oom");
    let api = p.service("api");
    // `tail` keeps the newline-free 60 MB "line" in memory.
    let spec = Spec {
        memory: Some(32 * MIB),
        ..Spec::script(
            "set -o pipefail; head -c 60000000 /dev/zero | tail > /dev/null || exit 1; exec sleep 600",
        )
    };
    p.add("api", 1, &spec).await;
    let killed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let status = p.platform.workload(&api).await.unwrap();
            if status.oom_killed_instances().count() == 1 {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .expect("the kernel OOM-kills the container within a minute");
    assert!(!killed.is_healthy());

    let mut config = RunbookConfig::default()
        .with_rollout_timeout(Duration::from_secs(60))
        .with_rollout_poll(Duration::from_millis(500))
        .with_verify(2, Duration::from_millis(500), Duration::from_secs(30));
    config.oom.step = "x4".parse().unwrap();
    config.oom.ceiling = Some("256Mi".parse().unwrap());
    let targets = Targets::new(Arc::clone(&p.platform) as _, api.clone())
        .with_probe(Arc::new(StatusProbe {
            platform: Arc::clone(&p.platform),
            workload: api.clone(),
        }))
        .with_config(config);
    let ctx = approving_context(Mode::Execute);
    let report = tokio::time::timeout(Duration::from_secs(120), oom(&ctx, &targets))
        .await
        .expect("bounded")
        .unwrap();
    assert_outcome(&report, RunOutcome::Recovered);
    let raise = report
        .actions
        .iter()
        .find(|a| a.step == "raise_memory_limit")
        .expect("the limit was raised");
    assert!(
        raise
            .changes
            .iter()
            .any(|c| c.contains("memory 32Mi -> 128Mi")),
        "{:?}",
        raise.changes
    );
    assert!(report.actions.iter().any(|a| a.step == "restart"));
    assert!(
        report.summary.contains("lasts only until the next deploy"),
        "{}",
        report.summary
    );
    let host = docker_inspect_host_config(&labels::container_name(&p.name, "api", 1));
    assert_eq!(host["Memory"], 128 * MIB);
    assert_eq!(host["MemorySwap"], 256 * MIB);
    // Up, and still up a moment later: the new limit holds what the process needs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = p.platform.workload(&api).await.unwrap();
    assert!(status.is_healthy(), "{status:?}");
    // (The engine keeps State.OOMKilled from the run that was killed: "how it last ended".)
    assert_eq!(
        status.instances[0].phase,
        ops_core::platform::InstancePhase::Running
    );
}
