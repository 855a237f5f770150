//! Exec an argv in a container (never a shell string), with a deadline.

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt as _;
use ops_core::InstanceRef;
use ops_core::platform::{ExecCommand, ExecOutput};

use crate::error::{Error, Result};
use crate::platform::ComposePlatform;

impl ComposePlatform {
    /// Run `command` in the container and collect stdout, stderr and the exit code.
    /// The deadline is `command.timeout`, or the request timeout.
    ///
    /// # Errors
    /// `NotFound` when the container is not part of the service; `Conflict` when it is not
    /// running; `Timeout` past the deadline (the process keeps running in the container).
    pub async fn exec_in(
        &self,
        instance: &InstanceRef,
        command: &ExecCommand,
    ) -> Result<ExecOutput> {
        let inspect = self.resolve_instance(instance, "exec").await?;
        let id = inspect.id.unwrap_or_default();
        let name = instance.name().as_str();
        let docker = self.docker().await?;
        let config = CreateExecOptions::<String> {
            cmd: Some(command.argv().to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..CreateExecOptions::default()
        };
        let created = match self
            .call("create_exec", name, docker.create_exec(&id, config))
            .await
        {
            Err(e) if e.status_code() == Some(409) => {
                return Err(Error::Conflict {
                    operation: "exec",
                    target: instance.to_string(),
                    reason: "the container is not running".to_owned(),
                });
            }
            other => other?,
        };
        let deadline = command.timeout.unwrap_or(self.config().request_timeout);
        let run = async {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            if let StartExecResults::Attached { mut output, .. } =
                docker.start_exec(&created.id, None).await?
            {
                while let Some(chunk) = output.next().await {
                    match chunk? {
                        LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                        LogOutput::StdOut { message } | LogOutput::Console { message } => {
                            stdout.extend_from_slice(&message);
                        }
                        LogOutput::StdIn { .. } => {}
                    }
                }
            }
            let inspected = docker.inspect_exec(&created.id).await?;
            Ok::<_, bollard::errors::Error>(ExecOutput::new(inspected.exit_code, stdout, stderr))
        };
        self.call_within(deadline, "exec", name, run).await
    }
}
