//! Scale a service up (clone a container's config with the next container number) or down
//! (remove the highest numbers first), as `docker compose up --scale` does.

use ops_core::WorkloadRef;
use ops_core::platform::ScaleChange;

use crate::error::{Error, Result};
use crate::labels;
use crate::platform::ComposePlatform;
use crate::recreate::{CloneAs, RecreatePoint, clone_body};

impl ComposePlatform {
    /// Set the number of containers of the service. New containers clone the lowest-numbered
    /// container's config with the next `com.docker.compose.container-number`, are named
    /// `project-service-N`, and get engine-chosen host ports (fixed host ports would clash).
    ///
    /// # Errors
    /// `InvalidInput` for 0 (use stop: removing every container would lose the config compose
    /// needs to scale back up); `NotFound`; engine errors.
    pub async fn scale_service(
        &self,
        workload: &WorkloadRef,
        replicas: u32,
        expect_current: Option<u32>,
    ) -> Result<ScaleChange> {
        if replicas == 0 {
            return Err(Error::InvalidArgument {
                operation: "scale",
                target: workload.to_string(),
                reason: "scaling a compose service to 0 removes the containers its config lives in; stop it instead".to_owned(),
            });
        }
        let (project, service) = labels::project_service(workload)?;
        let members = self.members(workload, "scale").await?;
        let from = u32::try_from(members.len()).unwrap_or(u32::MAX);
        if let Some(expected) = expect_current
            && expected != from
        {
            return Err(Error::Conflict {
                operation: "scale",
                target: workload.to_string(),
                reason: format!("expected {expected} containers, found {from}: the plan is stale"),
            });
        }
        if replicas < from {
            let grace = self.config().stop_timeout;
            for m in members.iter().rev().take((from - replicas) as usize) {
                self.remove_container(&m.id, &m.name, grace).await?;
            }
        } else if replicas > from {
            let template = self.inspect(&members[0].id).await?;
            let first = members.iter().map(|m| m.number).max().unwrap_or(0) + 1;
            // All or nothing: the containers this call made are removed again when one
            // cannot be created or started.
            let mut made: Vec<(String, String)> = Vec::new();
            for number in first..first + (replicas - from) {
                let name = labels::container_name(project, service, number);
                let (body, extra) = clone_body(
                    &template,
                    &CloneAs::Scale {
                        number,
                        name: &name,
                    },
                );
                let step = async {
                    let id = self.create_from(&name, body, extra).await?;
                    made.push((id.clone(), name.clone()));
                    if number > first {
                        // Only once one new container runs, so the undo has two to remove.
                        self.checkpoint(RecreatePoint::AfterCreate, &name)?;
                    }
                    self.start_container(&id, &name).await
                }
                .await;
                if let Err(cause) = step {
                    return Err(self.unmake(workload, made, cause).await);
                }
            }
        }
        Ok(ScaleChange::new(from, replicas))
    }

    /// Remove the containers a failed scale-up made; the error is `cause`, or
    /// [`Error::Compensation`] naming the containers that could not be removed.
    async fn unmake(
        &self,
        workload: &WorkloadRef,
        made: Vec<(String, String)>,
        cause: Error,
    ) -> Error {
        let grace = self.config().stop_timeout;
        let mut failed = Vec::new();
        for (id, name) in made.into_iter().rev() {
            if let Err(e) = self.remove_container(&id, &name, grace).await {
                failed.push(format!("removing {name}: {e}"));
            }
        }
        if failed.is_empty() {
            cause
        } else {
            Error::Compensation {
                operation: "scale",
                target: workload.to_string(),
                source: Box::new(cause),
                failed,
            }
        }
    }
}
