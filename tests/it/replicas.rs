//! Three replicas of one node on one PostgreSQL, as `deploy/kubernetes` runs them: each a real
//! `lagesbild serve` process, behind a round-robin in front of their APIs and another in front of
//! their federation listeners (a TCP passthrough: mutual TLS ends at the replica). One replica is
//! killed (SIGKILL) in the middle of a flow of 5 000 reports and started again. The partner stores
//! every report the node holds exactly once, nothing the node acknowledged is lost, and a client
//! of the live stream that reconnects through the round-robin sees one gap-free sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lagesbild::clock::{Clock, SystemClock};
use lagesbild::domain::OrgId;
use lagesbild::identity::InitOptions;
use lagesbild::store::AuditQuery;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::exchange::{GUARDING, GUARDS, MUNICIPALITY, template};
use crate::peering::{import, signed_card};
use crate::support::{Backend, TOKEN, TestDatabase, TestNode, free_port, report, until_advancing, until_within};

const REPORTS: usize = 5_000;

/// A round-robin TCP passthrough: each connection goes to the next backend that accepts it.
struct RoundRobin {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobin {
    async fn start(backends: Vec<u16>) -> Self {
        Self::start_on(0, backends).await
    }

    /// On `port` (0: any free one).
    async fn start_on(port: u16, backends: Vec<u16>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (backends, next) = (backends.clone(), next.clone());
                tokio::spawn(async move {
                    for _ in 0..backends.len() {
                        let port = backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
                        if let Ok(mut backend) = TcpStream::connect(("127.0.0.1", port)).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                            return;
                        }
                    }
                });
            }
        });
        Self { port, task }
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One replica: `lagesbild serve` on the shared configuration, with listeners of its own.
struct Replica {
    child: Option<Child>,
    api: u16,
    federation: u16,
}

impl Replica {
    fn start(config: &std::path::Path) -> Self {
        let mut replica = Self { child: None, api: free_port(), federation: free_port() };
        replica.spawn(config);
        replica
    }

    fn spawn(&mut self, config: &std::path::Path) {
        let child = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
            .args(["serve", "--config"])
            .arg(config)
            .env("LAGESBILD_API_DEV_TOKEN", TOKEN)
            .env("LAGESBILD_API_LISTEN", format!("127.0.0.1:{}", self.api))
            .env("LAGESBILD_FEDERATION_LISTEN", format!("127.0.0.1:{}", self.federation))
            // What a replica that died held is taken over after two seconds.
            .env("LAGESBILD_FEDERATION_CLAIM_SECONDS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    async fn ready(&self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.api);
        until_within("a replica was not ready", Duration::from_secs(60), || async {
            reqwest::get(&url)
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
                .ok_or_else(|| "not yet".to_owned())
        })
        .await;
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the stream's follower read: (event id, event, report id), in order.
type Seen = Arc<std::sync::Mutex<Vec<(i64, String, String)>>>;

/// Follows the stream through the round-robin, reconnecting with `Last-Event-ID` whenever the
/// replica it reached goes away, into `seen`.
fn follow(api: String, seen: Seen, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let mut last: i64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut response) = http
                .get(format!("{api}/api/v1/situation/stream"))
                .bearer_auth(TOKEN)
                .header("Last-Event-ID", last.to_string())
                .send()
                .await
            else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let mut buffer = String::new();
            let (mut id, mut kind) = (None::<i64>, String::new());
            while let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(1), response.chunk()).await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find('\n') {
                    let line: String = buffer.drain(..=end).collect();
                    let line = line.trim_end();
                    if let Some(value) = line.strip_prefix("id: ") {
                        id = value.parse().ok();
                    } else if let Some(value) = line.strip_prefix("event: ") {
                        kind = value.to_owned();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        let change: Value = serde_json::from_str(data).unwrap_or_default();
                        if let Some(n) = id.take() {
                            let report = change["id"].as_str().unwrap_or_default().to_owned();
                            seen.lock().unwrap().push((n, kind.clone(), report));
                            last = n;
                        }
                    }
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_lose_nothing_when_one_is_killed_mid_flow() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    // The card names the round-robin in front of the federation listeners.
    let mut replicas: Vec<Replica> = Vec::new();
    let federation_port = free_port();
    let options = InitOptions {
        org_id: OrgId::parse(MUNICIPALITY).unwrap(),
        name: "Norrköpings kommun".into(),
        dir: dir.path().to_owned(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        federation_listen: "127.0.0.1:0".parse().unwrap(),
        federation_url: format!("https://127.0.0.1:{federation_port}"),
        database_url: Some(db.url.clone()),
    };
    let config = lagesbild::identity::init(&options, SystemClock.now()).unwrap();
    for _ in 0..3 {
        replicas.push(Replica::start(&config));
    }
    for replica in &replicas {
        replica.ready().await;
    }
    // The card names this port: the round-robin in front of the federation listeners takes it.
    let federation_proxy = RoundRobin::start_on(federation_port, replicas.iter().map(|r| r.federation).collect()).await;
    let api_proxy = RoundRobin::start(replicas.iter().map(|r| r.api).collect()).await;
    let api = format!("http://127.0.0.1:{}", api_proxy.port);
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let call = |method: Method, path: &str| http.request(method, format!("{api}{path}")).bearer_auth(TOKEN);

    // The partner: the guard company, under the guarding agreement.
    let guards = TestNode::spawn_federated_at(Backend::Sqlite, GUARDS, SystemClock.now(), |_| {}).await;
    let node: Value = call(Method::GET, "/api/v1/node").send().await.unwrap().json().await.unwrap();
    assert_eq!(import(&guards, &node["signed_card"]).await.status(), StatusCode::CREATED);
    let added = call(Method::POST, "/api/v1/partners").json(&signed_card(&guards).await).send().await.unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let id = template(GUARDING)["id"].as_str().unwrap().to_owned();
    let proposed = call(Method::POST, "/api/v1/agreements").json(&template(GUARDING)).send().await.unwrap();
    assert_eq!(proposed.status(), StatusCode::CREATED, "{}", proposed.text().await.unwrap());
    crate::exchange::holds_agreement(&guards, &id).await;
    let signed = guards.request(Method::POST, &format!("/api/v1/agreements/{id}/sign")).send().await.unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    // The guards' signature may reach a replica before it reloaded their pin; the guards' lifecycle
    // outbox tries again after its back-off, which their clock (moved only when told) must reach.
    until_advancing(&[&guards], chrono::Duration::milliseconds(200), || async {
        let view: Value =
            call(Method::GET, &format!("/api/v1/agreements/{id}")).send().await.unwrap().json().await.unwrap();
        (view["status"]["state"] == "active").then_some(())
    })
    .await;

    let (seen, stop): (Seen, _) = (Arc::default(), Arc::new(AtomicBool::new(false)));
    let follower = follow(api.clone(), seen.clone(), stop.clone());
    // Eight clients file through the round-robin; replica 2 is killed a third of the way through
    // and started again two thirds of the way.
    let acknowledged = Arc::new(std::sync::Mutex::new(BTreeSet::<String>::new()));
    let (next, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (http, api, next, failed, acknowledged) =
            (http.clone(), api.clone(), next.clone(), failed.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= REPORTS {
                    return;
                }
                let body = report(1 + (i % 20) as i64);
                match http.post(format!("{api}/api/v1/reports")).bearer_auth(TOKEN).json(&body).send().await {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let filed: Value = r.json().await.unwrap();
                        acknowledged.lock().unwrap().insert(filed["id"].as_str().unwrap().to_owned());
                    }
                    // In flight when its replica died: it may or may not have been stored.
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let progress = || acknowledged.lock().unwrap().len();
    until_within("a third of the reports filed", Duration::from_secs(120), || async {
        (progress() >= REPORTS / 3).then_some(()).ok_or_else(|| "not yet".to_owned())
    })
    .await;
    replicas[1].kill();
    let at_kill = progress();
    until_within("two thirds of the reports filed", Duration::from_secs(120), || async {
        (progress() >= 2 * REPORTS / 3).then_some(()).ok_or_else(|| "not yet".to_owned())
    })
    .await;
    replicas[1].spawn(&config);
    replicas[1].ready().await;
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(at_kill < REPORTS, "the kill came after the flow");

    // Every report the node holds reaches the partner, stored once; every acknowledged one is held.
    let held: BTreeSet<String> = {
        let store = lagesbild::store::Store::open(&lagesbild::config::DatabaseSection {
            url: db.url.clone(),
            max_connections: 2,
        })
        .await
        .unwrap();
        let mut ids = BTreeSet::new();
        let mut after = None;
        loop {
            let query = lagesbild::domain::SituationQuery { limit: 1000, after, ..Default::default() };
            let page = store.situation(&query, SystemClock.now()).await.unwrap();
            ids.extend(page.reports.iter().map(|r| r.id().to_string()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        store.close().await;
        ids
    };
    assert!(
        acknowledged.is_subset(&held),
        "{} acknowledged reports are not held",
        acknowledged.difference(&held).count()
    );
    until_within("the partner stored every report", Duration::from_secs(180), || async {
        let stored = stored_at(&guards).await;
        if stored.len() == held.len() { Ok(()) } else { Err(format!("{} of {}", stored.len(), held.len())) }
    })
    .await;
    let stored = stored_at(&guards).await;
    assert_eq!(stored.keys().cloned().collect::<BTreeSet<_>>(), held, "the partner holds exactly what the node holds");
    assert!(stored.values().all(|n| *n == 1), "a report was stored twice at the partner");

    // The stream: one gap-free sequence, each filing seen once.
    let filed_in = |seen: &[(i64, String, String)]| {
        seen.iter().filter(|(_, kind, _)| kind == "filed").fold(
            BTreeMap::<String, usize>::new(),
            |mut m, (_, _, id)| {
                *m.entry(id.clone()).or_default() += 1;
                m
            },
        )
    };
    until_within("the stream saw every filing", Duration::from_secs(60), || async {
        let filed = filed_in(&seen.lock().unwrap());
        if filed.len() >= held.len() { Ok(()) } else { Err(format!("{} of {}", filed.len(), held.len())) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    follower.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let ids: Vec<i64> = seen.iter().map(|(n, ..)| *n).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "the stream skipped or repeated an event");
    let filed = filed_in(&seen);
    assert_eq!(filed.keys().cloned().collect::<BTreeSet<_>>(), held, "the stream named every held report");
    assert!(filed.values().all(|n| *n == 1), "the stream told of a filing twice");
    println!(
        "{} filed, {} acknowledged, {} failed in flight at the kill; {} events streamed",
        held.len(),
        acknowledged.len(),
        failed.load(Ordering::Relaxed),
        seen.len()
    );
    drop(api_proxy);
    drop(federation_proxy);
    guards.stop().await;
}

/// How many times each report of the municipality was stored at `node`.
async fn stored_at(node: &TestNode) -> BTreeMap<String, usize> {
    let mut stored = BTreeMap::new();
    let mut after = 0;
    loop {
        let query = AuditQuery { event: Some("envelope.received".into()), after, limit: 1000, ..AuditQuery::default() };
        let page = node.store().audit_entries(&query).await.unwrap();
        let Some(last) = page.last() else { return stored };
        after = last.seq;
        for entry in page {
            if entry.event.detail.as_deref().is_some_and(|d| d.ends_with(": stored")) {
                *stored.entry(entry.event.report.unwrap_or_default()).or_default() += 1;
            }
        }
    }
}
