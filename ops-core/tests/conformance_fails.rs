//! The database, cache and notifier checks fail against backends that drop the behaviour they
//! check (the Platform suite's broken fakes are in `platform_conformance.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use mockall::predicate::always;
use ops_core::Pid;
use ops_core::cache::{ClientInfo, MockCache};
use ops_core::database::{MockDatabase, Session, SessionState};
use ops_core::testing::{RecordingNotifier, conformance};

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
