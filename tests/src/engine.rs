//! The Docker engine: reachability and image presence, checked before testcontainers runs
//! (which would otherwise try to pull a missing image from a registry).

use bollard::Docker;
use tokio::sync::OnceCell;

use crate::error::ServiceError;
use crate::settings::ImageRef;

/// A client for the engine `DOCKER_HOST` names (or the local socket), version-negotiated.
/// A fresh client per call: each `#[tokio::test]` runs its own runtime, and a client's
/// connections belong to the runtime that made them.
pub(crate) async fn docker() -> Result<Docker, ServiceError> {
    let where_ =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
    let client = Docker::connect_with_defaults().map_err(|err| {
        ServiceError::Unavailable(format!("no Docker engine at {where_} ({err})"))
    })?;
    let client = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.negotiate_version(),
    )
    .await
    .map_err(|_| {
        ServiceError::Unavailable(format!(
            "the Docker engine at {where_} did not answer in 10 s"
        ))
    })?
    .map_err(|err| {
        ServiceError::Unavailable(format!("no Docker engine answers at {where_} ({err})"))
    })?;
    Ok(client)
}

/// Checks (once per process) that the Docker engine answers.
///
/// # Errors
/// [`ServiceError::Unavailable`] naming where it looked.
pub async fn ensure_engine() -> Result<(), ServiceError> {
    static ENGINE: OnceCell<Result<(), String>> = OnceCell::const_new();
    let outcome = ENGINE
        .get_or_init(|| async {
            let client = docker().await.map_err(|err| match err {
                ServiceError::Unavailable(reason) | ServiceError::Failed(reason) => reason,
            })?;
            client
                .ping()
                .await
                .map(|_| ())
                .map_err(|err| format!("the Docker engine does not answer ping ({err})"))
        })
        .await;
    outcome.clone().map_err(ServiceError::Unavailable)
}

/// Fails with [`ServiceError::Unavailable`] when our locally built `image` is missing.
/// Overridden images (`OPSBOOK_IMAGE_*`) are left to testcontainers, which pulls them.
pub(crate) async fn ensure_image(image: &ImageRef) -> Result<(), ServiceError> {
    ensure_engine().await?;
    if !image.is_default {
        return Ok(());
    }
    match docker().await?.inspect_image(&image.to_string()).await {
        Ok(_) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(ServiceError::Unavailable(format!(
            "image {image} is not built on this machine"
        ))),
        Err(err) => Err(ServiceError::failed(
            format_args!("cannot inspect image {image}"),
            err,
        )),
    }
}

/// Turns a testcontainers start error into a [`ServiceError`]; a failed pull (no registry
/// here) becomes "unavailable" with the provisioning hint.
pub(crate) fn start_error(
    image: &ImageRef,
    err: &testcontainers::TestcontainersError,
) -> ServiceError {
    let text = err.to_string();
    if text.contains("pull") || text.contains("No such image") || text.contains("not found") {
        ServiceError::Unavailable(format!(
            "image {image} is not available locally and could not be pulled ({text})"
        ))
    } else {
        ServiceError::failed(format_args!("cannot start a container from {image}"), text)
    }
}

/// A free TCP port on 127.0.0.1, for a host port that stays the same across restarts.
pub(crate) fn free_port() -> Result<u16, ServiceError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|err| ServiceError::failed("cannot find a free port", err))
}
