//! What [`super::Platform::inspect`] reads beyond workloads: services and their endpoints,
//! nodes, resource quotas, network policies, the namespace's events and disk space. Each
//! part is a [`Section`]: read, unsupported by the backend, or unreadable this time (no
//! rights to list nodes, say), so one missing part never hides the others.

use serde::{Deserialize, Serialize};

use super::{Condition, PlatformEvent};

/// One part of an [`Inspection`]: what was read, or why nothing was.
///
/// # Examples
/// ```
/// use ops_core::platform::Section;
/// let nodes: Section<Vec<String>> = Section::unsupported("compose has no nodes");
/// assert!(nodes.read().is_none());
/// assert_eq!(Section::Read(vec![1]).read(), Some(&vec![1]));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Section<T> {
    /// Read.
    Read(T),
    /// The backend has no such thing (Compose has no nodes or quotas).
    Unsupported(String),
    /// The backend has it but could not read it now; the error chain, redacted by the backend.
    Unreadable(String),
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Self::Unsupported("not inspected".to_owned())
    }
}

impl<T> Section<T> {
    /// A part the backend does not have, with the reason.
    pub fn unsupported(reason: impl Into<String>) -> Self {
        Self::Unsupported(reason.into())
    }

    /// What was read, if anything.
    pub fn read(&self) -> Option<&T> {
        match self {
            Self::Read(v) => Some(v),
            _ => None,
        }
    }

    /// A section from a read: the error's chain when it failed, `Unsupported` when the
    /// backend said so.
    ///
    /// # Examples
    /// ```
    /// use ops_core::platform::Section;
    /// use ops_core::{ErrorKind, OpsError};
    /// let s: Section<u8> = Section::from_result(Err(OpsError::new(ErrorKind::PermissionDenied, "k8s", "list", "nodes")));
    /// assert!(matches!(s, Section::Unreadable(_)));
    /// ```
    pub fn from_result(result: Result<T, crate::OpsError>) -> Self {
        match result {
            Ok(v) => Self::Read(v),
            Err(e) if e.kind() == crate::ErrorKind::Unsupported => Self::Unsupported(e.chain()),
            Err(e) => Self::Unreadable(e.chain()),
        }
    }
}

/// Options for [`super::Platform::inspect`].
///
/// # Examples
/// ```
/// let opts = ops_core::platform::InspectOptions::default().with_events_limit(20);
/// assert_eq!(opts.events_limit, Some(20));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InspectOptions {
    /// At most this many namespace events, the newest (seed: `tail -20`).
    pub events_limit: Option<usize>,
}

impl InspectOptions {
    /// Keep only the newest `n` events.
    #[must_use]
    pub fn with_events_limit(mut self, n: usize) -> Self {
        self.events_limit = Some(n);
        self
    }
}

/// A namespace (Compose: a project) beyond its workloads.
///
/// # Examples
/// ```
/// let i = ops_core::platform::Inspection::default();
/// assert!(i.nodes.read().is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Inspection {
    /// Services and their ready and not-ready endpoints (`kubectl get endpoints`).
    pub services: Section<Vec<ServiceEndpoints>>,
    /// Nodes: conditions, pressure, allocatable against requested (`kubectl describe nodes`).
    pub nodes: Section<Vec<NodeStatus>>,
    /// Resource quotas, used against hard (`kubectl describe resourcequota`).
    pub quotas: Section<Vec<QuotaStatus>>,
    /// Names of the namespace's network policies.
    pub network_policies: Section<Vec<String>>,
    /// The namespace's events, newest last.
    pub events: Section<Vec<PlatformEvent>>,
    /// Filesystems the platform can measure (the Docker engine's root directory).
    pub disks: Section<Vec<DiskSpace>>,
    /// What the engine's objects take on disk (`docker system df`).
    pub engine_disk_usage: Section<EngineDiskUsage>,
}

/// A port of a service.
///
/// # Examples
/// ```
/// let p = ops_core::platform::ServicePort::new(80, "8080", "TCP");
/// assert_eq!(p.port, 80);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServicePort {
    /// The port name, when it has one.
    pub name: Option<String>,
    /// The service's port (Compose: the published host port).
    pub port: u16,
    /// Where it goes in the instances: a number or a named port.
    pub target: String,
    /// `TCP`, `UDP`, `SCTP`.
    pub protocol: String,
}

impl ServicePort {
    /// A port `port` going to `target`.
    pub fn new(port: u16, target: impl Into<String>, protocol: impl Into<String>) -> Self {
        Self {
            name: None,
            port,
            target: target.into(),
            protocol: protocol.into(),
        }
    }
}

/// One endpoint of a service: an instance and its address.
///
/// # Examples
/// ```
/// let e = ops_core::platform::Endpoint::new(Some("api-1".into()), Some("10.0.0.7".into()));
/// assert_eq!(e.instance.as_deref(), Some("api-1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Endpoint {
    /// The pod or container behind it.
    pub instance: Option<String>,
    /// Its address (pod IP), when the platform gives one.
    pub address: Option<String>,
}

impl Endpoint {
    /// An endpoint.
    pub fn new(instance: Option<String>, address: Option<String>) -> Self {
        Self { instance, address }
    }
}

/// A service and where its traffic can go.
///
/// # Examples
/// ```
/// use ops_core::platform::{Endpoint, ServiceEndpoints};
/// let mut s = ServiceEndpoints::new("api");
/// s.not_ready.push(Endpoint::new(Some("api-1".into()), None));
/// assert!(!s.has_ready_endpoint());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceEndpoints {
    /// The service's name.
    pub name: String,
    /// Its ports.
    pub ports: Vec<ServicePort>,
    /// Whether it selects instances at all (a Kubernetes Service without a selector has
    /// endpoints managed by hand).
    pub selects_instances: bool,
    /// Endpoints that receive traffic.
    pub ready: Vec<Endpoint>,
    /// Endpoints that exist but are not ready (no traffic).
    pub not_ready: Vec<Endpoint>,
}

impl ServiceEndpoints {
    /// A service with no ports and no endpoints yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ports: Vec::new(),
            selects_instances: true,
            ready: Vec::new(),
            not_ready: Vec::new(),
        }
    }

    /// Whether any endpoint receives traffic.
    pub fn has_ready_endpoint(&self) -> bool {
        !self.ready.is_empty()
    }
}

/// CPU and memory amounts.
///
/// # Examples
/// ```
/// let r = ops_core::platform::Resources::new(1500, 1 << 30);
/// assert_eq!(r.cpu_millis, 1500);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

impl Resources {
    /// `cpu_millis` of CPU and `memory_bytes` of memory.
    pub fn new(cpu_millis: u64, memory_bytes: u64) -> Self {
        Self {
            cpu_millis,
            memory_bytes,
        }
    }
}

/// A node: its conditions and how much of it the pods on it have requested.
///
/// # Examples
/// ```
/// use ops_core::platform::{NodeStatus, Resources};
/// let mut n = NodeStatus::new("node-1");
/// n.allocatable = Resources::new(4000, 8 << 30);
/// n.requested = Resources::new(3000, 2 << 30);
/// assert_eq!(n.cpu_requested_ratio(), Some(0.75));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent conditions a node reports"
)]
pub struct NodeStatus {
    /// The node's name.
    pub name: String,
    /// The Ready condition (`None` when the node reports none).
    pub ready: Option<bool>,
    /// `MemoryPressure` is True.
    pub memory_pressure: bool,
    /// `DiskPressure` is True.
    pub disk_pressure: bool,
    /// `PIDPressure` is True.
    pub pid_pressure: bool,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    /// Every condition as the node reports it.
    pub conditions: Vec<Condition>,
    /// What pods may use.
    pub allocatable: Resources,
    /// The sum of the requests of the node's pods that have not terminated.
    pub requested: Resources,
    /// The sum of their limits (containers without a limit count nothing).
    pub limits: Resources,
}

impl NodeStatus {
    /// A node with nothing known yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ready: None,
            memory_pressure: false,
            disk_pressure: false,
            pid_pressure: false,
            unschedulable: false,
            conditions: Vec::new(),
            allocatable: Resources::default(),
            requested: Resources::default(),
            limits: Resources::default(),
        }
    }

    /// Requested CPU over allocatable CPU.
    #[allow(
        clippy::cast_precision_loss,
        reason = "a ratio of two amounts far below 2^53"
    )]
    pub fn cpu_requested_ratio(&self) -> Option<f64> {
        (self.allocatable.cpu_millis > 0)
            .then(|| self.requested.cpu_millis as f64 / self.allocatable.cpu_millis as f64)
    }

    /// Requested memory over allocatable memory.
    #[allow(
        clippy::cast_precision_loss,
        reason = "a ratio of two amounts far below 2^53"
    )]
    pub fn memory_requested_ratio(&self) -> Option<f64> {
        (self.allocatable.memory_bytes > 0)
            .then(|| self.requested.memory_bytes as f64 / self.allocatable.memory_bytes as f64)
    }

    /// Whether the node is under any pressure or not ready.
    pub fn is_troubled(&self) -> bool {
        self.ready == Some(false) || self.memory_pressure || self.disk_pressure || self.pid_pressure
    }
}

/// One resource of a quota: used against hard, as the API writes them.
///
/// # Examples
/// ```
/// let u = ops_core::platform::QuotaUse::new("requests.cpu", "1500m", "2", Some(0.75));
/// assert_eq!(u.ratio, Some(0.75));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuotaUse {
    /// `pods`, `requests.cpu`, `limits.memory`, `count/deployments.apps`...
    pub resource: String,
    /// Used, in the API's notation (`1500m`, `3Gi`, `4`).
    pub used: String,
    /// The hard limit, in the API's notation.
    pub hard: String,
    /// Used over hard, when both read as quantities and hard is not zero.
    pub ratio: Option<f64>,
}

impl QuotaUse {
    /// One resource's use.
    pub fn new(
        resource: impl Into<String>,
        used: impl Into<String>,
        hard: impl Into<String>,
        ratio: Option<f64>,
    ) -> Self {
        Self {
            resource: resource.into(),
            used: used.into(),
            hard: hard.into(),
            ratio,
        }
    }
}

/// A resource quota and its use, resources in name order.
///
/// # Examples
/// ```
/// use ops_core::platform::{QuotaStatus, QuotaUse};
/// let q = QuotaStatus::new("compute", vec![QuotaUse::new("pods", "10", "10", Some(1.0))]);
/// assert_eq!(q.fullest().map(|u| u.resource.as_str()), Some("pods"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuotaStatus {
    /// The quota's name.
    pub name: String,
    /// Each resource it limits.
    pub resources: Vec<QuotaUse>,
}

impl QuotaStatus {
    /// A quota.
    pub fn new(name: impl Into<String>, resources: Vec<QuotaUse>) -> Self {
        Self {
            name: name.into(),
            resources,
        }
    }

    /// The resource closest to its limit.
    pub fn fullest(&self) -> Option<&QuotaUse> {
        self.resources
            .iter()
            .filter(|u| u.ratio.is_some())
            .max_by(|a, b| {
                a.ratio
                    .partial_cmp(&b.ratio)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
    }
}

/// A filesystem's size and free space, as `statvfs` reports it.
///
/// # Examples
/// ```
/// // 100 blocks, 10 free of which 5 are reserved for root: df shows 90 used, 5 available.
/// let d = ops_core::platform::DiskSpace::new("docker root /var/lib/docker", 100, 10, 5);
/// assert_eq!(d.used_bytes(), 90);
/// assert_eq!(d.percent_used(), Some(95));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DiskSpace {
    /// What it is (`docker root /var/lib/docker`).
    pub what: String,
    /// Size in bytes.
    pub total_bytes: u64,
    /// Free bytes, including those reserved for root.
    pub free_bytes: u64,
    /// Bytes available to unprivileged users (what `df` shows as Avail).
    pub available_bytes: u64,
}

impl DiskSpace {
    /// A filesystem of `total_bytes` with `free_bytes` free, `available_bytes` of them
    /// available to unprivileged users.
    pub fn new(
        what: impl Into<String>,
        total_bytes: u64,
        free_bytes: u64,
        available_bytes: u64,
    ) -> Self {
        Self {
            what: what.into(),
            total_bytes,
            free_bytes,
            available_bytes,
        }
    }

    /// Used bytes: size minus free.
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.free_bytes)
    }

    /// Used over what users can have, as `df` computes Use%: used / (used + available).
    /// The reserved blocks count for neither, so a disk is full for users at 100 % while root
    /// still has room.
    #[allow(
        clippy::cast_precision_loss,
        reason = "a ratio of byte counts; 2^53 bytes is 8 PiB"
    )]
    pub fn used_ratio(&self) -> Option<f64> {
        let used = self.used_bytes();
        let base = used.saturating_add(self.available_bytes);
        (base > 0).then(|| used as f64 / base as f64)
    }

    /// [`DiskSpace::used_ratio`] in whole percent rounded up, exactly `df`'s Use% column.
    pub fn percent_used(&self) -> Option<u64> {
        let used = u128::from(self.used_bytes());
        let base = used + u128::from(self.available_bytes);
        (base > 0).then(|| u64::try_from((used * 100).div_ceil(base)).unwrap_or(100))
    }
}

/// What the container engine's objects take on disk (`docker system df`), in bytes.
///
/// # Examples
/// ```
/// let mut df = ops_core::platform::EngineDiskUsage::default();
/// df.images_bytes = 10;
/// df.volumes_bytes = 5;
/// assert_eq!(df.total_bytes(), 15);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EngineDiskUsage {
    /// Image layers (`docker system df`'s Images SIZE: the layers, shared once).
    pub images_bytes: u64,
    /// How many images.
    pub images: u64,
    /// Containers' writable layers.
    pub containers_bytes: u64,
    /// How many containers.
    pub containers: u64,
    /// Volumes.
    pub volumes_bytes: u64,
    /// How many volumes.
    pub volumes: u64,
    /// The build cache.
    pub build_cache_bytes: u64,
}

impl EngineDiskUsage {
    /// Everything together.
    pub fn total_bytes(&self) -> u64 {
        self.images_bytes
            .saturating_add(self.containers_bytes)
            .saturating_add(self.volumes_bytes)
            .saturating_add(self.build_cache_bytes)
    }
}
