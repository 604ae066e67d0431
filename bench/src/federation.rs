//! Federation end to end between two nodes on loopback, the municipality (A) and its guard company
//! (B) under the Norrköping guarding agreement from `policies/`, each its own process with its own
//! database: publish-to-visible latency at a moderate rate, then throughput (reports filed at A by
//! many clients until every one is in B's picture), with the memory of both processes. "Visible"
//! means the row B's situation query reads is committed in B's database: the bench watches B's
//! database directly, every millisecond, rather than loading B's API with polls; at the end it
//! checks that B's `GET /api/v1/situation` serves A's reports.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use lagesbild::domain::agreement::Agreement;
use uuid::Uuid;

use crate::ceilings::Ceilings;
use crate::db::Db;
use crate::memory::{Sampler, rss};
use crate::nodes::{Backend, Database, GUARDS, MUNICIPALITY, NodeProcess, agree, guarding_agreement, introduce};
use crate::report::{Figure, Results};
use crate::stats::{Latencies, Rng};
use crate::workload::{Place, Until, content, file_reports, now};

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
    ceilings: &Ceilings,
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
        "  {engine}: {} reports filed at A at 100/s, each timed until it is in B's picture...",
        sizes.paced_reports
    );
    let (latencies, lost) = paced(http, &pair, 100.0, sizes.paced_reports).await?;
    let label = format!("{engine}: publish-to-visible at 100 reports/s");
    match (latencies.p50(), latencies.p99()) {
        (Some(p50), Some(p99)) => {
            let note = format!("{} reports; {lost} never became visible within 30 s", latencies.len());
            results.add(Figure::new(SECTION, format!("{label}, p50"), p50, "ms").target("< 10 ms", |v, _| v < 10.0));
            results.add(
                Figure::new(SECTION, format!("{label}, p99"), p99, "ms").target("< 50 ms", |v, _| v < 50.0).note(note),
            );
        }
        _ => results.add(Figure::missing(SECTION, label, "ms", "no report became visible at B")),
    }

    println!(
        "  {engine}: {} reports filed at A by {} clients until all are in B's picture...",
        sizes.burst_reports, sizes.clients
    );
    let base = pair.b_db.received_count().await?;
    let target = Arc::new(AtomicI64::new(i64::MAX));
    let started = Instant::now();
    let watcher = {
        let (db, target) = (pair.b_db.clone(), target.clone());
        tokio::spawn(async move {
            let deadline = started + Duration::from_secs(300);
            loop {
                if let Ok(count) = db.received_count().await
                    && count >= target.load(Ordering::Relaxed)
                {
                    return Some(started.elapsed());
                }
                if Instant::now() > deadline {
                    return None;
                }
                // Counting scans what B received: rarely while A is still being filed at, often once
                // the last report is filed and only its delivery is awaited.
                let known = target.load(Ordering::Relaxed) != i64::MAX;
                tokio::time::sleep(Duration::from_millis(if known { 10 } else { 200 })).await;
            }
        })
    };
    let filing = file_reports(http, &pair.a, sizes.clients, Until::Count(sizes.burst_reports)).await;
    target.store(base + filing.accepted as i64, Ordering::Relaxed);
    let visible = watcher.await.ok().flatten();
    let peaks = sampler.stop().await;
    let label = format!("{engine}: reports/s filed at A and visible at B");
    match visible {
        Some(elapsed) if filing.accepted > 0 => {
            let rate = filing.accepted as f64 / elapsed.as_secs_f64();
            let mut figure = Figure::new(SECTION, label, rate, "reports/s")
                .ceiling(format!("{engine} single-row commits"), ceilings.commits(backend), "rows/s")
                .target(">= 4 000/s and >= 50 % of the ceiling", |v, r| v >= 4000.0 && r.is_some_and(|r| r >= 0.5))
                .note(format!(
                    "{} reports by {} clients; A accepted them at {:.0}/s (p50 {:.1} ms, p99 {:.1} ms); the last was visible at B {:.2} s after the first was sent",
                    filing.accepted,
                    sizes.clients,
                    filing.per_second(),
                    filing.latencies.p50().unwrap_or_default(),
                    filing.latencies.p99().unwrap_or_default(),
                    elapsed.as_secs_f64()
                ));
            if filing.failed > 0 {
                figure =
                    figure.note(format!("{} refused at A: {}", filing.failed, filing.first_error.unwrap_or_default()));
            }
            results.add(figure);
        }
        _ => results.add(Figure::missing(
            SECTION,
            label,
            "reports/s",
            format!(
                "not every report reached B within 300 s ({} accepted at A; {})",
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

/// Files `count` reports at A, `rate` a second, each in its own request so a slow one does not hold
/// back the next; answers how long each took from being sent to being visible at B, and how many
/// never became visible.
async fn paced(http: &reqwest::Client, pair: &Pair, rate: f64, count: usize) -> anyhow::Result<(Latencies, usize)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Uuid, Instant)>();
    let url = pair.a.url("/api/v1/reports");
    let token = pair.a.token.clone();
    let http = http.clone();
    let filer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let mut rng = Rng::new(100);
        let mut requests = Vec::new();
        for _ in 0..count {
            tick.tick().await;
            let body = content(&mut rng, now() - chrono::Duration::minutes(30), Place::Norrkoping);
            let (http, url, token, tx) = (http.clone(), url.clone(), token.clone(), tx.clone());
            requests.push(tokio::spawn(async move {
                let sent = Instant::now();
                let response = http.post(&url).bearer_auth(&token).json(&body).send().await.ok()?;
                let location = response.headers().get("location")?.to_str().ok()?.to_owned();
                let id = Uuid::parse_str(location.rsplit('/').next()?).ok()?;
                tx.send((id, sent)).ok()
            }));
        }
        futures_util::future::join_all(requests).await
    });
    let mut pending: HashMap<Uuid, Instant> = HashMap::new();
    let mut latencies = Latencies::default();
    let mut filing_done = false;
    let mut last_progress = Instant::now();
    loop {
        loop {
            match rx.try_recv() {
                Ok((id, sent)) => {
                    pending.insert(id, sent);
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    filing_done = true;
                    break;
                }
            }
        }
        if !pending.is_empty() {
            let ids: Vec<Uuid> = pending.keys().copied().collect();
            let seen = pair.b_db.received_among(pair.a.org.as_str(), &ids).await?;
            let at = Instant::now();
            for id in seen {
                if let Some(sent) = pending.remove(&id) {
                    latencies.push(at - sent);
                    last_progress = at;
                }
            }
        }
        if filing_done && pending.is_empty() {
            break;
        }
        if filing_done && last_progress.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    filer.await.context("the filing task")?;
    Ok((latencies, pending.len()))
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
