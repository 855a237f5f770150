//! Database, cache and check runbooks over the fakes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default,
    clippy::assigning_clones,
    reason = "tests fail loudly; non-exhaustive types are built by assignment"
)]

use std::sync::Arc;
use std::time::Duration;

use ops_core::cache::{CacheInfo, ClientInfo};
use ops_core::database::{BackupInfo, RowRetention, Session, SessionState, TableSize};
use ops_core::platform::WorkloadStatus;
use ops_core::run::{ActionStatus, ApprovalPolicy, Mode, RunContext, RunOutcome};
use ops_core::runbooks::{
    RecoveryPlan, RunbookConfig, Targets, cache_failure, database_full, database_recovery,
    db_connections, db_maintenance, morning_checks, session_invalidation,
};
use ops_core::testing::{FakeCache, FakeDatabase, FakePlatform, ScriptedProbe};
use ops_core::{ErrorKind, KeyPattern, Pid, WorkloadRef};

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn redis() -> WorkloadRef {
    "prod/statefulset/redis".parse().unwrap()
}

fn execute() -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .build()
}

fn dry() -> RunContext {
    RunContext::builder().allow_volatile_journal().build()
}

fn session(pid: i32, state: SessionState, age_s: u64) -> Session {
    Session::new(Pid::new(pid).unwrap(), state)
        .aged(Duration::from_secs(age_s))
        .of("app", "shop")
}

fn exhausted_db() -> FakeDatabase {
    let mut sessions = vec![
        session(10, SessionState::IdleInTransaction, 3600),
        session(11, SessionState::IdleInTransaction, 60),
        session(12, SessionState::Active, 900),
    ];
    sessions.extend((100..117).map(|pid| session(pid, SessionState::Idle, 1800)));
    FakeDatabase::default()
        .with_max_connections(20)
        .with_sessions(sessions)
}

fn db_targets(db: Arc<FakeDatabase>) -> Targets {
    Targets::new(Arc::new(FakePlatform::default()), api()).with_database(db)
}

#[tokio::test(start_paused = true)]
async fn db_connections_terminates_stuck_and_idle_sessions_when_exhausted() {
    let db = Arc::new(exhausted_db());
    let report = db_connections(&execute(), &db_targets(Arc::clone(&db)))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let left: Vec<i32> = db.open_sessions().iter().map(|s| s.pid.get()).collect();
    assert_eq!(
        left,
        [11, 12],
        "the young transaction and the active query stay"
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.starts_with("20 of 20 usable connections in use"))
    );
    assert_eq!(report.actions_with(ActionStatus::Taken).count(), 2);
}

#[tokio::test(start_paused = true)]
async fn db_connections_dry_run_lists_every_session_it_would_terminate() {
    let db = Arc::new(exhausted_db());
    let report = db_connections(&dry(), &db_targets(Arc::clone(&db)))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert!(db.mutations().is_empty());
    assert_eq!(db.open_sessions().len(), 20);
    let planned: Vec<_> = report.actions_with(ActionStatus::Planned).collect();
    assert_eq!(planned[0].step, "terminate_idle_in_transaction");
    assert_eq!(
        planned[0].changes,
        ["terminate pid 10 (app on shop, idle in transaction for 3600s)"]
    );
    assert_eq!(planned[1].changes.len(), 17);
}

#[tokio::test(start_paused = true)]
async fn db_connections_leaves_idle_sessions_alone_below_the_critical_line() {
    let db = Arc::new(
        FakeDatabase::default()
            .with_max_connections(100)
            .with_sessions(vec![session(5, SessionState::Idle, 7200)]),
    );
    let report = db_connections(&execute(), &db_targets(Arc::clone(&db)))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Healthy);
    assert!(db.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn db_connections_reports_an_unreachable_database_without_acting() {
    let db = FakeDatabase::default();
    db.faults().fail_always("ping", ErrorKind::Unavailable);
    let db = Arc::new(db);
    let report = db_connections(&execute(), &db_targets(Arc::clone(&db)))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title == "database unreachable")
    );
    assert!(db.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn db_connections_terminate_failure_names_the_step() {
    let db = Arc::new(exhausted_db().fail_next("terminate", ErrorKind::PermissionDenied));
    let err = db_connections(&execute(), &db_targets(db))
        .await
        .unwrap_err();
    assert_eq!(err.error().step(), Some("terminate_idle_in_transaction"));
    assert_eq!(err.error().kind(), ErrorKind::PermissionDenied);
}

fn retention_config() -> RunbookConfig {
    let mut cfg = RunbookConfig::default();
    cfg.retention.push(
        RowRetention::new(
            "public.events".parse().unwrap(),
            "created_at".parse().unwrap(),
            Duration::from_secs(90 * 86_400),
        )
        .with_batch_size(5_000),
    );
    cfg
}

#[tokio::test(start_paused = true)]
async fn database_full_applies_retention_then_plain_vacuum_never_vacuum_full() {
    let mut bloated = TableSize::new("public.audit".parse().unwrap(), 1 << 30);
    bloated.live_rows = 100;
    bloated.dead_rows = 900;
    let db = Arc::new(
        FakeDatabase::default()
            .with_old_rows("public.events".parse().unwrap(), 42_000)
            .with_tables(vec![bloated]),
    );
    let report = database_full(
        &execute(),
        &db_targets(Arc::clone(&db)).with_config(retention_config()),
    )
    .await
    .unwrap();
    assert_eq!(
        db.mutations(),
        [
            "delete_older_than public.events rows=42000",
            "maintain VACUUM (ANALYZE) \"public\".\"events\"",
            "maintain VACUUM (ANALYZE) \"public\".\"audit\"",
        ]
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("VACUUM FULL was not run"))
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title == "public.audit has 90% dead rows")
    );
}

#[tokio::test(start_paused = true)]
async fn database_full_dry_run_counts_rows_and_deletes_nothing() {
    let db =
        Arc::new(FakeDatabase::default().with_old_rows("public.events".parse().unwrap(), 42_000));
    let report = database_full(
        &dry(),
        &db_targets(Arc::clone(&db)).with_config(retention_config()),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert!(db.mutations().is_empty());
    assert!(
        report.actions[0].changes[0]
            .starts_with("delete 42000 rows from public.events where created_at")
    );
}

#[tokio::test(start_paused = true)]
async fn database_full_without_retention_rules_deletes_nothing() {
    let db =
        Arc::new(FakeDatabase::default().with_old_rows("public.events".parse().unwrap(), 42_000));
    let report = database_full(&execute(), &db_targets(Arc::clone(&db)))
        .await
        .unwrap();
    assert!(
        db.mutations().is_empty(),
        "deleting data is never a default"
    );
    assert_eq!(report.outcome, RunOutcome::Healthy);
}

#[tokio::test(start_paused = true)]
async fn db_maintenance_turns_on_slow_query_logging_and_reports_missing_statistics() {
    let db = Arc::new(FakeDatabase::default().with_slow_queries(None));
    let report = db_maintenance(&execute(), &db_targets(Arc::clone(&db)))
        .await
        .unwrap();
    assert_eq!(
        db.mutations(),
        ["set_setting log_min_duration_statement=1000"]
    );
    let missing = report
        .findings
        .iter()
        .find(|f| f.title == "slow-query statistics unavailable")
        .unwrap();
    assert!(
        missing.evidence[0].contains("shared_preload_libraries"),
        "the error carries the fix"
    );
}

fn recovery_targets(db: Arc<FakeDatabase>, platform: Arc<FakePlatform>) -> Targets {
    let mut cfg =
        RunbookConfig::default().with_verify(2, Duration::from_secs(1), Duration::from_secs(30));
    cfg.recovery = Some(RecoveryPlan::new(
        "/backups/shop.dump",
        "shop".parse().unwrap(),
    ));
    let probe = ScriptedProbe::tracking("api", Arc::clone(&platform), api());
    Targets::new(platform, api())
        .with_database(db)
        .with_probe(Arc::new(probe))
        .with_config(cfg)
}

#[tokio::test(start_paused = true)]
async fn database_recovery_stops_restores_starts_and_verifies_in_order() {
    let db = Arc::new(FakeDatabase::default().with_backup(BackupInfo::new(
        "/backups/shop.dump",
        "ab".repeat(32),
        4096,
    )));
    let platform =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 2)));
    let report = database_recovery(
        &execute(),
        &recovery_targets(Arc::clone(&db), Arc::clone(&platform)),
    )
    .await
    .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        platform.mutations(),
        ["stop prod/deployment/api", "start prod/deployment/api"]
    );
    assert_eq!(db.mutations(), ["restore /backups/shop.dump into shop"]);
    let order: Vec<&str> = report.actions.iter().map(|a| a.step.as_str()).collect();
    assert_eq!(order, ["stop_application", "restore", "start_application"]);
}

#[tokio::test(start_paused = true)]
async fn database_recovery_refuses_an_unverified_backup_before_touching_anything() {
    let db = Arc::new(FakeDatabase::default()); // the backup is unknown: verification fails
    let platform =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 2)));
    let err = database_recovery(
        &execute(),
        &recovery_targets(Arc::clone(&db), Arc::clone(&platform)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error().step(), Some("verify_backup"));
    assert!(platform.mutations().is_empty());
    assert!(db.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn database_recovery_restarts_the_app_even_when_the_restore_is_denied() {
    let db = Arc::new(FakeDatabase::default().with_backup(BackupInfo::new(
        "/backups/shop.dump",
        "ab".repeat(32),
        4096,
    )));
    let platform =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 2)));
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::allow_steps_anywhere([
            "stop_application",
            "start_application",
        ]))
        .build();
    let report = database_recovery(
        &ctx,
        &recovery_targets(Arc::clone(&db), Arc::clone(&platform)),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert_eq!(
        platform.mutations(),
        ["stop prod/deployment/api", "start prod/deployment/api"]
    );
    assert!(db.mutations().is_empty());
}

fn full_cache() -> FakeCache {
    let mut info = CacheInfo::default();
    info.version = "7.0.15".to_owned();
    info.max_clients = 100;
    info.connected_clients = 95;
    info.memory.used_bytes = 95 << 20;
    info.memory.max_bytes = 100 << 20;
    info.memory.policy = "noeviction".to_owned();
    info.persistence.last_bgsave_ok = true;
    let mut idle = ClientInfo::new(7, "10.0.0.7:5000");
    idle.idle = Duration::from_secs(3600);
    FakeCache::default()
        .with_info(info)
        .with_clients(vec![idle, ClientInfo::new(8, "10.0.0.8:5000")])
        .with_keys("cache:", 50)
        .with_keys("session:", 20)
}

fn cache_targets(cache: Arc<FakeCache>, purgeable: bool) -> Targets {
    let mut cfg = RunbookConfig::default();
    if purgeable {
        cfg.cache
            .purgeable
            .push(KeyPattern::prefix("cache:").unwrap());
    }
    Targets::new(
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(redis(), 1))),
        redis(),
    )
    .with_cache(cache)
    .with_config(cfg)
}

#[tokio::test(start_paused = true)]
async fn cache_failure_purges_only_disposable_keys_and_kills_idle_clients() {
    let cache = Arc::new(full_cache());
    let report = cache_failure(&execute(), &cache_targets(Arc::clone(&cache), true))
        .await
        .unwrap();
    assert_eq!(cache.len(), 20, "sessions survive; only cache:* went");
    assert_eq!(
        cache.mutations(),
        ["purge cache:* deleted=50", "kill_clients 1"]
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title == "memory at 95% of maxmemory")
    );
    assert!(
        !cache.calls().iter().any(|c| c.starts_with("flush")),
        "never FLUSHDB"
    );
}

#[tokio::test(start_paused = true)]
async fn cache_failure_never_plans_or_kills_clients_in_use() {
    let mut busy = Vec::new();
    for (id, flags) in [(20, "P"), (21, "b"), (22, "S"), (23, "M"), (24, "O")] {
        let mut c = ClientInfo::new(id, format!("10.0.0.{id}:6000"));
        c.idle = Duration::from_secs(86_400);
        c.flags = ops_core::cache::ClientFlags::parse(flags);
        busy.push(c);
    }
    let mut idle = ClientInfo::new(7, "10.0.0.7:5000");
    idle.idle = Duration::from_secs(3600);
    busy.push(idle);
    let mut info = CacheInfo::default();
    info.max_clients = 10;
    info.connected_clients = 10;
    let cache = Arc::new(FakeCache::default().with_info(info).with_clients(busy));
    let plan = cache_failure(&dry(), &cache_targets(Arc::clone(&cache), false))
        .await
        .unwrap();
    let planned = plan
        .actions
        .iter()
        .find(|a| a.step == "kill_idle_clients")
        .expect("a planned kill");
    assert_eq!(planned.changes.len(), 1, "{:?}", planned.changes);
    assert!(planned.changes[0].starts_with("kill client 7 "));
    cache_failure(&execute(), &cache_targets(Arc::clone(&cache), false))
        .await
        .unwrap();
    assert_eq!(cache.mutations(), ["kill_clients 1"]);
    let left = ops_core::Cache::clients(
        &*cache,
        &ops_core::cache::ClientFilter::all().including_in_use(),
    )
    .await
    .unwrap();
    assert_eq!(left.len(), 5, "every client in use is still connected");
}

#[tokio::test(start_paused = true)]
async fn cache_failure_without_disposable_patterns_only_advises() {
    let cache = Arc::new(full_cache());
    let report = cache_failure(&execute(), &cache_targets(Arc::clone(&cache), false))
        .await
        .unwrap();
    assert_eq!(cache.len(), 70);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("no disposable key patterns configured"))
    );
}

#[tokio::test(start_paused = true)]
async fn cache_failure_restarts_an_unreachable_cache_and_pings_again() {
    let cache = FakeCache::default();
    cache.faults().fail_next("ping", ErrorKind::Unavailable);
    cache.faults().fail_next("ping", ErrorKind::Unavailable);
    cache.faults().fail_next("ping", ErrorKind::Unavailable);
    let cache = Arc::new(cache);
    let targets = cache_targets(Arc::clone(&cache), false);
    let report = cache_failure(&execute(), &targets).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.step == "restart_cache" && a.status == ActionStatus::Taken)
    );
}

#[tokio::test(start_paused = true)]
async fn session_invalidation_dry_run_counts_and_samples_without_deleting() {
    let cache = Arc::new(
        FakeCache::default()
            .with_keys("session:", 12)
            .with_keys("user:", 3),
    );
    let report = session_invalidation(&dry(), &cache_targets(Arc::clone(&cache), false))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Planned);
    assert_eq!(cache.len(), 15);
    assert!(
        report.actions[0].changes[0]
            .starts_with("unlink 12 keys matching session:* (e.g. session:0")
    );
}

#[tokio::test(start_paused = true)]
async fn session_invalidation_never_deletes_every_key_unless_configured() {
    // Every spelling of "all keys" a configuration may hold: `*` reads back as match_all and
    // is refused by the runbook; the others are refused when the configuration is read.
    for spelled in ["?*", "*?", "*?*", "[^]*", "**"] {
        let json = format!(r#"{{"cache": {{"session_pattern": "{spelled}"}}}}"#);
        assert!(
            serde_json::from_str::<RunbookConfig>(&json).is_err(),
            "{spelled} accepted"
        );
    }
    let cfg: RunbookConfig =
        serde_json::from_str(r#"{"cache": {"session_pattern": "*"}}"#).unwrap();
    assert!(cfg.cache.session_pattern.is_match_all());
    let cache = Arc::new(
        FakeCache::default()
            .with_keys("session:", 3)
            .with_keys("user:", 3),
    );
    let targets = cache_targets(Arc::clone(&cache), false).with_config(cfg.clone());
    let err = session_invalidation(&execute(), &targets)
        .await
        .unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::InvalidInput);
    assert!(
        err.error().chain().contains("allow_match_all"),
        "{}",
        err.error().chain()
    );
    assert_eq!(cache.len(), 6, "nothing deleted");
    assert!(cache.mutations().is_empty());

    let mut allowed = cfg;
    allowed.cache.allow_match_all = true;
    let targets = cache_targets(Arc::clone(&cache), false).with_config(allowed);
    let report = session_invalidation(&execute(), &targets).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Recovered);
    assert_eq!(cache.len(), 0, "explicitly allowed, every key goes");
}

#[tokio::test(start_paused = true)]
async fn morning_checks_flags_problems_and_never_changes_anything() {
    let cache = Arc::new(full_cache());
    let db = Arc::new(exhausted_db());
    let platform =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::crash_looping(api(), 2)));
    let targets = Targets::new(Arc::clone(&platform) as _, api())
        .with_probe(Arc::new(ScriptedProbe::tracking(
            "api",
            Arc::clone(&platform),
            api(),
        )))
        .with_database(Arc::clone(&db) as _)
        .with_cache(Arc::clone(&cache) as _);
    let report = morning_checks(&execute(), &targets).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(
        platform.mutations().is_empty()
            && db.mutations().is_empty()
            && cache.mutations().is_empty()
    );
    assert!(report.actions.is_empty());
    let titles: Vec<&str> = report.findings.iter().map(|f| f.title.as_str()).collect();
    assert!(
        titles.contains(&"database connections 20/20 (100%)"),
        "{titles:?}"
    );
    assert!(titles.iter().any(|t| t.starts_with("health check down")));
}

fn error_rate_targets(platform: Arc<FakePlatform>, rate: f64) -> Targets {
    use ops_core::metrics::{MetricQuery, MetricWindow};
    let metrics = ops_core::testing::FakeMetrics::default().with_scalar(
        &MetricQuery::error_rate("api", &MetricWindow::minutes(5)),
        rate,
    );
    let probe = ScriptedProbe::tracking("api", Arc::clone(&platform), api());
    Targets::new(platform, api())
        .with_metrics(Arc::new(metrics))
        .with_probe(Arc::new(probe))
        .with_config(RunbookConfig::default().with_verify(
            2,
            Duration::from_secs(1),
            Duration::from_secs(30),
        ))
}

#[tokio::test(start_paused = true)]
async fn high_error_rate_rolls_back_a_recent_deploy() {
    let platform = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_previous_revision(&api(), 0, vec!["api:1.4.1".to_owned()])
            .deployed_at(
                &api(),
                jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10),
            ),
    );
    let report = ops_core::runbooks::high_error_rate(
        &execute(),
        &error_rate_targets(Arc::clone(&platform), 0.12),
    )
    .await
    .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert_eq!(
        report.severity,
        Some(ops_core::incident::Severity::High),
        "12% is the seeds' P1"
    );
    assert_eq!(platform.mutations(), ["rollback prod/deployment/api to 0"]);
}

#[tokio::test(start_paused = true)]
async fn high_error_rate_without_a_suspect_reports_and_does_nothing() {
    let platform = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_previous_revision(&api(), 0, vec!["api:1.4.1".to_owned()])
            .deployed_at(
                &api(),
                jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48),
            ),
    );
    let report = ops_core::runbooks::high_error_rate(
        &execute(),
        &error_rate_targets(Arc::clone(&platform), 0.06),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert_eq!(report.severity, Some(ops_core::incident::Severity::Medium));
    assert!(platform.mutations().is_empty());
    assert!(report.summary.contains("no automatic action"));
}

#[tokio::test(start_paused = true)]
async fn high_error_rate_below_the_lowest_line_is_healthy_and_a_failed_query_is_an_error() {
    let platform =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 1)));
    let report = ops_core::runbooks::high_error_rate(
        &execute(),
        &error_rate_targets(Arc::clone(&platform), 0.004),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, RunOutcome::Healthy);
    let failing = error_rate_targets(Arc::clone(&platform), 0.5);
    let metrics =
        ops_core::testing::FakeMetrics::default().fail_next("query", ErrorKind::InvalidInput);
    let failing = failing.with_metrics(Arc::new(metrics));
    let err = ops_core::runbooks::high_error_rate(&execute(), &failing)
        .await
        .unwrap_err();
    assert_eq!(err.error().step(), Some("error_rate"));
}

#[tokio::test(start_paused = true)]
async fn oom_restarts_oom_killed_instances_and_dry_run_only_plans() {
    use ops_core::platform::{InstanceStatus, Termination};
    let status = WorkloadStatus::new(api(), 1).with_instance(
        InstanceStatus::running("api-0")
            .with_restarts(3)
            .terminated(Termination::oom_killed()),
    );
    let platform = Arc::new(FakePlatform::default().with_workload(status));
    let probe = Arc::new(ScriptedProbe::new("api"));
    let t = Targets::new(Arc::clone(&platform) as _, api()).with_probe(probe);
    let plan = ops_core::runbooks::oom(&dry(), &t).await.unwrap();
    assert_eq!(plan.outcome, RunOutcome::Planned);
    assert!(platform.mutations().is_empty());
    let report = ops_core::runbooks::oom(&execute(), &t).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Recovered);
    assert_eq!(
        platform.mutations(),
        ["rollout_restart prod/deployment/api"]
    );
    let f = report
        .findings
        .iter()
        .find(|f| f.title == "memory exhaustion")
        .unwrap();
    assert!(
        f.evidence
            .iter()
            .any(|e| e.contains("a restart only buys time"))
    );
}

#[tokio::test]
async fn certificate_expiry_grades_each_endpoint() {
    use ops_core::probe::{Observation, ProbeResult};
    let t = Targets::new(Arc::new(FakePlatform::default()), api())
        .with_check(Arc::new(ScriptedProbe::always("tls-a", ProbeResult::up())))
        .with_check(Arc::new(ScriptedProbe::always(
            "tls-b",
            ProbeResult::degraded("expires in 3 days").with_observation(Observation::new(
                "days_left",
                "3",
                false,
            )),
        )))
        .with_check(Arc::new(ScriptedProbe::always(
            "tls-c",
            ProbeResult::down("certificate expired 2 days ago"),
        )));
    let report = ops_core::runbooks::certificate_expiry(&execute(), &t)
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert_eq!(
        report.severity,
        Some(ops_core::incident::Severity::High),
        "an expired certificate is P1"
    );
    let b = report
        .findings
        .iter()
        .find(|f| f.title.starts_with("tls-b"))
        .unwrap();
    assert_eq!(b.level, ops_core::run::FindingLevel::Warning);
    assert_eq!(b.evidence, ["days_left = 3 (failed)"]);
    assert!(report.actions.is_empty(), "read-only");
    let none = Targets::new(Arc::new(FakePlatform::default()), api());
    assert_eq!(
        ops_core::runbooks::certificate_expiry(&execute(), &none)
            .await
            .unwrap_err()
            .error()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn network_connectivity_includes_the_service_probe_and_counts_failed_checks() {
    use ops_core::probe::ProbeResult;
    let t = Targets::new(Arc::new(FakePlatform::default()), api())
        .with_probe(Arc::new(ScriptedProbe::always("api", ProbeResult::up())))
        .with_check(Arc::new(ScriptedProbe::always(
            "tcp-db",
            ProbeResult::down("connection refused"),
        )))
        .with_check(Arc::new(
            ScriptedProbe::new("tcp-cache").fail_next(ErrorKind::InvalidInput),
        ));
    let report = ops_core::runbooks::network_connectivity(&execute(), &t)
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(
        report.summary.starts_with("2 of 3 path(s) fail"),
        "{}",
        report.summary
    );
    assert_eq!(report.timeline.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn secret_rotation_rolls_out_the_new_value_without_ever_showing_it() {
    use ops_core::platform::ConfigTarget;
    use ops_core::runbooks::SecretRotation;
    let journal = Arc::new(ops_core::testing::MemoryJournal::default());
    let platform =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 2)));
    let mut cfg =
        RunbookConfig::default().with_verify(2, Duration::from_secs(1), Duration::from_secs(30));
    cfg.rotation = Some(SecretRotation::new(
        ConfigTarget::Env,
        "DB_PASSWORD",
        "hunter2-rotated",
    ));
    let probe = ScriptedProbe::tracking("api", Arc::clone(&platform), api());
    let t = Targets::new(Arc::clone(&platform) as _, api())
        .with_probe(Arc::new(probe))
        .with_config(cfg);
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .journal(Arc::clone(&journal) as _)
        .build();
    let report = ops_core::runbooks::secret_rotation(&ctx, &t).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    assert!(
        platform.mutations()[0]
            .starts_with("update_config prod/deployment/api set=[\"DB_PASSWORD\"]")
    );
    let everything = format!(
        "{}{}{:?}{:?}{t:?}",
        report.to_markdown(),
        report.to_json().unwrap(),
        journal.all(),
        platform.mutations()
    );
    assert!(!everything.contains("hunter2"), "the secret leaked");
}

#[tokio::test(start_paused = true)]
async fn secret_rotation_on_a_platform_without_durable_config_says_first_to_change_the_definition()
{
    use ops_core::platform::{ConfigTarget, PlatformCapabilities};
    use ops_core::runbooks::SecretRotation;
    let mut caps = PlatformCapabilities::all();
    caps.durable_config = false;
    let platform = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 1))
            .with_capabilities(caps),
    );
    let mut cfg =
        RunbookConfig::default().with_verify(2, Duration::from_secs(1), Duration::from_secs(30));
    cfg.rotation = Some(SecretRotation::new(ConfigTarget::Env, "API_TOKEN", "new"));
    let probe = ScriptedProbe::tracking("api", Arc::clone(&platform), api());
    let t = Targets::new(Arc::clone(&platform) as _, api())
        .with_probe(Arc::new(probe))
        .with_config(cfg);
    for ctx in [dry(), execute()] {
        let report = ops_core::runbooks::secret_rotation(&ctx, &t).await.unwrap();
        assert!(
            report
                .summary
                .starts_with("Do not revoke the old API_TOKEN yet: first set the new value in the definition of prod/deployment/api."),
            "{}",
            report.to_markdown()
        );
        assert!(
            !report
                .summary
                .contains("revoke the old value at its issuer now")
        );
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.title == "the new API_TOKEN will not last on its own")
        );
    }
}

fn latency_targets(platform: Arc<FakePlatform>, p95_s: f64) -> Targets {
    use ops_core::metrics::{MetricQuery, MetricWindow};
    let metrics = ops_core::testing::FakeMetrics::default().with_scalar(
        &MetricQuery::p95_latency("api", &MetricWindow::minutes(5)),
        p95_s,
    );
    Targets::new(platform, api()).with_metrics(Arc::new(metrics))
}

#[tokio::test(start_paused = true)]
async fn high_latency_scales_out_cpu_bound_instances_and_does_not_claim_recovery_early() {
    let platform = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_cpu(&api(), 0.95),
    );
    let report =
        ops_core::runbooks::high_latency(&execute(), &latency_targets(Arc::clone(&platform), 6.0))
            .await
            .unwrap();
    assert_eq!(platform.mutations(), ["scale prod/deployment/api 2->3"]);
    assert_eq!(
        report.severity,
        Some(ops_core::incident::Severity::High),
        "p95 6 s is past the seeds' 5 s line"
    );
    assert_eq!(
        report.outcome,
        RunOutcome::Unresolved,
        "the p95 window has not moved yet"
    );
    assert!(report.summary.contains("run this again"));
}

#[tokio::test(start_paused = true)]
async fn high_latency_compares_cpu_with_the_limit_when_there_is_one() {
    // 0.45 cores is idle for a whole core but 90 % of a half-core limit.
    let limited = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_cpu(&api(), 0.45)
            .with_cpu_limit(&api(), 0.5),
    );
    let report =
        ops_core::runbooks::high_latency(&execute(), &latency_targets(Arc::clone(&limited), 6.0))
            .await
            .unwrap();
    assert_eq!(limited.mutations(), ["scale prod/deployment/api 2->3"]);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("90% of the CPU limit"))
    );
    let unlimited = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_cpu(&api(), 0.45),
    );
    let report =
        ops_core::runbooks::high_latency(&execute(), &latency_targets(Arc::clone(&unlimited), 6.0))
            .await
            .unwrap();
    assert!(unlimited.mutations().is_empty());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("compared in cores"))
    );
}

/// Scales the workload to 5 behind the runbook's back while it asks, then approves.
#[derive(Debug)]
struct ScalesWhileAsked(Arc<FakePlatform>);

#[async_trait::async_trait]
impl ops_core::run::Approver for ScalesWhileAsked {
    async fn decide(&self, request: &ops_core::run::ApprovalRequest) -> ops_core::run::Decision {
        if request.step == "scale_out" {
            use ops_core::Platform as _;
            let _ = self
                .0
                .scale(&api(), 5, ops_core::platform::ScaleOptions::default())
                .await;
        }
        ops_core::run::Decision::approve("test")
    }
}

#[tokio::test(start_paused = true)]
async fn high_latency_scales_from_the_count_it_planned_or_not_at_all() {
    let platform = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_cpu(&api(), 0.95),
    );
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ScalesWhileAsked(Arc::clone(&platform)))
        .build();
    let outcome =
        ops_core::runbooks::high_latency(&ctx, &latency_targets(Arc::clone(&platform), 6.0)).await;
    // The plan said 2 -> 3; someone made it 5 meanwhile: the runbook must not set 3.
    assert_eq!(platform.mutations(), ["scale prod/deployment/api 2->5"]);
    let failure = outcome.expect_err("a stale plan fails the step");
    assert_eq!(failure.error().kind(), ErrorKind::Conflict);
}

#[tokio::test(start_paused = true)]
async fn high_latency_does_not_scale_when_not_cpu_bound_and_dry_run_plans_the_scale() {
    let idle = Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 2)));
    let report =
        ops_core::runbooks::high_latency(&execute(), &latency_targets(Arc::clone(&idle), 3.5))
            .await
            .unwrap();
    assert!(idle.mutations().is_empty());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("not CPU-bound"))
    );
    let busy = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_cpu(&api(), 1.5),
    );
    let plan = ops_core::runbooks::high_latency(&dry(), &latency_targets(Arc::clone(&busy), 3.5))
        .await
        .unwrap();
    assert_eq!(plan.outcome, RunOutcome::Planned);
    assert!(busy.mutations().is_empty());
    let scale = plan.actions.iter().find(|a| a.step != "notify").unwrap();
    assert_eq!(scale.changes, ["prod/deployment/api: replicas 2 -> 3"]);
}

#[tokio::test(start_paused = true)]
async fn high_latency_treats_an_unreadable_cpu_as_unknown_not_as_idle() {
    let platform = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_cpu(&api(), 1.5),
    );
    platform
        .faults()
        .fail_always("resource_usage", ErrorKind::Unavailable);
    let report =
        ops_core::runbooks::high_latency(&execute(), &latency_targets(Arc::clone(&platform), 6.0))
            .await
            .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(platform.mutations().is_empty(), "acted on a guess");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("CPU usage unknown")),
        "{}",
        report.to_markdown()
    );
    assert!(
        !report.to_markdown().contains("not CPU-bound"),
        "a failed read became a finding: {}",
        report.to_markdown()
    );
}
