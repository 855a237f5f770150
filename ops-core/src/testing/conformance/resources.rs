//! Conformance tests for [`Platform::resources`] / [`Platform::set_resources`] and
//! [`Platform::autoscaler`] / [`Platform::set_autoscaler`].

use crate::error::ErrorKind;
use crate::platform::{
    AutoscalerSpec, ContainerResources, ContainerSelector, CpuQuantity, MemoryQuantity, Platform,
    ResourceUpdate, ResourceValues,
};
use crate::refs::WorkloadRef;

fn cpu(s: &str) -> CpuQuantity {
    CpuQuantity::parse(s).unwrap_or_else(|e| panic!("{}", e.chain()))
}

fn mem(s: &str) -> MemoryQuantity {
    MemoryQuantity::parse(s).unwrap_or_else(|e| panic!("{}", e.chain()))
}

async fn read(platform: &dyn Platform, workload: &WorkloadRef) -> Vec<ContainerResources> {
    platform
        .resources(workload)
        .await
        .unwrap_or_else(|e| panic!("resources failed: {}", e.chain()))
}

/// Each update is refused with its kind and the resources read stay `unchanged`.
async fn refused_unchanged(
    platform: &dyn Platform,
    workload: &WorkloadRef,
    refusals: [(ResourceUpdate, ErrorKind); 3],
    unchanged: &[ContainerResources],
) {
    for (update, kind) in refusals {
        let err = platform
            .set_resources(workload, update.clone())
            .await
            .err()
            .unwrap_or_else(|| panic!("{update:?} was accepted"));
        assert_eq!(err.kind(), kind, "{update:?}: {}", err.chain());
        assert_eq!(
            read(platform, workload).await,
            unchanged,
            "a refused update changes nothing"
        );
    }
}

/// Setting `limits cpu=200m memory=512Mi, requests cpu=100m memory=256Mi` on `container` is
/// read back exactly; the change reports the values before and after; a request above its
/// limit, an unknown container and a stale expectation are refused and change nothing.
///
/// # Panics
/// When the backend breaks this contract.
pub async fn resources_set_and_read_back(
    platform: &dyn Platform,
    workload: &WorkloadRef,
    container: &str,
) {
    let before = read(platform, workload).await;
    let mine: Vec<ContainerResources> = before
        .iter()
        .filter(|c| c.container == container)
        .cloned()
        .collect();
    assert_eq!(mine.len(), 1, "{container} is listed once: {before:?}");
    let update = ResourceUpdate::new(ContainerSelector::named(container))
        .limit_cpu(cpu("200m"))
        .limit_memory(mem("512Mi"))
        .request_cpu(cpu("100m"))
        .request_memory(mem("256Mi"))
        .expecting(mine.clone());
    let change = platform
        .set_resources(workload, update)
        .await
        .unwrap_or_else(|e| panic!("set_resources failed: {}", e.chain()));
    assert_eq!(change.before, mine, "the change reports the values before");
    let after = read(platform, workload).await;
    let now = after
        .iter()
        .find(|c| c.container == container)
        .cloned()
        .unwrap_or_else(|| panic!("{container} still listed: {after:?}"));
    assert_eq!(
        change.after,
        vec![now.clone()],
        "the change reports what is read back"
    );
    assert_eq!(now.limits.cpu, Some(cpu("200m")));
    assert_eq!(now.limits.memory, Some(mem("512Mi")));
    assert_eq!(now.requests.cpu, Some(cpu("100m")));
    assert_eq!(now.requests.memory, Some(mem("256Mi")));
    for other in after.iter().filter(|c| c.container != container) {
        assert!(
            before.contains(other),
            "{other} was not selected and must not change"
        );
    }

    let refusals = [
        (
            ResourceUpdate::new(ContainerSelector::named(container)).request_memory(mem("1Gi")),
            ErrorKind::InvalidInput,
        ),
        (
            ResourceUpdate::new(ContainerSelector::named("opsbook-no-such-container"))
                .limit_memory(mem("1Gi")),
            ErrorKind::NotFound,
        ),
        (
            ResourceUpdate::new(ContainerSelector::named(container))
                .limit_memory(mem("1Gi"))
                .expecting(mine),
            ErrorKind::Conflict,
        ),
    ];
    refused_unchanged(platform, workload, refusals, &after).await;
}

/// Each value of `values` twice as large.
fn doubled(values: &ResourceValues) -> ResourceValues {
    let mut out = *values;
    out.cpu = values.cpu.map(|c| CpuQuantity::from_millis(c.millis() * 2));
    out.memory = values
        .memory
        .map(|m| MemoryQuantity::from_bytes(m.bytes() * 2));
    out
}

/// An update setting exactly the values `c` has, on `c`'s container.
fn setting(c: &ContainerResources) -> ResourceUpdate {
    let mut update = ResourceUpdate::new(ContainerSelector::named(&c.container));
    if let Some(cpu) = c.limits.cpu {
        update = update.limit_cpu(cpu);
    }
    if let Some(memory) = c.limits.memory {
        update = update.limit_memory(memory);
    }
    if let Some(cpu) = c.requests.cpu {
        update = update.request_cpu(cpu);
    }
    if let Some(memory) = c.requests.memory {
        update = update.request_memory(memory);
    }
    update
}

/// The first container of `workload` with a request or limit set gets each of them doubled
/// (first as a dry run when `dry_run`, which changes nothing), and that is what the change
/// reports and what is read back, the other containers untouched; a request above its limit,
/// an unknown container and a stale expectation are refused and change nothing; then the
/// old values are set again and read back, so the workload ends as it began.
///
/// # Panics
/// When no container has a value to change, or the backend breaks this contract.
pub async fn resources_changed_and_restored(
    platform: &dyn Platform,
    workload: &WorkloadRef,
    dry_run: bool,
) {
    let before = read(platform, workload).await;
    let mine = before
        .iter()
        .find(|c| !c.limits.is_empty() || !c.requests.is_empty())
        .cloned()
        .unwrap_or_else(|| {
            panic!("{workload} needs a container with a request or limit to change: {before:?}")
        });
    let mut wanted = mine.clone();
    wanted.limits = doubled(&mine.limits);
    wanted.requests = doubled(&mine.requests);
    if dry_run {
        let update = setting(&wanted)
            .expecting(vec![mine.clone()])
            .with_dry_run(true);
        let change = platform
            .set_resources(workload, update)
            .await
            .unwrap_or_else(|e| panic!("dry-run set_resources failed: {}", e.chain()));
        assert_eq!(
            change.after,
            vec![wanted.clone()],
            "a dry run reports the change"
        );
        assert_eq!(
            read(platform, workload).await,
            before,
            "a dry-run set_resources changes nothing"
        );
    }
    let change = platform
        .set_resources(workload, setting(&wanted).expecting(vec![mine.clone()]))
        .await
        .unwrap_or_else(|e| panic!("set_resources failed: {}", e.chain()));
    assert_eq!(
        change.before,
        vec![mine.clone()],
        "the change reports the values before"
    );
    let after = read(platform, workload).await;
    let now = after
        .iter()
        .find(|c| c.container == mine.container)
        .cloned()
        .unwrap_or_else(|| panic!("{} still listed: {after:?}", mine.container));
    assert_eq!(now, wanted, "set_resources is read back");
    assert_eq!(
        change.after,
        vec![now],
        "the change reports what is read back"
    );
    for other in after.iter().filter(|c| c.container != mine.container) {
        assert!(
            before.contains(other),
            "{other} was not selected and must not change"
        );
    }
    let refusals = [
        (
            ResourceUpdate::new(ContainerSelector::named(&mine.container))
                .limit_memory(mem("1Mi"))
                .request_memory(mem("2Mi")),
            ErrorKind::InvalidInput,
        ),
        (
            ResourceUpdate::new(ContainerSelector::named("opsbook-no-such-container"))
                .limit_memory(mem("1Gi")),
            ErrorKind::NotFound,
        ),
        (
            setting(&mine).expecting(vec![mine.clone()]),
            ErrorKind::Conflict,
        ),
    ];
    refused_unchanged(platform, workload, refusals, &after).await;
    platform
        .set_resources(workload, setting(&mine).expecting(vec![wanted]))
        .await
        .unwrap_or_else(|e| panic!("set_resources back failed: {}", e.chain()));
    assert_eq!(
        read(platform, workload).await,
        before,
        "set_resources puts the old values back"
    );
}

/// No autoscaler at first; a dry-run create plans a create and makes nothing (or is
/// `Unsupported` where dry runs are disclaimed); creating the seed's 2..10 replicas at CPU
/// 70 % / memory 80 % is read back; raising the minimum to 3 while it is still 2 works and keeps the targets; a
/// second raise that expects 2 is a conflict.
///
/// # Panics
/// When the backend breaks this contract.
pub async fn autoscaler_create_then_raise_min(platform: &dyn Platform, workload: &WorkloadRef) {
    let none = platform
        .autoscaler(workload)
        .await
        .unwrap_or_else(|e| panic!("autoscaler failed: {}", e.chain()));
    assert_eq!(none, None, "no autoscaler yet");
    let spec = AutoscalerSpec::new(2, 10)
        .and_then(|s| s.with_cpu_target(70))
        .and_then(|s| s.with_memory_target(80))
        .unwrap_or_else(|e| panic!("{}", e.chain()));
    let dry = platform
        .set_autoscaler(workload, spec.clone().with_dry_run(true))
        .await;
    if platform.capabilities().dry_run {
        let planned = dry.unwrap_or_else(|e| panic!("dry-run create failed: {}", e.chain()));
        assert!(planned.created(), "a dry run plans a create: {planned:?}");
        let still = platform
            .autoscaler(workload)
            .await
            .unwrap_or_else(|e| panic!("autoscaler failed: {}", e.chain()));
        assert_eq!(still, None, "a dry-run create made an autoscaler");
    } else {
        assert_eq!(
            dry.err().map(|e| e.kind()),
            Some(crate::ErrorKind::Unsupported),
            "a dry run is disclaimed, so a dry-run create is Unsupported"
        );
    }
    let created = platform
        .set_autoscaler(workload, spec.clone())
        .await
        .unwrap_or_else(|e| panic!("create failed: {}", e.chain()));
    assert!(created.created());
    let read = platform
        .autoscaler(workload)
        .await
        .unwrap_or_else(|e| panic!("autoscaler failed: {}", e.chain()))
        .unwrap_or_else(|| panic!("the autoscaler created is found"));
    assert_eq!(
        read.name.as_str(),
        workload.name().as_str(),
        "named after the workload"
    );
    assert_eq!(
        (
            read.min_replicas,
            read.max_replicas,
            read.cpu_utilization,
            read.memory_utilization
        ),
        (2, 10, Some(70), Some(80))
    );
    let raise = AutoscalerSpec::from_autoscaler(&read)
        .and_then(|s| s.with_min(3))
        .unwrap_or_else(|e| panic!("{}", e.chain()))
        .expecting_min(2);
    let change = platform
        .set_autoscaler(workload, raise.clone())
        .await
        .unwrap_or_else(|e| panic!("raise failed: {}", e.chain()));
    assert_eq!(change.before.as_ref().map(|b| b.min_replicas), Some(2));
    assert_eq!(change.after.min_replicas, 3);
    let read = platform
        .autoscaler(workload)
        .await
        .unwrap_or_else(|e| panic!("autoscaler failed: {}", e.chain()))
        .unwrap_or_else(|| panic!("still there"));
    assert_eq!(
        (
            read.min_replicas,
            read.max_replicas,
            read.cpu_utilization,
            read.memory_utilization
        ),
        (3, 10, Some(70), Some(80))
    );
    let err = platform
        .set_autoscaler(workload, raise)
        .await
        .err()
        .unwrap_or_else(|| panic!("a stale expectation is refused"));
    assert_eq!(err.kind(), ErrorKind::Conflict, "{}", err.chain());
}
