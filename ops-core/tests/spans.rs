//! Spans (issue 17): every event of a step — the engine's retry line, and what a backend logs
//! while the step calls it — carries the run's id, runbook, target and mode (from the `run`
//! span) and the step's name and kind (from its `step` span), so logs join the journal and
//! the report. And nothing captured at TRACE holds the secret value the run carried.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default,
    reason = "tests fail loudly; non-exhaustive types are built by assignment"
)]

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ops_core::ErrorKind;
use ops_core::OpsError;
use ops_core::platform::{ConfigTarget, ConfigUpdate, Platform as _, WorkloadStatus};
use ops_core::probe::{Probe, ProbeResult};
use ops_core::run::{ApprovalPolicy, Mode, RunContext, RunOutcome, Step};
use ops_core::runbooks::{RunbookConfig, SecretRotation, Targets, secret_rotation};
use ops_core::testing::{FakePlatform, ScriptedProbe};
use ops_core::{Namespace, ResourceName, WorkloadRef};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

const NEW_VALUE: &str = "n3w-v4lue-canary-7d1e-never-logged";
const OLD_VALUE: &str = "0ld-v4lue-canary-88c2";

/// One captured event: its message and fields, and the spans it was in (root first) with
/// theirs.
#[derive(Debug, Clone)]
struct Captured {
    message: String,
    fields: BTreeMap<String, String>,
    spans: Vec<(String, BTreeMap<String, String>)>,
}

impl Captured {
    /// The value of `field` in the innermost span that has it.
    fn span_field(&self, field: &str) -> Option<&str> {
        self.spans
            .iter()
            .rev()
            .find_map(|(_, f)| f.get(field).map(String::as_str))
    }

    fn span_names(&self) -> Vec<&str> {
        self.spans.iter().map(|(n, _)| n.as_str()).collect()
    }
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Records every event with the fields of the spans it happened in (and every span's fields
/// as text, for the secret search).
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
    text: Arc<Mutex<String>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let _ = writeln!(
            self.text.lock().unwrap(),
            "{} {:?}",
            attrs.metadata().name(),
            fields.0
        );
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<Fields>() {
                values.record(fields);
                let _ = writeln!(self.text.lock().unwrap(), "record {:?}", fields.0);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let spans = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .map(|s| {
                        let f = s
                            .extensions()
                            .get::<Fields>()
                            .map(|f| f.0.clone())
                            .unwrap_or_default();
                        (s.name().to_owned(), f)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let message = fields.0.remove("message").unwrap_or_default();
        let _ = writeln!(
            self.text.lock().unwrap(),
            "{message} {:?} {spans:?}",
            fields.0
        );
        self.events.lock().unwrap().push(Captured {
            message,
            fields: fields.0,
            spans,
        });
    }
}

/// A probe that logs like a backend does (a `backend` field, inside whatever span is current)
/// and then answers as the scripted probe it wraps.
#[derive(Debug)]
struct LoggingProbe(ScriptedProbe);

#[async_trait]
impl Probe for LoggingProbe {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn check(&self) -> Result<ProbeResult, OpsError> {
        tracing::debug!(backend = "test-probe", "probe checked");
        self.0.check().await
    }
}

fn api() -> WorkloadRef {
    "prod/deployment/api".parse().unwrap()
}

fn name(n: &str) -> ResourceName {
    n.parse().unwrap()
}

fn prod() -> Namespace {
    "prod".parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn events_inside_steps_carry_the_run_id_runbook_and_step_and_no_secret() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let p = Arc::new(
        FakePlatform::default()
            .with_workload(WorkloadStatus::healthy(api(), 2))
            .with_secret(
                &prod(),
                &name("db-creds"),
                &[("password", OLD_VALUE), ("user", "app")],
            )
            .with_secret_user(&api(), &name("db-creds"))
            // The first read of the users fails as an unreachable server would: the
            // engine's retry path logs inside the step.
            .fail_next("secret_users", ErrorKind::Unavailable),
    );
    let mut cfg =
        RunbookConfig::default().with_verify(2, Duration::from_secs(1), Duration::from_secs(30));
    cfg.rotation = Some(SecretRotation::new(
        ConfigTarget::Secret(name("db-creds")),
        "password",
        NEW_VALUE,
    ));
    let probe = LoggingProbe(ScriptedProbe::tracking("api", Arc::clone(&p), api()));
    let t = Targets::new(Arc::clone(&p) as _, api())
        .with_probe(Arc::new(probe))
        .with_config(cfg);
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .build();

    let report = secret_rotation(&ctx, &t).await.unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Recovered,
        "{}",
        report.to_markdown()
    );
    let run_id = report.run_id.to_string();
    let events = capture.events.lock().unwrap().clone();

    let retrying = events
        .iter()
        .find(|e| e.message == "retrying")
        .unwrap_or_else(|| panic!("no retry event in {events:#?}"));
    assert_eq!(retrying.span_field("run_id"), Some(run_id.as_str()));
    assert_eq!(retrying.span_field("runbook"), Some("secret_rotation"));
    assert_eq!(retrying.span_field("step"), Some("secret_users"));
    assert_eq!(retrying.span_field("kind"), Some("read_only"));
    assert_eq!(retrying.span_field("mode"), Some("execute"));
    let names = retrying.span_names();
    let run_at = names.iter().position(|n| *n == "run").unwrap();
    assert_eq!(
        names.get(run_at + 1),
        Some(&"step"),
        "the step span is a child of the run span: {names:?}"
    );

    let probed: Vec<_> = events
        .iter()
        .filter(|e| e.fields.get("backend").map(String::as_str) == Some("test-probe"))
        .collect();
    assert!(!probed.is_empty(), "the probe never logged: {events:#?}");
    for e in &probed {
        assert_eq!(e.span_field("run_id"), Some(run_id.as_str()), "{e:?}");
        assert_eq!(e.span_field("runbook"), Some("secret_rotation"), "{e:?}");
        assert_eq!(e.span_field("target"), Some(api().to_string().as_str()));
        assert!(e.span_field("step").is_some(), "{e:?}");
    }
    let text = capture.text.lock().unwrap().clone();
    assert!(text.contains(&run_id), "the capture saw the run");
    assert!(
        !text.contains(NEW_VALUE) && !text.contains(OLD_VALUE),
        "a secret value reached the trace: {text}"
    );
}

/// A disruptive step: what the backend logs while the approved change runs carries the run
/// and the step, with kind `disruptive`; the secret value it sets is nowhere in the trace.
#[tokio::test(start_paused = true)]
async fn a_changes_backend_events_carry_the_run_and_its_disruptive_step() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let p = FakePlatform::default().with_workload(WorkloadStatus::healthy(api(), 2));
    let ctx = RunContext::builder()
        .allow_volatile_journal()
        .mode(Mode::Execute)
        .approver(ApprovalPolicy::approve_all("test"))
        .build();
    let run = ctx.begin("set_password", api()).await;
    let update = ConfigUpdate::new(ConfigTarget::Env).set("DB_PASSWORD", NEW_VALUE);
    let change = run
        .act(Step::disruptive("update_config"), || async {
            tracing::info!(backend = "test-platform", update = ?update, "updating");
            p.update_config(&api(), update.clone()).await
        })
        .await
        .unwrap();
    assert!(change.is_done());
    let report = run.finish(RunOutcome::Recovered).await;

    let events = capture.events.lock().unwrap().clone();
    let updating = events
        .iter()
        .find(|e| e.message == "updating")
        .unwrap_or_else(|| panic!("no backend event in {events:#?}"));
    assert_eq!(
        updating.span_field("run_id"),
        Some(report.run_id.to_string().as_str())
    );
    assert_eq!(updating.span_field("runbook"), Some("set_password"));
    assert_eq!(updating.span_field("step"), Some("update_config"));
    assert_eq!(updating.span_field("kind"), Some("disruptive"));
    assert!(
        updating.fields["update"].contains("DB_PASSWORD"),
        "the key is logged: {updating:?}"
    );
    let text = capture.text.lock().unwrap().clone();
    assert!(
        !text.contains(NEW_VALUE),
        "the value reached the trace: {text}"
    );
}
