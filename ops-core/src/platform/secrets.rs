//! Secret rotation the safe way (Kubernetes): a new Secret beside the old one, the workloads
//! pointed at it, and the old one deleted only once nothing uses it. The types here carry
//! key names; values are [`SecretString`]s that no `Debug` shows.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::OpsError;
use crate::names::NameRule;
use crate::refs::{ResourceName, WorkloadRef};

/// The name of the next version of a secret: `db-creds` becomes `db-creds-v2`, `db-creds-v2`
/// becomes `db-creds-v3`. The result is checked as a Kubernetes Secret name (a DNS-1123
/// subdomain of at most 253 characters).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] when the old name is no Secret name or the next one
/// would be too long.
///
/// # Examples
/// ```
/// use ops_core::platform::next_secret_name;
/// let v2 = next_secret_name(&"db-creds".parse()?)?;
/// assert_eq!(v2.as_str(), "db-creds-v2");
/// assert_eq!(next_secret_name(&v2)?.as_str(), "db-creds-v3");
/// assert!(next_secret_name(&"Not_A_Secret".parse()?).is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
pub fn next_secret_name(old: &ResourceName) -> Result<ResourceName, OpsError> {
    let name = old.as_str();
    let bad = |reason: &str| OpsError::invalid("secret_name", name, reason);
    if !NameRule::Dns1123Subdomain.check(name) {
        return Err(bad("a Secret's name is a DNS-1123 subdomain"));
    }
    let next = match name.rsplit_once("-v") {
        Some((base, n))
            if !base.is_empty()
                && !n.is_empty()
                && n.len() <= 9
                && n.bytes().all(|b| b.is_ascii_digit())
                && !n.starts_with('0') =>
        {
            let n: u64 = n.parse().map_err(|_| bad("version number"))?;
            format!("{base}-v{}", n + 1)
        }
        _ => format!("{name}-v2"),
    };
    if !NameRule::Dns1123Subdomain.check(&next) {
        return Err(bad(
            "the next version's name would be longer than 253 characters",
        ));
    }
    ResourceName::new(&next)
}

/// A new Secret made from an existing one: every key of `from`, with `set` overriding (or
/// adding) some. Values are never printed.
///
/// # Examples
/// ```
/// use ops_core::platform::SecretCopy;
/// let c = SecretCopy::new("db-creds".parse()?, "db-creds-v2".parse()?).set("password", "hunter2");
/// assert_eq!(c.keys_set(), vec!["password"]);
/// assert!(!format!("{c:?}").contains("hunter2"));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SecretCopy {
    /// The Secret copied.
    pub from: ResourceName,
    /// The new Secret's name; it must not exist.
    pub to: ResourceName,
    /// Keys given new values.
    pub set: BTreeMap<String, SecretString>,
}

impl fmt::Debug for SecretCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCopy")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("set", &self.set.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SecretCopy {
    /// A copy of `from` named `to`.
    pub fn new(from: ResourceName, to: ResourceName) -> Self {
        Self {
            from,
            to,
            set: BTreeMap::new(),
        }
    }

    /// Give `key` the value `value` in the copy.
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set
            .insert(key.into(), SecretString::from(value.into()));
        self
    }

    /// Names of the keys given new values.
    pub fn keys_set(&self) -> Vec<&str> {
        self.set.keys().map(String::as_str).collect()
    }
}

/// What [`super::Platform::copy_secret`] made: names only.
///
/// # Examples
/// ```
/// let made = ops_core::platform::SecretCreated::new("db-creds-v2".parse()?, vec!["password".into()]);
/// assert_eq!(made.keys, ["password"]);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecretCreated {
    /// The new Secret.
    pub name: ResourceName,
    /// Every key it holds.
    pub keys: Vec<String>,
}

impl SecretCreated {
    /// A created Secret with its keys.
    pub fn new(name: ResourceName, keys: Vec<String>) -> Self {
        Self { name, keys }
    }
}

/// What [`super::Platform::repoint_secret`] changed in one workload.
///
/// # Examples
/// ```
/// let w: ops_core::WorkloadRef = "prod/deployment/api".parse()?;
/// let r = ops_core::platform::SecretRepoint::new(w, 3);
/// assert_eq!(r.references, 3);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecretRepoint {
    /// The workload whose pod template changed (a rollout started).
    pub workload: WorkloadRef,
    /// References changed: env `secretKeyRef`s, `envFrom` `secretRef`s and secret volumes.
    pub references: u32,
}

impl SecretRepoint {
    /// `references` references changed in `workload`.
    pub fn new(workload: WorkloadRef, references: u32) -> Self {
        Self {
            workload,
            references,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn the_next_name_is_a_valid_secret_name_or_a_typed_error(name in "[a-z0-9][a-z0-9.-]{0,260}") {
            if let Ok(old) = ResourceName::new(&name) {
                match next_secret_name(&old) {
                    Ok(next) => {
                        prop_assert!(NameRule::Dns1123Subdomain.check(next.as_str()));
                        prop_assert_ne!(next.as_str(), old.as_str());
                    }
                    Err(e) => prop_assert_eq!(e.kind(), crate::ErrorKind::InvalidInput),
                }
            }
        }

        #[test]
        fn versions_count_up(n in 2u64..1_000_000) {
            let old = ResourceName::new(&format!("token-v{n}")).unwrap();
            let next = next_secret_name(&old).unwrap();
            prop_assert_eq!(next.as_str(), format!("token-v{}", n + 1));
        }
    }
}
