//! Sending the agreement lifecycle's documents: proposals, signatures and revocations are queued
//! in the transaction that stored them (`store::queue_lifecycle`), and this worker sends each to
//! its party over mutual TLS, settling it by the answer: delivered, refused for good (a 4xx the
//! party will give again), or tried again after the delivery worker's back-off (unreachable, busy,
//! an error on its side). Nothing waits for a restart; several replicas share the work by lease.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio::sync::Notify;

use super::Federation;
use super::client::ClientError;
use super::delivery::backoff;
use crate::crypto::jws::Jws;
use crate::domain::OrgId;
use crate::store::{LifecycleEntry, LifecycleKind, LifecycleOutcome, StoreError};

/// How many documents one claim takes.
const BATCH: i64 = 20;
/// How long one party may take to answer.
const PARTY_TIMEOUT: StdDuration = StdDuration::from_secs(15);
/// How often due retries (and other replicas' documents) are looked for when nothing wakes it.
const IDLE_POLL: StdDuration = StdDuration::from_millis(500);

/// A wake-up call for the lifecycle worker.
#[derive(Default)]
pub struct Wake(Notify);

impl Wake {
    /// Tells the worker there is a document to send.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Runs the worker until the node stops.
pub fn spawn(federation: Arc<Federation>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match send_due(&federation).await {
                Ok(0) => {
                    let _ = tokio::time::timeout(IDLE_POLL, federation.lifecycle.0.notified()).await;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the lifecycle outbox could not be read or settled");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    })
}

/// Claims what is due and sends it: each party's documents in the order they were made (a local
/// agreement after its framework, a revocation after what it revokes), the parties side by side.
/// Once one document to a party must wait, so do the ones after it. Answers how many were claimed.
pub async fn send_due(federation: &Federation) -> Result<usize, StoreError> {
    let now = federation.clock.now();
    let claimed = federation.store.claim_due_lifecycle(now, federation.settings.claim_lease, BATCH).await?;
    let mut by_party: BTreeMap<&str, Vec<&LifecycleEntry>> = BTreeMap::new();
    for entry in &claimed {
        by_party.entry(entry.recipient.as_str()).or_default().push(entry);
    }
    let sends = by_party.into_values().map(|entries| async move {
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut held: Option<String> = None;
        for entry in entries {
            let outcome = match &held {
                Some(error) => Err(Failure::Later(format!("waits for an earlier document: {error}"))),
                None => send(federation, entry).await,
            };
            if let Err(Failure::Later(error)) = &outcome {
                held.get_or_insert_with(|| error.clone());
            }
            outcomes.push((entry, outcome));
        }
        outcomes
    });
    let outcomes: Vec<(&LifecycleEntry, Result<(), Failure>)> =
        futures_util::future::join_all(sends).await.into_iter().flatten().collect();
    let now = federation.clock.now();
    for (entry, outcome) in &outcomes {
        let outcome = match outcome {
            Ok(()) => LifecycleOutcome::Delivered,
            Err(Failure::Refused(reason)) => {
                tracing::warn!(party = %entry.recipient, agreement = %entry.agreement, %reason, "a party refused a lifecycle document");
                LifecycleOutcome::Refused(reason.clone())
            }
            Err(Failure::Later(error)) => LifecycleOutcome::Retry(now + backoff(entry.attempts), error.clone()),
        };
        let Ok(recipient) = OrgId::parse(&entry.recipient) else { continue };
        federation.store.settle_lifecycle(entry.id, &recipient, &outcome, now).await?;
    }
    Ok(outcomes.len())
}

/// Why a document was not delivered.
enum Failure {
    /// For good: the party answered that it will not take it.
    Refused(String),
    /// For now: try again.
    Later(String),
}

/// Sends one document to its party, with the node's current TLS identity and, during an overlap
/// after a rotation, its previous one (a party that knows only the old pin).
async fn send(federation: &Federation, entry: &LifecycleEntry) -> Result<(), Failure> {
    let org = OrgId::parse(&entry.recipient).map_err(|e| Failure::Refused(format!("not an organisation id: {e}")))?;
    let partner = match federation.store.partner(&org).await {
        Ok(Some(partner)) if !partner.blocked => partner,
        Ok(Some(_)) => return Err(Failure::Later("the party is blocked here".into())),
        Ok(None) => return Err(Failure::Later("no card of the party on record".into())),
        Err(error) => return Err(Failure::Later(error.to_string())),
    };
    let document = Jws::parse(entry.document.as_bytes()).map_err(|e| Failure::Refused(format!("unreadable: {e}")))?;
    let path = LifecycleKind::path(&entry.kind);
    let identities = std::iter::once(&federation.keys.tls).chain(federation.keys.previous_tls.as_ref());
    let mut last = Failure::Later("no identity to send with".into());
    for identity in identities {
        let client = match federation.clients.get(identity, &federation.trust, &partner, &federation.clock) {
            Ok(client) => client,
            Err(error) => return Err(Failure::Later(error.to_string())),
        };
        last = match tokio::time::timeout(PARTY_TIMEOUT, client.post(path, &document)).await {
            Ok(Ok(())) => return Ok(()),
            // A 4xx other than "too many" or "too early" is the party's considered answer.
            Ok(Err(ClientError::Refused { status, detail, .. }))
                if (400..500).contains(&status) && ![408, 425, 429].contains(&status) =>
            {
                return Err(Failure::Refused(format!("{status}: {detail}")));
            }
            Ok(Err(error)) => Failure::Later(error.to_string()),
            Err(_) => Failure::Later(format!("no answer within {} s", PARTY_TIMEOUT.as_secs())),
        };
    }
    Err(last)
}
