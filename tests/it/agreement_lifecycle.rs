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
use crate::support::{Backend, TestNode, expect_problem, problem_fields, report, until_advancing, until_within};

on_both_backends!(
    an_agreement_takes_effect_when_every_party_signed_and_ends_for_all_when_one_revokes,
    documents_over_other_bytes_or_from_outside_the_agreement_are_refused,
    an_agreement_past_its_end_date_is_inactive_and_says_why,
    a_signature_made_while_a_party_was_down_reaches_it_when_it_returns_without_any_restart,
    a_revocation_that_overtakes_its_agreement_is_kept_and_applied_when_it_arrives,
    agreements_survive_a_key_rotation,
    a_local_agreement_flows_only_while_its_framework_is_active,
    an_agreement_drafted_from_a_template_for_new_parties_comes_into_force_between_them,
    a_local_agreement_between_nodes_no_party_to_its_framework_flows_only_while_the_framework_is_in_force,
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
    status_of(node, ID).await
}

async fn status_of(node: &TestNode, id: &str) -> Value {
    let view: Value = node.get(&format!("/api/v1/agreements/{id}")).send().await.unwrap().json().await.unwrap();
    view["status"].clone()
}

/// The agreement's status at `node` once it is `state`: a party hears of another's signature or
/// revocation through that party's lifecycle outbox, a moment after it was made.
async fn status_once(node: &TestNode, state: &str) -> Value {
    status_of_once(node, ID, state).await
}

/// Like [`status_once`], for the agreement `id`.
async fn status_of_once(node: &TestNode, id: &str, state: &str) -> Value {
    until_within(&format!("{id} did not become {state}"), StdDuration::from_secs(20), || async {
        let status = status_of(node, id).await;
        if status["state"] == state { Ok(status) } else { Err(status.to_string()) }
    })
    .await
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

    // The proposal reaches the guards' node, where it waits for their signature.
    crate::exchange::holds_agreement(&guards, ID).await;
    assert_eq!(status(&guards).await["state"], "awaiting_signatures");
    let signed = guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    for node in [&guards, &municipality] {
        let status = status_once(node, "active").await;
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
        let status = status_once(node, "revoked").await;
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
    // keeps the agreement it has (once the proposal has reached it through the lifecycle outbox).
    crate::exchange::holds_agreement(&guards, ID).await;
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
    crate::exchange::holds_agreement(&guards, ID).await;
    guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    status_once(&municipality, "active").await;
    municipality.clock.advance(Duration::days(800));
    let status = status(&municipality).await;
    assert_eq!(status["state"], "expired");
    assert!(status["detail"].as_str().unwrap().contains("2027-12-31"), "{status}");
    municipality.stop().await;
    guards.stop().await;
}

async fn a_signature_made_while_a_party_was_down_reaches_it_when_it_returns_without_any_restart(backend: Backend) {
    let (municipality, guards) = municipality_and_guards(backend).await;
    municipality.request(Method::POST, "/api/v1/agreements").json(&template()).send().await.unwrap();
    crate::exchange::holds_agreement(&guards, ID).await;
    // The municipality goes down; meanwhile the guards sign. The signature waits in their
    // lifecycle outbox, and their partner page says so.
    let mut municipality = municipality;
    municipality.halt().await;
    guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    let waiting = || async {
        let partner: Value =
            guards.get("/api/v1/partners/se-kommun-norrkoping").send().await.unwrap().json().await.unwrap();
        partner["delivery"]["documents_queued"].as_i64().unwrap_or(-1)
    };
    until_advancing(&[&guards], Duration::seconds(1), || async { (waiting().await == 1).then_some(()) }).await;
    // It returns; the guards' outbox delivers the signature on its next try (their clock moved on
    // to it), and nobody restarts the guards' node.
    let municipality = municipality.restart().await;
    assert_eq!(status(&municipality).await["state"], "awaiting_signatures");
    until_advancing(&[&guards], Duration::seconds(5), || async {
        (status(&municipality).await["state"] == "active" && waiting().await == 0).then_some(())
    })
    .await;
    municipality.stop().await;
    guards.stop().await;
}

async fn a_revocation_that_overtakes_its_agreement_is_kept_and_applied_when_it_arrives(backend: Backend) {
    use crate::exchange::{MUNICIPALITY, POLICE, RETAILER, SAFETY, federation, holds_agreement, template};
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    let [municipality, police, retailer] = &nodes[..] else { unreachable!() };
    let id = template(SAFETY)["id"].as_str().unwrap().to_owned();
    // The shop's node refuses the municipality's for a while: the proposal waits in the
    // municipality's outbox.
    let block = |verb: &str| retailer.request(Method::POST, &format!("/api/v1/partners/{MUNICIPALITY}/{verb}")).send();
    assert_eq!(block("block").await.unwrap().status(), StatusCode::OK);
    let proposed =
        municipality.request(Method::POST, "/api/v1/agreements").json(&template(SAFETY)).send().await.unwrap();
    assert_eq!(proposed.status(), StatusCode::CREATED);
    holds_agreement(police, &id).await;
    // The police decline it; their statement reaches the shop before the agreement does.
    let declined = police.request(Method::POST, &format!("/api/v1/agreements/{id}/decline")).send().await.unwrap();
    assert_eq!(declined.status(), StatusCode::OK);
    let kept = || async {
        let trail: Value = retailer
            .get(&format!("/api/v1/audit?event=agreement.revocation_kept&agreement={id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        trail["entries"].as_array().unwrap().len()
    };
    until_advancing(&[police], Duration::seconds(1), || async { (kept().await == 1).then_some(()) }).await;
    assert_eq!(retailer.get(&format!("/api/v1/agreements/{id}")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    // Let in again, the municipality's next try delivers the agreement, and the kept statement is
    // applied to it at once.
    assert_eq!(block("unblock").await.unwrap().status(), StatusCode::OK);
    until_advancing(&[municipality], Duration::seconds(5), || async {
        let answer = retailer.get(&format!("/api/v1/agreements/{id}")).send().await.unwrap();
        if answer.status() != StatusCode::OK {
            return None;
        }
        let view: Value = answer.json().await.unwrap();
        (view["status"]["state"] == "declined").then_some(())
    })
    .await;
    for node in nodes {
        node.stop().await;
    }
}

async fn agreements_survive_a_key_rotation(backend: Backend) {
    let (mut municipality, guards) = municipality_and_guards(backend).await;
    municipality.request(Method::POST, "/api/v1/agreements").json(&template()).send().await.unwrap();
    crate::exchange::holds_agreement(&guards, ID).await;
    guards.request(Method::POST, &format!("/api/v1/agreements/{ID}/sign")).send().await.unwrap();
    status_once(&municipality, "active").await;
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
    status_once(&municipality, "active").await;
    status_once(&guards, "active").await;
    // And the rotated party can still revoke, with its new key.
    let revoked = municipality.request(Method::POST, &format!("/api/v1/agreements/{ID}/revoke")).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    status_once(&guards, "revoked").await;
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
    crate::exchange::holds_agreement(&guards, "se-ramavtal-bevakning").await;
    crate::exchange::holds_agreement(&guards, ID).await;
    assert_eq!(sign(ID).await.unwrap().status(), StatusCode::OK);
    // Envelopes are queued in the transaction that files the report: an empty ledger right after
    // filing means nothing will ever go out for it.
    // Signed by both, but its framework is not: nothing flows. The sweep, which ends sharing under
    // agreements that ended, runs now on both sides: a framework not yet in force has not ended.
    status_once(&municipality, "framework_inactive").await;
    for node in [&municipality, &guards] {
        lagesbild::federation::sweep::sweep(node.federation()).await.unwrap();
    }
    let before = municipality.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    assert_eq!(ledger(&municipality, &before).await.len(), 0, "a report was queued under an inactive framework");

    // The framework in force: a report flows, under the local agreement (the first by id), with its
    // narrower rules.
    assert_eq!(sign("se-ramavtal-bevakning").await.unwrap().status(), StatusCode::OK);
    status_once(&municipality, "active").await;
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
    status_once(&municipality, "framework_inactive").await;
    status_once(&guards, "framework_inactive").await;
    let after = municipality.file(&report(1)).await["id"].as_str().unwrap().to_owned();
    assert_eq!(ledger(&municipality, &after).await.len(), 0, "a report was queued after the framework was revoked");
    let picture = guards.situation("?limit=1000").await.to_string();
    assert!(!picture.contains(&before) && !picture.contains(&after), "{picture}");
    municipality.stop().await;
    guards.stop().await;
}

async fn an_agreement_drafted_from_a_template_for_new_parties_comes_into_force_between_them(backend: Backend) {
    let (linkoping, guards) = partners(backend, "se-kommun-linkoping", "se-vakt-linkoping").await;
    let draft_at = |template: &str, body: Value| {
        linkoping.request(Method::POST, &format!("/api/v1/agreement-templates/{template}/draft")).json(&body).send()
    };
    let adaptation = json!({
        "id": "se-linkoping-kommun-vaktbolag",
        "title": "Bevakning i Linköping",
        "parties": [
            { "role": "municipality", "org_id": "se-kommun-linkoping" },
            { "role": "guard_company", "org_id": "se-vakt-linkoping" }
        ],
        "valid_from": (crate::support::start_time() - Duration::days(1)).to_rfc3339()
    });
    let listed: Value = linkoping.get("/api/v1/agreement-templates").send().await.unwrap().json().await.unwrap();
    assert!(listed.as_array().unwrap().iter().any(|t| t["name"] == "norrkoping-municipality-guards"), "{listed}");
    let answer = draft_at("norrkoping-municipality-guards", adaptation.clone()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let draft: Value = answer.json().await.unwrap();
    // Names come from this node's own card and the partner's card on record.
    let parties = &draft["agreement"]["parties"];
    assert_eq!(parties[0]["name"], "Test node se-kommun-linkoping", "{draft}");
    assert_eq!(parties[1]["name"], "Test node se-vakt-linkoping", "{draft}");
    let notes = draft["notes"].to_string();
    assert!(notes.contains("keeps the template's area") && !notes.contains("named by its id"), "{notes}");
    assert!(!draft["agreement"].to_string().contains("norrkoping\""), "no party of the template stays: {draft}");

    crate::exchange::agree_on(&[&linkoping, &guards], &draft["agreement"]).await;
    let filed = linkoping.file(&report(2)).await["id"].as_str().unwrap().to_owned();
    let received = crate::exchange::picture_entry(&guards, &filed, |entry| entry.is_some()).await.unwrap();
    assert_eq!(received["agreement"], "se-linkoping-kommun-vaktbolag");

    // A party that takes no one's place, and a template that does not exist, are named.
    let mut nowhere = adaptation.clone();
    nowhere["parties"] = json!([{ "role": "retailer", "org_id": "se-ica-linkoping" }]);
    let refused = expect_problem(
        draft_at("norrkoping-municipality-guards", nowhere).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&refused), ["parties[0].role"]);
    expect_problem(draft_at("no-such-template", adaptation).await.unwrap(), StatusCode::NOT_FOUND).await;
    linkoping.stop().await;
    guards.stop().await;
}

/// The Norwegian national framework between the police directorate and the guard industry, and a
/// local agreement under it between the Oslo police district and an Oslo guard company, neither of
/// which is a party to the framework: four nodes. The Oslo police imports the framework's signed
/// document (exported by the directorate's node), proposes the local agreement, and the guard
/// company's node receives the framework with it; a report flows under the local agreement while the
/// framework is in force, and stops at once on both sides when the directorate revokes it.
async fn a_local_agreement_between_nodes_no_party_to_its_framework_flows_only_while_the_framework_is_in_force(
    backend: Backend,
) {
    let orgs = ["no-politidirektoratet", "no-nho-service-handel", "no-politiet-oslo", "no-vekterselskapet-oslo"];
    let nodes = crate::exchange::federation(backend, &orgs, |_| {}).await;
    let [directorate, industry, police, guards] = &nodes[..] else { unreachable!() };
    let framework = crate::exchange::template("no-politi-vekter-rammeavtale.toml");
    let framework_id = framework["id"].as_str().unwrap().to_owned();
    let local = crate::exchange::template("no-oslo-lokal-avtale.toml");
    let local_id = local["id"].as_str().unwrap().to_owned();
    let import = |body: Value| police.request(Method::POST, "/api/v1/frameworks").json(&body).send();
    let document = || async {
        let path = format!("/api/v1/agreements/{framework_id}/document");
        directorate.get(&path).send().await.unwrap().json::<Value>().await.unwrap()
    };

    // Proposed by the directorate but not yet signed by the industry: not a framework to hold.
    let proposed = directorate.request(Method::POST, "/api/v1/agreements").json(&framework).send().await.unwrap();
    assert_eq!(proposed.status(), StatusCode::CREATED);
    let refused = expect_problem(import(document().await).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(refused.to_string().contains("no-nho-service-handel has not signed"), "{refused}");
    crate::exchange::holds_agreement(industry, &framework_id).await;
    let signed = industry.request(Method::POST, &format!("/api/v1/agreements/{framework_id}/sign")).send().await;
    assert_eq!(signed.unwrap().status(), StatusCode::OK);
    status_of_once(directorate, &framework_id, "active").await;

    // The Oslo police holds the signed framework, and proposes the local agreement under it.
    let held = import(document().await).await.unwrap();
    assert_eq!(held.status(), StatusCode::CREATED);
    let held: Value = held.json().await.unwrap();
    assert_eq!((held["held_as_framework"].clone(), held["status"]["state"].clone()), (json!(true), json!("active")));
    crate::exchange::agree_on(&[police, guards], &local).await;
    let at_guards: Value =
        guards.get(&format!("/api/v1/agreements/{framework_id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(at_guards["held_as_framework"], true, "the framework came with the proposal: {at_guards}");
    // Both Oslo nodes have told the framework's parties that they hold it.
    for party in [directorate, industry] {
        until_within("the holders never registered", StdDuration::from_secs(30), || async {
            let holders = crate::exchange::audit(party, "event=agreement.framework_holder").await;
            (holders.len() == 2).then_some(()).ok_or(format!("{holders:?}"))
        })
        .await;
    }
    // Nobody at the Oslo police may revoke or sign the directorate's framework.
    let revoke = police.request(Method::POST, &format!("/api/v1/agreements/{framework_id}/revoke")).send().await;
    expect_problem(revoke.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;

    let mut oslo = report(2);
    oslo["tlp"] = json!("GREEN");
    oslo["location"] =
        json!({ "lat": 59.9127, "lon": 10.7461, "place_name": "Karl Johans gate", "municipality_code": "0301" });
    let filed = police.file(&oslo).await["id"].as_str().unwrap().to_owned();
    let received = crate::exchange::picture_entry(guards, &filed, |e| e.is_some()).await.unwrap();
    assert_eq!(received["agreement"], local_id.as_str());
    assert_eq!(received["location"]["cell_metres"], 500, "the local agreement's coarser location: {received}");

    // The directorate revokes the framework: the local agreement stops at once on both sides.
    let revoked = directorate.request(Method::POST, &format!("/api/v1/agreements/{framework_id}/revoke")).send().await;
    assert_eq!(revoked.unwrap().status(), StatusCode::OK);
    for node in [police, guards] {
        status_of_once(node, &local_id, "framework_inactive").await;
    }
    crate::exchange::picture_entry(guards, &filed, |e| e.is_none()).await;
    let after = police.file(&oslo).await["id"].as_str().unwrap().to_owned();
    assert_eq!(ledger(police, &after).await.len(), 0, "a report was queued after the framework was revoked");
    for node in nodes {
        node.stop().await;
    }
}
