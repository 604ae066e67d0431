//! At start-up the node sends its card to every partner, so a rotated key reaches them without
//! anyone exchanging files. A partner that still knows only the old TLS key is reached with the old
//! certificate, kept for the overlap. Failures are retried with growing pauses until every partner
//! has the card.

use std::sync::Arc;
use std::time::Duration;

use super::Federation;
use super::client::PartnerClient;
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
        let attempt = match PartnerClient::new(identity, &federation.trust, partner, now) {
            Ok(client) => client.push_card(&federation.keys.signed_card).await,
            Err(error) => Err(error),
        };
        match attempt {
            Ok(()) => {
                let _ = federation.store.record_partner_contact(&partner.org_id, now, None).await;
                tracing::info!(partner = %partner.org_id, "node card announced");
                return true;
            }
            Err(error) => last_error = error.to_string(),
        }
    }
    tracing::warn!(partner = %partner.org_id, error = %last_error, "could not announce the node card; will retry");
    let _ = federation.store.record_partner_contact(&partner.org_id, now, Some(&last_error)).await;
    false
}
