//! Shared configuration: the crypto provider, the HTTP client, timeouts and redaction.

use std::sync::OnceLock;
use std::time::Duration;

use ops_core::text::Redactor;
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::{Error, Result};

/// Default deadline of one delivery attempt: `OPSBOOK_NOTIFY_TIMEOUT_MS`, else 10 s.
///
/// # Examples
/// ```
/// assert!(ops_notify::config::default_timeout() > std::time::Duration::ZERO);
/// ```
pub fn default_timeout() -> Duration {
    static TIMEOUT: OnceLock<Duration> = OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("OPSBOOK_NOTIFY_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map_or(Duration::from_secs(10), Duration::from_millis)
    })
}

/// Installs ring as the process-wide rustls crypto provider, once; a provider installed earlier
/// is kept. For binaries that build TLS clients of their own: this crate no longer needs it,
/// since its client is given ring explicitly (see [`tls_config`]).
///
/// # Examples
/// ```
/// ops_notify::config::install_crypto_provider();
/// ```
pub fn install_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Err means a provider is already installed: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The rustls configuration of the notifiers' client: ring, the workspace's one provider
/// (STACK.md), given to the client instead of installed process-wide; the platform's verifier
/// and roots; ALPN `h2` then `http/1.1`, as reqwest's own configuration offers them.
///
/// # Errors
/// When the platform verifier cannot be set up.
///
/// # Examples
/// ```
/// let config = ops_notify::config::tls_config()?;
/// assert_eq!(config.alpn_protocols[0], b"h2");
/// # Ok::<(), rustls::Error>(())
/// ```
pub fn tls_config() -> std::result::Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The HTTP client shared by the notifiers (one connection pool), or a new one when
/// `client` is given.
pub(crate) fn http_client(receiver: &str) -> Result<reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config().map_err(|e| Error::Config {
            receiver: receiver.to_owned(),
            why: format!("TLS configuration: {e}"),
        })?)
        .connect_timeout(default_timeout())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Client {
            receiver: receiver.to_owned(),
            source: e.without_url(),
        })?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

/// A receiver's URL, parsed, with what messages may show of it and its secrets.
pub(crate) struct SecretUrl {
    pub(crate) url: url::Url,
    /// `host:port`.
    pub(crate) target: String,
    /// The URL's path, query and credentials, to strip from what the receiver answers.
    pub(crate) secrets: Redactor,
}

/// Parses a secret URL.
pub(crate) fn secret_url(receiver: &str, url: &SecretString) -> Result<SecretUrl> {
    let parsed = url::Url::parse(url.expose_secret()).map_err(|e| Error::Config {
        receiver: receiver.to_owned(),
        why: format!("invalid URL: {e}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::Config {
            receiver: receiver.to_owned(),
            why: "expected an http or https URL".to_owned(),
        });
    }
    let host = parsed.host_str().unwrap_or("unknown-host");
    let target = match parsed.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let secrets = Redactor::new()
        .with_url(url.expose_secret())
        .with_url(parsed.as_str());
    Ok(SecretUrl {
        url: parsed,
        target,
        secrets,
    })
}
