//! Validated typed references: workloads, instances, SQL identifiers, cache key patterns, pids.
//!
//! Every ref validates in its constructor, `Display` and `FromStr` round-trip, and serde goes
//! through them, so an invalid name never reaches a backend.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::OpsError;
use crate::names::{NameRule, is_shaped};

fn invalid(what: &'static str, value: &str, why: impl Into<String>) -> OpsError {
    // `OpsError::invalid` quotes (shortens and escapes) the value.
    OpsError::invalid(what, value, why)
}

pub use crate::names::{is_dns1123_label, is_dns1123_subdomain};

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
/// 1–63 characters: lowercase ASCII letters, digits, `-` and `_`, starting with a letter or
/// digit: a compose project name ([`NameRule::ComposeProject`]), of which Kubernetes
/// namespaces ([`NameRule::Dns1123Label`]) are a part. [`WorkloadRef`] checks the rule of
/// its kind: a Kubernetes workload's namespace has no `_` and ends with a letter or digit.
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
        if NameRule::ComposeProject.check(name) || NameRule::Dns1123Label.check(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(invalid(
                "namespace",
                name,
                "a namespace is 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
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
/// 1–253 ASCII letters, digits, `-`, `.` or `_`, starting and ending with a letter or digit:
/// the names every supported system shares a shape with. No `/`, spaces, quotes or shell
/// metacharacters can get through. [`WorkloadRef`] and [`InstanceRef`] further check the rule
/// of the kind they name ([`WorkloadKind::name_rule`]): a Deployment's name is a DNS-1123
/// subdomain (no uppercase, no `_`), a compose service follows compose's rule.
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
        let ok = is_shaped(name.as_bytes(), 253, |c| {
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
    /// Whether this kind lives on Kubernetes (every kind but [`WorkloadKind::Service`]).
    pub fn is_kubernetes(self) -> bool {
        !matches!(self, Self::Service)
    }

    /// The rule a namespace of this kind follows: a DNS-1123 label on Kubernetes, a compose
    /// project name for [`WorkloadKind::Service`].
    ///
    /// # Examples
    /// ```
    /// use ops_core::{WorkloadKind, names::NameRule};
    /// assert_eq!(WorkloadKind::Deployment.namespace_rule(), NameRule::Dns1123Label);
    /// assert_eq!(WorkloadKind::Service.namespace_rule(), NameRule::ComposeProject);
    /// ```
    pub fn namespace_rule(self) -> NameRule {
        if self.is_kubernetes() {
            NameRule::Dns1123Label
        } else {
            NameRule::ComposeProject
        }
    }

    /// The rule a workload name of this kind follows: a DNS-1123 subdomain for Deployments,
    /// StatefulSets and DaemonSets, a compose service name for [`WorkloadKind::Service`].
    pub fn name_rule(self) -> NameRule {
        if self.is_kubernetes() {
            NameRule::Dns1123Subdomain
        } else {
            NameRule::ComposeService
        }
    }

    /// The rule an instance name of this kind follows: a pod name (DNS-1123 subdomain) or a
    /// container name.
    pub fn instance_rule(self) -> NameRule {
        if self.is_kubernetes() {
            NameRule::Dns1123Subdomain
        } else {
            NameRule::ContainerName
        }
    }

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
    /// ([`Namespace`], [`ResourceName`]) and follow the rules of `kind`
    /// ([`WorkloadKind::namespace_rule`], [`WorkloadKind::name_rule`]).
    ///
    /// # Examples
    /// ```
    /// use ops_core::{WorkloadKind, WorkloadRef};
    /// assert!(WorkloadRef::new("prod", WorkloadKind::Deployment, "API_v2").is_err());
    /// assert!(WorkloadRef::new("prod", WorkloadKind::Service, "API_v2").is_ok());
    /// assert!(WorkloadRef::new("my_ns", WorkloadKind::Deployment, "api").is_err());
    /// ```
    pub fn new(namespace: &str, kind: WorkloadKind, name: &str) -> Result<Self, OpsError> {
        let namespace = Namespace::new(namespace)?;
        let name = ResourceName::new(name)?;
        for (value, rule) in [
            (namespace.as_str(), kind.namespace_rule()),
            (name.as_str(), kind.name_rule()),
        ] {
            if !rule.check(value) {
                return Err(invalid(
                    "workload_ref",
                    value,
                    format!("a {kind} needs {}", rule.describe()),
                ));
            }
        }
        Ok(Self {
            namespace,
            kind,
            name,
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
    /// [`crate::ErrorKind::InvalidInput`] when `instance` is not a valid [`ResourceName`] or
    /// breaks the rule of this workload's kind ([`WorkloadKind::instance_rule`]).
    ///
    /// # Examples
    /// ```
    /// let api = ops_core::WorkloadRef::compose_service("shop", "api")?;
    /// let one = api.instance("shop-api-1")?;
    /// assert_eq!(one.to_string(), "shop/service/api/shop-api-1");
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn instance(&self, instance: &str) -> Result<InstanceRef, OpsError> {
        let name = ResourceName::new(instance)?;
        let rule = self.kind.instance_rule();
        if !rule.check(instance) {
            return Err(invalid(
                "instance_ref",
                instance,
                format!("an instance of a {} needs {}", self.kind, rule.describe()),
            ));
        }
        Ok(InstanceRef {
            workload: self.clone(),
            name,
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
/// A part containing a `.` (or starting with `"`) is written in double quotes, with inner
/// quotes doubled, as SQL does: `"my.schema".events`. So `Display` and `FromStr` (and serde)
/// round-trip every table, whatever its names contain.
///
/// # Examples
/// ```
/// use ops_core::{Identifier, TableRef};
/// let t: TableRef = "public.events".parse()?;
/// assert_eq!(t.quoted(), r#""public"."events""#);
/// let dotted = TableRef::new(Some(Identifier::new("a.b")?), Identifier::new("c")?);
/// assert_eq!(dotted.to_string(), r#""a.b".c"#);
/// assert_eq!(dotted.to_string().parse::<TableRef>()?, dotted);
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

/// Writes one part of a table name, quoted when it would not read back on its own.
fn write_part(f: &mut fmt::Formatter<'_>, id: &Identifier) -> fmt::Result {
    let name = id.as_str();
    if name.contains('.') || name.starts_with('"') {
        write!(f, "\"{}\"", name.replace('"', "\"\""))
    } else {
        f.write_str(name)
    }
}

/// Reads one part of a table name (quoted or bare) from the start of `s`; returns it and
/// what follows.
fn read_part<'a>(whole: &str, s: &'a str) -> Result<(Identifier, &'a str), OpsError> {
    let Some(quoted) = s.strip_prefix('"') else {
        let end = s.find('.').unwrap_or(s.len());
        return Ok((Identifier::new(&s[..end])?, &s[end..]));
    };
    let mut name = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            name.push(c);
        } else if quoted[i + 1..].starts_with('"') {
            name.push('"');
            chars.next();
        } else {
            return Ok((Identifier::new(&name)?, &quoted[i + 1..]));
        }
    }
    Err(invalid("table_ref", whole, "unterminated quoted name"))
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write_part(f, schema)?;
            f.write_str(".")?;
        }
        write_part(f, &self.table)
    }
}

impl FromStr for TableRef {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (first, rest) = read_part(s, s)?;
        if rest.is_empty() {
            return Ok(Self::new(None, first));
        }
        let Some(rest) = rest.strip_prefix('.') else {
            return Err(invalid("table_ref", s, "expected `.` after a quoted name"));
        };
        let (table, rest) = read_part(s, rest)?;
        if rest.is_empty() {
            Ok(Self::new(Some(first), table))
        } else {
            Err(invalid(
                "table_ref",
                s,
                "expected schema.table; write a name containing a dot in double quotes",
            ))
        }
    }
}
string_serde!(TableRef);

/// A Redis key pattern (glob: `*`, `?`, `[...]`, `\` escapes), matched byte by byte exactly
/// as the server's `SCAN … MATCH` does ([`KeyPattern::matches_bytes`]).
///
/// A pattern that matches every key by meaning (`*`, `**`, `?*`, `*?*`, `[^]*`: a `*` and
/// nothing that constrains a character) is refused by [`KeyPattern::new`] and
/// [`KeyPattern::prefix`]; it needs the explicit [`KeyPattern::match_all`], whose text `*` is
/// also what `FromStr` and serde read back (and runbooks that purge refuse it unless their
/// configuration allows it). [`KeyPattern::prefix`] escapes glob specials so a literal prefix
/// stays literal. Everything accepted round-trips through `Display`/`FromStr` and serde.
///
/// # Examples
/// ```
/// use ops_core::KeyPattern;
/// let sessions = KeyPattern::new("session:*")?;
/// assert!(sessions.matches("session:42"));
/// assert!(!sessions.matches("user:42"));
/// assert!(KeyPattern::new("*").is_err());
/// assert!(KeyPattern::new("?*").is_err());
/// assert_eq!(KeyPattern::prefix("cache[v2]:")?.as_str(), r"cache\[v2\]:*");
/// assert!(KeyPattern::prefix("").is_err());
/// assert_eq!("*".parse::<KeyPattern>()?, KeyPattern::match_all());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyPattern {
    pattern: String,
}

impl KeyPattern {
    /// The longest pattern accepted, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Validate a pattern that does not match everything.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when empty, longer than [`KeyPattern::MAX_LEN`]
    /// bytes, containing a control character, holding a class range with an end outside
    /// ASCII (`[a-é]`: Redis reads such ranges differently on x86-64 and ARM), or matching
    /// every key (use [`KeyPattern::match_all`] for that).
    pub fn new(pattern: &str) -> Result<Self, OpsError> {
        if pattern.is_empty() {
            return Err(invalid(
                "key_pattern",
                pattern,
                "a key pattern cannot be empty",
            ));
        }
        if pattern.len() > Self::MAX_LEN {
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
        if !Class::ascii_ranges(pattern.as_bytes()) {
            return Err(invalid(
                "key_pattern",
                pattern,
                "a range in [...] must have ASCII ends (Redis compares other bytes differently on different CPUs)",
            ));
        }
        if matches_every_key(pattern.as_bytes()) {
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

    /// The pattern `*`, matching every key. Only this constructor (and parsing its text `*`)
    /// makes a pattern that matches every key.
    pub fn match_all() -> Self {
        Self {
            pattern: "*".to_owned(),
        }
    }

    /// Every key starting with the literal `prefix` (glob specials in it are escaped).
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when `prefix` is empty (that would match every key),
    /// contains a control character, or makes a pattern longer than [`KeyPattern::MAX_LEN`].
    ///
    /// # Examples
    /// ```
    /// let p = ops_core::KeyPattern::prefix("a*b:")?;
    /// assert!(p.matches("a*b:1") && !p.matches("axb:1"));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn prefix(prefix: &str) -> Result<Self, OpsError> {
        if prefix.is_empty() {
            return Err(invalid(
                "key_pattern",
                prefix,
                "an empty prefix matches every key; use KeyPattern::match_all() to say so explicitly",
            ));
        }
        let mut pattern = Self::escape(prefix);
        pattern.push('*');
        Self::new(&pattern)
    }

    /// A pattern built from a literal the caller knows is valid (e.g. `session:*`).
    pub(crate) fn trusted(pattern: &str) -> Self {
        debug_assert!(Self::new(pattern).is_ok(), "untrusted pattern {pattern}");
        Self {
            pattern: pattern.to_owned(),
        }
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

    /// Whether this pattern matches every key (only [`KeyPattern::match_all`]'s does).
    pub fn is_match_all(&self) -> bool {
        matches_every_key(self.pattern.as_bytes())
    }

    /// The pattern text, as sent to `SCAN MATCH`.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `key` matches, exactly as `SCAN … MATCH` decides it (used by fakes, dry runs
    /// and client-side filters). See [`KeyPattern::matches_bytes`].
    ///
    /// # Examples
    /// ```
    /// let p = ops_core::KeyPattern::new("h?llo")?;
    /// assert!(p.matches("hello"));
    /// // `?` is one byte, as in Redis: `é` is two.
    /// assert!(!p.matches("héllo"));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn matches(&self, key: &str) -> bool {
        self.matches_bytes(key.as_bytes())
    }

    /// Whether the binary `key` matches, with Redis's own rules (`stringmatchlen`): the
    /// pattern and the key are compared byte by byte (`?` and a class match one byte, not
    /// one character), an unterminated class runs to the end of the pattern, `[a-]` is a
    /// range ending in `]`, and the empty key matches nothing except `*` (which `SCAN`
    /// does not even compare). Checked against a real server's `SCAN … MATCH` by a property
    /// test.
    ///
    /// # Examples
    /// ```
    /// let p = ops_core::KeyPattern::new("user:[^0-9]*")?;
    /// assert!(p.matches_bytes(b"user:\xff\x00"));
    /// assert!(!p.matches_bytes(b"user:7"));
    /// assert!(ops_core::KeyPattern::match_all().matches_bytes(b""));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn matches_bytes(&self, key: &[u8]) -> bool {
        // SCAN skips matching altogether for the pattern `*`.
        self.pattern == "*" || glob_match(self.pattern.as_bytes(), key)
    }
}

/// Whether `p` matches every key long enough: it has a `*` and nothing else in it constrains
/// a byte (`?`, and classes such as `[^]` that admit every byte).
fn matches_every_key(p: &[u8]) -> bool {
    let mut star = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => {
                star = true;
                i += 1;
            }
            b'?' => i += 1,
            b'[' => {
                let class = Class::parse(&p[i..]);
                if !(0..=u8::MAX).all(|b| class.matches(b)) {
                    return false;
                }
                i += class.len;
            }
            _ => return false,
        }
    }
    star
}

/// Redis's glob matching (`stringmatchlen` in `util.c`) over bytes: `*`, `?` (one byte),
/// `[abc]`, `[^a-z]`, `\x`. A key of no bytes matches nothing (Redis's loop never starts);
/// `SCAN`'s special case for the pattern `*` alone is [`KeyPattern::matches_bytes`]'s.
fn glob_match(p: &[u8], k: &[u8]) -> bool {
    if k.is_empty() {
        return p.is_empty();
    }
    let (mut pi, mut ki) = (0, 0);
    // Position to resume from after the last `*`: (pattern index after star, key index).
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi + 1, ki));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => {
                let class = Class::parse(&p[pi..]);
                class.matches(k[ki]).then_some(class.len)
            }
            Some(b'\\') if pi + 1 < p.len() => (p[pi + 1] == k[ki]).then_some(2),
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
    p[pi..].iter().all(|c| *c == b'*')
}

/// A `[...]` class at the start of a pattern, read byte by byte as Redis reads it.
struct Class {
    /// Pattern bytes it spans, brackets included (an unterminated class runs to the end).
    len: usize,
    negate: bool,
    /// Inclusive byte ranges; a single byte is a range of one.
    ranges: Vec<(u8, u8)>,
    /// Whether a range has an end outside ASCII (see [`Class::ascii_ranges`]).
    wide_range: bool,
}

impl Class {
    fn parse(p: &[u8]) -> Self {
        let mut i = 1;
        let negate = p.get(i) == Some(&b'^');
        if negate {
            i += 1;
        }
        let mut ranges = Vec::new();
        let mut wide_range = false;
        loop {
            match p.get(i) {
                // Redis treats the end of the pattern as the end of an unterminated class.
                None => {
                    return Self {
                        len: i,
                        negate,
                        ranges,
                        wide_range,
                    };
                }
                // `\` escapes the next byte (a `\` at the very end is itself).
                Some(b'\\') if i + 1 < p.len() => {
                    ranges.push((p[i + 1], p[i + 1]));
                    i += 2;
                }
                Some(b']') => {
                    return Self {
                        len: i + 1,
                        negate,
                        ranges,
                        wide_range,
                    };
                }
                // `x-y` needs two more bytes, whatever they are: `[a-]` is the range from
                // `]` to `a` and leaves the class open, as in Redis.
                Some(&lo) if i + 2 < p.len() && p[i + 1] == b'-' => {
                    let hi = p[i + 2];
                    wide_range |= !lo.is_ascii() || !hi.is_ascii();
                    ranges.push((lo.min(hi), lo.max(hi)));
                    i += 3;
                }
                Some(&x) => {
                    ranges.push((x, x));
                    i += 1;
                }
            }
        }
    }

    fn matches(&self, b: u8) -> bool {
        let inside = self.ranges.iter().any(|&(lo, hi)| lo <= b && b <= hi);
        inside != self.negate
    }

    /// Whether every range of the pattern's classes has ASCII ends. Redis compares a range's
    /// ends as C `char`s, which are signed on x86-64 and unsigned on ARM: a range with a
    /// byte of 0x80 or above matches different keys on different servers, so no plan could
    /// promise what it deletes.
    fn ascii_ranges(p: &[u8]) -> bool {
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'\\' => i += 2,
                b'[' => {
                    let class = Self::parse(&p[i..]);
                    if class.wide_range {
                        return false;
                    }
                    i += class.len;
                }
                _ => i += 1,
            }
        }
        true
    }
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl FromStr for KeyPattern {
    type Err = OpsError;
    /// Parses a pattern as [`KeyPattern::new`] does, except that `*`, the text of
    /// [`KeyPattern::match_all`], reads back as it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            Ok(Self::match_all())
        } else {
            Self::new(s)
        }
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
        for p in [
            "*", "**", "***", "?*", "*?", "*?*", "[^]*", "??*", "*[^]", "[^]**?", "*[^",
        ] {
            assert!(KeyPattern::new(p).is_err(), "{p:?} accepted");
        }
        assert!(KeyPattern::prefix("").is_err());
        assert!(KeyPattern::match_all().is_match_all());
        for p in ["a*", "?", "*a", "[ab]*", "[^a]*", r"\**", "[a-z]*", "[^*"] {
            let k = KeyPattern::new(p).unwrap();
            assert!(!k.is_match_all(), "{p:?}");
        }
        let all = KeyPattern::match_all();
        assert_eq!(all.to_string().parse::<KeyPattern>().unwrap(), all);
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(serde_json::from_str::<KeyPattern>(&json).unwrap(), all);
    }

    #[test]
    fn prefix_validates_what_it_builds() {
        assert!(KeyPattern::prefix(r"a\nb").is_ok());
        assert!(KeyPattern::prefix("a\nb").is_err());
        assert!(KeyPattern::prefix("a\u{1b}b").is_err());
        assert!(KeyPattern::prefix(&"x".repeat(KeyPattern::MAX_LEN)).is_err());
        let p = KeyPattern::prefix("we*rd[").unwrap();
        assert_eq!(p.to_string().parse::<KeyPattern>().unwrap(), p);
    }

    #[test]
    fn names_follow_the_rule_of_their_kind() {
        for bad in [
            "prod/deployment/API",
            "prod/deployment/a_b",
            "my_ns/deployment/api",
            "ns-/statefulset/db",
            "prod/deployment/a..b",
        ] {
            assert!(bad.parse::<WorkloadRef>().is_err(), "{bad} accepted");
        }
        for good in [
            "prod/deployment/api.v2",
            "shop_prod/service/API_v2",
            "shop/service/a..b",
        ] {
            let w: WorkloadRef = good.parse().unwrap();
            assert_eq!(w.to_string(), good);
        }
        let api: WorkloadRef = "prod/deployment/api".parse().unwrap();
        assert!(api.instance("Api-1").is_err());
        let svc: WorkloadRef = "shop/service/api".parse().unwrap();
        assert!(svc.instance("Shop_API_1").is_ok());
        let err = WorkloadRef::new("prod", WorkloadKind::Deployment, &"A".repeat(200)).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }

    #[test]
    fn tables_with_dots_round_trip() {
        let id = |s: &str| Identifier::new(s).unwrap();
        for t in [
            TableRef::new(Some(id("a.b")), id("c")),
            TableRef::new(Some(id("a")), id("b.c")),
            TableRef::new(None, id("x.y")),
            TableRef::new(Some(id("\"q")), id("t\"\"")),
            TableRef::new(None, id("\"")),
        ] {
            let text = t.to_string();
            assert_eq!(text.parse::<TableRef>().unwrap(), t, "{text}");
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<TableRef>(&json).unwrap(), t);
        }
        assert!("a.b.c".parse::<TableRef>().is_err());
        assert!("\"a.b".parse::<TableRef>().is_err());
        assert_eq!(
            "public.users".parse::<TableRef>().unwrap(),
            TableRef::new(Some(id("public")), id("users"))
        );
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
        let literal = KeyPattern::prefix("cache[v2]:").unwrap();
        assert!(literal.matches("cache[v2]:x"));
        assert!(!literal.matches("cachev:x"));
    }

    #[test]
    fn glob_matching_compares_bytes_as_redis_does() {
        let m = |p: &str, k: &[u8]| {
            KeyPattern {
                pattern: p.to_owned(),
            }
            .matches_bytes(k)
        };
        // `?` and classes take one byte; `é` is two.
        assert!(!m("h?llo", "héllo".as_bytes()));
        assert!(m("h??llo", "héllo".as_bytes()));
        assert!(!m("[é]", "é".as_bytes()));
        assert!(m("[é]", b"\xc3"));
        assert!(m("[é][é]", "é".as_bytes()));
        // `[a-]` is the range `]`..`a`, and the class stays open to the end.
        assert!(m("x[a-]", b"x^"));
        assert!(!m("x[a-]", b"x-"));
        assert!(m("x[a-]b", b"xb"));
        // An unterminated class runs to the end; `[^` alone admits every byte.
        assert!(m("x[ab", b"xb"));
        assert!(m("x[^", b"x\xff"));
        assert!(!m("x[", b"x["));
        // A backslash at the end is itself.
        assert!(m("x\\", b"x\\"));
        // The empty key matches nothing but `*` (which SCAN never compares).
        assert!(!m("a*", b""));
        assert!(KeyPattern::match_all().matches_bytes(b""));
    }

    #[test]
    fn ranges_with_non_ascii_ends_are_refused() {
        for p in ["[a-\u{e9}]*", "k[\u{e9}-z]", "k[\\\u{e9}-z]"] {
            assert!(KeyPattern::new(p).is_err(), "{p:?} accepted");
        }
        for p in ["[\u{e9}]*", "k[a-z\u{e9}]", "k\\\u{e9}-z"] {
            assert!(KeyPattern::new(p).is_ok(), "{p:?} refused");
        }
    }
}
