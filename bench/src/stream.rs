//! The live stream (issue 16): publish-to-event at 100 reports/s, for a stream client on the node
//! that files and for one on its partner (the report shared under the guarding agreement, then an
//! event there); and what 200 open streams cost: the filer's p99 with them against the same node
//! without them, in the same run, and the node's memory. The 200 clients run in a child process of
//! this binary at the lowest CPU priority (`nice -n 19`), as the flood's client does: partners'
//! systems read their streams on their own machines, and what is measured is what serving the
//! streams costs the node, not what reading them costs the load generator on the same two cores.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::events::StreamClient;
use crate::federation::Pair;
use crate::memory::rss;
use crate::nodes::{Backend, Database, MUNICIPALITY, NodeProcess};
use crate::report::{Figure, Results};
use crate::workload::{Until, file_paced, file_reports, start_at_lowest_priority};

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
    let sent = file_paced(http, &pair.a, 100.0, sizes.paced).await?;
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
