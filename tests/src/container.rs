//! A running test container and the faults a test can inflict on it.

use std::time::Duration;

use bollard::query_parameters::{KillContainerOptionsBuilder, RestartContainerOptionsBuilder};
use testcontainers::{ContainerAsync, GenericImage};

use crate::engine::docker;
use crate::error::ServiceError;

/// Seconds `docker stop` and `docker restart` wait before SIGKILL.
const STOP_GRACE_S: i32 = 5;

/// A container started by a helper, removed (with its volumes) when dropped.
///
/// Its host port is fixed at start, so it stays the same across [`stop`](Self::stop) /
/// [`start`](Self::start) and [`restart`](Self::restart).
#[derive(Debug)]
pub struct Service {
    container: ContainerAsync<GenericImage>,
    name: String,
    host_port: u16,
    container_port: u16,
}

impl Service {
    pub(crate) fn new(
        container: ContainerAsync<GenericImage>,
        name: String,
        host_port: u16,
        container_port: u16,
    ) -> Self {
        Self {
            container,
            name,
            host_port,
            container_port,
        }
    }

    /// Container id.
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// Container name, which is also its host name on the test network.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Port on 127.0.0.1 that reaches the service.
    pub fn host_port(&self) -> u16 {
        self.host_port
    }

    /// `name:port` as other containers on the test network reach the service.
    pub fn internal_addr(&self) -> String {
        format!("{}:{}", self.name, self.container_port)
    }

    /// `docker stop`: the image's stop signal, SIGKILL after 5 s.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the engine refuses.
    pub async fn stop(&self) -> Result<(), ServiceError> {
        self.container
            .stop_with_timeout(Some(STOP_GRACE_S))
            .await
            .map_err(|err| ServiceError::failed(format_args!("cannot stop {}", self.name), err))
    }

    /// `docker kill`: SIGKILL, no grace.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the engine refuses (e.g. the container is not running).
    pub async fn kill(&self) -> Result<(), ServiceError> {
        let options = KillContainerOptionsBuilder::new().signal("KILL").build();
        docker()
            .await?
            .kill_container(self.id(), Some(options))
            .await
            .map_err(|err| ServiceError::failed(format_args!("cannot kill {}", self.name), err))
    }

    /// `docker start` of a stopped or killed container.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the engine refuses.
    pub async fn start(&self) -> Result<(), ServiceError> {
        self.container
            .start()
            .await
            .map_err(|err| ServiceError::failed(format_args!("cannot start {}", self.name), err))
    }

    /// `docker restart`: stop (5 s grace) then start.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the engine refuses.
    pub async fn restart(&self) -> Result<(), ServiceError> {
        let options = RestartContainerOptionsBuilder::new()
            .t(STOP_GRACE_S)
            .build();
        docker()
            .await?
            .restart_container(self.id(), Some(options))
            .await
            .map_err(|err| ServiceError::failed(format_args!("cannot restart {}", self.name), err))
    }

    /// `docker pause`: freezes every process; connections hang instead of failing.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the engine refuses.
    pub async fn pause(&self) -> Result<(), ServiceError> {
        self.container
            .pause()
            .await
            .map_err(|err| ServiceError::failed(format_args!("cannot pause {}", self.name), err))
    }

    /// `docker unpause`.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the engine refuses.
    pub async fn unpause(&self) -> Result<(), ServiceError> {
        self.container
            .unpause()
            .await
            .map_err(|err| ServiceError::failed(format_args!("cannot unpause {}", self.name), err))
    }

    /// Whether the container is running (a paused container counts as running).
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the engine cannot be asked.
    pub async fn is_running(&self) -> Result<bool, ServiceError> {
        self.container
            .is_running()
            .await
            .map_err(|err| ServiceError::failed(format_args!("cannot inspect {}", self.name), err))
    }

    /// Whether the container is paused.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the engine cannot be asked.
    pub async fn is_paused(&self) -> Result<bool, ServiceError> {
        let inspect = docker()
            .await?
            .inspect_container(self.id(), None)
            .await
            .map_err(|err| {
                ServiceError::failed(format_args!("cannot inspect {}", self.name), err)
            })?;
        Ok(inspect
            .state
            .and_then(|state| state.paused)
            .unwrap_or(false))
    }

    /// Waits until the container has exited and returns its exit code.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when it is still running after `timeout`.
    pub async fn wait_exit(&self, timeout: Duration) -> Result<i64, ServiceError> {
        crate::services::poll(&format!("{} to exit", self.name), timeout, || async {
            match self.container.exit_code().await {
                Ok(Some(code)) => Ok(Some(code)),
                Ok(None) => Ok(None),
                Err(err) => Err(err.to_string()),
            }
        })
        .await
    }

    /// Everything the container wrote to stdout and stderr so far.
    ///
    /// # Errors
    /// [`ServiceError::Failed`] when the logs cannot be read.
    pub async fn logs(&self) -> Result<String, ServiceError> {
        let stdout = self.container.stdout_to_vec().await.map_err(|err| {
            ServiceError::failed(format_args!("cannot read logs of {}", self.name), err)
        })?;
        let stderr = self.container.stderr_to_vec().await.map_err(|err| {
            ServiceError::failed(format_args!("cannot read logs of {}", self.name), err)
        })?;
        let mut text = String::from_utf8_lossy(&stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&stderr));
        Ok(text)
    }
}
