//! The audit trail in storage. Entries are appended by [`append_audit!`] inside the transaction of
//! the action they record, so an action and its entry are stored together or not at all; the store
//! has no way to change or delete one, and the database refuses both (triggers).

use chrono::{DateTime, Utc};

use super::{StoreError, in_write_tx, on_pool};
use crate::domain::audit::{AuditEntry, AuditEvent, ChainBreak, GENESIS, verify};

/// Takes the chain's head row for the rest of transaction `$tx`: every PostgreSQL write transaction
/// does so first (see `in_write_tx!`).
macro_rules! hold_audit_head {
    ($tx:expr) => {
        sqlx::query("UPDATE audit_head SET last_seq = last_seq WHERE id = 1").execute(&mut *$tx).await?
    };
}

/// Appends `$event` at `$at` to the chain inside transaction `$tx`.
macro_rules! append_audit {
    ($tx:expr, $event:expr, $at:expr) => {{
        let event: &crate::domain::audit::AuditEvent = $event;
        crate::store::audit::append_audit_all!($tx, std::slice::from_ref(event), $at);
    }};
}

/// Appends `$events` at `$at` to the chain, in order, inside transaction `$tx`: their sequence
/// numbers are taken at once from the head row (an `UPDATE ... RETURNING`, which makes concurrent
/// appends wait their turn, on SQLite and PostgreSQL alike) and the entries are written in
/// multi-row inserts, so a batch costs a few statements, not three per entry.
macro_rules! append_audit_all {
    ($tx:expr, $events:expr, $at:expr) => {{
        let events: &[crate::domain::audit::AuditEvent] = $events;
        if !events.is_empty() {
            let at = crate::store::audit::micros($at);
            let count = events.len() as i64;
            let (last, mut prev): (i64, String) = sqlx::query_as(
                "UPDATE audit_head SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq, last_hash",
            )
            .bind(count)
            .fetch_one(&mut *$tx)
            .await?;
            let mut entries = Vec::with_capacity(events.len());
            for (offset, event) in events.iter().enumerate() {
                let entry =
                    crate::domain::audit::AuditEntry::chain(last - count + 1 + offset as i64, at, event.clone(), &prev);
                prev = entry.hash.clone();
                entries.push(entry);
            }
            for chunk in entries.chunks(crate::store::audit::INSERT_CHUNK) {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(crate::store::audit::insert_entries_sql(chunk.len())));
                for entry in chunk {
                    q = q
                        .bind(entry.seq)
                        .bind(entry.at.timestamp_micros())
                        .bind(&entry.event.event)
                        .bind(&entry.event.actor)
                        .bind(&entry.event.partner)
                        .bind(&entry.event.report)
                        .bind(&entry.event.agreement)
                        .bind(&entry.event.object_hash)
                        .bind(&entry.event.detail)
                        .bind(&entry.prev_hash)
                        .bind(&entry.hash);
                }
                q.execute(&mut *$tx).await?;
            }
            sqlx::query("UPDATE audit_head SET last_hash = $1 WHERE id = 1").bind(&prev).execute(&mut *$tx).await?;
        }
    }};
}

/// Entries per multi-row insert (11 parameters each). Kept small: SQLite finds each `$N` by name
/// with a walk over all of a statement's parameters, so a long statement costs quadratic time.
pub(crate) const INSERT_CHUNK: usize = 16;

/// The insert of `rows` audit entries.
pub(crate) fn insert_entries_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=11).map(|column| format!("${}", row * 11 + column)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO audit_log (seq, at_us, event, actor, partner, report_id, agreement_id, object_hash, detail, \
         prev_hash, hash) VALUES {}",
        values.join(", ")
    )
}

pub(crate) use {append_audit, append_audit_all, hold_audit_head};

/// A time as the chain keeps it: to the microsecond.
pub(crate) fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// A signed statement that the chain, up to entry `seq` with hash `hash`, was pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub seq: i64,
    pub hash: String,
    pub at: DateTime<Utc>,
    /// The node's signed statement (JWS JSON) of `seq` and `hash`.
    pub statement: String,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub event: Option<String>,
    pub partner: Option<String>,
    pub report: Option<String>,
    pub agreement: Option<String>,
    /// Entries after this sequence number.
    pub after: i64,
    pub limit: u32,
}

type EntryRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

const COLUMNS: &str =
    "seq, at_us, event, actor, partner, report_id, agreement_id, object_hash, detail, prev_hash, hash";

fn entry(row: EntryRow) -> AuditEntry {
    AuditEntry {
        seq: row.0,
        at: DateTime::from_timestamp_micros(row.1).unwrap_or_default(),
        event: AuditEvent {
            event: row.2,
            actor: row.3,
            partner: row.4,
            report: row.5,
            agreement: row.6,
            object_hash: row.7,
            detail: row.8,
        },
        prev_hash: row.9,
        hash: row.10,
    }
}

impl super::Store {
    /// Records an event that comes with no other write (a read, a refusal).
    pub async fn record_audit(&self, event: &AuditEvent, at: DateTime<Utc>) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            append_audit!(tx, event, at);
        });
        Ok(())
    }

    /// Records events that come with no other write, in order, in one transaction.
    pub async fn record_audits(&self, events: &[AuditEvent], at: DateTime<Utc>) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            append_audit_all!(tx, events, at);
        });
        Ok(())
    }

    /// The last entry older than `before`: where a prune would end.
    pub async fn audit_prune_point(&self, before: DateTime<Utc>) -> Result<Option<(i64, String)>, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as("SELECT seq, hash FROM audit_log WHERE at_us < $1 ORDER BY seq DESC LIMIT 1")
                .bind(before.timestamp_micros())
                .fetch_optional(p)
                .await?
        }))
    }

    /// Stores a signed checkpoint and deletes the entries it covers, in one transaction with the
    /// audit entry that records the prune. Returns how many entries were deleted.
    pub async fn prune_audit(&self, checkpoint: &CheckpointRecord, audit: &AuditEvent) -> Result<u64, StoreError> {
        let deleted = in_write_tx!(self, |tx| {
            sqlx::query("INSERT INTO audit_checkpoints (seq, hash, at_us, statement) VALUES ($1, $2, $3, $4)")
                .bind(checkpoint.seq)
                .bind(&checkpoint.hash)
                .bind(checkpoint.at.timestamp_micros())
                .bind(&checkpoint.statement)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
                .bind(checkpoint.seq)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            append_audit!(tx, audit, checkpoint.at);
            deleted
        });
        Ok(deleted)
    }

    /// The latest checkpoint, if entries were ever pruned.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, StoreError> {
        let row: Option<(i64, String, i64, String)> = on_pool!(self, |p| {
            sqlx::query_as("SELECT seq, hash, at_us, statement FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(|(seq, hash, at, statement)| CheckpointRecord {
            seq,
            hash,
            at: DateTime::from_timestamp_micros(at).unwrap_or_default(),
            statement,
        }))
    }

    /// The chain's end as recorded beside it: the last sequence number and hash.
    pub async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1").fetch_one(p).await?
        }))
    }

    /// Checks the whole chain, page by page, and that it ends where the head says: a changed,
    /// deleted, reordered or cut-off entry is found and named.
    /// The chain is checked from the latest checkpoint, if entries were pruned; whether that
    /// checkpoint's signature holds is for the caller, who has the key, to check.
    pub async fn verify_audit(&self) -> Result<Result<u64, ChainBreak>, StoreError> {
        // The head first: an entry and the head move in one transaction, so every entry up to the
        // head read now is there to read, and what is written from here on is left for next time.
        let (head_seq, head_hash) = self.audit_head().await?;
        let mut anchor = match self.latest_checkpoint().await? {
            Some(checkpoint) => (checkpoint.seq, checkpoint.hash),
            None => (0i64, GENESIS.to_owned()),
        };
        let mut count = 0;
        while anchor.0 < head_seq {
            let mut page =
                self.audit_entries(&AuditQuery { after: anchor.0, limit: 5_000, ..AuditQuery::default() }).await?;
            page.retain(|entry| entry.seq <= head_seq);
            // An entry whose number jumps past the anchor is caught by verify; the page must still
            // continue from the anchor, so it is read from the anchor's number on.
            match verify(&page, (anchor.0, &anchor.1)) {
                Ok(n) => count += n,
                Err(broken) => return Ok(Err(broken)),
            }
            match page.last() {
                Some(last) => anchor = (last.seq, last.hash.clone()),
                None => break,
            }
        }
        if (head_seq, head_hash.as_str()) != (anchor.0, anchor.1.as_str()) {
            return Ok(Err(ChainBreak {
                seq: anchor.0 + 1,
                reason: format!(
                    "the chain ends at entry {}, but {head_seq} were written: entries were cut off the end",
                    anchor.0
                ),
            }));
        }
        Ok(Ok(count))
    }

    /// Entries matching `query`, oldest first.
    pub async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1");
        let mut texts: Vec<String> = Vec::new();
        let mut numbers: Vec<i64> = vec![query.after];
        let mut next = 2;
        let add_number = |sql: &mut String, clause: &str, value: i64, numbers: &mut Vec<i64>, next: &mut usize| {
            numbers.push(value);
            sql.push_str(&clause.replace('?', &format!("${next}")));
            *next += 1;
        };
        if let Some(since) = query.since {
            add_number(&mut sql, " AND at_us >= ?", since.timestamp_micros(), &mut numbers, &mut next);
        }
        if let Some(until) = query.until {
            add_number(&mut sql, " AND at_us <= ?", until.timestamp_micros(), &mut numbers, &mut next);
        }
        let mut text_clauses = Vec::new();
        for (column, value) in [
            ("event", &query.event),
            ("partner", &query.partner),
            ("report_id", &query.report),
            ("agreement_id", &query.agreement),
        ] {
            if let Some(value) = value {
                texts.push(value.clone());
                text_clauses.push(column);
            }
        }
        // Numbers are bound first, then texts, in the order their placeholders were numbered.
        for column in &text_clauses {
            sql.push_str(&format!(" AND {column} = ${next}"));
            next += 1;
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT {}", query.limit.clamp(1, 10_000)));
        let rows: Vec<EntryRow> = on_pool!(self, |p| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for n in numbers {
                q = q.bind(n);
            }
            for t in texts {
                q = q.bind(t);
            }
            q.fetch_all(p).await?
        });
        Ok(rows.into_iter().map(entry).collect())
    }
}
