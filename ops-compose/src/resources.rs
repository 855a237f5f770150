//! Requests and limits of a compose service's containers, read from `HostConfig` and changed
//! with the Engine's container update (`docker update`) on every container of the service.
//!
//! | opsbook | `HostConfig` | compose file |
//! |---|---|---|
//! | limits.memory | `Memory` (with `MemorySwap` kept consistent) | `deploy.resources.limits.memory` / `mem_limit` |
//! | limits.cpu | `NanoCpus`, or `CpuQuota` / `CpuPeriod` when the container uses those | `deploy.resources.limits.cpus` / `cpus` |
//! | requests.memory | `MemoryReservation` | `deploy.resources.reservations.memory` / `mem_reservation` |
//! | requests.cpu | `CpuShares` (1024 = one core, as Kubernetes maps it) | `cpu_shares` |
//!
//! The Engine refuses a memory limit above the current `MemorySwap` ("Memory limit should be
//! smaller than already set memoryswap limit"): the update always sets `MemorySwap` with the
//! memory, keeping the swap the container had (`-1` stays unlimited; Docker's default of twice
//! the memory stays twice the new memory). The change does not survive the next `docker
//! compose up`, which recreates from the compose file: [`ResourceChange::persist_in`] names
//! the file(s) and the key to change.

use bollard::models::{ContainerInspectResponse, ContainerUpdateBody, HostConfig};
use ops_core::platform::{
    ContainerResources, CpuQuantity, MemoryQuantity, ResourceChange, ResourceUpdate, ResourceValues,
};
use ops_core::{ErrorKind, OpsError, WorkloadRef};

use crate::error::{Error, Result};
use crate::labels;
use crate::platform::ComposePlatform;

/// Docker's smallest `CpuShares`.
const MIN_SHARES: u64 = 2;

fn positive(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0)
}

/// The requests and limits a container's `HostConfig` holds.
fn from_host_config(name: &str, host: &HostConfig) -> ContainerResources {
    let cpu_limit = positive(host.nano_cpus)
        .map(|n| n.div_ceil(1_000_000))
        .or_else(|| {
            let quota = positive(host.cpu_quota)?;
            let period = positive(host.cpu_period).unwrap_or(100_000);
            Some((quota * 1000).div_ceil(period))
        })
        .map(CpuQuantity::from_millis);
    let cpu_request = positive(host.cpu_shares)
        .map(|s| (s * 1000).div_ceil(1024))
        .map(CpuQuantity::from_millis);
    let mut limits = ResourceValues::default();
    limits.cpu = cpu_limit;
    limits.memory = positive(host.memory).map(MemoryQuantity::from_bytes);
    let mut requests = ResourceValues::default();
    requests.cpu = cpu_request;
    requests.memory = positive(host.memory_reservation).map(MemoryQuantity::from_bytes);
    ContainerResources::new(name)
        .with_limits(limits)
        .with_requests(requests)
}

fn int(v: u64, what: &'static str, target: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::InvalidArgument {
        operation: "set_resources",
        target: target.to_owned(),
        reason: format!("{what} {v} is more than the engine takes"),
    })
}

/// The update body that brings a container with `host` from `before` to `after`.
fn update_body(
    host: &HostConfig,
    before: &ContainerResources,
    after: &ContainerResources,
    target: &str,
) -> Result<ContainerUpdateBody> {
    let mut body = ContainerUpdateBody::default();
    if after.limits.memory != before.limits.memory
        && let Some(memory) = after.limits.memory
    {
        let new = int(memory.bytes(), "memory", target)?;
        let old = host.memory.unwrap_or(0);
        let swap = host.memory_swap.unwrap_or(0);
        body.memory = Some(new);
        body.memory_swap = Some(match swap {
            -1 => -1,
            // No swap limit known, or Docker's default (twice the memory): twice the new one.
            0 => new.saturating_mul(2),
            s if old > 0 && s == old.saturating_mul(2) => new.saturating_mul(2),
            // The same amount of swap on top of the new memory.
            s => new.saturating_add((s - old).max(0)),
        });
    }
    if after.limits.cpu != before.limits.cpu
        && let Some(cpu) = after.limits.cpu
    {
        if positive(host.cpu_quota).is_some() && positive(host.nano_cpus).is_none() {
            // NanoCpus and CpuQuota cannot both be set: keep the container's own form.
            let period = positive(host.cpu_period).unwrap_or(100_000);
            body.cpu_quota = Some(int(
                cpu.millis().saturating_mul(period) / 1000,
                "cpu quota",
                target,
            )?);
        } else {
            body.nano_cpus = Some(int(
                cpu.millis().saturating_mul(1_000_000),
                "nano cpus",
                target,
            )?);
        }
    }
    if after.requests.memory != before.requests.memory
        && let Some(memory) = after.requests.memory
    {
        body.memory_reservation = Some(int(memory.bytes(), "memory reservation", target)?);
    }
    if after.requests.cpu != before.requests.cpu
        && let Some(cpu) = after.requests.cpu
    {
        let shares = (cpu.millis().saturating_mul(1024) / 1000).max(MIN_SHARES);
        body.cpu_shares = Some(int(shares, "cpu shares", target)?);
    }
    Ok(body)
}

/// The same update that restores `host`'s values (the undo of a partial change).
fn restore_body(host: &HostConfig) -> ContainerUpdateBody {
    ContainerUpdateBody {
        memory: host.memory,
        memory_swap: host.memory_swap,
        memory_reservation: host.memory_reservation,
        nano_cpus: host.nano_cpus.filter(|n| *n > 0),
        cpu_quota: host.cpu_quota.filter(|q| *q > 0),
        cpu_shares: host.cpu_shares.filter(|s| *s > 0),
        ..ContainerUpdateBody::default()
    }
}

/// The compose keys a change of `update` must also be made under.
fn keys(update: &ResourceUpdate) -> Vec<&'static str> {
    let mut out = Vec::new();
    if update.limits.memory.is_some() {
        out.push("deploy.resources.limits.memory (or mem_limit)");
    }
    if update.limits.cpu.is_some() {
        out.push("deploy.resources.limits.cpus (or cpus)");
    }
    if update.requests.memory.is_some() {
        out.push("deploy.resources.reservations.memory (or mem_reservation)");
    }
    if update.requests.cpu.is_some() {
        out.push("cpu_shares");
    }
    out
}

fn core_error(target: &str, err: &OpsError) -> Error {
    let reason = err.detail().unwrap_or_default().to_owned();
    match err.kind() {
        ErrorKind::NotFound => Error::NotFound {
            operation: "set_resources",
            target: format!("{target}: {reason}"),
        },
        ErrorKind::Conflict => Error::Conflict {
            operation: "set_resources",
            target: target.to_owned(),
            reason,
        },
        _ => Error::InvalidArgument {
            operation: "set_resources",
            target: target.to_owned(),
            reason,
        },
    }
}

impl ComposePlatform {
    /// The service's requests and limits, read from its first container (the service is one
    /// container definition: [`ComposePlatform::set_service_resources`] keeps every container
    /// alike).
    pub(crate) async fn service_resources(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Vec<ContainerResources>> {
        let (_, service) = labels::project_service(workload)?;
        let inspected = self.inspect_members(workload, "resources").await?;
        let host = inspected
            .first()
            .and_then(|i| i.host_config.clone())
            .unwrap_or_default();
        Ok(vec![from_host_config(service, &host)])
    }

    /// `docker update` of every container of the service, all or nothing: when one update
    /// fails, the containers already updated get their old values back (a failed undo is
    /// [`Error::Compensation`], naming them).
    pub(crate) async fn set_service_resources(
        &self,
        workload: &WorkloadRef,
        update: &ResourceUpdate,
    ) -> Result<ResourceChange> {
        let target = workload.to_string();
        let (_, service) = labels::project_service(workload)?;
        let inspected = self.inspect_members(workload, "set_resources").await?;
        if inspected.is_empty() {
            return Err(Error::NotFound {
                operation: "set_resources",
                target,
            });
        }
        let first = inspected[0].host_config.clone().unwrap_or_default();
        let before = vec![from_host_config(service, &first)];
        let after = update
            .apply_to(&target, &before)
            .map_err(|e| core_error(&target, &e))?;
        let mut plan = Vec::new();
        for container in &inspected {
            let host = container.host_config.clone().unwrap_or_default();
            let mine = from_host_config(service, &host);
            // Each container goes to the same values, from wherever it is now.
            let body = update_body(&host, &mine, &after[0], &target)?;
            plan.push((container, host, body));
        }
        let docker = self.docker().await?;
        let mut done: Vec<(&ContainerInspectResponse, HostConfig)> = Vec::new();
        for (container, host, body) in plan {
            let id = container.id.clone().unwrap_or_default();
            let result = self
                .call("update_container", &id, docker.update_container(&id, body))
                .await;
            if let Err(e) = result {
                return Err(self.undo_updates(&target, e, done).await);
            }
            done.push((container, host));
        }
        let mut change = ResourceChange::new(before, after);
        change.persist_in = Some(format!(
            "{} of {}",
            keys(update).join(", "),
            self.definition(workload).await?
        ));
        Ok(change)
    }

    /// Put the updated containers back; the error to return.
    async fn undo_updates(
        &self,
        target: &str,
        cause: Error,
        done: Vec<(&ContainerInspectResponse, HostConfig)>,
    ) -> Error {
        let Ok(docker) = self.docker().await else {
            return cause;
        };
        let mut failed = Vec::new();
        for (container, host) in done {
            let id = container.id.clone().unwrap_or_default();
            let name = container.name.clone().unwrap_or_else(|| id.clone());
            if let Err(e) = self
                .call(
                    "update_container",
                    &id,
                    docker.update_container(&id, restore_body(&host)),
                )
                .await
            {
                failed.push(format!("restoring the resources of {name}: {e}"));
            }
        }
        if failed.is_empty() {
            cause
        } else {
            Error::Compensation {
                operation: "set_resources",
                target: target.to_owned(),
                source: Box::new(cause),
                failed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(memory: i64, swap: i64) -> HostConfig {
        HostConfig {
            memory: Some(memory),
            memory_swap: Some(swap),
            ..HostConfig::default()
        }
    }

    fn with_memory(bytes: u64) -> ContainerResources {
        ContainerResources::new("api")
            .with_limits(ResourceValues::default().with_memory(MemoryQuantity::from_bytes(bytes)))
    }

    #[test]
    fn memory_swap_follows_the_memory_as_docker_update_needs() {
        let mib = 1 << 20;
        let cases = [
            // Docker's default swap (twice the memory) stays twice.
            (host(256 * mib, 512 * mib), 1024 * mib, 2048 * mib),
            // Unlimited swap stays unlimited.
            (host(256 * mib, -1), 1024 * mib, -1),
            // No limit before: twice the new memory, as `docker run --memory` does.
            (host(0, 0), 1024 * mib, 2048 * mib),
            // Swap equal to the memory (no swap) stays no swap.
            (host(256 * mib, 256 * mib), 1024 * mib, 1024 * mib),
        ];
        for (h, new, swap) in cases {
            let before = from_host_config("api", &h);
            let body =
                update_body(&h, &before, &with_memory(u64::try_from(new).unwrap()), "t").unwrap();
            assert_eq!(body.memory, Some(new));
            assert_eq!(body.memory_swap, Some(swap), "{h:?}");
        }
    }

    #[test]
    fn cpu_is_read_from_nano_cpus_or_quota_and_shares() {
        let h = HostConfig {
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            cpu_shares: Some(512),
            ..HostConfig::default()
        };
        let r = from_host_config("api", &h);
        assert_eq!(r.limits.cpu, Some(CpuQuantity::from_millis(500)));
        assert_eq!(r.requests.cpu, Some(CpuQuantity::from_millis(500)));
        // A container using CpuQuota is updated through CpuQuota, never NanoCpus.
        let mut after = r.clone();
        after.limits.cpu = Some(CpuQuantity::from_millis(1500));
        let body = update_body(&h, &r, &after, "t").unwrap();
        assert_eq!((body.cpu_quota, body.nano_cpus), (Some(150_000), None));
    }

    #[test]
    fn cpu_shares_round_trip_millicores() {
        for m in [2u64, 100, 250, 333, 1000, 1999] {
            let before = ContainerResources::new("api");
            let after = ContainerResources::new("api")
                .with_requests(ResourceValues::default().with_cpu(CpuQuantity::from_millis(m)));
            let body = update_body(&HostConfig::default(), &before, &after, "t").unwrap();
            let read = from_host_config(
                "api",
                &HostConfig {
                    cpu_shares: body.cpu_shares,
                    ..HostConfig::default()
                },
            );
            assert_eq!(read.requests.cpu, Some(CpuQuantity::from_millis(m)), "{m}");
        }
    }
}
