//! [`ScriptedProviderCheck`]: a provider check that plays back results, and answers 401 to a
//! wrong credential when told which one is right.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};

use super::ScriptedProbe;
use crate::error::{ErrorKind, OpsError};
use crate::probe::{Credential, Exchange, Probe as _, ProbeResult, ProviderCheck};

/// A [`ProviderCheck`] that returns scripted results (like [`ScriptedProbe`]); with
/// [`ScriptedProviderCheck::requiring`] it answers `401` unless sent that secret.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use ops_core::probe::{Credential, ProbeResult, ProviderCheck};
/// use ops_core::testing::ScriptedProviderCheck;
/// let p = ScriptedProviderCheck::always("stripe", ProbeResult::up()).requiring("sk_right");
/// assert_eq!(p.check(None).await?.exchange.and_then(|e| e.status()), Some(401));
/// assert!(p.check(Some(Credential::bearer("sk_right".into()))).await?.outcome.is_up());
/// assert_eq!(p.credentials_seen(), [None, Some("authorization: bearer".to_owned())]);
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct ScriptedProviderCheck {
    script: ScriptedProbe,
    required: Option<SecretString>,
    seen: Mutex<Vec<Option<String>>>,
}

impl ScriptedProviderCheck {
    /// A check with an empty script (healthy until given results).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            script: ScriptedProbe::new(name),
            required: None,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// A check that always returns `result`.
    pub fn always(name: impl Into<String>, result: ProbeResult) -> Self {
        Self::new(name).then(result)
    }

    /// Append a result to the script (the last one repeats).
    #[must_use]
    pub fn then(mut self, result: ProbeResult) -> Self {
        self.script = self.script.then(result);
        self
    }

    /// Make the next check return an error of `kind` (the check itself failing).
    #[must_use]
    pub fn fail_next(mut self, kind: ErrorKind) -> Self {
        self.script = self.script.fail_next(kind);
        self
    }

    /// Answer `401` (down, [`Exchange::answered`]) unless the credential's secret is `secret`.
    #[must_use]
    pub fn requiring(mut self, secret: &str) -> Self {
        self.required = Some(SecretString::from(secret.to_owned()));
        self
    }

    /// How many checks ran.
    pub fn checks(&self) -> usize {
        self.script.checks()
    }

    /// For each check, the header the credential came in (`authorization: bearer` for a
    /// bearer token), `None` when none was sent. Never the secret.
    pub fn credentials_seen(&self) -> Vec<Option<String>> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl ProviderCheck for ScriptedProviderCheck {
    fn name(&self) -> &str {
        self.script.name()
    }

    async fn check(&self, credential: Option<Credential>) -> Result<ProbeResult, OpsError> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(credential.as_ref().map(|c| {
                c.header_name()
                    .map_or_else(|| "authorization: bearer".to_owned(), str::to_owned)
            }));
        if let Some(required) = &self.required {
            let right = credential
                .as_ref()
                .is_some_and(|c| c.secret().expose_secret() == required.expose_secret());
            if !right {
                return Ok(ProbeResult::down(format!("{}: 401", self.name()))
                    .with_exchange(Exchange::answered(401)));
            }
        }
        self.script.check().await
    }
}
