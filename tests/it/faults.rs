//! Faults a node meets in the field, each with nothing lost, nothing duplicated and nothing leaked:
//! a SQLite disk that fills up (a small tmpfs of the test's own: filing answers 503 problem+json,
//! every acknowledged report is whole, none refused is stored, and filing works again once there is
//! room, without a restart), and two nodes whose clocks are further apart than the envelope window
//! (the envelope is deferred, not refused, and delivered once when the clock is right), and a
//! PostgreSQL server restarted under a flow of 10 000 envelopes (a cluster of the test's own: what
//! could not be filed meanwhile is refused with 503, and the partner receives every acknowledged
//! report exactly once), and a slow link that breaks now and then between two nodes (a proxy of the
//! test's own: everything arrives once, nothing more than the agreement allows, and the sender's
//! partner state shows the trouble). This machine's kernel has no `sch_netem`, so `tc netem` cannot
//! shape a link here; the proxy delays and cuts connections instead, which is what TCP makes of a
//! lossy link as seen from above it.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::exchange::{
    GUARDING, GUARDS, MUNICIPALITY, agree, audit, federation, id_of, ledger, picture_entry, stored_versions,
};
use crate::exchange_recovery::receipts;
use crate::on_both_backends;
use crate::peering::{import, signed_card};
use crate::support::{Backend, TestNode, expect_problem, free_port, report, until, until_advancing, until_within};

on_both_backends!(
    clocks_further_apart_than_the_window_defer_an_envelope_until_the_clock_is_right_then_deliver_it_once,
    a_slow_link_that_breaks_now_and_then_delivers_everything_once_and_the_partner_state_shows_the_trouble,
);

/// A size-limited tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], dir.path());
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    fn resize(&self, size: &str) {
        mount(&["-o", &format!("remount,size={size}")], self.dir.path());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn mount(args: &[&str], at: &Path) {
    let out = Command::new("mount").args(args).arg(at).output().expect("mount runs");
    assert!(
        out.status.success(),
        "mounting a small tmpfs needs root (CI runs as root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A report of about 9 kB, so the disk fills after a few hundred.
fn bulky(n: usize) -> Value {
    let mut body = report(1);
    body["title"] = json!(format!("Report {n}"));
    body["description"] = json!(format!("{n} ").repeat(9_000 / (n.to_string().len() + 1)));
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_filing_with_503_keeps_every_acknowledged_report_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount("3m");
    let url = format!("sqlite://{}/node.db", disk.path().display());
    let node = TestNode::spawn_with(Backend::Sqlite, |config| config.database.url = url).await;

    let mut acknowledged = Vec::new();
    let refused = loop {
        assert!(acknowledged.len() < 2_000, "3 MB never filled");
        let response = node
            .request(reqwest::Method::POST, "/api/v1/reports")
            .json(&bulky(acknowledged.len()))
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::CREATED {
            break response;
        }
        let filed: Value = response.json().await.unwrap();
        acknowledged.push(filed["id"].as_str().unwrap().to_owned());
    };
    let problem = expect_problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(problem["detail"].as_str().unwrap().contains("disk is full"), "{problem}");
    assert!(acknowledged.len() > 10, "the disk filled after {} reports", acknowledged.len());

    // Every acknowledged report is whole; the refused one is nowhere.
    disk.resize("64m");
    let stored = node.situation_ids("?limit=1000").await;
    let mut expected = acknowledged.clone();
    expected.sort();
    let mut got = stored.clone();
    got.sort();
    assert_eq!(got, expected, "what the picture holds is exactly what was acknowledged");
    let entries = node.store().verify_audit().await.unwrap();
    assert!(entries.is_ok(), "the audit chain holds: {entries:?}");

    // With room again, filing works without a restart, on every pooled connection (one that saw
    // the refused write must not be lent out still believing it is in a transaction).
    for n in 0..12 {
        let filed = node.file(&bulky(10_000 + n)).await;
        assert_eq!(filed["version"], 1);
    }
    node.stop().await;
}

async fn clocks_further_apart_than_the_window_defer_an_envelope_until_the_clock_is_right_then_deliver_it_once(
    backend: Backend,
) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    agree(&[municipality, guards], GUARDING).await;

    // The municipality's clock runs 20 minutes ahead; the window is 10.
    municipality.clock.advance(Duration::minutes(20));
    let id = id_of(&municipality.file(&report(2)).await);
    let deferred = until(|| async {
        let entries = audit(guards, "event=envelope.deferred").await;
        (!entries.is_empty()).then_some(entries)
    })
    .await;
    assert!(deferred[0]["detail"].as_str().unwrap().contains("outside the window"), "{deferred:?}");
    let share = until(|| async {
        let shares = ledger(municipality, &id).await;
        shares.into_iter().find(|s| s["last_error"].as_str().is_some_and(|e| e.contains("window")))
    })
    .await;
    assert_eq!(share["state"], "queued", "deferred, not refused: {share}");
    assert!(guards.situation_ids("?limit=10").await.is_empty());
    let dead: Value = guards.get("/api/v1/dead-letters").send().await.unwrap().json().await.unwrap();
    assert_eq!(dead.as_array().unwrap().len(), 0, "nothing dead-lettered: {dead}");

    // The guards' clock is set right; the retry gets through, once.
    guards.clock.advance(Duration::minutes(20));
    until_advancing(&[municipality, guards], Duration::seconds(5), || async {
        guards.situation_ids("?limit=10").await.contains(&id).then_some(())
    })
    .await;
    picture_entry(guards, &id, |e| e.is_some_and(|e| e["version"] == 1)).await;
    assert_eq!(stored_versions(guards, &id).await, ["version 1"]);
    for node in nodes {
        node.stop().await;
    }
}

/// A PostgreSQL cluster of the test's own (Debian's `pg_createcluster`), so restarting it touches no
/// other test; dropped with it.
struct PrivateCluster {
    version: String,
    name: String,
    port: u16,
}

impl PrivateCluster {
    fn create() -> Self {
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("Debian's PostgreSQL is installed (tests/run makes sure)")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
            .expect("a PostgreSQL version");
        let (name, port) = (format!("lagesbild_faults_{}", std::process::id()), free_port());
        let port_arg = port.to_string();
        run(
            "pg_createcluster",
            &["-p", &port_arg, "--start", &version, &name, "--", "--auth-host=trust", "--auth-local=trust"],
        );
        Self { version, name, port }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn restart(&self) {
        run("pg_ctlcluster", &["--skip-systemctl-redirect", &self.version, &self.name, "restart"]);
    }
}

fn run(tool: &str, args: &[&str]) {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("{tool} runs: {e}"));
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster").args(["--stop", &self.version, &self.name]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_restart_under_a_flow_of_10_000_envelopes_loses_and_duplicates_nothing() {
    const REPORTS: usize = 10_000;
    let cluster = PrivateCluster::create();
    let url = cluster.url();
    let municipality = TestNode::spawn_federated_with(Backend::Postgres, MUNICIPALITY, |c| c.database.url = url).await;
    let guards = TestNode::spawn_federated(Backend::Sqlite, GUARDS).await;
    for (a, b) in [(&municipality, &guards), (&guards, &municipality)] {
        assert_eq!(import(b, &signed_card(a).await).await.status(), StatusCode::CREATED);
    }
    agree(&[&municipality, &guards], GUARDING).await;

    // Eight clients file; the server restarts a third of the way through.
    let (next, acknowledged) = (
        std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new())),
    );
    let refusals = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u16, String)>::new()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let request = municipality.request(reqwest::Method::POST, "/api/v1/reports");
        let (next, acknowledged, refusals) = (next.clone(), acknowledged.clone(), refusals.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= REPORTS {
                    return;
                }
                let body = report(1 + (i % 20) as i64);
                let response = request.try_clone().unwrap().json(&body).send().await.unwrap();
                let status = response.status();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                if status == StatusCode::CREATED {
                    acknowledged.lock().unwrap().push(answer["id"].as_str().unwrap().to_owned());
                } else {
                    refusals.lock().unwrap().push((status.as_u16(), answer.to_string()));
                }
            }
        }));
    }
    until_within("a third of the reports filed", std::time::Duration::from_secs(120), || async {
        let filed = acknowledged.lock().unwrap().len();
        (filed >= REPORTS / 3).then_some(()).ok_or_else(|| format!("{filed} filed"))
    })
    .await;
    cluster.restart();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged: std::collections::BTreeSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    let refusals = refusals.lock().unwrap().clone();
    // What could not be filed while the server was away was refused as unavailable, never as an
    // internal error.
    assert!(refusals.iter().all(|(status, _)| *status == 503), "{refusals:?}");
    assert!(acknowledged.len() + refusals.len() == REPORTS);

    // Every acknowledged report reaches the guards, each stored once.
    until_advancing(&[&municipality, &guards], Duration::seconds(2), || async {
        let held = receipts(&guards).await;
        acknowledged.iter().all(|id| held.contains_key(id)).then_some(())
    })
    .await;
    let held = receipts(&guards).await;
    for (report, outcomes) in &held {
        let stored = outcomes.iter().filter(|o| o.ends_with(": stored")).count();
        assert_eq!(stored, 1, "{report}: {outcomes:?}");
    }
    println!(
        "PostgreSQL restarted under {REPORTS} filings: {} acknowledged, {} refused with 503, {} received once each, {} receipts in all",
        acknowledged.len(),
        refusals.len(),
        held.len(),
        held.values().map(Vec::len).sum::<usize>()
    );
    municipality.stop().await;
    guards.stop().await;
}

/// A TCP proxy that delays every chunk by `delay` each way and cuts each connection once it has lived
/// for `life`, in the middle of whatever it carries.
struct UnreliableLink {
    task: tokio::task::JoinHandle<()>,
}

impl UnreliableLink {
    async fn start(port: u16, to: std::net::SocketAddr, delay: std::time::Duration, life: std::time::Duration) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(to).await else { return };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let both = futures_util::future::join(
                        Self::carry(client_read, server_write, delay),
                        Self::carry(server_read, client_write, delay),
                    );
                    let _ = tokio::time::timeout(life, both).await;
                });
            }
        });
        Self { task }
    }

    async fn carry(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        delay: std::time::Duration,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            // The link's latency, not a wait for something to happen.
            tokio::time::sleep(delay).await;
            if to.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }
}

impl Drop for UnreliableLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn a_slow_link_that_breaks_now_and_then_delivers_everything_once_and_the_partner_state_shows_the_trouble(
    backend: Backend,
) {
    const REPORTS: usize = 300;
    let municipality = TestNode::spawn_federated(backend, MUNICIPALITY).await;
    // The guards' card names the link's port; their listener is behind it.
    let mut card_port = 0;
    let mut guards = TestNode::spawn_federated_with(backend, GUARDS, |c| {
        let federation = c.federation.as_mut().expect("a federated node");
        card_port = federation.listen.port();
        federation.listen = "127.0.0.1:0".parse().unwrap();
    })
    .await;
    let link = UnreliableLink::start(
        card_port,
        guards.federation_addr(),
        std::time::Duration::from_millis(40),
        std::time::Duration::from_millis(700),
    )
    .await;
    for (a, b) in [(&municipality, &guards), (&guards, &municipality)] {
        assert_eq!(import(b, &signed_card(a).await).await.status(), StatusCode::CREATED);
    }
    agree(&[&municipality, &guards], GUARDING).await;

    let mut filed = Vec::new();
    for i in 0..REPORTS {
        let mut body = report(1 + (i % 20) as i64);
        body["persons"] = json!([{"role": "witness", "name": "Anna Andersson"}]);
        filed.push(id_of(&municipality.file(&body).await));
    }
    // Until the guards hold every report, the municipality's view of them is watched for trouble.
    let trouble = std::sync::Mutex::new(std::collections::BTreeSet::<String>::new());
    until_advancing(&[&municipality, &guards], Duration::seconds(2), || async {
        let partners: Value = municipality.get("/api/v1/partners").send().await.unwrap().json().await.unwrap();
        if let Some(error) = partners[0]["last_error"].as_str() {
            trouble.lock().unwrap().insert(error.to_owned());
        }
        (receipts(&guards).await.len() == REPORTS).then_some(())
    })
    .await;
    let trouble = trouble.into_inner().unwrap();
    assert!(!trouble.is_empty(), "the partner state never showed the broken link");

    // Each report stored once; what arrived again was a duplicate that changed nothing.
    let held = receipts(&guards).await;
    let again: usize = held.values().map(|outcomes| outcomes.len() - 1).sum();
    for id in &filed {
        let outcomes = &held[id];
        assert_eq!(outcomes[0], "version 1: stored", "{id}: {outcomes:?}");
        assert!(outcomes[1..].iter().all(|o| o == "version 1: duplicate"), "{id}: {outcomes:?}");
    }
    // Nothing more than the agreement allows: the guarding flow drops persons.
    let picture = guards.situation("?limit=1000").await;
    assert!(!picture.to_string().contains("Anna"), "a name reached the guards");
    println!(
        "over the broken link: {REPORTS} reports, each stored once, {again} sent again as duplicates; trouble seen: {trouble:?}"
    );
    drop(link);
    guards.halt().await;
    municipality.stop().await;
}
