//! Webhook subscriptions in storage: each subscription's watch, target and secrets, where it stands
//! in the picture's events, which reports its subscriber was told are in its watch, and the
//! durable queue of what is still to be sent. Queueing a round of events and moving the
//! subscription's cursor past them happen in one transaction, and only if no other replica moved
//! it first, so an event is queued once per subscription whatever the number of replicas.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::append_audit;
use super::{StoreError, in_write_tx, on_pool, time};
use crate::domain::ReportId;
use crate::domain::audit::AuditEvent;

/// A subscription as stored, with its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    pub id: String,
    pub name: Option<String>,
    pub target_url: String,
    /// The watch, as JSON.
    pub watch: String,
    /// The signing secrets in force, as JSON.
    pub secrets: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The last picture event looked at.
    pub cursor: i64,
    /// Changes dropped because the queue was full.
    pub dropped: i64,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Deliveries waiting.
    pub queued: i64,
}

/// A change of the picture for one subscription: queued if the watch `admits` the report now (the
/// payload then carries it), or if it does not but the subscriber was told it did (the payload
/// then tells it the report is gone).
#[derive(Debug, Clone)]
pub struct WatchedChange {
    pub seq: i64,
    pub origin: String,
    pub id: ReportId,
    pub admits: bool,
    pub payload: String,
}

/// A delivery claimed to be sent now.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub subscription_id: String,
    pub event_seq: i64,
    pub payload: String,
    pub attempts: i64,
    pub target_url: String,
    pub secrets: String,
}

type SubscriptionRow = (
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    i64,
);

const COLUMNS: &str = "id, name, target_url, watch, secrets, created_by, created_at_ms, cursor, dropped, \
     last_success_at_ms, last_error, last_error_at_ms, \
     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.subscription_id = subscriptions.id)";

fn record(row: SubscriptionRow) -> SubscriptionRecord {
    SubscriptionRecord {
        id: row.0,
        name: row.1,
        target_url: row.2,
        watch: row.3,
        secrets: row.4,
        created_by: row.5,
        created_at: time(row.6),
        cursor: row.7,
        dropped: row.8,
        last_success_at: row.9.map(time),
        last_error: row.10,
        last_error_at: row.11.map(time),
        queued: row.12,
    }
}

impl super::Store {
    /// Stores a new subscription, unless the node holds `max` already; false then.
    pub async fn create_subscription(
        &self,
        subscription: &SubscriptionRecord,
        max: usize,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        Ok(in_write_tx!(self, |tx| {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions").fetch_one(&mut *tx).await?;
            if count as usize >= max {
                false
            } else {
                sqlx::query(
                    "INSERT INTO subscriptions (id, name, target_url, watch, secrets, created_by, created_at_ms, cursor) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&subscription.id)
                .bind(&subscription.name)
                .bind(&subscription.target_url)
                .bind(&subscription.watch)
                .bind(&subscription.secrets)
                .bind(&subscription.created_by)
                .bind(subscription.created_at.timestamp_millis())
                .bind(subscription.cursor)
                .execute(&mut *tx)
                .await?;
                append_audit!(tx, audit, subscription.created_at);
                true
            }
        }))
    }

    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscriptions ORDER BY created_at_ms, id");
        let rows: Vec<SubscriptionRow> =
            on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?);
        Ok(rows.into_iter().map(record).collect())
    }

    pub async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM subscriptions WHERE id = $1");
        let row: Option<SubscriptionRow> =
            on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await?);
        Ok(row.map(record))
    }

    /// Deletes a subscription and what it still had to send; false if there was none.
    pub async fn delete_subscription(
        &self,
        id: &str,
        audit: &AuditEvent,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(in_write_tx!(self, |tx| {
            let deleted = sqlx::query("DELETE FROM subscriptions WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 1 {
                append_audit!(tx, audit, at);
            }
            deleted == 1
        }))
    }

    /// Replaces a subscription's secrets; false if there is no such subscription.
    pub async fn replace_subscription_secrets(
        &self,
        id: &str,
        secrets: &str,
        audit: &AuditEvent,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(in_write_tx!(self, |tx| {
            let changed = sqlx::query("UPDATE subscriptions SET secrets = $2 WHERE id = $1")
                .bind(id)
                .bind(secrets)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 1 {
                append_audit!(tx, audit, at);
            }
            changed == 1
        }))
    }

    /// Queues a round of changes for a subscription and moves its cursor from `from` to `to`, in
    /// one transaction; false (nothing done) if its cursor is no longer `from`. A change beyond the
    /// queue's `limit` is dropped and counted.
    pub async fn queue_watched_changes(
        &self,
        subscription: &str,
        (from, to): (i64, i64),
        changes: &[WatchedChange],
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(in_write_tx!(self, |tx| {
            let moved = sqlx::query("UPDATE subscriptions SET cursor = $3 WHERE id = $1 AND cursor = $2")
                .bind(subscription)
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if moved == 1 {
                let mut queued: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE subscription_id = $1")
                        .bind(subscription)
                        .fetch_one(&mut *tx)
                        .await?;
                let mut dropped = 0i64;
                for change in changes {
                    let id: Uuid = change.id.as_uuid();
                    if change.admits {
                        sqlx::query(
                            "INSERT INTO subscription_reports (subscription_id, origin, report_id) \
                             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        )
                        .bind(subscription)
                        .bind(&change.origin)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    } else {
                        let untold = sqlx::query(
                            "DELETE FROM subscription_reports \
                             WHERE subscription_id = $1 AND origin = $2 AND report_id = $3",
                        )
                        .bind(subscription)
                        .bind(&change.origin)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if untold == 0 {
                            continue;
                        }
                    }
                    if queued >= limit {
                        dropped += 1;
                        continue;
                    }
                    queued += 1;
                    sqlx::query(
                        "INSERT INTO webhook_deliveries (subscription_id, event_seq, payload, next_at_ms) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(subscription)
                    .bind(change.seq)
                    .bind(&change.payload)
                    .bind(now.timestamp_millis())
                    .execute(&mut *tx)
                    .await?;
                }
                if dropped > 0 {
                    sqlx::query("UPDATE subscriptions SET dropped = dropped + $2 WHERE id = $1")
                        .bind(subscription)
                        .bind(dropped)
                        .execute(&mut *tx)
                        .await?;
                    let event = AuditEvent::new("webhook.dropped", "node")
                        .detail(format!("subscription {subscription}: {dropped} changes dropped, its queue is full"));
                    append_audit!(tx, &event, now);
                }
            }
            moved == 1
        }))
    }

    /// Claims up to `limit` deliveries that are due, for `lease`, oldest first.
    pub async fn claim_webhook_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        type Row = (i64, String, i64, String, i64, String, String);
        let rows: Vec<Row> = in_write_tx!(self, |tx| {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM webhook_deliveries WHERE next_at_ms <= $1 \
                 AND (claimed_until_ms IS NULL OR claimed_until_ms < $1) ORDER BY id LIMIT $2",
            )
            .bind(now.timestamp_millis())
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                let claimed = sqlx::query(
                    "UPDATE webhook_deliveries SET claimed_until_ms = $2 WHERE id = $1 \
                     AND (claimed_until_ms IS NULL OR claimed_until_ms < $3)",
                )
                .bind(id)
                .bind((now + lease).timestamp_millis())
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 1 {
                    let row: Row = sqlx::query_as(
                        "SELECT d.id, d.subscription_id, d.event_seq, d.payload, CAST(d.attempts AS BIGINT), \
                         s.target_url, s.secrets FROM webhook_deliveries d \
                         JOIN subscriptions s ON s.id = d.subscription_id WHERE d.id = $1",
                    )
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    rows.push(row);
                }
            }
            rows
        });
        Ok(rows
            .into_iter()
            .map(|r| DueDelivery {
                id: r.0,
                subscription_id: r.1,
                event_seq: r.2,
                payload: r.3,
                attempts: r.4,
                target_url: r.5,
                secrets: r.6,
            })
            .collect())
    }

    /// Settles one attempt: taken by the target (the delivery goes), or not (tried again at
    /// `retry_at`), with its audit entry.
    pub async fn settle_webhook_delivery(
        &self,
        delivery: &DueDelivery,
        failure: Option<(&str, DateTime<Utc>)>,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            match failure {
                None => {
                    sqlx::query("DELETE FROM webhook_deliveries WHERE id = $1")
                        .bind(delivery.id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE subscriptions SET last_success_at_ms = $2 WHERE id = $1")
                        .bind(&delivery.subscription_id)
                        .bind(now.timestamp_millis())
                        .execute(&mut *tx)
                        .await?;
                }
                Some((error, retry_at)) => {
                    sqlx::query(
                        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_at_ms = $2, claimed_until_ms = NULL \
                         WHERE id = $1",
                    )
                    .bind(delivery.id)
                    .bind(retry_at.timestamp_millis())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE subscriptions SET last_error = $2, last_error_at_ms = $3 WHERE id = $1")
                        .bind(&delivery.subscription_id)
                        .bind(error)
                        .bind(now.timestamp_millis())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            append_audit!(tx, audit, now);
        });
        Ok(())
    }
}
