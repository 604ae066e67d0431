//! What must never reach a partner, or stay with it, even at the edges of the exchange: a version
//! its originator has since withdrawn or re-marked while the partner was away; a person erased for
//! data protection while the partner was away and still owed a withdrawal; a report shown through an
//! agreement's preview without a trace of who looked.

use std::process::Command;

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::exchange::{
    MUNICIPALITY, POLICE, RETAILER, SAFETY, agree, agree_on, audit, federation, federation_at, ledger, picture_entry,
    template,
};
use crate::on_both_backends;
use crate::support::{Backend, TestNode, report, until_advancing};

on_both_backends!(
    a_version_superseded_while_the_partner_blocked_its_sender_never_reaches_it,
    a_version_superseded_while_the_partner_was_offline_never_reaches_it,
    an_erasure_while_a_withdrawal_is_owed_still_withdraws_the_report,
    an_erasure_while_a_retraction_is_owed_still_retracts_the_report,
    a_preview_of_a_report_is_audited_as_a_read,
    partners_whose_clocks_are_years_ahead_still_shake_hands_and_share,
    a_proposal_with_thousands_of_overlapping_flows_is_refused_with_a_bounded_answer,
    a_partners_proposal_signed_by_no_party_is_refused_before_its_content_is_checked,
);

/// How the police are kept from receiving while the municipality changes its report.
#[derive(Clone, Copy)]
enum Away {
    /// The police block the municipality, then unblock it.
    Blocking,
    /// The police's node is down, then starts again.
    Offline,
}

async fn a_version_superseded_while_the_partner_blocked_its_sender_never_reaches_it(backend: Backend) {
    superseded_while_away(backend, Away::Blocking).await;
}

async fn a_version_superseded_while_the_partner_was_offline_never_reaches_it(backend: Backend) {
    superseded_while_away(backend, Away::Offline).await;
}

/// The municipality files a GREEN report naming a witness, then re-marks it RED, while the police
/// cannot be reached; when they can again, they get the withdrawal only, never version 1.
async fn superseded_while_away(backend: Backend, away: Away) {
    let mut nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    let retailer = nodes.pop().unwrap();
    let mut police = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    agree(&[&municipality, &police, &retailer], SAFETY).await;
    match away {
        Away::Blocking => set_blocked(&police, MUNICIPALITY, true).await,
        Away::Offline => police.halt().await,
    }

    let mut green = report(1);
    green["tlp"] = json!("GREEN");
    let id = municipality.file(&green).await["id"].as_str().unwrap().to_owned();
    let mut red = green.clone();
    red["tlp"] = json!("RED");
    let remarked = municipality
        .request(Method::PUT, &format!("/api/v1/reports/{id}"))
        .header("If-Match", "\"1\"")
        .json(&red)
        .send()
        .await
        .unwrap();
    assert_eq!(remarked.status(), StatusCode::OK, "{}", remarked.text().await.unwrap());

    // The sender has cancelled version 1 for the police: the withdrawal is all they need.
    let shares = ledger(&municipality, &id).await;
    let first = shares.iter().find(|s| s["version"] == 1 && s["recipient"] == POLICE).expect("version 1 was queued");
    assert_eq!(first["state"], "cancelled", "{shares:?}");
    assert!(first["last_error"].as_str().unwrap().contains("superseded by version 2"), "{first}");

    let police = match away {
        Away::Blocking => {
            set_blocked(&police, MUNICIPALITY, false).await;
            police
        }
        Away::Offline => police.restart().await,
    };
    // Retries come due as time passes.
    until_advancing(&[&municipality, &police], Duration::minutes(1), || async {
        ledger(&municipality, &id).await.iter().all(|s| s["state"] != "queued").then_some(())
    })
    .await;
    picture_entry(&police, &id, |entry| entry.is_none()).await;
    let received = audit(&police, &format!("event=envelope.received&report={id}")).await;
    assert!(!received.is_empty(), "the withdrawal reached the police");
    for entry in &received {
        assert!(entry["detail"].as_str().unwrap().starts_with("version 2"), "{entry}");
    }
    let trail =
        police.get(&format!("/api/v1/audit?limit=1000&report={id}")).send().await.unwrap().text().await.unwrap();
    assert!(!trail.contains("version 1"), "the police's trail shows version 1: {trail}");
    assert!(!police.situation("?limit=1000").await.to_string().contains("Anna Andersson"));
    for node in [municipality, police, retailer] {
        node.stop().await;
    }
}

async fn set_blocked(node: &TestNode, partner: &str, blocked: bool) {
    let action = if blocked { "block" } else { "unblock" };
    let answer = node.request(Method::POST, &format!("/api/v1/partners/{partner}/{action}")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{}", answer.text().await.unwrap());
}

async fn an_erasure_while_a_withdrawal_is_owed_still_withdraws_the_report(backend: Backend) {
    erased_while_owed(backend, |report| {
        let mut red = report.clone();
        red["tlp"] = json!("RED");
        (Method::PUT, "", red)
    })
    .await;
}

async fn an_erasure_while_a_retraction_is_owed_still_retracts_the_report(backend: Backend) {
    erased_while_owed(backend, |_| (Method::POST, "/retract", json!({"reason": "filed by mistake"}))).await;
}

/// The police hold version 1, which names a witness; while they are offline the municipality
/// withdraws the report from them (`change`: a re-marking or a retraction) and then erases the
/// witness. Back online, the police must end without the witness's name: the withdrawal they were
/// owed still reaches them.
async fn erased_while_owed(backend: Backend, change: fn(&Value) -> (Method, &'static str, Value)) {
    // The command-line tool signs by the real clock, so these nodes keep real time too.
    let now = lagesbild::clock::Clock::now(&lagesbild::clock::SystemClock);
    let mut nodes = federation_at(backend, &[MUNICIPALITY, POLICE, RETAILER], now, |_| {}).await;
    let retailer = nodes.pop().unwrap();
    let mut police = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    agree(&[&municipality, &police, &retailer], SAFETY).await;
    let filed = report(1);
    let id = municipality.file(&filed).await["id"].as_str().unwrap().to_owned();
    let held = picture_entry(&police, &id, |e| e.is_some()).await.unwrap();
    assert_eq!(held["persons"]["full"][0]["name"], "Anna Andersson");

    police.halt().await;
    let (method, suffix, body) = change(&filed);
    let changed = municipality
        .request(method, &format!("/api/v1/reports/{id}{suffix}"))
        .header("If-Match", "\"1\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK, "{}", changed.text().await.unwrap());
    let config = municipality.identity_dir.as_ref().unwrap().path().join("node.toml");
    let erased = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["gdpr", "erase", "--name", "Anna Andersson", "--yes", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(erased.status.success(), "{}", String::from_utf8_lossy(&erased.stderr));

    let police = police.restart().await;
    until_advancing(&[&municipality, &police], Duration::minutes(1), || async {
        ledger(&municipality, &id)
            .await
            .iter()
            .filter(|s| s["recipient"] == POLICE)
            .all(|s| s["state"] != "queued")
            .then_some(())
    })
    .await;
    picture_entry(&police, &id, |entry| entry.is_none()).await;
    let picture = police.situation("?limit=1000").await.to_string();
    assert!(!picture.contains("Anna Andersson"), "{picture}");
    for node in [municipality, police, retailer] {
        node.stop().await;
    }
}

async fn a_preview_of_a_report_is_audited_as_a_read(backend: Backend) {
    let mut nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    let retailer = nodes.pop().unwrap();
    let police = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    let agreement = agree(&[&municipality, &police, &retailer], SAFETY).await;
    let id = municipality.file(&report(1)).await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/agreements/{agreement}/preview?report={id}&recipient={POLICE}");
    let preview: Value = municipality.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(preview["view"]["persons"]["full"][0]["name"], "Anna Andersson", "{preview}");
    let reads = audit(&municipality, &format!("event=report.read&report={id}")).await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    let detail = reads[0]["detail"].as_str().unwrap();
    assert!(detail.contains("preview") && detail.contains(POLICE) && detail.contains(&agreement), "{detail}");
    for node in [municipality, police, retailer] {
        node.stop().await;
    }
}

/// Certificates follow the node's clock, as everything else does: nodes whose clock stands years
/// from the real time (tests fix it; so could an operator's mistake) make and check certificates
/// by that clock, so the suite has no date at which it starts to fail.
async fn partners_whose_clocks_are_years_ahead_still_shake_hands_and_share(backend: Backend) {
    let ahead = crate::support::start_time() + Duration::days(5 * 365);
    let mut nodes = federation_at(backend, &[MUNICIPALITY, POLICE, RETAILER], ahead, |_| {}).await;
    let retailer = nodes.pop().unwrap();
    let police = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    let mut agreement = template(SAFETY);
    agreement["valid_from"] = json!((ahead - Duration::days(30)).to_rfc3339());
    agreement["valid_until"] = json!((ahead + Duration::days(365)).to_rfc3339());
    agreement["evaluation_date"] = json!((ahead + Duration::days(180)).to_rfc3339());
    agree_on(&[&municipality, &police, &retailer], &agreement).await;
    let mut filed = report(1);
    filed["observed_at"] = json!((ahead - Duration::hours(1)).to_rfc3339());
    let id = municipality.file(&filed).await["id"].as_str().unwrap().to_owned();
    picture_entry(&police, &id, |e| e.is_some()).await;
    for node in [municipality, police, retailer] {
        node.stop().await;
    }
}

/// A proposal of many identical flows (each pair of them overlaps) is refused for its size, with
/// a short list of problems, not one error per pair.
async fn a_proposal_with_thousands_of_overlapping_flows_is_refused_with_a_bounded_answer(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |config| {
        config.api.body_limit_bytes = 4 * 1024 * 1024;
    })
    .await;
    let node = &nodes[0];
    let mut agreement = template(SAFETY);
    let flow = agreement["flows"][0].clone();
    agreement["flows"] = Value::Array(vec![flow; 2_900]);
    let answer = node.request(Method::POST, "/api/v1/agreements").json(&agreement).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = answer.text().await.unwrap();
    assert!(text.len() < 64 * 1024, "the answer has {} bytes", text.len());
    let problem: Value = serde_json::from_str(&text).unwrap();
    let errors = problem["errors"].as_array().unwrap();
    assert!(errors.len() <= 101, "{} errors", errors.len());
    assert!(
        errors.iter().any(|e| e["field"] == "flows" && e["message"].as_str().unwrap().contains("at most 100")),
        "{text}"
    );
    for node in nodes {
        node.stop().await;
    }
}

async fn a_partners_proposal_signed_by_no_party_is_refused_before_its_content_is_checked(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    let [municipality, police, _] = &nodes[..] else { unreachable!() };
    // Content the checks would refuse (no title, a hundred flows that overlap each other), signed
    // by a key no party owns.
    let mut agreement = template(SAFETY);
    let flow = agreement["flows"][0].clone();
    agreement["flows"] = Value::Array(vec![flow; 100]);
    agreement["title"] = json!("");
    let dir = tempfile::tempdir().unwrap();
    let stranger = lagesbild::crypto::keys::SigningKey::generate(&dir.path().join("stranger.key")).unwrap();
    let payload = serde_json::to_vec(&agreement).unwrap();
    let document = lagesbild::crypto::jws::sign(&payload, lagesbild::domain::agreement::AGREEMENT_TYPE, &[&stranger]);
    match crate::peering::client(municipality, police).await.post("/federation/v1/agreements", &document).await {
        Err(lagesbild::federation::client::ClientError::Refused { status: 422, detail, .. }) => {
            assert!(detail.contains("not trusted here") && !detail.contains("overlaps"), "{detail}");
        }
        other => panic!("expected 422, got {other:?}"),
    }
    for node in nodes {
        node.stop().await;
    }
}
