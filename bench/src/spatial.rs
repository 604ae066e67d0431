//! Spatial indexes as candidates for the situation query (issue 21): beside the window index the
//! node uses, the same question (a bounding box and the last 24 hours) is asked through an index
//! on the place, and through one on the place and the time together, so the "best raw SQL" the
//! query's figures stand against is the best of them. On SQLite these are R*Tree tables (SQLite's
//! `rtree` module) holding each report's point and the end of its observed span, joined to the
//! reports by key; on PostgreSQL GiST indexes on the point (and, with `btree_gist`, the end), asked
//! in a transaction that drops the other indexes of the table and is rolled back, so the planner
//! can only use the candidate (each plan is checked to name it). They are built in the query's
//! database after it is seeded and dropped once timed: no node ever uses them.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use uuid::Uuid;

use crate::db::Db;
use crate::stats::Latencies;

/// An index that might answer the query faster than the window index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// The report's point only.
    Place,
    /// The report's point and the end of its observed span.
    PlaceAndTime,
}

impl Candidate {
    pub const ALL: [Candidate; 2] = [Candidate::Place, Candidate::PlaceAndTime];

    /// What the figures call it, on `db`'s backend.
    pub fn name(self, db: &Db) -> &'static str {
        match (self, db) {
            (Candidate::Place, Db::Sqlite(_)) => "R*Tree on the point",
            (Candidate::PlaceAndTime, Db::Sqlite(_)) => "R*Tree on the point and the end",
            (Candidate::Place, Db::Postgres(_)) => "GiST on the point",
            (Candidate::PlaceAndTime, Db::Postgres(_)) => "GiST on the point and the end (btree_gist)",
        }
    }

    /// The index (PostgreSQL) or table (SQLite) this candidate adds.
    fn index(self) -> &'static str {
        match self {
            Candidate::Place => "bench_heads_by_point",
            Candidate::PlaceAndTime => "bench_heads_by_point_end",
        }
    }
}

/// The question, as numbers: now, the start of the window, the box (west, south, east, north)
/// and the rows wanted.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    pub at: DateTime<Utc>,
    pub since_ms: i64,
    pub bbox: (f64, f64, f64, f64),
    pub limit: i64,
}

/// Builds every candidate in `db` (the reports seeded already).
pub async fn build(db: &Db) -> anyhow::Result<()> {
    match db {
        Db::Sqlite(p) => {
            for (table, columns, end) in [
                (Candidate::Place.index(), "min_lat, max_lat, min_lon, max_lon", ""),
                (
                    Candidate::PlaceAndTime.index(),
                    "min_lat, max_lat, min_lon, max_lon, min_end, max_end",
                    ", observed_end_ms, observed_end_ms",
                ),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}"))).execute(p).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE VIRTUAL TABLE {table} USING rtree(id, {columns}, +origin, +report_id)"
                )))
                .execute(p)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} SELECT NULL, lat, lat, lon, lon{end}, origin, report_id FROM report_heads \
                     WHERE lat IS NOT NULL AND lon IS NOT NULL"
                )))
                .execute(p)
                .await
                .with_context(|| format!("filling {table}"))?;
            }
        }
        Db::Postgres(p) => {
            sqlx::query("CREATE EXTENSION IF NOT EXISTS btree_gist").execute(p).await.context("btree_gist")?;
            for (index, columns) in [
                (Candidate::Place.index(), "point(lon, lat)"),
                (Candidate::PlaceAndTime.index(), "point(lon, lat), observed_end_ms"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {index}"))).execute(p).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE INDEX {index} ON report_heads USING gist ({columns})"
                )))
                .execute(p)
                .await
                .with_context(|| format!("building {index}"))?;
            }
            sqlx::query("ANALYZE report_heads").execute(p).await?;
        }
    }
    Ok(())
}

/// Drops every candidate again, so nothing of them stays in the node's database.
pub async fn drop_all(db: &Db) -> anyhow::Result<()> {
    for candidate in Candidate::ALL {
        db.execute(&match db {
            Db::Sqlite(_) => format!("DROP TABLE IF EXISTS {}", candidate.index()),
            Db::Postgres(_) => format!("DROP INDEX IF EXISTS {}", candidate.index()),
        })
        .await?;
    }
    Ok(())
}

/// Times `candidate` answering `question` up to `samples` times (at most `budget`), each answer
/// checked to have `expected` rows; the first few warm the caches.
pub async fn time(
    db: &Db,
    candidate: Candidate,
    question: Question,
    expected: usize,
    samples: usize,
    budget: Duration,
) -> anyhow::Result<Latencies> {
    let sql = sql(db, candidate, question);
    let mut alone = match db {
        Db::Postgres(p) => Some(without_other_indexes(p, candidate, &sql).await?),
        Db::Sqlite(_) => None,
    };
    let mut latencies = Latencies::default();
    let until = Instant::now() + budget;
    for i in 0..samples + 5 {
        if i >= 25 && Instant::now() > until {
            break;
        }
        let statement = || sqlx::AssertSqlSafe(sql.clone());
        let started = Instant::now();
        let rows = match (db, alone.as_mut()) {
            (Db::Postgres(_), Some(tx)) => {
                sqlx::query_as::<_, Row>(statement()).persistent(false).fetch_all(&mut **tx).await?.len()
            }
            (Db::Sqlite(p), _) => sqlx::query_as::<_, Row>(statement()).fetch_all(p).await?.len(),
            (Db::Postgres(_), None) => anyhow::bail!("no transaction to ask PostgreSQL in"),
        };
        let took = started.elapsed();
        anyhow::ensure!(rows == expected, "{} found {rows} rows, the window index {expected}", candidate.name(db));
        if i >= 5 {
            latencies.push(took);
        }
    }
    if let Some(tx) = alone {
        tx.rollback().await?;
    }
    Ok(latencies)
}

/// A transaction in which every other index on the table but its key is dropped, so the planner
/// can only use `candidate`; checked with the plan of `sql`. Rolled back by the caller.
async fn without_other_indexes(
    pool: &sqlx::PgPool,
    candidate: Candidate,
    sql: &str,
) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'report_heads' AND indexname <> $1 \
         AND indexname NOT LIKE '%pkey'",
    )
    .bind(candidate.index())
    .fetch_all(&mut *tx)
    .await?;
    for index in others {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {index}"))).execute(&mut *tx).await?;
    }
    let plan: Vec<String> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"))).fetch_all(&mut *tx).await?;
    let plan = plan.join("\n");
    anyhow::ensure!(plan.contains(candidate.index()), "the plan does not use {}:\n{plan}", candidate.index());
    Ok(tx)
}

type Row = (Uuid, i64, Json<Box<RawValue>>, bool);

/// The situation query's SQL (as `raw_query` in query.rs asks it) through `candidate`, with the
/// values written in (numbers this program made, never input).
fn sql(db: &Db, candidate: Candidate, q: Question) -> String {
    let (w, s, e, n) = q.bbox;
    let (at, since, limit) = (q.at.timestamp_millis(), q.since_ms, q.limit);
    let exact = format!(
        "h.retracted = FALSE AND (h.expires_at_ms IS NULL OR h.expires_at_ms > {at}) AND h.observed_end_ms >= {since} \
         AND h.lat BETWEEN {s:?} AND {n:?} AND h.lon BETWEEN {w:?} AND {e:?}"
    );
    let order = "ORDER BY observed_at_ms DESC, report_id DESC";
    // As the store asks (src/store/situation.rs): the page's keys first, then its rows whole.
    let keys = match db {
        Db::Sqlite(_) => {
            // An R*Tree stores 32-bit floats rounded outwards: it finds a superset, which the
            // exact conditions on the row then narrow. CROSS JOIN keeps the R*Tree the outer loop.
            let time = match candidate {
                Candidate::Place => String::new(),
                Candidate::PlaceAndTime => format!(" AND p.max_end >= {since}"),
            };
            format!(
                "SELECT h.origin, h.report_id FROM {table} p CROSS JOIN report_heads h \
                 ON h.origin = p.origin AND h.report_id = p.report_id \
                 WHERE p.max_lat >= {s:?} AND p.min_lat <= {n:?} AND p.max_lon >= {w:?} AND p.min_lon <= {e:?}{time} \
                 AND {exact} ORDER BY h.observed_at_ms DESC, h.report_id DESC LIMIT {limit}",
                table = candidate.index()
            )
        }
        Db::Postgres(_) => format!(
            "SELECT h.origin, h.report_id FROM report_heads h \
             WHERE point(h.lon, h.lat) <@ box(point({w:?}, {s:?}), point({e:?}, {n:?})) AND {exact} \
             ORDER BY h.observed_at_ms DESC, h.report_id DESC LIMIT {limit}"
        ),
    };
    format!(
        "SELECT report_id, observed_at_ms, body, received_under IS NOT NULL FROM report_heads \
         WHERE (origin, report_id) IN ({keys}) {order}"
    )
}
