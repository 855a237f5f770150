//! Validated typed references: workloads, instances, SQL identifiers, cache key patterns, pids.
//!
//! Every ref validates in its constructor, `Display` and `FromStr` round-trip, and serde goes
//! through them, so an invalid name never reaches a backend.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::OpsError;

fn invalid(what: &'static str, value: &str, why: impl Into<String>) -> OpsError {
    OpsError::invalid(what, shorten(value), why)
}

/// Shorten untrusted input before it goes into an error message.
pub(crate) fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    if value.len() <= MAX {
        return value.escape_debug().to_string();
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", value[..end].escape_debug())
}

/// The shape every name here shares: 1..=`max` bytes, each `allowed`, starting and ending
/// with an ASCII letter or digit.
fn is_name(s: &str, max: usize, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.iter().all(|c| allowed(*c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Whether `s` is an RFC 1123 DNS label as Kubernetes requires for namespaces and most names:
/// 1–63 lowercase alphanumerics or `-`, starting and ending with an alphanumeric.
///
/// # Examples
/// ```
/// assert!(ops_core::refs::is_dns1123_label("api-7f9c"));
/// assert!(!ops_core::refs::is_dns1123_label("Api"));
/// assert!(!ops_core::refs::is_dns1123_label("-api"));
/// ```
pub fn is_dns1123_label(s: &str) -> bool {
    is_name(s, 63, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'
    })
}

/// Whether `s` is an RFC 1123 DNS subdomain (Kubernetes object names such as pods):
/// at most 253 characters, dot-separated DNS labels.
///
/// # Examples
/// ```
/// assert!(ops_core::refs::is_dns1123_subdomain("api.v2"));
/// assert!(!ops_core::refs::is_dns1123_subdomain("api..v2"));
/// ```
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl TryFrom<String> for $ty {
            type Error = OpsError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
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

/// `Display`, `FromStr` (through `new`) and string serde for a validated `String` newtype.
macro_rules! validated_str_newtype {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = OpsError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        string_serde!($ty);
    };
}

/// A namespace: a Kubernetes namespace or a Docker Compose project name.
///
/// 1–63 characters: lowercase ASCII letters, digits, `-` and `_`, starting and ending with a
/// letter or digit. (Kubernetes additionally rejects `_`; its backend checks that.)
///
/// # Examples
/// ```
/// let ns: ops_core::Namespace = "prod".parse()?;
/// assert_eq!(ns.as_str(), "prod");
/// assert!("Prod".parse::<ops_core::Namespace>().is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Namespace(String);

impl Namespace {
    /// Validate and wrap a namespace.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `name` breaks the rules above.
    pub fn new(name: &str) -> Result<Self, OpsError> {
        let ok = is_name(name, 63, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'
        });
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(invalid(
                "namespace",
                name,
                "a namespace is 1-63 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit",
            ))
        }
    }

    /// The namespace as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

validated_str_newtype!(Namespace);

/// The name of a workload or instance: a Kubernetes object name, a compose service or a
/// container name.
///
/// 1–253 ASCII letters, digits, `-`, `.` or `_`, starting and ending with a letter or digit.
/// No `/`, spaces, quotes or shell metacharacters can get through.
///
/// # Examples
/// ```
/// let name: ops_core::ResourceName = "api-7f9c-x2".parse()?;
/// assert_eq!(name.to_string(), "api-7f9c-x2");
/// assert!("api; rm -rf /".parse::<ops_core::ResourceName>().is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceName(String);

impl ResourceName {
    /// Validate and wrap a name.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `name` breaks the rules above.
    pub fn new(name: &str) -> Result<Self, OpsError> {
        let ok = is_name(name, 253, |c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_')
        });
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(invalid(
                "resource_name",
                name,
                "a name is 1-253 ASCII letters, digits, '-', '.' or '_', starting and ending with a letter or digit",
            ))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wrap a name the caller has built from valid parts (e.g. `instance-7`).
    pub(crate) fn trusted(name: String) -> Self {
        debug_assert!(Self::new(&name).is_ok(), "untrusted name {name}");
        Self(name)
    }
}

validated_str_newtype!(ResourceName);

/// What kind of workload a [`WorkloadRef`] names.
///
/// # Examples
/// ```
/// use ops_core::WorkloadKind;
/// assert_eq!("deployment".parse::<WorkloadKind>()?, WorkloadKind::Deployment);
/// assert_eq!(WorkloadKind::StatefulSet.to_string(), "statefulset");
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WorkloadKind {
    /// A Kubernetes Deployment.
    Deployment,
    /// A Kubernetes StatefulSet.
    StatefulSet,
    /// A Kubernetes DaemonSet.
    DaemonSet,
    /// A Docker Compose service.
    Service,
}

impl WorkloadKind {
    /// The lowercase name used in refs, e.g. `"deployment"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::StatefulSet => "statefulset",
            Self::DaemonSet => "daemonset",
            Self::Service => "service",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkloadKind {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "deployment" | "deploy" => Ok(Self::Deployment),
            "statefulset" | "sts" => Ok(Self::StatefulSet),
            "daemonset" | "ds" => Ok(Self::DaemonSet),
            "service" | "svc" => Ok(Self::Service),
            _ => Err(invalid(
                "workload_kind",
                s,
                "expected deployment, statefulset, daemonset or service",
            )),
        }
    }
}

/// A workload on a platform, written `namespace/kind/name`.
///
/// For Kubernetes the namespace is the Kubernetes namespace; for Docker Compose it is the
/// project name and the kind is [`WorkloadKind::Service`].
///
/// # Examples
/// ```
/// use ops_core::{WorkloadKind, WorkloadRef};
/// let api = WorkloadRef::new("prod", WorkloadKind::Deployment, "api")?;
/// assert_eq!(api.to_string(), "prod/deployment/api");
/// assert_eq!("prod/deployment/api".parse::<WorkloadRef>()?, api);
/// assert!(WorkloadRef::new("prod", WorkloadKind::Deployment, "api/../x").is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkloadRef {
    namespace: Namespace,
    kind: WorkloadKind,
    name: ResourceName,
}

impl WorkloadRef {
    /// Validate and build a workload ref.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] unless the namespace and name are valid
    /// ([`Namespace`], [`ResourceName`]).
    pub fn new(namespace: &str, kind: WorkloadKind, name: &str) -> Result<Self, OpsError> {
        Ok(Self {
            namespace: Namespace::new(namespace)?,
            kind,
            name: ResourceName::new(name)?,
        })
    }

    /// A compose service: `project/service/name`.
    ///
    /// # Errors
    /// As [`WorkloadRef::new`].
    ///
    /// # Examples
    /// ```
    /// let api = ops_core::WorkloadRef::compose_service("shop", "api")?;
    /// assert_eq!(api.to_string(), "shop/service/api");
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn compose_service(project: &str, service: &str) -> Result<Self, OpsError> {
        Self::new(project, WorkloadKind::Service, service)
    }

    /// The namespace (Kubernetes namespace or compose project).
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The kind of workload.
    pub fn kind(&self) -> WorkloadKind {
        self.kind
    }

    /// The workload's name.
    pub fn name(&self) -> &ResourceName {
        &self.name
    }

    /// A ref to one instance (pod or container) of this workload.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `instance` is not a valid [`ResourceName`].
    ///
    /// # Examples
    /// ```
    /// let api = ops_core::WorkloadRef::compose_service("shop", "api")?;
    /// let one = api.instance("shop-api-1")?;
    /// assert_eq!(one.to_string(), "shop/service/api/shop-api-1");
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn instance(&self, instance: &str) -> Result<InstanceRef, OpsError> {
        Ok(InstanceRef {
            workload: self.clone(),
            name: ResourceName::new(instance)?,
        })
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind, self.name)
    }
}

impl FromStr for WorkloadRef {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(ns), Some(kind), Some(name), None) => Self::new(ns, kind.parse()?, name),
            _ => Err(invalid("workload_ref", s, "expected namespace/kind/name")),
        }
    }
}
string_serde!(WorkloadRef);

/// One instance of a workload (a pod or a container), written `namespace/kind/name/instance`.
///
/// # Examples
/// ```
/// let pod: ops_core::InstanceRef = "prod/deployment/api/api-7f9c-x2".parse()?;
/// assert_eq!(pod.name().as_str(), "api-7f9c-x2");
/// assert_eq!(pod.workload().to_string(), "prod/deployment/api");
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceRef {
    workload: WorkloadRef,
    name: ResourceName,
}

impl InstanceRef {
    /// The workload this instance belongs to.
    pub fn workload(&self) -> &WorkloadRef {
        &self.workload
    }

    /// The instance's own name (pod or container name).
    pub fn name(&self) -> &ResourceName {
        &self.name
    }
}

impl fmt::Display for InstanceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.workload, self.name)
    }
}

impl FromStr for InstanceRef {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.rsplit_once('/') {
            Some((workload, name)) => workload.parse::<WorkloadRef>()?.instance(name),
            None => Err(invalid(
                "instance_ref",
                s,
                "expected namespace/kind/name/instance",
            )),
        }
    }
}
string_serde!(InstanceRef);

/// A SQL identifier (database, schema, table, index, role), always quoted when rendered.
///
/// 1–63 bytes (PostgreSQL's `NAMEDATALEN - 1`; longer names would be silently truncated by the
/// server) and no control characters. Anything else is allowed because [`Identifier::quoted`]
/// doubles embedded quotes: `users; DROP TABLE x` becomes one harmless quoted name.
///
/// # Examples
/// ```
/// let t = ops_core::Identifier::new(r#"we"ird; DROP TABLE x"#)?;
/// assert_eq!(t.quoted(), r#""we""ird; DROP TABLE x""#);
/// assert!(ops_core::Identifier::new(&"x".repeat(64)).is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Identifier(String);

impl Identifier {
    /// Validate an identifier.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when empty, longer than 63 bytes or containing a
    /// control character (including NUL).
    pub fn new(name: &str) -> Result<Self, OpsError> {
        if name.is_empty() {
            return Err(invalid("identifier", name, "an identifier cannot be empty"));
        }
        if name.len() > 63 {
            return Err(invalid(
                "identifier",
                name,
                "an identifier is at most 63 bytes (PostgreSQL would truncate it)",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid(
                "identifier",
                name,
                "an identifier cannot contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The raw name, unquoted (for parameters and display).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier, safe to splice into a statement.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0.replace('"', "\"\""))
    }
}

validated_str_newtype!(Identifier);

/// A table, optionally schema-qualified, written `schema.table` or `table`.
///
/// Parsing splits on the first `.`; build with [`TableRef::new`] for names containing dots.
///
/// # Examples
/// ```
/// let t: ops_core::TableRef = "public.events".parse()?;
/// assert_eq!(t.quoted(), r#""public"."events""#);
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TableRef {
    schema: Option<Identifier>,
    table: Identifier,
}

impl TableRef {
    /// A table in an optional schema.
    pub fn new(schema: Option<Identifier>, table: Identifier) -> Self {
        Self { schema, table }
    }

    /// The schema, when qualified.
    pub fn schema(&self) -> Option<&Identifier> {
        self.schema.as_ref()
    }

    /// The table name.
    pub fn table(&self) -> &Identifier {
        &self.table
    }

    /// The quoted, qualified name, safe to splice into a statement.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", schema.quoted(), self.table.quoted()),
            None => self.table.quoted(),
        }
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => write!(f, "{}", self.table),
        }
    }
}

impl FromStr for TableRef {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('.') {
            Some((schema, table)) => Ok(Self::new(
                Some(Identifier::new(schema)?),
                Identifier::new(table)?,
            )),
            None => Ok(Self::new(None, Identifier::new(s)?)),
        }
    }
}
string_serde!(TableRef);

/// A Redis key pattern (glob: `*`, `?`, `[...]`, `\` escapes).
///
/// A pattern that would match every key (`*`, `**`, …) is refused by [`KeyPattern::new`]; it
/// needs the explicit [`KeyPattern::match_all`]. [`KeyPattern::prefix`] escapes glob specials so a
/// literal prefix stays literal.
///
/// # Examples
/// ```
/// use ops_core::KeyPattern;
/// let sessions = KeyPattern::new("session:*")?;
/// assert!(sessions.matches("session:42"));
/// assert!(!sessions.matches("user:42"));
/// assert!(KeyPattern::new("*").is_err());
/// assert_eq!(KeyPattern::prefix("cache[v2]:").as_str(), r"cache\[v2\]:*");
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyPattern {
    pattern: String,
}

impl KeyPattern {
    /// Validate a pattern that does not match everything.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when empty, longer than 1024 bytes, containing a control
    /// character, or matching every key (use [`KeyPattern::match_all`] for that).
    pub fn new(pattern: &str) -> Result<Self, OpsError> {
        if pattern.is_empty() {
            return Err(invalid(
                "key_pattern",
                pattern,
                "a key pattern cannot be empty",
            ));
        }
        if pattern.len() > 1024 {
            return Err(invalid(
                "key_pattern",
                pattern,
                "a key pattern is at most 1024 bytes",
            ));
        }
        if pattern.chars().any(char::is_control) {
            return Err(invalid(
                "key_pattern",
                pattern,
                "a key pattern cannot contain control characters",
            ));
        }
        if pattern.chars().all(|c| c == '*') {
            return Err(invalid(
                "key_pattern",
                pattern,
                "this pattern matches every key; use KeyPattern::match_all() to say so explicitly",
            ));
        }
        Ok(Self {
            pattern: pattern.to_owned(),
        })
    }

    /// The pattern `*`, matching every key. Only this constructor makes it.
    pub fn match_all() -> Self {
        Self {
            pattern: "*".to_owned(),
        }
    }

    /// Every key starting with the literal `prefix` (glob specials in it are escaped).
    pub fn prefix(prefix: &str) -> Self {
        let mut pattern = Self::escape(prefix);
        pattern.push('*');
        Self { pattern }
    }

    /// Escape `*`, `?`, `[`, `]` and `\` so `literal` matches only itself.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(ops_core::KeyPattern::escape("a*b?"), r"a\*b\?");
    /// ```
    pub fn escape(literal: &str) -> String {
        let mut out = String::with_capacity(literal.len());
        for c in literal.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    /// Whether this pattern matches every key.
    pub fn is_match_all(&self) -> bool {
        self.pattern.chars().all(|c| c == '*')
    }

    /// The pattern text, as sent to `SCAN MATCH`.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `key` matches, with Redis's glob rules (used by fakes and client-side filters).
    pub fn matches(&self, key: &str) -> bool {
        let p: Vec<char> = self.pattern.chars().collect();
        let k: Vec<char> = key.chars().collect();
        glob_match(&p, &k)
    }
}

/// Redis-style glob matching (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
fn glob_match(p: &[char], k: &[char]) -> bool {
    let (mut pi, mut ki) = (0, 0);
    // Position to resume from after the last `*`: (pattern index after star, key index).
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ki));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => class_match(&p[pi..], k[ki]),
            Some('\\') if pi + 1 < p.len() => (p[pi + 1] == k[ki]).then_some(2),
            Some(c) => (*c == k[ki]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ki += 1;
            }
            None => match star {
                Some((sp, sk)) => {
                    pi = sp;
                    ki = sk + 1;
                    star = Some((sp, sk + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Match one char against a `[...]` class at the start of `p`; returns the class length.
fn class_match(p: &[char], c: char) -> Option<usize> {
    let mut i = 1;
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        match p.get(i) {
            None => {
                // Unterminated class: Redis treats the end of pattern as the end of the class.
                return (matched != negate).then_some(i);
            }
            Some(']') => {
                i += 1;
                break;
            }
            Some('\\') if i + 1 < p.len() => {
                matched |= p[i + 1] == c;
                i += 2;
            }
            Some(lo) if p.get(i + 1) == Some(&'-') && i + 2 < p.len() && p[i + 2] != ']' => {
                let hi = p[i + 2];
                let (lo, hi) = if *lo <= hi { (*lo, hi) } else { (hi, *lo) };
                matched |= lo <= c && c <= hi;
                i += 3;
            }
            Some(x) => {
                matched |= *x == c;
                i += 1;
            }
        }
    }
    (matched != negate).then_some(i)
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl FromStr for KeyPattern {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}
string_serde!(KeyPattern);

/// A database server process id (a PostgreSQL backend pid), always positive.
///
/// # Examples
/// ```
/// let pid = ops_core::Pid::new(4242)?;
/// assert_eq!(pid.get(), 4242);
/// assert!(ops_core::Pid::new(0).is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub struct Pid(i32);

impl Pid {
    /// Validate a pid.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] unless `pid > 0`.
    pub fn new(pid: i32) -> Result<Self, OpsError> {
        if pid > 0 {
            Ok(Self(pid))
        } else {
            Err(invalid(
                "pid",
                &pid.to_string(),
                "a pid is a positive integer",
            ))
        }
    }

    /// The pid as an integer.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl TryFrom<i32> for Pid {
    type Error = OpsError;
    fn try_from(value: i32) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Pid> for i32 {
    fn from(value: Pid) -> Self {
        value.0
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Pid {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s
            .parse::<i32>()
            .map_err(|_| invalid("pid", s, "a pid is a positive integer"))?;
        Self::new(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_round_trip_through_display_fromstr_and_serde() {
        let w: WorkloadRef = "prod/statefulset/db".parse().unwrap();
        assert_eq!(w.to_string().parse::<WorkloadRef>().unwrap(), w);
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, "\"prod/statefulset/db\"");
        assert_eq!(serde_json::from_str::<WorkloadRef>(&json).unwrap(), w);
        let i = w.instance("db-0").unwrap();
        assert_eq!(i.to_string().parse::<InstanceRef>().unwrap(), i);
        let t: TableRef = "public.users".parse().unwrap();
        assert_eq!(t.to_string().parse::<TableRef>().unwrap(), t);
        let p = KeyPattern::new("session:*").unwrap();
        assert_eq!(
            serde_json::from_str::<KeyPattern>(&serde_json::to_string(&p).unwrap()).unwrap(),
            p
        );
    }

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [
            "", "a b", "a/b", "a;b", "$(x)", "`x`", "-a", "a-", "..", "ü", "a\nb",
        ] {
            assert!(ResourceName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(serde_json::from_str::<WorkloadRef>("\"prod/deployment/a;b\"").is_err());
        assert!("prod/deployment".parse::<WorkloadRef>().is_err());
        assert!("prod/pod/x".parse::<WorkloadRef>().is_err());
        assert!(Namespace::new(&"a".repeat(64)).is_err());
    }

    #[test]
    fn sql_identifiers_quote_hostile_input() {
        let id = Identifier::new("users; DROP TABLE x").unwrap();
        assert_eq!(id.quoted(), "\"users; DROP TABLE x\"");
        assert_eq!(Identifier::new("a\"b").unwrap().quoted(), "\"a\"\"b\"");
        assert!(Identifier::new("bad\0nul").is_err());
        assert!(Identifier::new("").is_err());
        // 64 bytes of multi-byte unicode chars is too long even though it is 32 chars.
        assert!(Identifier::new(&"é".repeat(32)).is_err());
        assert!(Identifier::new(&"é".repeat(31)).is_ok());
    }

    #[test]
    fn match_all_patterns_need_explicit_opt_in() {
        for p in ["*", "**", "***"] {
            assert!(KeyPattern::new(p).is_err());
        }
        assert!(KeyPattern::match_all().is_match_all());
        assert!(!KeyPattern::new("a*").unwrap().is_match_all());
    }

    #[test]
    fn glob_matching_follows_redis_rules() {
        let m = |p: &str, k: &str| {
            KeyPattern {
                pattern: p.to_owned(),
            }
            .matches(k)
        };
        assert!(m("session:*", "session:"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-c]llo", "hbllo"));
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(m("*:*:end", "a:b:c:end"));
        assert!(!m("*:*:end", "a:end"));
        let literal = KeyPattern::prefix("cache[v2]:");
        assert!(literal.matches("cache[v2]:x"));
        assert!(!literal.matches("cachev:x"));
    }
}
