//! Count, sample and purge keys by pattern: SCAN (never `KEYS`) with UNLINK in bounded,
//! pipelined batches, an optional rate limit and a deadline.
//!
//! While the UNLINK of one batch is in flight the SCAN for the next one runs on the same
//! multiplexed connection, so the server never sees more than two small commands of ours at
//! a time and other clients are served between them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::future::OptionFuture;
use ops_core::KeyPattern;
use ops_core::cache::{KeyCount, PurgeOptions, PurgeOutcome};
use redis::cluster_routing::Slot;
use tracing::instrument;

use crate::cache::RedisCache;
use crate::connection::{Conn, Node, deadline};
use crate::error::{Error, Result};

/// Batches scanned ahead of the UNLINKs at most.
const SCAN_AHEAD: usize = 2;

/// Keys returned by one SCAN call.
type Keys = Vec<Vec<u8>>;

/// Running totals of a purge.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    matched: u64,
    deleted: u64,
}

impl RedisCache {
    /// Count keys matching `pattern` with SCAN over every node.
    ///
    /// `scanned` is the number of keys in the scanned databases when the scan began (SCAN
    /// does not report how many keys it visited). SCAN may return a key twice while the
    /// server resizes its table, so on a changing keyspace `matched` can be slightly high.
    ///
    /// # Errors
    /// [`Error::Command`] or [`Error::Timeout`] (per call, or `opts.timeout` overall).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> Result<(), Box<dyn std::error::Error>> {
    /// let n = cache.count_keys(&ops_core::KeyPattern::new("session:*")?, &Default::default()).await?;
    /// println!("{} of {} keys match", n.matched, n.scanned);
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %pattern))]
    pub async fn count_keys(&self, pattern: &KeyPattern, opts: &PurgeOptions) -> Result<KeyCount> {
        let started = Instant::now();
        let conn = self.conn().await?;
        let pattern = self.scan_pattern(pattern);
        let mut scanned = 0;
        let mut matched = 0;
        for node in self.nodes().await? {
            scanned += self.dbsize(&node).await?;
            let mut cursor = 0;
            loop {
                let after = self.remaining(started, opts.timeout, "SCAN", &node)?;
                let (next, keys) = self
                    .scan(&conn, &node, cursor, &pattern, opts.batch_size, after)
                    .await?;
                matched += keys.len() as u64;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(KeyCount::new(scanned, matched))
    }

    /// Up to `n` keys matching `pattern` (lossy UTF-8, key prefix included), for dry-run plans.
    ///
    /// # Errors
    /// As [`RedisCache::count_keys`].
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run(cache: ops_cache::RedisCache) -> Result<(), Box<dyn std::error::Error>> {
    /// let some = cache.sample_keys(&ops_core::KeyPattern::new("session:*")?, 10).await?;
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %pattern))]
    pub async fn sample_keys(&self, pattern: &KeyPattern, n: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if n == 0 {
            return Ok(out);
        }
        // SCAN may return a key twice (while the server rehashes): each is named once.
        let mut seen = HashSet::new();
        let conn = self.conn().await?;
        let pattern = self.scan_pattern(pattern);
        let batch = u32::try_from(n.clamp(100, 1000)).unwrap_or(1000);
        for node in self.nodes().await? {
            let mut cursor = 0;
            loop {
                let (next, keys) = self
                    .scan(&conn, &node, cursor, &pattern, batch, self.timeout())
                    .await?;
                for key in keys {
                    if out.len() == n {
                        return Ok(out);
                    }
                    if seen.insert(key.clone()) {
                        out.push(String::from_utf8_lossy(&key).into_owned());
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(out)
    }

    /// Delete keys matching `pattern`: SCAN + pipelined UNLINK in batches of at most
    /// `opts.batch_size` keys, at most `opts.max_keys_per_sec` deletions a second, within
    /// `opts.timeout`. In cluster mode every primary is scanned and deletes are grouped by slot.
    ///
    /// Not cancellation safe in the sense that keys already unlinked stay deleted; a rerun
    /// deletes the rest.
    ///
    /// # Errors
    /// [`Error::PurgeInterrupted`] carrying the number of keys deleted so far when a command
    /// fails or a deadline passes part-way; [`Error::Command`] / [`Error::Timeout`] when it
    /// fails before deleting anything could start (connecting, `CLUSTER SLOTS`).
    ///
    /// # Examples
    /// ```no_run
    /// use ops_core::cache::PurgeOptions;
    /// # async fn run(cache: ops_cache::RedisCache) -> Result<(), Box<dyn std::error::Error>> {
    /// let opts = PurgeOptions::default().with_batch_size(500).with_max_keys_per_sec(50_000);
    /// match cache.purge_keys(&ops_core::KeyPattern::new("session:*")?, &opts).await {
    ///     Ok(done) => println!("deleted {}", done.deleted),
    ///     Err(err) => println!("stopped after {:?} deletions: {err}", err.deleted_so_far()),
    /// }
    /// # Ok(()) }
    /// ```
    #[instrument(level = "debug", skip_all, fields(backend = "redis", target = %pattern))]
    pub async fn purge_keys(
        &self,
        pattern: &KeyPattern,
        opts: &PurgeOptions,
    ) -> Result<PurgeOutcome> {
        let started = Instant::now();
        let conn = self.conn().await?;
        let scan_pattern = self.scan_pattern(pattern);
        let nodes = self.nodes().await?;
        let mut scanned = 0;
        let mut progress = Progress::default();
        let interrupted = |source: Error, scanned: u64, progress: Progress| {
            let target = source.target().to_owned();
            Error::PurgeInterrupted {
                pattern: scan_pattern.clone(),
                target,
                scanned,
                matched: progress.matched,
                deleted: progress.deleted,
                source: Box::new(source),
            }
        };
        for node in &nodes {
            match self.dbsize(node).await {
                Ok(n) => scanned += n,
                Err(e) => return Err(interrupted(e, scanned, progress)),
            }
        }
        for node in &nodes {
            if let Err(e) = self
                .purge_node(&conn, node, &scan_pattern, opts, started, &mut progress)
                .await
            {
                return Err(interrupted(e, scanned, progress));
            }
        }
        Ok(PurgeOutcome::new(
            scanned,
            progress.matched,
            progress.deleted,
            started.elapsed(),
        ))
    }

    /// The purge loop on one node: SCAN n+1 runs while UNLINK n is in flight.
    async fn purge_node(
        &self,
        conn: &Conn,
        node: &Node,
        pattern: &str,
        opts: &PurgeOptions,
        started: Instant,
        progress: &mut Progress,
    ) -> Result<()> {
        let batch = match opts.max_keys_per_sec {
            // At most a tenth of a second's worth of deletions per batch keeps the rate smooth.
            Some(rate) => opts.batch_size.min((rate / 10).max(1)),
            None => opts.batch_size,
        }
        .max(1);
        let rate_started = Instant::now();
        let deleted_before = progress.deleted;
        let start_scan = |cursor: u64| {
            Box::pin(async move {
                let after = self.remaining(started, opts.timeout, "SCAN", node)?;
                self.scan(conn, node, cursor, pattern, batch, after).await
            })
        };
        let start_unlink = |keys: Keys| {
            Box::pin(async move {
                let after = self.remaining(started, opts.timeout, "UNLINK", node)?;
                self.unlink(conn, node, &keys, batch, after).await
            })
        };
        // One SCAN and one UNLINK pipeline in flight at most; the next SCAN goes out as soon
        // as the previous one answered, so the server always has our next command queued
        // while we parse, but never more than two small ones.
        let mut scanning = Some(start_scan(0));
        let mut unlinking = None;
        let mut next_cursor = None;
        let mut queue: VecDeque<Keys> = VecDeque::new();
        loop {
            if unlinking.is_none()
                && let Some(keys) = queue.pop_front()
            {
                if let Some(rate) = opts.max_keys_per_sec {
                    let done = progress.deleted - deleted_before;
                    let due =
                        Duration::from_millis(done.saturating_mul(1000) / u64::from(rate.max(1)));
                    tokio::time::sleep_until((rate_started + due).into()).await;
                }
                unlinking = Some(start_unlink(keys));
            }
            if scanning.is_none() && unlinking.is_none() {
                return Ok(());
            }
            tokio::select! {
                Some(scanned) = OptionFuture::from(scanning.as_mut()) => {
                    scanning = None;
                    let (next, keys) = scanned?;
                    progress.matched += keys.len() as u64;
                    if !keys.is_empty() {
                        queue.push_back(keys);
                    }
                    next_cursor = (next != 0).then_some(next);
                }
                Some(unlinked) = OptionFuture::from(unlinking.as_mut()) => {
                    unlinking = None;
                    progress.deleted += unlinked?;
                }
                else => return Ok(()),
            }
            if scanning.is_none()
                && queue.len() < SCAN_AHEAD
                && let Some(cursor) = next_cursor.take()
            {
                scanning = Some(start_scan(cursor));
            }
        }
    }

    /// One `SCAN cursor MATCH pattern COUNT batch`.
    async fn scan(
        &self,
        conn: &Conn,
        node: &Node,
        cursor: u64,
        pattern: &str,
        batch: u32,
        after: Duration,
    ) -> Result<(u64, Keys)> {
        let cmd = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(batch)
            .clone();
        deadline(
            "SCAN",
            &self.node_target(node),
            after,
            conn.query::<(u64, Keys)>(&cmd, node),
        )
        .await
    }

    /// UNLINK `keys` in one pipeline: chunks of at most `batch` keys (standalone) or one
    /// command per hash slot, chunked the same way (cluster). Returns how many were deleted.
    async fn unlink(
        &self,
        conn: &Conn,
        node: &Node,
        keys: &Keys,
        batch: u32,
        after: Duration,
    ) -> Result<u64> {
        let chunk = usize::try_from(batch).unwrap_or(usize::MAX).max(1);
        let mut pipe = redis::pipe();
        match conn {
            Conn::Single(_) => {
                for part in keys.chunks(chunk) {
                    pipe.cmd("UNLINK").arg(part);
                }
            }
            Conn::Cluster(_) => {
                let mut by_slot: HashMap<Slot, Vec<&[u8]>> = HashMap::new();
                for key in keys {
                    by_slot.entry(Slot::for_key(key)).or_default().push(key);
                }
                for part in by_slot.values().flat_map(|keys| keys.chunks(chunk)) {
                    pipe.cmd("UNLINK").arg(part);
                }
            }
        }
        let replies = deadline(
            "UNLINK",
            &self.node_target(node),
            after,
            conn.pipeline(&pipe, node),
        )
        .await?;
        let mut deleted = 0u64;
        for reply in replies {
            match reply {
                redis::Value::Int(n) => deleted += u64::try_from(n).unwrap_or(0),
                other => {
                    return Err(Error::Protocol {
                        command: "UNLINK",
                        target: self.node_target(node),
                        detail: format!("expected an integer, got {other:?}"),
                    });
                }
            }
        }
        Ok(deleted)
    }

    /// `DBSIZE` of `node`.
    async fn dbsize(&self, node: &Node) -> Result<u64> {
        self.run("DBSIZE", node, &redis::cmd("DBSIZE")).await
    }

    /// The deadline for the next call: the per-command one, shortened by `overall`.
    fn remaining(
        &self,
        started: Instant,
        overall: Option<Duration>,
        command: &'static str,
        node: &Node,
    ) -> Result<Duration> {
        let per_call = self.timeout();
        let Some(overall) = overall else {
            return Ok(per_call);
        };
        match overall.checked_sub(started.elapsed()) {
            Some(left) if !left.is_zero() => Ok(left.min(per_call)),
            _ => Err(Error::Timeout {
                command,
                target: self.node_target(node),
                after: overall,
            }),
        }
    }
}
