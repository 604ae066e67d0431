//! The live stream of the picture's changes, read as a client would over HTTP: a client that drops
//! off while a thousand changes are made resumes with `Last-Event-ID` and gets each exactly once, in
//! order; replicas on one PostgreSQL number one gap-free sequence; retractions, erasures,
//! withdrawals and deletions arrive as events; what a client rebuilds from the stream is what
//! `/situation` shows it; and a client that stops reading loses its place.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration as StdDuration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::exchange::{GUARDING, GUARDS, MUNICIPALITY, agree, federation, id_of};
use crate::on_both_backends;
use crate::support::{Backend, TOKEN, TestNode, expect_problem, report, until_within};

on_both_backends!(
    a_client_that_drops_off_during_a_thousand_changes_resumes_and_gets_each_once_in_order,
    retractions_erasures_withdrawals_and_deletions_reach_the_stream_as_events,
    what_a_client_rebuilds_from_the_stream_is_what_the_picture_shows_it,
    a_stream_is_set_up_for_proxies_and_bounded_in_number,
    a_stream_client_that_accepts_nothing_loses_its_place,
);

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Option<i64>,
    pub kind: String,
    pub data: Value,
}

/// A client of a node's live stream.
pub struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    /// Opens the stream with `query` (filters, `last_event_id`) and, if given, a `Last-Event-ID`.
    pub async fn open(node: &TestNode, query: &str, last_event_id: Option<i64>) -> Self {
        let mut request = node.get(&format!("/api/v1/situation/stream{query}"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        Self::of(request.send().await.unwrap())
    }

    /// Reads a stream some client opened.
    pub fn of(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        Self { response, buffer: String::new() }
    }

    /// The next event (heartbeats and comments skipped), within ten seconds.
    pub async fn next(&mut self) -> Event {
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        kind = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Event { id, kind, data: serde_json::from_str(&data).unwrap() };
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("no event within 10 s")
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events until one with an id of `last` or later.
    pub async fn until(&mut self, last: i64) -> Vec<Event> {
        let mut events = Vec::new();
        while events.last().and_then(|e: &Event| e.id).is_none_or(|id| id < last) {
            events.push(self.next().await);
        }
        events
    }
}

/// The `last_event_id` of the picture now, with `query`.
async fn picture_at(node: &TestNode, query: &str) -> (Vec<Value>, i64) {
    let page = node.situation(&format!("?limit=1000{query}")).await;
    (page["reports"].as_array().unwrap().clone(), page["last_event_id"].as_i64().unwrap())
}

async fn a_client_that_drops_off_during_a_thousand_changes_resumes_and_gets_each_once_in_order(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let (_, start) = picture_at(&node, "").await;
    let mut stream = Stream::open(&node, &format!("?last_event_id={start}"), None).await;
    let filing = {
        let (url, client) = (node.url("/api/v1/reports"), node.client.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..1_000 {
                let mut body = report(n % 48);
                body["title"] = json!(format!("Change {n}"));
                let filed: Value =
                    client.post(&url).bearer_auth(TOKEN).json(&body).send().await.unwrap().json().await.unwrap();
                ids.push(filed["id"].as_str().unwrap().to_owned());
            }
            ids
        })
    };
    let mut events = Vec::new();
    for _ in 0..100 {
        events.push(stream.next().await);
    }
    drop(stream);
    let filed = filing.await.unwrap();
    let last_seen = events.last().unwrap().id.unwrap();
    let mut stream = Stream::open(&node, "", Some(last_seen)).await;
    events.extend(stream.until(start + 1_000).await);

    let seqs: Vec<i64> = events.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(seqs, (start + 1..=start + 1_000).collect::<Vec<_>>(), "a gap, a repeat or a change out of order");
    let streamed: Vec<&str> = events.iter().map(|e| e.data["id"].as_str().unwrap()).collect();
    assert_eq!(streamed, filed, "the events are not the filings, in order");
    assert!(events.iter().all(|e| e.kind == "filed" && e.data["report"]["source"] == "own"));
    node.stop().await;
}

/// Replicas of one node share a PostgreSQL database: both stream the same numbers, with no gap,
/// whichever replica filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_stream_one_gap_free_sequence() {
    let first = TestNode::spawn(Backend::Postgres).await;
    let second = first.replica().await;
    let (_, start) = picture_at(&first, "").await;
    let mut streams = [
        Stream::open(&first, &format!("?last_event_id={start}"), None).await,
        Stream::open(&second, &format!("?last_event_id={start}"), None).await,
    ];
    let file_at = |node: &TestNode| {
        let (url, client) = (node.url("/api/v1/reports"), node.client.clone());
        tokio::spawn(async move {
            for n in 0..100 {
                let filed = client.post(&url).bearer_auth(TOKEN).json(&report(n % 24)).send().await.unwrap();
                assert_eq!(filed.status(), StatusCode::CREATED);
            }
        })
    };
    let (a, b) = (file_at(&first), file_at(&second));
    a.await.unwrap();
    b.await.unwrap();
    let expected: Vec<i64> = (start + 1..=start + 200).collect();
    for stream in &mut streams {
        let seqs: Vec<i64> = stream.until(start + 200).await.iter().map(|e| e.id.unwrap()).collect();
        assert_eq!(seqs, expected);
    }
    drop(streams);
    second.stop().await;
    first.stop().await;
}

async fn retractions_erasures_withdrawals_and_deletions_reach_the_stream_as_events(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    let agreement = agree(&[municipality, guards], GUARDING).await;
    let (_, here) = picture_at(municipality, "").await;
    let (_, there) = picture_at(guards, "").await;
    let mut own = Stream::open(municipality, &format!("?last_event_id={here}"), None).await;
    let mut received = Stream::open(guards, &format!("?last_event_id={there}"), None).await;

    // Filed here, received there.
    let kept = id_of(&municipality.file(&report(2)).await);
    let retracted = id_of(&municipality.file(&report(3)).await);
    for stream in [&mut own, &mut received] {
        let events = [stream.next().await, stream.next().await];
        assert!(events.iter().all(|e| e.kind == "filed" && e.data["report"].is_object()), "{events:?}");
    }

    // A retraction: retracted here, withdrawn there; the report is gone from both pictures.
    let path = format!("/api/v1/reports/{retracted}/retract");
    assert_eq!(municipality.request(Method::POST, &path).send().await.unwrap().status(), StatusCode::OK);
    let event = own.next().await;
    assert_eq!((event.kind.as_str(), event.data["id"].as_str()), ("retracted", Some(retracted.as_str())));
    assert!(event.data.get("report").is_none(), "{event:?}");
    let event = received.next().await;
    assert_eq!((event.kind.as_str(), event.data["id"].as_str()), ("withdrawn", Some(retracted.as_str())));
    assert!(event.data.get("report").is_none(), "{event:?}");

    // An erasure: the same version, without the person.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["gdpr", "erase", "--name", "Anna Andersson", "--yes", "--config"])
        .arg(municipality.identity_dir.as_ref().unwrap().path().join("node.toml"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Both reports named her; the retracted one stays out of the picture.
    let erased = [own.next().await, own.next().await];
    assert!(erased.iter().all(|e| e.kind == "erased"), "{erased:?}");
    let ids: HashSet<&str> = erased.iter().map(|e| e.data["id"].as_str().unwrap()).collect();
    assert_eq!(ids, HashSet::from([kept.as_str(), retracted.as_str()]));
    for event in &erased {
        let shown = event.data.get("report");
        assert_eq!(shown.is_some(), event.data["id"] == kept.as_str(), "{event:?}");
        assert!(!event.data.to_string().contains("Anna Andersson"), "{event:?}");
    }

    // The agreement ends: what the guards received under it is deleted.
    let revoked =
        municipality.request(Method::POST, &format!("/api/v1/agreements/{agreement}/revoke")).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let mut deleted = HashSet::new();
    while deleted.len() < 2 {
        let event = received.next().await;
        if event.kind == "deleted" {
            deleted.insert(event.data["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(deleted, HashSet::from([kept.clone(), retracted.clone()]));
    drop((own, received));
    for node in nodes {
        node.stop().await;
    }
}

async fn what_a_client_rebuilds_from_the_stream_is_what_the_picture_shows_it(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let filter = "&category=vandalism,fire&min_severity=moderate&bbox=16.0,58.5,16.3,58.7&source=own";
    // Some of the picture is there before the client starts.
    for n in 0..5 {
        node.file(&variant(n)).await;
    }
    let (picture, start) = picture_at(&node, filter).await;
    let mut rebuilt: BTreeMap<String, Value> =
        picture.into_iter().map(|r| (r["id"].as_str().unwrap().to_owned(), r)).collect();
    let mut stream = Stream::open(&node, &format!("?last_event_id={start}{filter}"), None).await;
    let mut ids = Vec::new();
    for n in 0..40u32 {
        match n % 4 {
            0 | 1 => ids.push(id_of(&node.file(&variant(n)).await)),
            2 => {
                // A change that moves a report into or out of the filter.
                let id = &ids[(n as usize * 7) % ids.len()];
                let current: Value =
                    node.get(&format!("/api/v1/reports/{id}")).send().await.unwrap().json().await.unwrap();
                let version = current["version"].as_i64().unwrap();
                let changed = node
                    .request(Method::PUT, &format!("/api/v1/reports/{id}"))
                    .header("If-Match", format!("\"{version}\""))
                    .json(&variant(n + 1))
                    .send()
                    .await
                    .unwrap();
                assert!(
                    changed.status().is_success() || changed.status() == StatusCode::CONFLICT,
                    "{}",
                    changed.status()
                );
            }
            _ => {
                let id = &ids[(n as usize * 5) % ids.len()];
                node.request(Method::POST, &format!("/api/v1/reports/{id}/retract")).send().await.unwrap();
            }
        }
    }
    let (picture, last) = picture_at(&node, filter).await;
    for event in stream.until(last).await {
        let id = event.data["id"].as_str().unwrap().to_owned();
        match event.data.get("report") {
            Some(report) => rebuilt.insert(id, report.clone()),
            None => rebuilt.remove(&id),
        };
    }
    let shown: BTreeMap<String, Value> =
        picture.into_iter().map(|r| (r["id"].as_str().unwrap().to_owned(), r)).collect();
    assert!(!shown.is_empty() && shown.len() < 40, "the filter admits {} reports: a vacuous test", shown.len());
    assert_eq!(rebuilt, shown);
    drop(stream);
    node.stop().await;
}

/// A report that the test's filter admits or not, by `n`: category, severity and place vary.
fn variant(n: u32) -> Value {
    let mut body = report(i64::from(n % 12));
    body["category"] = json!(["vandalism", "fire", "burglary"][n as usize % 3]);
    body["severity"] = json!(["minor", "moderate", "severe"][n as usize % 3 * 7 % 3]);
    if n.is_multiple_of(5) {
        body["location"]["lat"] = json!(59.33);
        body["location"]["lon"] = json!(18.06);
    }
    body["title"] = json!(format!("Variant {n}"));
    body
}

fn one_stream(config: &mut lagesbild::config::NodeConfig) {
    config.api.max_streams = 1;
}

async fn a_stream_is_set_up_for_proxies_and_bounded_in_number(backend: Backend) {
    let node = TestNode::spawn_with(backend, one_stream).await;
    let response = node.get("/api/v1/situation/stream").header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers.get("content-encoding").is_none_or(|v| v == "identity"), "{headers:?}");
    // The node's one stream is taken: another waits its turn.
    let refused = node.get("/api/v1/situation/stream").send().await.unwrap();
    let problem = expect_problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(problem["detail"].as_str().unwrap().contains("at most 1 live streams"), "{problem}");
    drop(response);
    // Once it closes, the place is free again; a client from the future is told to reload.
    // The node learns the client left when a heartbeat cannot be written.
    let mut stream = until_within("the stream's place was not freed", StdDuration::from_secs(30), || async {
        let answer = node.get("/api/v1/situation/stream").header("Last-Event-ID", "999999").send().await.unwrap();
        if answer.status() == StatusCode::OK {
            Ok(Stream { response: answer, buffer: String::new() })
        } else {
            Err(answer.status().to_string())
        }
    })
    .await;
    let reset = stream.next().await;
    assert_eq!(reset.kind, "reset", "{reset:?}");
    assert!(reset.data["reason"].as_str().unwrap().contains("newer than any"), "{reset:?}");
    // A bad id or filter is refused before anything streams.
    let bad = node.get("/api/v1/situation/stream?last_event_id=yesterday&bbox=1,2").send().await.unwrap();
    let problem = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["bbox", "last_event_id"], "{problem}");
    drop(stream);
    node.stop().await;
}

/// A client that opens the stream, reads the answer's head, and then reads nothing, with a small
/// receive buffer: its connection fills after a few changes.
async fn open_without_reading(node: &TestNode) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = node.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4_096).unwrap();
    let mut connection = socket.connect(addr).await.unwrap();
    let request =
        format!("GET /api/v1/situation/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    connection.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(connection.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    connection
}

async fn a_stream_client_that_accepts_nothing_loses_its_place(backend: Backend) {
    let node = TestNode::spawn_with(backend, |config| {
        config.api.max_streams = 1;
        config.api.stream_stall_seconds = 1;
    })
    .await;
    let _stalled = open_without_reading(&node).await;
    let refused = node.get("/api/v1/situation/stream").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Changes fill its connection; once full for a second, its place is free for another client.
    let mut body = report(1);
    body["description"] = json!("Glass on the schoolyard. ".repeat(360));
    let mut stream = until_within("the stalled client kept its place", StdDuration::from_secs(120), || async {
        let filings = (0..20).map(|_| node.request(Method::POST, "/api/v1/reports").json(&body).send());
        for filed in futures_util::future::join_all(filings).await {
            assert_eq!(filed.unwrap().status(), StatusCode::CREATED);
        }
        let answer = node.get("/api/v1/situation/stream").send().await.unwrap();
        if answer.status() == StatusCode::OK {
            Ok(Stream { response: answer, buffer: String::new() })
        } else {
            Err(answer.status().to_string())
        }
    })
    .await;
    let audit: Value =
        node.get("/api/v1/audit?event=situation.stream_dropped").send().await.unwrap().json().await.unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["actor"], "token:dev", "{audit}");
    // The new client follows the picture.
    let filed = id_of(&node.file(&report(2)).await);
    let event = stream.next().await;
    assert_eq!((event.kind.as_str(), event.data["id"].as_str()), ("filed", Some(filed.as_str())));
    node.stop().await;
}
