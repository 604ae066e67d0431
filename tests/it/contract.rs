//! The API keeps the contract its OpenAPI document publishes, as judged by Schemathesis (PyPI,
//! `tests/contract`), a tool no one here wrote: every operation of a running node's user API, with
//! examples, boundary cases, random cases and stateful sequences (file, then update, then retract),
//! under `--checks all`: no 5xx, no schema-valid request refused, no invalid one accepted, every
//! answer matching its documented status, content type and schema. `tests/contract/schemathesis.toml`
//! lists what the document cannot say, each with why.

use crate::support::{Backend, TOKEN, TestNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_api_keeps_the_contract_its_document_publishes() {
    let node = TestNode::spawn(Backend::Sqlite).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let work = tempfile::tempdir().unwrap();
    let mut schemathesis = std::process::Command::new(format!("{root}/tests/contract/.venv/bin/schemathesis"));
    schemathesis
        .current_dir(work.path())
        .args(["--config-file", &format!("{root}/tests/contract/schemathesis.toml"), "run"])
        .arg(node.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", "20", "--seed", "1", "--no-color", "--workers", "2"]);
    let output = tokio::task::spawn_blocking(move || schemathesis.output())
        .await
        .unwrap()
        .expect("Schemathesis runs (tests/run installs it)");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains(" passed") && !said.contains(" failed"), "{said}");
    node.stop().await;
}
