//! The life of an agreement between nodes (its pure rules are `domain::agreement`). One party
//! proposes it: its node fills in every party's keys from the cards on record, signs, and sends it
//! to the others. Each party's admin reviews and signs; signatures travel between the nodes and are
//! merged. The agreement takes effect only when every party has signed the same bytes and its start
//! date has come, and any party can revoke it, at once, with a signed statement. Documents from
//! partners are checked like our own: every signature by a party's known key, the payload identical
//! to the one on record.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::Federation;
use super::registry::signing_keys;
use super::sweep::end_sharing;
use crate::crypto::jws::{self, Jws, JwsError};
use crate::crypto::keys::{PublicKey, SigningKey};
use crate::domain::agreement::{
    self, AGREEMENT_TYPE, Agreement, AgreementId, AgreementStatus, REVOCATION_TYPE, Revocation, RevocationRecord,
};
use crate::domain::audit::AuditEvent;
use crate::domain::{OrgId, ValidationErrors};
use crate::http::ApiError;
use crate::store::{AgreementRecord, LifecycleDocument, LifecycleKind, MAX_PENDING_REVOCATIONS, Store, StoreError};

/// Why an agreement, a signature or a revocation was refused.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("the agreement is invalid: {0}")]
    Invalid(ValidationErrors),
    #[error("this node's organisation is not a party to the agreement")]
    NotAParty,
    #[error("{0} is a party, but this node has no card for it: import its card first")]
    UnknownParty(OrgId),
    #[error("the agreement gives {0} another signing key than the one on record here")]
    KeyMismatch(OrgId),
    #[error("the framework {0} is not known to this node; it must be proposed and stored first")]
    UnknownFramework(AgreementId),
    #[error("these signatures are over other bytes than the agreement on record; nothing was changed")]
    DifferentBytes,
    #[error("a signature is not valid: {0}")]
    Signature(#[from] JwsError),
    #[error("an agreement with this id exists already")]
    Exists,
    #[error("no agreement with this id")]
    NotFound,
    #[error("the agreement was revoked by {0}")]
    Revoked(String),
    #[error("this node has signed the agreement already")]
    AlreadySigned,
    #[error("every party has signed the agreement: it can no longer be declined, only revoked")]
    NotPending,
    #[error(
        "{0} has {MAX_PENDING_PROPOSALS} proposals awaiting signatures here already; an agreement-admin of this \
         node must sign or decline one before another is taken"
    )]
    TooManyPending(OrgId),
    #[error(
        "{0} has sent {MAX_PENDING_REVOCATIONS} revocations of agreements not known here already; they are applied \
         when their agreements arrive"
    )]
    TooManyPendingRevocations(OrgId),
    #[error("{0}")]
    Forbidden(String),
    /// Something else is held under the document's id, or it cannot follow what is held.
    #[error("{0}")]
    Conflict(String),
    /// Not now: what it needs has not reached this node yet (a signature, an earlier step); the
    /// sender tries again.
    #[error("{0}")]
    NotYet(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An agreement document whose every signature is by a party's key as known here.
#[derive(Debug, Clone)]
pub struct Checked {
    pub agreement: Agreement,
    pub document: Jws,
    pub signed_by: Vec<OrgId>,
    /// False when the agreement sits under a framework that is not active (never signed by all,
    /// revoked or expired): then nothing flows under it either.
    pub framework_active: bool,
    /// Held as the framework of this node's local agreements, this node being no party to it.
    pub held_as_framework: bool,
    /// The amendment of it that is in force, if one is: then it is replaced, and nothing flows
    /// under it.
    pub replaced_by: Option<AgreementId>,
}

/// The status of a stored agreement at `now`.
pub fn status(checked: &Checked, revocation: Option<&RevocationRecord>, now: DateTime<Utc>) -> AgreementStatus {
    status_with(checked, checked.framework_active, checked.replaced_by.as_ref(), revocation, now)
}

/// The status of a stored agreement at `now`, its framework being active or not, and an amendment
/// in force replacing it or not, as said.
pub fn status_with(
    checked: &Checked,
    framework_active: bool,
    replaced_by: Option<&AgreementId>,
    revocation: Option<&RevocationRecord>,
    now: DateTime<Utc>,
) -> AgreementStatus {
    agreement::status(&checked.agreement, &checked.signed_by, framework_active, replaced_by, revocation, now)
}

/// Whether an agreement lets anything flow at `now`.
pub fn is_active(checked: &Checked, revocation: Option<&RevocationRecord>, now: DateTime<Utc>) -> bool {
    status(checked, revocation, now).state == "active"
}

/// The key that makes this node's pseudonyms under one agreement: derived from a signature of the
/// node's (deterministic) Ed25519 key, so it is secret, stable, and needs no file of its own.
pub fn pseudonym_key(key: &SigningKey, agreement: &AgreementId) -> [u8; 32] {
    let signature = key.sign(format!("lagesbild pseudonym key\u{0}{agreement}").as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &signature).as_ref());
    out
}

/// Proposes `agreement`: fills in every party's keys, signs, stores, and sends it to the others.
pub async fn propose(
    federation: &Federation,
    mut agreement: Agreement,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<Checked, LifecycleError> {
    let own = federation.keys.card.org_id.clone();
    if agreement.party(&own).is_none() {
        return Err(LifecycleError::NotAParty);
    }
    if federation.store.agreement(agreement.id.as_str()).await?.is_some() {
        return Err(LifecycleError::Exists);
    }
    for party in &mut agreement.parties {
        if party.org_id == own {
            party.signing_key = Some(federation.keys.card.signing_key.clone());
            party.tls_pins = federation.keys.card.live_pins(now).cloned().collect();
        } else {
            let partner = federation
                .store
                .partner(&party.org_id)
                .await?
                .ok_or_else(|| LifecycleError::UnknownParty(party.org_id.clone()))?;
            party.signing_key = Some(partner.signing_key.clone());
            party.tls_pins = partner.pins.iter().map(|(pin, _)| pin.clone()).collect();
        }
    }
    let payload = serde_json::to_vec(&agreement).map_err(|e| LifecycleError::Forbidden(e.to_string()))?;
    let document = jws::sign(&payload, AGREEMENT_TYPE, &[&federation.keys.signing]);
    let checked = check_document(&federation.store, federation, &document).await?;
    super::amendments::check_replaceable(&federation.store, &checked).await?;
    // A party no party to the framework gets the framework first, in the outbox's order.
    let mut send = super::frameworks::with_proposal(federation, &checked.agreement).await?;
    send.extend(for_the_others(federation, &checked.agreement, LifecycleKind::Agreement, &checked.document));
    if !insert(&federation.store, &checked, own.as_str(), now, AuditEvent::new("agreement.proposed", actor), &send)
        .await?
    {
        return Err(LifecycleError::Exists);
    }
    federation.lifecycle.wake();
    tracing::info!(agreement = %checked.agreement.id, "agreement proposed");
    Ok(checked)
}

/// Adds this node's signature to a stored agreement and sends the document to the other parties.
pub async fn sign(
    federation: &Federation,
    id: &str,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<Checked, LifecycleError> {
    for _ in 0..MERGE_ATTEMPTS {
        let record = federation.store.agreement(id).await?.ok_or(LifecycleError::NotFound)?;
        if let Some(r) = &record.revocation {
            return Err(LifecycleError::Revoked(r.by.clone()));
        }
        let mut checked = load(&federation.store, federation, &record).await?;
        if checked.signed_by.contains(&federation.keys.card.org_id) {
            return Err(LifecycleError::AlreadySigned);
        }
        let was_active = is_active(&checked, None, now);
        checked.document.countersign(AGREEMENT_TYPE, &federation.keys.signing);
        let checked = check_document(&federation.store, federation, &checked.document).await?;
        let previous = (record.document.as_str(), was_active);
        let send = for_the_others(federation, &checked.agreement, LifecycleKind::Agreement, &checked.document);
        if replace(&federation.store, &checked, previous, now, AuditEvent::new("agreement.signed", actor), &send)
            .await?
        {
            federation.lifecycle.wake();
            tracing::info!(agreement = %checked.agreement.id, "agreement signed");
            took_effect(federation, &checked, now).await;
            return Ok(checked);
        }
    }
    Err(LifecycleError::Forbidden("the agreement kept changing while signing; try again".into()))
}

/// When a signature puts an amendment in force, the agreement it replaces is handed over to it at
/// once (the sweep would at its next turn, and does if this fails).
async fn took_effect(federation: &Federation, checked: &Checked, now: DateTime<Utc>) {
    if checked.agreement.replaces.is_some()
        && is_active(checked, None, now)
        && let Err(error) = super::amendments::take_effect(federation, now).await
    {
        tracing::warn!(agreement = %checked.agreement.id, %error, "handing over to an amendment failed; the sweep tries again");
    }
}

/// How often a merge that lost a race is tried again.
const MERGE_ATTEMPTS: usize = 10;

/// How many proposals from one partner may await signatures here at once: what a partner can make
/// this node store without any admin's consent.
pub const MAX_PENDING_PROPOSALS: usize = 20;

/// Takes a document a partner sent: new, or with signatures to merge into the one on record.
pub async fn receive(
    federation: &Federation,
    peer: &OrgId,
    document: &Jws,
    now: DateTime<Utc>,
) -> Result<Checked, LifecycleError> {
    let incoming = check_document(&federation.store, federation, document).await?;
    if incoming.agreement.party(peer).is_none() {
        return Err(LifecycleError::Forbidden(format!("{peer} is not a party to agreement {}", incoming.agreement.id)));
    }
    let event = || AuditEvent::new("agreement.received", &format!("partner:{peer}")).partner(peer);
    for _ in 0..MERGE_ATTEMPTS {
        match federation.store.agreement(incoming.agreement.id.as_str()).await? {
            Some(record) => {
                let mut stored = Jws::parse(record.document.as_bytes())?;
                let was_active = is_active(&check_document(&federation.store, federation, &stored).await?, None, now);
                stored.merge(document).map_err(|_| LifecycleError::DifferentBytes)?;
                let merged = check_document(&federation.store, federation, &stored).await?;
                if merged.document.to_json() == record.document
                    || replace(&federation.store, &merged, (&record.document, was_active), now, event(), &[]).await?
                {
                    took_effect(federation, &merged, now).await;
                    return Ok(merged);
                }
            }
            None => {
                if pending_from(federation, peer, now).await? >= MAX_PENDING_PROPOSALS {
                    return Err(LifecycleError::TooManyPending(peer.clone()));
                }
                super::amendments::check_replaceable(&federation.store, &incoming).await?;
                if insert(&federation.store, &incoming, peer.as_str(), now, event(), &[]).await? {
                    apply_pending_revocations(federation, &incoming.agreement.id, now).await?;
                    return Ok(incoming);
                }
            }
        }
    }
    Err(LifecycleError::Forbidden("the agreement kept changing while merging; send it again".into()))
}

/// Revokes an agreement for every party: stored here at once, and sent to the others.
pub async fn revoke(
    federation: &Federation,
    id: &str,
    reason: Option<String>,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<RevocationRecord, LifecycleError> {
    let checked = unrevoked(federation, id).await?;
    end(federation, &checked, reason, now, AuditEvent::new("agreement.revoked", actor)).await
}

/// Declines an agreement not every party has signed yet (a proposal this node will not sign, or
/// one it no longer wants): a revocation like any other, so every party stops waiting for it, and
/// the proposer's count of proposals awaiting signatures here goes down.
pub async fn decline(
    federation: &Federation,
    id: &str,
    reason: Option<String>,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<RevocationRecord, LifecycleError> {
    let checked = unrevoked(federation, id).await?;
    if checked.agreement.parties.iter().all(|p| checked.signed_by.contains(&p.org_id)) {
        return Err(LifecycleError::NotPending);
    }
    end(federation, &checked, reason, now, AuditEvent::new("agreement.declined", actor)).await
}

/// The stored agreement `id`, checked, if no party has revoked it.
async fn unrevoked(federation: &Federation, id: &str) -> Result<Checked, LifecycleError> {
    let record = federation.store.agreement(id).await?.ok_or(LifecycleError::NotFound)?;
    if let Some(r) = &record.revocation {
        return Err(LifecycleError::Revoked(r.by.clone()));
    }
    if record.held_as_framework {
        // Held for local agreements: its own parties revoke it.
        return Err(LifecycleError::NotAParty);
    }
    load(&federation.store, federation, &record).await
}

/// Ends `checked` for every party with a signed revocation, recorded as `event`.
async fn end(
    federation: &Federation,
    checked: &Checked,
    reason: Option<String>,
    now: DateTime<Utc>,
    event: AuditEvent,
) -> Result<RevocationRecord, LifecycleError> {
    let id = checked.agreement.id.as_str();
    let statement = Revocation {
        agreement: checked.agreement.id.clone(),
        by: federation.keys.card.org_id.clone(),
        at: now,
        reason,
    };
    let payload = serde_json::to_vec(&statement).map_err(|e| LifecycleError::Forbidden(e.to_string()))?;
    let signed = jws::sign(&payload, REVOCATION_TYPE, &[&federation.keys.signing]);
    let revocation = RevocationRecord {
        by: statement.by.to_string(),
        at: now,
        reason: statement.reason,
        statement: signed.to_json(),
    };
    let event = event.agreement(id).object(revocation.statement.as_bytes());
    let mut send = for_the_others(federation, &checked.agreement, LifecycleKind::Revocation, &signed);
    // Nodes that hold it as the framework of their local agreements are told too.
    send.extend(super::frameworks::holders_of(federation, &checked.agreement, &signed).await?);
    federation.store.revoke_agreement(id, &revocation, &event, &send).await?;
    federation.lifecycle.wake();
    end_sharing(federation, id, "agreement.sharing_ended", "the agreement was revoked", now).await?;
    super::frameworks::end_local_agreements(federation, &checked.agreement.id, now).await?;
    tracing::info!(agreement = %checked.agreement.id, event = %event.event, "agreement ended");
    Ok(revocation)
}

/// How many proposals `peer` sent that await signatures here and no party has revoked.
async fn pending_from(federation: &Federation, peer: &OrgId, now: DateTime<Utc>) -> Result<usize, LifecycleError> {
    let all = federation.agreements.all(federation, now).await?;
    Ok(all
        .iter()
        .filter(|s| s.record.proposed_by == peer.as_str() && s.record.revocation.is_none())
        .filter(|s| s.checked.agreement.parties.iter().any(|p| !s.checked.signed_by.contains(&p.org_id)))
        .count())
}

/// Takes a revocation a partner sent: it must be signed by a party to the agreement. One for an
/// agreement not known here yet is kept, and judged when the agreement arrives (`None`).
pub async fn receive_revocation(
    federation: &Federation,
    peer: &OrgId,
    signed: &Jws,
    now: DateTime<Utc>,
) -> Result<Option<RevocationRecord>, LifecycleError> {
    let claimed: Revocation = serde_json::from_slice(&signed.unverified_payload()?)
        .map_err(|e| LifecycleError::Signature(JwsError::Malformed(e.to_string())))?;
    let Some(record) = federation.store.agreement(claimed.agreement.as_str()).await? else {
        // The revocation overtook its agreement: kept until the agreement arrives, and judged then.
        let kept =
            federation.store.keep_pending_revocation(claimed.agreement.as_str(), peer, &signed.to_json(), now).await?;
        if !kept {
            return Err(LifecycleError::TooManyPendingRevocations(peer.clone()));
        }
        let event = AuditEvent::new("agreement.revocation_kept", &format!("partner:{peer}"))
            .partner(peer)
            .agreement(&claimed.agreement)
            .object(signed.to_json().as_bytes())
            .detail("the agreement is not known here yet; applied when it arrives");
        federation.store.record_audit(&event, now).await?;
        return Ok(None);
    };
    let checked = load(&federation.store, federation, &record).await?;
    if checked.agreement.party(peer).is_none() {
        return Err(LifecycleError::Forbidden(format!("{peer} is not a party to agreement {}", claimed.agreement)));
    }
    let keys = party_keys(&federation.store, federation, &checked.agreement).await?;
    let revoker =
        keys.get(&claimed.by).ok_or_else(|| LifecycleError::Forbidden(format!("{} is not a party", claimed.by)))?;
    signed.verify(REVOCATION_TYPE, |kid| revoker.iter().copied().find(|k| k.key_id() == kid))?;
    // The node's own clock times the revocation here; the revoking party's claim is kept as detail,
    // so no partner can place an entry elsewhere in this node's audit trail.
    let claimed_at = claimed.at;
    let revocation =
        RevocationRecord { by: claimed.by.to_string(), at: now, reason: claimed.reason, statement: signed.to_json() };
    let event = AuditEvent::new("agreement.revoked", &format!("partner:{peer}"))
        .detail(format!("revoked by {} at {claimed_at} by its own clock", claimed.by))
        .partner(peer)
        .agreement(&claimed.agreement)
        .object(revocation.statement.as_bytes());
    federation.store.revoke_agreement(claimed.agreement.as_str(), &revocation, &event, &[]).await?;
    end_sharing(federation, claimed.agreement.as_str(), "agreement.sharing_ended", "the agreement was revoked", now)
        .await?;
    super::frameworks::end_local_agreements(federation, &claimed.agreement, now).await?;
    tracing::info!(agreement = %claimed.agreement, by = %claimed.by, "agreement revoked by a party");
    Ok(Some(revocation))
}

/// A stored agreement, checked again (keys may have changed since it was stored).
pub async fn load(store: &Store, federation: &Federation, record: &AgreementRecord) -> Result<Checked, LifecycleError> {
    let document = Jws::parse(record.document.as_bytes())?;
    check_document_as(store, federation, &document, !record.held_as_framework).await
}

/// Checks a document: every signature by a party's key as known here (and each such key the one
/// the agreement names), this node a party, and a valid agreement (within its framework, if it
/// names one). The signatures come before the content, once the numbers of parties and flows are
/// known to be small: a document no party signed costs no more than that.
async fn check_document(store: &Store, federation: &Federation, document: &Jws) -> Result<Checked, LifecycleError> {
    check_document_as(store, federation, document, true).await
}

/// Like [`check_document`]; a framework held for local agreements (`as_party` false) need not name
/// this node among its parties.
pub(super) async fn check_document_as(
    store: &Store,
    federation: &Federation,
    document: &Jws,
    as_party: bool,
) -> Result<Checked, LifecycleError> {
    let mut checked = check_terms(store, federation, document, as_party).await?;
    checked.replaced_by = amendment_in_force(store, federation, &checked.agreement).await?;
    Ok(checked)
}

/// The amendment of `agreement` in force now, if one is (checked on its own terms: whether an
/// amendment is itself replaced does not matter here).
async fn amendment_in_force(
    store: &Store,
    federation: &Federation,
    agreement: &Agreement,
) -> Result<Option<AgreementId>, LifecycleError> {
    for record in store.amendments_of(agreement.id.as_str()).await? {
        let Ok(document) = Jws::parse(record.document.as_bytes()) else { continue };
        // An amendment that no longer checks replaces nothing: when in doubt, the old one stands.
        if let Ok(amendment) = Box::pin(check_terms(store, federation, &document, true)).await
            && is_active(&amendment, None, federation.clock.now())
        {
            return Ok(Some(amendment.agreement.id));
        }
    }
    Ok(None)
}

/// A document's signatures and terms, as [`check_document_as`] checks them, without looking for
/// an amendment of it.
async fn check_terms(
    store: &Store,
    federation: &Federation,
    document: &Jws,
    as_party: bool,
) -> Result<Checked, LifecycleError> {
    let payload = document.unverified_payload()?;
    let agreement: Agreement = serde_json::from_slice(&payload)
        .map_err(|e| LifecycleError::Invalid(ValidationErrors::single("agreement", e.to_string())))?;
    agreement.check_bounds().map_err(LifecycleError::Invalid)?;
    if as_party && agreement.party(&federation.keys.card.org_id).is_none() {
        return Err(LifecycleError::NotAParty);
    }
    let keys = party_keys(store, federation, &agreement).await?;
    let verified =
        document.verify(AGREEMENT_TYPE, |kid| keys.values().flatten().copied().find(|k| k.key_id() == kid))?;
    agreement.check().map_err(LifecycleError::Invalid)?;
    // The framework counts only as verified here (its own parties' signatures) and active now; a
    // document that merely carries the framework's id proves nothing.
    let mut framework_active = true;
    if let Some(framework_id) = &agreement.framework {
        let record = store
            .agreement(framework_id.as_str())
            .await?
            .ok_or_else(|| LifecycleError::UnknownFramework(framework_id.clone()))?;
        let framework = Box::pin(load(store, federation, &record)).await?;
        agreement.check_within(&framework.agreement).map_err(LifecycleError::Invalid)?;
        framework_active = is_active(&framework, record.revocation.as_ref(), federation.clock.now());
    }
    let mut signed_by: Vec<OrgId> = verified
        .signers
        .iter()
        .filter_map(|key| keys.iter().find(|(_, known)| known.contains(key)).map(|(org, _)| org.clone()))
        .collect();
    // A party that signed with its old key and again with its new one is one signer.
    signed_by.sort();
    signed_by.dedup();
    Ok(Checked {
        agreement,
        document: document.clone(),
        signed_by,
        framework_active,
        held_as_framework: !as_party,
        replaced_by: None,
    })
}

/// Every party's signing keys as known here: the current one and, after a rotation, the one its
/// card says it replaced (signatures made before the rotation stay valid). The key the agreement
/// names for a party must be one of them.
async fn party_keys(
    store: &Store,
    federation: &Federation,
    agreement: &Agreement,
) -> Result<HashMap<OrgId, Vec<PublicKey>>, LifecycleError> {
    let mut keys = HashMap::new();
    for party in &agreement.parties {
        let unknown = || LifecycleError::UnknownParty(party.org_id.clone());
        let known: Vec<PublicKey> = if party.org_id == federation.keys.card.org_id {
            let card = &federation.keys.card;
            std::iter::once(&card.signing_key)
                .chain(&card.previous_signing_key)
                .filter_map(|k| PublicKey::from_b64(k))
                .collect()
        } else {
            signing_keys(&store.partner(&party.org_id).await?.ok_or_else(unknown)?)
        };
        if known.is_empty() {
            return Err(unknown());
        }
        if party.signing_key.as_deref().is_some_and(|named| !known.iter().any(|k| k.to_b64() == named)) {
            return Err(LifecycleError::KeyMismatch(party.org_id.clone()));
        }
        keys.insert(party.org_id.clone(), known);
    }
    Ok(keys)
}

/// Stores a new checked document with its audit entry (which names the agreement and the hash of
/// the document as stored); false if the id is taken.
async fn insert(
    store: &Store,
    checked: &Checked,
    proposed_by: &str,
    now: DateTime<Utc>,
    event: AuditEvent,
    send: &[LifecycleDocument],
) -> Result<bool, LifecycleError> {
    insert_as(store, checked, proposed_by, false, now, event, send).await
}

/// Like [`insert`]; `held_as_framework` stores a framework this node is no party to.
pub(super) async fn insert_as(
    store: &Store,
    checked: &Checked,
    proposed_by: &str,
    held_as_framework: bool,
    now: DateTime<Utc>,
    event: AuditEvent,
    send: &[LifecycleDocument],
) -> Result<bool, LifecycleError> {
    let record = AgreementRecord {
        id: checked.agreement.id.to_string(),
        document: checked.document.to_json(),
        proposed_by: proposed_by.to_owned(),
        received_at: now,
        updated_at: now,
        revocation: None,
        held_as_framework,
        replaces: checked.agreement.replaces.as_ref().map(ToString::to_string),
        handed_over_at: None,
    };
    let mut events = vec![event.agreement(&checked.agreement.id).object(record.document.as_bytes())];
    events.extend(activation(checked, false, now, &events[0].actor));
    Ok(store.insert_agreement(&record, &events, send).await?)
}

/// The `agreement.activated` entry, when `checked` is in force now and was not before.
fn activation(checked: &Checked, was_active: bool, now: DateTime<Utc>, actor: &str) -> Option<AuditEvent> {
    (!was_active && is_active(checked, None, now)).then(|| {
        AuditEvent::new("agreement.activated", actor).agreement(&checked.agreement.id).detail(format!(
            "signed by all {} parties; in force until {}",
            checked.signed_by.len(),
            checked.agreement.valid_until
        ))
    })
}

/// Replaces the stored document `previous` (which was active or not, `was_active`) with the
/// checked one; false if it changed meanwhile. The signature that puts the agreement in force is
/// recorded as its activation too, in the same transaction.
async fn replace(
    store: &Store,
    checked: &Checked,
    (previous, was_active): (&str, bool),
    now: DateTime<Utc>,
    event: AuditEvent,
    send: &[LifecycleDocument],
) -> Result<bool, LifecycleError> {
    let document = checked.document.to_json();
    let mut events = vec![event.agreement(&checked.agreement.id).object(document.as_bytes())];
    events.extend(activation(checked, was_active, now, &events[0].actor));
    Ok(store.replace_agreement_document(checked.agreement.id.as_str(), previous, &document, now, &events, send).await?)
}

/// `document` for every other party of `agreement`, to queue with the change that made it.
fn for_the_others(
    federation: &Federation,
    agreement: &Agreement,
    kind: LifecycleKind,
    document: &Jws,
) -> Vec<LifecycleDocument> {
    let json = document.to_json();
    agreement
        .parties
        .iter()
        .filter(|p| p.org_id != federation.keys.card.org_id)
        .map(|p| LifecycleDocument {
            recipient: p.org_id.clone(),
            kind,
            agreement: agreement.id.to_string(),
            document: json.clone(),
        })
        .collect()
}

/// Applies the revocations that arrived before `agreement` did, each judged as if it came now.
async fn apply_pending_revocations(
    federation: &Federation,
    agreement: &AgreementId,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    for (sender, statement, _) in federation.store.take_pending_revocations(agreement.as_str()).await? {
        let (Ok(sender), Ok(statement)) = (OrgId::parse(&sender), Jws::parse(statement.as_bytes())) else { continue };
        if let Err(error) = Box::pin(receive_revocation(federation, &sender, &statement, now)).await {
            tracing::warn!(%agreement, %sender, %error, "a revocation kept for this agreement does not apply");
        }
    }
    Ok(())
}

/// The problem for a refused lifecycle step, wherever it came from.
impl From<LifecycleError> for ApiError {
    fn from(error: LifecycleError) -> Self {
        match error {
            LifecycleError::Invalid(errors) => ApiError::Validation(errors),
            LifecycleError::NotFound => ApiError::NotFound(error.to_string()),
            LifecycleError::Forbidden(_) => ApiError::Forbidden(error.to_string()),
            LifecycleError::NotYet(_) => ApiError::Unavailable(error.to_string()),
            LifecycleError::Store(e) => e.into(),
            LifecycleError::Exists
            | LifecycleError::Conflict(_)
            | LifecycleError::Revoked(_)
            | LifecycleError::AlreadySigned
            | LifecycleError::NotPending
            | LifecycleError::TooManyPending(_)
            | LifecycleError::TooManyPendingRevocations(_)
            | LifecycleError::DifferentBytes => ApiError::Conflict(error.to_string()),
            LifecycleError::NotAParty
            | LifecycleError::UnknownParty(_)
            | LifecycleError::KeyMismatch(_)
            | LifecycleError::UnknownFramework(_)
            | LifecycleError::Signature(_) => {
                ApiError::Validation(ValidationErrors::single("agreement", error.to_string()))
            }
        }
    }
}
