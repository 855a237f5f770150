//! [`ScriptedProbe`]: a probe that plays back results, or follows a fake workload's health.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::FakePlatform;
use crate::error::{ErrorKind, OpsError};
use crate::probe::{Probe, ProbeResult};
use crate::refs::WorkloadRef;

#[derive(Debug)]
enum Script {
    /// Play these in order; the last one repeats.
    Results(VecDeque<ProbeResult>),
    /// Up exactly when the workload is healthy on the fake platform.
    Tracks(Arc<FakePlatform>, WorkloadRef),
}

/// A [`Probe`] that returns scripted results.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::probe::{Probe, ProbeResult};
/// use ops_core::testing::ScriptedProbe;
/// let p = ScriptedProbe::new("api").then(ProbeResult::down("503")).then(ProbeResult::up());
/// assert!(!p.check().await?.outcome.is_up());
/// assert!(p.check().await?.outcome.is_up());
/// assert!(p.check().await?.outcome.is_up()); // the last result repeats
/// assert_eq!(p.checks(), 3);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct ScriptedProbe {
    name: String,
    script: Mutex<Script>,
    checks: Mutex<usize>,
    fail: Mutex<Option<ErrorKind>>,
}

impl ScriptedProbe {
    /// A probe with an empty script (reports up until given results).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            script: Mutex::new(Script::Results(VecDeque::new())),
            checks: Mutex::new(0),
            fail: Mutex::new(None),
        }
    }

    /// A probe that always returns `result`.
    pub fn always(name: impl Into<String>, result: ProbeResult) -> Self {
        Self::new(name).then(result)
    }

    /// A probe that is up exactly when `workload` is healthy on `platform`.
    pub fn tracking(
        name: impl Into<String>,
        platform: Arc<FakePlatform>,
        workload: WorkloadRef,
    ) -> Self {
        let p = Self::new(name);
        *p.script.lock().unwrap_or_else(PoisonError::into_inner) =
            Script::Tracks(platform, workload);
        p
    }

    /// Append a result to the script.
    #[must_use]
    pub fn then(self, result: ProbeResult) -> Self {
        if let Script::Results(q) = &mut *self.script.lock().unwrap_or_else(PoisonError::into_inner)
        {
            q.push_back(result);
        }
        self
    }

    /// Make the next check return an error of `kind` (the probe itself failing).
    #[must_use]
    pub fn fail_next(self, kind: ErrorKind) -> Self {
        *self.fail.lock().unwrap_or_else(PoisonError::into_inner) = Some(kind);
        self
    }

    /// How many checks ran.
    pub fn checks(&self) -> usize {
        *self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Probe for ScriptedProbe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<ProbeResult, OpsError> {
        *self.checks.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        if let Some(kind) = self
            .fail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            return Err(OpsError::new(kind, "fake", "check", self.name.clone())
                .with_detail("injected failure"));
        }
        let mut script = self.script.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(match &mut *script {
            Script::Results(q) if q.len() > 1 => q.pop_front().unwrap_or_else(ProbeResult::up),
            Script::Results(q) => q.front().cloned().unwrap_or_else(ProbeResult::up),
            Script::Tracks(platform, workload) => match platform.status(workload) {
                Some(s) if s.is_healthy() => ProbeResult::up(),
                Some(s) => {
                    ProbeResult::down(format!("{} of {} instances ready", s.ready, s.desired))
                }
                None => ProbeResult::down("workload not found"),
            },
        })
    }
}
