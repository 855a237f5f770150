//! [`provider_probe`]: the [`HttpProbe`] that checks an external provider of
//! `ops_core::runbooks::provider_failure`.

use ops_core::runbooks::ProviderSpec;

use crate::error::Result;
use crate::http::HttpProbe;

/// Build the check of `spec`: its method to its URL, named after it, with its timeout. The
/// probe is an [`ops_core::probe::ProviderCheck`]: the runbook reads the credential at run
/// time and the probe sends it with that request only.
///
/// # Errors
/// As [`crate::HttpProbeBuilder::build`]: an invalid URL or method, a zero timeout.
///
/// # Examples
/// ```
/// use ops_core::probe::ProviderCheck;
/// use ops_core::runbooks::ProviderSpec;
/// let spec = ProviderSpec::new("stripe", "https://api.stripe.com/v1/balance");
/// let probe = ops_probes::provider_probe(&spec)?;
/// assert_eq!(ProviderCheck::name(&probe), "stripe");
/// assert!(ops_probes::provider_probe(&ProviderSpec::new("x", "ftp://nope")).is_err());
/// # Ok::<(), ops_probes::Error>(())
/// ```
pub fn provider_probe(spec: &ProviderSpec) -> Result<HttpProbe> {
    let mut builder = HttpProbe::builder(&spec.url)
        .with_name(spec.name.clone())
        .with_method(&spec.method);
    if let Some(timeout) = spec.timeout {
        builder = builder.with_timeout(timeout);
    }
    builder.build()
}
