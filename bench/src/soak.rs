//! The soak (issue 20): the four demo nodes, exactly as `lagesbild demo` runs them (one process,
//! four nodes on SQLite, both Norrköping agreements in force), under a steady mix of changes
//! (new reports, updates and retractions, spread over the four nodes' APIs) for a long while. A
//! sampler reads, every few seconds, the process's resident memory and open files, the size of
//! the four databases, and each node's `/metrics` (envelopes queued, envelopes refused, answers
//! of 5xx). After a warm-up the memory, the open files and the growth of the databases per change
//! must stay flat; once the load stops every queue must drain; and nothing may fail anywhere.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lagesbild::cli::demo::DemoNode;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::memory::rss;
use crate::report::{Figure, Results};
use crate::stats::Rng;
use crate::workload::{Place, content, now};

const SECTION: &str = "11. Soak: the four demo nodes under a steady load";

/// How long and how hard.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub seconds: f64,
    /// Changes a second, over the four nodes.
    pub rate: f64,
    /// Seconds at the start that the flatness checks leave out.
    pub warm_up: f64,
    pub sample_every: Duration,
}

/// What the sampler saw at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    seconds: f64,
    rss_mb: f64,
    open_files: f64,
    db_bytes: f64,
    changes: f64,
    queued: f64,
    dead_letters: f64,
    server_errors: f64,
}

/// Changes made so far and what went wrong.
#[derive(Debug, Default)]
struct Tally {
    filed: usize,
    updated: usize,
    retracted: usize,
    failed: usize,
    first_error: Option<String>,
}

impl Tally {
    fn changes(&self) -> usize {
        self.filed + self.updated + self.retracted
    }
}

/// The live reports of each node the load may update or retract: (id, version).
type Live = Arc<Mutex<Vec<Vec<(String, u32)>>>>;

/// The most live reports per node the load keeps in hand (older ones simply stay in the picture).
const LIVE_PER_NODE: usize = 500;
/// The most changes in flight at once; past it the load falls behind its rate (and says so).
const IN_FLIGHT: usize = 64;

pub async fn run(
    results: &mut Results,
    http: &reqwest::Client,
    work: &Path,
    logs: &Path,
    sizes: Sizes,
) -> anyhow::Result<()> {
    let dir = work.join("soak");
    println!("  starting the four demo nodes (`lagesbild demo`, SQLite) and setting up their partnership...");
    let demo = Demo::start(&dir, logs).await?;
    let pid = demo.pid()?;
    println!(
        "  {:.0} changes/s over {} nodes for {:.0} s (warm-up {:.0} s), sampled every {:.0} s...",
        sizes.rate,
        demo.nodes.len(),
        sizes.seconds,
        sizes.warm_up,
        sizes.sample_every.as_secs_f64()
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let load = tokio::spawn(load(http.clone(), demo.nodes.clone(), sizes, tally.clone()));
    let mut samples = Vec::new();
    let mut next_print = Duration::ZERO;
    while !load.is_finished() {
        let sample = sample(http, &demo, pid, started, &tally).await?;
        if started.elapsed() >= next_print {
            println!(
                "    {:>4.0} s: {:.0} changes, RSS {:.1} MB, {:.0} open files, databases {:.1} MB, {:.0} envelopes queued",
                sample.seconds,
                sample.changes,
                sample.rss_mb,
                sample.open_files,
                sample.db_bytes / 1e6,
                sample.queued
            );
            next_print += Duration::from_secs(60).min(Duration::from_secs_f64(sizes.seconds / 5.0));
        }
        samples.push(sample);
        tokio::time::sleep(sizes.sample_every).await;
    }
    let load_time = load.await.context("the load")?;
    let stopped = Instant::now();
    println!("  load stopped; waiting for every queue to drain...");
    let drained = loop {
        let last = sample(http, &demo, pid, started, &tally).await?;
        samples.push(last);
        if last.queued == 0.0 {
            break Some(stopped.elapsed());
        }
        if stopped.elapsed() > Duration::from_secs(300) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let tally = std::mem::take(&mut *tally.lock().map_err(|_| anyhow::anyhow!("the tally's lock"))?);
    record(results, &samples, &tally, sizes, load_time, drained);
    Ok(())
}

/// Makes changes at `sizes.rate` a second over the nodes until `sizes.seconds` have passed; answers
/// how long it ran.
async fn load(http: reqwest::Client, nodes: Vec<DemoNode>, sizes: Sizes, tally: Arc<Mutex<Tally>>) -> Duration {
    let live: Live = Arc::new(Mutex::new(vec![Vec::new(); nodes.len()]));
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / sizes.rate));
    let mut rng = Rng::new(0x50A4);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    while started.elapsed().as_secs_f64() < sizes.seconds {
        tick.tick().await;
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let index = rng.below(nodes.len());
        let roll = rng.unit();
        let picked = {
            let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
            let mine = &mut live[index];
            (roll < 0.35 && !mine.is_empty()).then(|| {
                let at = rng.below(mine.len());
                mine.swap_remove(at)
            })
        };
        let change = match picked {
            Some((id, version)) if roll < 0.25 => Change::Update(id, version),
            Some((id, version)) => Change::Retract(id, version),
            None => Change::File,
        };
        let body = serde_json::to_value(content(&mut rng, now() - chrono::Duration::minutes(20), Place::Norrkoping))
            .unwrap_or_default();
        let (http, node, live, tally) = (http.clone(), nodes[index].clone(), live.clone(), tally.clone());
        tasks.spawn(async move {
            let outcome = change.make(&http, &node, &body).await;
            let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
            match outcome {
                Ok(kept) => {
                    match change {
                        Change::File => tally.filed += 1,
                        Change::Update(..) => tally.updated += 1,
                        Change::Retract(..) => tally.retracted += 1,
                    }
                    if let Some(kept) = kept {
                        let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
                        let mine = &mut live[index];
                        if mine.len() >= LIVE_PER_NODE {
                            mine.swap_remove(0);
                        }
                        mine.push(kept);
                    }
                }
                Err(e) => {
                    tally.failed += 1;
                    tally.first_error.get_or_insert(format!("{}: {e:#}", node.org_id));
                }
            }
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
    }
    let elapsed = started.elapsed();
    while tasks.join_next().await.is_some() {}
    elapsed
}

/// One change the load makes at a node.
enum Change {
    File,
    Update(String, u32),
    Retract(String, u32),
}

impl Change {
    /// Makes the change; answers the report's id and new version if it stays live.
    async fn make(
        &self,
        http: &reqwest::Client,
        node: &DemoNode,
        body: &Value,
    ) -> anyhow::Result<Option<(String, u32)>> {
        let api = &node.api_url;
        let request = match self {
            Change::File => http.post(format!("{api}/api/v1/reports")).json(body),
            Change::Update(id, version) => {
                http.put(format!("{api}/api/v1/reports/{id}")).header("If-Match", format!("\"{version}\"")).json(body)
            }
            Change::Retract(id, version) => {
                http.post(format!("{api}/api/v1/reports/{id}/retract")).header("If-Match", format!("\"{version}\""))
            }
        };
        let response = request.bearer_auth(&node.token).timeout(Duration::from_secs(30)).send().await?;
        let status = response.status();
        let text = response.text().await?;
        let expected = if matches!(self, Change::File) { StatusCode::CREATED } else { StatusCode::OK };
        if status != expected {
            bail!("{status}: {}", text.chars().take(300).collect::<String>());
        }
        if matches!(self, Change::Retract(..)) {
            return Ok(None);
        }
        let report: Value = serde_json::from_str(&text)?;
        let id = report["id"].as_str().context("no id in the stored report")?.to_owned();
        let version = report["version"].as_u64().context("no version in the stored report")?;
        Ok(Some((id, u32::try_from(version)?)))
    }
}

/// Reads the process, its databases and every node's metrics.
async fn sample(
    http: &reqwest::Client,
    demo: &Demo,
    pid: u32,
    started: Instant,
    tally: &Mutex<Tally>,
) -> anyhow::Result<Sample> {
    let mut sample = Sample { seconds: started.elapsed().as_secs_f64(), ..Sample::default() };
    sample.rss_mb = rss(pid).map(|m| m.resident).context("the demo process has no /proc entry")?;
    sample.open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as f64;
    sample.db_bytes = database_bytes(&demo.dir, &demo.nodes);
    for node in &demo.nodes {
        let text = http
            .get(format!("{}/metrics", node.api_url))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("the metrics of {}", node.org_id))?
            .text()
            .await?;
        sample.queued += metric_sum(&text, "lagesbild_outbox_queued", |_| true);
        sample.dead_letters += metric_sum(&text, "lagesbild_dead_letters_total", |_| true);
        sample.server_errors +=
            metric_sum(&text, "lagesbild_http_requests_total", |labels| labels.contains("status=\"5"));
    }
    sample.changes = tally.lock().map(|t| t.changes()).unwrap_or_default() as f64;
    Ok(sample)
}

/// The sum of one metric's series (OpenMetrics text) whose labels pass `keep`.
fn metric_sum(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && keep(labels)).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The bytes of the four nodes' SQLite files (main, write-ahead log and shared memory).
fn database_bytes(dir: &Path, nodes: &[DemoNode]) -> f64 {
    nodes
        .iter()
        .flat_map(|node| std::fs::read_dir(dir.join(&node.org_id)).into_iter().flatten().flatten())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("node.db"))
        .filter_map(|entry| entry.metadata().ok())
        .map(|m| m.len() as f64)
        .sum()
}

/// Turns the samples into the step's figures.
fn record(
    results: &mut Results,
    samples: &[Sample],
    tally: &Tally,
    sizes: Sizes,
    ran: Duration,
    drained: Option<Duration>,
) {
    let achieved = tally.changes() as f64 / ran.as_secs_f64().max(1e-9);
    results.add(
        Figure::new(SECTION, "changes/s made over the four nodes", achieved, "changes/s")
            .target(format!(">= 95 % of the {:.0}/s asked for", sizes.rate), |v, _| v >= 0.95 * sizes.rate)
            .note(format!(
                "{} filed, {} updated, {} retracted in {:.0} s",
                tally.filed,
                tally.updated,
                tally.retracted,
                ran.as_secs_f64()
            )),
    );
    let last = samples.last().copied().unwrap_or_default();
    let errors = tally.failed as f64 + last.dead_letters + last.server_errors;
    let mut figure = Figure::new(SECTION, "errors", errors, "errors").target("0", |v, _| v == 0.0).note(format!(
        "{} changes refused at the API, {:.0} envelopes refused into dead letters, {:.0} answers of 5xx",
        tally.failed, last.dead_letters, last.server_errors
    ));
    if let Some(first) = &tally.first_error {
        figure = figure.note(format!("first refusal: {first}"));
    }
    results.add(figure);
    match drained {
        Some(after) => results.add(
            Figure::new(SECTION, "every queue drained after the load stopped", after.as_secs_f64(), "s")
                .target("< 60 s", |v, _| v < 60.0)
                .note(format!(
                    "most envelopes queued at once during the load: {:.0}",
                    samples.iter().map(|s| s.queued).fold(0.0, f64::max)
                )),
        ),
        None => results.add(Figure::missing(
            SECTION,
            "every queue drained after the load stopped",
            "s",
            format!("{:.0} envelopes were still queued 300 s after the load stopped", last.queued),
        )),
    }
    let steady: Vec<Sample> =
        samples.iter().copied().filter(|s| s.seconds >= sizes.warm_up && s.seconds <= sizes.seconds).collect();
    if steady.len() < 4 {
        results.add(Figure::missing(SECTION, "flatness after warm-up", "x", "fewer than 4 samples after the warm-up"));
        return;
    }
    let (first, second) = steady.split_at(steady.len() / 2);
    let mean = |part: &[Sample], of: fn(&Sample) -> f64| part.iter().map(of).sum::<f64>() / part.len() as f64;
    let flat = |label: &str, of: fn(&Sample) -> f64, unit: &str| {
        let (early, late) = (mean(first, of), mean(second, of));
        Figure::new(
            SECTION,
            format!("{label}, second half of the steady state vs the first"),
            late / early.max(1e-9),
            "x",
        )
        .target("<= 1.10x", |v, _| v <= 1.10)
        .note(format!(
            "means {early:.1} and {late:.1} {unit}, {} samples after {:.0} s of warm-up",
            steady.len(),
            sizes.warm_up
        ))
    };
    results.add(flat("RSS of the demo process", |s| s.rss_mb, "MB"));
    results.add(flat("open files of the demo process", |s| s.open_files, "files"));
    // The databases hold every version ever made, so they grow with the changes; what must stay
    // flat is what each change costs (an outbox or a log that is never emptied would raise it).
    let per_change = |part: &[Sample]| -> Option<f64> {
        let (a, b) = (part.first()?, part.last()?);
        (b.changes > a.changes).then(|| (b.db_bytes - a.db_bytes) / (b.changes - a.changes))
    };
    match (per_change(first), per_change(second)) {
        (Some(early), Some(late)) => results.add(
            Figure::new(
                SECTION,
                "database growth per change, second half of the steady state vs the first",
                late / early.max(1.0),
                "x",
            )
            .target("<= 1.25x", |v, _| v <= 1.25)
            .note(format!(
                "{early:.0} and {late:.0} bytes per change over the four databases; {:.1} MB at the end",
                last.db_bytes / 1e6
            )),
        ),
        _ => results.add(Figure::missing(SECTION, "database growth per change", "x", "no changes in a half")),
    }
    let peak = samples.iter().map(|s| s.rss_mb).fold(0.0, f64::max);
    results.add(
        Figure::new(SECTION, "RSS peak of the demo process (four nodes)", peak, "MB")
            .target("< 250 MB", |v, _| v < 250.0)
            .note("the four nodes share one process, as `lagesbild demo` runs them"),
    );
}

/// The demo as a child process of this binary.
struct Demo {
    dir: PathBuf,
    nodes: Vec<DemoNode>,
    child: Option<(Child, ChildStdin)>,
}

impl Demo {
    async fn start(dir: &Path, logs: &Path) -> anyhow::Result<Self> {
        let base_port = free_block()?;
        std::fs::create_dir_all(logs)?;
        let log = std::fs::File::create(logs.join("soak-demo.log"))?;
        let exe = std::env::current_exe().context("cannot find this program to start the demo")?;
        let mut child = Command::new(exe)
            .args(["demo-nodes", "--dir"])
            .arg(dir)
            .args(["--base-port", &base_port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start the demo")?;
        let stdin = child.stdin.take().context("no stdin pipe to the demo")?;
        let mut demo = Self { dir: dir.to_owned(), nodes: Vec::new(), child: Some((child, stdin)) };
        let listing = dir.join("nodes.json");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !listing.exists() {
            if let Some((child, _)) = demo.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("the demo exited while setting up ({status}); see {}", logs.join("soak-demo.log").display());
            }
            anyhow::ensure!(Instant::now() < deadline, "the demo was not set up within 120 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        demo.nodes = serde_json::from_str(&std::fs::read_to_string(&listing)?)?;
        Ok(demo)
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child.as_ref().map(|(c, _)| c.id()).context("the demo is not running")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            // SIGTERM stops the demo's nodes cleanly; the closed stdin only after that.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A base port whose API ports (base..base+3) and federation ports (base+10..base+13) are free.
fn free_block() -> anyhow::Result<u16> {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    (40_000..60_000)
        .step_by(20)
        .find(|&base| (0..4).all(|i| free(base + i) && free(base + 10 + i)))
        .context("no block of free loopback ports between 40000 and 60000")
}

/// `lagesbild-bench demo-nodes --dir DIR --base-port P`: runs `lagesbild demo` until SIGTERM or
/// the bench closing this process's stdin.
pub fn demo_child(dir: &Path, base_port: u16) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (orphaned, parent_gone) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut sink);
            let _ = orphaned.send(());
        });
        tokio::select! {
            outcome = lagesbild::cli::demo::run(dir, base_port) => outcome,
            _ = parent_gone => Ok(()),
        }
    })
}
