//! A compose project made of plain containers labelled as compose labels them, on its own
//! network; removed when dropped.

#![allow(dead_code, unreachable_pub, reason = "shared by several test binaries")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, NetworkCreateRequest,
    NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};
use ops_compose::ComposePlatform;
use ops_compose::labels;
use ops_core::WorkloadRef;

/// The demo-api image (`OPSBOOK_IMAGE_DEMO_API`, default `opsbook/demo-api:local`).
pub fn demo_image() -> String {
    std::env::var("OPSBOOK_IMAGE_DEMO_API").unwrap_or_else(|_| "opsbook/demo-api:local".to_owned())
}

/// Skip (or fail under `CI=true`) when the engine or image is missing.
#[macro_export]
macro_rules! project_or_skip {
    ($prefix:expr) => {
        project_or_skip!($prefix, std::time::Duration::from_secs(60))
    };
    ($prefix:expr, $health:expr) => {
        match support::Project::with_health_timeout($prefix, $health).await {
            Ok(p) => p,
            Err(why) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{why}");
                }
                eprintln!("skipping test: {why}; run scripts/provision");
                return;
            }
        }
    };
}

pub struct Project {
    pub docker: Docker,
    pub name: String,
    pub network: String,
    pub platform: Arc<ComposePlatform>,
}

/// What to run for a service container.
#[derive(Clone, Default)]
pub struct Spec {
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub no_healthcheck: bool,
    pub depends_on: Option<String>,
    pub oneoff: bool,
    pub restart: Option<&'static str>,
    /// A `CMD-SHELL` HEALTHCHECK run every second, unhealthy after one failure.
    pub health_cmd: Option<String>,
    /// Publish container port 8080 on an ephemeral port of 127.0.0.1.
    pub publish: bool,
    /// `HostConfig.Memory`, bytes (Docker then sets `MemorySwap` to twice it).
    pub memory: Option<i64>,
    /// More labels (e.g. the compose file labels docker compose writes).
    pub labels: Vec<(String, String)>,
}

impl Spec {
    /// bash running `script` (no HEALTHCHECK).
    pub fn script(script: &str) -> Self {
        Self {
            entrypoint: Some(vec!["bash".into(), "-c".into(), script.into()]),
            no_healthcheck: true,
            ..Self::default()
        }
    }
}

impl Project {
    pub async fn new(prefix: &str) -> Result<Self, String> {
        Self::with_health_timeout(prefix, Duration::from_secs(60)).await
    }

    pub async fn with_health_timeout(prefix: &str, health: Duration) -> Result<Self, String> {
        let docker = Docker::connect_with_defaults()
            .map_err(|e| format!("no docker client: {e}"))?
            .negotiate_version()
            .await
            .map_err(|e| format!("no docker engine: {e}"))?;
        docker
            .inspect_image(&demo_image())
            .await
            .map_err(|e| format!("image {} missing: {e}", demo_image()))?;
        let name = format!("t{prefix}{}", fastrand::u32(..) % 1_000_000);
        let network = format!("{name}_default");
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                labels: Some(HashMap::from([(labels::PROJECT.to_owned(), name.clone())])),
                ..NetworkCreateRequest::default()
            })
            .await
            .map_err(|e| format!("cannot create network: {e}"))?;
        let platform = Arc::new(
            ComposePlatform::builder()
                .with_stop_timeout(Duration::from_secs(2))
                .with_poll_interval(Duration::from_millis(250))
                .with_health_timeout(health)
                .build()
                .map_err(|e| e.to_string())?,
        );
        Ok(Self {
            docker,
            name,
            network,
            platform,
        })
    }

    pub fn service(&self, service: &str) -> WorkloadRef {
        WorkloadRef::compose_service(&self.name, service).unwrap()
    }

    /// Create and start container `number` of `service`.
    pub async fn add(&self, service: &str, number: u32, spec: &Spec) -> String {
        let cname = if spec.oneoff {
            format!("{}-{service}-run-{number}", self.name)
        } else {
            labels::container_name(&self.name, service, number)
        };
        let mut l = HashMap::from([
            (labels::PROJECT.to_owned(), self.name.clone()),
            (labels::SERVICE.to_owned(), service.to_owned()),
            (labels::CONTAINER_NUMBER.to_owned(), number.to_string()),
            (
                labels::ONEOFF.to_owned(),
                if spec.oneoff { "True" } else { "False" }.to_owned(),
            ),
        ]);
        if let Some(d) = &spec.depends_on {
            l.insert(labels::DEPENDS_ON.to_owned(), d.clone());
        }
        l.extend(spec.labels.iter().cloned());
        let body = ContainerCreateBody {
            image: Some(demo_image()),
            entrypoint: spec.entrypoint.clone(),
            env: Some(spec.env.clone()),
            labels: Some(l),
            stop_timeout: Some(2),
            healthcheck: match &spec.health_cmd {
                Some(cmd) => Some(HealthConfig {
                    test: Some(vec!["CMD-SHELL".into(), cmd.clone()]),
                    interval: Some(1_000_000_000),
                    timeout: Some(1_000_000_000),
                    retries: Some(1),
                    ..HealthConfig::default()
                }),
                None => spec.no_healthcheck.then(|| HealthConfig {
                    test: Some(vec!["NONE".into()]),
                    ..HealthConfig::default()
                }),
            },
            exposed_ports: spec.publish.then(|| vec!["8080/tcp".to_owned()]),
            host_config: Some(HostConfig {
                port_bindings: spec.publish.then(|| {
                    HashMap::from([(
                        "8080/tcp".to_owned(),
                        Some(vec![bollard::models::PortBinding {
                            host_ip: Some("127.0.0.1".to_owned()),
                            host_port: Some(String::new()),
                        }]),
                    )])
                }),
                network_mode: Some(self.network.clone()),
                memory: spec.memory,
                restart_policy: spec.restart.map(|r| bollard::models::RestartPolicy {
                    name: Some(match r {
                        "always" => bollard::models::RestartPolicyNameEnum::ALWAYS,
                        _ => bollard::models::RestartPolicyNameEnum::NO,
                    }),
                    maximum_retry_count: None,
                }),
                ..HostConfig::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network.clone(),
                    EndpointSettings {
                        aliases: Some(vec![service.to_owned()]),
                        ..EndpointSettings::default()
                    },
                )])),
            }),
            ..ContainerCreateBody::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(&cname).build();
        let id = self
            .docker
            .create_container(Some(opts), body)
            .await
            .unwrap()
            .id;
        self.docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
            .unwrap();
        id
    }

    /// Every container of the project, as `docker ps -a` lists it.
    pub async fn containers(&self) -> Vec<bollard::models::ContainerSummary> {
        project_containers(&self.docker, &self.name).await.unwrap()
    }

    /// Inspect JSON of every container of the project, by name (for before/after comparisons).
    pub async fn snapshot(&self) -> Vec<String> {
        let list = self.containers().await;
        let mut out = Vec::new();
        for c in list {
            let mut i = self
                .docker
                .inspect_container(
                    c.id.as_deref().unwrap(),
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .unwrap();
            // Health-check logs move on their own; everything else must not.
            if let Some(h) = i.state.as_mut().and_then(|s| s.health.as_mut()) {
                h.log = None;
                h.failing_streak = None;
            }
            out.push(format!(
                "{:?} {:?} {:?} {:?} {:?}",
                i.id,
                i.name,
                i.state
                    .as_ref()
                    .map(|s| (&s.status, &s.started_at, &s.finished_at, s.pid)),
                i.restart_count,
                i.config.as_ref().map(|c| &c.env)
            ));
        }
        out.sort();
        out
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let filter = format!("label={}={}", labels::PROJECT, self.name);
        if let Ok(out) = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker")
                    .arg("rm")
                    .arg("-f")
                    .args(&ids)
                    .output();
            }
        }
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
        // Lockdown records a failed test left behind (issue 14 §lockdown).
        let record = format!("label=dev.opsbook.lockdown.project={}", self.name);
        if let Ok(out) = std::process::Command::new("docker")
            .args(["network", "ls", "-q", "--filter", &record])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = std::process::Command::new("docker")
                    .args(["network", "rm", id])
                    .output();
            }
        }
    }
}

/// An image tag the test made, removed when dropped (on a failed assertion too).
pub struct Tag(pub String);

impl Tag {
    /// `demo_image()` tagged as `<repo>:<suffix>`, or committed from `container` with
    /// `change` (a Dockerfile instruction) when given.
    pub fn new(suffix: &str, from: Option<(&str, &str)>) -> Self {
        let image = demo_image();
        let repo = image.rsplit_once(':').map_or(image.as_str(), |(r, _)| r);
        let tag = format!("{repo}:{suffix}");
        let out = match from {
            None => std::process::Command::new("docker")
                .args(["tag", &image, &tag])
                .output(),
            Some((container, change)) => std::process::Command::new("docker")
                .args(["commit", "--change", change, container, &tag])
                .output(),
        }
        .expect("docker runs");
        assert!(out.status.success(), "{out:?}");
        Self(tag)
    }
}

impl Tag {
    /// A release of project `p` that crashes at start: `container`'s image committed with
    /// the demo's crash fault switched on.
    pub fn crashing(p: &Project, container: &str) -> Self {
        Self::new(
            &format!("{}-bad", p.name),
            Some((container, "ENV FAULT_CRASH=true")),
        )
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

pub fn image_of(container: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{.Config.Image}}", container])
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every container of compose project `project`, as `docker ps -a` lists it.
pub async fn project_containers(
    docker: &Docker,
    project: &str,
) -> Result<Vec<bollard::models::ContainerSummary>, bollard::errors::Error> {
    docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&HashMap::from([(
                    "label",
                    vec![format!("{}={project}", labels::PROJECT)],
                )]))
                .build(),
        ))
        .await
}

/// Runbook targets for `workload` of project `p`: its platform, a [`StatusProbe`], and
/// rollout and verify timings short enough for tests.
pub fn runbook_targets(p: &Project, workload: &WorkloadRef) -> ops_core::runbooks::Targets {
    use ops_core::runbooks::{RunbookConfig, Targets};
    let probe = StatusProbe {
        platform: Arc::clone(&p.platform),
        workload: workload.clone(),
    };
    Targets::new(Arc::clone(&p.platform) as _, workload.clone())
        .with_probe(Arc::new(probe))
        .with_config(
            RunbookConfig::default()
                .with_rollout_timeout(Duration::from_secs(60))
                .with_rollout_poll(Duration::from_millis(250))
                .with_verify(2, Duration::from_millis(500), Duration::from_secs(60)),
        )
}

/// Up when the workload is healthy on the platform (a probe for runbook tests).
#[derive(Debug)]
pub struct StatusProbe {
    pub platform: Arc<ComposePlatform>,
    pub workload: WorkloadRef,
}

#[async_trait::async_trait]
impl ops_core::Probe for StatusProbe {
    fn name(&self) -> &'static str {
        "compose-status"
    }

    async fn check(&self) -> Result<ops_core::probe::ProbeResult, ops_core::OpsError> {
        use ops_core::Platform as _;
        let s = self.platform.workload(&self.workload).await?;
        Ok(if s.is_healthy() {
            ops_core::probe::ProbeResult::up()
        } else {
            ops_core::probe::ProbeResult::down(format!("{} of {} ready", s.ready, s.desired))
        })
    }
}
