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
    /// With `undelivered_only`, only what was still owed (queued, then cancelled by the end).
    pub async fn ended_shares(
        &self,
        agreement: &str,
        after: i64,
        limit: i64,
        undelivered_only: bool,
    ) -> Result<Vec<EndedShare>, StoreError> {
        let states = if undelivered_only { "('cancelled')" } else { "('delivered', 'cancelled')" };
        let sql = format!(
            "SELECT o.id, o.report_id, o.recipient, o.envelope FROM outbox o \
                 WHERE o.agreement_id = $1 AND o.id > $2 AND o.state IN {states} \
                 AND o.envelope <> '' \
                 AND o.id = (SELECT MAX(i.id) FROM outbox i WHERE i.report_id = o.report_id \
                     AND i.recipient = o.recipient AND i.state <> 'refused') \
                 ORDER BY o.id LIMIT $3"
        );
        let rows: Vec<(i64, uuid::Uuid, String, String)> = on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
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
        self.queue_counted(&event, envelopes, now).await
    }

    /// Queues `envelopes` with `event` in one transaction.
    async fn queue_counted(
        &self,
        event: &AuditEvent,
        envelopes: &[QueuedEnvelope],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            append_audit!(tx, event, now);
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

impl super::Store {
    /// Hands the agreement `old` over to its amendment `new`, which took effect, with `audit`
    /// (completed with the counts) in one transaction: what was queued under `old` is cancelled (to
    /// be sent under `new`), what was received under it from `senders` (the parties that send to
    /// this node under `new`) is kept under `new`, the rest (from a party that left) is deleted,
    /// and the hand-over is recorded. Answers how many envelopes were cancelled and reports kept.
    pub async fn hand_over(
        &self,
        old: &str,
        new: &str,
        senders: &[String],
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        // A received view names the agreement it came under; it is relabelled with its holder.
        let relabel = match &self.pool {
            crate::store::Pool::Sqlite(_) => {
                "UPDATE report_heads SET received_under = $2, body = json_set(body, '$.agreement', $2) \
                 WHERE received_under = $1 AND received_from = $3"
            }
            crate::store::Pool::Postgres(_) => {
                "UPDATE report_heads SET received_under = $2, body = jsonb_set(body, '{agreement}', to_jsonb($2::text)) \
                 WHERE received_under = $1 AND received_from = $3"
            }
        };
        let counts = in_write_tx!(self, |tx| {
            let cancelled = sqlx::query(
                "UPDATE outbox SET state = 'cancelled', last_error = $2, settled_at_ms = $3, claimed_until_ms = NULL \
                 WHERE agreement_id = $1 AND state = 'queued'",
            )
            .bind(old)
            .bind(format!("handed over to the amendment {new}"))
            .bind(now.timestamp_millis())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let mut kept = 0;
            for sender in senders {
                kept += sqlx::query(relabel).bind(old).bind(new).bind(sender).execute(&mut *tx).await?.rows_affected();
            }
            let dropped = sqlx::query("DELETE FROM report_heads WHERE received_under = $1")
                .bind(old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Requests go on under the amendment (their signed statements keep the name they were
            // made under).
            sqlx::query("UPDATE requests SET agreement_id = $2 WHERE agreement_id = $1")
                .bind(old)
                .bind(new)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE agreements SET handed_over_at_ms = $2 WHERE id = $1")
                .bind(old)
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            let event = audit.clone().detail(format!(
                "handed over to its amendment {new}: {cancelled} queued envelopes to be sent under it, \
                 {kept} received reports kept under it, {dropped} from parties that left deleted"
            ));
            append_audit!(tx, &event, now);
            (cancelled, kept)
        });
        Ok(counts)
    }

    /// Up to `limit` of this node's reports shared under `agreement` since `since`, by the outbox
    /// row after `after` (where the next page starts), each with that row's id; a report shared
    /// several times comes several times.
    pub async fn reports_shared_under(
        &self,
        agreement: &str,
        since: DateTime<Utc>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, ReportId)>, StoreError> {
        let rows: Vec<(i64, uuid::Uuid)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, report_id FROM outbox WHERE agreement_id = $1 AND id > $2 AND created_at_ms >= $3 \
                 AND state <> 'refused' ORDER BY id LIMIT $4",
            )
            .bind(agreement)
            .bind(after)
            .bind(since.timestamp_millis())
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(|(id, report)| (id, report.into())).collect())
    }

    /// Queues `envelopes`, which give the parties new to the amendment `agreement` the reports
    /// shared before it, with one audit entry that counts them.
    pub async fn queue_backfill(
        &self,
        agreement: &str,
        envelopes: &[QueuedEnvelope],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if envelopes.is_empty() {
            return Ok(());
        }
        let event = AuditEvent::new("agreement.backfilled", "node")
            .agreement(agreement)
            .detail(format!("{} earlier reports sent to parties new to the amendment", envelopes.len()));
        self.queue_counted(&event, envelopes, now).await
    }
}
