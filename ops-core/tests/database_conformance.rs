//! `FakeDatabase` passes the database conformance suite the PostgreSQL backend runs
//! (`ops-db/tests/pg.rs`), with every arrangement of the fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;
use std::time::Duration;

use ops_core::database::{DatabaseSize, Session, SessionState, SlowQuery};
use ops_core::testing::FakeDatabase;
use ops_core::testing::conformance::database::{
    DatabaseFixture, KnownStatement, ScratchTable, run_all,
};
use ops_core::{Database as _, Pid};

const IDLE: &str = "opsbook-conformance-idle";
const BUSY: &str = "opsbook-conformance-busy";
const DAY: Duration = Duration::from_secs(86_400);

fn session(pid: i32, state: SessionState, app: &str) -> Session {
    let mut s = Session::new(Pid::new(pid).unwrap(), state).aged(Duration::from_secs(90));
    s.application = Some(app.to_owned());
    s
}

/// The fake with an idle and a busy session and a scratch table of 25 old and 7 new rows.
fn seeded() -> (FakeDatabase, ScratchTable) {
    let scratch = ScratchTable::new(
        "public.opsbook_conformance_rows".parse().unwrap(),
        "created_at".parse().unwrap(),
        30 * DAY,
        25,
        7,
    );
    let db = FakeDatabase::default()
        .with_sessions(vec![
            session(4242, SessionState::Idle, IDLE),
            session(4243, SessionState::Active, BUSY),
        ])
        .with_database_sizes(vec![DatabaseSize::new("app", 8 << 20)])
        .with_rows(
            scratch.table.clone(),
            scratch.column.clone(),
            60 * DAY,
            scratch.old_rows,
        )
        .with_rows(
            scratch.table.clone(),
            scratch.column.clone(),
            DAY,
            scratch.new_rows,
        );
    (db, scratch)
}

#[tokio::test(start_paused = true)]
async fn fake_database_conforms_with_every_arrangement() {
    let (db, scratch) = seeded();
    let normalised = SlowQuery::new(
        "SELECT count(*) FROM opsbook_conformance_rows WHERE note = $1",
        3,
        12.0,
        4.0,
        3,
    );
    let db = db
        .with_backups_on_disk()
        .with_slow_queries(Some(vec![normalised]));
    let dir = tempfile::tempdir().unwrap();
    let restored = Arc::new(db.connected_to("app_restored"));
    let fx = DatabaseFixture::new(IDLE)
        .with_busy_session(BUSY)
        .with_scratch_table(scratch.clone())
        .with_backups("app".parse().unwrap(), dir.path())
        .with_restore_into(
            "app_restored".parse().unwrap(),
            Some(Arc::clone(&restored) as _),
        )
        .with_known_statement(KnownStatement::new(
            "opsbook_conformance_rows",
            ["opsbook-literal-7731"],
        ));
    run_all(&db, &fx).await;
    // The restored copy kept every row the backup saw; the original lost its old ones.
    let all = ops_core::database::RowRetention::new(
        scratch.table.clone(),
        scratch.column.clone(),
        Duration::ZERO,
    );
    assert_eq!(restored.count_older_than(&all).await.unwrap(), 32);
    assert_eq!(db.count_older_than(&all).await.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn fake_database_conforms_with_only_an_idle_session_and_without_slow_queries() {
    let db = FakeDatabase::default()
        .with_sessions(vec![session(4242, SessionState::Idle, IDLE)])
        .with_database_sizes(vec![DatabaseSize::new("app", 8 << 20)])
        .with_slow_queries(None);
    run_all(
        &db,
        &DatabaseFixture::new(IDLE)
            .with_known_statement(KnownStatement::new("anything", ["secret"])),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn backups_without_a_restore_target_still_verify_and_refuse_corruption() {
    let (db, scratch) = seeded();
    let dir = tempfile::tempdir().unwrap();
    let fx = DatabaseFixture::new(IDLE)
        .with_scratch_table(scratch)
        .with_backups("app".parse().unwrap(), dir.path());
    run_all(&db.with_backups_on_disk(), &fx).await;
    let dumps = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "dump")
        })
        .count();
    assert_eq!(
        dumps, 1,
        "one backup written, its corrupted copy kept apart"
    );
}
