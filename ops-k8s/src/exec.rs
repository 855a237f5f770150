//! Exec in a workload's pod over the pod exec WebSocket (kube-rs `Api::exec`, subprotocol
//! `v5.channel.k8s.io` or `v4.channel.k8s.io`): an argv, never a shell string; stdout and
//! stderr kept apart and bounded; the exit code read from the status channel; the whole exec
//! under one deadline. Only pods the workload controls are reached.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, AttachedProcess};
use ops_core::InstanceRef;
use ops_core::archive::SingleFileError;
use ops_core::platform::{CopySink, ExecCommand, ExecOutput};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};

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

/// How a [`KubePlatform::run_into`] ended: the command's exit code and stderr (stdout went
/// to the sink), and the file's name and size or why the stream stopped.
#[derive(Debug)]
pub(crate) struct Streamed {
    pub(crate) output: ExecOutput,
    pub(crate) file: std::result::Result<(String, u64), SingleFileError>,
}

/// A reader whose every read must make progress within `idle` (else `TimedOut`).
struct IdleRead<R> {
    inner: Option<R>,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl<R> IdleRead<R> {
    fn new(inner: Option<R>, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for IdleRead<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if let Poll::Ready(r) = Pin::new(inner).poll_read(cx, buf) {
            let next = tokio::time::Instant::now() + this.idle;
            this.timer.as_mut().reset(next);
            return Poll::Ready(r);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the command wrote nothing within the deadline",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Waits for kube's exec task to end; the exit code the status reports (`None` without a
/// status), or the runtime's failure to run the command.
async fn finish(
    attached: AttachedProcess,
    status: Option<&Status>,
    operation: &'static str,
    target: &str,
) -> Result<Option<i64>> {
    attached.join().await.map_err(|e| Error::Stream {
        operation,
        target: target.to_owned(),
        source: Box::new(e),
    })?;
    match status.map(exit_code) {
        None => Ok(None),
        Some(Ok(code)) => Ok(Some(code)),
        Some(Err(reason)) => Err(Error::CommandFailed {
            operation,
            target: target.to_owned(),
            reason,
        }),
    }
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

    /// Starts `run` in the pod `instance` names (its container found, its stdin checked
    /// against the limit), each request under the request deadline.
    async fn attach(&self, instance: &InstanceRef, run: &Run<'_>) -> Result<AttachedProcess> {
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
        self.call(operation, &target, &req, Retry::RefusedOnly, || {
            api.exec(name, run.argv.clone(), &params)
        })
        .await
    }

    async fn run_unbounded(&self, instance: &InstanceRef, run: Run<'_>) -> Result<ExecOutput> {
        let operation = run.operation;
        let target = instance.to_string();
        let limit = self.config.exec_output_limit;
        let mut attached = self.attach(instance, &run).await?;
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
        let exit_code = finish(attached, status.as_ref(), operation, &target).await?;
        Ok(ExecOutput::new(exit_code, out, err))
    }

    /// Runs `run` with its stdout read as a tar archive whose one regular file, `member`,
    /// streams into `sink` (256 KiB at a time: no output limit, nothing held). Each read of
    /// stdout must arrive within the request timeout; the whole copy has no deadline of its
    /// own. Returns the command's exit code and stderr (bounded) with the outcome of the
    /// stream; a refused entry (directory, link, other name, second entry) or a failing sink
    /// ends it at once, without waiting for the command.
    pub(crate) async fn run_into(
        &self,
        instance: &InstanceRef,
        run: Run<'_>,
        sink: &mut CopySink,
        member: &str,
    ) -> Result<Streamed> {
        let operation = run.operation;
        let target = instance.to_string();
        let idle = self.config.request_timeout;
        let timed_out = || Error::Timeout {
            operation,
            target: target.clone(),
            after: idle,
        };
        let mut attached = tokio::time::timeout(idle, self.attach(instance, &run))
            .await
            .map_err(|_| timed_out())??;
        let mut stdout = IdleRead::new(attached.stdout(), idle);
        let stderr = read_bounded(
            attached.stderr(),
            self.config.exec_output_limit,
            "stderr",
            operation,
            &target,
        );
        tokio::pin!(stderr);
        let mut err = None;
        let file = {
            let stream = ops_core::archive::stream_single_file(&mut stdout, sink, Some(member));
            tokio::pin!(stream);
            loop {
                tokio::select! {
                    r = &mut stream => break r,
                    e = &mut stderr, if err.is_none() => err = Some(e),
                }
            }
        };
        if matches!(
            file,
            Err(SingleFileError::NotAFile { .. }
                | SingleFileError::OtherName { .. }
                | SingleFileError::SeveralEntries { .. }
                | SingleFileError::Write(_))
        ) {
            return Ok(Streamed {
                output: ExecOutput::new(None, Vec::new(), Vec::new()),
                file,
            });
        }
        // What tar writes after the end-of-archive blocks (padding to its record size).
        let _ = tokio::io::copy(&mut (&mut stdout).take(1 << 20), &mut tokio::io::sink()).await;
        drop(stdout);
        let status = attached.take_status();
        let rest = async {
            let err = match err {
                Some(e) => e?,
                None => stderr.await?,
            };
            let status = match status {
                Some(s) => s.await,
                None => None,
            };
            Ok::<_, Error>((err, status))
        };
        let (err, status) = tokio::time::timeout(idle, rest)
            .await
            .map_err(|_| timed_out())??;
        let exit_code = finish(attached, status.as_ref(), operation, &target).await?;
        Ok(Streamed {
            output: ExecOutput::new(exit_code, Vec::new(), err),
            file,
        })
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
