//! Restart, stop, start, start-in-dependency-order with health gates, remove an instance.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bollard::query_parameters::{
    RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptionsBuilder,
};
use ops_core::platform::RolloutStatus;
use ops_core::{InstanceRef, WorkloadRef};

use crate::error::{Error, Result};
use crate::labels;
use crate::platform::ComposePlatform;

/// Seconds for the engine's `t` parameter (rounded up, at least 0).
fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i32::MAX)
}

/// What [`ComposePlatform::start_project`] did for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StartedService {
    /// The service.
    pub workload: WorkloadRef,
    /// Its tier: 0 has no dependencies, 1 depends only on tier 0, ...
    pub tier: usize,
    /// How long its health gate took.
    pub waited: Duration,
    /// The final rollout message.
    pub message: String,
}

impl ComposePlatform {
    /// Rolling restart: restart the containers of the service one at a time, in
    /// container-number order, each with `stop_timeout` (default
    /// [`crate::ComposeConfig::stop_timeout`]) before a kill, and wait for each to be ready
    /// (running, and healthy when it has a HEALTHCHECK) within
    /// [`crate::ComposeConfig::health_timeout`] before the next. `docker restart` returns when
    /// the process starts, not when it is healthy, so without the wait every replica could be
    /// unready at once.
    ///
    /// The containers are the ones listed when the call starts: a container that appears
    /// meanwhile is not restarted, one that vanished meanwhile is skipped.
    ///
    /// # Errors
    /// `NotFound`; [`Error::Unready`] (`Timeout`, or `Conflict` when it exited) naming the
    /// first container that did not become ready, the containers after it untouched; engine
    /// errors, `Timeout` past the request deadline plus the grace period.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo() -> Result<(), ops_compose::Error> {
    /// let platform = ops_compose::ComposePlatform::builder().build()?;
    /// let api = ops_core::WorkloadRef::compose_service("shop", "api").map_err(|_| ops_compose::Error::NotFound { operation: "demo", target: "shop/api".into() })?;
    /// platform.restart_service(&api, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn restart_service(
        &self,
        workload: &WorkloadRef,
        stop_timeout: Option<Duration>,
    ) -> Result<()> {
        let grace = stop_timeout.unwrap_or(self.config().stop_timeout);
        let docker = self.docker().await?;
        let planned = self.members(workload, "restart").await?;
        for m in &planned {
            tracing::debug!(container = %m.name, "restarting");
            let opts = RestartContainerOptionsBuilder::new().t(secs(grace)).build();
            let restarted = self
                .call_within(
                    self.config().request_timeout + grace,
                    "restart_container",
                    &m.name,
                    docker.restart_container(&m.id, Some(opts)),
                )
                .await;
            match restarted {
                Err(e) if e.status_code() == Some(404) => {
                    tracing::warn!(container = %m.name, "planned container is gone; skipped");
                    continue;
                }
                other => other?,
            }
            self.wait_container_ready(workload, &m.id, &m.name, "restart")
                .await?;
        }
        Ok(())
    }

    /// Poll one container until it runs and, when it has a HEALTHCHECK, is healthy; fail
    /// when it exits or when [`crate::ComposeConfig::health_timeout`] passes.
    pub(crate) async fn wait_container_ready(
        &self,
        workload: &WorkloadRef,
        id: &str,
        name: &str,
        operation: &'static str,
    ) -> Result<()> {
        let timeout = self.config().health_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let inspect = self.inspect(id).await?;
            let (ready, exited, state) = crate::status::readiness(&inspect);
            if ready {
                return Ok(());
            }
            if exited || tokio::time::Instant::now() + self.config().poll_interval > deadline {
                return Err(Error::Unready {
                    operation,
                    target: workload.to_string(),
                    container: name.to_owned(),
                    state,
                    exited,
                    after: timeout,
                });
            }
            tokio::time::sleep(self.config().poll_interval).await;
        }
    }

    /// Stop every container of the service (`docker compose stop`).
    ///
    /// # Errors
    /// `NotFound`; engine errors.
    pub async fn stop_service(
        &self,
        workload: &WorkloadRef,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let grace = timeout.unwrap_or(self.config().stop_timeout);
        for m in self.members(workload, "stop").await? {
            self.stop_container(&m.id, &m.name, grace).await?;
        }
        Ok(())
    }

    pub(crate) async fn stop_container(&self, id: &str, name: &str, grace: Duration) -> Result<()> {
        let docker = self.docker().await?;
        let opts = StopContainerOptionsBuilder::new().t(secs(grace)).build();
        self.call_within(
            self.config().request_timeout + grace,
            "stop_container",
            name,
            docker.stop_container(id, Some(opts)),
        )
        .await
    }

    pub(crate) async fn start_container(&self, id: &str, name: &str) -> Result<()> {
        let docker = self.docker().await?;
        self.call(
            "start_container",
            name,
            docker.start_container(id, None::<StartContainerOptions>),
        )
        .await
    }

    /// Start every container of the service that is not running (`docker compose start`).
    ///
    /// # Errors
    /// `NotFound`; engine errors.
    pub async fn start_service(&self, workload: &WorkloadRef) -> Result<()> {
        for m in self.members(workload, "start").await? {
            if !m.running {
                self.start_container(&m.id, &m.name).await?;
            }
        }
        Ok(())
    }

    /// Poll until every container of the service runs and passes its HEALTHCHECK, or fail
    /// when one exits, or time out after `timeout` (default
    /// [`crate::ComposeConfig::health_timeout`]). This replaces the seeds' `sleep 15`.
    ///
    /// # Errors
    /// `Timeout` with the last rollout message; `Backend` when a container exited.
    pub async fn wait_healthy(
        &self,
        workload: &WorkloadRef,
        timeout: Option<Duration>,
    ) -> Result<RolloutStatus> {
        let timeout = timeout.unwrap_or(self.config().health_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = crate::status::rollout_status(&self.workload_status(workload).await?);
            if status.done {
                return Ok(status);
            }
            if status.failed {
                return Err(Error::Conflict {
                    operation: "wait_healthy",
                    target: workload.to_string(),
                    reason: status.message,
                });
            }
            if tokio::time::Instant::now() + self.config().poll_interval > deadline {
                return Err(Error::Timeout {
                    operation: "wait_healthy",
                    target: format!("{workload} ({})", status.message),
                    after: timeout,
                });
            }
            tokio::time::sleep(self.config().poll_interval).await;
        }
    }

    /// The project's services in dependency tiers: tier 0 depends on nothing, tier n only on
    /// earlier tiers. The dependencies come from the `com.docker.compose.depends_on` labels
    /// (compose v2 writes them); a project without any (docker-compose 1.x writes none) is
    /// read from its compose files, named in the `com.docker.compose.project.config_files`
    /// label (relative to `com.docker.compose.project.working_dir`), each service's
    /// `depends_on` in list or map form. When those files cannot be read here (an engine on
    /// another host, files moved) every service is in tier 0, as without labels, and a
    /// warning is logged.
    ///
    /// # Errors
    /// `Conflict` on a dependency cycle; engine errors.
    pub async fn dependency_tiers(&self, project: &str) -> Result<Vec<Vec<String>>> {
        labels::validate_project(project)?;
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut labelled = false;
        let mut files = None;
        for c in self.list(project, None).await? {
            let Some(l) = c.labels else { continue };
            let Some(service) = l.get(labels::SERVICE) else {
                continue;
            };
            let entry = deps.entry(service.clone()).or_default();
            if let Some(d) = l.get(labels::DEPENDS_ON) {
                labelled = true;
                entry.extend(labels::parse_depends_on(d));
            }
            if files.is_none()
                && let Some(f) = l.get(labels::CONFIG_FILES)
            {
                files = Some(crate::compose_file::config_paths(
                    f,
                    l.get(labels::WORKING_DIR).map(String::as_str),
                ));
            }
        }
        if !labelled && let Some(paths) = files {
            let read =
                tokio::task::spawn_blocking(move || crate::compose_file::read_depends_on(&paths))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
            match read {
                Ok(from_files) => {
                    for (service, d) in from_files {
                        if let Some(entry) = deps.get_mut(&service) {
                            entry.extend(d);
                        }
                    }
                }
                Err(why) => tracing::warn!(
                    project,
                    %why,
                    "the project's compose files cannot be read: starting its services without depends_on order"
                ),
            }
        }
        ops_core::tiers::dependency_tiers(&deps).map_err(|cycle| Error::Conflict {
            operation: "dependency_tiers",
            target: project.to_owned(),
            reason: format!(
                "the services' depends_on form a cycle: {} can never start",
                ops_core::text::quote(&cycle.stuck.join(", "))
            ),
        })
    }

    /// Start a whole project in dependency order with health gates: each tier is started,
    /// then every service in it must be running and healthy before the next tier starts.
    ///
    /// # Errors
    /// As [`ComposePlatform::wait_healthy`] for the first service that does not come up.
    pub async fn start_project(&self, project: &str) -> Result<Vec<StartedService>> {
        let mut started = Vec::new();
        for (tier, services) in self
            .dependency_tiers(project)
            .await?
            .into_iter()
            .enumerate()
        {
            let refs: Vec<WorkloadRef> = services
                .iter()
                .map(|s| {
                    WorkloadRef::compose_service(project, s).map_err(|_| Error::InvalidName {
                        what: "service",
                        value: s.clone(),
                        reason: "not a valid workload name",
                    })
                })
                .collect::<Result<_>>()?;
            for w in &refs {
                self.start_service(w).await?;
            }
            for w in refs {
                let t0 = tokio::time::Instant::now();
                let status = self.wait_healthy(&w, None).await?;
                started.push(StartedService {
                    workload: w,
                    tier,
                    waited: t0.elapsed(),
                    message: status.message,
                });
            }
        }
        Ok(started)
    }

    /// Stop (with `grace`) and remove one container. Compose has no controller: the service
    /// has one instance fewer until it is scaled up again.
    ///
    /// # Errors
    /// `NotFound` when the container is not part of the service; engine errors.
    pub async fn remove_instance(
        &self,
        instance: &InstanceRef,
        grace: Option<Duration>,
    ) -> Result<()> {
        let inspect = self.resolve_instance(instance, "delete_instance").await?;
        let id = inspect.id.unwrap_or_default();
        let name = instance.name().as_str();
        self.remove_container(&id, name, grace.unwrap_or(self.config().stop_timeout))
            .await
    }

    pub(crate) async fn remove_container(
        &self,
        id: &str,
        name: &str,
        grace: Duration,
    ) -> Result<()> {
        match self.stop_container(id, name, grace).await {
            Err(e) if e.status_code() != Some(404) => return Err(e),
            _ => {}
        }
        let docker = self.docker().await?;
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(false)
            .build();
        match self
            .call(
                "remove_container",
                name,
                docker.remove_container(id, Some(opts)),
            )
            .await
        {
            Err(e) if e.status_code() == Some(404) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_rounds_up_to_seconds() {
        assert_eq!(secs(Duration::from_millis(1500)), 2);
        assert_eq!(secs(Duration::ZERO), 0);
    }
}
