//! `lagesbild-bench`: measures a lagesbild node against this machine's own ceilings and against a
//! peer system, in one run, on loopback (issue 9). Every figure is printed as it is measured, with
//! the ceiling it stands against, the ratio and its target, and the run ends with `report.json`
//! and `report.md` in `--out`. Nodes run as child processes of this binary (`node`, the same start
//! as `lagesbild serve`); the load generator, the ceilings and the peer run beside them. A step that
//! fails is recorded as failed and the run goes on with the next.
//!
//! ```sh
//! cargo run --release -p lagesbild-bench -- --out bench-results/ [--quick]
//! ```

mod catch_up;
mod ceilings;
mod console;
mod db;
mod events;
mod federation;
mod flood;
mod memory;
mod nodes;
mod peer;
mod publish;
mod query;
mod report;
mod scale;
mod seed;
mod soak;
mod spatial;
mod stats;
mod stream;
mod urgent;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::ceilings::Ceilings;
use crate::nodes::{Backend, Database};
use crate::report::Results;

#[derive(Debug, Parser)]
#[command(
    name = "lagesbild-bench",
    about = "Measures a lagesbild node against the machine's ceilings and a TAXII peer"
)]
struct Cli {
    /// Where report.json and report.md go (and the peer's virtualenv, `.venv`).
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Smaller sizes, for a check in under two minutes.
    #[arg(long)]
    quick: bool,
    /// Only these steps (all when not given).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Step>,
    /// Only these backends (both when not given).
    #[arg(long, value_enum, value_delimiter = ',')]
    backend: Vec<Backend>,
    /// Keep the nodes' folders and databases (in `--out`) after the run, for a closer look.
    #[arg(long)]
    keep_work: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one node as `lagesbild serve --config FILE` does (the bench starts its nodes this way).
    #[command(hide = true)]
    Node {
        #[arg(long)]
        config: PathBuf,
    },
    /// Makes refused handshakes against a node's federation port (the flood step starts it).
    #[command(hide = true)]
    FloodClient {
        #[command(flatten)]
        flood: flood::ClientArgs,
    },
    /// Runs the four-node demo in a folder (the soak starts it).
    #[command(hide = true)]
    DemoNodes {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        base_port: u16,
    },
    /// Reads a node's live streams (the stream step starts it).
    #[command(hide = true)]
    StreamClients {
        #[command(flatten)]
        clients: stream::ClientsArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Step {
    Ceilings,
    Publish,
    FanOut,
    Scale,
    Federation,
    Query,
    Peer,
    Flood,
    Stream,
    Console,
    /// Not in a run unless asked for: the four demo nodes under a steady load for ten minutes.
    Soak,
}

/// The sizes of one mode.
struct Plan {
    ceiling_seconds: f64,
    publish: publish::Sizes,
    scale: scale::Sizes,
    federation: federation::Sizes,
    catch_up: usize,
    query_sizes: &'static [usize],
    query_samples: usize,
    peer: peer::Sizes,
    flood: flood::Sizes,
    stream: stream::Sizes,
    console: console::Sizes,
    soak: soak::Sizes,
}

impl Plan {
    fn quick() -> Self {
        Self {
            ceiling_seconds: 0.5,
            publish: publish::Sizes { seconds: 1.5, clients: 16, fan_out_reports: 50 },
            scale: scale::Sizes { agreements: 500, reached: 20, reports: 100 },
            federation: federation::Sizes { paced_reports: 200, burst_reports: 2_000, clients: 16 },
            catch_up: 2_000,
            query_sizes: &[1_000, 10_000],
            query_samples: 50,
            peer: peer::Sizes {
                one_by_one: 100,
                query_at: &[500, 1_000],
                query_samples: 3,
                request_timeout: Duration::from_secs(8),
                budget: Duration::from_secs(25),
            },
            flood: flood::Sizes { handshakes: 2_000, strangers: 30, concurrency: 4, reports: 200 },
            stream: stream::Sizes { paced: 200, streams: 200, filings: 200 },
            console: console::Sizes { reports: 1_000, renders: 50, loads: 3 },
            soak: soak::Sizes { seconds: 40.0, rate: 200.0, warm_up: 10.0, sample_every: Duration::from_secs(1) },
        }
    }

    fn full() -> Self {
        Self {
            ceiling_seconds: 2.0,
            publish: publish::Sizes { seconds: 5.0, clients: 16, fan_out_reports: 300 },
            scale: scale::Sizes { agreements: 500, reached: 20, reports: 300 },
            federation: federation::Sizes { paced_reports: 1_000, burst_reports: 20_000, clients: 16 },
            catch_up: 100_000,
            query_sizes: &[1_000, 10_000, 100_000, 1_000_000],
            query_samples: 300,
            peer: peer::Sizes {
                one_by_one: 300,
                query_at: &[1_000, 2_000, 5_000],
                query_samples: 5,
                request_timeout: Duration::from_secs(15),
                budget: Duration::from_secs(150),
            },
            flood: flood::Sizes { handshakes: 10_000, strangers: 30, concurrency: 4, reports: 1_000 },
            stream: stream::Sizes { paced: 1_000, streams: 200, filings: 1_000 },
            console: console::Sizes { reports: 5_000, renders: 300, loads: 5 },
            soak: soak::Sizes { seconds: 600.0, rate: 200.0, warm_up: 120.0, sample_every: Duration::from_secs(5) },
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Some(Command::Node { config }) => nodes::serve_child(config),
        Some(Command::FloodClient { flood }) => flood::client_child(flood),
        Some(Command::StreamClients { clients }) => stream::clients_child(clients),
        Some(Command::DemoNodes { dir, base_port }) => soak::demo_child(dir, *base_port),
        None => tokio::runtime::Runtime::new()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(run(&cli))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    lagesbild::crypto::tls::install_default_provider();
    std::fs::create_dir_all(&cli.out).with_context(|| format!("cannot create {}", cli.out.display()))?;
    let work_dir = tempfile::Builder::new().prefix(".work-").tempdir_in(&cli.out)?;
    let plan = if cli.quick { Plan::quick() } else { Plan::full() };
    let wanted = |step: Step| cli.only.is_empty() || cli.only.contains(&step);
    let backends: Vec<Backend> =
        if cli.backend.is_empty() { vec![Backend::Sqlite, Backend::Postgres] } else { cli.backend.clone() };
    if backends.contains(&Backend::Postgres) {
        let dropped = Database::drop_leftovers().await?;
        if dropped > 0 {
            println!("Dropped {dropped} database(s) an earlier run left behind.");
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mode = if cli.quick { "quick" } else { "full" };
    let machine = machine(work_dir.path()).await;
    println!("lagesbild-bench, {mode} run");
    for (k, v) in &machine {
        println!("  {k}: {v}");
    }
    let at = workload::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut results = Results::new(command, mode, at, machine);
    results.note(
        "Nodes run as child processes of the bench binary (`lagesbild-bench node --config FILE`, which starts \
         them as `lagesbild serve` does: lagesbild::server::start, default workers and pool, log filter info to a \
         file); load, ceilings and the peer run in the bench process on the same 2 cores.",
    );
    let http = reqwest::Client::new();
    let http = &http;
    let work = work_dir.path().to_owned();
    let work = work.as_path();
    // The nodes' logs outlive the run's folder, for a look at what they said.
    let logs = cli.out.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    let logs = logs.as_path();
    let mut ceilings = Ceilings::default();
    let mut ours = peer::Ours::default();

    // Every run measures the ceilings, `--only` included: a ratio stands only against a ceiling
    // measured in the run that printed it.
    step("1. Ceilings");
    match ceilings::measure(&mut results, work, &backends, plan.ceiling_seconds).await {
        Ok(measured) => ceilings = measured,
        Err(e) => failed(&mut results, "ceilings", &e),
    }
    results.write(&cli.out)?;
    let mut published = std::collections::HashMap::new();
    if wanted(Step::Publish) {
        step("2. Publishing");
        for &backend in &backends {
            match publish::throughput(&mut results, http, work, logs, backend, &ceilings, plan.publish).await {
                Ok(accepted) => {
                    if backend == Backend::Sqlite {
                        ours.one_by_one = accepted.one_client;
                    }
                    published.insert(backend, accepted);
                }
                Err(e) => failed(&mut results, &format!("publishing on {}", backend.name()), &e),
            }
        }
        results.write(&cli.out)?;
    }
    if wanted(Step::FanOut) {
        step("2b. Fan-out");
        for &backend in &backends {
            if let Err(e) =
                publish::fan_out(&mut results, http, work, logs, backend, plan.publish.fan_out_reports).await
            {
                failed(&mut results, &format!("fan-out on {}", backend.name()), &e);
            }
        }
        results.write(&cli.out)?;
    }
    if wanted(Step::Scale) {
        step("2c. Scale of agreements");
        for &backend in &backends {
            if let Err(e) = scale::run(&mut results, http, work, logs, backend, plan.scale).await {
                failed(&mut results, &format!("the scale of agreements on {}", backend.name()), &e);
            }
        }
        results.write(&cli.out)?;
    }
    if wanted(Step::Federation) {
        step("3, 5, 6. Federation, memory and catch-up");
        for &backend in &backends {
            let alone = published.get(&backend).and_then(|p: &publish::Accepted| p.many_clients);
            let limits = federation::Limits { ceilings: &ceilings, publishing_alone: alone };
            match federation::run(&mut results, http, work, logs, backend, limits, plan.federation).await {
                Ok(pair) => match catch_up::run(&mut results, http, pair, plan.catch_up, &ceilings).await {
                    Ok(rate) if backend == Backend::Sqlite => ours.batched = rate,
                    Ok(_) => {}
                    Err(e) => failed(&mut results, &format!("catch-up on {}", backend.name()), &e),
                },
                Err(e) => failed(&mut results, &format!("federation on {}", backend.name()), &e),
            }
            results.write(&cli.out)?;
        }
    }
    if wanted(Step::Query) {
        step("4. Situation query");
        for &backend in &backends {
            match query::run(&mut results, http, work, logs, backend, plan.query_sizes, plan.query_samples).await {
                Ok(measured) => ours.queries.extend(measured),
                Err(e) => failed(&mut results, &format!("the situation query on {}", backend.name()), &e),
            }
            results.write(&cli.out)?;
        }
    }
    if wanted(Step::Flood) {
        step("8. A flood of refused handshakes");
        for &backend in &backends {
            if let Err(e) = flood::run(&mut results, http, work, logs, backend, plan.flood).await {
                failed(&mut results, &format!("the flood on {}", backend.name()), &e);
            }
            results.write(&cli.out)?;
        }
    }
    if wanted(Step::Stream) {
        step("9. The live stream");
        for &backend in &backends {
            if let Err(e) = stream::run(&mut results, http, work, logs, backend, plan.stream).await {
                failed(&mut results, &format!("the stream on {}", backend.name()), &e);
            }
            results.write(&cli.out)?;
        }
    }
    if wanted(Step::Console) {
        step("10. The console");
        for &backend in &backends {
            if let Err(e) = console::run(&mut results, http, work, logs, backend, plan.console).await {
                failed(&mut results, &format!("the console on {}", backend.name()), &e);
            }
            results.write(&cli.out)?;
        }
    }
    if cli.only.contains(&Step::Soak) {
        step("11. Soak");
        if let Err(e) = soak::run(&mut results, http, work, logs, plan.soak).await {
            failed(&mut results, "the soak", &e);
        }
        results.write(&cli.out)?;
    }
    if wanted(Step::Peer) {
        step("7. Peer (medallion)");
        if let Err(e) = peer::run(&mut results, &cli.out, work, plan.peer, &ours).await {
            failed(&mut results, "the peer", &e);
        }
    }
    results.duration_seconds = Some(started.elapsed().as_secs_f64());
    if cli.keep_work {
        let kept = work_dir.keep();
        println!("Kept the nodes' folders in {}", kept.display());
    }
    results.write(&cli.out)?;
    let targets: Vec<_> = results.figures.iter().filter_map(|f| f.target.as_ref()).collect();
    println!(
        "\nDone in {:.0} s: {} of {} targets met. Wrote {} and {}.",
        started.elapsed().as_secs_f64(),
        targets.iter().filter(|t| t.met).count(),
        targets.len(),
        cli.out.join("report.json").display(),
        cli.out.join("report.md").display()
    );
    Ok(())
}

fn step(name: &str) {
    println!("\n== {name}");
}

fn failed(results: &mut Results, what: &str, error: &anyhow::Error) {
    eprintln!("  {what} failed: {error:#}");
    results.note(format!("{what} failed and was not measured: {error:#}"));
}

/// What the figures were measured on.
async fn machine(work: &Path) -> Vec<(String, String)> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let memory = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get().to_string()).unwrap_or_default();
    let mut machine = vec![
        ("cores".to_owned(), cores),
        ("cpu".to_owned(), cpu),
        ("memory".to_owned(), memory),
        ("kernel".to_owned(), read("/proc/sys/kernel/osrelease").trim().to_owned()),
        (
            "build".to_owned(),
            if cfg!(debug_assertions) { "debug (figures are not meaningful)" } else { "release" }.to_owned(),
        ),
    ];
    let sqlite = format!("sqlite://{}/version.db", work.display());
    if let Ok(db) = db::Db::connect(&sqlite, 1).await {
        machine.push(("sqlite".into(), db.version().await.unwrap_or_default()));
        db.close().await;
    }
    if let Ok(db) = db::Db::connect(nodes::POSTGRES_ADMIN, 1).await {
        machine.push(("postgresql".into(), db.version().await.unwrap_or_default()));
        db.close().await;
    }
    let commit = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(commit) = commit {
        machine.push(("lagesbild commit".into(), format!("{commit} (plus uncommitted changes, if any)")));
    }
    machine
}
