//! Conformance tests for [`Cache`] backends.
//!
//! Precondition of [`purge_is_exact`]: the caller has stored `keep` keys named
//! `{prefix}keep:{i}` and `drop` keys named `{prefix}drop:{i}` (the trait has no write
//! method; seed them with the backend's own client).

use std::time::Duration;

use crate::cache::{Cache, ClientFilter, FlushScope, PurgeOptions};
use crate::error::ErrorKind;
use crate::refs::KeyPattern;

/// The pattern of the keys `{prefix}{what}:*`.
fn under(prefix: &str, what: &str) -> KeyPattern {
    KeyPattern::prefix(&format!("{prefix}{what}:"))
        .unwrap_or_else(|e| panic!("bad key prefix: {}", e.chain()))
}

/// Keys matching `pattern` in `cache`, by [`Cache::count`].
async fn matching(cache: &dyn Cache, pattern: &KeyPattern) -> u64 {
    cache
        .count(pattern, &PurgeOptions::default())
        .await
        .unwrap_or_else(|e| panic!("count failed: {}", e.chain()))
        .matched
}

/// `ping` answers and `info` parses.
///
/// # Panics
/// When the cache does not answer or INFO is empty.
pub async fn ping_and_info(cache: &dyn Cache) {
    cache
        .ping()
        .await
        .unwrap_or_else(|e| panic!("ping failed: {}", e.chain()));
    let info = cache
        .info()
        .await
        .unwrap_or_else(|e| panic!("info failed: {}", e.chain()));
    assert!(!info.version.is_empty(), "INFO reports a version");
    if let Some(ratio) = info.hit_ratio() {
        assert!((0.0..=1.0).contains(&ratio), "hit ratio is a fraction");
    }
}

/// Count and sample are read-only; purge deletes exactly the matching keys; a second purge
/// finds nothing.
///
/// # Panics
/// When counts are off or other keys are touched.
pub async fn purge_is_exact(cache: &dyn Cache, prefix: &str, keep: u64, drop: u64) {
    let opts = PurgeOptions::default().with_batch_size(100);
    let (dropping, keeping) = (under(prefix, "drop"), under(prefix, "keep"));
    let count = cache
        .count(&dropping, &opts)
        .await
        .unwrap_or_else(|e| panic!("count failed: {}", e.chain()));
    assert_eq!(count.matched, drop, "count matches the seeded keys");
    let sample = cache
        .sample(&dropping, 5)
        .await
        .unwrap_or_else(|e| panic!("sample failed: {}", e.chain()));
    assert_eq!(
        sample.len() as u64,
        drop.min(5),
        "sample returns up to n keys"
    );
    assert!(
        sample.iter().all(|k| dropping.matches(k)),
        "samples match the pattern"
    );
    let again = cache
        .count(&dropping, &opts)
        .await
        .unwrap_or_else(|e| panic!("count failed: {}", e.chain()));
    assert_eq!(again.matched, drop, "count and sample delete nothing");

    let outcome = cache
        .purge(&dropping, &opts)
        .await
        .unwrap_or_else(|e| panic!("purge failed: {}", e.chain()));
    assert_eq!(outcome.deleted, drop, "purge deletes every matching key");
    assert_eq!(outcome.matched, drop);
    let left = cache
        .count(&dropping, &opts)
        .await
        .unwrap_or_else(|e| panic!("count failed: {}", e.chain()));
    assert_eq!(left.matched, 0, "nothing matching is left");
    let kept = cache
        .count(&keeping, &opts)
        .await
        .unwrap_or_else(|e| panic!("count failed: {}", e.chain()));
    assert_eq!(kept.matched, keep, "other keys are untouched");
    let second = cache
        .purge(&dropping, &opts)
        .await
        .unwrap_or_else(|e| panic!("purge failed: {}", e.chain()));
    assert_eq!(second.deleted, 0, "a second purge finds nothing");
}

/// Killing clients is bound to the approved ids and re-checked against the guard: an
/// unbounded guard is refused, approved ids that no longer match are left alone, and an
/// empty list kills nobody even with [`ClientFilter::all`]. The client the caller opened as
/// `name` is among those listed, so none of this passes on an empty list.
///
/// # Panics
/// When any of these does not hold.
pub async fn clients_listing(cache: &dyn Cache, name: &str) {
    let unbounded = cache.kill_clients(&[], &ClientFilter::default()).await;
    assert_eq!(
        unbounded.map(|v| v.len()).map_err(|e| e.kind()),
        Err(crate::ErrorKind::InvalidInput),
        "an unbounded guard must be refused"
    );
    let clients = cache
        .clients(&ClientFilter::all())
        .await
        .unwrap_or_else(|e| panic!("clients failed: {}", e.chain()));
    assert!(
        clients.iter().any(|c| c.name.as_deref() == Some(name)),
        "the client the caller opened as {name} is listed: {clients:?}"
    );
    let ids: Vec<u64> = clients.iter().map(|c| c.id).collect();
    let nobody = ClientFilter {
        name: Some(format!("no-such-client-{}", fastrand::u64(..))),
        ..ClientFilter::default()
    };
    let killed = cache
        .kill_clients(&ids, &nobody)
        .await
        .unwrap_or_else(|e| panic!("kill_clients failed: {}", e.chain()));
    assert!(
        killed.is_empty(),
        "approved ids that fail the guard must be left alone"
    );
    let killed = cache
        .kill_clients(&[], &ClientFilter::all())
        .await
        .unwrap_or_else(|e| panic!("kill_clients failed: {}", e.chain()));
    assert!(killed.is_empty(), "no id approved, nobody killed");
    let still = cache
        .clients(&ClientFilter::all())
        .await
        .unwrap_or_else(|e| panic!("clients failed: {}", e.chain()));
    assert!(
        still.iter().any(|c| c.name.as_deref() == Some(name)),
        "nobody approved {name}: it is still connected"
    );
}

/// The client the caller opened as `name` (and keeps open) is found by name; killing its id
/// under a guard naming it returns that id; within ten seconds it is no longer listed; a
/// second kill finds nobody.
///
/// # Panics
/// When the client is not seen, not killed or still there.
pub async fn kill_ends_a_client(cache: &dyn Cache, name: &str) {
    let mine = ClientFilter {
        name: Some(name.to_owned()),
        ..ClientFilter::default()
    };
    let found = cache
        .clients(&mine)
        .await
        .unwrap_or_else(|e| panic!("clients failed: {}", e.chain()));
    assert_eq!(found.len(), 1, "the caller opened one client as {name}");
    let id = found[0].id;
    let killed = cache
        .kill_clients(&[id], &mine)
        .await
        .unwrap_or_else(|e| panic!("kill_clients failed: {}", e.chain()));
    assert_eq!(killed, vec![id], "kill_clients returns the id it killed");
    let still = format!("client {id} is still connected after the kill");
    let mine = &mine;
    super::within_ten_seconds(&still, move || async move {
        cache
            .clients(mine)
            .await
            .unwrap_or_else(|e| panic!("clients failed: {}", e.chain()))
            .iter()
            .all(|c| c.id != id)
    })
    .await;
    let again = cache
        .kill_clients(&[id], mine)
        .await
        .unwrap_or_else(|e| panic!("kill_clients failed: {}", e.chain()));
    assert!(again.is_empty(), "a killed client is not killed twice");
}

/// Snapshots and AOF rewrites work when [`Cache::capabilities`] claims persistence (the
/// save time never goes back) and are `Unsupported` when not; memory advice is
/// given; the slowlog answers.
///
/// # Panics
/// When capabilities and behaviour disagree.
pub async fn persistence_and_advice(cache: &dyn Cache) {
    let caps = cache.capabilities();
    let snapshot = cache.snapshot(std::time::Duration::from_secs(30)).await;
    if caps.persistence {
        let outcome = snapshot.unwrap_or_else(|e| panic!("snapshot failed: {}", e.chain()));
        if let Some(previous) = outcome.previous {
            // LASTSAVE counts seconds: a save in the same second as the last one keeps it.
            assert!(
                outcome.saved_at >= previous,
                "the save time never goes back: {outcome:?}"
            );
        }
        cache
            .rewrite_aof()
            .await
            .unwrap_or_else(|e| panic!("rewrite_aof failed: {}", e.chain()));
    } else {
        assert_eq!(
            snapshot.err().map(|e| e.kind()),
            Some(crate::ErrorKind::Unsupported)
        );
    }
    let advice = cache
        .memory_doctor()
        .await
        .unwrap_or_else(|e| panic!("memory_doctor failed: {}", e.chain()));
    assert!(!advice.trim().is_empty(), "MEMORY DOCTOR says something");
    cache
        .slowlog(10)
        .await
        .unwrap_or_else(|e| panic!("slowlog failed: {}", e.chain()));
}

/// Every cache test. Preconditions: those of [`purge_is_exact`] (`keep` and `drop` keys
/// under `prefix`) and one idle client the caller opened as `client` (it is killed).
///
/// # Panics
/// When any of them fails.
pub async fn run_all(cache: &dyn Cache, prefix: &str, keep: u64, drop: u64, client: &str) {
    ping_and_info(cache).await;
    sample_agrees_with_count(cache, prefix, keep, drop).await;
    purge_is_exact(cache, prefix, keep, drop).await;
    clients_listing(cache, client).await;
    persistence_and_advice(cache).await;
    kill_ends_a_client(cache, client).await;
}

/// [`Cache::sample`] agrees with [`Cache::count`]: asked for more keys than match, it returns
/// every matching key once (as many as `count` says), only matching keys; asked for 3 it
/// returns at most 3; asked for none, none. Preconditions of [`purge_is_exact`], before it
/// runs.
///
/// # Panics
/// When a sample holds a key the pattern does not match, a key twice, or disagrees with the
/// count.
pub async fn sample_agrees_with_count(cache: &dyn Cache, prefix: &str, keep: u64, drop: u64) {
    let (dropping, keeping) = (under(prefix, "drop"), under(prefix, "keep"));
    let count = matching(cache, &dropping).await;
    assert_eq!(count, drop, "count matches the seeded keys");
    let wanted = usize::try_from(drop)
        .unwrap_or(usize::MAX)
        .saturating_add(10);
    let all = cache
        .sample(&dropping, wanted)
        .await
        .unwrap_or_else(|e| panic!("sample failed: {}", e.chain()));
    let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a sample names each key once");
    assert_eq!(
        all.len() as u64,
        count,
        "a sample of more than match is every match"
    );
    assert!(
        all.iter()
            .all(|k| dropping.matches(k) && !keeping.matches(k)),
        "a sample holds only matching keys: {all:?}"
    );
    let few = cache
        .sample(&keeping, 3)
        .await
        .unwrap_or_else(|e| panic!("sample failed: {}", e.chain()));
    assert_eq!(
        few.len() as u64,
        keep.min(3),
        "a sample returns at most n keys"
    );
    assert!(few.iter().all(|k| keeping.matches(k)), "{few:?}");
    let none = cache
        .sample(&keeping, 0)
        .await
        .unwrap_or_else(|e| panic!("sample failed: {}", e.chain()));
    assert!(none.is_empty(), "a sample of 0 is empty: {none:?}");
}

/// [`PurgeOptions`] are honoured. Precondition: `n` (at least 40) keys `{prefix}slow:{i}`. At
/// 20 deletions a second with an overall timeout of 1 s the purge stops with `Timeout`, having
/// deleted some but not all of them, and its error says how many; a rerun at the same rate
/// deletes the rest, taking at least a second for them.
///
/// # Panics
/// When the rate or the timeout is ignored, or the error does not say what was deleted.
pub async fn purge_honours_its_options(cache: &dyn Cache, prefix: &str, n: u64) {
    assert!(n >= 40, "the check needs at least 40 keys, got {n}");
    let slow = under(prefix, "slow");
    assert_eq!(matching(cache, &slow).await, n, "the slow keys are seeded");
    let mut opts = PurgeOptions::default()
        .with_batch_size(100)
        .with_max_keys_per_sec(20);
    opts.timeout = Some(Duration::from_secs(1));
    let started = tokio::time::Instant::now();
    let err = cache
        .purge(&slow, &opts)
        .await
        .err()
        .unwrap_or_else(|| panic!("{n} keys at 20 a second cannot be purged within 1 s"));
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{}", err.chain());
    assert!(
        took < Duration::from_secs(3),
        "the purge stops at its timeout: {took:?}"
    );
    let left = matching(cache, &slow).await;
    assert!(
        left > 0 && left < n,
        "a purge stopped by its timeout deleted some keys, not all: {left} of {n} left"
    );
    let deleted = n - left;
    assert!(
        err.chain().contains(&format!("deleted {deleted} ")),
        "the error says {deleted} keys were deleted: {}",
        err.chain()
    );
    opts.timeout = None;
    let started = tokio::time::Instant::now();
    let rest = cache
        .purge(&slow, &opts)
        .await
        .unwrap_or_else(|e| panic!("purge failed: {}", e.chain()));
    assert_eq!(rest.deleted, left, "the rerun deletes the rest");
    assert_eq!(matching(cache, &slow).await, 0, "nothing matching is left");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{left} deletions at 20 a second take a second or more: {:?}",
        started.elapsed()
    );
}

/// [`Cache::flush`] empties exactly its scope. Preconditions: `n` (at least 1) keys
/// `{prefix}flush:{i}` in `cache`'s database and in `other`'s, another database of the same
/// server (everything in both may be lost). [`FlushScope::Database`] empties `cache`'s
/// database and leaves `other`'s keys; [`FlushScope::All`] empties both. The flush is
/// asynchronous on the server: the keys must be gone within ten seconds.
///
/// # Panics
/// When the flush fails, leaves keys in its scope or touches keys outside it.
pub async fn flush_empties_exactly_its_scope(
    cache: &dyn Cache,
    other: &dyn Cache,
    prefix: &str,
    n: u64,
    scope: FlushScope,
) {
    let flushed = under(prefix, "flush");
    assert!(n > 0, "the check needs seeded keys");
    assert_eq!(
        matching(cache, &flushed).await,
        n,
        "the keys to flush are seeded"
    );
    assert_eq!(
        matching(other, &flushed).await,
        n,
        "the other database is seeded"
    );
    cache
        .flush(scope)
        .await
        .unwrap_or_else(|e| panic!("flush {scope:?} failed: {}", e.chain()));
    let flushed = &flushed;
    super::within_ten_seconds("keys are still there after flush", move || async move {
        matching(cache, flushed).await == 0
    })
    .await;
    match scope {
        FlushScope::Database => assert_eq!(
            matching(other, flushed).await,
            n,
            "flushing one database leaves another database's keys"
        ),
        FlushScope::All => {
            super::within_ten_seconds(
                "a flush of every database left keys in another database",
                move || async move { matching(other, flushed).await == 0 },
            )
            .await;
        }
    }
}

/// A snapshot whose save takes longer than its timeout is `Timeout`, given up at that timeout
/// (and 2 s more at most), not waited out. Precondition: the cache claims persistence, and a
/// save on it takes longer than `timeout` (a server told to write slowly).
///
/// # Panics
/// When the snapshot succeeds, fails otherwise, or outlives its timeout.
pub async fn slow_snapshot_is_timeout(cache: &dyn Cache, timeout: Duration) {
    assert!(
        cache.capabilities().persistence,
        "the check needs a cache that snapshots"
    );
    let started = tokio::time::Instant::now();
    let err = cache
        .snapshot(timeout)
        .await
        .err()
        .unwrap_or_else(|| panic!("a save slower than its timeout {timeout:?} ended well"));
    assert_eq!(err.kind(), ErrorKind::Timeout, "{}", err.chain());
    let took = started.elapsed();
    assert!(
        took <= timeout + Duration::from_secs(2),
        "the snapshot gives up at its timeout {timeout:?}: {took:?}"
    );
}
