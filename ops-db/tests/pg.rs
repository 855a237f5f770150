//! `PgDatabase` and `PgJournal` against real PostgreSQL in containers (`opsbook/postgres:15`,
//! overridable with `OPSBOOK_IMAGE_POSTGRES`, or `OPSBOOK_TEST_PG_URL`). Each test owns its
//! server or database. Without Docker or the image the tests print why and pass, unless `CI=true`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use ops_core::database::{
    BackupOptions, Maintenance, RestoreOptions, RowRetention, SessionFilter, SessionState,
    SlowQueryOptions,
};
use ops_core::testing::conformance;
use ops_core::testing::conformance::database::{DatabaseFixture, KnownStatement, ScratchTable};
use ops_core::{Database, ErrorKind, Identifier, TableRef};
use ops_db::{PgDatabase, PgDatabaseBuilder, PgJournal};
use ops_tests::{Postgres, Stack, require};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};

const WAIT: Duration = Duration::from_secs(30);

fn db_for(pg: &Postgres) -> PgDatabase {
    PgDatabaseBuilder::new(pg.url())
        .with_statement_timeout(Duration::from_secs(5))
        .with_acquire_timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

async fn connect(url: &str, app: &str) -> PgConnection {
    PgConnectOptions::from_str(url)
        .unwrap()
        .application_name(app)
        .connect()
        .await
        .unwrap()
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Tables with awkward names and some data, including old rows for retention.
async fn seed(conn: &mut PgConnection) -> Vec<TableRef> {
    exec(
        conn,
        r#"
        CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, payload text);
        CREATE INDEX events_payload_idx ON events (payload);
        INSERT INTO events (created_at, payload)
            SELECT now() - (g || ' days')::interval, md5(g::text) FROM generate_series(1, 2000) g;
        CREATE TABLE "users; DROP TABLE x" (id int PRIMARY KEY, name text);
        INSERT INTO "users; DROP TABLE x" SELECT g, 'u' || g FROM generate_series(1, 50) g;
        CREATE TABLE x (keep int);
        INSERT INTO x VALUES (1);
        CREATE TABLE "quo""ted" (v text);
        INSERT INTO "quo""ted" VALUES ('it''s'), ('"q"');
        CREATE TABLE "ünïcödé_表" (v text, at timestamp);
        INSERT INTO "ünïcödé_表" VALUES ('ß', now()::timestamp - interval '10 days'), ('🙂', now()::timestamp);
        "#,
    )
    .await;
    [
        "public.events",
        "public.users; DROP TABLE x",
        "public.x",
        "public.quo\"ted",
        "public.ünïcödé_表",
    ]
    .iter()
    .map(|t| t.parse().unwrap())
    .collect()
}

/// md5 of every row of each table, in a stable order.
async fn checksums(url: &str, tables: &[TableRef]) -> Vec<(String, String)> {
    let mut conn = connect(url, "checksums").await;
    let mut out = Vec::new();
    for t in tables {
        let sql = format!(
            "SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {} t",
            t.quoted()
        );
        let sum: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        out.push((t.to_string(), sum));
    }
    let _ = conn.close().await;
    out
}

async fn databases(admin: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar("SELECT datname::text FROM pg_database ORDER BY 1")
        .fetch_all(admin)
        .await
        .unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The conformance suite's scratch table: 25 rows two months old, 7 from yesterday, kept
/// away from autovacuum so the suite's VACUUM is what clears the dead rows.
async fn scratch_table(url: &str) -> ScratchTable {
    let mut conn = connect(url, "conformance-seed").await;
    exec(
        &mut conn,
        "CREATE TABLE opsbook_conformance_rows (id serial PRIMARY KEY, created_at timestamptz NOT NULL, note text) \
             WITH (autovacuum_enabled = false); \
         INSERT INTO opsbook_conformance_rows (created_at, note) \
             SELECT now() - interval '60 days', 'old' FROM generate_series(1, 25); \
         INSERT INTO opsbook_conformance_rows (created_at, note) \
             SELECT now() - interval '1 day', 'new' FROM generate_series(1, 7);",
    )
    .await;
    // The statement the slow-query check looks for, with a literal it must not show.
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM opsbook_conformance_rows WHERE note = 'opsbook-literal-7731'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(n, 0);
    // Closing flushes this session's statistics (the inserted rows).
    conn.close().await.unwrap();
    ScratchTable::new(
        "public.opsbook_conformance_rows".parse().unwrap(),
        "created_at".parse().unwrap(),
        Duration::from_secs(30 * 86_400),
        25,
        7,
    )
}

/// A session named `app` running `pg_sleep(600)` until cancelled, then idle until `release`
/// fires; the task returns the statement's error text.
async fn busy_session(
    db: &PgDatabase,
    url: &str,
    app: &str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<String>,
) {
    let mut conn = connect(url, app).await;
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let ran = sqlx::query("SELECT pg_sleep(600)").execute(&mut conn).await;
        let _ = released.await;
        let _ = conn.close().await;
        ran.err().map(|e| e.to_string()).unwrap_or_default()
    });
    let mine = SessionFilter::default().with_application(app);
    tokio::time::timeout(WAIT, async {
        while !db
            .sessions(&mine)
            .await
            .unwrap()
            .iter()
            .any(|s| s.state == SessionState::Active)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the busy session {app} runs its statement"));
    (release, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suites_pass_against_postgres() {
    let pg = require!(Stack::new().postgres().await);
    let db = db_for(&pg);
    let caps = db.probe_capabilities().await.unwrap();
    assert!(
        caps.slow_queries,
        "the test image preloads pg_stat_statements and the probe sees it"
    );
    assert!(caps.backup, "pg_dump and pg_restore are on the PATH");
    // The session the suite terminates: opened here, idle, under its own name.
    let app = "opsbook-conformance-idle";
    let idle = connect(pg.url(), app).await;
    let busy_app = "opsbook-conformance-busy";
    let (release, busy) = busy_session(&db, pg.url(), busy_app).await;
    let scratch = scratch_table(pg.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let into = format!("{}_restored", pg.database());
    let (server, _) = pg.url().rsplit_once('/').unwrap();
    let restored: Arc<dyn Database> = Arc::new(
        PgDatabaseBuilder::new(format!("{server}/{into}"))
            .with_statement_timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    );
    let fx = DatabaseFixture::new(app)
        .with_busy_session(busy_app)
        .with_scratch_table(scratch)
        .with_backups(Identifier::new(pg.database()).unwrap(), dir.path())
        .with_restore_into(Identifier::new(&into).unwrap(), Some(restored))
        .with_known_statement(KnownStatement::new(
            "opsbook_conformance_rows",
            ["opsbook-literal-7731"],
        ));
    conformance::database::run_all(&db, &fx).await;
    drop(idle);
    let _ = release.send(());
    let cancelled = busy.await.unwrap();
    assert!(
        cancelled.contains("canceling statement due to user request"),
        "the busy session's statement was cancelled: {cancelled}"
    );
    let journal = PgJournal::open(&db).await.unwrap();
    conformance::journal::run_all(&journal).await;
    // Reopening applies no migration twice and keeps the entries.
    let again = PgJournal::connect(pg.url()).await.unwrap();
    conformance::journal::run_all(&again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "one server, every method in turn")]
async fn every_method_works_on_real_data() {
    let pg = require!(Stack::new().postgres().await);
    let db = db_for(&pg);
    let mut conn = connect(pg.url(), "seed").await;
    let tables = seed(&mut conn).await;

    // Without the extension in this database (the image creates it in template1): a typed hint.
    exec(&mut conn, "DROP EXTENSION IF EXISTS pg_stat_statements").await;
    let err = db
        .slow_queries(SlowQueryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{}", err.chain());
    assert!(err.detail().unwrap().contains("shared_preload_libraries"));
    assert!(
        !db.probe_capabilities().await.unwrap().slow_queries,
        "without the extension slow queries are not claimed"
    );
    exec(&mut conn, "CREATE EXTENSION pg_stat_statements").await;
    assert!(db.probe_capabilities().await.unwrap().slow_queries);
    exec(
        &mut conn,
        "SELECT count(*) FROM events WHERE payload LIKE 'a%'",
    )
    .await;
    let slow = db.slow_queries(SlowQueryOptions::default()).await.unwrap();
    assert!(!slow.is_empty() && slow.iter().all(|q| q.calls > 0));

    assert!(db.ping().await.unwrap().latency < Duration::from_secs(5));
    let info = db.server_info().await.unwrap();
    assert!(info.version.starts_with("15"), "{}", info.version);
    assert!(info.max_connections >= 20 && !info.in_recovery);
    let stats = db.connection_stats().await.unwrap();
    assert!(stats.total >= 2 && stats.by_database.contains_key(pg.database()));

    let sizes = db.database_sizes().await.unwrap();
    assert!(sizes.iter().any(|s| s.name == pg.database() && s.bytes > 0));
    exec(&mut conn, "ANALYZE").await;
    let tsizes = db.table_sizes(10).await.unwrap();
    let events = tsizes
        .iter()
        .find(|t| t.table == tables[0])
        .expect("events listed");
    assert!(events.total_bytes > 0 && events.index_bytes > 0);
    assert!(
        tsizes.iter().any(|t| t.table == tables[1]),
        "hostile names come back intact"
    );
    let indexes = db.index_usage().await.unwrap();
    let payload_idx = indexes
        .iter()
        .find(|i| i.index.as_str() == "events_payload_idx")
        .unwrap();
    assert!(payload_idx.is_unused());
    assert!(indexes.iter().any(|i| i.unique && !i.is_unused()));

    for op in [
        Maintenance::Vacuum { analyze: true },
        Maintenance::Analyze,
        Maintenance::Reindex,
    ] {
        for t in &tables {
            let out = db.maintain(op, Some(t.clone())).await.unwrap();
            assert!(out.statement.contains(&t.quoted()), "{}", out.statement);
        }
    }
    let full = db
        .maintain(Maintenance::VacuumFull, Some(tables[0].clone()))
        .await
        .unwrap();
    assert!(
        full.warnings
            .iter()
            .any(|w| w.contains("disk") && w.contains("lock"))
    );
    db.maintain(Maintenance::Vacuum { analyze: false }, None)
        .await
        .unwrap();
    let missing: TableRef = "public.no_such_table".parse().unwrap();
    let err = db
        .maintain(Maintenance::Analyze, Some(missing))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    assert_eq!(db.setting("work_mem").await.unwrap(), "4096");
    let change = db
        .set_setting("log_min_duration_statement", "250")
        .await
        .unwrap();
    assert_eq!(
        (
            change.old.as_str(),
            change.new.as_str(),
            change.needs_restart
        ),
        ("-1", "250", false)
    );
    let restart = db.set_setting("max_connections", "150").await.unwrap();
    assert!(restart.needs_restart, "max_connections needs a restart");
    let bad = db.set_setting("work_mem", "lots").await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput, "{}", bad.chain());
    let unknown = db
        .set_setting("no_such; DROP TABLE x", "1")
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::InvalidInput);
    let quoted = db
        .set_setting("log_line_prefix", "it's; DROP TABLE x ")
        .await
        .unwrap();
    assert_eq!(quoted.new, "it's; DROP TABLE x ");

    let retention = RowRetention::new(
        tables[0].clone(),
        "created_at".parse().unwrap(),
        Duration::from_secs(1000 * 86_400 + 43_200),
    )
    .with_batch_size(300)
    .with_max_rows(700);
    assert_eq!(db.count_older_than(&retention).await.unwrap(), 1000);
    let first = db.delete_older_than(&retention).await.unwrap();
    assert_eq!((first.rows, first.batches, first.complete), (700, 3, false));
    let rest = db
        .delete_older_than(&retention.clone().with_max_rows(10_000))
        .await
        .unwrap();
    assert_eq!((rest.rows, rest.complete), (300, true));
    assert_eq!(db.count_older_than(&retention).await.unwrap(), 0);
    let bad_column = RowRetention::new(
        tables[0].clone(),
        "nope".parse().unwrap(),
        Duration::from_secs(1),
    );
    assert_eq!(
        db.count_older_than(&bad_column).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let unicode = RowRetention::new(
        tables[4].clone(),
        "at".parse().unwrap(),
        Duration::from_secs(86_400),
    );
    assert_eq!(db.delete_older_than(&unicode).await.unwrap().rows, 1);

    assert!(db.replication().await.unwrap().is_empty());

    // A long-running query, a lock holder and a blocked writer.
    let mut sleeper = connect(pg.url(), "sleeper").await;
    let sleeping = tokio::spawn(async move {
        let r = sqlx::query("SELECT pg_sleep(30)")
            .execute(&mut sleeper)
            .await;
        (r, sleeper)
    });
    let mut holder = connect(pg.url(), "holder").await;
    exec(&mut holder, "BEGIN; LOCK TABLE x IN ACCESS EXCLUSIVE MODE").await;
    let mut writer = connect(pg.url(), "writer").await;
    let writing = tokio::spawn(async move {
        let r = sqlx::query("UPDATE x SET keep = 2")
            .execute(&mut writer)
            .await;
        (r, writer)
    });
    let long = tokio::time::timeout(WAIT, async {
        loop {
            let long = db.long_running(Duration::from_millis(500)).await.unwrap();
            let blocked = db.blocked().await.unwrap();
            if long
                .iter()
                .any(|s| s.application.as_deref() == Some("sleeper"))
                && !blocked.is_empty()
            {
                return (long, blocked);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("long-running and blocked queries show up");
    let (long, blocked) = long;
    let holder_pid = db
        .sessions(&SessionFilter::default().with_application("holder"))
        .await
        .unwrap()[0]
        .pid;
    assert!(
        blocked
            .iter()
            .any(|b| b.session.application.as_deref() == Some("writer")
                && b.blocked_by.contains(&holder_pid))
    );
    let sleeper_pid = long
        .iter()
        .find(|s| s.application.as_deref() == Some("sleeper"))
        .unwrap()
        .pid;
    assert!(db.cancel(sleeper_pid).await.unwrap());
    let (r, _) = tokio::time::timeout(WAIT, sleeping).await.unwrap().unwrap();
    assert!(r.is_err(), "the sleeping query was cancelled");
    exec(&mut holder, "ROLLBACK").await;
    let (r, _) = tokio::time::timeout(WAIT, writing).await.unwrap().unwrap();
    r.unwrap();
}

/// The pids of every client session but ours.
/// A fresh server with `sql` run on its test database, and the connection that ran it.
async fn seeded(sql: &str) -> Result<(Postgres, PgConnection), ops_tests::ServiceError> {
    let pg = Stack::new().postgres().await?;
    let mut conn = connect(pg.url(), "seed").await;
    exec(&mut conn, sql).await;
    Ok((pg, conn))
}

/// Rows per table in `(table, label)` groups, for the retention tests.
async fn rows_by_label(conn: &mut PgConnection, table: &str) -> Vec<(String, String, i64)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tableoid::regclass::text, v, count(*) FROM {table} GROUP BY 1, 2 ORDER BY 1, 2"
    )))
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_old_rows_of_partitioned_and_inherited_tables() {
    // Partitioned by month: the old rows sit in January 2020, the young ones in this month's
    // partition, at the very same ctids ((0,1), (0,2), ...).
    let (pg, mut conn) = require!(
        seeded(
            r"
        CREATE TABLE metrics (id bigint NOT NULL, at timestamptz NOT NULL, v text NOT NULL)
            PARTITION BY RANGE (at);
        CREATE TABLE metrics_2020_01 PARTITION OF metrics
            FOR VALUES FROM ('2020-01-01') TO ('2020-02-01');
        DO $$ BEGIN
            EXECUTE format('CREATE TABLE metrics_this_month PARTITION OF metrics FOR VALUES FROM (%L) TO (%L)',
                date_trunc('month', now()), date_trunc('month', now()) + interval '1 month');
        END $$;
        CREATE TABLE metrics_other PARTITION OF metrics DEFAULT;
        INSERT INTO metrics SELECT g, '2020-01-15', 'old' FROM generate_series(1, 500) g;
        INSERT INTO metrics SELECT g, now(), 'young' FROM generate_series(1, 500) g;
        CREATE TABLE logs (at timestamptz NOT NULL, v text NOT NULL);
        CREATE TABLE logs_2020 () INHERITS (logs);
        INSERT INTO logs_2020 SELECT '2020-03-01', 'old' FROM generate_series(1, 300);
        INSERT INTO logs SELECT now(), 'young' FROM generate_series(1, 300);
        ",
        )
        .await
    );
    let same_ctids: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM metrics_2020_01 o JOIN metrics_this_month y ON o.ctid = y.ctid",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        same_ctids, 500,
        "the test needs old and young rows at the same ctids"
    );
    let db = db_for(&pg);
    let month = Duration::from_secs(31 * 86_400);
    for (table, column, old) in [("public.metrics", "at", 500), ("public.logs", "at", 300)] {
        let retention = RowRetention::new(table.parse().unwrap(), column.parse().unwrap(), month)
            .with_batch_size(64);
        assert_eq!(db.count_older_than(&retention).await.unwrap(), old);
        let done = db.delete_older_than(&retention).await.unwrap();
        assert_eq!((done.rows, done.complete), (old, true), "{table}");
        assert_eq!(db.count_older_than(&retention).await.unwrap(), 0);
    }
    assert_eq!(
        rows_by_label(&mut conn, "metrics").await,
        [("metrics_this_month".to_owned(), "young".to_owned(), 500)],
        "every young row is still there"
    );
    assert_eq!(
        rows_by_label(&mut conn, "logs").await,
        [("logs".to_owned(), "young".to_owned(), 300)]
    );
    let _ = conn.close().await;
}

async fn every_pid(db: &PgDatabase) -> Vec<ops_core::Pid> {
    db.sessions(&SessionFilter::all())
        .await
        .unwrap()
        .iter()
        .map(|s| s.pid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_ends_an_idle_session_and_never_ours() {
    let pg = require!(Stack::new().postgres().await);
    let db = db_for(&pg);
    db.ping().await.unwrap();
    let mut victim = connect(pg.url(), "victim").await;
    exec(&mut victim, "SELECT 1").await;
    let mut stuck = connect(pg.url(), "stuck").await;
    exec(&mut stuck, "BEGIN; SELECT 1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Our own connections never appear, whatever the filter.
    let everyone = db.sessions(&SessionFilter::default()).await.unwrap();
    assert!(
        everyone
            .iter()
            .all(|s| s.application.as_deref() != Some(db.application_name()))
    );
    let idle = SessionFilter::default()
        .with_state(SessionState::Idle)
        .idle_longer_than(Duration::from_millis(100))
        .with_application("victim")
        .with_database(Identifier::new(pg.database()).unwrap());
    let would = db.sessions(&idle).await.unwrap();
    assert_eq!(would.len(), 1);
    let iit = SessionFilter::default().with_state(SessionState::IdleInTransaction);
    assert_eq!(
        db.sessions(&iit).await.unwrap()[0].application.as_deref(),
        Some("stuck")
    );
    assert!(
        db.connection_stats()
            .await
            .unwrap()
            .oldest_idle_in_transaction
            .is_some()
    );

    let approved: Vec<_> = would.iter().map(|s| s.pid).collect();
    let gone = db.terminate(&approved, &idle).await.unwrap();
    assert_eq!(
        gone.iter().map(|s| s.pid).collect::<Vec<_>>(),
        would.iter().map(|s| s.pid).collect::<Vec<_>>()
    );
    let err = sqlx::query("SELECT 1").execute(&mut victim).await;
    assert!(err.is_err(), "the victim's connection is gone");

    // An unbounded guard is refused; terminating every client session, said explicitly,
    // still leaves ours alive and non-client backends alone.
    assert_eq!(
        db.terminate(&[], &SessionFilter::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let every = every_pid(&db).await;
    let all = db.terminate(&every, &SessionFilter::all()).await.unwrap();
    assert!(
        all.iter()
            .any(|s| s.application.as_deref() == Some("stuck"))
    );
    db.ping().await.unwrap();
    let mut admin = connect(pg.admin_url(), "check").await;
    let background: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('checkpointer', 'background writer', 'walwriter')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(background >= 3, "background processes untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_drop_restore_gives_identical_tables_and_tampering_is_refused() {
    let pg = require!(Stack::new().postgres().await);
    let mut conn = connect(pg.url(), "seed").await;
    let tables = seed(&mut conn).await;
    let _ = conn.close().await;
    let before = checksums(pg.url(), &tables).await;
    let dir = tempfile::tempdir().unwrap();
    // The backend talks to the server's maintenance database so it can drop and rename ours.
    let mut admin_url = url::Url::parse(pg.url()).unwrap();
    admin_url.set_path("/postgres");
    let db = PgDatabaseBuilder::new(admin_url.as_str()).build().unwrap();
    let name = Identifier::new(pg.database()).unwrap();

    let info = db
        .backup(&BackupOptions::new(name.clone(), dir.path()))
        .await
        .unwrap();
    assert!(info.bytes > 0 && info.path.exists());
    let sidecar = std::fs::read_to_string(format!("{}.sha256", info.path.display())).unwrap();
    assert!(sidecar.starts_with(&info.sha256));
    assert_eq!(
        files_in(dir.path()).len(),
        2,
        "dump and sidecar, nothing else"
    );
    assert_eq!(
        db.verify_backup(&info.path).await.unwrap().sha256,
        info.sha256
    );
    let listed = db.list_backups(dir.path()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].path, info.path);

    let mut admin = connect(pg.admin_url(), "admin").await;
    exec(
        &mut admin,
        &format!("DROP DATABASE {} WITH (FORCE)", name.quoted()),
    )
    .await;
    let restored = db
        .restore(&RestoreOptions::new(&info.path, name.clone()))
        .await
        .unwrap();
    assert_eq!(restored.database, pg.database());
    assert_eq!(restored.previous_renamed_to, None);
    assert_eq!(
        checksums(pg.url(), &tables).await,
        before,
        "identical rows after restore"
    );

    // Restoring over a live database swaps it in and keeps the old one renamed.
    let mut live = connect(pg.url(), "app").await;
    exec(&mut live, "DELETE FROM events WHERE id % 2 = 0").await;
    let swapped = db
        .restore(&RestoreOptions::new(&info.path, name.clone()))
        .await
        .unwrap();
    let old = swapped.previous_renamed_to.expect("old database kept");
    assert!(old.starts_with(pg.database()));
    assert_eq!(checksums(pg.url(), &tables).await, before);

    // A tampered dump is refused before anything is touched.
    let dbs_before = databases(&mut admin).await;
    let mut bytes = std::fs::read(&info.path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&info.path, &bytes).unwrap();
    let err = db.verify_backup(&info.path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = db
        .restore(&RestoreOptions::new(&info.path, name.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{}", err.chain());
    assert_eq!(
        databases(&mut admin).await,
        dbs_before,
        "no database created, renamed or dropped"
    );
    assert_eq!(checksums(pg.url(), &tables).await, before);
}

/// Item 3 of issue 12: backup and restore as the operator role ops-db's README documents
/// (`pg_read_all_data`; `CREATEDB` and ownership of the database it restores), not the
/// superuser; without a grant each is `PermissionDenied` whose detail names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_as_the_documented_operator_role_and_missing_grants_are_named() {
    let pg = require!(Stack::new().postgres().await);
    let op_url = pg.role_url("bk", &["pg_read_all_data"]).await.unwrap();
    let op = url::Url::parse(&op_url).unwrap().username().to_owned();
    let name = Identifier::new(pg.database()).unwrap();
    let mut admin = connect(pg.admin_url(), "admin").await;
    exec(
        &mut admin,
        &format!(
            "ALTER ROLE \"{op}\" CREATEDB; ALTER DATABASE {} OWNER TO \"{op}\"",
            name.quoted()
        ),
    )
    .await;
    // The operator owns the database and what is in it (README: ownership of the restored
    // database), so pg_restore can give every object back its owner.
    let mut conn = connect(&op_url, "seed").await;
    let tables = seed(&mut conn).await;
    let _ = conn.close().await;
    let before = checksums(pg.url(), &tables).await;
    let on_maintenance_db = |url: &str| {
        let mut u = url::Url::parse(url).unwrap();
        u.set_path("/postgres");
        PgDatabaseBuilder::new(u.as_str()).build().unwrap()
    };
    let operator = on_maintenance_db(&op_url);
    let dir = tempfile::tempdir().unwrap();
    let info = operator
        .backup(&BackupOptions::new(name.clone(), dir.path()))
        .await
        .unwrap();
    exec(
        &mut admin,
        &format!("DROP DATABASE {} WITH (FORCE)", name.quoted()),
    )
    .await;
    let restored = operator
        .restore(&RestoreOptions::new(&info.path, name.clone()))
        .await
        .unwrap();
    assert_eq!(restored.database, pg.database());
    assert_eq!(checksums(pg.url(), &tables).await, before);
    // Over the live database: the swap renames the operator's own database aside.
    let swapped = operator
        .restore(&RestoreOptions::new(&info.path, name.clone()))
        .await
        .unwrap();
    assert!(swapped.previous_renamed_to.is_some());
    assert_eq!(checksums(pg.url(), &tables).await, before);

    // A role without the grants: pg_dump is refused, and so is the restore's CREATE DATABASE.
    let bare = on_maintenance_db(&pg.role_url("bare", &[]).await.unwrap());
    let err = bare
        .backup(&BackupOptions::new(name.clone(), dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.chain());
    assert!(
        err.detail().unwrap().contains("GRANT pg_read_all_data TO"),
        "{}",
        err.chain()
    );
    let err = bare
        .restore(&RestoreOptions::new(&info.path, name.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.chain());
    assert!(
        err.detail().unwrap().contains("ALTER ROLE <role> CREATEDB"),
        "{}",
        err.chain()
    );
    assert_eq!(
        checksums(pg.url(), &tables).await,
        before,
        "nothing touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_operation_is_unavailable_or_timeout_and_leaves_no_partial_file() {
    let pg = require!(Stack::new().postgres().await);
    let Some(service) = pg.service() else {
        eprintln!("skipping: OPSBOOK_TEST_PG_URL points at a server this test cannot stop");
        return;
    };
    let mut conn = connect(pg.url(), "seed").await;
    exec(
        &mut conn,
        "CREATE TABLE big AS SELECT g, md5(g::text) || md5((g + 1)::text) AS payload \
         FROM generate_series(1, 1500000) g",
    )
    .await;
    let _ = conn.close().await;
    let db = db_for(&pg);
    let name = Identifier::new(pg.database()).unwrap();

    // Frozen server: the deadline fires, the temp file goes.
    let dir = tempfile::tempdir().unwrap();
    service.pause().await.unwrap();
    let mut opts = BackupOptions::new(name.clone(), dir.path());
    opts.timeout = Some(Duration::from_secs(3));
    let err = db.backup(&opts).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{}", err.chain());
    let err = db.ping().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Unavailable),
        "{}",
        err.chain()
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    service.unpause().await.unwrap();
    pg.wait_ready(WAIT).await.unwrap();

    // Killed mid-dump: pg_dump fails, the temp file goes.
    let backup = {
        let db = db.clone();
        let opts = BackupOptions::new(name.clone(), dir.path());
        tokio::spawn(async move { db.backup(&opts).await })
    };
    tokio::time::timeout(WAIT, async {
        while files_in(dir.path()).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the dump started");
    tokio::time::sleep(Duration::from_millis(200)).await;
    service.kill().await.unwrap();
    let err = tokio::time::timeout(WAIT, backup)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{}",
        err.chain()
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    let err = db.ping().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{}",
        err.chain()
    );
    assert!(
        !err.chain().contains("opsbook@"),
        "no credentials in errors"
    );
}

/// The real program `name` on `PATH`.
fn real_tool(name: &str) -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}

/// An executable shell script `name` in `dir` running `body`, then the real `tool` with the
/// same arguments and standard input.
fn wrapper(dir: &Path, name: &str, body: &str, tool: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\nset -e\n{body}\nexec '{}' \"$@\"\n",
        real_tool(tool).display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Records the environment a tool ran with, and the modes of its passfile and directory.
const RECORD_ENV: &str = r#"env > "$OUT/$NAME.env"
if [ -n "${PGPASSFILE:-}" ]; then
  echo "$PGPASSFILE" > "$OUT/$NAME.passfile"
  stat -c '%a' "$PGPASSFILE" > "$OUT/$NAME.mode"
  stat -c '%a' "$(dirname "$PGPASSFILE")" > "$OUT/$NAME.dirmode"
fi"#;

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_and_pg_restore_get_the_password_from_a_private_passfile_not_the_environment() {
    const CANARY: &str = "CANARY-pw-5e1f:\\x";
    let (pg, conn) = require!(
        seeded(&format!(
            "CREATE ROLE canary_owner LOGIN SUPERUSER PASSWORD '{CANARY}';\n\
             CREATE TABLE t (v text); INSERT INTO t VALUES ('kept');"
        ))
        .await
    );
    let _ = conn.close().await;
    let out = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let record = |name: &str| format!("OUT='{}'; NAME={name}\n{RECORD_ENV}", out.path().display());
    let dump = wrapper(bin.path(), "pg_dump", &record("pg_dump"), "pg_dump");
    let restore = wrapper(
        bin.path(),
        "pg_restore",
        &record("pg_restore"),
        "pg_restore",
    );
    // The backend logs in as the canary role (scram-sha-256: the tools must authenticate).
    let mut url = url::Url::parse(pg.url()).unwrap();
    url.set_username("canary_owner").unwrap();
    url.set_password(Some(CANARY)).unwrap();
    url.set_path("/postgres");
    let db = PgDatabaseBuilder::new(url.as_str())
        .with_tools(&dump, &restore)
        .build()
        .unwrap();
    let name = Identifier::new(pg.database()).unwrap();
    let backups = tempfile::tempdir().unwrap();
    let info = db
        .backup(&BackupOptions::new(name.clone(), backups.path()))
        .await
        .unwrap();
    db.restore(&RestoreOptions::new(&info.path, name.clone()))
        .await
        .unwrap();
    for tool in ["pg_dump", "pg_restore"] {
        let env = read(out.path(), &format!("{tool}.env"));
        assert!(
            !env.lines().any(|l| l.starts_with("PGPASSWORD=")),
            "{tool} got PGPASSWORD"
        );
        assert!(
            !env.contains("CANARY-pw"),
            "{tool}'s environment holds the password"
        );
        assert_eq!(read(out.path(), &format!("{tool}.mode")), "600", "{tool}");
        assert_eq!(
            read(out.path(), &format!("{tool}.dirmode")),
            "700",
            "{tool}"
        );
        let passfile = std::path::PathBuf::from(read(out.path(), &format!("{tool}.passfile")));
        assert!(!passfile.exists(), "{tool}'s passfile was removed");
        assert!(
            !passfile.parent().unwrap().exists(),
            "{tool}'s private directory was removed"
        );
    }
    let mut restored = connect(pg.url(), "check").await;
    let v: String = sqlx::query_scalar("SELECT v FROM t")
        .fetch_one(&mut restored)
        .await
        .unwrap();
    assert_eq!(v, "kept");
    let _ = restored.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_changed_after_its_verification_is_not_what_gets_restored() {
    let (pg, mut conn) = require!(
        seeded(
            "CREATE TABLE t (v text); INSERT INTO t SELECT 'verified' FROM generate_series(1, 100);"
        )
        .await
    );
    let mut admin_url = url::Url::parse(pg.url()).unwrap();
    admin_url.set_path("/postgres");
    let plain = PgDatabaseBuilder::new(admin_url.as_str()).build().unwrap();
    let name = Identifier::new(pg.database()).unwrap();
    let (good_dir, evil_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let good = plain
        .backup(&BackupOptions::new(name.clone(), good_dir.path()))
        .await
        .unwrap();
    exec(&mut conn, "UPDATE t SET v = 'tampered'").await;
    let evil = plain
        .backup(&BackupOptions::new(name.clone(), evil_dir.path()))
        .await
        .unwrap();
    let _ = conn.close().await;
    // pg_restore starts after the checksum matched: that is when the file is swapped.
    let bin = tempfile::tempdir().unwrap();
    let swap = format!("cp '{}' '{}'", evil.path.display(), good.path.display());
    let restore = wrapper(bin.path(), "pg_restore", &swap, "pg_restore");
    let db = PgDatabaseBuilder::new(admin_url.as_str())
        .with_tools(real_tool("pg_dump"), &restore)
        .build()
        .unwrap();
    let outcome = db
        .restore(&RestoreOptions::new(&good.path, name.clone()))
        .await
        .unwrap();
    assert_eq!(outcome.sha256, good.sha256);
    assert_eq!(
        db.verify_backup(&good.path).await.unwrap_err().kind(),
        ErrorKind::Conflict,
        "the file really was changed under the restore"
    );
    let mut restored = connect(pg.url(), "check").await;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT v, count(*) FROM t GROUP BY v ORDER BY v")
            .fetch_all(&mut restored)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [("verified".to_owned(), 100)],
        "what was verified was restored"
    );
    let _ = restored.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_identifiers_are_rejected_or_quoted() {
    // Too long (64+ bytes) or containing NUL: rejected before any SQL is built.
    assert!(Identifier::new(&"a".repeat(64)).is_err());
    assert!(Identifier::new(&"é".repeat(32)).is_err());
    assert!(Identifier::new("a\0b").is_err());

    let pg = require!(Stack::new().postgres().await);
    let db = db_for(&pg);
    let mut conn = connect(pg.url(), "seed").await;
    let tables = seed(&mut conn).await;
    for t in &tables {
        db.maintain(Maintenance::Vacuum { analyze: true }, Some(t.clone()))
            .await
            .unwrap();
    }
    // A name that looks like an injection is just a missing table.
    let sneaky = TableRef::new(None, Identifier::new("x; DROP TABLE events").unwrap());
    assert_eq!(
        db.maintain(Maintenance::Analyze, Some(sneaky.clone()))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let r = RowRetention::new(sneaky, "keep".parse().unwrap(), Duration::from_secs(1));
    assert_eq!(
        db.delete_older_than(&r).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let evil_user = SessionFilter::default().with_user(Identifier::new("' OR 1=1 --").unwrap());
    assert!(db.sessions(&evil_user).await.unwrap().is_empty());
    let every = every_pid(&db).await;
    assert!(db.terminate(&every, &evil_user).await.unwrap().is_empty());
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM x JOIN events ON true")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 2000, "x and events are both still there");

    // A hostile database name: backed up with a safe file name, restored under its exact name.
    let dir = tempfile::tempdir().unwrap();
    let hostile = Identifier::new("db'; DROP DATABASE postgres; -- \"é\" host=evil").unwrap();
    let mut admin = connect(pg.admin_url(), "admin").await;
    exec(&mut admin, &format!("CREATE DATABASE {}", hostile.quoted())).await;
    let mut admin_url = url::Url::parse(pg.url()).unwrap();
    admin_url.set_path("/postgres");
    let admin_db = PgDatabaseBuilder::new(admin_url.as_str()).build().unwrap();
    let info = admin_db
        .backup(&BackupOptions::new(hostile.clone(), dir.path()))
        .await
        .unwrap();
    assert_eq!(info.path.parent(), Some(dir.path()));
    let out = admin_db
        .restore(&RestoreOptions::new(&info.path, hostile.clone()))
        .await
        .unwrap();
    assert_eq!(out.database, hostile.as_str());
    assert!(out.previous_renamed_to.is_some());
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'postgres')")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(exists);
}

/// Item 3 of issue 12: settings and the journal as the operator role with exactly the
/// grants ops-db's README lists (`ALTER SYSTEM ON PARAMETER` + `pg_reload_conf()`; `CREATE`
/// on the database for the journal schema); without them the role is refused by name, and a
/// setting it could write but not reload is not written at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_the_journal_as_the_documented_operator_role_and_missing_grants_are_named() {
    let pg = require!(Stack::new().postgres().await);
    let op_url = pg.role_url("cfg", &[]).await.unwrap();
    let op = url::Url::parse(&op_url).unwrap().username().to_owned();
    let mut admin = connect(pg.admin_url(), "admin").await;
    exec(
        &mut admin,
        &format!(
            "GRANT ALTER SYSTEM ON PARAMETER log_min_duration_statement TO \"{op}\"; \
             GRANT CREATE ON DATABASE \"{}\" TO \"{op}\"",
            pg.database()
        ),
    )
    .await;
    let bare = db_at(&pg.role_url("bare", &[]).await.unwrap());
    let operator = db_at(&op_url);
    let written = async |admin: &mut PgConnection, value: &str| -> bool {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_file_settings WHERE name = 'log_min_duration_statement' AND setting = $1)",
        )
        .bind(value)
        .fetch_one(admin)
        .await
        .unwrap()
    };

    // Neither grant, or only ALTER SYSTEM (pg_reload_conf() not granted in this database):
    // refused by name, nothing written.
    for (db, value) in [(&bare, "4321"), (&operator, "4322")] {
        let err = db
            .set_setting("log_min_duration_statement", value)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.chain());
        let detail = err.detail().unwrap();
        assert!(
            detail.contains("GRANT ALTER SYSTEM ON PARAMETER <name> TO <role>")
                && detail.contains("GRANT EXECUTE ON FUNCTION pg_reload_conf() TO <role>"),
            "{}",
            err.chain()
        );
        assert!(!written(&mut admin, value).await, "{value} was written");
    }
    let err = ops_core::OpsError::from(PgJournal::open(&bare).await.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.chain());
    assert!(
        err.detail()
            .unwrap()
            .contains("GRANT CREATE ON DATABASE <db> TO <role>"),
        "{}",
        err.chain()
    );

    // With every grant of the README (the function's in the database it connects to).
    let mut in_db = connect(pg.url(), "grant").await;
    exec(
        &mut in_db,
        &format!("GRANT EXECUTE ON FUNCTION pg_reload_conf() TO \"{op}\""),
    )
    .await;
    let change = operator
        .set_setting("log_min_duration_statement", "250")
        .await
        .unwrap();
    assert_eq!((change.new.as_str(), change.needs_restart), ("250", false));
    assert!(written(&mut admin, "250").await);
    // A parameter it holds no grant on is refused, even for the operator.
    let err = operator.set_setting("work_mem", "8MB").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.chain());

    let journal = PgJournal::open(&operator).await.unwrap();
    conformance::journal::run_all(&journal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_existing_runs_no_ddl_and_needs_the_schema() {
    let pg = require!(Stack::new().postgres().await);
    let db = db_for(&pg);
    let err = PgJournal::open_existing(&db).await.unwrap_err();
    assert!(err.to_string().contains("schema"), "{err}");
    let mut check = connect(pg.url(), "check").await;
    let schemas: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'opsbook'")
            .fetch_one(&mut check)
            .await
            .unwrap();
    assert_eq!(schemas, 0, "open_existing created the schema");
    PgJournal::open(&db).await.unwrap();
    let journal = PgJournal::open_existing(&db).await.unwrap();
    conformance::journal::run_all(&journal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_recording_while_the_server_refuses_new_connections() {
    use ops_core::journal::{Journal, JournalEntry, JournalEvent};
    use ops_core::run::{Mode, RunId};
    let pg = require!(Stack::new().postgres().await);
    if pg.service().is_none() {
        eprintln!("skipping test: saturates the server, needs its own container");
        return;
    }
    let db = db_for(&pg);
    let journal = PgJournal::open(&db).await.unwrap();
    // Fill every connection slot the server has, superuser-reserved ones included.
    let held = saturate(pg.admin_url(), "hog").await;
    // The database's pool cannot get a new connection; the journal's held one still works.
    let run = RunId::generate(jiff::Timestamp::now());
    let entry = JournalEntry::new(
        run.clone(),
        "db_connections",
        Mode::Execute,
        jiff::Timestamp::now(),
        JournalEvent::RunStarted,
    );
    journal.append(&entry).await.unwrap();
    assert_eq!(journal.entries(&run).await.unwrap().len(), 1);
    drop(held);
}

/// A `PgDatabase` for `url` with the test deadlines.
fn db_at(url: &str) -> PgDatabase {
    PgDatabaseBuilder::new(url)
        .with_statement_timeout(Duration::from_secs(5))
        .with_acquire_timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_cannot_see_other_sessions_is_told_to_grant_pg_monitor() {
    let pg = require!(Stack::new().postgres().await);
    let bare = db_at(&pg.role_url("bare", &[]).await.unwrap());
    let mut stuck = connect(pg.admin_url(), "stuck").await;
    exec(&mut stuck, "BEGIN; SELECT 1").await;
    // PostgreSQL shows this role the other role's session without state or query: a filter
    // on "idle in transaction" would find nobody and the report would call it healthy.
    let iit = SessionFilter::default().with_state(SessionState::IdleInTransaction);
    let err = bare.sessions(&iit).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
    assert!(
        err.detail().unwrap().contains("GRANT pg_monitor"),
        "{err:?}"
    );
    assert_eq!(
        bare.blocked().await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    // With the documented grants the same call sees it.
    let operator = db_at(&pg.operator_url().await.unwrap());
    let seen = operator.sessions(&iit).await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_without_pg_signal_backend_is_permission_denied_naming_the_grant() {
    let pg = require!(Stack::new().postgres().await);
    let monitor_only = db_at(&pg.role_url("mon", &["pg_monitor"]).await.unwrap());
    let app_url = pg.role_url("app", &[]).await.unwrap();
    let mut victim = connect(&app_url, "victim").await;
    exec(&mut victim, "BEGIN; SELECT 1").await;
    let filter = SessionFilter::default().with_application("victim");
    let pids: Vec<_> = monitor_only
        .sessions(&filter)
        .await
        .unwrap()
        .iter()
        .map(|s| s.pid)
        .collect();
    assert_eq!(pids.len(), 1);
    let err = monitor_only.terminate(&pids, &filter).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
    assert!(
        err.detail().unwrap().contains("GRANT pg_signal_backend"),
        "{err:?}"
    );
    assert!(sqlx::query("SELECT 1").execute(&mut victim).await.is_ok());
    // The operator role of the README may.
    let operator = db_at(&pg.operator_url().await.unwrap());
    assert_eq!(operator.terminate(&pids, &filter).await.unwrap().len(), 1);
    assert!(sqlx::query("SELECT 1").execute(&mut victim).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_of_a_table_the_operator_may_not_maintain_is_permission_denied() {
    let pg = require!(Stack::new().postgres().await);
    let mut admin = connect(pg.url(), "setup").await;
    exec(&mut admin, "CREATE TABLE events (id int)").await;
    let url = pg.operator_url().await.unwrap();
    let operator = db_at(&url);
    let events: TableRef = "public.events".parse().unwrap();
    // PostgreSQL would skip the table with a warning and report success.
    let err = operator
        .maintain(Maintenance::Vacuum { analyze: true }, Some(events.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
    assert!(
        err.detail().unwrap().contains("must own the table"),
        "{err:?}"
    );
    let role = format!("{}_op", pg.database());
    exec(
        &mut admin,
        &format!("ALTER TABLE events OWNER TO \"{role}\""),
    )
    .await;
    operator
        .maintain(Maintenance::Vacuum { analyze: true }, Some(events))
        .await
        .unwrap();
}

/// Opens sessions as `url` (idle in a transaction, named `app`) until the server refuses one
/// with `too_many_connections`; returns them.
async fn saturate(url: &str, app: &str) -> Vec<PgConnection> {
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() < 400, "the server never refused a connection");
        match PgConnectOptions::from_str(url)
            .unwrap()
            .application_name(app)
            .connect()
            .await
        {
            Ok(mut conn) => {
                exec(&mut conn, "BEGIN; SELECT 1").await;
                held.push(conn);
            }
            Err(e) => break e,
        }
    };
    let code = refused
        .as_database_error()
        .and_then(|d| d.code().map(std::borrow::Cow::into_owned));
    assert_eq!(code.as_deref(), Some("53300"), "{refused}");
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhaustion_is_told_apart_and_a_held_connection_still_diagnoses_and_terminates() {
    let pg = require!(Stack::new().postgres().await);
    if pg.service().is_none() {
        eprintln!("skipping test: saturates the server, needs its own container");
        return;
    }
    let operator_url = pg.operator_url().await.unwrap();
    let held = db_at(&operator_url);
    held.hold_connection().await.unwrap();
    assert!(held.holds_connection());
    let cold = db_at(&operator_url);
    // A non-superuser application takes every slot but the superuser-reserved ones.
    let app_url = pg.role_url("app", &[]).await.unwrap();
    let mut hogs = saturate(&app_url, "hog").await;

    let err = cold.ping().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(
        ops_core::database::is_connections_exhausted(&err),
        "exhaustion is told apart from a server that is down: {err:?}"
    );
    assert!(
        err.detail().unwrap().contains("connections exhausted"),
        "{err:?}"
    );

    held.ping().await.unwrap();
    let stats = held.connection_stats().await.unwrap();
    assert!(stats.total as usize > hogs.len(), "{stats:?}");
    let filter = SessionFilter::default()
        .with_state(SessionState::IdleInTransaction)
        .with_application("hog");
    let stuck = held.sessions(&filter).await.unwrap();
    assert_eq!(stuck.len(), hogs.len());
    let pids: Vec<_> = stuck.iter().take(5).map(|s| s.pid).collect();
    assert_eq!(held.terminate(&pids, &filter).await.unwrap().len(), 5);
    // Room again: a new connection gets in.
    tokio::time::timeout(WAIT, async {
        while cold.ping().await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the server accepts connections again");
    hogs.clear();
}

/// Without `pg_dump` the database says it cannot back up, and a backup is `Unsupported`;
/// the conformance suite's capability check passes for it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pg_dump_backup_is_disclaimed_and_unsupported() {
    let pg = require!(Stack::new().postgres().await);
    let db = PgDatabaseBuilder::new(pg.url())
        .with_statement_timeout(Duration::from_secs(5))
        .with_tools("/nonexistent/pg_dump", "/nonexistent/pg_restore")
        .build()
        .unwrap();
    assert!(!db.probe_capabilities().await.unwrap().backup);
    assert!(db_for(&pg).capabilities().backup, "pg_dump is on the PATH");
    let dir = tempfile::tempdir().unwrap();
    let name = Identifier::new(pg.database()).unwrap();
    let err = db
        .backup(&BackupOptions::new(name, dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{}", err.chain());
    conformance::database::capabilities_match_behaviour(&db).await;
}
