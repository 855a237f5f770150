//! Findings from a [`Platform::inspect`](crate::platform::Platform::inspect) reading (morning
//! checks): services without ready endpoints, troubled nodes, quotas near their limit and disk
//! space against the seeds' 80 / 85 / 90 % lines.

use crate::platform::{
    DiskSpace, EngineDiskUsage, Inspection, NodeStatus, QuotaStatus, Section, ServiceEndpoints,
};
use crate::run::{Finding, FindingLevel, Run};

/// Thresholds of what an inspection reads, with the seeds' values as defaults.
///
/// Disk: seed 002 warns above 80 % and pages above 90 %; seed 004 says "add storage" above
/// 85 %. A filesystem at or above `disk_warn` or `disk_high` is a warning (the finding says
/// which line it crossed), at or above `disk_critical` critical.
///
/// # Examples
/// ```
/// let l = ops_core::runbooks::InspectionLimits::default();
/// assert_eq!((l.disk_warn, l.disk_high, l.disk_critical), (0.8, 0.85, 0.9));
/// ```
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct InspectionLimits {
    /// Disk used over size that is worth a warning: 0.8 (seed 002: "Disk usage > 80%").
    pub disk_warn: f64,
    /// Disk used over size at which storage should be added: 0.85 (seed 004: "Disk Space
    /// Low > 85% → add storage").
    pub disk_high: f64,
    /// Disk used over size that pages: 0.9 (seed 002: "Disk usage > 90%", critical).
    pub disk_critical: f64,
    /// A quota resource used over hard that is a warning: 0.8 (at 1.0 new pods are refused,
    /// critical).
    pub quota_warn: f64,
    /// Requests over a node's allocatable CPU or memory that is a warning: 0.8 (seeds: CPU
    /// and memory "> 80% → investigation").
    pub node_requests_warn: f64,
    /// Namespace events read (newest): 20 (seed 004: `get events … | tail -20`).
    pub events: usize,
}

impl Default for InspectionLimits {
    fn default() -> Self {
        Self {
            disk_warn: 0.8,
            disk_high: 0.85,
            disk_critical: 0.9,
            quota_warn: 0.8,
            node_requests_warn: 0.8,
            events: 20,
        }
    }
}

impl InspectionLimits {
    /// The level of a disk at `ratio` used, and the line it crossed (`None` below every line).
    ///
    /// # Examples
    /// ```
    /// use ops_core::run::FindingLevel;
    /// let l = ops_core::runbooks::InspectionLimits::default();
    /// assert_eq!(l.disk_level(0.86), (FindingLevel::Warning, Some(0.85)));
    /// assert_eq!(l.disk_level(0.95), (FindingLevel::Critical, Some(0.9)));
    /// assert_eq!(l.disk_level(0.5), (FindingLevel::Info, None));
    /// ```
    pub fn disk_level(&self, ratio: f64) -> (FindingLevel, Option<f64>) {
        if ratio >= self.disk_critical {
            (FindingLevel::Critical, Some(self.disk_critical))
        } else if ratio >= self.disk_high {
            (FindingLevel::Warning, Some(self.disk_high))
        } else if ratio >= self.disk_warn {
            (FindingLevel::Warning, Some(self.disk_warn))
        } else {
            (FindingLevel::Info, None)
        }
    }
}

/// Every finding of one inspection.
pub(super) fn inspection_findings(run: &Run<'_>, limits: &InspectionLimits, i: &Inspection) {
    section(run, "services", &i.services, |s| service_findings(run, s));
    section(run, "nodes", &i.nodes, |n| node_findings(run, limits, n));
    section(run, "resource quotas", &i.quotas, |q| {
        quota_findings(run, limits, q);
    });
    section(run, "network policies", &i.network_policies, |names| {
        run.finding(Finding::info(format!(
            "{} network polic{}{}{}",
            names.len(),
            if names.len() == 1 { "y" } else { "ies" },
            if names.is_empty() { "" } else { ": " },
            names.join(", ")
        )));
    });
    section(run, "namespace events", &i.events, |events| {
        let warnings: Vec<_> = events.iter().filter(|e| e.warning).collect();
        let mut f = Finding::info(format!(
            "{} recent events, {} warnings",
            events.len(),
            warnings.len()
        ));
        for e in warnings.iter().rev().take(5) {
            f = f.with_evidence(format!("{} {}: {}", e.object, e.reason, e.message));
        }
        run.finding(f);
    });
    section(run, "disk space", &i.disks, |disks| {
        disk_findings(run, limits, disks);
    });
    section(run, "engine disk usage", &i.engine_disk_usage, |df| {
        engine_df_finding(run, df);
    });
}

/// Calls `read` with what was read; an unreadable section is a warning; an unsupported one
/// says nothing (the backend has no such thing).
fn section<T>(run: &Run<'_>, what: &str, s: &Section<T>, read: impl FnOnce(&T)) {
    match s {
        Section::Read(v) => read(v),
        Section::Unreadable(e) => {
            run.finding(Finding::warning(format!("{what} could not be read")).with_evidence(e));
        }
        Section::Unsupported(_) => {}
    }
}

fn service_findings(run: &Run<'_>, services: &[ServiceEndpoints]) {
    let mut fine = 0;
    for s in services {
        if !s.selects_instances {
            fine += 1;
            continue;
        }
        let names = |list: &[crate::platform::Endpoint]| {
            list.iter()
                .filter_map(|e| e.instance.clone().or_else(|| e.address.clone()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !s.has_ready_endpoint() {
            run.finding(
                Finding::critical(format!(
                    "service {} has no ready endpoint ({} not ready)",
                    s.name,
                    s.not_ready.len()
                ))
                .with_evidence(format!("not ready: {}", names(&s.not_ready))),
            );
        } else if !s.not_ready.is_empty() {
            run.finding(
                Finding::warning(format!(
                    "service {}: {} ready, {} not ready endpoints",
                    s.name,
                    s.ready.len(),
                    s.not_ready.len()
                ))
                .with_evidence(format!("not ready: {}", names(&s.not_ready))),
            );
        } else {
            fine += 1;
        }
    }
    run.finding(Finding::info(format!(
        "{fine} of {} services have every endpoint ready",
        services.len()
    )));
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "?".to_owned(), |r| format!("{:.0}%", r * 100.0))
}

fn node_findings(run: &Run<'_>, limits: &InspectionLimits, nodes: &[NodeStatus]) {
    for n in nodes {
        let mut troubles = Vec::new();
        if n.ready == Some(false) {
            troubles.push("NotReady");
        }
        if n.disk_pressure {
            troubles.push("DiskPressure");
        }
        if n.memory_pressure {
            troubles.push("MemoryPressure");
        }
        if n.pid_pressure {
            troubles.push("PIDPressure");
        }
        if n.unschedulable {
            troubles.push("SchedulingDisabled");
        }
        let (cpu, memory) = (n.cpu_requested_ratio(), n.memory_requested_ratio());
        let summary = format!(
            "node {}: cpu {} requested, memory {} requested",
            n.name,
            percent(cpu),
            percent(memory)
        );
        let crowded = [cpu, memory]
            .into_iter()
            .flatten()
            .any(|r| r >= limits.node_requests_warn);
        // A node that is not ready, or evicting pods for lack of disk, is an outage in the
        // making; memory and PID pressure and crowding are warnings.
        let level = if n.ready == Some(false) || n.disk_pressure {
            FindingLevel::Critical
        } else if !troubles.is_empty() || crowded {
            FindingLevel::Warning
        } else {
            FindingLevel::Info
        };
        let title = if troubles.is_empty() {
            summary
        } else {
            format!("{summary}; {}", troubles.join(", "))
        };
        let mut f = Finding::new(level, title);
        for c in n.conditions.iter().filter(|c| {
            (c.kind == "Ready" && c.status != "True") || (c.kind != "Ready" && c.status == "True")
        }) {
            f = f.with_evidence(format!(
                "{}={} {}",
                c.kind,
                c.status,
                c.message.as_deref().unwrap_or_default()
            ));
        }
        run.finding(f);
    }
}

fn quota_findings(run: &Run<'_>, limits: &InspectionLimits, quotas: &[QuotaStatus]) {
    for q in quotas {
        let worst = q.fullest().and_then(|u| u.ratio).unwrap_or(0.0);
        let level = if worst >= 1.0 {
            FindingLevel::Critical
        } else if worst >= limits.quota_warn {
            FindingLevel::Warning
        } else {
            FindingLevel::Info
        };
        let mut f = Finding::new(
            level,
            format!(
                "resource quota {}: fullest {}",
                q.name,
                q.fullest().map_or_else(
                    || "nothing measurable".to_owned(),
                    |u| format!(
                        "{} {}/{} ({})",
                        u.resource,
                        u.used,
                        u.hard,
                        percent(u.ratio)
                    )
                )
            ),
        );
        for u in &q.resources {
            f = f.with_evidence(format!("{}: {} of {}", u.resource, u.used, u.hard));
        }
        run.finding(f);
    }
}

fn disk_findings(run: &Run<'_>, limits: &InspectionLimits, disks: &[DiskSpace]) {
    for d in disks {
        let Some(ratio) = d.used_ratio() else {
            continue;
        };
        let (level, line) = limits.disk_level(ratio);
        let crossed = line.map_or_else(String::new, |l| {
            format!(" (over the {:.0}% line)", l * 100.0)
        });
        run.finding(Finding::new(
            level,
            format!(
                "disk {}: {}% used (as df counts), {} GiB available of {} GiB{crossed}",
                d.what,
                d.percent_used().unwrap_or(0),
                d.available_bytes >> 30,
                d.total_bytes >> 30
            ),
        ));
    }
}

fn engine_df_finding(run: &Run<'_>, df: &EngineDiskUsage) {
    run.finding(Finding::info(format!(
        "engine objects use {} MiB: images {} MiB ({}), containers {} MiB ({}), volumes {} MiB ({}), build cache {} MiB",
        df.total_bytes() >> 20,
        df.images_bytes >> 20,
        df.images,
        df.containers_bytes >> 20,
        df.containers,
        df.volumes_bytes >> 20,
        df.volumes,
        df.build_cache_bytes >> 20
    )));
}
