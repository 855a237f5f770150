//! Live progress: one line when a runbook step starts and one when it ends, with its time.

use std::fmt::Write as _;
use std::time::Instant;

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Prints `▶ step` / `✓ step (1.2s)` for every `step` span of a runbook.
pub(crate) struct StepPrinter;

struct Started {
    label: String,
    at: Instant,
}

#[derive(Default)]
struct Fields {
    step: Option<String>,
    runbook: Option<String>,
    kind: Option<String>,
    message: Option<String>,
    level: Option<String>,
    title: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        let s = s.trim_matches('"').to_owned();
        match field.name() {
            "step" => self.step = Some(s),
            "runbook" => self.runbook = Some(s),
            "kind" => self.kind = Some(s),
            "message" => self.message = Some(s),
            "level" => self.level = Some(s),
            "title" => self.title = Some(s),
            _ => {}
        }
    }
}

impl<S> Layer<S> for StepPrinter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "step" {
            return;
        }
        let mut f = Fields::default();
        attrs.record(&mut f);
        let Some(step) = f.step else { return };
        let marker = if f.kind.as_deref() == Some("disruptive") {
            "⚠"
        } else {
            "·"
        };
        let label = format!("{marker} {}::{step}", f.runbook.unwrap_or_default());
        eprintln!("    ▶ {label}");
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started {
                label,
                at: Instant::now(),
            });
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message.as_deref() == Some("finding") {
            let level = f.level.unwrap_or_default().to_lowercase();
            eprintln!("      • {level}: {}", f.title.unwrap_or_default());
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(s) = span.extensions().get::<Started>()
        {
            eprintln!("    ✓ {} ({:.1}s)", s.label, s.at.elapsed().as_secs_f64());
        }
    }
}
