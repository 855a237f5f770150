//! [`Clock`]: where a run gets wall-clock time, so tests control it.

use std::fmt;

/// A source of wall-clock time. Waiting always goes through `tokio::time`, so tests pause it.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> jiff::Timestamp;
}

/// The system clock.
///
/// # Examples
/// ```
/// use ops_core::run::{Clock, SystemClock};
/// assert!(SystemClock.now() > jiff::Timestamp::UNIX_EPOCH);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// A clock that starts at a fixed time and advances with `tokio::time`, so under
/// `#[tokio::test(start_paused = true)]` wall time and sleeps agree and tests are deterministic.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::time::Duration;
/// use ops_core::run::{Clock, TokioClock};
/// let start: jiff::Timestamp = "2026-11-25T03:00:00Z".parse().unwrap();
/// let clock = TokioClock::starting_at(start);
/// tokio::time::sleep(Duration::from_secs(90)).await;
/// assert_eq!(clock.now().to_string(), "2026-11-25T03:01:30Z");
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: jiff::Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `base` now.
    pub fn starting_at(base: jiff::Timestamp) -> Self {
        Self {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> jiff::Timestamp {
        let elapsed = self.start.elapsed();
        let span = jiff::SignedDuration::try_from(elapsed).unwrap_or(jiff::SignedDuration::MAX);
        self.base.checked_add(span).unwrap_or(jiff::Timestamp::MAX)
    }
}
