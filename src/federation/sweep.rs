//! The sweep: ends sharing under agreements that ended (revoked, past their end date, or under a
//! framework that was revoked or is past its end) by cancelling their queued envelopes, deleting
//! what was received under them and sending again under other agreements what went under them
//! (`reshare`), and deletes received reports, and requests, whose agreement's retention period is
//! over.
//! Revocations end sharing at once when they happen; the sweep also catches one whose follow-up
//! was interrupted, and expiry, which nobody announces. Refused envelopes are kept 30 days.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::Federation;
use super::sharing::Stored;
use crate::domain::audit::AuditEvent;
use crate::store::StoreError;

/// How long refused envelopes are kept for the operator (their audit entries stay longer).
const DEAD_LETTER_DAYS: Duration = Duration::days(30);

/// Runs the sweep at start and then every `sweep_every` until the node stops.
pub fn spawn(federation: Arc<Federation>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = sweep(&federation).await {
                tracing::warn!(%error, "the sweep of ended agreements and retention failed; will try again");
            }
            tokio::time::sleep(federation.settings.sweep_every).await;
        }
    })
}

/// One sweep at the node's time.
pub async fn sweep(federation: &Federation) -> Result<(), StoreError> {
    let now = federation.clock.now();
    federation.store.prune_dead_letters(now - DEAD_LETTER_DAYS).await?;
    // The agreements as the sharing side knows them: checked once per document, not every sweep.
    let failed = |e: super::agreements::LifecycleError| StoreError::NotReady(e.to_string());
    super::amendments::take_effect(federation, now).await.map_err(failed)?;
    let stored = federation.agreements.all(federation, now).await.map_err(failed)?;
    for Stored { checked, record, framework_ended, .. } in stored {
        if record.held_as_framework || record.handed_over_at.is_some() {
            // Nothing was sent or received under a framework held for local agreements, and what
            // was under an agreement handed over to its amendment is under the amendment now.
            continue;
        }
        let agreement = &checked.agreement;
        let ended = if record.revocation.is_some() {
            Some(("agreement.sharing_ended", "the agreement was revoked"))
        } else if now >= agreement.valid_until {
            Some(("agreement.expired", "the agreement ended"))
        } else if framework_ended {
            // Ending is for good: a framework merely not in force yet ends nothing (nothing flows
            // under the local agreement meanwhile, and it takes effect with its framework).
            Some(("agreement.sharing_ended", "its framework ended"))
        } else {
            None
        };
        if let Some((event, why)) = ended {
            if !federation.store.expiry_handled(&record.id).await? {
                end_sharing(federation, &record.id, event, why, now).await?;
            } else if !federation.store.reshared(&record.id).await? {
                reshare(federation, &record.id, now).await;
            }
        }
        let cutoff = now - Duration::days(i64::from(agreement.retention_days));
        let audit = AuditEvent::new("retention.deleted", "retention").agreement(&record.id);
        let deleted = federation.store.delete_received_before(&record.id, cutoff, &audit, now).await?;
        if deleted > 0 {
            tracing::info!(agreement = %record.id, deleted, "deleted received reports past their retention");
        }
        let audit = AuditEvent::new("retention.requests_deleted", "retention").agreement(&record.id);
        let deleted = federation.store.delete_requests_before(&record.id, cutoff, &audit, now).await?;
        if deleted > 0 {
            tracing::info!(agreement = %record.id, deleted, "deleted requests past their retention");
        }
    }
    Ok(())
}

/// Cancels what is queued under an agreement and deletes what was received under it; then sends
/// again, under other agreements, what went under it where they let it go. Once: where sharing
/// under it has ended already, by another path at the same moment, that path does the rest.
pub async fn end_sharing(
    federation: &Federation,
    agreement: &str,
    event: &str,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let audit = AuditEvent::new(event, "node").agreement(agreement);
    let Some((cancelled, dropped)) = federation.store.end_sharing_under(agreement, why, &audit, now).await? else {
        return Ok(());
    };
    tracing::info!(agreement, cancelled, dropped, why, "sharing ended under an agreement");
    reshare(federation, agreement, now).await;
    Ok(())
}

/// Sends again what went under the ended `agreement`; a failure is left for the next sweep.
async fn reshare(federation: &Federation, agreement: &str, now: DateTime<Utc>) {
    if let Err(error) = super::reshare::reshare(federation, agreement, now, false).await {
        tracing::warn!(agreement, %error, "sending again what went under an ended agreement failed; the sweep tries again");
    }
}
