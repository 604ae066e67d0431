//! The picture's changes in storage: one event per change of a report of the picture, numbered in
//! commit order by triggers on `report_heads` (migration 0010), so the numbers a reader sees never
//! skip or repeat, on SQLite and on PostgreSQL with several replicas. The live stream reads them
//! with the report as it stands now; the oldest are pruned, keeping a bounded number.

use sqlx::types::Json;
use uuid::Uuid;

use super::{StoreError, on_pool};
use crate::domain::{PictureFacts, PictureReport, ReportId};

/// One change of the picture, with the report as it stands now (none if it is gone).
#[derive(Debug, Clone, PartialEq)]
pub struct PictureEvent {
    pub seq: i64,
    /// `filed`, `updated`, `retracted`, `withdrawn`, `erased` or `deleted`.
    pub kind: String,
    pub origin: String,
    pub id: ReportId,
    pub version: i64,
    pub now: Option<(PictureFacts, PictureReport)>,
}

/// The numbers of the oldest event kept and of the newest (0 and 0 before any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBounds {
    pub first: i64,
    pub last: i64,
}

type EventRow = (
    i64,
    String,
    String,
    Uuid,
    i64,
    Option<i64>,
    Option<i64>,
    Option<f64>,
    Option<f64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<bool>,
    Option<i64>,
    Option<bool>,
    Option<Json<serde_json::Value>>,
);

const EVENTS_AFTER: &str = "SELECT e.seq, e.kind, e.origin, e.report_id, e.version, h.observed_at_ms, \
     h.observed_end_ms, h.lat, h.lon, h.category, CAST(h.severity AS BIGINT), h.status, h.retracted, h.expires_at_ms, \
     h.received_under IS NOT NULL, h.body \
     FROM picture_events e LEFT JOIN report_heads h ON h.origin = e.origin AND h.report_id = e.report_id \
     WHERE e.seq > $1 ORDER BY e.seq LIMIT $2";

impl super::Store {
    /// Up to `limit` events after `after`, oldest first.
    pub async fn picture_events_after(&self, after: i64, limit: i64) -> Result<Vec<PictureEvent>, StoreError> {
        let rows: Vec<EventRow> =
            on_pool!(self, |p| sqlx::query_as(EVENTS_AFTER).bind(after).bind(limit).fetch_all(p).await?);
        rows.into_iter().map(event).collect()
    }

    pub async fn picture_event_bounds(&self) -> Result<EventBounds, StoreError> {
        let (first, last): (i64, i64) = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT CAST(COALESCE((SELECT MIN(seq) FROM picture_events), 0) AS BIGINT), last_seq \
                 FROM picture_head WHERE id = 1",
            )
            .fetch_one(p)
            .await?
        });
        Ok(EventBounds { first, last })
    }

    /// Deletes all but the newest `keep` events; answers how many went.
    pub async fn prune_picture_events(&self, keep: i64) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query("DELETE FROM picture_events WHERE seq <= (SELECT last_seq FROM picture_head WHERE id = 1) - $1")
                .bind(keep)
                .execute(p)
                .await?
                .rows_affected()
        }))
    }
}

fn event(row: EventRow) -> Result<PictureEvent, StoreError> {
    let (seq, kind, origin, id, version) = (row.0, row.1, row.2, row.3, row.4);
    let now = match (row.5, row.6, row.9, row.10, row.11, row.12, row.14, row.15) {
        (
            Some(observed_at_ms),
            Some(observed_end_ms),
            Some(category),
            Some(severity),
            Some(status),
            Some(retracted),
            Some(received),
            Some(Json(body)),
        ) => {
            let report = if received {
                serde_json::from_value(body).map(PictureReport::Received)
            } else {
                serde_json::from_value(body).map(PictureReport::Own)
            }
            .map_err(|e| StoreError::Corrupt(format!("a report in the picture cannot be read: {e}")))?;
            let facts = PictureFacts {
                observed_at_ms,
                observed_end_ms,
                lat: row.7,
                lon: row.8,
                category,
                severity,
                origin: origin.clone(),
                status,
                retracted,
                expires_at_ms: row.13,
                received,
            };
            Some((facts, report))
        }
        _ => None,
    };
    Ok(PictureEvent { seq, kind, origin, id: id.into(), version, now })
}
