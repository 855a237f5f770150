//! Kubernetes resource quantities (`250m`, `0.5`, `512Mi`, `1G`, `129e6`) as exact CPU
//! millicores and memory bytes.
//!
//! The grammar is Kubernetes' `resource.Quantity`: an optional `+`, a decimal number
//! (`1`, `1.5`, `.5`, `5.`), then at most one suffix: binary `Ki Mi Gi Ti Pi Ei` (powers of
//! 1024), decimal `n u m k M G T P E` (powers of 1000, `m` = 1/1000) or a decimal exponent
//! (`e6`, `E-3`, `e+2`). The value is rounded *up* to the unit, as Kubernetes' `MilliValue()`
//! (CPU) and `Value()` (memory) do: `0.0001` CPU is 1 millicore, `0.5` bytes is 1 byte.
//!
//! Refused with a typed error ([`QuantityError`], inside an [`ErrorKind::InvalidInput`]
//! [`OpsError`]): the empty string, a negative value (resources are never negative), a
//! malformed number or suffix, more than 38 significant digits, and values beyond
//! `i64::MAX` units (Kubernetes' `int64`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::OpsError;

/// Why a quantity was refused.
///
/// # Examples
/// ```
/// use ops_core::platform::{MemoryQuantity, QuantityError};
/// let err = "-1Gi".parse::<MemoryQuantity>().unwrap_err();
/// assert_eq!(QuantityError::of(&err), Some(&QuantityError::Negative));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantityError {
    /// Nothing to parse.
    #[error("a quantity cannot be empty")]
    Empty,
    /// A `-` sign: requests and limits are never negative.
    #[error("a resource quantity cannot be negative")]
    Negative,
    /// Not `<number><suffix>`.
    #[error("not a quantity: expected a number like 250m, 0.5, 512Mi, 1G or 129e6")]
    Malformed,
    /// A suffix Kubernetes does not know (`K`, `mi`, `GB`...).
    #[error(
        "unknown suffix {0:?}: use Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent like e6"
    )]
    Suffix(String),
    /// More significant digits than opsbook computes exactly.
    #[error("too many digits (at most 38 significant digits)")]
    TooPrecise,
    /// Beyond Kubernetes' `int64` range in the unit.
    #[error("too large: beyond {} {}", i64::MAX, .0)]
    TooLarge(&'static str),
}

impl QuantityError {
    /// The quantity error inside an [`OpsError`], if it is one.
    pub fn of(err: &OpsError) -> Option<&Self> {
        std::error::Error::source(err).and_then(|s| s.downcast_ref::<Self>())
    }
}

/// A parsed quantity: `mantissa × 10^exp10 × 1024^binary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    mantissa: u128,
    exp10: i64,
    binary: u32,
}

/// At most 38 digits fit in a `u128` exactly.
const MAX_DIGITS: usize = 38;

fn parse_parts(s: &str) -> Result<Parsed, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::Empty);
    }
    let bytes = s.as_bytes();
    let mut pos = 0;
    match bytes[0] {
        b'-' => return Err(QuantityError::Negative),
        b'+' => pos = 1,
        _ => {}
    }
    let int_start = pos;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let int_digits = &s[int_start..pos];
    let mut frac_digits = "";
    if pos < bytes.len() && bytes[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        frac_digits = &s[frac_start..pos];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(QuantityError::Malformed);
    }
    let (exp_suffix, binary) = suffix(&s[pos..])?;
    let digits = format!("{int_digits}{frac_digits}");
    let significant = digits.trim_start_matches('0');
    // Trailing zeros of the fraction carry no value; strip them from the count only.
    let mut exp10 = exp_suffix - i64::try_from(frac_digits.len()).unwrap_or(i64::MAX);
    let mut kept = significant;
    while kept.len() > MAX_DIGITS && kept.ends_with('0') {
        kept = &kept[..kept.len() - 1];
        exp10 += 1;
    }
    if kept.len() > MAX_DIGITS {
        return Err(QuantityError::TooPrecise);
    }
    let mantissa = if kept.is_empty() {
        0
    } else {
        kept.parse::<u128>().map_err(|_| QuantityError::Malformed)?
    };
    Ok(Parsed {
        mantissa,
        exp10,
        binary,
    })
}

/// The suffix as (decimal exponent, power of 1024).
fn suffix(s: &str) -> Result<(i64, u32), QuantityError> {
    Ok(match s {
        "" => (0, 0),
        "Ki" => (0, 1),
        "Mi" => (0, 2),
        "Gi" => (0, 3),
        "Ti" => (0, 4),
        "Pi" => (0, 5),
        "Ei" => (0, 6),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        other => {
            let exp = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))
                .filter(|rest| {
                    let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                })
                .ok_or_else(|| QuantityError::Suffix(crate::text::quote(other)))?;
            // Anything past ±10^6 is far outside what an int64 of units can hold.
            let exp: i64 = exp.parse().unwrap_or(if exp.starts_with('-') {
                -1_000_000
            } else {
                1_000_000
            });
            (exp.clamp(-1_000_000, 1_000_000), 0)
        }
    })
}

/// `parsed × 10^scale` in whole units, rounded up; `None` beyond `i64::MAX`.
fn units(parsed: Parsed, scale: i64) -> Option<u64> {
    if parsed.mantissa == 0 {
        return Some(0);
    }
    let mut n = parsed
        .mantissa
        .checked_mul(1024u128.checked_pow(parsed.binary)?)?;
    let exp = parsed.exp10 + scale;
    if exp >= 0 {
        let exp = u32::try_from(exp).ok()?;
        n = n.checked_mul(10u128.checked_pow(exp)?)?;
    } else {
        let exp = u32::try_from(-exp).ok()?;
        n = match 10u128.checked_pow(exp) {
            Some(d) => n.div_ceil(d),
            // Divided by more than 10^38: a positive value below one unit rounds up to 1.
            None => 1,
        };
    }
    let max = u128::try_from(i64::MAX).ok()?;
    (n <= max).then(|| u64::try_from(n).ok()).flatten()
}

fn parse_as(s: &str, what: &'static str, unit: &'static str, scale: i64) -> Result<u64, OpsError> {
    let refuse = |e: QuantityError| OpsError::invalid(what, s, e.to_string()).with_source(e);
    let parsed = parse_parts(s).map_err(refuse)?;
    units(parsed, scale).ok_or_else(|| refuse(QuantityError::TooLarge(unit)))
}

/// A CPU amount in millicores (`1000` = one core), parsed from Kubernetes notation.
///
/// Displays as whole cores when exact (`2`), else millicores (`250m`); both parse back to the
/// same value. Serializes as that string.
///
/// # Examples
/// ```
/// use ops_core::platform::CpuQuantity;
/// assert_eq!("250m".parse::<CpuQuantity>()?.millis(), 250);
/// assert_eq!("0.5".parse::<CpuQuantity>()?.millis(), 500);
/// assert_eq!("2".parse::<CpuQuantity>()?.to_string(), "2");
/// assert_eq!("0.0001".parse::<CpuQuantity>()?.millis(), 1); // rounded up, as Kubernetes does
/// assert!("-1".parse::<CpuQuantity>().is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpuQuantity(u64);

impl CpuQuantity {
    /// `millis` millicores.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// The amount in millicores.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// The amount in cores.
    #[allow(clippy::cast_precision_loss, reason = "cores for display and ratios")]
    pub fn cores(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Parse Kubernetes notation (see the module docs).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] with a [`QuantityError`] source.
    pub fn parse(s: &str) -> Result<Self, OpsError> {
        parse_as(s, "cpu_quantity", "millicores", 3).map(Self)
    }
}

impl fmt::Display for CpuQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

impl FromStr for CpuQuantity {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, OpsError> {
        Self::parse(s)
    }
}

/// A memory amount in bytes, parsed from Kubernetes notation.
///
/// Displays in its shortest exact form, binary suffixes first among equals (`512Mi`,
/// `1536Mi`, `1G`, `1500`); every form parses back to the same value.
/// Serializes as that string.
///
/// # Examples
/// ```
/// use ops_core::platform::MemoryQuantity;
/// assert_eq!("512Mi".parse::<MemoryQuantity>()?.bytes(), 512 << 20);
/// assert_eq!("1G".parse::<MemoryQuantity>()?.bytes(), 1_000_000_000);
/// assert_eq!("1.5Gi".parse::<MemoryQuantity>()?.to_string(), "1536Mi");
/// assert_eq!("129e6".parse::<MemoryQuantity>()?.bytes(), 129_000_000);
/// assert_eq!("128974848".parse::<MemoryQuantity>()?.to_string(), "123Mi");
/// assert!("1GB".parse::<MemoryQuantity>().is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemoryQuantity(u64);

impl MemoryQuantity {
    /// `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        Self(bytes)
    }

    /// The amount in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parse Kubernetes notation (see the module docs).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] with a [`QuantityError`] source.
    pub fn parse(s: &str) -> Result<Self, OpsError> {
        parse_as(s, "memory_quantity", "bytes", 0).map(Self)
    }
}

impl fmt::Display for MemoryQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BINARY: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        const DECIMAL: [&str; 6] = ["k", "M", "G", "T", "P", "E"];
        // The shortest exact form; binary first among equals (`512Mi`, `1536Mi`, `2G`).
        let mut best = self.0.to_string();
        for (i, (binary, decimal)) in BINARY.iter().zip(DECIMAL).enumerate() {
            let power = u32::try_from(i + 1).unwrap_or(1);
            for (unit, suffix) in [
                (1u64 << (10 * power), *binary),
                (1000u64.pow(power), decimal),
            ] {
                if self.0 != 0 && self.0.is_multiple_of(unit) {
                    let candidate = format!("{}{suffix}", self.0 / unit);
                    if candidate.len() < best.len() {
                        best = candidate;
                    }
                }
            }
        }
        f.write_str(&best)
    }
}

impl FromStr for MemoryQuantity {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, OpsError> {
        Self::parse(s)
    }
}

macro_rules! quantity_serde {
    ($ty:ty) => {
        impl TryFrom<String> for $ty {
            type Error = OpsError;
            fn try_from(value: String) -> Result<Self, OpsError> {
                value.parse()
            }
        }
        impl From<$ty> for String {
            fn from(value: $ty) -> Self {
                value.to_string()
            }
        }
    };
}
quantity_serde!(CpuQuantity);
quantity_serde!(MemoryQuantity);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::error::ErrorKind;

    fn mem(s: &str) -> Result<u64, OpsError> {
        MemoryQuantity::parse(s).map(MemoryQuantity::bytes)
    }

    fn cpu(s: &str) -> Result<u64, OpsError> {
        CpuQuantity::parse(s).map(CpuQuantity::millis)
    }

    #[test]
    fn cpu_forms_match_kubernetes_milli_value() {
        for (input, millis) in [
            ("250m", 250),
            ("0.5", 500),
            ("2", 2000),
            (".5", 500),
            ("5.", 5000),
            ("+1", 1000),
            ("1500m", 1500),
            ("0.0001", 1),
            ("100u", 1),
            ("1n", 1),
            ("0", 0),
            ("0m", 0),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("2k", 2_000_000),
            ("0.30000000000000004", 301),
            ("1Ki", 1_024_000),
        ] {
            assert_eq!(cpu(input).unwrap(), millis, "{input}");
        }
    }

    #[test]
    fn memory_forms_match_kubernetes_value() {
        for (input, bytes) in [
            ("512Mi", 512u64 << 20),
            ("1G", 1_000_000_000),
            ("1.5Gi", 1536 << 20),
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("129M", 129_000_000),
            ("123Mi", 128_974_848),
            ("0.9Gi", 966_367_642),
            ("1k", 1000),
            ("1Ki", 1024),
            ("100m", 1),
            ("1E", 1_000_000_000_000_000_000),
            ("1e+2", 100),
        ] {
            assert_eq!(mem(input).unwrap(), bytes, "{input}");
        }
    }

    #[test]
    fn refused_forms_say_why() {
        for (input, why) in [
            ("", QuantityError::Empty),
            ("-1", QuantityError::Negative),
            ("-512Mi", QuantityError::Negative),
            (".", QuantityError::Malformed),
            ("+", QuantityError::Malformed),
            ("Mi", QuantityError::Malformed),
            ("1GB", QuantityError::Suffix("GB".to_owned())),
            ("1K", QuantityError::Suffix("K".to_owned())),
            ("1mi", QuantityError::Suffix("mi".to_owned())),
            ("1e", QuantityError::Suffix("e".to_owned())),
            ("1 Gi", QuantityError::Suffix(" Gi".to_owned())),
            ("1.2.3", QuantityError::Suffix(".3".to_owned())),
            ("8Ei", QuantityError::TooLarge("bytes")),
            ("1e19", QuantityError::TooLarge("bytes")),
            ("1e999999999999999999999", QuantityError::TooLarge("bytes")),
            (
                "1234567890123456789012345678901234567891",
                QuantityError::TooPrecise,
            ),
        ] {
            let err = MemoryQuantity::parse(input).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{input}");
            assert_eq!(QuantityError::of(&err), Some(&why), "{input}");
        }
        // Many zeros are not many significant digits.
        assert_eq!(
            mem("1000000000000000000000000000000000000000e-30").unwrap(),
            1_000_000_000
        );
        assert_eq!(cpu("1e-999999").unwrap(), 1);
    }

    #[test]
    fn display_is_exact_and_short() {
        assert_eq!(CpuQuantity::from_millis(250).to_string(), "250m");
        assert_eq!(CpuQuantity::from_millis(3000).to_string(), "3");
        assert_eq!(MemoryQuantity::from_bytes(512 << 20).to_string(), "512Mi");
        assert_eq!(MemoryQuantity::from_bytes(1 << 30).to_string(), "1Gi");
        assert_eq!(MemoryQuantity::from_bytes(2_000_000_000).to_string(), "2G");
        assert_eq!(MemoryQuantity::from_bytes(1_500).to_string(), "1500");
        assert_eq!(MemoryQuantity::from_bytes(0).to_string(), "0");
    }

    #[test]
    fn serde_goes_through_the_notation() {
        let q: MemoryQuantity = serde_json::from_str("\"1.5Gi\"").unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"1536Mi\"");
        assert!(serde_json::from_str::<CpuQuantity>("\"-1\"").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in ".{0,60}") {
            let _ = CpuQuantity::parse(&s);
            let _ = MemoryQuantity::parse(&s);
        }

        #[test]
        fn parsing_quantity_shaped_text_never_panics(
            s in "[+-]?[0-9]{0,45}(\\.[0-9]{0,45})?([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]{1,25})?"
        ) {
            let _ = CpuQuantity::parse(&s);
            let _ = MemoryQuantity::parse(&s);
        }

        #[test]
        fn memory_round_trips(bytes in 0u64..=(i64::MAX as u64)) {
            let q = MemoryQuantity::from_bytes(bytes);
            prop_assert_eq!(MemoryQuantity::parse(&q.to_string()).unwrap(), q);
        }

        #[test]
        fn cpu_round_trips(millis in 0u64..=(i64::MAX as u64)) {
            let q = CpuQuantity::from_millis(millis);
            prop_assert_eq!(CpuQuantity::parse(&q.to_string()).unwrap(), q);
        }

        #[test]
        fn binary_suffixes_multiply_exactly(n in 0u64..1_000_000, k in 1u32..=4) {
            let suffix = ["Ki", "Mi", "Gi", "Ti"][k as usize - 1];
            prop_assert_eq!(mem(&format!("{n}{suffix}")).unwrap(), n << (10 * k));
        }

        #[test]
        fn millicores_and_fractions_agree(m in 0u64..10_000_000) {
            let cores = format!("{}.{:03}", m / 1000, m % 1000);
            prop_assert_eq!(cpu(&cores).unwrap(), m);
            prop_assert_eq!(cpu(&format!("{m}m")).unwrap(), m);
        }
    }
}
