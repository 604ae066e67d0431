//! The audit trail: every change is recorded with ids and hashes in the same transaction, the
//! database refuses to change or delete an entry, and `audit verify` finds an entry that was
//! changed, deleted, reordered or cut off by someone who got around that.

use std::process::Command;

use chrono::Duration;
use lagesbild::clock::Clock;
use lagesbild::crypto::keys::SigningKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestNode, report};

on_both_backends!(
    every_change_to_a_report_is_in_the_trail_by_ids_and_hashes,
    the_database_refuses_to_change_or_delete_an_entry,
    verify_finds_a_changed_a_deleted_a_reordered_and_a_cut_off_entry,
    entries_past_retention_are_pruned_behind_a_signed_checkpoint,
    verify_while_reports_are_filed_finds_an_intact_chain,
);

/// A node with a report filed, updated, read and retracted: four entries and one read.
async fn node_with_history(backend: Backend) -> (TestNode, String) {
    let node = TestNode::spawn(backend).await;
    let id = node.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/reports/{id}");
    let mut changed = report(3);
    changed["status"] = json!("resolved");
    node.request(Method::PUT, &path).header("If-Match", "\"1\"").json(&changed).send().await.unwrap();
    node.get(&path).send().await.unwrap();
    node.request(Method::POST, &format!("{path}/retract")).send().await.unwrap();
    (node, id)
}

async fn every_change_to_a_report_is_in_the_trail_by_ids_and_hashes(backend: Backend) {
    let (node, id) = node_with_history(backend).await;
    let page: Value = node.get(&format!("/api/v1/audit?report={id}")).send().await.unwrap().json().await.unwrap();
    let events: Vec<&str> = page["entries"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["report.created", "report.updated", "report.read", "report.retracted"]);
    for entry in page["entries"].as_array().unwrap() {
        assert_eq!(entry["report"], id.as_str());
        assert_eq!(entry["actor"], "token:dev");
        assert_eq!(entry["hash"].as_str().unwrap().len(), 64);
    }
    assert_eq!(page["entries"][0]["object_hash"].as_str().unwrap().len(), 64);
    // Ids and hashes only: nothing of the report's content or the people in it.
    let text = page.to_string();
    for secret in ["Hagebyskolan", "Anna Andersson", "Broken windows"] {
        assert!(!text.contains(secret), "{secret} is in the audit trail");
    }
    // Filters and pages.
    let one: Value = node.get("/api/v1/audit?event=report.updated").send().await.unwrap().json().await.unwrap();
    assert_eq!(one["entries"].as_array().unwrap().len(), 1);
    let first: Value = node.get("/api/v1/audit?limit=3").send().await.unwrap().json().await.unwrap();
    assert_eq!(first["next_after"], 3);
    let rest: Value = node.get("/api/v1/audit?limit=3&after=3").send().await.unwrap().json().await.unwrap();
    assert_eq!(rest["entries"][0]["seq"], 4);
    let bad = node.get("/api/v1/audit?since=yesterday&limit=0").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(node.store().verify_audit().await.unwrap(), Ok(4));
    node.stop().await;
}

async fn the_database_refuses_to_change_or_delete_an_entry(backend: Backend) {
    let (node, _) = node_with_history(backend).await;
    for statement in ["UPDATE audit_log SET actor = 'someone' WHERE seq = 2", "DELETE FROM audit_log WHERE seq = 2"] {
        let error = node.sql(statement).await.expect_err("the audit log accepted a change").to_string();
        assert!(error.contains("append-only"), "{error}");
    }
    assert_eq!(node.store().verify_audit().await.unwrap(), Ok(4));
    node.stop().await;
}

fn drop_guards(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
        Backend::Postgres => {
            "DROP TRIGGER audit_log_no_update ON audit_log; DROP TRIGGER audit_log_no_truncate ON audit_log;"
        }
    }
}

async fn verify_finds_a_changed_a_deleted_a_reordered_and_a_cut_off_entry(backend: Backend) {
    let tamperings = [
        ("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2", 2, "changed"),
        ("DELETE FROM audit_log WHERE seq = 2", 3, "missing"),
        (
            "UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = -1",
            2,
            // The entry now at 2 was written after the original 2, and holds that one's hash.
            "does not hold the hash of the entry before it",
        ),
        ("DELETE FROM audit_log WHERE seq = 4", 4, "cut off"),
    ];
    for (tampering, seq, says) in tamperings {
        let (node, _) = node_with_history(backend).await;
        // Someone with the database's owner rights removes the guards first.
        node.sql(drop_guards(backend)).await.unwrap();
        node.sql(tampering).await.unwrap();
        let broken = node.store().verify_audit().await.unwrap().expect_err("tampering went unnoticed");
        assert_eq!(broken.seq, seq, "{tampering}: {broken}");
        assert!(broken.to_string().contains(says), "{broken}");
        // The command an operator runs says the same, and fails.
        let output = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
            .args(["audit", "verify"])
            .env("LAGESBILD_DATABASE_URL", &node.db.url)
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&format!("breaks at entry {seq}")),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        node.stop().await;
    }
    let (node, _) = node_with_history(backend).await;
    let output = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["audit", "verify"])
        .env("LAGESBILD_DATABASE_URL", &node.db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "the audit chain is intact: 4 entries\n");
    let export = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["audit", "export"])
        .env("LAGESBILD_DATABASE_URL", &node.db.url)
        .output()
        .unwrap();
    let lines: Vec<Value> =
        String::from_utf8_lossy(&export.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["event"], "report.retracted");
    node.stop().await;
}

async fn entries_past_retention_are_pruned_behind_a_signed_checkpoint(backend: Backend) {
    let node = TestNode::spawn_federated(backend, "se-kommun-norrkoping").await;
    for hours in [3, 2, 1] {
        node.file(&report(hours)).await;
    }
    node.clock.advance(Duration::days(800));
    node.file(&report(1)).await;
    let key = SigningKey::load(&node.config.identity.as_ref().unwrap().signing_key).unwrap();
    let pruned =
        lagesbild::audit_retention::prune(node.store(), &key, node.clock.now(), Duration::days(730)).await.unwrap();
    assert_eq!(pruned, 3);
    // The rest of the chain (the newer report and the prune itself) verifies from the checkpoint.
    assert_eq!(lagesbild::audit_retention::verify(node.store(), Some(key.public())).await.unwrap(), 2);
    let page: Value = node.get("/api/v1/audit").send().await.unwrap().json().await.unwrap();
    let events: Vec<&str> = page["entries"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["report.created", "audit.pruned"]);
    // Entries the checkpoint does not cover still cannot be deleted.
    let error =
        node.sql("DELETE FROM audit_log WHERE seq = 4").await.expect_err("an uncovered entry was deleted").to_string();
    assert!(error.contains("append-only"), "{error}");
    // The checkpoint holds only with this node's key.
    let dir = tempfile::tempdir().unwrap();
    let stranger = SigningKey::generate(&dir.path().join("k.pem")).unwrap();
    assert!(lagesbild::audit_retention::verify(node.store(), Some(stranger.public())).await.is_err());
    assert!(lagesbild::audit_retention::verify(node.store(), None).await.is_err());
    // A checkpoint moved to hide more entries no longer matches its signature.
    let guards = match backend {
        Backend::Sqlite => "DROP TRIGGER audit_checkpoints_no_update;",
        Backend::Postgres => "DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints;",
    };
    node.sql(guards).await.unwrap();
    node.sql("UPDATE audit_checkpoints SET hash = 'ff' || substr(hash, 3)").await.unwrap();
    let error = lagesbild::audit_retention::verify(node.store(), Some(key.public())).await.unwrap_err().to_string();
    assert!(error.contains("differs from what was signed"), "{error}");
    node.stop().await;
}

/// Verification reads the chain while the node keeps writing to it: entries written after it began
/// are no break, whenever they land.
async fn verify_while_reports_are_filed_finds_an_intact_chain(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut filers = Vec::new();
    for _ in 0..4 {
        let (request, stop) = (node.request(Method::POST, "/api/v1/reports").json(&report(1)), stop.clone());
        filers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let filed = request.try_clone().unwrap().send().await.unwrap();
                assert_eq!(filed.status(), StatusCode::CREATED);
            }
        }));
    }
    let mut verified = Vec::new();
    for _ in 0..100 {
        verified.push(node.store().verify_audit().await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for filer in filers {
        filer.await.unwrap();
    }
    let breaks: Vec<_> = verified.iter().filter_map(|v| v.as_ref().err()).collect();
    assert!(breaks.is_empty(), "{} of 100 verifications found a break: {:?}", breaks.len(), breaks.first());
    node.stop().await;
}
