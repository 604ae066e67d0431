//! Filing, reading, updating and retracting reports through the API, on both backends.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use lagesbild::clock::Clock;
use lagesbild::domain::audit::AuditEvent;
use lagesbild::domain::{OrgId, Report, ReportContent};

use crate::support::{Backend, TestNode, expect_problem, report};

on_both_backends!(
    filed_report_reads_back_as_version_one,
    update_with_current_version_makes_the_next_version,
    update_with_stale_version_is_refused_and_changes_nothing,
    update_without_if_match_is_refused,
    concurrent_updates_of_one_version_let_exactly_one_win,
    retracted_report_keeps_its_versions_and_refuses_changes,
    another_organisations_report_is_not_found_by_id,
    unknown_and_malformed_ids_are_not_found,
    reports_filed_at_once_are_all_stored_and_a_bad_one_fails_alone,
    a_retraction_with_a_null_body_is_one_without_a_reason,
);

/// The document lets the optional body be `null` (a generated client sends that for "none").
async fn a_retraction_with_a_null_body_is_one_without_a_reason(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let id = node.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    let response = node
        .request(Method::POST, &format!("/api/v1/reports/{id}/retract"))
        .header("Content-Type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let retracted: Value = response.json().await.unwrap();
    assert!(retracted["retracted"]["at"].is_string() && retracted["retracted"].get("reason").is_none(), "{retracted}");
    node.stop().await;
}

async fn filed_report_reads_back_as_version_one(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let response = node.request(Method::POST, "/api/v1/reports").json(&report(3)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let filed: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/reports/{}", filed["id"].as_str().unwrap()));
    assert_eq!(filed["version"], 1);
    assert_eq!(filed["origin"], "se-kommun-test");
    assert_eq!(filed["status"], "ongoing");

    let read: Value = node.get(&location).send().await.unwrap().json().await.unwrap();
    assert_eq!(read, filed);
    // Every field a person filed comes back as filed.
    for field in
        ["observed_at", "category", "severity", "title", "description", "location", "persons", "actions", "tlp"]
    {
        let sent = &report(3)[field];
        if field == "observed_at" {
            let sent = chrono::DateTime::parse_from_rfc3339(sent.as_str().unwrap()).unwrap();
            let back = chrono::DateTime::parse_from_rfc3339(read[field].as_str().unwrap()).unwrap();
            assert_eq!(sent, back);
        } else {
            assert_eq!(&read[field], sent, "field {field}");
        }
    }
    node.stop().await;
}

async fn update_with_current_version_makes_the_next_version(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let filed = node.file(&report(3)).await;
    let id = filed["id"].as_str().unwrap();
    let mut changed = report(3);
    changed["status"] = json!("resolved");
    changed["severity"] = json!("severe");
    node.clock.advance(chrono::Duration::minutes(10));
    let response = node
        .request(Method::PUT, &format!("/api/v1/reports/{id}"))
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["status"], "resolved");
    assert_eq!(updated["created_at"], filed["created_at"]);
    assert_ne!(updated["updated_at"], filed["updated_at"]);

    let versions: Vec<Value> =
        node.get(&format!("/api/v1/reports/{id}/versions")).send().await.unwrap().json().await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["status"], "ongoing");
    assert_eq!(versions[1]["status"], "resolved");
    let first: Value =
        node.get(&format!("/api/v1/reports/{id}/versions/1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(first, filed);
    node.stop().await;
}

async fn update_with_stale_version_is_refused_and_changes_nothing(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let id = node.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/reports/{id}");
    let mut first = report(3);
    first["title"] = json!("First change");
    let ok = node.request(Method::PUT, &path).header("If-Match", "\"1\"").json(&first).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    let mut stale = report(3);
    stale["title"] = json!("Change based on version 1");
    let refused = node.request(Method::PUT, &path).header("If-Match", "\"1\"").json(&stale).send().await.unwrap();
    let problem = expect_problem(refused, StatusCode::PRECONDITION_FAILED).await;
    assert!(problem["detail"].as_str().unwrap().contains("version 2"), "{problem}");

    let current: Value = node.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(current["title"], "First change");
    assert_eq!(current["version"], 2);
    node.stop().await;
}

async fn update_without_if_match_is_refused(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let id = node.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/reports/{id}");
    let response = node.request(Method::PUT, &path).json(&report(2)).send().await.unwrap();
    expect_problem(response, StatusCode::PRECONDITION_REQUIRED).await;
    let response = node.request(Method::PUT, &path).header("If-Match", "*").json(&report(2)).send().await.unwrap();
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "If-Match");
    let current: Value = node.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(current["version"], 1);
    node.stop().await;
}

async fn concurrent_updates_of_one_version_let_exactly_one_win(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let id = node.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/reports/{id}");
    let attempts = (0..12).map(|i| {
        let mut body = report(3);
        body["title"] = json!(format!("Writer {i}"));
        node.request(Method::PUT, &path).header("If-Match", "\"1\"").json(&body).send()
    });
    let statuses: Vec<StatusCode> = join_all(attempts).await.into_iter().map(|r| r.unwrap().status()).collect();
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let lost =
        statuses.iter().filter(|s| matches!(**s, StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT)).count();
    assert_eq!((won, lost), (1, 11), "{statuses:?}");

    let versions: Vec<Value> = node.get(&format!("{path}/versions")).send().await.unwrap().json().await.unwrap();
    assert_eq!(versions.len(), 2);
    let current: Value = node.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(current["title"], versions[1]["title"]);
    node.stop().await;
}

async fn retracted_report_keeps_its_versions_and_refuses_changes(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let id = node.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/reports/{id}");
    let response = node
        .request(Method::POST, &format!("{path}/retract"))
        .json(&json!({"reason": "Filed twice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let retracted: Value = response.json().await.unwrap();
    assert_eq!(retracted["version"], 2);
    assert_eq!(retracted["retracted"]["reason"], "Filed twice");
    assert_eq!(retracted["title"], report(3)["title"]);

    assert!(node.situation_ids("").await.is_empty(), "a retracted report left the picture");
    let again = node.request(Method::POST, &format!("{path}/retract")).send().await.unwrap();
    expect_problem(again, StatusCode::CONFLICT).await;
    let update = node.request(Method::PUT, &path).header("If-Match", "\"2\"").json(&report(1)).send().await.unwrap();
    expect_problem(update, StatusCode::CONFLICT).await;

    let versions: Vec<Value> = node.get(&format!("{path}/versions")).send().await.unwrap().json().await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions[0].get("retracted").is_none());
    node.stop().await;
}

async fn another_organisations_report_is_not_found_by_id(backend: Backend) {
    let police = TestNode::spawn(backend).await;
    let id = police.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    let retailer = police.sibling("se-ica-hertsotorget").await;
    let path = format!("/api/v1/reports/{id}");
    for response in [
        retailer.get(&path).send().await.unwrap(),
        retailer.get(&format!("{path}/versions")).send().await.unwrap(),
        retailer.get(&format!("{path}/versions/1")).send().await.unwrap(),
        retailer.request(Method::PUT, &path).header("If-Match", "\"1\"").json(&report(1)).send().await.unwrap(),
        retailer.request(Method::POST, &format!("{path}/retract")).send().await.unwrap(),
    ] {
        let problem = expect_problem(response, StatusCode::NOT_FOUND).await;
        assert_eq!(problem["detail"], "no report with this id exists for your organisation");
    }
    // Nothing the retailer tried changed the police's report.
    let current: Value = police.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(current["version"], 1);
    retailer.stop().await;
    police.stop().await;
}

async fn unknown_and_malformed_ids_are_not_found(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let unknown = uuid::Uuid::now_v7();
    for path in [
        format!("/api/v1/reports/{unknown}"),
        "/api/v1/reports/not-a-uuid".to_owned(),
        format!("/api/v1/reports/{unknown}/versions"),
        format!("/api/v1/reports/{unknown}/versions/0"),
    ] {
        let problem = expect_problem(node.get(&path).send().await.unwrap(), StatusCode::NOT_FOUND).await;
        assert_eq!(problem["detail"], "no report with this id exists for your organisation", "{path}");
    }
    let id = node.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    for version in ["0", "2", "x", "99999999999"] {
        let response = node.get(&format!("/api/v1/reports/{id}/versions/{version}")).send().await.unwrap();
        expect_problem(response, StatusCode::NOT_FOUND).await;
    }
    node.stop().await;
}

/// Filings that arrive together are written in one transaction; one that cannot be written (here a
/// report id stored already) gets its own error and the rest are stored, each with its audit entry.
async fn reports_filed_at_once_are_all_stored_and_a_bad_one_fails_alone(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let store = node.store();
    let origin = OrgId::parse("se-kommun-norrkoping").unwrap();
    let now = node.clock.now();
    let filed = |title: String| {
        let mut body = report(2);
        body["title"] = json!(title);
        let content: ReportContent = serde_json::from_value(body).unwrap();
        Report::file(origin.clone(), content.validate(now).unwrap(), now)
    };
    let first = filed("Först".into());
    let event = |r: &Report| AuditEvent::new("report.created", "it").report(r.id);
    store.insert_report(&first, &event(&first), &[], None).await.unwrap();
    // More than one transaction's worth (256), so some wait for a second turn.
    let mut reports: Vec<Report> = (0..300).map(|i| filed(format!("Samtidig {i}"))).collect();
    // The eighth reuses the id already stored.
    reports[7].id = first.id;
    // Polled in order by one task: the first takes the turn alone, the others queue behind it and
    // are written in batches.
    let events: Vec<AuditEvent> = reports.iter().map(event).collect();
    let outcomes = join_all(reports.iter().zip(&events).map(|(r, e)| store.insert_report(r, e, &[], None))).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.is_err(), i == 7, "filing {i}: {outcome:?}");
    }
    let picture = node.situation("?limit=1000").await;
    let titles: Vec<&str> =
        picture["reports"].as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), 300, "{titles:?}");
    assert!(!titles.contains(&"Samtidig 7"));
    let audit = node.store().verify_audit().await;
    assert!(matches!(audit, Ok(Ok(_))), "{audit:?}");
    node.stop().await;
}
