//! The run engine's safety guarantees (README, "Safety"): a failure keeps its record, a
//! failed step does not strand the service, deadlines and cancellation never cut a change in
//! half, and a journal that hangs cannot hang the run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default,
    reason = "tests fail loudly; non-exhaustive types are built by assignment"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ops_core::database::BackupInfo;
use ops_core::journal::{Journal, JournalCapabilities, JournalEntry, RunQuery, RunSummary};
use ops_core::platform::WorkloadStatus;
use ops_core::run::{
    Acted, ActionStatus, ApprovalPolicy, FindingLevel, Mode, RunContext, RunId, RunOutcome, Step,
};
use ops_core::runbooks::{RecoveryPlan, RunbookConfig, Targets, database_recovery};
use ops_core::testing::{FakeDatabase, FakePlatform, ScriptedProbe};
use ops_core::{ErrorKind, OpsError, WorkloadRef};
use tokio_util::sync::CancellationToken;

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn execute() -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .build()
}

fn recovery(db: &Arc<FakeDatabase>, platform: &Arc<FakePlatform>) -> Targets {
    let mut cfg =
        RunbookConfig::default().with_verify(2, Duration::from_secs(1), Duration::from_secs(30));
    cfg.recovery = Some(RecoveryPlan::new(
        "/backups/shop.dump",
        "shop".parse().unwrap(),
    ));
    let probe = ScriptedProbe::tracking("api", Arc::clone(platform), api());
    Targets::new(Arc::clone(platform) as _, api())
        .with_database(Arc::clone(db) as _)
        .with_probe(Arc::new(probe))
        .with_config(cfg)
}

fn backed_up_db() -> FakeDatabase {
    FakeDatabase::default().with_backup(BackupInfo::new(
        "/backups/shop.dump",
        "ab".repeat(32),
        4096,
    ))
}

#[tokio::test(start_paused = true)]
async fn a_restore_that_fails_after_the_stop_starts_the_application_and_returns_the_report() {
    let db = Arc::new(backed_up_db().fail_next("restore", ErrorKind::Unavailable));
    let platform =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 2)));
    let failure = database_recovery(&execute(), &recovery(&db, &platform))
        .await
        .unwrap_err();
    assert_eq!(failure.error().step(), Some("restore"));
    assert_eq!(failure.error().kind(), ErrorKind::Unavailable);
    // The application is running again: stopped, then started.
    assert_eq!(
        platform.mutations(),
        ["stop prod/deployment/api", "start prod/deployment/api"]
    );
    let report = failure.report();
    assert_eq!(report.outcome, RunOutcome::Failed);
    assert!(report.error.as_deref().unwrap().contains("restore"));
    let actions: Vec<(&str, ActionStatus)> = report
        .actions
        .iter()
        .map(|a| (a.step.as_str(), a.status))
        .collect();
    assert_eq!(
        actions,
        [
            ("stop_application", ActionStatus::Taken),
            ("restore", ActionStatus::Failed),
            ("start_application", ActionStatus::Taken),
        ]
    );
    assert!(report.to_markdown().contains("Failed with"));
}

#[tokio::test(start_paused = true)]
async fn a_denied_stop_means_no_restore_and_no_change() {
    let db = Arc::new(backed_up_db());
    let platform =
        Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 2)));
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::allow_steps_anywhere([
            "restore",
            "start_application",
        ]))
        .build();
    let report = database_recovery(&ctx, &recovery(&db, &platform))
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert!(db.mutations().is_empty(), "restored onto a running app");
    assert!(platform.mutations().is_empty());
    assert!(report.step("restore").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_failed_stop_still_starts_what_it_may_have_stopped_and_never_restores() {
    let db = Arc::new(backed_up_db());
    let platform = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .fail_next("stop", ErrorKind::Unavailable),
    );
    let failure = database_recovery(&execute(), &recovery(&db, &platform))
        .await
        .unwrap_err();
    assert_eq!(failure.error().step(), Some("stop_application"));
    assert!(db.mutations().is_empty());
    assert_eq!(platform.mutations(), ["start prod/deployment/api"]);
    assert!(failure.report().step("restore").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_disruptive_operation_past_its_timeout_is_finished_not_dropped() {
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .step_timeout(Duration::from_millis(100))
        .build();
    let run = ctx.begin("swap", "db").await;
    let finished = AtomicBool::new(false);
    let acted = run
        .act(
            Step::disruptive("swap").change("rename a, rename b"),
            || async {
                tokio::time::sleep(Duration::from_secs(5)).await; // the second rename
                finished.store(true, Ordering::SeqCst);
                Ok::<_, OpsError>(2)
            },
        )
        .await
        .unwrap();
    assert_eq!(acted, Acted::Done(2));
    assert!(finished.load(Ordering::SeqCst), "dropped half-way");
    let report = run.snapshot();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.level == FindingLevel::Warning && f.title.contains("overran")),
        "{:?}",
        report.findings
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_mid_change_lets_the_change_finish_and_its_undo_still_runs() {
    let token = CancellationToken::new();
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .cancellation(token.clone())
        .build();
    let run = ctx.begin("maintenance", "api").await;
    let finished = AtomicBool::new(false);
    let stop = run
        .act(Step::disruptive("stop_application"), || async {
            token.cancel(); // Ctrl-C while the stop is under way
            tokio::time::sleep(Duration::from_secs(1)).await;
            finished.store(true, Ordering::SeqCst);
            Ok::<_, OpsError>(())
        })
        .await
        .unwrap();
    assert!(stop.is_done());
    assert!(finished.load(Ordering::SeqCst));
    // A new change is refused after the cancellation...
    let err = run
        .act(Step::disruptive("restore"), || async {
            Ok::<_, OpsError>(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    // ...but the undo of the change that ran is not.
    let start = run
        .act(
            Step::disruptive("start_application").undoing("stop_application"),
            || async { Ok::<_, OpsError>(()) },
        )
        .await
        .unwrap();
    assert!(start.is_done());
}

#[tokio::test(start_paused = true)]
async fn an_undo_of_a_step_that_never_ran_needs_its_own_approval() {
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::DenyAll)
        .build();
    let run = ctx.begin("maintenance", "api").await;
    let acted = run
        .act(
            Step::disruptive("start_application").undoing("stop_application"),
            || async { Ok::<_, OpsError>(()) },
        )
        .await
        .unwrap();
    assert!(matches!(acted, Acted::Denied { .. }));
}

/// A journal whose writes never complete.
#[derive(Debug)]
struct HangingJournal;

#[async_trait]
impl Journal for HangingJournal {
    fn backend(&self) -> &'static str {
        "hanging"
    }
    fn capabilities(&self) -> JournalCapabilities {
        let mut caps = JournalCapabilities::default();
        caps.durable = true;
        caps
    }
    async fn append(&self, _entry: &JournalEntry) -> Result<(), OpsError> {
        std::future::pending().await
    }
    async fn entries(&self, _run: &RunId) -> Result<Vec<JournalEntry>, OpsError> {
        std::future::pending().await
    }
    async fn runs(&self, _query: &RunQuery) -> Result<Vec<RunSummary>, OpsError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_journal_fails_the_change_with_a_timeout_within_its_deadline() {
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .journal(Arc::new(HangingJournal))
        .journal_timeout(Duration::from_secs(2))
        .build();
    let started = tokio::time::Instant::now();
    let run = ctx.begin("restart", "api").await;
    let ran = AtomicBool::new(false);
    let err = run
        .act(Step::disruptive("restart"), || async {
            ran.store(true, Ordering::SeqCst);
            Ok::<_, OpsError>(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(!ran.load(Ordering::SeqCst), "ran without a journal record");
    // begin (2 s) + the StepStarted write (2 s); nothing waits forever.
    assert!(
        started.elapsed() <= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let report = run.conclude(Err(err)).await.unwrap_err().into_parts().0;
    assert_eq!(report.outcome, RunOutcome::Failed);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("journal unavailable"))
    );
}

mod approval {
    use std::io::Write as _;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use ops_core::notify::Notification;
    use ops_core::run::{
        ActionStatus, ApprovalPolicy, ApprovalRequest, Approver, Mode, RunContext, TerminalApprover,
    };
    use ops_core::testing::RecordingNotifier;

    fn request(target: &str) -> ApprovalRequest {
        let mut req = ApprovalRequest::new("api_down", "restart", "rolling restart");
        target.clone_into(&mut req.target);
        req.changes = vec!["replace instance api-1\u{1b}[2J".to_owned()];
        req
    }

    #[tokio::test]
    async fn a_rule_approves_one_runbook_step_and_target_and_nothing_else() {
        let policy =
            ApprovalPolicy::allow(["api_down:restart@prod/deployment/api".parse().unwrap()]);
        assert!(
            policy
                .decide(&request("prod/deployment/api"))
                .await
                .is_approved()
        );
        assert!(
            !policy
                .decide(&request("prod/deployment/billing"))
                .await
                .is_approved()
        );
        let mut other_runbook = request("prod/deployment/api");
        other_runbook.runbook = "high_latency".to_owned();
        assert!(!policy.decide(&other_runbook).await.is_approved());
        let anywhere = ApprovalPolicy::allow_steps_anywhere(["restart"]);
        assert!(anywhere.decide(&other_runbook).await.is_approved());
    }

    #[tokio::test(start_paused = true)]
    async fn notifications_go_through_the_approver() {
        let notifier = Arc::new(RecordingNotifier::default());
        let ctx = RunContext::builder()
            .allow_volatile_journal()
            .mode(Mode::Execute)
            .approver(ApprovalPolicy::DenyAll)
            .notifier(Arc::clone(&notifier) as _)
            .build();
        let run = ctx.begin("api_down", "api").await;
        run.notify(Notification::new(
            ops_core::incident::Severity::Critical,
            "api is down",
            "",
        ))
        .await;
        assert!(notifier.sent().is_empty(), "paged without approval");
        assert_eq!(run.snapshot().actions[0].status, ActionStatus::Denied);
    }

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Screen(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Screen {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_terminal_approver_shows_the_plan_and_takes_only_a_fresh_yes() {
        let (keyboard, mut typing) = std::io::pipe().unwrap();
        let screen = Screen::default();
        let approver =
            TerminalApprover::new(std::io::BufReader::new(keyboard), screen.clone(), "alice")
                .with_timeout(Duration::from_secs(5));
        // Typed before the question: not an answer to it.
        typing.write_all(b"y\n").unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            typing.write_all(b"no\n").unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            typing.write_all(b"yes\n").unwrap();
            typing
        });
        let first = approver.decide(&request("prod/deployment/api")).await;
        assert!(!first.is_approved(), "a stale or negative answer approved");
        let second = approver.decide(&request("prod/deployment/api")).await;
        assert!(second.is_approved());
        let typing = answer.await.unwrap();
        let shown = String::from_utf8(screen.0.lock().unwrap().clone()).unwrap();
        assert!(shown.contains("api_down wants to run restart on prod/deployment/api"));
        assert!(
            shown.contains("replace instance api-1\\u{1b}[2J"),
            "{shown}"
        );
        assert!(
            !shown.contains('\u{1b}'),
            "a control character reached the terminal"
        );
        drop(typing);
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_or_a_closed_terminal_is_no() {
        let (keyboard, typing) = std::io::pipe().unwrap();
        let approver =
            TerminalApprover::new(std::io::BufReader::new(keyboard), std::io::sink(), "alice")
                .with_timeout(Duration::from_secs(30));
        let silent = approver.decide(&request("x")).await;
        assert!(!silent.is_approved());
        drop(typing);
        let closed = approver.decide(&request("x")).await;
        assert!(!closed.is_approved());
    }
}

mod dry_run {
    use std::sync::Arc;
    use std::time::Duration;

    use ops_core::cache::ClientFilter;
    use ops_core::database::SessionFilter;
    use ops_core::platform::{RestartOptions, WorkloadStatus};
    use ops_core::run::{Mode, RunContext, Step};
    use ops_core::runbooks::{RunbookConfig, Targets};
    use ops_core::testing::{FakeCache, FakeDatabase, FakePlatform, ScriptedProbe};
    use ops_core::{ErrorKind, KeyPattern, OpsError};

    use super::api;

    #[tokio::test(start_paused = true)]
    async fn a_runbook_that_tries_a_change_outside_act_fails_loudly_and_changes_nothing() {
        let platform =
            Arc::new(FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 2)));
        let db = Arc::new(FakeDatabase::default());
        let cache = Arc::new(FakeCache::default());
        let t = Targets::new(Arc::clone(&platform) as _, api())
            .with_database(Arc::clone(&db) as _)
            .with_cache(Arc::clone(&cache) as _);
        let ctx = RunContext::builder().allow_volatile_journal().build(); // dry run
        let run = ctx.begin("sneaky", "api").await;
        // What a careless runbook would do: a change disguised as a read.
        let dry = t.for_mode(ctx.mode());
        let attempts: Vec<Result<(), OpsError>> = vec![
            run.read(Step::read_only("peek"), || {
                dry.platform
                    .rollout_restart(&t.workload, RestartOptions::default())
            })
            .await,
            run.read(Step::read_only("peek_db"), || async {
                dry.database()?
                    .terminate(&[], &SessionFilter::all())
                    .await
                    .map(drop)
            })
            .await,
            run.read(Step::read_only("peek_cache"), || async {
                let pattern = KeyPattern::new("session:*")?;
                dry.cache()?
                    .purge(&pattern, &ops_core::cache::PurgeOptions::default())
                    .await
                    .map(drop)
            })
            .await,
            run.read(Step::read_only("peek_clients"), || async {
                dry.cache()?
                    .kill_clients(&[1], &ClientFilter::all())
                    .await
                    .map(drop)
            })
            .await,
        ];
        for attempt in attempts {
            let err = attempt.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.chain());
            assert!(err.chain().contains("dry run"), "{}", err.chain());
        }
        assert!(platform.mutations().is_empty());
        assert!(db.mutations().is_empty());
        assert!(cache.mutations().is_empty());
        // In execute mode the same targets are the real ones.
        let live = t.for_mode(Mode::Execute);
        live.platform
            .rollout_restart(&t.workload, RestartOptions::default())
            .await
            .unwrap();
        assert_eq!(platform.mutations().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn every_runbook_in_dry_run_leaves_every_fake_untouched() {
        let platform = Arc::new(
            FakePlatform::default().with_workload(WorkloadStatus::crash_looping(api(), 2)),
        );
        let db = Arc::new(FakeDatabase::default());
        let cache = Arc::new(FakeCache::default());
        let mut cfg =
            RunbookConfig::default().with_verify(1, Duration::from_secs(1), Duration::from_secs(5));
        cfg.cache.purgeable = vec![KeyPattern::new("cache:*").unwrap()];
        let t = Targets::new(Arc::clone(&platform) as _, api())
            .with_database(Arc::clone(&db) as _)
            .with_cache(Arc::clone(&cache) as _)
            .with_probe(Arc::new(ScriptedProbe::new("api")))
            .with_config(cfg);
        let ctx = RunContext::builder().allow_volatile_journal().build();
        let _ = ops_core::runbooks::api_down(&ctx, &t).await;
        let _ = ops_core::runbooks::cache_failure(&ctx, &t).await;
        let _ = ops_core::runbooks::db_connections(&ctx, &t).await;
        let _ = ops_core::runbooks::database_full(&ctx, &t).await;
        let _ = ops_core::runbooks::db_maintenance(&ctx, &t).await;
        let _ = ops_core::runbooks::database_recovery(&ctx, &t).await;
        let _ = ops_core::runbooks::high_error_rate(&ctx, &t).await;
        let _ = ops_core::runbooks::high_latency(&ctx, &t).await;
        let _ = ops_core::runbooks::oom(&ctx, &t).await;
        let _ = ops_core::runbooks::morning_checks(&ctx, &t).await;
        let _ = ops_core::runbooks::restart_and_verify(&ctx, &t).await;
        assert!(
            platform.mutations().is_empty(),
            "{:?}",
            platform.mutations()
        );
        assert!(db.mutations().is_empty(), "{:?}", db.mutations());
        assert!(cache.mutations().is_empty(), "{:?}", cache.mutations());
    }
}
