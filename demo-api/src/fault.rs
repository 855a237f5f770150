//! The fault switch: which failures the service is simulating right now.

use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// Exit code of the process when the crash fault fires.
pub(crate) const CRASH_EXIT_CODE: i32 = 3;

/// The faults in effect. Everything off is the [`Default`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Faults {
    /// `GET /health` and `GET /health/ready` answer 503.
    pub(crate) unhealthy: bool,
    /// Added latency in milliseconds on every route except `/admin/*` and `/metrics`.
    pub(crate) slow_ms: u64,
    /// Share of work requests (`/items`, `/sessions`, `/work`) answered with 500, 0.0..=1.0.
    pub(crate) error_ratio: f64,
    /// Exit with [`CRASH_EXIT_CODE`]: right after replying when set through the admin
    /// endpoint, at start when set through `FAULT_CRASH`.
    pub(crate) crash: bool,
    /// Memory the process allocates and keeps, in MiB per second.
    pub(crate) memory_growth_mb_per_s: u64,
    /// Write an error line to the log every second and on every request.
    pub(crate) log_errors: bool,
}

/// A partial update: fields left out keep their current value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct FaultPatch {
    /// See [`Faults::unhealthy`].
    pub(crate) unhealthy: Option<bool>,
    /// See [`Faults::slow_ms`].
    pub(crate) slow_ms: Option<u64>,
    /// See [`Faults::error_ratio`].
    pub(crate) error_ratio: Option<f64>,
    /// See [`Faults::crash`].
    pub(crate) crash: Option<bool>,
    /// See [`Faults::memory_growth_mb_per_s`].
    pub(crate) memory_growth_mb_per_s: Option<u64>,
    /// See [`Faults::log_errors`].
    pub(crate) log_errors: Option<bool>,
}

impl Faults {
    /// Reads `FAULT_UNHEALTHY`, `FAULT_SLOW_MS`, `FAULT_ERROR_RATIO`, `FAULT_CRASH`,
    /// `FAULT_MEMORY_GROWTH_MB_PER_S` and `FAULT_LOG_ERRORS` through `get`.
    /// Booleans accept `1/0`, `true/false`, `yes/no`, `on/off`.
    pub(crate) fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        fn parsed<T: std::str::FromStr>(
            name: &str,
            raw: Option<String>,
        ) -> Result<Option<T>, String> {
            raw.map(|raw| {
                raw.trim()
                    .parse()
                    .map_err(|_| format!("{name} has an invalid value {raw:?}"))
            })
            .transpose()
        }
        fn flag(name: &str, raw: Option<String>) -> Result<Option<bool>, String> {
            raw.map(|raw| match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" | "" => Ok(false),
                _ => Err(format!("{name} must be true or false, got {raw:?}")),
            })
            .transpose()
        }
        let patch = FaultPatch {
            unhealthy: flag("FAULT_UNHEALTHY", get("FAULT_UNHEALTHY"))?,
            slow_ms: parsed("FAULT_SLOW_MS", get("FAULT_SLOW_MS"))?,
            error_ratio: parsed("FAULT_ERROR_RATIO", get("FAULT_ERROR_RATIO"))?,
            crash: flag("FAULT_CRASH", get("FAULT_CRASH"))?,
            memory_growth_mb_per_s: parsed(
                "FAULT_MEMORY_GROWTH_MB_PER_S",
                get("FAULT_MEMORY_GROWTH_MB_PER_S"),
            )?,
            log_errors: flag("FAULT_LOG_ERRORS", get("FAULT_LOG_ERRORS"))?,
        };
        Self::default().apply(&patch)
    }

    /// The faults after `patch`, or why the result is invalid.
    pub(crate) fn apply(&self, patch: &FaultPatch) -> Result<Self, String> {
        let next = Self {
            unhealthy: patch.unhealthy.unwrap_or(self.unhealthy),
            slow_ms: patch.slow_ms.unwrap_or(self.slow_ms),
            error_ratio: patch.error_ratio.unwrap_or(self.error_ratio),
            crash: patch.crash.unwrap_or(self.crash),
            memory_growth_mb_per_s: patch
                .memory_growth_mb_per_s
                .unwrap_or(self.memory_growth_mb_per_s),
            log_errors: patch.log_errors.unwrap_or(self.log_errors),
        };
        if !(0.0..=1.0).contains(&next.error_ratio) {
            return Err(format!(
                "error_ratio must be within 0.0..=1.0, got {}",
                next.error_ratio
            ));
        }
        if next.slow_ms > 600_000 {
            return Err(format!(
                "slow_ms must be at most 600000, got {}",
                next.slow_ms
            ));
        }
        Ok(next)
    }

    /// Whether a work request with the uniform random `roll` in `0.0..1.0` fails.
    pub(crate) fn fails(&self, roll: f64) -> bool {
        roll < self.error_ratio
    }

    /// Whether no fault is on.
    pub(crate) fn is_clear(&self) -> bool {
        *self == Self::default()
    }
}

/// The shared, switchable fault state.
#[derive(Debug, Default)]
pub(crate) struct FaultSwitch {
    current: RwLock<Faults>,
}

impl FaultSwitch {
    /// A switch starting with `faults`.
    pub(crate) fn new(faults: Faults) -> Self {
        Self {
            current: RwLock::new(faults),
        }
    }

    /// The faults in effect now.
    pub(crate) fn get(&self) -> Faults {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Applies `patch` atomically and returns the new faults.
    pub(crate) fn update(&self, patch: &FaultPatch) -> Result<Faults, String> {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = current.apply(patch)?;
        current.clone_from(&next);
        Ok(next)
    }

    /// Switches every fault off.
    pub(crate) fn clear(&self) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Faults::default();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn no_env_means_no_faults() {
        assert!(Faults::from_env(env(&[])).unwrap().is_clear());
    }

    #[test]
    fn env_switches_faults_on() {
        let faults = Faults::from_env(env(&[
            ("FAULT_UNHEALTHY", "true"),
            ("FAULT_SLOW_MS", "250"),
            ("FAULT_ERROR_RATIO", "0.5"),
            ("FAULT_CRASH", "0"),
            ("FAULT_MEMORY_GROWTH_MB_PER_S", "4"),
            ("FAULT_LOG_ERRORS", "yes"),
        ]))
        .unwrap();
        assert_eq!(
            faults,
            Faults {
                unhealthy: true,
                slow_ms: 250,
                error_ratio: 0.5,
                crash: false,
                memory_growth_mb_per_s: 4,
                log_errors: true,
            }
        );
    }

    #[test]
    fn env_rejects_garbage() {
        assert!(Faults::from_env(env(&[("FAULT_UNHEALTHY", "maybe")])).is_err());
        assert!(Faults::from_env(env(&[("FAULT_SLOW_MS", "-1")])).is_err());
        assert!(Faults::from_env(env(&[("FAULT_ERROR_RATIO", "2")])).is_err());
    }

    #[test]
    fn patch_keeps_fields_it_leaves_out() {
        let switch = FaultSwitch::new(Faults {
            slow_ms: 100,
            ..Faults::default()
        });
        let patch: FaultPatch = serde_json::from_str(r#"{"unhealthy": true}"#).unwrap();
        let next = switch.update(&patch).unwrap();
        assert!(next.unhealthy);
        assert_eq!(next.slow_ms, 100);
        assert_eq!(switch.get(), next);
    }

    #[test]
    fn invalid_patch_changes_nothing() {
        let switch = FaultSwitch::default();
        let patch = FaultPatch {
            error_ratio: Some(-0.1),
            unhealthy: Some(true),
            ..FaultPatch::default()
        };
        assert!(switch.update(&patch).is_err());
        assert!(switch.get().is_clear());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<FaultPatch>(r#"{"unhealty": true}"#).is_err());
    }

    #[test]
    fn error_ratio_decides_by_roll() {
        let faults = Faults {
            error_ratio: 0.25,
            ..Faults::default()
        };
        assert!(faults.fails(0.0));
        assert!(faults.fails(0.249));
        assert!(!faults.fails(0.25));
        assert!(!Faults::default().fails(0.0));
        assert!(
            Faults {
                error_ratio: 1.0,
                ..Faults::default()
            }
            .fails(0.999_999)
        );
    }

    #[test]
    fn clear_switches_everything_off() {
        let switch = FaultSwitch::new(Faults {
            crash: true,
            log_errors: true,
            ..Faults::default()
        });
        switch.clear();
        assert!(switch.get().is_clear());
    }
}
