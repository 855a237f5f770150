//! Live progress from the run's own events ([`RunObserver`]): one line when a step starts, one
//! when it ends with its time and status, one per finding.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use ops_core::run::{FindingLevel, RunEvent, RunId, RunObserver, StepKind, StepStatus};

/// Prints `▶ runbook::step` / `✓ runbook::step (1.2s)` and findings, on stderr.
#[derive(Debug, Default)]
pub struct LiveView {
    runbooks: Mutex<HashMap<RunId, &'static str>>,
    started: Mutex<HashMap<(RunId, String), Instant>>,
}

impl LiveView {
    fn label(&self, run_id: &RunId, step: &str, kind: StepKind) -> String {
        let runbook = self
            .runbooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(run_id)
            .copied()
            .unwrap_or("run");
        let marker = if kind == StepKind::Disruptive {
            "⚠"
        } else {
            "·"
        };
        format!("{marker} {runbook}::{step}")
    }
}

impl LiveView {
    /// The steps running now, each with how long it has run (for a heartbeat on long waits).
    pub fn running(&self) -> Vec<(String, std::time::Duration)> {
        let mut steps: Vec<(String, std::time::Duration)> = self
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((_, step), at)| (step.clone(), at.elapsed()))
            .collect();
        steps.sort_by_key(|s| std::cmp::Reverse(s.1));
        steps
    }
}

impl RunObserver for LiveView {
    fn observe(&self, event: &RunEvent) {
        match event {
            RunEvent::Started {
                run_id, runbook, ..
            } => {
                self.runbooks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(run_id.clone(), runbook);
            }
            RunEvent::StepStarted {
                run_id, step, kind, ..
            } => {
                eprintln!("    ▶ {}", self.label(run_id, step, *kind));
                self.started
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((run_id.clone(), step.clone()), Instant::now());
            }
            RunEvent::StepFinished { run_id, record, .. } => {
                let label = self.label(run_id, &record.step, record.kind);
                let began = self
                    .started
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&(run_id.clone(), record.step.clone()));
                let mark = if record.status == StepStatus::Succeeded {
                    "✓"
                } else {
                    "✗"
                };
                match began {
                    Some(at) if record.status == StepStatus::Succeeded => {
                        eprintln!("    {mark} {label} ({:.1}s)", at.elapsed().as_secs_f64());
                    }
                    Some(at) => eprintln!(
                        "    {mark} {label} ({:.1}s, {})",
                        at.elapsed().as_secs_f64(),
                        record.status.label()
                    ),
                    None => eprintln!("    ○ {label} ({})", record.status.label()),
                }
            }
            RunEvent::Finding { finding, .. } => {
                let level = match finding.level {
                    FindingLevel::Info => "info",
                    FindingLevel::Warning => "warning",
                    FindingLevel::Critical => "critical",
                };
                eprintln!("      • {level}: {}", finding.title);
            }
            RunEvent::Finished { run_id, .. } => {
                self.runbooks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(run_id);
            }
            _ => {}
        }
    }
}
