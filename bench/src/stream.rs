//! The live stream (issue 16): publish-to-event at 100 reports/s, for a stream client on the node
//! that files and for one on its partner (the report shared under the guarding agreement, then an
//! event there); and what 200 open streams cost: the filer's p99 with them against the same node
//! without them, in the same run, and the node's memory. The 200 clients run in a child process of
//! this binary at the lowest CPU priority (`nice -n 19`), as the flood's client does: partners'
//! systems read their streams on their own machines, and what is measured is what serving the
//! streams costs the node, not what reading them costs the load generator on the same two cores.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::federation::Pair;
use crate::memory::rss;
use crate::nodes::{Backend, Database, MUNICIPALITY, NodeProcess};
use crate::report::{Figure, Results};
use crate::stats::{Latencies, Rng};
use crate::workload::{Place, Until, content, file_reports, now, start_at_lowest_priority};

const SECTION: &str = "9. The live stream (GET /api/v1/situation/stream)";

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Reports filed at 100/s for publish-to-event.
    pub paced: usize,
    /// Streams open at once.
    pub streams: usize,
    /// Reports filed one at a time, without and with the streams.
    pub filings: usize,
}

pub async fn run(
    results: &mut Results,
    http: &reqwest::Client,
    work: &Path,
    logs: &Path,
    backend: Backend,
    sizes: Sizes,
) -> anyhow::Result<()> {
    let engine = backend.name();
    println!("  {engine}: {} reports at 100/s, timed until their event on A's stream and on B's...", sizes.paced);
    let pair = Pair::start(http, &work.join("stream"), logs, backend).await?;
    let arrivals =
        [StreamClient::open_at(http, &pair.a, true).await?, StreamClient::open_at(http, &pair.b, true).await?];
    let sent = paced(http, &pair.a, sizes.paced).await?;
    for (client, place) in arrivals.iter().zip(["the same node", "the partner node"]) {
        let latencies = client.latencies(&sent, Duration::from_secs(30)).await;
        let label = format!("{engine}: publish-to-event at 100 reports/s, a stream client on {place}");
        match (latencies.p50(), latencies.p99()) {
            (Some(p50), Some(p99)) => {
                let note = format!("{} of {} reports seen as events", latencies.len(), sent.len());
                results.add(Figure::new(SECTION, format!("{label}, p50"), p50, "ms"));
                results.add(Figure::new(SECTION, format!("{label}, p99"), p99, "ms").note(note));
            }
            _ => results.add(Figure::missing(SECTION, label, "ms", "no event arrived")),
        }
    }
    for client in arrivals {
        client.close();
    }
    drop(pair);

    println!(
        "  {engine}: {} reports filed one at a time, then again with {} streams open...",
        sizes.filings, sizes.streams
    );
    let dir = work.join(format!("streams-{engine}"));
    let db = Arc::new(Database::create(backend, &dir, "streams").await?);
    let mut node = NodeProcess::start(MUNICIPALITY, &dir.join("node"), db, logs).await?;
    let without = file_reports(http, &node, 1, Until::Count(sizes.filings)).await;
    let rss_before = node.pid().and_then(rss).map(|m| m.resident);
    let clients = start_clients(&node, sizes.streams, sizes.filings)?;
    let with = file_reports(http, &node, 1, Until::Count(sizes.filings)).await;
    let rss_with = node.pid().and_then(rss).map(|m| m.resident);
    // Every stream sees every filing.
    let output = tokio::task::spawn_blocking(move || clients.wait_with_output()).await??;
    anyhow::ensure!(output.status.success(), "the stream clients failed: {}", String::from_utf8_lossy(&output.stderr));
    let fewest: usize = String::from_utf8_lossy(&output.stdout).trim().parse().context("the stream clients' count")?;
    node.stop().await?;
    let (Some(p99_without), Some(p99_with)) = (without.latencies.p99(), with.latencies.p99()) else {
        anyhow::bail!("filing failed: {}", with.first_error.or(without.first_error).unwrap_or_default());
    };
    results.add(
        Figure::new(SECTION, format!("{engine}: filing p99 with {} streams open", sizes.streams), p99_with, "ms")
            .ceiling("filing p99 with none, this run", Some(p99_without), "ms")
            .target("< 1.2x (the streams cost the filer under 20 %)", |_, ratio| ratio.is_some_and(|r| r < 1.2))
            .note(format!(
                "{} reports filed one at a time each way; every stream saw at least {fewest} of the {} filed with it open",
                sizes.filings, with.accepted
            )),
    );
    if let (Some(before), Some(with)) = (rss_before, rss_with) {
        results.add(
            Figure::new(SECTION, format!("{engine}: node RSS with {} streams open", sizes.streams), with, "MB")
                .ceiling("the same node with none", Some(before), "MB")
                .target("< 250 MB", |v, _| v < 250.0),
        );
    }
    Ok(())
}

/// One client of a node's stream, counting the `filed` events it reads and when each report's came.
struct StreamClient {
    arrivals: Arc<std::sync::Mutex<HashMap<String, Instant>>>,
    events: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamClient {
    async fn open_at(http: &reqwest::Client, node: &NodeProcess, timed: bool) -> anyhow::Result<Self> {
        Self::open(http, &node.api, &node.token, timed).await
    }

    /// Opens the stream of the node whose API is at `api`; `timed` clients note when each report's
    /// event came (the others only count them).
    async fn open(http: &reqwest::Client, api: &str, token: &str, timed: bool) -> anyhow::Result<Self> {
        let response = http
            .get(format!("{api}/api/v1/situation/stream"))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("the stream at {api}"))?;
        anyhow::ensure!(response.status().is_success(), "the stream at {api} answered {}", response.status());
        let arrivals = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let events = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (arrivals, events, stop) = (arrivals.clone(), events.clone(), stop.clone());
            tokio::spawn(async move {
                let mut response = response;
                let mut buffer = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(Some(chunk)) = response.chunk().await else { return };
                    let at = Instant::now();
                    buffer.extend_from_slice(&chunk);
                    // Each event is cut off where it ends, and the buffer moved once per chunk: a
                    // hundred events in one chunk cost one pass, not a hundred.
                    let mut start = 0;
                    while let Some(end) = buffer[start..].windows(2).position(|w| w == b"\n\n") {
                        let block = &buffer[start..start + end];
                        start += end + 2;
                        if !is_filed(block) {
                            continue;
                        }
                        events.fetch_add(1, Ordering::Relaxed);
                        if timed
                            && let Some(id) = report_id(block)
                            && let Ok(mut arrivals) = arrivals.lock()
                        {
                            arrivals.insert(id, at);
                        }
                    }
                    buffer.drain(..start);
                }
            })
        };
        Ok(Self { arrivals, events, stop, task })
    }

    fn events(&self) -> usize {
        self.events.load(Ordering::Relaxed)
    }

    /// How long after being sent each report's event came, waiting up to `patience` for the last.
    async fn latencies(&self, sent: &HashMap<String, Instant>, patience: Duration) -> Latencies {
        let deadline = Instant::now() + patience;
        loop {
            let seen = self.arrivals.lock().map(|a| sent.keys().filter(|id| a.contains_key(*id)).count()).unwrap_or(0);
            if seen == sent.len() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut latencies = Latencies::default();
        if let Ok(arrivals) = self.arrivals.lock() {
            for (id, at) in sent {
                if let Some(arrived) = arrivals.get(id) {
                    latencies.push(arrived.saturating_duration_since(*at));
                }
            }
        }
        latencies
    }

    fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
    }
}

/// What the stream clients' process is told.
#[derive(Debug, clap::Args)]
pub struct ClientsArgs {
    /// The node's API.
    #[arg(long)]
    api: String,
    #[arg(long)]
    token: String,
    /// Streams to open.
    #[arg(long)]
    streams: usize,
    /// Filings each stream waits for.
    #[arg(long)]
    expect: usize,
}

/// Starts this binary's stream clients at the lowest CPU priority, and waits until their streams
/// are open.
fn start_clients(node: &NodeProcess, streams: usize, expect: usize) -> anyhow::Result<std::process::Child> {
    let flags = [
        ("--api", node.api.clone()),
        ("--token", node.token.clone()),
        ("--streams", streams.to_string()),
        ("--expect", expect.to_string()),
    ];
    let mut child = start_at_lowest_priority("stream-clients", &flags, "the stream clients")?;
    let mut ready = String::new();
    if let Some(stdout) = child.stdout.as_mut() {
        BufReader::new(stdout).read_line(&mut ready)?;
    }
    anyhow::ensure!(ready.trim() == "open", "the stream clients did not open their streams");
    Ok(child)
}

/// The stream clients: opens the streams, says `open`, and once every stream has seen `expect`
/// filings (or a minute has passed) prints the fewest any stream saw.
pub fn clients_child(args: &ClientsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let mut clients = Vec::new();
        for _ in 0..args.streams {
            clients.push(StreamClient::open(&http, &args.api, &args.token, false).await?);
        }
        println!("open");
        let deadline = Instant::now() + Duration::from_secs(60);
        while clients.iter().any(|c| c.events() < args.expect) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("{}", clients.iter().map(StreamClient::events).min().unwrap_or_default());
        for client in clients {
            client.close();
        }
        Ok(())
    })
}

/// Whether an event is a `filed` one: its lines are `id`, `event`, `data`, in that order.
fn is_filed(block: &[u8]) -> bool {
    let second = block.iter().position(|b| *b == b'\n').map_or(&[][..], |n| &block[n + 1..]);
    block.starts_with(b"id: ") && second.starts_with(b"event: filed\n")
}

/// The id of the report an event names.
fn report_id(block: &[u8]) -> Option<String> {
    let block = std::str::from_utf8(block).ok()?;
    let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    value["id"].as_str().map(str::to_owned)
}

/// Files `count` reports at `node`, 100 a second, each in its own request; answers when each was
/// sent, by the id the node gave it.
async fn paced(http: &reqwest::Client, node: &NodeProcess, count: usize) -> anyhow::Result<HashMap<String, Instant>> {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut rng = Rng::new(160);
    let mut requests = Vec::new();
    for _ in 0..count {
        tick.tick().await;
        let body = content(&mut rng, now() - chrono::Duration::minutes(30), Place::Norrkoping);
        let (http, url, token) = (http.clone(), node.url("/api/v1/reports"), node.token.clone());
        requests.push(tokio::spawn(async move {
            let sent = Instant::now();
            let filed: serde_json::Value =
                http.post(&url).bearer_auth(&token).json(&body).send().await.ok()?.json().await.ok()?;
            Some((filed["id"].as_str()?.to_owned(), sent))
        }));
    }
    let mut sent = HashMap::new();
    for request in futures_util::future::join_all(requests).await {
        if let Ok(Some((id, at))) = request {
            sent.insert(id, at);
        }
    }
    anyhow::ensure!(!sent.is_empty(), "no report was filed");
    Ok(sent)
}
