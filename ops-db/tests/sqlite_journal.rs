//! `SqliteJournal`: the journal conformance suite, durability across reopen, WAL mode.

use ops_core::journal::{Journal, JournalEntry, JournalEvent, JournalExt as _};
use ops_core::run::{Mode, RunId, StepKind};
use ops_core::testing::conformance;
use ops_db::SqliteJournal;

#[tokio::test]
async fn conformance_suite_passes_on_a_file_and_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let journal = SqliteJournal::open(dir.path().join("journal.db"))
        .await
        .unwrap();
    assert!(journal.capabilities().durable);
    conformance::journal::run_all(&journal).await;
    let memory = SqliteJournal::in_memory().await.unwrap();
    assert!(!memory.capabilities().durable);
    conformance::journal::run_all(&memory).await;
}

#[tokio::test]
async fn a_crash_leaves_the_started_step_in_progress_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let run: RunId = "20260101T000000Z-crash".parse().unwrap();
    {
        let journal = SqliteJournal::open(&path).await.unwrap();
        let mode: String = {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        assert_eq!(mode, "wal");
        let at = jiff::Timestamp::now();
        journal
            .append(&JournalEntry::new(
                run.clone(),
                "db_maintenance",
                Mode::Execute,
                at,
                JournalEvent::RunStarted,
            ))
            .await
            .unwrap();
        journal
            .append(
                &JournalEntry::new(
                    run.clone(),
                    "db_maintenance",
                    Mode::Execute,
                    at,
                    JournalEvent::StepStarted,
                )
                .with_step("vacuum_full", StepKind::Disruptive)
                .with_changes(vec!["VACUUM (FULL) \"public\".\"events\"".to_owned()]),
            )
            .await
            .unwrap();
        // Dropped without finishing: the process "crashed".
    }
    let reopened = SqliteJournal::open(&path).await.unwrap();
    let open = reopened.in_progress(&run).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].step.as_deref(), Some("vacuum_full"));
    assert_eq!(open[0].changes, ["VACUUM (FULL) \"public\".\"events\""]);
}
