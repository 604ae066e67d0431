//! Reports in storage: every version in `report_versions` (the owner's record), the latest in
//! `report_heads` (what the situation query reads). A new version is written with a compare-and-set
//! on the head's version inside one transaction, so of two concurrent updates exactly one wins and
//! the other gets [`StoreError::Conflict`], never a lost write.

use sqlx::types::Json;

use super::audit::append_audit;
use super::outbox::{QueuedEnvelope, queue_envelopes};
use super::{StoreError, in_write_tx, on_pool};
use crate::domain::audit::AuditEvent;
use crate::domain::{OrgId, Report, ReportId};

/// How many current reports one origin has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportCount {
    pub origin: String,
    pub reports: i64,
}

/// A report's head row: the latest version and the columns queries filter on.
pub(super) struct HeadRow<'a> {
    pub(super) report: &'a Report,
    pub(super) observed_at_ms: i64,
    pub(super) observed_end_ms: i64,
    pub(super) severity: i16,
    pub(super) expires_at_ms: Option<i64>,
    pub(super) updated_at_ms: i64,
}

impl<'a> HeadRow<'a> {
    pub(super) fn of(report: &'a Report) -> Self {
        let content = &report.content;
        Self {
            report,
            observed_at_ms: content.observed_at.timestamp_millis(),
            observed_end_ms: content.observed_until.unwrap_or(content.observed_at).timestamp_millis(),
            severity: content.severity.rank(),
            expires_at_ms: content.expires_at.map(|t| t.timestamp_millis()),
            updated_at_ms: report.updated_at.timestamp_millis(),
        }
    }
}

/// Binds a head row's columns as `$3`..`$15`, after id and origin as `$1` and `$2`.
macro_rules! bind_head {
    ($query:expr, $head:expr) => {{
        let head = $head;
        let content = &head.report.content;
        $query
            .bind(head.report.id.as_uuid())
            .bind(head.report.origin.as_str())
            .bind(i64::from(head.report.version.get()))
            .bind(head.observed_at_ms)
            .bind(head.observed_end_ms)
            .bind(content.category.as_str())
            .bind(head.severity)
            .bind(content.status.as_str())
            .bind(content.tlp.as_str())
            .bind(content.location.lat)
            .bind(content.location.lon)
            .bind(head.report.retracted.is_some())
            .bind(head.expires_at_ms)
            .bind(head.updated_at_ms)
            .bind(Json(head.report))
    }};
}

pub(super) const INSERT_VERSION: &str =
    "INSERT INTO report_versions (report_id, version, origin, recorded_at_ms, body) VALUES ($1, $2, $3, $4, $5)";

pub(super) const INSERT_HEAD: &str = "INSERT INTO report_heads (report_id, origin, version, observed_at_ms, observed_end_ms, \
     category, severity, status, tlp, lat, lon, retracted, expires_at_ms, updated_at_ms, body) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

const UPDATE_HEAD: &str = "UPDATE report_heads SET version = $3, observed_at_ms = $4, observed_end_ms = $5, \
     category = $6, severity = $7, status = $8, tlp = $9, lat = $10, lon = $11, retracted = $12, \
     expires_at_ms = $13, updated_at_ms = $14, body = $15 \
     WHERE report_id = $1 AND origin = $2 AND version = $16";

/// Appends one version row inside the caller's transaction.
macro_rules! insert_version {
    ($tx:expr, $report:expr, $recorded_at_ms:expr) => {{
        let report: &Report = $report;
        sqlx::query(INSERT_VERSION)
            .bind(report.id.as_uuid())
            .bind(i64::from(report.version.get()))
            .bind(report.origin.as_str())
            .bind($recorded_at_ms)
            .bind(Json(report))
            .execute($tx)
            .await
            .map(|_| ())
    }};
}

pub(super) use {bind_head, insert_version};

impl super::Store {
    /// Stores `next` as the new latest version, only if the latest is still the one before it, and
    /// its audit entry and its envelopes for partners.
    pub async fn append_version(
        &self,
        next: &Report,
        audit: &AuditEvent,
        envelopes: &[QueuedEnvelope],
        hold: Option<&super::Hold>,
    ) -> Result<(), StoreError> {
        let head = HeadRow::of(next);
        let previous = i64::from(next.version.get()) - 1;
        in_write_tx!(self, |tx| {
            let updated = bind_head!(sqlx::query(UPDATE_HEAD), &head).bind(previous).execute(&mut *tx).await?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
            insert_version!(&mut *tx, next, head.updated_at_ms)?;
            append_audit!(tx, audit, next.updated_at);
            if let Some(hold) = hold {
                super::release::hold_version!(tx, next, hold);
            }
            queue_envelopes!(tx, envelopes, next.updated_at);
        });
        Ok(())
    }

    /// The latest version of a report that `origin` filed, if there is one.
    pub async fn latest_report(&self, origin: &OrgId, id: ReportId) -> Result<Option<Report>, StoreError> {
        let row: Option<Json<Report>> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT body FROM report_heads WHERE report_id = $1 AND origin = $2")
                .bind(id.as_uuid())
                .bind(origin.as_str())
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|Json(report)| report))
    }

    /// Every version of a report that `origin` filed, oldest first; empty if there is no such report.
    pub async fn report_versions(&self, origin: &OrgId, id: ReportId) -> Result<Vec<Report>, StoreError> {
        let rows: Vec<Json<Report>> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT body FROM report_versions WHERE report_id = $1 AND origin = $2 ORDER BY version")
                .bind(id.as_uuid())
                .bind(origin.as_str())
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(|Json(report)| report).collect())
    }

    /// Every stored version of every report `origin` filed, a page at a time, in a stable order:
    /// for data-protection searches, which must look at old versions too.
    pub async fn all_versions(
        &self,
        origin: &OrgId,
        after: Option<(ReportId, i64)>,
        limit: i64,
    ) -> Result<Vec<Report>, StoreError> {
        let (after_id, after_version) = after.map_or((uuid::Uuid::nil(), 0), |(id, v)| (id.as_uuid(), v));
        let rows: Vec<Json<Report>> = on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT body FROM report_versions WHERE origin = $1 AND (report_id > $2 OR (report_id = $2 AND version > $3)) \
                 ORDER BY report_id, version LIMIT $4",
            )
            .bind(origin.as_str())
            .bind(after_id)
            .bind(after_version)
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(|Json(report)| report).collect())
    }

    /// Overwrites a stored version with `erased` (the same version, personal data removed), and
    /// the head too if it is the latest: the one change to history the store allows, for erasure.
    pub async fn erase_in_version(
        &self,
        erased: &Report,
        audit: &AuditEvent,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            sqlx::query("UPDATE report_versions SET body = $3 WHERE report_id = $1 AND version = $2")
                .bind(erased.id.as_uuid())
                .bind(i64::from(erased.version.get()))
                .bind(Json(erased))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE report_heads SET body = $3 WHERE report_id = $1 AND version = $2 AND received_under IS NULL",
            )
            .bind(erased.id.as_uuid())
            .bind(i64::from(erased.version.get()))
            .bind(Json(erased))
            .execute(&mut *tx)
            .await?;
            append_audit!(tx, audit, at);
        });
        Ok(())
    }

    /// How many reports each origin has in the picture (retracted ones included), for metrics.
    pub async fn count_reports(&self) -> Result<Vec<ReportCount>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT origin, COUNT(*) FROM report_heads GROUP BY origin ORDER BY origin")
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(|(origin, reports)| ReportCount { origin, reports }).collect())
    }
}
