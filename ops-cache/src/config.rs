//! [`RedisCacheConfig`] and [`RedisCacheBuilder`]: where Redis is and how to talk to it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::cache::RedisCache;
use crate::error::{Error, Result};

/// Default per-command deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default connect deadline.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings for a [`RedisCache`], usually read from `OPSBOOK_REDIS_*` by
/// [`RedisCacheBuilder::from_env`].
///
/// | field | env | default |
/// | --- | --- | --- |
/// | `url` | `OPSBOOK_REDIS_URL` (`redis://` or `rediss://`; comma-separated seeds in cluster mode) | `redis://127.0.0.1:6379` |
/// | `username` | `OPSBOOK_REDIS_USERNAME` (ACL user; overrides the URL's) | from the URL |
/// | `password` | `OPSBOOK_REDIS_PASSWORD` (overrides the URL's) | from the URL |
/// | `cluster` | `OPSBOOK_REDIS_CLUSTER` (`true`/`false`) | `false` |
/// | `ca_cert` | `OPSBOOK_REDIS_CA_CERT` (PEM file for `rediss://`) | system roots |
/// | `timeout_ms` | `OPSBOOK_REDIS_TIMEOUT_MS` (per command) | 5000 |
/// | `connect_timeout_ms` | `OPSBOOK_REDIS_CONNECT_TIMEOUT_MS` | 5000 |
/// | `key_prefix` | `OPSBOOK_REDIS_KEY_PREFIX` (prepended, escaped, to every pattern) | none |
///
/// The URL and the password are [`SecretString`]s: they never appear in `Debug`, errors or logs.
///
/// # Examples
/// ```
/// let config: ops_cache::RedisCacheConfig =
///     serde_json::from_str(r#"{"url": "redis://:hunter2@cache:6379/0", "timeout_ms": 2000}"#).unwrap();
/// assert!(!format!("{config:?}").contains("hunter2"));
/// assert_eq!(config.timeout_ms, 2000);
/// ```
#[derive(Clone, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RedisCacheConfig {
    /// `redis://[user[:password]@]host:port[/db]` or `rediss://...`; in cluster mode a
    /// comma-separated list of seed nodes.
    pub url: Option<SecretString>,
    /// ACL user name (overrides the URL's).
    pub username: Option<String>,
    /// Password (overrides the URL's).
    pub password: Option<SecretString>,
    /// Redis Cluster: scan every primary, route deletes by slot.
    pub cluster: bool,
    /// PEM file with the CA that signed the server certificate (`rediss://`).
    pub ca_cert: Option<PathBuf>,
    /// Per-command deadline in milliseconds (`"2s"` is read too).
    #[serde(deserialize_with = "ops_core::duration::deserialize_millis")]
    pub timeout_ms: u64,
    /// Connect deadline in milliseconds (`"2s"` is read too).
    #[serde(deserialize_with = "ops_core::duration::deserialize_millis")]
    pub connect_timeout_ms: u64,
    /// Prefix prepended (glob-escaped) to every pattern, e.g. `app:`.
    pub key_prefix: Option<String>,
}

impl Default for RedisCacheConfig {
    fn default() -> Self {
        Self {
            url: None,
            username: None,
            password: None,
            cluster: false,
            ca_cert: None,
            timeout_ms: duration_ms(DEFAULT_TIMEOUT),
            connect_timeout_ms: duration_ms(DEFAULT_CONNECT_TIMEOUT),
            key_prefix: None,
        }
    }
}

impl fmt::Debug for RedisCacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheConfig")
            .field("username", &self.username)
            .field("cluster", &self.cluster)
            .field("ca_cert", &self.ca_cert)
            .field("timeout_ms", &self.timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Builds a [`RedisCache`]: from the environment, a config, or by hand.
///
/// `build` validates and does no network I/O; the connection is made on first use.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use ops_core::Cache;
/// let cache: Arc<dyn Cache> = Arc::new(
///     ops_cache::RedisCacheBuilder::new()
///         .with_url("redis://:s3cret@127.0.0.1:6379/0")
///         .with_key_prefix("app:")
///         .build()?,
/// );
/// assert!(!format!("{cache:?}").contains("s3cret"));
/// # Ok::<(), ops_cache::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct RedisCacheBuilder {
    config: RedisCacheConfig,
    ca_pem: Option<Vec<u8>>,
    problems: Vec<String>,
}

impl fmt::Debug for RedisCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheBuilder")
            .field("config", &self.config)
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

impl RedisCacheBuilder {
    /// A builder with defaults (`redis://127.0.0.1:6379`).
    ///
    /// # Examples
    /// ```
    /// let cache = ops_cache::RedisCacheBuilder::new().build()?;
    /// assert_eq!(cache.target(), "127.0.0.1:6379");
    /// # Ok::<(), ops_cache::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from `config`.
    ///
    /// # Examples
    /// ```
    /// let b = ops_cache::RedisCacheBuilder::from_config(ops_cache::RedisCacheConfig::default());
    /// assert!(b.build().is_ok());
    /// ```
    pub fn from_config(config: RedisCacheConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// A builder from the `OPSBOOK_REDIS_*` variables (see [`RedisCacheConfig`]).
    ///
    /// Invalid values are reported by [`RedisCacheBuilder::build`].
    ///
    /// # Examples
    /// ```no_run
    /// let cache = ops_cache::RedisCacheBuilder::from_env().with_key_prefix("app:").build()?;
    /// # Ok::<(), ops_cache::Error>(())
    /// ```
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`RedisCacheBuilder::from_env`] with a custom variable lookup (for tests).
    ///
    /// # Examples
    /// ```
    /// let b = ops_cache::RedisCacheBuilder::from_lookup(|name| match name {
    ///     "OPSBOOK_REDIS_URL" => Some("redis://cache:6380".to_owned()),
    ///     _ => None,
    /// });
    /// assert_eq!(b.build()?.target(), "cache:6380");
    /// # Ok::<(), ops_cache::Error>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut b = Self::default();
        if let Some(url) = get("OPSBOOK_REDIS_URL") {
            b.config.url = Some(SecretString::from(url.trim().to_owned()));
        }
        b.config.username = get("OPSBOOK_REDIS_USERNAME");
        b.config.password = get("OPSBOOK_REDIS_PASSWORD").map(SecretString::from);
        if let Some(v) = get("OPSBOOK_REDIS_CLUSTER") {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => b.config.cluster = true,
                "0" | "false" | "no" | "off" => b.config.cluster = false,
                _ => b.problems.push(format!(
                    "OPSBOOK_REDIS_CLUSTER must be true or false, not {v:?}"
                )),
            }
        }
        b.config.ca_cert = get("OPSBOOK_REDIS_CA_CERT").map(PathBuf::from);
        for (name, slot) in [
            ("OPSBOOK_REDIS_TIMEOUT_MS", &mut b.config.timeout_ms),
            (
                "OPSBOOK_REDIS_CONNECT_TIMEOUT_MS",
                &mut b.config.connect_timeout_ms,
            ),
        ] {
            if let Some(v) = get(name) {
                match v.trim().parse::<u64>() {
                    Ok(ms) => *slot = ms,
                    Err(_) => b.problems.push(format!(
                        "{name} must be a number of milliseconds, not {v:?}"
                    )),
                }
            }
        }
        b.config.key_prefix = get("OPSBOOK_REDIS_KEY_PREFIX");
        b
    }

    /// Set the URL (`redis://` or `rediss://`, may contain user and password).
    #[must_use]
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.config.url = Some(SecretString::from(url.into()));
        self
    }

    /// Set the ACL user.
    #[must_use]
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.config.username = Some(username.into());
        self
    }

    /// Set the password.
    #[must_use]
    pub fn with_password(mut self, password: SecretString) -> Self {
        self.config.password = Some(password);
        self
    }

    /// Cluster mode: the URL lists seed nodes, comma-separated.
    #[must_use]
    pub fn with_cluster(mut self, cluster: bool) -> Self {
        self.config.cluster = cluster;
        self
    }

    /// Trust this CA (PEM) for `rediss://`, instead of the system roots. `build` fails when
    /// it is not PEM or holds no valid certificate (so a broken CA surfaces at start-up, not
    /// at the first connection).
    #[must_use]
    pub fn with_ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Per-command deadline.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout_ms = duration_ms(timeout);
        self
    }

    /// Connect deadline.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout_ms = duration_ms(timeout);
        self
    }

    /// Prefix (glob-escaped) prepended to every pattern, e.g. `app:`: count, sample and
    /// purge then see only the keys under it, whatever the pattern (`*x` matches `app:*x`).
    /// An empty prefix is no prefix.
    ///
    /// The cache then refuses [`ops_core::Cache::flush`] (`Unsupported`, and
    /// `capabilities().flush` is false): `FLUSHDB`/`FLUSHALL` cannot be confined to a prefix
    /// and would delete the other prefixes' keys. Purge [`ops_core::KeyPattern::match_all`]
    /// to empty the prefix instead.
    ///
    /// # Examples
    /// ```
    /// use ops_core::Cache as _;
    /// let cache = ops_cache::RedisCacheBuilder::new().with_key_prefix("app:").build()?;
    /// assert!(!cache.capabilities().flush);
    /// # Ok::<(), ops_cache::Error>(())
    /// ```
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = Some(prefix.into());
        self
    }

    /// Validate and build; no network I/O (the connection is made on first use).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid URL or variable, a unix-socket URL in cluster mode,
    /// or an unreadable CA file.
    ///
    /// # Examples
    /// ```
    /// let err = ops_cache::RedisCacheBuilder::new().with_url("http://:pw@x").build().unwrap_err();
    /// assert!(!err.to_string().contains("pw"));
    /// ```
    pub fn build(self) -> Result<RedisCache> {
        if let Some(problem) = self.problems.first() {
            return Err(Error::Config {
                reason: problem.clone(),
            });
        }
        let raw = self
            .config
            .url
            .as_ref()
            .map_or("redis://127.0.0.1:6379", |u| u.expose_secret());
        let mut infos = Vec::new();
        for (i, part) in raw.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            infos.push(self.connection_info(part, i)?);
        }
        if infos.is_empty() {
            return Err(Error::Config {
                reason: "the redis URL is empty".to_owned(),
            });
        }
        if !self.config.cluster && infos.len() > 1 {
            return Err(Error::Config {
                reason: "several redis URLs given; set cluster mode to use them as seeds"
                    .to_owned(),
            });
        }
        let tls = infos
            .iter()
            .any(|i| matches!(i.addr(), ConnectionAddr::TcpTls { .. }));
        let ca_pem = match (&self.ca_pem, &self.config.ca_cert) {
            (Some(pem), _) => Some(pem.clone()),
            (None, Some(path)) => Some(std::fs::read(path).map_err(|e| Error::Config {
                reason: format!("cannot read the CA file {}: {e}", path.display()),
            })?),
            (None, None) => None,
        };
        if let Some(pem) = &ca_pem {
            check_ca_pem(pem)?;
        }
        // No process-wide provider is installed here: redis-rs builds its rustls configuration
        // with `ClientConfig::builder()`, which takes the process default or, when none is
        // installed, the one provider rustls is compiled with (ring; the workspace enables no
        // other, STACK.md). redis 1.8 takes no rustls configuration of ours.
        let target = describe(&infos, self.config.cluster);
        let settings = Settings {
            timeout: Duration::from_millis(self.config.timeout_ms.max(1)),
            connect_timeout: Duration::from_millis(self.config.connect_timeout_ms.max(1)),
            key_prefix: self.config.key_prefix.clone().filter(|p| !p.is_empty()),
        };
        let client = if self.config.cluster {
            // redis-rs retries a cluster request 16 times by default (redirects and lost
            // connections) on top of the caller's retries; 3, as the standalone connection
            // manager's reconnects (connection.rs), keeps a dead node's failure prompt.
            let mut builder = redis::cluster::ClusterClientBuilder::new(infos)
                .retries(REDIS_RETRIES)
                .connection_timeout(settings.connect_timeout)
                .response_timeout(settings.timeout);
            if let Some(pem) = ca_pem {
                builder = builder.certs(certs(pem));
            }
            let client = builder.build().map_err(|e| config_error(&e))?;
            Client::Cluster(client)
        } else {
            let info = infos.remove(0);
            let client = match ca_pem {
                Some(pem) if tls => redis::Client::build_with_tls(info, certs(pem)),
                _ => redis::Client::open(info),
            }
            .map_err(|e| config_error(&e))?;
            Client::Single(client)
        };
        Ok(RedisCache::new(client, target, settings))
    }

    fn connection_info(&self, url: &str, index: usize) -> Result<ConnectionInfo> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(Error::Config {
                reason: format!(
                    "redis URL #{} must start with redis:// or rediss://",
                    index + 1
                ),
            });
        }
        let info = url.into_connection_info().map_err(|_| Error::Config {
            reason: format!("redis URL #{} is not a valid redis URL", index + 1),
        })?;
        let mut redis = info.redis_settings().clone();
        if let Some(user) = &self.config.username {
            redis = redis.set_username(user);
        }
        if let Some(password) = &self.config.password {
            redis = redis.set_password(password.expose_secret());
        }
        Ok(info.set_redis_settings(redis))
    }
}

/// Checks a CA bundle now: PEM holding at least one certificate that is a valid trust anchor.
fn check_ca_pem(pem: &[u8]) -> Result<()> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let bad = |why: String| Error::Config {
        reason: format!("the redis CA certificate cannot be used: {why}"),
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".to_owned()));
    }
    let mut store = rustls::RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

fn certs(pem: Vec<u8>) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }
}

/// A configuration error without the client's text (which may quote the URL).
fn config_error(err: &redis::RedisError) -> Error {
    Error::Config {
        reason: format!(
            "the redis client refused the configuration ({:?})",
            err.kind()
        ),
    }
}

/// How often redis-rs itself retries under our calls: reconnects of the standalone connection
/// manager, retries of a cluster request. Our own retries are ops-core's `RetryPolicy` in the
/// run engine's read steps.
pub(crate) const REDIS_RETRIES: u32 = 3;

/// `host:port` of the first node, `(cluster)` appended in cluster mode.
fn describe(infos: &[ConnectionInfo], cluster: bool) -> String {
    let first = infos
        .first()
        .map_or_else(String::new, |i| addr_text(i.addr()));
    if cluster {
        format!("{first} (cluster)")
    } else {
        first
    }
}

/// `host:port` (or the socket path), never credentials.
pub(crate) fn addr_text(addr: &ConnectionAddr) -> String {
    match addr {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            format!("{host}:{port}")
        }
        ConnectionAddr::Unix(path) => path.display().to_string(),
        _ => "redis".to_owned(),
    }
}

/// Validated runtime settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) key_prefix: Option<String>,
}

/// The redis-rs client, standalone or cluster.
#[derive(Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once per cache and held in an Arc"
)]
pub(crate) enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_that_cannot_work_fails_the_build() {
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        for pem in [&b"not a certificate"[..], b"", garbage.as_bytes()] {
            let err = RedisCacheBuilder::new()
                .with_url("rediss://127.0.0.1:6380/0")
                .with_ca_cert_pem(pem)
                .build()
                .unwrap_err();
            assert!(err.to_string().contains("CA certificate"), "{err}");
        }
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> RedisCacheBuilder {
        RedisCacheBuilder::from_lookup(move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn from_env_reads_every_variable() {
        let b = env(&[
            ("OPSBOOK_REDIS_URL", "rediss://app:pw@cache.internal:6380/2"),
            ("OPSBOOK_REDIS_USERNAME", "ops"),
            ("OPSBOOK_REDIS_PASSWORD", "topsecret"),
            ("OPSBOOK_REDIS_TIMEOUT_MS", "1500"),
            ("OPSBOOK_REDIS_CONNECT_TIMEOUT_MS", "700"),
            ("OPSBOOK_REDIS_KEY_PREFIX", "app:"),
        ]);
        assert_eq!(b.config.username.as_deref(), Some("ops"));
        assert_eq!(b.config.timeout_ms, 1500);
        assert_eq!(b.config.connect_timeout_ms, 700);
        let cache = b.build().unwrap();
        assert_eq!(cache.target(), "cache.internal:6380");
    }

    #[test]
    fn secrets_never_reach_debug_or_errors() {
        let b = env(&[
            ("OPSBOOK_REDIS_URL", "redis://app:urlsecret@cache:6379"),
            ("OPSBOOK_REDIS_PASSWORD", "envsecret"),
        ]);
        let text = format!("{b:?} {:?}", b.config);
        assert!(
            !text.contains("urlsecret") && !text.contains("envsecret"),
            "{text}"
        );
        let cache = b.build().unwrap();
        let text = format!("{cache:?} {}", cache.target());
        assert!(
            !text.contains("urlsecret") && !text.contains("envsecret"),
            "{text}"
        );

        let err = RedisCacheBuilder::new()
            .with_url("redis://app:urlsecret@[bad")
            .build()
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("urlsecret"), "{text}");
    }

    #[test]
    fn bad_numbers_and_flags_are_reported_by_build() {
        let err = env(&[("OPSBOOK_REDIS_TIMEOUT_MS", "soon")])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("OPSBOOK_REDIS_TIMEOUT_MS"));
        let err = env(&[("OPSBOOK_REDIS_CLUSTER", "maybe")])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("OPSBOOK_REDIS_CLUSTER"));
    }

    #[test]
    fn several_urls_need_cluster_mode() {
        let urls = "redis://127.0.0.1:7000,redis://127.0.0.1:7001";
        assert!(RedisCacheBuilder::new().with_url(urls).build().is_err());
        let cache = RedisCacheBuilder::new()
            .with_url(urls)
            .with_cluster(true)
            .build()
            .unwrap();
        assert_eq!(cache.target(), "127.0.0.1:7000 (cluster)");
    }

    #[test]
    fn non_redis_schemes_are_refused() {
        let err = RedisCacheBuilder::new()
            .with_url("http://cache:6379")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
    }
}
