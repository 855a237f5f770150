//! A project beyond its services' status: each service with its published ports and its
//! ready (running and healthy) containers, the project's recent engine events, the free
//! space of the engine's root directory when the engine is local, and `docker system df`.
//! Compose has no nodes, quotas or network policies: those parts are unsupported.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::ContainerSummary;
use futures::future::join_all;
use ops_core::platform::{
    DiskSpace, Endpoint, EngineDiskUsage, EventOptions, InspectOptions, Inspection, PlatformEvent,
    Section, ServiceEndpoints, ServicePort,
};
use ops_core::{Namespace, OpsError, WorkloadRef};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::labels;
use crate::platform::ComposePlatform;
use crate::raw::{Endpoint as RawEndpoint, FrameReader, RawError};

/// The largest `system df` answer read (it lists every image, container and volume).
const DF_LIMIT: usize = 64 << 20;

impl ComposePlatform {
    /// The project's [`Inspection`].
    pub(crate) async fn inspect_project(
        &self,
        namespace: &Namespace,
        opts: &InspectOptions,
    ) -> Result<Inspection> {
        let project = namespace.as_str();
        labels::validate_project(project)?;
        let (services, events, disks, df) = tokio::join!(
            self.service_endpoints(project),
            self.project_events(project, opts),
            self.root_dir_space(),
            self.system_df(),
        );
        let mut out = Inspection::default();
        out.services = section(services);
        out.events = section(events);
        out.disks = section(disks);
        out.engine_disk_usage = section(df);
        out.nodes = Section::unsupported(
            "a Compose project runs on one Docker engine: see the engine's disk space",
        );
        out.quotas = Section::unsupported("the Docker engine has no resource quotas");
        out.network_policies = Section::unsupported("the Docker engine has no network policies");
        Ok(out)
    }

    /// Each service with its published ports; ready = running and healthy (or running
    /// without a HEALTHCHECK), as [`ComposePlatform::workload_status`] reads them.
    async fn service_endpoints(&self, project: &str) -> Result<Vec<ServiceEndpoints>> {
        let containers = self.list(project, None).await?;
        let mut by_service: BTreeMap<String, Vec<&ContainerSummary>> = BTreeMap::new();
        for c in &containers {
            if let Some(s) = c.labels.as_ref().and_then(|l| l.get(labels::SERVICE)) {
                by_service.entry(s.clone()).or_default().push(c);
            }
        }
        // A label that is no valid service name (not made by compose) names no workload.
        by_service.retain(|s, _| WorkloadRef::compose_service(project, s).is_ok());
        let statuses = join_all(by_service.keys().map(|s| async move {
            match WorkloadRef::compose_service(project, s) {
                Ok(w) => self.workload_status(&w).await,
                Err(_) => Err(Error::NotFound {
                    operation: "inspect",
                    target: format!("{project}/{s}"),
                }),
            }
        }))
        .await;
        let mut out = Vec::with_capacity(by_service.len());
        for ((service, members), status) in by_service.iter().zip(statuses) {
            let mut s = ServiceEndpoints::new(service.clone());
            s.ports = published_ports(members);
            match status {
                Ok(status) => {
                    for i in &status.instances {
                        let e = Endpoint::new(Some(i.name.to_string()), None);
                        if i.ready {
                            s.ready.push(e);
                        } else {
                            s.not_ready.push(e);
                        }
                    }
                }
                // Removed between the list and the inspection: no endpoints.
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            out.push(s);
        }
        Ok(out)
    }

    /// The project's recent engine events (the last hour), newest last.
    async fn project_events(
        &self,
        project: &str,
        opts: &InspectOptions,
    ) -> Result<Vec<PlatformEvent>> {
        let services = self.services(project).await?;
        let per_service = join_all(services.iter().filter_map(|s| {
            let w = WorkloadRef::compose_service(project, s).ok()?;
            Some(async move { self.service_events(&w, &EventOptions::default()).await })
        }))
        .await;
        let mut events = Vec::new();
        for e in per_service {
            events.extend(e?);
        }
        events.sort_by_key(|e| e.at);
        if let Some(limit) = opts.events_limit {
            let excess = events.len().saturating_sub(limit);
            events.drain(..excess);
        }
        Ok(events)
    }

    /// The filesystem of the engine's root directory (`DockerRootDir`), when the engine
    /// listens on a local socket and the directory is visible here.
    async fn root_dir_space(&self) -> Result<Vec<DiskSpace>> {
        let unsupported = |reason: &str| Error::Unsupported {
            operation: "inspect",
            target: "docker root dir".to_owned(),
            reason: reason.to_owned(),
        };
        let Some(RawEndpoint::Unix(_)) = self.raw_endpoint() else {
            return Err(unsupported(
                "the engine is not on a local socket: its filesystem cannot be measured from here",
            ));
        };
        let docker = self.docker().await?;
        let info = self.call("info", "docker engine", docker.info()).await?;
        let Some(root) = info.docker_root_dir.filter(|r| r.starts_with('/')) else {
            return Err(unsupported("the engine reports no root directory"));
        };
        let path = root.clone();
        let stat = tokio::task::spawn_blocking(move || rustix::fs::statvfs(path.as_str()))
            .await
            .map_err(|e| Error::engine("statvfs", &root, std::io::Error::other(e).into()))?
            .map_err(|e| Error::engine("statvfs", &root, std::io::Error::from(e).into()))?;
        let block = stat.f_frsize;
        Ok(vec![DiskSpace::new(
            format!("docker root {root}"),
            stat.f_blocks.saturating_mul(block),
            stat.f_bfree.saturating_mul(block),
            stat.f_bavail.saturating_mul(block),
        )])
    }

    /// `docker system df`, read as the engine writes it (API 1.41's lists and 1.52's totals
    /// both), over the plain socket; bollard's reading for TLS engines.
    async fn system_df(&self) -> Result<EngineDiskUsage> {
        let deadline = self.config().request_timeout.max(Duration::from_secs(60));
        let Some(endpoint) = self.raw_endpoint() else {
            let docker = self.docker().await?;
            let df = self
                .call_within(deadline, "system_df", "docker engine", docker.df(None))
                .await?;
            let body = serde_json::to_value(&df).unwrap_or(Value::Null);
            return Ok(parse_system_df(&body));
        };
        let read = async {
            let reader = FrameReader::open(endpoint, "/system/df", deadline).await?;
            reader.read_to_end(deadline, DF_LIMIT).await
        };
        let body = match tokio::time::timeout(deadline, read).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => return Err(raw_error(e, deadline)),
            Err(_) => return Err(raw_error(RawError::Timeout, deadline)),
        };
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            Error::engine(
                "system_df",
                "docker engine",
                std::io::Error::other(e).into(),
            )
        })?;
        Ok(parse_system_df(&value))
    }
}

fn section<T>(result: Result<T>) -> Section<T> {
    Section::from_result(result.map_err(OpsError::from))
}

fn raw_error(err: RawError, deadline: Duration) -> Error {
    let target = "docker engine";
    match err {
        RawError::Timeout => Error::Timeout {
            operation: "system_df",
            target: target.to_owned(),
            after: deadline,
        },
        RawError::Io(e) => Error::engine("system_df", target, e.into()),
        RawError::Status(status_code, message) => Error::engine(
            "system_df",
            target,
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            },
        ),
        RawError::Unsupported => Error::engine(
            "system_df",
            target,
            std::io::Error::other("the engine's answer is chunked or larger than 64 MiB").into(),
        ),
    }
}

/// Published ports of a service's containers, each once (the engine lists a port once per
/// host address family).
fn published_ports(members: &[&ContainerSummary]) -> Vec<ServicePort> {
    let mut seen: BTreeMap<(u16, u16, String), ServicePort> = BTreeMap::new();
    for p in members.iter().flat_map(|c| c.ports.iter().flatten()) {
        let Some(public) = p.public_port else {
            continue;
        };
        let protocol = p
            .typ
            .map_or_else(|| "tcp".to_owned(), |t| t.to_string())
            .to_ascii_uppercase();
        seen.entry((public, p.private_port, protocol.clone()))
            .or_insert_with(|| ServicePort::new(public, p.private_port.to_string(), protocol));
    }
    seen.into_values().collect()
}

fn non_negative(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_i64)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

fn count(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_array)
        .map_or(0, |a| u64::try_from(a.len()).unwrap_or(u64::MAX))
}

/// `docker system df`'s figures from the engine's `/system/df` answer, as the docker CLI
/// adds them up: images = `LayersSize` (shared layers once), containers = their `SizeRw`,
/// volumes = their `UsageData.Size` (`-1`, not computed, counts nothing), build cache = the
/// records not shared. API 1.52+ answers with totals (`ImageUsage.TotalSize`...), read as is.
/// Anything missing or malformed counts zero.
pub(crate) fn parse_system_df(v: &Value) -> EngineDiskUsage {
    let mut out = EngineDiskUsage::default();
    if let Some(images) = v.get("ImageUsage") {
        out.images_bytes = non_negative(images.get("TotalSize"));
        out.images = non_negative(images.get("TotalCount"));
        let c = v.get("ContainerUsage");
        out.containers_bytes = non_negative(c.and_then(|c| c.get("TotalSize")));
        out.containers = non_negative(c.and_then(|c| c.get("TotalCount")));
        let vol = v.get("VolumeUsage");
        out.volumes_bytes = non_negative(vol.and_then(|c| c.get("TotalSize")));
        out.volumes = non_negative(vol.and_then(|c| c.get("TotalCount")));
        let b = v.get("BuildCacheUsage");
        out.build_cache_bytes = non_negative(b.and_then(|c| c.get("TotalSize")));
        return out;
    }
    let list = |key: &str| {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    out.images_bytes = non_negative(v.get("LayersSize"));
    out.images = count(v.get("Images"));
    out.containers = count(v.get("Containers"));
    out.containers_bytes = list("Containers")
        .iter()
        .map(|c| non_negative(c.get("SizeRw")))
        .fold(0, u64::saturating_add);
    out.volumes = count(v.get("Volumes"));
    out.volumes_bytes = list("Volumes")
        .iter()
        .map(|vol| non_negative(vol.get("UsageData").and_then(|u| u.get("Size"))))
        .fold(0, u64::saturating_add);
    out.build_cache_bytes = list("BuildCache")
        .iter()
        .filter(|b| b.get("Shared").and_then(Value::as_bool) != Some(true))
        .map(|b| non_negative(b.get("Size")))
        .fold(0, u64::saturating_add);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn old_and_new_answers_add_up_as_the_cli_does() {
        let old = json!({
            "LayersSize": 1000,
            "Images": [{"Size": 700}, {"Size": 600}],
            "Containers": [{"SizeRw": 5}, {"SizeRw": 7}, {}],
            "Volumes": [{"UsageData": {"Size": 100, "RefCount": 1}}, {"UsageData": {"Size": -1, "RefCount": 0}}],
            "BuildCache": [{"Size": 50, "Shared": false}, {"Size": 30, "Shared": true}],
        });
        let df = parse_system_df(&old);
        assert_eq!(
            (
                df.images_bytes,
                df.images,
                df.containers_bytes,
                df.containers
            ),
            (1000, 2, 12, 3)
        );
        assert_eq!(
            (df.volumes_bytes, df.volumes, df.build_cache_bytes),
            (100, 2, 50)
        );
        let new = json!({
            "ImageUsage": {"TotalSize": 10, "TotalCount": 1},
            "ContainerUsage": {"TotalSize": 2, "TotalCount": 3},
            "VolumeUsage": {"TotalSize": 4, "TotalCount": 5},
            "BuildCacheUsage": {"TotalSize": 6},
        });
        assert_eq!(parse_system_df(&new).total_bytes(), 22);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-zA-Z]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("LayersSize".to_owned()),
                        Just("Images".to_owned()),
                        Just("Containers".to_owned()),
                        Just("Volumes".to_owned()),
                        Just("BuildCache".to_owned()),
                        Just("ImageUsage".to_owned()),
                        Just("UsageData".to_owned()),
                        Just("Size".to_owned()),
                        Just("SizeRw".to_owned()),
                        Just("Shared".to_owned()),
                        Just("TotalSize".to_owned()),
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_answer_reads_without_panicking(v in json_value()) {
            let df = parse_system_df(&v);
            let _ = df.total_bytes();
        }
    }
}
