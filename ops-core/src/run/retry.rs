//! [`RetryPolicy`]: exponential backoff with full jitter, for retryable errors only.

use std::future::Future;
use std::time::Duration;

use crate::error::OpsError;

/// How often and how patiently to retry an operation.
///
/// Only errors whose kind [`is_retryable`](crate::ErrorKind::is_retryable) (`Unavailable`,
/// `Timeout`) are retried. The wait before attempt `n + 1` is a random duration in
/// `[0, min(max_delay, initial_delay * multiplier^(n-1))]` ("full jitter").
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::run::RetryPolicy;
/// let p = RetryPolicy::default();
/// assert_eq!(p.max_attempts, 3);
/// assert_eq!(p.ceiling(1), Duration::from_millis(200));
/// assert_eq!(p.ceiling(2), Duration::from_millis(400));
/// assert_eq!(RetryPolicy::none().max_attempts, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, including the first (at least 1).
    pub max_attempts: u32,
    /// Ceiling of the first wait.
    pub initial_delay: Duration,
    /// Largest ceiling.
    pub max_delay: Duration,
    /// Growth of the ceiling per attempt.
    pub multiplier: f64,
    /// Randomise waits (full jitter); off gives the ceiling exactly.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Set the number of attempts (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Set the first wait ceiling.
    #[must_use]
    pub fn with_initial_delay(mut self, d: Duration) -> Self {
        self.initial_delay = d;
        self
    }

    /// Turn jitter on or off.
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The wait ceiling after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * self.multiplier.powi(exp);
        if secs.is_finite() && secs < self.max_delay.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            self.max_delay
        }
    }

    /// The wait after failed attempt `attempt`, jittered when enabled.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        if self.jitter {
            ceiling.mul_f64(fastrand::f64())
        } else {
            ceiling
        }
    }

    /// Run `op` until it succeeds, fails with a non-retryable error, or attempts run out.
    /// Returns the result and how many attempts were made.
    ///
    /// # Errors
    /// The last error of `op`.
    ///
    /// # Examples
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use ops_core::{ErrorKind, OpsError, run::RetryPolicy};
    /// let calls = AtomicU32::new(0);
    /// let (result, attempts) = RetryPolicy::default().retry(|| async {
    ///     if calls.fetch_add(1, Ordering::SeqCst) == 0 {
    ///         Err(OpsError::new(ErrorKind::Unavailable, "redis", "ping", "cache"))
    ///     } else {
    ///         Ok("PONG")
    ///     }
    /// }).await;
    /// assert_eq!(result?, "PONG");
    /// assert_eq!(attempts, 2);
    /// # Ok::<(), OpsError>(()) }).unwrap();
    /// ```
    pub async fn retry<T, F, Fut>(&self, mut op: F) -> (Result<T, OpsError>, u32)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OpsError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_retryable() && attempt < self.max_attempts => {
                    let wait = self.delay(attempt);
                    tracing::debug!(attempt, wait_ms = wait.as_millis(), error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return (other, attempt),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::ErrorKind;

    #[test]
    fn ceilings_grow_exponentially_and_cap() {
        let p = RetryPolicy {
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(800));
        assert_eq!(p.ceiling(4), Duration::from_secs(1));
        assert_eq!(p.ceiling(400), Duration::from_secs(1));
        for attempt in 1..10 {
            assert!(p.delay(attempt) <= p.ceiling(attempt));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let (r, attempts) = RetryPolicy::default()
            .retry(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(OpsError::new(ErrorKind::Conflict, "k8s", "restart", "x"))
            })
            .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Conflict);
        assert_eq!((attempts, calls.load(Ordering::SeqCst)), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_stop_after_max_attempts_with_backoff() {
        let start = tokio::time::Instant::now();
        let p = RetryPolicy::default()
            .with_max_attempts(4)
            .with_jitter(false);
        let (r, attempts) = p
            .retry(|| async { Err::<(), _>(OpsError::new(ErrorKind::Timeout, "pg", "ping", "db")) })
            .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(attempts, 4);
        // 200 + 400 + 800 ms of paused time.
        assert_eq!(start.elapsed(), Duration::from_millis(1400));
    }
}
