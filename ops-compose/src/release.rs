//! Releases on Compose: run another image by recreating the service's containers with it
//! ([`ComposePlatform::recreate_service`]: one at a time, each waited for until ready, the
//! old image kept in a label so `rollback` returns to it).

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::TryStreamExt as _;
use ops_core::WorkloadRef;
use ops_core::platform::{ImageChange, ImageUpdate};

use crate::error::{Error, Result};
use crate::labels;
use crate::platform::ComposePlatform;
use crate::recreate::RecreateOptions;

impl ComposePlatform {
    /// Make sure `image` is in the engine, pulling it when it is not, before any container
    /// is touched. The pull is bounded by [`crate::ComposeConfig::request_timeout`].
    ///
    /// # Errors
    /// The pull's failure (an unknown tag, an unreachable registry) as an engine error of
    /// operation `pull_image`; `Timeout`.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(compose: ops_compose::ComposePlatform) -> Result<(), ops_compose::Error> {
    /// compose.ensure_image("registry.example.com/shop/api:1.5").await?;
    /// # Ok(()) }
    /// ```
    pub async fn ensure_image(&self, image: &str) -> Result<()> {
        let docker = self.docker().await?;
        match self
            .call("inspect_image", image, docker.inspect_image(image))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.status_code() == Some(404) => {}
            Err(e) => return Err(e),
        }
        let opts = CreateImageOptionsBuilder::new().from_image(image).build();
        let pull = docker
            .create_image(Some(opts), None, None)
            .try_collect::<Vec<_>>();
        self.call("pull_image", image, pull).await?;
        Ok(())
    }

    /// Run `update.image` in the service: pull it when missing (before anything changes),
    /// then recreate the containers with it one at a time, each waited for until ready
    /// (running, and healthy when it has a HEALTHCHECK). Each new container is labelled
    /// with the image it replaced, so [`ComposePlatform::rollback_image`] returns to it. The
    /// change lasts until the next `docker compose up`, which recreates from the compose
    /// file: [`ImageChange::persist_in`] says where the image must be written.
    ///
    /// # Errors
    /// `Unsupported` for a server-side dry run; `NotFound`; `InvalidInput` for a container
    /// other than the service; the pull's error (nothing changed); as
    /// [`ComposePlatform::recreate_service`] (`Unready` names the container that did not
    /// become ready: it and those before it run the new image, those after it the old one).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo(compose: ops_compose::ComposePlatform) -> Result<(), ops_core::OpsError> {
    /// use ops_core::platform::ImageUpdate;
    /// let api = ops_core::WorkloadRef::compose_service("shop", "api")?;
    /// let change = compose.release_image(&api, &ImageUpdate::new("shop/api:1.5".parse()?)).await?;
    /// println!("write it in {}", change.persist_in.unwrap_or_default());
    /// # Ok(()) }
    /// ```
    pub async fn release_image(
        &self,
        workload: &WorkloadRef,
        update: &ImageUpdate,
    ) -> std::result::Result<ImageChange, ops_core::OpsError> {
        let (_, service) = labels::project_service(workload)?;
        let target = workload.to_string();
        // A compose service runs one image: its container is the service itself.
        let container = update
            .select_container(&[service], crate::error::BACKEND, &target)?
            .to_owned();
        if update.dry_run {
            return Err(Error::Unsupported {
                operation: "set_image",
                target,
                reason: "the Docker engine has no server-side dry run; plan the step through RunContext in Mode::DryRun".to_owned(),
            }
            .into());
        }
        let inspected = self.inspect_members(workload, "set_image").await?;
        let from = inspected
            .first()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.image.clone());
        let image = update.image.to_string();
        let mut change = ImageChange::new(container, from.clone(), update.image.clone(), false);
        change.persist_in = Some(format!("image: of {}", self.definition(workload).await?));
        let all_current = inspected
            .iter()
            .all(|i| i.config.as_ref().and_then(|c| c.image.as_deref()) == Some(image.as_str()));
        if all_current {
            return Ok(change);
        }
        self.ensure_image(&image).await?;
        let opts = RecreateOptions::default().with_image(image);
        Box::pin(self.recreate_service(workload, &opts)).await?;
        change.rollout_started = true;
        Ok(change)
    }
}
