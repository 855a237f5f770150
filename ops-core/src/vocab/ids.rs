//! [`Mode`] and [`RunId`]: how a run acts, and how it is named in journals and reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::OpsError;

/// Whether disruptive steps are carried out or only planned.
///
/// # Examples
/// ```
/// use ops_core::run::Mode;
/// assert_eq!(Mode::default(), Mode::DryRun); // safe by default
/// assert_eq!("execute".parse::<Mode>()?, Mode::Execute);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Diagnose, and record every disruptive step as planned with what it would change.
    #[default]
    DryRun,
    /// Diagnose and carry out approved disruptive steps.
    Execute,
}

impl Mode {
    /// `"dry_run"` or `"execute"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DryRun => "dry_run",
            Self::Execute => "execute",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dry_run" | "dry-run" | "dryrun" => Ok(Self::DryRun),
            "execute" => Ok(Self::Execute),
            _ => Err(OpsError::invalid("mode", s, "expected dry_run or execute")),
        }
    }
}

/// The id of one runbook run: `<UTC time>-<random>` (e.g. `20261125T031500Z-9f2c4a1b`),
/// sortable by start time.
///
/// # Examples
/// ```
/// let id: ops_core::run::RunId = "20261125T031500Z-9f2c4a1b".parse()?;
/// assert_eq!(id.as_str(), "20261125T031500Z-9f2c4a1b");
/// assert!("has space".parse::<ops_core::run::RunId>().is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// A fresh id for a run starting at `at`.
    pub fn generate(at: jiff::Timestamp) -> Self {
        let stamp = at.strftime("%Y%m%dT%H%M%SZ");
        Self(format!("{stamp}-{:08x}", fastrand::u32(..)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RunId {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(OpsError::invalid(
                "run_id",
                s,
                "a run id is 1-64 ASCII letters, digits, '-', '_' or '.'",
            ))
        }
    }
}

impl TryFrom<String> for RunId {
    type Error = OpsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<RunId> for String {
    fn from(value: RunId) -> Self {
        value.0
    }
}
