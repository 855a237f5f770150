//! Logs: tail, since, previous run, stdout/stderr demultiplexed, a filter, every instance
//! merged in time order, and follow as a stream. Lines are split as they arrive: memory is
//! bounded by the lines kept, never by the size of the log.

use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::{LogsOptions, LogsOptionsBuilder};
use futures::stream::{self, BoxStream, StreamExt as _};
use ops_core::platform::{LogFilter, LogLine, LogOptions, LogStream, merge_logs};
use ops_core::{OpsError, ResourceName, WorkloadRef};

use crate::error::{Error, Result};
use crate::platform::{ComposePlatform, Member};
use crate::raw::RawError;

/// Splits a byte stream into lines; a line split across chunks is reassembled.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feed a chunk; `emit` gets every complete line without its `\n` (and `\r`).
    pub(crate) fn push(&mut self, chunk: &[u8], mut emit: impl FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (line, tail) = rest.split_at(pos);
            if self.partial.is_empty() {
                emit(trim_cr(line));
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                emit(trim_cr(&whole));
            }
            rest = &tail[1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// The last line when the stream ended without a newline.
    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            let whole = std::mem::take(&mut self.partial);
            emit(trim_cr(&whole));
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Split `2024-05-01T10:00:00.123456789Z text` into timestamp and text.
pub(crate) fn split_timestamp(line: &str) -> (Option<jiff::Timestamp>, &str) {
    match line.split_once(' ') {
        Some((ts, text)) => match ts.parse::<jiff::Timestamp>() {
            Ok(t) => (Some(t), text),
            Err(_) => (None, line),
        },
        None => match line.parse::<jiff::Timestamp>() {
            Ok(t) => (Some(t), ""),
            Err(_) => (None, line),
        },
    }
}

/// Per-stream splitters and the conversion of chunks into [`LogLine`]s.
struct Demux {
    instance: ResourceName,
    filter: Option<LogFilter>,
    /// Lines stamped at or after this are dropped: the engine's `until` has whole seconds
    /// only, so the exact end of a previous run is cut here.
    until: Option<jiff::Timestamp>,
    stdout: LineSplitter,
    stderr: LineSplitter,
}

impl Demux {
    fn lines(&mut self, output: &LogOutput, out: &mut Vec<LogLine>) {
        match output {
            LogOutput::StdErr { message } => self.frame(LogStream::Stderr, message, out),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                self.frame(LogStream::Stdout, message, out);
            }
            LogOutput::StdIn { .. } => {}
        }
    }

    fn frame(&mut self, stream: LogStream, bytes: &[u8], out: &mut Vec<LogLine>) {
        let splitter = match stream {
            LogStream::Stderr => &mut self.stderr,
            LogStream::Stdout => &mut self.stdout,
        };
        let instance = &self.instance;
        let (filter, until) = (self.filter.as_ref(), self.until);
        splitter.push(bytes, |line| {
            push_line(instance, filter, until, stream, line, out);
        });
    }

    fn finish(&mut self, out: &mut Vec<LogLine>) {
        let instance = &self.instance;
        let (filter, until) = (self.filter.as_ref(), self.until);
        self.stdout
            .finish(|l| push_line(instance, filter, until, LogStream::Stdout, l, out));
        self.stderr
            .finish(|l| push_line(instance, filter, until, LogStream::Stderr, l, out));
    }
}

fn push_line(
    instance: &ResourceName,
    filter: Option<&LogFilter>,
    until: Option<jiff::Timestamp>,
    stream: LogStream,
    line: &[u8],
    out: &mut Vec<LogLine>,
) {
    let text = String::from_utf8_lossy(line);
    let (timestamp, text) = split_timestamp(&text);
    if let (Some(until), Some(at)) = (until, timestamp)
        && at >= until
    {
        return;
    }
    if filter.is_some_and(|f| !f.is_match(text)) {
        return;
    }
    let mut l = LogLine::new(instance.clone(), timestamp, text);
    l.stream = stream;
    out.push(l);
}

fn unix_secs(t: jiff::Timestamp) -> i32 {
    i32::try_from(t.as_second()).unwrap_or(i32::MAX)
}

/// The error of a fast-path read that failed (`Unsupported` is the caller's to handle: it
/// falls back to bollard before anything was delivered).
fn raw_error(err: RawError, operation: &'static str, name: &str, idle: Duration) -> Error {
    match err {
        RawError::Timeout => Error::Timeout {
            operation,
            target: name.to_owned(),
            after: idle,
        },
        RawError::Io(err) => Error::engine(operation, name, err.into()),
        RawError::Status(status_code, message) => Error::engine(
            operation,
            name,
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            },
        ),
        RawError::Unsupported => Error::engine(
            operation,
            name,
            std::io::Error::other("the engine answered in a form the log reader cannot read")
                .into(),
        ),
    }
}

fn stream_of(code: u8) -> LogStream {
    if code == 2 {
        LogStream::Stderr
    } else {
        LogStream::Stdout
    }
}

impl ComposePlatform {
    /// The engine path of a log request, as the fast path sends it.
    async fn raw_path(&self, id: &str, opts: &LogsOptions) -> Result<String> {
        let v = self.docker().await?.client_version();
        Ok(format!(
            "/v{}.{}/containers/{id}/logs?stdout=1&stderr=1&timestamps={}&follow={}&tail={}&since={}&until={}",
            v.major_version,
            v.minor_version,
            u8::from(opts.timestamps),
            u8::from(opts.follow),
            opts.tail,
            opts.since,
            opts.until
        ))
    }

    /// Read a container's log through the fast path; `Ok(false)` when it does not apply
    /// (no plain endpoint, TTY, chunked) and nothing was delivered.
    async fn raw_frames(
        &self,
        id: &str,
        name: &str,
        opts: &LogsOptions,
        on_frame: impl FnMut(u8, &[u8]),
    ) -> Result<bool> {
        let Some(endpoint) = self.raw_endpoint() else {
            return Ok(false);
        };
        let path = self.raw_path(id, opts).await?;
        let idle = self.config().request_timeout;
        match crate::raw::read_frames(endpoint, &path, idle, on_frame).await {
            Ok(()) => Ok(true),
            Err(RawError::Unsupported) => Ok(false),
            Err(err) => Err(raw_error(err, "logs", name, idle)),
        }
    }

    /// Engine log options for one container, and the exact instant the lines must end
    /// before (for `previous`: the current run's start, which the engine's whole-second
    /// `until` cannot express; the engine is asked up to the next whole second and
    /// [`Demux`] drops the rest).
    async fn log_options(
        &self,
        member: &Member,
        opts: &LogOptions,
        follow: bool,
        timestamps: bool,
    ) -> Result<(LogsOptions, Option<jiff::Timestamp>)> {
        let mut b = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(timestamps)
            .follow(follow);
        if let Some(tail) = opts.tail {
            b = b.tail(&tail.to_string());
        }
        if let Some(since) = opts.since {
            let from = jiff::Timestamp::now()
                .checked_sub(
                    jiff::SignedDuration::try_from(since).unwrap_or(jiff::SignedDuration::MAX),
                )
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            b = b.since(unix_secs(from).max(1));
        }
        let mut until = None;
        if opts.previous {
            // A container keeps one log across restarts; the previous run ends where the
            // current one started. A crash loop restarts within the second its previous
            // run began, so `until` rounds up and the lines are cut at the exact instant
            // (a `tail` then counts the current run's lines of that second too, at the engine).
            let inspect = self.inspect(&member.id).await?;
            let started = crate::status::parse_time(
                inspect.state.as_ref().and_then(|s| s.started_at.as_deref()),
            );
            match started {
                Some(t)
                    if inspect.restart_count.unwrap_or(0) > 0
                        || t > jiff::Timestamp::UNIX_EPOCH =>
                {
                    b = b.until(unix_secs(t).saturating_add(1));
                    until = Some(t);
                }
                _ => {}
            }
        }
        Ok((b.build(), until))
    }

    fn select_members(
        workload: &WorkloadRef,
        members: Vec<Member>,
        opts: &LogOptions,
    ) -> Result<Vec<Member>> {
        match &opts.instance {
            None => Ok(members),
            Some(one) => {
                let kept: Vec<Member> = members
                    .into_iter()
                    .filter(|m| m.name == one.as_str())
                    .collect();
                if kept.is_empty() {
                    Err(Error::NotFound {
                        operation: "logs",
                        target: format!("{workload}/{one}"),
                    })
                } else {
                    Ok(kept)
                }
            }
        }
    }

    /// Lines of one container (collected; bounded by `tail`/`since`), idle deadline per chunk.
    async fn container_logs(&self, member: &Member, opts: &LogOptions) -> Result<Vec<LogLine>> {
        let docker = self.docker().await?;
        let (engine_opts, until) = self.log_options(member, opts, false, true).await?;
        let mut demux = Self::demux(member, opts, until)?;
        let mut out = Vec::new();
        let raw = self
            .raw_frames(&member.id, &member.name, &engine_opts, |stream, bytes| {
                demux.frame(stream_of(stream), bytes, &mut out);
            })
            .await?;
        if raw {
            demux.finish(&mut out);
            return Ok(out);
        }
        let mut s = docker.logs(&member.id, Some(engine_opts));
        let idle = self.config().request_timeout;
        while let Some(chunk) = self
            .call_within(idle, "logs", &member.name, async {
                s.next().await.transpose()
            })
            .await?
        {
            demux.lines(&chunk, &mut out);
        }
        demux.finish(&mut out);
        Ok(out)
    }

    /// Log lines of every container of the service (or `opts.instance`), filtered, merged in
    /// time order. `tail` and `since` apply per container, before the filter (as `docker
    /// logs` does); `previous` reads the run before the last restart. Lines always carry
    /// their timestamp (needed for the merge); the text never includes it.
    ///
    /// # Errors
    /// `NotFound`; engine errors; `Timeout` when the engine stalls.
    pub async fn service_logs(
        &self,
        workload: &WorkloadRef,
        opts: &LogOptions,
    ) -> Result<Vec<LogLine>> {
        let members = Self::select_members(workload, self.members(workload, "logs").await?, opts)?;
        let per =
            futures::future::try_join_all(members.iter().map(|m| self.container_logs(m, opts)))
                .await?;
        Ok(merge_logs(per))
    }

    /// A line splitter and filter for one member's log, keeping lines stamped before `until`.
    fn demux(member: &Member, opts: &LogOptions, until: Option<jiff::Timestamp>) -> Result<Demux> {
        let instance = ResourceName::new(&member.name).map_err(|_| Error::InvalidName {
            what: "container",
            value: member.name.clone(),
            reason: "not a valid instance name",
        })?;
        Ok(Demux {
            instance,
            filter: opts.filter.clone(),
            until,
            stdout: LineSplitter::default(),
            stderr: LineSplitter::default(),
        })
    }

    /// Follow one container through the fast path, a block of frames at a time as the
    /// consumer asks (memory: one block and the lines it held); `None` when the fast path
    /// does not apply (no plain endpoint, a TTY container, an answer it cannot read).
    async fn raw_follow(
        &self,
        member: &Member,
        opts: &LogsOptions,
        demux: Demux,
    ) -> Result<Option<BoxStream<'static, Result<LogLine, OpsError>>>> {
        let Some(endpoint) = self.raw_endpoint() else {
            return Ok(None);
        };
        let inspect = self.inspect(&member.id).await?;
        if inspect.config.and_then(|c| c.tty).unwrap_or(false) {
            return Ok(None);
        }
        let path = self.raw_path(&member.id, opts).await?;
        let idle = self.config().request_timeout;
        let reader = match crate::raw::FrameReader::open(endpoint, &path, idle).await {
            Ok(reader) => reader,
            Err(RawError::Unsupported) => return Ok(None),
            Err(err) => return Err(raw_error(err, "follow_logs", &member.name, idle)),
        };
        let name = member.name.clone();
        let lines = stream::unfold(Some((reader, demux)), move |state| {
            let name = name.clone();
            async move {
                let (mut reader, mut demux) = state?;
                let mut lines = Vec::new();
                // A follower waits as long as the log is quiet: no idle deadline.
                let more = loop {
                    match reader
                        .next_frames(None, |code, bytes| {
                            demux.frame(stream_of(code), bytes, &mut lines);
                        })
                        .await
                    {
                        Ok(true) if lines.is_empty() => {}
                        Ok(true) => break Ok(true),
                        Ok(false) => {
                            demux.finish(&mut lines);
                            break Ok(false);
                        }
                        Err(err) => break Err(err),
                    }
                };
                let mut batch: Vec<Result<LogLine, OpsError>> = lines.into_iter().map(Ok).collect();
                match more {
                    Ok(true) => Some((batch, Some((reader, demux)))),
                    Ok(false) => Some((batch, None)),
                    Err(err) => {
                        batch.push(Err(raw_error(err, "follow_logs", &name, idle).into()));
                        Some((batch, None))
                    }
                }
            }
        });
        Ok(Some(lines.flat_map(stream::iter).boxed()))
    }

    /// Follow the service's logs (every container, or `opts.instance`) as one stream, lines
    /// in arrival order. Starts with `tail` lines per container when set. Plain engine
    /// endpoints go through the fast path, others through bollard.
    ///
    /// # Errors
    /// `NotFound`; engine errors.
    pub async fn follow_service_logs(
        &self,
        workload: &WorkloadRef,
        opts: &LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, OpsError>>> {
        let members =
            Self::select_members(workload, self.members(workload, "follow_logs").await?, opts)?;
        let docker = self.docker().await?.clone();
        let mut streams = Vec::with_capacity(members.len());
        for m in members {
            let (engine_opts, until) = self.log_options(&m, opts, true, true).await?;
            if let Some(s) = self
                .raw_follow(&m, &engine_opts, Self::demux(&m, opts, until)?)
                .await?
            {
                streams.push(s);
                continue;
            }
            let demux = Self::demux(&m, opts, until)?;
            let name = m.name.clone();
            let s = docker
                .logs(&m.id, Some(engine_opts))
                .scan(demux, move |demux, chunk| {
                    let batch: Vec<Result<LogLine, OpsError>> = match chunk {
                        Ok(c) => {
                            let mut out = Vec::new();
                            demux.lines(&c, &mut out);
                            out.into_iter().map(Ok).collect()
                        }
                        Err(e) => vec![Err(OpsError::from(Error::engine(
                            "follow_logs",
                            name.clone(),
                            e,
                        )))],
                    };
                    futures::future::ready(Some(stream::iter(batch)))
                })
                .flatten()
                .boxed();
            streams.push(s);
        }
        Ok(stream::select_all(streams).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_are_reassembled() {
        let mut s = LineSplitter::default();
        let mut got = Vec::new();
        s.push(b"one\ntw", |l| {
            got.push(String::from_utf8_lossy(l).into_owned());
        });
        s.push(b"o\r\nthree", |l| {
            got.push(String::from_utf8_lossy(l).into_owned());
        });
        s.finish(|l| got.push(String::from_utf8_lossy(l).into_owned()));
        assert_eq!(got, ["one", "two", "three"]);
    }

    #[test]
    fn timestamps_are_split_off() {
        let (t, text) = split_timestamp("2024-05-01T10:00:00.123456789Z hello world");
        assert_eq!(text, "hello world");
        assert_eq!(t.unwrap().as_second(), 1_714_557_600);
        assert_eq!(split_timestamp("no stamp").0, None);
    }

    #[test]
    fn demux_keeps_streams_apart_and_filters() {
        let mut d = Demux {
            instance: "shop-api-1".parse().unwrap(),
            filter: Some(LogFilter::new("err").unwrap()),
            until: None,
            stdout: LineSplitter::default(),
            stderr: LineSplitter::default(),
        };
        let mut out = Vec::new();
        d.lines(
            &LogOutput::StdErr {
                message: "2024-05-01T10:00:00Z err 1\n".into(),
            },
            &mut out,
        );
        d.lines(
            &LogOutput::StdOut {
                message: "2024-05-01T10:00:01Z ok\n".into(),
            },
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].stream, LogStream::Stderr);
        assert_eq!(out[0].text, "err 1");
    }

    /// The previous run of a crash loop ends within the second the current one started:
    /// its lines are kept up to that instant, the current run's are not.
    #[test]
    fn previous_run_is_cut_at_the_exact_start_of_the_current_one() {
        let started: jiff::Timestamp = "2024-05-01T10:00:00.500Z".parse().unwrap();
        let mut d = Demux {
            instance: "shop-api-1".parse().unwrap(),
            filter: None,
            until: Some(started),
            stdout: LineSplitter::default(),
            stderr: LineSplitter::default(),
        };
        let mut out = Vec::new();
        d.lines(
            &LogOutput::StdOut {
                message: "2024-05-01T10:00:00.100Z crashing\n2024-05-01T10:00:00.500Z starting\n2024-05-01T10:00:00.900Z up\n".into(),
            },
            &mut out,
        );
        d.finish(&mut out);
        let texts: Vec<_> = out.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["crashing"]);
    }
}
