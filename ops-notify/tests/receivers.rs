//! Notifiers against local receivers that validate Slack, PagerDuty Events v2, webhook and
//! Alertmanager v4 payloads against their documented schemas.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::type_complexity,
    reason = "test helpers outside #[test] fns"
)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router as Http;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ops_core::incident::{IncidentStatus, Severity};
use ops_core::notify::Notification;
use ops_core::testing::conformance;
use ops_core::testing::conformance::notifier::{Answer, DeliveryLimits, ScriptedReceiver};
use ops_core::{ErrorKind, Notifier};
use ops_notify::{
    ConsoleNotifier, PagerDutyNotifier, RetryPolicy, Router, SlackNotifier, WebhookFormat,
    WebhookNotifier,
};
use serde_json::{Value, json};

type Validator = fn(&Value) -> Result<(), String>;

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes, Value)>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    validate: Validator,
    ok: u16,
}

impl Receiver {
    fn requests(&self) -> Vec<(HeaderMap, Bytes, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

impl ScriptedReceiver for Receiver {
    fn script(&self, answers: &[Answer]) {
        *self.script.lock().unwrap() = answers.iter().copied().collect();
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    if let Err(why) = (r.validate)(&v) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": [why]})),
        )
            .into_response();
    }
    r.seen.lock().unwrap().push((headers, body, v.clone()));
    let next = r.script.lock().unwrap().pop_front();
    match next {
        Some(Answer::Status(status)) => StatusCode::from_u16(status).unwrap().into_response(),
        Some(Answer::TooManyRequests { retry_after_secs }) => {
            let mut resp = StatusCode::TOO_MANY_REQUESTS.into_response();
            resp.headers_mut()
                .insert("retry-after", retry_after_secs.to_string().parse().unwrap());
            resp
        }
        Some(Answer::Silence) => {
            // Holds the request open far past any deadline a notifier under test has.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        None => (
            StatusCode::from_u16(r.ok).unwrap(),
            axum::Json(json!({"status": "success", "message": "Event processed", "dedup_key": v["dedup_key"]})),
        )
            .into_response(),
    }
}

/// Starts a receiver; the URL carries a secret path that must never be shown.
async fn receiver(validate: Validator, ok: u16, script: &[Answer]) -> (Receiver, String) {
    let r = Receiver {
        seen: Arc::default(),
        script: Arc::new(Mutex::new(script.iter().copied().collect())),
        validate,
        ok,
    };
    let app = Http::new()
        .route("/{*path}", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, format!("http://{addr}/services/T000/B000/SECRETPATH"))
}

fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(30), f)
}

fn str_max(v: &Value, max: usize, what: &str) -> Result<(), String> {
    let s = v.as_str().ok_or(format!("{what} is not a string"))?;
    if s.is_empty() || s.chars().count() > max {
        return Err(format!("{what} must be 1..={max} characters"));
    }
    Ok(())
}

/// Slack incoming webhook with Block Kit in an attachment.
fn slack_schema(v: &Value) -> Result<(), String> {
    str_max(&v["text"], 40_000, "text")?;
    let att = v["attachments"].as_array().ok_or("attachments")?;
    for a in att {
        let color = a["color"].as_str().ok_or("color")?;
        if !(color.len() == 7 && color.starts_with('#')) {
            return Err(format!("bad color {color}"));
        }
        let blocks = a["blocks"].as_array().ok_or("blocks")?;
        if blocks.is_empty() || blocks.len() > 50 {
            return Err("1..=50 blocks".into());
        }
        for b in blocks {
            match b["type"].as_str() {
                Some("header") => {
                    if b["text"]["type"] != "plain_text" {
                        return Err("header text must be plain_text".into());
                    }
                    str_max(&b["text"]["text"], 150, "header text")?;
                }
                Some("section") => {
                    if b.get("text").is_none() && b.get("fields").is_none() {
                        return Err("section needs text or fields".into());
                    }
                    if let Some(t) = b.get("text") {
                        str_max(&t["text"], 3000, "section text")?;
                    }
                    if let Some(f) = b.get("fields") {
                        let f = f.as_array().ok_or("fields")?;
                        if f.len() > 10 {
                            return Err("at most 10 fields".into());
                        }
                        for x in f {
                            str_max(&x["text"], 2000, "field")?;
                        }
                    }
                }
                Some("context") => {
                    let e = b["elements"].as_array().ok_or("elements")?;
                    if e.is_empty() || e.len() > 10 {
                        return Err("1..=10 context elements".into());
                    }
                }
                other => return Err(format!("unexpected block {other:?}")),
            }
        }
    }
    Ok(())
}

const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12";

/// PagerDuty Events API v2.
fn pagerduty_schema(v: &Value) -> Result<(), String> {
    if v["routing_key"] != ROUTING_KEY {
        return Err("wrong routing_key".into());
    }
    let action = v["event_action"].as_str().ok_or("event_action")?;
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        return Err(format!("bad event_action {action}"));
    }
    if action != "trigger" {
        return str_max(&v["dedup_key"], 255, "dedup_key");
    }
    if let Some(k) = v.get("dedup_key") {
        str_max(k, 255, "dedup_key")?;
    }
    let p = &v["payload"];
    str_max(&p["summary"], 1024, "payload.summary")?;
    str_max(&p["source"], 1024, "payload.source")?;
    let sev = p["severity"].as_str().ok_or("payload.severity")?;
    if !["critical", "error", "warning", "info"].contains(&sev) {
        return Err(format!("bad severity {sev}"));
    }
    if let Some(t) = p.get("timestamp") {
        t.as_str()
            .ok_or("timestamp")?
            .parse::<jiff::Timestamp>()
            .map_err(|e| e.to_string())?;
    }
    for l in v["links"].as_array().into_iter().flatten() {
        str_max(&l["href"], 2048, "links.href")?;
    }
    Ok(())
}

/// Alertmanager webhook, version 4.
fn alertmanager_schema(v: &Value) -> Result<(), String> {
    if v["version"] != "4" {
        return Err("version must be \"4\"".into());
    }
    for key in ["groupKey", "status", "receiver", "externalURL"] {
        v[key].as_str().ok_or(key)?;
    }
    for key in ["groupLabels", "commonLabels", "commonAnnotations"] {
        v[key].as_object().ok_or(key)?;
    }
    v["truncatedAlerts"].as_u64().ok_or("truncatedAlerts")?;
    for a in v["alerts"].as_array().ok_or("alerts")? {
        let s = a["status"].as_str().ok_or("alert status")?;
        if !["firing", "resolved"].contains(&s) {
            return Err(format!("bad alert status {s}"));
        }
        a["labels"]["alertname"]
            .as_str()
            .ok_or("labels.alertname")?;
        a["annotations"].as_object().ok_or("annotations")?;
        for t in ["startsAt", "endsAt"] {
            a[t].as_str()
                .ok_or(t)?
                .parse::<jiff::Timestamp>()
                .map_err(|e| format!("{t}: {e}"))?;
        }
        a["generatorURL"].as_str().ok_or("generatorURL")?;
        a["fingerprint"].as_str().ok_or("fingerprint")?;
    }
    Ok(())
}

/// The schema a webhook receiver of `format` validates.
fn schema_of(format: WebhookFormat) -> Validator {
    if format == WebhookFormat::Json {
        webhook_schema
    } else {
        alertmanager_schema
    }
}

fn webhook_schema(v: &Value) -> Result<(), String> {
    for k in [
        "title",
        "body",
        "severity",
        "status",
        "dedup_key",
        "sent_at",
        "version",
    ] {
        v[k].as_str().ok_or(k)?;
    }
    v["resolved"].as_bool().ok_or("resolved")?;
    Ok(())
}

fn incident() -> Notification {
    let mut n = Notification::new(
        Severity::Critical,
        "api down",
        "all pods fail **health** checks",
    )
    .with_incident("INC-42")
    .with_field("service", "api")
    .with_field("error_rate", "12%");
    n.links.push((
        "dashboard".to_owned(),
        "https://grafana.example/d/api".to_owned(),
    ));
    n
}

fn fast_retry() -> RetryPolicy {
    ops_notify::delivery_policy().with_initial_delay(Duration::from_millis(10))
}

/// A Slack receiver that accepts every valid payload, and a notifier posting to it.
async fn slack_receiver() -> (Receiver, SlackNotifier) {
    let (r, url) = receiver(slack_schema, 200, &[]).await;
    let slack = SlackNotifier::builder()
        .with_webhook_url(url.into())
        .build()
        .unwrap();
    (r, slack)
}

#[tokio::test]
async fn slack_posts_block_kit_with_severity_colour() {
    let (r, slack) = slack_receiver().await;
    within(slack.send(&incident())).await.unwrap().unwrap();
    let (_, _, v) = r.requests().pop().unwrap();
    assert_eq!(v["attachments"][0]["color"], "#D00000");
    let blocks = v["attachments"][0]["blocks"].to_string();
    assert!(blocks.contains("*health*"), "markdown converted: {blocks}");
    assert!(
        blocks.contains("<https://grafana.example/d/api|dashboard>"),
        "{blocks}"
    );
    assert!(blocks.contains("*service*\\napi"), "{blocks}");
    within(conformance::notifier::delivers_trigger_and_resolve(&slack))
        .await
        .unwrap();
    let (_, _, resolved) = r.requests().pop().unwrap();
    assert_eq!(resolved["attachments"][0]["color"], "#2EB67D");
    assert!(!format!("{slack:?}").contains("SECRETPATH"));
}

/// Every string in a JSON value, with the path to it.
fn strings(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path.to_owned(), s.clone())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                strings(x, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                strings(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// Text a system under diagnosis could put in a report: every Slack mention form, a link
/// whose target is a mention, Markdown that would start blocks.
const HOSTILE: &str = "<!channel> <!here|x> <!everyone> <@U0123ABC> <#C0123> <!subteam^S01|@ops> \
    [ping](!channel) [u](@U0123ABC) [c](<!here>) & <https://evil.example|click> @channel";

#[tokio::test]
async fn slack_never_turns_hostile_text_into_mentions() {
    let (r, slack) = slack_receiver().await;
    // A report whose evidence is hostile, rendered the way runbooks send it.
    let mut report = ops_core::run::Report::new(
        ops_core::run::RunId::generate(jiff::Timestamp::UNIX_EPOCH),
        "api_down",
        ops_core::run::Mode::DryRun,
        format!("api {HOSTILE}"),
        jiff::Timestamp::UNIX_EPOCH,
    );
    report.findings.push(
        ops_core::run::Finding::critical(format!("down {HOSTILE}"))
            .with_evidence(format!("log: {HOSTILE}\n# heading\n| a | b |")),
    );
    let mut n = Notification::new(
        Severity::Critical,
        format!("api down {HOSTILE}"),
        report.to_markdown(),
    )
    .with_incident(format!("INC-1 {HOSTILE}"))
    .with_field(format!("k {HOSTILE}"), HOSTILE);
    n.links.push((HOSTILE.to_owned(), "!channel".to_owned()));
    n.links.push((
        "dash".to_owned(),
        "https://grafana.example/d|<!here>".to_owned(),
    ));
    n.links
        .push(("ok".to_owned(), "https://grafana.example/d/api".to_owned()));
    within(slack.send(&n)).await.unwrap().unwrap();
    let (_, _, sent) = r.requests().pop().unwrap();
    let mut all = Vec::new();
    strings(&sent, "$", &mut all);
    for (path, text) in &all {
        // A header is plain_text: Slack shows it as typed and parses nothing in it.
        if path.ends_with("].text.text") && path.contains("blocks[0]") {
            continue;
        }
        for special in ["<!", "<@", "<#"] {
            assert!(!text.contains(special), "{path} can ping: {text}");
        }
    }
    assert_eq!(
        sent["attachments"][0]["blocks"][0]["text"]["type"],
        "plain_text"
    );
    // Every mrkdwn object is verbatim: Slack guesses no mention, channel or link.
    let blocks = sent["attachments"][0]["blocks"].to_string();
    assert_eq!(
        blocks.matches(r#""type":"mrkdwn""#).count(),
        blocks.matches(r#""verbatim":true"#).count(),
        "{blocks}"
    );
    // The one real link survives; the rest is shown as text.
    assert!(
        blocks.contains("<https://grafana.example/d/api|ok>"),
        "{blocks}"
    );
    assert!(blocks.contains("&lt;!channel&gt;"), "{blocks}");
}

#[tokio::test]
async fn pagerduty_triggers_acknowledges_and_resolves_by_dedup_key() {
    let (r, url) = receiver(pagerduty_schema, 202, &[]).await;
    let pd = PagerDutyNotifier::builder()
        .with_routing_key(ROUTING_KEY.into())
        .with_events_url(url.into())
        .with_component("api")
        .build()
        .unwrap();
    let n = incident();
    within(pd.send(&n)).await.unwrap().unwrap();
    within(pd.acknowledge(&n)).await.unwrap().unwrap();
    within(pd.send(&n.clone().with_status(IncidentStatus::Resolved)))
        .await
        .unwrap()
        .unwrap();
    let seen: Vec<Value> = r.requests().into_iter().map(|(_, _, v)| v).collect();
    let actions: Vec<&str> = seen
        .iter()
        .map(|v| v["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
    assert!(seen.iter().all(|v| v["dedup_key"] == "INC-42"));
    assert_eq!(seen[0]["payload"]["severity"], "critical");
    assert_eq!(seen[0]["payload"]["custom_details"]["service"], "api");
    assert_eq!(seen[0]["links"][0]["href"], "https://grafana.example/d/api");
    within(conformance::notifier::delivers_trigger_and_resolve(&pd))
        .await
        .unwrap();
    assert!(!format!("{pd:?}").contains("R0UT1NG"));
}

#[tokio::test]
async fn pagerduty_rejection_is_invalid_input_without_the_key() {
    let (_r, url) = receiver(pagerduty_schema, 202, &[]).await;
    let pd = PagerDutyNotifier::builder()
        .with_routing_key("wrong-key-000".into())
        .with_events_url(url.into())
        .build()
        .unwrap();
    let err = within(pd.send(&incident())).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}", err.chain());
    let chain = err.chain();
    assert!(
        chain.contains("400") && chain.contains("wrong routing_key"),
        "{chain}"
    );
    assert!(
        !chain.contains("wrong-key-000") && !chain.contains("SECRETPATH"),
        "{chain}"
    );
}

#[tokio::test]
async fn webhook_signs_json_with_hmac() {
    let (r, url) = receiver(webhook_schema, 200, &[]).await;
    let hook = WebhookNotifier::builder(url.into())
        .with_signing_secret("sh4red".into())
        .build()
        .unwrap();
    within(conformance::notifier::delivers_trigger_and_resolve(&hook))
        .await
        .unwrap();
    for (headers, body, v) in r.requests() {
        let ts: i64 = headers[ops_notify::TIMESTAMP_HEADER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let sig = headers[ops_notify::SIGNATURE_HEADER].to_str().unwrap();
        assert!(
            ops_notify::verify(b"sh4red", ts, &body, sig),
            "signature verifies"
        );
        assert!(!ops_notify::verify(b"other", ts, &body, sig));
        assert_eq!(v["incident_id"], "INC-conformance");
    }
    let shown = format!("{hook:?}");
    assert!(
        !shown.contains("sh4red") && !shown.contains("SECRETPATH"),
        "{shown}"
    );
}

#[tokio::test]
async fn webhook_speaks_alertmanager_v4() {
    let (r, url) = receiver(alertmanager_schema, 200, &[]).await;
    let hook = WebhookNotifier::builder(url.into())
        .with_format(WebhookFormat::AlertmanagerV4)
        .build()
        .unwrap();
    let n = incident();
    within(hook.send(&n)).await.unwrap().unwrap();
    within(hook.send(&n.with_status(IncidentStatus::Resolved)))
        .await
        .unwrap()
        .unwrap();
    let seen: Vec<Value> = r.requests().into_iter().map(|(_, _, v)| v).collect();
    assert_eq!(seen[0]["status"], "firing");
    assert_eq!(seen[1]["status"], "resolved");
    assert_eq!(
        seen[0]["alerts"][0]["fingerprint"],
        seen[1]["alerts"][0]["fingerprint"]
    );
    assert_eq!(seen[0]["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(
        seen[0]["alerts"][0]["generatorURL"],
        "https://grafana.example/d/api"
    );
}

#[tokio::test]
async fn retries_honour_retry_after_on_429_and_back_off_on_5xx() {
    let (r, url) = receiver(
        slack_schema,
        200,
        &[Answer::TooManyRequests {
            retry_after_secs: 1,
        }],
    )
    .await;
    let slack = SlackNotifier::builder()
        .with_webhook_url(url.into())
        .with_retry(fast_retry())
        .build()
        .unwrap();
    let t = Instant::now();
    within(slack.send(&incident())).await.unwrap().unwrap();
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After: {:?}",
        t.elapsed()
    );
    assert_eq!(r.requests().len(), 2);

    let (r, url) = receiver(
        webhook_schema,
        200,
        &[Answer::Status(500), Answer::Status(503)],
    )
    .await;
    let hook = WebhookNotifier::builder(url.into())
        .with_retry(fast_retry())
        .build()
        .unwrap();
    within(hook.send(&incident())).await.unwrap().unwrap();
    assert_eq!(r.requests().len(), 3);

    let (r, url) = receiver(
        webhook_schema,
        200,
        &[
            Answer::Status(503),
            Answer::Status(503),
            Answer::Status(503),
        ],
    )
    .await;
    let hook = WebhookNotifier::builder(url.into())
        .with_retry(fast_retry().with_max_attempts(3))
        .build()
        .unwrap();
    let err = within(hook.send(&incident())).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.chain().contains("503 after 3 attempts"),
        "{}",
        err.chain()
    );
    assert!(!err.chain().contains("SECRETPATH"), "{}", err.chain());
    assert_eq!(r.requests().len(), 3);

    let (r, url) = receiver(webhook_schema, 200, &[Answer::Status(403)]).await;
    let hook = WebhookNotifier::builder(url.into())
        .with_retry(fast_retry())
        .build()
        .unwrap();
    let err = within(hook.send(&incident())).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(r.requests().len(), 1, "4xx other than 429 is not retried");

    let (_r, url) = receiver(
        webhook_schema,
        200,
        &[Answer::TooManyRequests {
            retry_after_secs: 3600,
        }],
    )
    .await;
    let hook = WebhookNotifier::builder(url.into())
        .with_retry(fast_retry())
        .build()
        .unwrap();
    let t = Instant::now();
    let err = within(hook.send(&incident())).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "a Retry-After over the cap gives up at once"
    );
}

#[tokio::test]
async fn unreachable_receiver_is_unavailable_without_its_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = WebhookNotifier::builder(format!("http://127.0.0.1:{port}/hook/SECRETPATH").into())
        .with_retry(fast_retry().with_max_attempts(2))
        .build()
        .unwrap();
    let err = within(hook.send(&incident())).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.chain());
    assert!(!err.chain().contains("SECRETPATH"), "{}", err.chain());
    assert!(!format!("{err:?}").contains("SECRETPATH"));
}

#[tokio::test]
async fn router_fans_out_by_severity_and_isolates_failures() {
    let (pager_rx, pager_url) = receiver(pagerduty_schema, 202, &[]).await;
    let (chat_rx, chat_url) = receiver(
        slack_schema,
        200,
        &[Answer::Status(503), Answer::Status(503)],
    )
    .await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let pager = Arc::new(
        PagerDutyNotifier::builder()
            .with_routing_key(ROUTING_KEY.into())
            .with_events_url(pager_url.into())
            .build()
            .unwrap(),
    );
    let chat = Arc::new(
        SlackNotifier::builder()
            .with_webhook_url(chat_url.into())
            .with_retry(RetryPolicy::none())
            .build()
            .unwrap(),
    );
    let router = Router::standard(
        pager,
        chat,
        Arc::new(ConsoleNotifier::with_buffer(Arc::clone(&log))),
    );
    assert_eq!(router.receivers(Severity::High), ["pagerduty", "slack"]);

    // P0: chat fails, the page still goes out, and the result says which failed.
    let d = within(router.deliver(&incident())).await.unwrap();
    assert_eq!(d.delivered, ["pagerduty"]);
    assert_eq!(d.failed.len(), 1);
    assert_eq!(d.failed[0].0, "slack");
    assert_eq!(pager_rx.requests().len(), 1);
    let err = within(router.send(&incident())).await.unwrap().unwrap_err();
    assert!(
        err.chain().contains("1 of 2 receivers failed: slack"),
        "{}",
        err.chain()
    );
    assert!(!err.chain().contains("SECRETPATH"), "{}", err.chain());

    // P2 goes to chat only (now healthy), P3 to the log only.
    let d = within(router.deliver(&Notification::new(Severity::Medium, "p95 2.4s", "")))
        .await
        .unwrap();
    assert_eq!(d.delivered, ["slack"]);
    let d = within(router.deliver(&Notification::new(Severity::Low, "disk 81%", "")))
        .await
        .unwrap();
    assert_eq!(d.delivered, ["console"]);
    assert!(
        String::from_utf8(log.lock().unwrap().clone())
            .unwrap()
            .contains("[P3] Investigating: disk 81%")
    );
    assert_eq!(pager_rx.requests().len(), 2);
    assert_eq!(chat_rx.requests().len(), 3);
    within(conformance::notifier::delivers_trigger_and_resolve(&router))
        .await
        .unwrap();
}

#[tokio::test]
async fn console_passes_conformance() {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let console = ConsoleNotifier::with_buffer(Arc::clone(&buf));
    within(conformance::notifier::delivers_trigger_and_resolve(
        &console,
    ))
    .await
    .unwrap();
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("[P1] Investigating: conformance: api down (INC-conformance)"),
        "{text}"
    );
    assert!(text.contains("[P1] Resolved:"), "{text}");
}

/// Every delivery a receiver got, as text: its headers, then its body.
fn deliveries(receivers: &[Receiver]) -> Vec<String> {
    receivers
        .iter()
        .flat_map(Receiver::requests)
        .map(|(headers, body, _)| {
            let mut text = String::new();
            for (name, value) in &headers {
                let _ = writeln!(text, "{name}: {}", value.to_str().unwrap_or(""));
            }
            text.push_str(&String::from_utf8_lossy(&body));
            text
        })
        .collect()
}

/// The conformance check on the receiver's side, for every notifier: what arrived for the
/// trigger and the resolution, with the dedup key, and never the URL's secret path or the
/// signing secret.
#[tokio::test]
async fn every_notifier_delivers_trigger_and_resolve_as_its_receiver_sees_them() {
    let check = conformance::notifier::receiver_gets_trigger_then_resolve;
    let secrets = ["SECRETPATH", "sh4red"];

    let (r, slack) = slack_receiver().await;
    let inbox = || deliveries(std::slice::from_ref(&r));
    within(check(&slack, &inbox, &secrets)).await.unwrap();

    let (r, url) = receiver(pagerduty_schema, 202, &[]).await;
    let pd = PagerDutyNotifier::builder()
        .with_routing_key(ROUTING_KEY.into())
        .with_events_url(url.into())
        .build()
        .unwrap();
    let inbox = || deliveries(std::slice::from_ref(&r));
    within(check(&pd, &inbox, &secrets)).await.unwrap();

    for format in [WebhookFormat::Json, WebhookFormat::AlertmanagerV4] {
        let (r, url) = receiver(schema_of(format), 200, &[]).await;
        let hook = WebhookNotifier::builder(url.into())
            .with_format(format)
            .with_signing_secret("sh4red".into())
            .build()
            .unwrap();
        let inbox = || deliveries(std::slice::from_ref(&r));
        within(check(&hook, &inbox, &secrets)).await.unwrap();
    }

    let (pager_rx, pager_url) = receiver(pagerduty_schema, 202, &[]).await;
    let (chat_rx, chat_url) = receiver(slack_schema, 200, &[]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let router = Router::standard(
        Arc::new(
            PagerDutyNotifier::builder()
                .with_routing_key(ROUTING_KEY.into())
                .with_events_url(pager_url.into())
                .build()
                .unwrap(),
        ),
        Arc::new(
            SlackNotifier::builder()
                .with_webhook_url(chat_url.into())
                .build()
                .unwrap(),
        ),
        Arc::new(ConsoleNotifier::with_buffer(Arc::clone(&log))),
    );
    let both = [pager_rx.clone(), chat_rx.clone()];
    let inbox = || deliveries(&both);
    within(check(&router, &inbox, &secrets)).await.unwrap();
    assert_eq!(
        (pager_rx.requests().len(), chat_rx.requests().len()),
        (2, 2),
        "a P1 goes to the pager and the chat"
    );

    let buf = Arc::new(Mutex::new(Vec::new()));
    let console = ConsoleNotifier::with_buffer(Arc::clone(&buf));
    // One delivery per entry: a line starting with `[P`, and the lines under it.
    let inbox = || {
        let mut entries: Vec<String> = Vec::new();
        for line in String::from_utf8_lossy(&buf.lock().unwrap()).lines() {
            match entries.last_mut() {
                Some(last) if !line.starts_with("[P") => {
                    last.push('\n');
                    last.push_str(line);
                }
                _ => entries.push(line.to_owned()),
            }
        }
        entries
    };
    within(check(&console, &inbox, &secrets)).await.unwrap();
}

/// What the notifiers under the failure checks are built with: 500 ms an attempt, 3 s a send,
/// 4 attempts.
fn checked_limits() -> (DeliveryLimits, RetryPolicy) {
    let limits = DeliveryLimits::new(Duration::from_millis(500), Duration::from_secs(3));
    let policy = fast_retry()
        .with_max_attempts(4)
        .with_deadline(limits.deadline);
    (limits, policy)
}

/// Every documented failure, provoked on the receiver's side for Slack, PagerDuty and both
/// webhook formats through one conformance function: 400/401/403 typed and not retried, 503
/// retried, `Retry-After` honoured up to the deadline, silence a `Timeout` by the deadline,
/// and no error text with the URL's secret path, the routing key or the signing secret.
#[tokio::test(flavor = "multi_thread")]
async fn every_notifier_types_retries_and_times_out_as_documented() {
    let check = conformance::notifier::delivery_failures;
    let secrets = ["SECRETPATH", "sh4red", ROUTING_KEY];
    let (limits, policy) = checked_limits();

    let (r, url) = receiver(slack_schema, 200, &[]).await;
    let slack = SlackNotifier::builder()
        .with_webhook_url(url.into())
        .with_timeout(limits.attempt_timeout)
        .with_retry(policy)
        .build()
        .unwrap();
    within(check(&slack, &r, limits, &secrets)).await.unwrap();

    let (r, url) = receiver(pagerduty_schema, 202, &[]).await;
    let pd = PagerDutyNotifier::builder()
        .with_routing_key(ROUTING_KEY.into())
        .with_events_url(url.into())
        .with_timeout(limits.attempt_timeout)
        .with_retry(policy)
        .build()
        .unwrap();
    within(check(&pd, &r, limits, &secrets)).await.unwrap();

    for format in [WebhookFormat::Json, WebhookFormat::AlertmanagerV4] {
        let (r, url) = receiver(schema_of(format), 200, &[]).await;
        let hook = WebhookNotifier::builder(url.into())
            .with_format(format)
            .with_signing_secret("sh4red".into())
            .with_timeout(limits.attempt_timeout)
            .with_retry(policy)
            .build()
            .unwrap();
        within(check(&hook, &r, limits, &secrets)).await.unwrap();
    }
}

/// An attempt's timeout longer than the send's deadline is cut to the deadline: a silent
/// receiver is a `Timeout` after 2 s, not after the attempt's 10 s.
#[tokio::test]
async fn no_attempt_outlives_the_send_deadline() {
    let limits = DeliveryLimits::new(Duration::from_secs(10), Duration::from_secs(2));
    let (r, url) = receiver(webhook_schema, 200, &[]).await;
    let hook = WebhookNotifier::builder(url.into())
        .with_timeout(limits.attempt_timeout)
        .with_retry(fast_retry().with_deadline(limits.deadline))
        .build()
        .unwrap();
    within(
        conformance::notifier::silence_is_timeout_within_the_deadline(
            &hook,
            &r,
            limits,
            &["SECRETPATH"],
        ),
    )
    .await
    .unwrap();
}
