//! Four-eyes release (issue 19): a report the organisation's rule holds (here: severe and up, or
//! written by a reporter) stays in its own picture, marked as held, and nothing of it leaves the
//! node (checked at the partner, behind a later report that did arrive) until a second person with
//! the coordinator role releases it, seeing first what each partner would receive. A reporter
//! cannot release, nor can whoever wrote the version. A refusal keeps the report at home, says why,
//! and a change by its author is held again. Both decisions are audited with both people's ids.

use reqwest::StatusCode;
use serde_json::{Value, json};

use lagesbild::domain::{Role, Severity};

use crate::exchange::{MUNICIPALITY, POLICE, RETAILER, SAFETY, agree, federation};
use crate::on_both_backends;
use crate::persons::{person, text};
use crate::support::{Backend, TestNode, expect_problem, report, until};

on_both_backends!(
    a_held_report_leaks_nothing_until_a_second_coordinator_releases_it,
    a_refused_report_stays_at_home_and_a_change_to_it_is_held_again,
);

fn severe_needs_release(config: &mut lagesbild::config::NodeConfig) {
    config.release.min_severity = Some(Severity::Severe);
}

async fn file_as(client: &reqwest::Client, node: &TestNode, body: &Value) -> String {
    let answer = client.post(node.url("/api/v1/reports")).json(body).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    answer.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn release_of(node: &TestNode, id: &str) -> Value {
    node.get(&format!("/api/v1/reports/{id}/release")).send().await.unwrap().json().await.unwrap()
}

async fn a_held_report_leaks_nothing_until_a_second_coordinator_releases_it(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], severe_needs_release).await;
    let [municipality, police, retailer] = &nodes[..] else { unreachable!() };
    agree(&[municipality, police, retailer], SAFETY).await;
    let anna = person(municipality, "user:anna", &[Role::Coordinator]).await;
    let bertil = person(municipality, "user:bertil", &[Role::Coordinator]).await;
    let rita = person(municipality, "user:rita", &[Role::Reporter]).await;

    let mut severe = report(2);
    severe["severity"] = json!("severe");
    severe["title"] = json!("Knife threat at Hagebyskolan");
    let held = file_as(&anna, municipality, &severe).await;
    let release = release_of(municipality, &held).await;
    assert_eq!(release["state"], "held", "{release}");
    assert_eq!(release["author"], "user:anna");
    assert!(release["reason"].as_str().unwrap().contains("severe"), "{release}");
    let own = municipality.situation("?source=own").await;
    assert_eq!(own["held"], json!([held]), "the own picture marks it held: {own}");

    // A later, ordinary report reaches the police; the held one does not, and nothing of it is queued.
    let ordinary = municipality.file(&report(1)).await["id"].as_str().unwrap().to_owned();
    until(|| async { police.situation_ids("").await.contains(&ordinary).then_some(()) }).await;
    assert!(!police.situation_ids("").await.contains(&held), "a held report reached the partner");
    let shares: Value =
        municipality.get(&format!("/api/v1/reports/{held}/shares")).send().await.unwrap().json().await.unwrap();
    assert_eq!(shares, json!([]), "nothing of a held report is queued");

    // Neither a reporter nor its author may release it.
    for (who, client) in [("a reporter", &rita), ("its author", &anna)] {
        let refused = client.post(municipality.url(&format!("/api/v1/reports/{held}/release"))).send().await.unwrap();
        let problem = expect_problem(refused, StatusCode::FORBIDDEN).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("coordinator")
                || problem["detail"].as_str().unwrap().contains("second person"),
            "{who}: {problem}"
        );
    }
    let rita_page = text(&rita, municipality, &format!("/console/reports/{held}")).await;
    assert!(!rita_page.contains("/release\""), "a reporter is offered no release");

    // The second coordinator sees what each partner would receive, then releases.
    let page = text(&bertil, municipality, &format!("/console/reports/{held}")).await;
    assert!(page.contains(&format!("action=\"/console/reports/{held}/release\"")), "the releaser is offered it");
    assert!(page.contains(&format!("data-org=\"{POLICE}\"")), "the releaser sees the police's preview");
    let released = bertil.post(municipality.url(&format!("/api/v1/reports/{held}/release"))).send().await.unwrap();
    assert_eq!(released.status(), StatusCode::OK);
    let released: Value = released.json().await.unwrap();
    assert_eq!((released["state"].as_str(), released["decided_by"].as_str()), (Some("released"), Some("user:bertil")));
    until(|| async { police.situation_ids("").await.contains(&held).then_some(()) }).await;
    let again = bertil.post(municipality.url(&format!("/api/v1/reports/{held}/release"))).send().await.unwrap();
    expect_problem(again, StatusCode::CONFLICT).await;

    let trail: Value =
        municipality.get("/api/v1/audit?event=report.released&limit=10").send().await.unwrap().json().await.unwrap();
    let entry = &trail["entries"][0];
    assert_eq!(entry["actor"], "user:bertil", "{trail}");
    assert!(entry["detail"].as_str().unwrap().contains("user:anna"), "both names' ids: {trail}");
}

fn reporters_need_release(config: &mut lagesbild::config::NodeConfig) {
    config.release.roles = vec!["reporter".into()];
}

async fn a_refused_report_stays_at_home_and_a_change_to_it_is_held_again(backend: Backend) {
    let node = TestNode::spawn_with(backend, reporters_need_release).await;
    let rita = person(&node, "user:rita", &[Role::Reporter]).await;
    let bertil = person(&node, "user:bertil", &[Role::Coordinator]).await;
    let id = file_as(&rita, &node, &report(1)).await;
    assert_eq!(release_of(&node, &id).await["state"], "held");
    let without_reason = bertil
        .post(node.url(&format!("/api/v1/reports/{id}/refuse-release")))
        .json(&json!({"reason": ""}))
        .send()
        .await
        .unwrap();
    expect_problem(without_reason, StatusCode::UNPROCESSABLE_ENTITY).await;
    let refused = bertil
        .post(node.url(&format!("/api/v1/reports/{id}/refuse-release")))
        .json(&json!({"reason": "Names a minor; rewrite it without the name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::OK);
    let release = release_of(&node, &id).await;
    assert_eq!(release["state"], "refused");
    assert_eq!(release["decision"], "Names a minor; rewrite it without the name");
    assert!(text(&rita, &node, &format!("/console/reports/{id}")).await.contains("Names a minor"));

    // Its author changes it: held again, for a new decision.
    let mut content = report(1);
    content["title"] = json!("Broken windows at Hagebyskolan (rewritten)");
    // A reporter does not see persons here: they send them as they were shown them.
    content["persons"] = json!([{ "role": "witness" }]);
    let changed = rita
        .put(node.url(&format!("/api/v1/reports/{id}")))
        .header("If-Match", "\"1\"")
        .json(&content)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let release = release_of(&node, &id).await;
    assert_eq!((release["state"].as_str(), release["version"].as_i64()), (Some("held"), Some(2)), "{release}");
    let trail: Value =
        node.get("/api/v1/audit?event=report.release_refused&limit=10").send().await.unwrap().json().await.unwrap();
    let entry = &trail["entries"][0];
    assert_eq!(entry["actor"], "user:bertil");
    assert!(entry["detail"].as_str().unwrap().contains("user:rita"), "{trail}");
}
