//! Faults a node meets in the field, each with nothing lost, nothing duplicated and nothing leaked:
//! a SQLite disk that fills up (a small tmpfs of the test's own: filing answers 503 problem+json,
//! every acknowledged report is whole, none refused is stored, and filing works again once there is
//! room, without a restart), and two nodes whose clocks are further apart than the envelope window
//! (the envelope is deferred, not refused, and delivered once when the clock is right), and a
//! PostgreSQL server restarted under a flow of 10 000 envelopes (a cluster of the test's own: what
//! could not be filed meanwhile is refused with 503, and the partner receives every acknowledged
//! report exactly once).

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

on_both_backends!(clocks_further_apart_than_the_window_defer_an_envelope_until_the_clock_is_right_then_deliver_it_once);

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
