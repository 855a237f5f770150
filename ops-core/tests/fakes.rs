//! The fakes pass the same conformance suite the real backends run, and secrets stay secret
//! (the Platform suite on the fake is in `platform_conformance.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;

use ops_core::Pid;
use ops_core::cache::ClientInfo;
use ops_core::database::{DatabaseSize, Session, SessionState};
use ops_core::platform::{ConfigTarget, ConfigUpdate, WorkloadStatus};
use ops_core::testing::{
    FakeCache, FakeDatabase, FakeMetrics, FakePlatform, MemoryJournal, RecordingNotifier,
    ScriptedProbe, conformance,
};
use ops_core::{KeyPattern, Platform as _, WorkloadRef};

#[tokio::test]
async fn fake_database_conforms() {
    let app = "opsbook-conformance-idle";
    let mut idle = Session::new(Pid::new(4242).unwrap(), SessionState::Idle);
    idle.application = Some(app.to_owned());
    let db = FakeDatabase::default()
        .with_sessions(vec![idle])
        .with_database_sizes(vec![DatabaseSize::new("app", 8 << 20)]);
    conformance::database::run_all(&db, app).await;
}

#[tokio::test]
async fn fake_cache_conforms() {
    let cache = FakeCache::default()
        .with_keys("t1:keep:", 30)
        .with_keys("t1:drop:", 250);
    let mut idle = ClientInfo::new(7, "10.0.0.7:50000");
    idle.name = Some("opsbook-conformance-idle".to_owned());
    let cache = cache.with_clients(vec![idle, ClientInfo::new(8, "10.0.0.8:50000")]);
    conformance::cache::run_all(&cache, "t1:", 30, 250, "opsbook-conformance-idle").await;
}

#[tokio::test]
async fn memory_journal_conforms() {
    conformance::journal::run_all(&MemoryJournal::default()).await;
}

#[tokio::test]
async fn fakes_for_probe_metrics_and_notifier_conform() {
    conformance::probe::healthy_target_is_up(&ScriptedProbe::new("api-health")).await;
    conformance::probe::failing_target_is_down(&ScriptedProbe::always(
        "api-health",
        ops_core::probe::ProbeResult::down("503"),
    ))
    .await;
    conformance::metrics::scalar_arithmetic(&FakeMetrics::default()).await;
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
