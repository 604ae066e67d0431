//! A flood of strangers (issue 15): refused handshakes on the federation port, from keys no partner
//! owns, while a coordinator files reports. Filing p99 is measured first with the port idle, then
//! during the flood, in the same run; and the audit trail's entries of refused handshakes are
//! counted, against the bound the node's tally promises (`2 x 20 + 1` a minute).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use lagesbild::clock::SystemClock;
use lagesbild::crypto::tls::{PeerTrust, TlsIdentity, client_config};
use lagesbild::domain::OrgId;
use lagesbild::federation::refusals::MAX_SOURCES;

use crate::nodes::{Backend, Database, MUNICIPALITY, NodeProcess};
use crate::publish::{node_federation_url, node_pin};
use crate::report::{Figure, Results};
use crate::workload::{Until, file_reports, now};

const SECTION: &str = "8. A flood of refused handshakes";

/// How large a flood.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub handshakes: usize,
    /// Distinct stranger keys (more than the tally tells apart).
    pub strangers: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Reports filed, one at a time, idle and again during the flood.
    pub reports: usize,
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
    let dir = work.join(format!("flood-{engine}"));
    let db = Arc::new(Database::create(backend, &dir, "flood").await?);
    let mut node = NodeProcess::start(MUNICIPALITY, &dir.join("node"), db, logs).await?;
    println!("  {engine}: {} reports filed one at a time, the federation port idle...", sizes.reports);
    let idle = file_reports(http, &node, 1, Until::Count(sizes.reports)).await;
    let rows_before = refused_rows(http, &node).await?;

    println!(
        "  {engine}: {} refused handshakes from {} stranger keys, filing meanwhile...",
        sizes.handshakes, sizes.strangers
    );
    let strangers = stranger_clients(&dir, &node, sizes.strangers)?;
    let url = format!("{}/federation/v1/hello", node_federation_url(&node)?);
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let admitted = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..sizes.concurrency {
        let (strangers, next, admitted, url) = (strangers.clone(), next.clone(), admitted.clone(), url.clone());
        flood.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= sizes.handshakes {
                    break;
                }
                if strangers[i % strangers.len()].get(&url).send().await.is_ok() {
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let during = {
        let filing = file_reports(http, &node, 1, Until::Count(sizes.reports));
        let (filing, _) = tokio::join!(filing, async {
            for task in flood {
                let _ = task.await;
            }
        });
        filing
    };
    let flood_seconds = started.elapsed().as_secs_f64();
    let admitted = admitted.load(Ordering::Relaxed);
    // What the tally of the flood's last minute holds is written when that minute is over, or at a
    // graceful stop: stop the node, then read its database through a node started again.
    node.stop().await?;
    node.spawn().await?;
    let rows = refused_rows(http, &node).await? - rows_before;
    node.stop().await?;

    let (Some(idle_p99), Some(during_p99)) = (idle.latencies.p99(), during.latencies.p99()) else {
        anyhow::bail!("filing failed: {}", during.first_error.or(idle.first_error).unwrap_or_default());
    };
    let rate = sizes.handshakes as f64 / flood_seconds;
    results.add(Figure::new(SECTION, format!("{engine}: refused handshakes"), rate, "handshakes/s").note(format!(
        "{} handshakes in {flood_seconds:.1} s from {} keys no partner owns, {} at a time; {admitted} let in",
        sizes.handshakes, sizes.strangers, sizes.concurrency
    )));
    results.add(
        Figure::new(SECTION, format!("{engine}: filing p99 during the flood"), during_p99, "ms")
            .ceiling("filing p99 with the port idle, this run", Some(idle_p99), "ms")
            .target("within 2x of idle", |_, ratio| ratio.is_some_and(|r| r <= 2.0))
            .note(format!("{} and {} reports filed one at a time", idle.accepted, during.accepted)),
    );
    // Each minute the flood touched may hold a full tally, and the minutes' edges split one.
    let minutes = (flood_seconds / 60.0).ceil() as usize + 1;
    let bound = minutes * (2 * MAX_SOURCES + 1);
    results.add(
        Figure::new(SECTION, format!("{engine}: audit entries the flood added"), rows as f64, "entries")
            .ceiling(format!("the tally's bound over {minutes} minute(s)"), Some(bound as f64), "entries")
            .target("within the bound", |value, _| value <= bound as f64)
            .note(format!("{} handshakes refused; without the tally, one entry each", sizes.handshakes)),
    );
    anyhow::ensure!(admitted == 0, "{admitted} stranger handshakes were let in");
    Ok(())
}

/// One client per stranger key, each making a fresh connection (a fresh handshake) per request.
fn stranger_clients(dir: &Path, node: &NodeProcess, count: usize) -> anyhow::Result<Arc<Vec<reqwest::Client>>> {
    let keys = dir.join("strangers");
    std::fs::create_dir_all(&keys)?;
    let org = OrgId::parse("se-okand-avsandare").map_err(|e| anyhow::anyhow!("{e}"))?;
    let pin = node_pin(node)?;
    let mut clients = Vec::with_capacity(count);
    for n in 0..count {
        let (cert, key) = (keys.join(format!("{n}.crt")), keys.join(format!("{n}.key")));
        let hosts = ["localhost".to_owned()];
        let identity = TlsIdentity::generate(&org, &hosts, now(), now() + chrono::Duration::days(1), &cert, &key)
            .context("a stranger's key")?;
        let tls = client_config(&identity, &PeerTrust::Pins, &node.org, vec![pin.clone()], Arc::new(SystemClock))?;
        clients.push(
            reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(10))
                .build()?,
        );
    }
    Ok(Arc::new(clients))
}

/// How many refused handshakes the node's audit trail records (entries, not the counts in them).
async fn refused_rows(http: &reqwest::Client, node: &NodeProcess) -> anyhow::Result<usize> {
    let mut rows = 0;
    let mut after = 0;
    loop {
        let path = format!("/api/v1/audit?event=federation.handshake_refused&limit=1000&after={after}");
        let page = node.call(http, reqwest::Method::GET, &path, None).await?;
        let entries = page["entries"].as_array().context("no entries in the audit page")?;
        rows += entries.len();
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => return Ok(rows),
        }
    }
}
