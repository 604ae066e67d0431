//! JSON Web Signatures (RFC 7515) in the general JSON serialisation, so one payload can carry
//! several signatures (a node card signed by an old and a new key; later, an agreement signed by
//! every party). Only EdDSA over Ed25519 is accepted; the algorithm is never taken from the token to
//! choose a verifier. Parsing is strict: unknown members, duplicate members, padding and
//! non-canonical base64 are all refused.

use serde::{Deserialize, Serialize};

use super::keys::{PublicKey, SigningKey};
use super::{b64, unb64};
use crate::domain::envelope::{ENVELOPE_TYPE, EnvelopeHeader};

/// A JWS in general JSON serialisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Jws {
    pub payload: String,
    pub signatures: Vec<JwsSignature>,
}

/// One signature of a [`Jws`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JwsSignature {
    pub protected: String,
    pub signature: String,
}

/// The protected header. Every member is required and no other is allowed (so no `jku`, `x5u` or
/// `crit` can steer verification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    kid: String,
    typ: String,
    /// An envelope's addressing (only envelopes carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    envelope: Option<EnvelopeHeader>,
}

impl Header {
    fn new(key: &SigningKey, typ: &str, envelope: Option<&EnvelopeHeader>) -> Self {
        Self { alg: ALG.to_owned(), kid: key.public().key_id(), typ: typ.to_owned(), envelope: envelope.cloned() }
    }

    fn sign(&self, key: &SigningKey, payload: &str) -> JwsSignature {
        // A struct of strings and numbers always serialises.
        let protected = b64(serde_json::to_string(self).unwrap_or_default().as_bytes());
        let signature = b64(&key.sign(signing_input(&protected, payload).as_bytes()));
        JwsSignature { protected, signature }
    }
}

/// Why a JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a JWS in JSON serialisation: {0}")]
    Malformed(String),
    #[error("the JWS has no signature")]
    Unsigned,
    #[error("the JWS has too many signatures ({0})")]
    TooManySignatures(usize),
    #[error("signature {index}: {reason}")]
    BadHeader { index: usize, reason: String },
    #[error("signature {index} is by key {kid}, which is not trusted here")]
    UnknownKey { index: usize, kid: String },
    #[error("signature {index} does not verify: the signed content or the signature was changed")]
    BadSignature { index: usize },
    #[error("two signatures are by the same key {0}")]
    DuplicateSigner(String),
}

const ALG: &str = "EdDSA";
/// As many as an agreement may have parties.
const MAX_SIGNATURES: usize = 100;

/// Signs `payload` with each of `keys`, as a document of type `typ`.
pub fn sign(payload: &[u8], typ: &str, keys: &[&SigningKey]) -> Jws {
    let payload = b64(payload);
    let signatures = keys.iter().map(|key| Header::new(key, typ, None).sign(key, &payload)).collect();
    Jws { payload, signatures }
}

/// Signs `payload` as an envelope: one signature whose protected header carries `envelope`.
pub fn sign_envelope(payload: &[u8], key: &SigningKey, envelope: &EnvelopeHeader) -> Jws {
    let payload = b64(payload);
    let signature = Header::new(key, ENVELOPE_TYPE, Some(envelope)).sign(key, &payload);
    Jws { payload, signatures: vec![signature] }
}

impl Jws {
    /// Adds `key`'s signature over the same payload, as a document of type `typ`.
    pub fn countersign(&mut self, typ: &str, key: &SigningKey) {
        let signature = Header::new(key, typ, None).sign(key, &self.payload);
        self.signatures.push(signature);
    }

    /// Adds the signatures of `other` that this document lacks. Both must carry the same payload,
    /// byte for byte; signatures over other bytes are never mixed in.
    pub fn merge(&mut self, other: &Jws) -> Result<(), JwsError> {
        if self.payload != other.payload {
            return Err(JwsError::Malformed("the signatures are over different bytes".into()));
        }
        for signature in &other.signatures {
            if !self.signatures.contains(signature) {
                self.signatures.push(signature.clone());
            }
        }
        Ok(())
    }
}

/// A JWS whose every signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub payload: Vec<u8>,
    /// The keys that signed it, in signature order.
    pub signers: Vec<PublicKey>,
    /// The envelope addressing of the first signature, if it carries one.
    pub envelope: Option<EnvelopeHeader>,
}

impl Jws {
    /// Parses a JWS strictly; duplicate or unknown members are refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, JwsError> {
        serde_json::from_slice(bytes).map_err(|e| JwsError::Malformed(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        // A struct of strings always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The payload's bytes, before any signature is checked: only for finding out which keys to
    /// trust (a self-signed card names its own key). Never act on it unverified.
    pub fn unverified_payload(&self) -> Result<Vec<u8>, JwsError> {
        unb64(&self.payload).ok_or_else(|| JwsError::Malformed("the payload is not base64url".into()))
    }

    /// Checks every signature: each must be of type `typ` and by a key that `trusted` returns for its
    /// `kid`. One bad signature fails the whole document.
    pub fn verify(&self, typ: &str, trusted: impl Fn(&str) -> Option<PublicKey>) -> Result<Verified, JwsError> {
        if self.signatures.is_empty() {
            return Err(JwsError::Unsigned);
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(JwsError::TooManySignatures(self.signatures.len()));
        }
        let payload = self.unverified_payload()?;
        let mut signers = Vec::with_capacity(self.signatures.len());
        let mut envelope = None;
        for (index, sig) in self.signatures.iter().enumerate() {
            let bad_header = |reason: &str| JwsError::BadHeader { index, reason: reason.to_owned() };
            let header_bytes = unb64(&sig.protected).ok_or_else(|| bad_header("the header is not base64url"))?;
            let header: Header = serde_json::from_slice(&header_bytes)
                .map_err(|e| JwsError::BadHeader { index, reason: format!("the header is not valid: {e}") })?;
            if header.alg != ALG {
                return Err(bad_header("only alg EdDSA is accepted"));
            }
            if header.typ != typ {
                return Err(JwsError::BadHeader { index, reason: format!("expected typ {typ}, found {}", header.typ) });
            }
            let key = trusted(&header.kid).ok_or_else(|| JwsError::UnknownKey { index, kid: header.kid.clone() })?;
            if key.key_id() != header.kid {
                return Err(JwsError::UnknownKey { index, kid: header.kid });
            }
            let signature = unb64(&sig.signature).ok_or(JwsError::BadSignature { index })?;
            if !key.verify(signing_input(&sig.protected, &self.payload).as_bytes(), &signature) {
                return Err(JwsError::BadSignature { index });
            }
            if signers.contains(&key) {
                return Err(JwsError::DuplicateSigner(header.kid));
            }
            if index == 0 {
                envelope = header.envelope;
            }
            signers.push(key);
        }
        Ok(Verified { payload, signers, envelope })
    }
}

/// The envelope addressing in a protected header, read without verifying anything: for envelopes
/// this node signed itself.
pub fn envelope_header(protected: &str) -> Option<EnvelopeHeader> {
    serde_json::from_slice::<Header>(&unb64(protected)?).ok()?.envelope
}

fn signing_input(protected: &str, payload: &str) -> String {
    format!("{protected}.{payload}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (tempfile::TempDir, SigningKey) {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(&dir.path().join("k.pem")).unwrap();
        (dir, key)
    }

    fn trust(keys: &[PublicKey]) -> impl Fn(&str) -> Option<PublicKey> + '_ {
        move |kid| keys.iter().copied().find(|k| k.key_id() == kid)
    }

    #[test]
    fn signed_document_verifies_with_every_signer() {
        let ((_d1, a), (_d2, b)) = (key(), key());
        let jws = sign(b"{\"x\":1}", "test", &[&a, &b]);
        let verified = jws.verify("test", trust(&[a.public(), b.public()])).unwrap();
        assert_eq!(verified.payload, b"{\"x\":1}");
        assert_eq!(verified.signers, [a.public(), b.public()]);
        // The same document with one signer unknown is refused as a whole.
        assert!(matches!(jws.verify("test", trust(&[a.public()])), Err(JwsError::UnknownKey { index: 1, .. })));
        assert!(matches!(jws.verify("other", trust(&[a.public(), b.public()])), Err(JwsError::BadHeader { .. })));
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let (_d, a) = key();
        let jws = sign(b"{\"org\":\"se-a\"}", "test", &[&a]);
        let text = serde_json::to_vec(&jws).unwrap();
        let mut refused = 0;
        for i in 0..text.len() {
            for flip in [0x01u8, 0x20] {
                let mut changed = text.clone();
                changed[i] ^= flip;
                let accepted = Jws::parse(&changed)
                    .and_then(|j| j.verify("test", trust(&[a.public()])))
                    .is_ok_and(|v| v.payload == b"{\"org\":\"se-a\"}");
                let same_meaning = Jws::parse(&changed).is_ok_and(|j| j == jws);
                if !accepted || !same_meaning {
                    refused += 1;
                }
                // A flip may only be accepted where it did not change the document (JSON whitespace).
                assert!(!accepted || same_meaning, "a changed byte at {i} was accepted");
            }
        }
        assert!(refused > text.len());
    }

    #[test]
    fn duplicate_members_and_foreign_algorithms_are_refused() {
        let (_d, a) = key();
        let jws = sign(b"{}", "test", &[&a]);
        let dup = format!(r#"{{"payload":"{}","payload":"e30","signatures":[]}}"#, jws.payload);
        assert!(matches!(Jws::parse(dup.as_bytes()), Err(JwsError::Malformed(_))));
        let header = b64(format!(r#"{{"alg":"HS256","kid":"{}","typ":"test"}}"#, a.public().key_id()).as_bytes());
        let forged = Jws {
            payload: jws.payload.clone(),
            signatures: vec![JwsSignature { protected: header, signature: jws.signatures[0].signature.clone() }],
        };
        assert!(matches!(forged.verify("test", trust(&[a.public()])), Err(JwsError::BadHeader { .. })));
        let with_jku =
            b64(format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"test","jku":"https://x"}}"#, a.public().key_id())
                .as_bytes());
        let forged = Jws {
            payload: jws.payload,
            signatures: vec![JwsSignature { protected: with_jku, signature: jws.signatures[0].signature.clone() }],
        };
        assert!(matches!(forged.verify("test", trust(&[a.public()])), Err(JwsError::BadHeader { .. })));
    }
}
