//! CAP 1.2: a report exported as an alert passes the OASIS CAP 1.2 schema (checked by the WMO's
//! capvalidator, from PyPI, in `tests/cap`) and files again as the same report, field for field as
//! the mapping claims, as a new version (`Update`) and retracted (`Cancel`) too; an alert that does
//! not map gets a problem that names the element; and the picture as an Atom feed of alerts passes
//! the schema, a partner's report in it no finer than the view its agreement allows.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestNode, expect_problem, report};

on_both_backends!(
    a_report_exported_as_cap_passes_the_oasis_schema_and_files_again_as_the_same_report,
    an_alert_that_does_not_map_gets_a_problem_naming_the_element,
    the_picture_as_a_feed_of_alerts_passes_the_schema_and_says_no_more_than_the_view,
);

const CAP: &str = "application/cap+xml";

/// Asserts that every document (an alert, or a feed of `alerts` of them) passes the OASIS CAP 1.2
/// schema.
fn schema_valid(documents: &[&str]) {
    schema_valid_alerts(documents, documents.len());
}

fn schema_valid_alerts(documents: &[&str], alerts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<std::path::PathBuf> = documents
        .iter()
        .enumerate()
        .map(|(n, document)| {
            let path = dir.path().join(format!("alert-{n}.xml"));
            std::fs::write(&path, document).unwrap();
            path
        })
        .collect();
    let root = env!("CARGO_MANIFEST_DIR");
    let output = std::process::Command::new(format!("{root}/tests/cap/.venv/bin/python"))
        .arg(format!("{root}/tests/cap/validate.py"))
        .args(&paths)
        .output()
        .expect("the CAP validator runs (tests/run installs it)");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}{}\n{documents:#?}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(said.matches(": valid").count(), alerts, "{said}");
}

async fn as_cap(node: &TestNode, id: &str) -> String {
    let answer = node.get(&format!("/api/v1/reports/{id}")).header("Accept", CAP).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], CAP);
    answer.text().await.unwrap()
}

async fn file_cap(node: &TestNode, alert: &str) -> reqwest::Response {
    node.request(Method::POST, "/api/v1/reports")
        .header("Content-Type", CAP)
        .body(alert.to_owned())
        .send()
        .await
        .unwrap()
}

/// The fields the mapping carries both ways.
fn mapped(report: &Value) -> Value {
    json!({
        "category": report["category"], "severity": report["severity"], "status": report["status"],
        "title": report["title"], "description": report["description"], "observed_at": report["observed_at"],
        "lat": report["location"]["lat"], "lon": report["location"]["lon"],
        "place_name": report["location"]["place_name"], "municipality_code": report["location"]["municipality_code"],
        "tlp": report["tlp"], "expires_at": report["expires_at"],
    })
}

async fn a_report_exported_as_cap_passes_the_oasis_schema_and_files_again_as_the_same_report(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let mut body = report(2);
    body["tlp"] = json!("GREEN");
    body["category"] = json!("suspicious_activity");
    body["severity"] = json!("critical");
    body["expires_at"] = json!("2026-11-26T12:00:00Z");
    let filed = node.file(&body).await;
    let id = filed["id"].as_str().unwrap().to_owned();
    let alert = as_cap(&node, &id).await;
    assert!(!alert.contains("Anna Andersson") && !alert.contains("Patrol 2"), "persons or actions in CAP: {alert}");
    assert!(alert.contains("<msgType>Alert</msgType>") && alert.contains("<restriction>TLP:GREEN</restriction>"));

    let again = file_cap(&node, &alert).await;
    assert_eq!(again.status(), StatusCode::CREATED, "{}", again.text().await.unwrap());
    let again: Value = again.json().await.unwrap();
    assert_eq!(mapped(&again), mapped(&filed));

    // A new version is an Update naming the first; a retraction a Cancel.
    let mut changed = body.clone();
    changed["status"] = json!("resolved");
    changed["tlp"] = json!("CLEAR");
    let updated = node
        .request(Method::PUT, &format!("/api/v1/reports/{id}"))
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let update = as_cap(&node, &id).await;
    assert!(update.contains("<msgType>Update</msgType>") && update.contains(&format!("{id}-v1")), "{update}");
    assert!(update.contains("<scope>Public</scope>") && update.contains("<urgency>Past</urgency>"), "{update}");
    let retracted = node.request(Method::POST, &format!("/api/v1/reports/{id}/retract")).send().await.unwrap();
    assert_eq!(retracted.status(), StatusCode::OK);
    let cancel = as_cap(&node, &id).await;
    assert!(cancel.contains("<msgType>Cancel</msgType>"), "{cancel}");
    schema_valid(&[&alert, &update, &cancel]);
    node.stop().await;
}

async fn an_alert_that_does_not_map_gets_a_problem_naming_the_element(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let id = node.file(&report(2)).await["id"].as_str().unwrap().to_owned();
    let alert = as_cap(&node, &id).await;
    for (change, element) in [
        (("<status>Actual</status>", "<status>Exercise</status>"), "alert.status"),
        (("<msgType>Alert</msgType>", "<msgType>Update</msgType>"), "alert.msgType"),
        (("<severity>Moderate</severity>", "<severity>Unknown</severity>"), "alert.info.severity"),
        (("<onset>", "<onset>yesterday"), "alert.info.onset"),
        (("<circle>", "<circle>north of the school "), "alert.info.area"),
        (("urn:oasis:names:tc:emergency:cap:1.2", "urn:example:not-cap"), "alert"),
        (("</alert>", ""), "alert"),
    ] {
        let bad = alert.replacen(change.0, change.1, 1);
        let problem = expect_problem(file_cap(&node, &bad).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&element), "{change:?}: {problem}");
    }
    node.stop().await;
}

async fn the_picture_as_a_feed_of_alerts_passes_the_schema_and_says_no_more_than_the_view(backend: Backend) {
    use crate::exchange::{
        MUNICIPALITY, POLICE, RETAILER, SAFETY, agree, federation, green_report_at_the_centre, id_of, picture_entry,
    };
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    let [municipality, police, retailer] = &nodes[..] else { unreachable!() };
    agree(&[municipality, police, retailer], SAFETY).await;
    let id = id_of(&municipality.file(&green_report_at_the_centre()).await);
    let held = picture_entry(retailer, &id, |e| e.is_some()).await.unwrap();
    // The shop holds the place as a grid cell and the time to the hour, without persons.
    assert!(held["location"]["cell_metres"].is_number(), "{held}");
    let answer = retailer.get("/api/v1/situation?format=cap").send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], "application/atom+xml");
    let feed = answer.text().await.unwrap();
    assert!(feed.contains("<polygon>") && !feed.contains("<circle>"), "the cell is not its square: {feed}");
    assert!(!feed.contains("Anna Andersson") && !feed.contains("Hagebygatan 10"), "{feed}");
    assert!(feed.contains("<valueName>lagesbild:time_precision</valueName>"), "{feed}");
    // Each partner's delivery goes on its own: the police's copy may come after the shop's.
    picture_entry(police, &id, |e| e.is_some()).await;
    let own = police.get("/api/v1/situation?format=cap").send().await.unwrap().text().await.unwrap();
    schema_valid_alerts(&[&feed, &own], 2);
    for node in nodes {
        node.stop().await;
    }
}
