//! Horizontal autoscaling ([`crate::Platform::autoscaler`], [`crate::Platform::set_autoscaler`]):
//! the Kubernetes `autoscaling/v2` `HorizontalPodAutoscaler` that targets a workload.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::OpsError;
use crate::refs::ResourceName;

/// The autoscaler that owns a workload's replica count, as read from the platform.
///
/// # Examples
/// ```
/// use ops_core::platform::Autoscaler;
/// let hpa = Autoscaler::new("api".parse()?, 2, 10).with_cpu_target(70).with_memory_target(80);
/// assert_eq!(hpa.to_string(), "api: 2..10 replicas, cpu 70%, memory 80%");
/// assert!(hpa.can_raise_min());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Autoscaler {
    /// The autoscaler's name.
    pub name: ResourceName,
    /// The fewest replicas it keeps.
    pub min_replicas: u32,
    /// The most replicas it scales to.
    pub max_replicas: u32,
    /// Target average CPU utilisation, % of the pods' CPU requests.
    pub cpu_utilization: Option<u32>,
    /// Target average memory utilisation, % of the pods' memory requests.
    pub memory_utilization: Option<u32>,
    /// Replicas it last saw, when it has run.
    pub current_replicas: Option<u32>,
    /// Replicas it last wanted, when it has run.
    pub desired_replicas: Option<u32>,
}

impl Autoscaler {
    /// An autoscaler keeping `min..=max` replicas, with no metric target and no status yet.
    pub fn new(name: ResourceName, min_replicas: u32, max_replicas: u32) -> Self {
        Self {
            name,
            min_replicas,
            max_replicas,
            cpu_utilization: None,
            memory_utilization: None,
            current_replicas: None,
            desired_replicas: None,
        }
    }

    /// Set the CPU target.
    #[must_use]
    pub fn with_cpu_target(mut self, percent: u32) -> Self {
        self.cpu_utilization = Some(percent);
        self
    }

    /// Set the memory target.
    #[must_use]
    pub fn with_memory_target(mut self, percent: u32) -> Self {
        self.memory_utilization = Some(percent);
        self
    }

    /// Set what it last saw and wanted.
    #[must_use]
    pub fn with_replicas(mut self, current: u32, desired: u32) -> Self {
        self.current_replicas = Some(current);
        self.desired_replicas = Some(desired);
        self
    }

    /// Whether its minimum can go up (it is below its maximum).
    pub fn can_raise_min(&self) -> bool {
        self.min_replicas < self.max_replicas
    }
}

impl fmt::Display for Autoscaler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}..{} replicas",
            self.name, self.min_replicas, self.max_replicas
        )?;
        if let Some(cpu) = self.cpu_utilization {
            write!(f, ", cpu {cpu}%")?;
        }
        if let Some(memory) = self.memory_utilization {
            write!(f, ", memory {memory}%")?;
        }
        Ok(())
    }
}

/// What to create or update ([`crate::Platform::set_autoscaler`]): replica bounds and metric
/// targets, validated (`1 ≤ min ≤ max`, targets `1..=100` %).
///
/// Creating sets what is given (kubectl's `autoscale`; the HPA is named after the workload
/// unless [`AutoscalerSpec::named`]); updating the autoscaler that already targets the
/// workload sets the bounds and the CPU / memory targets that are given and keeps the rest
/// (other metrics, behaviour).
///
/// # Examples
/// ```
/// use ops_core::platform::AutoscalerSpec;
/// let spec = AutoscalerSpec::new(2, 10)?.with_cpu_target(70)?.with_memory_target(80)?;
/// assert_eq!((spec.min_replicas(), spec.max_replicas()), (2, 10));
/// assert!(AutoscalerSpec::new(5, 2).is_err());
/// assert!(AutoscalerSpec::new(0, 2).is_err());
/// assert!(AutoscalerSpec::new(1, 2)?.with_cpu_target(0).is_err());
/// assert!(AutoscalerSpec::new(1, 2)?.with_memory_target(101).is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AutoscalerSpec {
    min_replicas: u32,
    max_replicas: u32,
    cpu_utilization: Option<u32>,
    memory_utilization: Option<u32>,
    /// The name of a new autoscaler (default: the workload's name).
    pub name: Option<ResourceName>,
    /// Change only if the autoscaler still keeps this minimum (what the plan saw); `Some` on
    /// an absent autoscaler fails too. Otherwise [`crate::ErrorKind::Conflict`], nothing changed.
    pub expect_min: Option<u32>,
    /// Server-side dry run (only when [`super::PlatformCapabilities::dry_run`]).
    pub dry_run: bool,
}

fn percent(what: &str, value: u32) -> Result<u32, OpsError> {
    if (1..=100).contains(&value) {
        Ok(value)
    } else {
        Err(OpsError::invalid(
            "autoscaler",
            value.to_string(),
            format!("the {what} target is a utilisation between 1 and 100 %"),
        ))
    }
}

impl AutoscalerSpec {
    /// Keep between `min` and `max` replicas.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] unless `1 ≤ min ≤ max ≤ i32::MAX`.
    pub fn new(min_replicas: u32, max_replicas: u32) -> Result<Self, OpsError> {
        let api_max = u32::try_from(i32::MAX).unwrap_or(u32::MAX);
        if min_replicas == 0 || min_replicas > max_replicas || max_replicas > api_max {
            return Err(OpsError::invalid(
                "autoscaler",
                format!("{min_replicas}..{max_replicas}"),
                "replica bounds must satisfy 1 <= min <= max",
            ));
        }
        Ok(Self {
            min_replicas,
            max_replicas,
            cpu_utilization: None,
            memory_utilization: None,
            name: None,
            expect_min: None,
            dry_run: false,
        })
    }

    /// The bounds and targets `hpa` has now, to change one of them (e.g. raise the minimum).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `hpa`'s own values break the rules.
    pub fn from_autoscaler(hpa: &Autoscaler) -> Result<Self, OpsError> {
        let mut spec = Self::new(hpa.min_replicas, hpa.max_replicas)?;
        if let Some(cpu) = hpa.cpu_utilization {
            spec = spec.with_cpu_target(cpu)?;
        }
        if let Some(memory) = hpa.memory_utilization {
            spec = spec.with_memory_target(memory)?;
        }
        Ok(spec)
    }

    /// Target `percent` % average CPU utilisation.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] outside `1..=100`.
    pub fn with_cpu_target(mut self, percent_of_request: u32) -> Result<Self, OpsError> {
        self.cpu_utilization = Some(percent("cpu", percent_of_request)?);
        Ok(self)
    }

    /// Target `percent` % average memory utilisation.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] outside `1..=100`.
    pub fn with_memory_target(mut self, percent_of_request: u32) -> Result<Self, OpsError> {
        self.memory_utilization = Some(percent("memory", percent_of_request)?);
        Ok(self)
    }

    /// Set the minimum.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when it would be 0 or above the maximum.
    pub fn with_min(self, min_replicas: u32) -> Result<Self, OpsError> {
        let max = self.max_replicas;
        self.with_bounds(min_replicas, max)
    }

    /// Set both bounds, e.g. `with_bounds(1, 1)` to hold a workload at one replica for a
    /// maintenance window.
    ///
    /// # Examples
    /// ```
    /// use ops_core::platform::AutoscalerSpec;
    /// let pinned = AutoscalerSpec::new(2, 10)?.with_cpu_target(70)?.with_bounds(1, 1)?;
    /// assert_eq!((pinned.min_replicas(), pinned.max_replicas()), (1, 1));
    /// assert_eq!(pinned.cpu_utilization(), Some(70));
    /// assert!(AutoscalerSpec::new(2, 10)?.with_bounds(0, 0).is_err());
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] unless `1 ≤ min ≤ max ≤ i32::MAX`.
    pub fn with_bounds(self, min_replicas: u32, max_replicas: u32) -> Result<Self, OpsError> {
        let Self {
            cpu_utilization,
            memory_utilization,
            name,
            expect_min,
            dry_run,
            ..
        } = self;
        Ok(Self {
            cpu_utilization,
            memory_utilization,
            name,
            expect_min,
            dry_run,
            ..Self::new(min_replicas, max_replicas)?
        })
    }

    /// Name a new autoscaler.
    #[must_use]
    pub fn named(mut self, name: ResourceName) -> Self {
        self.name = Some(name);
        self
    }

    /// Change only if the autoscaler's minimum is still `min`.
    #[must_use]
    pub fn expecting_min(mut self, min: u32) -> Self {
        self.expect_min = Some(min);
        self
    }

    /// Ask for a server-side dry run.
    #[must_use]
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The minimum.
    pub fn min_replicas(&self) -> u32 {
        self.min_replicas
    }

    /// The maximum.
    pub fn max_replicas(&self) -> u32 {
        self.max_replicas
    }

    /// The CPU target, %.
    pub fn cpu_utilization(&self) -> Option<u32> {
        self.cpu_utilization
    }

    /// The memory target, %.
    pub fn memory_utilization(&self) -> Option<u32> {
        self.memory_utilization
    }

    /// `before` (or a new autoscaler named `name`) with this spec applied: bounds set, the
    /// given targets set, the others kept.
    ///
    /// # Examples
    /// ```
    /// use ops_core::platform::{Autoscaler, AutoscalerSpec};
    /// let before = Autoscaler::new("api".parse()?, 2, 10).with_cpu_target(70).with_memory_target(80);
    /// let after = AutoscalerSpec::new(3, 10)?.applied(Some(&before), "api".parse()?);
    /// assert_eq!((after.min_replicas, after.cpu_utilization, after.memory_utilization), (3, Some(70), Some(80)));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn applied(&self, before: Option<&Autoscaler>, name: ResourceName) -> Autoscaler {
        let mut next = before
            .cloned()
            .unwrap_or_else(|| Autoscaler::new(name, self.min_replicas, self.max_replicas));
        next.min_replicas = self.min_replicas;
        next.max_replicas = self.max_replicas;
        next.cpu_utilization = self.cpu_utilization.or(next.cpu_utilization);
        next.memory_utilization = self.memory_utilization.or(next.memory_utilization);
        next
    }
}

/// What [`crate::Platform::set_autoscaler`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AutoscalerChange {
    /// The autoscaler before (`None`: it was created).
    pub before: Option<Autoscaler>,
    /// The autoscaler after.
    pub after: Autoscaler,
}

impl AutoscalerChange {
    /// A change from `before` to `after`.
    ///
    /// # Examples
    /// ```
    /// use ops_core::platform::{Autoscaler, AutoscalerChange};
    /// let c = AutoscalerChange::new(None, Autoscaler::new("api".parse()?, 2, 10));
    /// assert!(c.created());
    /// assert_eq!(c.to_string(), "created api: 2..10 replicas");
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn new(before: Option<Autoscaler>, after: Autoscaler) -> Self {
        Self { before, after }
    }

    /// Whether the autoscaler was created.
    pub fn created(&self) -> bool {
        self.before.is_none()
    }
}

impl fmt::Display for AutoscalerChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.before {
            None => write!(f, "created {}", self.after),
            Some(b) => write!(f, "{b} -> {}", self.after),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn bounds_are_accepted_exactly_when_valid(min in 0u32..50, max in 0u32..50, cpu in 0u32..150) {
            let spec = AutoscalerSpec::new(min, max);
            prop_assert_eq!(spec.is_ok(), min >= 1 && min <= max);
            if let Ok(spec) = spec {
                prop_assert_eq!(spec.with_cpu_target(cpu).is_ok(), (1..=100).contains(&cpu));
            }
        }
    }

    #[test]
    fn raising_the_minimum_keeps_the_targets() {
        let hpa = Autoscaler::new("api".parse().unwrap(), 2, 10).with_cpu_target(70);
        let spec = AutoscalerSpec::from_autoscaler(&hpa)
            .unwrap()
            .with_min(3)
            .unwrap();
        assert_eq!(spec.cpu_utilization(), Some(70));
        assert_eq!(spec.min_replicas(), 3);
        assert!(
            AutoscalerSpec::from_autoscaler(&hpa)
                .unwrap()
                .with_min(11)
                .is_err()
        );
    }
}
