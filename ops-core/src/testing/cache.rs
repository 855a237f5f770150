//! [`FakeCache`]: an in-memory key-value cache.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::Faults;
use crate::cache::{
    Cache, CacheCapabilities, CacheInfo, ClientFilter, ClientInfo, FlushScope, KeyCount,
    KeyspaceInfo, PurgeOptions, PurgeOutcome, SlowlogEntry, SnapshotFile, SnapshotOutcome,
};
use crate::error::OpsError;
use crate::refs::KeyPattern;

#[derive(Debug)]
struct State {
    /// Keys by database index.
    dbs: BTreeMap<u32, BTreeMap<String, String>>,
    info: CacheInfo,
    clients: Vec<ClientInfo>,
    last_save: Option<jiff::Timestamp>,
    /// How long a save takes.
    save_takes: Duration,
}

impl Default for State {
    fn default() -> Self {
        let mut info = CacheInfo {
            version: "7.0.15-fake".to_owned(),
            role: "master".to_owned(),
            ..CacheInfo::default()
        };
        info.persistence.last_bgsave_ok = true;
        Self {
            dbs: BTreeMap::new(),
            info,
            clients: Vec::new(),
            last_save: None,
            save_takes: Duration::ZERO,
        }
    }
}

/// An in-memory [`Cache`] that matches keys with Redis's glob rules.
///
/// A handle works on database 0 of its server; [`FakeCache::database`] opens another database
/// of the same server, so flushes can be told apart by scope.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::Cache;
/// use ops_core::cache::FlushScope;
/// use ops_core::testing::FakeCache;
/// let db0 = FakeCache::default().with_keys("a:", 3);
/// let db1 = db0.database(1).with_keys("b:", 2);
/// db0.flush(FlushScope::Database).await?;
/// assert_eq!((db0.len(), db1.len()), (0, 2));
/// db0.flush(FlushScope::All).await?;
/// assert!(db1.is_empty());
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct FakeCache {
    state: Arc<Mutex<State>>,
    db: u32,
    faults: Faults,
}

super::faults::fake_common!(FakeCache, "Cache");

impl FakeCache {
    /// Seed keys `"{prefix}{i}"` for `i` in `0..n` (in this handle's database).
    #[must_use]
    pub fn with_keys(self, prefix: &str, n: usize) -> Self {
        let db = self.db;
        self.with_state(|s| {
            let keys = s.dbs.entry(db).or_default();
            for i in 0..n {
                keys.insert(format!("{prefix}{i}"), "v".to_owned());
            }
        })
    }

    /// A handle on database `db` of the same server: same keys, clients and INFO, its own
    /// failure injection and logs.
    #[must_use]
    pub fn database(&self, db: u32) -> Self {
        Self {
            state: Arc::clone(&self.state),
            db,
            faults: Faults::default(),
        }
    }

    /// Seed the INFO the fake reports (the keyspace count follows the keys).
    #[must_use]
    pub fn with_info(self, info: CacheInfo) -> Self {
        self.with_state(|s| s.info = info)
    }

    /// Make every save take `d` (a snapshot with a shorter timeout is a `Timeout`).
    #[must_use]
    pub fn with_save_taking(self, d: Duration) -> Self {
        self.with_state(|s| s.save_takes = d)
    }

    /// Seed connected clients.
    #[must_use]
    pub fn with_clients(self, clients: Vec<ClientInfo>) -> Self {
        self.with_state(|s| s.clients = clients)
    }

    /// Number of keys stored in this handle's database.
    pub fn len(&self) -> usize {
        self.lock().dbs.get(&self.db).map_or(0, BTreeMap::len)
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn call(&self, op: &'static str, target: &str) -> Result<(), OpsError> {
        self.faults.call("fake", op, target)
    }
}

#[async_trait]
impl Cache for FakeCache {
    fn backend(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> CacheCapabilities {
        CacheCapabilities {
            cluster: false,
            persistence: true,
            clients: true,
            // The fake has no key prefix: a flush empties exactly its scope.
            flush: true,
        }
    }

    async fn ping(&self) -> Result<Duration, OpsError> {
        self.call("ping", "cache")?;
        Ok(Duration::from_millis(1))
    }

    async fn info(&self) -> Result<CacheInfo, OpsError> {
        self.call("info", "cache")?;
        let s = self.lock();
        let mut info = s.info.clone();
        info.keyspace.insert(0, KeyspaceInfo::default());
        for (db, keys) in s.dbs.iter().filter(|(_, k)| !k.is_empty()) {
            info.keyspace.insert(
                *db,
                KeyspaceInfo {
                    keys: keys.len() as u64,
                    expires: 0,
                },
            );
        }
        info.persistence.last_save = s.last_save.or(info.persistence.last_save);
        Ok(info)
    }

    async fn count(
        &self,
        pattern: &KeyPattern,
        _opts: &PurgeOptions,
    ) -> Result<KeyCount, OpsError> {
        self.call("count", pattern.as_str())?;
        let mut s = self.lock();
        let keys = s.dbs.entry(self.db).or_default();
        let matched = keys.keys().filter(|k| pattern.matches(k)).count() as u64;
        Ok(KeyCount::new(keys.len() as u64, matched))
    }

    async fn sample(&self, pattern: &KeyPattern, n: usize) -> Result<Vec<String>, OpsError> {
        self.call("sample", pattern.as_str())?;
        Ok(self
            .lock()
            .dbs
            .entry(self.db)
            .or_default()
            .keys()
            .filter(|k| pattern.matches(k))
            .take(n)
            .cloned()
            .collect())
    }

    async fn purge(
        &self,
        pattern: &KeyPattern,
        opts: &PurgeOptions,
    ) -> Result<PurgeOutcome, OpsError> {
        self.call("purge", pattern.as_str())?;
        let started = tokio::time::Instant::now();
        let (scanned, matched) = {
            let mut s = self.lock();
            let keys = s.dbs.entry(self.db).or_default();
            let matched: Vec<String> = keys
                .keys()
                .filter(|k| pattern.matches(k))
                .cloned()
                .collect();
            (keys.len() as u64, matched)
        };
        // Batches as the server backend cuts them: at most a tenth of a second's worth of
        // deletions when rate-limited, each started on schedule, none after the timeout.
        let batch = match opts.max_keys_per_sec {
            Some(rate) => opts.batch_size.min((rate / 10).max(1)),
            None => opts.batch_size,
        }
        .max(1);
        let mut deleted: u64 = 0;
        for keys in matched.chunks(usize::try_from(batch).unwrap_or(usize::MAX)) {
            if let Some(rate) = opts.max_keys_per_sec {
                let due =
                    Duration::from_millis(deleted.saturating_mul(1000) / u64::from(rate.max(1)));
                tokio::time::sleep_until(started + due).await;
            }
            if opts.timeout.is_some_and(|t| started.elapsed() >= t) {
                self.faults
                    .mutate(format!("purge {pattern} deleted={deleted}"));
                return Err(OpsError::new(
                    crate::error::ErrorKind::Timeout,
                    "fake",
                    "purge",
                    pattern.as_str(),
                )
                .with_detail(format!(
                    "purge interrupted: deleted {deleted} of {} matching keys; rerun to finish",
                    matched.len()
                )));
            }
            let mut s = self.lock();
            let db = s.dbs.entry(self.db).or_default();
            deleted += keys.iter().filter(|k| db.remove(*k).is_some()).count() as u64;
        }
        self.faults
            .mutate(format!("purge {pattern} deleted={deleted}"));
        Ok(PurgeOutcome::new(
            scanned,
            matched.len() as u64,
            deleted,
            started.elapsed(),
        ))
    }

    async fn flush(&self, scope: FlushScope) -> Result<(), OpsError> {
        self.call("flush", "cache")?;
        let mut s = self.lock();
        match scope {
            FlushScope::Database => {
                s.dbs.remove(&self.db);
            }
            FlushScope::All => s.dbs.clear(),
        }
        drop(s);
        self.faults.mutate(format!("flush {scope:?}"));
        Ok(())
    }

    async fn snapshot(&self, timeout: Duration) -> Result<SnapshotOutcome, OpsError> {
        self.call("snapshot", "cache")?;
        let takes = self.lock().save_takes;
        if takes > timeout {
            tokio::time::sleep(timeout).await;
            return Err(OpsError::new(
                crate::error::ErrorKind::Timeout,
                "fake",
                "snapshot",
                "cache",
            )
            .with_detail(format!("the save did not land within {timeout:?}")));
        }
        tokio::time::sleep(takes).await;
        let mut s = self.lock();
        let previous = s.last_save;
        let saved_at = previous.map_or(jiff::Timestamp::UNIX_EPOCH, |p| {
            p + jiff::SignedDuration::from_secs(1)
        });
        s.last_save = Some(saved_at);
        let aof_enabled = s.info.persistence.aof_enabled;
        drop(s);
        self.faults.mutate("snapshot");
        Ok(
            SnapshotOutcome::new(previous, saved_at, Duration::from_millis(1)).with_files(vec![
                SnapshotFile::new("cache", Some("/data/dump.rdb".to_owned()), aof_enabled),
            ]),
        )
    }

    async fn rewrite_aof(&self) -> Result<(), OpsError> {
        self.call("rewrite_aof", "cache")?;
        self.faults.mutate("rewrite_aof");
        Ok(())
    }

    async fn memory_doctor(&self) -> Result<String, OpsError> {
        self.call("memory_doctor", "cache")?;
        Ok("Hi Sam, I can't find any memory issue in your instance.".to_owned())
    }

    async fn clients(&self, filter: &ClientFilter) -> Result<Vec<ClientInfo>, OpsError> {
        self.call("clients", "cache")?;
        Ok(self
            .lock()
            .clients
            .iter()
            .filter(|c| filter.matches(c))
            .cloned()
            .collect())
    }

    async fn kill_clients(&self, ids: &[u64], guard: &ClientFilter) -> Result<Vec<u64>, OpsError> {
        guard.require_bounded("fake", "kill_clients")?;
        self.call("kill_clients", "cache")?;
        let mut s = self.lock();
        let mut killed = Vec::new();
        s.clients.retain(|c| {
            let kill = ids.contains(&c.id) && guard.matches(c);
            if kill {
                killed.push(c.id);
            }
            !kill
        });
        drop(s);
        self.faults.mutate(format!("kill_clients {}", killed.len()));
        Ok(killed)
    }

    async fn slowlog(&self, _n: u32) -> Result<Vec<SlowlogEntry>, OpsError> {
        self.call("slowlog", "cache")?;
        Ok(Vec::new())
    }
}
