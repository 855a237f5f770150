//! Durations in configuration, one format everywhere: human strings in jiff's friendly format
//! (`"30s"`, `"5m"`, `"1h30m"`, `"1h 30m"`, `"500ms"`, `"1.5h"`, `"2 hours"`), or a bare
//! integer, which is milliseconds (what the `*_ms` settings always took).
//!
//! Every duration a configuration deserialises goes through [`deserialize`] (or
//! [`deserialize_opt`], [`deserialize_millis`]): the domain types here, and the backends'
//! `*Config` types. What opsbook writes (reports, journals) keeps its own form.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use ops_core::duration;
//! assert_eq!(duration::parse("1h30m")?, Duration::from_mins(90));
//! assert_eq!(duration::parse("250ms")?, Duration::from_millis(250));
//! assert_eq!(duration::format(Duration::from_secs(5430)), "1h 30m 30s");
//! assert!(duration::parse("soon").is_err());
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     #[serde(deserialize_with = "duration::deserialize")]
//!     timeout: Duration,
//! }
//! let c: Config = serde_json::from_str(r#"{"timeout": "5m"}"#).unwrap();
//! assert_eq!(c.timeout, Duration::from_mins(5));
//! let c: Config = serde_json::from_str(r#"{"timeout": 1500}"#).unwrap(); // milliseconds
//! assert_eq!(c.timeout, Duration::from_millis(1500));
//! # Ok::<(), ops_core::OpsError>(())
//! ```

use std::fmt;
use std::time::Duration;

use jiff::fmt::friendly::{SpanParser, SpanPrinter};
use serde::de::{self, Deserializer, Visitor};

use crate::error::OpsError;

static PARSER: SpanParser = SpanParser::new();
static PRINTER: SpanPrinter = SpanPrinter::new();

/// Parses a human duration (`"30s"`, `"1h30m"`, `"500ms"`); negative ones are refused.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] when `text` is not a duration in the friendly format.
pub fn parse(text: &str) -> Result<Duration, OpsError> {
    PARSER.parse_unsigned_duration(text.trim()).map_err(|e| {
        OpsError::invalid(
            "duration",
            text,
            format!("expected a duration such as 30s, 5m or 1h30m ({e})"),
        )
    })
}

/// Writes a duration the way [`parse`] reads it: `"1h 30m"`, `"250ms"`, `"0s"`.
pub fn format(d: Duration) -> String {
    PRINTER.unsigned_duration_to_string(&d)
}

/// Deserialises a duration from a human string or an integer of milliseconds; for
/// `#[serde(deserialize_with = "ops_core::duration::deserialize")]`.
///
/// # Errors
/// The deserialiser's error for anything else.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(HumanVisitor)
}

/// [`deserialize`] for an `Option<Duration>` (`null` or absent is `None`).
///
/// # Errors
/// The deserialiser's error for anything but null, a human string or an integer.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_option(OptVisitor)
}

/// [`deserialize`] into whole milliseconds, for settings kept as `u64` milliseconds
/// (`timeout_ms`): `"2s"` and `2000` both give `2000`.
///
/// # Errors
/// As [`deserialize`], and for a duration beyond `u64::MAX` milliseconds.
pub fn deserialize_millis<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let d = deserialize(d)?;
    u64::try_from(d.as_millis()).map_err(|_| de::Error::custom("duration too long"))
}

/// [`deserialize_millis`] for an `Option<u64>`.
///
/// # Errors
/// As [`deserialize_millis`].
pub fn deserialize_opt_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match deserialize_opt(d)? {
        None => Ok(None),
        Some(d) => u64::try_from(d.as_millis())
            .map(Some)
            .map_err(|_| de::Error::custom("duration too long")),
    }
}

struct HumanVisitor;

impl Visitor<'_> for HumanVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"30s\", \"5m\" or \"1h30m\", or milliseconds")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        PARSER
            .parse_unsigned_duration(v.trim())
            .map_err(|e| E::custom(format_args!("invalid duration: {e}")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_millis(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_millis)
            .map_err(|_| E::custom("a duration cannot be negative"))
    }
}

struct OptVisitor;

impl<'de> Visitor<'de> for OptVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        HumanVisitor.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_the_forms_people_write() {
        for (text, want) in [
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_mins(5)),
            ("1h30m", Duration::from_mins(90)),
            ("1h 30m", Duration::from_mins(90)),
            ("500ms", Duration::from_millis(500)),
            ("1.5h", Duration::from_mins(90)),
            ("2 hours", Duration::from_hours(2)),
            (" 10s ", Duration::from_secs(10)),
        ] {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
        for bad in ["", "30", "soon", "-5s", "5 parsecs"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_takes_strings_and_milliseconds() {
        #[derive(serde::Deserialize)]
        struct Settings {
            #[serde(deserialize_with = "deserialize")]
            a: Duration,
            #[serde(default, deserialize_with = "deserialize_opt")]
            b: Option<Duration>,
            #[serde(deserialize_with = "deserialize_millis")]
            c: u64,
        }
        let v: Settings = serde_json::from_str(r#"{"a": "2m", "b": "1s", "c": "1.5s"}"#).unwrap();
        assert_eq!(
            (v.a, v.b, v.c),
            (Duration::from_mins(2), Some(Duration::from_secs(1)), 1500)
        );
        let v: Settings = serde_json::from_str(r#"{"a": 250, "b": null, "c": 7}"#).unwrap();
        assert_eq!((v.a, v.b, v.c), (Duration::from_millis(250), None, 7));
        let v: Settings = serde_json::from_str(r#"{"a": "0s", "c": 0}"#).unwrap();
        assert_eq!(v.b, None);
        assert!(serde_json::from_str::<Settings>(r#"{"a": -1, "c": 0}"#).is_err());
        assert!(serde_json::from_str::<Settings>(r#"{"a": "later", "c": 0}"#).is_err());
        assert!(serde_json::from_str::<Settings>(r#"{"a": 1.5, "c": 0}"#).is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = parse(&text);
            let _ = serde_json::from_value::<Wrapper>(serde_json::json!({ "d": text }));
        }

        #[test]
        fn parsing_never_panics_on_duration_shaped_text(text in "[0-9. ]{0,12}(ns|us|ms|s|m|h|d|w|y|mo|hours?|mins?|secs?)?( ?[0-9.]{0,6}(ms|s|m|h))?") {
            let _ = parse(&text);
        }

        #[test]
        fn format_and_parse_round_trip(secs in 0_u64..=10_u64.pow(12), nanos in 0_u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse(&format(d)).unwrap(), d);
        }

        #[test]
        fn milliseconds_round_trip_through_serde(ms in any::<u64>()) {
            let w: Wrapper = serde_json::from_value(serde_json::json!({ "d": ms })).unwrap();
            prop_assert_eq!(w.d, Duration::from_millis(ms));
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Wrapper {
        #[serde(deserialize_with = "deserialize")]
        d: Duration,
    }
}
