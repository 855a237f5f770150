//! The fakes pass the same conformance suite the real backends run, and secrets stay secret
//! (the database fake's run is in `database_conformance.rs`, the Platform suite on the fake
//! in `platform_conformance.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;
use std::time::Duration;

use ops_core::cache::{ClientInfo, FlushScope};
use ops_core::metrics::MetricQuery;
use ops_core::platform::{ConfigTarget, ConfigUpdate, WorkloadStatus};
use ops_core::probe::{Observation, ProbeResult};
use ops_core::testing::{
    FakeCache, FakeMetrics, FakePlatform, MemoryJournal, RecordingNotifier, ScriptedProbe,
    conformance,
};
use ops_core::{ErrorKind, KeyPattern, Platform as _, WorkloadRef};

mod support;

#[tokio::test(start_paused = true)]
async fn fake_cache_conforms() {
    let cache = FakeCache::default()
        .with_keys("t1:keep:", 30)
        .with_keys("t1:drop:", 250)
        .with_keys("t1:slow:", 60);
    let mut idle = ClientInfo::new(7, "10.0.0.7:50000");
    idle.name = Some("opsbook-conformance-idle".to_owned());
    let cache = cache.with_clients(vec![idle, ClientInfo::new(8, "10.0.0.8:50000")]);
    conformance::cache::run_all(&cache, "t1:", 30, 250, "opsbook-conformance-idle").await;
    conformance::cache::purge_honours_its_options(&cache, "t1:", 60).await;
}

#[tokio::test(start_paused = true)]
async fn fake_cache_snapshot_times_out_on_a_slow_save() {
    let cache = FakeCache::default().with_save_taking(Duration::from_secs(60));
    conformance::cache::slow_snapshot_is_timeout(&cache, Duration::from_secs(2)).await;
}

#[tokio::test(start_paused = true)]
async fn fake_cache_flushes_exactly_its_scope() {
    for scope in [FlushScope::Database, FlushScope::All] {
        let db0 = FakeCache::default().with_keys("t2:flush:", 20);
        let db1 = db0.database(1).with_keys("t2:flush:", 20);
        conformance::cache::flush_empties_exactly_its_scope(&db0, &db1, "t2:", 20, scope).await;
    }
}

#[tokio::test]
async fn memory_journal_conforms() {
    conformance::journal::run_all(&MemoryJournal::default()).await;
}

#[tokio::test]
async fn fakes_for_probe_and_notifier_conform() {
    conformance::probe::healthy_target_is_up(&ScriptedProbe::new("api-health")).await;
    conformance::probe::failing_target_is_down(&ScriptedProbe::always(
        "api-health",
        ops_core::probe::ProbeResult::down("503"),
    ))
    .await;
    conformance::notifier::delivers_trigger_and_resolve(&RecordingNotifier::default()).await;
    let n = RecordingNotifier::default();
    let inbox = || {
        n.sent()
            .iter()
            .map(|m| format!("{} {} {:?}", m.title, m.dedup_key, m.status))
            .collect()
    };
    conformance::notifier::receiver_gets_trigger_then_resolve(&n, &inbox, &[]).await;
}

/// A fake programmed with what Prometheus answers to the suite's queries passes the whole
/// metrics suite (the fake evaluates nothing: the answers follow the asked time and steps).
#[tokio::test]
async fn programmed_fake_metrics_conform() {
    let q = |text: &str| MetricQuery::new(text).unwrap();
    let metrics = FakeMetrics::default()
        .with_scalar(&q("1+1"), 2.0)
        .with_scalar(&q("0/0"), f64::NAN)
        .with_series(&q("vector(1)"), [], 1.0)
        .rejecting(&q("sum("));
    conformance::metrics::run_all(&metrics).await;
    let refused = FakeMetrics::default().fail_next("query", ErrorKind::Unavailable);
    conformance::metrics::refused_is_unavailable(&refused).await;
}

#[tokio::test(start_paused = true)]
async fn fake_probe_degrades_on_a_soft_failure() {
    let slow = ScriptedProbe::always(
        "api-latency",
        ProbeResult::degraded("p95 2.4s over the 500ms budget").with_observation(
            Observation::new("response_time", "2.4s", false).with_condition("<= 500ms"),
        ),
    );
    conformance::probe::soft_failure_is_degraded(&slow).await;
}

/// A notifier with the shape of the HTTP ones (retry policy, per-attempt timeout, deadline)
/// delivering to an in-memory receiver passes every delivery-failure check.
#[tokio::test(start_paused = true)]
async fn inbox_notifier_passes_the_delivery_failure_checks() {
    let (notifier, inbox, limits) = support::InboxNotifier::new(support::Flaws::default());
    conformance::notifier::delivery_failures(&notifier, &*inbox, limits, &[support::SECRET]).await;
}

#[tokio::test]
async fn purge_pattern_escaping_keeps_literal_prefixes_literal() {
    let cache = FakeCache::default()
        .with_keys("a*b:", 3)
        .with_keys("aXb:", 4);
    let purged = ops_core::Cache::purge(
        &cache,
        &KeyPattern::prefix("a*b:").unwrap(),
        &ops_core::cache::PurgeOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(purged.deleted, 3, "the * in the prefix is literal");
    assert_eq!(cache.len(), 4);
}

#[tokio::test]
async fn config_values_never_appear_in_debug_errors_or_mutation_logs() {
    let api: WorkloadRef = "prod/deployment/api".parse().unwrap();
    let platform =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api.clone(), 1)));
    let update = ConfigUpdate::new(ConfigTarget::Env).set("DB_PASSWORD", "hunter2-s3cret");
    assert!(!format!("{update:?}").contains("hunter2"));
    let change = platform.update_config(&api, update).await.unwrap();
    assert_eq!(change.keys_set, ["DB_PASSWORD"]);
    assert!(!format!("{change:?}").contains("hunter2"));
    assert!(platform.mutations().iter().all(|m| !m.contains("hunter2")));
    let json = serde_json::to_string(&change).unwrap();
    assert!(!json.contains("hunter2"));
}
