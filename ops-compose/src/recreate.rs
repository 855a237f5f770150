//! Recreate containers with the same or changed configuration: the only way new
//! configuration (environment, image) applies to a compose service. Rollback to a previous
//! image when opsbook changed it.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, NetworkConnectRequest,
    NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RenameContainerOptionsBuilder};
use ops_core::WorkloadRef;
use ops_core::platform::{ConfigChange, ConfigTarget, ConfigUpdate, Revision, RollbackChange};
use secrecy::ExposeSecret as _;

use crate::error::{Error, Result};
use crate::labels;
use crate::platform::ComposePlatform;

/// What to change when recreating a service's containers.
///
/// # Examples
/// ```
/// let o = ops_compose::RecreateOptions::default().set_env("LOG_LEVEL", "debug").remove_env("OLD");
/// assert_eq!(o.env_keys(), vec!["LOG_LEVEL"]);
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RecreateOptions {
    set_env: Vec<(String, secrecy::SecretString)>,
    remove_env: Vec<String>,
    /// Run this image instead (the current one is remembered for rollback).
    pub image: Option<String>,
}

impl std::fmt::Debug for RecreateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecreateOptions")
            .field("set_env", &self.env_keys())
            .field("remove_env", &self.remove_env)
            .field("image", &self.image)
            .finish()
    }
}

impl RecreateOptions {
    /// Set an environment variable (the value is a secret: never logged).
    #[must_use]
    pub fn set_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_env
            .push((key.into(), secrecy::SecretString::from(value.into())));
        self
    }

    /// Remove an environment variable.
    #[must_use]
    pub fn remove_env(mut self, key: impl Into<String>) -> Self {
        self.remove_env.push(key.into());
        self
    }

    /// Run another image.
    #[must_use]
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Names of the variables being set.
    pub fn env_keys(&self) -> Vec<&str> {
        self.set_env.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// Whether these options change the configuration (not a plain recreate).
    fn changes_config(&self, image: Option<&str>) -> bool {
        !self.set_env.is_empty()
            || !self.remove_env.is_empty()
            || self.image.as_deref().is_some_and(|i| Some(i) != image)
    }

    fn apply_env(&self, env: Option<Vec<String>>) -> Vec<String> {
        let mut env: Vec<String> = env
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
                !self.remove_env.iter().any(|r| r == key)
                    && !self.set_env.iter().any(|(k, _)| k == key)
            })
            .collect();
        env.extend(
            self.set_env
                .iter()
                .map(|(k, v)| format!("{k}={}", v.expose_secret())),
        );
        env
    }
}

/// The points of a container swap at which a recreate can fail, in order: after the old
/// container stopped, after it was renamed aside, after the new one was created, after the
/// new one started (before the old one is removed). With the `fault-injection` feature,
/// [`ComposePlatform::fail_recreate_at`] makes a swap fail there, to prove that the undo
/// always leaves a running container.
///
/// # Examples
/// ```
/// use ops_compose::RecreatePoint;
/// assert_eq!(RecreatePoint::ALL.len(), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecreatePoint {
    /// The old container is stopped.
    AfterStop,
    /// The old container is renamed aside.
    AfterRename,
    /// The new container exists, not started (in a scale-up: the second or later new
    /// container).
    AfterCreate,
    /// The new container runs; the old one is not yet removed.
    AfterStart,
}

impl RecreatePoint {
    /// Every point, in order.
    pub const ALL: [Self; 4] = [
        Self::AfterStop,
        Self::AfterRename,
        Self::AfterCreate,
        Self::AfterStart,
    ];
}

/// How a new container relates to the one it is built from.
pub(crate) enum CloneAs<'a> {
    /// Same name and number; host ports kept (the old container is stopped first).
    Recreate(&'a RecreateOptions),
    /// A new instance of the service: next number, fresh name, host ports left to the engine.
    Scale { number: u32, name: &'a str },
}

/// A create body reproducing `old`, and the primary network's name (others are connected
/// after creation: API 1.41 accepts one endpoint at create).
pub(crate) fn clone_body(
    old: &ContainerInspectResponse,
    how: &CloneAs<'_>,
) -> (ContainerCreateBody, Vec<(String, EndpointSettings)>) {
    let config = old.config.clone().unwrap_or_default();
    let old_name = old
        .name
        .as_deref()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_owned();
    let short_id: String = old.id.as_deref().unwrap_or("").chars().take(12).collect();
    let mut host_config = old.host_config.clone().unwrap_or_default();
    let mut labels_map = config.labels.clone().unwrap_or_default();
    let mut env = config.env.clone();
    let mut image = config.image.clone();
    let new_name = match how {
        CloneAs::Recreate(opts) => {
            if opts.changes_config(image.as_deref()) {
                // The container no longer matches the compose file: without the file's hash,
                // the next `docker compose up` recreates it from the file (instead of keeping
                // it until some later file change silently brings the old values back).
                labels_map.remove(labels::CONFIG_HASH);
            }
            env = Some(opts.apply_env(env));
            if let Some(new_image) = &opts.image
                && image.as_deref() != Some(new_image.as_str())
            {
                if let Some(current) = &image {
                    labels_map.insert(labels::PREVIOUS_IMAGE.to_owned(), current.clone());
                }
                image = Some(new_image.clone());
            }
            old_name.clone()
        }
        CloneAs::Scale { number, name } => {
            labels_map.insert(labels::CONTAINER_NUMBER.to_owned(), number.to_string());
            if let Some(bindings) = host_config.port_bindings.as_mut() {
                for b in bindings.values_mut().flatten().flatten() {
                    b.host_port = Some(String::new());
                }
            }
            (*name).to_owned()
        }
    };
    let mut networks: Vec<(String, EndpointSettings)> = old
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(net, ep)| {
            let mut aliases: Vec<String> = ep
                .aliases
                .unwrap_or_default()
                .into_iter()
                .filter(|a| *a != short_id && *a != old_name)
                .collect();
            aliases.push(new_name.clone());
            let keep_ip = matches!(how, CloneAs::Recreate(_));
            (
                net,
                EndpointSettings {
                    aliases: Some(aliases),
                    links: ep.links,
                    driver_opts: ep.driver_opts,
                    ipam_config: if keep_ip { ep.ipam_config } else { None },
                    ..EndpointSettings::default()
                },
            )
        })
        .collect();
    let primary = host_config.network_mode.clone().unwrap_or_default();
    networks.sort_by_key(|(n, _)| *n != primary);
    let networking_config = networks.first().map(|(n, ep)| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(n.clone(), ep.clone())])),
    });
    let body = ContainerCreateBody {
        hostname: None,
        domainname: config.domainname,
        user: config.user,
        exposed_ports: config.exposed_ports,
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.stdin_once,
        env,
        cmd: config.cmd,
        healthcheck: config.healthcheck,
        image,
        volumes: config.volumes,
        working_dir: config.working_dir,
        entrypoint: config.entrypoint,
        labels: Some(labels_map),
        stop_signal: config.stop_signal,
        stop_timeout: config.stop_timeout,
        host_config: Some(host_config),
        networking_config,
        ..ContainerCreateBody::default()
    };
    let extra = networks.into_iter().skip(1).collect();
    (body, extra)
}

impl ComposePlatform {
    /// Create (not start) a container from a body and connect its extra networks.
    pub(crate) async fn create_from(
        &self,
        name: &str,
        body: ContainerCreateBody,
        extra: Vec<(String, EndpointSettings)>,
    ) -> Result<String> {
        labels::validate_container(name)?;
        let docker = self.docker().await?;
        let opts = CreateContainerOptionsBuilder::new().name(name).build();
        let created = self
            .call(
                "create_container",
                name,
                docker.create_container(Some(opts), body),
            )
            .await?;
        for (net, ep) in extra {
            let req = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(ep),
            };
            self.call("connect_network", name, docker.connect_network(&net, req))
                .await?;
        }
        Ok(created.id)
    }

    async fn image_env(&self, image: &str) -> Result<Vec<String>> {
        let docker = self.docker().await?;
        let inspect = self
            .call("inspect_image", image, docker.inspect_image(image))
            .await?;
        Ok(inspect.config.and_then(|c| c.env).unwrap_or_default())
    }

    async fn rename(&self, id: &str, to: &str) -> Result<()> {
        let docker = self.docker().await?;
        let opts = RenameContainerOptionsBuilder::new().name(to).build();
        self.call("rename_container", to, docker.rename_container(id, opts))
            .await
    }

    /// Recreate every container of the service with the same configuration, or with the
    /// changes in `opts`, one at a time as compose does: stop the old container, rename it
    /// aside, create and start the new one under the old name, then remove the old one. If
    /// the new one cannot be created or started, the old one is restored and started. A
    /// container that ran is replaced only once the one before it is ready again (running,
    /// and healthy when it has a HEALTHCHECK, within
    /// [`crate::ComposeConfig::health_timeout`]), so the service is never wholly unready.
    ///
    /// Returns the names of the recreated containers.
    ///
    /// # Errors
    /// `NotFound`; `InvalidInput` for invalid variable names; [`Error::Unready`] naming the
    /// first new container that did not become ready (it keeps the new configuration; the
    /// containers after it keep the old one); engine errors.
    pub async fn recreate_service(
        &self,
        workload: &WorkloadRef,
        opts: &RecreateOptions,
    ) -> Result<Vec<String>> {
        // Boxed: the engine calls of a swap make a large future.
        Box::pin(self.recreate_members(workload, opts)).await
    }

    async fn recreate_members(
        &self,
        workload: &WorkloadRef,
        opts: &RecreateOptions,
    ) -> Result<Vec<String>> {
        if let Some(bad) = opts
            .set_env
            .iter()
            .map(|(k, _)| k)
            .chain(&opts.remove_env)
            .find(|k| !ops_core::names::EnvKey::check(k))
        {
            return Err(Error::InvalidArgument {
                operation: "recreate",
                target: workload.to_string(),
                reason: format!(
                    "\"{}\" is not {}",
                    ops_core::text::quote(bad),
                    ops_core::names::NameRule::EnvVar.describe()
                ),
            });
        }
        let mut done = Vec::new();
        for m in self.members(workload, "recreate").await? {
            let old = self.inspect(&m.id).await?;
            let (mut body, extra) = clone_body(&old, &CloneAs::Recreate(opts));
            let old_image = old.config.as_ref().and_then(|c| c.image.clone());
            if opts.image.is_some() && opts.image != old_image {
                // The container's env includes its image's ENV; a new image brings its own.
                let defaults = self
                    .image_env(old.image.as_deref().unwrap_or_default())
                    .await?;
                if let Some(env) = body.env.as_mut() {
                    env.retain(|e| {
                        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
                        !defaults.contains(e) || opts.set_env.iter().any(|(k, _)| k == key)
                    });
                }
            }
            Box::pin(self.swap(&m.id, &m.name, m.running, body, extra)).await?;
            if m.running {
                // Rolling: the next container is replaced only once this one is ready.
                self.wait_container_ready(workload, &m.name, &m.name, "recreate")
                    .await?;
            }
            done.push(m.name);
        }
        Ok(done)
    }

    /// Replace one container, all or nothing: stop the old one, rename it aside, create and
    /// start the new one under its name, remove the old one. A failure at any point before
    /// the old container is gone undoes what was done (the new container removed, the old
    /// one renamed back and started again), so the service keeps a container with the old
    /// configuration or the new one, never none. An undo that fails is reported in the
    /// error ([`Error::Compensation`]), never swallowed.
    async fn swap(
        &self,
        old_id: &str,
        name: &str,
        was_running: bool,
        body: ContainerCreateBody,
        extra: Vec<(String, EndpointSettings)>,
    ) -> Result<()> {
        let grace = self.config().stop_timeout;
        let short: String = old_id.chars().take(12).collect();
        let aside = format!("{short}_{name}");
        let mut new_id = None;
        let attempt = async {
            self.stop_container(old_id, name, grace).await?;
            self.checkpoint(RecreatePoint::AfterStop, name)?;
            self.rename(old_id, &aside).await?;
            self.checkpoint(RecreatePoint::AfterRename, name)?;
            let created = self.create_from(name, body, extra).await?;
            new_id = Some(created.clone());
            self.checkpoint(RecreatePoint::AfterCreate, name)?;
            if was_running {
                self.start_container(&created, name).await?;
            }
            self.checkpoint(RecreatePoint::AfterStart, name)?;
            self.remove_container(old_id, &aside, grace).await
        }
        .await;
        let Err(cause) = attempt else {
            return Ok(());
        };
        tracing::warn!(container = %name, error = %cause, "recreate failed; restoring the old container");
        let failed = self
            .restore_old(old_id, name, new_id.as_deref(), was_running, grace)
            .await;
        if failed.is_empty() {
            Err(cause)
        } else {
            Err(Error::Compensation {
                operation: "recreate",
                target: name.to_owned(),
                source: Box::new(cause),
                failed,
            })
        }
    }

    /// Undo a swap: remove the new container (when one was created), give the old one its
    /// name back (when it lost it) and start it (when it ran). Every step is attempted;
    /// returns those that failed, in words.
    async fn restore_old(
        &self,
        old_id: &str,
        name: &str,
        new_id: Option<&str>,
        was_running: bool,
        grace: std::time::Duration,
    ) -> Vec<String> {
        let mut failed = Vec::new();
        if let Some(new_id) = new_id
            && let Err(e) = self.remove_container(new_id, name, grace).await
        {
            failed.push(format!("removing the new container: {e}"));
        }
        let current = self.inspect(old_id).await.map(|i| {
            i.name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned()
        });
        match current {
            Ok(current) if current == name => {}
            Ok(_) => {
                if let Err(e) = self.rename(old_id, name).await {
                    failed.push(format!("renaming the old container back to {name}: {e}"));
                }
            }
            Err(e) => failed.push(format!("finding the old container: {e}")),
        }
        if was_running
            && let Err(e) = self.start_container(old_id, name).await
            && e.status_code() != Some(304)
        {
            failed.push(format!("starting the old container again: {e}"));
        }
        failed
    }

    /// Fail here when a test asked for it (feature `fault-injection`); otherwise nothing.
    #[allow(
        clippy::unused_self,
        clippy::unnecessary_wraps,
        reason = "reads the injected point and may fail only with the feature on"
    )]
    pub(crate) fn checkpoint(&self, point: RecreatePoint, name: &str) -> Result<()> {
        #[cfg(feature = "fault-injection")]
        if self.injected_failure() == Some(point) {
            return Err(Error::Conflict {
                operation: "recreate",
                target: name.to_owned(),
                reason: format!("injected failure at {point:?}"),
            });
        }
        let _ = (point, name);
        Ok(())
    }

    /// Apply an environment change by recreating the service (a compose restart keeps the old
    /// environment). Returns key names only.
    ///
    /// # Errors
    /// `Unsupported` for ConfigMap/Secret targets or `rollout: false` (compose has nowhere to
    /// keep configuration but the containers); as [`ComposePlatform::recreate_service`].
    pub async fn update_env(
        &self,
        workload: &WorkloadRef,
        update: &ConfigUpdate,
    ) -> Result<ConfigChange> {
        if update.target != ConfigTarget::Env {
            return Err(Error::Unsupported {
                operation: "update_config",
                target: workload.to_string(),
                reason:
                    "compose services have environment variables only (no ConfigMaps or Secrets)"
                        .to_owned(),
            });
        }
        if !update.rollout {
            return Err(Error::Unsupported {
                operation: "update_config",
                target: workload.to_string(),
                reason: "compose keeps configuration only in containers: an environment change applies by recreating them (rollout: true)".to_owned(),
            });
        }
        let mut opts = RecreateOptions::default();
        for (k, v) in &update.set {
            opts = opts.set_env(k.clone(), v.expose_secret().to_owned());
        }
        for k in &update.remove {
            opts = opts.remove_env(k.clone());
        }
        let definition = self.definition(workload).await?;
        Box::pin(self.recreate_service(workload, &opts)).await?;
        let mut change = ConfigChange::default();
        change.keys_set = update.set.keys().cloned().collect();
        change.keys_removed = update.remove.iter().cloned().collect();
        change.rolled_out = true;
        change.persist_in = Some(definition);
        Ok(change)
    }

    /// Where the service is defined, in words: the compose files and the `.env` of the
    /// directory compose ran in, from the labels docker compose writes (a project made
    /// without them is named only).
    pub(crate) async fn definition(&self, workload: &WorkloadRef) -> Result<String> {
        let (project, service) = labels::project_service(workload)?;
        let inspected = self.inspect_members(workload, "update_config").await?;
        let l = inspected
            .first()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let files = l.get(labels::CONFIG_FILES).filter(|f| !f.is_empty());
        let dir = l.get(labels::WORKING_DIR).filter(|d| !d.is_empty());
        let paths = |files: &str| {
            crate::compose_file::config_paths(files, dir.map(String::as_str))
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(match (files, dir) {
            (Some(files), Some(dir)) => format!(
                "service {service} of {} or {}/.env (compose project {project})",
                paths(files),
                dir.trim_end_matches('/')
            ),
            (Some(files), None) => format!(
                "service {service} of {} or its .env (compose project {project})",
                paths(files)
            ),
            _ => {
                format!("the compose file or .env of compose project {project} (service {service})")
            }
        })
    }

    /// Image revisions: the current image (revision 2) and, when a previous one is known,
    /// that one (revision 1). Compose keeps no history; the previous image is known when
    /// opsbook changed the image (its recreate labels the new container with the old image),
    /// or else from the engine's record of the container a deploy replaced: the newest
    /// `destroy` event of a container of this service (one-offs excluded) that ran another
    /// image, as `docker compose up` with a changed image leaves it. The engine keeps only
    /// its recent events in memory (the last 256 on Docker 20.10) and none across its
    /// restart, so that record can be gone.
    ///
    /// # Errors
    /// `Unsupported` when no previous image is known.
    pub async fn image_revisions(&self, workload: &WorkloadRef) -> Result<Vec<Revision>> {
        let inspected = self.inspect_members(workload, "revisions").await?;
        let config = inspected
            .first()
            .and_then(|i| i.config.clone())
            .unwrap_or_default();
        let current = config.image.clone().unwrap_or_default();
        let mut previous = config
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::PREVIOUS_IMAGE))
            .cloned();
        if previous.is_none() {
            previous = self.replaced_image(workload, &current).await?;
        }
        match previous {
            Some(prev) => Ok(vec![
                Revision::new(2, vec![current], true),
                Revision::new(1, vec![prev], false),
            ]),
            None => Err(no_history(workload)),
        }
    }

    /// Recreate the service with its previous image, when one is known.
    ///
    /// # Errors
    /// `Unsupported` without a previous image; `NotFound` for a revision other than 1.
    pub async fn rollback_image(
        &self,
        workload: &WorkloadRef,
        revision: Option<u64>,
    ) -> Result<RollbackChange> {
        let revisions = self.image_revisions(workload).await?;
        let target = revision.unwrap_or(1);
        let Some(prev) = revisions.iter().find(|r| r.number == target && !r.current) else {
            return Err(Error::NotFound {
                operation: "rollback",
                target: format!("{workload} revision {target}"),
            });
        };
        let image = prev.images.first().cloned().unwrap_or_default();
        Box::pin(self.recreate_service(workload, &RecreateOptions::default().with_image(image)))
            .await?;
        Ok(RollbackChange::new(Some(2), target))
    }
}

fn no_history(workload: &WorkloadRef) -> Error {
    Error::Unsupported {
        operation: "rollback",
        target: workload.to_string(),
        reason: "docker compose keeps no revision history and no previous image is known for this service (neither an image change made by opsbook nor a replaced container with another image in the engine's recent events); put the previous image tag in the compose file and run `docker compose up -d` for the service".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::ContainerConfig;

    use super::*;

    #[test]
    fn env_changes_replace_and_remove_keys() {
        let o = RecreateOptions::default().set_env("A", "2").remove_env("B");
        let env = o.apply_env(Some(vec!["A=1".into(), "B=x".into(), "C=3".into()]));
        assert_eq!(env, ["C=3", "A=2"]);
    }

    #[test]
    fn scale_clone_takes_the_next_number_and_a_free_host_port() {
        let old = ContainerInspectResponse {
            id: Some("0123456789abcdef".into()),
            name: Some("/shop-api-1".into()),
            config: Some(ContainerConfig {
                image: Some("demo:1".into()),
                labels: Some(HashMap::from([(
                    labels::CONTAINER_NUMBER.into(),
                    "1".into(),
                )])),
                ..ContainerConfig::default()
            }),
            ..ContainerInspectResponse::default()
        };
        let (body, extra) = clone_body(
            &old,
            &CloneAs::Scale {
                number: 2,
                name: "shop-api-2",
            },
        );
        assert_eq!(body.labels.unwrap()[labels::CONTAINER_NUMBER], "2");
        assert_eq!(body.image.as_deref(), Some("demo:1"));
        assert!(extra.is_empty());
    }

    #[test]
    fn image_change_remembers_the_previous_image() {
        let old = ContainerInspectResponse {
            config: Some(ContainerConfig {
                image: Some("demo:1".into()),
                ..ContainerConfig::default()
            }),
            ..ContainerInspectResponse::default()
        };
        let opts = RecreateOptions::default().with_image("demo:2");
        let (body, _) = clone_body(&old, &CloneAs::Recreate(&opts));
        assert_eq!(body.image.as_deref(), Some("demo:2"));
        assert_eq!(body.labels.unwrap()[labels::PREVIOUS_IMAGE], "demo:1");
    }

    #[test]
    fn debug_hides_env_values() {
        let o = RecreateOptions::default().set_env("TOKEN", "s3cret");
        assert!(!format!("{o:?}").contains("s3cret"));
    }
}
