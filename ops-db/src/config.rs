//! [`PgDatabaseConfig`] and [`PgDatabaseBuilder`]: where the server is and how long calls may take.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::database::{PgDatabase, Shared};
use crate::error::Error;

/// Environment variable holding the connection URL.
pub const ENV_URL: &str = "OPSBOOK_PG_URL";
/// Environment variable holding the per-statement deadline in milliseconds.
pub const ENV_STATEMENT_TIMEOUT_MS: &str = "OPSBOOK_PG_STATEMENT_TIMEOUT_MS";
/// Environment variable naming the database used for `CREATE`/`ALTER DATABASE` during restore.
pub const ENV_MAINTENANCE_DATABASE: &str = "OPSBOOK_PG_MAINTENANCE_DATABASE";

/// Configuration of a [`PgDatabase`].
///
/// The URL may carry a password; it is a [`SecretString`] and never appears in `Debug`,
/// errors or logs (targets are shown as `host:port/database`).
///
/// # Examples
/// ```
/// let config = ops_db::PgDatabaseConfig::default();
/// assert_eq!(config.statement_timeout, std::time::Duration::from_secs(30));
/// ```
#[derive(Clone, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PgDatabaseConfig {
    /// `postgres://user:password@host:port/database?sslmode=...`.
    pub url: SecretString,
    /// Server-side `statement_timeout` of every connection and client-side deadline of every
    /// call except maintenance, backup and restore (default 30 s).
    #[serde(with = "duration_ms")]
    pub statement_timeout: Duration,
    /// Deadline of [`ops_core::Database::maintain`] (default 1 h).
    #[serde(with = "duration_ms")]
    pub maintenance_timeout: Duration,
    /// Deadline of a backup or restore without its own (default 6 h).
    #[serde(with = "duration_ms")]
    pub backup_timeout: Duration,
    /// How long to wait for a pooled connection (default 5 s).
    #[serde(with = "duration_ms")]
    pub acquire_timeout: Duration,
    /// Pool size (default 4).
    pub max_connections: u32,
    /// Database to connect to for `CREATE`/`ALTER DATABASE` during a restore (default `postgres`).
    pub maintenance_database: String,
    /// The `pg_dump` program (default `pg_dump`, found on `PATH`).
    pub pg_dump: PathBuf,
    /// The `pg_restore` program (default `pg_restore`).
    pub pg_restore: PathBuf,
}

impl Default for PgDatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://localhost:5432/postgres"),
            statement_timeout: Duration::from_secs(30),
            maintenance_timeout: Duration::from_secs(3600),
            backup_timeout: Duration::from_secs(6 * 3600),
            acquire_timeout: Duration::from_secs(5),
            max_connections: 4,
            maintenance_database: "postgres".to_owned(),
            pg_dump: PathBuf::from("pg_dump"),
            pg_restore: PathBuf::from("pg_restore"),
        }
    }
}

impl fmt::Debug for PgDatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDatabaseConfig")
            .field("statement_timeout", &self.statement_timeout)
            .field("maintenance_timeout", &self.maintenance_timeout)
            .field("backup_timeout", &self.backup_timeout)
            .field("max_connections", &self.max_connections)
            .field("maintenance_database", &self.maintenance_database)
            .finish_non_exhaustive()
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::Deserializer;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        ops_core::duration::deserialize(d)
    }
}

/// Builds a [`PgDatabase`]; `build` validates and connects lazily (no network I/O).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use ops_core::Database;
/// use ops_db::PgDatabaseBuilder;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ops_db::Error> {
/// let db: Arc<dyn Database> = Arc::new(
///     PgDatabaseBuilder::new("postgres://ops:secret@db.internal:5432/app")
///         .with_statement_timeout(std::time::Duration::from_secs(10))
///         .build()?,
/// );
/// assert!(!format!("{db:?}").contains("secret"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct PgDatabaseBuilder {
    config: PgDatabaseConfig,
}

impl PgDatabaseBuilder {
    /// A builder for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            config: PgDatabaseConfig {
                url: SecretString::from(url.into()),
                ..PgDatabaseConfig::default()
            },
        }
    }

    /// A builder from `OPSBOOK_PG_URL`, `OPSBOOK_PG_STATEMENT_TIMEOUT_MS` and
    /// `OPSBOOK_PG_MAINTENANCE_DATABASE` (unset or unparsable values keep the defaults;
    /// [`PgDatabaseBuilder::build`] reports a missing URL).
    ///
    /// # Examples
    /// ```no_run
    /// let db = ops_db::PgDatabaseBuilder::from_env().build()?;
    /// # Ok::<(), ops_db::Error>(())
    /// ```
    pub fn from_env() -> Self {
        let mut config = PgDatabaseConfig {
            url: SecretString::from(std::env::var(ENV_URL).unwrap_or_default()),
            ..PgDatabaseConfig::default()
        };
        if let Some(ms) = std::env::var(ENV_STATEMENT_TIMEOUT_MS)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            config.statement_timeout = Duration::from_millis(ms);
        }
        if let Ok(db) = std::env::var(ENV_MAINTENANCE_DATABASE)
            && !db.is_empty()
        {
            config.maintenance_database = db;
        }
        Self { config }
    }

    /// A builder from a full configuration.
    pub fn from_config(config: PgDatabaseConfig) -> Self {
        Self { config }
    }

    /// Set the per-statement deadline.
    #[must_use]
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.config.statement_timeout = timeout;
        self
    }

    /// Set the deadline of maintenance operations.
    #[must_use]
    pub fn with_maintenance_timeout(mut self, timeout: Duration) -> Self {
        self.config.maintenance_timeout = timeout;
        self
    }

    /// Set the default deadline of backups and restores.
    #[must_use]
    pub fn with_backup_timeout(mut self, timeout: Duration) -> Self {
        self.config.backup_timeout = timeout;
        self
    }

    /// Set the pool size.
    #[must_use]
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.config.max_connections = n.max(1);
        self
    }

    /// Set how long to wait for a pooled connection.
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.config.acquire_timeout = timeout;
        self
    }

    /// Set the database used for `CREATE`/`ALTER DATABASE` during a restore.
    #[must_use]
    pub fn with_maintenance_database(mut self, name: impl Into<String>) -> Self {
        self.config.maintenance_database = name.into();
        self
    }

    /// Set the `pg_dump` and `pg_restore` programs.
    #[must_use]
    pub fn with_tools(
        mut self,
        pg_dump: impl Into<PathBuf>,
        pg_restore: impl Into<PathBuf>,
    ) -> Self {
        self.config.pg_dump = pg_dump.into();
        self.config.pg_restore = pg_restore.into();
        self
    }

    /// Validate and build; the pool connects on first use.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL is missing or not a `postgres://` URL, a timeout is zero,
    /// or it is called outside a Tokio runtime (the lazy pool needs one).
    pub fn build(self) -> Result<PgDatabase, Error> {
        let config = self.config;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "PgDatabaseBuilder::build must be called inside a Tokio runtime".to_owned(),
            ));
        }
        let raw = config.url.expose_secret();
        if raw.is_empty() {
            return Err(Error::Config(format!("no PostgreSQL URL: set {ENV_URL}")));
        }
        let parsed = url::Url::parse(raw)
            .map_err(|_| Error::Config("the PostgreSQL URL does not parse".to_owned()))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(Error::Config(format!(
                "the PostgreSQL URL has scheme {:?}, expected postgres://",
                parsed.scheme()
            )));
        }
        if config.statement_timeout.is_zero() || config.acquire_timeout.is_zero() {
            return Err(Error::Config("timeouts must be positive".to_owned()));
        }
        let base: PgConnectOptions = raw
            .parse()
            .map_err(|_| Error::Config("the PostgreSQL URL is not valid".to_owned()))?;
        let app = format!("opsbook-{:08x}", fastrand::u32(..));
        let ms = config.statement_timeout.as_millis().to_string();
        let options = base.clone().application_name(&app).options([
            ("statement_timeout", ms.as_str()),
            ("lock_timeout", ms.as_str()),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .test_before_acquire(true)
            .connect_lazy_with(options.clone());
        let target = format!(
            "{}:{}/{}",
            base.get_host(),
            base.get_port(),
            base.get_database().unwrap_or(base.get_username())
        );
        Ok(PgDatabase {
            shared: Arc::new(Shared {
                pool,
                held: tokio::sync::OnceCell::new(),
                session: options,
                connect: base,
                password: parsed
                    .password()
                    .map(|p| SecretString::from(ops_core::text::percent_decode(p))),
                application_name: app,
                target,
                config,
                slow_query_probe: crate::capabilities::SlowQueryProbe::default(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn url_and_password_never_reach_debug_or_errors() {
        let db = PgDatabaseBuilder::new("postgres://ops:hunter2@db.example:6543/app")
            .build()
            .unwrap();
        let shown = format!("{db:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.example:6543/app"), "{shown}");
        let err = PgDatabaseBuilder::new("mysql://ops:hunter2@db/app")
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn missing_url_is_a_config_error() {
        let err = PgDatabaseBuilder::new("").build().unwrap_err();
        assert!(matches!(err, Error::Config(_)));
        let ops: ops_core::OpsError = err.into();
        assert_eq!(ops.kind(), ops_core::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn percent_encoded_password_is_decoded_for_tools() {
        let db = PgDatabaseBuilder::new("postgres://ops:p%40s+s@h/app")
            .build()
            .unwrap();
        assert_eq!(
            db.shared
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned()),
            Some("p@s+s".to_owned())
        );
    }
}
