//! Amendments: an agreement that names the one it replaces (a shop joins the mall's safety
//! agreement, a rule changes). Proposed and signed by the parties of the new version like any
//! agreement; when it takes effect, the old one stops at the same moment (it is `replaced`: no gap,
//! no overlap), and each node hands the old one over to it once: what was still queued under the
//! old one is sent under the amendment, in the form its rules give, and what was received under
//! the old one is kept under the amendment (not deleted, not sent twice). Whether parties new to
//! the amendment receive the reports already shared under the old one is the amendment's choice
//! (`backfill`, no by default); if so, they get those within the amendment's retention, under its
//! rules.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use super::Federation;
use super::agreements::{Checked, LifecycleError};
use super::reshare::reshare;
use super::sharing::{Delivery, deliveries, seal};
use crate::domain::audit::AuditEvent;
use crate::domain::{OrgId, ReportId};
use crate::store::Store;

/// Outbox rows read at a time for a back-fill.
const PAGE: i64 = 500;

/// Refuses an amendment of an agreement this node holds that can no longer be amended: revoked, or
/// a framework held for local agreements. An amendment of an agreement unknown here (a party that
/// joins by it) is judged on its own terms.
pub async fn check_replaceable(store: &Store, amendment: &Checked) -> Result<(), LifecycleError> {
    let Some(old) = &amendment.agreement.replaces else { return Ok(()) };
    let Some(record) = store.agreement(old.as_str()).await? else { return Ok(()) };
    let refuse =
        |why: &str| Err(LifecycleError::Forbidden(format!("{} cannot amend {old}: {why}", amendment.agreement.id)));
    if record.held_as_framework {
        return refuse("it is a framework this node is no party to");
    }
    if let Some(revocation) = &record.revocation {
        return refuse(&format!("it was revoked by {}", revocation.by));
    }
    Ok(())
}

/// Hands over, once, every agreement an amendment in force now replaces.
pub async fn take_effect(federation: &Federation, now: DateTime<Utc>) -> Result<(), LifecycleError> {
    for stored in federation.agreements.all(federation, now).await? {
        let Some(amendment_id) = &stored.replaced_by else { continue };
        if stored.record.handed_over_at.is_some() || stored.record.held_as_framework {
            continue;
        }
        let Some(record) = federation.store.agreement(amendment_id.as_str()).await? else { continue };
        let amendment = super::agreements::load(&federation.store, federation, &record).await?;
        hand_over(federation, &stored.checked, &amendment, now).await?;
    }
    Ok(())
}

/// Hands `old` over to `amendment`, then sends what was owed under it and any back-fill.
async fn hand_over(
    federation: &Federation,
    old: &Checked,
    amendment: &Checked,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let own = &federation.keys.card.org_id;
    let (old_id, new_id) = (old.agreement.id.as_str(), amendment.agreement.id.as_str());
    let senders: Vec<String> = amendment
        .agreement
        .flows
        .iter()
        .filter(|flow| flow.to.contains(own))
        .flat_map(|flow| flow.from.iter().map(OrgId::to_string))
        .collect();
    let audit = AuditEvent::new("agreement.replaced", "node").agreement(old_id);
    let (cancelled, kept) = federation.store.hand_over(old_id, new_id, &senders, &audit, now).await?;
    let resent = reshare(federation, old_id, now, true).await?;
    let backfilled = if amendment.agreement.backfill { backfill(federation, old, amendment, now).await? } else { 0 };
    tracing::info!(
        old = old_id,
        new = new_id,
        cancelled,
        kept,
        resent,
        backfilled,
        "an agreement was handed over to its amendment"
    );
    Ok(())
}

/// Sends the parties new to `amendment` this node's reports shared under `old` within the
/// amendment's retention, in the form the amendment gives each; answers how many envelopes.
async fn backfill(
    federation: &Federation,
    old: &Checked,
    amendment: &Checked,
    now: DateTime<Utc>,
) -> Result<usize, LifecycleError> {
    let newcomers: HashSet<&OrgId> = amendment
        .agreement
        .parties
        .iter()
        .map(|p| &p.org_id)
        .filter(|org| old.agreement.party(org).is_none())
        .collect();
    if newcomers.is_empty() {
        return Ok(0);
    }
    let since = now - Duration::days(i64::from(amendment.agreement.retention_days));
    let own = &federation.keys.card.org_id;
    let (mut after, mut seen, mut queued) = (0, HashSet::<ReportId>::new(), 0);
    loop {
        let rows = federation.store.reports_shared_under(old.agreement.id.as_str(), since, after, PAGE).await?;
        let Some((last, _)) = rows.last() else { break };
        after = *last;
        let mut envelopes = Vec::new();
        for (_, report) in &rows {
            if !seen.insert(*report) {
                continue;
            }
            let Some(latest) = federation.store.latest_report(own, *report).await? else { continue };
            if latest.retracted.is_some() {
                continue;
            }
            for delivery in deliveries(federation, &latest, now).await? {
                if let Delivery::Share { recipient, view, .. } = delivery
                    && newcomers.contains(&recipient)
                    && view.agreement == amendment.agreement.id
                {
                    envelopes.push(seal(federation, &view, &recipient, now));
                }
            }
        }
        queued += envelopes.len();
        federation.store.queue_backfill(amendment.agreement.id.as_str(), &envelopes, now).await?;
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    if queued > 0 {
        federation.outbox.wake();
    }
    Ok(queued)
}
