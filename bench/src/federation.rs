//! Federation end to end between two nodes on loopback, the municipality (A) and its guard company
//! (B) under the Norrköping guarding agreement from `policies/`, each its own process with its own
//! database: publish-to-visible latency at a moderate rate, then throughput (reports filed at A by
//! many clients until every one is in B's picture), with the memory of both processes. "Visible"
//! means what a user of B is shown: the report's event on B's live stream (a client of it, as an
//! open console or a partner's system reads it); at the end the bench also checks that B's
//! `GET /api/v1/situation` serves A's reports. Latency stands against the floor of this run (a
//! commit, a mutual-TLS round trip, a commit), throughput against the single-row commit ceiling
//! and against publishing alone, both of this run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lagesbild::domain::agreement::Agreement;

use crate::ceilings::Ceilings;
use crate::db::Db;
use crate::events::StreamClient;
use crate::memory::{Sampler, rss};
use crate::nodes::{Backend, Database, GUARDS, MUNICIPALITY, NodeProcess, agree, guarding_agreement, introduce};
use crate::report::{Figure, Results};
use crate::workload::{Until, file_paced, file_reports, now};

const SECTION: &str = "3. Federation A -> B";
const MEMORY: &str = "6. Memory (node processes, /proc/<pid>/status)";

/// How much to send.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Reports filed at 100/s for the latency.
    pub paced_reports: usize,
    /// Reports filed as fast as the clients go, for the throughput.
    pub burst_reports: usize,
    pub clients: usize,
}

/// What this run measured that federation is judged against.
#[derive(Clone, Copy)]
pub struct Limits<'a> {
    pub ceilings: &'a Ceilings,
    /// Reports/s the same backend accepted from as many clients on a node without partners.
    pub publishing_alone: Option<f64>,
}

/// Two partner nodes with their agreement in force, and the bench's reader of B's database.
pub struct Pair {
    pub backend: Backend,
    pub a: NodeProcess,
    pub b: NodeProcess,
    pub b_db: Db,
    pub agreement: Agreement,
}

impl Pair {
    pub async fn start(http: &reqwest::Client, work: &Path, logs: &Path, backend: Backend) -> anyhow::Result<Self> {
        let dir = work.join(format!("pair-{}", backend.name()));
        let a_db = Arc::new(Database::create(backend, &dir, "a").await?);
        let b_db = Arc::new(Database::create(backend, &dir, "b").await?);
        let a = NodeProcess::start(MUNICIPALITY, &dir.join("a"), a_db, logs).await?;
        let b = NodeProcess::start(GUARDS, &dir.join("b"), b_db.clone(), logs).await?;
        introduce(http, &[&a, &b]).await?;
        let (agreement, json) = guarding_agreement()?;
        agree(http, &[&a, &b], &json).await?;
        let reader = Db::connect(&b_db.url, 2).await?;
        Ok(Self { backend, a, b, b_db: reader, agreement })
    }
}

/// Latency, throughput and memory of one pair; answers the pair for the catch-up that follows.
pub async fn run(
    results: &mut Results,
    http: &reqwest::Client,
    work: &Path,
    logs: &Path,
    backend: Backend,
    limits: Limits<'_>,
    sizes: Sizes,
) -> anyhow::Result<Pair> {
    let engine = backend.name();
    println!("  {engine}: starting A ({MUNICIPALITY}) and B ({GUARDS}), cards exchanged, agreement signed...");
    let pair = Pair::start(http, work, logs, backend).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids = [pair.a.pid(), pair.b.pid()];
    for (name, pid) in ["A", "B"].iter().zip(pids) {
        match pid.and_then(rss) {
            Some(m) => results.add(
                Figure::new(MEMORY, format!("{engine}: node {name} RSS idle"), m.resident, "MB")
                    .target("< 50 MB", |v, _| v < 50.0)
                    .note("after start, card exchange and agreement, 2 s idle"),
            ),
            None => {
                results.add(Figure::missing(MEMORY, format!("{engine}: node {name} RSS idle"), "MB", "no /proc entry"))
            }
        }
    }
    let sampler = Sampler::start(pids.iter().flatten().copied().collect());

    println!(
        "  {engine}: {} reports filed at A at 100/s, each timed until its event on B's live stream...",
        sizes.paced_reports
    );
    let watcher = StreamClient::open_at(http, &pair.b, true).await?;
    let sent = file_paced(http, &pair.a, 100.0, sizes.paced_reports).await?;
    let latencies = watcher.latencies(&sent, Duration::from_secs(30)).await;
    watcher.close();
    let label = format!("{engine}: publish-to-visible at 100 reports/s");
    let floor = limits.ceilings.latency_floor(backend);
    match (latencies.p50(), latencies.p99()) {
        (Some(p50), Some(p99)) => {
            let note =
                format!("{} of {} reports seen on B's stream; the rest not within 30 s", latencies.len(), sent.len());
            results.add(Figure::new(SECTION, format!("{label}, p50"), p50, "ms").ceiling(
                "the latency floor",
                floor,
                "ms",
            ));
            results.add(
                Figure::new(SECTION, format!("{label}, p99"), p99, "ms")
                    .ceiling("the latency floor", floor, "ms")
                    .target("<= 3x the floor of this run", |_, r| r.is_some_and(|r| r <= 3.0))
                    .note(note),
            );
        }
        _ => results.add(Figure::missing(SECTION, label, "ms", "no report became visible at B")),
    }

    println!(
        "  {engine}: {} reports filed at A by {} clients until all are on B's stream...",
        sizes.burst_reports, sizes.clients
    );
    let watcher = StreamClient::open_at(http, &pair.b, false).await?;
    let started = Instant::now();
    let filing = file_reports(http, &pair.a, sizes.clients, Until::Count(sizes.burst_reports)).await;
    let deadline = started + Duration::from_secs(300);
    let visible = loop {
        if watcher.events() >= filing.accepted {
            break Some(started.elapsed());
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let seen = watcher.events();
    watcher.close();
    let peaks = sampler.stop().await;
    let label = format!("{engine}: reports/s filed at A and visible at B");
    match visible {
        Some(elapsed) if filing.accepted > 0 => {
            let rate = filing.accepted as f64 / elapsed.as_secs_f64();
            let mut note = format!(
                "{} reports by {} clients; A accepted them at {:.0}/s (p50 {:.1} ms, p99 {:.1} ms); the last was on B's stream {:.2} s after the first was sent",
                filing.accepted,
                sizes.clients,
                filing.per_second(),
                filing.latencies.p50().unwrap_or_default(),
                filing.latencies.p99().unwrap_or_default(),
                elapsed.as_secs_f64()
            );
            if filing.failed > 0 {
                note = format!("{note}; {} refused at A: {}", filing.failed, filing.first_error.unwrap_or_default());
            }
            results.add(
                Figure::new(SECTION, format!("{label}, vs the commit ceiling"), rate, "reports/s")
                    .ceiling(format!("{engine} single-row commits"), limits.ceilings.commits(backend), "rows/s")
                    .target(">= 0.6x", |_, r| r.is_some_and(|r| r >= 0.6))
                    .note(note),
            );
            results.add(
                Figure::new(SECTION, format!("{label}, vs publishing alone"), rate, "reports/s")
                    .ceiling(
                        format!("{engine} publishing, {} clients, no partner", sizes.clients),
                        limits.publishing_alone,
                        "reports/s",
                    )
                    .target(">= 0.9x", |_, r| r.is_some_and(|r| r >= 0.9)),
            );
        }
        _ => results.add(Figure::missing(
            SECTION,
            label,
            "reports/s",
            format!(
                "not every report reached B's stream within 300 s ({} accepted at A, {seen} seen; {})",
                filing.accepted,
                filing.first_error.unwrap_or_else(|| "no error at A".into())
            ),
        )),
    }
    for ((name, pid), peak) in ["A", "B"].iter().zip(pids).zip(peaks) {
        let hwm = pid.and_then(rss).map(|m| m.peak).unwrap_or_default();
        results.add(
            Figure::new(MEMORY, format!("{engine}: node {name} RSS peak during federation"), peak, "MB")
                .target("< 250 MB", |v, _| v < 250.0)
                .note(format!("sampled every 50 ms; VmHWM over the process's life {hwm:.1} MB")),
        );
    }
    check_picture(http, &pair).await?;
    Ok(pair)
}

/// Checks through B's own API that A's reports are in B's situation picture.
async fn check_picture(http: &reqwest::Client, pair: &Pair) -> anyhow::Result<()> {
    let since = (now() - chrono::Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = format!("/api/v1/situation?origin={MUNICIPALITY}&since={since}&limit=1000");
    let page = pair.b.call(http, reqwest::Method::GET, &path, None).await?;
    let served = page["reports"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(served > 0, "B's situation picture serves none of A's reports");
    Ok(())
}
