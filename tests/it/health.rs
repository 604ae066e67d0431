//! Operators' endpoints: liveness, readiness, metrics, and problem answers for unknown routes and
//! methods.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestNode, expect_problem, report};

on_both_backends!(health_readiness_and_metrics_answer, unknown_routes_and_methods_get_problems);

async fn health_readiness_and_metrics_answer(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let health: Value = node.client.get(node.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let ready: Value = node.client.get(node.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");

    node.file(&report(2)).await;
    node.file(&report(1)).await;
    let unauthorised = node.client.get(node.url("/api/v1/situation")).send().await.unwrap();
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);

    let response = node.client.get(node.url("/metrics")).send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    assert!(text.contains("lagesbild_reports_stored{origin=\"se-kommun-test\"} 2"), "{text}");
    assert!(
        text.contains("lagesbild_http_requests_total{method=\"POST\",route=\"/api/v1/reports\",status=\"201\"} 2"),
        "{text}"
    );
    assert!(text.contains("route=\"/api/v1/situation\",status=\"401\"} 1"), "{text}");
    assert!(text.contains("lagesbild_http_request_duration_seconds_bucket"), "{text}");
    // Routes are labelled by pattern: no report id reaches the metrics.
    assert!(!text.contains("/api/v1/reports/0"), "{text}");
    node.stop().await;
}

async fn unknown_routes_and_methods_get_problems(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    expect_problem(node.get("/api/v1/nothing-here").send().await.unwrap(), StatusCode::NOT_FOUND).await;
    expect_problem(node.get("/nothing-here").send().await.unwrap(), StatusCode::NOT_FOUND).await;
    // Each 405 says in `Allow` what the path answers (RFC 9110, 15.5.6).
    let report = "/api/v1/reports/01937a4e-2f6c-7d3e-9a1b-2c3d4e5f6a7b";
    for (method, path, allow) in [
        (Method::DELETE, "/api/v1/situation", "GET, OPTIONS"),
        (Method::GET, "/api/v1/reports", "POST, OPTIONS"),
        (Method::DELETE, report, "GET, PUT, OPTIONS"),
        (Method::PATCH, report, "GET, PUT, OPTIONS"),
    ] {
        let response = node.request(method.clone(), path).send().await.unwrap();
        let allowed = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(allowed.as_deref(), Some(allow), "{method} {path}");
        expect_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
    node.stop().await;
}
