//! Emergency lockdown: isolating a namespace or chosen workloads from the network, recorded
//! on the platform itself so a later process can list and lift it
//! ([`super::Platform::lockdown`], [`super::Platform::lockdowns`],
//! [`super::Platform::lift_lockdown`]). A lockdown never deletes anything of the user's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::OpsError;
use crate::refs::{Namespace, WorkloadRef};

/// The id of one lockdown: `ld-<UTC time>-<random>` (e.g. `ld-20261202t031500z-9f2c4a1b`),
/// usable as a Kubernetes label value and in a Docker network name.
///
/// # Examples
/// ```
/// use ops_core::platform::LockdownId;
/// let id: LockdownId = "ld-20261202t031500z-9f2c4a1b".parse()?;
/// assert_eq!(id.as_str(), "ld-20261202t031500z-9f2c4a1b");
/// assert!("Has Space".parse::<LockdownId>().is_err());
/// let fresh = LockdownId::generate(jiff::Timestamp::UNIX_EPOCH);
/// assert!(fresh.as_str().starts_with("ld-19700101t000000z-"));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LockdownId(String);

impl LockdownId {
    /// A fresh id for a lockdown made at `at`.
    pub fn generate(at: jiff::Timestamp) -> Self {
        let stamp = at.strftime("%Y%m%dt%H%M%Sz");
        Self(format!("ld-{stamp}-{:08x}", fastrand::u32(..)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LockdownId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for LockdownId {
    type Err = OpsError;

    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] unless `s` is 1–40 lowercase letters, digits or
    /// `-`, starting and ending with a letter or digit.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 40
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(OpsError::invalid(
                "lockdown_id",
                s,
                "a lockdown id is 1-40 lowercase letters, digits or '-', starting and ending with a letter or digit",
            ))
        }
    }
}

impl TryFrom<String> for LockdownId {
    type Error = OpsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<LockdownId> for String {
    fn from(value: LockdownId) -> Self {
        value.0
    }
}

/// What a lockdown isolates: a whole namespace (Compose: project) or chosen workloads of one.
///
/// # Examples
/// ```
/// use ops_core::platform::LockdownScope;
/// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let scope = LockdownScope::workloads(vec![api.clone()])?;
/// assert_eq!(scope.namespace().as_str(), "prod");
/// assert_eq!(scope.chosen(), Some(&[api][..]));
/// assert!(LockdownScope::workloads(vec![]).is_err());
/// let other: ops_core::WorkloadRef = "dev/deployment/api".parse()?;
/// assert!(LockdownScope::workloads(vec!["prod/deployment/api".parse()?, other]).is_err());
/// assert_eq!(LockdownScope::namespace_wide("prod".parse()?).chosen(), None);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawScope", into = "RawScope")]
pub struct LockdownScope {
    namespace: Namespace,
    workloads: Option<Vec<WorkloadRef>>,
}

#[derive(Serialize, Deserialize)]
struct RawScope {
    namespace: Namespace,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workloads: Option<Vec<WorkloadRef>>,
}

impl TryFrom<RawScope> for LockdownScope {
    type Error = OpsError;
    fn try_from(raw: RawScope) -> Result<Self, OpsError> {
        match raw.workloads {
            None => Ok(Self::namespace_wide(raw.namespace)),
            Some(w) => {
                let scope = Self::workloads(w)?;
                if scope.namespace == raw.namespace {
                    Ok(scope)
                } else {
                    Err(OpsError::invalid(
                        "lockdown_scope",
                        raw.namespace.as_str(),
                        "the workloads are in another namespace",
                    ))
                }
            }
        }
    }
}

impl From<LockdownScope> for RawScope {
    fn from(scope: LockdownScope) -> Self {
        Self {
            namespace: scope.namespace,
            workloads: scope.workloads,
        }
    }
}

impl LockdownScope {
    /// Every workload of `namespace`.
    pub fn namespace_wide(namespace: Namespace) -> Self {
        Self {
            namespace,
            workloads: None,
        }
    }

    /// These workloads, all of one namespace (duplicates dropped).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `workloads` is empty or spans namespaces.
    pub fn workloads(mut workloads: Vec<WorkloadRef>) -> Result<Self, OpsError> {
        let Some(first) = workloads.first() else {
            return Err(OpsError::invalid(
                "lockdown_scope",
                "",
                "name at least one workload, or lock the whole namespace down",
            ));
        };
        let namespace = first.namespace().clone();
        if let Some(other) = workloads.iter().find(|w| w.namespace() != &namespace) {
            return Err(OpsError::invalid(
                "lockdown_scope",
                other.to_string(),
                format!("every workload of a lockdown must be in {namespace}"),
            ));
        }
        workloads.sort_by_key(ToString::to_string);
        workloads.dedup();
        Ok(Self {
            namespace,
            workloads: Some(workloads),
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The chosen workloads; `None` for the whole namespace.
    pub fn chosen(&self) -> Option<&[WorkloadRef]> {
        self.workloads.as_deref()
    }

    /// Whether `workload` is inside this scope.
    ///
    /// # Examples
    /// ```
    /// use ops_core::platform::LockdownScope;
    /// let api: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
    /// let web: ops_core::WorkloadRef = "prod/deployment/web".parse()?;
    /// assert!(LockdownScope::namespace_wide("prod".parse()?).covers(&web));
    /// assert!(!LockdownScope::workloads(vec![api])?.covers(&web));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn covers(&self, workload: &WorkloadRef) -> bool {
        workload.namespace() == &self.namespace
            && self
                .workloads
                .as_ref()
                .is_none_or(|w| w.iter().any(|c| c == workload))
    }
}

impl fmt::Display for LockdownScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.workloads {
            None => write!(f, "namespace {}", self.namespace),
            Some(w) => {
                let names: Vec<String> = w.iter().map(ToString::to_string).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

/// Options for [`super::Platform::lockdown`].
///
/// # Examples
/// ```
/// use ops_core::platform::{LockdownId, LockdownOptions};
/// let id: LockdownId = "ld-drill-1".parse()?;
/// let o = LockdownOptions::default().with_id(id.clone()).with_reason("credential leak");
/// assert_eq!(o.id, Some(id));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockdownOptions {
    /// The id to record (default: [`LockdownId::generate`]), so a plan can name it first.
    pub id: Option<LockdownId>,
    /// Why, recorded with the lockdown (bounded, escaped; never put a secret here).
    pub reason: Option<String>,
    /// Server-side dry run (only when [`super::PlatformCapabilities::dry_run`]).
    pub dry_run: bool,
}

impl LockdownOptions {
    /// Use this id.
    #[must_use]
    pub fn with_id(mut self, id: LockdownId) -> Self {
        self.id = Some(id);
        self
    }

    /// Record why.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// An active lockdown, as the platform records it.
///
/// # Examples
/// ```
/// use ops_core::platform::{Lockdown, LockdownScope};
/// let l = Lockdown::new("ld-1".parse()?, LockdownScope::namespace_wide("prod".parse()?))
///     .isolating("NetworkPolicy opsbook-lockdown-ld-1 denies all ingress and egress");
/// assert_eq!(l.namespace().as_str(), "prod");
/// assert_eq!(l.isolated.len(), 1);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Lockdown {
    /// Its id.
    pub id: LockdownId,
    /// What it isolates.
    pub scope: LockdownScope,
    /// When it was made, when the platform recorded it.
    pub created_at: Option<jiff::Timestamp>,
    /// Why, when given.
    pub reason: Option<String>,
    /// What was isolated, in words (one line per object: policy, container, network).
    pub isolated: Vec<String>,
}

impl Lockdown {
    /// A lockdown of `scope` with nothing isolated yet.
    pub fn new(id: LockdownId, scope: LockdownScope) -> Self {
        Self {
            id,
            scope,
            created_at: None,
            reason: None,
            isolated: Vec::new(),
        }
    }

    /// Add one line of what was isolated.
    #[must_use]
    pub fn isolating(mut self, what: impl Into<String>) -> Self {
        self.isolated.push(what.into());
        self
    }

    /// The namespace it is in.
    pub fn namespace(&self) -> &Namespace {
        self.scope.namespace()
    }
}

/// The command a person runs to undo a lockdown with the `opsbook` CLI (for reports).
///
/// # Examples
/// ```
/// let id = "ld-1".parse()?;
/// assert_eq!(
///     ops_core::platform::lift_command(&"prod".parse()?, &id),
///     "opsbook lift-lockdown --namespace prod --id ld-1"
/// );
/// # Ok::<(), ops_core::OpsError>(())
/// ```
pub fn lift_command(namespace: &Namespace, id: &LockdownId) -> String {
    format!("opsbook lift-lockdown --namespace {namespace} --id {id}")
}
