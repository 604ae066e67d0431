//! The API keeps the contract its OpenAPI document publishes, as judged by Schemathesis (PyPI,
//! `tests/contract`), a tool no one here wrote: every operation of a running node's user API, with
//! examples, boundary cases, random cases and stateful sequences (file, then update, then retract),
//! under `--checks all`: no 5xx, no schema-valid request refused, no invalid one accepted, every
//! answer matching its documented status, content type and schema. `tests/contract/schemathesis.toml`
//! lists what the document cannot say, each with why. And a client that openapi-python-client
//! (PyPI) generates from the committed document files, updates and retracts a report and reads the
//! picture, as a partner's IT department would (`tests/contract/client.py`). The federation
//! listener is judged the same way against its own document, by a partner presenting its pinned
//! client certificate.

use crate::exchange::{GUARDS, MUNICIPALITY, federation};
use crate::on_both_backends;
use crate::support::{Backend, TOKEN, TestNode, start_time};

on_both_backends!(a_client_generated_from_the_document_files_updates_and_retracts_a_report);

async fn a_client_generated_from_the_document_files_updates_and_retracts_a_report(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let work = tempfile::tempdir().unwrap();
    let generated = std::process::Command::new(format!("{root}/tests/contract/.venv/bin/openapi-python-client"))
        .current_dir(work.path())
        .args(["generate", "--meta", "none", "--path", &format!("{root}/openapi/lagesbild.json"), "--output-path"])
        .arg(work.path().join("lagesbild_client"))
        .output()
        .expect("openapi-python-client runs (tests/run installs it)");
    let said = String::from_utf8_lossy(&generated.stdout);
    assert!(generated.status.success(), "{said}{}", String::from_utf8_lossy(&generated.stderr));
    assert!(!said.contains("Unable to process schema"), "the generator dropped a schema:\n{said}");
    let mut client = std::process::Command::new(format!("{root}/tests/contract/.venv/bin/python"));
    client.env("PYTHONPATH", work.path()).arg(format!("{root}/tests/contract/client.py")).args([&node.base, TOKEN]);
    client.arg((start_time() - chrono::Duration::hours(1)).to_rfc3339());
    let ran = tokio::task::spawn_blocking(move || client.output()).await.unwrap().unwrap();
    let said = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success(), "{said}{}", String::from_utf8_lossy(&ran.stderr));
    assert!(said.contains("filed, updated, read, retracted: ok"), "{said}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_api_keeps_the_contract_its_document_publishes() {
    let node = TestNode::spawn(Backend::Sqlite).await;
    let schema = node.url("/openapi.json");
    let auth = format!("Authorization: Bearer {TOKEN}");
    let phases = "examples,coverage,fuzzing,stateful";
    schemathesis("schemathesis.toml", &schema, &["--header", &auth, "--phases", phases]).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_federation_listener_keeps_the_contract_its_document_publishes() {
    let nodes = federation(Backend::Sqlite, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let [node, partner] = &nodes[..] else { unreachable!() };
    let (cert, key) = partner.tls_certificate();
    let schema = format!("{}/openapi/federation.json", env!("CARGO_MANIFEST_DIR"));
    let url = format!("https://{}", node.federation_addr());
    let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
    // The node's certificate is pinned by partners, not issued by a CA a client would know.
    let presented = ["--request-cert", &cert, "--request-cert-key", &key, "--tls-verify", "false"];
    let args = [&["--url", &url, "--phases", "examples,coverage,fuzzing"][..], &presented[..]].concat();
    schemathesis("federation.toml", &schema, &args).await;
    for node in nodes {
        node.stop().await;
    }
}

/// Runs Schemathesis over `schema` with `tests/contract/<config>` and `args`, every check, 20
/// examples per operation, seed 1; fails the test on any failure it reports. One worker: with two,
/// Hypothesis parses source in both threads at once, and CPython 3.11's parser shares its
/// recursion counter between threads (python/cpython#106905), which failed a CI run with
/// "AST constructor recursion depth mismatch" that said nothing about the node.
async fn schemathesis(config: &str, schema: &str, args: &[&str]) {
    let root = env!("CARGO_MANIFEST_DIR");
    let work = tempfile::tempdir().unwrap();
    let mut schemathesis = std::process::Command::new(format!("{root}/tests/contract/.venv/bin/schemathesis"));
    schemathesis
        .current_dir(work.path())
        .args(["--config-file", &format!("{root}/tests/contract/{config}"), "run", schema])
        .args(args)
        .args(["--checks", "all", "--max-examples", "20", "--seed", "1", "--no-color", "--workers", "1"]);
    let output = tokio::task::spawn_blocking(move || schemathesis.output())
        .await
        .unwrap()
        .expect("Schemathesis runs (tests/run installs it)");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains(" passed") && !said.contains(" failed"), "{said}");
}
