//! Agreements in storage: the signed document as collected so far, and its revocation. The store
//! keeps documents; which signatures count and what the agreement's status is, the lifecycle decides.

use chrono::{DateTime, Utc};

use super::audit::append_audit;
use super::lifecycle::queue_lifecycle;
use super::{LifecycleDocument, StoreError, in_write_tx, on_pool, time};
use crate::domain::agreement::RevocationRecord;
use crate::domain::audit::AuditEvent;

/// An agreement as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementRecord {
    pub id: String,
    /// The JWS JSON: the agreement as payload, the parties' signatures.
    pub document: String,
    pub proposed_by: String,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revocation: Option<RevocationRecord>,
    /// Held as the framework of local agreements this node is a party to, not as a party to it:
    /// nothing flows under it here, and this node neither signs nor revokes it.
    pub held_as_framework: bool,
    /// The agreement this one amends, if it is an amendment.
    pub replaces: Option<String>,
    /// Set once this agreement was handed over to an amendment that took effect.
    pub handed_over_at: Option<DateTime<Utc>>,
}

/// A revision that moves whenever the stored agreements change (a trigger counts every write).
pub type AgreementsStamp = i64;

type AgreementRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
);

const COLUMNS: &str = "id, document, proposed_by, received_at_ms, updated_at_ms, revoked_by, revoked_at_ms, \
     revocation_reason, revocation, held_as, replaces, handed_over_at_ms";

fn record(row: AgreementRow) -> AgreementRecord {
    let revocation = match (row.5, row.6, row.8) {
        (Some(by), Some(at), Some(statement)) => Some(RevocationRecord { by, at: time(at), reason: row.7, statement }),
        _ => None,
    };
    AgreementRecord {
        id: row.0,
        document: row.1,
        proposed_by: row.2,
        received_at: time(row.3),
        updated_at: time(row.4),
        revocation,
        held_as_framework: row.9 == "framework",
        replaces: row.10,
        handed_over_at: row.11.map(time),
    }
}

impl super::Store {
    /// Stores a new agreement with its audit entry and the documents to send the other parties;
    /// false (and nothing stored) if the id is taken.
    pub async fn insert_agreement(
        &self,
        record: &AgreementRecord,
        audit: &[AuditEvent],
        send: &[LifecycleDocument],
    ) -> Result<bool, StoreError> {
        let inserted = in_write_tx!(self, |tx| {
            let inserted = sqlx::query(
                "INSERT INTO agreements (id, document, proposed_by, received_at_ms, updated_at_ms, held_as, replaces) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&record.id)
            .bind(&record.document)
            .bind(&record.proposed_by)
            .bind(record.received_at.timestamp_millis())
            .bind(record.updated_at.timestamp_millis())
            .bind(if record.held_as_framework { "framework" } else { "party" })
            .bind(&record.replaces)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                for event in audit {
                    append_audit!(tx, event, record.updated_at);
                }
                queue_lifecycle!(tx, send, record.updated_at);
            }
            inserted
        });
        Ok(inserted == 1)
    }

    /// Replaces an agreement's document (more signatures), only if it is still `previous`: of two
    /// merges at the same moment one wins and the other must merge again, so no signature is lost.
    /// The documents to send the other parties are queued with it.
    pub async fn replace_agreement_document(
        &self,
        id: &str,
        previous: &str,
        document: &str,
        at: DateTime<Utc>,
        audit: &[AuditEvent],
        send: &[LifecycleDocument],
    ) -> Result<bool, StoreError> {
        let replaced = in_write_tx!(self, |tx| {
            let replaced =
                sqlx::query("UPDATE agreements SET document = $3, updated_at_ms = $4 WHERE id = $1 AND document = $2")
                    .bind(id)
                    .bind(previous)
                    .bind(document)
                    .bind(at.timestamp_millis())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if replaced == 1 {
                for event in audit {
                    append_audit!(tx, event, at);
                }
                queue_lifecycle!(tx, send, at);
            }
            replaced
        });
        Ok(replaced == 1)
    }

    /// Records a revocation and its audit entry, and queues the statement for the other parties
    /// (`send`); the first revocation stands, later ones change nothing.
    pub async fn revoke_agreement(
        &self,
        id: &str,
        revocation: &RevocationRecord,
        audit: &AuditEvent,
        send: &[LifecycleDocument],
    ) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            let changed = sqlx::query(
                "UPDATE agreements SET revoked_by = $2, revoked_at_ms = $3, revocation_reason = $4, revocation = $5, \
                 updated_at_ms = $3 WHERE id = $1 AND revoked_by IS NULL",
            )
            .bind(id)
            .bind(&revocation.by)
            .bind(revocation.at.timestamp_millis())
            .bind(&revocation.reason)
            .bind(&revocation.statement)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                append_audit!(tx, audit, revocation.at);
                queue_lifecycle!(tx, send, revocation.at);
            }
        });
        Ok(())
    }

    /// The agreements' revision: one row, which changes whenever one is added, gains a signature
    /// or is revoked, on any replica.
    pub async fn agreements_stamp(&self) -> Result<AgreementsStamp, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT revision FROM agreements_revision WHERE id = 1").fetch_one(p).await?
        }))
    }

    pub async fn agreement(&self, id: &str) -> Result<Option<AgreementRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM agreements WHERE id = $1");
        let row: Option<AgreementRow> =
            on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await?);
        Ok(row.map(record))
    }

    /// Every agreement, by id.
    pub async fn agreements(&self) -> Result<Vec<AgreementRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM agreements ORDER BY id");
        let rows: Vec<AgreementRow> = on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?);
        Ok(rows.into_iter().map(record).collect())
    }

    /// The amendments of agreement `id` that no party revoked.
    pub async fn amendments_of(&self, id: &str) -> Result<Vec<AgreementRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM agreements WHERE replaces = $1 AND revoked_by IS NULL ORDER BY id");
        let rows: Vec<AgreementRow> =
            on_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_all(p).await?);
        Ok(rows.into_iter().map(record).collect())
    }
}
