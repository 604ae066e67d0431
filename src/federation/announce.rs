//! At start-up the node sends its card to every partner, so a rotated key reaches them without
//! anyone exchanging files, and then every agreement they are party to (with its revocation, if
//! any), so a party that was offline when one was proposed, signed or revoked hears of it. A partner
//! that still knows only the old TLS key is reached with the old certificate, kept for the overlap.
//! Failures are retried with growing pauses until every partner has everything.

use std::sync::Arc;
use std::time::Duration;

use super::Federation;
use super::client::PartnerClient;
use crate::crypto::jws::Jws;
use crate::crypto::tls::TlsIdentity;
use crate::domain::OrgId;
use crate::domain::agreement::Agreement;
use crate::store::PartnerRecord;

/// Starts announcing in the background.
pub fn spawn(federation: Arc<Federation>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(500);
        loop {
            match federation.store.partners().await {
                Ok(partners) => {
                    let mut pending = 0;
                    for partner in partners.iter().filter(|p| !p.blocked) {
                        if !announce_to(&federation, partner).await {
                            pending += 1;
                        }
                    }
                    if pending == 0 {
                        return;
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot list partners to announce the node card"),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(300));
        }
    })
}

/// Sends the card to one partner; true when it was accepted.
async fn announce_to(federation: &Federation, partner: &PartnerRecord) -> bool {
    let now = federation.clock.now();
    let identities = std::iter::once(&federation.keys.tls).chain(federation.keys.previous_tls.as_ref());
    let mut last_error = String::new();
    for identity in identities {
        let attempt = match PartnerClient::new(identity, &federation.trust, partner, &federation.clock) {
            Ok(client) => client.push_card(&federation.keys.signed_card).await,
            Err(error) => Err(error),
        };
        let attempt = match attempt {
            Ok(()) => send_agreements(federation, identity, partner).await,
            Err(error) => Err(error.to_string()),
        };
        match attempt {
            Ok(()) => {
                let _ = federation.store.record_partner_contact(&partner.org_id, now, None).await;
                tracing::info!(partner = %partner.org_id, "node card and agreements announced");
                return true;
            }
            Err(error) => last_error = error,
        }
    }
    tracing::warn!(partner = %partner.org_id, error = %last_error, "could not announce the node card; will retry");
    let _ = federation.store.record_partner_contact(&partner.org_id, now, Some(&last_error)).await;
    false
}

/// Sends `partner` every stored agreement it is a party to, and any revocation of one.
async fn send_agreements(
    federation: &Federation,
    identity: &TlsIdentity,
    partner: &PartnerRecord,
) -> Result<(), String> {
    let client =
        PartnerClient::new(identity, &federation.trust, partner, &federation.clock).map_err(|e| e.to_string())?;
    for record in federation.store.agreements().await.map_err(|e| e.to_string())? {
        let Ok(document) = Jws::parse(record.document.as_bytes()) else { continue };
        let parties: Vec<OrgId> = document
            .unverified_payload()
            .ok()
            .and_then(|payload| serde_json::from_slice::<Agreement>(&payload).ok())
            .map(|a| a.parties.into_iter().map(|p| p.org_id).collect())
            .unwrap_or_default();
        if !parties.contains(&partner.org_id) {
            continue;
        }
        client.post("/federation/v1/agreements", &document).await.map_err(|e| e.to_string())?;
        if let Some(revocation) = &record.revocation
            && let Ok(statement) = Jws::parse(revocation.statement.as_bytes())
        {
            client.post("/federation/v1/revocations", &statement).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
