//! While a node reads a partner's feed to catch up, it answers that partner's pushes with 503 and
//! the partner keeps them queued: the same envelopes come through the feed or, once the reading
//! ends, by push again. Nothing is lost and nothing is checked twice.

use lagesbild::domain::OrgId;
use lagesbild::federation::client::ClientError;

use crate::exchange::{GUARDING, GUARDS, MUNICIPALITY, agree, federation, ledger, picture_entry};
use crate::on_both_backends;
use crate::support::{Backend, report, until};

on_both_backends!(a_push_into_a_catch_up_under_way_gets_503_and_stays_queued_until_it_ends);

async fn a_push_into_a_catch_up_under_way_gets_503_and_stays_queued_until_it_ends(backend: Backend) {
    // Periodic catch-up is put off, so that only the reading this test holds is under way.
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |config| {
        if let Some(federation) = config.federation.as_mut() {
            federation.catch_up_seconds = 3600;
        }
    })
    .await;
    let (municipality, guards) = (&nodes[0], &nodes[1]);
    agree(&[municipality, guards], GUARDING).await;

    let sender = OrgId::parse(MUNICIPALITY).unwrap();
    let reading = guards.federation().catching_up.begin(&sender);

    // The endpoint itself says why: this node is reading the caller's feed.
    match crate::peering::client(municipality, guards).await.post_envelopes(&[]).await {
        Err(ClientError::Refused { status: 503, detail, .. }) => assert!(detail.contains("catch up"), "{detail}"),
        other => panic!("expected 503 while the feed is read, got {other:?}"),
    }

    let filed = municipality.file(&report(1)).await;
    let id = filed["id"].as_str().unwrap().to_owned();
    // The sender tried, was told 503, and keeps the envelope queued.
    let share = until(|| async {
        let share = ledger(municipality, &id).await.into_iter().find(|s| s["recipient"] == GUARDS)?;
        (share["attempts"].as_i64().unwrap() >= 1).then_some(share)
    })
    .await;
    assert_eq!(share["state"], "queued", "{share}");
    assert_eq!(share["acknowledged"], false, "{share}");
    assert!(share["last_error"].as_str().unwrap_or_default().contains("503"), "{share}");
    let picture = guards.situation("?limit=1000").await;
    assert!(picture["reports"].as_array().unwrap().iter().all(|r| r["id"] != id.as_str()), "stored during the pause");

    // Once the reading ends, the queued envelope is delivered by the next push, which is due
    // after the first back-off (at most two seconds by the sender's clock).
    drop(reading);
    municipality.clock.advance(chrono::Duration::seconds(2));
    picture_entry(guards, &id, |entry| entry.is_some()).await;
    until(|| async { ledger(municipality, &id).await.iter().all(|s| s["state"] == "delivered").then_some(()) }).await;
    for node in nodes {
        node.stop().await;
    }
}
