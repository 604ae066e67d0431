//! The peer: a TAXII 2.1 server, the PyPI package `medallion` with its memory backend, as the
//! closest open system that shares security reports over a REST API. It is installed into a
//! virtualenv under the output folder, started as a child process on a loopback port (it exits
//! when the bench closes its stdin), and given the same work: the same reports as STIX 2.1
//! `incident` objects, posted one by one and in 100-object envelopes, and a time-window query
//! (`added_after`, the filter TAXII has for it) at the sizes it survives. Every request has a
//! time-out, a time-out is recorded as one, and the peer's part of the run has a budget, so a slow
//! peer never stalls the run.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::nodes::{Backend, free_port};
use crate::query::{Measured, thousands};
use crate::report::{Figure, Results};
use crate::stats::{Latencies, Rng};
use crate::workload::{Place, content, now};

const SECTION: &str = "7. Peer: TAXII 2.1 server medallion (memory backend)";
const VERSION: &str = "3.0.0";
const MEDIA: &str = "application/taxii+json;version=2.1";
const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
const USER: (&str, &str) = ("bench", "bench-password");
/// TLP:AMBER (TLP 2.0) as a STIX marking definition.
const TLP_AMBER: &str = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421";

/// How hard to push the peer.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub one_by_one: usize,
    /// Stored sizes at which to query it, reached with 100-object envelopes.
    pub query_at: &'static [usize],
    pub query_samples: usize,
    pub request_timeout: Duration,
    /// The most the peer's part may take, start-up and install aside.
    pub budget: Duration,
}

/// lagesbild's figures for the same work, measured earlier in the run.
#[derive(Debug, Default, Clone)]
pub struct Ours {
    /// Reports/s accepted from one client, one at a time (SQLite).
    pub one_by_one: Option<f64>,
    /// Reports/s a partner took in, in batches, on its return (catch-up, SQLite).
    pub batched: Option<f64>,
    pub queries: Vec<Measured>,
}

pub async fn run(results: &mut Results, out: &Path, work: &Path, sizes: Sizes, ours: &Ours) -> anyhow::Result<()> {
    let python = match install(out) {
        Ok(python) => python,
        Err(error) => {
            results.add(Figure::missing(SECTION, "medallion", "", format!("could not be installed: {error:#}")));
            return Ok(());
        }
    };
    let mut peer = Peer::start(&python, work)?;
    let http = reqwest::Client::builder().timeout(sizes.request_timeout).build()?;
    peer.wait_ready(&http).await?;
    let budget = Instant::now() + sizes.budget;
    let mut rng = Rng::new(0x7A11);

    println!("  medallion: {} objects posted one by one...", sizes.one_by_one);
    let (mut latencies, mut timeouts) = (Latencies::default(), 0usize);
    let started = Instant::now();
    let mut stored = 0usize;
    for _ in 0..sizes.one_by_one {
        if Instant::now() > budget {
            break;
        }
        let sent = Instant::now();
        match peer.post(&http, &[incident(&mut rng)]).await {
            Ok(()) => {
                latencies.push(sent.elapsed());
                stored += 1;
            }
            Err(e) if is_timeout(&e) => timeouts += 1,
            Err(e) => return Err(e),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let one_rate = latencies.len() as f64 / elapsed;
    results.add(Figure::new(SECTION, "medallion: objects posted one by one", one_rate, "objects/s").note(format!(
        "{} objects, p50 {:.1} ms, p99 {:.1} ms, {timeouts} timed out ({} s each)",
        latencies.len(),
        latencies.p50().unwrap_or_default(),
        latencies.p99().unwrap_or_default(),
        sizes.request_timeout.as_secs()
    )));
    compare_rate(results, "lagesbild publish, 1 client (SQLite) vs medallion one by one", ours.one_by_one, one_rate);

    let mut batch_time = Duration::ZERO;
    let mut batched = 0usize;
    let mut batch_timeouts = 0usize;
    let mut queried = Vec::new();
    for &size in sizes.query_at {
        println!("  medallion: 100-object envelopes up to {size} stored...");
        while stored < size && Instant::now() < budget {
            let objects: Vec<Value> = (0..100).map(|_| incident(&mut rng)).collect();
            let sent = Instant::now();
            match peer.post(&http, &objects).await {
                Ok(()) => {
                    batch_time += sent.elapsed();
                    batched += 100;
                    stored += 100;
                }
                Err(e) if is_timeout(&e) => {
                    batch_timeouts += 1;
                    // What timed out may still have been stored; count it so the sizes stay honest.
                    stored += 100;
                }
                Err(e) => return Err(e),
            }
        }
        if stored < size {
            results.add(Figure::missing(
                SECTION,
                format!("medallion: added_after query, {} stored", thousands(size)),
                "ms",
                format!("the peer's budget of {} s ran out at {stored} stored", sizes.budget.as_secs()),
            ));
            break;
        }
        println!("  medallion: {} added_after queries at {stored} stored...", sizes.query_samples);
        let (latencies, timed_out) = peer.query(&http, sizes.query_samples, budget).await?;
        let label = format!("medallion: added_after query (page of 100), {} stored", thousands(size));
        match latencies.p50() {
            Some(p50) => {
                results.add(Figure::new(SECTION, format!("{label}, p50"), p50, "ms").note(format!(
                    "{} answered, {timed_out} timed out ({} s each)",
                    latencies.len(),
                    sizes.request_timeout.as_secs()
                )));
                queried.push((size, p50));
            }
            None => {
                results.add(Figure::missing(
                    SECTION,
                    label,
                    "ms",
                    format!("timed out after {} s ({timed_out} tried)", sizes.request_timeout.as_secs()),
                ));
                break;
            }
        }
    }
    if batched > 0 {
        let rate = batched as f64 / batch_time.as_secs_f64();
        results.add(Figure::new(SECTION, "medallion: objects posted in 100-object envelopes", rate, "objects/s").note(
            format!(
                "{batched} objects, from {} to {stored} stored; {batch_timeouts} envelopes timed out",
                sizes.one_by_one
            ),
        ));
        compare_rate(
            results,
            "lagesbild batched intake: a partner catching up (SQLite, 500 signed envelopes a page) vs medallion envelopes",
            ours.batched,
            rate,
        );
    }
    for (size, p50) in queried {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let ours_at =
                ours.queries.iter().filter(|m| m.backend == backend && m.stored >= size).min_by_key(|m| m.stored);
            let Some((m, our)) = ours_at.and_then(|m| Some((m, m.api.p50()?))) else { continue };
            results.add(
                Figure::new(
                    SECTION,
                    format!(
                        "lagesbild situation query p50 over {} ({}) vs medallion over {}",
                        thousands(m.stored),
                        backend.name(),
                        thousands(size)
                    ),
                    our,
                    "ms",
                )
                .ceiling("medallion p50", Some(p50), "ms")
                .target("< 1x (ahead of the peer)", |_, r| r.is_some_and(|r| r < 1.0)),
            );
        }
    }
    peer.stop();
    Ok(())
}

fn compare_rate(results: &mut Results, label: &str, ours: Option<f64>, theirs: f64) {
    match ours {
        Some(ours) => results.add(
            Figure::new(SECTION, label, ours, "per s")
                .ceiling("medallion", Some(theirs), "per s")
                .target("> 1x (ahead of the peer)", |_, r| r.is_some_and(|r| r > 1.0)),
        ),
        None => results.add(Figure::missing(SECTION, label, "per s", "lagesbild's side was not measured in this run")),
    }
}

fn is_timeout(error: &anyhow::Error) -> bool {
    error.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout)
}

/// The virtualenv's python with medallion installed, installing it first if needed.
fn install(out: &Path) -> anyhow::Result<PathBuf> {
    let venv = std::path::absolute(out.join(".venv"))?;
    let python = venv.join("bin/python");
    let installed = |python: &Path| {
        Command::new(python)
            .args(["-c", "import importlib.metadata as m; print(m.version('medallion'))"])
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == VERSION)
    };
    if python.exists() && installed(&python) {
        return Ok(python);
    }
    println!("  installing medallion {VERSION} into {} (pip)...", venv.display());
    let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().context("python3 -m venv")?;
    if !made.success() {
        bail!("python3 -m venv failed");
    }
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", &format!("medallion=={VERSION}")])
        .status()
        .context("pip install medallion")?;
    if !pip.success() || !installed(&python) {
        bail!("pip install medallion=={VERSION} failed");
    }
    Ok(python)
}

/// A running medallion.
struct Peer {
    child: Option<(Child, ChildStdin)>,
    base: String,
}

impl Peer {
    fn start(python: &Path, work: &Path) -> anyhow::Result<Self> {
        let dir = work.join("medallion");
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let data = json!({
            "/discovery": {
                "title": "lagesbild bench peer",
                "default": format!("{base}/bench/"),
                "api_roots": [format!("{base}/bench/")]
            },
            "bench": {
                "information": {
                    "title": "bench",
                    "versions": [MEDIA],
                    "max_content_length": 104_857_600
                },
                "status": [],
                "collections": [{
                    "id": COLLECTION,
                    "title": "situation reports",
                    "can_read": true,
                    "can_write": true,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": []
                }]
            }
        });
        let data_path = dir.join("data.json");
        std::fs::write(&data_path, serde_json::to_string(&data)?)?;
        let config = json!({
            "backend": {
                "module": "medallion.backends.memory_backend",
                "module_class": "MemoryBackend",
                "filename": data_path,
            },
            "users": { USER.0: USER.1 },
            "taxii": { "max_page_size": 100 }
        });
        let config_path = dir.join("config.json");
        std::fs::write(&config_path, serde_json::to_string(&config)?)?;
        // Stops when the bench closes stdin, so it never outlives the run.
        let launcher = format!(
            "import os, sys, threading\n\
             threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n\
             from medallion.scripts.run import main\n\
             sys.argv = ['medallion', '--host', '127.0.0.1', '--port', '{port}', '--log-level', 'ERROR', {:?}]\n\
             main()\n",
            config_path.display().to_string()
        );
        let log = std::fs::File::create(dir.join("medallion.log"))?;
        let mut child = Command::new(python)
            .args(["-c", &launcher])
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start medallion")?;
        let stdin = child.stdin.take().context("no stdin pipe to medallion")?;
        Ok(Self { child: Some((child, stdin)), base })
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = http
                .get(format!("{}/taxii2/", self.base))
                .basic_auth(USER.0, Some(USER.1))
                .header("accept", MEDIA)
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("medallion did not answer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn objects_url(&self) -> String {
        format!("{}/bench/collections/{COLLECTION}/objects/", self.base)
    }

    async fn post(&self, http: &reqwest::Client, objects: &[Value]) -> anyhow::Result<()> {
        let response = http
            .post(self.objects_url())
            .basic_auth(USER.0, Some(USER.1))
            .header("accept", MEDIA)
            .header("content-type", MEDIA)
            .body(serde_json::to_vec(&json!({ "objects": objects }))?)
            .send()
            .await?;
        let status = response.status();
        let answer: Value = response.json().await?;
        if status.as_u16() != 202 || answer["success_count"].as_u64() != Some(objects.len() as u64) {
            bail!("medallion answered {status}: {answer}");
        }
        Ok(())
    }

    /// `samples` queries for what was added in the last 24 hours, first page; answers the answered
    /// ones' latencies and how many timed out.
    async fn query(
        &self,
        http: &reqwest::Client,
        samples: usize,
        budget: Instant,
    ) -> anyhow::Result<(Latencies, usize)> {
        let (mut latencies, mut timed_out) = (Latencies::default(), 0);
        for _ in 0..samples {
            if Instant::now() > budget && !latencies.is_empty() {
                break;
            }
            let since = (now() - chrono::Duration::hours(24)).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            let sent = Instant::now();
            let answer = http
                .get(self.objects_url())
                .query(&[("added_after", since.as_str()), ("limit", "100")])
                .basic_auth(USER.0, Some(USER.1))
                .header("accept", MEDIA)
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => match r.bytes().await {
                    Ok(body) => {
                        latencies.push(sent.elapsed());
                        let page: Value = serde_json::from_slice(&body)?;
                        anyhow::ensure!(
                            page["objects"].as_array().is_some_and(|o| !o.is_empty()),
                            "medallion's query found nothing: {}",
                            String::from_utf8_lossy(&body).chars().take(300).collect::<String>()
                        );
                    }
                    Err(e) if e.is_timeout() => timed_out += 1,
                    Err(e) => return Err(e.into()),
                },
                Ok(r) => bail!("medallion's query answered {}", r.status()),
                Err(e) if e.is_timeout() => {
                    timed_out += 1;
                    // One time-out says enough about this size; the next would cost as much again.
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((latencies, timed_out))
    }

    fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A generated report as a STIX 2.1 `incident`, with the fields STIX has no place for as custom
/// properties: about the same bytes as lagesbild's report.
fn incident(rng: &mut Rng) -> Value {
    let at = now();
    let c = content(rng, at - chrono::Duration::hours(1), Place::Norrkoping);
    let stamp = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let mut out = json!({
        "type": "incident",
        "spec_version": "2.1",
        "id": format!("incident--{}", uuid::Uuid::new_v4()),
        "created": stamp,
        "modified": stamp,
        "name": c.title,
        "description": c.description,
        "object_marking_refs": [TLP_AMBER],
        "x_lagesbild_observed_at": c.observed_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "x_lagesbild_category": c.category.as_str(),
        "x_lagesbild_severity": c.severity.as_str(),
        "x_lagesbild_status": c.status.as_str(),
    });
    out["x_lagesbild_location"] = serde_json::to_value(&c.location).unwrap_or_default();
    out["x_lagesbild_actions"] = serde_json::to_value(&c.actions).unwrap_or_default();
    if !c.persons.is_empty() {
        out["x_lagesbild_persons"] = serde_json::to_value(&c.persons).unwrap_or_default();
    }
    out
}
