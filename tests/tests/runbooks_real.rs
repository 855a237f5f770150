//! The database and cache runbooks against real PostgreSQL and Redis (the platform side is a
//! fake: these tests prove the data-store steps, the compose tests prove the platform).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;
use std::time::Duration;

use ops_cache::RedisCacheBuilder;
use ops_core::database::RowRetention;
use ops_core::run::{ActionStatus, ApprovalPolicy, Mode, RunContext, RunOutcome};
use ops_core::runbooks::{
    RunbookConfig, Targets, cache_failure, database_full, db_connections, morning_checks,
    session_invalidation,
};
use ops_core::testing::{FakePlatform, MemoryJournal};
use ops_core::{KeyPattern, WorkloadRef};
use ops_db::PgDatabaseBuilder;
use ops_tests::{require, start_postgres, start_redis};
use sqlx::Connection as _;

fn execute() -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .journal(Arc::new(MemoryJournal::default()))
        .build()
}

fn targets() -> Targets {
    let api: WorkloadRef = "test/service/api".parse().unwrap();
    Targets::new(Arc::new(FakePlatform::default()), api)
}

/// A dry run (the in-memory journal is fine: nothing changes).
fn dry_run() -> RunContext {
    RunContext::builder().allow_volatile_journal().build()
}

/// Targets with `db` and the default configuration as changed by `configure`.
fn db_targets(db: &Arc<ops_db::PgDatabase>, configure: impl FnOnce(&mut RunbookConfig)) -> Targets {
    let mut cfg = RunbookConfig::default();
    configure(&mut cfg);
    targets()
        .with_database(Arc::clone(db) as _)
        .with_config(cfg)
}

/// The database as the least-privileged operator role of ops-db's README (`pg_monitor`,
/// `pg_signal_backend`, not a superuser): every database runbook here runs as it.
async fn operator_db(pg: &ops_tests::Postgres) -> Arc<ops_db::PgDatabase> {
    Arc::new(
        PgDatabaseBuilder::new(pg.operator_url().await.unwrap())
            .build()
            .unwrap(),
    )
}

/// A pool of the application: a role that is not a superuser (an operator may end its
/// sessions with `pg_signal_backend`; a superuser's only a superuser may end).
async fn app_pool(pg: &ops_tests::Postgres) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(6)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&pg.role_url("app", &[]).await.unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_connections_terminates_a_real_idle_in_transaction_session_and_never_ours() {
    let pg = require!(start_postgres().await);
    let db = operator_db(&pg).await;

    // A client that opened a transaction and went away: idle in transaction.
    let pool = app_pool(&pg).await;
    let mut stuck = pool.acquire().await.unwrap();
    sqlx::query("SET application_name = 'opsbook-stuck-client'")
        .execute(&mut *stuck)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut *stuck).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *stuck).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let t = db_targets(&db, |cfg| {
        cfg.db.idle_in_transaction_limit = Duration::from_secs(1);
    });

    // Dry run first: it names the session and terminates nothing.
    let plan = db_connections(&dry_run(), &t).await.unwrap();
    assert_eq!(plan.outcome, RunOutcome::Planned);
    let planned = plan
        .actions_with(ActionStatus::Planned)
        .next()
        .expect("a planned termination");
    assert_eq!(planned.step, "terminate_idle_in_transaction");
    assert_eq!(planned.changes.len(), 1, "{:?}", planned.changes);
    assert!(
        sqlx::query("SELECT 1").execute(&mut *stuck).await.is_ok(),
        "the dry run left it alone"
    );
    // That check reset the session's state clock; let it age past the limit again.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let report = db_connections(&execute(), &t).await.unwrap();
    let taken: Vec<_> = report.actions_with(ActionStatus::Taken).collect();
    assert_eq!(taken.len(), 1, "{}", report.to_markdown());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.starts_with("terminated 1 session(s)"))
    );
    let gone = sqlx::query("SELECT 1").execute(&mut *stuck).await;
    assert!(gone.is_err(), "the stuck session was really terminated");
    // Our own backend survived: the runbook's database handle still answers.
    ops_core::Database::ping(&*db).await.unwrap();
}

/// Open a session named `app` that begins a transaction and goes idle in it.
async fn idle_in_transaction(
    pool: &sqlx::PgPool,
    app: &str,
) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET application_name = '{app}'"
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_connections_terminates_exactly_the_approved_sessions_that_still_match() {
    let pg = require!(start_postgres().await);
    let db = operator_db(&pg).await;
    let pool = app_pool(&pg).await;
    let mut stuck = Vec::new();
    for n in 1..=3 {
        stuck.push(idle_in_transaction(&pool, &format!("opsbook-stuck-{n}")).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // While the approver looks at the plan (three sessions), a fourth session gets stuck and
    // ages past the limit, and the third one commits: it no longer matches.
    let third = Arc::new(tokio::sync::Mutex::new(stuck.pop().unwrap()));
    let newcomer = Arc::new(tokio::sync::Mutex::new(None));
    let approver = {
        let (third, newcomer, pool) = (Arc::clone(&third), Arc::clone(&newcomer), pool.clone());
        ops_core::run::CallbackApprover::new(move |req: ops_core::run::ApprovalRequest| {
            let (third, newcomer, pool) = (Arc::clone(&third), Arc::clone(&newcomer), pool.clone());
            async move {
                assert_eq!(req.changes.len(), 3, "{:?}", req.changes);
                let late = idle_in_transaction(&pool, "opsbook-stuck-late").await;
                *newcomer.lock().await = Some(late);
                sqlx::query("COMMIT")
                    .execute(&mut **third.lock().await)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(1500)).await;
                ops_core::run::Decision::approve("on-call")
            }
        })
    };
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(approver)
        .journal(Arc::new(MemoryJournal::default()))
        .build();
    let t = db_targets(&db, |cfg| {
        cfg.db.idle_in_transaction_limit = Duration::from_secs(1);
    });
    let report = db_connections(&ctx, &t).await.unwrap();

    for conn in &mut stuck {
        assert!(
            sqlx::query("SELECT 1").execute(&mut **conn).await.is_err(),
            "an approved, still-matching session survived: {}",
            report.to_markdown()
        );
    }
    sqlx::query("SELECT 1")
        .execute(&mut **third.lock().await)
        .await
        .expect("the session that stopped matching was left alone");
    sqlx::query("SELECT 1")
        .execute(&mut **newcomer.lock().await.as_mut().unwrap())
        .await
        .expect("the session nobody approved was left alone");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.starts_with("terminated 2 session(s)")),
        "{}",
        report.to_markdown()
    );
    assert!(
        report.findings.iter().any(|f| f
            .title
            .starts_with("1 approved session(s) no longer matched")),
        "{}",
        report.to_markdown()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_full_deletes_old_rows_in_batches_and_vacuums_on_real_postgres() {
    let pg = require!(start_postgres().await);
    let pool = pg.pool().await.unwrap();
    sqlx::query("CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, body text)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO events (created_at, body) SELECT now() - interval '200 days', 'old' FROM generate_series(1, 12000)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (created_at, body) SELECT now(), 'new' FROM generate_series(1, 800)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let db = operator_db(&pg).await;
    // The operator owns the tables it cleans up (VACUUM needs ownership, or MAINTAIN on 17+).
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE events OWNER TO \"{}_op\"",
        pg.database()
    )))
    .execute(&pool)
    .await
    .unwrap();
    let mut cfg = RunbookConfig::default();
    cfg.retention.push(
        RowRetention::new(
            "public.events".parse().unwrap(),
            "created_at".parse().unwrap(),
            Duration::from_secs(90 * 86_400),
        )
        .with_batch_size(5_000),
    );
    let t = targets().with_database(db).with_config(cfg);

    let plan = database_full(&dry_run(), &t).await.unwrap();
    assert!(
        plan.actions[0].changes[0].starts_with("delete 12000 rows from public.events"),
        "{:?}",
        plan.actions
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 12_800, "the dry run deleted nothing");

    let report = database_full(&execute(), &t).await.unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title == "deleted 12000 rows from public.events in 3 batches"),
        "{}",
        report.to_markdown()
    );
    let left: Vec<String> = sqlx::query_scalar("SELECT DISTINCT body FROM events")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, ["new"]);
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.step == "vacuum" && a.status == ActionStatus::Taken)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_invalidation_purges_only_sessions_on_real_redis() {
    let redis = require!(start_redis().await);
    let mut conn = redis.connection().await.unwrap();
    let prefix = redis.prefix().to_owned();
    let mut pipe = redis::pipe();
    for i in 0..2_000 {
        pipe.set(format!("{prefix}session:{i}"), "u").ignore();
    }
    for i in 0..300 {
        pipe.set(format!("{prefix}cart:{i}"), "c").ignore();
    }
    pipe.query_async::<()>(&mut conn).await.unwrap();

    let cache = Arc::new(
        RedisCacheBuilder::new()
            .with_url(redis.url())
            .build()
            .unwrap(),
    );
    let mut cfg = RunbookConfig::default();
    cfg.cache.session_pattern = KeyPattern::prefix(&format!("{prefix}session:")).unwrap();
    let t = targets().with_cache(cache).with_config(cfg);

    let plan = session_invalidation(&dry_run(), &t).await.unwrap();
    assert!(
        plan.actions[0].changes[0]
            .starts_with(&format!("unlink 2000 keys matching {prefix}session:*"))
    );
    let report = session_invalidation(&execute(), &t).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let sessions: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}session:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let carts: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}cart:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(sessions.is_empty());
    assert_eq!(carts.len(), 300, "nothing else was touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn morning_checks_and_cache_failure_read_real_servers() {
    let (pg, redis) = tokio::join!(start_postgres(), start_redis());
    let pg = require!(pg);
    let redis = require!(redis);
    let db = operator_db(&pg).await;
    let cache = Arc::new(
        RedisCacheBuilder::new()
            .with_url(redis.url())
            .build()
            .unwrap(),
    );
    let api: WorkloadRef = "test/service/api".parse().unwrap();
    let platform = Arc::new(
        FakePlatform::default()
            .with_workload(ops_core::platform::WorkloadStatus::healthy(api.clone(), 1)),
    );
    let t = Targets::new(platform, api)
        .with_database(db)
        .with_cache(Arc::clone(&cache) as _);

    let checks = morning_checks(&execute(), &t).await.unwrap();
    let titles: Vec<&str> = checks.findings.iter().map(|f| f.title.as_str()).collect();
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("database connections ")),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.starts_with("memory ")),
        "{titles:?}"
    );
    assert!(checks.actions.is_empty());

    let report = cache_failure(&execute(), &t).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Healthy,
        "{}",
        report.to_markdown()
    );
}

/// Runs `sql` on a connection of `pool` in a task of its own (a query that blocks or sleeps).
fn spawn_sql(
    pool: &sqlx::PgPool,
    sql: String,
) -> tokio::task::JoinHandle<Result<sqlx::postgres::PgQueryResult, sqlx::Error>> {
    let pool = pool.clone();
    tokio::spawn(async move { sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_connections_never_shows_the_passwords_in_session_queries() {
    const CANARY: &str = "CANARY-9d2c";
    let pg = require!(start_postgres().await);
    let db = operator_db(&pg).await;
    let pool = pg.pool().await.unwrap();
    sqlx::raw_sql("CREATE ROLE canary_role LOGIN PASSWORD 'initial'")
        .execute(&pool)
        .await
        .unwrap();
    // A transaction that changed the role's password and holds its row...
    let mut holder = pool.acquire().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; ALTER ROLE canary_role PASSWORD '{CANARY}-held'"
    )))
    .execute(&mut *holder)
    .await
    .unwrap();
    // ...a second ALTER ROLE waiting for it, and a slow query with a connection string.
    let waiting = spawn_sql(
        &pool,
        format!("ALTER ROLE canary_role PASSWORD '{CANARY}-waiting'"),
    );
    let sleeping = spawn_sql(
        &pool,
        format!("SELECT pg_sleep(30), 'host=db user=app password={CANARY}-literal'"),
    );
    let admin = pg.pool().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let active: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                 AND query LIKE '%CANARY%' AND now() - query_start > interval '1500 ms'",
            )
            .fetch_one(&admin)
            .await
            .unwrap();
            if active == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("both canary queries run");

    let t = db_targets(&db, |cfg| {
        cfg.db.long_query = Duration::from_secs(1);
    });
    let report = db_connections(&dry_run(), &t).await.unwrap();
    let long = report
        .findings
        .iter()
        .find(|f| f.title.contains("queries running longer than"))
        .unwrap_or_else(|| panic!("the canary queries are diagnosed: {}", report.to_markdown()));
    let evidence = long.evidence.join("\n");
    assert!(evidence.contains("PASSWORD '[redacted]'"), "{evidence}");
    assert!(evidence.contains("password=[redacted]"), "{evidence}");
    let shown = format!("{}\n{}", report.to_markdown(), report.to_json().unwrap());
    assert!(
        !shown.contains("CANARY"),
        "a password reached the report:\n{shown}"
    );

    sqlx::raw_sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut *holder)
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(30), waiting).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), sleeping).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_failure_never_plans_to_kill_subscribers_or_blocked_consumers() {
    use tokio::io::AsyncWriteExt as _;
    let redis = require!(start_redis().await);
    let cache = Arc::new(
        RedisCacheBuilder::new()
            .with_url(redis.url())
            .build()
            .unwrap(),
    );
    let addr = redis.url().trim_start_matches("redis://").to_owned();
    let mut clients = Vec::new();
    for (name, command) in [
        ("busy-subscriber", "SUBSCRIBE orders"),
        ("busy-consumer", "BLPOP jobs 0"),
        ("plain-idle", "PING"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(format!("CLIENT SETNAME {name}\r\n{command}\r\n").as_bytes())
            .await
            .unwrap();
        clients.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut cfg = RunbookConfig::default();
    // Any number of clients is "too many" here, and two seconds is "idle".
    cfg.cache.clients_critical = 0.0;
    cfg.cache.idle_client_limit = Duration::from_secs(1);
    let t = targets()
        .with_cache(Arc::clone(&cache) as _)
        .with_config(cfg);
    let report = cache_failure(&dry_run(), &t).await.unwrap();
    let plan = report
        .actions_with(ActionStatus::Planned)
        .find(|a| a.step == "kill_idle_clients")
        .unwrap_or_else(|| panic!("a planned kill: {}", report.to_markdown()));
    let listed = ops_core::Cache::clients(
        &*cache,
        &ops_core::cache::ClientFilter::all().including_in_use(),
    )
    .await
    .unwrap();
    let id_of = |name: &str| {
        listed
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
            .map_or_else(
                || panic!("{name} is connected"),
                |c| format!("kill client {} ", c.id),
            )
    };
    let planned = plan.changes.join("\n");
    assert!(planned.contains(&id_of("plain-idle")), "{planned}");
    for busy in ["busy-subscriber", "busy-consumer"] {
        assert!(!planned.contains(&id_of(busy)), "{busy} planned: {planned}");
    }
    drop(clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_connections_recovers_a_really_exhausted_server_as_a_non_superuser_operator() {
    let pg = require!(start_postgres().await);
    if pg.service().is_none() {
        eprintln!("skipping test: saturates the server, needs its own container");
        return;
    }
    // The operator's handle opened its connection before the incident and holds it.
    let db = operator_db(&pg).await;
    db.hold_connection().await.unwrap();
    let cold = Arc::new(
        PgDatabaseBuilder::new(pg.operator_url().await.unwrap())
            .with_acquire_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
    );
    // The application (not a superuser) takes every slot but the superuser-reserved ones,
    // each session idle in a transaction.
    let app_url = pg.role_url("app", &[]).await.unwrap();
    let mut hogs = Vec::new();
    let refused = loop {
        assert!(hogs.len() < 400, "the server never refused a connection");
        match sqlx::PgConnection::connect(&app_url).await {
            Ok(mut conn) => {
                sqlx::raw_sql("BEGIN; SELECT 1")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                hogs.push(conn);
            }
            Err(e) => break e,
        }
    };
    assert_eq!(
        refused
            .as_database_error()
            .and_then(sqlx::error::DatabaseError::code)
            .as_deref(),
        Some("53300"),
        "{refused}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let limit = |cfg: &mut RunbookConfig| {
        cfg.db.idle_in_transaction_limit = Duration::from_secs(1);
    };

    // Without a held connection the run cannot act, and says why (not "unreachable").
    let report = db_connections(&execute(), &db_targets(&cold, limit))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.starts_with("connections exhausted")),
        "{}",
        report.to_markdown()
    );

    // With it, the run diagnoses and terminates during the exhaustion.
    let report = db_connections(&execute(), &db_targets(&db, limit))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let title = format!("terminated {} session(s)", hogs.len());
    assert!(
        report.findings.iter().any(|f| f.title.starts_with(&title)),
        "{}",
        report.to_markdown()
    );
    // Every slot an ordinary role may take is used: that is 100 %, critical, even though
    // superuser-reserved slots remain free.
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("usable connections in use (100%")
                && f.level == ops_core::run::FindingLevel::Critical),
        "{}",
        report.to_markdown()
    );
    for conn in &mut hogs {
        assert!(sqlx::raw_sql("SELECT 1").execute(conn).await.is_err());
    }
    ops_core::Database::ping(&*cold).await.unwrap();
}
