//! The machine's ceilings, measured in the same run as the node so that ratios compare like with
//! like on a shared, noisy machine: Ed25519 signatures and verifications with ring on one core;
//! report-sized row inserts on SQLite (WAL, `synchronous=FULL`, through sqlx as the store uses it)
//! and on PostgreSQL, one row per commit and 100 rows per transaction; requests per second of an
//! empty actix-web handler over mutual TLS with keep-alive (the federation listener's TLS, built by
//! `lagesbild::crypto::tls`), and over plain HTTP (the user API's transport). From the same
//! measurements comes the latency floor a report's way from one node's user to another's cannot
//! go below: a single-row commit at A, one mutual-TLS round trip with a report-sized body, a
//! single-row commit at B (each the median of this run's samples).

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use lagesbild::clock::SystemClock;
use lagesbild::crypto::tls::{PeerTrust, TlsIdentity, TrustedPeers, client_config, server_config};
use lagesbild::domain::{OrgId, TlsPin};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sqlx::{Connection, Executor};

use crate::db::Db;
use crate::nodes::{Backend, Database};
use crate::report::{Figure, Results};
use crate::stats::{Latencies, Rng};
use crate::workload::{Place, content, filed, now};

const SECTION: &str = "1. Ceilings (this machine, this run)";

/// The ceilings later figures are judged against (the others stand in the report on their own);
/// `None` for one not measured in this run.
#[derive(Debug, Default, Clone)]
pub struct Ceilings {
    pub sqlite_commits: Option<f64>,
    pub sqlite_batched: Option<f64>,
    pub postgres_commits: Option<f64>,
    pub postgres_batched: Option<f64>,
    /// The median single-row commit, ms.
    pub sqlite_commit_ms: Option<f64>,
    pub postgres_commit_ms: Option<f64>,
    /// The median mutual-TLS round trip with a report-sized body over a kept-alive connection, ms.
    pub mtls_round_trip_ms: Option<f64>,
}

impl Ceilings {
    pub fn commits(&self, backend: Backend) -> Option<f64> {
        match backend {
            Backend::Sqlite => self.sqlite_commits,
            Backend::Postgres => self.postgres_commits,
        }
    }

    pub fn batched(&self, backend: Backend) -> Option<f64> {
        match backend {
            Backend::Sqlite => self.sqlite_batched,
            Backend::Postgres => self.postgres_batched,
        }
    }

    /// The latency floor of publish-to-visible between two nodes on `backend`, ms: a commit at A,
    /// a mutual-TLS round trip, a commit at B.
    pub fn latency_floor(&self, backend: Backend) -> Option<f64> {
        let commit = match backend {
            Backend::Sqlite => self.sqlite_commit_ms,
            Backend::Postgres => self.postgres_commit_ms,
        }?;
        Some(2.0 * commit + self.mtls_round_trip_ms?)
    }
}

/// Measures every ceiling for `seconds` each.
pub async fn measure(
    results: &mut Results,
    work: &Path,
    backends: &[Backend],
    seconds: f64,
) -> anyhow::Result<Ceilings> {
    let mut ceilings = Ceilings::default();
    let span = Duration::from_secs_f64(seconds);
    println!("  Ed25519 with ring, one core...");
    let (signatures, verifications) = tokio::task::spawn_blocking(move || ed25519(span)).await??;
    results.add(Figure::new(SECTION, "Ed25519 signatures (1 KiB message), one core", signatures, "/s"));
    results.add(Figure::new(SECTION, "Ed25519 verifications (1 KiB message), one core", verifications, "/s"));
    for backend in backends {
        println!("  {} inserts of a report-sized row...", backend.name());
        let db = Database::create(*backend, &work.join("ceiling"), "ceiling").await?;
        let (commits, batched, commit_ms) = inserts(&db.url, span).await?;
        let engine = backend.name();
        results.add(Figure::new(SECTION, format!("{engine}: one row per commit"), commits, "rows/s"));
        results.add(Figure::new(SECTION, format!("{engine}: 100 rows per transaction"), batched, "rows/s"));
        results.add(Figure::new(SECTION, format!("{engine}: a single-row commit, median"), commit_ms, "ms"));
        match backend {
            Backend::Sqlite => {
                (ceilings.sqlite_commits, ceilings.sqlite_batched) = (Some(commits), Some(batched));
                ceilings.sqlite_commit_ms = Some(commit_ms);
            }
            Backend::Postgres => {
                (ceilings.postgres_commits, ceilings.postgres_batched) = (Some(commits), Some(batched));
                ceilings.postgres_commit_ms = Some(commit_ms);
            }
        }
    }
    println!("  an empty actix-web handler, 16 clients with keep-alive...");
    let identity = identity(&work.join("ceiling-tls"))?;
    let mtls = empty_handler(Some(&identity), 16, span).await?;
    results.add(Figure::new(SECTION, "empty actix-web handler over mutual TLS (2 workers, 16 clients)", mtls, "req/s"));
    let plain = empty_handler(None, 16, span).await?;
    results.add(Figure::new(
        SECTION,
        "empty actix-web handler over plain HTTP (2 workers, 16 clients)",
        plain,
        "req/s",
    ));
    let round_trip = round_trip(&identity, span).await?;
    results.add(Figure::new(
        SECTION,
        "a mutual-TLS round trip with a 1 KiB body, one client, kept alive, median",
        round_trip,
        "ms",
    ));
    ceilings.mtls_round_trip_ms = Some(round_trip);
    for &backend in backends {
        if let Some(floor) = ceilings.latency_floor(backend) {
            results.add(
                Figure::new(SECTION, format!("{}: latency floor, node to node", backend.name()), floor, "ms")
                    .note("a single-row commit, a mutual-TLS round trip, a single-row commit (medians above)"),
            );
        }
    }
    Ok(ceilings)
}

fn ed25519(span: Duration) -> anyhow::Result<(f64, f64)> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("cannot make an Ed25519 key"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("cannot read the key"))?;
    let message = vec![0x5a_u8; 1024];
    let started = Instant::now();
    let mut signed = 0u64;
    let mut signature = pair.sign(&message);
    while started.elapsed() < span {
        for _ in 0..64 {
            signature = pair.sign(&message);
        }
        signed += 64;
    }
    let signatures = signed as f64 / started.elapsed().as_secs_f64();
    let public = UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref().to_vec());
    let started = Instant::now();
    let mut verified = 0u64;
    while started.elapsed() < span {
        for _ in 0..64 {
            public.verify(&message, signature.as_ref()).map_err(|_| anyhow::anyhow!("a signature did not verify"))?;
        }
        verified += 64;
    }
    Ok((signatures, verified as f64 / started.elapsed().as_secs_f64()))
}

/// Rows per second: one row per commit, then 100 rows per transaction; and the median time of a
/// single-row commit, ms.
async fn inserts(url: &str, span: Duration) -> anyhow::Result<(f64, f64, f64)> {
    let db = Db::connect(url, 1).await?;
    let origin = OrgId::parse("se-bench-ceiling").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rng = Rng::new(7);
    let mut rows = move || {
        let report = filed(&origin, content(&mut rng, now(), Place::Norrkoping), now());
        let body = serde_json::to_string(&report).unwrap_or_default();
        (report.id.as_uuid(), report.content.observed_at.timestamp_millis(), body)
    };
    let mut each = Latencies::default();
    let (single, batched) = match &db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            conn.execute(
                "CREATE TABLE rows (id BLOB PRIMARY KEY, origin TEXT NOT NULL, observed_at_ms INTEGER NOT NULL, \
                 body TEXT NOT NULL) WITHOUT ROWID",
            )
            .await?;
            let insert = "INSERT INTO rows (id, origin, observed_at_ms, body) VALUES ($1, 'se-bench', $2, $3)";
            let started = Instant::now();
            let mut single = 0u64;
            while started.elapsed() < span {
                let (id, at, body) = rows();
                let began = Instant::now();
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(insert).bind(id).bind(at).bind(body).execute(&mut *tx).await?;
                tx.commit().await?;
                each.push(began.elapsed());
                single += 1;
            }
            let single = single as f64 / started.elapsed().as_secs_f64();
            let started = Instant::now();
            let mut batched = 0u64;
            while started.elapsed() < span {
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                for _ in 0..100 {
                    let (id, at, body) = rows();
                    sqlx::query(insert).bind(id).bind(at).bind(body).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                batched += 100;
            }
            (single, batched as f64 / started.elapsed().as_secs_f64())
        }
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            conn.execute(
                "CREATE TABLE rows (id UUID PRIMARY KEY, origin TEXT NOT NULL, observed_at_ms BIGINT NOT NULL, \
                 body JSONB NOT NULL)",
            )
            .await?;
            let insert = "INSERT INTO rows (id, origin, observed_at_ms, body) VALUES ($1, 'se-bench', $2, $3::jsonb)";
            let started = Instant::now();
            let mut single = 0u64;
            while started.elapsed() < span {
                let (id, at, body) = rows();
                let began = Instant::now();
                sqlx::query(insert).bind(id).bind(at).bind(body).execute(&mut *conn).await?;
                each.push(began.elapsed());
                single += 1;
            }
            let single = single as f64 / started.elapsed().as_secs_f64();
            let started = Instant::now();
            let mut batched = 0u64;
            while started.elapsed() < span {
                let mut tx = conn.begin().await?;
                for _ in 0..100 {
                    let (id, at, body) = rows();
                    sqlx::query(insert).bind(id).bind(at).bind(body).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                batched += 100;
            }
            (single, batched as f64 / started.elapsed().as_secs_f64())
        }
    };
    db.close().await;
    Ok((single, batched, each.p50().context("no single-row commit was timed")?))
}

/// A TLS identity for the handler (both ends present it; each pins the other's key).
fn identity(dir: &Path) -> anyhow::Result<TlsIdentity> {
    std::fs::create_dir_all(dir)?;
    let org = OrgId::parse("se-bench-ceiling").map_err(|e| anyhow::anyhow!("{e}"))?;
    let at = now();
    TlsIdentity::generate(
        &org,
        &["127.0.0.1".to_owned()],
        at - chrono::Duration::hours(1),
        at + chrono::Duration::days(1),
        &dir.join("cert.pem"),
        &dir.join("key.pem"),
    )
    .context("a TLS identity for the ceiling")
}

/// The one client key the handler's listener accepts.
#[derive(Debug)]
struct OnePin(TlsPin);

impl TrustedPeers for OnePin {
    fn trusts_pin(&self, pin: &TlsPin) -> bool {
        *pin == self.0
    }

    fn trusts_org(&self, _org: &OrgId) -> bool {
        false
    }
}

/// An empty handler (GET answers nothing, POST takes a body and answers nothing) on a loopback
/// port with two workers, over mutual TLS when `tls` is given, and a client that reaches it.
struct EmptyHandler {
    handle: actix_web::dev::ServerHandle,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
    http: reqwest::Client,
    url: String,
}

impl EmptyHandler {
    fn start(tls: Option<&TlsIdentity>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = HttpServer::new(|| {
            App::new()
                .route("/", web::get().to(|| async { HttpResponse::Ok().finish() }))
                .route("/", web::post().to(|_: web::Bytes| async { HttpResponse::Ok().finish() }))
        })
        .workers(2)
        .disable_signals();
        let (server, http, url) = match tls {
            Some(identity) => {
                let peers: Arc<dyn TrustedPeers> = Arc::new(OnePin(identity.pin.clone()));
                let config = server_config(identity, &PeerTrust::Pins, peers, Arc::new(SystemClock))?;
                let org = OrgId::parse("se-bench-ceiling").map_err(|e| anyhow::anyhow!("{e}"))?;
                let client =
                    client_config(identity, &PeerTrust::Pins, &org, vec![identity.pin.clone()], Arc::new(SystemClock))?;
                let http = reqwest::Client::builder().use_preconfigured_tls(client).build()?;
                (server.listen_rustls_0_23(listener, config)?.run(), http, format!("https://{addr}/"))
            }
            None => (server.listen(listener)?.run(), reqwest::Client::new(), format!("http://{addr}/")),
        };
        let handle = server.handle();
        Ok(Self { handle, running: tokio::spawn(server), http, url })
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.running.await;
    }
}

/// Requests per second that `clients` keep-alive clients get from an empty handler, over mutual
/// TLS when `tls` is given.
async fn empty_handler(tls: Option<&TlsIdentity>, clients: usize, span: Duration) -> anyhow::Result<f64> {
    let handler = EmptyHandler::start(tls)?;
    let (http, url) = (&handler.http, &handler.url);
    // One request each first, so the handshakes are not counted.
    for _ in 0..clients {
        http.get(url).send().await?.error_for_status()?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, done) = (http.clone(), url.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < span {
                if let Ok(r) = http.get(&url).send().await
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    handler.stop().await;
    Ok(rate)
}

/// The median time of one POST with a 1 KiB body over mutual TLS, one client, kept alive, ms.
async fn round_trip(identity: &TlsIdentity, span: Duration) -> anyhow::Result<f64> {
    let handler = EmptyHandler::start(Some(identity))?;
    let body = vec![b'x'; 1024];
    handler.http.get(&handler.url).send().await?.error_for_status()?;
    let mut each = Latencies::default();
    let started = Instant::now();
    while started.elapsed() < span {
        let began = Instant::now();
        handler.http.post(&handler.url).body(body.clone()).send().await?.error_for_status()?.bytes().await?;
        each.push(began.elapsed());
    }
    handler.stop().await;
    each.p50().context("no round trip was timed")
}
