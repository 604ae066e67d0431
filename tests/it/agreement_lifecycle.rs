//! Agreements between real nodes: proposed by one party, signed by each, in force only when every
//! party signed the same bytes, revoked by any party for all; documents over other bytes, from
//! non-parties or naming unknown parties are refused and change nothing.

use std::time::Duration as StdDuration;

use chrono::Duration;
use lagesbild::clock::Clock;
use lagesbild::crypto::jws;
use lagesbild::domain::agreement::AGREEMENT_TYPE;
use lagesbild::domain::agreement::Agreement;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::exchange::ledger;
use crate::on_both_backends;
use crate::peering::{client, partners};
use crate::support::{Backend, TestNode, expect_problem, problem_fields, report, until_within};

on_both_backends!(
    an_agreement_takes_effect_when_every_party_signed_and_ends_for_all_when_one_revokes,
    documents_over_other_bytes_or_from_outside_the_agreement_are_refused,
    an_agreement_past_its_end_date_is_inactive_and_says_why,
    a_party_that_was_offline_hears_of_signatures_and_revocation_when_the_other_restarts,
    agreements_survive_a_key_rotation,
    a_local_agreement_flows_only_while_its_framework_is_active,
);

const ID: &str = "se-norrkoping-kommun-vaktbolag";

/// The Norrköping template, as JSON for the API.
fn template() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/norrkoping-municipality-guards.toml"))
            .unwrap();
    serde_json::to_value(toml::from_str::<Agreement>(&text).unwrap()).unwrap()
}

async fn status(node: &TestNode) -> Value {
    let view: Value = node.get(&format!("/api/v1/agreements/{ID}")).send().await.unwrap().json().await.unwrap();
    view["status"].clone()
}

/// What `recipient` would receive of the report `filed` under the agreement, as the node previews it.
async fn preview_of(node: &TestNode, filed: &Value, recipient: &str) -> Value {
    let path =
        format!("/api/v1/agreements/{ID}/preview?report={}&recipient={recipient}", filed["id"].as_str().unwrap());
    node.get(&path).send().await.unwrap().json().await.unwrap()
}

async fn municipality_and_guards(backend: Backend) -> (TestNode, TestNode) {
    partners(backend, "se-kommun-norrkoping", "se-vaktbolaget-ost").await
}

async fn an_agreement_takes_effect_when_every_party_signed_and_ends_for_all_when_one_revokes(backend: Backend) {
    let (municipality, guards) = municipality_and_guards(backend).await;
    let response = municipality.request(Method::POST, "/api/v1/agreements").json(&template()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let proposed: Value = response.json().await.unwrap();
    assert_eq!(proposed["status"]["state"], "awaiting_signatures");
    assert_eq!(proposed["status"]["awaiting"], json!(["se-vaktbolaget-ost"]));
    assert!(
        proposed["summary"][0].as_str().unwrap().starts_with("Norrköpings kommun share with Vaktbolaget Öst AB"),
        "{}",
        proposed["summary"]
    );
    // The parties' keys were filled in from the cards.
    assert!(proposed["agreement"]["parties"][1]["signing_key"].is_string());

    // The proposal reached the guards' node, where it waits for their signature.
    assert_eq!(status(&guards).await["state"], "awaiting_signatures");
    let signed = guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    for node in [&guards, &municipality] {
        let status = status(node).await;
        assert_eq!(status["state"], "active", "{status}");
        assert_eq!(status["awaiting"], json!([]));
    }
    let again = guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    expect_problem(again, StatusCode::CONFLICT).await;

    // What the guards would get of one of the municipality's reports, and why.
    let filed = municipality.file(&report(3)).await;
    let preview: Value = preview_of(&municipality, &filed, "se-vaktbolaget-ost").await;
    assert_eq!(preview["decision"], "share", "{preview}");
    assert_eq!(preview["view"]["site"]["name"], "Hagebyskolan");
    assert!(preview["view"].get("persons").is_none());
    assert!(
        preview["explanation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == &json!({"field": "persons", "rule": "drop", "effect": "dropped"})),
        "{preview}"
    );
    let to_self: Value = preview_of(&municipality, &filed, "se-kommun-norrkoping").await;
    assert_eq!(to_self["decision"], "withhold");

    // Either party revokes it for both, at once.
    let revoked = guards
        .request(Method::POST, &format!("/api/v1/agreements/{ID}/revoke"))
        .json(&json!({"reason": "Contract ended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    for node in [&guards, &municipality] {
        let status = status(node).await;
        assert_eq!(status["state"], "revoked", "{status}");
        assert!(
            status["detail"].as_str().unwrap().contains("se-vaktbolaget-ost")
                && status["detail"].as_str().unwrap().contains("Contract ended")
        );
    }
    let sign_revoked =
        municipality.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    expect_problem(sign_revoked, StatusCode::CONFLICT).await;
    // Nothing would flow under it any more, and the preview says so.
    let after = preview_of(&municipality, &filed, "se-vaktbolaget-ost").await;
    assert_eq!(after["decision"], "withhold", "a revoked agreement previews as sharing: {after}");
    assert!(after["reason"].as_str().unwrap().contains("revoked"), "{after}");
    // Each step is in the municipality's audit trail.
    let trail: Value =
        municipality.get(&format!("/api/v1/audit?agreement={ID}")).send().await.unwrap().json().await.unwrap();
    let events: Vec<&str> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|e| e.starts_with("agreement."))
        .collect();
    assert_eq!(
        events,
        [
            "agreement.proposed",
            "agreement.received",
            "agreement.activated",
            "agreement.revoked",
            "agreement.sharing_ended"
        ],
        "{trail}"
    );
    municipality.stop().await;
    guards.stop().await;
}

async fn documents_over_other_bytes_or_from_outside_the_agreement_are_refused(backend: Backend) {
    let (municipality, guards) = municipality_and_guards(backend).await;
    assert_eq!(
        municipality.request(Method::POST, "/api/v1/agreements").json(&template()).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let twice = municipality.request(Method::POST, "/api/v1/agreements").json(&template()).send().await.unwrap();
    expect_problem(twice, StatusCode::CONFLICT).await;

    // The municipality's key signs a document with the same id but other terms: the guards' node
    // keeps the agreement it has.
    let view: Value = municipality.get(&format!("/api/v1/agreements/{ID}")).send().await.unwrap().json().await.unwrap();
    let mut changed = view["agreement"].clone();
    changed["retention_days"] = json!(3650);
    let forged = jws::sign(&serde_json::to_vec(&changed).unwrap(), AGREEMENT_TYPE, &[&municipality.keys().signing]);
    match client(&municipality, &guards).await.post("/federation/v1/agreements", &forged).await {
        Err(lagesbild::federation::client::ClientError::Refused { status: 409, .. }) => {}
        other => panic!("expected 409, got {other:?}"),
    }
    let kept: Value = guards.get(&format!("/api/v1/agreements/{ID}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(kept["agreement"]["retention_days"], 90);

    // An agreement this node is no party to, and one naming a party without a card here.
    let mut not_ours = template();
    not_ours["id"] = json!("se-someone-elses");
    not_ours["parties"][0]["org_id"] = json!("se-kommun-linkoping");
    not_ours["flows"][0]["from"] = json!(["se-kommun-linkoping"]);
    not_ours["flows"][1]["to"] = json!(["se-kommun-linkoping"]);
    let response = municipality.request(Method::POST, "/api/v1/agreements").json(&not_ours).send().await.unwrap();
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem["detail"].as_str().unwrap().contains("not a party"), "{problem}");
    let mut stranger = template();
    stranger["id"] = json!("se-with-a-stranger");
    stranger["parties"][1]["org_id"] = json!("se-okant-bolag");
    stranger["flows"][0]["to"] = json!(["se-okant-bolag"]);
    stranger["flows"][1]["from"] = json!(["se-okant-bolag"]);
    let response = municipality.request(Method::POST, "/api/v1/agreements").json(&stranger).send().await.unwrap();
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem["detail"].as_str().unwrap().contains("se-okant-bolag"), "{problem}");
    // An invalid agreement is refused with its field.
    let mut red = template();
    red["id"] = json!("se-red-flow");
    red["flows"][0]["max_tlp"] = json!("RED");
    let problem = expect_problem(
        municipality.request(Method::POST, "/api/v1/agreements").json(&red).send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&problem), ["flows[0].max_tlp"]);
    let listed: Vec<Value> = municipality.get("/api/v1/agreements").send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 1, "a refused agreement was stored");
    municipality.stop().await;
    guards.stop().await;
}

async fn an_agreement_past_its_end_date_is_inactive_and_says_why(backend: Backend) {
    let (municipality, guards) = municipality_and_guards(backend).await;
    municipality.request(Method::POST, "/api/v1/agreements").json(&template()).send().await.unwrap();
    guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    assert_eq!(status(&municipality).await["state"], "active");
    municipality.clock.advance(Duration::days(800));
    let status = status(&municipality).await;
    assert_eq!(status["state"], "expired");
    assert!(status["detail"].as_str().unwrap().contains("2027-12-31"), "{status}");
    municipality.stop().await;
    guards.stop().await;
}

async fn a_party_that_was_offline_hears_of_signatures_and_revocation_when_the_other_restarts(backend: Backend) {
    let (municipality, mut guards) = municipality_and_guards(backend).await;
    municipality.request(Method::POST, "/api/v1/agreements").json(&template()).send().await.unwrap();
    guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    // The municipality goes offline; meanwhile the guards revoke. The revocation cannot be sent.
    let mut municipality = municipality;
    municipality.halt().await;
    guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/revoke")).send().await.unwrap();
    let municipality = municipality.restart().await;
    assert_eq!(status(&municipality).await["state"], "active", "the revocation arrived while offline?");
    // When the guards' node restarts, it announces what it has; the municipality hears of it.
    guards.halt().await;
    let guards = guards.restart().await;
    until_within("the revocation never reached the municipality", StdDuration::from_secs(20), || async {
        let state = status(&municipality).await["state"].clone();
        if state == "revoked" { Ok(()) } else { Err(format!("it is {state}")) }
    })
    .await;
    municipality.stop().await;
    guards.stop().await;
}

async fn agreements_survive_a_key_rotation(backend: Backend) {
    let (mut municipality, guards) = municipality_and_guards(backend).await;
    municipality.request(Method::POST, "/api/v1/agreements").json(&template()).send().await.unwrap();
    guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    municipality.halt().await;
    municipality.clock.advance(Duration::minutes(5));
    guards.clock.advance(Duration::minutes(5));
    lagesbild::identity::rotate(&municipality.config, municipality.clock.now()).unwrap();
    let municipality = municipality.restart().await;
    let org = lagesbild::domain::OrgId::parse("se-kommun-norrkoping").unwrap();
    let new_key = municipality.keys().card.signing_key;
    until_within("the guards never learnt the new card", StdDuration::from_secs(20), || async {
        let known = guards.store().partner(&org).await.unwrap().unwrap().signing_key;
        if known == new_key { Ok(()) } else { Err(format!("they still hold {known}")) }
    })
    .await;
    // Signatures made with the old key still count on both sides.
    assert_eq!(status(&municipality).await["state"], "active");
    assert_eq!(status(&guards).await["state"], "active");
    // And the rotated party can still revoke, with its new key.
    let revoked = municipality.request(Method::POST, &format!("/api/v1/agreements/{ID}/revoke")).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(status(&guards).await["state"], "revoked");
    municipality.stop().await;
    guards.stop().await;
}

async fn a_local_agreement_flows_only_while_its_framework_is_active(backend: Backend) {
    let (municipality, guards) = municipality_and_guards(backend).await;
    let mut framework = template();
    framework["id"] = json!("se-ramavtal-bevakning");
    let mut local = template();
    local["framework"] = json!("se-ramavtal-bevakning");
    local["valid_until"] = json!("2027-06-30T00:00:00Z");
    local["flows"][0]["fields"]["persons"] = json!("drop");
    let propose = |body: &Value| municipality.request(Method::POST, "/api/v1/agreements").json(body).send();
    assert_eq!(propose(&framework).await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(propose(&local).await.unwrap().status(), StatusCode::CREATED);
    let sign = |id: &str| guards.request(Method::POST, &format!("/api/v1/agreements/{id}/sign")).send();
    assert_eq!(sign(ID).await.unwrap().status(), StatusCode::OK);
    // Envelopes are queued in the transaction that files the report: an empty ledger right after
    // filing means nothing will ever go out for it.
    // Signed by both, but its framework is not: nothing flows. The sweep, which ends sharing under
    // agreements that ended, runs now on both sides: a framework not yet in force has not ended.
    assert_eq!(status(&municipality).await["state"], "framework_inactive");
    for node in [&municipality, &guards] {
        lagesbild::federation::sweep::sweep(node.federation()).await.unwrap();
    }
    let before = municipality.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    assert_eq!(ledger(&municipality, &before).await.len(), 0, "a report was queued under an inactive framework");

    // The framework in force: a report flows, under the local agreement (the first by id), with its
    // narrower rules.
    assert_eq!(sign("se-ramavtal-bevakning").await.unwrap().status(), StatusCode::OK);
    assert_eq!(status(&municipality).await["state"], "active");
    let during = municipality.file(&report(2)).await["id"].as_str().unwrap().to_owned();
    // A delivery that reached the guards before their side saw the framework in force is deferred
    // and retried after a back-off, which these clocks reach only when told to move.
    let received = until_within("the report never reached the guards", StdDuration::from_secs(30), || async {
        for node in [&municipality, &guards] {
            node.clock.advance(Duration::seconds(5));
        }
        let page = guards.situation("?limit=1000").await;
        let found = page["reports"].as_array().unwrap().iter().find(|r| r["id"] == during.as_str()).cloned();
        found.ok_or(format!("the municipality's ledger: {:?}", ledger(&municipality, &during).await))
    })
    .await;
    assert_eq!(received["agreement"], ID, "{received}");
    assert!(received.get("persons").is_none(), "the local agreement drops persons: {received}");

    // The framework revoked: the local agreement stops at once, on both sides.
    guards.request(Method::POST, "/api/v1/agreements/se-ramavtal-bevakning/revoke").send().await.unwrap();
    assert_eq!(status(&municipality).await["state"], "framework_inactive");
    assert_eq!(status(&guards).await["state"], "framework_inactive");
    let after = municipality.file(&report(1)).await["id"].as_str().unwrap().to_owned();
    assert_eq!(ledger(&municipality, &after).await.len(), 0, "a report was queued after the framework was revoked");
    let picture = guards.situation("?limit=1000").await.to_string();
    assert!(!picture.contains(&before) && !picture.contains(&after), "{picture}");
    municipality.stop().await;
    guards.stop().await;
}
