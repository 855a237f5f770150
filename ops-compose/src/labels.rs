//! Compose labels and names: which containers form a service, and which names compose accepts.

use std::collections::HashMap;

use bollard::models::ContainerSummary;
use ops_core::names::NameRule;
use ops_core::{WorkloadRef, text};

use crate::error::{Error, Result};

/// `com.docker.compose.project`: the project a container belongs to.
pub const PROJECT: &str = "com.docker.compose.project";
/// `com.docker.compose.service`: the service a container belongs to.
pub const SERVICE: &str = "com.docker.compose.service";
/// `com.docker.compose.container-number`: 1, 2, ... within the service.
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// `com.docker.compose.oneoff`: `True` for `docker compose run` containers (never part of a service).
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// `com.docker.compose.depends_on`: `service:condition:restart,...` (compose v2).
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// `com.docker.compose.config-hash`: the hash of the service's configuration in the compose
/// file; `docker compose up` recreates a container whose hash differs from the file's.
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// `com.docker.compose.project.config_files`: the compose files the project was brought up
/// with, comma separated.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// `com.docker.compose.project.working_dir`: where `docker compose` ran (and reads `.env`).
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// The image this service ran before its last image change (set by opsbook's recreate).
pub const PREVIOUS_IMAGE: &str = "org.opsbook.compose.previous-image";

/// Validate a compose project name by ops-core's rule ([`NameRule::ComposeProject`]):
/// `[a-z0-9][a-z0-9_-]*`, at most 63 bytes.
///
/// # Errors
/// [`Error::InvalidName`] otherwise.
///
/// # Examples
/// ```
/// assert!(ops_compose::labels::validate_project("shop_prod-1").is_ok());
/// assert!(ops_compose::labels::validate_project("Shop").is_err());
/// ```
pub fn validate_project(project: &str) -> Result<()> {
    validate(NameRule::ComposeProject, "project", project)
}

/// Validate a compose service name by ops-core's rule ([`NameRule::ComposeService`]):
/// compose-spec's `[a-zA-Z0-9._-]+`, starting and ending with a letter or digit.
///
/// # Errors
/// [`Error::InvalidName`] otherwise.
///
/// # Examples
/// ```
/// assert!(ops_compose::labels::validate_service("api.v2").is_ok());
/// assert!(ops_compose::labels::validate_service("-api").is_err());
/// ```
pub fn validate_service(service: &str) -> Result<()> {
    validate(NameRule::ComposeService, "service", service)
}

/// Validate a container name as the engine does ([`NameRule::ContainerName`]):
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
///
/// # Errors
/// [`Error::InvalidName`] otherwise.
///
/// # Examples
/// ```
/// assert!(ops_compose::labels::validate_container("shop-api-1").is_ok());
/// assert!(ops_compose::labels::validate_container("a/../b").is_err());
/// ```
pub fn validate_container(name: &str) -> Result<()> {
    validate(NameRule::ContainerName, "container", name)
}

fn validate(rule: NameRule, what: &'static str, value: &str) -> Result<()> {
    if rule.check(value) {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what,
            value: text::quote(value),
            reason: rule.describe(),
        })
    }
}

/// The `(project, service)` of a compose workload ref. Both halves were validated by
/// [`WorkloadRef`] with compose's rules ([`ops_core::WorkloadKind::Service`]).
///
/// # Errors
/// [`Error::Unsupported`] when the ref is not a compose service.
pub(crate) fn project_service(workload: &WorkloadRef) -> Result<(&str, &str)> {
    if workload.kind() != ops_core::WorkloadKind::Service {
        return Err(Error::Unsupported {
            operation: "resolve",
            target: workload.to_string(),
            reason: format!(
                "compose workloads are services (project/service/name), not {}",
                workload.kind()
            ),
        });
    }
    Ok((workload.namespace().as_str(), workload.name().as_str()))
}

/// Engine `filters` selecting a project's (or one service's) containers.
pub(crate) fn filters(project: &str, service: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut labels = vec![format!("{PROJECT}={project}")];
    if let Some(service) = service {
        labels.push(format!("{SERVICE}={service}"));
    }
    HashMap::from([("label".to_owned(), labels)])
}

/// Whether a container is a one-off (`docker compose run`), which is never part of a service.
pub(crate) fn is_oneoff(labels: Option<&HashMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(ONEOFF))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The container's number within its service (0 when unlabelled).
pub(crate) fn container_number(labels: Option<&HashMap<String, String>>) -> u32 {
    labels
        .and_then(|l| l.get(CONTAINER_NUMBER))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The container's name without the leading `/`.
pub(crate) fn summary_name(c: &ContainerSummary) -> Option<String> {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_owned())
}

/// The name compose v2 gives container `number` of a service: `project-service-N`.
///
/// # Examples
/// ```
/// assert_eq!(ops_compose::labels::container_name("shop", "api", 2), "shop-api-2");
/// ```
pub fn container_name(project: &str, service: &str, number: u32) -> String {
    format!("{project}-{service}-{number}")
}

/// Parse `com.docker.compose.depends_on` (`db:service_healthy:false,cache:service_started:false`)
/// into service names.
///
/// # Examples
/// ```
/// let deps = ops_compose::labels::parse_depends_on("db:service_healthy:false,cache:service_started:false");
/// assert_eq!(deps, ["db", "cache"]);
/// ```
pub fn parse_depends_on(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|d| d.split(':').next())
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oneoff_containers_are_recognised() {
        let labels = HashMap::from([(ONEOFF.to_owned(), "True".to_owned())]);
        assert!(is_oneoff(Some(&labels)));
        assert!(!is_oneoff(None));
    }

    #[test]
    fn container_numbers_default_to_zero() {
        let labels = HashMap::from([(CONTAINER_NUMBER.to_owned(), "3".to_owned())]);
        assert_eq!(container_number(Some(&labels)), 3);
        assert_eq!(container_number(None), 0);
    }

    #[test]
    fn names_that_could_escape_are_rejected() {
        for bad in ["", "a b", "a;b", "../x", "-x", "x/y"] {
            assert!(validate_service(bad).is_err(), "{bad}");
            assert!(validate_container(bad).is_err(), "{bad}");
        }
        assert!(validate_project("UPPER").is_err());
        assert!(validate_project("_x").is_err());
    }

    #[test]
    fn non_service_refs_are_unsupported() {
        let w: WorkloadRef = "prod/deployment/api".parse().unwrap();
        assert!(matches!(
            project_service(&w),
            Err(Error::Unsupported { .. })
        ));
    }
}
