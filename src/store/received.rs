//! Reports received from partners: the latest version of each, beside the node's own in
//! `report_heads` (marked by the agreement it came under), so one query serves the merged picture.
//! A version is stored only if it is newer than the one held: a duplicate or a late older version
//! changes nothing. Refused envelopes go to `dead_letters`. Everything received under an agreement
//! can be dropped at once (revocation, expiry) and is deleted when its retention period ends.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::alerts::record_alert;
use super::audit::{append_audit, append_audit_all};
use super::{StoreError, in_write_tx, on_pool};
use crate::domain::audit::AuditEvent;
use crate::domain::view::ReportView;
use crate::domain::{OrgId, ReportId};

/// A verified view to store, with the partner it came from.
#[derive(Debug, Clone)]
pub struct Received {
    pub view: ReportView,
    pub sender: OrgId,
    /// When the sender signed it: of two envelopes of one version under different agreements, the
    /// one signed later is the sender's latest word.
    pub signed_at: DateTime<Utc>,
    /// The audit entry to write, completed with what happened.
    pub audit: AuditEvent,
}

/// What storing a received version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveOutcome {
    /// It is the latest version held now.
    Stored,
    /// This version is held already; nothing changed.
    Duplicate,
    /// A newer version is held; nothing changed.
    Older,
    /// The id belongs to one of this node's own reports.
    IdTaken,
    /// Its agreement ended while the delivery was checked; nothing was stored.
    AgreementEnded,
}

impl ReceiveOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::Older => "older",
            Self::IdTaken => "id_taken",
            Self::AgreementEnded => "agreement_ended",
        }
    }
}

/// An envelope that was refused, for the dead-letter table.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub partner: OrgId,
    pub reason: String,
    pub envelope_hash: String,
    /// The envelope as it arrived (cut to a bounded length).
    pub envelope: String,
    pub audit: AuditEvent,
}

/// The columns the situation query filters on, from a received view. A view without a time is
/// placed at the moment it arrived; one without a point has none.
struct ViewRow<'a> {
    view: &'a ReportView,
    observed_at_ms: i64,
    observed_end_ms: i64,
    status: &'static str,
    lat: Option<f64>,
    lon: Option<f64>,
    expires_at_ms: Option<i64>,
    updated_at_ms: i64,
}

impl<'a> ViewRow<'a> {
    fn of(view: &'a ReportView, at: DateTime<Utc>) -> Self {
        let observed_at = view.observed_at.unwrap_or(at);
        let location = view.location.as_ref();
        Self {
            view,
            observed_at_ms: observed_at.timestamp_millis(),
            observed_end_ms: view.observed_until.unwrap_or(observed_at).timestamp_millis(),
            status: view.status.map_or("", |s| s.as_str()),
            lat: location.and_then(|l| l.lat.zip(l.lon)).map(|(lat, _)| lat),
            lon: location.and_then(|l| l.lat.zip(l.lon)).map(|(_, lon)| lon),
            expires_at_ms: view.expires_at.map(|t| t.timestamp_millis()),
            updated_at_ms: view.updated_at.unwrap_or(at).timestamp_millis(),
        }
    }
}

/// Stores a received version if the report is new here, or newer than the version held, or the
/// same version sent again under another agreement and signed later (its sender's agreement ended
/// and another one carries the report now); a row of this node's own never changes.
const UPSERT_RECEIVED: &str = "INSERT INTO report_heads (report_id, origin, version, observed_at_ms, \
     observed_end_ms, category, severity, status, tlp, lat, lon, retracted, expires_at_ms, updated_at_ms, body, \
     received_under, received_from, received_at_ms, shared_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
     ON CONFLICT (origin, report_id) DO UPDATE SET version = excluded.version, \
     observed_at_ms = excluded.observed_at_ms, observed_end_ms = excluded.observed_end_ms, \
     category = excluded.category, severity = excluded.severity, status = excluded.status, tlp = excluded.tlp, \
     lat = excluded.lat, lon = excluded.lon, retracted = excluded.retracted, expires_at_ms = excluded.expires_at_ms, \
     updated_at_ms = excluded.updated_at_ms, body = excluded.body, received_under = excluded.received_under, \
     received_from = excluded.received_from, received_at_ms = excluded.received_at_ms, \
     shared_at_ms = excluded.shared_at_ms \
     WHERE report_heads.received_under IS NOT NULL AND (report_heads.version < excluded.version \
     OR (report_heads.version = excluded.version AND report_heads.received_under <> excluded.received_under \
     AND COALESCE(report_heads.shared_at_ms, 0) < excluded.shared_at_ms))";

/// The version held of a received view's report, and whether the row is a received one, inside
/// transaction `$tx`.
macro_rules! held_version {
    ($tx:expr, $view:expr) => {{
        let view: &ReportView = $view;
        sqlx::query_as::<_, (i64, bool)>(
            "SELECT version, received_under IS NOT NULL FROM report_heads WHERE origin = $1 AND report_id = $2",
        )
        .bind(view.origin.as_str())
        .bind(view.id.as_uuid())
        .fetch_optional($tx)
        .await
    }};
}

/// Why `version` was not stored, given what is held.
fn classify(held: Option<(i64, bool)>, version: i64) -> ReceiveOutcome {
    match held {
        Some((_, false)) => ReceiveOutcome::IdTaken,
        Some((held, true)) if held == version => ReceiveOutcome::Duplicate,
        _ => ReceiveOutcome::Older,
    }
}

impl super::Store {
    /// Stores a batch of verified views and dead letters in one transaction, each with its audit
    /// entry (and `other_audit`, about envelopes deferred); answers, per view, what storing it did.
    /// A view whose agreement ended (revoked, or its sharing ended here) while the batch was being
    /// checked is not stored.
    pub async fn store_received(
        &self,
        accepted: &[Received],
        dead: &[DeadLetter],
        other_audit: &[AuditEvent],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReceiveOutcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(accepted.len());
        in_write_tx!(self, |tx| {
            let mut events = Vec::with_capacity(accepted.len() + dead.len() + other_audit.len());
            let mut ended: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
            for received in accepted {
                let view = &received.view;
                let agreement = view.agreement.as_str();
                if !ended.contains_key(agreement) {
                    let live: Option<bool> = sqlx::query_scalar(
                        "SELECT revoked_by IS NULL AND expiry_handled_at_ms IS NULL FROM agreements WHERE id = $1",
                    )
                    .bind(agreement)
                    .fetch_optional(&mut *tx)
                    .await?;
                    ended.insert(agreement.to_owned(), live != Some(true));
                }
                let version = i64::from(view.version.get());
                let outcome = if ended.get(agreement) == Some(&true) {
                    ReceiveOutcome::AgreementEnded
                } else {
                    // One statement stores the version when it is new or newer (the common case);
                    // only when it did not is the row looked at, to say why.
                    let row = ViewRow::of(view, now);
                    let written = sqlx::query(UPSERT_RECEIVED)
                        .bind(view.id.as_uuid())
                        .bind(view.origin.as_str())
                        .bind(version)
                        .bind(row.observed_at_ms)
                        .bind(row.observed_end_ms)
                        .bind(view.category.as_str())
                        .bind(view.severity.rank())
                        .bind(row.status)
                        .bind(view.tlp.as_str())
                        .bind(row.lat)
                        .bind(row.lon)
                        .bind(view.retracted)
                        .bind(row.expires_at_ms)
                        .bind(row.updated_at_ms)
                        .bind(Json(row.view))
                        .bind(agreement)
                        .bind(received.sender.as_str())
                        .bind(now.timestamp_millis())
                        .bind(received.signed_at.timestamp_millis())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if written == 1 {
                        if view.is_urgent() {
                            record_alert!(tx, view, now);
                        }
                        ReceiveOutcome::Stored
                    } else {
                        classify(held_version!(&mut *tx, view)?, version)
                    }
                };
                events.push(received.audit.clone().detail(format!("version {}: {}", view.version, outcome.as_str())));
                outcomes.push(outcome);
            }
            for letter in dead {
                sqlx::query(
                    "INSERT INTO dead_letters (received_at_ms, partner, reason, envelope_hash, envelope) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(now.timestamp_millis())
                .bind(letter.partner.as_str())
                .bind(&letter.reason)
                .bind(&letter.envelope_hash)
                .bind(&letter.envelope)
                .execute(&mut *tx)
                .await?;
                events.push(letter.audit.clone());
            }
            events.extend(other_audit.iter().cloned());
            append_audit_all!(tx, &events, now);
        });
        Ok(outcomes)
    }

    /// Ends sharing under an agreement at once: its queued envelopes are cancelled and what was
    /// received under it is deleted, and its requests with their steps (queued or not), with
    /// `audit` (completed with the counts) in one transaction.
    /// Once only: `None` when sharing under it had already ended (the same revocation may arrive by
    /// a partner's push and its feed at once), and then nothing is done or recorded.
    pub async fn end_sharing_under(
        &self,
        agreement: &str,
        why: &str,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let counts = in_write_tx!(self, |tx| {
            // The row's lock decides between two at once: the second finds it handled.
            let first = sqlx::query(
                "UPDATE agreements SET expiry_handled_at_ms = $2 WHERE id = $1 AND expiry_handled_at_ms IS NULL",
            )
            .bind(agreement)
            .bind(now.timestamp_millis())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !first {
                return Ok(None);
            }
            let cancelled = sqlx::query(
                "UPDATE outbox SET state = 'cancelled', last_error = $2, settled_at_ms = $3, claimed_until_ms = NULL \
                 WHERE agreement_id = $1 AND state = 'queued'",
            )
            .bind(agreement)
            .bind(why)
            .bind(now.timestamp_millis())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let dropped = sqlx::query("DELETE FROM report_heads WHERE received_under = $1")
                .bind(agreement)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // A request under it carries a report in its form; it goes with what was received.
            let requests = super::requests::delete_requests!(tx, agreement, i64::MAX);
            let event = audit.clone().detail(format!(
                "{why}: {cancelled} queued envelopes cancelled, {dropped} received reports deleted, {requests} requests \
                 deleted"
            ));
            append_audit!(tx, &event, now);
            Some((cancelled, dropped))
        });
        Ok(counts)
    }

    /// Whether this node has already ended sharing under an agreement that expired.
    pub async fn expiry_handled(&self, agreement: &str) -> Result<bool, StoreError> {
        let at: Option<Option<i64>> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT expiry_handled_at_ms FROM agreements WHERE id = $1")
                .bind(agreement)
                .fetch_optional(p)
                .await?
        });
        Ok(at.flatten().is_some())
    }

    /// Deletes what was received under `agreement` before `cutoff`, with an audit entry when
    /// anything was deleted; answers how many reports were.
    pub async fn delete_received_before(
        &self,
        agreement: &str,
        cutoff: DateTime<Utc>,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let deleted = in_write_tx!(self, |tx| {
            let deleted = sqlx::query("DELETE FROM report_heads WHERE received_under = $1 AND received_at_ms < $2")
                .bind(agreement)
                .bind(cutoff.timestamp_millis())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted > 0 {
                let event = audit.clone().detail(format!("{deleted} received reports past retention deleted"));
                append_audit!(tx, &event, now);
            }
            deleted
        });
        Ok(deleted)
    }

    /// The agreements this node holds received reports under.
    pub async fn agreements_with_received(&self) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT DISTINCT received_under FROM report_heads WHERE received_under IS NOT NULL ORDER BY 1",
            )
            .fetch_all(p)
            .await?
        }))
    }

    /// The received report with this id, as it was last shared here (retracted or not), if any.
    pub async fn received_view(&self, id: ReportId) -> Result<Option<ReportView>, StoreError> {
        let row: Option<Json<ReportView>> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT body FROM report_heads WHERE received_under IS NOT NULL AND report_id = $1")
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|Json(view)| view))
    }

    /// Received reports, a page at a time in id order, for data-protection searches.
    pub async fn received_views(&self, after: Option<ReportId>, limit: i64) -> Result<Vec<ReportView>, StoreError> {
        let after = after.map_or(uuid::Uuid::nil(), |id| id.as_uuid());
        let rows: Vec<Json<ReportView>> = on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT body FROM report_heads WHERE received_under IS NOT NULL AND report_id > $1 \
                 ORDER BY report_id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(|Json(view)| view).collect())
    }

    /// Replaces a received view with `erased` (the same version, personal data removed), with its
    /// audit entry.
    pub async fn erase_in_received(
        &self,
        erased: &ReportView,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            sqlx::query(
                "UPDATE report_heads SET body = $3 WHERE report_id = $1 AND version = $2 AND origin = $4 \
                 AND received_under IS NOT NULL",
            )
            .bind(erased.id.as_uuid())
            .bind(i64::from(erased.version.get()))
            .bind(Json(erased))
            .bind(erased.origin.as_str())
            .execute(&mut *tx)
            .await?;
            append_audit!(tx, audit, now);
        });
        Ok(())
    }

    /// How far this node has read `partner`'s catch-up feed.
    pub async fn feed_cursor(&self, partner: &OrgId) -> Result<i64, StoreError> {
        let after: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT after_id FROM feed_cursors WHERE partner = $1")
                .bind(partner.as_str())
                .fetch_optional(p)
                .await?
        });
        Ok(after.unwrap_or(0))
    }

    pub async fn save_feed_cursor(&self, partner: &OrgId, after: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let _ = on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO feed_cursors (partner, after_id, updated_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (partner) DO UPDATE SET after_id = $2, updated_at_ms = $3",
            )
            .bind(partner.as_str())
            .bind(after)
            .bind(now.timestamp_millis())
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Deletes refused envelopes received before `before`; answers how many.
    pub async fn prune_dead_letters(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query("DELETE FROM dead_letters WHERE received_at_ms < $1")
                .bind(before.timestamp_millis())
                .execute(p)
                .await?
                .rows_affected()
        }))
    }

    /// How many envelopes have been refused into the dead-letter table so far (its highest id:
    /// it only grows, pruning or not), for the metrics.
    pub async fn dead_letters_so_far(&self) -> Result<i64, StoreError> {
        let max: Option<i64> =
            on_pool!(self, |p| { sqlx::query_scalar("SELECT MAX(id) FROM dead_letters").fetch_one(p).await? });
        Ok(max.unwrap_or(0))
    }

    /// Refused envelopes, newest first.
    pub async fn dead_letters(
        &self,
        limit: i64,
    ) -> Result<Vec<(i64, DateTime<Utc>, String, String, String)>, StoreError> {
        let rows: Vec<(i64, i64, String, String, String)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT id, received_at_ms, partner, reason, envelope_hash FROM dead_letters ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, at, partner, reason, hash)| (id, super::time(at), partner, reason, hash))
            .collect())
    }
}
