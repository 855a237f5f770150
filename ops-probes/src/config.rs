//! Shared configuration: the process-wide crypto provider, defaults read from the environment,
//! how URLs are shown without secrets, which redirects may carry credentials, and CA
//! certificates checked when a client is built.

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

/// Whether two URLs share an origin (scheme, host and port): the only redirects a credential
/// may follow.
pub(crate) fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A redirect policy for clients that send credentials: redirects within the origin are
/// followed (up to `max`), a redirect to another origin is an error and is never sent.
pub(crate) fn same_origin_redirects(max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let leaves = attempt
            .previous()
            .last()
            .is_some_and(|prev| !same_origin(prev, attempt.url()));
        if leaves {
            let to = redact(attempt.url());
            attempt.error(format!("refused a redirect to another origin ({to})"))
        } else if attempt.previous().len() > max {
            attempt.error(format!("more than {max} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// The certificates of a CA bundle, checked now: PEM with at least one certificate, each a
/// valid trust anchor. A bundle that could never verify a server fails here, when the client
/// is built, and not at its first connection.
pub(crate) fn ca_certificates(
    pem: &[u8],
    target: &str,
) -> crate::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let bad = |why: String| crate::Error::Config {
        target: target.to_owned(),
        why,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("bad CA PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("the CA PEM holds no certificate".to_owned()));
    }
    let mut store = rustls::RootCertStore::empty();
    for cert in &certs {
        store
            .add(cert.clone())
            .map_err(|e| bad(format!("bad CA certificate: {e}")))?;
    }
    Ok(certs)
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
    fn ca_bundles_that_cannot_work_fail_at_once() {
        for bad in [
            &b""[..],
            b"not pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(ca_certificates(bad, "probe").is_err());
        }
    }

    #[test]
    fn origins_differ_by_scheme_host_or_port() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert!(same_origin(&u("http://a/x"), &u("http://a:80/y?q")));
        assert!(!same_origin(&u("http://a/"), &u("https://a/")));
        assert!(!same_origin(&u("http://a/"), &u("http://b/")));
        assert!(!same_origin(&u("http://a:1/"), &u("http://a:2/")));
    }

    #[test]
    fn redact_keeps_only_host_and_port() {
        let url = url::Url::parse("https://user:pw@example.com/hook/SECRET?token=x").unwrap();
        assert_eq!(redact(&url), "example.com:443");
    }
}
