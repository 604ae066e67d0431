//! Sending again what went under an agreement that ended, in storage: the last share of each of this
//! node's reports to each partner under that agreement (what the partner held, or was about to
//! receive, when the agreement ended), new envelopes for them under other agreements with an audit
//! entry, and the mark that an ended agreement has been dealt with, so the work is done once even if
//! the node stops halfway (the sweep finishes it).

use chrono::{DateTime, Utc};

use super::audit::append_audit;
use super::outbox::{QueuedEnvelope, queue_envelopes};
use super::{StoreError, in_write_tx, on_pool};
use crate::domain::ReportId;
use crate::domain::audit::AuditEvent;

/// A share that was the last word to one partner about one report when its agreement ended.
#[derive(Debug, Clone)]
pub struct EndedShare {
    /// The outbox row: where the next page starts.
    pub id: i64,
    pub report: ReportId,
    pub recipient: String,
    /// The envelope as it was queued (JWS JSON).
    pub envelope: String,
}

impl super::Store {
    /// Up to `limit` shares under `agreement` after outbox row `after`, oldest first, each the
    /// latest envelope of its report to its recipient (refusals aside) and delivered or cancelled
    /// (by the agreement's end): what the recipient held or was owed under it.
    pub async fn ended_shares(&self, agreement: &str, after: i64, limit: i64) -> Result<Vec<EndedShare>, StoreError> {
        let rows: Vec<(i64, uuid::Uuid, String, String)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT o.id, o.report_id, o.recipient, o.envelope FROM outbox o \
                 WHERE o.agreement_id = $1 AND o.id > $2 AND o.state IN ('delivered', 'cancelled') \
                 AND o.envelope <> '' \
                 AND o.id = (SELECT MAX(i.id) FROM outbox i WHERE i.report_id = o.report_id \
                     AND i.recipient = o.recipient AND i.state <> 'refused') \
                 ORDER BY o.id LIMIT $3",
            )
            .bind(agreement)
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, report, recipient, envelope)| EndedShare { id, report: report.into(), recipient, envelope })
            .collect())
    }

    /// Queues `envelopes`, which send again under other agreements what went under `agreement`,
    /// with one audit entry that counts them.
    pub async fn queue_reshares(
        &self,
        agreement: &str,
        envelopes: &[QueuedEnvelope],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if envelopes.is_empty() {
            return Ok(());
        }
        let event = AuditEvent::new("agreement.reshared", "node").agreement(agreement).detail(format!(
            "{} reports sent again under other agreements that let them reach the same partners",
            envelopes.len()
        ));
        in_write_tx!(self, |tx| {
            append_audit!(tx, &event, now);
            queue_envelopes!(tx, envelopes, now);
        });
        Ok(())
    }

    /// Whether what went under the ended `agreement` has been sent again where it may go.
    pub async fn reshared(&self, agreement: &str) -> Result<bool, StoreError> {
        let at: Option<Option<i64>> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT reshared_at_ms FROM agreements WHERE id = $1")
                .bind(agreement)
                .fetch_optional(p)
                .await?
        });
        Ok(at.flatten().is_some())
    }

    /// Records that what went under the ended `agreement` has been sent again where it may go.
    pub async fn mark_reshared(&self, agreement: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            sqlx::query("UPDATE agreements SET reshared_at_ms = $2 WHERE id = $1")
                .bind(agreement)
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }
}
