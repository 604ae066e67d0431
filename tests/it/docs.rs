//! The API documents itself: the committed OpenAPI document is what the code generates, the node
//! serves it, and Swagger UI is served from the binary.

use reqwest::StatusCode;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestNode};

#[test]
fn committed_openapi_documents_match_the_code() {
    for (file, generated, flag) in [
        ("lagesbild.json", lagesbild::api::docs::openapi_json(), ""),
        ("federation.json", lagesbild::federation::docs::openapi_json(), " --federation"),
    ] {
        let path = format!("{}/openapi/{file}", env!("CARGO_MANIFEST_DIR"));
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "openapi/{file} is out of date: run `cargo run -- openapi{flag} > openapi/{file}` and commit it"
        );
    }
}

/// A client generated from the document sends what the document lists; the API takes only each
/// enum's wire names (`suspicious_activity`, `AMBER+STRICT`), so the document must list those.
#[test]
fn the_documents_enums_list_the_values_the_api_accepts() {
    use lagesbild::domain::{Category, PersonRole, Severity, SiteKind, Status, Tlp};
    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| name(*v)).collect()
    }
    let doc: Value = serde_json::from_str(&lagesbild::api::docs::openapi_json()).unwrap();
    for (schema, accepted) in [
        ("Category", names(Category::ALL, Category::as_str)),
        ("Severity", names(Severity::ALL, Severity::as_str)),
        ("Status", names(Status::ALL, Status::as_str)),
        ("Tlp", names(Tlp::ALL, Tlp::as_str)),
        ("PersonRole", names(PersonRole::ALL, PersonRole::as_str)),
        ("SiteKind", names(SiteKind::ALL, SiteKind::as_str)),
    ] {
        let listed = &doc["components"]["schemas"][schema]["enum"];
        assert_eq!(listed, &serde_json::json!(accepted), "the document's {schema} is not what the API accepts");
    }
}

/// A schema made of parts (`allOf`) validates every part against the whole object: a part that
/// forbids other properties refuses the fields the others add (a served report failed its schema).
#[test]
fn no_schema_of_parts_has_a_part_that_forbids_the_others_fields() {
    for text in [lagesbild::api::docs::openapi_json(), lagesbild::federation::docs::openapi_json()] {
        let doc: Value = serde_json::from_str(&text).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let closed = |part: &Value| {
            let part = match part["$ref"].as_str() {
                Some(reference) => &schemas[reference.trim_start_matches("#/components/schemas/")],
                None => part,
            };
            part["additionalProperties"] == Value::Bool(false)
        };
        for (name, schema) in schemas {
            if let Some(parts) = schema["allOf"].as_array() {
                assert!(!parts.iter().any(closed), "{name} has a part that forbids the others' fields");
            }
        }
    }
}

#[test]
fn every_operation_documents_its_errors_as_problems() {
    for text in [lagesbild::api::docs::openapi_json(), lagesbild::federation::docs::openapi_json()] {
        every_operation_of_documents_its_errors_as_problems(&serde_json::from_str(&text).unwrap());
    }
}

fn every_operation_of_documents_its_errors_as_problems(doc: &Value) {
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(operation["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path} has no summary");
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"].get("application/problem+json").is_some(),
                        "{method} {path} {status} is not documented as problem+json"
                    );
                }
            }
            if operation.get("security").is_some() {
                assert!(operation["responses"].get("401").is_some(), "{method} {path} does not document 401");
            }
        }
    }
}

on_both_backends!(node_serves_its_openapi_document_and_swagger_ui);

async fn node_serves_its_openapi_document_and_swagger_ui(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let served: Value = node.client.get(node.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let generated: Value = serde_json::from_str(&lagesbild::api::docs::openapi_json()).unwrap();
    assert_eq!(served, generated);

    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = no_redirects.get(node.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()["location"], "/docs/");

    let page = node.client.get(node.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "not the Swagger UI page");
    assert!(!html.contains("https://"), "the docs page loads something from outside the node");
    let config = node.client.get(node.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(config.contains("/openapi.json"), "{config}");
    node.stop().await;
}

#[test]
fn every_registered_route_is_documented_and_every_documented_route_is_registered() {
    for (file, registered, generated) in [
        ("lagesbild.json", lagesbild::api::registered_routes(), lagesbild::api::docs::openapi_json()),
        (
            "federation.json",
            lagesbild::federation::listener::registered_routes(),
            lagesbild::federation::docs::openapi_json(),
        ),
    ] {
        let doc: Value = serde_json::from_str(&generated).unwrap();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (path.clone(), m.to_uppercase())))
            .collect();
        let mut registered: Vec<(String, String)> =
            registered.into_iter().map(|(path, method)| (path, method.as_str().to_owned())).collect();
        documented.sort();
        registered.sort();
        let undocumented: Vec<_> = registered.iter().filter(|r| !documented.contains(r)).collect();
        let unregistered: Vec<_> = documented.iter().filter(|d| !registered.contains(d)).collect();
        assert!(undocumented.is_empty(), "{file}: registered but not documented: {undocumented:?}");
        assert!(unregistered.is_empty(), "{file}: documented but not registered: {unregistered:?}");
        assert!(!registered.is_empty(), "{file}: no routes registered");
    }
}
