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
#[derive(Debug, Clone)]
pub struct Images {
    /// demo-api (`OPSBOOK_IMAGE_DEMO_API`, default `opsbook/demo-api:local`).
    pub api: String,
    /// PostgreSQL (`OPSBOOK_IMAGE_POSTGRES`, default `opsbook/postgres:15`).
    pub postgres: String,
    /// Redis (`OPSBOOK_IMAGE_REDIS`, default `opsbook/redis:7`).
    pub redis: String,
}

impl Images {
    /// The image names from the environment, or the locally built defaults.
    pub fn from_env() -> Self {
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
#[derive(Debug)]
pub struct Stack {
    /// The engine.
    pub docker: Docker,
    /// The compose project name (`drill-XXXX`).
    pub project: String,
    /// The project's network.
    pub network: String,
    /// The project as an opsbook platform.
    pub platform: Arc<ComposePlatform>,
    /// The images it runs.
    pub images: Images,
    /// demo-api's port on 127.0.0.1.
    pub api_port: u16,
    /// PostgreSQL's port on 127.0.0.1.
    pub pg_port: u16,
    /// Redis's port on 127.0.0.1.
    pub redis_port: u16,
}

/// opsbook's role in the drill: `pg_monitor` and `pg_signal_backend`, not a superuser.
pub const OPERATOR: &str = "opsbook_operator";
/// The application role whose sessions exhaust the connections (not a superuser).
pub const APP_CLIENT: &str = "app_client";

/// PostgreSQL's connection limit in the drill (small, so exhausting it is quick).
pub const PG_MAX_CONNECTIONS: u32 = 20;

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The oldest Engine API the drill and `ops-compose` are tested with (Docker 20.10,
/// Debian 12's `docker.io`).
const MIN_API: (usize, usize) = (1, 41);

/// Why the engine cannot be used, in words a user can act on.
enum EngineState {
    /// It answers with a recent enough API.
    Ready(Docker),
    /// Nothing answers: no socket, no engine behind it, or an error talking to it.
    Unreachable(String),
    /// It answers, with an API older than [`MIN_API`].
    TooOld(String),
}

async fn engine_state() -> EngineState {
    let docker = match Docker::connect_with_defaults() {
        Ok(d) => d,
        Err(e) => return EngineState::Unreachable(e.to_string()),
    };
    let docker = match docker.negotiate_version().await {
        Ok(d) => d,
        Err(e) => return EngineState::Unreachable(e.to_string()),
    };
    let v = docker.client_version();
    if (v.major_version, v.minor_version) < MIN_API {
        return EngineState::TooOld(format!("{}.{}", v.major_version, v.minor_version));
    }
    EngineState::Ready(docker)
}

/// The engine the drill talks to, for messages.
fn engine_address() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .map_or_else(
            || "unix:///var/run/docker.sock".to_owned(),
            |h| format!("DOCKER_HOST={h}"),
        )
}

/// Make sure a Docker engine answers and the images exist, running `scripts/provision` once
/// when either is missing (after saying, in one line, what it will install or start).
///
/// When provisioning cannot help — `DOCKER_HOST` names an engine that does not answer, an
/// engine too old, not root, no `apt-get` — it fails with one sentence saying what to do.
///
/// # Errors
/// That sentence, when no engine or image can be had.
pub async fn ensure_images(images: &Images) -> anyhow::Result<Docker> {
    let docker = match engine_state().await {
        EngineState::Ready(d) => d,
        EngineState::TooOld(api) => bail!(
            "the Docker engine at {} speaks API {api}, older than the {}.{} the drill needs: \
             upgrade it to Docker 20.10 or newer",
            engine_address(),
            MIN_API.0,
            MIN_API.1
        ),
        EngineState::Unreachable(reason) => {
            if std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty()) {
                bail!(
                    "no Docker engine answers at {} ({reason}): start that engine, or unset \
                     DOCKER_HOST to let the drill install and start a local one",
                    engine_address()
                );
            }
            let plan = provision_plan()?;
            announce(&format!("no Docker engine answers ({reason})"), &plan)?;
            provision()?;
            match engine_state().await {
                EngineState::Ready(d) => d,
                EngineState::TooOld(api) => bail!(
                    "the Docker engine scripts/provision started speaks API {api}, older than \
                     {}.{}: upgrade docker.io",
                    MIN_API.0,
                    MIN_API.1
                ),
                EngineState::Unreachable(reason) => bail!(
                    "the Docker engine still does not answer after scripts/provision ({reason}); \
                     its log is /var/log/opsbook-dockerd.log"
                ),
            }
        }
    };
    if !program_on_path("docker-compose") {
        // The crash-loop scenario deploys its release with the real Compose.
        let plan = provision_plan()?;
        announce("docker-compose is missing", &plan)?;
        provision()?;
    }
    let mut missing = Vec::new();
    for image in images.all() {
        if docker.inspect_image(image).await.is_err() {
            missing.push(image.to_owned());
        }
    }
    if !missing.is_empty() {
        let plan = provision_plan()?;
        announce(&format!("images missing ({})", missing.join(", ")), &plan)?;
        provision()?;
        for image in &missing {
            if docker.inspect_image(image).await.is_err() {
                bail!("image {image} is still missing after scripts/provision");
            }
        }
    }
    Ok(docker)
}

/// What `scripts/provision` would do here: its `--check` plan, one action per entry.
fn provision_plan() -> anyhow::Result<Vec<String>> {
    let script = workspace_root().join("scripts/provision");
    let out = std::process::Command::new(&script)
        .arg("--check")
        .output()
        .with_context(|| format!("cannot run {} --check", script.display()))?;
    if !out.status.success() {
        bail!(
            "{}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .trim_start_matches("[provision] error: ")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("[provision] plan: "))
        .map(str::to_owned)
        .collect())
}

/// Say in one line what provisioning will do and roughly how long it takes, or stop with
/// one sentence when it cannot be done from here (not root, no `apt-get`).
fn announce(why: &str, plan: &[String]) -> anyhow::Result<()> {
    let installs = plan.iter().find(|a| a.starts_with("install "));
    let needs_root = installs.is_some() || plan.iter().any(|a| a.starts_with("start "));
    if needs_root && !is_root() {
        bail!(
            "{why}, and installing or starting it needs root: run `sudo scripts/provision` \
             once ({}), then the drill again",
            plan.join("; ")
        );
    }
    if let Some(install) = installs
        && !program_on_path("apt-get")
    {
        bail!(
            "{why}, and this machine has no apt-get: {install} by your system's means (a \
             Docker engine with API 1.41 or newer, debootstrap, the PostgreSQL client tools, \
             redis-cli and redis-server), then run the drill again"
        );
    }
    // Measured on a new machine: packages about 15 s, engine a few seconds, the images about
    // 2 minutes (debootstrap, then demo-api built by cargo).
    let builds = plan.iter().any(|a| a.contains("build"));
    let estimate = match (installs.is_some(), builds) {
        (_, true) => "about 3 minutes the first time",
        (true, false) => "under a minute",
        (false, false) => "a few seconds",
    };
    eprintln!(
        "  {why}: running scripts/provision to {} ({estimate})",
        plan.join("; ")
    );
    Ok(())
}

/// Whether this process runs as root (the effective uid in `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn program_on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

fn provision() -> anyhow::Result<()> {
    let script = workspace_root().join("scripts/provision");
    let status = std::process::Command::new(&script)
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); its messages are above",
            script.display()
        );
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

/// Polls `check` every 300 ms until it holds, failing after `timeout` with a message that
/// names `what`.
///
/// # Errors
/// `check` did not hold within `timeout`.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use std::time::Duration;
/// ops_examples::stack::until("one is one", Duration::from_secs(1), async || 1 == 1).await
/// # }
/// ```
pub async fn until(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

impl Stack {
    /// Create the network and the three containers, then start them in dependency order
    /// with health gates (db and cache, then api).
    ///
    /// # Errors
    /// The engine's, when the network or a container cannot be created.
    pub async fn start(docker: Docker, images: Images) -> anyhow::Result<Self> {
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
            // docker-compose 1.29 (which deploys the crash-loop scenario's release) reads
            // this label on every container of the project and fails without it.
            ("com.docker.compose.version".to_owned(), "1.29.2".to_owned()),
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

    /// The compose service `service` of the project.
    ///
    /// # Panics
    /// When `service` is not a valid compose service name (the drill's are: `api`, `db`,
    /// `cache`).
    pub fn service(&self, service: &str) -> WorkloadRef {
        // The project and service names are ours and valid.
        WorkloadRef::compose_service(&self.project, service).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Makes the api fail its HEALTHCHECK (`POST /admin/fault {"unhealthy":true}` through
    /// `http`) and waits, up to 30 s, until the platform reports the service unhealthy.
    ///
    /// # Errors
    /// The api refused the request, or the platform did not see it unhealthy in time.
    pub async fn make_api_unhealthy(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        use ops_core::Platform as _;
        http.post(self.api_url("/admin/fault"))
            .json(&serde_json::json!({"unhealthy": true}))
            .send()
            .await?
            .error_for_status()?;
        let api = self.service("api");
        until(
            "the api is unhealthy",
            Duration::from_secs(30),
            async || {
                self.platform
                    .workload(&api)
                    .await
                    .is_ok_and(|s| !s.is_healthy())
            },
        )
        .await
    }

    /// demo-api's URL for `path` (e.g. `/health`).
    pub fn api_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    /// The database as opsbook's operator role ([`OPERATOR`], not a superuser).
    pub fn pg_url(&self) -> String {
        format!("postgres://{OPERATOR}@127.0.0.1:{}/app", self.pg_port)
    }

    /// Create the roles of the drill once the database is healthy: opsbook's operator with the
    /// grants ops-db's README documents, and the application's client role (not a superuser,
    /// so the operator may end its sessions).
    ///
    /// # Errors
    /// When `psql` in the database container cannot be run or fails.
    pub async fn create_roles(&self) -> anyhow::Result<()> {
        use ops_core::Platform as _;
        let instance =
            self.service("db")
                .instance(&labels::container_name(&self.project, "db", 1))?;
        let sql = format!(
            "CREATE ROLE {OPERATOR} LOGIN; GRANT pg_monitor, pg_signal_backend TO {OPERATOR}; \
             CREATE ROLE {APP_CLIENT} LOGIN;"
        );
        let out = self
            .platform
            .exec(
                &instance,
                &ops_core::platform::ExecCommand::new([
                    "psql", "-q", "-U", "app", "-d", "app", "-c", &sql,
                ])?
                .with_timeout(Duration::from_secs(20)),
            )
            .await?;
        if !out.success() {
            bail!(
                "cannot create the drill's roles: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// The directory of the api's compose file (`docker-compose` reads it and `.env` there).
    pub fn compose_dir(&self) -> PathBuf {
        std::env::temp_dir().join(format!("opsbook-{}", self.project))
    }

    /// Deploy `image` for the api as a compose user does: write the service into the
    /// project's compose file and run `docker-compose -p PROJECT up -d --no-deps api`
    /// (Debian's docker-compose 1.29, a real Compose). Compose finds the running api by its
    /// labels and recreates it with the new image; the project's network is the drill's.
    ///
    /// # Errors
    /// The compose file cannot be written, or `docker-compose` is missing or fails.
    pub fn compose_up_api(&self, image: &str) -> anyhow::Result<()> {
        let dir = self.compose_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let file = format!(
            "version: \"2.4\"\nservices:\n  api:\n    image: {image}\n    environment:\n      PORT: \"8080\"\n      DATABASE_URL: postgres://app@db:5432/app\n      REDIS_URL: redis://cache:6379\n    ports: [\"127.0.0.1:{port}:8080\"]\n    restart: always\nnetworks:\n  default:\n    external: true\n    name: {network}\n",
            port = self.api_port,
            network = self.network
        );
        std::fs::write(dir.join("docker-compose.yml"), file)
            .with_context(|| format!("cannot write {}/docker-compose.yml", dir.display()))?;
        let out = std::process::Command::new("docker-compose")
            .current_dir(&dir)
            .args(["-p", &self.project, "up", "-d", "--no-deps", "api"])
            .output()
            .context("cannot run docker-compose (scripts/provision installs it)")?;
        if !out.status.success() {
            bail!(
                "docker-compose up failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Redis's URL on 127.0.0.1.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.redis_port)
    }

    /// Remove every container and the network of the project.
    ///
    /// # Errors
    /// The engine's, when a container or the network cannot be removed.
    pub async fn teardown(&self) -> anyhow::Result<()> {
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
        let _ = std::fs::remove_dir_all(self.compose_dir());
        Ok(())
    }
}
