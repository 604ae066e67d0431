//! The delivery worker: claims due envelopes from the outbox, sends them to each partner in one
//! batch over mutual TLS, and settles each by the partner's answer. Each partner's batch goes on its
//! own, so a partner that answers slowly or not at all holds up no delivery to the others: while
//! one is on its way to a partner, the next claims leave that partner out. A partner that cannot be
//! reached gets the batch again after an exponential back-off with jitter, forever; only a
//! partner's refusal of an envelope stops it, with the reason in the ledger. The worker wakes when
//! a report is stored or a partner's delivery ends (no polling delay) and checks for due retries
//! twice a second.
//!
//! Each partner's queue has two lanes ([`Lane`]): urgent envelopes are claimed first and go in a
//! delivery of their own, beside whatever ordinary batch is on its way to the same partner, so an
//! alert never waits behind a full queue; and they are retried every few seconds, never backing
//! off to minutes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::Federation;
use super::inbox::Outcome;
use super::sharing::freshened;
use crate::crypto::jws::Jws;
use crate::domain::OrgId;
use crate::domain::audit::AuditEvent;
use crate::store::{DeliveryRound, Lane, OutboxEntry, StoreError};

/// The most one delivery's body holds (the receiver accepts 16 MiB).
const MAX_DELIVERY_BYTES: usize = 8 * 1024 * 1024;
/// How long one partner may take to answer a delivery before it is tried again after a back-off.
const PARTNER_TIMEOUT: StdDuration = StdDuration::from_secs(15);
/// How many envelopes one claim takes, in each lane.
const BATCH: i64 = 500;
const URGENT_BATCH: i64 = 50;
/// How often due retries are looked for when nothing wakes the worker.
const IDLE_POLL: StdDuration = StdDuration::from_millis(500);
/// The longest back-off between attempts, in each lane.
const MAX_BACKOFF_SECONDS: f64 = 300.0;
const MAX_URGENT_BACKOFF_SECONDS: f64 = 4.0;

/// A wake-up call for the delivery worker.
#[derive(Default)]
pub struct Wake(Notify);

impl Wake {
    /// Tells the worker there is something to send.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// The partners, and each one's lane, a delivery is on its way to now.
type InFlight = Arc<Mutex<HashSet<(String, Lane)>>>;

/// Runs the worker until the node stops.
pub fn spawn(federation: Arc<Federation>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let in_flight = InFlight::default();
        // The deliveries on their way; dropped with the worker, so a node that stops sends nothing more.
        let mut deliveries = JoinSet::new();
        loop {
            while deliveries.try_join_next().is_some() {}
            match dispatch_due(&federation, &in_flight, &mut deliveries).await {
                Ok(0) => {
                    let _ = tokio::time::timeout(IDLE_POLL, federation.outbox.0.notified()).await;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "delivery failed to read or settle the outbox");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    })
}

/// Claims what is due now in each lane of each partner no delivery of that lane is on its way to,
/// the urgent lane first, and starts one delivery per partner and lane; answers how many envelopes
/// were claimed.
async fn dispatch_due(
    federation: &Arc<Federation>,
    in_flight: &InFlight,
    deliveries: &mut JoinSet<()>,
) -> Result<usize, StoreError> {
    let mut count = 0;
    for lane in [Lane::Urgent, Lane::Ordinary] {
        count += dispatch_lane(federation, lane, in_flight, deliveries).await?;
    }
    Ok(count)
}

/// Claims what is due in `lane` for each partner with no delivery of that lane on its way, and
/// starts one delivery per partner.
async fn dispatch_lane(
    federation: &Arc<Federation>,
    lane: Lane,
    in_flight: &InFlight,
    deliveries: &mut JoinSet<()>,
) -> Result<usize, StoreError> {
    let now = federation.clock.now();
    let idle: Vec<String> = federation.store.recipients_due(now, lane).await?;
    let idle: Vec<String> = idle.into_iter().filter(|r| !lock(in_flight).contains(&(r.clone(), lane))).collect();
    if idle.is_empty() {
        return Ok(0);
    }
    let batch = if lane == Lane::Urgent { URGENT_BATCH } else { BATCH };
    // An agreement may have ended since the envelope was queued: nothing goes out under it.
    let active = federation.agreements.at(federation, now).await.map_err(|e| StoreError::NotReady(e.to_string()))?;
    let mut count = 0;
    for recipient in idle {
        let claimed =
            federation.store.claim_due_envelopes(&recipient, lane, now, federation.settings.claim_lease, batch).await?;
        count += claimed.len();
        let (entries, ended): (Vec<OutboxEntry>, Vec<OutboxEntry>) =
            claimed.into_iter().partition(|e| active.iter().any(|c| c.agreement.id.as_str() == e.agreement));
        if !ended.is_empty() {
            let ids: Vec<i64> = ended.iter().map(|e| e.id).collect();
            federation.store.cancel_envelopes(&ids, "its agreement is no longer active", now).await?;
        }
        if entries.is_empty() {
            continue;
        }
        lock(in_flight).insert((recipient.clone(), lane));
        let (federation, in_flight) = (federation.clone(), in_flight.clone());
        deliveries.spawn(async move {
            if let Err(error) = deliver(&federation, &recipient, lane, &entries).await {
                tracing::warn!(partner = %recipient, %error, "a delivery was not settled; sent again when its claim runs out");
            }
            // Out of the set before the wake-up, so the worker's next look includes this partner.
            lock(&in_flight).remove(&(recipient, lane));
            federation.outbox.wake();
        });
    }
    Ok(count)
}

/// The in-flight set (a panic elsewhere while it was held leaves it as it was, which is still right).
fn lock(in_flight: &InFlight) -> std::sync::MutexGuard<'_, HashSet<(String, Lane)>> {
    in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Delivers `entries`, all claimed for `recipient` in `lane`, and settles them by the answer in one
/// transaction.
async fn deliver(
    federation: &Federation,
    recipient: &str,
    lane: Lane,
    entries: &[OutboxEntry],
) -> Result<(), StoreError> {
    let backoff = |attempts| match lane {
        Lane::Urgent => backoff_up_to(attempts, MAX_URGENT_BACKOFF_SECONDS),
        Lane::Ordinary => backoff(attempts),
    };
    let sent = match OrgId::parse(recipient) {
        Ok(org) => match tokio::time::timeout(PARTNER_TIMEOUT, send(federation, &org, lane, entries)).await {
            Ok(sent) => sent.map(|results| (org, results)),
            Err(_) => Err(format!("no answer within {} s", PARTNER_TIMEOUT.as_secs())),
        },
        Err(_) => Err(format!("'{recipient}' is not an organisation id")),
    };
    let mut round = DeliveryRound::default();
    let now = federation.clock.now();
    match sent {
        Ok((org, results)) => {
            for (entry, result) in entries.iter().zip(results) {
                match result.outcome {
                    Outcome::Deferred => {
                        let why = result.reason.unwrap_or_else(|| "deferred by the partner".into());
                        round.retries.push((entry.id, now + backoff(entry.attempts), why));
                    }
                    outcome => round.settled.push(settle(entry, outcome, result.reason)),
                }
            }
            round.contacts.push((org, None));
        }
        Err(error) => {
            tracing::warn!(partner = %recipient, %error, envelopes = entries.len(), "delivery failed; will retry");
            round.retries.extend(entries.iter().map(|e| (e.id, now + backoff(e.attempts), error.clone())));
            if let Ok(org) = OrgId::parse(recipient) {
                round.contacts.push((org, Some(error)));
            }
        }
    }
    federation.store.settle_round(&round, now).await
}

/// Posts the batch; the error is why nothing in it could be settled.
async fn send(
    federation: &Federation,
    org: &OrgId,
    lane: Lane,
    entries: &[OutboxEntry],
) -> Result<Vec<super::inbox::EnvelopeResult>, String> {
    let now = federation.clock.now();
    let partner = federation
        .store
        .partner(org)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no card on record for this partner".to_owned())?;
    if partner.blocked {
        return Err("the partner is blocked here".into());
    }
    let client = federation
        .clients
        .get(&federation.keys.tls, &federation.trust, &partner, &federation.clock)
        .map_err(|e| e.to_string())?;
    let half_window = federation.settings.window / 2;
    let envelopes: Vec<Jws> = entries.iter().map(|e| freshened(federation, &e.envelope, now, half_window)).collect();
    // One delivery stays well inside the receiver's body limit, however large the envelopes.
    let mut results = Vec::with_capacity(envelopes.len());
    let mut start = 0;
    while start < envelopes.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < envelopes.len() && (end == start || bytes + size_of(&envelopes[end]) <= MAX_DELIVERY_BYTES) {
            bytes += size_of(&envelopes[end]);
            end += 1;
        }
        results.extend(client.post_envelopes_in(&envelopes[start..end], lane).await.map_err(|e| e.to_string())?);
        start = end;
    }
    Ok(results)
}

/// Roughly what an envelope adds to a delivery's body.
fn size_of(envelope: &Jws) -> usize {
    envelope.payload.len()
        + envelope.signatures.iter().map(|s| s.protected.len() + s.signature.len() + 64).sum::<usize>()
}

/// The settlement of one envelope by the partner's answer, with its audit entry.
fn settle(entry: &OutboxEntry, outcome: Outcome, reason: Option<String>) -> (i64, Result<String, String>, AuditEvent) {
    let event = |name: &str| {
        AuditEvent::new(name, "delivery")
            .partner(&entry.recipient)
            .report(entry.report)
            .agreement(&entry.agreement)
            .object(entry.content_hash.as_bytes())
    };
    match outcome {
        Outcome::Refused => {
            let reason = reason.unwrap_or_else(|| "refused without a reason".into());
            let audit = event("envelope.refused").detail(format!("version {}: {reason}", entry.version));
            (entry.id, Err(reason), audit)
        }
        acknowledged => {
            let answer = serde_json::to_value(acknowledged).ok().and_then(|v| v.as_str().map(str::to_owned));
            let answer = answer.unwrap_or_default();
            let audit = event("envelope.acknowledged").detail(format!("version {}: {answer}", entry.version));
            (entry.id, Ok(answer), audit)
        }
    }
}

/// How long to wait after `attempts` failed attempts: doubling from one second up to five
/// minutes, each wait drawn between half and all of it so partners coming back are not stormed.
pub(super) fn backoff(attempts: i64) -> Duration {
    backoff_up_to(attempts, MAX_BACKOFF_SECONDS)
}

/// [`backoff`] up to `most` seconds.
fn backoff_up_to(attempts: i64, most: f64) -> Duration {
    let full = 2f64.powi(attempts.clamp(0, 16) as i32).min(most);
    let mut byte = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    let share = 0.5 + f64::from(byte[0]) / 510.0;
    Duration::milliseconds((full * share * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes_with_jitter() {
        for attempts in 0..20 {
            let wait = backoff(attempts).num_milliseconds() as f64 / 1000.0;
            let full = 2f64.powi(attempts.min(16) as i32).min(MAX_BACKOFF_SECONDS);
            assert!(wait >= full * 0.5 && wait <= full, "{attempts}: {wait}");
        }
    }

    #[test]
    fn an_urgent_envelope_is_tried_again_within_four_seconds_however_often_it_failed() {
        for attempts in [0, 3, 10, 1_000] {
            assert!(backoff_up_to(attempts, MAX_URGENT_BACKOFF_SECONDS) <= Duration::seconds(4));
        }
    }
}
