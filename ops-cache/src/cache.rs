//! [`RedisCache`]: the [`Cache`] implementation, its connection and the plumbing every
//! operation shares (deadlines, node selection, key prefix).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ops_core::cache::{
    Cache, CacheCapabilities, CacheInfo, ClientFilter, ClientInfo, FlushScope, KeyCount,
    PurgeOptions, PurgeOutcome, SlowlogEntry, SnapshotOutcome,
};
use ops_core::{KeyPattern, OpsError};
use redis::{Cmd, FromRedisValue};
use tokio::sync::OnceCell;
use tracing::instrument;

use crate::config::{Client, RedisCacheBuilder, Settings};
use crate::connection::{Conn, Node, deadline, primaries_from_slots};
use crate::error::{Error, Result};
use crate::info::{merge, parse_info};

/// [`Cache`] for Redis: standalone or cluster, `redis://` or `rediss://`, ACL user and
/// password. Cheap to clone (one shared connection).
///
/// Every command runs under the configured deadline; purges use SCAN + UNLINK in bounded,
/// pipelined batches and never `KEYS`. In cluster mode scans, `INFO`, flushes, snapshots and
/// client commands go to every primary.
///
/// With a key prefix every pattern is matched under it (the prefix is glob-escaped, and a
/// `SCAN MATCH` pattern must match the whole key, so no pattern reaches a key outside it),
/// and [`Cache::flush`] is refused as `Unsupported`: `FLUSHDB` would delete every other
/// prefix's keys too.
///
/// # Examples
/// ```no_run
/// use std::sync::Arc;
/// use ops_core::{Cache, KeyPattern, cache::PurgeOptions};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cache: Arc<dyn Cache> = Arc::new(ops_cache::RedisCacheBuilder::from_env().build()?);
/// let info = cache.info().await?;
/// println!("hit ratio {:?}", info.hit_ratio());
/// let sessions = KeyPattern::new("session:*")?;
/// let outcome = cache.purge(&sessions, &PurgeOptions::default()).await?;
/// println!("deleted {} of {} scanned", outcome.deleted, outcome.scanned);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    target: String,
    settings: Settings,
    conn: OnceCell<Conn>,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("target", &self.inner.target)
            .field("cluster", &self.is_cluster())
            .field("timeout", &self.inner.settings.timeout)
            .field("key_prefix", &self.inner.settings.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    pub(crate) fn new(client: Client, target: String, settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                target,
                settings,
                conn: OnceCell::new(),
            }),
        }
    }

    /// A builder; same as [`RedisCacheBuilder::new`].
    ///
    /// # Examples
    /// ```
    /// let cache = ops_cache::RedisCache::builder().with_url("redis://cache:6379").build()?;
    /// assert_eq!(cache.target(), "cache:6379");
    /// # Ok::<(), ops_cache::Error>(())
    /// ```
    pub fn builder() -> RedisCacheBuilder {
        RedisCacheBuilder::new()
    }

    /// A cache over an existing redis-rs client (standalone), with default settings.
    ///
    /// # Examples
    /// ```
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let cache = ops_cache::RedisCache::from_client(client);
    /// assert_eq!(cache.target(), "127.0.0.1:6379");
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn from_client(client: redis::Client) -> Self {
        let target = crate::config::addr_text(client.get_connection_info().addr());
        let settings = Settings {
            timeout: crate::config::DEFAULT_TIMEOUT,
            connect_timeout: crate::config::DEFAULT_CONNECT_TIMEOUT,
            key_prefix: None,
        };
        Self::new(Client::Single(client), target, settings)
    }

    /// `host:port` of the server (the first seed in cluster mode); never credentials.
    ///
    /// # Examples
    /// ```
    /// let cache = ops_cache::RedisCache::builder().with_url("redis://u:pw@cache:6379").build()?;
    /// assert_eq!(cache.target(), "cache:6379");
    /// # Ok::<(), ops_cache::Error>(())
    /// ```
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// Whether this cache talks to a Redis Cluster.
    ///
    /// # Examples
    /// ```
    /// let cache = ops_cache::RedisCache::builder().build()?;
    /// assert!(!cache.is_cluster());
    /// # Ok::<(), ops_cache::Error>(())
    /// ```
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.client, Client::Cluster(_))
    }

    /// The pattern as sent to `SCAN MATCH`: the escaped key prefix, then `pattern`.
    ///
    /// # Examples
    /// ```
    /// let cache = ops_cache::RedisCache::builder().with_key_prefix("app[1]:").build()?;
    /// let p = ops_core::KeyPattern::new("session:*")?;
    /// assert_eq!(cache.scan_pattern(&p), r"app\[1\]:session:*");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scan_pattern(&self, pattern: &KeyPattern) -> String {
        match &self.inner.settings.key_prefix {
            Some(prefix) => format!("{}{}", KeyPattern::escape(prefix), pattern.as_str()),
            None => pattern.as_str().to_owned(),
        }
    }

    /// The key prefix this cache is scoped to (see
    /// [`RedisCacheBuilder::with_key_prefix`]), if any.
    ///
    /// # Examples
    /// ```
    /// let cache = ops_cache::RedisCache::builder().with_key_prefix("app:").build()?;
    /// assert_eq!(cache.key_prefix(), Some("app:"));
    /// assert_eq!(ops_cache::RedisCache::builder().build()?.key_prefix(), None);
    /// # Ok::<(), ops_cache::Error>(())
    /// ```
    pub fn key_prefix(&self) -> Option<&str> {
        self.inner.settings.key_prefix.as_deref()
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.inner.settings.timeout
    }

    /// The live connection, connecting on first use (under the connect deadline).
    pub(crate) async fn conn(&self) -> Result<Conn> {
        let settings = &self.inner.settings;
        let conn = self
            .inner
            .conn
            .get_or_try_init(|| async {
                match &self.inner.client {
                    Client::Single(client) => {
                        deadline(
                            "CONNECT",
                            &self.inner.target,
                            settings.connect_timeout + settings.timeout,
                            Conn::single(
                                client.clone(),
                                settings.timeout,
                                settings.connect_timeout,
                            ),
                        )
                        .await
                    }
                    Client::Cluster(client) => {
                        deadline(
                            "CONNECT",
                            &self.inner.target,
                            settings.connect_timeout + settings.timeout,
                            Conn::cluster(client),
                        )
                        .await
                    }
                }
            })
            .await?;
        Ok(conn.clone())
    }

    /// `host:port` of `node`.
    pub(crate) fn node_target(&self, node: &Node) -> String {
        match node {
            Node::Default => self.inner.target.clone(),
            Node::Addr { host, port } => format!("{host}:{port}"),
        }
    }

    /// Run `cmd` on `node` under the per-command deadline.
    pub(crate) async fn run<T: FromRedisValue>(
        &self,
        command: &'static str,
        node: &Node,
        cmd: &Cmd,
    ) -> Result<T> {
        self.run_within(command, node, cmd, self.timeout()).await
    }

    /// Run `cmd` on `node` under `after`.
    pub(crate) async fn run_within<T: FromRedisValue>(
        &self,
        command: &'static str,
        node: &Node,
        cmd: &Cmd,
        after: Duration,
    ) -> Result<T> {
        let conn = self.conn().await?;
        deadline(
            command,
            &self.node_target(node),
            after,
            conn.query(cmd, node),
        )
        .await
    }

    /// The nodes a whole-keyspace operation must visit: the server, or every cluster primary.
    pub(crate) async fn nodes(&self) -> Result<Vec<Node>> {
        if !self.is_cluster() {
            return Ok(vec![Node::Default]);
        }
        let slots: redis::Value = self
            .run(
                "CLUSTER SLOTS",
                &Node::Default,
                &redis::cmd("CLUSTER").arg("SLOTS").clone(),
            )
            .await?;
        let seed_host = self
            .inner
            .target
            .rsplit_once(':')
            .map_or("127.0.0.1", |(h, _)| h);
        let nodes = primaries_from_slots(&slots, seed_host);
        if nodes.is_empty() {
            return Err(Error::Protocol {
                command: "CLUSTER SLOTS",
                target: self.inner.target.clone(),
                detail: "no primary serves any slot".to_owned(),
            });
        }
        Ok(nodes)
    }

    /// `PING` every node; the slowest round trip.
    ///
    /// # Errors
    /// [`Error::Command`] (refused, dropped, auth) or [`Error::Timeout`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> ops_cache::Result<()> {
    /// let rtt = cache.ping_nodes().await?;
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %self.target()))]
    pub async fn ping_nodes(&self) -> Result<Duration> {
        let mut worst = Duration::ZERO;
        for node in self.nodes().await? {
            let started = Instant::now();
            let pong: String = self.run("PING", &node, &redis::cmd("PING")).await?;
            if pong != "PONG" {
                return Err(Error::Protocol {
                    command: "PING",
                    target: self.node_target(&node),
                    detail: format!("expected PONG, got {pong:?}"),
                });
            }
            worst = worst.max(started.elapsed());
        }
        Ok(worst)
    }

    /// Typed `INFO` (merged over every primary in cluster mode).
    ///
    /// # Errors
    /// As [`RedisCache::ping_nodes`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> ops_cache::Result<()> {
    /// let info = cache.server_info().await?;
    /// println!("{} bytes used", info.memory.used_bytes);
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %self.target()))]
    pub async fn server_info(&self) -> Result<CacheInfo> {
        let mut parts = Vec::new();
        for node in self.nodes().await? {
            parts.push(parse_info(&self.info_text(&node).await?));
        }
        Ok(merge(parts))
    }

    /// The raw `INFO` text of `node`.
    pub(crate) async fn info_text(&self, node: &Node) -> Result<String> {
        self.run("INFO", node, &redis::cmd("INFO")).await
    }
}

#[async_trait]
impl Cache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn capabilities(&self) -> CacheCapabilities {
        let mut caps = CacheCapabilities::all();
        caps.cluster = self.is_cluster();
        // A flush cannot be confined to the key prefix: `flush_scope` refuses it.
        caps.flush = self.key_prefix().is_none();
        caps
    }

    async fn ping(&self) -> Result<Duration, OpsError> {
        Ok(self.ping_nodes().await?)
    }

    async fn info(&self) -> Result<CacheInfo, OpsError> {
        Ok(self.server_info().await?)
    }

    async fn count(&self, pattern: &KeyPattern, opts: &PurgeOptions) -> Result<KeyCount, OpsError> {
        Ok(self.count_keys(pattern, opts).await?)
    }

    async fn sample(&self, pattern: &KeyPattern, n: usize) -> Result<Vec<String>, OpsError> {
        Ok(self.sample_keys(pattern, n).await?)
    }

    async fn purge(
        &self,
        pattern: &KeyPattern,
        opts: &PurgeOptions,
    ) -> Result<PurgeOutcome, OpsError> {
        Ok(self.purge_keys(pattern, opts).await?)
    }

    async fn flush(&self, scope: FlushScope) -> Result<(), OpsError> {
        Ok(self.flush_scope(scope).await?)
    }

    async fn snapshot(&self, timeout: Duration) -> Result<SnapshotOutcome, OpsError> {
        Ok(self.bgsave(timeout).await?)
    }

    async fn rewrite_aof(&self) -> Result<(), OpsError> {
        Ok(self.bgrewriteaof().await?)
    }

    async fn memory_doctor(&self) -> Result<String, OpsError> {
        Ok(self.doctor().await?)
    }

    async fn clients(&self, filter: &ClientFilter) -> Result<Vec<ClientInfo>, OpsError> {
        Ok(self.client_list(filter).await?)
    }

    async fn kill_clients(&self, ids: &[u64], guard: &ClientFilter) -> Result<Vec<u64>, OpsError> {
        guard.require_bounded("redis", "kill_clients")?;
        Ok(self.client_kill(ids, guard).await?)
    }

    async fn slowlog(&self, n: u32) -> Result<Vec<SlowlogEntry>, OpsError> {
        Ok(self.slowlog_get(n).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ops_core::cache::FlushScope;
    use ops_core::{Cache as _, ErrorKind, KeyPattern};
    use proptest::prelude::*;

    use crate::RedisCacheBuilder;

    /// A prefixed cache pointing at a port nothing listens on: any command sent would fail
    /// as `Unavailable` or `Timeout`, so `Unsupported` proves nothing was sent.
    fn prefixed(prefix: &str) -> crate::RedisCache {
        RedisCacheBuilder::new()
            .with_url("redis://127.0.0.1:1")
            .with_timeout(Duration::from_millis(200))
            .with_connect_timeout(Duration::from_millis(200))
            .with_key_prefix(prefix)
            .build()
            .expect("valid config")
    }

    #[tokio::test]
    async fn flush_with_a_key_prefix_is_refused_before_anything_is_sent() {
        let cache = prefixed("tenant-a:");
        assert!(!cache.capabilities().flush);
        for scope in [FlushScope::Database, FlushScope::All] {
            let err = cache.flush(scope).await.expect_err("refused");
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{}", err.chain());
            assert_eq!(err.operation(), "flush");
            let detail = err.detail().expect("a reason");
            assert!(detail.contains("tenant-a:"), "{detail}");
            assert!(detail.contains("KeyPattern::match_all()"), "{detail}");
        }
    }

    #[tokio::test]
    async fn flush_without_a_prefix_is_sent() {
        let cache = RedisCacheBuilder::new()
            .with_url("redis://127.0.0.1:1")
            .with_timeout(Duration::from_millis(200))
            .with_connect_timeout(Duration::from_millis(200))
            .build()
            .expect("valid config");
        assert!(cache.capabilities().flush);
        let err = cache
            .flush(FlushScope::Database)
            .await
            .expect_err("nothing listens");
        assert_ne!(err.kind(), ErrorKind::Unsupported, "{}", err.chain());
    }

    /// Prefixes: printable text with glob specials and backslashes, as tenants name them.
    fn prefix() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::sample::select(vec![
                "a", "b", ":", "*", "?", "[", "]", "\\", "^", "-", "é", "{", "}",
            ]),
            1..6,
        )
        .prop_map(|p| p.concat())
    }

    /// Patterns that try to reach outside the prefix: leading wildcards, classes, escapes.
    fn pattern() -> impl Strategy<Value = KeyPattern> {
        proptest::collection::vec(
            proptest::sample::select(vec![
                "*", "?", "a", "b", ":", "\\", "\\*", "[", "[^a]", "[a-z]", "]", "^", "é",
            ]),
            1..6,
        )
        .prop_filter_map("a valid pattern", |p| {
            let text = p.concat();
            if text == "*" {
                Some(KeyPattern::match_all())
            } else {
                KeyPattern::new(&text).ok()
            }
        })
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(b"ab:*?[]\\^-{}".to_vec()),
                1 => any::<u8>(),
            ],
            0..12,
        )
    }

    proptest! {
        /// What `SCAN MATCH` is sent (matched as Redis matches it, proven against a real
        /// server by tests/pattern_oracle.rs) names only keys under the prefix, and of those
        /// exactly the ones whose rest the pattern matches: no pattern escapes the prefix.
        #[test]
        fn no_pattern_reaches_a_key_outside_the_prefix(
            prefix in prefix(),
            pattern in pattern(),
            key in key(),
            rest in key(),
        ) {
            let cache = prefixed(&prefix);
            let Ok(sent) = KeyPattern::new(&cache.scan_pattern(&pattern)) else {
                return Err(TestCaseError::reject("over the length limit"));
            };
            if sent.matches_bytes(&key) {
                prop_assert!(key.starts_with(prefix.as_bytes()), "{sent} matched {key:?}");
            }
            let mut under = prefix.as_bytes().to_vec();
            under.extend_from_slice(&rest);
            prop_assert_eq!(
                sent.matches_bytes(&under),
                rest.is_empty() && pattern.as_str().bytes().all(|b| b == b'*')
                    || !rest.is_empty() && pattern.matches_bytes(&rest),
                "{} on {:?}", sent, under
            );
        }
    }
}
