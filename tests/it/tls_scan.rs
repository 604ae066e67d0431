//! The federation port's TLS, as a partner's security officer would check it: sslyze (PyPI,
//! `tests/tls`), a scanner no one here wrote, against a running node, presenting a partner's pinned
//! client certificate so that the handshakes complete. TLS 1.2 and 1.3 only; in TLS 1.2 only
//! forward-secret AEAD suites; no renegotiation, no compression, no early data, no Heartbleed, no
//! ROBOT; and a client certificate required. The user API, where the node serves TLS itself
//! (`api.tls_cert`), is scanned the same way, without a client certificate.

use std::path::PathBuf;

use serde_json::Value;

use crate::exchange::{GUARDS, MUNICIPALITY, federation};
use crate::support::{Backend, TestNode};

const CHECKS: [&str; 12] = [
    "--sslv2",
    "--sslv3",
    "--tlsv1",
    "--tlsv1_1",
    "--tlsv1_2",
    "--tlsv1_3",
    "--reneg",
    "--compression",
    "--early_data",
    "--heartbleed",
    "--robot",
    "--fallback",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_federation_port_offers_only_modern_tls_and_requires_a_client_certificate() {
    let nodes = federation(Backend::Sqlite, &[MUNICIPALITY, GUARDS], |_| {}).await;
    let [node, partner] = &nodes[..] else { unreachable!() };
    let certificate = partner.tls_certificate();
    let partnered = scan(&node.federation_addr().to_string(), Some(certificate), &CHECKS).await;
    only_modern_tls(&partnered);
    // Without a certificate, sslyze finds one required. (That a handshake without one, or with a
    // stranger's, is refused is the peering tests' claim.)
    let stranger = scan(&node.federation_addr().to_string(), None, &["--tlsv1_3"]).await;
    assert_eq!(stranger["connectivity_result"]["client_auth_requirement"], "REQUIRED", "{stranger:#}");
    for node in nodes {
        node.stop().await;
    }
}

/// A node given `api.tls_cert` serves its API over TLS (and not in the clear), as modern as its
/// federation port, without asking for a client certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_modern_tls_when_the_node_is_given_a_certificate() {
    let keys = tempfile::tempdir().unwrap();
    let (cert, key) = (keys.path().join("api-cert.pem"), keys.path().join("api-key.pem"));
    let org = lagesbild::domain::OrgId::parse("se-kommun-test").unwrap();
    // The client judges the certificate by the real time, not the test node's clock.
    let now = lagesbild::clock::Clock::now(&lagesbild::clock::SystemClock);
    let hosts = ["127.0.0.1".to_owned()];
    lagesbild::crypto::tls::TlsIdentity::generate(
        &org,
        &hosts,
        now - chrono::Duration::days(1),
        now + chrono::Duration::days(30),
        &cert,
        &key,
    )
    .unwrap();
    let node = TestNode::spawn_with(Backend::Sqlite, |config| {
        config.api.tls_cert = Some(cert.clone());
        config.api.tls_key = Some(key.clone());
    })
    .await;
    let addr = node.base.trim_start_matches("http://").to_owned();
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(root).build().unwrap();
    let answer = client.get(format!("https://{addr}/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    assert!(reqwest::get(format!("http://{addr}/healthz")).await.is_err(), "the API also answers in the clear");

    let found = scan(&addr, None, &CHECKS).await;
    only_modern_tls(&found);
    assert_eq!(found["connectivity_result"]["client_auth_requirement"], "DISABLED", "{found:#}");
    node.stop().await;
}

/// What both ports must show: only TLS 1.2 (forward-secret AEAD suites) and 1.3, and none of the
/// known weaknesses.
fn only_modern_tls(scan: &Value) {
    assert_eq!(scan["scan_status"], "COMPLETED", "{scan:#}");
    let found = &scan["scan_result"];
    let suites = |version: &str| -> Vec<String> {
        let result = &found[format!("{version}_cipher_suites")];
        assert_eq!(result["status"], "COMPLETED", "{version}: {result:#}");
        result["result"]["accepted_cipher_suites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["cipher_suite"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for old in ["ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"] {
        assert_eq!(suites(old), Vec::<String>::new(), "{old} is accepted");
    }
    let tls_1_2 = suites("tls_1_2");
    assert!(!tls_1_2.is_empty(), "TLS 1.2 is refused");
    for suite in &tls_1_2 {
        let forward_secret = suite.starts_with("TLS_ECDHE_");
        let aead = suite.contains("_GCM_") || suite.contains("_CHACHA20_POLY1305_");
        assert!(forward_secret && aead, "TLS 1.2 accepts {suite}");
    }
    assert!(!suites("tls_1_3").is_empty(), "TLS 1.3 is refused");
    let result = |name: &str| -> &Value {
        assert_eq!(found[name]["status"], "COMPLETED", "{name}: {:#}", found[name]);
        &found[name]["result"]
    };
    let renegotiation = result("session_renegotiation");
    assert_eq!(renegotiation["is_vulnerable_to_client_renegotiation_dos"], false, "{renegotiation}");
    assert_eq!(renegotiation["client_renegotiations_success_count"], 0, "{renegotiation}");
    assert_eq!(result("tls_compression")["supports_compression"], false);
    assert_eq!(result("tls_1_3_early_data")["supports_early_data"], false);
    assert_eq!(result("heartbleed")["is_vulnerable_to_heartbleed"], false);
    assert!(result("robot")["robot_result"].as_str().unwrap().starts_with("NOT_VULNERABLE"), "{found:#}");
    assert_eq!(result("tls_fallback_scsv")["supports_fallback_scsv"], true);
}

/// Runs sslyze against `addr` with `checks`, as the holder of `certificate` (a certificate and its
/// key) if given; answers its result for the server.
async fn scan(addr: &str, certificate: Option<(PathBuf, PathBuf)>, checks: &[&str]) -> Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("sslyze.json");
    let mut sslyze = std::process::Command::new(format!("{root}/tests/tls/.venv/bin/python"));
    sslyze.args(["-m", "sslyze", "--quiet", "--json_out"]).arg(&report);
    if let Some((cert, key)) = certificate {
        sslyze.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    sslyze.args(checks).arg(addr);
    let output = tokio::task::spawn_blocking(move || sslyze.output())
        .await
        .unwrap()
        .expect("sslyze runs (tests/run installs it)");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{said}");
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("sslyze wrote no report ({e}): {said}"));
    let mut scan: Value = serde_json::from_str(&text).unwrap();
    scan["server_scan_results"][0].take()
}
