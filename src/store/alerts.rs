//! Urgent alerts in storage (issue 19): a partner's urgent report waits in `alerts` until someone
//! here has seen it (written in the transaction that stored the report, see
//! [`record_alert!`]); marking it seen queues the signed receipt for its origin in the same
//! transaction. The receipts partners sent for this node's own urgent reports are in
//! `alert_receipts`, one per report and partner (the first time anyone there saw it).

use chrono::{DateTime, Utc};

use super::audit::append_audit;
use super::lifecycle::queue_lifecycle;
use super::{LifecycleDocument, StoreError, in_write_tx, on_pool, time};
use crate::domain::audit::AuditEvent;
use crate::domain::view::ReportView;
use crate::domain::{OrgId, ReportId};

/// A partner's urgent report as an alert here, with the report as it stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: i64,
    pub origin: String,
    pub report: ReportId,
    /// The version that raised the alert.
    pub version: i64,
    pub agreement: String,
    pub received_at: DateTime<Utc>,
    pub seen_at: Option<DateTime<Utc>>,
    /// Who here saw it first.
    pub seen_by: Option<String>,
    /// The report as received last (absent once it is gone from the picture).
    pub view: Option<ReportView>,
}

/// A partner's statement that one of its people has seen one of this node's urgent reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertReceipt {
    pub partner: String,
    pub version: i64,
    pub roles: Vec<String>,
    pub seen_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

/// Records, inside transaction `$tx`, that the urgent `$view` arrived: one alert per report, the
/// first urgent version raising it (a later version neither raises it again nor clears "seen").
macro_rules! record_alert {
    ($tx:expr, $view:expr, $now:expr) => {{
        let view: &crate::domain::view::ReportView = $view;
        let now: chrono::DateTime<chrono::Utc> = $now;
        sqlx::query(
            "INSERT INTO alerts (origin, report_id, version, agreement_id, received_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (origin, report_id) DO NOTHING",
        )
        .bind(view.origin.as_str())
        .bind(view.id.as_uuid())
        .bind(i64::from(view.version.get()))
        .bind(view.agreement.as_str())
        .bind(now.timestamp_millis())
        .execute(&mut *$tx)
        .await?;
    }};
}

pub(crate) use record_alert;

type AlertRow =
    (i64, String, uuid::Uuid, i64, String, i64, Option<i64>, Option<String>, Option<sqlx::types::Json<ReportView>>);

const ALERT_SELECT: &str = "SELECT a.id, a.origin, a.report_id, a.version, a.agreement_id, a.received_at_ms, \
     a.seen_at_ms, a.seen_by, h.body FROM alerts a \
     LEFT JOIN report_heads h ON h.origin = a.origin AND h.report_id = a.report_id AND h.received_under IS NOT NULL";

fn alert(row: AlertRow) -> Alert {
    Alert {
        id: row.0,
        origin: row.1,
        report: row.2.into(),
        version: row.3,
        agreement: row.4,
        received_at: time(row.5),
        seen_at: row.6.map(time),
        seen_by: row.7,
        view: row.8.map(|j| j.0),
    }
}

impl super::Store {
    /// The alerts nobody here has seen yet, of reports still in the picture and not withdrawn,
    /// newest first, at most `limit`.
    pub async fn unseen_alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let sql = format!(
            "{ALERT_SELECT} WHERE a.seen_at_ms IS NULL AND h.retracted = FALSE ORDER BY a.received_at_ms DESC, a.id DESC LIMIT $1"
        );
        let rows: Vec<AlertRow> =
            on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(p).await?);
        Ok(rows.into_iter().map(alert).collect())
    }

    /// The alerts raised since `since`, seen or not, newest first, at most `limit`.
    pub async fn alerts_since(&self, since: DateTime<Utc>, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let sql =
            format!("{ALERT_SELECT} WHERE a.received_at_ms >= $1 ORDER BY a.received_at_ms DESC, a.id DESC LIMIT $2");
        let rows: Vec<AlertRow> = on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(since.timestamp_millis()).bind(limit).fetch_all(p).await?
        });
        Ok(rows.into_iter().map(alert).collect())
    }

    /// The alert `id`, if there is one.
    pub async fn alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        let sql = format!("{ALERT_SELECT} WHERE a.id = $1");
        let row: Option<AlertRow> =
            on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await?);
        Ok(row.map(alert))
    }

    /// Marks alert `id` seen by `actor`, with `audit`, and queues `receipt` for its origin, in one
    /// transaction; answers false (and changes nothing) if someone saw it first.
    pub async fn mark_alert_seen(
        &self,
        id: i64,
        actor: &str,
        roles: &str,
        receipt: &LifecycleDocument,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let first = in_write_tx!(self, |tx| {
            let marked = sqlx::query(
                "UPDATE alerts SET seen_at_ms = $2, seen_by = $3, seen_roles = $4 WHERE id = $1 AND seen_at_ms IS NULL",
            )
            .bind(id)
            .bind(now.timestamp_millis())
            .bind(actor)
            .bind(roles)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if marked == 1 {
                queue_lifecycle!(tx, std::slice::from_ref(receipt), now);
                append_audit!(tx, audit, now);
            }
            marked == 1
        });
        Ok(first)
    }

    /// Records `partner`'s receipt for this node's report, with `audit`, if the report is this
    /// node's and an envelope of it was delivered to that partner; answers whether it was. A later
    /// receipt from the same partner keeps the first.
    pub async fn record_alert_receipt(
        &self,
        partner: &OrgId,
        report: ReportId,
        receipt: &AlertReceipt,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let shared = in_write_tx!(self, |tx| {
            let shared: Option<i64> = sqlx::query_scalar(
                "SELECT o.id FROM outbox o WHERE o.report_id = $1 AND o.recipient = $2 AND o.state = 'delivered' LIMIT 1",
            )
            .bind(report.as_uuid())
            .bind(partner.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if shared.is_some() {
                sqlx::query(
                    "INSERT INTO alert_receipts (report_id, partner, version, roles, seen_at_ms, received_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (report_id, partner) DO NOTHING",
                )
                .bind(report.as_uuid())
                .bind(partner.as_str())
                .bind(receipt.version)
                .bind(receipt.roles.join(","))
                .bind(receipt.seen_at.timestamp_millis())
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?;
                append_audit!(tx, audit, now);
            }
            shared.is_some()
        });
        Ok(shared)
    }

    /// The receipts partners sent for this node's report, in the order they saw it.
    pub async fn alert_receipts(&self, report: ReportId) -> Result<Vec<AlertReceipt>, StoreError> {
        let rows: Vec<(String, i64, String, i64, i64)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT partner, version, roles, seen_at_ms, received_at_ms FROM alert_receipts WHERE report_id = $1 \
                 ORDER BY seen_at_ms, partner",
            )
            .bind(report.as_uuid())
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(partner, version, roles, seen_at, received_at)| AlertReceipt {
                partner,
                version,
                roles: roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect(),
                seen_at: time(seen_at),
                received_at: time(received_at),
            })
            .collect())
    }
}
