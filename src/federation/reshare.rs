//! Nothing dropped when one of two agreements ends: a report that reached a partner under an
//! agreement that was revoked or expired is sent again, under another active agreement that lets it
//! reach the same partner, in the form that agreement allows, instead of disappearing there until
//! its next version. The partner deletes what it received under the ended agreement; the copy sent
//! again is signed later, so it replaces the old one even where it arrives before the partner has
//! ended the agreement itself. An ended agreement is dealt with once: the sweep finishes what a
//! stopped node left halfway.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};

use super::Federation;
use super::agreements::LifecycleError;
use super::sharing::{Delivery, deliveries, payload_of, seal};
use crate::domain::{OrgId, ReportId};

/// Shares read at a time.
const PAGE: i64 = 200;

/// Sends again, under other active agreements, what went under the ended `agreement`; answers how
/// many envelopes it queued. With `undelivered_only`, only what the partners were still owed (an
/// agreement handed over to its amendment: what they received they keep).
pub async fn reshare(
    federation: &Federation,
    agreement: &str,
    now: DateTime<Utc>,
    undelivered_only: bool,
) -> Result<usize, LifecycleError> {
    let store = &federation.store;
    let own = &federation.keys.card.org_id;
    let (mut after, mut queued) = (0, 0);
    loop {
        let shares = store.ended_shares(agreement, after, PAGE, undelivered_only).await?;
        let Some(last) = shares.last() else { break };
        after = last.id;
        // What each report's latest version may reach now, asked once per report.
        let mut now_reaching: HashMap<ReportId, Vec<Delivery>> = HashMap::new();
        let mut envelopes = Vec::new();
        for share in &shares {
            // A withdrawal or a retraction was the last word: there is nothing to send again.
            if payload_of(&share.envelope).is_none_or(|view| view.retracted) {
                continue;
            }
            let Ok(recipient) = OrgId::parse(&share.recipient) else { continue };
            if let Entry::Vacant(unasked) = now_reaching.entry(share.report) {
                let reaching = match store.latest_report(own, share.report).await? {
                    Some(report) => deliveries(federation, &report, now).await?,
                    None => Vec::new(),
                };
                unasked.insert(reaching);
            }
            let again = now_reaching[&share.report].iter().find_map(|delivery| match delivery {
                Delivery::Share { recipient: to, view, .. } if *to == recipient => Some(view),
                _ => None,
            });
            if let Some(view) = again.filter(|view| view.agreement.as_str() != agreement) {
                envelopes.push(seal(federation, view, &recipient, now));
            }
        }
        queued += envelopes.len();
        store.queue_reshares(agreement, &envelopes, now).await?;
        if (shares.len() as i64) < PAGE {
            break;
        }
    }
    store.mark_reshared(agreement, now).await?;
    if queued > 0 {
        tracing::info!(agreement, envelopes = queued, "sent again under other agreements what went under an ended one");
        federation.outbox.wake();
    }
    Ok(queued)
}
