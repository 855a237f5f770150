//! Exec in a workload's pod over the pod exec WebSocket (kube-rs `Api::exec`, subprotocol
//! `v5.channel.k8s.io` or `v4.channel.k8s.io`): an argv, never a shell string; stdout and
//! stderr kept apart and bounded; the exit code read from the status channel; the whole exec
//! under one deadline. Only pods the workload controls are reached.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use ops_core::InstanceRef;
use ops_core::platform::{ExecCommand, ExecOutput};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};

/// Buffer between kube's WebSocket task and our readers.
const PIPE: usize = 64 * 1024;

/// One exec to run: argv, container choice, optional stdin, deadline.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    pub(crate) operation: &'static str,
    pub(crate) argv: Vec<String>,
    pub(crate) container: Option<&'a str>,
    pub(crate) stdin: Option<Vec<u8>>,
    pub(crate) timeout: Option<Duration>,
}

/// The container to run in: the one asked for, or the pod's only one.
fn container_of(
    pod: &Pod,
    asked: Option<&str>,
    operation: &'static str,
    target: &str,
) -> Result<String> {
    let names: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.as_str()))
        .collect();
    let invalid = |reason: String| Error::InvalidArgument {
        operation,
        target: target.to_owned(),
        reason,
    };
    match asked {
        Some(c) if names.contains(&c) => Ok(c.to_owned()),
        Some(c) => Err(invalid(format!(
            "the pod has no container {c:?}; its containers: {}",
            names.join(", ")
        ))),
        None => match names.as_slice() {
            [only] => Ok((*only).to_owned()),
            _ => Err(invalid(format!(
                "the pod has several containers: choose one of {}",
                names.join(", ")
            ))),
        },
    }
}

/// The exit code a status channel `Status` reports: 0 on success, the `ExitCode` cause of a
/// `NonZeroExitCode` failure; `Err` with the message for any other failure (the runtime could
/// not run the command at all).
pub(crate) fn exit_code(status: &Status) -> std::result::Result<i64, String> {
    match status.status.as_deref() {
        Some("Success") => Ok(0),
        _ if status.reason.as_deref() == Some("NonZeroExitCode") => status
            .details
            .iter()
            .flat_map(|d| d.causes.iter().flatten())
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref()?.trim().parse().ok())
            .ok_or_else(|| "a non-zero exit without an exit code".to_owned()),
        _ => Err(status
            .message
            .clone()
            .unwrap_or_else(|| "the command failed without a message".to_owned())),
    }
}

/// Reads `reader` to its end, refusing more than `limit` bytes.
async fn read_bounded<R: AsyncRead + Unpin>(
    reader: Option<R>,
    limit: usize,
    what: &'static str,
    operation: &'static str,
    target: &str,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let Some(reader) = reader else {
        return Ok(buf);
    };
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let read = reader.take(cap).read_to_end(&mut buf).await;
    if buf.len() > limit {
        return Err(Error::TooLarge {
            operation,
            target: target.to_owned(),
            what,
            limit,
        });
    }
    read.map_err(|e| Error::Stream {
        operation,
        target: target.to_owned(),
        source: Box::new(e),
    })?;
    Ok(buf)
}

impl KubePlatform {
    /// The pod `instance` names, checked to be controlled by its workload.
    async fn owned_pod(&self, operation: &'static str, instance: &InstanceRef) -> Result<Pod> {
        let workload = instance.workload();
        let object = self.object(operation, workload).await?;
        let pods = self.pods(operation, workload, &object).await?;
        pods.into_iter()
            .map(|(pod, _)| pod)
            .find(|pod| pod.metadata.name.as_deref() == Some(instance.name().as_str()))
            .ok_or_else(|| Error::NotFound {
                operation,
                target: instance.to_string(),
                reason: format!(
                    "pod {} does not belong to {workload}: only pods the workload controls are \
                     reached",
                    instance.name()
                ),
            })
    }

    /// Runs `run` in the pod `instance` names; the deadline covers finding the pod too.
    pub(crate) async fn run_in(&self, instance: &InstanceRef, run: Run<'_>) -> Result<ExecOutput> {
        let operation = run.operation;
        let deadline = run.timeout.unwrap_or(self.config.request_timeout);
        match tokio::time::timeout(deadline, self.run_unbounded(instance, run)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                operation,
                target: instance.to_string(),
                after: deadline,
            }),
        }
    }

    async fn run_unbounded(&self, instance: &InstanceRef, run: Run<'_>) -> Result<ExecOutput> {
        let operation = run.operation;
        let target = instance.to_string();
        let pod = self.owned_pod(operation, instance).await?;
        let container = container_of(&pod, run.container, operation, &target)?;
        let limit = self.config.exec_output_limit;
        if run.stdin.as_ref().is_some_and(|s| s.len() > limit) {
            return Err(Error::TooLarge {
                operation,
                target,
                what: "the input",
                limit,
            });
        }
        let ns = instance.workload().namespace().as_str();
        let name = instance.name().as_str();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let mut params = AttachParams::default()
            .container(container)
            .stdin(run.stdin.is_some())
            .stdout(true)
            .stderr(true);
        params.max_stdin_buf_size = Some(PIPE);
        params.max_stdout_buf_size = Some(PIPE);
        params.max_stderr_buf_size = Some(PIPE);
        let req = Request::new("create", "pods/exec", ns);
        // The command may already have run when an answer is lost: send it once.
        let mut attached = self
            .call(operation, &target, &req, Retry::RefusedOnly, || {
                api.exec(name, run.argv.clone(), &params)
            })
            .await?;
        let stdout = attached.stdout();
        let stderr = attached.stderr();
        let stdin_writer = attached.stdin();
        let status = attached.take_status();
        let feed = async {
            if let (Some(mut writer), Some(data)) = (stdin_writer, run.stdin) {
                // A command that exits without reading all of it closes the pipe: its status
                // tells what happened.
                let _ = writer.write_all(&data).await;
                let _ = writer.shutdown().await;
            }
            Ok(())
        };
        let status = async {
            Ok(match status {
                Some(s) => s.await,
                None => None,
            })
        };
        let (out, err, (), status) = tokio::try_join!(
            read_bounded(stdout, limit, "stdout", operation, &target),
            read_bounded(stderr, limit, "stderr", operation, &target),
            feed,
            status,
        )?;
        attached.join().await.map_err(|e| Error::Stream {
            operation,
            target: target.clone(),
            source: Box::new(e),
        })?;
        let exit_code = match status.as_ref().map(exit_code) {
            None => None,
            Some(Ok(code)) => Some(code),
            Some(Err(reason)) => {
                return Err(Error::CommandFailed {
                    operation,
                    target,
                    reason,
                });
            }
        };
        Ok(ExecOutput::new(exit_code, out, err))
    }

    /// [`ops_core::Platform::exec`]: `command`'s argv in its container (or the pod's only
    /// one), under its timeout or the request deadline.
    pub(crate) async fn exec_command(
        &self,
        instance: &InstanceRef,
        command: &ExecCommand,
    ) -> Result<ExecOutput> {
        let run = Run {
            operation: "exec",
            argv: command.argv().to_vec(),
            container: command.container.as_deref(),
            stdin: None,
            timeout: command.timeout,
        };
        self.run_in(instance, run).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(value: serde_json::Value) -> Status {
        serde_json::from_value(value).unwrap_or_default()
    }

    #[test]
    fn exit_codes_come_from_the_status_channel() {
        assert_eq!(
            exit_code(&status(serde_json::json!({"status": "Success"}))),
            Ok(0)
        );
        let failed = status(serde_json::json!({
            "status": "Failure", "reason": "NonZeroExitCode", "message": "exit 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
        }));
        assert_eq!(exit_code(&failed), Ok(3));
        let broken = status(serde_json::json!({
            "status": "Failure", "reason": "InternalError",
            "message": "executable file not found in $PATH",
        }));
        assert_eq!(
            exit_code(&broken),
            Err("executable file not found in $PATH".to_owned())
        );
    }
}
