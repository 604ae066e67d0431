//! A data-protection officer's requests: find every report and version naming a person, and erase
//! the person from all of them, keeping the role; a dry run first; exact names only; recorded in
//! the audit trail without the name; passed on to every partner that received the report.

use std::process::{Command, Output};

use reqwest::Method;
use serde_json::{Value, json};

use crate::exchange::{MUNICIPALITY, POLICE, RETAILER, SAFETY, agree, federation_at, picture_entry};
use crate::on_both_backends;
use crate::support::{Backend, TestNode, report};

on_both_backends!(
    a_person_is_found_and_erased_from_every_version_but_their_role_stays,
    an_erasure_reaches_every_partner_that_received_the_report,
    a_person_named_as_who_acted_is_found_and_erased_from_the_actions_too,
);

fn gdpr(node: &TestNode, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .arg("gdpr")
        .args(args)
        .env("LAGESBILD_DATABASE_URL", &node.db.url)
        .env("LAGESBILD_NODE_ORG_ID", &node.org)
        .output()
        .unwrap()
}

async fn a_person_is_found_and_erased_from_every_version_but_their_role_stays(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let id = node.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    let mut changed = report(3);
    changed["status"] = json!("resolved");
    node.request(Method::PUT, &format!("/api/v1/reports/{id}"))
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    let mut other = report(2);
    other["persons"] = json!([{"role": "victim", "name": "Annika Berg"}]);
    node.file(&other).await;

    let found = gdpr(&node, &["find", "--name", "ANNA"]);
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    let text = String::from_utf8_lossy(&found.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains(&format!("report {id} version 1 names: Anna Andersson (witness)")), "{text}");

    // A dry run changes nothing; a partial name erases nobody.
    let dry = gdpr(&node, &["erase", "--name", "anna andersson"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("Nothing was changed"));
    let partial = gdpr(&node, &["erase", "--name", "Anna", "--yes"]);
    assert_eq!(String::from_utf8_lossy(&partial.stdout), "no report names this person\n");
    let versions = node.get(&format!("/api/v1/reports/{id}/versions")).send().await.unwrap().text().await.unwrap();
    assert!(versions.contains("Anna Andersson"));

    let erased = gdpr(&node, &["erase", "--name", " anna   ANDERSSON ", "--yes"]);
    assert!(erased.status.success());
    assert_eq!(String::from_utf8_lossy(&erased.stdout).lines().count(), 2);
    let versions: Vec<Value> =
        node.get(&format!("/api/v1/reports/{id}/versions")).send().await.unwrap().json().await.unwrap();
    for version in &versions {
        assert_eq!(version["persons"], json!([{"role": "witness"}]), "{version}");
    }
    let picture = node.situation("").await.to_string();
    assert!(!picture.contains("Anna Andersson") && picture.contains("Annika Berg"), "{picture}");

    // The trail says what was done, not to whom; and it still verifies.
    let trail = node.get("/api/v1/audit?event=gdpr.erased").send().await.unwrap().text().await.unwrap();
    let entries: Value = serde_json::from_str(&trail).unwrap();
    assert_eq!(entries["entries"].as_array().unwrap().len(), 2);
    assert!(!trail.to_lowercase().contains("anna"), "{trail}");
    assert!(node.store().verify_audit().await.unwrap().is_ok());
    node.stop().await;
}

/// `lagesbild gdpr ...` on a federated node, through its configuration file.
fn gdpr_at(node: &TestNode, args: &[&str]) -> String {
    let config = node.identity_dir.as_ref().unwrap().path().join("node.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .arg("gdpr")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn an_erasure_reaches_every_partner_that_received_the_report(backend: Backend) {
    // The command-line tool signs by the real clock, so these nodes keep real time too.
    let now = lagesbild::clock::Clock::now(&lagesbild::clock::SystemClock);
    let nodes = federation_at(backend, &[MUNICIPALITY, POLICE, RETAILER], now, |_| {}).await;
    let [municipality, police, _retailer] = &nodes[..] else { unreachable!() };
    agree(&[municipality, police, _retailer], SAFETY).await;
    let mut filed = report(1);
    filed["actions"] = json!([{"what": "Called the police", "by": "Anna Andersson"}]);
    let id = municipality.file(&filed).await["id"].as_str().unwrap().to_owned();
    let held = picture_entry(police, &id, |e| e.is_some()).await.unwrap();
    assert_eq!(held["persons"]["full"][0]["name"], "Anna Andersson");

    // The police's officer finds the person in what the municipality shared.
    let found = gdpr_at(police, &["find", "--name", "anna"]);
    assert!(
        found.contains(&format!("report {id} (received from {MUNICIPALITY}) version 1 names: Anna Andersson")),
        "{found}"
    );

    // The municipality erases her; the police's copy loses her too, through the exchange.
    let erased = gdpr_at(municipality, &["erase", "--name", "Anna Andersson", "--yes"]);
    assert!(
        erased.contains(&format!("report {id} re-issued as version 2 to pass the erasure on to 1 partners")),
        "{erased}"
    );
    // (The nodes' clocks stand still unless told; the tool's moved on while it ran.)
    for node in [municipality, police] {
        node.clock.advance(chrono::Duration::seconds(30));
    }
    let after = picture_entry(police, &id, |e| e.is_some_and(|e| e["version"] == 2)).await.unwrap();
    assert_eq!(after["persons"], json!({"full": [{"role": "witness"}]}), "{after}");
    assert!(!police.situation("").await.to_string().contains("Anna"));
    for node in nodes {
        node.stop().await;
    }
}

async fn a_person_named_as_who_acted_is_found_and_erased_from_the_actions_too(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let mut acted = report(2);
    acted["persons"] = json!([]);
    acted["actions"] =
        json!([{"what": "Called guards", "by": "Greta Staffansdotter"}, {"what": "Locked up", "by": "Patrol 2"}]);
    let id = node.file(&acted).await["id"].as_str().unwrap().to_owned();

    let found = gdpr(&node, &["find", "--name", "staffansdotter"]);
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(text.contains(&format!("report {id} version 1 names")), "{text}");
    assert!(text.contains("Greta Staffansdotter (who acted)"), "{text}");

    let erased = gdpr(&node, &["erase", "--name", "Greta Staffansdotter", "--yes"]);
    assert!(erased.status.success(), "{}", String::from_utf8_lossy(&erased.stderr));
    let versions: Vec<Value> =
        node.get(&format!("/api/v1/reports/{id}/versions")).send().await.unwrap().json().await.unwrap();
    for version in &versions {
        assert_eq!(
            version["actions"],
            json!([{"what": "Called guards"}, {"what": "Locked up", "by": "Patrol 2"}]),
            "{version}"
        );
    }
    assert!(!node.situation("").await.to_string().contains("Staffansdotter"));
    node.stop().await;
}
