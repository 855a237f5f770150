//! `provider_failure` (issue 14) over the fakes: each class of failure, the fallback chain,
//! configuration validation (cycles), credentials read at run time and never shown, severity,
//! notification.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default,
    reason = "tests fail loudly; non-exhaustive types are built by assignment"
)]

use std::sync::Arc;
use std::time::Duration;

use ops_core::ErrorKind;
use ops_core::incident::{IncidentStatus, Severity};
use ops_core::probe::{Exchange, ProbeResult, RetryAfter, Unreachable};
use ops_core::run::{Mode, Report, RunContext, RunOutcome};
use ops_core::runbooks::{
    CredentialSource, Fallback, ProviderChecks, ProviderSpec, RunbookConfig, SecretFrom, Targets,
    provider_failure,
};
use ops_core::testing::{
    FakePlatform, RecordingNotifier, ScriptedProviderCheck, approving_context,
};
use ops_core::vocab::FindingLevel;

const TOKEN: &str = "sk_live_8f3c-never-in-reports";

fn answered(status: u16) -> ProbeResult {
    let r = if (200..300).contains(&status) {
        ProbeResult::up()
    } else {
        ProbeResult::down(format!("{status}"))
    };
    r.with_exchange(Exchange::answered(status))
        .with_latency(Duration::from_millis(12))
}

fn targets(specs: Vec<ProviderSpec>, checks: Vec<ScriptedProviderCheck>) -> Targets {
    let mut cfg = RunbookConfig::default();
    cfg.providers = ProviderChecks::default();
    cfg.providers.providers = specs;
    checks.into_iter().fold(
        Targets::new(
            Arc::new(FakePlatform::default()),
            "prod/deployment/api".parse().unwrap(),
        )
        .with_config(cfg),
        |t, c| t.with_provider(Arc::new(c)),
    )
}

fn spec(name: &str) -> ProviderSpec {
    ProviderSpec::new(
        name,
        format!("https://{name}.example/v1/health?key={TOKEN}"),
    )
}

fn title_of<'a>(report: &'a Report, provider: &str) -> &'a str {
    &report
        .findings
        .iter()
        .find(|f| f.title.starts_with(&format!("{provider}:")))
        .unwrap_or_else(|| panic!("no finding for {provider}: {:#?}", report.findings))
        .title
}

async fn run(t: &Targets) -> Report {
    provider_failure(&RunContext::builder().build(), t)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_class_is_told_apart() {
    let limited = ProbeResult::down("429").with_exchange(
        Exchange::answered(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(120))),
    );
    let cases: Vec<(&str, ProbeResult, &str)> = vec![
        ("ok", answered(200), "ok: healthy"),
        (
            "limited",
            limited,
            "limited: rate limited (retry after 120 s)",
        ),
        (
            "refused",
            answered(401),
            "refused: credential refused (401)",
        ),
        (
            "forbidden",
            answered(403),
            "forbidden: credential refused (403)",
        ),
        (
            "slow",
            ProbeResult::down("timed out").with_exchange(Exchange::TimedOut),
            "slow: timed out",
        ),
        (
            "closed",
            ProbeResult::down("refused").with_exchange(Exchange::Unreachable {
                cause: Unreachable::Connect,
            }),
            "closed: unreachable",
        ),
        ("failing", answered(503), "failing: outage (503)"),
        ("moved", answered(404), "moved: unexpected answer (404)"),
    ];
    let specs = cases.iter().map(|(n, _, _)| spec(n)).collect();
    let checks = cases
        .iter()
        .map(|(n, r, _)| ScriptedProviderCheck::always(*n, r.clone()))
        .collect();
    let report = run(&targets(specs, checks)).await;
    for (name, _, expected) in &cases {
        assert!(
            title_of(&report, name).starts_with(expected),
            "{name}: {}",
            title_of(&report, name)
        );
    }
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    let limited = report
        .findings
        .iter()
        .find(|f| f.title.starts_with("limited:"))
        .unwrap();
    assert!(limited.evidence.contains(&"retry-after = 120 s".to_owned()));
    assert!(limited.evidence.contains(&"status = 429".to_owned()));
    assert!(limited.evidence.contains(&"latency = 0 ms".to_owned()));
    // No fallback anywhere: every unhealthy provider escalates, a critical feature is down.
    assert!(title_of(&report, "failing").ends_with("no healthy fallback: escalate"));
    assert_eq!(report.severity, Some(Severity::High));
}

#[tokio::test]
async fn a_check_that_cannot_run_is_classified_by_its_error() {
    let t = targets(
        vec![spec("a"), spec("b")],
        vec![
            ScriptedProviderCheck::new("a").fail_next(ErrorKind::Timeout),
            ScriptedProviderCheck::new("b").fail_next(ErrorKind::InvalidInput),
        ],
    );
    let ctx = RunContext::builder()
        .retry(ops_core::run::RetryPolicy::none())
        .build();
    let report = provider_failure(&ctx, &t).await.unwrap();
    assert!(title_of(&report, "a").starts_with("a: timed out"));
    assert!(title_of(&report, "b").starts_with("b: down"));
}

#[tokio::test]
async fn the_first_healthy_fallback_applies() {
    let t = targets(
        vec![
            spec("primary")
                .with_fallback(Fallback::Provider("second".into()))
                .with_fallback(Fallback::Provider("third".into()))
                .with_fallback(Fallback::Degraded("queue and retry later".into())),
            spec("second").with_fallback(Fallback::Degraded("cached responses".into())),
            spec("third"),
        ],
        vec![
            ScriptedProviderCheck::always("primary", answered(503)),
            ScriptedProviderCheck::always("second", answered(429)),
            ScriptedProviderCheck::always("third", answered(200)),
        ],
    );
    let report = run(&t).await;
    assert_eq!(
        title_of(&report, "primary"),
        "primary: outage (503): fallback provider third applies"
    );
    let primary = report
        .findings
        .iter()
        .find(|f| f.title.starts_with("primary:"))
        .unwrap();
    assert_eq!(primary.level, FindingLevel::Warning);
    assert!(
        primary
            .evidence
            .iter()
            .any(|e| e == "fallback provider second is not usable: rate limited"),
        "{:?}",
        primary.evidence
    );
    assert_eq!(
        title_of(&report, "second"),
        "second: rate limited: fallback degraded mode cached responses applies"
    );
    assert_eq!(title_of(&report, "third"), "third: healthy");
    // Degraded dependencies with fallbacks: the configured degraded-dependency severity.
    assert_eq!(report.severity, Some(Severity::Medium));
    assert!(
        report
            .summary
            .contains("degraded dependency: primary, second")
    );
}

#[tokio::test]
async fn a_degraded_mode_applies_when_no_provider_is_healthy() {
    let t = targets(
        vec![
            spec("mail")
                .with_fallback(Fallback::Provider("backup-mail".into()))
                .with_fallback(Fallback::Degraded("queue and retry later".into())),
            spec("backup-mail"),
        ],
        vec![
            ScriptedProviderCheck::always("mail", answered(500)),
            ScriptedProviderCheck::always("backup-mail", answered(401)),
        ],
    );
    let report = run(&t).await;
    assert_eq!(
        title_of(&report, "mail"),
        "mail: outage (500): fallback degraded mode queue and retry later applies"
    );
    assert_eq!(
        title_of(&report, "backup-mail"),
        "backup-mail: credential refused (401): no healthy fallback: escalate"
    );
    assert_eq!(report.severity, Some(Severity::High));
    assert!(report.summary.contains("critical feature down"));
}

#[tokio::test]
async fn all_healthy_is_healthy_and_quiet() {
    let notifier = Arc::new(RecordingNotifier::default());
    let mut t = targets(
        vec![
            spec("a").with_fallback(Fallback::Provider("b".into())),
            spec("b"),
        ],
        vec![
            ScriptedProviderCheck::always("a", answered(200)),
            ScriptedProviderCheck::always("b", answered(204)),
        ],
    );
    t.config.providers.notify = true;
    let ctx = RunContext::builder()
        .notifier(Arc::clone(&notifier) as _)
        .build();
    let report = provider_failure(&ctx, &t).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Healthy);
    assert_eq!(report.severity, None);
    assert!(notifier.sent().is_empty());
}

#[tokio::test]
async fn cycles_and_miswiring_are_rejected_before_any_check() {
    let a = ScriptedProviderCheck::new("a");
    let cyclic = targets(
        vec![
            spec("a").with_fallback(Fallback::Provider("b".into())),
            spec("b").with_fallback(Fallback::Provider("c".into())),
            spec("c").with_fallback(Fallback::Provider("a".into())),
        ],
        vec![
            a,
            ScriptedProviderCheck::new("b"),
            ScriptedProviderCheck::new("c"),
        ],
    );
    let err = provider_failure(&RunContext::builder().build(), &cyclic)
        .await
        .unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::InvalidInput);
    assert!(
        err.error().chain().contains("a -> b -> c -> a"),
        "{}",
        err.error().chain()
    );
    assert!(err.report().timeline.is_empty(), "nothing was checked");

    let unknown = targets(
        vec![spec("a").with_fallback(Fallback::Provider("nowhere".into()))],
        vec![ScriptedProviderCheck::new("a")],
    );
    let err = provider_failure(&RunContext::builder().build(), &unknown)
        .await
        .unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::InvalidInput);

    let missing = targets(
        vec![spec("a"), spec("b")],
        vec![ScriptedProviderCheck::new("a")],
    );
    let err = provider_failure(&RunContext::builder().build(), &missing)
        .await
        .unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::InvalidInput);

    let empty = targets(Vec::new(), Vec::new());
    let err = provider_failure(&RunContext::builder().build(), &empty)
        .await
        .unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::InvalidInput);
}

#[test]
fn configuration_rejects_a_cycle_when_read() {
    let cfg: RunbookConfig = serde_json::from_str(
        r#"{"providers": {"providers": [
            {"name": "a", "url": "https://a.example/", "fallbacks": [{"provider": "b"}]},
            {"name": "b", "url": "https://b.example/", "fallbacks": [{"degraded": "cached"}, {"provider": "a"}]}
        ]}}"#,
    )
    .unwrap();
    assert!(cfg.providers.validate().is_err());
}

#[tokio::test]
async fn the_credential_is_read_at_run_time_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stripe.key");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let source = CredentialSource::new(SecretFrom::File(file.clone()));
    let check = Arc::new(ScriptedProviderCheck::always("stripe", answered(200)).requiring(TOKEN));
    let mut t = targets(vec![spec("stripe").with_credential(source)], Vec::new());
    t = t.with_provider(Arc::clone(&check) as _);
    let report = run(&t).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Healthy,
        "{:#?}",
        report.findings
    );
    assert_eq!(
        check.credentials_seen(),
        [Some("authorization: bearer".to_owned())]
    );

    // Rotated on disk: the next run reads the new (wrong) value, and says so without it.
    std::fs::write(&file, "sk_live_old-also-secret").unwrap();
    let report = run(&t).await;
    assert_eq!(
        title_of(&report, "stripe"),
        "stripe: credential refused (401): no healthy fallback: escalate"
    );
    let next = report.findings[0]
        .evidence
        .iter()
        .find(|e| e.starts_with("next:"))
        .unwrap();
    assert!(next.contains(&format!("file {}", file.display())), "{next}");
    for shown in [
        report.to_json().unwrap(),
        report.to_markdown(),
        format!("{report:?}"),
        format!("{t:?}"),
        format!("{:?}", t.config),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains("sk_live_old"), "{shown}");
    }
}

#[tokio::test]
async fn an_unreadable_credential_is_an_auth_failure_and_no_request_is_sent() {
    let source = CredentialSource::new(SecretFrom::Env(
        "OPSBOOK_TEST_PROVIDER_KEY_SURELY_UNSET".parse().unwrap(),
    ))
    .with_header("X-Api-Key");
    let check = Arc::new(ScriptedProviderCheck::always("mail", answered(200)));
    let t = targets(vec![spec("mail").with_credential(source)], Vec::new())
        .with_provider(Arc::clone(&check) as _);
    let report = run(&t).await;
    assert_eq!(
        title_of(&report, "mail"),
        "mail: credential unavailable: no healthy fallback: escalate"
    );
    assert_eq!(check.checks(), 0);
    assert!(
        report.findings[0]
            .evidence
            .iter()
            .any(|e| e.contains("env OPSBOOK_TEST_PROVIDER_KEY_SURELY_UNSET")),
        "{:?}",
        report.findings[0].evidence
    );
}

#[tokio::test]
async fn a_header_credential_is_sent_in_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k");
    std::fs::write(&file, TOKEN).unwrap();
    let source = CredentialSource::new(SecretFrom::File(file)).with_header("X-Api-Key");
    let check = Arc::new(ScriptedProviderCheck::new("mail").requiring(TOKEN));
    let t = targets(vec![spec("mail").with_credential(source)], Vec::new())
        .with_provider(Arc::clone(&check) as _);
    assert_eq!(run(&t).await.outcome, RunOutcome::Healthy);
    assert_eq!(check.credentials_seen(), [Some("X-Api-Key".to_owned())]);
}

#[tokio::test]
async fn a_failure_notifies_when_configured_and_a_dry_run_only_plans_it() {
    let notifier = Arc::new(RecordingNotifier::default());
    let mut t = targets(
        vec![spec("llm").with_fallback(Fallback::Degraded("cached responses".into()))],
        vec![ScriptedProviderCheck::always("llm", answered(502))],
    );
    t.config.providers.notify = true;
    let ctx = RunContext::builder()
        .mode(Mode::Execute)
        .allow_volatile_journal()
        .approver(ops_core::run::ApprovalPolicy::approve_all("test"))
        .notifier(Arc::clone(&notifier) as _)
        .build();
    let report = provider_failure(&ctx, &t).await.unwrap();
    let sent = notifier.sent();
    assert_eq!(sent.len(), 2, "the page, then the run's closing update");
    assert_eq!(sent[1].status, IncidentStatus::Investigating, "unresolved");
    assert_eq!(sent[0].severity, Severity::Medium);
    assert!(sent[0].title.contains("llm"));
    assert!(sent[0].body.contains("cached responses"));
    assert_eq!(report.outcome, RunOutcome::Unresolved);

    let dry = RunContext::builder()
        .notifier(Arc::clone(&notifier) as _)
        .build();
    let report = provider_failure(&dry, &t).await.unwrap();
    assert_eq!(notifier.sent().len(), 2, "a dry run pages nobody");
    assert!(report.actions.iter().any(|a| a.step == "notify"));

    t.config.providers.notify = false;
    let _ = provider_failure(&approving_context(Mode::Execute), &t)
        .await
        .unwrap();
    assert_eq!(notifier.sent().len(), 2);
}

#[tokio::test]
async fn a_dry_run_checks_the_same_way_and_changes_nothing() {
    let platform = Arc::new(FakePlatform::default());
    let mut cfg = RunbookConfig::default();
    cfg.providers.providers = vec![spec("a")];
    let t = Targets::new(
        Arc::clone(&platform) as _,
        "prod/deployment/api".parse().unwrap(),
    )
    .with_config(cfg)
    .with_provider(Arc::new(ScriptedProviderCheck::always("a", answered(503))));
    let report = run(&t).await;
    assert!(title_of(&report, "a").starts_with("a: outage (503)"));
    assert!(platform.mutations().is_empty());
    assert!(report.actions.is_empty());
}
