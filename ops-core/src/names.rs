//! The naming rules of the systems opsbook acts on, in one place.
//!
//! [`crate::WorkloadRef`] and [`crate::InstanceRef`] check their parts by the rule of the
//! kind they name, so a name the platform would refuse is refused at construction (from
//! configuration, a command line or serde) and not by the server during an incident. Backends
//! (`ops-compose`) validate with the same rules instead of keeping their own.
//!
//! | rule | used for | the system's rule |
//! | --- | --- | --- |
//! | [`NameRule::Dns1123Label`] | Kubernetes namespaces | 1–63 of `a-z 0-9 -`, letter or digit at both ends |
//! | [`NameRule::Dns1123Subdomain`] | Deployments, StatefulSets, DaemonSets, pods | at most 253 characters, dot-separated DNS-1123 labels |
//! | [`NameRule::ComposeProject`] | Compose projects | 1–63 of `a-z 0-9 - _`, starting with a letter or digit |
//! | [`NameRule::ComposeService`] | Compose services | compose-spec's `[a-zA-Z0-9._-]+`, at most 253, letter or digit at both ends |
//! | [`NameRule::ContainerName`] | Docker containers | the engine's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, at most 253 |
//! | [`NameRule::EnvVar`] ([`EnvKey`]) | environment variables (Kubernetes `env`, container env, `printenv`) | Kubernetes' `[-._a-zA-Z][-._a-zA-Z0-9]*`, at most 253, starting with a letter or `_` |
//! | [`NameRule::ConfigKey`] | ConfigMap and Secret keys | Kubernetes' `[-._a-zA-Z0-9]+`, at most 253, not `.`, `..` or starting with `..` |
//!
//! opsbook is stricter than compose in one point: a service name must start and end with a
//! letter or digit (compose accepts `-api`), so no name can read as a command-line option.
//! For the same reason an environment variable name starts with a letter or `_` (Kubernetes
//! also accepts `-` and `.` there); the engine would take any name without `=`, but one name
//! rule serves both platforms and the `printenv` of `auth_failures`.
//!
//! # Examples
//! ```
//! use ops_core::names::NameRule;
//! assert!(NameRule::Dns1123Subdomain.check("api.v2"));
//! assert!(!NameRule::Dns1123Subdomain.check("API_v2"));
//! assert!(NameRule::ComposeService.check("API_v2"));
//! assert!(!NameRule::ComposeProject.check("Shop"));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::OpsError;

/// A naming rule of a target system (see the [module docs](self) for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameRule {
    /// RFC 1123 label as Kubernetes checks it (`IsDNS1123Label`): namespaces.
    Dns1123Label,
    /// RFC 1123 subdomain as Kubernetes checks it (`IsDNS1123Subdomain`): object names.
    Dns1123Subdomain,
    /// A Docker Compose project name.
    ComposeProject,
    /// A Docker Compose service name.
    ComposeService,
    /// A Docker container name.
    ContainerName,
    /// An environment variable name (see [`EnvKey`]).
    EnvVar,
    /// A key of a Kubernetes ConfigMap or Secret (`IsConfigMapKey`).
    ConfigKey,
}

impl NameRule {
    /// Whether `name` follows this rule.
    ///
    /// # Examples
    /// ```
    /// use ops_core::names::NameRule;
    /// assert!(NameRule::Dns1123Label.check("kube-system"));
    /// assert!(!NameRule::Dns1123Label.check(&"a".repeat(64)));
    /// assert!(NameRule::ContainerName.check("shop-api-1"));
    /// assert!(!NameRule::ContainerName.check("x"));
    /// ```
    pub fn check(self, name: &str) -> bool {
        let b = name.as_bytes();
        match self {
            Self::Dns1123Label => is_dns1123_label(name),
            Self::Dns1123Subdomain => is_dns1123_subdomain(name),
            Self::ComposeProject => {
                !b.is_empty()
                    && b.len() <= 63
                    && b[0].is_ascii_alphanumeric()
                    && b.iter().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_')
                    })
            }
            Self::ComposeService => is_shaped(b, 253, |c| {
                c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')
            }),
            Self::ContainerName => {
                b.len() >= 2
                    && b.len() <= 253
                    && b[0].is_ascii_alphanumeric()
                    && b.iter()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
            }
            Self::EnvVar => {
                b.len() <= 253
                    && b.first()
                        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                    && b.iter().all(|c| key_char(*c))
            }
            Self::ConfigKey => {
                !b.is_empty()
                    && b.len() <= 253
                    && b.iter().all(|c| key_char(*c))
                    && name != "."
                    && !name.starts_with("..")
            }
        }
    }

    /// The rule in words, for error messages.
    ///
    /// # Examples
    /// ```
    /// assert!(ops_core::names::NameRule::Dns1123Label.describe().contains("63"));
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Self::Dns1123Label => {
                "a DNS-1123 label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
            }
            Self::Dns1123Subdomain => {
                "a DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' or '.', each dot-separated part starting and ending with a letter or digit"
            }
            Self::ComposeProject => {
                "a compose project: 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
            }
            Self::ComposeService => {
                "a compose service: 1-253 letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
            }
            Self::ContainerName => {
                "a container name: 2-253 letters, digits, '_', '.' or '-', starting with a letter or digit"
            }
            Self::EnvVar => {
                "an environment variable name: at most 253 letters, digits, '_', '-' or '.', starting with a letter or '_'"
            }
            Self::ConfigKey => {
                "a ConfigMap or Secret key: 1-253 letters, digits, '_', '-' or '.', not '.' and not starting with '..'"
            }
        }
    }
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dns1123Label => "dns-1123 label",
            Self::Dns1123Subdomain => "dns-1123 subdomain",
            Self::ComposeProject => "compose project",
            Self::ComposeService => "compose service",
            Self::ContainerName => "container name",
            Self::EnvVar => "environment variable name",
            Self::ConfigKey => "configuration key",
        })
    }
}

/// 1..=`max` bytes, each `allowed`, starting and ending with an ASCII letter or digit.
pub(crate) fn is_shaped(b: &[u8], max: usize, allowed: impl Fn(u8) -> bool) -> bool {
    !b.is_empty()
        && b.len() <= max
        && b.iter().all(|c| allowed(*c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A character of an environment variable name or a ConfigMap key.
fn key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// The name of an environment variable, e.g. `SECRET_KEY`: [`NameRule::EnvVar`] (ASCII
/// letters, digits, `_`, `-` and `.`, starting with a letter or `_`, at most 253 characters).
/// The one rule of opsbook for these names: `auth_failures` reads one, and both platforms
/// check the keys of a configuration change with it. Also `ops_core::runbooks::EnvKey`.
///
/// # Errors
/// Parsing gives [`crate::ErrorKind::InvalidInput`] for a name outside the rule.
///
/// # Examples
/// ```
/// use ops_core::names::EnvKey;
/// let key: EnvKey = "JWT_SECRET".parse()?;
/// assert_eq!(key.as_str(), "JWT_SECRET");
/// assert!("JWT SECRET".parse::<EnvKey>().is_err());
/// assert!("1KEY".parse::<EnvKey>().is_err());
/// assert!(EnvKey::check("app.mode"));
/// assert!(!EnvKey::check("A=B"));
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvKey(String);

impl EnvKey {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name known at compile time to follow the rule (defaults).
    pub(crate) fn from_static(name: &'static str) -> Self {
        debug_assert!(
            Self::check(name),
            "{name} is not an environment variable name"
        );
        Self(name.to_owned())
    }

    /// Whether `name` is a valid environment variable name ([`NameRule::EnvVar`]).
    ///
    /// # Examples
    /// ```
    /// assert!(ops_core::names::EnvKey::check("_X1"));
    /// assert!(!ops_core::names::EnvKey::check("-x"));
    /// ```
    pub fn check(name: &str) -> bool {
        NameRule::EnvVar.check(name)
    }
}

impl FromStr for EnvKey {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, OpsError> {
        if !Self::check(s) {
            return Err(OpsError::invalid("env_key", s, NameRule::EnvVar.describe()));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for EnvKey {
    type Error = OpsError;
    fn try_from(s: String) -> Result<Self, OpsError> {
        s.parse()
    }
}

impl From<EnvKey> for String {
    fn from(k: EnvKey) -> Self {
        k.0
    }
}

impl fmt::Display for EnvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn dns_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'
}

/// Whether `s` is an RFC 1123 DNS label as Kubernetes requires for namespaces: 1–63
/// lowercase alphanumerics or `-`, starting and ending with an alphanumeric.
///
/// # Examples
/// ```
/// assert!(ops_core::names::is_dns1123_label("api-7f9c"));
/// assert!(!ops_core::names::is_dns1123_label("Api"));
/// assert!(!ops_core::names::is_dns1123_label("-api"));
/// ```
pub fn is_dns1123_label(s: &str) -> bool {
    is_shaped(s.as_bytes(), 63, dns_char)
}

/// Whether `s` is an RFC 1123 DNS subdomain as Kubernetes checks object names: at most 253
/// characters, dot-separated parts of lowercase alphanumerics or `-`, each starting and
/// ending with an alphanumeric.
///
/// # Examples
/// ```
/// assert!(ops_core::names::is_dns1123_subdomain("api.v2"));
/// assert!(!ops_core::names::is_dns1123_subdomain("api..v2"));
/// assert!(!ops_core::names::is_dns1123_subdomain(&"a".repeat(254)));
/// ```
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.')
            .all(|part| is_shaped(part.as_bytes(), 253, dns_char))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_refuses_what_its_system_refuses() {
        use NameRule::*;
        let cases: &[(NameRule, &[&str], &[&str])] = &[
            (
                Dns1123Label,
                &["a", "kube-system", "x1"],
                &["", "A", "a_b", "a.b", "-a", "a-"],
            ),
            (
                Dns1123Subdomain,
                &["api", "api.v2", "a-b.c-d"],
                &["Api", "a_b", "a..b", ".a", "a.", "-a"],
            ),
            (
                ComposeProject,
                &["shop", "shop_prod-1", "1x", "x_"],
                &["", "Shop", "_x", "-x", "a.b", "a b"],
            ),
            (
                ComposeService,
                &["api", "API_v2", "a.b-c", "a..b"],
                &["", "-api", "api-", "a b", "a/b", "ü"],
            ),
            (
                ContainerName,
                &["shop-api-1", "ab", "a_"],
                &["a", "_ab", "a/b", "a b", "a:b"],
            ),
            (
                EnvVar,
                &["DATABASE_URL", "_x", "app.mode", "a-b", "X1"],
                &["", "1X", "-x", ".x", "A=B", "A B", "a\0b", "ü"],
            ),
            (
                ConfigKey,
                &["app.yaml", "a_b-c", "1", ".env", "a..b"],
                &["", ".", "..", "..a", "a/b", "a b", "a=b"],
            ),
        ];
        for (rule, good, bad) in cases {
            for g in *good {
                assert!(rule.check(g), "{rule} refused {g:?}");
            }
            for b in *bad {
                assert!(!rule.check(b), "{rule} accepted {b:?}");
            }
        }
        assert!(Dns1123Subdomain.check(&"a".repeat(253)));
        assert!(!Dns1123Subdomain.check(&"a".repeat(254)));
        assert!(!ComposeProject.check(&"a".repeat(64)));
        assert!(EnvVar.check(&"A".repeat(253)));
        assert!(!EnvVar.check(&"A".repeat(254)));
        assert!(!ConfigKey.check(&"a".repeat(254)));
    }

    proptest::proptest! {
        #[test]
        fn env_key_never_panics_and_round_trips(s in "\\PC{0,40}") {
            if let Ok(k) = s.parse::<EnvKey>() {
                proptest::prop_assert_eq!(k.to_string(), s.clone());
                proptest::prop_assert_eq!(k.to_string().parse::<EnvKey>().unwrap(), k);
            }
        }

        #[test]
        fn env_key_accepts_every_plain_name(s in "[A-Za-z_][A-Za-z0-9_.-]{0,40}") {
            proptest::prop_assert!(s.parse::<EnvKey>().is_ok());
        }

        #[test]
        fn env_key_refuses_a_leading_digit_dash_or_dot(s in "[0-9.-][A-Za-z0-9_]{0,10}") {
            proptest::prop_assert!(s.parse::<EnvKey>().is_err());
        }
    }
}
