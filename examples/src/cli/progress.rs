//! Progress on stderr: each step as it starts and ends ([`LiveView`]); on a terminal a status
//! line redrawn every 100 ms (spinner, the running step, its elapsed time); in plain output,
//! for long waits (rollouts, backups, purges, approvals), a line every few seconds saying what
//! is still running and for how long.

use std::sync::Arc;
use std::time::Duration;

use crate::live::{LiveView, Style};

/// How often a terminal's status line is redrawn.
const REDRAW: Duration = Duration::from_millis(100);

/// Drive `view`: redraw its status line every 100 ms on a terminal, or print
/// `… still running: [n/m] STEP (Ns)` every `every` while a step has run longer than `every`.
/// Ends when the returned handle is aborted (or dropped with the runtime).
pub(crate) fn heartbeat(view: Arc<LiveView>, every: Duration) -> tokio::task::JoinHandle<()> {
    let period = if view.style() == Style::Tty {
        REDRAW
    } else {
        every
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            view.tick(every);
        }
    })
}
