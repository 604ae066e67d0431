//! The node's Ed25519 signing key (ring; PKCS#8 in a PEM file of mode 0600) and partners' public
//! keys. A key is named by its RFC 7638 JWK thumbprint, which is what a JWS header's `kid` carries.

use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

use super::{KeyFileError, b64, read_secret, unb64, write_new};

/// The node's private signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("public", &self.public()).finish()
    }
}

impl SigningKey {
    /// Makes a new key and writes it to `path` (mode 0600), refusing to replace an existing file.
    pub fn generate(path: &Path) -> Result<Self, KeyFileError> {
        let invalid = |reason: String| KeyFileError::Invalid { path: path.to_owned(), what: "Ed25519 key", reason };
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|e| invalid(e.to_string()))?;
        let pem = pem_encode("PRIVATE KEY", pkcs8.as_ref());
        write_new(path, pem.as_bytes(), true)?;
        Self::from_pkcs8(pkcs8.as_ref()).map_err(invalid)
    }

    /// Reads the key at `path`; a missing, unreadable, too-open or malformed file is an error.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let bytes = read_secret(path)?;
        let invalid = |reason: String| KeyFileError::Invalid { path: path.to_owned(), what: "Ed25519 key", reason };
        let der =
            PrivatePkcs8KeyDer::from_pem_slice(&bytes).map_err(|e| invalid(format!("not a PEM private key ({e})")))?;
        Self::from_pkcs8(der.secret_pkcs8_der()).map_err(invalid)
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|pair| Self { pair })
            .map_err(|e| format!("not an Ed25519 key: {e}"))
    }

    pub fn public(&self) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(bytes)
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    /// Parses the base64url form used in node cards (the JWK `x` member).
    pub fn from_b64(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = unb64(text)?.try_into().ok()?;
        Some(Self(bytes))
    }

    pub fn to_b64(&self) -> String {
        b64(&self.0)
    }

    /// The RFC 7638 thumbprint of the key's JWK: a stable, public name for it.
    pub fn key_id(&self) -> String {
        let jwk = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, self.to_b64());
        b64(ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes()).as_ref())
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0).verify(message, signature).is_ok()
    }
}

/// PEM text for `der` under `label`, lines of 64 characters.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_private_and_loads_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        let key = SigningKey::generate(&path).unwrap();
        let loaded = SigningKey::load(&path).unwrap();
        assert_eq!(key.public(), loaded.public());
        assert!(key.public().verify(b"hello", &loaded.sign(b"hello")));
        assert!(matches!(SigningKey::generate(&path), Err(KeyFileError::Exists { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        SigningKey::generate(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SigningKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn missing_and_garbage_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(SigningKey::load(&dir.path().join("nope.pem")), Err(KeyFileError::Missing { .. })));
        let path = dir.path().join("garbage.pem");
        write_new(&path, b"not a key", true).unwrap();
        assert!(matches!(SigningKey::load(&path), Err(KeyFileError::Invalid { .. })));
    }
}
