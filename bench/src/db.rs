//! The bench's own connection to a node's database, beside the node: to watch what a partner
//! received (the rows its situation picture reads), and to run the situation query's SQL raw. It
//! reads only, except for the seeding in `seed.rs`, which writes rows the way the store does.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

/// A pool on a node's database.
#[derive(Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Connects to `url` with the node's own SQLite settings (WAL, `synchronous=FULL`, a busy
    /// timeout), with at most `connections` connections.
    pub async fn connect(url: &str, connections: u32) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new().max_connections(connections).connect_with(options).await?;
            Ok(Db::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new().max_connections(connections).connect(url).await?;
            Ok(Db::Postgres(pool))
        }
    }

    /// How many received reports the database holds (the rows of partners' reports in the picture).
    pub async fn received_count(&self) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM report_heads WHERE received_under IS NOT NULL";
        Ok(match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        })
    }

    /// Which of `ids`, reports of `origin`, are received reports here now (a head is keyed by
    /// origin and id).
    pub async fn received_among(&self, origin: &str, ids: &[Uuid]) -> anyhow::Result<Vec<Uuid>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (2..=ids.len() + 1).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT report_id FROM report_heads WHERE origin = $1 AND report_id IN ({}) AND received_under IS NOT NULL",
            marks.join(", ")
        );
        Ok(match self {
            Db::Sqlite(p) => {
                let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(origin);
                for id in ids {
                    q = q.bind(*id);
                }
                q.fetch_all(p).await?
            }
            Db::Postgres(p) => {
                let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(origin);
                for id in ids {
                    q = q.bind(*id);
                }
                q.fetch_all(p).await?
            }
        })
    }

    /// The database engine's version, for the report.
    pub async fn version(&self) -> anyhow::Result<String> {
        Ok(match self {
            Db::Sqlite(p) => {
                format!("SQLite {}", sqlx::query_scalar::<_, String>("SELECT sqlite_version()").fetch_one(p).await?)
            }
            Db::Postgres(p) => {
                let v: String = sqlx::query_scalar("SHOW server_version").fetch_one(p).await?;
                format!("PostgreSQL {v}")
            }
        })
    }

    /// Runs a statement with no parameters (ANALYZE, say).
    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Db::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
            Db::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        }
        .context("a statement on the node's database")
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}
