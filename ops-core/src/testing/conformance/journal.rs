//! Conformance tests for [`Journal`] backends.

use crate::journal::{Journal, JournalEntry, JournalEvent, JournalExt as _, RunQuery};
use crate::run::{Mode, RunId, StepKind};
use crate::vocab::Severity;

/// A fresh run id; the random suffix keeps parallel test runs apart.
fn run_id(_purpose: &str) -> RunId {
    RunId::generate(jiff::Timestamp::now())
}

fn at(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Entries come back in append order with every field intact (the run's severity on its
/// `RunFinished` entry included).
///
/// # Panics
/// When the journal loses, reorders or alters entries.
pub async fn append_then_read_back(journal: &dyn Journal) {
    let run = run_id("rt");
    let entries = vec![
        JournalEntry::new(
            run.clone(),
            "conformance",
            Mode::Execute,
            at(0),
            JournalEvent::RunStarted,
        ),
        JournalEntry::new(
            run.clone(),
            "conformance",
            Mode::Execute,
            at(1),
            JournalEvent::StepStarted,
        )
        .with_step("restart", StepKind::Disruptive)
        .with_detail("rolling restart of \"prod/deployment/api\"; ünïcode ✓")
        .with_changes(vec![
            "restart pod api-0".to_owned(),
            "restart pod api-1".to_owned(),
        ]),
        JournalEntry::new(
            run.clone(),
            "conformance",
            Mode::Execute,
            at(2),
            JournalEvent::StepFailed {
                kind: crate::ErrorKind::Timeout,
            },
        )
        .with_step("restart", StepKind::Disruptive),
        JournalEntry::new(
            run.clone(),
            "conformance",
            Mode::Execute,
            at(3),
            JournalEvent::RunFinished { ok: false },
        )
        .with_severity(Some(Severity::High)),
    ];
    for e in &entries {
        journal
            .append(e)
            .await
            .unwrap_or_else(|e| panic!("append failed: {}", e.chain()));
    }
    let back = journal
        .entries(&run)
        .await
        .unwrap_or_else(|e| panic!("entries failed: {}", e.chain()));
    assert_eq!(
        back, entries,
        "journal must return entries unchanged and in order"
    );
    let unknown = run_id("none");
    assert!(
        journal
            .entries(&unknown)
            .await
            .unwrap_or_default()
            .is_empty(),
        "unknown run gives no entries"
    );
}

/// A step started and never finished is reported as in progress; finished steps are not.
///
/// # Panics
/// When open steps are not detected.
pub async fn open_steps_are_in_progress(journal: &dyn Journal) {
    let run = run_id("open");
    let e = |secs, event, step: &str| {
        JournalEntry::new(run.clone(), "conformance", Mode::Execute, at(secs), event)
            .with_step(step, StepKind::Disruptive)
    };
    for entry in [
        JournalEntry::new(
            run.clone(),
            "conformance",
            Mode::Execute,
            at(0),
            JournalEvent::RunStarted,
        ),
        e(1, JournalEvent::StepStarted, "a"),
        e(2, JournalEvent::StepSucceeded, "a"),
        e(3, JournalEvent::StepStarted, "b"),
    ] {
        journal
            .append(&entry)
            .await
            .unwrap_or_else(|e| panic!("append failed: {}", e.chain()));
    }
    let open = journal
        .in_progress(&run)
        .await
        .unwrap_or_else(|e| panic!("in_progress failed: {}", e.chain()));
    assert_eq!(open.len(), 1, "exactly one step is open");
    assert_eq!(open[0].step.as_deref(), Some("b"));
}

/// Runs are listed newest first, filtered by runbook and limited.
///
/// # Panics
/// When listing is wrong.
pub async fn runs_are_listed_newest_first(journal: &dyn Journal) {
    let book = format!("conformance_list_{}", fastrand::u32(..));
    let mut ids = Vec::new();
    for i in 0..3 {
        let run = run_id(&format!("l{i}"));
        journal
            .append(&JournalEntry::new(
                run.clone(),
                book.clone(),
                Mode::DryRun,
                at(100 + i),
                JournalEvent::RunStarted,
            ))
            .await
            .unwrap_or_else(|e| panic!("append failed: {}", e.chain()));
        ids.push(run);
    }
    journal
        .append(
            &JournalEntry::new(
                ids[0].clone(),
                book.clone(),
                Mode::DryRun,
                at(200),
                JournalEvent::RunFinished { ok: true },
            )
            .with_severity(Some(Severity::Critical)),
        )
        .await
        .unwrap_or_else(|e| panic!("append failed: {}", e.chain()));
    let runs = journal
        .runs(&RunQuery::default().with_runbook(book.clone()).with_limit(2))
        .await
        .unwrap_or_else(|e| panic!("runs failed: {}", e.chain()));
    assert_eq!(runs.len(), 2, "limit applies");
    assert_eq!(runs[0].run_id, ids[2], "newest first");
    assert_eq!(runs[1].run_id, ids[1]);
    assert!(runs.iter().all(|r| r.runbook == book));
    let all = journal
        .runs(&RunQuery::default().with_runbook(book))
        .await
        .unwrap_or_default();
    let first = all.iter().find(|r| r.run_id == ids[0]);
    assert_eq!(
        first.map(|r| r.finished),
        Some(Some((at(200), true))),
        "finished runs say when and how"
    );
    assert_eq!(
        first.map(|r| r.severity),
        Some(Some(Severity::Critical)),
        "finished runs keep their report's severity"
    );
    let second = all.iter().find(|r| r.run_id == ids[1]);
    assert_eq!(
        second.map(|r| r.severity),
        Some(None),
        "an open run has none"
    );
}

/// Every journal test.
///
/// # Panics
/// When any of them fails.
pub async fn run_all(journal: &dyn Journal) {
    append_then_read_back(journal).await;
    open_steps_are_in_progress(journal).await;
    runs_are_listed_newest_first(journal).await;
}
