//! The exchange under failure: a sending node killed (SIGKILL, a real process) in the middle of
//! delivering, then started again, has every report stored exactly once (only the batch the kill
//! interrupted arrives again, as duplicates that change nothing); sender and receiver killed twenty
//! times between them during 5 000 filings, updates and retractions end with the same picture, no
//! version stored twice and no name the agreement drops; two replicas of one node on one PostgreSQL
//! deliver side by side and never send an envelope twice.

use std::process::{Child, Command, Stdio};

use lagesbild::clock::{Clock, SystemClock};
use lagesbild::domain::OrgId;
use lagesbild::identity::InitOptions;
use lagesbild::store::AuditQuery;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::exchange::{GUARDING, GUARDS, MUNICIPALITY, agree, template};
use crate::on_both_backends;
use crate::peering::{import, signed_card};
use crate::support::{Backend, TOKEN, TestDatabase, TestNode, free_port, report, until, until_within};

on_both_backends!(a_node_killed_mid_delivery_stores_every_report_exactly_once_and_resends_at_most_one_batch);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgresql_never_send_an_envelope_twice() {
    let backend = Backend::Postgres;
    let nodes = crate::exchange::federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    agree(&[municipality, guards], GUARDING).await;
    let replica = municipality.replica().await;
    const REPORTS: usize = 200;
    let mut filing = Vec::new();
    for i in 0..REPORTS {
        let node = if i % 2 == 0 { municipality } else { &replica };
        filing.push(node.request(Method::POST, "/api/v1/reports").json(&report(1 + (i % 20) as i64)).send());
    }
    for response in futures_util::future::join_all(filing).await {
        assert_eq!(response.unwrap().status(), StatusCode::CREATED);
    }
    until(|| async { (received_count(guards).await == REPORTS).then_some(()) }).await;
    // Every envelope arrived once: no duplicate ever reached the guards.
    assert_eq!(stored_entries(guards).await.len(), REPORTS);
    until(|| async { (audit_count(municipality, "envelope.acknowledged").await == REPORTS).then_some(()) }).await;
    assert_eq!(audit_count(guards, "envelope.received").await, REPORTS, "an envelope was sent twice");
    replica.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

/// A partner reads its catch-up feed from where it stopped, by the outbox's ids. Two replicas
/// filing at once on one PostgreSQL each draw ids in their own transaction; if ids could commit out
/// of order, a reader between two commits would move its cursor past a row that commits later and
/// never see it. Here a reader follows the feed as the partner does while both replicas file, and
/// must end with every envelope queued for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partners_feed_read_while_two_replicas_file_never_steps_past_a_later_commit() {
    let mut nodes = crate::exchange::federation(Backend::Postgres, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let mut guards = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    agree(&[&municipality, &guards], GUARDING).await;
    // The guards are away: what is queued for them stays queued, and their feed serves it.
    guards.halt().await;
    let replica = municipality.replica().await;
    let partner = OrgId::parse(GUARDS).unwrap();
    const PER_REPLICA: usize = 150;

    let filing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (store, partner, filing) = (municipality.store().clone(), partner.clone(), filing.clone());
        tokio::spawn(async move {
            let (mut cursor, mut seen) = (0, std::collections::BTreeSet::new());
            loop {
                let done = !filing.load(std::sync::atomic::Ordering::SeqCst);
                let page = store.feed_for(&partner, cursor, 20).await.unwrap();
                if let Some(last) = page.last() {
                    cursor = last.id;
                }
                seen.extend(page.iter().map(|e| e.id));
                if done && page.is_empty() {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let file_at = |node: &TestNode| {
        let requests: Vec<_> = (0..PER_REPLICA)
            .map(|i| node.request(Method::POST, "/api/v1/reports").json(&report(1 + (i % 20) as i64)).send())
            .collect();
        async move {
            for response in futures_util::future::join_all(requests).await {
                assert_eq!(response.unwrap().status(), StatusCode::CREATED);
            }
        }
    };
    tokio::join!(file_at(&municipality), file_at(&replica));
    filing.store(false, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();

    let queued: std::collections::BTreeSet<i64> =
        municipality.store().feed_for(&partner, 0, 10_000).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(queued.len(), 2 * PER_REPLICA, "every report is queued for the guards");
    let missed: Vec<&i64> = queued.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "the feed's reader stepped past {} envelopes that committed late: {missed:?}",
        missed.len()
    );
    replica.stop().await;
    municipality.stop().await;
}

/// A node of the municipality run as its own process, as `lagesbild serve` runs in production.
struct NodeProcess {
    child: Child,
    config: std::path::PathBuf,
    api: String,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

impl NodeProcess {
    async fn start(backend: Backend) -> Self {
        Self::start_as(backend, MUNICIPALITY).await
    }

    async fn start_as(backend: Backend, org: &str) -> Self {
        let db = TestDatabase::create(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let (api_port, federation_port) = (free_port(), free_port());
        let options = InitOptions {
            org_id: OrgId::parse(org).unwrap(),
            name: format!("Test node {org}"),
            dir: dir.path().to_owned(),
            api_listen: format!("127.0.0.1:{api_port}").parse().unwrap(),
            federation_listen: format!("127.0.0.1:{federation_port}").parse().unwrap(),
            federation_url: format!("https://127.0.0.1:{federation_port}"),
            database_url: Some(db.url.clone()),
        };
        let config = lagesbild::identity::init(&options, SystemClock.now()).unwrap();
        let mut node =
            Self { child: spawn(&config), config, api: format!("http://127.0.0.1:{api_port}"), _db: db, _dir: dir };
        node.wait_until_ready().await;
        node
    }

    async fn wait_until_ready(&mut self) {
        let url = format!("{}/readyz", self.api);
        until(|| async { reqwest::get(&url).await.ok().filter(|r| r.status().is_success()).map(|_| ()) }).await;
    }

    /// Kills the process outright (SIGKILL): no shutdown, no flush, like a power cut.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn restart(&mut self) {
        self.child = spawn(&self.config);
        self.wait_until_ready().await;
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().request(method, format!("{}{path}", self.api)).bearer_auth(TOKEN)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["serve", "--config"])
        .arg(config)
        .env("LAGESBILD_API_DEV_TOKEN", TOKEN)
        .env("LAGESBILD_FEDERATION_CLAIM_SECONDS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn received_count(node: &TestNode) -> usize {
    let counts = node.store().count_reports().await.unwrap();
    counts.iter().filter(|c| c.origin == MUNICIPALITY).map(|c| c.reports as usize).sum()
}

/// Every audit entry of `event` at `node`.
async fn entries_of(node: &TestNode, event: &str) -> Vec<lagesbild::domain::audit::AuditEntry> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let query = AuditQuery { event: Some(event.into()), after, limit: 1000, ..AuditQuery::default() };
        let page = node.store().audit_entries(&query).await.unwrap();
        let Some(last) = page.last() else { return all };
        after = last.seq;
        all.extend(page);
    }
}

async fn audit_count(node: &TestNode, event: &str) -> usize {
    entries_of(node, event).await.len()
}

/// Every receipt of an envelope at `node` (each `envelope.received` entry, whatever its outcome),
/// by report: the outcomes in the order they came.
pub async fn receipts(node: &TestNode) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut by_report = std::collections::BTreeMap::<String, Vec<String>>::new();
    for entry in entries_of(node, "envelope.received").await {
        let outcome = entry.event.detail.unwrap_or_default();
        by_report.entry(entry.event.report.unwrap_or_default()).or_default().push(outcome);
    }
    by_report
}

/// The `envelope.received` entries that stored a version, as (report, detail).
async fn stored_entries(node: &TestNode) -> std::collections::BTreeSet<(String, String)> {
    let entries = entries_of(node, "envelope.received").await;
    let stored: Vec<(String, String)> = entries
        .into_iter()
        .filter(|e| e.event.detail.as_deref().is_some_and(|d| d.ends_with(": stored")))
        .map(|e| (e.event.report.unwrap_or_default(), e.event.detail.unwrap_or_default()))
        .collect();
    let distinct: std::collections::BTreeSet<(String, String)> = stored.iter().cloned().collect();
    assert_eq!(distinct.len(), stored.len(), "a version was stored twice");
    distinct
}

async fn a_node_killed_mid_delivery_stores_every_report_exactly_once_and_resends_at_most_one_batch(backend: Backend) {
    let guards = TestNode::spawn_federated_at(backend, GUARDS, SystemClock.now(), |_| {}).await;
    let mut municipality = NodeProcess::start(backend).await;
    let node: Value = municipality.request(Method::GET, "/api/v1/node").send().await.unwrap().json().await.unwrap();
    assert_eq!(import(&guards, &node["signed_card"]).await.status(), StatusCode::CREATED);
    let added =
        municipality.request(Method::POST, "/api/v1/partners").json(&signed_card(&guards).await).send().await.unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let proposed =
        municipality.request(Method::POST, "/api/v1/agreements").json(&template(GUARDING)).send().await.unwrap();
    assert_eq!(proposed.status(), StatusCode::CREATED);
    let id = template(GUARDING)["id"].as_str().unwrap().to_owned();
    crate::exchange::holds_agreement(&guards, &id).await;
    let signed = guards.request(Method::POST, &format!("/api/v1/agreements/{id}/sign")).send().await.unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    until(|| async {
        let view: Value = municipality
            .request(Method::GET, &format!("/api/v1/agreements/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (view["status"]["state"] == "active").then_some(())
    })
    .await;

    // The reports queue up while the guards are blocked, then go out in several batches.
    let block = |verb: &str| municipality.request(Method::POST, &format!("/api/v1/partners/{GUARDS}/{verb}")).send();
    assert_eq!(block("block").await.unwrap().status(), StatusCode::OK);
    const REPORTS: usize = 1_200;
    // The most envelopes the delivery worker claims and sends in one round (`delivery::BATCH`).
    const CLAIM: usize = 500;
    for chunk in (0..REPORTS).collect::<Vec<_>>().chunks(50) {
        let filing = chunk
            .iter()
            .map(|i| municipality.request(Method::POST, "/api/v1/reports").json(&report(1 + (*i % 20) as i64)).send());
        for response in futures_util::future::join_all(filing).await {
            assert_eq!(response.unwrap().status(), StatusCode::CREATED);
        }
    }
    assert_eq!(block("unblock").await.unwrap().status(), StatusCode::OK);
    until(|| async { (received_count(&guards).await > 0).then_some(()) }).await;
    municipality.kill();
    let at_the_kill = received_count(&guards).await;
    assert!(at_the_kill < REPORTS, "everything was delivered before the kill; nothing was tested");

    municipality.restart().await;
    until(|| async { (received_count(&guards).await == REPORTS).then_some(()) }).await;
    until(|| async {
        let partners: Value =
            municipality.request(Method::GET, "/api/v1/partners").send().await.unwrap().json().await.unwrap();
        (partners[0]["delivery"]["queued"] == 0).then_some(())
    })
    .await;
    // Every receipt counts, not only those that stored: each report was stored once, and arrived
    // again only if it was in the batch the kill interrupted (sent, not yet settled), as a
    // duplicate that changed nothing.
    let receipts = receipts(&guards).await;
    assert_eq!(receipts.len(), REPORTS, "every report arrived");
    let mut resent = 0;
    for (report, outcomes) in &receipts {
        assert_eq!(outcomes.first().map(String::as_str), Some("version 1: stored"), "{report}: {outcomes:?}");
        for again in &outcomes[1..] {
            assert_eq!(again, "version 1: duplicate", "{report}: {outcomes:?}");
            resent += 1;
        }
    }
    assert!(resent <= CLAIM, "{resent} envelopes arrived twice: more than the {CLAIM} of one claimed batch");
    println!("after the kill, {resent} of {REPORTS} envelopes arrived a second time, as duplicates");
    guards.stop().await;
}

/// Every entry of `event` in the audit trail of the node at `api`, through the API.
async fn audit_of(node: &NodeProcess, event: &str) -> Vec<Value> {
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let path = format!("/api/v1/audit?event={event}&limit=1000&after={after}");
        let page: Value = node.request(Method::GET, &path).send().await.unwrap().json().await.unwrap();
        all.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_i64() {
            Some(next) if next != after => after = next,
            _ => return all,
        }
    }
}

/// The picture of the node at `api` restricted by `query`, every page: each report's version.
async fn picture_of(node: &NodeProcess, query: &str) -> std::collections::BTreeMap<String, i64> {
    let (mut all, mut cursor) = (std::collections::BTreeMap::new(), String::new());
    loop {
        let path = format!("/api/v1/situation?limit=1000&{query}{cursor}");
        let page: Value = node.request(Method::GET, &path).send().await.unwrap().json().await.unwrap();
        for report in page["reports"].as_array().unwrap() {
            all.insert(report["id"].as_str().unwrap().to_owned(), report["version"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return all,
        }
    }
}

/// On PostgreSQL, where writers can wait on each other's rows; a SQLite node is killed mid-delivery
/// above. (Both ran the same in the runs I saw; one backend keeps the suite's time in bounds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_and_receiver_killed_twenty_times_during_5_000_changes_end_with_the_same_picture_and_nothing_twice() {
    let backend = Backend::Postgres;
    const CHANGES: usize = 5_000;
    const KILLS: usize = 20;
    let mut municipality = NodeProcess::start_as(backend, MUNICIPALITY).await;
    let mut guards = NodeProcess::start_as(backend, GUARDS).await;
    for (from, to) in [(&municipality, &guards), (&guards, &municipality)] {
        let node: Value = from.request(Method::GET, "/api/v1/node").send().await.unwrap().json().await.unwrap();
        let added = to.request(Method::POST, "/api/v1/partners").json(&node["signed_card"]).send().await.unwrap();
        assert_eq!(added.status(), StatusCode::CREATED);
    }
    let id = template(GUARDING)["id"].as_str().unwrap().to_owned();
    let proposed =
        municipality.request(Method::POST, "/api/v1/agreements").json(&template(GUARDING)).send().await.unwrap();
    assert_eq!(proposed.status(), StatusCode::CREATED);
    let agreement = format!("/api/v1/agreements/{id}");
    until(|| async {
        guards.request(Method::GET, &agreement).send().await.unwrap().status().is_success().then_some(())
    })
    .await;
    let signed = guards.request(Method::POST, &format!("{agreement}/sign")).send().await.unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    until(|| async {
        let view: Value = municipality.request(Method::GET, &agreement).send().await.unwrap().json().await.unwrap();
        (view["status"]["state"] == "active").then_some(())
    })
    .await;

    // Filings, updates (one change in five) and retractions (one in fifteen), one after another;
    // every 250 changes one of the two, drawn at random, is killed outright and started again, while
    // the delivery worker and the receiver's inbox are at work in the background.
    let mut random = 0x9e37_79b9_u64;
    let mut draw = |n: u64| {
        random = random.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (random >> 33) % n
    };
    let (mut live, mut versions) = (Vec::<String>::new(), std::collections::BTreeMap::<String, i64>::new());
    let mut killed = [0; 2];
    for change in 0..CHANGES {
        if (change + 1) % (CHANGES / KILLS) == 0 {
            let victim = draw(2) as usize;
            killed[victim] += 1;
            let node = if victim == 0 { &mut municipality } else { &mut guards };
            node.kill();
            node.restart().await;
        }
        let mut body = report(1 + (change % 20) as i64);
        body["persons"] = serde_json::json!([{"role": "witness", "name": "Anna Andersson"}]);
        match (change % 15, change % 5, live.len()) {
            (7, _, n) if n > 0 => {
                let report = live.swap_remove(draw(n as u64) as usize);
                let path = format!("/api/v1/reports/{report}/retract");
                let retracted = municipality.request(Method::POST, &path).send().await.unwrap();
                assert_eq!(retracted.status(), StatusCode::OK);
                versions.remove(&report);
            }
            (_, 3, n) if n > 0 => {
                let report = live[draw(n as u64) as usize].clone();
                let version = versions[&report];
                body["title"] = serde_json::json!(format!("Change {change}"));
                let updated = municipality
                    .request(Method::PUT, &format!("/api/v1/reports/{report}"))
                    .header("If-Match", format!("\"{version}\""))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(updated.status(), StatusCode::OK);
                versions.insert(report, version + 1);
            }
            _ => {
                let filed = municipality.request(Method::POST, "/api/v1/reports").json(&body).send().await.unwrap();
                assert_eq!(filed.status(), StatusCode::CREATED);
                let filed: Value = filed.json().await.unwrap();
                let report = filed["id"].as_str().unwrap().to_owned();
                live.push(report.clone());
                versions.insert(report, 1);
            }
        }
    }

    // The guards end with exactly the municipality's picture: each live report at its last
    // version, no retracted one.
    assert_eq!(picture_of(&municipality, "source=own").await, versions, "the sender's own picture");
    until_within(
        "the guards converging on the municipality's picture",
        std::time::Duration::from_secs(180),
        || async {
            let held = picture_of(&guards, "source=received").await;
            if held == versions {
                return Ok(());
            }
            let wrong = versions.iter().filter(|(id, v)| held.get(*id) != Some(*v)).count();
            Err(format!("{wrong} of {} reports not at their version, {} held", versions.len(), held.len()))
        },
    )
    .await;
    // Every receipt counts: no version was stored twice, and no name the agreement drops arrived.
    let receipts = audit_of(&guards, "envelope.received").await;
    let stored: Vec<(String, String)> = receipts
        .iter()
        .filter(|e| e["detail"].as_str().is_some_and(|d| d.ends_with(": stored")))
        .map(|e| (e["report"].as_str().unwrap().to_owned(), e["detail"].as_str().unwrap().to_owned()))
        .collect();
    let distinct: std::collections::BTreeSet<&(String, String)> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "a version was stored twice");
    let picture: Value =
        guards.request(Method::GET, "/api/v1/situation?limit=1000").send().await.unwrap().json().await.unwrap();
    assert!(!picture.to_string().contains("Anna"), "a name the agreement drops reached the guards");
    println!(
        "{CHANGES} changes, the sender killed {} times and the receiver {}: {} reports live, {} receipts, \
         {} versions stored once each, 0 stored twice",
        killed[0],
        killed[1],
        versions.len(),
        receipts.len(),
        stored.len()
    );
}
