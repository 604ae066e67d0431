//! Adding and updating partners from their signed cards. The same rules hold whether an admin
//! imports a card through the API or the CLI, or a partner pushes its rotated card over federation:
//! the card must verify; a card that changes a known partner's key must be signed by the known key;
//! a card is never older than the one on record; a pin never moves to another partner.

use chrono::{DateTime, Utc};

use crate::crypto::jws::Jws;
use crate::crypto::keys::PublicKey;
use crate::domain::audit::AuditEvent;
use crate::domain::{NodeCard, OrgId, ValidationErrors};
use crate::http::ApiError;
use crate::identity::{CardError, verify_card};
use crate::store::{PartnerRecord, Store, StoreError};

/// Why a card was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("this is this node's own card")]
    OwnCard,
    #[error("the card is for {claimed}, but it arrived from {peer}")]
    WrongOrganisation { claimed: OrgId, peer: OrgId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether an import added a partner or updated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Added,
    Updated,
}

/// Verifies a signed card and stores its partner. `own` is this node's organisation; `peer`, when the
/// card arrived over federation, the organisation whose certificate carried it.
pub async fn import_card(
    store: &Store,
    signed: &Jws,
    own: &OrgId,
    peer: Option<&OrgId>,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<(PartnerRecord, Imported), ImportError> {
    let claimed: NodeCard = serde_json::from_slice(&signed.unverified_payload().map_err(CardError::from)?)
        .map_err(|e| CardError::Malformed(e.to_string()))?;
    if let Some(peer) = peer
        && *peer != claimed.org_id
    {
        return Err(ImportError::WrongOrganisation { claimed: claimed.org_id, peer: peer.clone() });
    }
    if claimed.org_id == *own {
        return Err(ImportError::OwnCard);
    }
    let known = store.partner(&claimed.org_id).await?;
    let known_key = known.as_ref().and_then(|p| PublicKey::from_b64(&p.signing_key));
    let card = verify_card(signed, known_key, now)?;
    if known.as_ref().is_some_and(|k| k.card_issued_at >= card.issued_at && k.card != signed.to_json()) {
        return Err(CardError::Stale.into());
    }
    let record = PartnerRecord {
        org_id: card.org_id.clone(),
        name: card.name.clone(),
        federation_url: card.federation_url.clone(),
        signing_key: card.signing_key.clone(),
        card: signed.to_json(),
        card_issued_at: card.issued_at,
        pins: card.tls_pins.iter().map(|p| (p.pin.clone(), p.until)).collect(),
        blocked: known.as_ref().is_some_and(|k| k.blocked),
        added_at: known.as_ref().map_or(now, |k| k.added_at),
        updated_at: now,
        last_contact_at: known.as_ref().and_then(|k| k.last_contact_at),
        last_error: known.as_ref().and_then(|k| k.last_error.clone()),
        last_error_at: known.as_ref().and_then(|k| k.last_error_at),
    };
    let outcome = if known.is_some() { Imported::Updated } else { Imported::Added };
    let event = match outcome {
        Imported::Added => "partner.added",
        Imported::Updated => "partner.card_renewed",
    };
    store
        .save_partner(&record, &AuditEvent::new(event, actor).partner(&record.org_id).object(record.card.as_bytes()))
        .await?;
    tracing::info!(partner = %record.org_id, ?outcome, "partner card accepted");
    Ok((record, outcome))
}

/// A partner's signing keys as known here: the current one and, after a rotation, the one its card
/// says it replaced (signatures made before the rotation stay valid).
pub fn signing_keys(partner: &PartnerRecord) -> Vec<PublicKey> {
    let card: Option<NodeCard> = Jws::parse(partner.card.as_bytes())
        .ok()
        .and_then(|jws| jws.unverified_payload().ok())
        .and_then(|payload| serde_json::from_slice(&payload).ok());
    std::iter::once(partner.signing_key.clone())
        .chain(card.and_then(|c| c.previous_signing_key))
        .filter_map(|k| PublicKey::from_b64(&k))
        .collect()
}

/// The problem for a refused card, wherever it came from.
impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::WrongOrganisation { .. } => ApiError::Forbidden(error.to_string()),
            ImportError::Card(CardError::KeyChangeUnsigned | CardError::Stale) => ApiError::Conflict(error.to_string()),
            ImportError::Card(CardError::Invalid(errors)) => ApiError::Validation(errors),
            ImportError::Card(_) | ImportError::OwnCard => {
                ApiError::Validation(ValidationErrors::single("card", error.to_string()))
            }
            ImportError::Store(e) => e.into(),
        }
    }
}

/// A statement `peer` signed with a key on its card here, of JWS type `typ`: its content and the
/// signed bytes.
pub async fn partner_statement<T: serde::de::DeserializeOwned>(
    store: &Store,
    peer: &OrgId,
    statement: &Jws,
    typ: &str,
) -> Result<(T, Vec<u8>), super::agreements::LifecycleError> {
    use super::agreements::LifecycleError;
    let partner = store.partner(peer).await?.ok_or_else(|| LifecycleError::UnknownParty(peer.clone()))?;
    let keys = signing_keys(&partner);
    let verified = statement.verify(typ, |kid| keys.iter().copied().find(|k| k.key_id() == kid))?;
    let content = serde_json::from_slice(&verified.payload)
        .map_err(|e| LifecycleError::Signature(crate::crypto::jws::JwsError::Malformed(e.to_string())))?;
    Ok((content, verified.payload))
}
