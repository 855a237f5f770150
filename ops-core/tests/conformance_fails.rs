//! The database, cache and notifier checks fail against backends that drop the behaviour they
//! check (the Platform suite's broken fakes are in `platform_conformance.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mockall::predicate::always;
use ops_core::Pid;
use ops_core::cache::{ClientInfo, FlushScope, KeyCount, MockCache, PurgeOutcome};
use ops_core::database::{MockDatabase, Session, SessionState};
use ops_core::metrics::{MetricQuery, QueryResult, Sample};
use ops_core::probe::{Observation, ProbeResult};
use ops_core::testing::{FakeMetrics, RecordingNotifier, ScriptedProbe, conformance};

mod support;

const APP: &str = "opsbook-conformance-idle";

fn idle() -> Session {
    let mut s = Session::new(Pid::new(4242).unwrap(), SessionState::Idle);
    s.application = Some(APP.to_owned());
    s
}

/// A terminate that reports the session ended while it stays connected.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "still there after terminate")]
async fn a_terminate_that_ends_nothing_fails_the_database_check() {
    let mut db = MockDatabase::new();
    db.expect_sessions().returning(|_| Ok(vec![idle()]));
    db.expect_terminate()
        .with(always(), always())
        .returning(|_, _| Ok(vec![idle()]));
    conformance::database::terminate_ends_a_session(&db, APP).await;
}

/// Capabilities that claim slow queries the backend refuses.
#[tokio::test]
#[should_panic(expected = "slow_queries is claimed")]
async fn claimed_slow_queries_that_are_unsupported_fail_the_database_check() {
    let mut db = MockDatabase::new();
    db.expect_capabilities()
        .returning(ops_core::database::DatabaseCapabilities::all);
    db.expect_slow_queries().returning(|_| {
        Err(ops_core::OpsError::new(
            ops_core::ErrorKind::Unsupported,
            "mock",
            "slow_queries",
            "db",
        ))
    });
    conformance::database::capabilities_match_behaviour(&db).await;
}

fn named() -> ClientInfo {
    let mut c = ClientInfo::new(7, "10.0.0.7:50000");
    c.name = Some(APP.to_owned());
    c
}

/// A kill that reports the client killed while it stays connected.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "still connected after the kill")]
async fn a_kill_that_disconnects_nobody_fails_the_cache_check() {
    let mut cache = MockCache::new();
    cache.expect_clients().returning(|_| Ok(vec![named()]));
    cache.expect_kill_clients().returning(|_, _| Ok(vec![7]));
    conformance::cache::kill_ends_a_client(&cache, APP).await;
}

/// A client listing that does not show the caller's client.
#[tokio::test]
#[should_panic(expected = "is listed")]
async fn a_listing_without_the_callers_client_fails_the_cache_check() {
    let mut cache = MockCache::new();
    cache.expect_kill_clients().returning(|_, guard| {
        guard.require_bounded("mock", "kill_clients")?;
        Ok(Vec::new())
    });
    cache
        .expect_clients()
        .returning(|_| Ok(vec![ClientInfo::new(8, "10.0.0.8:50000")]));
    conformance::cache::clients_listing(&cache, APP).await;
}

/// A receiver that never gets the resolution.
#[tokio::test]
#[should_panic(expected = "got nothing for the resolution")]
async fn a_lost_resolution_fails_the_notifier_check() {
    let n = RecordingNotifier::default();
    let inbox = || {
        n.sent()
            .iter()
            .filter(|m| !m.resolved)
            .map(|m| format!("{} {}", m.title, m.dedup_key))
            .collect()
    };
    conformance::notifier::receiver_gets_trigger_then_resolve(&n, &inbox, &[]).await;
}

/// A delivery that carries a secret.
#[tokio::test]
#[should_panic(expected = "holds a secret")]
async fn a_delivery_with_a_secret_fails_the_notifier_check() {
    let n = RecordingNotifier::default();
    let inbox = || {
        n.sent()
            .iter()
            .map(|m| {
                format!(
                    "{} {} {:?} https://hooks/SECRETPATH",
                    m.title, m.dedup_key, m.status
                )
            })
            .collect()
    };
    conformance::notifier::receiver_gets_trigger_then_resolve(&n, &inbox, &["SECRETPATH"]).await;
}

/// A probe that always says up.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "after the target went down")]
async fn a_probe_that_never_sees_down_fails_the_probe_check() {
    let probe = ops_core::testing::ScriptedProbe::new("always-up");
    conformance::probe::sees_up_then_down(&probe, async {}, std::time::Duration::from_secs(5))
        .await;
}

/// A metrics backend that answers every query with nothing.
#[tokio::test]
#[should_panic(expected = "one sample")]
async fn metrics_that_answer_nothing_fail_the_metrics_check() {
    conformance::metrics::vector_and_range(&ops_core::testing::FakeMetrics::default()).await;
}

/// A cache whose count answers `n` until `gone` is set, then 0.
fn counting(n: u64, gone: &Arc<AtomicBool>) -> MockCache {
    let mut cache = MockCache::new();
    let gone = Arc::clone(gone);
    cache.expect_count().returning(move |_, _| {
        let left = if gone.load(Ordering::SeqCst) { 0 } else { n };
        Ok(KeyCount::new(left, left))
    });
    cache
}

/// A flush that answers `Ok` and deletes nothing.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "still there after flush")]
async fn a_flush_that_deletes_nothing_fails_the_cache_check() {
    let never = Arc::new(AtomicBool::new(false));
    let mut cache = counting(20, &never);
    cache.expect_flush().returning(|_| Ok(()));
    let other = counting(20, &never);
    conformance::cache::flush_empties_exactly_its_scope(
        &cache,
        &other,
        "t:",
        20,
        FlushScope::Database,
    )
    .await;
}

/// A flush of one database that empties every database.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "leaves another database's keys")]
async fn a_database_flush_that_empties_every_database_fails_the_cache_check() {
    let flushed = Arc::new(AtomicBool::new(false));
    let mut cache = counting(20, &flushed);
    let set = Arc::clone(&flushed);
    cache.expect_flush().returning(move |_| {
        set.store(true, Ordering::SeqCst);
        Ok(())
    });
    let other = counting(20, &flushed);
    conformance::cache::flush_empties_exactly_its_scope(
        &cache,
        &other,
        "t:",
        20,
        FlushScope::Database,
    )
    .await;
}

/// A sample that names a key twice.
#[tokio::test]
#[should_panic(expected = "each key once")]
async fn a_sample_with_a_key_twice_fails_the_cache_check() {
    let never = Arc::new(AtomicBool::new(false));
    let mut cache = counting(2, &never);
    cache
        .expect_sample()
        .returning(|_, _| Ok(vec!["t:drop:0".to_owned(), "t:drop:0".to_owned()]));
    conformance::cache::sample_agrees_with_count(&cache, "t:", 2, 2).await;
}

/// A sample that returns more keys than asked for.
#[tokio::test]
#[should_panic(expected = "at most n keys")]
async fn a_sample_over_its_limit_fails_the_cache_check() {
    let never = Arc::new(AtomicBool::new(false));
    let mut cache = counting(5, &never);
    cache.expect_sample().returning(|pattern, _| {
        let what = if pattern.as_str().contains("keep") {
            "keep"
        } else {
            "drop"
        };
        Ok((0..5).map(|i| format!("t:{what}:{i}")).collect())
    });
    conformance::cache::sample_agrees_with_count(&cache, "t:", 5, 5).await;
}

/// A purge that ignores its rate limit and timeout: everything at once.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "cannot be purged within 1 s")]
async fn a_purge_that_ignores_its_options_fails_the_cache_check() {
    let purged = Arc::new(AtomicBool::new(false));
    let mut cache = counting(60, &purged);
    let set = Arc::clone(&purged);
    cache.expect_purge().returning(move |_, _| {
        set.store(true, Ordering::SeqCst);
        Ok(PurgeOutcome::new(60, 60, 60, Duration::from_millis(1)))
    });
    conformance::cache::purge_honours_its_options(&cache, "t:", 60).await;
}

fn query(text: &str) -> MetricQuery {
    MetricQuery::new(text).unwrap()
}

/// A metrics source that answers a range query with the instant vector (no steps).
#[tokio::test]
#[should_panic(expected = "a range query is a matrix")]
async fn metrics_that_ignore_the_range_fail_the_metrics_check() {
    let one = Sample::new(
        std::collections::BTreeMap::default(),
        jiff::Timestamp::now(),
        1.0,
    );
    let metrics =
        FakeMetrics::default().with_result(&query("vector(1)"), QueryResult::Vector(vec![one]));
    conformance::metrics::vector_and_range(&metrics).await;
}

/// A metrics source that takes a query the server would reject.
#[tokio::test]
#[should_panic(expected = "a parse error")]
async fn metrics_that_accept_a_broken_query_fail_the_metrics_check() {
    conformance::metrics::rejected_query_is_invalid_input(&FakeMetrics::default()).await;
}

/// A metrics source that rejects instant queries but not the same query over a range.
#[tokio::test]
#[should_panic(expected = "a parse error over a range")]
async fn metrics_that_accept_a_broken_range_query_fail_the_metrics_check() {
    let metrics = FakeMetrics::default().fail_next("query", ops_core::ErrorKind::InvalidInput);
    conformance::metrics::rejected_query_is_invalid_input(&metrics).await;
}

/// A metrics source that answers `0/0` with nothing.
#[tokio::test]
#[should_panic(expected = "0/0 is the scalar NaN")]
async fn metrics_that_lose_nan_fail_the_metrics_check() {
    conformance::metrics::nan_is_a_value(&FakeMetrics::default()).await;
}

/// A probe that calls a soft failure down.
#[tokio::test]
#[should_panic(expected = "a soft failure is degraded")]
async fn a_probe_that_never_degrades_fails_the_probe_check() {
    let probe = ScriptedProbe::always("api-latency", ProbeResult::down("slow"));
    conformance::probe::soft_failure_is_degraded(&probe).await;
}

/// A degraded result that does not say which condition failed.
#[tokio::test]
#[should_panic(expected = "names the condition that failed")]
async fn a_degraded_result_without_its_condition_fails_the_probe_check() {
    let probe = ScriptedProbe::always(
        "api-latency",
        ProbeResult::degraded("slow").with_observation(Observation::new("status", "200", true)),
    );
    conformance::probe::soft_failure_is_degraded(&probe).await;
}

async fn broken_notifier(flaws: support::Flaws) {
    let (notifier, inbox, limits) = support::InboxNotifier::new(flaws);
    conformance::notifier::delivery_failures(&notifier, &*inbox, limits, &[support::SECRET]).await;
}

/// A notifier that retries at its own pace whatever `Retry-After` asks.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "waited for Retry-After")]
async fn a_notifier_that_ignores_retry_after_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        ignores_retry_after: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A notifier that retries a 400 until it goes through.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "was taken as delivered")]
async fn a_notifier_that_retries_client_errors_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        retries_client_errors: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A notifier whose errors are all `Backend`.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "400 is InvalidInput")]
async fn a_notifier_with_untyped_errors_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        untyped: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A notifier that shows its URL in errors.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "an error holds a secret")]
async fn a_notifier_that_shows_its_url_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        shows_url: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A notifier that waits for an answer forever.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "outlived its deadline")]
async fn a_notifier_without_a_timeout_fails_the_notifier_check() {
    broken_notifier(support::Flaws {
        no_timeout: true,
        ..support::Flaws::default()
    })
    .await;
}

/// A snapshot that waits for the save however long it takes.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "ended well")]
async fn a_snapshot_that_ignores_its_timeout_fails_the_cache_check() {
    let mut cache = MockCache::new();
    cache
        .expect_capabilities()
        .returning(ops_core::cache::CacheCapabilities::all);
    cache.expect_snapshot().returning(|_| {
        Ok(ops_core::cache::SnapshotOutcome::new(
            None,
            jiff::Timestamp::UNIX_EPOCH,
            Duration::from_secs(60),
        ))
    });
    conformance::cache::slow_snapshot_is_timeout(&cache, Duration::from_secs(2)).await;
}
