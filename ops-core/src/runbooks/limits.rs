//! `oom`'s limit raise: when instances were OOM-killed at their memory limit, raise it by a
//! configured step ([`MemoryStep`]) up to a configured ceiling ([`OomLimits`]), instead of only
//! restarting.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Targets;
use super::verify::{verify_healthy, wait_rollout};
use crate::error::OpsError;
use crate::incident::{Severity, Signals};
use crate::notify::Notification;
use crate::platform::{
    ContainerResources, ContainerSelector, InstancePhase, MemoryQuantity, ResourceUpdate,
    ResourceUsage, RestartOptions, WorkloadStatus, change_lines,
};
use crate::run::{Acted, Finding, Run, RunOutcome, Step};

/// How much `oom` raises a memory limit: a factor (`x1.5`) or an amount (`+256Mi`, Kubernetes
/// notation).
///
/// # Examples
/// ```
/// use ops_core::platform::MemoryQuantity;
/// use ops_core::runbooks::MemoryStep;
/// let step: MemoryStep = "x1.5".parse()?;
/// assert_eq!(step.apply(MemoryQuantity::from_bytes(256 << 20)).to_string(), "384Mi");
/// let step: MemoryStep = "+256Mi".parse()?;
/// assert_eq!(step.apply(MemoryQuantity::from_bytes(256 << 20)).to_string(), "512Mi");
/// assert!("x0.9".parse::<MemoryStep>().is_err()); // never a decrease
/// assert!("256Mi".parse::<MemoryStep>().is_err()); // say x or +
/// # Ok::<(), ops_core::OpsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum MemoryStep {
    /// Multiply by this (more than 1, at most 16).
    Factor(f64),
    /// Add this.
    Add(MemoryQuantity),
}

impl MemoryStep {
    /// `limit` raised by this step, rounded up to a whole MiB when multiplied (a limit like
    /// `402653184` reads worse than `384Mi`); saturating.
    pub fn apply(self, limit: MemoryQuantity) -> MemoryQuantity {
        const MIB: u64 = 1 << 20;
        match self {
            Self::Add(more) => {
                MemoryQuantity::from_bytes(limit.bytes().saturating_add(more.bytes()))
            }
            Self::Factor(f) => {
                #[allow(
                    clippy::cast_precision_loss,
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "a limit times a factor in 1..=16; exactness below a MiB does not matter and the float saturates"
                )]
                let raised = (limit.bytes() as f64 * f).ceil() as u64;
                MemoryQuantity::from_bytes(raised.div_ceil(MIB).saturating_mul(MIB).max(raised))
            }
        }
    }
}

impl FromStr for MemoryStep {
    type Err = OpsError;
    fn from_str(s: &str) -> Result<Self, OpsError> {
        let refuse = |why: &str| OpsError::invalid("memory_step", s, why.to_owned());
        if let Some(factor) = s.strip_prefix('x') {
            let f: f64 = factor
                .parse()
                .map_err(|_| refuse("a factor is written x1.5"))?;
            if !(f > 1.0 && f <= 16.0) {
                return Err(refuse("the factor must be more than 1 and at most 16"));
            }
            return Ok(Self::Factor(f));
        }
        if let Some(amount) = s.strip_prefix('+') {
            let q = MemoryQuantity::parse(amount)?;
            if q.bytes() == 0 {
                return Err(refuse("the amount must be more than 0"));
            }
            return Ok(Self::Add(q));
        }
        Err(refuse("write a factor (x1.5) or an amount to add (+256Mi)"))
    }
}

impl fmt::Display for MemoryStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Factor(x) => write!(f, "x{x}"),
            Self::Add(q) => write!(f, "+{q}"),
        }
    }
}

impl TryFrom<String> for MemoryStep {
    type Error = OpsError;
    fn try_from(value: String) -> Result<Self, OpsError> {
        value.parse()
    }
}

impl From<MemoryStep> for String {
    fn from(value: MemoryStep) -> Self {
        value.to_string()
    }
}

/// What `oom` may do to a memory limit.
///
/// # Examples
/// ```
/// use ops_core::runbooks::OomLimits;
/// let cfg: OomLimits = serde_json::from_str(r#"{"step": "x1.5", "ceiling": "2Gi"}"#)?;
/// assert_eq!(cfg.ceiling.unwrap().to_string(), "2Gi");
/// assert_eq!(OomLimits::default().ceiling, None); // no ceiling: limits are never raised
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct OomLimits {
    /// How much a raise adds: default `x1.5`.
    pub step: MemoryStep,
    /// The highest limit `oom` sets. `None` (the default) turns raising off: `oom` then only
    /// restarts, as before, and says that a ceiling enables the raise.
    pub ceiling: Option<MemoryQuantity>,
    /// Instances still running well below their limit mean the OOM kills came from elsewhere
    /// (the node's memory pressure), which a higher limit does not fix: below this fraction of
    /// the limit on every running instance with a known usage (crash-looping ones report next
    /// to nothing and are not counted), no raise (default 0.5).
    pub far_below: f64,
}

impl Default for OomLimits {
    fn default() -> Self {
        Self {
            step: MemoryStep::Factor(1.5),
            ceiling: None,
            far_below: 0.5,
        }
    }
}

/// What `oom` decided about the memory limit.
#[derive(Debug)]
enum Decision {
    /// Raise these containers' limits (before, after).
    Raise(Vec<ContainerResources>, Vec<ContainerResources>),
    /// No raise; the finding says why; `escalate` when only a human can go further.
    Keep { why: Finding, escalate: bool },
}

fn decide(
    cfg: &OomLimits,
    resources: Option<&[ContainerResources]>,
    usage: &[ResourceUsage],
) -> Decision {
    let keep = |why: Finding| Decision::Keep {
        why,
        escalate: false,
    };
    let Some(resources) = resources else {
        return keep(Finding::warning(
            "the memory limits could not be read: not raised",
        ));
    };
    let limited: Vec<&ContainerResources> = resources
        .iter()
        .filter(|c| c.limits.memory.is_some())
        .collect();
    if limited.is_empty() {
        return keep(Finding::warning(
            "no container has a memory limit: the OOM kills come from the node's or host's memory pressure, which a limit raise does not fix",
        ));
    }
    let ratios: Vec<f64> = usage
        .iter()
        .filter_map(ResourceUsage::memory_ratio)
        .collect();
    if !ratios.is_empty() && ratios.iter().all(|r| *r < cfg.far_below) {
        let highest = ratios.iter().copied().fold(0.0, f64::max);
        return keep(Finding::warning(format!(
            "the instances use at most {:.0}% of their memory limit (below {:.0}%): the kills were not at the limit, so it is not raised",
            highest * 100.0,
            cfg.far_below * 100.0
        )));
    }
    let Some(ceiling) = cfg.ceiling else {
        return keep(Finding::info(
            "raising memory limits is off: set oom.ceiling (and oom.step) to let oom raise them",
        ));
    };
    let before: Vec<ContainerResources> = limited.into_iter().cloned().collect();
    let mut after = before.clone();
    for c in &mut after {
        if let Some(limit) = c.limits.memory {
            c.limits.memory = Some(cfg.step.apply(limit).min(ceiling).max(limit));
        }
    }
    if after == before {
        let at: Vec<String> = before
            .iter()
            .map(|c| format!("{}: {}", c.container, c.limits))
            .collect();
        return Decision::Keep {
            why: Finding::critical(format!(
                "the memory limit is at the configured ceiling of {ceiling}: it is not raised further; find the leak or raise the ceiling"
            ))
            .with_evidence(at.join("; ")),
            escalate: true,
        };
    }
    Decision::Raise(before, after)
}

/// When instances were OOM-killed at their limit, raise it (approved, journaled), roll it
/// out or restart (Compose updates in place, so the killed containers need a restart), wait
/// and verify. `Ok(None)` when no raise was decided: the caller restarts as before.
pub(crate) async fn raise_memory_limit(
    run: &Run<'_>,
    t: &Targets,
    status: &WorkloadStatus,
    usage: &[ResourceUsage],
) -> Result<Option<RunOutcome>, OpsError> {
    let instances: Vec<String> = status
        .oom_killed_instances()
        .map(|i| i.name.to_string())
        .collect();
    let instances = instances.as_slice();
    let running = running_usage(status, usage);
    let resources = run
        .read(Step::read_only("resources"), || async {
            match t.platform.resources(&t.workload).await {
                Err(e) if e.kind() == crate::ErrorKind::Unsupported => Ok(None),
                other => other.map(Some),
            }
        })
        .await?;
    let (before, after) = match decide(&t.config.oom, resources.as_deref(), &running) {
        Decision::Raise(before, after) => (before, after),
        Decision::Keep { why, escalate } => {
            run.finding(why);
            if escalate {
                escalate_at_ceiling(run, t).await;
            }
            return Ok(None);
        }
    };
    let lines = change_lines(&before, &after);
    let step = Step::disruptive("raise_memory_limit")
        .describe(format!(
            "raise the memory limit of {} by {} (ceiling {})",
            t.workload,
            t.config.oom.step,
            t.config
                .oom
                .ceiling
                .map_or_else(String::new, |c| c.to_string())
        ))
        .target(&t.workload)
        .changes_all(lines.iter().map(|l| format!("{}: {l}", t.workload)))
        .change(format!(
            "{}: OOM-killed instances {}",
            t.workload,
            instances.join(", ")
        ));
    let durable = t.platform.capabilities().durable_config;
    if !durable {
        run.summary(format!(
            "A limit raised here lasts only until the next deploy from the definition of {} (e.g. `docker compose up`): put the new value there too.",
            t.workload
        ));
    }
    let act = || async {
        let mut changes = Vec::new();
        // One update per container: each to its own new value, each guarded by what the
        // plan saw.
        for (b, a) in before.iter().zip(&after) {
            let Some(limit) = a.limits.memory else {
                continue;
            };
            let update = ResourceUpdate::new(ContainerSelector::named(b.container.clone()))
                .limit_memory(limit)
                .expecting(vec![b.clone()]);
            changes.push(t.platform.set_resources(&t.workload, update).await?);
        }
        Ok::<_, OpsError>(changes)
    };
    let changes = match run.act(step, act).await? {
        Acted::Done(changes) => changes,
        Acted::Planned => return Ok(Some(RunOutcome::Planned)),
        Acted::Denied { .. } => return Ok(Some(RunOutcome::Unresolved)),
    };
    let rolled_out = changes.iter().any(|c| c.rolled_out);
    for change in &changes {
        run.finding(Finding::info(format!(
            "memory limit raised: {}",
            change.lines().join("; ")
        )));
        if let Some(place) = &change.persist_in {
            run.finding(
                Finding::warning("the raised limit will not last on its own")
                    .with_evidence(format!("set it in {place}")),
            );
        }
    }
    if !rolled_out && let Some(stopped) = restart_with_new_limit(run, t, instances).await? {
        return Ok(Some(stopped));
    }
    Ok(Some(
        if wait_rollout(run, t, "wait_rolled_out").await?
            && verify_healthy(run, t, "verify_health").await?
        {
            RunOutcome::Recovered
        } else {
            RunOutcome::Unresolved
        },
    ))
}

/// The usage of the instances running now: only they say what the workload uses (a
/// crash-looping one reports next to nothing).
fn running_usage(status: &WorkloadStatus, usage: &[ResourceUsage]) -> Vec<ResourceUsage> {
    usage
        .iter()
        .filter(|u| {
            status.instances.iter().any(|i| {
                i.name == u.instance && i.phase == InstancePhase::Running && i.waiting.is_none()
            })
        })
        .cloned()
        .collect()
}

/// A critical feature down (instances keep dying: P1 by default) and a notification: only a
/// human can go past the ceiling.
async fn escalate_at_ceiling(run: &Run<'_>, t: &Targets) {
    run.observe(Signals::default().with_critical_feature_down(true));
    run.notify(
        Notification::new(
            run.severity().unwrap_or(Severity::High),
            format!("{}: OOM-killed at the memory ceiling", t.workload),
            format!(
                "{} keeps being OOM-killed and its memory limit is at the configured ceiling: a human must find the leak or raise the ceiling.",
                t.workload
            ),
        )
        .with_dedup_key(format!("oom:{}", t.workload)),
    )
    .await;
}

/// An in-place update (Compose) does not bring back what was killed: restart. `Some` ends
/// the run (planned or denied).
async fn restart_with_new_limit(
    run: &Run<'_>,
    t: &Targets,
    instances: &[String],
) -> Result<Option<RunOutcome>, OpsError> {
    let restart = Step::disruptive("restart")
        .describe(format!(
            "rolling restart of {} with the new limit",
            t.workload
        ))
        .target(&t.workload)
        .changes_all(instances.iter().map(|i| format!("replace instance {i}")));
    Ok(
        match run
            .act(restart, || {
                t.platform
                    .rollout_restart(&t.workload, RestartOptions::default())
            })
            .await?
        {
            Acted::Done(()) => None,
            Acted::Planned => Some(RunOutcome::Planned),
            Acted::Denied { .. } => Some(RunOutcome::Unresolved),
        },
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::platform::ResourceValues;

    fn limited(name: &str, limit: &str) -> ContainerResources {
        ContainerResources::new(name)
            .with_limits(ResourceValues::default().with_memory(limit.parse().unwrap()))
    }

    fn cfg(ceiling: &str) -> OomLimits {
        OomLimits {
            ceiling: Some(ceiling.parse().unwrap()),
            ..OomLimits::default()
        }
    }

    #[test]
    fn the_raise_stops_at_the_ceiling_and_escalates_there() {
        let raise = decide(&cfg("512Mi"), Some(&[limited("app", "256Mi")]), &[]);
        let Decision::Raise(_, after) = raise else {
            panic!("{raise:?}")
        };
        assert_eq!(after[0].limits.memory.unwrap().to_string(), "384Mi");
        let capped = decide(&cfg("300Mi"), Some(&[limited("app", "256Mi")]), &[]);
        let Decision::Raise(_, after) = capped else {
            panic!("{capped:?}")
        };
        assert_eq!(after[0].limits.memory.unwrap().to_string(), "300Mi");
        let at = decide(&cfg("256Mi"), Some(&[limited("app", "256Mi")]), &[]);
        assert!(
            matches!(at, Decision::Keep { escalate: true, .. }),
            "{at:?}"
        );
        // A limit already above the ceiling is never lowered.
        let above = decide(&cfg("128Mi"), Some(&[limited("app", "256Mi")]), &[]);
        assert!(
            matches!(above, Decision::Keep { escalate: true, .. }),
            "{above:?}"
        );
    }

    #[test]
    fn no_limit_far_below_or_no_ceiling_means_no_raise() {
        let none = decide(&cfg("1Gi"), Some(&[ContainerResources::new("app")]), &[]);
        assert!(matches!(
            none,
            Decision::Keep {
                escalate: false,
                ..
            }
        ));
        let usage = [ResourceUsage::new(
            "api-0".parse().unwrap(),
            0.1,
            10 << 20,
            Some(256 << 20),
        )];
        let far = decide(&cfg("1Gi"), Some(&[limited("app", "256Mi")]), &usage);
        assert!(
            matches!(
                far,
                Decision::Keep {
                    escalate: false,
                    ..
                }
            ),
            "{far:?}"
        );
        let off = decide(&OomLimits::default(), Some(&[limited("app", "256Mi")]), &[]);
        assert!(matches!(
            off,
            Decision::Keep {
                escalate: false,
                ..
            }
        ));
    }

    proptest! {
        #[test]
        fn steps_parse_without_panicking_and_round_trip(s in ".{0,20}") {
            if let Ok(step) = s.parse::<MemoryStep>() {
                prop_assert_eq!(step.to_string().parse::<MemoryStep>().unwrap(), step);
            }
        }

        #[test]
        fn a_step_never_lowers_a_limit(bytes in 0u64..(1 << 50), f in 1.01f64..16.0, add in 1u64..(1 << 40)) {
            let limit = MemoryQuantity::from_bytes(bytes);
            prop_assert!(MemoryStep::Factor(f).apply(limit) >= limit);
            prop_assert!(MemoryStep::Add(MemoryQuantity::from_bytes(add)).apply(limit) > limit);
        }
    }
}
