//! Every route of the user API refuses a missing or wrong token, with a problem and a
//! `WWW-Authenticate` challenge. The routes are taken from the committed OpenAPI document, so a new
//! route cannot escape this test; a node with no token configured refuses everything.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TOKEN, TestNode, expect_problem, report};

on_both_backends!(every_api_route_refuses_missing_or_wrong_tokens, node_without_a_token_refuses_every_call);

/// Every (method, path) of the OpenAPI document with a security requirement, naming report `id`.
fn secured_routes(id: &str) -> Vec<(Method, String)> {
    let doc: Value = serde_json::from_str(&lagesbild::api::docs::openapi_json()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let secured = operation.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            if path.starts_with("/api/") {
                assert!(secured, "{method} {path} has no security requirement in the OpenAPI document");
            }
            if secured {
                let concrete = path.replace("{id}", id).replace("{version}", "1").replace("{org}", "se-polisen-ost");
                routes.push((method.to_uppercase().parse().unwrap(), concrete));
            }
        }
    }
    assert!(routes.len() >= 7, "the document lists too few secured routes: {routes:?}");
    routes
}

async fn every_api_route_refuses_missing_or_wrong_tokens(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let filed = node.file(&report(3)).await;
    let wrong_tokens = [
        "Bearer wrong-token-0123456789".to_owned(),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        format!("Bearer {TOKEN}x"),
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
        "Bearer ".to_owned(),
    ];
    let id = filed["id"].as_str().unwrap();
    // The routes name the filed report, so a refusal that let a change through would show below.
    for (method, path) in secured_routes(id) {
        let send = |auth: Option<&str>| {
            let mut request = node.client.request(method.clone(), node.url(&path)).json(&report(1));
            if let Some(auth) = auth {
                request = request.header("Authorization", auth);
            }
            request.header("If-Match", "\"1\"").send()
        };
        let response = send(None).await.unwrap();
        assert!(response.headers().contains_key("www-authenticate"), "{method} {path}");
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
        for auth in &wrong_tokens {
            let response = send(Some(auth)).await.unwrap();
            expect_problem(response, StatusCode::UNAUTHORIZED).await;
        }
    }
    // None of those calls changed anything.
    let current: Value = node.get(&format!("/api/v1/reports/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(current, filed);
    node.stop().await;
}

async fn node_without_a_token_refuses_every_call(backend: Backend) {
    let node = TestNode::spawn_with(backend, |config| config.api.dev_token = None).await;
    for (method, path) in secured_routes(&uuid::Uuid::now_v7().to_string()) {
        let response = node.request(method.clone(), &path).json(&report(1)).send().await.unwrap();
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
    }
    node.stop().await;
}
