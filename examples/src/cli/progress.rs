//! Progress on stderr: each step as it starts and ends ([`LiveView`]), and for long waits
//! (rollouts, backups, purges, approvals) a line every few seconds saying what is still
//! running and for how long.

use std::sync::Arc;
use std::time::Duration;

use crate::live::LiveView;

/// Print `… still running: STEP (Ns)` on stderr every `every` while a step has run longer
/// than `every`. Ends when the returned handle is aborted (or dropped with the runtime).
pub(crate) fn heartbeat(view: Arc<LiveView>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Some((step, ran)) = view.running().into_iter().next()
                && ran >= every
            {
                eprintln!("      … still running: {step} ({}s)", ran.as_secs());
            }
        }
    })
}
