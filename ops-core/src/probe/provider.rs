//! [`ProviderCheck`]: a check of an external provider (payment, email, LLM API) that sends a
//! credential read at run time, and the [`Credential`] it sends.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use super::ProbeResult;
use crate::error::OpsError;

/// A credential for one check: a secret and the header that carries it.
///
/// `Debug` shows the header name only; the secret is never shown.
///
/// # Examples
/// ```
/// use ops_core::probe::Credential;
/// let c = Credential::bearer("sk_live_123".into());
/// assert_eq!(c.header_name(), None);
/// let c = Credential::header("X-Api-Key", "sk_live_123".into());
/// assert_eq!(c.header_name(), Some("X-Api-Key"));
/// assert!(!format!("{c:?}").contains("sk_live"));
/// ```
#[derive(Clone)]
pub struct Credential {
    header: Option<String>,
    secret: SecretString,
}

impl Credential {
    /// Sent as `Authorization: Bearer <secret>`.
    pub fn bearer(secret: SecretString) -> Self {
        Self {
            header: None,
            secret,
        }
    }

    /// Sent as the value of the header `name`, e.g. `X-Api-Key`.
    pub fn header(name: impl Into<String>, secret: SecretString) -> Self {
        Self {
            header: Some(name.into()),
            secret,
        }
    }

    /// The header name, `None` for a bearer token.
    pub fn header_name(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// The secret (expose it only to put it on the wire).
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field(
                "header",
                &self.header.as_deref().unwrap_or("authorization: bearer"),
            )
            .finish_non_exhaustive()
    }
}

/// A check of an external provider with a credential read at run time (see
/// [`crate::runbooks::provider_failure`]).
///
/// Like [`super::Probe::check`], a provider that is down, refuses the credential or rate
/// limits is an `Ok` result; [`ProbeResult::exchange`] says how the exchange ended, which
/// is what the runbook classifies. The credential is sent, never shown: implementations keep
/// it out of results, errors and logs.
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use async_trait::async_trait;
/// use ops_core::probe::{Credential, Exchange, ProbeResult, ProviderCheck};
/// use secrecy::ExposeSecret as _;
/// #[derive(Debug)]
/// struct Payments;
/// #[async_trait]
/// impl ProviderCheck for Payments {
///     fn name(&self) -> &str { "payments" }
///     async fn check(&self, c: Option<Credential>) -> Result<ProbeResult, ops_core::OpsError> {
///         Ok(match c {
///             Some(c) if c.secret().expose_secret() == "right" => ProbeResult::up().with_exchange(Exchange::answered(200)),
///             _ => ProbeResult::down("401").with_exchange(Exchange::answered(401)),
///         })
///     }
/// }
/// let r = Payments.check(None).await?;
/// assert_eq!(r.exchange.and_then(|e| e.status()), Some(401));
/// # Ok::<(), ops_core::OpsError>(()) }).unwrap();
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ProviderCheck: fmt::Debug + Send + Sync + 'static {
    /// The provider's name, as in configuration (never a URL with credentials).
    fn name(&self) -> &str;

    /// Check the provider once, within the check's own timeout, sending `credential` when
    /// given.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] when the credential cannot be sent (e.g. a header
    /// value with a line break) or the check is misconfigured.
    async fn check(&self, credential: Option<Credential>) -> Result<ProbeResult, OpsError>;
}

macro_rules! forward_provider_check {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<T: ProviderCheck + ?Sized> ProviderCheck for $ptr<T> {
            fn name(&self) -> &str { (**self).name() }
            async fn check(&self, credential: Option<Credential>) -> Result<ProbeResult, OpsError> {
                (**self).check(credential).await
            }
        }
    )*};
}
forward_provider_check!(Arc, Box);
