//! Live progress from the run's own events ([`RunObserver`]), on stderr: one line when a step
//! starts and one when it ends (its number among the steps seen so far, its time and status),
//! one per finding; on a terminal also a status line under them, redrawn in place, with a
//! spinner, the step running now and how long it has run. Not a terminal, `--quiet` or CI:
//! plain lines only, and a heartbeat line for a step that runs long.
//!
//! [`Progress`] is the renderer, a pure function of the events and the times they arrived
//! (tested on recorded events); [`LiveView`] feeds it the events as they happen and writes
//! what it returns.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ops_core::run::{FindingLevel, RunEvent, RunId, RunObserver, StepKind, StepStatus};

/// How progress is drawn.
///
/// # Examples
/// ```
/// use ops_examples::live::Style;
/// assert_eq!(Style::detect(true), Style::Plain); // --quiet
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Style {
    /// Permanent lines only, plus a heartbeat line for a step that runs long.
    #[default]
    Plain,
    /// A terminal: the permanent lines and, under them, a status line redrawn in place.
    Tty,
}

impl Style {
    /// [`Style::Tty`] when stderr is a terminal, `quiet` is false and `CI` is not set (to
    /// anything but `false` or `0`); [`Style::Plain`] otherwise.
    pub fn detect(quiet: bool) -> Self {
        use std::io::IsTerminal as _;
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        if !quiet && !ci && std::io::stderr().is_terminal() {
            Self::Tty
        } else {
            Self::Plain
        }
    }
}

/// The spinner's frames, one per 100 ms.
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A step that has started and not finished.
#[derive(Debug, Clone)]
struct Running {
    run_id: RunId,
    step: String,
    label: String,
    number: usize,
    since: Duration,
}

/// The renderer: [`RunEvent`]s in, with the time since the view began at which each arrived;
/// lines out. Pure: no clock, no terminal.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::run::{Mode, RunEvent, RunId, StepKind};
/// use ops_examples::live::Progress;
/// let mut p = Progress::default();
/// let run_id = RunId::generate(jiff::Timestamp::UNIX_EPOCH);
/// p.event(Duration::ZERO, &RunEvent::Started { run_id: run_id.clone(), runbook: "api_down", target: "api".into(), mode: Mode::DryRun });
/// let lines = p.event(Duration::ZERO, &RunEvent::StepStarted { run_id, step: "probe".into(), kind: StepKind::ReadOnly });
/// assert_eq!(lines, ["    ▶ · api_down::probe [1/1]"]);
/// assert_eq!(p.status(Duration::from_millis(1200)).as_deref(), Some("    ⠹ · api_down::probe [1/1] 1.2s"));
/// ```
#[derive(Debug, Default)]
pub struct Progress {
    runbooks: HashMap<RunId, &'static str>,
    seen: usize,
    running: Vec<Running>,
    /// An approval is being asked at the terminal: no status line over the prompt.
    asking: bool,
}

impl Progress {
    fn label(&self, run_id: &RunId, step: &str, kind: StepKind) -> String {
        let runbook = self.runbooks.get(run_id).copied().unwrap_or("run");
        let marker = if kind == StepKind::Disruptive {
            "⚠"
        } else {
            "·"
        };
        format!("{marker} {runbook}::{}", ops_core::text::escape(step))
    }

    /// The permanent lines `event` adds, arriving `at` after the view began.
    pub fn event(&mut self, at: Duration, event: &RunEvent) -> Vec<String> {
        match event {
            RunEvent::Started {
                run_id, runbook, ..
            } => {
                self.runbooks.insert(run_id.clone(), runbook);
                Vec::new()
            }
            RunEvent::StepStarted {
                run_id, step, kind, ..
            } => {
                self.seen += 1;
                let label = self.label(run_id, step, *kind);
                let line = format!("    ▶ {label} [{}/{}]", self.seen, self.seen);
                self.running.push(Running {
                    run_id: run_id.clone(),
                    step: step.clone(),
                    label,
                    number: self.seen,
                    since: at,
                });
                vec![line]
            }
            RunEvent::StepFinished { run_id, record, .. } => {
                let began = self
                    .running
                    .iter()
                    .position(|r| r.run_id == *run_id && r.step == record.step)
                    .map(|i| self.running.remove(i));
                let Some(began) = began else {
                    // Planned, skipped or denied: never started, seen now.
                    self.seen += 1;
                    let label = self.label(run_id, &record.step, record.kind);
                    return vec![format!(
                        "    ○ {label} [{}/{}] ({})",
                        self.seen,
                        self.seen,
                        record.status.label()
                    )];
                };
                let took = at.saturating_sub(began.since).as_secs_f64();
                let (n, seen, label) = (began.number, self.seen, began.label);
                vec![if record.status == StepStatus::Succeeded {
                    format!("    ✓ {label} [{n}/{seen}] ({took:.1}s)")
                } else {
                    format!(
                        "    ✗ {label} [{n}/{seen}] ({took:.1}s, {})",
                        record.status.label()
                    )
                }]
            }
            RunEvent::Finding { finding, .. } => {
                let level = match finding.level {
                    FindingLevel::Info => "info",
                    FindingLevel::Warning => "warning",
                    FindingLevel::Critical => "critical",
                };
                vec![format!(
                    "      • {level}: {}",
                    ops_core::text::escape(&finding.title)
                )]
            }
            RunEvent::ApprovalAsked { .. } => {
                self.asking = true;
                Vec::new()
            }
            RunEvent::ApprovalAnswered { .. } => {
                self.asking = false;
                Vec::new()
            }
            RunEvent::Finished { run_id, .. } => {
                self.runbooks.remove(run_id);
                self.running.retain(|r| r.run_id != *run_id);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The status line at `at` (a terminal's): spinner, the longest-running step with its
    /// number among the steps seen so far, its elapsed time, and how many more run beside
    /// it; `None` when no step runs or while an approval is asked (the prompt is on the
    /// terminal).
    pub fn status(&self, at: Duration) -> Option<String> {
        if self.asking {
            return None;
        }
        let first = self.running.first()?;
        let frame = SPINNER[usize::try_from(at.as_millis() / 100).unwrap_or(0) % SPINNER.len()];
        let ran = at.saturating_sub(first.since).as_secs_f64();
        let more = match self.running.len() - 1 {
            0 => String::new(),
            n => format!(" (+{n} more)"),
        };
        Some(format!(
            "    {frame} {} [{}/{}] {ran:.1}s{more}",
            first.label, first.number, self.seen
        ))
    }

    /// The heartbeat line at `at` of plain output: the longest-running step when it has run
    /// at least `every`.
    pub fn heartbeat(&self, at: Duration, every: Duration) -> Option<String> {
        let first = self.running.first()?;
        let ran = at.saturating_sub(first.since);
        (ran >= every).then(|| {
            format!(
                "      … still running: {} [{}/{}] ({}s)",
                first.label,
                first.number,
                self.seen,
                ran.as_secs()
            )
        })
    }

    /// The steps running at `at`, longest-running first, each with how long it has run.
    pub fn running(&self, at: Duration) -> Vec<(String, Duration)> {
        self.running
            .iter()
            .map(|r| (r.step.clone(), at.saturating_sub(r.since)))
            .collect()
    }
}

/// The live view of `opsbook` and the drill: a [`RunObserver`] that renders with
/// [`Progress`] on stderr in a [`Style`].
///
/// # Examples
/// ```
/// use ops_examples::live::{LiveView, Style};
/// let view = LiveView::new(Style::Plain);
/// assert!(view.running().is_empty());
/// ```
#[derive(Debug)]
pub struct LiveView {
    style: Style,
    origin: Instant,
    state: Mutex<(Progress, bool)>,
}

impl Default for LiveView {
    fn default() -> Self {
        Self::new(Style::Plain)
    }
}

impl LiveView {
    /// A view drawing in `style` (see [`Style::detect`]).
    pub fn new(style: Style) -> Self {
        Self {
            style,
            origin: Instant::now(),
            state: Mutex::new((Progress::default(), false)),
        }
    }

    /// How it draws.
    pub fn style(&self) -> Style {
        self.style
    }

    /// The steps running now, each with how long it has run (for a heartbeat on long waits).
    pub fn running(&self) -> Vec<(String, Duration)> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0.running(self.origin.elapsed())
    }

    /// Redraw the status line (a terminal) or print the heartbeat of a step that has run
    /// `every` or longer (plain). Called by a ticker.
    pub fn tick(&self, every: Duration) {
        let at = self.origin.elapsed();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut err = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not stop the run.
        match self.style {
            Style::Tty => {
                let status = state.0.status(at);
                // Clear only a line we drew: never a prompt the approver is showing.
                if state.1 || status.is_some() {
                    let _ = write!(err, "\r\x1b[2K{}", status.as_deref().unwrap_or(""));
                }
                state.1 = status.is_some();
            }
            Style::Plain => {
                if let Some(line) = state.0.heartbeat(at, every) {
                    let _ = writeln!(err, "{line}");
                }
            }
        }
        let _ = err.flush();
    }
}

impl RunObserver for LiveView {
    fn observe(&self, event: &RunEvent) {
        let at = self.origin.elapsed();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let lines = state.0.event(at, event);
        let mut err = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not stop the run.
        if self.style == Style::Tty && state.1 {
            let _ = write!(err, "\r\x1b[2K");
        }
        for line in lines {
            let _ = writeln!(err, "{line}");
        }
        if self.style == Style::Tty {
            let status = state.0.status(at);
            let _ = write!(err, "{}", status.as_deref().unwrap_or(""));
            state.1 = status.is_some();
        }
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ops_core::run::{Finding, Mode, RunContext, Step};
    use ops_core::{ErrorKind, OpsError};

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<RunEvent>>);

    impl RunObserver for Recorder {
        fn observe(&self, event: &RunEvent) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    /// The events of a real dry run: two reads at once, a read that fails, a finding, a
    /// planned change.
    async fn recorded() -> Vec<RunEvent> {
        let recorder = Arc::new(Recorder::default());
        let ctx = RunContext::builder()
            .mode(Mode::DryRun)
            .observer(Arc::clone(&recorder))
            .build();
        let run = ctx.begin("api_down", "shop/deployment/api").await;
        // Each read yields once, so the two run side by side as in a runbook.
        let ok = || async {
            tokio::task::yield_now().await;
            Ok::<_, OpsError>(())
        };
        let (a, b) = tokio::join!(
            run.read(Step::read_only("probe"), ok),
            run.read(Step::read_only("workload_status"), ok)
        );
        a.unwrap();
        b.unwrap();
        let failed = run
            .read(Step::read_only("logs"), || async {
                Err::<(), _>(OpsError::new(
                    ErrorKind::PermissionDenied,
                    "k8s",
                    "logs",
                    "api",
                ))
            })
            .await;
        assert!(failed.is_err());
        run.finding(Finding::warning("api is down\x1b[2J"));
        run.act(Step::disruptive("restart"), || async {
            Ok::<_, OpsError>(())
        })
        .await
        .unwrap();
        let _ = run.finish(ops_core::run::RunOutcome::Planned).await;
        recorder.0.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn recorded_events_render_numbered_steps_with_their_times() {
        let events = recorded().await;
        // When each event arrived, in ms since the view began (the run's own order: the
        // second read ends first).
        let times = [0, 0, 0, 1300, 2500, 2600, 5000, 5100, 5200, 5300];
        assert_eq!(events.len(), times.len(), "{events:#?}");
        let mut p = Progress::default();
        let mut lines = Vec::new();
        let mut statuses = Vec::new();
        for (at, e) in times.iter().zip(&events) {
            lines.extend(p.event(ms(*at), e));
            statuses.push(p.status(ms(*at + 200)));
        }
        assert_eq!(
            lines,
            [
                "    ▶ · api_down::probe [1/1]",
                "    ▶ · api_down::workload_status [2/2]",
                "    ✓ · api_down::workload_status [2/2] (1.3s)",
                "    ✓ · api_down::probe [1/2] (2.5s)",
                "    ▶ · api_down::logs [3/3]",
                "    ✗ · api_down::logs [3/3] (2.4s, failed)",
                "      • warning: api is down\\u{1b}[2J",
                "    ○ ⚠ api_down::restart [4/4] (planned)",
            ]
        );
        assert_eq!(
            statuses,
            [
                None,
                Some("    ⠹ · api_down::probe [1/1] 0.2s".to_owned()),
                Some("    ⠹ · api_down::probe [1/2] 0.2s (+1 more)".to_owned()),
                Some("    ⠴ · api_down::probe [1/2] 1.5s".to_owned()),
                None,
                Some("    ⠇ · api_down::logs [3/3] 0.2s".to_owned()),
                None,
                None,
                None,
                None,
            ]
        );
    }

    #[tokio::test]
    async fn the_heartbeat_names_a_long_step_only_and_stops_with_the_run() {
        let events = recorded().await;
        let mut p = Progress::default();
        // Started, then probe started at 1 s.
        p.event(ms(0), &events[0]);
        p.event(ms(1000), &events[1]);
        let every = Duration::from_secs(10);
        assert_eq!(p.heartbeat(ms(10_999), every), None);
        assert_eq!(
            p.heartbeat(ms(13_000), every).as_deref(),
            Some("      … still running: · api_down::probe [1/1] (12s)")
        );
        assert_eq!(p.running(ms(13_000)), [("probe".to_owned(), ms(12_000))]);
        p.event(ms(14_000), events.last().unwrap());
        assert_eq!(
            p.heartbeat(ms(30_000), every),
            None,
            "a finished run stops it"
        );
        assert_eq!(p.status(ms(30_000)), None);
    }

    #[tokio::test]
    async fn no_status_line_is_drawn_over_an_approval_prompt() {
        let events = recorded().await;
        let run_id = events[0].run_id().clone();
        let mut p = Progress::default();
        p.event(ms(0), &events[0]);
        p.event(ms(0), &events[1]);
        assert!(p.status(ms(500)).is_some());
        let request = ops_core::run::ApprovalRequest::new("api_down", "restart", "restart api");
        p.event(
            ms(600),
            &RunEvent::ApprovalAsked {
                run_id: run_id.clone(),
                request,
            },
        );
        assert_eq!(p.status(ms(700)), None, "the prompt owns the line");
        p.event(
            ms(9000),
            &RunEvent::ApprovalAnswered {
                run_id,
                step: "restart".into(),
                decision: ops_core::run::Decision::Approve { by: "me".into() },
            },
        );
        assert!(p.status(ms(9100)).is_some());
    }
}
