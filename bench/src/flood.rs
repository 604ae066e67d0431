//! A flood of strangers (issue 15): refused handshakes on the federation port, from keys no partner
//! owns, while a coordinator files reports. Filing p99 is measured first with the port idle, then
//! during the flood, in the same run; and the audit trail's entries of refused handshakes are
//! counted, against the bound the node's tally promises (`2 x 20 + 1` a minute). The flood comes
//! from a child process of this binary at the lowest CPU priority (`nice -n 19`): a stranger's
//! client runs on its own machine, and what is measured is what refusing costs the node, not what
//! making the handshakes costs the load generator on the same two cores.

use std::path::{Path, PathBuf};
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
use crate::workload::{Filing, Until, file_reports, now, start_at_lowest_priority};

const SECTION: &str = "8. A flood of refused handshakes";
/// Reports filed between two looks at whether the flood is over.
const FILED_AT_A_TIME: usize = 20;

/// How large a flood.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub handshakes: usize,
    /// Distinct stranger keys (more than the tally tells apart).
    pub strangers: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// Reports filed, one at a time, with the port idle (during the flood: as many as it lasts).
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
    let keys = stranger_keys(&dir, sizes.strangers)?;
    let args = ClientArgs {
        url: format!("{}/federation/v1/hello", node_federation_url(&node)?),
        keys,
        org: node.org.to_string(),
        pin: node_pin(&node)?.as_str().to_owned(),
        handshakes: sizes.handshakes,
        concurrency: sizes.concurrency,
    };
    let started = Instant::now();
    let mut flood = start_client(&args)?;
    // Filing goes on, a few reports at a time, for as long as the flood lasts.
    let mut during = Filing::default();
    while flood.try_wait()?.is_none() {
        let some = file_reports(http, &node, 1, Until::Count(FILED_AT_A_TIME)).await;
        during.accepted += some.accepted;
        during.failed += some.failed;
        during.first_error = during.first_error.or(some.first_error);
        during.latencies.extend(some.latencies);
    }
    let output = tokio::task::spawn_blocking(move || flood.wait_with_output()).await??;
    anyhow::ensure!(output.status.success(), "the flood client failed: {}", String::from_utf8_lossy(&output.stderr));
    let admitted: usize = String::from_utf8_lossy(&output.stdout).trim().parse().context("the flood client's count")?;
    let flood_seconds = started.elapsed().as_secs_f64();
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
            .note(format!("{} reports filed one at a time idle, {} during the flood", idle.accepted, during.accepted)),
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

/// What the flood client is told.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The federation URL to call.
    #[arg(long)]
    url: String,
    /// Folder of stranger keys: `N.crt` and `N.key`.
    #[arg(long)]
    keys: PathBuf,
    /// The node's organisation and TLS pin, to recognise it.
    #[arg(long)]
    org: String,
    #[arg(long)]
    pin: String,
    #[arg(long)]
    handshakes: usize,
    #[arg(long)]
    concurrency: usize,
}

/// Makes `count` stranger keys (more than the tally tells apart) in `dir/strangers`.
fn stranger_keys(dir: &Path, count: usize) -> anyhow::Result<PathBuf> {
    let keys = dir.join("strangers");
    std::fs::create_dir_all(&keys)?;
    let org = OrgId::parse("se-okand-avsandare").map_err(|e| anyhow::anyhow!("{e}"))?;
    for n in 0..count {
        let (cert, key) = (keys.join(format!("{n}.crt")), keys.join(format!("{n}.key")));
        let hosts = ["localhost".to_owned()];
        TlsIdentity::generate(&org, &hosts, now(), now() + chrono::Duration::days(1), &cert, &key)
            .context("a stranger's key")?;
    }
    Ok(keys)
}

/// Starts this binary's flood client at the lowest CPU priority.
fn start_client(args: &ClientArgs) -> anyhow::Result<std::process::Child> {
    let flags = [
        ("--url", args.url.clone()),
        ("--org", args.org.clone()),
        ("--pin", args.pin.clone()),
        ("--keys", args.keys.display().to_string()),
        ("--handshakes", args.handshakes.to_string()),
        ("--concurrency", args.concurrency.to_string()),
    ];
    start_at_lowest_priority("flood-client", &flags, "the flood client")
}

/// The flood client: makes the handshakes, each on a fresh connection, and prints how many were let
/// in (none should be).
pub fn client_child(args: &ClientArgs) -> anyhow::Result<()> {
    lagesbild::crypto::tls::install_default_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let admitted = runtime.block_on(async {
        let org = OrgId::parse(&args.org).map_err(|e| anyhow::anyhow!("{e}"))?;
        let pin = lagesbild::domain::TlsPin::try_from(args.pin.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut clients = Vec::new();
        for entry in std::fs::read_dir(&args.keys)? {
            let cert = entry?.path();
            if cert.extension().is_some_and(|e| e == "crt") {
                let identity = TlsIdentity::load(&cert, &cert.with_extension("key"))?;
                let tls = client_config(&identity, &PeerTrust::Pins, &org, vec![pin.clone()], Arc::new(SystemClock))?;
                clients.push(
                    reqwest::Client::builder()
                        .use_preconfigured_tls(tls)
                        .pool_max_idle_per_host(0)
                        .timeout(Duration::from_secs(10))
                        .build()?,
                );
            }
        }
        anyhow::ensure!(!clients.is_empty(), "no stranger keys in {}", args.keys.display());
        let clients = Arc::new(clients);
        let next = Arc::new(AtomicUsize::new(0));
        let admitted = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let (clients, next, admitted, url, total) =
                (clients.clone(), next.clone(), admitted.clone(), args.url.clone(), args.handshakes);
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    if clients[i % clients.len()].get(&url).send().await.is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            task.await?;
        }
        anyhow::Ok(admitted.load(Ordering::Relaxed))
    })?;
    println!("{admitted}");
    Ok(())
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
