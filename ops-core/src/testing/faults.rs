//! Failure injection and mutation logs shared by the fakes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use crate::error::{ErrorKind, OpsError};

/// Injected failures by operation name, plus the log of calls and mutations.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    pending: BTreeMap<&'static str, VecDeque<ErrorKind>>,
    always: BTreeMap<&'static str, ErrorKind>,
    calls: Vec<String>,
    mutations: Vec<String>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Make the next call of `op` fail with `kind` (queued: call again for more failures).
    pub fn fail_next(&self, op: &'static str, kind: ErrorKind) {
        self.lock().pending.entry(op).or_default().push_back(kind);
    }

    /// Make every call of `op` fail with `kind`.
    pub fn fail_always(&self, op: &'static str, kind: ErrorKind) {
        self.lock().always.insert(op, kind);
    }

    /// Stop failing `op`.
    pub fn heal(&self, op: &'static str) {
        let mut s = self.lock();
        s.always.remove(op);
        s.pending.remove(op);
    }

    /// Record a call of `op` on `target`; fails when a failure is injected for `op`.
    ///
    /// # Errors
    /// The injected failure.
    pub fn call(
        &self,
        backend: &'static str,
        op: &'static str,
        target: &str,
    ) -> Result<(), OpsError> {
        let mut s = self.lock();
        s.calls.push(format!("{op} {target}"));
        let injected = s
            .pending
            .get_mut(op)
            .and_then(VecDeque::pop_front)
            .or_else(|| s.always.get(op).copied());
        match injected {
            Some(kind) => {
                Err(OpsError::new(kind, backend, op, target.to_owned())
                    .with_detail("injected failure"))
            }
            None => Ok(()),
        }
    }

    /// Record a mutation (after the call succeeded).
    pub fn mutate(&self, entry: impl Into<String>) {
        self.lock().mutations.push(entry.into());
    }

    /// Every call, as `"op target"`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Every mutation, as `"op target"` (plus detail where useful).
    pub fn mutations(&self) -> Vec<String> {
        self.lock().mutations.clone()
    }
}

/// The accessors every stateful fake shares: state locking, builder-style seeding, failure
/// injection and the call/mutation logs. The fake has `state: Mutex<State>` and `faults: Faults`.
macro_rules! fake_common {
    ($fake:ident, $trait_name:literal) => {
        impl $fake {
            fn lock(&self) -> std::sync::MutexGuard<'_, State> {
                self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
            }

            fn with_state(self, f: impl FnOnce(&mut State)) -> Self {
                f(&mut self.lock());
                self
            }

            #[doc = concat!("Make the next call of `op` (a `", $trait_name, "` method name) fail with `kind`.")]
            #[must_use]
            pub fn fail_next(self, op: &'static str, kind: crate::error::ErrorKind) -> Self {
                self.faults.fail_next(op, kind);
                self
            }

            /// The failure injector, to inject while a test runs.
            pub fn faults(&self) -> &super::Faults {
                &self.faults
            }

            /// Every mutation, as `"op target"` (plus detail where useful).
            pub fn mutations(&self) -> Vec<String> {
                self.faults.mutations()
            }

            /// Every call, reads included.
            pub fn calls(&self) -> Vec<String> {
                self.faults.calls()
            }
        }
    };
}
pub(crate) use fake_common;
