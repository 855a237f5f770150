//! Scale a service up (clone a container's config with the next container number) or down
//! (remove the highest numbers first), as `docker compose up --scale` does.

use ops_core::WorkloadRef;
use ops_core::platform::ScaleChange;

use crate::error::{Error, Result};
use crate::labels;
use crate::platform::ComposePlatform;
use crate::recreate::{CloneAs, clone_body};

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
        if replicas < from {
            let grace = self.config().stop_timeout;
            for m in members.iter().rev().take((from - replicas) as usize) {
                self.remove_container(&m.id, &m.name, grace).await?;
            }
        } else if replicas > from {
            let template = self.inspect(&members[0].id).await?;
            let mut next = members.iter().map(|m| m.number).max().unwrap_or(0);
            for _ in from..replicas {
                next += 1;
                let name = labels::container_name(project, service, next);
                let (body, extra) = clone_body(
                    &template,
                    &CloneAs::Scale {
                        number: next,
                        name: &name,
                    },
                );
                let id = self.create_from(&name, body, extra).await?;
                self.start_container(&id, &name).await?;
            }
        }
        Ok(ScaleChange::new(from, replicas))
    }
}
