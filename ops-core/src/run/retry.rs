//! [`RetryPolicy`]: exponential backoff with full jitter, a total deadline and the server's
//! `Retry-After`: the one retry policy of the workspace (ops-notify and ops-probes use it too).

use std::future::Future;
use std::time::Duration;

use crate::error::OpsError;

/// How often and how patiently to retry an operation.
///
/// Only errors whose kind [`is_retryable`](crate::ErrorKind::is_retryable) (`Unavailable`,
/// `Timeout`) are retried. The wait before attempt `n + 1` is a random duration in
/// `[0, min(max_delay, initial_delay * multiplier^(n-1))]` ("full jitter"), unless the server
/// asked for a wait (`Retry-After`, see [`RetryPolicy::next_wait`]). No retry starts when its
/// wait would end past the [`deadline`](RetryPolicy::deadline).
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
    /// Time budget of all attempts and waits together, from the first attempt; `None`: only
    /// `max_attempts` bounds the retries.
    pub deadline: Option<Duration>,
    /// Longest `Retry-After` honoured; a server asking for more is not retried (default 60 s).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: true,
            deadline: None,
            max_retry_after: Duration::from_mins(1),
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

    /// Set the largest wait ceiling.
    #[must_use]
    pub fn with_max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Set the time budget of all attempts and waits.
    #[must_use]
    pub fn with_deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// Set the longest `Retry-After` honoured.
    #[must_use]
    pub fn with_max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
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

    /// The wait before the attempt after failed attempt `attempt` (1-based), or `None` to give
    /// up: the attempts are used up, the server asked (`retry_after`) for more than
    /// [`max_retry_after`](Self::max_retry_after), or the wait would end past the deadline
    /// (`elapsed` is the time since the first attempt started). A server's `Retry-After` is
    /// honoured as given, in place of the backoff. Every retry loop of the workspace asks this.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ops_core::run::RetryPolicy;
    /// let p = RetryPolicy::default().with_jitter(false).with_deadline(Duration::from_secs(1));
    /// assert_eq!(p.next_wait(1, None, Duration::ZERO), Some(Duration::from_millis(200)));
    /// let asked = Some(Duration::from_millis(500));
    /// assert_eq!(p.next_wait(1, asked, Duration::ZERO), Some(Duration::from_millis(500)));
    /// assert_eq!(p.next_wait(1, asked, Duration::from_millis(600)), None); // past the deadline
    /// assert_eq!(p.next_wait(3, None, Duration::ZERO), None); // 3 attempts made
    /// assert_eq!(p.next_wait(1, Some(Duration::from_mins(5)), Duration::ZERO), None);
    /// ```
    pub fn next_wait(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        elapsed: Duration,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let wait = match retry_after {
            Some(asked) if asked > self.max_retry_after => return None,
            Some(asked) => asked,
            None => self.delay(attempt),
        };
        match self.deadline {
            Some(deadline) if elapsed.saturating_add(wait) >= deadline => None,
            _ => Some(wait),
        }
    }

    /// Run `op` until it succeeds, fails with a non-retryable error, or attempts or the
    /// deadline run out.
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
        let start = tokio::time::Instant::now();
        let mut attempt = 1;
        loop {
            let result = op().await;
            let wait = match &result {
                Err(e) if e.is_retryable() => self.next_wait(attempt, None, start.elapsed()),
                _ => None,
            };
            let (Some(wait), Err(e)) = (wait, &result) else {
                return (result, attempt);
            };
            tracing::debug!(attempt, wait_ms = wait.as_millis(), error = %e, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// The wait a `Retry-After` header value asks for: delay-seconds or an HTTP date (a date in
/// the past asks for no wait); `None` when it is neither.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::run::retry_after;
/// assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
/// assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
/// assert_eq!(retry_after("soon"), None);
/// ```
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let left = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
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

    #[test]
    fn jittered_waits_stay_within_zero_and_the_ceiling_and_vary() {
        let p = RetryPolicy::default().with_max_attempts(100);
        for attempt in 1..8 {
            let ceiling = p.ceiling(attempt);
            let waits: Vec<_> = (0..200)
                .map(|_| p.next_wait(attempt, None, Duration::ZERO).unwrap())
                .collect();
            assert!(waits.iter().all(|w| *w <= ceiling), "{attempt}: {waits:?}");
            // Full jitter spreads over the whole range, not a band near the ceiling.
            assert!(waits.iter().any(|w| *w < ceiling / 4), "{attempt}");
            assert!(waits.iter().any(|w| *w > ceiling * 3 / 4), "{attempt}");
        }
    }

    #[test]
    fn retry_after_replaces_the_backoff_up_to_its_limit() {
        let p = RetryPolicy::default().with_max_retry_after(Duration::from_secs(30));
        let asked = Duration::from_secs(20);
        // Honoured exactly: no jitter on a server's request.
        assert_eq!(p.next_wait(1, Some(asked), Duration::ZERO), Some(asked));
        assert_eq!(
            p.next_wait(1, Some(Duration::from_secs(31)), Duration::ZERO),
            None
        );
        assert_eq!(
            p.next_wait(1, Some(Duration::ZERO), Duration::ZERO),
            Some(Duration::ZERO)
        );
        // Still bounded by the attempts and the deadline.
        assert_eq!(p.next_wait(3, Some(asked), Duration::ZERO), None);
        let p = p.with_deadline(Duration::from_secs(25));
        assert_eq!(
            p.next_wait(1, Some(asked), Duration::from_secs(4)),
            Some(asked)
        );
        assert_eq!(p.next_wait(1, Some(asked), Duration::from_secs(5)), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(90);
        let header =
            jiff::fmt::rfc2822::to_string(&soon.to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
        let wait = retry_after(&header).unwrap();
        assert!(
            wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        assert_eq!(retry_after("-1"), None);
        assert_eq!(retry_after(""), None);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_deadline() {
        let start = tokio::time::Instant::now();
        let p = RetryPolicy::default()
            .with_max_attempts(10)
            .with_jitter(false)
            .with_deadline(Duration::from_secs(1));
        let (r, attempts) = p
            .retry(|| async { Err::<(), _>(OpsError::new(ErrorKind::Timeout, "pg", "ping", "db")) })
            .await;
        assert!(r.is_err());
        // Waits of 200 and 400 ms fit; the third (800 ms) would end at 1.4 s.
        assert_eq!(attempts, 3);
        assert_eq!(start.elapsed(), Duration::from_millis(600));
    }
}
