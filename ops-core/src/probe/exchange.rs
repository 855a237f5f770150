//! How an HTTP exchange of a probe ended ([`Exchange`]), for checks that act on more than
//! up/down: the status, `Retry-After` ([`RetryAfter`], [`parse_retry_after`]), and why no
//! answer came (timeout, refused connection, DNS, TLS).

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::OpsError;
use crate::text;

/// The most a `Retry-After` may ask for: 2^31 seconds (the ceiling RFC 9111 §1.2.2 gives
/// delta-seconds); larger values are read as this.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(1 << 31);

/// How an HTTP(S) exchange ended: answered with a status, or not answered and why.
///
/// HTTP probes fill [`ProbeResult::exchange`](super::ProbeResult::exchange); other probes
/// leave it `None`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::probe::{Exchange, RetryAfter};
/// let e = Exchange::answered(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(120)));
/// assert_eq!(e.status(), Some(429));
/// assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
/// assert_eq!(Exchange::TimedOut.status(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Exchange {
    /// The server answered (after any redirects followed).
    Answered {
        /// The HTTP status of the final answer.
        status: u16,
        /// The answer's `Retry-After`, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<RetryAfter>,
    },
    /// No answer within the probe's deadline.
    TimedOut,
    /// No connection: refused, name not resolved, or the TLS handshake failed.
    Unreachable {
        /// Which.
        cause: Unreachable,
    },
    /// A request that got no usable answer for another reason (a redirect refused, the
    /// connection dropped mid-answer).
    Failed,
}

impl Exchange {
    /// An answer with `status` and no `Retry-After`.
    pub fn answered(status: u16) -> Self {
        Self::Answered {
            status,
            retry_after: None,
        }
    }

    /// Set the `Retry-After` of an answer (no effect on the other variants).
    ///
    /// # Examples
    /// ```
    /// use ops_core::probe::{Exchange, RetryAfter};
    /// let e = Exchange::answered(503).with_retry_after(RetryAfter::Unparsed("soon".into()));
    /// assert_eq!(e.retry_after(), None);
    /// ```
    #[must_use]
    pub fn with_retry_after(mut self, value: RetryAfter) -> Self {
        if let Self::Answered { retry_after, .. } = &mut self {
            *retry_after = Some(value);
        }
        self
    }

    /// The status of an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The delay a valid `Retry-After` asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Answered {
                retry_after: Some(RetryAfter::Delay(d)),
                ..
            } => Some(*d),
            _ => None,
        }
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Answered {
                status,
                retry_after,
            } => {
                write!(f, "answered {status}")?;
                match retry_after {
                    Some(r) => write!(f, ", {r}"),
                    None => Ok(()),
                }
            }
            Self::TimedOut => f.write_str("timed out"),
            Self::Unreachable { cause } => write!(f, "unreachable ({cause})"),
            Self::Failed => f.write_str("failed"),
        }
    }
}

/// Why no connection was made.
///
/// # Examples
/// ```
/// assert_eq!(ops_core::probe::Unreachable::Tls.to_string(), "tls handshake failed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unreachable {
    /// The connection was refused or reset, or no route.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (untrusted or wrong certificate, protocol mismatch).
    Tls,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connection failed",
            Self::Dns => "name not resolved",
            Self::Tls => "tls handshake failed",
        })
    }
}

/// A `Retry-After` header as a probe read it.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::probe::RetryAfter;
/// let now: jiff::Timestamp = "2026-12-02T05:00:00Z".parse().unwrap();
/// assert_eq!(RetryAfter::read("120", now), RetryAfter::Delay(Duration::from_secs(120)));
/// assert!(matches!(RetryAfter::read("in a while", now), RetryAfter::Unparsed(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RetryAfter {
    /// How long to wait from the answer's time (zero for a date in the past).
    Delay(#[serde(with = "crate::serde_util::duration_ms")] Duration),
    /// A value that is neither delta-seconds nor an HTTP-date: ignored, kept (escaped and
    /// shortened) as a note.
    Unparsed(String),
}

impl RetryAfter {
    /// Read a header value: [`parse_retry_after`], or [`RetryAfter::Unparsed`] with the value
    /// quoted ([`text::quote`]) when it does not parse.
    pub fn read(value: &str, now: Timestamp) -> Self {
        match parse_retry_after(value, now) {
            Ok(d) => Self::Delay(d),
            Err(_) => Self::Unparsed(text::quote(value)),
        }
    }
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Delay(d) => write!(f, "retry after {} s", d.as_secs()),
            Self::Unparsed(v) => write!(f, "unparsable Retry-After {v} ignored"),
        }
    }
}

/// The HTTP-date forms RFC 9110 §5.6.7 requires recipients to accept: IMF-fixdate, then the
/// obsolete RFC 850 and asctime forms. All are in GMT.
const HTTP_DATE_FORMATS: [&str; 3] = [
    "%a, %d %b %Y %H:%M:%S GMT",
    "%A, %d-%b-%y %H:%M:%S GMT",
    "%a %b %e %H:%M:%S %Y",
];

/// Parse an HTTP-date (RFC 9110 §5.6.7, any of its three forms) into a timestamp.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] when `value` is none of the forms, or names a weekday
/// that does not match the date. A two-digit RFC 850 year reads as 1969–2068.
///
/// # Examples
/// ```
/// let t = ops_core::probe::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT")?;
/// assert_eq!(t.to_string(), "1994-11-06T08:49:37Z");
/// assert_eq!(ops_core::probe::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT")?, t);
/// assert_eq!(ops_core::probe::parse_http_date("Sun Nov  6 08:49:37 1994")?, t);
/// assert!(ops_core::probe::parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT").is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
pub fn parse_http_date(value: &str) -> Result<Timestamp, OpsError> {
    let value = value.trim();
    HTTP_DATE_FORMATS
        .iter()
        .find_map(|format| {
            jiff::fmt::strtime::parse(format, value)
                .and_then(|tm| tm.to_datetime())
                .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
                .ok()
        })
        .map(|z| z.timestamp())
        .ok_or_else(|| OpsError::invalid("http_date", text::quote(value), "not an HTTP-date"))
}

/// Parse a `Retry-After` value (RFC 9110 §10.2.3) into how long to wait from `now` (the
/// answer's time: its `Date` header when valid, else when it arrived).
///
/// Delta-seconds (`120`) are read as they are, capped at [`RETRY_AFTER_MAX`]; an HTTP-date
/// ([`parse_http_date`]) becomes the time from `now` until it, zero when it has passed.
/// Surrounding whitespace is ignored.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] for anything else (a sign, a fraction, words, an
/// invalid date).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_core::probe::parse_retry_after;
/// let now: jiff::Timestamp = "2026-12-02T05:00:00Z".parse().unwrap();
/// assert_eq!(parse_retry_after("120", now)?, Duration::from_secs(120));
/// assert_eq!(parse_retry_after("Wed, 02 Dec 2026 05:02:00 GMT", now)?, Duration::from_secs(120));
/// assert_eq!(parse_retry_after("Wed, 02 Dec 2026 04:00:00 GMT", now)?, Duration::ZERO);
/// assert!(parse_retry_after("-1", now).is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
pub fn parse_retry_after(value: &str, now: Timestamp) -> Result<Duration, OpsError> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: a number too large for u64 is still a (very long) delay.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Ok(Duration::from_secs(secs).min(RETRY_AFTER_MAX));
    }
    let at = parse_http_date(value).map_err(|_| {
        OpsError::invalid(
            "retry_after",
            text::quote(value),
            "neither delta-seconds nor an HTTP-date",
        )
    })?;
    let wait = now.duration_until(at);
    Ok(Duration::try_from(wait)
        .unwrap_or(Duration::ZERO)
        .min(RETRY_AFTER_MAX))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn now() -> Timestamp {
        "2026-12-02T05:00:00Z".parse().unwrap()
    }

    #[test]
    fn delta_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 0 ", now()).unwrap(), Duration::ZERO);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now()).unwrap(),
            RETRY_AFTER_MAX
        );
        assert_eq!(
            parse_retry_after("Wednesday, 02-Dec-26 05:00:30 GMT", now()).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse_retry_after("Wed Dec  2 05:01:00 2026", now()).unwrap(),
            Duration::from_secs(60)
        );
        for bad in [
            "",
            "1.5",
            "+5",
            "-5",
            "5s",
            "soon",
            "Wed, 32 Dec 2026 05:00:00 GMT",
        ] {
            assert!(parse_retry_after(bad, now()).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_is_kept_as_a_quoted_note() {
        let r = RetryAfter::read("soon\u{1b}[31m", now());
        let RetryAfter::Unparsed(note) = &r else {
            panic!("{r:?}")
        };
        assert!(!note.contains('\u{1b}'));
        assert!(r.to_string().contains("ignored"));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let _ = parse_retry_after(&s, now());
            let _ = RetryAfter::read(&s, now());
        }

        #[test]
        fn delta_seconds_round_trip(n in 0u64..(1 << 31)) {
            prop_assert_eq!(parse_retry_after(&n.to_string(), now()).unwrap(), Duration::from_secs(n));
        }

        #[test]
        fn every_date_form_round_trips(secs in 0i64..4_000_000_000) {
            let at = Timestamp::from_second(secs).unwrap();
            let expected = Duration::try_from(now().duration_until(at))
                .unwrap_or(Duration::ZERO)
                .min(RETRY_AFTER_MAX);
            let zoned = at.to_zoned(jiff::tz::TimeZone::UTC);
            let mut forms = vec![
                zoned.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                zoned.strftime("%a %b %e %H:%M:%S %Y").to_string(),
            ];
            // RFC 850 has a two-digit year: only 1969–2068 round-trips.
            if (1969..=2068).contains(&zoned.year()) {
                forms.push(zoned.strftime("%A, %d-%b-%y %H:%M:%S GMT").to_string());
            }
            for form in forms {
                prop_assert_eq!(parse_http_date(&form).unwrap(), at, "{}", form);
                prop_assert_eq!(parse_retry_after(&form, now()).unwrap(), expected, "{}", form);
            }
        }
    }
}
