//! Typed `INFO`: a total parser (never panics, tolerates unknown and malformed fields) and
//! the merge of several cluster primaries into one [`CacheInfo`].

use std::time::Duration;

use ops_core::cache::{CacheInfo, KeyspaceInfo};

/// Parse the text of `INFO` (any sections, `\r\n` or `\n` line ends) into [`CacheInfo`].
///
/// Total: unknown fields are ignored, malformed values leave the field at its default, and no
/// input makes it panic.
///
/// # Examples
/// ```
/// let info = ops_cache::parse_info(
///     "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:60\r\n\
///      # Stats\r\nkeyspace_hits:3\r\nkeyspace_misses:1\r\n\
///      # Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=0\r\n",
/// );
/// assert_eq!(info.version, "7.0.15");
/// assert_eq!(info.uptime.as_secs(), 60);
/// assert_eq!(info.hit_ratio(), Some(0.75));
/// assert_eq!(info.keyspace[&0].keys, 10);
/// ```
pub fn parse_info(text: &str) -> CacheInfo {
    let mut info = CacheInfo::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        apply(&mut info, key, value.trim());
    }
    info
}

fn apply(info: &mut CacheInfo, key: &str, value: &str) {
    let num = || value.parse::<u64>().ok();
    let set = |slot: &mut u64| {
        if let Some(n) = num() {
            *slot = n;
        }
    };
    match key {
        "redis_version" => value.clone_into(&mut info.version),
        "role" => value.clone_into(&mut info.role),
        "uptime_in_seconds" => {
            if let Some(n) = num() {
                info.uptime = Duration::from_secs(n);
            }
        }
        "connected_clients" => set(&mut info.connected_clients),
        "blocked_clients" => set(&mut info.blocked_clients),
        "maxclients" => set(&mut info.max_clients),
        "used_memory" => set(&mut info.memory.used_bytes),
        "maxmemory" => set(&mut info.memory.max_bytes),
        "mem_fragmentation_ratio" => {
            if let Some(r) = value.parse::<f64>().ok().filter(|r| r.is_finite()) {
                info.memory.fragmentation_ratio = r;
            }
        }
        "maxmemory_policy" => value.clone_into(&mut info.memory.policy),
        "keyspace_hits" => set(&mut info.stats.hits),
        "keyspace_misses" => set(&mut info.stats.misses),
        "evicted_keys" => set(&mut info.stats.evicted_keys),
        "expired_keys" => set(&mut info.stats.expired_keys),
        "instantaneous_ops_per_sec" => set(&mut info.stats.ops_per_sec),
        "rejected_connections" => set(&mut info.stats.rejected_connections),
        "loading" => info.persistence.loading = value == "1",
        "rdb_last_save_time" => {
            info.persistence.last_save = value
                .parse::<i64>()
                .ok()
                .filter(|s| *s > 0)
                .and_then(|s| jiff::Timestamp::from_second(s).ok());
        }
        "rdb_last_bgsave_status" => info.persistence.last_bgsave_ok = value == "ok",
        "rdb_changes_since_last_save" => set(&mut info.persistence.changes_since_save),
        "aof_enabled" => info.persistence.aof_enabled = value == "1",
        "rdb_bgsave_in_progress" => info.persistence.bgsave_in_progress = value == "1",
        _ => {
            if let Some((db, space)) = parse_keyspace(key, value) {
                info.keyspace.insert(db, space);
            }
        }
    }
}

/// `db3` + `keys=1,expires=0,avg_ttl=0`.
fn parse_keyspace(key: &str, value: &str) -> Option<(u32, KeyspaceInfo)> {
    let db = key.strip_prefix("db")?.parse::<u32>().ok()?;
    let mut space = KeyspaceInfo::default();
    for pair in value.split(',') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let Ok(n) = v.trim().parse::<u64>() else {
            continue;
        };
        match k.trim() {
            "keys" => space.keys = n,
            "expires" => space.expires = n,
            _ => {}
        }
    }
    Some((db, space))
}

/// One integer field of an `INFO` text, e.g. `rdb_saves` (fields [`CacheInfo`] does not hold).
pub(crate) fn field_u64(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.trim_end_matches('\r').split_once(':')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// Combine the `INFO` of every cluster primary: counters and memory are summed, the
/// fragmentation ratio is the worst, uptime the shortest, the last save the oldest.
pub(crate) fn merge(parts: Vec<CacheInfo>) -> CacheInfo {
    let mut parts = parts.into_iter();
    let Some(mut all) = parts.next() else {
        return CacheInfo::default();
    };
    for p in parts {
        all.uptime = all.uptime.min(p.uptime);
        all.connected_clients += p.connected_clients;
        all.blocked_clients += p.blocked_clients;
        all.max_clients += p.max_clients;
        all.memory.used_bytes += p.memory.used_bytes;
        all.memory.max_bytes += p.memory.max_bytes;
        all.memory.fragmentation_ratio = all
            .memory
            .fragmentation_ratio
            .max(p.memory.fragmentation_ratio);
        all.stats.hits += p.stats.hits;
        all.stats.misses += p.stats.misses;
        all.stats.evicted_keys += p.stats.evicted_keys;
        all.stats.expired_keys += p.stats.expired_keys;
        all.stats.ops_per_sec += p.stats.ops_per_sec;
        all.stats.rejected_connections += p.stats.rejected_connections;
        let (a, b) = (&mut all.persistence, &p.persistence);
        a.loading |= b.loading;
        a.last_save = match (a.last_save, b.last_save) {
            (Some(x), Some(y)) => Some(x.min(y)),
            _ => None,
        };
        a.last_bgsave_ok &= b.last_bgsave_ok;
        a.changes_since_save += b.changes_since_save;
        a.aof_enabled &= b.aof_enabled;
        a.bgsave_in_progress |= b.bgsave_in_progress;
        for (db, space) in p.keyspace {
            let entry = all.keyspace.entry(db).or_default();
            entry.keys += space.keys;
            entry.expires += space.expires;
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDALONE: &str = include_str!("../tests/fixtures/info-7.0-standalone.txt");
    const AOF_MAXMEMORY: &str = include_str!("../tests/fixtures/info-7.0-empty-aof-maxmemory.txt");

    #[test]
    fn parses_real_standalone_info() {
        assert!(
            STANDALONE.contains("\r\n"),
            "fixture keeps the server's CRLF"
        );
        let info = parse_info(STANDALONE);
        assert_eq!(info.version, "7.0.15");
        assert_eq!(info.role, "master");
        assert_eq!(info.uptime, Duration::from_secs(19));
        assert_eq!(info.connected_clients, 1);
        assert_eq!(info.max_clients, 10_000);
        assert_eq!(info.memory.used_bytes, 39_462_280);
        assert_eq!(info.memory.max_bytes, 0);
        assert_eq!(info.memory.used_ratio(), None);
        assert!((info.memory.fragmentation_ratio - 3.54).abs() < 1e-9);
        assert_eq!(info.memory.policy, "noeviction");
        assert_eq!((info.stats.hits, info.stats.misses), (1, 1));
        assert_eq!(info.hit_ratio(), Some(0.5));
        assert!(info.persistence.last_bgsave_ok);
        assert!(!info.persistence.aof_enabled);
        assert!(!info.persistence.loading);
        assert_eq!(info.persistence.changes_since_save, 2_000_002);
        assert_eq!(
            info.persistence.last_save.map(jiff::Timestamp::as_second),
            Some(1_795_595_244)
        );
        assert_eq!(info.keyspace[&0].keys, 200_001);
        assert_eq!(info.keyspace[&3].expires, 1);
        assert_eq!(info.total_keys(), 200_002);
        assert_eq!(field_u64(STANDALONE, "rdb_saves"), Some(0));
    }

    #[test]
    fn parses_real_info_with_aof_and_maxmemory() {
        let info = parse_info(AOF_MAXMEMORY);
        assert!(info.persistence.aof_enabled);
        assert_eq!(info.memory.max_bytes, 100 * 1024 * 1024);
        assert_eq!(info.memory.policy, "allkeys-lru");
        assert!(info.memory.used_ratio().unwrap() < 0.1);
        assert!(info.keyspace.is_empty());
        assert_eq!(info.hit_ratio(), None);
    }

    #[test]
    fn parsing_is_total_on_garbage() {
        for text in [
            "",
            "\r\n\r\n",
            ":::",
            "used_memory:-5\r\nmaxmemory:lots\r\nmem_fragmentation_ratio:NaN",
            "db:keys=1\r\ndbx:keys=2\r\ndb1:keys\r\ndb2:keys=,expires=9\r\ndb99999999999:keys=1",
            "uptime_in_seconds:99999999999999999999999",
            "rdb_last_save_time:-1\r\nrdb_last_save_time:999999999999999",
            "\u{0}\u{feff}é:ü",
        ] {
            let info = parse_info(text);
            assert_eq!(info.memory.used_bytes, 0);
            assert!(info.memory.fragmentation_ratio.is_finite());
        }
        let info = parse_info("db2:keys=,expires=9");
        assert_eq!(info.keyspace[&2].expires, 9);
        // Every prefix of real output parses too (a reply cut off mid-line).
        for end in (0..STANDALONE.len()).filter(|i| STANDALONE.is_char_boundary(*i)) {
            let _ = parse_info(&STANDALONE[..end]);
        }
    }

    #[test]
    fn merge_sums_counters_and_keeps_the_worst() {
        let mut a = parse_info(STANDALONE);
        let mut b = a.clone();
        a.memory.fragmentation_ratio = 1.2;
        b.memory.fragmentation_ratio = 2.5;
        b.uptime = Duration::from_secs(5);
        b.persistence.last_bgsave_ok = false;
        let all = merge(vec![a, b]);
        assert_eq!(all.memory.used_bytes, 2 * 39_462_280);
        assert!((all.memory.fragmentation_ratio - 2.5).abs() < 1e-9);
        assert_eq!(all.uptime, Duration::from_secs(5));
        assert!(!all.persistence.last_bgsave_ok);
        assert_eq!(all.keyspace[&0].keys, 400_002);
        assert_eq!(merge(Vec::new()), CacheInfo::default());
    }
}
