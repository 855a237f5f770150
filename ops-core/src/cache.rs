//! The [`Cache`] trait: a key-value cache server (Redis in `ops-cache`).
//!
//! Purges go by [`KeyPattern`] with SCAN + UNLINK in bounded batches, never `KEYS`;
//! [`Cache::count`] and [`Cache::sample`] are the read half a dry run uses.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::OpsError;
use crate::refs::KeyPattern;

/// What a [`Cache`] backend supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent capabilities, each checked on its own"
)]
pub struct CacheCapabilities {
    /// Cluster mode (scans every primary).
    pub cluster: bool,
    /// Snapshots and AOF rewrites.
    pub persistence: bool,
    /// Client listing and killing.
    pub clients: bool,
    /// [`Cache::flush`]: false for a cache scoped to part of the keyspace (a key prefix),
    /// where a flush would delete keys outside its scope.
    #[serde(default)]
    pub flush: bool,
}

impl CacheCapabilities {
    /// Everything supported.
    pub fn all() -> Self {
        Self {
            cluster: true,
            persistence: true,
            clients: true,
            flush: true,
        }
    }
}

/// Memory section of INFO.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemoryInfo {
    /// `used_memory`, bytes.
    pub used_bytes: u64,
    /// `maxmemory`, bytes (0 = unlimited).
    pub max_bytes: u64,
    /// `mem_fragmentation_ratio`.
    pub fragmentation_ratio: f64,
    /// `maxmemory_policy`.
    pub policy: String,
}

impl MemoryInfo {
    /// `used / max` when a maximum is set.
    ///
    /// # Examples
    /// ```
    /// let mut m = ops_core::cache::MemoryInfo::default();
    /// m.used_bytes = 90; m.max_bytes = 100;
    /// assert_eq!(m.used_ratio(), Some(0.9));
    /// ```
    pub fn used_ratio(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss, reason = "a ratio")]
        (self.max_bytes > 0).then(|| self.used_bytes as f64 / self.max_bytes as f64)
    }
}

/// Stats section of INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatsInfo {
    /// `keyspace_hits`.
    pub hits: u64,
    /// `keyspace_misses`.
    pub misses: u64,
    /// `evicted_keys`.
    pub evicted_keys: u64,
    /// `expired_keys`.
    pub expired_keys: u64,
    /// `instantaneous_ops_per_sec`.
    pub ops_per_sec: u64,
    /// `rejected_connections`.
    pub rejected_connections: u64,
}

/// Persistence section of INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(
    clippy::struct_excessive_bools,
    reason = "INFO reports these as independent flags"
)]
pub struct PersistenceInfo {
    /// Loading a dump right now.
    pub loading: bool,
    /// `rdb_last_save_time`.
    pub last_save: Option<jiff::Timestamp>,
    /// `rdb_last_bgsave_status == ok`.
    pub last_bgsave_ok: bool,
    /// `rdb_changes_since_last_save`.
    pub changes_since_save: u64,
    /// `aof_enabled`.
    pub aof_enabled: bool,
    /// A BGSAVE is running.
    pub bgsave_in_progress: bool,
}

/// One database of the keyspace section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyspaceInfo {
    /// Keys.
    pub keys: u64,
    /// Keys with a TTL.
    pub expires: u64,
}

/// Typed `INFO`: the sections runbooks use.
///
/// # Examples
/// ```
/// let mut info = ops_core::cache::CacheInfo::default();
/// info.stats.hits = 75; info.stats.misses = 25;
/// assert_eq!(info.hit_ratio(), Some(0.75));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CacheInfo {
    /// Server version.
    pub version: String,
    /// `master` or `slave`.
    pub role: String,
    /// Uptime.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub uptime: Duration,
    /// `connected_clients`.
    pub connected_clients: u64,
    /// `blocked_clients`.
    pub blocked_clients: u64,
    /// `maxclients`.
    pub max_clients: u64,
    /// Memory.
    pub memory: MemoryInfo,
    /// Stats.
    pub stats: StatsInfo,
    /// Persistence.
    pub persistence: PersistenceInfo,
    /// Keyspace by database index.
    pub keyspace: BTreeMap<u32, KeyspaceInfo>,
}

impl CacheInfo {
    /// `hits / (hits + misses)`, when there was any lookup.
    pub fn hit_ratio(&self) -> Option<f64> {
        let all = self.stats.hits + self.stats.misses;
        #[allow(clippy::cast_precision_loss, reason = "a ratio")]
        (all > 0).then(|| self.stats.hits as f64 / all as f64)
    }

    /// Keys over all databases.
    pub fn total_keys(&self) -> u64 {
        self.keyspace.values().map(|k| k.keys).sum()
    }
}

/// Options for [`Cache::count`], [`Cache::sample`] and [`Cache::purge`].
///
/// # Examples
/// ```
/// let o = ops_core::cache::PurgeOptions::default().with_batch_size(500).with_max_keys_per_sec(50_000);
/// assert_eq!(o.batch_size, 500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeOptions {
    /// SCAN COUNT hint and UNLINK batch size (default 1000).
    pub batch_size: u32,
    /// Rate limit on deletions (default none).
    pub max_keys_per_sec: Option<u32>,
    /// Overall deadline (default none: bounded by the key count).
    pub timeout: Option<Duration>,
}

impl Default for PurgeOptions {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            max_keys_per_sec: None,
            timeout: None,
        }
    }
}

impl PurgeOptions {
    /// Set the batch size (at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, n: u32) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Limit deletions per second.
    #[must_use]
    pub fn with_max_keys_per_sec(mut self, n: u32) -> Self {
        self.max_keys_per_sec = Some(n.max(1));
        self
    }
}

/// Keys scanned and matched by [`Cache::count`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyCount {
    /// Keys the scan visited.
    pub scanned: u64,
    /// Keys matching the pattern.
    pub matched: u64,
}

impl KeyCount {
    /// A count.
    pub fn new(scanned: u64, matched: u64) -> Self {
        Self { scanned, matched }
    }
}

/// What [`Cache::purge`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PurgeOutcome {
    /// Keys the scan visited.
    pub scanned: u64,
    /// Keys matching the pattern.
    pub matched: u64,
    /// Keys actually unlinked (a key may expire between SCAN and UNLINK).
    pub deleted: u64,
    /// Time taken.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub duration: Duration,
}

/// What a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SnapshotOutcome {
    /// `LASTSAVE` before.
    pub previous: Option<jiff::Timestamp>,
    /// `LASTSAVE` after.
    pub saved_at: jiff::Timestamp,
    /// Time taken.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub duration: Duration,
    /// The file each node wrote, when the server says where (`CONFIG GET dir` and
    /// `dbfilename`; empty when the backend cannot tell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SnapshotFile>,
}

impl SnapshotOutcome {
    /// An outcome (backends outside this crate cannot use a struct literal).
    pub fn new(
        previous: Option<jiff::Timestamp>,
        saved_at: jiff::Timestamp,
        duration: Duration,
    ) -> Self {
        Self {
            previous,
            saved_at,
            duration,
            files: Vec::new(),
        }
    }

    /// The same outcome, naming the files the nodes wrote.
    #[must_use]
    pub fn with_files(mut self, files: Vec<SnapshotFile>) -> Self {
        self.files = files;
        self
    }
}

/// Where one node keeps the RDB file a snapshot wrote, and whether that file is what the node
/// loads when it starts.
///
/// # Examples
/// ```
/// use ops_core::cache::SnapshotFile;
/// let f = SnapshotFile::new("redis:6379", Some("/data/dump.rdb".into()), true);
/// assert!(f.caveat().unwrap().contains("appendonly"));
/// assert!(SnapshotFile::new("redis:6379", None, false).caveat().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SnapshotFile {
    /// The node (`host:port`, or the cache's target on a single server).
    pub node: String,
    /// Absolute path of the RDB file on the node's host or container; `None` when the server
    /// refuses `CONFIG GET` (a renamed or disabled `CONFIG` command).
    pub rdb_path: Option<String>,
    /// `appendonly yes`: the node loads its AOF at start, not the RDB.
    pub aof_enabled: bool,
}

impl SnapshotFile {
    /// A node's file.
    pub fn new(node: impl Into<String>, rdb_path: Option<String>, aof_enabled: bool) -> Self {
        Self {
            node: node.into(),
            rdb_path,
            aof_enabled,
        }
    }

    /// What a restore from this file must know, when the RDB alone is not what the node loads.
    pub fn caveat(&self) -> Option<String> {
        self.aof_enabled.then(|| {
            format!(
                "{} has appendonly on: it loads its AOF at start, not this RDB. To restore from \
                 the RDB, start it with appendonly off, then run BGREWRITEAOF and turn appendonly \
                 back on",
                self.node
            )
        })
    }
}

impl PurgeOutcome {
    /// An outcome.
    pub fn new(scanned: u64, matched: u64, deleted: u64, duration: Duration) -> Self {
        Self {
            scanned,
            matched,
            deleted,
            duration,
        }
    }
}

/// What [`Cache::flush`] empties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushScope {
    /// The selected database (`FLUSHDB`).
    Database,
    /// Every database (`FLUSHALL`).
    All,
}

/// Which clients [`Cache::clients`] and [`Cache::kill_clients`] apply to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientFilter {
    /// Idle longer than this.
    #[serde(with = "crate::serde_util::opt_duration_ms")]
    pub idle_longer_than: Option<Duration>,
    /// Only this ACL user.
    pub user: Option<String>,
    /// Only this client name.
    pub name: Option<String>,
    /// Only this address (`ip:port`).
    pub addr: Option<String>,
    /// Built by [`ClientFilter::all`]: matching every client is meant, not an oversight.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_all: bool,
    /// Also match clients that are in use however long they have been idle (Pub/Sub
    /// subscribers, clients blocked in `BLPOP`/`XREAD BLOCK`, replicas, the master link,
    /// `MONITOR`; see [`ClientFlags::in_use`]). Off by default, [`ClientFilter::all`]
    /// included: set it with [`ClientFilter::including_in_use`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_in_use: bool,
}

impl ClientFilter {
    /// The filter that matches every client not in use, said explicitly. A filter with no
    /// criterion that was not built here is refused by [`Cache::kill_clients`] as a guard.
    /// Clients in use ([`ClientFlags::in_use`]) still need
    /// [`ClientFilter::including_in_use`].
    ///
    /// # Examples
    /// ```
    /// use ops_core::cache::ClientFilter;
    /// assert!(ClientFilter::default().is_unbounded());
    /// assert!(!ClientFilter::all().is_unbounded());
    /// ```
    pub fn all() -> Self {
        Self {
            match_all: true,
            ..Self::default()
        }
    }

    /// `Ok` when this filter may guard a change; the [`OpsError::unbounded_guard`] error of
    /// `backend`'s `operation` when it is unbounded ([`ClientFilter::is_unbounded`]). Every backend
    /// calls this before it acts.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for an unbounded filter.
    ///
    /// # Examples
    /// ```
    /// use ops_core::cache::ClientFilter;
    /// assert!(ClientFilter::default().require_bounded("pg", "terminate").is_err());
    /// assert!(ClientFilter::all().require_bounded("pg", "terminate").is_ok());
    /// ```
    pub fn require_bounded(
        &self,
        backend: &'static str,
        operation: &'static str,
    ) -> Result<(), OpsError> {
        if self.is_unbounded() {
            Err(OpsError::unbounded_guard(backend, operation))
        } else {
            Ok(())
        }
    }

    /// Whether this filter has no criterion and was not built by [`ClientFilter::all`]
    /// (refused as a guard of a change).
    pub fn is_unbounded(&self) -> bool {
        !self.match_all
            && self.idle_longer_than.is_none()
            && self.user.is_none()
            && self.name.is_none()
            && self.addr.is_none()
    }

    /// Clients idle longer than `d`.
    #[must_use]
    pub fn idle_longer_than(mut self, d: Duration) -> Self {
        self.idle_longer_than = Some(d);
        self
    }

    /// Also match clients in use ([`ClientFlags::in_use`]): subscribers, blocked clients,
    /// replicas, the master link and `MONITOR` clients, which are idle for hours while they
    /// serve. Only for a caller that means to list or kill those too.
    ///
    /// # Examples
    /// ```
    /// use ops_core::cache::{ClientFilter, ClientFlags, ClientInfo};
    /// let mut subscriber = ClientInfo::new(7, "10.0.0.5:5000");
    /// subscriber.flags = ClientFlags::parse("P");
    /// assert!(!ClientFilter::all().matches(&subscriber));
    /// assert!(ClientFilter::all().including_in_use().matches(&subscriber));
    /// ```
    #[must_use]
    pub fn including_in_use(mut self) -> Self {
        self.include_in_use = true;
        self
    }

    /// Whether `client` passes the filter. A client in use ([`ClientFlags::in_use`]) never
    /// does unless the filter says [`ClientFilter::including_in_use`].
    pub fn matches(&self, client: &ClientInfo) -> bool {
        (self.include_in_use || !client.flags.in_use())
            && self.idle_longer_than.is_none_or(|d| client.idle > d)
            && self
                .user
                .as_ref()
                .is_none_or(|u| client.user.as_ref() == Some(u))
            && self
                .name
                .as_ref()
                .is_none_or(|n| client.name.as_ref() == Some(n))
            && self.addr.as_ref().is_none_or(|a| &client.addr == a)
    }
}

/// One connected client (`CLIENT LIST`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientInfo {
    /// Client id.
    pub id: u64,
    /// `ip:port`.
    pub addr: String,
    /// Client name.
    pub name: Option<String>,
    /// ACL user.
    pub user: Option<String>,
    /// Connection age.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub age: Duration,
    /// Idle time.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub idle: Duration,
    /// Selected db.
    pub db: u32,
    /// Last command.
    pub last_command: String,
    /// What the client is doing that its idle time does not show (`flags`, and the
    /// subscription counts `sub`/`psub`/`ssub`).
    #[serde(default)]
    pub flags: ClientFlags,
}

impl ClientInfo {
    /// A client with id and address.
    pub fn new(id: u64, addr: impl Into<String>) -> Self {
        Self {
            id,
            addr: addr.into(),
            name: None,
            user: None,
            age: Duration::ZERO,
            idle: Duration::ZERO,
            db: 0,
            last_command: String::new(),
            flags: ClientFlags::default(),
        }
    }
}

/// The `CLIENT LIST` flags that mean a client is in use even when it sent nothing for hours.
///
/// Redis counts `idle` from the last command a client *sent*. A Pub/Sub subscriber (`P`), a
/// client blocked in `BLPOP`, `BRPOP`, `XREAD BLOCK` or `WAIT` (`b`), a replica's link seen
/// on its master (`S`), the master's link seen on a replica (`M`) and a `MONITOR` client
/// (`O`) send nothing while they serve, so they look idle; killing them drops messages,
/// wakes consumers with errors or breaks replication. [`ClientFilter`] leaves them out
/// unless told otherwise.
///
/// # Examples
/// ```
/// use ops_core::cache::ClientFlags;
/// let f = ClientFlags::parse("Pb");
/// assert!(f.pubsub && f.blocked && f.in_use());
/// assert_eq!(f.to_string(), "Pb");
/// assert!(!ClientFlags::parse("N").in_use());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent CLIENT LIST flags, any combination possible"
)]
pub struct ClientFlags {
    /// `P`: subscribed to Pub/Sub channels or patterns (or a `sub`/`psub`/`ssub` count above 0).
    #[serde(default)]
    pub pubsub: bool,
    /// `b`: waiting in a blocking command.
    #[serde(default)]
    pub blocked: bool,
    /// `S`: a replica's connection (on its master).
    #[serde(default)]
    pub replica: bool,
    /// `M`: the connection to this server's master (on a replica).
    #[serde(default)]
    pub master: bool,
    /// `O`: a `MONITOR` client.
    #[serde(default)]
    pub monitor: bool,
}

impl ClientFlags {
    /// Read the `flags` field of `CLIENT LIST` (unknown letters are ignored; `N` is none).
    pub fn parse(flags: &str) -> Self {
        let has = |c| flags.contains(c);
        Self {
            pubsub: has('P'),
            blocked: has('b'),
            replica: has('S'),
            master: has('M'),
            monitor: has('O'),
        }
    }

    /// Whether the client is in use however long it has been idle: any flag set.
    pub fn in_use(&self) -> bool {
        self.pubsub || self.blocked || self.replica || self.master || self.monitor
    }
}

impl fmt::Display for ClientFlags {
    /// The letters Redis uses, in this order: `P`, `b`, `S`, `M`, `O`; `N` for none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.in_use() {
            return f.write_str("N");
        }
        for (set, letter) in [
            (self.pubsub, "P"),
            (self.blocked, "b"),
            (self.replica, "S"),
            (self.master, "M"),
            (self.monitor, "O"),
        ] {
            if set {
                f.write_str(letter)?;
            }
        }
        Ok(())
    }
}

/// One `SLOWLOG` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SlowlogEntry {
    /// Entry id.
    pub id: u64,
    /// When.
    pub at: jiff::Timestamp,
    /// Execution time.
    #[serde(with = "crate::serde_util::duration_ms")]
    pub duration: Duration,
    /// Command and arguments (Redis redacts AUTH; long arguments are truncated).
    pub command: Vec<String>,
    /// Client address.
    pub client: Option<String>,
}

impl SlowlogEntry {
    /// An entry without a client address (backends outside this crate cannot use a struct
    /// literal; set `client` afterwards).
    pub fn new(id: u64, at: jiff::Timestamp, duration: Duration, command: Vec<String>) -> Self {
        Self {
            id,
            at,
            duration,
            command,
            client: None,
        }
    }
}

/// A key-value cache server.
///
/// Implemented by `ops-cache` for Redis. Every call has a deadline. `KEYS` is never used.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Cache: fmt::Debug + Send + Sync + 'static {
    /// Short backend name, e.g. `"redis"`.
    fn backend(&self) -> &'static str;

    /// What this backend supports.
    fn capabilities(&self) -> CacheCapabilities;

    /// `PING`; returns the round-trip time.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unavailable`] when unreachable; [`crate::ErrorKind::Timeout`];
    /// [`crate::ErrorKind::PermissionDenied`] on auth failure.
    async fn ping(&self) -> Result<Duration, OpsError>;

    /// Typed `INFO`.
    ///
    /// # Errors
    /// As [`Cache::ping`].
    async fn info(&self) -> Result<CacheInfo, OpsError>;

    /// Count keys matching `pattern` with SCAN (every primary in cluster mode).
    ///
    /// # Errors
    /// As [`Cache::ping`].
    async fn count(&self, pattern: &KeyPattern, opts: &PurgeOptions) -> Result<KeyCount, OpsError>;

    /// Up to `n` keys matching `pattern` (for dry-run plans).
    ///
    /// # Errors
    /// As [`Cache::ping`].
    async fn sample(&self, pattern: &KeyPattern, n: usize) -> Result<Vec<String>, OpsError>;

    /// Delete keys matching `pattern` with SCAN + UNLINK in pipelined batches.
    ///
    /// # Errors
    /// As [`Cache::ping`]; a failure mid-way is an error whose detail says how many keys were
    /// deleted so far (a rerun finishes the job).
    async fn purge(
        &self,
        pattern: &KeyPattern,
        opts: &PurgeOptions,
    ) -> Result<PurgeOutcome, OpsError>;

    /// `FLUSHDB` or `FLUSHALL` (asynchronous on the server).
    ///
    /// A backend scoped to part of the keyspace (a key prefix: `capabilities().flush` is
    /// false) refuses before sending anything: a flush cannot be confined to the prefix and
    /// would delete keys outside it. Purge [`KeyPattern::match_all`] there instead, which
    /// stays within the prefix.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unsupported`] for a backend scoped to a key prefix, naming the
    /// purge to run instead; as [`Cache::ping`].
    async fn flush(&self, scope: FlushScope) -> Result<(), OpsError>;

    /// `BGSAVE` and wait until `LASTSAVE` moves, or `timeout`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Timeout`]; [`crate::ErrorKind::Backend`] when the save failed.
    async fn snapshot(&self, timeout: Duration) -> Result<SnapshotOutcome, OpsError>;

    /// `BGREWRITEAOF`.
    ///
    /// # Errors
    /// As [`Cache::ping`].
    async fn rewrite_aof(&self) -> Result<(), OpsError>;

    /// `MEMORY DOCTOR` advice.
    ///
    /// # Errors
    /// As [`Cache::ping`].
    async fn memory_doctor(&self) -> Result<String, OpsError>;

    /// Connected clients matching `filter`.
    ///
    /// # Errors
    /// As [`Cache::ping`].
    async fn clients(&self, filter: &ClientFilter) -> Result<Vec<ClientInfo>, OpsError>;

    /// Kill exactly the clients `ids` that still match `guard` now (never our own
    /// connection); returns the ids killed. An id that disconnected or no longer matches is
    /// left alone, and no client outside `ids` is touched: what was approved is what runs.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `guard` is unbounded (no criterion and not
    /// [`ClientFilter::all`]); as [`Cache::ping`].
    async fn kill_clients(&self, ids: &[u64], guard: &ClientFilter) -> Result<Vec<u64>, OpsError>;

    /// The `n` newest slowlog entries.
    ///
    /// # Errors
    /// As [`Cache::ping`].
    async fn slowlog(&self, n: u32) -> Result<Vec<SlowlogEntry>, OpsError>;
}

macro_rules! forward_cache {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: Cache + ?Sized> Cache for $ptr<T> {
            fn backend(&self) -> &'static str { (**self).backend() }
            fn capabilities(&self) -> CacheCapabilities { (**self).capabilities() }
            async fn ping(&self) -> Result<Duration, OpsError> { (**self).ping().await }
            async fn info(&self) -> Result<CacheInfo, OpsError> { (**self).info().await }
            async fn count(&self, pattern: &KeyPattern, opts: &PurgeOptions) -> Result<KeyCount, OpsError> { (**self).count(pattern, opts).await }
            async fn sample(&self, pattern: &KeyPattern, n: usize) -> Result<Vec<String>, OpsError> { (**self).sample(pattern, n).await }
            async fn purge(&self, pattern: &KeyPattern, opts: &PurgeOptions) -> Result<PurgeOutcome, OpsError> { (**self).purge(pattern, opts).await }
            async fn flush(&self, scope: FlushScope) -> Result<(), OpsError> { (**self).flush(scope).await }
            async fn snapshot(&self, timeout: Duration) -> Result<SnapshotOutcome, OpsError> { (**self).snapshot(timeout).await }
            async fn rewrite_aof(&self) -> Result<(), OpsError> { (**self).rewrite_aof().await }
            async fn memory_doctor(&self) -> Result<String, OpsError> { (**self).memory_doctor().await }
            async fn clients(&self, filter: &ClientFilter) -> Result<Vec<ClientInfo>, OpsError> { (**self).clients(filter).await }
            async fn kill_clients(&self, ids: &[u64], guard: &ClientFilter) -> Result<Vec<u64>, OpsError> { (**self).kill_clients(ids, guard).await }
            async fn slowlog(&self, n: u32) -> Result<Vec<SlowlogEntry>, OpsError> { (**self).slowlog(n).await }
        }
    )*};
}
forward_cache!(Arc, Box);
