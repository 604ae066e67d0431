//! Floods anyone can start, and floods a partner can: refused handshakes by strangers and envelopes
//! signed by keys this node does not know add a bounded number of audit entries, each minute's rest
//! counted in one entry, so the trail grows by little however fast they come and nothing of the
//! count is lost; a partner's proposals awaiting signatures here are capped until an admin signs or
//! declines one; and a partner's deliveries are charged per envelope, not per request.

use std::time::Duration as StdDuration;

use chrono::Duration;
use lagesbild::clock::Clock;
use lagesbild::crypto::jws::Jws;
use lagesbild::crypto::keys::SigningKey;
use lagesbild::crypto::tls::TlsIdentity;
use lagesbild::domain::OrgId;
use lagesbild::federation::agreements::MAX_PENDING_PROPOSALS;
use lagesbild::federation::client::ClientError;
use lagesbild::federation::inbox::Outcome;
use lagesbild::federation::refusals::MAX_SOURCES;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::exchange::{
    GUARDING, GUARDS, MUNICIPALITY, agree, audit, federation, guarding_held_back, id_of, queued_envelopes, resigned,
    template,
};
use crate::on_both_backends;
use crate::peering::{client, client_with, partnered};
use crate::support::{Backend, TestNode, report, start_time, until, until_within};

on_both_backends!(
    a_flood_of_refused_handshakes_adds_a_bounded_number_of_audit_entries_and_counts_them_all,
    a_flood_of_envelopes_signed_by_unknown_keys_adds_a_bounded_number_of_audit_entries_and_counts_them_all,
    a_partners_proposals_awaiting_signature_are_capped_until_an_admin_declines_one,
    a_partner_that_spent_its_envelope_budget_is_refused_until_it_refills,
);

/// How many handshakes each stranger tries, and how many strangers there are: more than a minute's
/// tally tells apart.
const ATTEMPTS: usize = 8;
const STRANGERS: usize = MAX_SOURCES + 5;

async fn a_flood_of_refused_handshakes_adds_a_bounded_number_of_audit_entries_and_counts_them_all(backend: Backend) {
    let (a, b) = partnered(backend).await;
    let before = audit(&b, "").await.len();
    let dir = tempfile::tempdir().unwrap();
    let stranger = OrgId::parse("se-okand").unwrap();
    for n in 0..STRANGERS {
        let (cert, key) = (dir.path().join(format!("{n}.crt")), dir.path().join(format!("{n}.key")));
        let hosts = ["localhost".to_owned()];
        let identity =
            TlsIdentity::generate(&stranger, &hosts, start_time(), start_time() + Duration::days(30), &cert, &key)
                .unwrap();
        for _ in 0..ATTEMPTS {
            let answer = client_with(&identity, &a, &b).await.hello().await;
            assert!(answer.is_err(), "a stranger was let in: {answer:?}");
        }
    }
    // The partner still gets in.
    client(&a, &b).await.hello().await.unwrap();

    // At once: one entry for each source told apart, none for the rest.
    let refused = until_within("the first refusals were not audited", StdDuration::from_secs(10), || async {
        let entries = audit(&b, "event=federation.handshake_refused").await;
        if entries.len() >= MAX_SOURCES { Ok(entries) } else { Err(format!("{} entries", entries.len())) }
    })
    .await;
    assert_eq!(refused.len(), MAX_SOURCES, "{}", details(&refused));

    // When the minute is over, its counts: one entry for each source that came again, one for the
    // sources beyond those told apart; together they count every refused handshake.
    b.clock.advance(Duration::seconds(61));
    let expected = MAX_SOURCES * 2 + 1;
    let refused = until_within("the minute's counts were not audited", StdDuration::from_secs(10), || async {
        let entries = audit(&b, "event=federation.handshake_refused").await;
        if entries.len() >= expected { Ok(entries) } else { Err(format!("{} entries", entries.len())) }
    })
    .await;
    assert_eq!(refused.len(), expected, "{}", details(&refused));
    assert_eq!(counted(&refused), STRANGERS * ATTEMPTS, "{}", details(&refused));
    // The trail grew by those entries and the partners' own few, not by one per handshake.
    let grown = audit(&b, "").await.len() - before;
    assert!(grown < expected + 10, "the trail grew by {grown} entries");
    a.stop().await;
    b.stop().await;
}

async fn a_flood_of_envelopes_signed_by_unknown_keys_adds_a_bounded_number_of_audit_entries_and_counts_them_all(
    backend: Backend,
) {
    // The envelope stays queued at the municipality, to be copied.
    let nodes = guarding_held_back(backend).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    let id = id_of(&municipality.file(&report(2)).await);
    let valid = queued_envelopes(municipality, &id).await.remove(0);
    let dir = tempfile::tempdir().unwrap();
    let unknown = SigningKey::generate(&dir.path().join("unknown.key")).unwrap();
    let flood: Vec<_> =
        (0..300).map(|_| resigned(&valid, &unknown, GUARDS, municipality.clock.now(), |_| {})).collect();
    let results = client(municipality, guards).await.post_envelopes(&flood).await.unwrap();
    assert!(results.iter().all(|r| r.outcome == Outcome::Deferred), "{results:?}");
    assert_eq!(audit(guards, "event=envelope.deferred").await.len(), 1);

    guards.clock.advance(Duration::seconds(61));
    let deferred = until_within("the minute's count was not audited", StdDuration::from_secs(10), || async {
        let entries = audit(guards, "event=envelope.deferred").await;
        if entries.len() >= 2 { Ok(entries) } else { Err(format!("{entries:?}")) }
    })
    .await;
    assert_eq!(deferred.len(), 2, "{deferred:?}");
    assert!(deferred.iter().all(|e| e["partner"] == MUNICIPALITY), "{deferred:?}");
    assert_eq!(counted(&deferred), 300, "{deferred:?}");
    for node in nodes {
        node.stop().await;
    }
}

async fn a_partners_proposals_awaiting_signature_are_capped_until_an_admin_declines_one(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    let proposal = |n: usize| {
        let mut agreement = template(GUARDING);
        agreement["id"] = json!(format!("se-norrkoping-bevakning-forslag-{n}"));
        agreement
    };
    // An agreement in force counts for nothing, and cannot be declined, only revoked.
    let active = agree(&[municipality, guards], GUARDING).await;
    let declined = guards.request(Method::POST, &format!("/api/v1/agreements/{active}/decline")).send().await.unwrap();
    assert_eq!(declined.status(), StatusCode::CONFLICT);
    for n in 0..MAX_PENDING_PROPOSALS {
        let proposed =
            municipality.request(Method::POST, "/api/v1/agreements").json(&proposal(n)).send().await.unwrap();
        assert_eq!(proposed.status(), StatusCode::CREATED);
    }
    until(|| async { (awaiting_here(guards).await.len() == MAX_PENDING_PROPOSALS).then_some(()) }).await;

    // One more is refused, and the proposer is told why.
    let one_more = proposal(MAX_PENDING_PROPOSALS);
    let proposed = municipality.request(Method::POST, "/api/v1/agreements").json(&one_more).send().await.unwrap();
    assert_eq!(proposed.status(), StatusCode::CREATED);
    let one_more_id = one_more["id"].as_str().unwrap();
    let document = stored_document(municipality, one_more_id).await;
    match client(municipality, guards).await.post("/federation/v1/agreements", &document).await {
        Err(ClientError::Refused { status: 409, detail, .. }) => {
            assert!(detail.contains(&format!("{MAX_PENDING_PROPOSALS} proposals")), "{detail}");
        }
        other => panic!("expected 409, got {other:?}"),
    }
    assert_eq!(awaiting_here(guards).await.len(), MAX_PENDING_PROPOSALS);

    // The guards' admin declines one: the slot is free, and the municipality learns who declined.
    let first = proposal(0)["id"].as_str().unwrap().to_owned();
    let declined = guards
        .request(Method::POST, &format!("/api/v1/agreements/{first}/decline"))
        .json(&json!({"reason": "not this year"}))
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), StatusCode::OK);
    let view: Value = declined.json().await.unwrap();
    assert_eq!(view["status"]["state"], "declined", "{view}");
    assert_eq!(audit(guards, &format!("event=agreement.declined&agreement={first}")).await.len(), 1);
    until(|| async {
        let view: Value =
            municipality.get(&format!("/api/v1/agreements/{first}")).send().await.unwrap().json().await.unwrap();
        (view["status"]["state"] == "declined").then_some(())
    })
    .await;
    let declined_again =
        guards.request(Method::POST, &format!("/api/v1/agreements/{first}/sign")).send().await.unwrap();
    assert_eq!(declined_again.status(), StatusCode::CONFLICT);
    client(municipality, guards).await.post("/federation/v1/agreements", &document).await.unwrap();
    assert_eq!(awaiting_here(guards).await.len(), MAX_PENDING_PROPOSALS);
    for node in nodes {
        node.stop().await;
    }
}

/// The agreements at `node` awaiting its signature.
async fn awaiting_here(node: &TestNode) -> Vec<Value> {
    let list: Value = node.get("/api/v1/agreements").send().await.unwrap().json().await.unwrap();
    list.as_array().unwrap().iter().filter(|a| a["status"]["state"] == "awaiting_signatures").cloned().collect()
}

async fn stored_document(node: &TestNode, id: &str) -> Jws {
    let record = node.store().agreement(id).await.unwrap().unwrap();
    Jws::parse(record.document.as_bytes()).unwrap()
}

fn ten_envelopes_a_second(config: &mut lagesbild::config::NodeConfig) {
    if let Some(federation) = config.federation.as_mut() {
        federation.envelopes_per_second = 10;
    }
}

async fn a_partner_that_spent_its_envelope_budget_is_refused_until_it_refills(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], ten_envelopes_a_second).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    let junk = |n: usize| vec![Jws { payload: "e30".into(), signatures: vec![] }; n];
    let client = client(municipality, guards).await;
    // A burst of twice the rate is taken, each envelope answered on its own.
    let answered = client.post_envelopes(&junk(20)).await.unwrap();
    assert_eq!(answered.len(), 20);
    // Then the budget is spent: refused whole, with when to come back.
    match client.post_envelopes(&junk(5)).await {
        Err(ClientError::Refused { status: 429, detail, .. }) => assert!(detail.contains("retry after"), "{detail}"),
        other => panic!("expected 429, got {other:?}"),
    }
    // It refills at the rate.
    until_within("the budget did not refill", StdDuration::from_secs(10), || async {
        client.post_envelopes(&junk(5)).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;
    for node in nodes {
        node.stop().await;
    }
}

/// The entries' details, one a line, for a failure message.
fn details(entries: &[Value]) -> String {
    entries.iter().map(|e| e["detail"].as_str().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// How many refusals `entries` stand for: one for an entry of its own, N for "N more ...".
fn counted(entries: &[Value]) -> usize {
    entries
        .iter()
        .map(|e| {
            let detail = e["detail"].as_str().unwrap_or_default();
            match detail.split_once(" more ") {
                Some((count, _)) => count.parse::<usize>().unwrap_or(1),
                None => 1,
            }
        })
        .sum()
}
