//! The situation query at growing sizes: a bounding box around central Norrköping and the last 24
//! hours, over 1k to 1M stored reports (a year of them, 30 % in the box), on each backend. Each
//! sample asks the same question four ways, one after the other so they share the machine's
//! state: through the node's API (`GET /api/v1/situation`, a child process), through the library's
//! `Store::situation` in this process (the same code the API calls, without HTTP), as the raw SQL
//! the store builds, planned as the store runs it, and as the same SQL with the plan that answers
//! it fastest, both through sqlx with the body fetched but not parsed. At the largest size the
//! question is also asked through spatial indexes (`spatial.rs`); the best raw SQL of them all is
//! the ceiling the API's p99 stands against. The ratios say where the time goes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use lagesbild::config::DatabaseSection;
use lagesbild::domain::{BBox, SituationQuery};
use lagesbild::store::Store;
use serde_json::value::RawValue;
use sqlx::types::Json;
use uuid::Uuid;

use crate::db::Db;
use crate::nodes::{Backend, Database, MUNICIPALITY, NodeProcess};
use crate::report::{Figure, Results};
use crate::seed;
use crate::spatial::{self, Candidate, Question};
use crate::stats::{Latencies, Rng};
use crate::workload::{Place, QUERY_BBOX, content, filed, now};

const SECTION: &str = "4. Situation query (bbox + last 24 h, first page of 100)";

/// Reports generated and inserted per transaction.
const CHUNK: usize = 10_000;

/// What one size of the picture measured, for the peer comparison.
#[derive(Debug, Clone)]
pub struct Measured {
    pub backend: Backend,
    pub stored: usize,
    pub api: Latencies,
}

/// Seeds the node's database up to each of `sizes` in turn and measures the query at each.
pub async fn run(
    results: &mut Results,
    http: &reqwest::Client,
    work: &Path,
    logs: &Path,
    backend: Backend,
    sizes: &[usize],
    samples: usize,
) -> anyhow::Result<Vec<Measured>> {
    let engine = backend.name();
    let dir = work.join(format!("query-{engine}"));
    let db = Arc::new(Database::create(backend, &dir, "query").await?);
    let mut node = NodeProcess::start(MUNICIPALITY, &dir.join("node"), db.clone(), logs).await?;
    let writer = Db::connect(&db.url, 1).await?;
    let raw = Db::connect(&db.url, 1).await?;
    let store = Store::open(&DatabaseSection { url: db.url.clone(), max_connections: 1 })
        .await
        .context("the library's store on the query database")?;
    let mut stored = 0usize;
    let mut measured = Vec::new();
    for &size in sizes {
        let adding = size.saturating_sub(stored);
        println!("  {engine}: seeding {adding} more reports (to {size}) with SQL in transactions of {CHUNK}...");
        let started = Instant::now();
        seed_year(&writer, &node, adding, size as u64).await?;
        stored = size;
        if backend == Backend::Postgres {
            // As autovacuum would after a load this size (since PostgreSQL 13 it vacuums a table
            // that only grew, too): statistics, and the visibility map an index-only scan reads.
            // The node itself never runs either.
            writer.execute("VACUUM (ANALYZE) report_heads").await?;
        }
        println!(
            "    seeded in {:.1} s; up to {samples} samples of each way of asking...",
            started.elapsed().as_secs_f64()
        );
        let Sampled { api, library, sql, best, found, rows } = sample(http, &node, &store, &raw, samples).await?;
        let label = |what: &str| format!("{engine}, {} reports: {what}", thousands(size));
        let (Some(api50), Some(api99)) = (api.p50(), api.p99()) else {
            results.add(Figure::missing(SECTION, label("API"), "ms", "no query answered"));
            continue;
        };
        let big = size >= 1_000_000;
        let time_index = match backend {
            Backend::Sqlite => "raw SQL, window index (INDEXED BY)",
            Backend::Postgres => "raw SQL, values inlined",
        };
        // The best raw SQL: the node's window index, and at the largest size the spatial candidates too.
        let mut best_plan = (time_index.to_owned(), best.p50(), best.p99());
        if Some(&size) == sizes.last() {
            println!("    building the spatial indexes to try beside the window index...");
            let started = Instant::now();
            spatial::build(&writer).await?;
            println!("    built in {:.1} s", started.elapsed().as_secs_f64());
            let at = now();
            let question = Question {
                at,
                since_ms: (at - chrono::Duration::hours(24)).timestamp_millis(),
                bbox: QUERY_BBOX,
                limit: 101,
            };
            for candidate in Candidate::ALL {
                let name = candidate.name(&raw);
                let timed = spatial::time(&raw, candidate, question, rows, samples, Duration::from_secs(20)).await;
                let timed = match timed {
                    Ok(timed) => timed,
                    Err(e) => {
                        results.add(Figure::missing(
                            SECTION,
                            label(&format!("raw SQL, {name}")),
                            "ms",
                            format!("{e:#}"),
                        ));
                        continue;
                    }
                };
                let (Some(c50), Some(c99)) = (timed.p50(), timed.p99()) else { continue };
                results.add(
                    Figure::new(SECTION, label(&format!("raw SQL, {name}, p99")), c99, "ms")
                        .ceiling(format!("{time_index} p99"), best.p99(), "ms")
                        .note(format!("p50 {c50:.2} ms; {} samples", timed.len())),
                );
                if best_plan.2.is_none_or(|b| c99 < b) {
                    best_plan = (format!("raw SQL, {name}"), Some(c50), Some(c99));
                }
            }
            spatial::drop_all(&writer).await?;
        }
        let (best_name, best50, best99) = best_plan;
        let mut p50 = Figure::new(SECTION, label("API p50"), api50, "ms")
            .ceiling(format!("{best_name} p50"), best50, "ms")
            .note(format!("{found} report(s) on the page; {} samples", api.len()));
        let mut p99 =
            Figure::new(SECTION, label("API p99"), api99, "ms").ceiling(format!("{best_name} p99"), best99, "ms");
        if big {
            p50 = p50.note("the best raw SQL of this run: the fastest p99 of the window index and the spatial indexes");
            p99 = p99.target("within 1.5x of the best raw SQL", |_, r| r.is_some_and(|r| r <= 1.5));
        }
        results.add(p50);
        results.add(p99);
        for (name, value, raw) in [("p50", library.p50(), sql.p50()), ("p99", library.p99(), sql.p99())] {
            if let Some(v) = value {
                results.add(Figure::new(SECTION, label(&format!("library Store::situation {name}")), v, "ms").ceiling(
                    format!("its SQL run raw, as the store plans it, {name}"),
                    raw,
                    "ms",
                ));
            }
        }
        if let Some(v) = sql.p50() {
            results.add(
                Figure::new(SECTION, label("the store's SQL run raw, as the store plans it, p50"), v, "ms")
                    .ceiling(format!("{time_index} p50"), best.p50(), "ms")
                    .note(format!("what the planner's choice costs; {} samples", sql.len())),
            );
        }
        measured.push(Measured { backend, stored: size, api });
    }
    store.close().await;
    writer.close().await;
    raw.close().await;
    node.stop().await?;
    Ok(measured)
}

/// Adds `count` reports observed over the past year, 30 % of them in the query's box.
async fn seed_year(db: &Db, node: &NodeProcess, count: usize, seed: u64) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed);
    let end = now();
    let year = chrono::Duration::days(365).num_milliseconds() as f64;
    let step = year / count.max(1) as f64;
    let mut done = 0usize;
    let mut last_print = Instant::now();
    while done < count {
        let n = CHUNK.min(count - done);
        let reports: Vec<_> = (done..done + n)
            .map(|i| {
                let offset = year - (i as f64 + rng.unit()) * step;
                let observed = end - chrono::Duration::milliseconds(offset as i64);
                let place = if rng.unit() < 0.3 { Place::Norrkoping } else { Place::Sweden };
                let filed_at = (observed + chrono::Duration::minutes(rng.below(60) as i64)).min(end);
                filed(&node.org, content(&mut rng, observed, place), filed_at)
            })
            .collect();
        seed::insert(db, &reports, &[], end).await?;
        done += n;
        if last_print.elapsed() > Duration::from_secs(10) {
            println!("    {done} of {count}...");
            last_print = Instant::now();
        }
    }
    Ok(())
}

/// The latencies of each way of asking, and how many reports the page held.
struct Sampled {
    api: Latencies,
    library: Latencies,
    /// The store's SQL, run raw as the store runs it (a prepared statement).
    sql: Latencies,
    /// The same question with the plan that answers it fastest.
    best: Latencies,
    found: usize,
    /// The rows the raw SQL returned (the page and one more, when there are more).
    rows: usize,
}

/// Times the query `samples` times each way.
async fn sample(
    http: &reqwest::Client,
    node: &NodeProcess,
    store: &Store,
    raw: &Db,
    samples: usize,
) -> anyhow::Result<Sampled> {
    let (w, s, e, n) = QUERY_BBOX;
    let (mut api, mut library, mut sql, mut best) =
        (Latencies::default(), Latencies::default(), Latencies::default(), Latencies::default());
    let (mut found, mut rows_found) = (0, 0);
    // A slow query gets fewer samples rather than stalling the run: at most 60 s per size.
    let budget = Instant::now() + Duration::from_secs(60);
    for i in 0..samples + 5 {
        if i >= 25 && Instant::now() > budget {
            break;
        }
        let at = now();
        let since = at - chrono::Duration::hours(24);
        let path = format!(
            "/api/v1/situation?since={}&bbox={w},{s},{e},{n}",
            since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        let started = Instant::now();
        let response = http.get(node.url(&path)).bearer_auth(&node.token).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        let api_time = started.elapsed();
        anyhow::ensure!(
            status.is_success(),
            "the situation query answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let query = SituationQuery {
            since: Some(since),
            bbox: Some(BBox { min_lon: w, min_lat: s, max_lon: e, max_lat: n }),
            ..SituationQuery::default()
        }
        .check()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let started = Instant::now();
        let page = store.situation(&query, at).await?;
        let library_time = started.elapsed();
        let started = Instant::now();
        let best_rows = raw_query(raw, &query, at, Plan::Best).await?;
        let best_time = started.elapsed();
        found = page.reports.len();
        rows_found = best_rows;
        anyhow::ensure!(best_rows.min(100) == found, "the raw SQL found {best_rows} rows, the store {found}");
        let started = Instant::now();
        let rows = raw_query(raw, &query, at, Plan::AsTheStore).await?;
        let sql_time = started.elapsed();
        anyhow::ensure!(
            best_rows == rows,
            "the raw SQL found {rows} rows with the store's plan, {best_rows} with the best"
        );
        // The first few warm the caches and connections of all of them.
        if i >= 5 {
            sql.push(sql_time);
            api.push(api_time);
            library.push(library_time);
            best.push(best_time);
        }
        if i == 0 {
            let served: serde_json::Value = serde_json::from_slice(&body)?;
            let served = served["reports"].as_array().map_or(0, Vec::len);
            anyhow::ensure!(served == found, "the API served {served} reports, the store found {found}");
        }
    }
    Ok(Sampled { api, library, sql, best, found, rows: rows_found })
}

/// How the raw SQL is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// As the store runs it (src/store/situation.rs): planned anew for each query, with its values
    /// bound, and on SQLite told to use the index on the end of the observed span.
    AsTheStore,
    /// The plan that answers this question fastest with the node's indexes: on SQLite the same,
    /// prepared once; PostgreSQL planning for the values, written into the statement.
    Best,
}

/// The SQL `Store::situation` runs for a since + bbox query (src/store/situation.rs), run raw with
/// the body fetched but not parsed; answers how many rows came back.
async fn raw_query(db: &Db, query: &SituationQuery, at: DateTime<Utc>, plan: Plan) -> anyhow::Result<usize> {
    const SQL: &str = "SELECT report_id, observed_at_ms, body, received_under IS NOT NULL FROM report_heads \
         WHERE (origin, report_id) IN (SELECT origin, report_id FROM report_heads WHERE retracted = FALSE \
         AND (expires_at_ms IS NULL OR expires_at_ms > $1) AND observed_end_ms >= $2 AND lat BETWEEN $3 AND $4 \
         AND lon BETWEEN $5 AND $6 ORDER BY observed_at_ms DESC, report_id DESC LIMIT $7) \
         ORDER BY observed_at_ms DESC, report_id DESC";
    type Row = (Uuid, i64, Json<Box<RawValue>>, bool);
    let since = query.since.map(|t| t.timestamp_millis()).unwrap_or_default();
    let b = query.bbox.context("the query has a box")?;
    let limit = i64::from(query.limit) + 1;
    let rows: Vec<Row> = match db {
        Db::Sqlite(p) => {
            // The store names the window index as this does, and plans each query anew.
            let sql = SQL.replace(
                "FROM report_heads WHERE retracted",
                "FROM report_heads INDEXED BY report_heads_by_window WHERE retracted",
            );
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .persistent(plan == Plan::Best)
                .bind(at.timestamp_millis())
                .bind(since)
                .bind(b.min_lat)
                .bind(b.max_lat)
                .bind(b.min_lon)
                .bind(b.max_lon)
                .bind(limit)
                .fetch_all(p)
                .await?
        }
        Db::Postgres(p) if plan == Plan::AsTheStore => {
            sqlx::query_as(SQL)
                .persistent(false)
                .bind(at.timestamp_millis())
                .bind(since)
                .bind(b.min_lat)
                .bind(b.max_lat)
                .bind(b.min_lon)
                .bind(b.max_lon)
                .bind(limit)
                .fetch_all(p)
                .await?
        }
        Db::Postgres(p) => {
            // The values written into the statement (numbers this program made, never input), so
            // the planner sees them as it plans, as psql's EXPLAIN would.
            let sql = SQL
                .replace("$1", &at.timestamp_millis().to_string())
                .replace("$2", &since.to_string())
                .replace("$3", &format!("{:?}", b.min_lat))
                .replace("$4", &format!("{:?}", b.max_lat))
                .replace("$5", &format!("{:?}", b.min_lon))
                .replace("$6", &format!("{:?}", b.max_lon))
                .replace("$7", &limit.to_string());
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).persistent(false).fetch_all(p).await?
        }
    };
    Ok(rows.len())
}

/// 1000 as "1k", 1000000 as "1M".
pub fn thousands(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
