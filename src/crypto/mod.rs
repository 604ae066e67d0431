//! Cryptography, on ring only: the node's Ed25519 signing key and JWS (RFC 7515, JSON serialisation)
//! for everything the node signs, and TLS identities (ECDSA P-256 certificates made with rcgen) with
//! SPKI pins and the rustls configurations that accept exactly the pinned peers. Nothing here knows
//! about partners or agreements; callers say which pins and keys to trust.

pub mod jws;
pub mod keys;
pub mod tls;

use std::path::{Path, PathBuf};

/// What is wrong with a key or certificate file. Start-up stops on any of these: a node never
/// silently makes itself a new identity.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {path} is missing; create the node's keys with `lagesbild init`")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path} does not hold a valid {what}: {reason}")]
    Invalid { path: PathBuf, what: &'static str, reason: String },
    #[error("{path} exists already; lagesbild never overwrites a key")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Unwritable { path: PathBuf, source: std::io::Error },
}

/// Reads a secret file after checking that only its owner can read it.
pub(crate) fn read_secret(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let metadata = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => KeyFileError::Missing { path: path.to_owned() },
        _ => KeyFileError::Unreadable { path: path.to_owned(), source },
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen { path: path.to_owned(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    std::fs::read(path).map_err(|source| KeyFileError::Unreadable { path: path.to_owned(), source })
}

/// Writes a new file (never replacing one), readable by its owner only when `secret`.
pub(crate) fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), KeyFileError> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| KeyFileError::Unwritable { path: dir.to_owned(), source })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if secret { 0o600 } else { 0o644 });
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => KeyFileError::Exists { path: path.to_owned() },
        _ => KeyFileError::Unwritable { path: path.to_owned(), source },
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyFileError::Unwritable { path: path.to_owned(), source })
}

/// Base64url without padding, the encoding of JWS and of key ids.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decoding: no padding, no non-canonical trailing bits.
pub(crate) fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}
