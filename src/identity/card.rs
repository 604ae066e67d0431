//! Signing and verifying node cards. A card is valid when it is self-signed by the key it names;
//! a card that changes the signing key of a partner already known must also be signed by the key
//! known for it, so a stranger cannot take over a partner's identity by sending a new card; and a
//! card that names a previous key must be signed by that key too.

use chrono::{DateTime, Utc};

use crate::crypto::jws::{self, Jws, JwsError};
use crate::crypto::keys::{PublicKey, SigningKey};
use crate::domain::card::CARD_TYPE;
use crate::domain::{NodeCard, ValidationErrors};

/// Why a card was refused.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("the card is not a signed node card: {0}")]
    Malformed(String),
    #[error("the card's content is invalid: {0}")]
    Invalid(ValidationErrors),
    #[error("the card's signature is not valid: {0}")]
    Signature(#[from] JwsError),
    #[error("the card is not signed by the key it names")]
    NotSelfSigned,
    #[error(
        "the card changes the partner's signing key but is not signed by the key known for it; \
         confirm the new card with the partner out of band, then remove and add the partner again"
    )]
    KeyChangeUnsigned,
    #[error("the card is older than the one already known")]
    Stale,
}

/// Signs `card` with every key in `keys` (the new key first, then an old one during rotation).
pub fn sign_card(card: &NodeCard, keys: &[&SigningKey]) -> Jws {
    // A card is plain data; serialising it cannot fail.
    let payload = serde_json::to_vec(card).unwrap_or_default();
    jws::sign(&payload, CARD_TYPE, keys)
}

/// Verifies a card at `now`. `known_key` is the signing key already on record for the card's
/// organisation, if any.
pub fn verify_card(signed: &Jws, known_key: Option<PublicKey>, now: DateTime<Utc>) -> Result<NodeCard, CardError> {
    let payload = signed.unverified_payload()?;
    let card: NodeCard = serde_json::from_slice(&payload).map_err(|e| CardError::Malformed(e.to_string()))?;
    card.check(now).map_err(CardError::Invalid)?;
    let card_key = PublicKey::from_b64(&card.signing_key)
        .ok_or_else(|| CardError::Invalid(ValidationErrors::single("signing_key", "must be an Ed25519 public key")))?;
    let previous_key = match &card.previous_signing_key {
        Some(text) => Some(PublicKey::from_b64(text).ok_or_else(|| {
            CardError::Invalid(ValidationErrors::single("previous_signing_key", "must be an Ed25519 public key"))
        })?),
        None => None,
    };
    let trusted =
        |kid: &str| [Some(card_key), previous_key, known_key].into_iter().flatten().find(|k| k.key_id() == kid);
    let verified = signed.verify(CARD_TYPE, trusted)?;
    if !verified.signers.contains(&card_key) {
        return Err(CardError::NotSelfSigned);
    }
    // A previous key is trusted for what it signed before (agreements, cards), so a card may name
    // one only with that key's own signature: otherwise a partner could claim another's key.
    if let Some(previous) = previous_key
        && !verified.signers.contains(&previous)
    {
        return Err(CardError::Invalid(ValidationErrors::single(
            "previous_signing_key",
            "the card is not signed by the key it names as its previous one; a rotated card is signed by both",
        )));
    }
    if let Some(known) = known_key
        && known != card_key
        && !verified.signers.contains(&known)
    {
        return Err(CardError::KeyChangeUnsigned);
    }
    Ok(card)
}
