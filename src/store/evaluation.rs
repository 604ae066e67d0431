//! An agreement's sharing ledger, read for its evaluation (`domain::evaluation`): every envelope this
//! node queued under it, with what the recipient received of the report's category and severity
//! (read from the envelope it signed), and every delivery from a party's node recorded in the audit
//! trail. Read in pages and handed on one at a time, so a year of sharing is never held at once.

use chrono::DateTime;

use super::{AuditQuery, StoreError, on_pool};
use crate::crypto::jws::Jws;
use crate::domain::agreement::Agreement;
use crate::domain::evaluation::{Evaluation, ReceivedShare, SentShare, Tally};
use crate::domain::view::ReportView;
use crate::domain::{OrgId, ReportId};

/// Rows read at a time.
const PAGE: i64 = 5_000;

/// An outbox row: id, report, recipient, version, state, envelope, queued and settled (ms).
type LedgerRow = (i64, uuid::Uuid, String, i64, String, String, i64, Option<i64>);

impl super::Store {
    /// Every envelope queued under `agreement`, oldest first, to `each`.
    pub async fn sent_under(&self, agreement: &str, mut each: impl FnMut(SentShare)) -> Result<(), StoreError> {
        let mut after = 0;
        loop {
            let rows: Vec<LedgerRow> = on_pool!(self, |p| {
                sqlx::query_as(
                    "SELECT id, report_id, recipient, version, state, envelope, created_at_ms, settled_at_ms \
                     FROM outbox WHERE agreement_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(agreement)
                .bind(after)
                .bind(PAGE)
                .fetch_all(p)
                .await?
            });
            let full = rows.len() as i64 == PAGE;
            for (id, report, recipient, version, state, envelope, queued_ms, settled_ms) in rows {
                after = id;
                // An envelope that does not read (none is written so) is left out of the counts.
                let (Some(view), Ok(recipient)) = (view_of(&envelope), OrgId::parse(&recipient)) else { continue };
                each(SentShare {
                    report: ReportId::from(report),
                    recipient,
                    version,
                    retracted: view.retracted,
                    category: view.category,
                    severity: view.severity,
                    state,
                    queued_at: moment(queued_ms),
                    settled_at: settled_ms.map(moment),
                });
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Every delivery under `agreement` that a party's node made here, as the audit trail records
    /// it, oldest first, to `each`.
    pub async fn received_under(&self, agreement: &str, mut each: impl FnMut(ReceivedShare)) -> Result<(), StoreError> {
        let mut query = AuditQuery {
            event: Some("envelope.received".into()),
            agreement: Some(agreement.to_owned()),
            limit: 1000,
            ..AuditQuery::default()
        };
        loop {
            let entries = self.audit_entries(&query).await?;
            let Some(last) = entries.last() else { return Ok(()) };
            query.after = last.seq;
            for entry in &entries {
                let Some(sender) = entry.event.partner.as_deref().and_then(|p| OrgId::parse(p).ok()) else { continue };
                let stored = entry.event.detail.as_deref().is_some_and(|d| d.ends_with(": stored"));
                each(ReceivedShare { sender, at: entry.at, stored });
            }
        }
    }
}

fn view_of(envelope: &str) -> Option<ReportView> {
    let jws = Jws::parse(envelope.as_bytes()).ok()?;
    serde_json::from_slice(&jws.unverified_payload().ok()?).ok()
}

fn moment(ms: i64) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl super::Store {
    /// The evaluation of `agreement` for node `own` at `now`, from its ledger.
    pub async fn evaluation(
        &self,
        agreement: &Agreement,
        own: &OrgId,
        now: DateTime<chrono::Utc>,
    ) -> Result<Evaluation, StoreError> {
        let mut tally = Tally::new(agreement, own);
        self.sent_under(agreement.id.as_str(), |share| tally.sent(&share)).await?;
        self.received_under(agreement.id.as_str(), |share| tally.received(&share)).await?;
        Ok(tally.finish(now))
    }
}
