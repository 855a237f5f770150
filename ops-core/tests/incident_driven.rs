//! The incident model drives the runs: severity from the classifier under the configured
//! scale, status updates, escalation by elapsed time, the severity in the journal.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::sync::Arc;
use std::time::Duration;

use ops_core::Journal as _;
use ops_core::WorkloadRef;
use ops_core::incident::{
    EscalationLevel, EscalationPolicy, Incident, IncidentStatus, Severity, SeverityScale, Signals,
};
use ops_core::journal::JournalEvent;
use ops_core::metrics::{MetricQuery, MetricWindow};
use ops_core::platform::WorkloadStatus;
use ops_core::run::{
    ApprovalPolicy, IncidentPolicy, Mode, Report, RunContext, RunContextBuilder, RunOutcome, Step,
    TokioClock,
};
use ops_core::runbooks::{RunbookConfig, Targets, high_error_rate};
use ops_core::testing::{
    FakeMetrics, FakePlatform, MemoryJournal, RecordingNotifier, ScriptedProbe, assert_outcome,
};

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

struct Harness {
    notifier: Arc<RecordingNotifier>,
    journal: Arc<MemoryJournal>,
    platform: Arc<FakePlatform>,
}

impl Harness {
    fn new() -> Self {
        Self {
            notifier: Arc::new(RecordingNotifier::default()),
            journal: Arc::new(MemoryJournal::default()),
            // A deploy ten minutes old with a previous revision: the deploy is the suspect
            // and high_error_rate rolls it back.
            platform: Arc::new(
                FakePlatform::default()
                    .with_workload(WorkloadStatus::healthy(api(), 2))
                    .with_previous_revision(&api(), 0, vec!["api:1.4.1".to_owned()])
                    .deployed_at(
                        &api(),
                        jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10),
                    ),
            ),
        }
    }

    fn ctx(&self, policy: IncidentPolicy) -> RunContext {
        self.builder(policy).build()
    }

    /// The same on a clock at 03:00 that advances with (paused) tokio time.
    fn ctx_at_three(&self, policy: IncidentPolicy) -> RunContext {
        let start: jiff::Timestamp = "2026-11-25T03:00:00Z".parse().unwrap();
        self.builder(policy)
            .clock(Arc::new(TokioClock::starting_at(start)))
            .build()
    }

    fn builder(&self, policy: IncidentPolicy) -> RunContextBuilder {
        RunContext::builder()
            .mode(Mode::Execute)
            .allow_volatile_journal()
            .approver(ApprovalPolicy::approve_all("test"))
            .notifier(Arc::clone(&self.notifier) as Arc<dyn ops_core::Notifier>)
            .journal(Arc::clone(&self.journal) as Arc<dyn ops_core::Journal>)
            .incident_policy(policy)
    }

    /// `high_error_rate` at 12 % over a recent deploy: it rolls back and recovers.
    async fn recovered_run(&self, ctx: &RunContext) -> Report {
        let report = high_error_rate(ctx, &self.targets(0.12)).await.unwrap();
        assert_outcome(&report, RunOutcome::Recovered);
        report
    }

    fn targets(&self, error_rate: f64) -> Targets {
        let metrics = FakeMetrics::default().with_scalar(
            &MetricQuery::error_rate("api", &MetricWindow::minutes(5)),
            error_rate,
        );
        let probe = ScriptedProbe::tracking("api", Arc::clone(&self.platform), api());
        Targets::new(
            Arc::clone(&self.platform) as Arc<dyn ops_core::Platform>,
            api(),
        )
        .with_metrics(Arc::new(metrics))
        .with_probe(Arc::new(probe))
        .with_config(RunbookConfig::default().with_verify(
            2,
            Duration::from_secs(1),
            Duration::from_secs(30),
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn p0_to_p3_labels_the_report_and_every_notification() {
    let h = Harness::new();
    let report = h.recovered_run(&h.ctx(IncidentPolicy::default())).await;
    assert_eq!(report.severity, Some(Severity::High));
    assert_eq!(report.severity_label.as_deref(), Some("P1"));
    assert_eq!(report.severity_reasons, ["error rate 12.0% >= 10% (P1)"]);
    assert!(report.to_markdown().contains("- **Severity:** P1\n"));
    let sent = h.notifier.sent();
    assert!(!sent.is_empty());
    for n in &sent {
        assert_eq!(
            (n.severity, n.severity_label.as_str()),
            (Severity::High, "P1"),
            "{n:?}"
        );
        assert!(n.body.contains("- **Severity:** P1\n"), "{}", n.body);
    }
}

#[tokio::test(start_paused = true)]
async fn p1_to_p4_labels_the_same_run_one_level_up() {
    let h = Harness::new();
    let policy = IncidentPolicy::default().with_scale(SeverityScale::p1_to_p4());
    let report = h.recovered_run(&h.ctx(policy)).await;
    assert_eq!(
        report.severity,
        Some(Severity::High),
        "the level is the same"
    );
    assert_eq!(report.severity_label.as_deref(), Some("P2"));
    assert_eq!(report.severity_reasons, ["error rate 12.0% >= 10% (P2)"]);
    assert!(report.to_markdown().contains("- **Severity:** P2\n"));
    let sent = h.notifier.sent();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|n| n.severity_label == "P2"), "{sent:?}");
    assert!(
        sent[0].body.contains("- **Severity:** P2\n"),
        "{}",
        sent[0].body
    );
}

#[tokio::test(start_paused = true)]
async fn what_is_p0_internally_prints_p1_on_the_p1_to_p4_scale() {
    let h = Harness::new();
    let ctx = h.ctx(IncidentPolicy::default().with_scale(SeverityScale::p1_to_p4()));
    let run = ctx.begin("api_down", "prod/deployment/api").await;
    run.observe(Signals::default().with_service_down(true));
    let report = run.finish(RunOutcome::Unresolved).await;
    assert_eq!(report.severity, Some(Severity::Critical));
    assert_eq!(report.severity_label.as_deref(), Some("P1"));
    assert_eq!(report.severity_reasons, ["service down (P1)"]);
}

#[tokio::test(start_paused = true)]
async fn a_run_that_diagnoses_remediates_and_recovers_sends_the_four_statuses() {
    let h = Harness::new();
    let report = h.recovered_run(&h.ctx(IncidentPolicy::default())).await;
    assert_eq!(
        h.platform.mutations(),
        ["rollback prod/deployment/api to 0"]
    );
    let sent = h.notifier.sent();
    let statuses: Vec<IncidentStatus> = sent.iter().map(|n| n.status).collect();
    assert_eq!(
        statuses,
        [
            IncidentStatus::Investigating,
            IncidentStatus::Identified,
            IncidentStatus::Monitoring,
            IncidentStatus::Resolved
        ],
        "{sent:#?}"
    );
    // One incident: one id and one dedup key, resolved by the last update only.
    assert!(sent.iter().all(|n| n.dedup_key == sent[0].dedup_key));
    assert!(
        sent.iter()
            .all(|n| n.incident_id.as_deref() == Some(report.run_id.as_str()))
    );
    assert_eq!(sent.iter().filter(|n| n.resolved).count(), 1);
    assert!(sent[3].resolved);
    // The seed template: impact, actions taken, next update after the P1 cadence (30 min).
    assert!(
        sent[0].body.contains("- **Current Actions:** none yet"),
        "{}",
        sent[0].body
    );
    assert!(
        sent[2].body.contains("roll"),
        "the rollback is an action: {}",
        sent[2].body
    );
    assert!(sent[2].body.contains("(in 30 min)"), "{}", sent[2].body);
    assert!(sent[2].fields.iter().any(|(k, _)| k == "next update"));
    assert!(
        sent[3].body.contains("- **Next Update:** none (resolved)"),
        "{}",
        sent[3].body
    );
    assert!(sent[3].body.contains("- **Impact:** "), "{}", sent[3].body);
}

#[tokio::test(start_paused = true)]
async fn an_unresolved_run_notifies_each_escalation_tier_as_it_falls_due() {
    let h = Harness::new();
    let ctx = h.ctx_at_three(IncidentPolicy::default());
    let run = ctx.begin("high_error_rate", "prod/deployment/api").await;
    run.observe(Signals::default().with_error_rate(0.12));
    let escalations = || {
        h.notifier
            .sent()
            .into_iter()
            .filter(|n| n.title.starts_with("escalation"))
            .map(|n| {
                n.fields
                    .iter()
                    .find(|(k, _)| k == "escalate to")
                    .unwrap()
                    .1
                    .clone()
            })
            .collect::<Vec<_>>()
    };
    let step = || async {
        run.read(Step::read_only("look"), || async {
            Ok::<_, ops_core::OpsError>(())
        })
        .await
        .unwrap();
    };
    tokio::time::advance(Duration::from_mins(29)).await;
    step().await;
    assert!(escalations().is_empty(), "nothing is due before 30 min");
    tokio::time::advance(Duration::from_mins(1)).await;
    step().await;
    assert_eq!(escalations(), ["team lead"]);
    step().await;
    assert_eq!(escalations(), ["team lead"], "each tier once");
    tokio::time::advance(Duration::from_mins(31)).await;
    let report = run.finish(RunOutcome::Unresolved).await;
    assert_eq!(escalations(), ["team lead", "engineering manager"]);
    let last = h.notifier.sent().pop().unwrap();
    assert_eq!(
        last.status,
        IncidentStatus::Investigating,
        "still open: {last:?}"
    );
    assert!(!last.resolved);
    assert_eq!(report.severity, Some(Severity::High));
}

#[tokio::test(start_paused = true)]
async fn a_resolved_run_escalates_to_nobody() {
    let h = Harness::new();
    let ladder = EscalationPolicy::new(vec![EscalationLevel::new(
        1,
        Duration::from_mins(5),
        "lead",
    )]);
    let ctx = h.ctx_at_three(IncidentPolicy::default().with_escalation(ladder));
    let run = ctx.begin("high_error_rate", "prod/deployment/api").await;
    run.observe(Signals::default().with_error_rate(0.12));
    tokio::time::advance(Duration::from_hours(1)).await;
    let _ = run.finish(RunOutcome::Recovered).await;
    assert!(h.notifier.sent().is_empty(), "{:?}", h.notifier.sent());
}

#[tokio::test(start_paused = true)]
async fn the_journal_keeps_the_report_severity_for_the_postmortem() {
    let h = Harness::new();
    let policy = IncidentPolicy::default().with_scale(SeverityScale::p1_to_p4());
    let ctx = h.ctx(policy);
    let report = h.recovered_run(&ctx).await;
    let entries = h.journal.entries(&report.run_id).await.unwrap();
    let finish = entries
        .iter()
        .find(|e| matches!(e.event, JournalEvent::RunFinished { .. }))
        .unwrap();
    assert_eq!(finish.severity, Some(Severity::High));
    assert!(
        entries
            .iter()
            .filter(|e| e != &finish)
            .all(|e| e.severity.is_none())
    );
    let incident = Incident::from_journal(&entries).unwrap();
    assert_eq!(incident.severity(), Severity::High);
    assert_eq!(incident.status(), IncidentStatus::Resolved);
    let md = incident
        .postmortem(&entries)
        .to_markdown_with(&ctx.incident_policy().scale);
    assert!(md.contains("- **Severity:** P2\n"), "{md}");
    assert!(
        md.contains("`rollback`"),
        "the timeline is the journal's: {md}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_pages_nobody_and_plans_the_opening_update() {
    let h = Harness::new();
    let ctx = RunContext::builder()
        .notifier(Arc::clone(&h.notifier) as Arc<dyn ops_core::Notifier>)
        .build();
    let report = high_error_rate(&ctx, &h.targets(0.12)).await.unwrap();
    assert!(h.notifier.sent().is_empty());
    assert!(h.platform.mutations().is_empty());
    assert_eq!(report.severity_label.as_deref(), Some("P1"));
    assert!(report.actions.iter().any(|a| a.step == "notify"));
}
