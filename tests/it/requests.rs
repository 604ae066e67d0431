//! Requests between partners (issue 19), between real nodes over mutual TLS on both databases:
//! the municipality asks its guard company for a patrol, the guards accept, answer and close it,
//! and both nodes hold the same signed thread; a request to a partner whose agreement allows no
//! requests is refused at the sender; one made while the partner is down arrives on its return; an
//! unanswered one past its due time is overdue; and a partner cannot slip in a request or a step
//! the agreements do not allow.

use std::time::Duration as StdDuration;

use chrono::Duration;
use lagesbild::clock::Clock;
use lagesbild::crypto::jws::{self, Jws};
use lagesbild::domain::request::{REQUEST_STEP_TYPE, REQUEST_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::exchange::{
    GUARDING, GUARDS, MUNICIPALITY, POLICE, RETAILER, SAFETY, agree, agree_on, audit, federation, template,
};
use crate::on_both_backends;
use crate::peering::client;
use crate::support::{Backend, TestNode, expect_problem, report, until, until_advancing};

on_both_backends!(
    a_request_from_the_municipality_to_the_guard_company_is_accepted_answered_and_closed_with_the_same_signed_thread_on_both_nodes,
    a_request_to_a_party_with_no_request_flow_is_refused_at_the_sender_with_a_clear_reason,
    a_request_made_while_the_partner_is_down_is_delivered_on_its_return,
    an_unanswered_request_past_its_due_time_is_overdue_until_it_is_answered,
    a_partner_cannot_send_a_request_or_a_step_the_agreements_do_not_allow,
    a_request_carries_the_persons_of_its_report_only_as_their_roles,
    a_request_is_deleted_on_both_sides_once_its_agreements_retention_has_passed,
    a_request_queued_when_its_agreement_is_revoked_never_reaches_the_partner,
    a_request_goes_on_under_the_amendment_of_its_agreement,
);

/// What the municipality asks the guards, about `report` if given.
fn patrol(report: Option<&str>) -> Value {
    let mut ask = json!({
        "to": GUARDS,
        "subject": "Can a patrol pass Hagebyskolan between 22 and 02 tonight?",
        "details": "Windows were broken at the gym twice this week.",
        "place": {"name": "Hagebyskolan, gym entrance", "lat": 58.5712, "lon": 16.1523, "radius_m": 200},
        "window": {"from": "2026-11-25T21:00:00Z", "until": "2026-11-26T01:00:00Z"},
        "due": "2026-11-25T18:00:00Z"
    });
    if let Some(report) = report {
        ask["report"] = json!(report);
    }
    ask
}

/// Asks at `node`, expecting it made.
async fn ask(node: &TestNode, body: &Value) -> Value {
    let answer = node.request(Method::POST, "/api/v1/requests").json(body).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED, "{}", answer.text().await.unwrap());
    answer.json().await.unwrap()
}

/// `node`'s request `id` with its thread.
async fn thread(node: &TestNode, id: &str) -> Value {
    let answer = node.get(&format!("/api/v1/requests/{id}")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

/// `node`'s request `id` once it is held there.
async fn arrived(node: &TestNode, id: &str) -> Value {
    until(|| async {
        let answer = node.get(&format!("/api/v1/requests/{id}")).send().await.unwrap();
        if answer.status() == StatusCode::OK { Some(answer.json().await.unwrap()) } else { None }
    })
    .await
}

/// Takes a step at `node`, expecting it taken.
async fn take(node: &TestNode, id: &str, kind: &str, text: &str) -> Value {
    let answer = node
        .request(Method::POST, &format!("/api/v1/requests/{id}/steps"))
        .json(&json!({"kind": kind, "text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{kind}: {}", answer.text().await.unwrap());
    answer.json().await.unwrap()
}

/// The `request` events of a requests stream until one shows request `id` with `status`. Each
/// event is a request as it stands when the stream reads it.
async fn streamed_until(stream: &mut reqwest::Response, id: &str, status: &str) -> Vec<Value> {
    let mut text = String::new();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await.expect("the stream went quiet").unwrap();
        text.push_str(std::str::from_utf8(&chunk.expect("the stream ended")).unwrap());
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if !event.contains("event: request") {
                continue;
            }
            let data = event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            let request: Value = serde_json::from_str(data).unwrap();
            let done = request["id"] == id && request["status"] == status;
            seen.push(request);
            if done {
                return seen;
            }
        }
    }
}

async fn a_request_from_the_municipality_to_the_guard_company_is_accepted_answered_and_closed_with_the_same_signed_thread_on_both_nodes(
    backend: Backend,
) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let (municipality, guards) = (&nodes[0], &nodes[1]);
    agree(&[municipality, guards], GUARDING).await;
    let mut filed = report(3);
    filed["persons"] = json!([{"role": "suspect", "name": "Kalle Anka", "age": 17}]);
    let filed = municipality.file(&filed).await;
    let report_id = filed["id"].as_str().unwrap();
    let mut stream = municipality.get("/api/v1/requests/stream").send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    let made = ask(municipality, &patrol(Some(report_id))).await;
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["status"], "open");
    assert_eq!(made["agreement"], "se-norrkoping-kommun-vaktbolag");
    // The report goes as the agreement gives it to the guards: without the persons.
    assert_eq!(made["report_view"]["id"], report_id);
    assert!(made["report_view"].get("persons").is_none(), "{made}");
    assert!(!made.to_string().contains("Kalle"), "{made}");

    // The municipality's console and integrations follow it live.
    streamed_until(&mut stream, &id, "open").await;
    let received = arrived(guards, &id).await;
    assert_eq!(received["direction"], "received");
    assert!(!received.to_string().contains("Kalle"), "{received}");
    let listed: Value =
        guards.get("/api/v1/requests?direction=received&state=open").send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["requests"][0]["id"], id.as_str(), "{listed}");

    take(guards, &id, "acknowledged", "").await;
    take(guards, &id, "accepted", "We add Hagebyskolan to tonight's round.").await;
    take(guards, &id, "answered", "Patrol passed at 23:10 and 01:30; the gym entrance was quiet.").await;
    let closed = take(guards, &id, "done", "").await;
    assert_eq!(closed["status"], "done");
    // Nothing follows a closed request.
    let after = guards
        .request(Method::POST, &format!("/api/v1/requests/{id}/steps"))
        .json(&json!({"kind": "answered", "text": "one more"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(after, StatusCode::CONFLICT).await;
    assert!(problem["detail"].as_str().unwrap().contains("nothing follows"), "{problem}");

    // To the end.
    let events = streamed_until(&mut stream, &id, "done").await;
    assert!(events.iter().all(|e| e["id"] == id.as_str() && e["direction"] == "sent"), "{events:?}");

    // Both nodes hold the same thread, each entry as its node signed it.
    let at_municipality = until(|| async {
        let thread = thread(municipality, &id).await;
        (thread["status"] == "done").then_some(thread)
    })
    .await;
    let at_guards = thread(guards, &id).await;
    assert_eq!(at_municipality["statement"], at_guards["statement"]);
    let statements = |t: &Value| -> Vec<Value> {
        t["steps"].as_array().unwrap().iter().map(|s| json!([s["seq"], s["kind"], s["text"], s["statement"]])).collect()
    };
    assert_eq!(statements(&at_municipality), statements(&at_guards));
    assert_eq!(
        at_municipality["steps"].as_array().unwrap().iter().map(|s| s["kind"].clone()).collect::<Vec<_>>(),
        ["acknowledged", "accepted", "answered", "done"]
    );
    let municipality_key = municipality.keys().signing.public();
    let guards_key = guards.keys().signing.public();
    let request = Jws::parse(at_guards["statement"].as_str().unwrap().as_bytes()).unwrap();
    request.verify(REQUEST_TYPE, |kid| (kid == municipality_key.key_id()).then_some(municipality_key)).unwrap();
    for step in at_municipality["steps"].as_array().unwrap() {
        let signed = Jws::parse(step["statement"].as_str().unwrap().as_bytes()).unwrap();
        signed.verify(REQUEST_STEP_TYPE, |kid| (kid == guards_key.key_id()).then_some(guards_key)).unwrap();
        assert_eq!(step["delivery"], Value::Null, "the municipality took no step: {step}");
    }
    for step in at_guards["steps"].as_array().unwrap() {
        assert_eq!(step["delivery"]["state"], "delivered", "{step}");
    }
    assert_eq!(at_municipality["delivery"]["state"], "delivered");

    // Both audit trails say who did what.
    assert_eq!(audit(municipality, "event=request.sent").await.len(), 1);
    assert_eq!(audit(guards, "event=request.received").await.len(), 1);
    assert_eq!(audit(guards, "event=request.step").await.len(), 4);
    assert_eq!(audit(municipality, "event=request.step_received").await.len(), 4);
}

async fn a_request_to_a_party_with_no_request_flow_is_refused_at_the_sender_with_a_clear_reason(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    let (municipality, police, retailer) = (&nodes[0], &nodes[1], &nodes[2]);
    agree(&[municipality, police, retailer], SAFETY).await;
    let mut body = patrol(None);
    body["to"] = json!(RETAILER);
    let refused = municipality.request(Method::POST, "/api/v1/requests").json(&body).send().await.unwrap();
    let problem = expect_problem(refused, StatusCode::FORBIDDEN).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("no active agreement lets se-kommun-norrkoping send requests to se-ica-hageby"),
        "{detail}"
    );
    assert!(detail.contains("requests = true"), "{detail}");
    // Naming the agreement says what it lacks.
    body["agreement"] = json!("se-norrkoping-trygghetsoverenskommelse");
    let named = municipality.request(Method::POST, "/api/v1/requests").json(&body).send().await.unwrap();
    let problem = expect_problem(named, StatusCode::FORBIDDEN).await;
    assert!(problem["detail"].as_str().unwrap().contains("requests"), "{problem}");
    // Nothing was kept or sent.
    let listed: Value = municipality.get("/api/v1/requests").send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["requests"], json!([]));
    assert!(audit(municipality, "event=request.sent").await.is_empty());
    let queued = municipality.store().lifecycle_states().await.unwrap();
    assert!(queued.is_empty(), "{queued:?}");
}

async fn a_request_made_while_the_partner_is_down_is_delivered_on_its_return(backend: Backend) {
    let mut nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let mut guards = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    agree(&[&municipality, &guards], GUARDING).await;
    guards.halt().await;

    let made = ask(&municipality, &patrol(None)).await;
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["delivery"]["state"], "queued");
    // It waits, saying why.
    until_advancing(&[&municipality], Duration::seconds(1), || async {
        let thread = thread(&municipality, &id).await;
        thread["delivery"]["last_error"].as_str().map(|_| ())
    })
    .await;

    let guards = guards.restart().await;
    let received = until_advancing(&[&municipality, &guards], Duration::seconds(5), || async {
        let answer = guards.get(&format!("/api/v1/requests/{id}")).send().await.unwrap();
        if answer.status() == StatusCode::OK { Some(answer.json::<Value>().await.unwrap()) } else { None }
    })
    .await;
    assert_eq!(received["subject"], made["subject"]);
    until(|| async { (thread(&municipality, &id).await["delivery"]["state"] == "delivered").then_some(()) }).await;
    // Once, however often it was tried.
    assert_eq!(audit(&guards, "event=request.received").await.len(), 1);
    municipality.stop().await;
    guards.stop().await;
}

async fn an_unanswered_request_past_its_due_time_is_overdue_until_it_is_answered(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let (municipality, guards) = (&nodes[0], &nodes[1]);
    agree(&[municipality, guards], GUARDING).await;
    let mut body = patrol(None);
    body.as_object_mut().unwrap().remove("due");
    let made = ask(municipality, &body).await;
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["overdue"], false);
    arrived(guards, &id).await;
    take(guards, &id, "accepted", "").await;

    // A day later (the default due time) it is overdue on both sides.
    for node in [municipality, guards] {
        node.clock.advance(Duration::hours(24) + Duration::minutes(1));
    }
    for node in [municipality, guards] {
        let overdue: Value = node.get("/api/v1/requests?state=open").send().await.unwrap().json().await.unwrap();
        assert_eq!(overdue["requests"][0]["overdue"], true, "{overdue}");
    }
    take(guards, &id, "answered", "Nothing seen on two passes.").await;
    let answered = until(|| async {
        let thread = thread(municipality, &id).await;
        (thread["status"] == "answered").then_some(thread)
    })
    .await;
    assert_eq!(answered["overdue"], false);
}

async fn a_partner_cannot_send_a_request_or_a_step_the_agreements_do_not_allow(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let (municipality, guards) = (&nodes[0], &nodes[1]);
    agree(&[municipality, guards], GUARDING).await;
    let now = guards.clock.now();
    let signed_by_guards =
        |payload: Value, typ: &str| jws::sign(&serde_json::to_vec(&payload).unwrap(), typ, &[&guards.keys().signing]);
    let from_guards = client(guards, municipality).await;

    // The agreement's flow from the guards to the municipality allows no requests.
    let request = json!({
        "id": uuid::Uuid::now_v7(), "agreement": "se-norrkoping-kommun-vaktbolag",
        "from": GUARDS, "to": MUNICIPALITY, "subject": "Open the gym for us", "due": now + Duration::hours(2),
        "asked_at": now
    });
    let refused = from_guards.post("/federation/v1/requests", &signed_by_guards(request, REQUEST_TYPE)).await;
    assert!(
        matches!(&refused, Err(lagesbild::federation::client::ClientError::Refused { status: 403, detail, .. })
            if detail.contains("does not let se-vaktbolaget-ost send requests")),
        "{refused:?}"
    );
    // A step on a request the municipality never made.
    let step = json!({
        "request": uuid::Uuid::now_v7(), "asker": MUNICIPALITY, "by": GUARDS, "seq": 1, "kind": "accepted", "at": now
    });
    let refused = from_guards.post("/federation/v1/requests/steps", &signed_by_guards(step, REQUEST_STEP_TYPE)).await;
    assert!(
        matches!(&refused, Err(lagesbild::federation::client::ClientError::Refused { status: 403, .. })),
        "{refused:?}"
    );
    // A step ahead of those the municipality holds is not taken yet: the steps between may still
    // be on their way, each retried on its own, so the sender is told to try again (503).
    let made = ask(municipality, &patrol(None)).await;
    let id = made["id"].as_str().unwrap();
    arrived(guards, id).await;
    let step = |seq: u32, kind: &str, text: &str| {
        let body = json!({"request": id, "asker": MUNICIPALITY, "by": GUARDS, "seq": seq, "kind": kind, "text": text, "at": now});
        signed_by_guards(body, REQUEST_STEP_TYPE)
    };
    let later = from_guards.post("/federation/v1/requests/steps", &step(2, "accepted", "")).await;
    assert!(
        matches!(&later, Err(lagesbild::federation::client::ClientError::Refused { status: 503, .. })),
        "{later:?}"
    );
    from_guards.post("/federation/v1/requests/steps", &step(1, "acknowledged", "")).await.unwrap();
    from_guards.post("/federation/v1/requests/steps", &step(2, "accepted", "")).await.unwrap();
    assert_eq!(thread(municipality, id).await["status"], "accepted");
    // A step that cannot follow the status is refused for good.
    let refused = from_guards.post("/federation/v1/requests/steps", &step(3, "declined", "no")).await;
    assert!(
        matches!(&refused, Err(lagesbild::federation::client::ClientError::Refused { status: 409, .. })),
        "{refused:?}"
    );
    // The asker takes no steps on its own request.
    let own = municipality
        .request(Method::POST, &format!("/api/v1/requests/{id}/steps"))
        .json(&json!({"kind": "done"}))
        .send()
        .await
        .unwrap();
    expect_problem(own, StatusCode::FORBIDDEN).await;

    assert_eq!(audit(municipality, "event=request.refused").await.len(), 1);
    assert_eq!(audit(municipality, "event=request.step_refused").await.len(), 3);
    assert_eq!(thread(municipality, id).await["status"], "accepted");
}

async fn a_request_carries_the_persons_of_its_report_only_as_their_roles(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    let (municipality, police, retailer) = (&nodes[0], &nodes[1], &nodes[2]);
    // The safety agreement's flow to the police keeps persons; here it also allows requests.
    let mut agreement = template(SAFETY);
    for flow in agreement["flows"].as_array_mut().unwrap() {
        if flow["from"] == json!([MUNICIPALITY]) && flow["to"] == json!([POLICE]) {
            assert_eq!(flow["fields"]["persons"], "keep", "{flow}");
            flow["requests"] = json!(true);
        }
    }
    agree_on(&[municipality, police, retailer], &agreement).await;
    let filed = municipality.file(&report(2)).await;
    let mut ask_police = patrol(Some(filed["id"].as_str().unwrap()));
    ask_police["to"] = json!(POLICE);
    let made = ask(municipality, &ask_police).await;
    assert_eq!(made["report_view"]["persons"], json!({"counts": [{"role": "witness", "count": 1}]}), "{made}");
    let received = arrived(police, made["id"].as_str().unwrap()).await;
    assert!(!received.to_string().contains("Anna Andersson"), "{received}");
    assert_eq!(received["report_view"]["title"], "Broken windows at Hagebyskolan");
}

async fn a_request_is_deleted_on_both_sides_once_its_agreements_retention_has_passed(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], crate::exchange::sweep_every_second).await;
    let (municipality, guards) = (&nodes[0], &nodes[1]);
    agree(&[municipality, guards], GUARDING).await;
    let made = ask(municipality, &patrol(None)).await;
    let id = made["id"].as_str().unwrap().to_owned();
    arrived(guards, &id).await;
    take(guards, &id, "accepted", "").await;
    until(|| async { (thread(municipality, &id).await["status"] == "accepted").then_some(()) }).await;

    // Kept through the agreement's retention (90 days) after its last change, and not a day more.
    for node in [municipality, guards] {
        node.clock.advance(Duration::days(89));
    }
    let kept: Value = guards.get("/api/v1/requests").send().await.unwrap().json().await.unwrap();
    assert_eq!(kept["requests"].as_array().unwrap().len(), 1, "{kept}");
    for node in [municipality, guards] {
        node.clock.advance(Duration::days(2));
    }
    for node in [municipality, guards] {
        until(|| async {
            let answer = node.get(&format!("/api/v1/requests/{id}")).send().await.unwrap();
            (answer.status() == StatusCode::NOT_FOUND).then_some(())
        })
        .await;
        let deleted = audit(node, "event=retention.requests_deleted").await;
        assert_eq!(deleted.len(), 1, "{deleted:?}");
    }
}

async fn a_request_queued_when_its_agreement_is_revoked_never_reaches_the_partner(backend: Backend) {
    let mut nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let mut guards = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    let agreement = agree(&[&municipality, &guards], GUARDING).await;
    let filed = municipality.file(&report(2)).await;
    guards.halt().await;
    let made = ask(&municipality, &patrol(Some(filed["id"].as_str().unwrap()))).await;
    let id = made["id"].as_str().unwrap().to_owned();
    let revoked = municipality
        .request(Method::POST, &format!("/api/v1/agreements/{agreement}/revoke"))
        .json(&json!({"reason": "The contract ended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    // The request goes with the agreement, at once, and what waited for the guards with it.
    let gone = municipality.get(&format!("/api/v1/requests/{id}")).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let ended = audit(&municipality, &format!("agreement={agreement}&event=agreement.sharing_ended")).await;
    assert!(ended[0]["detail"].as_str().unwrap().contains("1 requests deleted"), "{ended:?}");

    // The guards come back and learn of the revocation; the request never reaches them.
    let guards = guards.restart().await;
    until_advancing(&[&municipality, &guards], Duration::seconds(5), || async {
        let view: Value =
            guards.get(&format!("/api/v1/agreements/{agreement}")).send().await.unwrap().json().await.unwrap();
        (view["status"]["state"] == "revoked").then_some(())
    })
    .await;
    for _ in 0..10 {
        municipality.clock.advance(Duration::minutes(5));
        lagesbild::federation::lifecycle::send_due(municipality.federation()).await.unwrap();
    }
    let held = guards.get(&format!("/api/v1/requests/{id}")).send().await.unwrap();
    assert_eq!(held.status(), StatusCode::NOT_FOUND);
    assert!(audit(&guards, "event=request.received").await.is_empty());
    municipality.stop().await;
    guards.stop().await;
}

async fn a_request_goes_on_under_the_amendment_of_its_agreement(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let (municipality, guards) = (&nodes[0], &nodes[1]);
    let old = agree(&[municipality, guards], GUARDING).await;
    let made = ask(municipality, &patrol(None)).await;
    let id = made["id"].as_str().unwrap().to_owned();
    arrived(guards, &id).await;

    let mut amendment = template(GUARDING);
    amendment["id"] = json!(format!("{old}-2"));
    amendment["replaces"] = json!(old);
    agree_on(&[municipality, guards], &amendment).await;
    for node in [municipality, guards] {
        let view: Value = node.get(&format!("/api/v1/agreements/{old}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(view["status"]["state"], "replaced", "{view}");
    }
    // The guards still answer it, and the municipality takes the answer.
    take(guards, &id, "accepted", "Under the new agreement.").await;
    until(|| async { (thread(municipality, &id).await["status"] == "accepted").then_some(()) }).await;
}
