//! Process memory: the resident size for `/metrics` and the memory-growth fault.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::log;
use crate::state::AppState;

/// How often the fault ticker runs.
const TICK: Duration = Duration::from_millis(100);
/// Ticks per second.
const TICKS_PER_SECOND: u64 = 10;
const MIB: u64 = 1024 * 1024;

/// Memory held on purpose by the memory-growth fault; freed when faults are cleared.
#[derive(Debug, Default)]
pub(crate) struct Ballast {
    chunks: Mutex<Vec<Vec<u8>>>,
}

impl Ballast {
    /// Allocates `bytes` more and touches every page so they count as resident.
    pub(crate) fn grow(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let chunk = vec![0xA5_u8; bytes];
        self.chunks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(chunk);
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.chunks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(Vec::len)
            .sum()
    }

    /// Frees everything held.
    pub(crate) fn release(&self) {
        self.chunks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Resident set size of this process in bytes, from `/proc/self/status` (Linux only).
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes the memory-growth fault adds per tick for `mb_per_s`.
fn growth_per_tick(mb_per_s: u64) -> usize {
    usize::try_from(mb_per_s.saturating_mul(MIB) / TICKS_PER_SECOND).unwrap_or(usize::MAX)
}

/// Runs the time-driven faults forever: memory growth every tick, an error log line every
/// second while `log_errors` is on.
pub(crate) async fn fault_ticker(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tick: u64 = 0;
    loop {
        interval.tick().await;
        tick = tick.wrapping_add(1);
        let faults = state.faults.get();
        state
            .ballast
            .grow(growth_per_tick(faults.memory_growth_mb_per_s));
        if faults.log_errors && tick.is_multiple_of(TICKS_PER_SECOND) {
            log::error(
                "simulated failure: upstream call failed",
                json!({ "fault": "log_errors", "ballast_bytes": state.ballast.held() }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\tdemo-api\nVmPeak:\t  10 kB\nVmRSS:\t    2048 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn growth_is_spread_over_ticks() {
        assert_eq!(growth_per_tick(0), 0);
        assert_eq!(growth_per_tick(10), usize::try_from(MIB).unwrap());
    }

    #[test]
    fn ballast_grows_and_releases() {
        let ballast = Ballast::default();
        ballast.grow(4096);
        ballast.grow(0);
        ballast.grow(1024);
        assert_eq!(ballast.held(), 5120);
        ballast.release();
        assert_eq!(ballast.held(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_resident_size_is_known() {
        assert!(resident_bytes().is_some_and(|bytes| bytes > 0));
    }
}
