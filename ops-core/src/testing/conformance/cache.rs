//! Conformance tests for [`Cache`] backends.
//!
//! Precondition of [`purge_is_exact`]: the caller has stored `keep` keys named
//! `{prefix}keep:{i}` and `drop` keys named `{prefix}drop:{i}` (the trait has no write
//! method; seed them with the backend's own client).

use crate::cache::{Cache, ClientFilter, PurgeOptions};
use crate::refs::KeyPattern;

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
    let pattern = |what: &str| {
        KeyPattern::prefix(&format!("{prefix}{what}:"))
            .unwrap_or_else(|e| panic!("bad key prefix: {}", e.chain()))
    };
    let (dropping, keeping) = (pattern("drop"), pattern("keep"));
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
    purge_is_exact(cache, prefix, keep, drop).await;
    clients_listing(cache, client).await;
    persistence_and_advice(cache).await;
    kill_ends_a_client(cache, client).await;
}
