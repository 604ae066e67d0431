//! Webhook subscriptions against a real HTTP receiver on loopback, with every signature checked by
//! the Standard Webhooks reference implementation (npm `standardwebhooks`, in `tests/webhooks`): a
//! receiver that is down for a while, through a restart of the node, then back gets every change
//! once; a watch over an area hears of a report inside it and not of one outside, and of its
//! erasure and retraction; a rotated secret keeps verifying; and targets on private addresses are
//! refused unless the operator allows them.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::web::{Bytes, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use chrono::Duration;
use lagesbild::clock::{Clock, FixedClock};
use lagesbild::config::NodeConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestNode, expect_problem, report, until_advancing};

on_both_backends!(
    a_receiver_that_was_down_through_a_restart_gets_every_change_once_with_valid_signatures,
    a_watch_over_an_area_hears_of_a_report_inside_it_not_outside_and_of_its_erasure_and_retraction,
    a_target_on_a_private_address_is_refused_unless_the_operator_allows_it,
);

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    /// When the receiver took it, by its clock (the node's: the tests move both together).
    received_at_ms: i64,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A webhook receiver: takes what is POSTed while it is up, answers 503 while it is down. It keeps
/// time by the node's clock, as a receiver whose clock agrees with the sender's.
struct Receiver {
    url: String,
    taken: Arc<Mutex<Vec<Delivery>>>,
    down: Arc<AtomicBool>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    fn start(clock: Arc<FixedClock>) -> Self {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let state = (taken.clone(), down.clone(), clock);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new().app_data(Data::new(state.clone())).default_service(actix_web::web::to(take))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, taken, down, handle }
    }

    fn taken(&self) -> Vec<Delivery> {
        self.taken.lock().unwrap().clone()
    }
}

type ReceiverState = (Arc<Mutex<Vec<Delivery>>>, Arc<AtomicBool>, Arc<FixedClock>);

async fn take(req: HttpRequest, body: Bytes, state: Data<ReceiverState>) -> HttpResponse {
    if state.1.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let header = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    state.0.lock().unwrap().push(Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8(body.to_vec()).unwrap(),
        received_at_ms: state.2.now().timestamp_millis(),
    });
    HttpResponse::NoContent().finish()
}

/// How many of `deliveries` the Standard Webhooks reference implementation verifies with `secret`.
fn verified(secret: &str, deliveries: &[Delivery]) -> usize {
    let input = json!({
        "secret": secret,
        "deliveries": deliveries.iter().map(|d| json!({
            "id": d.id, "timestamp": d.timestamp, "signature": d.signature, "body": d.body,
            "received_at_ms": d.received_at_ms,
        })).collect::<Vec<_>>(),
    });
    let mut child = Command::new("node")
        .arg(format!("{}/tests/webhooks/verify.mjs", env!("CARGO_MANIFEST_DIR")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (tests/run installs the verifier)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(answer["failures"].as_array().unwrap().is_empty(), "{answer}");
    answer["verified"].as_u64().unwrap() as usize
}

fn private_targets(config: &mut NodeConfig) {
    config.webhooks.allow_private_targets = true;
}

/// A node with a configuration file (the command-line tools in these tests read it).
async fn node(backend: Backend, adjust: fn(&mut NodeConfig)) -> TestNode {
    TestNode::spawn_federated_with(backend, "se-kommun-norrkoping", adjust).await
}

async fn subscribe(node: &TestNode, body: &Value) -> Value {
    let created = node.request(Method::POST, "/api/v1/subscriptions").json(body).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text().await.unwrap());
    created.json().await.unwrap()
}

async fn a_receiver_that_was_down_through_a_restart_gets_every_change_once_with_valid_signatures(backend: Backend) {
    let node = node(backend, private_targets).await;
    let receiver = Receiver::start(node.clock.clone());
    let subscription = subscribe(&node, &json!({"name": "allt", "target_url": receiver.url})).await;
    let (id, secret) = (subscription["id"].as_str().unwrap().to_owned(), subscription["secret"].as_str().unwrap());
    assert!(secret.starts_with("whsec_"), "{subscription}");
    let listed: Value = node.get("/api/v1/subscriptions").send().await.unwrap().json().await.unwrap();
    assert!(listed[0].get("secret").is_none(), "the secret is shown again: {listed}");

    receiver.down.store(true, Ordering::SeqCst);
    let mut filed = Vec::new();
    for n in 0..10 {
        filed.push(node.file(&report(n)).await["id"].as_str().unwrap().to_owned());
    }
    let path = format!("/api/v1/subscriptions/{id}");
    until_advancing(&[&node], Duration::seconds(2), || async {
        let view: Value = node.get(&path).send().await.unwrap().json().await.unwrap();
        (view["delivery"]["last_error"].as_str().is_some_and(|e| e.contains("503")) && view["delivery"]["queued"] == 10)
            .then_some(())
    })
    .await;
    // The queue is the store's: it outlives the node.
    let node = node.restart().await;
    for n in 10..20 {
        filed.push(node.file(&report(n)).await["id"].as_str().unwrap().to_owned());
    }
    receiver.down.store(false, Ordering::SeqCst);
    until_advancing(&[&node], Duration::seconds(10), || async {
        let view: Value = node.get(&path).send().await.unwrap().json().await.unwrap();
        (view["delivery"]["queued"] == 0 && receiver.taken().len() >= 20).then_some(())
    })
    .await;
    let taken = receiver.taken();
    let mut ids: Vec<&str> = taken.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((taken.len(), ids.len()), (20, 20), "a change missing or sent twice");
    let mut reports: Vec<String> = taken.iter().map(|d| d.json()["data"]["id"].as_str().unwrap().to_owned()).collect();
    reports.sort();
    filed.sort();
    assert_eq!(reports, filed);
    assert!(taken.iter().all(|d| d.json()["type"] == "picture.filed" && d.json()["subscription"] == "allt"));
    assert_eq!(verified(secret, &taken), 20);
    let audited: Value =
        node.get("/api/v1/audit?event=webhook.delivered&limit=100").send().await.unwrap().json().await.unwrap();
    assert_eq!(audited["entries"].as_array().unwrap().len(), 20);
    node.stop().await;
    receiver.handle.stop(true).await;
}

async fn a_watch_over_an_area_hears_of_a_report_inside_it_not_outside_and_of_its_erasure_and_retraction(
    backend: Backend,
) {
    let node = node(backend, private_targets).await;
    let receiver = Receiver::start(node.clock.clone());
    // Around Hagebyskolan, where `report` places its incidents.
    let hageby = json!({"type": "Polygon", "coordinates": [[[16.14, 58.60], [16.17, 58.60], [16.17, 58.62], [16.14, 58.62], [16.14, 58.60]]]});
    let body = json!({
        "name": "skolor i Hageby, natt",
        "target_url": receiver.url,
        "watch": {"area": hageby, "categories": ["vandalism"], "min_severity": "moderate"}
    });
    let subscription = subscribe(&node, &body).await;
    let secret = subscription["secret"].as_str().unwrap().to_owned();
    let inside = node.file(&report(1)).await["id"].as_str().unwrap().to_owned();
    let mut elsewhere = report(1);
    elsewhere["location"]["lat"] = json!(59.33);
    elsewhere["location"]["lon"] = json!(18.06);
    node.file(&elsewhere).await;
    let mut minor = report(1);
    minor["severity"] = json!("minor");
    node.file(&minor).await;

    // The receiver hears of the one inside. Each change is judged by the report as it stands when
    // the node looks, four times a second: changes closer together than that reach the receiver as
    // the latest of them (a report filed and retracted before the node looked was never in the
    // subscriber's picture, and nothing is sent of it), so the test lets each arrive in turn.
    until_advancing(&[&node], Duration::seconds(1), || async { (!receiver.taken().is_empty()).then_some(()) }).await;

    // Rotated: what follows is signed with the new secret and, for a day, the old one too.
    let rotated = node
        .request(Method::POST, &format!("/api/v1/subscriptions/{}/rotate-secret", subscription["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let new_secret = rotated.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["gdpr", "erase", "--name", "Anna Andersson", "--yes", "--config"])
        .arg(node.identity_dir.as_ref().unwrap().path().join("node.toml"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    until_advancing(&[&node], Duration::seconds(1), || async { (receiver.taken().len() >= 2).then_some(()) }).await;
    let retract = format!("/api/v1/reports/{inside}/retract");
    assert_eq!(node.request(Method::POST, &retract).send().await.unwrap().status(), StatusCode::OK);

    let taken = until_advancing(&[&node], Duration::seconds(1), || async {
        let taken = receiver.taken();
        (taken.len() >= 3).then_some(taken)
    })
    .await;
    let kinds: Vec<(String, String)> = taken
        .iter()
        .map(|d| (d.json()["type"].as_str().unwrap().to_owned(), d.json()["data"]["id"].as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<(String, String)> = ["picture.filed", "picture.erased", "picture.retracted"]
        .iter()
        .map(|k| (k.to_string(), inside.clone()))
        .collect();
    assert_eq!(kinds, expected);
    assert!(!taken[1].body.contains("Anna Andersson") && taken[1].json()["data"]["report"].is_object());
    assert!(taken[2].json()["data"].get("report").is_none(), "{}", taken[2].body);
    assert_eq!(verified(&secret, &taken[1..]), 2, "the old secret no longer verifies");
    assert_eq!(verified(&new_secret, &taken[1..]), 2);
    node.stop().await;
    receiver.handle.stop(true).await;
}

fn one_subscription(config: &mut NodeConfig) {
    config.webhooks.allow_private_targets = true;
    config.webhooks.max_subscriptions = 1;
}

async fn a_target_on_a_private_address_is_refused_unless_the_operator_allows_it(backend: Backend) {
    let strict = TestNode::spawn(backend).await;
    for (target, says) in [
        ("http://127.0.0.1:9/hook", "must use https"),
        ("https://127.0.0.1:9/hook", "loopback, private or link-local"),
        ("https://169.254.169.254/latest/meta-data", "loopback, private or link-local"),
        ("https://[::1]/hook", "loopback, private or link-local"),
        ("https://10.0.0.8/hook", "loopback, private or link-local"),
        ("https://user:secret@guards.example/hook", "user name or password"),
        ("not a url", "absolute http or https URL"),
    ] {
        let refused = strict
            .request(Method::POST, "/api/v1/subscriptions")
            .json(&json!({"target_url": target}))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
        let error = &problem["errors"][0];
        assert_eq!(error["field"], "target_url", "{problem}");
        assert!(error["message"].as_str().unwrap().contains(says), "{target}: {problem}");
    }
    let bad_area = json!({"target_url": "https://127.0.0.1/", "watch": {"area": {"type": "Polygon", "coordinates": [[[16.1, 58.6], [16.2, 58.6]]]}}});
    let problem = expect_problem(
        strict.request(Method::POST, "/api/v1/subscriptions").json(&bad_area).send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["watch.area.coordinates", "target_url"], "{problem}");
    strict.stop().await;

    let open = TestNode::spawn_with(backend, one_subscription).await;
    subscribe(&open, &json!({"target_url": "http://127.0.0.1:9/hook"})).await;
    let second = open
        .request(Method::POST, "/api/v1/subscriptions")
        .json(&json!({"target_url": "http://127.0.0.1:9/other"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(second, StatusCode::CONFLICT).await;
    assert!(problem["detail"].as_str().unwrap().contains("webhooks.max_subscriptions"), "{problem}");
    open.stop().await;
}
