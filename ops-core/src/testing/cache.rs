//! [`FakeCache`]: an in-memory key-value cache.

use std::collections::BTreeMap;
use std::sync::Mutex;
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
    keys: BTreeMap<String, String>,
    info: CacheInfo,
    clients: Vec<ClientInfo>,
    last_save: Option<jiff::Timestamp>,
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
            keys: BTreeMap::new(),
            info,
            clients: Vec::new(),
            last_save: None,
        }
    }
}

/// An in-memory [`Cache`] that matches keys with Redis's glob rules.
#[derive(Debug, Default)]
pub struct FakeCache {
    state: Mutex<State>,
    faults: Faults,
}

super::faults::fake_common!(FakeCache, "Cache");

impl FakeCache {
    /// Seed keys `"{prefix}{i}"` for `i` in `0..n`.
    #[must_use]
    pub fn with_keys(self, prefix: &str, n: usize) -> Self {
        self.with_state(|s| {
            for i in 0..n {
                s.keys.insert(format!("{prefix}{i}"), "v".to_owned());
            }
        })
    }

    /// Seed the INFO the fake reports (the keyspace count follows the keys).
    #[must_use]
    pub fn with_info(self, info: CacheInfo) -> Self {
        self.with_state(|s| s.info = info)
    }

    /// Seed connected clients.
    #[must_use]
    pub fn with_clients(self, clients: Vec<ClientInfo>) -> Self {
        self.with_state(|s| s.clients = clients)
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.lock().keys.len()
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
        info.keyspace.insert(
            0,
            KeyspaceInfo {
                keys: s.keys.len() as u64,
                expires: 0,
            },
        );
        info.persistence.last_save = s.last_save.or(info.persistence.last_save);
        Ok(info)
    }

    async fn count(
        &self,
        pattern: &KeyPattern,
        _opts: &PurgeOptions,
    ) -> Result<KeyCount, OpsError> {
        self.call("count", pattern.as_str())?;
        let s = self.lock();
        let matched = s.keys.keys().filter(|k| pattern.matches(k)).count() as u64;
        Ok(KeyCount::new(s.keys.len() as u64, matched))
    }

    async fn sample(&self, pattern: &KeyPattern, n: usize) -> Result<Vec<String>, OpsError> {
        self.call("sample", pattern.as_str())?;
        Ok(self
            .lock()
            .keys
            .keys()
            .filter(|k| pattern.matches(k))
            .take(n)
            .cloned()
            .collect())
    }

    async fn purge(
        &self,
        pattern: &KeyPattern,
        _opts: &PurgeOptions,
    ) -> Result<PurgeOutcome, OpsError> {
        self.call("purge", pattern.as_str())?;
        let mut s = self.lock();
        let scanned = s.keys.len() as u64;
        let before = s.keys.len();
        s.keys.retain(|k, _| !pattern.matches(k));
        let deleted = (before - s.keys.len()) as u64;
        drop(s);
        self.faults
            .mutate(format!("purge {pattern} deleted={deleted}"));
        Ok(PurgeOutcome::new(
            scanned,
            deleted,
            deleted,
            Duration::from_millis(1),
        ))
    }

    async fn flush(&self, scope: FlushScope) -> Result<(), OpsError> {
        self.call("flush", "cache")?;
        self.lock().keys.clear();
        self.faults.mutate(format!("flush {scope:?}"));
        Ok(())
    }

    async fn snapshot(&self, _timeout: Duration) -> Result<SnapshotOutcome, OpsError> {
        self.call("snapshot", "cache")?;
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
