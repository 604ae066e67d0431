//! A data-protection officer's requests: find every report and version naming a person, and erase
//! the person from all of them, keeping the role; a dry run first; exact names only; recorded in
//! the audit trail without the name.

use std::process::{Command, Output};

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestNode, report};

on_both_backends!(a_person_is_found_and_erased_from_every_version_but_their_role_stays);

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
