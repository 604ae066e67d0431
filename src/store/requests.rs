//! Requests between partners in storage (issue 19): the request and its steps as signed, the same
//! on both nodes, with the status the steps lead to. Every write takes the next number of
//! `requests_head` for the request it changes (`change_seq`), in commit order, which is what the
//! requests' live stream follows. A node's own request or step is queued for the other party in
//! the transaction that stores it, and its row in the lifecycle outbox says whether it arrived.
//! A request is kept for its agreement's retention after its last change, like what is received.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::append_audit;
use super::lifecycle::queue_one;
use super::{LifecycleDocument, StoreError, in_write_tx, on_pool, time};
use crate::domain::audit::AuditEvent;
use crate::domain::request::{PartnerRequest, RequestStatus, RequestStep, StepKind};

/// A request as stored here, with where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRequest {
    pub request: PartnerRequest,
    /// The agreement it is under now: the one it was made under, or that one's amendment.
    pub under: String,
    /// The request as its asker signed it (JWS JSON).
    pub statement: String,
    pub status: RequestStatus,
    pub steps: u32,
    /// Who here asked (for this node's own requests).
    pub asked_by: Option<String>,
    /// For this node's own request: whether it has reached the asked party.
    pub delivery: Option<Delivery>,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub change_seq: i64,
}

/// A step as stored here.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStep {
    pub step: RequestStep,
    /// The step as the asked party signed it (JWS JSON).
    pub statement: String,
    /// Who here took it (for this node's own steps).
    pub actor: Option<String>,
    pub delivery: Option<Delivery>,
}

/// Whether one of this node's documents has reached the other party: `queued` (with the last
/// error while it waits), `delivered` or `refused` (with the party's reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub state: String,
    pub last_error: Option<String>,
}

/// What became of a partner's request or step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Stored.
    New,
    /// Held already, exactly as sent (a repeated delivery).
    Again,
    /// Something else is held under its id or number.
    Conflict,
    /// The partner has as many open requests here as it may.
    TooMany,
    /// No request of this node to the partner has that id.
    Unknown,
    /// The step comes before the ones between it and those held (they may still be on their way).
    Ahead,
}

/// Which requests to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestFilter<'a> {
    /// Only those this node asked (`Some(true)`) or was asked (`Some(false)`).
    pub asked_here: Option<bool>,
    /// Only those still awaiting an answer.
    pub open_only: bool,
    pub own: Option<&'a str>,
}

type RequestRow = (String, String, String, String, i64, Option<String>, Option<String>, Option<String>, i64, i64, i64);

const REQUEST_SELECT: &str = "SELECT r.content, r.agreement_id, r.statement, r.status, r.steps, r.asked_by, l.state, l.last_error, \
     r.received_at_ms, r.updated_at_ms, r.change_seq FROM requests r LEFT JOIN lifecycle_outbox l ON l.id = r.lifecycle_id";

/// A stored row as a request; `None` for content this version cannot read (never written by it).
fn stored_request(row: RequestRow) -> Option<StoredRequest> {
    Some(StoredRequest {
        request: serde_json::from_str(&row.0).ok()?,
        under: row.1,
        statement: row.2,
        status: RequestStatus::parse(&row.3).unwrap_or(RequestStatus::Open),
        steps: u32::try_from(row.4).unwrap_or(0),
        asked_by: row.5,
        delivery: row.6.map(|state| Delivery { state, last_error: row.7 }),
        received_at: time(row.8),
        updated_at: time(row.9),
        change_seq: row.10,
    })
}

/// Takes the next change number inside transaction `$tx`.
macro_rules! next_change {
    ($tx:expr) => {{
        let seq: i64 =
            sqlx::query_scalar("UPDATE requests_head SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq")
                .fetch_one(&mut *$tx)
                .await?;
        seq
    }};
}

/// Inserts a request, open, inside transaction `$tx`.
macro_rules! insert_request {
    ($tx:expr, $request:expr, $statement:expr, $actor:expr, $lifecycle:expr, $seq:expr, $now:expr) => {{
        let request: &PartnerRequest = $request;
        let now: DateTime<Utc> = $now;
        sqlx::query(
            "INSERT INTO requests (asker, id, asked, agreement_id, subject, content, statement, due_at_ms, asked_at_ms, \
             status, steps, asked_by, lifecycle_id, received_at_ms, updated_at_ms, change_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', 0, $10, $11, $12, $12, $13)",
        )
        .bind(request.from.as_str())
        .bind(request.id)
        .bind(request.to.as_str())
        .bind(request.agreement.as_str())
        .bind(&request.subject)
        .bind(serde_json::to_string(request).unwrap_or_default())
        .bind($statement)
        .bind(request.due.timestamp_millis())
        .bind(request.asked_at.timestamp_millis())
        .bind($actor)
        .bind($lifecycle)
        .bind(now.timestamp_millis())
        .bind($seq)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Deletes, inside transaction `$tx`, the requests under agreement `$agreement` whose last change
/// was before `$before_ms` (`i64::MAX`: all of them), with their steps and the documents this node
/// queued for them (sent or not: a queued one is not sent). Answers how many requests.
macro_rules! delete_requests {
    ($tx:expr, $agreement:expr, $before_ms:expr) => {{
        let (agreement, before): (&str, i64) = ($agreement, $before_ms);
        sqlx::query(
            "DELETE FROM lifecycle_outbox WHERE id IN (SELECT lifecycle_id FROM requests \
             WHERE agreement_id = $1 AND updated_at_ms < $2) OR id IN (SELECT s.lifecycle_id FROM request_steps s \
             JOIN requests r ON r.asker = s.asker AND r.id = s.request_id WHERE r.agreement_id = $1 AND r.updated_at_ms < $2)",
        )
        .bind(agreement)
        .bind(before)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(
            "DELETE FROM request_steps WHERE (asker, request_id) IN \
             (SELECT asker, id FROM requests WHERE agreement_id = $1 AND updated_at_ms < $2)",
        )
        .bind(agreement)
        .bind(before)
        .execute(&mut *$tx)
        .await?;
        sqlx::query("DELETE FROM requests WHERE agreement_id = $1 AND updated_at_ms < $2")
            .bind(agreement)
            .bind(before)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
    }};
}

pub(crate) use delete_requests;

impl super::Store {
    /// Stores this node's own request, queues it for the asked party and records `audit`, in one
    /// transaction.
    pub async fn save_own_request(
        &self,
        request: &PartnerRequest,
        statement: &str,
        actor: &str,
        send: &LifecycleDocument,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            let lifecycle = queue_one!(tx, send, now);
            let seq = next_change!(tx);
            insert_request!(tx, request, statement, Some(actor), Some(lifecycle), seq, now);
            append_audit!(tx, audit, now);
        });
        Ok(())
    }

    /// Stores a partner's request to this node, with `audit`, unless the partner has `max_open`
    /// requests awaiting an answer here.
    pub async fn receive_request(
        &self,
        request: &PartnerRequest,
        statement: &str,
        max_open: i64,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<Taken, StoreError> {
        let taken = in_write_tx!(self, |tx| {
            // An id is held once on a node, whoever asked: a request is found by its id alone.
            let held: Option<(String, String)> = sqlx::query_as("SELECT asker, statement FROM requests WHERE id = $1")
                .bind(request.id)
                .fetch_optional(&mut *tx)
                .await?;
            match held {
                Some((asker, held)) if asker == request.from.as_str() && held == statement => Taken::Again,
                Some(_) => Taken::Conflict,
                None => {
                    let open: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM requests WHERE asker = $1 \
                         AND status IN ('open', 'acknowledged', 'accepted')",
                    )
                    .bind(request.from.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                    if open >= max_open {
                        Taken::TooMany
                    } else {
                        let seq = next_change!(tx);
                        insert_request!(tx, request, statement, None::<&str>, None::<i64>, seq, now);
                        append_audit!(tx, audit, now);
                        Taken::New
                    }
                }
            }
        });
        Ok(taken)
    }

    /// Stores a step on a request: this node's own (`actor` and `send` given, queued for the asker)
    /// or the asked party's (neither given). The step must be the next one and may follow the
    /// request's status; `Err` holds why it may not.
    #[allow(clippy::too_many_arguments)]
    pub async fn save_step(
        &self,
        step: &RequestStep,
        statement: &str,
        actor: Option<&str>,
        send: Option<&LifecycleDocument>,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<Result<Taken, String>, StoreError> {
        let taken = in_write_tx!(self, |tx| {
            let held: Option<(String, String, i64)> =
                sqlx::query_as("SELECT asked, status, steps FROM requests WHERE asker = $1 AND id = $2")
                    .bind(step.asker.as_str())
                    .bind(step.request)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((_, status, steps)) = held.filter(|(asked, ..)| asked == step.by.as_str()) else {
                return Ok(Ok(Taken::Unknown));
            };
            let seq = i64::from(step.seq);
            if seq <= steps {
                let again: Option<String> = sqlx::query_scalar(
                    "SELECT statement FROM request_steps WHERE asker = $1 AND request_id = $2 AND seq = $3",
                )
                .bind(step.asker.as_str())
                .bind(step.request)
                .bind(seq)
                .fetch_optional(&mut *tx)
                .await?;
                return Ok(Ok(if again.as_deref() == Some(statement) { Taken::Again } else { Taken::Conflict }));
            }
            if seq != steps + 1 {
                return Ok(Ok(Taken::Ahead));
            }
            let status = RequestStatus::parse(&status).unwrap_or(RequestStatus::Open);
            let next = match status.after(step.kind) {
                Ok(next) => next,
                Err(reason) => return Ok(Err(reason)),
            };
            let lifecycle = match send {
                Some(send) => Some(queue_one!(tx, send, now)),
                None => None,
            };
            sqlx::query(
                "INSERT INTO request_steps (asker, request_id, seq, kind, text, at_ms, statement, actor, lifecycle_id, \
                 received_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(step.asker.as_str())
            .bind(step.request)
            .bind(seq)
            .bind(step.kind.as_str())
            .bind(&step.text)
            .bind(step.at.timestamp_millis())
            .bind(statement)
            .bind(actor)
            .bind(lifecycle)
            .bind(now.timestamp_millis())
            .execute(&mut *tx)
            .await?;
            let change = next_change!(tx);
            sqlx::query(
                "UPDATE requests SET status = $3, steps = $4, updated_at_ms = $5, change_seq = $6 \
                 WHERE asker = $1 AND id = $2",
            )
            .bind(step.asker.as_str())
            .bind(step.request)
            .bind(next.as_str())
            .bind(seq)
            .bind(now.timestamp_millis())
            .bind(change)
            .execute(&mut *tx)
            .await?;
            append_audit!(tx, audit, now);
            Ok(Taken::New)
        });
        Ok(taken)
    }

    /// The request `id` of `asker`, if held here.
    pub async fn request(&self, asker: &str, id: Uuid) -> Result<Option<StoredRequest>, StoreError> {
        let sql = format!("{REQUEST_SELECT} WHERE r.asker = $1 AND r.id = $2");
        let row: Option<RequestRow> =
            on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(asker).bind(id).fetch_optional(p).await?);
        Ok(row.and_then(stored_request))
    }

    /// The request with id `id`, whoever asked (a partner's request reusing an id held here is
    /// refused).
    pub async fn request_by_id(&self, id: Uuid) -> Result<Option<StoredRequest>, StoreError> {
        let sql = format!("{REQUEST_SELECT} WHERE r.id = $1 LIMIT 1");
        let row: Option<RequestRow> =
            on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await?);
        Ok(row.and_then(stored_request))
    }

    /// The steps of `asker`'s request `id`, in order.
    pub async fn request_steps(&self, request: &PartnerRequest) -> Result<Vec<StoredStep>, StoreError> {
        type StepRow = (i64, String, String, i64, String, Option<String>, Option<String>, Option<String>);
        let rows: Vec<StepRow> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT s.seq, s.kind, s.text, s.at_ms, s.statement, s.actor, l.state, l.last_error \
                 FROM request_steps s LEFT JOIN lifecycle_outbox l ON l.id = s.lifecycle_id \
                 WHERE s.asker = $1 AND s.request_id = $2 ORDER BY s.seq",
            )
            .bind(request.from.as_str())
            .bind(request.id)
            .fetch_all(p)
            .await?
        });
        // A kind this version does not know was never written by it: such a row is left out.
        Ok(rows
            .into_iter()
            .filter_map(|(seq, kind, text, at, statement, actor, state, last_error)| {
                Some(StoredStep {
                    step: RequestStep {
                        request: request.id,
                        asker: request.from.clone(),
                        by: request.to.clone(),
                        seq: u32::try_from(seq).unwrap_or(0),
                        kind: StepKind::parse(&kind)?,
                        text,
                        at: time(at),
                    },
                    statement,
                    actor,
                    delivery: state.map(|state| Delivery { state, last_error }),
                })
            })
            .collect())
    }

    /// Requests, most recently changed first, at most `limit`.
    pub async fn requests(&self, filter: RequestFilter<'_>, limit: i64) -> Result<Vec<StoredRequest>, StoreError> {
        let mut clauses = Vec::new();
        match (filter.asked_here, filter.own) {
            (Some(true), Some(_)) => clauses.push("r.asker = $1"),
            (Some(false), Some(_)) => clauses.push("r.asked = $1"),
            _ => clauses.push("$1 = $1"),
        }
        if filter.open_only {
            clauses.push("r.status IN ('open', 'acknowledged', 'accepted')");
        }
        let sql = format!(
            "{REQUEST_SELECT} WHERE {} ORDER BY r.updated_at_ms DESC, r.change_seq DESC LIMIT $2",
            clauses.join(" AND ")
        );
        let rows: Vec<RequestRow> = on_pool!(self, |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(filter.own.unwrap_or("")).bind(limit).fetch_all(p).await?
        });
        Ok(rows.into_iter().filter_map(stored_request).collect())
    }

    /// The requests changed after change `after`, in the order of their last change, at most
    /// `limit`: what the live stream sends.
    pub async fn requests_changed_after(&self, after: i64, limit: i64) -> Result<Vec<StoredRequest>, StoreError> {
        let sql = format!("{REQUEST_SELECT} WHERE r.change_seq > $1 ORDER BY r.change_seq LIMIT $2");
        let rows: Vec<RequestRow> =
            on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(after).bind(limit).fetch_all(p).await?);
        Ok(rows.into_iter().filter_map(stored_request).collect())
    }

    /// Deletes the requests under `agreement` whose last change was before `cutoff`, with their
    /// steps, and an audit entry when any was deleted; answers how many were.
    pub async fn delete_requests_before(
        &self,
        agreement: &str,
        cutoff: DateTime<Utc>,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let deleted = in_write_tx!(self, |tx| {
            let deleted = delete_requests!(tx, agreement, cutoff.timestamp_millis());
            if deleted > 0 {
                let event =
                    audit.clone().detail(format!("{deleted} requests past retention deleted, with their steps"));
                append_audit!(tx, &event, now);
            }
            deleted
        });
        Ok(deleted)
    }

    /// The number of the latest change of any request (0 before any).
    pub async fn requests_last_change(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT last_seq FROM requests_head WHERE id = 1").fetch_one(p).await?
        }))
    }
}
