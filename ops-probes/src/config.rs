//! Shared configuration: the process-wide crypto provider, defaults read from the environment
//! and how URLs are shown without secrets.

use std::sync::OnceLock;
use std::time::Duration;

/// Default timeout of a network check: `OPSBOOK_HTTP_TIMEOUT_MS`, else 10 s.
///
/// # Examples
/// ```
/// assert!(ops_probes::config::default_timeout() > std::time::Duration::ZERO);
/// ```
pub fn default_timeout() -> Duration {
    static TIMEOUT: OnceLock<Duration> = OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("OPSBOOK_HTTP_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map_or(Duration::from_secs(10), Duration::from_millis)
    })
}

/// Installs ring as the process-wide rustls crypto provider, once, before any client is
/// built. A provider installed earlier by someone else is kept (the workspace uses ring
/// everywhere, see STACK.md).
///
/// # Examples
/// ```
/// ops_probes::config::install_crypto_provider();
/// assert!(rustls::crypto::CryptoProvider::get_default().is_some());
/// ```
pub fn install_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Err means a provider is already installed: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The crypto provider used for TLS connections made by this crate.
pub(crate) fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    install_crypto_provider();
    rustls::crypto::CryptoProvider::get_default().map_or_else(
        || std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        std::sync::Arc::clone,
    )
}

/// `host:port` of a URL: what errors, logs and reports may show of it.
pub(crate) fn redact(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("unknown-host");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Parses an absolute `http`/`https` URL.
pub(crate) fn parse_http_url(raw: &str, target: &str) -> crate::Result<url::Url> {
    let url = url::Url::parse(raw).map_err(|e| crate::Error::InvalidUrl {
        target: target.to_owned(),
        why: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(crate::Error::InvalidUrl {
            target: target.to_owned(),
            why: "expected an http or https URL with a host".to_owned(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_keeps_only_host_and_port() {
        let url = url::Url::parse("https://user:pw@example.com/hook/SECRET?token=x").unwrap();
        assert_eq!(redact(&url), "example.com:443");
    }
}
