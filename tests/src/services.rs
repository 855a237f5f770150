//! Starting PostgreSQL, Redis, demo-api and Prometheus for a test.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::{Connection as _, PgConnection};
use testcontainers::core::{Host, IntoContainerPort as _};
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{GenericImage, ImageExt as _};

use crate::container::Service;
use crate::engine::{docker, ensure_image, free_port, start_error};
use crate::error::ServiceError;
use crate::settings::{ImageRef, Images, env_url};

/// How long a service may take to become ready after its container started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Password of the `postgres` user in PostgreSQL containers (works with the upstream image too).
const PG_PASSWORD: &str = "opsbook";

/// The predefined roles ops-db's README asks for the operator role: see every session
/// (`pg_monitor`) and end sessions of other roles that are not superusers (`pg_signal_backend`).
pub const OPERATOR_GRANTS: &[&str] = &["pg_monitor", "pg_signal_backend"];
/// Host name under which containers reach the Docker host (external servers).
const HOST_GATEWAY: &str = "host.docker.internal";

/// Calls `check` every 100 ms until it returns `Ok(Some(_))`, for at most `timeout`.
/// `Ok(None)` means "not yet"; `Err` is remembered and reported if time runs out.
pub(crate) async fn poll<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<T, ServiceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining.max(Duration::from_millis(1)), check()).await {
            Ok(Ok(Some(value))) => return Ok(value),
            Ok(Ok(None)) => {}
            Ok(Err(err)) => last = err,
            Err(_) => last = String::from("the check itself timed out"),
        }
        if Instant::now() >= deadline {
            return Err(ServiceError::Failed(format!(
                "waited {timeout:?} for {what}; last: {last}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn random_suffix() -> String {
    format!("{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff)
}

fn http_client() -> Result<reqwest::Client, ServiceError> {
    // reqwest is built without a default crypto provider; install ring once (a second
    // install fails harmlessly).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|err| ServiceError::failed("cannot build an HTTP client", err))
}

/// Services sharing one per-test Docker network. Containers reach each other by container
/// name; the test reaches them through `127.0.0.1:<host port>`. The network goes away with
/// the last container on it.
#[derive(Debug, Clone)]
pub struct Stack {
    network: String,
    images: Images,
}

impl Default for Stack {
    fn default() -> Self {
        Self::new()
    }
}

impl Stack {
    /// A stack on a fresh network (created when the first container starts), using the
    /// images named by the `OPSBOOK_IMAGE_*` variables.
    pub fn new() -> Self {
        Self {
            network: format!("opsbook-test-{}", random_suffix()),
            images: Images::from_env(),
        }
    }

    /// The same stack with other images, e.g. to test against upstream ones.
    #[must_use]
    pub fn with_images(mut self, images: Images) -> Self {
        self.images = images;
        self
    }

    /// Name of the Docker network.
    pub fn network(&self) -> &str {
        &self.network
    }

    async fn run(
        &self,
        image: &ImageRef,
        role: &str,
        container_port: u16,
        env: &[(String, String)],
        copy: Option<(&str, Vec<u8>)>,
        cmd: &[String],
    ) -> Result<Service, ServiceError> {
        ensure_image(image).await?;
        let name = format!("opsbook-{role}-{}", random_suffix());
        let host_port = free_port()?;
        let mut request = GenericImage::new(image.name.clone(), image.tag.clone())
            .with_network(self.network.clone())
            .with_container_name(name.clone())
            .with_mapped_port(host_port, container_port.tcp())
            .with_label("org.opsbook.test", role)
            .with_host(HOST_GATEWAY, Host::HostGateway)
            .with_startup_timeout(READY_TIMEOUT);
        for (key, value) in env {
            request = request.with_env_var(key.clone(), value.clone());
        }
        if let Some((target, bytes)) = copy {
            request = request.with_copy_to(target.to_owned(), bytes);
        }
        if !cmd.is_empty() {
            request = request.with_cmd(cmd.to_vec());
        }
        let container = request
            .start()
            .await
            .map_err(|err| start_error(image, &err))?;
        Ok(Service::new(container, name, host_port, container_port))
    }

    /// PostgreSQL with a fresh database for this test: a container from
    /// `OPSBOOK_IMAGE_POSTGRES`, or a new database on the server at `OPSBOOK_TEST_PG_URL`
    /// (dropped again when the handle drops).
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] without an engine or image; [`ServiceError::Failed`]
    /// when the server does not become ready within [`READY_TIMEOUT`].
    pub async fn postgres(&self) -> Result<Postgres, ServiceError> {
        self.postgres_with_settings(&[]).await
    }

    /// [`Stack::postgres`] with server settings passed as `-c name=value` (they override
    /// the image's `postgresql.conf`, e.g. `("fsync", "on")` where the image trades
    /// durability for speed). Settings are ignored with `OPSBOOK_TEST_PG_URL`: the caller
    /// checks what it needs with `SHOW`.
    ///
    /// # Errors
    /// As [`Stack::postgres`].
    pub async fn postgres_with_settings(
        &self,
        settings: &[(&str, &str)],
    ) -> Result<Postgres, ServiceError> {
        let database = format!("t_{}", random_suffix());
        if let Some(admin_url) = env_url("OPSBOOK_TEST_PG_URL") {
            let admin = url::Url::parse(&admin_url)
                .map_err(|err| ServiceError::failed("OPSBOOK_TEST_PG_URL is not a URL", err))?;
            let pg = Postgres::ready(admin, database, None).await?;
            return Ok(pg);
        }
        let env = [
            ("POSTGRES_PASSWORD".to_owned(), PG_PASSWORD.to_owned()),
            // The upstream image's default; ours reads it too.
            ("POSTGRES_DB".to_owned(), "postgres".to_owned()),
        ];
        let service = self
            .run(
                &self.images.postgres,
                "postgres",
                5432,
                &env,
                None,
                &settings
                    .iter()
                    .flat_map(|(k, v)| ["-c".to_owned(), format!("{k}={v}")])
                    .collect::<Vec<_>>(),
            )
            .await?;
        let admin = url::Url::parse(&format!(
            "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{}/postgres",
            service.host_port()
        ))
        .map_err(|err| ServiceError::failed("bad PostgreSQL URL", err))?;
        Postgres::ready(admin, database, Some((service, self.clone()))).await
    }

    /// Redis: a container from `OPSBOOK_IMAGE_REDIS`, or the server at
    /// `OPSBOOK_TEST_REDIS_URL` with this test's keys under [`Redis::prefix`] (deleted
    /// when the handle drops).
    ///
    /// # Errors
    /// As [`Stack::postgres`].
    pub async fn redis(&self) -> Result<Redis, ServiceError> {
        let prefix = format!("t{}:", random_suffix());
        let (url, service) = if let Some(url) = env_url("OPSBOOK_TEST_REDIS_URL") {
            (url, None)
        } else {
            let service = self
                .run(&self.images.redis, "redis", 6379, &[], None, &[])
                .await?;
            (
                format!("redis://127.0.0.1:{}", service.host_port()),
                Some(service),
            )
        };
        let redis = Redis {
            url,
            prefix,
            service,
            stack: self.clone(),
        };
        redis.wait_ready(READY_TIMEOUT).await?;
        Ok(redis)
    }

    /// demo-api wired to `pg` and `redis` (`DATABASE_URL`, `REDIS_URL`), ready when
    /// `GET /health` answers 200.
    ///
    /// # Errors
    /// As [`Stack::postgres`].
    pub async fn demo_api(&self, pg: &Postgres, redis: &Redis) -> Result<DemoApi, ServiceError> {
        self.demo_api_with(Some(pg), Some(redis), &[]).await
    }

    /// demo-api with optional dependencies and extra environment, e.g.
    /// `[("FAULT_SLOW_MS", "200")]`. Dependencies started on another stack's network are
    /// connected to this one.
    ///
    /// # Errors
    /// As [`Stack::postgres`].
    pub async fn demo_api_with(
        &self,
        pg: Option<&Postgres>,
        redis: Option<&Redis>,
        extra_env: &[(&str, &str)],
    ) -> Result<DemoApi, ServiceError> {
        let mut env = Vec::new();
        if let Some(pg) = pg {
            if let Some(service) = &pg.service {
                self.attach(service, &pg.network).await?;
            }
            env.push(("DATABASE_URL".to_owned(), pg.internal_url()));
        }
        if let Some(redis) = redis {
            if let Some(service) = &redis.service {
                self.attach(service, &redis.stack.network).await?;
            }
            env.push(("REDIS_URL".to_owned(), redis.internal_url()));
        }
        env.push(("PORT".to_owned(), "8080".to_owned()));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let service = self
            .run(&self.images.demo_api, "demo-api", 8080, &env, None, &[])
            .await?;
        let api = DemoApi {
            base_url: format!("http://127.0.0.1:{}", service.host_port()),
            service,
            http: http_client()?,
        };
        api.wait_healthy(READY_TIMEOUT).await?;
        Ok(api)
    }

    /// Prometheus scraping `targets` (`host:port` as seen from the test network, e.g.
    /// [`DemoApi::internal_addr`]) every second under job `demo-api`. The configuration is
    /// copied to `/etc/prometheus/prometheus.yml`, so upstream images work too.
    ///
    /// # Errors
    /// As [`Stack::postgres`].
    pub async fn prometheus(&self, targets: &[String]) -> Result<Prometheus, ServiceError> {
        let quoted: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: demo-api\n    static_configs:\n      - targets: [{}]\n",
            quoted.join(", ")
        );
        let service = self
            .run(
                &self.images.prometheus,
                "prometheus",
                9090,
                &[],
                Some(("/etc/prometheus/prometheus.yml", config.into_bytes())),
                &[],
            )
            .await?;
        let prometheus = Prometheus {
            base_url: format!("http://127.0.0.1:{}", service.host_port()),
            service,
            http: http_client()?,
        };
        let ready_url = format!("{}/-/ready", prometheus.base_url);
        poll("Prometheus to be ready", READY_TIMEOUT, || async {
            match prometheus.http.get(&ready_url).send().await {
                Ok(response) if response.status().is_success() => Ok(Some(())),
                Ok(response) => Err(format!("status {}", response.status())),
                Err(err) => Err(err.to_string()),
            }
        })
        .await?;
        Ok(prometheus)
    }

    /// Connects `service` (started on `network`) to this stack's network, if different.
    async fn attach(&self, service: &Service, network: &str) -> Result<(), ServiceError> {
        if network == self.network {
            return Ok(());
        }
        // The network exists once one container joined it; create it if this stack has none yet.
        let client = docker().await?;
        if client.inspect_network(&self.network, None).await.is_err() {
            let request = bollard::models::NetworkCreateRequest {
                name: self.network.clone(),
                ..Default::default()
            };
            client.create_network(request).await.map_err(|err| {
                ServiceError::failed(format_args!("cannot create network {}", self.network), err)
            })?;
        }
        let request = bollard::models::NetworkConnectRequest {
            container: service.id().to_owned(),
            ..Default::default()
        };
        client
            .connect_network(&self.network, request)
            .await
            .map_err(|err| {
                ServiceError::failed(
                    format_args!("cannot connect {} to {}", service.name(), self.network),
                    err,
                )
            })
    }
}

/// A fresh PostgreSQL database.
#[derive(Debug)]
pub struct Postgres {
    admin: url::Url,
    url: url::Url,
    database: String,
    service: Option<Service>,
    network: String,
}

impl Postgres {
    async fn ready(
        admin: url::Url,
        database: String,
        service: Option<(Service, Stack)>,
    ) -> Result<Self, ServiceError> {
        let admin_text = admin.to_string();
        poll(
            "PostgreSQL to accept connections",
            READY_TIMEOUT,
            || async {
                let mut conn = PgConnection::connect(&admin_text)
                    .await
                    .map_err(|err| err.to_string())?;
                sqlx::query("SELECT 1")
                    .execute(&mut conn)
                    .await
                    .map_err(|err| err.to_string())?;
                let _ = conn.close().await;
                Ok(Some(()))
            },
        )
        .await?;
        let mut conn = PgConnection::connect(&admin_text)
            .await
            .map_err(|err| ServiceError::failed("cannot connect to PostgreSQL", err))?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{database}\""
        )))
        .execute(&mut conn)
        .await
        .map_err(|err| {
            ServiceError::failed(format_args!("cannot create database {database}"), err)
        })?;
        let _ = conn.close().await;
        let mut url = admin.clone();
        url.set_path(&format!("/{database}"));
        let (service, network) = match service {
            Some((service, stack)) => (Some(service), stack.network),
            None => (None, String::new()),
        };
        Ok(Self {
            admin,
            url,
            database,
            service,
            network,
        })
    }

    /// URL of this test's database, for the test itself (`127.0.0.1`).
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// URL of the server's `postgres` database as administrator, for the test itself.
    pub fn admin_url(&self) -> &str {
        self.admin.as_str()
    }

    /// Name of this test's database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// URL of this test's database as containers on the stack's network reach it.
    pub fn internal_url(&self) -> String {
        let mut url = self.url.clone();
        match &self.service {
            Some(service) => {
                let _ = url.set_host(Some(service.name()));
                let _ = url.set_port(Some(5432));
            }
            None => {
                if matches!(url.host_str(), Some("127.0.0.1" | "localhost")) {
                    let _ = url.set_host(Some(HOST_GATEWAY));
                }
            }
        }
        url.to_string()
    }

    /// Creates a login role `<database>_<suffix>` that is not a superuser, member of each role
    /// in `grants` (e.g. [`OPERATOR_GRANTS`]), and returns the URL of this test's database as
    /// that role (an existing role of that name is reused and given `grants`). Roles whose name starts with this test's database name are dropped with the
    /// handle on a shared server.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the role cannot be created.
    pub async fn role_url(&self, suffix: &str, grants: &[&str]) -> Result<String, ServiceError> {
        let role = format!("{}_{suffix}", self.database);
        let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        let mut conn = PgConnection::connect(self.admin.as_str())
            .await
            .map_err(|err| ServiceError::failed("cannot connect to PostgreSQL", err))?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&role)
                .fetch_one(&mut conn)
                .await
                .map_err(|err| ServiceError::failed("cannot list roles", err))?;
        let mut sql = if exists {
            String::from("SELECT 1")
        } else {
            format!(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{PG_PASSWORD}'",
                quote(&role)
            )
        };
        for grant in grants {
            sql.push_str("; GRANT ");
            sql.push_str(&quote(grant));
            sql.push_str(" TO ");
            sql.push_str(&quote(&role));
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|err| ServiceError::failed(format_args!("cannot create role {role}"), err))?;
        let _ = conn.close().await;
        let mut url = self.url.clone();
        let _ = url.set_username(&role);
        let _ = url.set_password(Some(PG_PASSWORD));
        Ok(url.to_string())
    }

    /// The URL of this test's database as a new operator role with [`OPERATOR_GRANTS`]: the
    /// least privilege ops-db's README documents for the session runbooks.
    ///
    /// # Errors
    /// As [`Postgres::role_url`].
    pub async fn operator_url(&self) -> Result<String, ServiceError> {
        self.role_url("op", OPERATOR_GRANTS).await
    }

    /// The container, for fault injection; `None` for an external server.
    pub fn service(&self) -> Option<&Service> {
        self.service.as_ref()
    }

    /// A connection pool on this test's database.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the server does not accept the connection.
    pub async fn pool(&self) -> Result<sqlx::PgPool, ServiceError> {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(self.url.as_str())
            .await
            .map_err(|err| ServiceError::failed("cannot connect to the test database", err))
    }

    /// Waits until this test's database answers `SELECT 1` (e.g. after a restart).
    ///
    /// # Errors
    /// [`ServiceError::Failed`] after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ServiceError> {
        let url = self.url.to_string();
        poll("PostgreSQL to answer", timeout, || async {
            let mut conn = PgConnection::connect(&url)
                .await
                .map_err(|err| err.to_string())?;
            sqlx::query("SELECT 1")
                .execute(&mut conn)
                .await
                .map_err(|err| err.to_string())?;
            let _ = conn.close().await;
            Ok(Some(()))
        })
        .await
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.service.is_some() {
            return; // the container goes away with its database
        }
        // A shared server: drop this test's database. Drop cannot await, so a short-lived
        // thread with its own runtime does it.
        let admin = self.admin.to_string();
        let database = self.database.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let drop_db = async {
                    let mut conn = PgConnection::connect(&admin).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await?;
                    // The roles of Postgres::role_url: the database is gone, they own nothing.
                    let roles: Vec<String> = sqlx::query_scalar(
                        "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1 || '_')",
                    )
                    .bind(&database)
                    .fetch_all(&mut conn)
                    .await?;
                    for role in roles {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP ROLE IF EXISTS \"{}\"",
                            role.replace('"', "\"\"")
                        )))
                        .execute(&mut conn)
                        .await?;
                    }
                    conn.close().await
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), drop_db).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A Redis server for this test.
#[derive(Debug)]
pub struct Redis {
    url: String,
    prefix: String,
    service: Option<Service>,
    stack: Stack,
}

impl Redis {
    /// URL for the test itself (`127.0.0.1`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Key prefix reserved for this test, e.g. `t1a2b3c4d5e6f:`; keys under it are deleted
    /// on drop when the server is shared.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// URL as containers on the stack's network reach the server.
    pub fn internal_url(&self) -> String {
        match &self.service {
            Some(service) => format!("redis://{}", service.internal_addr()),
            None => self
                .url
                .replace("127.0.0.1", HOST_GATEWAY)
                .replace("localhost", HOST_GATEWAY),
        }
    }

    /// The container, for fault injection; `None` for an external server.
    pub fn service(&self) -> Option<&Service> {
        self.service.as_ref()
    }

    /// A multiplexed connection.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the server does not accept the connection.
    pub async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, ServiceError> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|err| ServiceError::failed("bad Redis URL", err))?;
        client
            .get_multiplexed_async_connection()
            .await
            .map_err(|err| ServiceError::failed("cannot connect to Redis", err))
    }

    /// Waits until the server answers `PING` (e.g. after a restart).
    ///
    /// # Errors
    /// [`ServiceError::Failed`] after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ServiceError> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|err| ServiceError::failed("bad Redis URL", err))?;
        poll("Redis to answer PING", timeout, || async {
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|err| err.to_string())?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(|err| err.to_string())?;
            Ok((pong == "PONG").then_some(()))
        })
        .await
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.service.is_some() {
            return;
        }
        let url = self.url.clone();
        let pattern = format!("{}*", self.prefix);
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let purge = async {
                    let client = redis::Client::open(url.as_str())?;
                    let mut conn = client.get_multiplexed_async_connection().await?;
                    let mut cursor: u64 = 0;
                    loop {
                        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(500)
                            .query_async(&mut conn)
                            .await?;
                        if !keys.is_empty() {
                            let () = redis::cmd("UNLINK")
                                .arg(&keys)
                                .query_async(&mut conn)
                                .await?;
                        }
                        if next == 0 {
                            return Ok::<(), redis::RedisError>(());
                        }
                        cursor = next;
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), purge).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// Every key `SCAN … MATCH pattern` returns, each once (SCAN may return a key twice while
/// the server resizes its table).
///
/// # Errors
/// The first failed `SCAN`.
pub async fn scan_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> redis::RedisResult<std::collections::BTreeSet<Vec<u8>>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(5_000)
            .query_async(conn)
            .await?;
        seen.extend(keys);
        if next == 0 {
            return Ok(seen);
        }
        cursor = next;
    }
}

/// A running demo-api.
#[derive(Debug)]
pub struct DemoApi {
    base_url: String,
    service: Service,
    http: reqwest::Client,
}

impl DemoApi {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `name:8080`, the scrape target for Prometheus on the same network.
    pub fn internal_addr(&self) -> String {
        self.service.internal_addr()
    }

    /// The container, for fault injection and logs.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// `GET path`: status and body.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when no HTTP answer arrives (10 s timeout).
    pub async fn get(&self, path: &str) -> Result<(u16, String), ServiceError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .map_err(|err| ServiceError::failed(format_args!("GET {path}"), err))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|err| ServiceError::failed(format_args!("GET {path}"), err))?;
        Ok((status, body))
    }

    /// `POST path` with a JSON body: status and body.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when no HTTP answer arrives (10 s timeout).
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, String), ServiceError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|err| ServiceError::failed(format_args!("POST {path}"), err))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|err| ServiceError::failed(format_args!("POST {path}"), err))?;
        Ok((status, body))
    }

    /// Switches faults on through `POST /admin/fault`, e.g. `json!({"unhealthy": true})`.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] unless the service answers 200.
    pub async fn set_fault(&self, faults: &serde_json::Value) -> Result<(), ServiceError> {
        match self.post("/admin/fault", faults).await? {
            (200, _) => Ok(()),
            (status, body) => Err(ServiceError::Failed(format!(
                "POST /admin/fault answered {status}: {body}"
            ))),
        }
    }

    /// Switches every fault off through `DELETE /admin/fault`.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] unless the service answers 200.
    pub async fn clear_faults(&self) -> Result<(), ServiceError> {
        let response = self
            .http
            .delete(format!("{}/admin/fault", self.base_url))
            .send()
            .await
            .map_err(|err| ServiceError::failed("DELETE /admin/fault", err))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(ServiceError::Failed(format!(
                "DELETE /admin/fault answered {}",
                response.status()
            )))
        }
    }

    /// Waits until `GET /health` answers 200.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] after `timeout`.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<(), ServiceError> {
        self.wait_status("/health", 200, timeout).await
    }

    /// Waits until `GET path` answers `status`; returns the body.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] after `timeout`.
    pub async fn wait_status(
        &self,
        path: &str,
        status: u16,
        timeout: Duration,
    ) -> Result<(), ServiceError> {
        let url = format!("{}{path}", self.base_url);
        poll(
            &format!("GET {path} to answer {status}"),
            timeout,
            || async {
                match self.http.get(&url).send().await {
                    Ok(response) if response.status().as_u16() == status => Ok(Some(())),
                    Ok(response) => Err(format!("status {}", response.status())),
                    Err(err) => Err(err.to_string()),
                }
            },
        )
        .await
    }
}

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    base_url: String,
    service: Service,
    http: reqwest::Client,
}

impl Prometheus {
    /// `http://127.0.0.1:<port>`, the base of the HTTP API.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The container, for fault injection and logs.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Instant query; returns `data.result` of the API answer.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the query fails or the answer is not a success.
    pub async fn query(&self, promql: &str) -> Result<Vec<serde_json::Value>, ServiceError> {
        let url = url::Url::parse_with_params(
            &format!("{}/api/v1/query", self.base_url),
            [("query", promql)],
        )
        .map_err(|err| ServiceError::failed("bad Prometheus URL", err))?;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|err| ServiceError::failed(format_args!("query {promql}"), err))?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|err| ServiceError::failed(format_args!("query {promql}"), err))?;
        if body["status"] != "success" {
            return Err(ServiceError::Failed(format!(
                "query {promql} failed: {body}"
            )));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until the instant query `promql` returns a sample whose value is `expected`.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] after `timeout`.
    pub async fn wait_for_value(
        &self,
        promql: &str,
        expected: f64,
        timeout: Duration,
    ) -> Result<(), ServiceError> {
        poll(&format!("{promql} == {expected}"), timeout, || async {
            let samples = self.query(promql).await.map_err(|err| err.to_string())?;
            let hit = samples.iter().any(|sample| {
                sample["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    == Some(expected)
            });
            if hit {
                Ok(Some(()))
            } else {
                Err(format!("samples: {samples:?}"))
            }
        })
        .await
    }
}

/// [`Stack::postgres`] on a stack of its own.
///
/// # Errors
/// As [`Stack::postgres`].
pub async fn start_postgres() -> Result<Postgres, ServiceError> {
    Stack::new().postgres().await
}

/// [`Stack::redis`] on a stack of its own.
///
/// # Errors
/// As [`Stack::redis`].
pub async fn start_redis() -> Result<Redis, ServiceError> {
    Stack::new().redis().await
}

/// demo-api wired to `pg` and `redis`, on `pg`'s network (`redis` is connected to it).
///
/// # Errors
/// As [`Stack::demo_api`].
pub async fn start_demo_api(pg: &Postgres, redis: &Redis) -> Result<DemoApi, ServiceError> {
    let mut stack = Stack::new();
    if pg.service.is_some() {
        stack.network.clone_from(&pg.network);
    } else if redis.service.is_some() {
        stack.network.clone_from(&redis.stack.network);
    }
    stack.demo_api(pg, redis).await
}

/// Prometheus scraping `scrape_target` (demo-api), on the demo-api's network.
///
/// # Errors
/// As [`Stack::prometheus`].
pub async fn start_prometheus(api: &DemoApi) -> Result<Prometheus, ServiceError> {
    let network = docker()
        .await?
        .inspect_container(api.service().id(), None)
        .await
        .ok()
        .and_then(|inspect| {
            inspect
                .network_settings?
                .networks?
                .into_keys()
                .find(|n| n.starts_with("opsbook-test-"))
        });
    let mut stack = Stack::new();
    if let Some(network) = network {
        stack.network = network;
    }
    stack.prometheus(&[api.internal_addr()]).await
}
