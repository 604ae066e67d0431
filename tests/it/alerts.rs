//! Urgent alerts (issue 19): an urgent report overtakes everything queued for a partner, is an
//! alert at the partner until someone there has seen it, and the sender learns who (which partner,
//! which roles, when) has seen it, through a receipt signed by the partner.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use lagesbild::domain::{OrgId, ReportId, Role};

use crate::exchange::{GUARDING, GUARDS, MUNICIPALITY, agree, audit, federation, id_of};
use crate::on_both_backends;
use crate::persons::person;
use crate::support::{Backend, report, until, until_within};

on_both_backends!(
    an_urgent_report_overtakes_a_full_queue_and_its_sender_learns_who_has_seen_it,
    a_receipt_for_a_report_never_delivered_to_its_sender_is_refused,
);

/// Ordinary reports queued for the guard company while it is away.
const QUEUED: usize = 5_000;
/// How many of them must arrive after the urgent report: more than a feed page's worth.
const OVERTAKEN: usize = 1_000;

async fn an_urgent_report_overtakes_a_full_queue_and_its_sender_learns_who_has_seen_it(backend: Backend) {
    let mut nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let mut guards = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    agree(&[&municipality, &guards], GUARDING).await;

    // The guard company is away while the municipality files: everything waits in its outbox.
    guards.halt().await;
    let filed: Vec<String> = futures_util::stream::iter(0..QUEUED)
        .map(|_| async { id_of(&municipality.file(&report(1)).await) })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(filed.len(), QUEUED);

    // Back, the guard company takes in the queue; once that is under way (the queue is due, not
    // waiting out a back-off), an urgent report is filed: it goes ahead of what is left.
    let guards = guards.restart().await;
    let arrived = || async {
        let events = guards.store().picture_events_after(0, 10_000).await.unwrap();
        events.into_iter().filter(|e| e.kind == "filed").map(|e| e.id.to_string()).collect::<Vec<String>>()
    };
    until(|| async { (!arrived().await.is_empty()).then_some(()) }).await;
    let mut urgent = report(0);
    urgent["urgent"] = json!(true);
    urgent["title"] = json!("Ongoing threat at Hagebyskolan");
    urgent["category"] = json!("threat");
    let before = arrived().await.len();
    let urgent = id_of(&municipality.file(&urgent).await);
    let filed_order = until_within("the whole queue at the guard company", Duration::from_secs(180), || async {
        let filed = arrived().await;
        if filed.len() > QUEUED { Ok(filed) } else { Err(format!("{} of {} there", filed.len(), QUEUED + 1)) }
    })
    .await;
    let position = filed_order.iter().position(|id| *id == urgent).expect("the urgent report's event");
    let behind = filed_order.len() - 1 - position;
    assert!(
        behind >= OVERTAKEN,
        "the urgent report arrived {position}th of {}, only {behind} after it ({before} had arrived when it was \
         filed): it did not overtake the queue",
        filed_order.len()
    );

    // At the guard company it is an alert until someone says they have seen it.
    let alerts: Value = guards.get("/api/v1/alerts").send().await.unwrap().json().await.unwrap();
    let alert = alerts["alerts"].as_array().unwrap().iter().find(|a| a["report"] == urgent).cloned();
    let alert = alert.unwrap_or_else(|| panic!("no alert for the urgent report: {alerts}"));
    assert_eq!(alert["origin"], MUNICIPALITY);
    assert_eq!(alert["title"], "Ongoing threat at Hagebyskolan");
    assert!(alert.get("seen_at").is_none(), "{alert}");
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 1, "only the urgent report alerts: {alerts}");

    let coordinator = person(&guards, "user:petra", &[Role::Coordinator]).await;
    let page = coordinator.get(guards.url("/console/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Ongoing threat at Hagebyskolan"), "every console page carries the alert");
    assert!(page.contains(&format!("/console/alerts/{}/seen", alert["id"])), "with a button to say it was seen");

    let seen = coordinator.post(guards.url(&format!("/api/v1/alerts/{}/seen", alert["id"]))).send().await.unwrap();
    assert_eq!(seen.status(), StatusCode::OK);
    let seen: Value = seen.json().await.unwrap();
    assert_eq!(seen["seen_by"], "user:petra");
    let unseen: Value = guards.get("/api/v1/alerts").send().await.unwrap().json().await.unwrap();
    assert_eq!(unseen["alerts"], json!([]), "a seen alert leaves the consoles");
    let page = coordinator.get(guards.url("/console/")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("Ongoing threat at Hagebyskolan"), "a seen alert leaves the page");

    // The municipality learns that a coordinator at the guard company has seen it, and not who.
    let receipts = until(|| async {
        let answer: Value =
            municipality.get(&format!("/api/v1/reports/{urgent}/seen-by")).send().await.unwrap().json().await.unwrap();
        (!answer["receipts"].as_array().unwrap().is_empty()).then_some(answer)
    })
    .await;
    let receipt = &receipts["receipts"][0];
    assert_eq!(receipt["partner"], GUARDS);
    assert_eq!(receipt["roles"], json!(["coordinator"]));
    assert!(!receipts.to_string().contains("petra"), "the partner's person is not named: {receipts}");
    let trail = audit(&municipality, "event=alert.seen_by_partner").await;
    assert_eq!(trail.len(), 1, "{trail:?}");
    let trail = audit(&guards, "event=alert.seen").await;
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(trail[0]["actor"], "user:petra");

    // An ordinary report's page has no receipts: nobody was alerted.
    let ordinary: Value =
        municipality.get(&format!("/api/v1/reports/{}/seen-by", filed[0])).send().await.unwrap().json().await.unwrap();
    assert_eq!(ordinary["receipts"], json!([]));
}

async fn a_receipt_for_a_report_never_delivered_to_its_sender_is_refused(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let [municipality, guards] = &nodes[..] else { unreachable!() };
    agree(&[municipality, guards], GUARDING).await;
    // Drugs are outside the guarding flow: the report stays at the municipality.
    let mut kept = report(1);
    kept["category"] = json!("drugs");
    let kept = id_of(&municipality.file(&kept).await);
    let shared = id_of(&municipality.file(&report(1)).await);
    until(|| async { guards.situation_ids("").await.contains(&shared).then_some(()) }).await;

    // The guard company's node signs receipts as it would for an alert, and sends them itself.
    let federation = guards.federation();
    let now = federation.clock.now();
    let origin = OrgId::parse(MUNICIPALITY).unwrap();
    let record = guards.store().partner(&origin).await.unwrap().unwrap();
    let client = federation.clients.get(&federation.keys.tls, &federation.trust, &record, &federation.clock).unwrap();
    let receipt_for = |report: &str| {
        let alert = lagesbild::store::Alert {
            id: 1,
            origin: MUNICIPALITY.into(),
            report: report.parse().unwrap(),
            version: 1,
            agreement: "se-norrkoping-kommun-vaktbolag".into(),
            received_at: now,
            seen_at: None,
            seen_by: None,
            view: None,
        };
        let document = lagesbild::federation::alerts::receipt(federation, &alert, vec!["coordinator".into()], now)
            .unwrap()
            .document;
        lagesbild::crypto::jws::Jws::parse(document.as_bytes()).unwrap()
    };
    for (what, report) in
        [("a report kept at home", kept.clone()), ("a report that does not exist", ReportId::new_at(now).to_string())]
    {
        let refused = client.post("/federation/v1/alerts/seen", &receipt_for(&report)).await;
        assert!(
            matches!(&refused, Err(lagesbild::federation::client::ClientError::Refused { status: 403, .. })),
            "{what}: {refused:?}"
        );
        let receipts: Value =
            municipality.get(&format!("/api/v1/reports/{report}/seen-by")).send().await.unwrap().json().await.unwrap();
        assert!(receipts["receipts"].as_array().is_none_or(|r| r.is_empty()), "{what}: {receipts}");
    }
    assert_eq!(audit(municipality, "event=alert.seen_refused").await.len(), 2);

    // The same receipt for a report that was delivered is taken.
    client.post("/federation/v1/alerts/seen", &receipt_for(&shared)).await.unwrap();
    let receipts: Value =
        municipality.get(&format!("/api/v1/reports/{shared}/seen-by")).send().await.unwrap().json().await.unwrap();
    assert_eq!(receipts["receipts"][0]["partner"], GUARDS, "{receipts}");
}
