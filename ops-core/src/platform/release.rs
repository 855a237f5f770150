//! Releases: an image reference parsed like Docker/OCI references ([`ImageRef`]), the image
//! change [`Platform::set_image`](super::Platform::set_image) applies ([`ImageUpdate`]) and
//! what it changed ([`ImageChange`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, OpsError};
use crate::names::NameRule;

/// The longest name (registry host and path, without tag or digest) a registry accepts.
const NAME_MAX: usize = 255;
/// The longest tag: one word character and at most 127 more.
const TAG_MAX: usize = 128;
/// The longest change cause kept (an annotation value; `kubectl --record` writes a command).
const CAUSE_MAX: usize = 1024;

/// Why a text is not an image reference.
///
/// # Examples
/// ```
/// use ops_core::platform::{ImageRef, ImageRefError};
/// assert_eq!(ImageRef::parse("Shop/API:1").unwrap_err(), ImageRefError::Uppercase);
/// assert_eq!(ImageRef::parse("").unwrap_err(), ImageRefError::Empty);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageRefError {
    /// Nothing was given.
    #[error("an image reference cannot be empty")]
    Empty,
    /// The name (registry and path) is longer than 255 characters.
    #[error("the image name is {len} characters long; registries accept at most 255")]
    NameTooLong {
        /// Its length.
        len: usize,
    },
    /// A path component holds an uppercase letter (repository names are lowercase).
    #[error("repository names must be lowercase")]
    Uppercase,
    /// The registry host or port is malformed.
    #[error(
        "the registry must be a host name or IPv4 address (letters, digits, '-', '.'), optionally with ':' and a port number"
    )]
    InvalidRegistry,
    /// A path component is empty or not lowercase letters and digits joined by `.`, `_`,
    /// `__` or dashes.
    #[error(
        "each '/'-separated path component must be lowercase letters and digits, joined by '.', '_', '__' or '-'"
    )]
    InvalidPath,
    /// The tag is empty, too long or holds a character other than letters, digits, `_`, `.`
    /// and `-` (it starts with a letter, digit or `_`).
    #[error("a tag is 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")]
    InvalidTag,
    /// The digest is not `sha256:` and 64 lowercase hex digits.
    #[error("a digest is 'sha256:' followed by 64 lowercase hexadecimal digits")]
    InvalidDigest,
}

impl From<ImageRefError> for OpsError {
    fn from(err: ImageRefError) -> Self {
        let why = err.to_string();
        OpsError::new(ErrorKind::InvalidInput, "core", "image_ref", "image").with_detail(why)
    }
}

/// A container image reference, `[registry[:port]/]path[:tag][@sha256:digest]`, checked by
/// the grammar Docker and OCI registries use (`distribution/reference`): lowercase path
/// components joined by `.`, `_`, `__` or dashes; the first component is the registry when
/// it holds a `.` or a `:` or is `localhost`; at most 255 characters of name; tags of at most
/// 128 word characters, `.` and `-`; sha256 digests.
///
/// Nothing is added or normalised (no `docker.io/library/`, no `:latest`), so `Display`
/// gives back exactly the accepted text.
///
/// # Examples
/// ```
/// use ops_core::platform::ImageRef;
/// let r: ImageRef = "registry.example.com:5000/shop/api:1.4.2".parse()?;
/// assert_eq!(r.registry(), Some("registry.example.com:5000"));
/// assert_eq!(r.path(), "shop/api");
/// assert_eq!(r.tag(), Some("1.4.2"));
/// assert_eq!(r.to_string(), "registry.example.com:5000/shop/api:1.4.2");
/// assert!("shop/API:1".parse::<ImageRef>().is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    registry: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parse and check a reference.
    ///
    /// # Errors
    /// The [`ImageRefError`] saying which part is wrong.
    ///
    /// # Examples
    /// ```
    /// use ops_core::platform::{ImageRef, ImageRefError};
    /// let r = ImageRef::parse("api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")?;
    /// assert!(r.digest().is_some_and(|d| d.starts_with("sha256:")));
    /// assert_eq!(ImageRef::parse("api:-1"), Err(ImageRefError::InvalidTag));
    /// # Ok::<(), ImageRefError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, ImageRefError> {
        if text.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(check_digest(digest)?)),
            None => (text, None),
        };
        // A tag is what follows the last ':' after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                check_tag(tag)?;
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ImageRefError::InvalidPath);
        }
        if name.len() > NAME_MAX {
            return Err(ImageRefError::NameTooLong { len: name.len() });
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
                check_registry(first)?;
                (Some(first.to_owned()), path)
            }
            _ => (None, name),
        };
        for component in path.split('/') {
            check_component(component)?;
        }
        Ok(Self {
            registry,
            path: path.to_owned(),
            tag,
            digest,
        })
    }

    /// The registry host (and port), when the reference names one.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// The repository path, e.g. `shop/api`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, when given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), when given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The name without tag and digest: `[registry/]path`.
    ///
    /// # Examples
    /// ```
    /// let r: ops_core::platform::ImageRef = "localhost:5000/api:2".parse()?;
    /// assert_eq!(r.name(), "localhost:5000/api");
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn name(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.path),
            None => self.path.clone(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.registry {
            write!(f, "{r}/")?;
        }
        f.write_str(&self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).map_err(|e| {
            let why = e.to_string();
            OpsError::invalid("image_ref", s, why).with_source(e)
        })
    }
}

impl TryFrom<String> for ImageRef {
    type Error = OpsError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ImageRef> for String {
    fn from(value: ImageRef) -> Self {
        value.to_string()
    }
}

fn check_digest(digest: &str) -> Result<String, ImageRefError> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or(ImageRefError::InvalidDigest)?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(digest.to_owned())
    } else {
        Err(ImageRefError::InvalidDigest)
    }
}

fn check_tag(tag: &str) -> Result<(), ImageRefError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    if !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b.iter().all(|&c| word(c) || matches!(c, b'.' | b'-'))
    {
        Ok(())
    } else {
        Err(ImageRefError::InvalidTag)
    }
}

/// `host[:port]`: dot-separated components of letters, digits and inner dashes; digits port.
fn check_registry(registry: &str) -> Result<(), ImageRefError> {
    let (host, port) = match registry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if host.split('.').all(component_ok) && port_ok {
        Ok(())
    } else {
        Err(ImageRefError::InvalidRegistry)
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_component(component: &str) -> Result<(), ImageRefError> {
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ImageRefError::Uppercase);
    }
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return Err(ImageRefError::InvalidPath);
    };
    if !alnum(first) || !alnum(last) {
        return Err(ImageRefError::InvalidPath);
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or a run of '-', followed by an alphanumeric.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return Err(ImageRefError::InvalidPath),
        }
        if i == start || !b.get(i).copied().is_some_and(alnum) {
            return Err(ImageRefError::InvalidPath);
        }
    }
    Ok(())
}

/// A new image for one container of a workload ([`Platform::set_image`](super::Platform::set_image)).
///
/// The container defaults to the workload's only one; with several, name it
/// ([`ImageUpdate::in_container`]). The change cause is recorded where the platform keeps
/// one (Kubernetes: the `kubernetes.io/change-cause` annotation that `kubectl rollout
/// history` shows).
///
/// # Examples
/// ```
/// use ops_core::platform::ImageUpdate;
/// let u = ImageUpdate::new("shop/api:1.5".parse()?)
///     .in_container("api")?
///     .with_change_cause("release 1.5 (CHG-1234)")?;
/// assert_eq!(u.container(), Some("api"));
/// assert_eq!(u.change_cause(), Some("release 1.5 (CHG-1234)"));
/// assert!(ImageUpdate::new("shop/api:1".parse()?).in_container("no spaces").is_err());
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageUpdate {
    /// The image to run.
    pub image: ImageRef,
    container: Option<String>,
    change_cause: Option<String>,
    /// Server-side dry run (only when [`super::PlatformCapabilities::dry_run`]).
    pub dry_run: bool,
}

impl ImageUpdate {
    /// Run `image` in the workload's only container.
    pub fn new(image: ImageRef) -> Self {
        Self {
            image,
            container: None,
            change_cause: None,
            dry_run: false,
        }
    }

    /// Change the container named `name`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when `name` is not a container name (letters, digits,
    /// `.`, `_`, `-`).
    pub fn in_container(mut self, name: &str) -> Result<Self, OpsError> {
        if !NameRule::ComposeService.check(name) {
            return Err(OpsError::invalid(
                "image_update",
                name,
                "a container name is 1-253 letters, digits, '.', '_' or '-', starting and ending with a letter or digit",
            ));
        }
        self.container = Some(name.to_owned());
        Ok(self)
    }

    /// Record why (at most 1024 characters, no control characters).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when it is empty, too long or holds control characters.
    pub fn with_change_cause(mut self, cause: &str) -> Result<Self, OpsError> {
        if cause.trim().is_empty()
            || cause.chars().count() > CAUSE_MAX
            || cause.chars().any(char::is_control)
        {
            return Err(OpsError::invalid(
                "image_update",
                cause,
                "a change cause is 1-1024 characters without control characters",
            ));
        }
        self.change_cause = Some(cause.to_owned());
        Ok(self)
    }

    /// Ask for a server-side dry run.
    #[must_use]
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The container named, when one was.
    pub fn container(&self) -> Option<&str> {
        self.container.as_deref()
    }

    /// The change cause, when given.
    pub fn change_cause(&self) -> Option<&str> {
        self.change_cause.as_deref()
    }

    /// Which of `containers` (the workload's, in order) this update changes: the named one,
    /// or the only one.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when the named container is not among them (kubectl's
    /// `unable to find container named "x"`); [`ErrorKind::InvalidInput`] when none was named
    /// and the workload has several (or none).
    ///
    /// # Examples
    /// ```
    /// use ops_core::platform::ImageUpdate;
    /// let u = ImageUpdate::new("api:2".parse()?);
    /// assert_eq!(u.select_container(&["app"], "k8s", "prod/deployment/api")?, "app");
    /// assert!(u.select_container(&["app", "proxy"], "k8s", "prod/deployment/api").is_err());
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn select_container<'a>(
        &self,
        containers: &[&'a str],
        backend: &'static str,
        workload: &str,
    ) -> Result<&'a str, OpsError> {
        match &self.container {
            Some(wanted) => containers
                .iter()
                .find(|c| **c == wanted.as_str())
                .copied()
                .ok_or_else(|| {
                    OpsError::new(ErrorKind::NotFound, backend, "set_image", workload)
                        .with_detail(format!("unable to find container named {wanted:?}"))
                }),
            None => match containers {
                [only] => Ok(only),
                [] => Err(
                    OpsError::new(ErrorKind::InvalidInput, backend, "set_image", workload)
                        .with_detail("the workload has no containers"),
                ),
                several => {
                    Err(
                        OpsError::new(ErrorKind::InvalidInput, backend, "set_image", workload)
                            .with_detail(format!(
                                "the workload has {} containers ({}): name the one to change",
                                several.len(),
                                several.join(", ")
                            )),
                    )
                }
            },
        }
    }
}

/// What [`Platform::set_image`](super::Platform::set_image) changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImageChange {
    /// The container whose image changed.
    pub container: String,
    /// The image it ran before, as the platform had it.
    pub from: Option<String>,
    /// The image it runs now.
    pub to: ImageRef,
    /// Whether a rollout started (false when the image was already that one, for a paused
    /// Deployment, or in a dry run).
    pub rollout_started: bool,
    /// Where the image must also be written for the change to last, when the platform does
    /// not keep it ([`super::PlatformCapabilities::durable_config`] false: a compose file's
    /// `image:`); `None` when the platform's own state now holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist_in: Option<String>,
}

impl ImageChange {
    /// A change of `container` from `from` to `to`.
    ///
    /// # Examples
    /// ```
    /// let c = ops_core::platform::ImageChange::new("app", Some("api:1".into()), "api:2".parse()?, true);
    /// assert_eq!(c.to.tag(), Some("2"));
    /// # Ok::<(), ops_core::OpsError>(())
    /// ```
    pub fn new(
        container: impl Into<String>,
        from: Option<String>,
        to: ImageRef,
        rollout_started: bool,
    ) -> Self {
        Self {
            container: container.into(),
            from,
            to,
            rollout_started,
            persist_in: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_what_docker_accepts() {
        for ok in [
            "api",
            "shop/api",
            "shop/api:1.4.2",
            "library/redis:7.0-alpine",
            "localhost/api",
            "localhost:5000/api:dev",
            "registry.example.com/team/sub/api:v2",
            "registry.example.com:443/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "api:2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "10.0.0.1:5000/a__b/c-d/e.f/g---h",
            "Registry.Example.com/api",
            "opsbook-demo-api:latest",
            "api:_under",
        ] {
            let r = ImageRef::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(r.to_string(), ok);
        }
        let r = ImageRef::parse("localhost:5000/shop/api:2").unwrap();
        assert_eq!(
            (r.registry(), r.path(), r.tag()),
            (Some("localhost:5000"), "shop/api", Some("2"))
        );
        // Without a '.' or ':' the first component is a path, as Docker reads it.
        assert_eq!(ImageRef::parse("shop/api").unwrap().registry(), None);
    }

    #[test]
    fn refuses_with_the_reason() {
        use ImageRefError as E;
        for (bad, why) in [
            ("", E::Empty),
            ("Shop/api", E::Uppercase),
            ("shop/API", E::Uppercase),
            ("shop//api", E::InvalidPath),
            ("shop/api/", E::InvalidPath),
            ("-api", E::InvalidPath),
            ("a..b", E::InvalidPath),
            ("a___b", E::InvalidPath),
            ("a b", E::InvalidPath),
            ("api:", E::InvalidTag),
            ("api:-x", E::InvalidTag),
            ("api:a/b", E::InvalidRegistry),
            ("registry:port/api", E::InvalidRegistry),
            ("-reg.io/api", E::InvalidRegistry),
            ("[::1]:5000/api", E::InvalidRegistry),
            ("api@sha256:abc", E::InvalidDigest),
            ("api@md5:0123", E::InvalidDigest),
        ] {
            assert_eq!(ImageRef::parse(bad), Err(why), "{bad:?}");
        }
        let long = format!("a/{}", "b".repeat(300));
        assert_eq!(
            ImageRef::parse(&long),
            Err(E::NameTooLong { len: long.len() })
        );
        let tag = format!("api:{}", "t".repeat(129));
        assert_eq!(ImageRef::parse(&tag), Err(E::InvalidTag));
        let err = "Bad\r\nImage".parse::<ImageRef>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!err.chain().contains('\n'), "{}", err.chain());
    }

    #[test]
    fn serde_goes_through_the_parser() {
        let r: ImageRef = serde_json::from_str("\"shop/api:2\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"shop/api:2\"");
        assert!(serde_json::from_str::<ImageRef>("\"Shop/api\"").is_err());
    }

    #[test]
    fn the_container_is_the_only_one_or_the_named_one() {
        let u = ImageUpdate::new("api:2".parse().unwrap());
        assert_eq!(u.select_container(&["app"], "fake", "w").unwrap(), "app");
        let err = u
            .select_container(&["app", "proxy"], "fake", "w")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.detail().unwrap().contains("app, proxy"));
        let named = u.clone().in_container("proxy").unwrap();
        assert_eq!(
            named
                .select_container(&["app", "proxy"], "fake", "w")
                .unwrap(),
            "proxy"
        );
        let err = named.select_container(&["app"], "fake", "w").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(u.clone().with_change_cause("a\nb").is_err());
        assert!(u.clone().with_change_cause(&"x".repeat(1025)).is_err());
        assert!(u.with_change_cause("deploy 2").is_ok());
    }

    proptest! {
        #[test]
        fn never_panics_and_what_it_accepts_round_trips(s in "\\PC{0,80}") {
            if let Ok(r) = ImageRef::parse(&s) {
                prop_assert_eq!(r.to_string(), s.clone());
                prop_assert_eq!(ImageRef::parse(&r.to_string()), Ok(r));
            }
        }

        #[test]
        // Without a registry the first component holds no '.': Docker would read it as one.
        fn shaped_references_round_trip(
            registry in proptest::option::of("[a-z0-9]{1,8}\\.[a-z]{2,4}(:[0-9]{1,5})?"),
            path in "[a-z0-9]{1,6}(/[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}){0,2}",
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        ) {
            let mut s = registry.map(|r| format!("{r}/")).unwrap_or_default();
            s.push_str(&path);
            if let Some(t) = &tag {
                s.push(':');
                s.push_str(t);
            }
            let r = ImageRef::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
            prop_assert_eq!(r.to_string(), s);
            prop_assert_eq!(r.tag(), tag.as_deref());
        }
    }
}
