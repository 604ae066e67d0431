//! Floods anyone can start: refused handshakes by strangers and envelopes signed by keys this node
//! does not know add a bounded number of audit entries, each minute's rest counted in one entry, so
//! the trail grows by little however fast they come, and nothing of the count is lost.

use std::time::Duration as StdDuration;

use chrono::Duration;
use lagesbild::clock::Clock;
use lagesbild::crypto::keys::SigningKey;
use lagesbild::crypto::tls::TlsIdentity;
use lagesbild::domain::OrgId;
use lagesbild::federation::inbox::Outcome;
use lagesbild::federation::refusals::MAX_SOURCES;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::exchange::{GUARDING, GUARDS, MUNICIPALITY, agree, audit, federation, id_of, queued_envelopes, resigned};
use crate::on_both_backends;
use crate::peering::{client, client_with, partnered};
use crate::support::{Backend, report, start_time, until_within};

on_both_backends!(
    a_flood_of_refused_handshakes_adds_a_bounded_number_of_audit_entries_and_counts_them_all,
    a_flood_of_envelopes_signed_by_unknown_keys_adds_a_bounded_number_of_audit_entries_and_counts_them_all,
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
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    agree(&[municipality, guards], GUARDING).await;
    // Blocked, so the envelope stays queued here to be copied.
    let blocked = municipality.request(Method::POST, &format!("/api/v1/partners/{GUARDS}/block")).send().await.unwrap();
    assert_eq!(blocked.status(), StatusCode::OK);
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
