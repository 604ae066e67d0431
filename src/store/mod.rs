//! Storage: one [`Store`] in front of SQLite (the embedded default) and PostgreSQL (production and
//! replicas). Each query is written once and compiled against both pools through `on_pool!`; the
//! SQL uses `$N` placeholders, which both engines accept. The store keeps and finds what the domain
//! decided; it never decides what a report's next version is or who may see it.

mod agreements;
mod alerts;
pub(crate) mod audit;
mod evaluation;
mod filing;
mod frameworks;
mod lifecycle;
mod outbox;
mod partners;
mod picture_events;
mod received;
mod release;
mod reports;
mod requests;
mod reshare;
mod sessions;
mod situation;
mod subscriptions;

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::config::{DatabaseKind, DatabaseSection};

pub use agreements::{AgreementRecord, AgreementsStamp};
pub use alerts::{Alert, AlertReceipt};
pub use audit::{AuditQuery, CheckpointRecord};
pub use frameworks::MAX_HOLDERS;
pub use lifecycle::{LifecycleDocument, LifecycleEntry, LifecycleKind, LifecycleOutcome, MAX_PENDING_REVOCATIONS};
pub use outbox::{DeliveryRound, DeliveryState, Lane, OutboxEntry, QueuedEnvelope};
pub use partners::PartnerRecord;
pub use picture_events::{EventBounds, PictureEvent};
pub use received::{DeadLetter, ReceiveOutcome, Received};
pub use release::{Hold, HoldRow};
pub use reports::ReportCount;
pub use requests::{Delivery, RequestFilter, StoredRequest, StoredStep, Taken};
pub use reshare::EndedShare;
pub use sessions::SessionRecord;
pub use subscriptions::{DueDelivery, SubscriptionRecord, WatchedChange};

/// The node's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// SQLite has one writer at a time: writers of this process queue here, in order, instead of
    /// sleeping in SQLite's busy handler and retrying (which left the CPU idle under load).
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Reports being filed, to be committed together.
    filings: std::sync::Arc<filing::FilingQueue>,
    /// Told after every write this process commits, so that a follower of the picture's events
    /// reads them at once instead of at its next poll.
    commits: std::sync::Arc<tokio::sync::Notify>,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What went wrong below the domain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Someone else wrote a newer version first.
    #[error("the report changed since the version the change was based on")]
    Conflict,
    /// A unique fact would be stated twice (the message says which).
    #[error("{0}")]
    AlreadyExists(String),
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    #[error("the database is not ready: {0}")]
    NotReady(String),
}

/// Runs `$body` with `$p` bound to whichever pool the store holds, so one piece of query code is
/// type-checked against both backends.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            crate::store::Pool::Sqlite($p) => $body,
            crate::store::Pool::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` in a write transaction bound to `$tx`, committing when it ends without error, and
/// tells [`Store::next_commit`]. SQLite takes the write lock at `BEGIN IMMEDIATE`, so concurrent
/// writers queue instead of failing midway. A PostgreSQL transaction takes the audit chain's head
/// row first: nearly every write appends to the chain, so every write takes that row, and taking
/// it before any other row gives all writers one lock order (no deadlocks between, say, an update
/// that cancels an older queued envelope and a delivery settling that envelope).
macro_rules! in_write_tx {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.pool {
            crate::store::Pool::Sqlite(pool) => {
                let _writer = $store.writer.lock().await;
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                $tx.commit().await?;
                $store.commits.notify_one();
                out
            }
            crate::store::Pool::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                crate::store::audit::hold_audit_head!($tx);
                let out = $body;
                $tx.commit().await?;
                $store.commits.notify_one();
                out
            }
        }
    };
}

pub(crate) use {in_write_tx, on_pool};

impl Store {
    /// Copies a SQLite database, while the node runs, into a new file at `to` (`VACUUM INTO`: one
    /// consistent snapshot, compacted); then checks the copy's integrity. A PostgreSQL database is
    /// the cluster's to back up: `Ok(false)`.
    pub async fn snapshot_to(&self, to: &std::path::Path) -> Result<bool, StoreError> {
        let Pool::Sqlite(pool) = &self.pool else { return Ok(false) };
        let target = to.to_str().ok_or_else(|| StoreError::Open(format!("{} is not valid UTF-8", to.display())))?;
        sqlx::query("VACUUM INTO $1").bind(target).execute(pool).await?;
        let copy = SqlitePool::connect_with(SqliteConnectOptions::new().filename(to).read_only(true)).await?;
        let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&copy).await?;
        copy.close().await;
        if check != "ok" {
            return Err(StoreError::Corrupt(format!("the copy does not pass SQLite's integrity check: {check}")));
        }
        Ok(true)
    }
}

/// A stored epoch-milliseconds time.
pub(crate) fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Connects, creating a SQLite file and its folder if needed, and applies pending migrations.
    pub async fn open(config: &DatabaseSection) -> Result<Self, StoreError> {
        let store = match DatabaseKind::of(&config.url) {
            Some(DatabaseKind::Sqlite) => Self::open_sqlite(&config.url, config.max_connections).await?,
            Some(DatabaseKind::Postgres) => Self::open_postgres(&config.url, config.max_connections).await?,
            None => return Err(StoreError::Open("database.url must start with sqlite:// or postgres://".into())),
        };
        match &store.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(store)
    }

    /// Opens a database that must exist already, as the commands that read a node's data do: a
    /// SQLite file that is not there is an error naming it, never a new empty database.
    pub async fn open_existing(config: &DatabaseSection) -> Result<Self, StoreError> {
        if DatabaseKind::of(&config.url) == Some(DatabaseKind::Sqlite) {
            let options = SqliteConnectOptions::from_str(&config.url)
                .map_err(|e| StoreError::Open(format!("database.url is not a SQLite URL: {e}")))?;
            let file = options.get_filename();
            if !file.exists() {
                return Err(StoreError::Open(format!(
                    "the database {} does not exist: check database.url (a relative path is read from beside \
                     the configuration file), or start the node once to create it",
                    file.display()
                )));
            }
        }
        Self::open(config).await
    }

    async fn open_sqlite(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Open(format!("database.url is not a SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Open(format!("cannot create the data folder {}: {e}", dir.display())))?;
        }
        // A write that SQLite rolled back by itself (a full disk) leaves the connection believing a
        // transaction is still open, and every later BEGIN on it fails. When a connection is given
        // back, its queued rollback is let through first (a ping waits behind it); one still in a
        // transaction after that is closed, never lent again.
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_release(|conn, _| {
                Box::pin(async move {
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open(format!("cannot open SQLite database {url}: {e}")))?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
            writer: Default::default(),
            filings: Default::default(),
            commits: Default::default(),
        })
    }

    async fn open_postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Open(format!("database.url is not a PostgreSQL URL: {e}")))?;
        let (host, port, database) =
            (options.get_host().to_owned(), options.get_port(), options.get_database().unwrap_or("").to_owned());
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            // The URL may hold a password: name the server, never echo the URL.
            .map_err(|e| StoreError::Open(format!("cannot connect to PostgreSQL at {host}:{port}/{database}: {e}")))?;
        Ok(Self {
            pool: Pool::Postgres(pool),
            writer: Default::default(),
            filings: Default::default(),
            commits: Default::default(),
        })
    }

    /// Waits until this process has committed a write since the last wait ended (at once if it has).
    /// Meant for one waiter, the picture's feed; writes of other replicas are not told.
    pub async fn next_commit(&self) {
        self.commits.notified().await;
    }

    pub fn kind(&self) -> DatabaseKind {
        match self.pool {
            Pool::Sqlite(_) => DatabaseKind::Sqlite,
            Pool::Postgres(_) => DatabaseKind::Postgres,
        }
    }

    /// Ready means: the database answers and every migration this build knows is applied.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let migrator = match self.pool {
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        let expected = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(p).await?
        });
        match applied {
            Some(v) if v >= expected => Ok(()),
            Some(v) => Err(StoreError::NotReady(format!("migrations applied up to {v}, this build needs {expected}"))),
            None => Err(StoreError::NotReady("no migrations applied".into())),
        }
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }
}
