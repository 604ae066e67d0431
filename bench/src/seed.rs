//! Seeding a node's database directly, for sizes the API would take too long to fill: reports in
//! `report_versions` and `report_heads` with the columns and bodies the store writes (see
//! `src/store/reports.rs`; a body is a serialized `lagesbild::domain::Report` the node reads back
//! as is), and envelopes in `outbox` as the sharing code makes them (the policy's view, signed
//! with the node's key, addressed to the partner). Rows go in in large transactions, many per
//! statement. Nothing here writes an audit entry: what is measured afterwards reads only reports
//! and envelopes.

use chrono::{DateTime, Utc};
use lagesbild::crypto::jws::sign_envelope;
use lagesbild::crypto::keys::SigningKey;
use lagesbild::domain::agreement::Agreement;
use lagesbild::domain::audit::sha256_hex;
use lagesbild::domain::envelope::EnvelopeHeader;
use lagesbild::domain::policy::{Decision, decide};
use lagesbild::domain::{OrgId, Report};
use lagesbild::federation::agreements::pseudonym_key;
use uuid::Uuid;

use crate::db::Db;

/// Rows per SQLite statement (up to 15 parameters each, well under SQLite's limit of 32 766).
const SQLITE_ROWS: usize = 500;

/// An envelope for the outbox.
pub struct Envelope {
    pub report: Uuid,
    pub recipient: String,
    pub agreement: String,
    pub envelope: String,
    pub content_hash: String,
}

/// Signs what `recipient` may see of `report` under `agreement`, as the sharing code does; `None`
/// if the agreement lets nothing of it reach the recipient.
pub fn envelope_for(
    report: &Report,
    agreement: &Agreement,
    sender: &OrgId,
    recipient: &OrgId,
    key: &SigningKey,
    now: DateTime<Utc>,
) -> Option<Envelope> {
    let pseudonyms = pseudonym_key(key, &agreement.id);
    let Decision::Share { view, .. } = decide(report, agreement, recipient, now, &pseudonyms) else {
        return None;
    };
    let payload = serde_json::to_vec(&view).ok()?;
    let header = EnvelopeHeader::for_view(&view, sender, recipient, now);
    let signed = sign_envelope(&payload, key, &header);
    Some(Envelope {
        report: report.id.as_uuid(),
        recipient: recipient.to_string(),
        agreement: agreement.id.to_string(),
        envelope: signed.to_json(),
        content_hash: sha256_hex(&payload),
    })
}

/// The columns of one report's rows.
struct Row {
    id: Uuid,
    origin: String,
    observed_at_ms: i64,
    observed_end_ms: i64,
    category: &'static str,
    severity: i16,
    status: &'static str,
    tlp: &'static str,
    lat: f64,
    lon: f64,
    updated_at_ms: i64,
    body: String,
}

impl Row {
    fn of(report: &Report) -> anyhow::Result<Self> {
        let c = &report.content;
        Ok(Self {
            id: report.id.as_uuid(),
            origin: report.origin.to_string(),
            observed_at_ms: c.observed_at.timestamp_millis(),
            observed_end_ms: c.observed_until.unwrap_or(c.observed_at).timestamp_millis(),
            category: c.category.as_str(),
            severity: c.severity.rank(),
            status: c.status.as_str(),
            tlp: c.tlp.as_str(),
            lat: c.location.lat,
            lon: c.location.lon,
            updated_at_ms: report.updated_at.timestamp_millis(),
            body: serde_json::to_string(report)?,
        })
    }
}

/// Inserts version 1 of each report (its version row and its head row) in one transaction, and
/// the envelopes, if any, in the same one.
pub async fn insert(db: &Db, reports: &[Report], envelopes: &[Envelope], now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut rows: Vec<Row> = reports.iter().map(Row::of).collect::<anyhow::Result<_>>()?;
    rows.sort_by_key(|r| r.id);
    let now_ms = now.timestamp_millis();
    match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            for chunk in rows.chunks(SQLITE_ROWS) {
                // Anonymous `?` parameters: sqlx looks up each numbered one by name, and SQLite finds
                // a name by walking a list, which makes thousands of `$N` in one statement quadratic.
                let marks = |n: usize, width: usize| -> String {
                    let row = format!("({})", vec!["?"; width].join(", "));
                    vec![row; n].join(", ")
                };
                let sql = format!(
                    "INSERT INTO report_versions (report_id, version, origin, recorded_at_ms, body) VALUES {}",
                    marks(chunk.len(), 5)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    q = q.bind(r.id).bind(1i64).bind(&r.origin).bind(r.updated_at_ms).bind(&r.body);
                }
                q.execute(&mut *tx).await?;
                let sql = format!(
                    "INSERT INTO report_heads (report_id, origin, version, observed_at_ms, observed_end_ms, category, \
                     severity, status, tlp, lat, lon, retracted, expires_at_ms, updated_at_ms, body) VALUES {}",
                    marks(chunk.len(), 15)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    q = q
                        .bind(r.id)
                        .bind(&r.origin)
                        .bind(1i64)
                        .bind(r.observed_at_ms)
                        .bind(r.observed_end_ms)
                        .bind(r.category)
                        .bind(r.severity)
                        .bind(r.status)
                        .bind(r.tlp)
                        .bind(r.lat)
                        .bind(r.lon)
                        .bind(false)
                        .bind(None::<i64>)
                        .bind(r.updated_at_ms)
                        .bind(&r.body);
                }
                q.execute(&mut *tx).await?;
            }
            for chunk in envelopes.chunks(SQLITE_ROWS) {
                let row = "(?, 1, ?, ?, ?, ?, 'queued', 0, ?, ?)";
                let sql = format!(
                    "INSERT INTO outbox (report_id, version, recipient, agreement_id, envelope, content_hash, state, \
                     attempts, next_attempt_ms, created_at_ms) VALUES {}",
                    vec![row; chunk.len()].join(", ")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for e in chunk {
                    q = q
                        .bind(e.report)
                        .bind(&e.recipient)
                        .bind(&e.agreement)
                        .bind(&e.envelope)
                        .bind(&e.content_hash)
                        .bind(now_ms)
                        .bind(now_ms);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
            let origins: Vec<&str> = rows.iter().map(|r| r.origin.as_str()).collect();
            let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
            let updated: Vec<i64> = rows.iter().map(|r| r.updated_at_ms).collect();
            sqlx::query(
                "INSERT INTO report_versions (report_id, version, origin, recorded_at_ms, body) \
                 SELECT id, 1, origin, recorded, body::jsonb FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::text[]) \
                 AS t(id, origin, recorded, body)",
            )
            .bind(&ids)
            .bind(&origins)
            .bind(&updated)
            .bind(&bodies)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO report_heads (report_id, origin, version, observed_at_ms, observed_end_ms, category, \
                 severity, status, tlp, lat, lon, retracted, expires_at_ms, updated_at_ms, body) \
                 SELECT id, origin, 1, obs, obs_end, cat, sev, st, tlp, lat, lon, FALSE, NULL, upd, body::jsonb \
                 FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::int2[], $7::text[], \
                 $8::text[], $9::float8[], $10::float8[], $11::int8[], $12::text[]) \
                 AS t(id, origin, obs, obs_end, cat, sev, st, tlp, lat, lon, upd, body)",
            )
            .bind(&ids)
            .bind(&origins)
            .bind(rows.iter().map(|r| r.observed_at_ms).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.observed_end_ms).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.category).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.severity).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.tlp).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.lat).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.lon).collect::<Vec<_>>())
            .bind(&updated)
            .bind(&bodies)
            .execute(&mut *tx)
            .await?;
            if !envelopes.is_empty() {
                sqlx::query(
                    "INSERT INTO outbox (report_id, version, recipient, agreement_id, envelope, content_hash, state, \
                     attempts, next_attempt_ms, created_at_ms) \
                     SELECT id, 1, recipient, agreement, envelope, hash, 'queued', 0, $6, $6 \
                     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) \
                     AS t(id, recipient, agreement, envelope, hash)",
                )
                .bind(envelopes.iter().map(|e| e.report).collect::<Vec<_>>())
                .bind(envelopes.iter().map(|e| e.recipient.as_str()).collect::<Vec<_>>())
                .bind(envelopes.iter().map(|e| e.agreement.as_str()).collect::<Vec<_>>())
                .bind(envelopes.iter().map(|e| e.envelope.as_str()).collect::<Vec<_>>())
                .bind(envelopes.iter().map(|e| e.content_hash.as_str()).collect::<Vec<_>>())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}
