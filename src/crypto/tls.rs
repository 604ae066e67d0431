//! TLS for the federation: each node has an ECDSA P-256 key and a self-signed certificate (rcgen),
//! and peers know each other by the SHA-256 pin of the certificate's public key (SPKI), not by a
//! certificate authority. The verifiers here accept exactly the pins their caller trusts and a
//! certificate within its validity, and nothing else: no anonymous client, no unknown server.
//! rustls runs on ring, TLS 1.2 and 1.3 only.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, Error, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::{KeyFileError, read_secret, write_new};
use crate::clock::Clock;
use crate::domain::{OrgId, TlsPin};

/// The pin of the certificate `der`: SHA-256 of its public key (SPKI).
pub fn pin_of_certificate(der: &[u8]) -> Result<TlsPin, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(pin_of_spki(cert.tbs_certificate.subject_pki.raw))
}

fn pin_of_spki(spki_der: &[u8]) -> TlsPin {
    TlsPin::from_sha256(ring::digest::digest(&ring::digest::SHA256, spki_der).as_ref())
}

/// A TLS certificate (with the chain to its authority, if it has one) and its private key.
pub struct TlsIdentity {
    /// The node's certificate first, then any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub pin: TlsPin,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("pin", &self.pin).finish()
    }
}

impl TlsIdentity {
    /// Makes a key and a self-signed certificate for `org`, valid from `not_before` to `not_after`,
    /// and writes them (the key with mode 0600), refusing to replace existing files.
    pub fn generate(
        org: &OrgId,
        hosts: &[String],
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Self, KeyFileError> {
        let invalid =
            |reason: String| KeyFileError::Invalid { path: cert_path.to_owned(), what: "certificate", reason };
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| invalid(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(|e| invalid(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, org.as_str());
        params.distinguished_name.push(rcgen::DnType::CommonName, org.as_str());
        params.not_before = offset_time(not_before).map_err(invalid)?;
        params.not_after = offset_time(not_after).map_err(invalid)?;
        let cert = params.self_signed(&key).map_err(|e| invalid(e.to_string()))?;
        write_new(key_path, key.serialize_pem().as_bytes(), true)?;
        write_new(cert_path, cert.pem().as_bytes(), false)?;
        Self::load(cert_path, key_path)
    }

    /// Reads a certificate (PEM) and its private key (PEM, mode 0600).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, KeyFileError> {
        let cert_bytes = std::fs::read(cert_path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => KeyFileError::Missing { path: cert_path.to_owned() },
            _ => KeyFileError::Unreadable { path: cert_path.to_owned(), source },
        })?;
        let bad_cert =
            |reason: String| KeyFileError::Invalid { path: cert_path.to_owned(), what: "certificate", reason };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| bad_cert(e.to_string()))?;
        let pin = pin_of_certificate(chain.first().ok_or_else(|| bad_cert("it holds no certificate".into()))?)
            .map_err(bad_cert)?;
        let key_bytes = read_secret(key_path)?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| KeyFileError::Invalid {
            path: key_path.to_owned(),
            what: "TLS private key",
            reason: e.to_string(),
        })?;
        let identity = Self { chain, key, pin };
        // Prove the key belongs to the certificate now, rather than at the first handshake.
        provider().key_provider.load_private_key(identity.key.clone_key()).map_err(|e| KeyFileError::Invalid {
            path: key_path.to_owned(),
            what: "TLS private key",
            reason: e.to_string(),
        })?;
        Ok(identity)
    }

    /// When the certificate stops being valid.
    pub fn not_after(&self) -> Option<DateTime<Utc>> {
        let (_, cert) = x509_parser::parse_x509_certificate(self.chain.first()?).ok()?;
        DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
    }
}

fn offset_time(t: DateTime<Utc>) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| e.to_string())
}

/// The one crypto provider: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process's default provider, for libraries that ask for one. Calling it
/// again is harmless.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How this node decides that a peer's certificate is a partner's.
#[derive(Debug, Clone)]
pub enum PeerTrust {
    /// By the SHA-256 pin of the certificate's key, as listed in the partner's node card.
    Pins,
    /// By a certificate authority (a national PKI, say): the certificate must chain to one of these
    /// roots, and its subject organisation must be a partner's organisation id.
    Authority(Arc<RootCertStore>),
}

impl PeerTrust {
    /// Reads a PEM bundle of one or more root certificates.
    pub fn load_authority(path: &Path) -> Result<Self, KeyFileError> {
        let bad = |reason: String| KeyFileError::Invalid { path: path.to_owned(), what: "CA bundle", reason };
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => KeyFileError::Missing { path: path.to_owned() },
            _ => KeyFileError::Unreadable { path: path.to_owned(), source },
        })?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&bytes) {
            roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad("it holds no certificate".into()));
        }
        Ok(Self::Authority(Arc::new(roots)))
    }
}

/// The organisation a certificate is made out to: its subject's O, or else its CN, as an org id.
pub fn organisation_of_certificate(der: &[u8]) -> Option<OrgId> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_organization().next().or_else(|| subject.iter_common_name().next())?;
    OrgId::parse(name.as_str().ok()?).ok()
}

/// Which peers a federation listener accepts right now.
pub trait TrustedPeers: Send + Sync + std::fmt::Debug {
    /// Whether a certificate with this key pin belongs to a partner (pin trust).
    fn trusts_pin(&self, pin: &TlsPin) -> bool;
    /// Whether this organisation is a partner (authority trust).
    fn trusts_org(&self, org: &OrgId) -> bool;
    /// Hears of a refused client certificate, to record it. It must not block: it runs inside the
    /// handshake.
    fn refused(&self, _pin: Option<&TlsPin>, _reason: &str) {}
}

/// The node's clock as rustls's source of time: a certificate's validity is judged by the same
/// clock as everything else the node does (the real one in production, a fixed one in tests, so a
/// test's certificates never expire under it).
struct NodeTime(Arc<dyn Clock>);

impl std::fmt::Debug for NodeTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeTime")
    }
}

impl rustls::time_provider::TimeProvider for NodeTime {
    fn current_time(&self) -> Option<UnixTime> {
        let seconds = u64::try_from(self.0.now().timestamp()).ok()?;
        Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds)))
    }
}

/// The TLS versions every listener and client of the node speaks: 1.3, and 1.2 for partners not
/// there yet (with rustls's forward-secret AEAD suites only).
const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A listener's TLS: client certificates are mandatory and must belong to a partner under `trust`.
pub fn server_config(
    identity: &TlsIdentity,
    trust: &PeerTrust,
    peers: Arc<dyn TrustedPeers>,
    clock: Arc<dyn Clock>,
) -> Result<ServerConfig, Error> {
    let provider = provider();
    let verifier: Arc<dyn ClientCertVerifier> = match trust {
        PeerTrust::Pins => Arc::new(PinnedClients { peers, provider: provider.clone() }),
        PeerTrust::Authority(roots) => {
            let webpki = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| Error::General(e.to_string()))?;
            Arc::new(AuthorityClients { webpki, peers, provider: provider.clone() })
        }
    };
    ServerConfig::builder_with_details(provider, Arc::new(NodeTime(clock)))
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
}

/// The user API's TLS, for a node without a reverse proxy: TLS 1.3 and 1.2 on ring, no client
/// certificate (people and systems sign in with tokens).
pub fn api_server_config(identity: &TlsIdentity) -> Result<ServerConfig, Error> {
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
}

/// A client's TLS towards partner `org`: presents `identity`; under pin trust accepts only a server
/// whose pin is in `server_pins`, under authority trust only a certificate that chains to the
/// authority, names the server's host and is made out to `org`.
pub fn client_config(
    identity: &TlsIdentity,
    trust: &PeerTrust,
    org: &OrgId,
    server_pins: Vec<TlsPin>,
    clock: Arc<dyn Clock>,
) -> Result<ClientConfig, Error> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        PeerTrust::Pins => Arc::new(PinnedServer { pins: server_pins, provider: provider.clone() }),
        PeerTrust::Authority(roots) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| Error::General(e.to_string()))?;
            Arc::new(AuthorityServer { webpki, org: org.clone(), provider: provider.clone() })
        }
    };
    ClientConfig::builder_with_details(provider, Arc::new(NodeTime(clock)))
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
}

/// Checks a peer certificate: it parses, is valid at `now`, and its pin is trusted.
/// Checks a peer certificate: it parses, is valid at `now`, and its pin is trusted. A refusal is
/// reported to `refused` with the pin presented and the reason.
fn check_peer(
    end_entity: &CertificateDer<'_>,
    now: UnixTime,
    trusted: impl Fn(&TlsPin) -> bool,
    refused: impl Fn(Option<&TlsPin>, &str),
) -> Result<(), Error> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity) else {
        refused(None, "the certificate cannot be parsed");
        return Err(Error::InvalidCertificate(CertificateError::BadEncoding));
    };
    let pin = pin_of_spki(cert.tbs_certificate.subject_pki.raw);
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if now_secs < validity.not_before.timestamp() {
        refused(Some(&pin), "the certificate is not valid yet");
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now_secs > validity.not_after.timestamp() {
        refused(Some(&pin), "the certificate has expired");
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    if !trusted(&pin) {
        tracing::warn!(pin = %pin, "refused a TLS peer whose key is not pinned");
        refused(Some(&pin), "the key is not pinned for any partner (or the partner is blocked)");
        return Err(Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure));
    }
    Ok(())
}

/// The handshake-signature methods both verifiers share: signatures are checked with the ring
/// provider's algorithms; only how the certificate itself is judged differs.
macro_rules! handshake_signatures_by_provider {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider.signature_verification_algorithms.supported_schemes()
        }
    };
}

#[derive(Debug)]
struct PinnedClients {
    peers: Arc<dyn TrustedPeers>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        check_peer(end_entity, now, |pin| self.peers.trusts_pin(pin), |pin, why| self.peers.refused(pin, why))
            .map(|()| ClientCertVerified::assertion())
    }

    handshake_signatures_by_provider!();

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct PinnedServer {
    pins: Vec<TlsPin>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // The pin, not the host name, identifies the partner: its URL may be an address.
        check_peer(end_entity, now, |pin| self.pins.contains(pin), |_, _| {}).map(|()| ServerCertVerified::assertion())
    }

    handshake_signatures_by_provider!();
}

/// The organisation check after the authority's: a chain to a trusted root says who the peer is,
/// the partner registry says whether that organisation may call.
fn check_organisation(end_entity: &CertificateDer<'_>, trusted: impl Fn(&OrgId) -> bool) -> Result<(), Error> {
    match organisation_of_certificate(end_entity) {
        Some(org) if trusted(&org) => Ok(()),
        other => {
            tracing::warn!(organisation = ?other.map(|o| o.to_string()), "refused a TLS peer that is no partner");
            Err(Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }
}

#[derive(Debug)]
struct AuthorityClients {
    webpki: Arc<dyn ClientCertVerifier>,
    peers: Arc<dyn TrustedPeers>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AuthorityClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if let Err(error) = self.webpki.verify_client_cert(end_entity, intermediates, now) {
            let pin = pin_of_certificate(end_entity).ok();
            self.peers.refused(pin.as_ref(), &format!("the certificate does not chain to the authority: {error}"));
            return Err(error);
        }
        check_organisation(end_entity, |org| self.peers.trusts_org(org)).inspect_err(|_| {
            self.peers
                .refused(pin_of_certificate(end_entity).ok().as_ref(), "the certificate's organisation is no partner");
        })?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signatures_by_provider!();

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct AuthorityServer {
    webpki: Arc<WebPkiServerVerifier>,
    org: OrgId,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AuthorityServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        check_organisation(end_entity, |org| *org == self.org).map(|()| ServerCertVerified::assertion())
    }

    handshake_signatures_by_provider!();
}
