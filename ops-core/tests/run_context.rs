//! The run context's rules: dry run, approval, journaling, timeouts, retries, cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ops_core::journal::{Journal as _, JournalEvent, JournalExt as _, MemoryJournal};
use ops_core::run::{
    Acted, ActionStatus, ApprovalPolicy, ApprovalRequest, CallbackApprover, Decision, Mode,
    RetryPolicy, RunContext, RunOutcome, Step, StepStatus, TokioClock,
};
use ops_core::{ErrorKind, OpsError};

fn ctx(mode: Mode, approver: ApprovalPolicy, journal: Arc<MemoryJournal>) -> RunContext {
    RunContext::builder()
        .allow_volatile_journal()
        .mode(mode)
        .approver(approver)
        .journal(journal)
        .clock(Arc::new(TokioClock::starting_at(
            "2026-11-25T03:00:00Z".parse().unwrap(),
        )))
        .retry(RetryPolicy::default().with_jitter(false))
        .build()
}

fn events(journal: &MemoryJournal) -> Vec<String> {
    journal
        .all()
        .iter()
        .map(|e| {
            format!(
                "{}{}",
                e.event.name(),
                e.step.as_ref().map(|s| format!(":{s}")).unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn dry_run_plans_disruptive_steps_without_running_them() {
    let journal = Arc::new(MemoryJournal::default());
    let ctx = ctx(
        Mode::DryRun,
        ApprovalPolicy::approve_all("t"),
        Arc::clone(&journal),
    );
    let ran = AtomicU32::new(0);
    let run = ctx.begin("demo", "prod/deployment/api").await;
    let acted = run
        .act(
            Step::disruptive("restart")
                .change("replace instance api-0")
                .change("replace instance api-1"),
            || async {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, OpsError>(())
            },
        )
        .await
        .unwrap();
    assert_eq!(acted, Acted::Planned);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "a dry run never runs a disruptive step"
    );
    let report = run.finish(RunOutcome::Planned).await;
    let planned: Vec<_> = report.actions_with(ActionStatus::Planned).collect();
    assert_eq!(planned.len(), 1);
    assert_eq!(
        planned[0].changes,
        ["replace instance api-0", "replace instance api-1"]
    );
    assert_eq!(report.timeline[0].status, StepStatus::Planned);
    assert_eq!(
        events(&journal),
        ["run_started", "step_planned:restart", "run_finished"]
    );
}

#[tokio::test(start_paused = true)]
async fn dry_run_never_asks_the_approver() {
    let asked = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&asked);
    let approver = CallbackApprover::new(move |_req: ApprovalRequest| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Decision::approve("x") }
    });
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .approver(approver)
        .build();
    let run = ctx.begin("demo", "t").await;
    run.act(Step::disruptive("flush"), || async {
        Ok::<_, OpsError>(())
    })
    .await
    .unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn denied_approval_runs_nothing_and_the_report_says_so() {
    let journal = Arc::new(MemoryJournal::default());
    let ctx = ctx(
        Mode::Execute,
        ApprovalPolicy::allow_steps_anywhere(["restart"]),
        Arc::clone(&journal),
    );
    let ran = AtomicU32::new(0);
    let run = ctx.begin("demo", "t").await;
    let acted = run
        .act(
            Step::disruptive("flush_cache").change("delete every key"),
            || async {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, OpsError>(())
            },
        )
        .await
        .unwrap();
    assert!(matches!(acted, Acted::Denied { ref reason } if reason.contains("flush_cache")));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let report = run.finish(RunOutcome::Unresolved).await;
    let denied: Vec<_> = report.actions_with(ActionStatus::Denied).collect();
    assert_eq!(denied.len(), 1);
    assert!(
        denied[0]
            .note
            .as_deref()
            .unwrap()
            .contains("denied by policy")
    );
    assert!(report.to_markdown().contains("[denied] `flush_cache`"));
    assert_eq!(
        events(&journal),
        ["run_started", "step_denied:flush_cache", "run_finished"]
    );
}

#[tokio::test(start_paused = true)]
async fn approved_step_is_journaled_before_it_runs_and_after() {
    let journal = Arc::new(MemoryJournal::default());
    let ctx = ctx(
        Mode::Execute,
        ApprovalPolicy::approve_all("oncall"),
        Arc::clone(&journal),
    );
    let run = ctx.begin("demo", "t").await;
    let seen_before = Arc::new(std::sync::Mutex::new(Vec::new()));
    let probe = Arc::clone(&seen_before);
    let j = Arc::clone(&journal);
    let acted = run
        .act(Step::disruptive("restart"), || async move {
            // While the step runs, the journal already says it started.
            probe.lock().unwrap().extend(events(&j));
            Ok::<_, OpsError>(7)
        })
        .await
        .unwrap();
    assert_eq!(acted, Acted::Done(7));
    assert_eq!(
        *seen_before.lock().unwrap(),
        ["run_started", "step_started:restart"]
    );
    assert_eq!(
        events(&journal),
        [
            "run_started",
            "step_started:restart",
            "step_succeeded:restart"
        ]
    );
    let report = run.finish(RunOutcome::Recovered).await;
    assert_eq!(report.actions[0].status, ActionStatus::Taken);
    assert_eq!(
        report.actions[0].note.as_deref(),
        Some("approved by oncall")
    );
}

#[tokio::test(start_paused = true)]
async fn failed_step_leaves_a_failed_entry_and_the_error_names_the_step() {
    let journal = Arc::new(MemoryJournal::default());
    let ctx = ctx(
        Mode::Execute,
        ApprovalPolicy::approve_all("t"),
        Arc::clone(&journal),
    );
    let run = ctx.begin("demo", "t").await;
    let err = run
        .act(Step::disruptive("restart"), || async {
            Err::<(), _>(OpsError::new(
                ErrorKind::Conflict,
                "k8s",
                "rollout_restart",
                "prod/deployment/api",
            ))
        })
        .await
        .unwrap_err();
    assert_eq!(err.step(), Some("restart"));
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.to_string()
            .starts_with("step restart: k8s: rollout_restart failed")
    );
    let last = journal.all().pop().unwrap();
    assert_eq!(
        last.event,
        JournalEvent::StepFailed {
            kind: ErrorKind::Conflict
        }
    );
    assert!(journal.in_progress(&run.id()).await.unwrap().is_empty());
    assert_eq!(run.snapshot().actions[0].status, ActionStatus::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_step_that_never_finishes_is_abandoned_after_its_timeout_and_grace_as_timed_out() {
    let journal = Arc::new(MemoryJournal::default());
    let ctx = ctx(
        Mode::Execute,
        ApprovalPolicy::approve_all("t"),
        Arc::clone(&journal),
    );
    let run = ctx.begin("demo", "t").await;
    let start = tokio::time::Instant::now();
    let err = run
        .act(
            Step::disruptive("slow_restart").timeout(Duration::from_secs(30)),
            || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, OpsError>(())
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    // The 30 s timeout, then the 120 s default grace to finish the change.
    assert_eq!(start.elapsed(), Duration::from_secs(150));
    assert!(err.chain().contains("may be incomplete"), "{}", err.chain());
    assert_eq!(
        journal.all().pop().unwrap().event,
        JournalEvent::StepTimedOut
    );
    assert_eq!(run.snapshot().timeline[0].status, StepStatus::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_step_that_never_finishes_is_abandoned_after_the_grace_as_cancelled() {
    let journal = Arc::new(MemoryJournal::default());
    let ctx = ctx(
        Mode::Execute,
        ApprovalPolicy::approve_all("t"),
        Arc::clone(&journal),
    );
    let token = ctx.cancellation().clone();
    let run = ctx.begin("demo", "t").await;
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        token.cancel();
    });
    let start = tokio::time::Instant::now();
    let err = run
        .act(Step::disruptive("drain"), || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, OpsError>(())
        })
        .await
        .unwrap_err();
    canceller.await.unwrap();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(start.elapsed(), Duration::from_secs(125));
    assert_eq!(
        journal.all().pop().unwrap().event,
        JournalEvent::StepCancelled
    );
    // Later steps refuse to start.
    let next = run
        .read(Step::read_only("status"), || async {
            Ok::<_, OpsError>(())
        })
        .await
        .unwrap_err();
    assert_eq!(next.kind(), ErrorKind::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn a_crash_mid_step_leaves_the_step_in_progress() {
    let journal = Arc::new(MemoryJournal::default());
    let ctx = ctx(
        Mode::Execute,
        ApprovalPolicy::approve_all("t"),
        Arc::clone(&journal),
    );
    let run = ctx.begin("demo", "t").await;
    let id = run.id();
    // Dropping the step future mid-flight is what a crash or a killed task looks like.
    let step = run.act(Step::disruptive("restore"), || async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, OpsError>(())
    });
    let _ = tokio::time::timeout(Duration::from_secs(1), step).await;
    let open = journal.in_progress(&id).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].step.as_deref(), Some("restore"));
}

#[tokio::test(start_paused = true)]
async fn a_journal_that_cannot_record_the_step_stops_it_from_running() {
    // The run start is recorded, then the journal fails.
    let journal = Arc::new(MemoryJournal::default().fail_after(1));
    let ctx = ctx(
        Mode::Execute,
        ApprovalPolicy::approve_all("t"),
        Arc::clone(&journal),
    );
    let ran = AtomicU32::new(0);
    let run = ctx.begin("demo", "t").await;
    let err = run
        .act(Step::disruptive("terminate_sessions"), || async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, OpsError>(())
        })
        .await
        .unwrap_err();
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no journal entry, no change");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.chain()
            .contains("not run because the journal could not record it")
    );
}

#[tokio::test(start_paused = true)]
async fn read_only_steps_retry_retryable_errors_with_backoff() {
    let ctx = ctx(
        Mode::DryRun,
        ApprovalPolicy::DenyAll,
        Arc::new(MemoryJournal::default()),
    );
    let run = ctx.begin("demo", "t").await;
    let calls = AtomicU32::new(0);
    let start = tokio::time::Instant::now();
    let v = run
        .read(Step::read_only("ping"), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(OpsError::new(
                    ErrorKind::Unavailable,
                    "redis",
                    "ping",
                    "cache:6379",
                ))
            } else {
                Ok("PONG")
            }
        })
        .await
        .unwrap();
    assert_eq!(v, "PONG");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(600),
        "200 ms then 400 ms of backoff"
    );
    assert_eq!(run.snapshot().timeline[0].attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn read_only_steps_do_not_retry_permanent_errors() {
    let ctx = ctx(
        Mode::DryRun,
        ApprovalPolicy::DenyAll,
        Arc::new(MemoryJournal::default()),
    );
    let run = ctx.begin("demo", "t").await;
    let calls = AtomicU32::new(0);
    let err = run
        .read(Step::read_only("workload"), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(OpsError::new(
                ErrorKind::NotFound,
                "k8s",
                "workload",
                "prod/deployment/api",
            ))
        })
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(err.step(), Some("workload"));
    assert_eq!(run.snapshot().timeline[0].status, StepStatus::Failed);
}

#[tokio::test(start_paused = true)]
async fn each_read_attempt_is_bounded_by_the_step_timeout() {
    let ctx = ctx(
        Mode::DryRun,
        ApprovalPolicy::DenyAll,
        Arc::new(MemoryJournal::default()),
    );
    let run = ctx.begin("demo", "t").await;
    let start = tokio::time::Instant::now();
    let err = run
        .read(
            Step::read_only("hang")
                .timeout(Duration::from_secs(2))
                .retry(RetryPolicy::none()),
            || async {
                tokio::time::sleep(Duration::from_secs(600)).await;
                Ok::<_, OpsError>(())
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn an_approver_that_never_answers_is_a_denial() {
    let approver = CallbackApprover::new(|_req: ApprovalRequest| async {
        std::future::pending::<()>().await;
        Decision::approve("never")
    });
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(approver)
        .approval_timeout(Duration::from_secs(60))
        .build();
    let run = ctx.begin("demo", "t").await;
    let acted = run
        .act(Step::disruptive("restart"), || async {
            Ok::<_, OpsError>(())
        })
        .await
        .unwrap();
    assert!(
        matches!(acted, Acted::Denied { ref reason } if reason.contains("no approval within 60s"))
    );
}

#[tokio::test(start_paused = true)]
async fn read_only_steps_run_concurrently() {
    let ctx = ctx(
        Mode::DryRun,
        ApprovalPolicy::DenyAll,
        Arc::new(MemoryJournal::default()),
    );
    let run = ctx.begin("demo", "t").await;
    let start = tokio::time::Instant::now();
    let slow = || async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok::<_, OpsError>(())
    };
    let (a, b, c) = tokio::join!(
        run.read(Step::read_only("a"), slow),
        run.read(Step::read_only("b"), slow),
        run.read(Step::read_only("c"), slow)
    );
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "three 3 s reads take 3 s together"
    );
    assert_eq!(run.snapshot().timeline.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn reports_render_markdown_and_round_trip_json() {
    let ctx = ctx(
        Mode::DryRun,
        ApprovalPolicy::DenyAll,
        Arc::new(MemoryJournal::default()),
    );
    let run = ctx.begin("demo", "prod/deployment/api").await;
    run.finding(
        ops_core::run::Finding::critical("2 of 3 pods\nin CrashLoopBackOff")
            .with_evidence("api-0: `oops`"),
    );
    run.act(
        Step::disruptive("restart").change("replace instance api-0"),
        || async { Ok::<_, OpsError>(()) },
    )
    .await
    .unwrap();
    let report = run.finish(RunOutcome::Planned).await;
    let md = report.to_markdown();
    assert!(md.starts_with("# Runbook `demo`: planned (dry run)"));
    assert!(
        md.contains("- **critical**: 2 of 3 pods in CrashLoopBackOff"),
        "newlines cannot break the list: {md}"
    );
    assert!(md.contains("  - replace instance api-0"));
    assert!(md.contains("| 03:00:00 | `restart` | disruptive | planned | 0 ms |"));
    let json = report.to_json().unwrap();
    let back: ops_core::run::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    assert!(json.contains("\"duration_ms\": 0"));
}

#[tokio::test]
async fn an_unwritable_journal_still_allows_diagnosis() {
    let journal = Arc::new(MemoryJournal::default().fail_after(0));
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .journal(journal)
        .build();
    let run = ctx.begin("demo", "t").await;
    assert_eq!(
        run.read(Step::read_only("ping"), || async { Ok::<_, OpsError>(1) })
            .await
            .unwrap(),
        1
    );
    let report = run.finish(RunOutcome::Healthy).await;
    assert!(report.findings[0].title.contains("journal unavailable"));
    assert_eq!(report.outcome, RunOutcome::Healthy);
    assert!(
        MemoryJournal::default()
            .runs(&ops_core::journal::RunQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn an_execute_run_with_a_journal_that_is_not_durable_changes_nothing_unless_told() {
    let ctx = RunContext::builder()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("t"))
        .build(); // the default in-memory journal
    let run = ctx.begin("demo", "t").await;
    let err = run
        .act(Step::disruptive("restart"), || async {
            panic!("ran without a durable journal")
        })
        .await
        .map(|_: ops_core::run::Acted<()>| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.chain().contains("allow_volatile_journal"),
        "{}",
        err.chain()
    );
}

/// Records every event's shape.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl ops_core::run::RunObserver for Recorder {
    fn observe(&self, event: &ops_core::run::RunEvent) {
        use ops_core::run::RunEvent as E;
        let line = match event {
            E::Started { runbook, .. } => format!("started {runbook}"),
            E::StepStarted { step, .. } => format!("step {step}"),
            E::StepFinished { record, .. } => {
                format!("done {} {}", record.step, record.status.label())
            }
            E::Finding { finding, .. } => format!("finding {}", finding.title),
            E::ApprovalAsked { request, .. } => format!("asked {}", request.step),
            E::ApprovalAnswered { decision, .. } => format!("answered {}", decision.is_approved()),
            E::Finished { outcome, .. } => format!("finished {}", outcome.label()),
            _ => "other".to_owned(),
        };
        self.0.lock().unwrap().push(line);
    }
}

#[tokio::test(start_paused = true)]
async fn an_observer_sees_the_run_as_it_happens_in_order() {
    let recorder = Arc::new(Recorder::default());
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("t"))
        .observer(Arc::clone(&recorder))
        .build();
    let run = ctx.begin("demo", "api").await;
    let run_id = run.id();
    run.read(Step::read_only("status"), || async {
        Ok::<_, OpsError>(())
    })
    .await
    .unwrap();
    run.finding(ops_core::run::Finding::warning("slow"));
    run.act(Step::disruptive("restart"), || async {
        Ok::<_, OpsError>(())
    })
    .await
    .unwrap();
    let report = run.finish(RunOutcome::Recovered).await;
    assert_eq!(report.run_id, run_id);
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [
            "started demo",
            "step status",
            "done status ok",
            "finding slow",
            "asked restart",
            "answered true",
            "step restart",
            "done restart ok",
            "finished recovered",
        ]
    );
}
