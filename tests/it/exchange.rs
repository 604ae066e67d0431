//! The federation exchange end to end, between real nodes on loopback over mutual TLS, on both
//! databases: reports reach each partner in the form its agreement allows, updates replace and
//! retractions remove them everywhere, a partner that was away converges when it returns, and
//! revocation, expiry and retention end what was shared. Forged, replayed, stale and foreign
//! envelopes are refused one by one into the dead-letter table.

use chrono::Duration;
use lagesbild::clock::Clock;
use lagesbild::config::NodeConfig;
use lagesbild::crypto::jws::{self, Jws};
use lagesbild::domain::agreement::Agreement;
use lagesbild::domain::envelope::EnvelopeHeader;
use lagesbild::domain::view::ReportView;
use lagesbild::federation::inbox::Outcome;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::peering::{client, import, signed_card};
use crate::support::{Backend, TestNode, report, until, until_advancing};

on_both_backends!(
    four_partners_each_see_a_report_in_the_form_their_agreement_allows,
    a_partner_that_was_down_gets_every_version_exactly_once_when_it_returns,
    revocation_cancels_the_queue_and_reaches_a_partner_that_was_away,
    a_revocation_delivered_twice_ends_sharing_once,
    reordered_and_duplicated_deliveries_converge_on_the_latest_version,
    forged_replayed_stale_and_foreign_envelopes_are_refused_one_by_one,
    retention_and_expiry_delete_what_was_received,
    each_partner_reads_only_its_own_feed_within_its_rate,
    a_report_shared_under_one_of_two_agreements_is_sent_again_under_the_other_when_that_one_ends,
    an_agreements_evaluation_counts_what_its_sharing_ledger_holds,
    an_amendment_that_adds_a_party_takes_over_without_a_gap_or_a_second_delivery,
    an_amendment_with_backfill_gives_the_new_party_the_reports_shared_before_it,
);

pub const MUNICIPALITY: &str = "se-kommun-norrkoping";
pub const POLICE: &str = "se-polisen-ost";
pub const RETAILER: &str = "se-ica-hageby";
pub const GUARDS: &str = "se-vaktbolaget-ost";
pub const SAFETY: &str = "norrkoping-safety-agreement.toml";
pub const GUARDING: &str = "norrkoping-municipality-guards.toml";

/// Federated nodes of `orgs`, each having imported every other's card.
pub async fn federation(backend: Backend, orgs: &[&str], adjust: fn(&mut NodeConfig)) -> Vec<TestNode> {
    federation_at(backend, orgs, crate::support::start_time(), adjust).await
}

/// Like [`federation`], with every node's clock starting at `now`.
pub async fn federation_at(
    backend: Backend,
    orgs: &[&str],
    now: chrono::DateTime<chrono::Utc>,
    adjust: fn(&mut NodeConfig),
) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for org in orgs {
        nodes.push(TestNode::spawn_federated_at(backend, org, now, adjust).await);
    }
    for a in &nodes {
        let card = signed_card(a).await;
        for b in nodes.iter().filter(|b| b.org != a.org) {
            assert_eq!(import(b, &card).await.status(), StatusCode::CREATED);
        }
    }
    nodes
}

/// The template in `policies/` as the JSON the API takes.
pub fn template(file: &str) -> Value {
    let path = format!("{}/policies/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::to_value(toml::from_str::<Agreement>(&std::fs::read_to_string(path).unwrap()).unwrap()).unwrap()
}

/// Puts a template in force: proposed at the first node, signed at the others.
pub async fn agree(nodes: &[&TestNode], file: &str) -> String {
    agree_on(nodes, &template(file)).await
}

/// Puts `agreement` in force: proposed at the first node, signed at the others.
pub async fn agree_on(nodes: &[&TestNode], agreement: &Value) -> String {
    let id = agreement["id"].as_str().unwrap().to_owned();
    let proposed = nodes[0].request(Method::POST, "/api/v1/agreements").json(agreement).send().await.unwrap();
    assert_eq!(proposed.status(), StatusCode::CREATED, "{}", proposed.text().await.unwrap());
    for node in &nodes[1..] {
        holds_agreement(node, &id).await;
        let signed = node.request(Method::POST, &format!("/api/v1/agreements/{id}/sign")).send().await.unwrap();
        assert_eq!(signed.status(), StatusCode::OK, "{}", signed.text().await.unwrap());
    }
    for node in nodes {
        let state = until(|| async {
            let view: Value = node.get(&format!("/api/v1/agreements/{id}")).send().await.unwrap().json().await.unwrap();
            Some(view["status"]["state"].clone()).filter(|s| s == "active")
        })
        .await;
        assert_eq!(state, "active");
    }
    id
}

/// Waits until the proposal `id` has reached `node` (its proposer's lifecycle outbox sends it).
pub async fn holds_agreement(node: &TestNode, id: &str) {
    until(|| async {
        let answer = node.get(&format!("/api/v1/agreements/{id}")).send().await.unwrap();
        (answer.status() == StatusCode::OK).then_some(())
    })
    .await;
}

/// The report with `id` in `node`'s picture, once `check` holds for it (or for its absence).
pub async fn picture_entry(node: &TestNode, id: &str, check: impl Fn(Option<&Value>) -> bool) -> Option<Value> {
    until(|| async {
        let page = node.situation("?limit=1000").await;
        let entry = page["reports"].as_array().unwrap().iter().find(|r| r["id"] == id).cloned();
        check(entry.as_ref()).then_some(entry)
    })
    .await
}

/// The audit entries of `node` matching `query`.
pub async fn audit(node: &TestNode, query: &str) -> Vec<Value> {
    let page: Value =
        node.get(&format!("/api/v1/audit?limit=1000&{query}")).send().await.unwrap().json().await.unwrap();
    page["entries"].as_array().unwrap().clone()
}

/// `node`'s sharing ledger of its report `id`.
pub async fn ledger(node: &TestNode, id: &str) -> Vec<Value> {
    let ledger: Value = node.get(&format!("/api/v1/reports/{id}/shares")).send().await.unwrap().json().await.unwrap();
    ledger.as_array().unwrap().clone()
}

/// `node`'s sharing ledger of its report `id`, once every partner has acknowledged what it was sent.
async fn acknowledged_ledger(node: &TestNode, id: &str) -> Vec<Value> {
    until(|| async {
        let ledger = ledger(node, id).await;
        ledger.iter().all(|s| s["acknowledged"] == true).then_some(ledger)
    })
    .await
}

/// `node`'s sharing ledger of its report `id`, once nothing in it is still on its way: each share
/// acknowledged, refused, or cancelled (a version superseded before it went out).
async fn settled_ledger(node: &TestNode, id: &str) -> Vec<Value> {
    until(|| async {
        let ledger = ledger(node, id).await;
        ledger.iter().all(|s| s["state"] != "queued").then_some(ledger)
    })
    .await
}

/// The versions of `report` that `node`'s audit trail says were stored on receipt, sorted.
pub async fn stored_versions(node: &TestNode, report: &str) -> Vec<String> {
    let entries = audit(node, &format!("event=envelope.received&report={report}")).await;
    let mut versions: Vec<String> = entries
        .iter()
        .filter_map(|e| e["detail"].as_str().unwrap().strip_suffix(": stored").map(str::to_owned))
        .collect();
    versions.sort();
    versions
}

pub fn id_of(filed: &Value) -> String {
    filed["id"].as_str().unwrap().to_owned()
}

/// The body for a GREEN report near Hageby centrum, which the shop may see generalised.
pub fn green_report_at_the_centre() -> Value {
    let mut body = report(2);
    body["tlp"] = json!("GREEN");
    body["category"] = json!("theft");
    body["title"] = json!("Shoplifting at the entrance");
    body
}

async fn four_partners_each_see_a_report_in_the_form_their_agreement_allows(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER, GUARDS], |_| {}).await;
    let [municipality, police, retailer, guards] = &nodes[..] else { unreachable!() };
    agree(&[municipality, police, retailer], SAFETY).await;
    agree(&[municipality, guards], GUARDING).await;

    // AMBER vandalism at a school: in full at the police, without persons at the guards, not at the shop.
    let filed = municipality.file(&report(1)).await;
    let id = id_of(&filed);
    let at_police = picture_entry(police, &id, |e| e.is_some()).await.unwrap();
    assert_eq!(at_police["source"], "received");
    assert_eq!(at_police["agreement"], "se-norrkoping-trygghetsoverenskommelse");
    assert_eq!(at_police["title"], "Broken windows at Hagebyskolan");
    assert_eq!(at_police["persons"]["full"][0]["name"], "Anna Andersson");
    let at_guards = picture_entry(guards, &id, |e| e.is_some()).await.unwrap();
    assert_eq!(at_guards["site"]["name"], "Hagebyskolan");
    assert!(at_guards.get("persons").is_none(), "{at_guards}");
    assert!(!at_guards.to_string().contains("Anna"), "{at_guards}");

    // A GREEN theft at the centre reaches the shop generalised: a 500 m cell, the day, no title.
    let green = municipality.file(&green_report_at_the_centre()).await;
    let at_shop = picture_entry(retailer, &id_of(&green), |e| e.is_some()).await.unwrap();
    assert!(at_shop.get("title").is_none() && at_shop.get("persons").is_none(), "{at_shop}");
    assert_eq!(at_shop["location"]["cell_metres"], 500);
    assert_eq!(at_shop["time_precision"], "day");
    assert_eq!(at_shop["site"], json!({"kind": "school"}));
    assert!(
        retailer.situation("?limit=1000").await["reports"].as_array().unwrap().iter().all(|r| r["id"] != id.as_str())
    );

    // An update replaces the report everywhere; a retraction removes it everywhere.
    let mut changed = report(1);
    changed["title"] = json!("Broken windows and graffiti at Hagebyskolan");
    let updated = municipality
        .request(Method::PUT, &format!("/api/v1/reports/{id}"))
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    picture_entry(police, &id, |e| {
        e.is_some_and(|e| e["version"] == 2 && e["title"].as_str().unwrap().contains("graffiti"))
    })
    .await;
    let retracted = municipality.request(Method::POST, &format!("/api/v1/reports/{id}/retract")).send().await.unwrap();
    assert_eq!(retracted.status(), StatusCode::OK);
    for partner in [police, guards] {
        picture_entry(partner, &id, |e| e.is_none()).await;
    }

    // The ledger says who got which version under which agreement, and that each was acknowledged.
    let ledger = acknowledged_ledger(municipality, &id).await;
    assert!(ledger.len() >= 6, "{ledger:?}");
    let sent: Vec<(String, i64)> =
        ledger.iter().map(|s| (s["recipient"].as_str().unwrap().to_owned(), s["version"].as_i64().unwrap())).collect();
    for version in 1..=3 {
        for recipient in [POLICE, GUARDS] {
            assert!(sent.contains(&(recipient.to_owned(), version)), "{sent:?}");
        }
        assert!(!sent.contains(&(RETAILER.to_owned(), version)), "{sent:?}");
    }
    assert!(ledger.iter().all(|s| s["content_hash"].as_str().unwrap().len() == 64));
    // The receiver's audit names the same content hash the sender's ledger holds.
    let received = audit(police, &format!("event=envelope.received&report={id}")).await;
    let hashes: Vec<&str> = received.iter().map(|e| e["object_hash"].as_str().unwrap()).collect();
    assert!(
        ledger
            .iter()
            .filter(|s| s["recipient"] == POLICE)
            .all(|s| hashes.contains(&s["content_hash"].as_str().unwrap()))
    );
    let partners: Value = municipality.get("/api/v1/partners").send().await.unwrap().json().await.unwrap();
    let police_row = partners.as_array().unwrap().iter().find(|p| p["org_id"] == POLICE).unwrap();
    assert_eq!(police_row["delivery"]["queued"], 0, "{police_row}");
    let metrics = municipality.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(&format!("lagesbild_outbox_queued{{recipient=\"{POLICE}\"}} 0")), "{metrics}");
    assert!(police_row["delivery"]["last_delivered_at"].is_string(), "{police_row}");
    for node in nodes {
        node.stop().await;
    }
}

async fn a_partner_that_was_down_gets_every_version_exactly_once_when_it_returns(backend: Backend) {
    let mut nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let mut guards = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    agree(&[&municipality, &guards], GUARDING).await;
    guards.halt().await;

    let kept = municipality.file(&report(3)).await;
    let withdrawn = municipality.file(&report(2)).await;
    let (kept, withdrawn) = (id_of(&kept), id_of(&withdrawn));
    let mut changed = report(3);
    changed["severity"] = json!("severe");
    let updated = municipality
        .request(Method::PUT, &format!("/api/v1/reports/{kept}"))
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let retracted =
        municipality.request(Method::POST, &format!("/api/v1/reports/{withdrawn}/retract")).send().await.unwrap();
    assert_eq!(retracted.status(), StatusCode::OK);

    // While the guards are away, the queue waits and says why.
    let waiting = until(|| async {
        let partners: Value = municipality.get("/api/v1/partners").send().await.unwrap().json().await.unwrap();
        let row = partners.as_array().unwrap().iter().find(|p| p["org_id"] == GUARDS).unwrap().clone();
        row["delivery"]["last_error"].is_string().then_some(row)
    })
    .await;
    // Two reports, each with a version 2 that superseded its version 1 before it went out.
    assert_eq!(waiting["delivery"]["queued"], 2, "{waiting}");

    // Back after hours: the guards catch up at start, and the outbox's retry comes too.
    municipality.clock.advance(Duration::hours(3));
    guards.clock.advance(Duration::hours(3));
    let guards = guards.restart().await;
    picture_entry(&guards, &kept, |e| e.is_some_and(|e| e["version"] == 2 && e["severity"] == "severe")).await;
    picture_entry(&guards, &withdrawn, |e| e.is_none()).await;
    // The outbox's retries come due as time passes.
    until_advancing(&[&municipality, &guards], Duration::minutes(1), || async {
        let partners: Value = municipality.get("/api/v1/partners").send().await.unwrap().json().await.unwrap();
        let row = partners.as_array().unwrap().iter().find(|p| p["org_id"] == GUARDS).unwrap().clone();
        (row["delivery"]["queued"] == 0).then_some(())
    })
    .await;
    // No version was stored twice, however often it arrived (a late older one is not stored).
    for report in [&kept, &withdrawn] {
        let stored = stored_versions(&guards, report).await;
        let mut distinct = stored.clone();
        distinct.dedup();
        assert!(!stored.is_empty() && stored == distinct, "{stored:?}");
    }
    municipality.stop().await;
    guards.stop().await;
}

async fn revocation_cancels_the_queue_and_reaches_a_partner_that_was_away(backend: Backend) {
    let mut nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let mut guards = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    let agreement = agree(&[&municipality, &guards], GUARDING).await;
    let delivered = id_of(&municipality.file(&report(4)).await);
    picture_entry(&guards, &delivered, |e| e.is_some()).await;

    guards.halt().await;
    let queued = id_of(&municipality.file(&report(3)).await);
    let revoked = municipality
        .request(Method::POST, &format!("/api/v1/agreements/{agreement}/revoke"))
        .json(&json!({"reason": "The contract ended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    // What waited for the guards is cancelled at once, and the ledger says so.
    let ledger = ledger(&municipality, &queued).await;
    assert_eq!(ledger[0]["state"], "cancelled", "{ledger:?}");
    assert!(ledger[0]["last_error"].as_str().unwrap().contains("revoked"), "{ledger:?}");

    // The guards come back, learn of the revocation from the municipality's feed, and drop what
    // they received under it; the cancelled report never reaches them.
    let guards = guards.restart().await;
    until(|| async {
        let view: Value =
            guards.get(&format!("/api/v1/agreements/{agreement}")).send().await.unwrap().json().await.unwrap();
        (view["status"]["state"] == "revoked").then_some(())
    })
    .await;
    picture_entry(&guards, &delivered, |e| e.is_none()).await;
    assert!(guards.situation("?limit=1000").await["reports"].as_array().unwrap().is_empty());
    let ended = audit(&guards, &format!("agreement={agreement}&event=agreement.sharing_ended")).await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(ended[0]["detail"].as_str().unwrap().contains("1 received reports deleted"), "{ended:?}");
    municipality.stop().await;
    guards.stop().await;
}

/// A revocation may reach a partner twice, by its sender's retry after a lost answer, or by the
/// push and the feed at once: sharing ends once, with one audit entry.
async fn a_revocation_delivered_twice_ends_sharing_once(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let (municipality, guards) = (&nodes[0], &nodes[1]);
    let agreement = agree(&[municipality, guards], GUARDING).await;
    let delivered = id_of(&municipality.file(&report(4)).await);
    picture_entry(guards, &delivered, |e| e.is_some()).await;
    let revoked = municipality
        .request(Method::POST, &format!("/api/v1/agreements/{agreement}/revoke"))
        .json(&json!({"reason": "The contract ended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    picture_entry(guards, &delivered, |e| e.is_none()).await;

    let record = municipality.store().agreement(&agreement).await.unwrap().unwrap();
    let statement = Jws::parse(record.revocation.unwrap().statement.as_bytes()).unwrap();
    let client = client(municipality, guards).await;
    // Twice at once and once more after: each is answered as taken.
    let (first, second) = tokio::join!(
        client.post("/federation/v1/revocations", &statement),
        client.post("/federation/v1/revocations", &statement)
    );
    first.unwrap();
    second.unwrap();
    client.post("/federation/v1/revocations", &statement).await.unwrap();
    let ended = audit(guards, &format!("agreement={agreement}&event=agreement.sharing_ended")).await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(ended[0]["detail"].as_str().unwrap().contains("1 received reports deleted"), "{ended:?}");
}

/// The envelopes the municipality queued for `report`, oldest first, as JWS.
pub async fn queued_envelopes(node: &TestNode, report: &str) -> Vec<Jws> {
    let id: lagesbild::domain::ReportId = report.parse().unwrap();
    let shares = node.store().shares_of(id).await.unwrap();
    shares.iter().map(|s| Jws::parse(s.envelope.as_bytes()).unwrap()).collect()
}

/// The municipality and the guards under their agreement, the guards blocked at the municipality:
/// what the municipality files stays queued there, for a test to deliver by hand.
pub async fn guarding_held_back(backend: Backend) -> Vec<TestNode> {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    agree(&[&nodes[0], &nodes[1]], GUARDING).await;
    let blocked = nodes[0].request(Method::POST, &format!("/api/v1/partners/{GUARDS}/block")).send().await.unwrap();
    assert_eq!(blocked.status(), StatusCode::OK);
    nodes
}

async fn reordered_and_duplicated_deliveries_converge_on_the_latest_version(backend: Backend) {
    // The municipality's own worker is kept out of the way: the test delivers by hand.
    let nodes = guarding_held_back(backend).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    let id = id_of(&municipality.file(&report(2)).await);
    for version in 1..=2 {
        let mut body = report(2);
        body["title"] = json!(format!("Revision {}", version + 1));
        let put = municipality
            .request(Method::PUT, &format!("/api/v1/reports/{id}"))
            .header("If-Match", format!("\"{version}\""))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::OK);
    }
    let [v1, v2, v3] = &queued_envelopes(municipality, &id).await[..] else { panic!("three envelopes") };
    let sender = client(municipality, guards).await;
    let outcomes = |results: Vec<lagesbild::federation::inbox::EnvelopeResult>| -> Vec<Outcome> {
        results.into_iter().map(|r| r.outcome).collect()
    };
    let first = sender.post_envelopes(&[v3.clone(), v1.clone(), v3.clone()]).await.unwrap();
    assert_eq!(outcomes(first), [Outcome::Stored, Outcome::Older, Outcome::Duplicate]);
    let second = sender.post_envelopes(&[v2.clone(), v1.clone()]).await.unwrap();
    assert_eq!(outcomes(second), [Outcome::Older, Outcome::Older]);
    let entry = picture_entry(guards, &id, |e| e.is_some()).await.unwrap();
    assert_eq!((entry["version"].clone(), entry["title"].clone()), (json!(3), json!("Revision 3")));
    assert_eq!(stored_versions(guards, &id).await, ["version 3"]);
    for node in nodes {
        node.stop().await;
    }
}

/// `envelope`'s view, changed by `change`, signed again with `key` at `at`, for `recipient`.
pub fn resigned(
    envelope: &Jws,
    key: &lagesbild::crypto::keys::SigningKey,
    recipient: &str,
    at: chrono::DateTime<chrono::Utc>,
    change: impl FnOnce(&mut Value),
) -> Jws {
    let mut view: Value = serde_json::from_slice(&envelope.unverified_payload().unwrap()).unwrap();
    change(&mut view);
    let typed: ReportView = serde_json::from_value(view.clone()).unwrap();
    let header = EnvelopeHeader::for_view(&typed, &typed.origin, &recipient.parse().unwrap(), at);
    jws::sign_envelope(&serde_json::to_vec(&view).unwrap(), key, &header)
}

async fn forged_replayed_stale_and_foreign_envelopes_are_refused_one_by_one(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS, POLICE], |_| {}).await;
    let [municipality, guards, police] = &nodes[..] else { unreachable!() };
    agree(&[municipality, guards], GUARDING).await;
    let blocked = municipality.request(Method::POST, &format!("/api/v1/partners/{GUARDS}/block")).send().await.unwrap();
    assert_eq!(blocked.status(), StatusCode::OK);
    let id = id_of(&municipality.file(&report(2)).await);
    let valid = queued_envelopes(municipality, &id).await.remove(0);
    let key = municipality.keys().signing;
    let now = municipality.clock.now();

    let mut forged = valid.clone();
    let mut payload: Value = serde_json::from_slice(&forged.unverified_payload().unwrap()).unwrap();
    payload["title"] = json!("Nothing happened");
    forged.payload = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap())
    };
    let stale = resigned(&valid, &key, GUARDS, now - Duration::minutes(11), |_| {});
    let other_agreement = resigned(&valid, &key, GUARDS, now, |v| v["agreement"] = json!("se-some-other-agreement"));
    let beyond_flow = resigned(&valid, &key, GUARDS, now, |v| {
        v["persons"] = json!({"full": [{"role": "witness", "name": "Anna Andersson"}]})
    });
    // Signed by the police's own key, but claiming to come from the municipality.
    let claiming_another_sender = resigned(&valid, &police.keys().signing, GUARDS, now, |_| {});
    let bundle = [
        valid.clone(),
        forged,
        stale,
        other_agreement,
        beyond_flow,
        Jws { payload: "bm90IGEgdmlldw".into(), signatures: vec![] },
    ];
    let results = client(municipality, guards).await.post_envelopes(&bundle).await.unwrap();
    let outcomes: Vec<Outcome> = results.iter().map(|r| r.outcome).collect();
    // A stale time or an agreement not (yet) active here may pass later: the sender tries again.
    use Outcome::{Deferred, Refused, Stored};
    assert_eq!(outcomes, [Stored, Refused, Deferred, Deferred, Refused, Refused], "{results:?}");
    let reasons: Vec<&str> = results[1..].iter().map(|r| r.reason.as_deref().unwrap()).collect();
    assert!(reasons[0].contains("signature"), "{reasons:?}");
    assert!(reasons[1].contains("outside the window"), "{reasons:?}");
    assert!(reasons[2].contains("not active here"), "{reasons:?}");
    assert!(reasons[3].contains("persons"), "{reasons:?}");

    // An envelope for the guards replayed to the police, and one claiming another sender than the
    // connection's, are refused as well.
    let replayed = client(municipality, police).await.post_envelopes(std::slice::from_ref(&valid)).await.unwrap();
    assert!(replayed[0].reason.as_deref().unwrap().contains("addressed to se-vaktbolaget-ost"), "{replayed:?}");
    let foreign = client(police, guards).await.post_envelopes(&[claiming_another_sender]).await.unwrap();
    assert!(foreign[0].reason.as_deref().unwrap().contains("the connection is se-polisen-ost"), "{foreign:?}");

    // Each final refusal is in the dead-letter table and in the audit trail, with the envelope's
    // hash; each deferral is in the audit trail.
    let dead: Value = guards.get("/api/v1/dead-letters").send().await.unwrap().json().await.unwrap();
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 4, "{dead:?}");
    assert!(dead.iter().all(|d| d["partner"].is_string() && d["reason"].is_string()), "{dead:?}");
    let lettered = audit(guards, "event=envelope.dead_lettered").await;
    assert_eq!(lettered.len(), 4);
    assert!(lettered.iter().all(|e| e["object_hash"].as_str().is_some_and(|h| h.len() == 64)));
    assert_eq!(audit(guards, "event=envelope.deferred").await.len(), 2);
    // Only the valid one is in the guards' picture, unchanged.
    let entry = picture_entry(guards, &id, |e| e.is_some()).await.unwrap();
    assert_eq!(entry["title"], "Broken windows at Hagebyskolan");
    for node in nodes {
        node.stop().await;
    }
}

pub fn sweep_every_second(config: &mut NodeConfig) {
    if let Some(federation) = config.federation.as_mut() {
        federation.sweep_seconds = 1;
    }
}

async fn retention_and_expiry_delete_what_was_received(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], sweep_every_second).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    let agreement = agree(&[municipality, guards], GUARDING).await;
    let early = id_of(&municipality.file(&report(2)).await);
    picture_entry(guards, &early, |e| e.is_some()).await;

    // The agreement keeps received reports 90 days: after 91, the early one is gone, a new one stays.
    for node in [municipality, guards] {
        node.clock.advance(Duration::days(91));
    }
    let mut late_body = report(1);
    late_body["observed_at"] = json!((municipality.clock.now() - Duration::hours(1)).to_rfc3339());
    let late = id_of(&municipality.file(&late_body).await);
    picture_entry(guards, &late, |e| e.is_some()).await;
    until(|| async {
        let entries = audit(guards, "event=retention.deleted").await;
        (!entries.is_empty()).then_some(())
    })
    .await;
    let ids: Vec<String> = guards.situation("?limit=1000").await["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, std::slice::from_ref(&late));

    // Past its end date the agreement ends for both: what the guards received is deleted.
    for node in [municipality, guards] {
        node.clock.advance(Duration::days(800));
    }
    let expired = until(|| async {
        let entries = audit(guards, &format!("event=agreement.expired&agreement={agreement}")).await;
        entries.first().cloned()
    })
    .await;
    assert!(expired["detail"].as_str().unwrap().contains("1 received reports deleted"), "{expired}");
    picture_entry(guards, &late, |e| e.is_none()).await;
    for node in nodes {
        node.stop().await;
    }
}

fn one_request_a_second(config: &mut NodeConfig) {
    if let Some(federation) = config.federation.as_mut() {
        federation.requests_per_second = 1;
    }
}

async fn each_partner_reads_only_its_own_feed_within_its_rate(backend: Backend) {
    let mut nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER, GUARDS], |_| {}).await;
    let readers = {
        let [municipality, police, retailer, guards] = &nodes[..] else { unreachable!() };
        agree(&[municipality, police, retailer], SAFETY).await;
        agree(&[municipality, guards], GUARDING).await;
        let delivered = id_of(&municipality.file(&report(1)).await);
        // Acknowledged at the municipality too (stored at the partners comes a moment before).
        // Both envelopes are queued with the report, so the ledger holds both from the start.
        let shares = acknowledged_ledger(municipality, &delivered).await;
        assert_eq!(shares.len(), 2, "{shares:?}");
        [
            (GUARDS, client(guards, municipality).await),
            (POLICE, client(police, municipality).await),
            (RETAILER, client(retailer, municipality).await),
        ]
    };
    // The police and the guards go offline; what is filed now waits for them.
    nodes[1].halt().await;
    nodes[3].halt().await;
    let waiting = id_of(&nodes[0].file(&report(1)).await);

    // The feed holds what is still owed to the caller (not what it acknowledged), and nothing
    // for anyone else.
    for (org, reader) in &readers {
        let page = reader.feed(0, 1000).await.unwrap();
        let expected = usize::from(*org != RETAILER);
        assert_eq!(page.envelopes.len(), expected, "{org}: {page:?}");
        for envelope in &page.envelopes {
            let header = jws::envelope_header(&envelope.signatures[0].protected).unwrap();
            assert_eq!(header.recipient.as_str(), *org);
            assert_eq!(header.report.to_string(), waiting);
        }
    }

    // More than a delivery may hold is refused whole, before anything is looked at.
    let too_many: Vec<Jws> = (0..1001).map(|_| Jws { payload: "e30".into(), signatures: vec![] }).collect();
    match client(&nodes[0], &nodes[2]).await.post_envelopes(&too_many).await {
        Err(lagesbild::federation::client::ClientError::Refused { status: 422, .. }) => {}
        other => panic!("expected 422, got {other:?}"),
    }
    for node in nodes {
        node.stop().await;
    }

    // A partner asking faster than its rate is told to wait (429, Retry-After), and nothing breaks.
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], one_request_a_second).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    let caller = client(municipality, guards).await;
    let mut limited = None;
    for _ in 0..10 {
        if let Err(error) = caller.hello().await {
            limited = Some(error);
            break;
        }
    }
    match limited {
        Some(lagesbild::federation::client::ClientError::Refused { status: 429, .. }) => {}
        other => panic!("expected 429 within ten quick requests, got {other:?}"),
    }
    for node in nodes {
        node.stop().await;
    }
}

/// Two agreements let the municipality's reports reach the guards: a short one (first by id, so
/// reports go under it) that keeps titles, and a standing one that drops them. When the short one
/// ends, what went under it is sent again under the other, with the other's rules, instead of
/// disappearing at the guards until its next version. The municipality's clock passes the end an
/// hour before the guards' does, so the report sent again reaches the guards while they still hold
/// it under the ended agreement: the copy signed later replaces it, and survives the guards' own
/// ending of the short agreement.
async fn a_report_shared_under_one_of_two_agreements_is_sent_again_under_the_other_when_that_one_ends(
    backend: Backend,
) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    let mut short = template(GUARDING);
    short["id"] = json!("se-a-kort-bevakning");
    short["valid_until"] = json!((crate::support::start_time() + Duration::hours(2)).to_rfc3339());
    let mut standing = template(GUARDING);
    standing["id"] = json!("se-b-staende-bevakning");
    standing["flows"][0]["fields"]["title"] = json!("drop");
    agree_on(&[municipality, guards], &short).await;
    agree_on(&[municipality, guards], &standing).await;
    let id = id_of(&municipality.file(&report(1)).await);
    let first = picture_entry(guards, &id, |e| e.is_some()).await.unwrap();
    assert_eq!(first["agreement"], "se-a-kort-bevakning");
    assert_eq!(first["title"], "Broken windows at Hagebyskolan");

    // The short agreement ends at the municipality; the guards' clock is an hour behind.
    municipality.clock.advance(Duration::hours(2) + Duration::minutes(1));
    guards.clock.advance(Duration::hours(1) + Duration::minutes(55));
    lagesbild::federation::sweep::sweep(municipality.federation()).await.unwrap();
    let again = picture_entry(guards, &id, |e| e.is_some_and(|e| e["agreement"] == "se-b-staende-bevakning")).await;
    let again = again.unwrap();
    assert!(again.get("title").is_none(), "sent again under the standing agreement's rules: {again}");
    assert_eq!(again["version"], 1);

    // The guards' clock passes the end too: what they hold under the standing agreement stays.
    guards.clock.advance(Duration::minutes(10));
    lagesbild::federation::sweep::sweep(guards.federation()).await.unwrap();
    let kept = picture_entry(guards, &id, |_| true).await;
    assert_eq!(kept.map(|e| e["agreement"].clone()), Some(json!("se-b-staende-bevakning")));
    // The live stream at the guards tells of a new form of the report, not of an erasure.
    let events = guards.store().picture_events_after(0, 1000).await.unwrap();
    let kinds: Vec<&str> = events.iter().filter(|e| e.id.to_string() == id).map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["filed", "updated"]);
    let resent = audit(municipality, "event=agreement.reshared&agreement=se-a-kort-bevakning").await;
    assert_eq!(resent.len(), 1, "{resent:?}");
    assert!(resent[0]["detail"].as_str().unwrap().contains("1 "), "{resent:?}");
    for node in nodes {
        node.stop().await;
    }
}

/// The evaluation the parties meet over counts exactly what the sender's sharing ledger holds and
/// what the receiver's audit trail recorded, as JSON, as CSV and from the command line.
async fn an_agreements_evaluation_counts_what_its_sharing_ledger_holds(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    let [municipality, police, retailer] = &nodes[..] else { unreachable!() };
    let agreement = agree(&[municipality, police, retailer], SAFETY).await;
    let mut filed = Vec::new();
    for hours in 1..=3 {
        filed.push(id_of(&municipality.file(&report(hours)).await));
    }
    filed.push(id_of(&municipality.file(&green_report_at_the_centre()).await));
    let mut changed = report(1);
    changed["severity"] = json!("severe");
    let updated = municipality
        .request(Method::PUT, &format!("/api/v1/reports/{}", filed[0]))
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let retracted = municipality.request(Method::POST, &format!("/api/v1/reports/{}/retract", filed[1])).send().await;
    assert_eq!(retracted.unwrap().status(), StatusCode::OK);
    let mut ledgers = Vec::new();
    for id in &filed {
        ledgers.extend(settled_ledger(municipality, id).await.into_iter().map(|share| (id.clone(), share)));
    }

    let path = format!("/api/v1/agreements/{agreement}/evaluation");
    let evaluation: Value = municipality.get(&path).send().await.unwrap().json().await.unwrap();
    for recipient in [POLICE, RETAILER] {
        let rows: Vec<&Value> =
            evaluation["sent"].as_array().unwrap().iter().filter(|r| r["recipient"] == recipient).collect();
        let sum = |field: &str| rows.iter().map(|r| r[field].as_u64().unwrap()).sum::<u64>();
        let shares: Vec<&Value> = ledgers.iter().map(|(_, s)| s).filter(|s| s["recipient"] == recipient).collect();
        let count = |state: &str| shares.iter().filter(|s| s["state"] == state).count() as u64;
        assert_eq!(sum("new") + sum("updated") + sum("retracted"), shares.len() as u64, "{recipient}: {evaluation}");
        assert_eq!(sum("delivered"), count("delivered"), "{recipient}: {evaluation}");
        assert_eq!(sum("cancelled"), count("cancelled"), "{recipient}: {evaluation}");
        let mut reports: Vec<&str> =
            ledgers.iter().filter(|(_, s)| s["recipient"] == recipient).map(|(id, _)| id.as_str()).collect();
        reports.sort();
        reports.dedup();
        assert_eq!(sum("reports"), reports.len() as u64, "{recipient}: {evaluation}");
        let first_versions = shares.iter().filter(|s| s["version"] == 1).count() as u64;
        assert_eq!(sum("new"), first_versions, "{recipient}: {evaluation}");
    }
    let police_row = evaluation["sent"].as_array().unwrap().iter().find(|r| r["recipient"] == POLICE).unwrap();
    assert_eq!(police_row["retracted"], 1, "{police_row}");
    assert!(police_row["arrival_seconds"]["max"].as_f64().unwrap() >= 0.0, "{police_row}");
    assert!(!evaluation.to_string().contains("Hagebyskolan"), "an evaluation never holds contents: {evaluation}");

    // The police's own evaluation counts what arrived from the municipality as its audit trail does.
    let at_police: Value = police.get(&path).send().await.unwrap().json().await.unwrap();
    let stored: u64 = at_police["received"].as_array().unwrap().iter().map(|r| r["stored"].as_u64().unwrap()).sum();
    let mut stored_here = 0;
    for id in &filed {
        stored_here += stored_versions(police, id).await.len() as u64;
    }
    assert_eq!(stored, stored_here, "{at_police}");

    // As CSV, one line per row, for a spreadsheet.
    let csv = municipality.get(&format!("{path}?format=csv")).send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let rows = evaluation["sent"].as_array().unwrap().len() + evaluation["received"].as_array().unwrap().len();
    assert_eq!(text.lines().count(), rows + 1, "{text}");
    assert!(text.starts_with("direction,month,flow,party,reports,"), "{text}");

    // The command line reads the same from the node's database.
    let config = municipality.config_path();
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["agreement", "evaluate", &agreement, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let from_cli: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(from_cli["sent"], evaluation["sent"]);
    let refused = municipality.get(&format!("{path}?format=xml")).send().await.unwrap();
    crate::support::expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    for node in nodes {
        node.stop().await;
    }
}

async fn an_amendment_that_adds_a_party_takes_over_without_a_gap_or_a_second_delivery(backend: Backend) {
    amendment_adding_the_guards(backend, false).await;
}

async fn an_amendment_with_backfill_gives_the_new_party_the_reports_shared_before_it(backend: Backend) {
    amendment_adding_the_guards(backend, true).await;
}

/// The Norrköping safety agreement is amended: the guard company joins, with a flow of its own.
/// When every party of the amendment has signed, the old agreement is replaced at every node; what
/// the police and the shop received under it stays with them (under the amendment, not sent again),
/// reports filed since go under the amendment, and the guards get the reports shared before it
/// only if the amendment says so.
async fn amendment_adding_the_guards(backend: Backend, backfill: bool) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER, GUARDS], |_| {}).await;
    let [municipality, police, retailer, guards] = &nodes[..] else { unreachable!() };
    let old = agree(&[municipality, police, retailer], SAFETY).await;
    let amber = id_of(&municipality.file(&report(2)).await);
    let green = id_of(&municipality.file(&green_report_at_the_centre()).await);
    picture_entry(police, &amber, |e| e.is_some()).await;
    picture_entry(retailer, &green, |e| e.is_some()).await;

    let mut amendment = template(SAFETY);
    let new = format!("{old}-2");
    amendment["id"] = json!(new);
    amendment["replaces"] = json!(old);
    amendment["backfill"] = json!(backfill);
    amendment["parties"].as_array_mut().unwrap().push(json!({
        "org_id": GUARDS, "name": "Vaktbolaget Öst AB", "role": "guard_company"
    }));
    amendment["flows"].as_array_mut().unwrap().push(json!({
        "from": [MUNICIPALITY], "to": [GUARDS], "categories": ["vandalism", "burglary", "theft"],
        "max_tlp": "AMBER", "fields": { "title": "keep", "location": "keep", "observed_at": "keep", "persons": "drop" }
    }));
    agree_on(&[municipality, police, retailer, guards], &amendment).await;

    // The old agreement is replaced at every party; what was received under it is kept under the
    // amendment, never sent a second time.
    for node in [municipality, police, retailer] {
        let view: Value = node.get(&format!("/api/v1/agreements/{old}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(view["status"]["state"], "replaced", "{view}");
    }
    let kept = picture_entry(police, &amber, |e| e.is_some_and(|e| e["agreement"] == new.as_str())).await.unwrap();
    assert_eq!(kept["version"], 1);
    picture_entry(retailer, &green, |e| e.is_some_and(|e| e["agreement"] == new.as_str())).await;
    assert_eq!(stored_versions(police, &amber).await, ["version 1"], "the police received it once");
    let replaced = audit(municipality, &format!("event=agreement.replaced&agreement={old}")).await;
    assert_eq!(replaced.len(), 1, "handed over once: {replaced:?}");

    // A report filed now goes under the amendment, to the guards too.
    let after = id_of(&municipality.file(&report(1)).await);
    let at_guards = picture_entry(guards, &after, |e| e.is_some()).await.unwrap();
    assert_eq!(at_guards["agreement"], new.as_str());
    assert!(at_guards.get("persons").is_none(), "{at_guards}");
    assert_eq!(picture_entry(police, &after, |e| e.is_some()).await.unwrap()["agreement"], new.as_str());

    // The reports shared before the amendment reach the guards only with back-fill.
    if backfill {
        let earlier = picture_entry(guards, &amber, |e| e.is_some()).await.unwrap();
        assert_eq!(earlier["agreement"], new.as_str());
        assert!(earlier.get("persons").is_none(), "in the amendment's form: {earlier}");
        picture_entry(guards, &green, |e| e.is_some()).await;
    } else {
        let ids = guards.situation_ids("?limit=1000").await;
        assert_eq!(ids, std::slice::from_ref(&after), "no back-fill: only what was filed since");
    }
    for node in nodes {
        node.stop().await;
    }
}
