//! Kubernetes quantities as the quota controller adds them: `250m`, `1.5`, `128Mi`, `2k`,
//! `1e3` read into base units.

/// The value of a quantity in base units (cores, bytes, counts); `None` when it is not one.
pub(crate) fn parse(text: &str) -> Option<f64> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number.len() > 40 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().ok()?;
            if !(-30..=30).contains(&e) {
                return None;
            }
            10f64.powi(e)
        }
        _ => return None,
    };
    let out = value * factor;
    out.is_finite().then_some(out)
}

/// Thousandths of `text` (millicores of a CPU quantity), rounded up as the API rounds.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped to non-negative; saturating cast"
)]
pub(crate) fn millis(text: &str) -> u64 {
    parse(text).map_or(0, |v| ceil_exact(v * 1000.0) as u64)
}

/// Rounds up, except that a value within floating-point noise of a whole number is that
/// number (`8698.219 * 1000` is `8698219.000000001`, which is 8698219 millicores, not
/// 8698220).
fn ceil_exact(v: f64) -> f64 {
    let v = v.max(0.0);
    let nearest = v.round();
    if (v - nearest).abs() <= 1e-9 * v.max(1.0) {
        nearest
    } else {
        v.ceil()
    }
}

/// Whole units of `text` (bytes, counts), rounded up.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped to non-negative; saturating cast"
)]
pub(crate) fn units(text: &str) -> u64 {
    parse(text).map_or(0, |v| ceil_exact(v) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_api_notations() {
        assert_eq!(parse("250m"), Some(0.25));
        assert_eq!(parse("128Mi"), Some(134_217_728.0));
        assert_eq!(parse("2k"), Some(2000.0));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("12Qi"), None);
        assert_eq!(millis("1.5"), 1500);
        assert_eq!(units("1Gi"), 1 << 30);
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,60}") {
            let _ = parse(&text);
            let _ = millis(&text);
        }

        #[test]
        fn whole_millicores_round_trip(m in 0u64..10_000_000) {
            prop_assert_eq!(millis(&format!("{m}m")), m);
            prop_assert_eq!(units(&format!("{m}Ki")), m * 1024);
        }
    }
}
