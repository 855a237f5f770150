//! Durations as people write them: `500ms`, `30s`, `5m`, `1h30m`, `2d`.

use std::time::Duration;

/// Parse a duration written as one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`
/// and `d` (`1h30m`). A bare number, an empty text, an unknown unit or an overflow is an
/// error that says how to write it.
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
/// assert!(parse_duration("5 minutes").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let how = "write a duration as 500ms, 30s, 5m, 1h30m or 2d";
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(format!("an empty duration: {how}"));
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("{text:?} is not a duration: {how}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?} is too large a duration"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Some(Duration::from_millis(number)),
            "s" => Some(Duration::from_secs(number)),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            "d" => number.checked_mul(86_400).map(Duration::from_secs),
            "" => return Err(format!("{text:?} has no unit: {how}")),
            other => return Err(format!("{text:?} has an unknown unit {other:?}: {how}")),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("{text:?} is too large a duration"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_sums_parts() {
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 5m "), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_is_not_a_duration_and_says_how() {
        for bad in [
            "",
            "s",
            "30",
            "5 m",
            "5min",
            "-5s",
            "1.5h",
            "99999999999999999999s",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad:?}");
        }
        assert!(
            parse_duration("5min")
                .unwrap_err()
                .contains("write a duration")
        );
        assert!(
            parse_duration("18446744073709551615d")
                .unwrap_err()
                .contains("too large")
        );
    }
}
