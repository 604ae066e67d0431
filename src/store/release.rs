//! Held reports (four-eyes release, issue 19): which of the organisation's reports wait for a
//! coordinator's release, which were refused, and who decided. A report's hold is written in the
//! same transaction as the version it holds, and the outbox refuses an envelope of any report whose
//! hold is not released (see `queue_envelopes!`), so nothing of a held report can be queued for a
//! partner, whichever path asks: filing, an update, a re-share, an amendment.

use chrono::{DateTime, Utc};

use super::audit::append_audit;
use super::outbox::{QueuedEnvelope, queue_envelopes};
use super::{StoreError, in_write_tx, on_pool, time};
use crate::domain::audit::AuditEvent;
use crate::domain::{Report, ReportId};

/// Why a version is held, and who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub reason: String,
    pub author: String,
}

/// A report's hold as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HoldRow {
    pub version: i64,
    pub reason: String,
    pub author: String,
    /// `held`, `refused` or `released`.
    pub state: String,
    pub decided_by: Option<String>,
    pub decision: Option<String>,
    pub held_at_ms: i64,
    pub decided_at_ms: Option<i64>,
}

impl HoldRow {
    /// Whether the report may not leave the node now.
    pub fn holds(&self) -> bool {
        self.state != "released"
    }

    pub fn held_at(&self) -> DateTime<Utc> {
        time(self.held_at_ms)
    }
}

/// Holds `report`'s version (again) for a release, inside the caller's transaction.
macro_rules! hold_version {
    ($tx:expr, $report:expr, $hold:expr) => {{
        let report: &crate::domain::Report = $report;
        let hold: &crate::store::Hold = $hold;
        sqlx::query(
            "INSERT INTO release_holds (report_id, version, reason, author, state, held_at_ms) \
             VALUES ($1, $2, $3, $4, 'held', $5) ON CONFLICT (report_id) DO UPDATE SET version = excluded.version, \
             reason = excluded.reason, author = excluded.author, state = 'held', decided_by = NULL, \
             decision = NULL, held_at_ms = excluded.held_at_ms, decided_at_ms = NULL",
        )
        .bind(report.id.as_uuid())
        .bind(i64::from(report.version.get()))
        .bind(&hold.reason)
        .bind(&hold.author)
        .bind(report.updated_at.timestamp_millis())
        .execute(&mut *$tx)
        .await?;
    }};
}

pub(crate) use hold_version;

impl super::Store {
    /// The hold of report `id`, if it ever had one.
    pub async fn hold_of(&self, id: ReportId) -> Result<Option<HoldRow>, StoreError> {
        let row: Option<HoldRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT version, reason, author, state, decided_by, decision, held_at_ms, decided_at_ms \
                 FROM release_holds WHERE report_id = $1",
            )
            .bind(id.as_uuid())
            .fetch_optional(p)
            .await?
        });
        Ok(row)
    }

    /// The reports that may not leave the node now (held or refused), oldest hold first.
    pub async fn held_reports(&self) -> Result<Vec<ReportId>, StoreError> {
        let ids: Vec<uuid::Uuid> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT report_id FROM release_holds WHERE state <> 'released' ORDER BY held_at_ms")
                .fetch_all(p)
                .await?
        });
        Ok(ids.into_iter().map(ReportId::from).collect())
    }

    /// Releases `report`'s held version: the hold ends, the release is audited, and the envelopes
    /// for partners are queued, together. `Conflict` if that version is no longer the one held.
    pub async fn release(
        &self,
        report: &Report,
        audit: &AuditEvent,
        envelopes: &[QueuedEnvelope],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.decide(report, "released", None, audit, envelopes, now).await
    }

    /// Refuses to release `report`'s held version, for `reason`: it stays in the organisation's own
    /// picture only. `Conflict` if that version is no longer the one held.
    pub async fn refuse_release(
        &self,
        report: &Report,
        reason: &str,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.decide(report, "refused", Some(reason), audit, &[], now).await
    }

    async fn decide(
        &self,
        report: &Report,
        state: &str,
        decision: Option<&str>,
        audit: &AuditEvent,
        envelopes: &[QueuedEnvelope],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            let decided = sqlx::query(
                "UPDATE release_holds SET state = $3, decided_by = $4, decision = $5, decided_at_ms = $6 \
                 WHERE report_id = $1 AND version = $2 AND state = 'held'",
            )
            .bind(report.id.as_uuid())
            .bind(i64::from(report.version.get()))
            .bind(state)
            .bind(&audit.actor)
            .bind(decision)
            .bind(now.timestamp_millis())
            .execute(&mut *tx)
            .await?;
            if decided.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
            append_audit!(tx, audit, now);
            queue_envelopes!(tx, envelopes, now);
        });
        Ok(())
    }
}
