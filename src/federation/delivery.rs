//! The delivery worker: claims due envelopes from the outbox, sends them to each partner in one
//! batch over mutual TLS, and settles each by the partner's answer. A partner that cannot be
//! reached gets the batch again after an exponential back-off with jitter, forever; only a
//! partner's refusal of an envelope stops it, with the reason in the ledger. The worker wakes when
//! a report is stored (no polling delay) and checks for due retries twice a second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::sync::Notify;

use super::Federation;
use super::inbox::Outcome;
use super::sharing::freshened;
use crate::crypto::jws::Jws;
use crate::domain::OrgId;
use crate::domain::audit::AuditEvent;
use crate::store::{DeliveryRound, OutboxEntry, StoreError};

/// The most one delivery's body holds (the receiver accepts 16 MiB).
const MAX_DELIVERY_BYTES: usize = 8 * 1024 * 1024;
/// How long one partner may take to answer a round; a partner that does not answer backs off, so
/// it holds up the others' deliveries at most this long, once per back-off.
const PARTNER_TIMEOUT: StdDuration = StdDuration::from_secs(15);
/// How many envelopes one claim takes.
const BATCH: i64 = 500;
/// How often due retries are looked for when nothing wakes the worker.
const IDLE_POLL: StdDuration = StdDuration::from_millis(500);
/// The longest back-off between attempts.
const MAX_BACKOFF_SECONDS: f64 = 300.0;

/// A wake-up call for the delivery worker.
#[derive(Default)]
pub struct Wake(Notify);

impl Wake {
    /// Tells the worker there is something to send.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Runs the worker until the node stops.
pub fn spawn(federation: Arc<Federation>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match deliver_due(&federation).await {
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

/// Claims what is due now and delivers it, every partner side by side, then settles the whole
/// round in one transaction; answers how many envelopes were claimed.
pub async fn deliver_due(federation: &Federation) -> Result<usize, StoreError> {
    let now = federation.clock.now();
    let claimed = federation.store.claim_due_envelopes(now, federation.settings.claim_lease, BATCH).await?;
    let count = claimed.len();
    if count == 0 {
        return Ok(0);
    }
    // An agreement may have ended since the envelope was queued: nothing goes out under it.
    let active = federation.agreements.at(federation, now).await.map_err(|e| StoreError::NotReady(e.to_string()))?;
    let (claimed, ended): (Vec<OutboxEntry>, Vec<OutboxEntry>) =
        claimed.into_iter().partition(|e| active.iter().any(|c| c.agreement.id.as_str() == e.agreement));
    if !ended.is_empty() {
        let ids: Vec<i64> = ended.iter().map(|e| e.id).collect();
        federation.store.cancel_envelopes(&ids, "its agreement is no longer active", now).await?;
    }
    let mut by_recipient: BTreeMap<String, Vec<OutboxEntry>> = BTreeMap::new();
    for entry in claimed {
        by_recipient.entry(entry.recipient.clone()).or_default().push(entry);
    }
    let deliveries = by_recipient.into_iter().map(|(recipient, entries)| async move {
        let sent = match OrgId::parse(&recipient) {
            Ok(org) => match tokio::time::timeout(PARTNER_TIMEOUT, send(federation, &org, &entries)).await {
                Ok(sent) => sent.map(|results| (org, results)),
                Err(_) => Err(format!("no answer within {} s", PARTNER_TIMEOUT.as_secs())),
            },
            Err(_) => Err(format!("'{recipient}' is not an organisation id")),
        };
        (recipient, entries, sent)
    });
    let mut round = DeliveryRound::default();
    let now = federation.clock.now();
    for (recipient, entries, sent) in futures_util::future::join_all(deliveries).await {
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
                if let Ok(org) = OrgId::parse(&recipient) {
                    round.contacts.push((org, Some(error)));
                }
            }
        }
    }
    federation.store.settle_round(&round, now).await?;
    Ok(count)
}

/// Posts the batch; the error is why nothing in it could be settled.
async fn send(
    federation: &Federation,
    org: &OrgId,
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
        results.extend(client.post_envelopes(&envelopes[start..end]).await.map_err(|e| e.to_string())?);
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
    let full = 2f64.powi(attempts.clamp(0, 16) as i32).min(MAX_BACKOFF_SECONDS);
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
}
