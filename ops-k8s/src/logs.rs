//! Logs of every pod of a workload (kubectl's `logs deployment/x` reads one), every container
//! or a chosen one, merged in time order and filtered; and a followed stream across pods that
//! picks up pods as they appear.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::BoxStream;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use ops_core::platform::{LogLine, LogOptions, LogStream};
use ops_core::{OpsError, ResourceName, WorkloadRef};
use tokio::sync::mpsc;

use crate::error::{Error, Request, Result};
use crate::platform::{KubePlatform, Retry};

/// One container of one pod to read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Source {
    pod: String,
    container: String,
}

/// Split a kubelet line written with `timestamps=true` into its time and text.
pub(crate) fn split_timestamp(line: &str) -> (Option<jiff::Timestamp>, &str) {
    match line.split_once(' ') {
        Some((stamp, rest)) => match stamp.parse::<jiff::Timestamp>() {
            Ok(ts) => (Some(ts), rest),
            Err(_) => (None, line),
        },
        None => match line.parse::<jiff::Timestamp>() {
            Ok(ts) => (Some(ts), ""),
            Err(_) => (None, line),
        },
    }
}

/// A kept line as a [`LogLine`], or `None` when the filter drops it.
fn to_line(source: &Source, raw: &str, opts: &LogOptions) -> Option<LogLine> {
    let (timestamp, text) = split_timestamp(raw.trim_end_matches(['\r', '\n']));
    if opts.filter.as_ref().is_some_and(|f| !f.is_match(text)) {
        return None;
    }
    let instance = ResourceName::new(&source.pod).ok()?;
    let mut line = LogLine::new(instance, timestamp, text);
    line.stream = LogStream::Stdout;
    line.container = Some(source.container.clone());
    Some(line)
}

fn params(opts: &LogOptions, container: &str, follow: bool) -> LogParams {
    LogParams {
        container: Some(container.to_owned()),
        follow,
        previous: opts.previous,
        since_seconds: opts
            .since
            .map(|s| i64::try_from(s.as_secs().max(1)).unwrap_or(i64::MAX)),
        tail_lines: opts.tail.map(i64::from),
        timestamps: true,
        ..LogParams::default()
    }
}

/// The containers of `pod` to read: the chosen one, or all of them.
fn containers(pod: &Pod, chosen: Option<&str>) -> Vec<String> {
    if let Some(c) = chosen {
        return vec![c.to_owned()];
    }
    pod.spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

impl KubePlatform {
    /// The (pod, container) pairs a log call reads.
    async fn sources(&self, workload: &WorkloadRef, opts: &LogOptions) -> Result<Vec<Source>> {
        let object = self.object("logs", workload).await?;
        let pods = self.pods("logs", workload, &object).await?;
        let mut out = Vec::new();
        for (pod, _) in &pods {
            let Some(name) = pod.metadata.name.clone() else {
                continue;
            };
            if opts.instance.as_ref().is_some_and(|i| i.as_str() != name) {
                continue;
            }
            for container in containers(pod, opts.container.as_deref()) {
                out.push(Source {
                    pod: name.clone(),
                    container,
                });
            }
        }
        if out.is_empty()
            && let Some(instance) = &opts.instance
        {
            return Err(Error::NotFound {
                operation: "logs",
                target: workload.to_string(),
                reason: format!("pod {instance} does not belong to this workload"),
            });
        }
        Ok(out)
    }

    async fn read_one(
        &self,
        workload: &WorkloadRef,
        source: &Source,
        opts: &LogOptions,
    ) -> Result<Vec<LogLine>> {
        let ns = workload.namespace().as_str();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("get", "pods/log", ns);
        let target = format!("{ns}/pod/{}/{}", source.pod, source.container);
        let lp = params(opts, &source.container, false);
        let text = self
            .call("logs", &target, &req, Retry::Transient, || {
                api.logs(&source.pod, &lp)
            })
            .await?;
        Ok(text
            .lines()
            .filter_map(|raw| to_line(source, raw, opts))
            .collect())
    }

    /// Every kept line of every pod and container, merged in time order.
    pub(crate) async fn read_logs(
        &self,
        workload: &WorkloadRef,
        opts: &LogOptions,
    ) -> Result<Vec<LogLine>> {
        let sources = self.sources(workload, opts).await?;
        let many = sources.len() > 1;
        let per_source: Vec<Vec<LogLine>> = futures::stream::iter(sources)
            .map(|source| async move {
                match self.read_one(workload, &source, opts).await {
                    // Across many containers, one that has no previous instance (400) has
                    // simply nothing to say about `previous`.
                    Err(e) if many && opts.previous && e.status_code() == Some(400) => {
                        Ok(Vec::new())
                    }
                    other => other,
                }
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .try_collect()
            .await?;
        let mut all: Vec<LogLine> = per_source.into_iter().flatten().collect();
        // Stable: lines of one container keep their order when their times are equal.
        all.sort_by_key(|l| l.timestamp);
        Ok(all)
    }

    /// Follow the logs of every pod of `workload`, picking up pods that appear; the stream
    /// ends only when dropped (or on an error listing the pods).
    pub(crate) async fn follow(
        &self,
        workload: &WorkloadRef,
        opts: LogOptions,
    ) -> Result<BoxStream<'static, Result<LogLine, OpsError>>> {
        // Fail now, not inside the stream, when the workload cannot be read.
        let first = self.sources(workload, &opts).await?;
        let (tx, rx) = mpsc::channel::<Result<LogLine, OpsError>>(1024);
        let platform = self.clone();
        let workload = workload.clone();
        tokio::spawn(async move {
            platform.follow_loop(workload, opts, first, tx).await;
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed())
    }

    async fn follow_loop(
        &self,
        workload: WorkloadRef,
        opts: LogOptions,
        mut sources: Vec<Source>,
        tx: mpsc::Sender<Result<LogLine, OpsError>>,
    ) {
        let mut running: BTreeSet<Source> = BTreeSet::new();
        let mut last_seen: BTreeMap<Source, jiff::Timestamp> = BTreeMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            for source in sources {
                if running.insert(source.clone()) {
                    let since = last_seen.get(&source).copied();
                    let platform = self.clone();
                    let (workload, opts, tx) = (workload.clone(), opts.clone(), tx.clone());
                    tasks.spawn(async move {
                        let last = platform
                            .follow_one(&workload, &source, &opts, since, &tx)
                            .await;
                        (source, last)
                    });
                }
            }
            tokio::select! {
                () = tx.closed() => return,
                Some(Ok((source, last))) = tasks.join_next() => {
                    running.remove(&source);
                    if let Some(ts) = last {
                        last_seen.insert(source, ts);
                    }
                }
                () = tokio::time::sleep(self.config.pod_poll_interval) => {}
            }
            sources = match self.sources(&workload, &opts).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
        }
    }

    /// Follow one container until its stream ends; returns the time of the last line sent.
    async fn follow_one(
        &self,
        workload: &WorkloadRef,
        source: &Source,
        opts: &LogOptions,
        after: Option<jiff::Timestamp>,
        tx: &mpsc::Sender<Result<LogLine, OpsError>>,
    ) -> Option<jiff::Timestamp> {
        let ns = workload.namespace().as_str();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let req = Request::new("get", "pods/log", ns);
        let target = format!("{ns}/pod/{}/{}", source.pod, source.container);
        let mut lp = params(opts, &source.container, true);
        if let Some(after) = after {
            // Resume where the last stream ended (a restarted container starts a new one).
            lp.tail_lines = None;
            lp.since_seconds = None;
            lp.since_time = Some(after);
        }
        let stream = self
            .call("follow_logs", &target, &req, Retry::Transient, || {
                api.log_stream(&source.pod, &lp)
            })
            .await
            .ok()?;
        let mut lines = stream.lines();
        let mut last = after;
        while let Some(Ok(raw)) = lines.next().await {
            let Some(line) = to_line(source, &raw, opts) else {
                continue;
            };
            if let (Some(ts), Some(prev)) = (line.timestamp, after)
                && ts <= prev
            {
                continue;
            }
            last = line.timestamp.or(last);
            if tx.send(Ok(line)).await.is_err() {
                break;
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_timestamps_are_split_off() {
        let (ts, text) = split_timestamp("2026-12-01T19:00:00.123456789Z hello world");
        assert!(ts.is_some());
        assert_eq!(text, "hello world");
        let (ts, text) = split_timestamp("no stamp here");
        assert!(ts.is_none());
        assert_eq!(text, "no stamp here");
    }
}
