//! CPU and memory requests and limits per container ([`crate::Platform::resources`],
//! [`crate::Platform::set_resources`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::quantity::{CpuQuantity, MemoryQuantity};
use crate::error::{ErrorKind, OpsError};

/// A CPU and a memory amount, each optional (unset: no request / no limit, or "unchanged" in a
/// [`ResourceUpdate`]).
///
/// # Examples
/// ```
/// use ops_core::platform::ResourceValues;
/// let v = ResourceValues::default().with_cpu("200m".parse()?).with_memory("512Mi".parse()?);
/// assert_eq!(v.to_string(), "cpu=200m,memory=512Mi");
/// assert_eq!(ResourceValues::default().to_string(), "none");
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceValues {
    /// CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuQuantity>,
    /// Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryQuantity>,
}

impl ResourceValues {
    /// Set the CPU amount.
    #[must_use]
    pub fn with_cpu(mut self, cpu: CpuQuantity) -> Self {
        self.cpu = Some(cpu);
        self
    }

    /// Set the memory amount.
    #[must_use]
    pub fn with_memory(mut self, memory: MemoryQuantity) -> Self {
        self.memory = Some(memory);
        self
    }

    /// Neither is set.
    pub fn is_empty(&self) -> bool {
        self.cpu.is_none() && self.memory.is_none()
    }

    /// These values with `over`'s set ones written on top.
    #[must_use]
    pub fn overlaid(self, over: Self) -> Self {
        Self {
            cpu: over.cpu.or(self.cpu),
            memory: over.memory.or(self.memory),
        }
    }
}

impl fmt::Display for ResourceValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.cpu, self.memory) {
            (None, None) => f.write_str("none"),
            (Some(c), None) => write!(f, "cpu={c}"),
            (None, Some(m)) => write!(f, "memory={m}"),
            (Some(c), Some(m)) => write!(f, "cpu={c},memory={m}"),
        }
    }
}

/// The requests and limits of one container (Kubernetes: a container of the pod template;
/// Compose: the service's containers, named after the service).
///
/// # Examples
/// ```
/// use ops_core::platform::{ContainerResources, ResourceValues};
/// let app = ContainerResources::new("app")
///     .with_limits(ResourceValues::default().with_memory("256Mi".parse()?));
/// assert_eq!(app.limits.memory.map(|m| m.bytes()), Some(256 << 20));
/// assert!(app.requests.is_empty());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContainerResources {
    /// The container's name.
    pub container: String,
    /// What the scheduler reserves.
    pub requests: ResourceValues,
    /// What the container may use at most (memory above it is an OOM kill).
    pub limits: ResourceValues,
}

impl ContainerResources {
    /// A container with no requests and no limits.
    pub fn new(container: impl Into<String>) -> Self {
        Self {
            container: container.into(),
            requests: ResourceValues::default(),
            limits: ResourceValues::default(),
        }
    }

    /// Set the requests.
    #[must_use]
    pub fn with_requests(mut self, requests: ResourceValues) -> Self {
        self.requests = requests;
        self
    }

    /// Set the limits.
    #[must_use]
    pub fn with_limits(mut self, limits: ResourceValues) -> Self {
        self.limits = limits;
        self
    }

    /// This container after `update` (unchanged when `update` does not select it).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when a request would exceed its limit (the Kubernetes API
    /// refuses it: "must be less than or equal to ... limit").
    pub fn updated(&self, update: &ResourceUpdate) -> Result<Self, OpsError> {
        if !update.containers.selects(&self.container) {
            return Ok(self.clone());
        }
        let next = Self {
            container: self.container.clone(),
            requests: self.requests.overlaid(update.requests),
            limits: self.limits.overlaid(update.limits),
        };
        next.validate()?;
        Ok(next)
    }

    /// Check that no request exceeds its limit.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming the container and the values.
    pub fn validate(&self) -> Result<(), OpsError> {
        let cpu = matches!((self.requests.cpu, self.limits.cpu), (Some(r), Some(l)) if r > l);
        let memory =
            matches!((self.requests.memory, self.limits.memory), (Some(r), Some(l)) if r > l);
        if cpu || memory {
            return Err(OpsError::invalid(
                "set_resources",
                &self.container,
                format!(
                    "a request must be less than or equal to its limit: requests {}, limits {}",
                    self.requests, self.limits
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for ContainerResources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: requests {}, limits {}",
            self.container, self.requests, self.limits
        )
    }
}

/// Which containers a [`ResourceUpdate`] changes.
///
/// # Examples
/// ```
/// use ops_core::platform::ContainerSelector;
/// assert!(ContainerSelector::All.selects("app"));
/// assert!(!ContainerSelector::named("sidecar").selects("app"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContainerSelector {
    /// Every container of the workload (`kubectl set resources` without `-c`).
    All,
    /// The container with this name (`-c NAME`).
    Named(String),
}

impl ContainerSelector {
    /// The container `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self::Named(name.into())
    }

    /// Whether `container` is selected.
    pub fn selects(&self, container: &str) -> bool {
        match self {
            Self::All => true,
            Self::Named(n) => n == container,
        }
    }
}

/// A change of requests and/or limits ([`crate::Platform::set_resources`]): the values given
/// are set on the selected containers, the others stay as they are.
///
/// # Examples
/// ```
/// use ops_core::platform::{ContainerSelector, ResourceUpdate};
/// let u = ResourceUpdate::new(ContainerSelector::named("app"))
///     .limit_cpu("200m".parse()?)
///     .limit_memory("512Mi".parse()?)
///     .request_memory("256Mi".parse()?);
/// assert_eq!(u.limits.to_string(), "cpu=200m,memory=512Mi");
/// assert!(u.validate().is_ok());
/// assert!(ResourceUpdate::new(ContainerSelector::All).validate().is_err()); // sets nothing
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceUpdate {
    /// Which containers.
    pub containers: ContainerSelector,
    /// Requests to set.
    pub requests: ResourceValues,
    /// Limits to set.
    pub limits: ResourceValues,
    /// Change only if the selected containers still have these values (what the plan saw):
    /// otherwise fail with [`ErrorKind::Conflict`] and change nothing.
    pub expect: Option<Vec<ContainerResources>>,
    /// Server-side dry run (only when [`super::PlatformCapabilities::dry_run`]).
    pub dry_run: bool,
}

impl ResourceUpdate {
    /// An update of `containers` that sets nothing yet.
    pub fn new(containers: ContainerSelector) -> Self {
        Self {
            containers,
            requests: ResourceValues::default(),
            limits: ResourceValues::default(),
            expect: None,
            dry_run: false,
        }
    }

    /// Set the CPU limit.
    #[must_use]
    pub fn limit_cpu(mut self, cpu: CpuQuantity) -> Self {
        self.limits.cpu = Some(cpu);
        self
    }

    /// Set the memory limit.
    #[must_use]
    pub fn limit_memory(mut self, memory: MemoryQuantity) -> Self {
        self.limits.memory = Some(memory);
        self
    }

    /// Set the CPU request.
    #[must_use]
    pub fn request_cpu(mut self, cpu: CpuQuantity) -> Self {
        self.requests.cpu = Some(cpu);
        self
    }

    /// Set the memory request.
    #[must_use]
    pub fn request_memory(mut self, memory: MemoryQuantity) -> Self {
        self.requests.memory = Some(memory);
        self
    }

    /// Change only if the selected containers still have `current` (the values the plan saw).
    #[must_use]
    pub fn expecting(mut self, current: Vec<ContainerResources>) -> Self {
        self.expect = Some(current);
        self
    }

    /// Ask for a server-side dry run.
    #[must_use]
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Check that the update sets something.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when it sets no value.
    pub fn validate(&self) -> Result<(), OpsError> {
        if self.requests.is_empty() && self.limits.is_empty() {
            return Err(OpsError::invalid(
                "set_resources",
                "",
                "a resource update must set at least one request or limit",
            ));
        }
        Ok(())
    }

    /// `current` after this update, each container checked ([`ContainerResources::updated`]),
    /// after checking that the selection names an existing container and that the expected
    /// values still hold. Backends call this on what they read just before writing.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty update or a request above its limit;
    /// [`ErrorKind::NotFound`] when no container is selected; [`ErrorKind::Conflict`] when
    /// the values moved since the plan (`expect`).
    ///
    /// # Examples
    /// ```
    /// use ops_core::platform::{ContainerResources, ContainerSelector, ResourceUpdate};
    /// let before = vec![ContainerResources::new("app")];
    /// let after = ResourceUpdate::new(ContainerSelector::All).limit_memory("1Gi".parse()?).apply_to("web", &before)?;
    /// assert_eq!(after[0].limits.memory.unwrap().to_string(), "1Gi");
    /// let missing = ResourceUpdate::new(ContainerSelector::named("db")).limit_memory("1Gi".parse()?).apply_to("web", &before);
    /// assert_eq!(missing.unwrap_err().kind(), ops_core::ErrorKind::NotFound);
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn apply_to(
        &self,
        workload: &str,
        current: &[ContainerResources],
    ) -> Result<Vec<ContainerResources>, OpsError> {
        self.validate()?;
        if !current
            .iter()
            .any(|c| self.containers.selects(&c.container))
        {
            let names: Vec<&str> = current.iter().map(|c| c.container.as_str()).collect();
            return Err(
                OpsError::new(ErrorKind::NotFound, "core", "set_resources", workload).with_detail(
                    format!(
                        "no container {:?} (containers: {})",
                        self.containers,
                        names.join(", ")
                    ),
                ),
            );
        }
        if let Some(expected) = &self.expect {
            let selected: Vec<&ContainerResources> = current
                .iter()
                .filter(|c| self.containers.selects(&c.container))
                .collect();
            let same =
                selected.len() == expected.len() && selected.iter().all(|c| expected.contains(c));
            if !same {
                let now: Vec<String> = selected.iter().map(ToString::to_string).collect();
                return Err(
                    OpsError::new(ErrorKind::Conflict, "core", "set_resources", workload)
                        .with_detail(format!(
                            "the resources changed since the plan: now {}",
                            now.join("; ")
                        )),
                );
            }
        }
        current.iter().map(|c| c.updated(self)).collect()
    }
}

/// What [`crate::Platform::set_resources`] changed: the selected containers before and after.
///
/// # Examples
/// ```
/// use ops_core::platform::{ContainerResources, ResourceChange, ResourceValues};
/// let before = ContainerResources::new("app").with_limits(ResourceValues::default().with_memory("256Mi".parse()?));
/// let after = ContainerResources::new("app").with_limits(ResourceValues::default().with_memory("384Mi".parse()?));
/// let change = ResourceChange::new(vec![before], vec![after]);
/// assert_eq!(change.lines(), vec!["app: limits cpu none -> none, memory 256Mi -> 384Mi".to_owned()]);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResourceChange {
    /// The selected containers before.
    pub before: Vec<ContainerResources>,
    /// The selected containers after.
    pub after: Vec<ContainerResources>,
    /// Whether the change started a rollout (Kubernetes: a pod template change replaces every
    /// pod; Compose: the Engine updates running containers in place, no restart).
    pub rolled_out: bool,
    /// Where the change must also be made for it to last, when the platform does not keep it
    /// ([`super::PlatformCapabilities::durable_config`] false): the compose file(s) and key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist_in: Option<String>,
}

impl ResourceChange {
    /// A change from `before` to `after`, no rollout, nothing to persist.
    pub fn new(before: Vec<ContainerResources>, after: Vec<ContainerResources>) -> Self {
        Self {
            before,
            after,
            rolled_out: false,
            persist_in: None,
        }
    }

    /// One line per container whose values change: `app: limits cpu A -> B, memory C -> D`
    /// (and `requests …` when they change).
    pub fn lines(&self) -> Vec<String> {
        change_lines(&self.before, &self.after)
    }
}

/// One line per container whose values differ between `before` and `after` (matched by name).
///
/// # Examples
/// ```
/// use ops_core::platform::{change_lines, ContainerResources, ResourceValues};
/// let b = vec![ContainerResources::new("app")];
/// let a = vec![ContainerResources::new("app").with_requests(ResourceValues::default().with_cpu("100m".parse()?))];
/// assert_eq!(change_lines(&b, &a), vec!["app: requests cpu none -> 100m, memory none -> none".to_owned()]);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
pub fn change_lines(before: &[ContainerResources], after: &[ContainerResources]) -> Vec<String> {
    fn show<T: fmt::Display>(v: Option<T>) -> String {
        v.map_or_else(|| "none".to_owned(), |v| v.to_string())
    }
    fn pair(what: &str, b: ResourceValues, a: ResourceValues) -> Option<String> {
        (b != a).then(|| {
            format!(
                "{what} cpu {} -> {}, memory {} -> {}",
                show(b.cpu),
                show(a.cpu),
                show(b.memory),
                show(a.memory)
            )
        })
    }
    after
        .iter()
        .filter_map(|a| {
            let b = before
                .iter()
                .find(|b| b.container == a.container)
                .cloned()
                .unwrap_or_else(|| ContainerResources::new(a.container.clone()));
            let parts: Vec<String> = [
                pair("requests", b.requests, a.requests),
                pair("limits", b.limits, a.limits),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!parts.is_empty()).then(|| format!("{}: {}", a.container, parts.join("; ")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(s: &str) -> MemoryQuantity {
        s.parse().unwrap()
    }

    #[test]
    fn a_request_above_its_limit_is_refused() {
        let app = ContainerResources::new("app")
            .with_limits(ResourceValues::default().with_memory(mem("256Mi")));
        let update = ResourceUpdate::new(ContainerSelector::All).request_memory(mem("512Mi"));
        let err = update.apply_to("web", &[app]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.detail().unwrap().contains("less than or equal"));
    }

    #[test]
    fn only_selected_containers_change_and_unset_values_stay() {
        let app = ContainerResources::new("app")
            .with_requests(ResourceValues::default().with_cpu("100m".parse().unwrap()));
        let side = ContainerResources::new("side");
        let after = ResourceUpdate::new(ContainerSelector::named("app"))
            .limit_memory(mem("1Gi"))
            .apply_to("web", &[app.clone(), side.clone()])
            .unwrap();
        assert_eq!(after[0].requests, app.requests);
        assert_eq!(after[0].limits.memory, Some(mem("1Gi")));
        assert_eq!(after[1], side);
    }

    #[test]
    fn an_expectation_that_moved_is_a_conflict() {
        let app = ContainerResources::new("app")
            .with_limits(ResourceValues::default().with_memory(mem("256Mi")));
        let seen = ContainerResources::new("app")
            .with_limits(ResourceValues::default().with_memory(mem("128Mi")));
        let err = ResourceUpdate::new(ContainerSelector::All)
            .limit_memory(mem("384Mi"))
            .expecting(vec![seen])
            .apply_to("web", std::slice::from_ref(&app))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(
            ResourceUpdate::new(ContainerSelector::All)
                .limit_memory(mem("384Mi"))
                .expecting(vec![app.clone()])
                .apply_to("web", &[app])
                .is_ok()
        );
    }
}
