//! Resource usage (CPU cores, memory against its limit) and engine events of a service.

use std::collections::HashMap;

use bollard::models::{ContainerStatsResponse, EventMessage};
use bollard::query_parameters::{EventsOptionsBuilder, StatsOptionsBuilder};
use futures::StreamExt as _;
use ops_core::platform::{EventOptions, PlatformEvent, ResourceUsage};
use ops_core::{ResourceName, WorkloadRef};

use crate::error::Result;
use crate::labels;
use crate::platform::ComposePlatform;

/// CPU in cores from one stats sample (`docker stats` arithmetic) and memory without the page
/// cache (`inactive_file` on cgroup v2, `cache` on v1).
pub(crate) fn usage_of(stats: &ContainerStatsResponse) -> (f64, u64) {
    let total = |s: Option<&bollard::models::ContainerCpuStats>| {
        s.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let system = |s: Option<&bollard::models::ContainerCpuStats>| {
        s.and_then(|c| c.system_cpu_usage).unwrap_or(0)
    };
    let cpu = stats.cpu_stats.as_ref();
    let pre = stats.precpu_stats.as_ref();
    let cpu_delta = total(cpu).saturating_sub(total(pre));
    let sys_delta = system(cpu).saturating_sub(system(pre));
    let online = cpu
        .and_then(|c| c.online_cpus)
        .filter(|n| *n > 0)
        .or_else(|| {
            cpu.and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.percpu_usage.as_ref())
                .and_then(|p| u32::try_from(p.len()).ok())
        })
        .unwrap_or(1);
    #[allow(
        clippy::cast_precision_loss,
        reason = "a CPU fraction needs no exact nanoseconds"
    )]
    let cores = if sys_delta > 0 {
        cpu_delta as f64 / sys_delta as f64 * f64::from(online)
    } else {
        0.0
    };
    let mem = stats.memory_stats.as_ref();
    let usage = mem.and_then(|m| m.usage).unwrap_or(0);
    let cache = mem
        .and_then(|m| m.stats.as_ref())
        .and_then(|s| s.get("inactive_file").or_else(|| s.get("cache")).copied())
        .unwrap_or(0);
    (cores, usage.saturating_sub(cache))
}

fn event_of(e: &EventMessage) -> PlatformEvent {
    let action = e.action.clone().unwrap_or_default();
    let attrs: HashMap<String, String> = e
        .actor
        .as_ref()
        .and_then(|a| a.attributes.clone())
        .unwrap_or_default();
    let object = attrs.get("name").cloned().unwrap_or_default();
    let exit = attrs.get("exitCode").cloned();
    let reason = action
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let warning = match reason.as_str() {
        "oom" | "kill" => true,
        "die" => exit.as_deref().is_some_and(|c| c != "0"),
        "health_status" => action.contains("unhealthy"),
        _ => false,
    };
    let message = match &exit {
        Some(code) => format!("{action} (exit code {code})"),
        None => action.clone(),
    };
    let mut ev = PlatformEvent::new(reason, message, object);
    ev.warning = warning;
    ev.at = e
        .time_nano
        .and_then(|n| jiff::Timestamp::from_nanosecond(i128::from(n)).ok())
        .or_else(|| e.time.and_then(|s| jiff::Timestamp::from_second(s).ok()));
    ev
}

impl ComposePlatform {
    /// CPU and memory of every running container of the service. The memory limit is the
    /// container's own (`mem_limit`); `None` when it has none (the host's memory is no limit).
    ///
    /// # Errors
    /// `NotFound`; engine errors. Each sample takes about a second (the engine measures CPU
    /// over an interval).
    pub async fn service_usage(&self, workload: &WorkloadRef) -> Result<Vec<ResourceUsage>> {
        let inspected = self.inspect_members(workload, "resource_usage").await?;
        let docker = self.docker().await?;
        let mut out = Vec::new();
        for i in inspected {
            if !i.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
                continue;
            }
            let id = i.id.clone().unwrap_or_default();
            let name = i
                .name
                .clone()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned();
            let Ok(instance) = ResourceName::new(&name) else {
                continue;
            };
            let opts = StatsOptionsBuilder::new().stream(false).build();
            let sample = async { docker.stats(&id, Some(opts)).next().await.transpose() };
            let Some(stats) = self.call("stats", &name, sample).await? else {
                continue;
            };
            let (cores, memory) = usage_of(&stats);
            let limit = i
                .host_config
                .as_ref()
                .and_then(|h| h.memory)
                .and_then(|m| u64::try_from(m).ok())
                .filter(|m| *m > 0);
            let usage = ResourceUsage::new(instance, cores, memory, limit);
            out.push(match i.host_config.as_ref().and_then(cpu_limit) {
                Some(limit) => usage.with_cpu_limit(limit),
                None => usage,
            });
        }
        Ok(out)
    }

    /// Engine events about the service's containers (start, die, kill, oom, `health_status`,
    /// ...), oldest first; `die` with a non-zero exit code, `oom`, `kill` and unhealthy
    /// health checks are warnings. Default window: the last hour.
    ///
    /// # Errors
    /// Engine errors; `Timeout`.
    pub async fn service_events(
        &self,
        workload: &WorkloadRef,
        opts: &EventOptions,
    ) -> Result<Vec<PlatformEvent>> {
        let now = jiff::Timestamp::now().as_second();
        let window = opts.since.unwrap_or(std::time::Duration::from_hours(1));
        let since = now - i64::try_from(window.as_secs()).unwrap_or(i64::MAX / 2);
        let mut events: Vec<PlatformEvent> = self
            .recorded_events(workload, since, None)
            .await?
            .iter()
            .map(event_of)
            .collect();
        // exec_* events are our own probes and commands: noise in an incident timeline.
        events.retain(|e| !e.reason.starts_with("exec_") && (!opts.warnings_only || e.warning));
        if let Some(limit) = opts.limit {
            let skip = events.len().saturating_sub(limit);
            events.drain(..skip);
        }
        Ok(events)
    }

    /// The image of the newest replaced (destroyed) container of the service that ran
    /// another image than `current`, from the engine's in-memory event record; one-off
    /// containers excluded. `None` when the record holds none.
    pub(crate) async fn replaced_image(
        &self,
        workload: &WorkloadRef,
        current: &str,
    ) -> Result<Option<String>> {
        // `since` only opens the engine's record (it keeps recent events, not a week's).
        let since = jiff::Timestamp::now().as_second() - 7 * 24 * 3600;
        let events = self
            .recorded_events(workload, since, Some("destroy"))
            .await?;
        Ok(previous_image_of(&events, current))
    }

    /// The engine's recorded events about the service's containers from `since` (Unix
    /// seconds) until now, oldest first; `action` keeps one kind (`destroy`).
    async fn recorded_events(
        &self,
        workload: &WorkloadRef,
        since: i64,
        action: Option<&str>,
    ) -> Result<Vec<EventMessage>> {
        let (project, service) = labels::project_service(workload)?;
        let docker = self.docker().await?;
        let now = jiff::Timestamp::now().as_second();
        let mut filters = labels::filters(project, Some(service));
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        if let Some(action) = action {
            filters.insert("event".to_owned(), vec![action.to_owned()]);
        }
        let engine_opts = EventsOptionsBuilder::new()
            .since(&since.max(0).to_string())
            .until(&(now + 1).to_string())
            .filters(&filters)
            .build();
        let collect = async {
            let mut s = docker.events(Some(engine_opts));
            let mut out = Vec::new();
            while let Some(e) = s.next().await {
                out.push(e?);
            }
            Ok::<_, bollard::errors::Error>(out)
        };
        self.call("events", &workload.to_string(), collect).await
    }
}

/// The newest destroyed non-one-off container's image that differs from `current`.
fn previous_image_of(events: &[EventMessage], current: &str) -> Option<String> {
    events
        .iter()
        .rev()
        .filter_map(|e| e.actor.as_ref()?.attributes.as_ref())
        .filter(|a| !labels::is_oneoff(Some(a)))
        .filter_map(|a| a.get("image"))
        .find(|image| !image.is_empty() && image.as_str() != current)
        .cloned()
}

/// A container's CPU limit in cores, as compose sets it (`cpus:` / `deploy.resources.limits.cpus`
/// become `NanoCpus`; `cpu_quota` / `cpu_period` the CFS pair).
#[allow(
    clippy::cast_precision_loss,
    reason = "cores need no exact nanoseconds"
)]
fn cpu_limit(host: &bollard::models::HostConfig) -> Option<f64> {
    if let Some(nano) = host.nano_cpus.filter(|n| *n > 0) {
        return Some(nano as f64 / 1e9);
    }
    let quota = host.cpu_quota.filter(|q| *q > 0)?;
    let period = host.cpu_period.filter(|p| *p > 0).unwrap_or(100_000);
    Some(quota as f64 / period as f64)
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats, EventActor};

    use super::*;

    #[test]
    fn cpu_is_measured_in_cores_and_cache_is_not_memory() {
        let stats = ContainerStatsResponse {
            cpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(1_500),
                    ..Default::default()
                }),
                system_cpu_usage: Some(4_000),
                online_cpus: Some(2),
                ..Default::default()
            }),
            precpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(500),
                    ..Default::default()
                }),
                system_cpu_usage: Some(2_000),
                ..Default::default()
            }),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(100),
                stats: Some(HashMap::from([("inactive_file".to_owned(), 30)])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (cores, mem) = usage_of(&stats);
        assert!((cores - 1.0).abs() < 1e-9);
        assert_eq!(mem, 70);
    }

    #[test]
    fn failed_exits_are_warnings() {
        let e = EventMessage {
            action: Some("die".into()),
            actor: Some(EventActor {
                attributes: Some(HashMap::from([
                    ("name".to_owned(), "shop-api-1".to_owned()),
                    ("exitCode".to_owned(), "3".to_owned()),
                ])),
                ..Default::default()
            }),
            time: Some(1),
            ..Default::default()
        };
        let ev = event_of(&e);
        assert!(ev.warning);
        assert_eq!(ev.object, "shop-api-1");
        assert_eq!(ev.message, "die (exit code 3)");
    }

    #[test]
    fn the_previous_image_is_the_newest_other_image_destroyed_one_offs_aside() {
        let destroyed = |image: &str, oneoff: &str| EventMessage {
            action: Some("destroy".into()),
            actor: Some(EventActor {
                attributes: Some(HashMap::from([
                    ("image".to_owned(), image.to_owned()),
                    (labels::ONEOFF.to_owned(), oneoff.to_owned()),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let events = [
            destroyed("demo:1", "False"),
            destroyed("demo:2", "False"),
            destroyed("demo:9", "True"),
            destroyed("demo:3", "False"),
        ];
        assert_eq!(
            previous_image_of(&events, "demo:3").as_deref(),
            Some("demo:2")
        );
        assert_eq!(previous_image_of(&events[2..], "demo:3"), None);
    }

    #[test]
    fn cpu_limits_read_as_compose_writes_them() {
        let nano = bollard::models::HostConfig {
            nano_cpus: Some(500_000_000),
            ..Default::default()
        };
        assert_eq!(cpu_limit(&nano), Some(0.5));
        let cfs = bollard::models::HostConfig {
            cpu_quota: Some(150_000),
            cpu_period: Some(100_000),
            ..Default::default()
        };
        assert_eq!(cpu_limit(&cfs), Some(1.5));
        assert_eq!(cpu_limit(&bollard::models::HostConfig::default()), None);
    }
}
