//! Local agreements under a framework this node is no party to, as the Norwegian police districts
//! and guard companies make them under the national framework between the police directorate and
//! the guard industry. Such a node holds the framework's fully signed document, checked against the
//! framework parties' cards (imported like any card, as keys trusted for that purpose), so that it
//! can check that its local agreements only narrow the framework and know whether the framework is
//! in force: a local agreement is active only while its framework is.
//!
//! The framework comes with the proposal: the proposer's node sends it, ahead of the local
//! agreement, to every party of the local agreement that is no party to the framework (an
//! administrator first imports it at the proposer's node, from the document a framework party
//! exports). A node that holds a framework tells the framework's parties so, with a signed
//! statement (a holding); a framework party's node that revokes the framework sends the revocation
//! to every holder too, and a holder that learns of it ends sharing under its local agreements at
//! once. All of it travels through the lifecycle outbox.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Federation;
use super::agreements::{Checked, LifecycleError, check_document_as, insert_as, load};
use super::sweep::end_sharing;
use crate::crypto::jws::{self, Jws};
use crate::domain::agreement::{Agreement, AgreementId};
use crate::domain::audit::AuditEvent;
use crate::domain::{OrgId, ValidationErrors};
use crate::store::{LifecycleDocument, LifecycleKind};

/// The JWS `typ` of a holding statement.
pub const HOLDING_TYPE: &str = "lagesbild-framework-holding+json";

/// How many frameworks one partner may hand this node to hold.
pub const MAX_FRAMEWORKS_PER_PARTNER: i64 = 20;

/// A node's statement that it holds a framework, signed by its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holding {
    pub framework: AgreementId,
    pub holder: OrgId,
    pub at: DateTime<Utc>,
}

/// Holds a framework's document for local agreements under it: sent by `from` (a party to a local
/// agreement under it), or imported by an administrator here (`from` none). It must be a framework
/// (under none itself), signed by every one of its parties with the keys on their cards here, and
/// not name this node, whose own agreements are proposed and signed as such. A framework held
/// already is kept as it is.
pub async fn hold(
    federation: &Federation,
    from: Option<&OrgId>,
    document: &Jws,
    now: DateTime<Utc>,
    actor: &str,
) -> Result<Checked, LifecycleError> {
    let checked = check_document_as(&federation.store, federation, document, false).await?;
    let agreement = &checked.agreement;
    let own = &federation.keys.card.org_id;
    if agreement.party(own).is_some() {
        return Err(invalid(format!(
            "this node is a party to {}: it is proposed and signed here as any agreement, not held",
            agreement.id
        )));
    }
    if let Some(outer) = &agreement.framework {
        return Err(invalid(format!("{} sits under {outer} itself: only a framework is held", agreement.id)));
    }
    if let Some(unsigned) = agreement.parties.iter().find(|p| !checked.signed_by.contains(&p.org_id)) {
        return Err(invalid(format!(
            "{} has not signed {}: only a framework every party signed is held",
            unsigned.org_id, agreement.id
        )));
    }
    if let Some(record) = federation.store.agreement(agreement.id.as_str()).await? {
        return match record.held_as_framework {
            true => load(&federation.store, federation, &record).await,
            false => Err(LifecycleError::Exists),
        };
    }
    if let Some(partner) = from
        && federation.store.frameworks_held_from(partner.as_str()).await? >= MAX_FRAMEWORKS_PER_PARTNER
    {
        return Err(LifecycleError::Forbidden(format!(
            "{partner} has handed this node {MAX_FRAMEWORKS_PER_PARTNER} frameworks to hold already"
        )));
    }
    let send = holdings(federation, agreement, now);
    let event = AuditEvent::new("agreement.framework_held", actor).detail(format!(
        "held as the framework of local agreements, signed by {}",
        checked.signed_by.iter().map(OrgId::as_str).collect::<Vec<_>>().join(", ")
    ));
    let event = match from {
        Some(partner) => event.partner(partner),
        None => event,
    };
    let proposed_by = from.map_or_else(|| format!("import:{actor}"), OrgId::to_string);
    if !insert_as(&federation.store, &checked, &proposed_by, true, now, event, &send).await? {
        // Another request stored it meanwhile: what is stored stands.
        let record = federation.store.agreement(agreement.id.as_str()).await?.ok_or(LifecycleError::NotFound)?;
        return load(&federation.store, federation, &record).await;
    }
    federation.lifecycle.wake();
    tracing::info!(framework = %agreement.id, "holding a framework for local agreements");
    Ok(checked)
}

/// What goes out with a local agreement this node proposes: its framework, to every other party
/// of it that is no party to the framework (ahead of the agreement itself, in the outbox's order).
pub(super) async fn with_proposal(
    federation: &Federation,
    local: &Agreement,
) -> Result<Vec<LifecycleDocument>, LifecycleError> {
    let Some(framework_id) = &local.framework else { return Ok(Vec::new()) };
    let record = federation
        .store
        .agreement(framework_id.as_str())
        .await?
        .ok_or_else(|| LifecycleError::UnknownFramework(framework_id.clone()))?;
    let framework = load(&federation.store, federation, &record).await?;
    let own = &federation.keys.card.org_id;
    Ok(local
        .parties
        .iter()
        .filter(|p| &p.org_id != own && framework.agreement.party(&p.org_id).is_none())
        .map(|p| LifecycleDocument {
            recipient: p.org_id.clone(),
            kind: LifecycleKind::Framework,
            agreement: framework_id.to_string(),
            document: record.document.clone(),
        })
        .collect())
}

/// A holding statement for every party of `framework`: they tell this node when they revoke it.
fn holdings(federation: &Federation, framework: &Agreement, now: DateTime<Utc>) -> Vec<LifecycleDocument> {
    let statement = Holding { framework: framework.id.clone(), holder: federation.keys.card.org_id.clone(), at: now };
    // A statement is plain data: serialising it cannot fail.
    let payload = serde_json::to_vec(&statement).unwrap_or_default();
    let signed = jws::sign(&payload, HOLDING_TYPE, &[&federation.keys.signing]).to_json();
    framework
        .parties
        .iter()
        .map(|p| LifecycleDocument {
            recipient: p.org_id.clone(),
            kind: LifecycleKind::Holding,
            agreement: framework.id.to_string(),
            document: signed.clone(),
        })
        .collect()
}

/// Takes a partner's statement that it holds one of this node's frameworks: signed by the
/// partner's key, about itself, for a framework this node is a party to. If the framework is
/// revoked already, the revocation goes to the holder at once.
pub async fn receive_holding(
    federation: &Federation,
    peer: &OrgId,
    statement: &Jws,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let (holding, _): (Holding, _) =
        super::registry::partner_statement(&federation.store, peer, statement, HOLDING_TYPE).await?;
    if &holding.holder != peer {
        return Err(LifecycleError::Forbidden(format!(
            "{peer} cannot state that {} holds a framework",
            holding.holder
        )));
    }
    let record = federation.store.agreement(holding.framework.as_str()).await?.ok_or(LifecycleError::NotFound)?;
    if record.held_as_framework {
        return Err(LifecycleError::Forbidden(format!("this node is no party to {}", holding.framework)));
    }
    let event = AuditEvent::new("agreement.framework_holder", &format!("partner:{peer}"))
        .partner(peer)
        .agreement(&holding.framework)
        .detail("holds the framework for local agreements under it; told when it is revoked");
    let added = federation.store.add_framework_holder(holding.framework.as_str(), peer.as_str(), &event, now).await?;
    if added && let Some(revocation) = &record.revocation {
        let late = LifecycleDocument {
            recipient: peer.clone(),
            kind: LifecycleKind::Revocation,
            agreement: record.id.clone(),
            document: revocation.statement.clone(),
        };
        federation.store.queue_lifecycle_documents(&[late], now).await?;
        federation.lifecycle.wake();
    }
    Ok(())
}

/// The holders of `framework` (one of this node's own), to send its revocation to.
pub(super) async fn holders_of(
    federation: &Federation,
    framework: &Agreement,
    revocation: &Jws,
) -> Result<Vec<LifecycleDocument>, LifecycleError> {
    let holders = federation.store.framework_holders(framework.id.as_str()).await?;
    Ok(holders
        .into_iter()
        .filter_map(|holder| OrgId::parse(&holder).ok())
        .filter(|holder| framework.party(holder).is_none())
        .map(|holder| LifecycleDocument {
            recipient: holder,
            kind: LifecycleKind::Revocation,
            agreement: framework.id.to_string(),
            document: revocation.to_json(),
        })
        .collect())
}

/// Ends sharing at once under every local agreement that sits under `framework`, which was
/// revoked (the sweep would, at its next turn).
pub(super) async fn end_local_agreements(
    federation: &Federation,
    framework: &AgreementId,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    for record in federation.store.agreements().await? {
        if record.revocation.is_some() || record.held_as_framework {
            continue;
        }
        let Ok(local) = load(&federation.store, federation, &record).await else { continue };
        if local.agreement.framework.as_ref() == Some(framework) && !federation.store.expiry_handled(&record.id).await?
        {
            end_sharing(federation, &record.id, "agreement.sharing_ended", "its framework was revoked", now).await?;
        }
    }
    Ok(())
}

fn invalid(message: String) -> LifecycleError {
    LifecycleError::Invalid(ValidationErrors::single("agreement", message))
}
