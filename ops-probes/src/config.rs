//! Shared configuration: the crypto provider and TLS settings of every client, defaults read from the environment,
//! how URLs are shown without secrets, which redirects may carry credentials, and CA
//! certificates checked when a client is built.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

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

/// Installs ring as the process-wide rustls crypto provider, once; a provider installed earlier
/// is kept. For binaries that build TLS clients of their own: this crate no longer needs it,
/// since every client it builds is given [`crypto_provider`] explicitly.
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

/// The crypto provider of every TLS connection this crate makes: ring, the workspace's one
/// provider (STACK.md), handed to each client instead of installed process-wide, so a library
/// never decides a binary's process default.
///
/// # Examples
/// ```
/// let provider = ops_probes::config::crypto_provider();
/// assert!(!provider.cipher_suites.is_empty());
/// ```
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// Which servers a client built by this crate trusts.
pub(crate) enum Trust {
    /// The platform's verifier and roots, as reqwest's own default.
    System,
    /// Only these CA certificates.
    Only(Vec<CertificateDer<'static>>),
    /// Any certificate (a probe with TLS verification turned off); handshake signatures are
    /// still checked.
    Anything,
}

/// The rustls configuration of a reqwest client (`tls_backend_preconfigured`) with
/// [`crypto_provider`]: TLS 1.2 and 1.3, ALPN `h2` then `http/1.1` as reqwest offers them.
pub(crate) fn tls_config(trust: Trust, target: &str) -> crate::Result<rustls::ClientConfig> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let bad = |e: rustls::Error| crate::Error::Config {
        target: target.to_owned(),
        why: format!("TLS configuration: {e}"),
    };
    let provider = crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(bad)?;
    let builder = match trust {
        Trust::System => builder.with_platform_verifier().map_err(bad)?,
        Trust::Only(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(certs);
            builder.with_root_certificates(roots)
        }
        Trust::Anything => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider))),
    };
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any server certificate, but checks that the server holds its key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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
