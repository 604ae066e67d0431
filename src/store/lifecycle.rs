//! The lifecycle outbox: an agreement's documents (its proposal and each new signature, as the
//! whole document collected so far, and its revocation) for each other party, queued in the
//! transaction that stored the change, claimed by delivery workers with a lease (on PostgreSQL
//! `FOR UPDATE SKIP LOCKED`), and settled as delivered, refused for good, or due again after a
//! back-off. And the revocations that arrived before their agreement, kept until it comes.

use chrono::{DateTime, Duration, Utc};

use super::partners::record_contact;
use super::{StoreError, in_write_tx, on_pool, time};
use crate::domain::OrgId;

/// What a lifecycle document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleKind {
    /// The agreement as signed so far (a proposal, or a document with a new signature).
    Agreement,
    /// A party's signed revocation (or decline).
    Revocation,
    /// The framework a local agreement sits under, for a party of the local agreement that is no
    /// party to the framework.
    Framework,
    /// A node's signed statement that it holds a framework, for the framework's parties, which
    /// tell it when they revoke the framework.
    Holding,
    /// A node's signed statement that one of its people has seen a partner's urgent report, for
    /// the report's origin.
    AlertSeen,
    /// A request to a partner, for the asked party.
    Request,
    /// The asked party's step on a request, for the asker.
    RequestStep,
}

impl LifecycleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleKind::Agreement => "agreement",
            LifecycleKind::Revocation => "revocation",
            LifecycleKind::Framework => "framework",
            LifecycleKind::Holding => "holding",
            LifecycleKind::AlertSeen => "alert_seen",
            LifecycleKind::Request => "request",
            LifecycleKind::RequestStep => "request_step",
        }
    }

    /// Where on a party's federation listener a document of this kind goes.
    pub fn path(kind: &str) -> &'static str {
        match kind {
            "revocation" => "/federation/v1/revocations",
            "framework" => "/federation/v1/frameworks",
            "holding" => "/federation/v1/frameworks/holders",
            "alert_seen" => "/federation/v1/alerts/seen",
            "request" => "/federation/v1/requests",
            "request_step" => "/federation/v1/requests/steps",
            _ => "/federation/v1/agreements",
        }
    }
}

/// A document to send to one party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleDocument {
    pub recipient: OrgId,
    pub kind: LifecycleKind,
    pub agreement: String,
    /// The signed document, JWS JSON.
    pub document: String,
}

/// A queued document as claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEntry {
    pub id: i64,
    pub recipient: String,
    /// `agreement` or `revocation`.
    pub kind: String,
    pub agreement: String,
    pub document: String,
    pub attempts: i64,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleOutcome {
    Delivered,
    /// The party refused it for good, for this reason.
    Refused(String),
    /// Not delivered now; due again at this time, after this error.
    Retry(DateTime<Utc>, String),
}

/// Queues `$documents` inside transaction `$tx`. A new agreement document supersedes one still
/// queued for the same party: the latest carries every signature the earlier did.
macro_rules! queue_lifecycle {
    ($tx:expr, $documents:expr, $now:expr) => {{
        for queued in $documents {
            crate::store::lifecycle::queue_one!($tx, queued, $now);
        }
    }};
}

/// Queues one document inside transaction `$tx`, as [`queue_lifecycle!`] does; answers its row's id.
macro_rules! queue_one {
    ($tx:expr, $document:expr, $now:expr) => {{
        let now: chrono::DateTime<chrono::Utc> = $now;
        let queued: &crate::store::LifecycleDocument = $document;
        if queued.kind == crate::store::LifecycleKind::Agreement {
            sqlx::query(
                "UPDATE lifecycle_outbox SET state = 'superseded', settled_at_ms = $4, claimed_until_ms = NULL \
                 WHERE recipient = $1 AND agreement_id = $2 AND kind = $3 AND state = 'queued'",
            )
            .bind(queued.recipient.as_str())
            .bind(&queued.agreement)
            .bind(queued.kind.as_str())
            .bind(now.timestamp_millis())
            .execute(&mut *$tx)
            .await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO lifecycle_outbox (recipient, kind, agreement_id, document, state, next_attempt_ms, \
             created_at_ms) VALUES ($1, $2, $3, $4, 'queued', $5, $5) RETURNING id",
        )
        .bind(queued.recipient.as_str())
        .bind(queued.kind.as_str())
        .bind(&queued.agreement)
        .bind(&queued.document)
        .bind(now.timestamp_millis())
        .fetch_one(&mut *$tx)
        .await?;
        id
    }};
}

pub(crate) use {queue_lifecycle, queue_one};

type EntryRow = (i64, String, String, String, String, i64);

/// The most revocations kept per partner for agreements not known here yet: what a partner can
/// make this node store before any agreement exists.
pub const MAX_PENDING_REVOCATIONS: i64 = 50;

impl super::Store {
    /// Queues `documents` on their own, outside any other change.
    pub async fn queue_lifecycle_documents(
        &self,
        documents: &[LifecycleDocument],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            queue_lifecycle!(tx, documents, now);
        });
        Ok(())
    }

    /// Claims up to `limit` due documents for `lease`, oldest first.
    pub async fn claim_due_lifecycle(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<LifecycleEntry>, StoreError> {
        let due = "state = 'queued' AND next_attempt_ms <= $1 AND (claimed_until_ms IS NULL OR claimed_until_ms <= $1)";
        let (lock, _writer) = match &self.pool {
            super::Pool::Postgres(_) => (" FOR UPDATE SKIP LOCKED", None),
            super::Pool::Sqlite(_) => ("", Some(self.writer.lock().await)),
        };
        let sql = format!(
            "UPDATE lifecycle_outbox SET claimed_until_ms = $2 WHERE id IN (SELECT id FROM lifecycle_outbox \
             WHERE {due} ORDER BY next_attempt_ms, id LIMIT $3{lock}) \
             RETURNING id, recipient, kind, agreement_id, document, attempts"
        );
        let rows: Vec<EntryRow> = on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(now.timestamp_millis())
                .bind((now + lease).timestamp_millis())
                .bind(limit)
                .fetch_all(p)
                .await?
        });
        let mut entries: Vec<LifecycleEntry> = rows
            .into_iter()
            .map(|(id, recipient, kind, agreement, document, attempts)| LifecycleEntry {
                id,
                recipient,
                kind,
                agreement,
                document,
                attempts,
            })
            .collect();
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    /// Settles one attempt, and records the contact with the party.
    pub async fn settle_lifecycle(
        &self,
        id: i64,
        recipient: &OrgId,
        outcome: &LifecycleOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            let (state, next, error) = match outcome {
                LifecycleOutcome::Delivered => ("delivered", None, None),
                LifecycleOutcome::Refused(reason) => ("refused", None, Some(reason.as_str())),
                LifecycleOutcome::Retry(at, error) => ("queued", Some(at.timestamp_millis()), Some(error.as_str())),
            };
            sqlx::query(
                "UPDATE lifecycle_outbox SET state = $2, next_attempt_ms = COALESCE($3, next_attempt_ms), \
                 last_error = $4, attempts = attempts + 1, claimed_until_ms = NULL, \
                 settled_at_ms = CASE WHEN $2 = 'queued' THEN NULL ELSE $5 END WHERE id = $1 AND state = 'queued'",
            )
            .bind(id)
            .bind(state)
            .bind(next)
            .bind(error)
            .bind(now.timestamp_millis())
            .execute(&mut *tx)
            .await?;
            let contact_error = match outcome {
                LifecycleOutcome::Retry(_, error) => Some(error.as_str()),
                _ => None,
            };
            record_contact!(&mut *tx, recipient, now, contact_error);
        });
        Ok(())
    }

    /// Documents waiting for each party, and the last error while one waits.
    pub async fn lifecycle_states(&self) -> Result<Vec<(String, i64, Option<String>)>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT recipient, COUNT(*) FROM lifecycle_outbox WHERE state = 'queued' GROUP BY recipient \
                 ORDER BY recipient",
            )
            .fetch_all(p)
            .await?
        });
        let mut states = Vec::with_capacity(rows.len());
        for (recipient, queued) in rows {
            let error: Option<Option<String>> = on_pool!(self, |p| {
                sqlx::query_scalar(
                    "SELECT last_error FROM lifecycle_outbox WHERE recipient = $1 AND state = 'queued' \
                     AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1",
                )
                .bind(&recipient)
                .fetch_optional(p)
                .await?
            });
            states.push((recipient, queued, error.flatten()));
        }
        Ok(states)
    }

    /// Keeps a revocation `sender` sent for an agreement not known here yet; false when the sender
    /// holds as many pending revocations as it may.
    pub async fn keep_pending_revocation(
        &self,
        agreement: &str,
        sender: &OrgId,
        statement: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let kept = in_write_tx!(self, |tx| {
            let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_revocations WHERE sender = $1")
                .bind(sender.as_str())
                .fetch_one(&mut *tx)
                .await?;
            if held >= MAX_PENDING_REVOCATIONS {
                false
            } else {
                sqlx::query(
                    "INSERT INTO pending_revocations (agreement_id, sender, statement, received_at_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (agreement_id, sender) DO NOTHING",
                )
                .bind(agreement)
                .bind(sender.as_str())
                .bind(statement)
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?;
                true
            }
        });
        Ok(kept)
    }

    /// Takes (and forgets) the revocations kept for `agreement`: (sender, statement, when).
    pub async fn take_pending_revocations(
        &self,
        agreement: &str,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, |p| {
            sqlx::query_as(
                "DELETE FROM pending_revocations WHERE agreement_id = $1 RETURNING sender, statement, received_at_ms",
            )
            .bind(agreement)
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(|(sender, statement, at)| (sender, statement, time(at))).collect())
    }
}
