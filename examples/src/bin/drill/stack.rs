//! The drill's stack: demo-api, PostgreSQL and Redis as a compose project (compose labels,
//! its own network), created through the Engine API.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use ops_compose::{ComposePlatform, labels};
use ops_core::WorkloadRef;

/// Image names, overridable like the test helpers' (`OPSBOOK_IMAGE_*`).
pub(crate) struct Images {
    pub(crate) api: String,
    pub(crate) postgres: String,
    pub(crate) redis: String,
}

impl Images {
    pub(crate) fn from_env() -> Self {
        let var = |k: &str, d: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| d.to_owned())
        };
        Self {
            api: var("OPSBOOK_IMAGE_DEMO_API", "opsbook/demo-api:local"),
            postgres: var("OPSBOOK_IMAGE_POSTGRES", "opsbook/postgres:15"),
            redis: var("OPSBOOK_IMAGE_REDIS", "opsbook/redis:7"),
        }
    }

    fn all(&self) -> [&str; 3] {
        [&self.api, &self.postgres, &self.redis]
    }
}

/// The running stack.
pub(crate) struct Stack {
    pub(crate) docker: Docker,
    pub(crate) project: String,
    pub(crate) network: String,
    pub(crate) platform: Arc<ComposePlatform>,
    pub(crate) images: Images,
    pub(crate) api_port: u16,
    pub(crate) pg_port: u16,
    pub(crate) redis_port: u16,
}

/// PostgreSQL's connection limit in the drill (small, so exhausting it is quick).
pub(crate) const PG_MAX_CONNECTIONS: u32 = 20;

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Make sure the engine answers and the images exist, running `scripts/provision` once when
/// one is missing.
pub(crate) async fn ensure_images(images: &Images) -> anyhow::Result<Docker> {
    let docker = Docker::connect_with_defaults()
        .context("no Docker client (DOCKER_HOST)")?
        .negotiate_version()
        .await;
    let docker = if let Ok(d) = docker {
        d
    } else {
        provision()?;
        Docker::connect_with_defaults()?
            .negotiate_version()
            .await
            .context("the Docker engine does not answer; run scripts/provision")?
    };
    let mut missing = Vec::new();
    for image in images.all() {
        if docker.inspect_image(image).await.is_err() {
            missing.push(image.to_owned());
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "  images missing ({}): running scripts/provision",
            missing.join(", ")
        );
        provision()?;
        for image in &missing {
            docker.inspect_image(image).await.with_context(|| {
                format!("image {image} is still missing after scripts/provision")
            })?;
        }
    }
    Ok(docker)
}

fn provision() -> anyhow::Result<()> {
    let script = workspace_root().join("scripts/provision");
    let status = std::process::Command::new(&script)
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}

struct ServiceSpec<'a> {
    service: &'a str,
    image: &'a str,
    env: Vec<String>,
    cmd: Option<Vec<String>>,
    port: (u16, u16),
    depends_on: Option<&'a str>,
    restart_always: bool,
}

impl Stack {
    /// Create the network and the three containers, then start them in dependency order
    /// with health gates (db and cache, then api).
    pub(crate) async fn start(docker: Docker, images: Images) -> anyhow::Result<Self> {
        let project = format!("drill-{:04x}", fastrand::u16(..));
        let network = format!("{project}_default");
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                labels: Some(HashMap::from([(
                    labels::PROJECT.to_owned(),
                    project.clone(),
                )])),
                ..NetworkCreateRequest::default()
            })
            .await
            .context("cannot create the drill network")?;
        let platform = Arc::new(
            ComposePlatform::builder()
                .with_stop_timeout(Duration::from_secs(3))
                .with_poll_interval(Duration::from_millis(300))
                .with_health_timeout(Duration::from_secs(60))
                .with_client(docker.clone())
                .build()?,
        );
        let stack = Self {
            docker,
            project,
            network,
            platform,
            images,
            api_port: free_port()?,
            pg_port: free_port()?,
            redis_port: free_port()?,
        };
        let specs = [
            ServiceSpec {
                service: "db",
                image: &stack.images.postgres,
                env: vec!["POSTGRES_USER=app".into(), "POSTGRES_DB=app".into()],
                cmd: Some(vec![
                    "-c".into(),
                    format!("max_connections={PG_MAX_CONNECTIONS}"),
                ]),
                port: (5432, stack.pg_port),
                depends_on: None,
                restart_always: false,
            },
            ServiceSpec {
                service: "cache",
                image: &stack.images.redis,
                env: vec![],
                cmd: None,
                port: (6379, stack.redis_port),
                depends_on: None,
                restart_always: false,
            },
            ServiceSpec {
                service: "api",
                image: &stack.images.api,
                env: vec![
                    "PORT=8080".into(),
                    "DATABASE_URL=postgres://app@db:5432/app".into(),
                    "REDIS_URL=redis://cache:6379".into(),
                ],
                cmd: None,
                port: (8080, stack.api_port),
                depends_on: Some("db:service_healthy:false,cache:service_healthy:false"),
                restart_always: true,
            },
        ];
        for spec in &specs {
            stack.create(spec).await?;
        }
        Ok(stack)
    }

    async fn create(&self, spec: &ServiceSpec<'_>) -> anyhow::Result<()> {
        let name = labels::container_name(&self.project, spec.service, 1);
        let mut l = HashMap::from([
            (labels::PROJECT.to_owned(), self.project.clone()),
            (labels::SERVICE.to_owned(), spec.service.to_owned()),
            (labels::CONTAINER_NUMBER.to_owned(), "1".to_owned()),
            (labels::ONEOFF.to_owned(), "False".to_owned()),
        ]);
        if let Some(d) = spec.depends_on {
            l.insert(labels::DEPENDS_ON.to_owned(), d.to_owned());
        }
        let port = format!("{}/tcp", spec.port.0);
        let body = ContainerCreateBody {
            image: Some(spec.image.to_owned()),
            env: Some(spec.env.clone()),
            cmd: spec.cmd.clone(),
            labels: Some(l),
            exposed_ports: Some(vec![port.clone()]),
            host_config: Some(HostConfig {
                network_mode: Some(self.network.clone()),
                port_bindings: Some(HashMap::from([(
                    port,
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(spec.port.1.to_string()),
                    }]),
                )])),
                restart_policy: spec.restart_always.then_some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::ALWAYS),
                    maximum_retry_count: None,
                }),
                ..HostConfig::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network.clone(),
                    EndpointSettings {
                        aliases: Some(vec![spec.service.to_owned(), name.clone()]),
                        ..EndpointSettings::default()
                    },
                )])),
            }),
            ..ContainerCreateBody::default()
        };
        self.docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            )
            .await
            .with_context(|| format!("cannot create {name}"))?;
        Ok(())
    }

    pub(crate) fn service(&self, service: &str) -> WorkloadRef {
        // The project and service names are ours and valid.
        WorkloadRef::compose_service(&self.project, service).unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn api_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    pub(crate) fn pg_url(&self) -> String {
        format!("postgres://app@127.0.0.1:{}/app", self.pg_port)
    }

    pub(crate) fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.redis_port)
    }

    /// Remove every container and the network of the project.
    pub(crate) async fn teardown(&self) -> anyhow::Result<()> {
        let filters = HashMap::from([(
            "label",
            vec![format!("{}={}", labels::PROJECT, self.project)],
        )]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await?;
        for c in list {
            if let Some(id) = c.id {
                let _ = self
                    .docker
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                    )
                    .await;
            }
        }
        let _ = self.docker.remove_network(&self.network).await;
        Ok(())
    }
}
