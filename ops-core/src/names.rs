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
//!
//! opsbook is stricter than compose in one point: a service name must start and end with a
//! letter or digit (compose accepts `-api`), so no name can read as a command-line option.
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
    }
}
