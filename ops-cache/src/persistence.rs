//! Flush (disruptive), snapshots (`BGSAVE`, then wait for the save to land) and AOF rewrites.

use std::time::{Duration, Instant};

use ops_core::cache::{FlushScope, SnapshotFile, SnapshotOutcome};
use tracing::instrument;

use crate::cache::RedisCache;
use crate::connection::Node;
use crate::error::{Error, Result};
use crate::info::{field_u64, parse_info};

/// How often a snapshot checks whether the save landed.
const SNAPSHOT_POLL: Duration = Duration::from_millis(100);

impl RedisCache {
    /// `FLUSHDB ASYNC` or `FLUSHALL ASYNC` (on every primary in cluster mode). Disruptive:
    /// prefer [`RedisCache::purge_keys`] with a pattern.
    ///
    /// A cache built with a key prefix ([`crate::RedisCacheBuilder::with_key_prefix`]) owns
    /// only the keys under it, and neither command knows of prefixes: it refuses to flush,
    /// before sending anything, rather than delete the other prefixes' keys. To empty its
    /// share, purge [`ops_core::KeyPattern::match_all`] (every key under the prefix, with
    /// SCAN + UNLINK).
    ///
    /// # Errors
    /// [`Error::Unsupported`] when the cache has a key prefix; [`Error::Command`] or
    /// [`Error::Timeout`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> ops_cache::Result<()> {
    /// cache.flush_scope(ops_core::cache::FlushScope::Database).await?;
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %self.target()))]
    pub async fn flush_scope(&self, scope: FlushScope) -> Result<()> {
        if let Some(prefix) = self.key_prefix() {
            return Err(Error::Unsupported {
                operation: "flush",
                target: self.target().to_owned(),
                reason: prefixed_flush_reason(prefix, scope),
            });
        }
        let (command, name) = match scope {
            FlushScope::Database => ("FLUSHDB", "FLUSHDB"),
            FlushScope::All => ("FLUSHALL", "FLUSHALL"),
        };
        for node in self.nodes().await? {
            let () = self
                .run(name, &node, &redis::cmd(command).arg("ASYNC").clone())
                .await?;
        }
        Ok(())
    }

    /// `BGSAVE SCHEDULE` on every node, then wait (polling every 100 ms, at most `timeout`)
    /// until `LASTSAVE` moves or the save counter grows, and check the save succeeded. When
    /// another RDB save is already running (a `save` point, a replica's full sync,
    /// `redis-cli --rdb`), the server refuses even a scheduled `BGSAVE`: this waits for that
    /// save and asks again, so the snapshot always started after the call.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the save has not landed within `timeout`;
    /// [`Error::SnapshotFailed`] when the server reports the save failed; [`Error::Command`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> ops_cache::Result<()> {
    /// let done = cache.bgsave(std::time::Duration::from_secs(60)).await?;
    /// println!("saved at {}", done.saved_at);
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %self.target()))]
    pub async fn bgsave(&self, timeout: Duration) -> Result<SnapshotOutcome> {
        let started = Instant::now();
        let mut previous: Option<jiff::Timestamp> = None;
        let mut saved_at: Option<jiff::Timestamp> = None;
        let mut files = Vec::new();
        for node in self.nodes().await? {
            let (before, at) = self.bgsave_node(&node, started, timeout).await?;
            previous = min_opt(previous, before);
            saved_at = Some(saved_at.map_or(at, |s| s.min(at)));
            files.push(self.snapshot_file(&node).await?);
        }
        let saved_at = saved_at.ok_or_else(|| Error::Protocol {
            command: "LASTSAVE",
            target: self.target().to_owned(),
            detail: "no node to snapshot".to_owned(),
        })?;
        Ok(SnapshotOutcome::new(previous, saved_at, started.elapsed()).with_files(files))
    }

    async fn bgsave_node(
        &self,
        node: &Node,
        started: Instant,
        timeout: Duration,
    ) -> Result<(Option<jiff::Timestamp>, jiff::Timestamp)> {
        let (before_save, before_count) = loop {
            let before_save: i64 = self.run("LASTSAVE", node, &redis::cmd("LASTSAVE")).await?;
            let before_count = field_u64(&self.info_persistence(node).await?, "rdb_saves");
            let asked: Result<String> = self
                .run(
                    "BGSAVE",
                    node,
                    &redis::cmd("BGSAVE").arg("SCHEDULE").clone(),
                )
                .await;
            match asked {
                Ok(_) => break (before_save, before_count),
                // Another RDB child is writing (a `save` point, a replica's full sync,
                // `redis-cli --rdb`): SCHEDULE only queues behind an AOF rewrite. Wait for it
                // and ask again, so the snapshot is one that started after this call.
                Err(Error::Command { ref source, .. }) if save_in_progress(source) => {
                    self.poll_again(node, started, timeout).await?;
                }
                Err(e) => return Err(e),
            }
        };
        loop {
            let text = self.info_persistence(node).await?;
            let info = parse_info(&text);
            let last: i64 = self.run("LASTSAVE", node, &redis::cmd("LASTSAVE")).await?;
            let count = field_u64(&text, "rdb_saves");
            let moved =
                last > before_save || matches!((before_count, count), (Some(b), Some(c)) if c > b);
            if moved && !info.persistence.bgsave_in_progress {
                if !info.persistence.last_bgsave_ok {
                    return Err(Error::SnapshotFailed {
                        target: self.node_target(node),
                        status: "err".to_owned(),
                    });
                }
                let at = jiff::Timestamp::from_second(last).map_err(|_| Error::Protocol {
                    command: "LASTSAVE",
                    target: self.node_target(node),
                    detail: format!("{last} is not a timestamp"),
                })?;
                let before = jiff::Timestamp::from_second(before_save)
                    .ok()
                    .filter(|_| before_save > 0);
                return Ok((before, at));
            }
            self.poll_again(node, started, timeout).await?;
        }
    }

    /// Sleep one poll interval, or fail with [`Error::Timeout`] when that would pass
    /// `timeout` since `started`.
    async fn poll_again(&self, node: &Node, started: Instant, timeout: Duration) -> Result<()> {
        if started.elapsed() + SNAPSHOT_POLL > timeout {
            return Err(Error::Timeout {
                command: "BGSAVE",
                target: self.node_target(node),
                after: timeout,
            });
        }
        tokio::time::sleep(SNAPSHOT_POLL).await;
        Ok(())
    }

    /// Where `node` keeps its RDB file (`CONFIG GET dir` + `dbfilename`) and whether it loads
    /// its AOF instead. A server that refuses `CONFIG` (renamed or disabled, or an ACL without
    /// `+config|get`) gives `rdb_path: None` rather than an error: the snapshot itself landed.
    async fn snapshot_file(&self, node: &Node) -> Result<SnapshotFile> {
        let aof_enabled = parse_info(&self.info_persistence(node).await?)
            .persistence
            .aof_enabled;
        let dir = self.config_value(node, "dir").await;
        let file = self.config_value(node, "dbfilename").await;
        let rdb_path = match (dir, file) {
            (Some(dir), Some(file)) if dir.starts_with('/') && !file.contains('/') => {
                Some(format!("{}/{file}", dir.trim_end_matches('/')))
            }
            _ => None,
        };
        Ok(SnapshotFile::new(
            self.node_target(node),
            rdb_path,
            aof_enabled,
        ))
    }

    /// One `CONFIG GET` value; `None` when the server refuses or does not know it.
    async fn config_value(&self, node: &Node, name: &'static str) -> Option<String> {
        let reply: Vec<String> = self
            .run(
                "CONFIG GET",
                node,
                &redis::cmd("CONFIG").arg("GET").arg(name).clone(),
            )
            .await
            .ok()?;
        match reply.as_slice() {
            [key, value] if key == name && !value.is_empty() => Some(value.clone()),
            _ => None,
        }
    }

    async fn info_persistence(&self, node: &Node) -> Result<String> {
        self.run("INFO", node, &redis::cmd("INFO").arg("persistence").clone())
            .await
    }

    /// `BGREWRITEAOF` on every node (returns once the server accepted it).
    ///
    /// # Errors
    /// [`Error::Command`] (e.g. a rewrite already running) or [`Error::Timeout`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> ops_cache::Result<()> {
    /// cache.bgrewriteaof().await?;
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %self.target()))]
    pub async fn bgrewriteaof(&self) -> Result<()> {
        for node in self.nodes().await? {
            let _: String = self
                .run("BGREWRITEAOF", &node, &redis::cmd("BGREWRITEAOF"))
                .await?;
        }
        Ok(())
    }
}

fn min_opt(a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>) -> Option<jiff::Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Why a cache scoped to `prefix` refuses a flush of `scope`, and what to run instead.
fn prefixed_flush_reason(prefix: &str, scope: FlushScope) -> String {
    let (command, what) = match scope {
        FlushScope::Database => ("FLUSHDB", "every key of the database"),
        FlushScope::All => ("FLUSHALL", "every key of every database"),
    };
    format!(
        "this cache is scoped to the key prefix \"{}\" and {command} would delete {what}, \
         keys outside the prefix too; purge KeyPattern::match_all() instead (SCAN + UNLINK of \
         the keys under the prefix only)",
        ops_core::text::quote(prefix)
    )
}

/// Whether the server refused `BGSAVE` because another RDB save (to disk or to a socket) is
/// under way: `ERR Background save already in progress`.
fn save_in_progress(err: &redis::RedisError) -> bool {
    err.to_string().contains("already in progress")
}
