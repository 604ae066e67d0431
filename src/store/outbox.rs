//! The outbox: one signed envelope per report version and recipient, written in the transaction
//! that stored the version, kept after delivery as the sharing ledger. Delivery workers claim due
//! rows with a lease (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so replicas never claim the same
//! row), and settle each one: delivered, refused for good, or due again after a back-off.

use chrono::{DateTime, Duration, Utc};

use super::audit::append_audit_all;
use super::partners::record_contact;
use super::{StoreError, in_write_tx, on_pool, time};
use crate::domain::audit::AuditEvent;
use crate::domain::{OrgId, ReportId, Version};

/// An envelope to queue with the version it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEnvelope {
    pub recipient: OrgId,
    pub agreement: String,
    pub report: ReportId,
    pub version: Version,
    /// The signed envelope, JWS JSON.
    pub envelope: String,
    /// SHA-256 (hex) of the payload: what the recipient receives, the same however often the
    /// envelope is signed again.
    pub content_hash: String,
    /// Goes in the urgent lane, ahead of everything queued for the recipient.
    pub urgent: bool,
}

/// The two lanes of each partner's queue: urgent envelopes go on their own, beside and ahead of
/// the ordinary ones, so a full queue never holds an alert back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Urgent,
    Ordinary,
}

impl Lane {
    /// The condition on an outbox row in this lane (literal, so SQLite's partial index applies).
    fn condition(self) -> &'static str {
        match self {
            Lane::Urgent => "urgent = 1",
            Lane::Ordinary => "urgent = 0",
        }
    }
}

/// One row of the outbox: an envelope and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub report: ReportId,
    pub version: i64,
    pub recipient: String,
    pub agreement: String,
    pub envelope: String,
    pub content_hash: String,
    /// `queued`, `delivered`, `refused` or `cancelled`.
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it was delivered, refused or cancelled.
    pub settled_at: Option<DateTime<Utc>>,
}

/// What one delivery round did, to be settled in one transaction.
#[derive(Debug, Default)]
pub struct DeliveryRound {
    /// Envelopes a partner answered for: the answer (or the refusal) and the audit entry.
    pub settled: Vec<(i64, Result<String, String>, AuditEvent)>,
    /// Envelopes to try again, when, and why.
    pub retries: Vec<(i64, DateTime<Utc>, String)>,
    /// Partners contacted, with the error if the contact failed.
    pub contacts: Vec<(OrgId, Option<String>)>,
}

/// How delivery to one partner stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryState {
    pub queued: i64,
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

type EntryRow = (i64, uuid::Uuid, i64, String, String, String, String, String, i64, Option<String>, i64, Option<i64>);

const ENTRY_COLUMNS: &str = "id, report_id, version, recipient, agreement_id, envelope, content_hash, state, attempts, \
     last_error, created_at_ms, settled_at_ms";

fn entry(row: EntryRow) -> OutboxEntry {
    OutboxEntry {
        id: row.0,
        report: row.1.into(),
        version: row.2,
        recipient: row.3,
        agreement: row.4,
        envelope: row.5,
        content_hash: row.6,
        state: row.7,
        attempts: row.8,
        last_error: row.9,
        created_at: time(row.10),
        settled_at: row.11.map(time),
    }
}

/// Queues `$envelopes` inside transaction `$tx`. The outbox row is the record of the queuing (the
/// ledger); the audit trail records each envelope's outcome. An envelope of a later version
/// supersedes, in the same transaction, every older one of the report still queued for the same
/// recipient: the newest version (or its withdrawal) is all the recipient needs, and an older one
/// sent later would hand out what the originator has since narrowed, re-marked or withdrawn.
///
/// The rows' ids follow commit order, because a partner's catch-up feed is read by id from where
/// it stopped: an id drawn before another's but committed after it would lie behind a cursor that
/// has moved on, and never be served. So the ids are drawn while the transaction holds the audit
/// chain's head row, which every PostgreSQL write transaction takes first and keeps until it
/// commits (`in_write_tx!`): of two transactions queuing at once (two replicas on one PostgreSQL),
/// the second draws its ids after the first has committed. SQLite has one writer at a time: its ids
/// are in commit order already.
macro_rules! queue_envelopes {
    ($tx:expr, $envelopes:expr, $now:expr) => {{
        let now: chrono::DateTime<chrono::Utc> = $now;
        let envelopes: &[crate::store::QueuedEnvelope] = $envelopes;
        for queued in envelopes {
            let queued: &crate::store::QueuedEnvelope = queued;
            if queued.version.get() > 1 {
                sqlx::query(
                    "UPDATE outbox SET state = 'cancelled', last_error = $4, settled_at_ms = $5, claimed_until_ms = NULL \
                     WHERE report_id = $1 AND recipient = $2 AND version < $3 AND state = 'queued'",
                )
                .bind(queued.report.as_uuid())
                .bind(queued.recipient.as_str())
                .bind(i64::from(queued.version.get()))
                .bind(format!("superseded by version {} before it was delivered", queued.version))
                .bind(now.timestamp_millis())
                .execute(&mut *$tx)
                .await?;
            }
            // Nothing of a report held for a four-eyes release is queued, whoever asks.
            sqlx::query(
                "INSERT INTO outbox (report_id, version, recipient, agreement_id, envelope, content_hash, state, \
                 attempts, next_attempt_ms, created_at_ms, urgent) SELECT $1, $2, $3, $4, $5, $6, 'queued', 0, $7, $7, $8 \
                 WHERE NOT EXISTS (SELECT 1 FROM release_holds WHERE report_id = $1 AND state <> 'released')",
            )
            .bind(queued.report.as_uuid())
            .bind(i64::from(queued.version.get()))
            .bind(queued.recipient.as_str())
            .bind(&queued.agreement)
            .bind(&queued.envelope)
            .bind(&queued.content_hash)
            .bind(now.timestamp_millis())
            .bind(i16::from(queued.urgent))
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

pub(crate) use queue_envelopes;

impl super::Store {
    /// The partners with envelopes in `lane` due now that nobody has claimed.
    pub async fn recipients_due(&self, now: DateTime<Utc>, lane: Lane) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT p.org_id FROM partners p WHERE EXISTS (SELECT 1 FROM outbox o WHERE o.recipient = p.org_id \
             AND o.state = 'queued' AND o.{} AND o.next_attempt_ms <= $1 \
             AND (o.claimed_until_ms IS NULL OR o.claimed_until_ms <= $1)) ORDER BY p.org_id",
            lane.condition()
        );
        let recipients: Vec<String> = on_pool!(self, |p| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(now.timestamp_millis()).fetch_all(p).await?
        });
        Ok(recipients)
    }

    /// Claims up to `limit` envelopes of `lane` due for `recipient` for `lease`: no other worker
    /// claims them until the lease ends or they are settled. Oldest first.
    pub async fn claim_due_envelopes(
        &self,
        recipient: &str,
        lane: Lane,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let due = format!(
            "recipient = $4 AND state = 'queued' AND {} AND next_attempt_ms <= $1 \
             AND (claimed_until_ms IS NULL OR claimed_until_ms <= $1)",
            lane.condition()
        );
        // PostgreSQL replicas skip the rows another one is claiming; SQLite has one writer at a
        // time, which this process's writers take in turn.
        let (lock, _writer) = match &self.pool {
            super::Pool::Postgres(_) => (" FOR UPDATE SKIP LOCKED", None),
            super::Pool::Sqlite(_) => ("", Some(self.writer.lock().await)),
        };
        let sql = format!(
            "UPDATE outbox SET claimed_until_ms = $2 WHERE id IN (SELECT id FROM outbox WHERE {due} \
             ORDER BY next_attempt_ms, id LIMIT $3{lock}) RETURNING {ENTRY_COLUMNS}"
        );
        let rows: Vec<EntryRow> = on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(now.timestamp_millis())
                .bind((now + lease).timestamp_millis())
                .bind(limit)
                .bind(recipient)
                .fetch_all(p)
                .await?
        });
        let mut entries: Vec<OutboxEntry> = rows.into_iter().map(entry).collect();
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    /// Settles one delivery round in one transaction: each envelope a partner answered for is
    /// delivered or refused (with its audit entry), each that must wait is due again at its time,
    /// and each partner's contact is recorded. The partner's answer is the truth: an envelope
    /// cancelled while it was on its way is recorded as delivered if the partner took it (it then
    /// drops it on hearing of the revocation).
    pub async fn settle_round(&self, round: &DeliveryRound, now: DateTime<Utc>) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            let mut events = Vec::with_capacity(round.settled.len());
            for (id, outcome, event) in &round.settled {
                let (state, error) = match outcome {
                    Ok(_) => ("delivered", None),
                    Err(reason) => ("refused", Some(reason)),
                };
                sqlx::query(
                    "UPDATE outbox SET state = $2, last_error = $3, settled_at_ms = $4, attempts = attempts + 1, \
                     claimed_until_ms = NULL WHERE id = $1 AND state IN ('queued', 'cancelled')",
                )
                .bind(id)
                .bind(state)
                .bind(error)
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?;
                events.push(event.clone());
            }
            append_audit_all!(tx, &events, now);
            for (id, next_attempt, error) in &round.retries {
                sqlx::query(
                    "UPDATE outbox SET next_attempt_ms = $2, last_error = $3, attempts = attempts + 1, \
                     claimed_until_ms = NULL WHERE id = $1 AND state = 'queued'",
                )
                .bind(id)
                .bind(next_attempt.timestamp_millis())
                .bind(error)
                .execute(&mut *tx)
                .await?;
            }
            for (org, error) in &round.contacts {
                record_contact!(&mut *tx, org, now, error.as_deref());
            }
        });
        Ok(())
    }

    /// Cancels claimed envelopes whose agreement no longer lets anything flow.
    pub async fn cancel_envelopes(&self, ids: &[i64], why: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            for id in ids {
                sqlx::query(
                    "UPDATE outbox SET state = 'cancelled', last_error = $2, settled_at_ms = $3, \
                     claimed_until_ms = NULL WHERE id = $1 AND state = 'queued'",
                )
                .bind(id)
                .bind(why)
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            }
        });
        Ok(())
    }

    /// Replaces the stored envelope `id`, which named a person since erased, with `replacement`
    /// (empty, or an envelope without the person). A queued one is cancelled (the erased version
    /// goes out instead); a delivered one keeps its place and hash in the ledger but no longer its
    /// content, so neither the feed nor a retry can hand it out.
    pub async fn scrub_envelope(&self, id: i64, replacement: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            sqlx::query(
                "UPDATE outbox SET envelope = $2, \
                 last_error = CASE WHEN state = 'queued' THEN 'superseded by a data-protection erasure' ELSE last_error END, \
                 settled_at_ms = CASE WHEN state = 'queued' THEN $3 ELSE settled_at_ms END, \
                 state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, claimed_until_ms = NULL \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(replacement)
            .bind(now.timestamp_millis())
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// The sharing ledger of one report: every envelope of every version, oldest first.
    pub async fn shares_of(&self, report: ReportId) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM outbox WHERE report_id = $1 ORDER BY id");
        let rows: Vec<EntryRow> =
            on_pool!(self, |p| { sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(report.as_uuid()).fetch_all(p).await? });
        Ok(rows.into_iter().map(entry).collect())
    }

    /// The latest envelope of a report sent (or queued) to each recipient.
    pub async fn latest_shares_of(&self, report: ReportId) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox o WHERE report_id = $1 AND state IN ('queued', 'delivered') \
             AND version = (SELECT MAX(version) FROM outbox i WHERE i.report_id = o.report_id \
             AND i.recipient = o.recipient AND i.state IN ('queued', 'delivered')) ORDER BY id"
        );
        let rows: Vec<EntryRow> =
            on_pool!(self, |p| { sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(report.as_uuid()).fetch_all(p).await? });
        Ok(rows.into_iter().map(entry).collect())
    }

    /// What `recipient` may fetch through its catch-up feed: envelopes addressed to it after
    /// `after` that it has not acknowledged yet (what it acknowledged it holds; serving that again
    /// would have it check and store each pushed envelope twice), oldest first. Ids follow commit
    /// order (see the `queue_envelopes` macro), so a cursor never moves past a row that commits later.
    pub async fn feed_for(&self, recipient: &OrgId, after: i64, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE recipient = $1 AND id > $2 AND state = 'queued' \
             AND envelope <> '' ORDER BY id LIMIT $3"
        );
        let rows: Vec<EntryRow> = on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(recipient.as_str())
                .bind(after)
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(entry).collect())
    }

    /// Queue depth, last delivery and last error of every partner that has an envelope.
    pub async fn delivery_states(&self) -> Result<Vec<(String, DeliveryState)>, StoreError> {
        let rows: Vec<(String, i64, Option<i64>)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT recipient, SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), \
                 MAX(CASE WHEN state = 'delivered' THEN settled_at_ms END) FROM outbox GROUP BY recipient \
                 ORDER BY recipient",
            )
            .fetch_all(p)
            .await?
        });
        let mut states = Vec::with_capacity(rows.len());
        for (recipient, queued, last) in rows {
            let error: Option<Option<String>> = on_pool!(self, |p| {
                sqlx::query_scalar(
                    "SELECT last_error FROM outbox WHERE recipient = $1 AND last_error IS NOT NULL \
                     AND state IN ('queued', 'refused') ORDER BY id DESC LIMIT 1",
                )
                .bind(&recipient)
                .fetch_optional(p)
                .await?
            });
            let state = DeliveryState { queued, last_delivered_at: last.map(time), last_error: error.flatten() };
            states.push((recipient, state));
        }
        Ok(states)
    }

    /// How many envelopes wait to be delivered, to anyone.
    pub async fn queued_envelopes(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'queued'").fetch_one(p).await?
        }))
    }
}
