//! Durations in a system file: ops-core's one format (`500ms`, `30s`, `5m`, `1h30m`), with
//! one stricter rule for files people write by hand: a bare number is refused.

use std::time::Duration;

/// Parses a duration the way every opsbook configuration does ([`ops_core::duration::parse`]:
/// `500ms`, `30s`, `5m`, `1h30m`; days are written in hours, `48h`), except that a bare number is an error: in a file
/// written at 3 a.m. `timeout = "30"` means seconds to one reader and milliseconds to another.
///
/// # Errors
/// A sentence saying what is wrong and how to write it.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ops_examples::system::parse_duration;
/// assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert!(parse_duration("30").is_err());
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let how = "write a duration as 500ms, 30s, 5m or 1h30m";
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("an empty duration: {how}"));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("{text:?} has no unit: {how}"));
    }
    ops_core::duration::parse(trimmed).map_err(|_| format!("{text:?} is not a duration: {how}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_sums_parts() {
        assert_eq!(parse_duration("48h"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 5m "), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_is_not_a_duration_and_says_how() {
        for bad in ["", "s", "30", "1.5", "-5s", "soon", "99999999999999999999s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("write a duration"), "{bad:?}: {e}");
        }
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
    }
}
