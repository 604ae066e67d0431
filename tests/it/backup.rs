//! `lagesbild backup`, as an operator restores from it: taken while the node runs, the folder is a
//! node itself, and a node started from it has the same identity, the same reports and an audit
//! trail that verifies. On PostgreSQL the database is the cluster's to back up: the command says so
//! and keeps everything else.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use lagesbild::config::NodeConfig;

use crate::exchange::MUNICIPALITY;
use crate::on_both_backends;
use crate::support::{Backend, TOKEN, TestNode, report};

on_both_backends!(a_backup_taken_while_the_node_runs_restores_the_same_node);
async fn a_backup_taken_while_the_node_runs_restores_the_same_node(backend: Backend) {
    let node = TestNode::spawn_federated(backend, MUNICIPALITY).await;
    let filed = node.file(&report(1)).await;
    let id = filed["id"].as_str().unwrap().to_owned();
    let config = node.identity_dir.as_ref().unwrap().path().join("node.toml");
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup");
    let run = |to: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_lagesbild"))
            .args(["backup", "--config"])
            .arg(&config)
            .arg("--to")
            .arg(to)
            .output()
            .unwrap()
    };
    let output = run(&backup);
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("keys, certificate and card: checked"), "{said}");
    let again = run(&backup);
    assert!(!again.status.success(), "a backup never overwrites one");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let key = std::fs::metadata(backup.join("keys/signing-key.pem")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777, 0o600, "keys stay private");
    assert_eq!(
        std::fs::read(backup.join("node-card.json")).unwrap(),
        std::fs::read(node.identity_dir.as_ref().unwrap().path().join("node-card.json")).unwrap()
    );
    let clock = node.clock.clone();
    node.stop().await;
    if backend == Backend::Postgres {
        assert!(said.contains("back it up with the cluster's own backups"), "{said}");
        assert!(!backup.join("lagesbild.db").exists());
        return;
    }

    // The node, started from the backup folder alone.
    let env = [
        ("LAGESBILD_API_DEV_TOKEN".to_owned(), TOKEN.to_owned()),
        ("LAGESBILD_API_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
    ]
    .into_iter()
    .collect();
    let mut restored = NodeConfig::load(Some(&backup.join("node.toml")), &env).unwrap();
    restored.federation.as_mut().unwrap().listen = "127.0.0.1:0".parse().unwrap();
    let running = lagesbild::server::start(&restored, clock.clone()).await.unwrap();
    let client = reqwest::Client::new();
    let answer =
        client.get(format!("http://{}/api/v1/reports/{id}", running.api_addr)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let served: Value = answer.json().await.unwrap();
    assert_eq!(served["title"], filed["title"]);
    let card: Value = client
        .get(format!("http://{}/api/v1/node", running.api_addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(card["card"]["org_id"], MUNICIPALITY);
    running.stop().await;
    let verified = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["audit", "verify", "--config"])
        .arg(backup.join("node.toml"))
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
}
