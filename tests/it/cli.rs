//! The `lagesbild` command as an operator meets it: configuration mistakes stop start-up with a
//! message that names what to fix, and `openapi` prints the committed document.

use std::process::Command;

fn lagesbild() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lagesbild"))
}

#[test]
fn serve_with_a_bad_configuration_stops_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[node]\norg_id = \"se-x\"\nname = \"X\"\n[api]\nlisten_adress = \"127.0.0.1:0\"\n", "listen_adress"),
        ("[node]\norg_id = \"Not Valid\"\nname = \"X\"\n", "org_id"),
        ("[node]\norg_id = \"se-x\"\nname = \"X\"\n[database]\nurl = \"mysql://db\"\n", "database.url"),
        ("[node]\norg_id = \"se-x\"\nname = \"X\"\n[api]\ndev_token = \"short\"\n", "api.dev_token"),
        ("[node]\nname = \"X\"\n", "org_id"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        let output = lagesbild().arg("serve").arg("--config").arg(&path).env_remove("DATABASE_URL").output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains(key), "for {key}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output = lagesbild().arg("serve").arg("--config").arg(dir.path().join("missing.toml")).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.toml"));
}

#[test]
fn openapi_command_prints_the_committed_document() {
    let output = lagesbild().arg("openapi").output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), lagesbild::api::docs::openapi_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_sqlite_path_is_read_from_beside_the_configuration_wherever_the_command_runs() {
    use lagesbild::clock::Clock;
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    std::fs::create_dir_all(node.join("data")).unwrap();
    let config = node.join("node.toml");
    std::fs::write(&config, "[node]\norg_id = \"se-x\"\nname = \"X\"\n[database]\nurl = \"sqlite://data/x.db\"\n")
        .unwrap();
    // The database beside the file holds one entry.
    let url = format!("sqlite://{}", node.join("data/x.db").display());
    let section = lagesbild::config::DatabaseSection { url, max_connections: 1 };
    let store = lagesbild::store::Store::open(&section).await.unwrap();
    let event = lagesbild::domain::audit::AuditEvent::new("test.entry", "it");
    store.record_audit(&event, lagesbild::clock::SystemClock.now()).await.unwrap();
    store.close().await;
    // From the node's own folder, its parent and elsewhere: the same database, and nothing created.
    for cwd in [node.clone(), dir.path().to_owned(), std::env::temp_dir()] {
        let output = lagesbild()
            .args(["audit", "verify", "--config"])
            .arg(&config)
            .current_dir(&cwd)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "from {}: {}", cwd.display(), String::from_utf8_lossy(&output.stderr));
        assert_eq!(stdout, "the audit chain is intact: 1 entries\n", "from {}", cwd.display());
    }
    assert!(!node.join("node/data").exists() && !dir.path().join("data").exists(), "a stray database was made");
}

#[test]
fn commands_that_read_refuse_a_database_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[node]\norg_id = \"se-x\"\nname = \"X\"\n[database]\nurl = \"sqlite://missing.db\"\n")
        .unwrap();
    for args in [
        &["audit", "verify"][..],
        &["audit", "export"],
        &["gdpr", "find", "--name", "Anna Andersson"],
        &["gdpr", "erase", "--name", "Anna Andersson"],
    ] {
        let output = lagesbild().args(args).arg("--config").arg(&config).env_remove("DATABASE_URL").output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded on a missing database");
        assert!(stderr.contains("missing.db") && stderr.contains("does not exist"), "{args:?}: {stderr}");
        assert!(!dir.path().join("missing.db").exists(), "{args:?} created the database");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_an_empty_audit_trail_says_there_is_nothing_to_verify_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("empty.db").display());
    let section = lagesbild::config::DatabaseSection { url: url.clone(), max_connections: 1 };
    lagesbild::store::Store::open(&section).await.unwrap().close().await;
    let output = lagesbild()
        .args(["audit", "verify"])
        .env("LAGESBILD_DATABASE_URL", &url)
        .env("LAGESBILD_NODE_ORG_ID", "se-x")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing to verify"), "{stderr}");
}

/// The container's health check: `lagesbild health` exits 0 for a live, ready node, and 1 with
/// what went wrong for a port where none answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_whether_a_node_answers_and_exits_accordingly() {
    let node = crate::support::TestNode::spawn(crate::support::Backend::Sqlite).await;
    for ready in [false, true] {
        let mut health = lagesbild();
        health.args(["health", "--url", &node.base]);
        if ready {
            health.arg("--ready");
        }
        let output = tokio::task::spawn_blocking(move || health.output()).await.unwrap().unwrap();
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
        assert!(said.contains(if ready { "/readyz: 200" } else { "/healthz: 200" }), "{said}");
    }
    node.stop().await;
    let nobody = format!("http://127.0.0.1:{}", crate::support::free_port());
    let output = lagesbild().args(["health", "--timeout", "2", "--url", &nobody]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&format!("{nobody}/healthz does not answer")), "{said}");
}

/// `init` for a node in `dir` (SQLite beside it), with `extra` flags.
fn init(dir: &std::path::Path, org: &str, extra: &[&str]) -> std::process::Output {
    lagesbild()
        .args(["init", "--org-id", org, "--name", org, "--dir"])
        .arg(dir)
        .args(["--federation-listen", "127.0.0.1:18443"])
        .args(extra)
        .output()
        .unwrap()
}

/// What a container's set-up runs at every start (deploy/compose.yaml): `init --if-missing` makes
/// the node once and then changes nothing; `partner add` takes several cards, and the same cards
/// again change nothing.
#[test]
fn a_set_up_run_at_every_start_makes_the_node_once_and_imports_cards_once() {
    let dir = tempfile::tempdir().unwrap();
    let (kommun, polisen, ica) = (dir.path().join("kommun"), dir.path().join("polisen"), dir.path().join("ica"));
    for (path, org) in [(&kommun, "se-kommun-norrkoping"), (&polisen, "se-polisen-ost"), (&ica, "se-ica-hageby")] {
        assert!(init(path, org, &["--if-missing"]).status.success());
    }
    let key = std::fs::read(kommun.join("keys/signing-key.pem")).unwrap();
    let again = init(&kommun, "se-kommun-norrkoping", &["--if-missing"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stdout).contains("holds a node already; nothing changed"));
    assert_eq!(std::fs::read(kommun.join("keys/signing-key.pem")).unwrap(), key, "the keys are never made anew");
    let without = init(&kommun, "se-kommun-norrkoping", &[]);
    assert!(!without.status.success(), "without --if-missing an existing node is an error");

    let add = || {
        lagesbild()
            .args(["partner", "add"])
            .arg(polisen.join("node-card.json"))
            .arg(ica.join("node-card.json"))
            .arg("--config")
            .arg(kommun.join("node.toml"))
            .output()
            .unwrap()
    };
    let first = add();
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(said.contains("Added partner se-polisen-ost") && said.contains("Added partner se-ica-hageby"), "{said}");
    let second = add();
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success() && said.matches("Unchanged").count() == 2, "{said}");
    let own = lagesbild()
        .args(["partner", "add"])
        .arg(kommun.join("node-card.json"))
        .arg("--config")
        .arg(kommun.join("node.toml"))
        .output()
        .unwrap();
    assert!(!own.status.success(), "a node's own card is refused");
    assert!(String::from_utf8_lossy(&own.stderr).contains("own card"), "{}", String::from_utf8_lossy(&own.stderr));
}
