//! [`TlsProbe`]: certificate expiry (leaf and whole chain), hostname match, issuer and TLS
//! version, with rustls and x509-parser.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ops_core::probe::{Observation, Outcome, ProbeResult};
use ops_core::{ErrorKind, OpsError, Probe, text};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{ca_certificates, crypto_provider, default_timeout};

/// The most characters kept of what a server presents (a subject, an issuer, a reason).
const PEER_NAME_MAX: usize = 200;
use crate::error::{Error, Result};

const DAY: i64 = 86_400;

/// A TLS protocol version.
///
/// # Examples
/// ```
/// assert!(ops_probes::TlsVersion::Tls13 > ops_probes::TlsVersion::Tls12);
/// assert_eq!(ops_probes::TlsVersion::Tls12.to_string(), "TLSv1.2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tls12 => "TLSv1.2",
            Self::Tls13 => "TLSv1.3",
        })
    }
}

/// One certificate as presented by the server. Names come from the server: control
/// characters in them are escaped and they are cut to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateInfo {
    /// Subject distinguished name, e.g. `CN=api.example.com`.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// End of validity.
    pub not_after: jiff::Timestamp,
    /// Whole days until `not_after`, negative once expired.
    pub days_left: i64,
}

/// What a TLS handshake showed; see [`TlsProbe::inspect`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateReport {
    /// Negotiated protocol version.
    pub version: Option<TlsVersion>,
    /// Why the chain is not trusted (expired, unknown issuer, wrong name), if it is not.
    pub verification_error: Option<String>,
    /// Whether the leaf is valid for the server name.
    pub hostname_matches: bool,
    /// The leaf (end-entity) certificate.
    pub leaf: CertificateInfo,
    /// Every certificate presented, leaf first.
    pub chain: Vec<CertificateInfo>,
}

impl CertificateReport {
    /// The certificate in the chain that expires first (the leaf when it is the earliest).
    ///
    /// # Examples
    /// ```no_run
    /// # async fn demo() -> Result<(), ops_core::OpsError> {
    /// let report = ops_probes::TlsProbe::new("example.com", 443)?.inspect().await?;
    /// println!("{} expires in {} days", report.earliest().subject, report.earliest().days_left);
    /// # Ok(()) }
    /// ```
    pub fn earliest(&self) -> &CertificateInfo {
        self.chain
            .iter()
            .min_by_key(|c| c.not_after)
            .unwrap_or(&self.leaf)
    }
}

/// Parses a DER certificate.
fn info(der: &[u8], now: i64) -> Option<CertificateInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    Some(CertificateInfo {
        subject: text::bounded(&cert.subject().to_string(), PEER_NAME_MAX),
        issuer: text::bounded(&cert.issuer().to_string(), PEER_NAME_MAX),
        not_after: jiff::Timestamp::from_second(not_after).ok()?,
        days_left: (not_after - now).div_euclid(DAY),
    })
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Time until a DER certificate expires (zero once expired); `None` if it does not parse.
pub(crate) fn time_left(der: &[u8]) -> Option<Duration> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let left = cert.validity().not_after.timestamp() - now_secs();
    Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
}

fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        store.add_parsable_certificates(loaded.certs);
        Arc::new(store)
    }))
}

/// A TLS certificate check.
///
/// Down when the chain is not trusted (expired, unknown or self-signed issuer), the name does
/// not match, the issuer or version is not as expected, or a certificate has fewer than
/// `critical_days` left; degraded when any certificate in the chain (an intermediate may
/// expire before the leaf) has fewer than `warn_days` left. Defaults: warn at 14 days,
/// critical at 0, the system roots, TLS 1.2 and later.
///
/// # Examples
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ops_core::Probe;
/// let probe = ops_probes::TlsProbe::new("api.example.com", 443)?
///     .with_warn_days(21)
///     .with_critical_days(7)
///     .with_expected_issuer("Let's Encrypt");
/// let result = probe.check().await?;
/// println!("{}", result.detail);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsProbe {
    name: String,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    roots: Option<Arc<RootCertStore>>,
    warn_days: i64,
    critical_days: i64,
    issuer: Option<String>,
    min_version: Option<TlsVersion>,
    timeout: Duration,
}

impl fmt::Debug for TlsProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsProbe")
            .field("name", &self.name)
            .field("server_name", &self.server_name)
            .field("warn_days", &self.warn_days)
            .field("critical_days", &self.critical_days)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TlsProbe {
    /// A probe of `host:port`, checking the certificate for `host`.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty host, port 0 or a host that is not a valid server name.
    ///
    /// # Examples
    /// ```
    /// let p = ops_probes::TlsProbe::new("example.com", 443)?;
    /// assert_eq!(ops_core::Probe::name(&p), "tls example.com:443");
    /// # Ok::<(), ops_probes::Error>(())
    /// ```
    pub fn new(host: &str, port: u16) -> Result<Self> {
        let server_name = Self::parse_name(host)?;
        if port == 0 {
            return Err(Error::Config {
                target: text::quote(host),
                why: "port 0".to_owned(),
            });
        }
        Ok(Self {
            name: format!("tls {host}:{port}"),
            host: host.to_owned(),
            port,
            server_name,
            roots: None,
            warn_days: 14,
            critical_days: 0,
            issuer: None,
            min_version: None,
            timeout: default_timeout(),
        })
    }

    fn parse_name(name: &str) -> Result<ServerName<'static>> {
        ServerName::try_from(name.to_owned()).map_err(|_| Error::Config {
            target: text::quote(name),
            why: "not a valid DNS name or IP address".to_owned(),
        })
    }

    /// The name in reports.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Check the certificate for another name than the host connected to (SNI and match).
    ///
    /// # Errors
    /// [`Error::Config`] when `name` is not a valid server name.
    pub fn with_server_name(mut self, name: &str) -> Result<Self> {
        self.server_name = Self::parse_name(name)?;
        Ok(self)
    }

    /// Trust only the CA certificates in `pem` instead of the system roots.
    ///
    /// # Errors
    /// [`Error::Config`] when `pem` is not PEM or holds no usable certificate.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Self> {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(ca_certificates(pem, &self.name)?);
        self.roots = Some(Arc::new(store));
        Ok(self)
    }

    /// Degraded below this many days left on any certificate in the chain (default 14).
    #[must_use]
    pub fn with_warn_days(mut self, days: i64) -> Self {
        self.warn_days = days;
        self
    }

    /// Down below this many days left (default 0: only expired).
    #[must_use]
    pub fn with_critical_days(mut self, days: i64) -> Self {
        self.critical_days = days;
        self
    }

    /// The leaf's issuer must contain `issuer` (e.g. an organisation name).
    #[must_use]
    pub fn with_expected_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The negotiated version must be at least `version`.
    #[must_use]
    pub fn with_min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = Some(version);
        self
    }

    /// The deadline for connect and handshake.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects, completes a handshake (accepting any chain so it can be described) and
    /// describes what the server presented. No application data is sent.
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`] when no TLS handshake completes; [`ErrorKind::Timeout`] after
    /// the timeout; [`ErrorKind::Backend`] when the certificate does not parse.
    pub async fn inspect(&self) -> std::result::Result<CertificateReport, OpsError> {
        let op = |kind| {
            OpsError::new(
                kind,
                "tls",
                "inspect",
                format!("{}:{}", self.host, self.port),
            )
        };
        tokio::time::timeout(self.timeout, self.handshake())
            .await
            .map_err(|_| {
                op(ErrorKind::Timeout).with_detail(format!(
                    "no handshake within {} ms",
                    self.timeout.as_millis()
                ))
            })?
            .map_err(|(kind, e)| op(kind).with_source(e))
    }

    async fn handshake(
        &self,
    ) -> std::result::Result<CertificateReport, (ErrorKind, Box<dyn std::error::Error + Send + Sync>)>
    {
        let provider = crypto_provider();
        let recorder = Arc::new(Recorder {
            roots: self.roots.clone().unwrap_or_else(system_roots),
            provider: Arc::clone(&provider),
            seen: Mutex::new(None),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| (ErrorKind::Backend, e.into()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| (ErrorKind::Unavailable, e.into()))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| (ErrorKind::Unavailable, e.into()))?;
        let version = match stream.get_ref().1.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => Some(TlsVersion::Tls13),
            Some(rustls::ProtocolVersion::TLSv1_2) => Some(TlsVersion::Tls12),
            _ => None,
        };
        let seen = recorder
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| {
                (
                    ErrorKind::Backend,
                    "the server presented no certificate".into(),
                )
            })?;
        let now = now_secs();
        let chain: Vec<CertificateInfo> = seen
            .chain
            .iter()
            .map(|der| info(der, now))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                (
                    ErrorKind::Backend,
                    "a certificate does not parse as X.509".into(),
                )
            })?;
        let leaf = chain
            .first()
            .cloned()
            .ok_or_else(|| (ErrorKind::Backend, "empty certificate chain".into()))?;
        Ok(CertificateReport {
            version,
            verification_error: seen.error.map(|e| text::bounded(&e, PEER_NAME_MAX)),
            hostname_matches: seen.hostname_matches,
            leaf,
            chain,
        })
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one block per observation, in report order"
    )]
    fn judge(&self, report: &CertificateReport) -> ProbeResult {
        let mut hard = Vec::new();
        let mut soft = Vec::new();
        let mut obs = Vec::new();
        let trusted = report.verification_error.is_none();
        obs.push(
            Observation::new(
                "trusted",
                report
                    .verification_error
                    .clone()
                    .unwrap_or_else(|| "yes".to_owned()),
                trusted,
            )
            .with_condition("chain verifies against the trusted roots"),
        );
        if let Some(e) = &report.verification_error {
            hard.push(format!("certificate not trusted: {e}"));
        }
        obs.push(
            Observation::new(
                "hostname",
                report.hostname_matches.to_string(),
                report.hostname_matches,
            )
            .with_condition(format!(
                "certificate valid for {}",
                self.server_name.to_str()
            )),
        );
        if !report.hostname_matches {
            hard.push(format!(
                "certificate is not valid for {}",
                self.server_name.to_str()
            ));
        }
        let days =
            |c: &CertificateInfo, what: &str, hard: &mut Vec<String>, soft: &mut Vec<String>| {
                let ok = c.days_left >= self.warn_days;
                if c.days_left < 0 {
                    hard.push(format!(
                        "{what} {} expired {} days ago",
                        c.subject, -c.days_left
                    ));
                } else if c.days_left < self.critical_days {
                    hard.push(format!(
                        "{what} {} expires in {} days (critical below {})",
                        c.subject, c.days_left, self.critical_days
                    ));
                } else if !ok {
                    soft.push(format!(
                        "{what} {} expires in {} days (warn below {})",
                        c.subject, c.days_left, self.warn_days
                    ));
                }
                ok && c.days_left >= self.critical_days
            };
        let leaf_ok = days(&report.leaf, "leaf", &mut hard, &mut soft);
        obs.push(
            Observation::new("leaf_days_left", report.leaf.days_left.to_string(), leaf_ok)
                .with_condition(format!("leaf_days_left >= {}", self.warn_days)),
        );
        let earliest = report.earliest();
        let chain_ok = if earliest == &report.leaf {
            leaf_ok
        } else {
            days(earliest, "chain certificate", &mut hard, &mut soft)
        };
        obs.push(
            Observation::new(
                "chain_days_left",
                format!("{} ({})", earliest.days_left, earliest.subject),
                chain_ok,
            )
            .with_condition(format!("chain_days_left >= {}", self.warn_days)),
        );
        let issuer_ok = self
            .issuer
            .as_ref()
            .is_none_or(|want| report.leaf.issuer.contains(want.as_str()));
        let mut issuer_obs = Observation::new("issuer", report.leaf.issuer.clone(), issuer_ok);
        if let Some(want) = &self.issuer {
            issuer_obs = issuer_obs.with_condition(format!("issuer contains {want}"));
            if !issuer_ok {
                hard.push(format!("issuer is {}, expected {want}", report.leaf.issuer));
            }
        }
        obs.push(issuer_obs);
        let version_ok = match (self.min_version, report.version) {
            (Some(min), Some(v)) => v >= min,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let shown = report
            .version
            .map_or_else(|| "unknown".to_owned(), |v| v.to_string());
        let mut version_obs = Observation::new("tls_version", shown.clone(), version_ok);
        if let Some(min) = self.min_version {
            version_obs = version_obs.with_condition(format!("tls_version >= {min}"));
            if !version_ok {
                hard.push(format!("negotiated {shown}, expected at least {min}"));
            }
        }
        obs.push(version_obs);
        let (outcome, words) = if !hard.is_empty() {
            hard.extend(soft);
            (Outcome::Down, hard.join("; "))
        } else if !soft.is_empty() {
            (Outcome::Degraded, soft.join("; "))
        } else {
            (
                Outcome::Up,
                format!(
                    "certificate valid for {} more days (chain {}), {shown}",
                    report.leaf.days_left, earliest.days_left
                ),
            )
        };
        let mut result = match outcome {
            Outcome::Up => ProbeResult::up(),
            Outcome::Degraded => ProbeResult::degraded(""),
            Outcome::Down => ProbeResult::down(""),
        };
        result.detail = format!("{}: {words}", self.name);
        for o in obs {
            result = result.with_observation(o);
        }
        result
    }
}

#[async_trait]
impl Probe for TlsProbe {
    fn name(&self) -> &str {
        &self.name
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "tls", target = %self.name))]
    async fn check(&self) -> std::result::Result<ProbeResult, OpsError> {
        let started = Instant::now();
        match self.inspect().await {
            Ok(report) => Ok(self.judge(&report).with_latency(started.elapsed())),
            Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) => Ok(
                ProbeResult::down(format!("{}: no TLS handshake: {}", self.name, e.chain()))
                    .with_latency(started.elapsed()),
            ),
            Err(e) => Err(e),
        }
    }
}

/// Records the chain and the verdict of the real verifier, then lets the handshake finish so
/// an untrusted or expired chain can still be described. Handshake signatures are verified
/// for real. Only used by [`TlsProbe`], which sends no application data.
#[derive(Debug)]
struct Recorder {
    roots: Arc<RootCertStore>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    seen: Mutex<Option<Seen>>,
}

#[derive(Debug)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    error: Option<String>,
    hostname_matches: bool,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let error = if self.roots.is_empty() {
            Some("no trusted root certificates are configured".to_owned())
        } else {
            match WebPkiServerVerifier::builder_with_provider(
                Arc::clone(&self.roots),
                Arc::clone(&self.provider),
            )
            .build()
            {
                Ok(v) => v
                    .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                    .err()
                    .map(|e| describe(&e)),
                Err(e) => Some(e.to_string()),
            }
        };
        let hostname_matches = rustls::server::ParsedCertificate::try_from(end_entity)
            .and_then(|c| rustls::client::verify_server_name(&c, server_name))
            .is_ok();
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Seen {
            chain,
            error,
            hostname_matches,
        });
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => "expired".to_owned(),
            C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet".to_owned(),
            C::UnknownIssuer => "unknown issuer (self-signed or missing intermediate)".to_owned(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "not valid for the server name".to_owned()
            }
            C::Revoked => "revoked".to_owned(),
            C::BadSignature => "bad signature".to_owned(),
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}
