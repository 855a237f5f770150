//! Settings from the environment: image names, external servers, CI.

/// A `repository:tag` image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Repository, e.g. `opsbook/postgres` or `prom/prometheus`.
    pub name: String,
    /// Tag, `latest` when none was given.
    pub tag: String,
    /// Whether this is our locally built default (so "missing" means "not provisioned").
    pub is_default: bool,
}

impl ImageRef {
    /// Parses `name[:tag]`; a `:` inside a registry host (`host:5000/x`) is not a tag.
    pub fn parse(reference: &str, is_default: bool) -> Self {
        let slash = reference.rfind('/').map_or(0, |i| i + 1);
        match reference[slash..].rfind(':') {
            Some(colon) => Self {
                name: reference[..slash + colon].to_owned(),
                tag: reference[slash + colon + 1..].to_owned(),
                is_default,
            },
            None => Self {
                name: reference.to_owned(),
                tag: "latest".to_owned(),
                is_default,
            },
        }
    }

    fn from_env(var: &str, default: &str) -> Self {
        match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => {
                let value = value.trim();
                Self::parse(value, value == default)
            }
            _ => Self::parse(default, true),
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// The images the helpers start.
#[derive(Debug, Clone)]
pub struct Images {
    /// `OPSBOOK_IMAGE_POSTGRES`, default `opsbook/postgres:15`.
    pub postgres: ImageRef,
    /// `OPSBOOK_IMAGE_REDIS`, default `opsbook/redis:7`.
    pub redis: ImageRef,
    /// `OPSBOOK_IMAGE_PROMETHEUS`, default `opsbook/prometheus:local`.
    pub prometheus: ImageRef,
    /// `OPSBOOK_IMAGE_DEMO_API`, default `opsbook/demo-api:local`.
    pub demo_api: ImageRef,
}

impl Images {
    /// Reads the `OPSBOOK_IMAGE_*` variables.
    pub fn from_env() -> Self {
        Self {
            postgres: ImageRef::from_env("OPSBOOK_IMAGE_POSTGRES", "opsbook/postgres:15"),
            redis: ImageRef::from_env("OPSBOOK_IMAGE_REDIS", "opsbook/redis:7"),
            prometheus: ImageRef::from_env("OPSBOOK_IMAGE_PROMETHEUS", "opsbook/prometheus:local"),
            demo_api: ImageRef::from_env("OPSBOOK_IMAGE_DEMO_API", "opsbook/demo-api:local"),
        }
    }
}

/// Whether the tests run in CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"))
}

/// A non-empty environment variable.
pub(crate) fn env_url(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_tag() {
        let image = ImageRef::parse("opsbook/postgres:15", true);
        assert_eq!(
            (image.name.as_str(), image.tag.as_str()),
            ("opsbook/postgres", "15")
        );
        let image = ImageRef::parse("prom/prometheus", false);
        assert_eq!(
            (image.name.as_str(), image.tag.as_str()),
            ("prom/prometheus", "latest")
        );
        let image = ImageRef::parse("registry.local:5000/redis:7", false);
        assert_eq!(
            (image.name.as_str(), image.tag.as_str()),
            ("registry.local:5000/redis", "7")
        );
        assert_eq!(image.to_string(), "registry.local:5000/redis:7");
    }
}
