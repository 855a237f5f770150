//! `provider_failure` end to end with real `HttpProbe`s against a real local HTTP server
//! (axum on loopback, the servers of `tests/support`): 429 with `Retry-After` in both forms,
//! 401 unless the right bearer token, 503, a slow endpoint, a closed port. Asserts each
//! classification, the fallback chosen, and that the token appears nowhere in the report.
//! Needs no external service, so it runs everywhere (with `CI=true` too) and never skips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default,
    reason = "tests fail loudly; non-exhaustive types are built by assignment"
)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ops_core::incident::Severity;
use ops_core::probe::{Exchange, ProviderCheck, RetryAfter, Unreachable};
use ops_core::run::{Report, RunContext, RunOutcome};
use ops_core::runbooks::{
    CredentialSource, Fallback, ProviderSpec, RunbookConfig, SecretFrom, Targets, provider_failure,
};
use ops_core::testing::FakePlatform;
use ops_probes::provider_probe;

const TOKEN: &str = "sk_live_4e1b-real-server-never-in-reports";

async fn provider_api() -> String {
    ops_tests::provider_api(TOKEN).await
}

fn bounded<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(30), f)
}

fn finding<'a>(report: &'a Report, provider: &str) -> &'a ops_core::run::Finding {
    report
        .findings
        .iter()
        .find(|f| f.title.starts_with(&format!("{provider}:")))
        .unwrap_or_else(|| panic!("no finding for {provider}: {:#?}", report.findings))
}

#[tokio::test]
async fn http_probe_reports_status_retry_after_and_why_no_answer() {
    let base = provider_api().await;
    let check = |path: &str| {
        provider_probe(
            &ProviderSpec::new("p", format!("{base}{path}"))
                .with_timeout(Duration::from_millis(500)),
        )
        .unwrap()
    };
    let r = bounded(check("/limited").check(None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.exchange,
        Some(Exchange::answered(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(120))))
    );
    let r = bounded(check("/limited-until").check(None))
        .await
        .unwrap()
        .unwrap();
    let wait = r.exchange.as_ref().and_then(Exchange::retry_after).unwrap();
    // Relative to the answer's Date header (whole seconds): 89 to 90 s.
    assert!((88..=91).contains(&wait.as_secs()), "{wait:?}");
    let r = bounded(check("/limited-garbage").check(None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.exchange,
        Some(Exchange::answered(429).with_retry_after(RetryAfter::Unparsed("after lunch".into())))
    );
    let r = bounded(check("/slow").check(None)).await.unwrap().unwrap();
    assert_eq!(r.exchange, Some(Exchange::TimedOut));
    let closed = provider_probe(&ProviderSpec::new(
        "closed",
        format!("http://127.0.0.1:{}/", support::closed_port()),
    ))
    .unwrap();
    let r = bounded(closed.check(None)).await.unwrap().unwrap();
    assert_eq!(
        r.exchange,
        Some(Exchange::Unreachable {
            cause: Unreachable::Connect
        })
    );
    // A plain probe fills the exchange too.
    let r = bounded(ops_core::Probe::check(&check("/down")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.exchange, Some(Exchange::answered(503)));
}

#[tokio::test]
async fn an_untrusted_certificate_is_unreachable_by_tls() {
    let leaf = support::leaf(&["localhost"], -1, 30, None);
    let addr = support::serve_tls(vec![leaf.der], leaf.key).await;
    let probe = provider_probe(&ProviderSpec::new(
        "tls",
        format!("https://localhost:{}/", addr.port()),
    ))
    .unwrap();
    let r = bounded(probe.check(None)).await.unwrap().unwrap();
    assert_eq!(
        r.exchange,
        Some(Exchange::Unreachable {
            cause: Unreachable::Tls
        }),
        "{}",
        r.detail
    );
}

#[tokio::test]
async fn provider_failure_classifies_real_answers_and_picks_fallbacks() {
    let base = provider_api().await;
    let dir = tempfile::tempdir().unwrap();
    let right = dir.path().join("right.key");
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&right, format!("{TOKEN}\n")).unwrap();
    std::fs::write(&wrong, format!("{TOKEN}-revoked\n")).unwrap();
    let closed = support::closed_port();
    let timeout = Duration::from_millis(800);
    let specs = vec![
        ProviderSpec::new("payments", format!("{base}/v1/health"))
            .with_credential(CredentialSource::new(SecretFrom::File(right)))
            .with_timeout(timeout),
        ProviderSpec::new("payments-eu", format!("{base}/v1/health"))
            .with_credential(CredentialSource::new(SecretFrom::File(wrong)))
            .with_timeout(timeout)
            .with_fallback(Fallback::Provider("payments".into())),
        ProviderSpec::new("llm", format!("{base}/limited"))
            .with_timeout(timeout)
            .with_fallback(Fallback::Provider("llm-backup".into()))
            .with_fallback(Fallback::Degraded("cached responses".into())),
        ProviderSpec::new("llm-backup", format!("{base}/down")).with_timeout(timeout),
        ProviderSpec::new("email", format!("{base}/slow"))
            .with_timeout(timeout)
            .with_fallback(Fallback::Provider("email-backup".into())),
        ProviderSpec::new("email-backup", format!("http://127.0.0.1:{closed}/"))
            .with_timeout(timeout),
    ];
    let mut cfg = RunbookConfig::default();
    cfg.providers.providers = specs.clone();
    let mut t = Targets::new(
        Arc::new(FakePlatform::default()),
        "prod/deployment/api".parse().unwrap(),
    )
    .with_config(cfg);
    for spec in &specs {
        t = t.with_provider(Arc::new(provider_probe(spec).unwrap()) as Arc<dyn ProviderCheck>);
    }
    let report = bounded(provider_failure(&RunContext::builder().build(), &t))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(finding(&report, "payments").title, "payments: healthy");
    assert_eq!(
        finding(&report, "payments-eu").title,
        "payments-eu: credential refused (401): fallback provider payments applies"
    );
    let llm = finding(&report, "llm");
    assert_eq!(
        llm.title,
        "llm: rate limited (retry after 120 s): fallback degraded mode cached responses applies"
    );
    assert!(
        llm.evidence.contains(&"retry-after = 120 s".to_owned()),
        "{:?}",
        llm.evidence
    );
    assert!(llm.evidence.contains(&"status = 429".to_owned()));
    assert!(
        llm.evidence
            .contains(&"fallback provider llm-backup is not usable: outage (503)".to_owned()),
        "{:?}",
        llm.evidence
    );
    assert_eq!(
        finding(&report, "llm-backup").title,
        "llm-backup: outage (503): no healthy fallback: escalate"
    );
    let email = finding(&report, "email");
    assert_eq!(
        email.title,
        "email: timed out: no healthy fallback: escalate"
    );
    assert!(
        email
            .evidence
            .contains(&"fallback provider email-backup is not usable: unreachable".to_owned()),
        "{:?}",
        email.evidence
    );
    assert_eq!(
        finding(&report, "email-backup").title,
        "email-backup: unreachable: no healthy fallback: escalate"
    );
    assert_eq!(report.outcome, RunOutcome::Unresolved);
    assert_eq!(report.severity, Some(Severity::High));

    let json = report.to_json().unwrap();
    let markdown = report.to_markdown();
    for shown in [&json, &markdown, &format!("{report:?}"), &format!("{t:?}")] {
        assert!(!shown.contains(TOKEN), "the token leaked: {shown}");
    }
    assert!(markdown.contains("payments-eu"));
}
