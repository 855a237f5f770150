//! Secrets never leave: every credential-taking builder, notifier and probe is given a
//! recognisable canary secret and made to fail — closed ports, receivers that echo the
//! request's path, query, headers and body back in their error answers, redirects to a second
//! local server that records what it receives — and the canary is searched for in `Debug`,
//! `Display`, error chains, run reports (Markdown and JSON, through `Run::notify`), the
//! journal and TRACE-level logs. It must appear nowhere, except at the origin it was meant
//! for.
//!
//! No Docker: every server is in-process (axum on loopback).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns"
)]

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ops_core::incident::Severity;
use ops_core::journal::MemoryJournal;
use ops_core::notify::Notification;
use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome};
use ops_core::{Cache, Database, Metrics, Notifier, OpsError, Probe, metrics::MetricQuery};
use ops_notify::{PagerDutyNotifier, RetryPolicy, SlackNotifier, WebhookNotifier};
use ops_probes::{HttpProbe, PrometheusMetricsBuilder, Redirects};
use secrecy::SecretString;

const CANARY: &str = "CANARY-7f3a9";

// ---------------------------------------------------------------------------------------
// Logs: one TRACE subscriber for the whole binary, `log` records included.

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Buffer {
    static LOGS: OnceLock<Buffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the only subscriber of this test binary");
        buffer
    })
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
}

/// Fails when the canary is in the TRACE logs written so far.
fn assert_logs_clean() {
    let text = log_text();
    assert!(
        !text.contains(CANARY),
        "the canary reached the logs:\n{}",
        text.lines()
            .filter(|l| l.contains(CANARY))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Fails when the canary is in any of `shown`, naming `what`.
fn assert_clean(what: &str, shown: &[String]) {
    for s in shown {
        assert!(!s.contains(CANARY), "{what} leaked the canary: {s}");
    }
}

/// Every way an error can be shown.
fn error_views(e: &OpsError) -> Vec<String> {
    let mut views = vec![e.to_string(), format!("{e:?}"), e.chain()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        views.push(s.to_string());
        views.push(format!("{s:?}"));
        source = s.source();
    }
    views
}

// ---------------------------------------------------------------------------------------
// Servers.

/// What a server received.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn all(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// The whole request as text: method, path and query, every header, the body.
fn describe(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let mut text = format!("{method} {uri}\n");
    for (k, v) in headers {
        let _ = writeln!(text, "{k}: {}", String::from_utf8_lossy(v.as_bytes()));
    }
    text.push_str(&String::from_utf8_lossy(body));
    text
}

/// An echoing receiver: records every request and answers with an error page that quotes
/// it whole — path, query, headers, body — as careless servers do. `/away/..` redirects to
/// `away` (another origin); `/prom/..` answers as a Prometheus API error quoting the
/// request; the status is 404 unless the path says `/bad`.
#[derive(Clone)]
struct Echo {
    seen: Seen,
    away: Option<SocketAddr>,
}

async fn echo(
    State(e): State<Echo>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = describe(&method, &uri, &headers, &body);
    e.seen.0.lock().unwrap().push(request.clone());
    let path = uri.path();
    if path.starts_with("/away")
        && let Some(away) = e.away
    {
        return (
            StatusCode::FOUND,
            [("location", format!("http://{away}/landed"))],
            "moved",
        )
            .into_response();
    }
    if path.contains("/prom/") {
        let answer = serde_json::json!({
            "status": "error",
            "errorType": "bad_data",
            "error": format!("cannot parse request {request}"),
        });
        return (StatusCode::BAD_REQUEST, axum::Json(answer)).into_response();
    }
    let status = if path.contains("/bad") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::NOT_FOUND
    };
    (status, format!("no route for {request}\r\n\u{1b}[2J")).into_response()
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A recorder on one port and an echo on another that redirects `/away` to it.
async fn servers() -> (SocketAddr, Seen, SocketAddr, Seen) {
    let recorded = Seen::default();
    let away = serve(Router::new().fallback(echo).with_state(Echo {
        seen: recorded.clone(),
        away: None,
    }))
    .await;
    let echoed = Seen::default();
    let echo_addr = serve(Router::new().fallback(echo).with_state(Echo {
        seen: echoed.clone(),
        away: Some(away),
    }))
    .await;
    (echo_addr, echoed, away, recorded)
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(30), f)
}

// ---------------------------------------------------------------------------------------
// Notifiers, alone and through the run engine.

/// The notifiers under test, each with the canary in every credential, pointed at `addr`.
fn notifiers(addr: &str) -> Vec<(String, Arc<dyn Notifier>, String)> {
    let once = RetryPolicy::none();
    let slack_url = format!("http://{addr}/services/T000/B000/{CANARY}?token={CANARY}");
    let slack = SlackNotifier::builder()
        .with_webhook_url(secret(&slack_url))
        .with_retry(once)
        .build()
        .unwrap();
    let pd = PagerDutyNotifier::builder()
        .with_routing_key(secret(CANARY))
        .with_events_url(secret(&format!("http://{addr}/bad/v2/enqueue")))
        .with_retry(once)
        .build()
        .unwrap();
    let hook_url = format!("http://ops:{CANARY}@{addr}/hooks/{CANARY}?sig={CANARY}");
    let hook = WebhookNotifier::builder(secret(&hook_url))
        .with_signing_secret(secret(CANARY))
        .with_retry(once)
        .build()
        .unwrap();
    vec![
        (
            "slack".into(),
            Arc::new(slack) as Arc<dyn Notifier>,
            format!(
                "{:?}",
                SlackNotifier::builder().with_webhook_url(secret(&slack_url))
            ),
        ),
        (
            "pagerduty".into(),
            Arc::new(pd),
            format!(
                "{:?}",
                PagerDutyNotifier::builder().with_routing_key(secret(CANARY))
            ),
        ),
        (
            "webhook".into(),
            Arc::new(hook),
            format!(
                "{:?}",
                WebhookNotifier::builder(secret(&hook_url)).with_signing_secret(secret(CANARY))
            ),
        ),
    ]
}

async fn notifier_never_leaks(addr: &str, echoed: Option<&Seen>) {
    let n = Notification::new(Severity::High, "api down", "health checks fail");
    for (name, notifier, builder_debug) in notifiers(addr) {
        let err = within(notifier.send(&n)).await.unwrap().unwrap_err();
        let mut shown = error_views(&err);
        shown.push(format!("{notifier:?}"));
        shown.push(builder_debug);
        assert_clean(&name, &shown);

        // The same failure through the run engine: report and journal.
        let journal = Arc::new(MemoryJournal::default());
        let ctx = RunContext::builder()
            .mode(Mode::Execute)
            .approver(ApprovalPolicy::approve_all("oncall"))
            .journal(Arc::clone(&journal) as _)
            .notifier(Arc::clone(&notifier))
            .build();
        let run = ctx.begin("leak_check", "prod/deployment/api").await;
        run.notify(n.clone()).await;
        let report = run.finish(RunOutcome::Unresolved).await;
        let md = report.to_markdown();
        assert!(
            md.contains("notification failed"),
            "{name}: the failure is in the report: {md}"
        );
        assert_clean(
            &format!("{name} report"),
            &[
                md,
                report.to_json().unwrap(),
                format!("{report:?}"),
                format!("{:?}", journal.all()),
            ],
        );
    }
    if let Some(echoed) = echoed {
        // The canary did reach the receivers it was meant for, and they echoed it back:
        // what kept it out of every message is the redaction, not luck.
        let got = echoed.all();
        assert!(
            got.contains(&format!("/services/T000/B000/{CANARY}")),
            "{got}"
        );
        assert!(
            got.contains(&format!("\"routing_key\":\"{CANARY}\"")),
            "{got}"
        );
        assert!(
            got.contains(&format!("/hooks/{CANARY}?sig={CANARY}")),
            "{got}"
        );
    }
    assert_logs_clean();
}

#[tokio::test]
async fn notifiers_never_repeat_secrets_a_receiver_echoes() {
    logs();
    let (echo, echoed, _, _) = servers().await;
    notifier_never_leaks(&echo.to_string(), Some(&echoed)).await;
}

#[tokio::test]
async fn notifiers_never_show_secrets_when_the_receiver_is_down() {
    logs();
    notifier_never_leaks(&format!("127.0.0.1:{}", closed_port()), None).await;
}

// ---------------------------------------------------------------------------------------
// Probes.

fn http_probe(url: &str, redirects: Redirects) -> HttpProbe {
    HttpProbe::builder(url)
        .with_header("x-api-key", CANARY)
        .with_bearer_token(secret(CANARY))
        .with_redirects(redirects)
        .with_condition("[BODY] == pat(*all is well*)")
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn probe_views(probe: &HttpProbe) -> Vec<String> {
    let result = within(probe.check()).await.unwrap().unwrap();
    assert!(!result.outcome.is_up(), "{result:?}");
    vec![
        format!("{probe:?}"),
        result.detail.clone(),
        format!("{result:?}"),
        serde_json::to_string(&result).unwrap(),
    ]
}

#[tokio::test]
async fn http_probes_never_show_secrets_a_server_echoes() {
    logs();
    let (echo, echoed, _, _) = servers().await;
    let url = format!("http://ops:{CANARY}@{echo}/health/{CANARY}?token={CANARY}");
    let probe = http_probe(&url, Redirects::default());
    let shown = probe_views(&probe).await;
    assert_clean("http probe", &shown);
    let got = echoed.all();
    assert!(got.contains(&format!("x-api-key: {CANARY}")), "{got}");
    assert!(
        got.contains(&format!("/health/{CANARY}?token={CANARY}")),
        "{got}"
    );
    // What the server said is shown, escaped: the check still explains itself.
    assert!(shown[1].contains("no route for GET"), "{}", shown[1]);
    assert!(!shown[1].contains('\u{1b}') && !shown[1].contains('\n'));
    assert_logs_clean();
}

#[tokio::test]
async fn http_probes_send_no_credential_across_origins() {
    logs();
    let (echo, echoed, _, recorded) = servers().await;
    let url = format!("http://ops:{CANARY}@{echo}/away/{CANARY}?token={CANARY}");
    let followed = http_probe(&url, Redirects::Follow(3));
    let shown = probe_views(&followed).await;
    assert_clean("redirected http probe", &shown);
    let landed = recorded.all();
    assert!(
        landed.contains("GET /landed"),
        "the redirect was followed: {landed}"
    );
    assert!(
        !landed.contains(CANARY),
        "credentials crossed origins:\n{landed}"
    );
    assert!(!landed.to_ascii_lowercase().contains("referer"), "{landed}");
    assert!(
        !landed.to_ascii_lowercase().contains("authorization"),
        "{landed}"
    );
    assert!(echoed.all().contains(&format!("x-api-key: {CANARY}")));
    // The subscriber sees the libraries' TRACE output (the probe's own and the HTTP stack's).
    let logged = log_text();
    assert!(logged.contains("following a redirect"), "{logged}");
    assert!(logged.contains("TRACE"), "{logged}");

    let refusing = http_probe(&url, Redirects::SameOrigin(3));
    let before = recorded.all().len();
    let shown = probe_views(&refusing).await;
    assert!(
        shown[1].contains("refused a redirect to another origin"),
        "{}",
        shown[1]
    );
    assert_eq!(
        recorded.all().len(),
        before,
        "a refused redirect is not sent"
    );
    assert_clean("same-origin http probe", &shown);
    assert_logs_clean();
}

#[tokio::test]
async fn http_probes_never_show_secrets_when_the_server_is_down() {
    logs();
    let url = format!(
        "http://ops:{CANARY}@127.0.0.1:{}/health/{CANARY}?token={CANARY}",
        closed_port()
    );
    let shown = probe_views(&http_probe(&url, Redirects::default())).await;
    assert_clean("http probe (closed port)", &shown);
    let builder = HttpProbe::builder(&url).with_header("x-api-key", CANARY);
    assert_clean("http probe builder", &[format!("{builder:?}")]);
    assert_logs_clean();
}

#[tokio::test]
async fn prometheus_never_repeats_secrets_or_follows_them_away() {
    logs();
    let (echo, echoed, _, recorded) = servers().await;
    let query = MetricQuery::new("up").unwrap();
    for (path, expect) in [
        ("prom", "bad_data"),
        ("nojson", "answered 404"),
        ("away", "request to"),
    ] {
        let url = format!("http://ops:{CANARY}@{echo}/{path}/{CANARY}/?token={CANARY}");
        let builder = PrometheusMetricsBuilder::new(&url).with_token(secret(CANARY));
        assert_clean("prometheus builder", &[format!("{builder:?}")]);
        let prom = builder.build().unwrap();
        let err = within(prom.query(&query, None)).await.unwrap().unwrap_err();
        let mut shown = error_views(&err);
        shown.push(format!("{prom:?}"));
        assert!(shown[2].contains(expect), "{path}: {}", shown[2]);
        assert_clean(&format!("prometheus ({path})"), &shown);
    }
    assert!(
        echoed
            .all()
            .contains(&format!("authorization: Bearer {CANARY}"))
    );
    assert_eq!(
        recorded.all(),
        "",
        "no request followed a redirect to another origin"
    );
    assert_logs_clean();
}

// ---------------------------------------------------------------------------------------
// Database and cache: closed ports.

#[tokio::test]
async fn database_and_cache_never_show_their_passwords() {
    logs();
    let port = closed_port();
    let pg_url = format!("postgres://ops:{CANARY}@127.0.0.1:{port}/app");
    let builder =
        ops_db::PgDatabaseBuilder::new(pg_url.clone()).with_acquire_timeout(Duration::from_secs(2));
    assert_clean("pg builder", &[format!("{builder:?}")]);
    let db = builder.build().unwrap();
    let err = within(db.ping()).await.unwrap().unwrap_err();
    let mut shown = error_views(&err);
    shown.push(format!("{db:?}"));
    assert_clean("pg", &shown);

    let redis_url = format!("redis://ops:{CANARY}@127.0.0.1:{port}/0");
    let builder = ops_cache::RedisCacheBuilder::new()
        .with_url(redis_url)
        .with_password(secret(CANARY))
        .with_connect_timeout(Duration::from_secs(2));
    assert_clean("redis builder", &[format!("{builder:?}")]);
    let cache = builder.build().unwrap();
    let err = within(cache.ping()).await.unwrap().unwrap_err();
    let mut shown = error_views(&err);
    shown.push(format!("{cache:?}"));
    assert_clean("redis", &shown);
    assert_logs_clean();
}
