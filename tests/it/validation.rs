//! Bad input gets a clear problem that names what to fix, and stores nothing: invalid values,
//! unknown fields, broken JSON, wrong media types and bodies over the limit.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestNode, expect_problem, problem_fields, report};

on_both_backends!(
    every_invalid_value_is_named_and_nothing_is_stored,
    bad_retraction_requests_are_refused_and_the_report_stays,
    broken_json_and_wrong_media_types_are_refused,
    bodies_over_the_limit_are_refused_before_parsing,
);

/// Sets `value` at a dotted path such as `location.lat` or `persons.0.age`.
fn with(path: &str, value: Value) -> Value {
    let mut body = report(3);
    let mut target = &mut body;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        target = match part.parse::<usize>() {
            Ok(i) => &mut target[i],
            Err(_) => &mut target[*part],
        };
    }
    target[parts[parts.len() - 1]] = value;
    body
}

async fn every_invalid_value_is_named_and_nothing_is_stored(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let long = |n: usize| json!("x".repeat(n));
    let cases: Vec<(Value, &str)> = vec![
        (with("title", json!("")), "title"),
        (with("title", long(201)), "title"),
        (with("title", json!("Line\nbreak")), "title"),
        (with("description", long(10_001)), "description"),
        (with("observed_at", json!("2026-11-26T12:00:00Z")), "observed_at"),
        (with("observed_at", json!("yesterday evening")), "observed_at"),
        (with("observed_until", json!("2026-11-24T00:00:00Z")), "observed_until"),
        (with("expires_at", json!("2026-11-25T11:00:00Z")), "expires_at"),
        (with("category", json!("arson")), "category"),
        (with("severity", json!(3)), "severity"),
        (with("status", json!("closed")), "status"),
        (with("tlp", json!("amber")), "tlp"),
        (with("tlp", json!("WHITE")), "tlp"),
        (with("location.lat", json!(90.5)), "location.lat"),
        (with("location.lon", json!(-180.01)), "location.lon"),
        (with("location.lat", json!("58.6")), "location.lat"),
        (with("location.municipality_code", json!("581")), "location.municipality_code"),
        (with("location.municipality_code", json!("05a1")), "location.municipality_code"),
        (with("location.place_name", long(201)), "location.place_name"),
        (with("location.site.kind", json!("castle")), "location.site.kind"),
        (with("location.site.name", json!("")), "location.site.name"),
        (with("persons.0.role", json!("bystander")), "persons[0].role"),
        (with("persons.0.age", json!(131)), "persons[0].age"),
        (with("persons.0.age", json!(-1)), "persons[0].age"),
        (with("persons.0.name", json!("")), "persons[0].name"),
        (with("actions.0.what", json!("")), "actions[0].what"),
        (with("actions.0.by", long(201)), "actions[0].by"),
        (with("colour", json!("red")), "colour"),
        (with("location.altitude", json!(12)), "location.altitude"),
        (with("persons.0.phone", json!("070-1234567")), "persons[0].phone"),
        (with("id", json!("01937a4e-2f6c-7d3e-9a1b-2c3d4e5f6a7b")), "id"),
        (with("origin", json!("se-polisen")), "origin"),
        (with("persons", json!((0..101).map(|_| json!({"role": "witness"})).collect::<Vec<_>>())), "persons"),
    ];
    for (body, field) in cases {
        let response = node.request(Method::POST, "/api/v1/reports").json(&body).send().await.unwrap();
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&problem), [field], "{problem}");
    }
    // Missing required fields are named too, nested ones by their path.
    for field in ["observed_at", "category", "severity", "title", "location", "location.lat", "persons.0.role"] {
        let mut body = report(3);
        let (parent, name) = match field.rsplit_once('.') {
            Some((parent, name)) => (
                parent.split('.').fold(&mut body, |v, p| match p.parse::<usize>() {
                    Ok(i) => &mut v[i],
                    Err(_) => &mut v[p],
                }),
                name,
            ),
            None => (&mut body, field),
        };
        parent.as_object_mut().unwrap().remove(name);
        let response = node.request(Method::POST, "/api/v1/reports").json(&body).send().await.unwrap();
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&problem), [field.replace(".0.", "[0].")], "{problem}");
    }
    // A member given twice is refused, not silently resolved to one of its values.
    let text = report(3).to_string().replacen("\"title\":", "\"title\":\"First\",\"title\":", 1);
    let response = node
        .request(Method::POST, "/api/v1/reports")
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), ["title"], "{problem}");
    // Several mistakes at once are all reported.
    let mut body = with("title", json!(""));
    body["location"]["lat"] = json!(100);
    body["persons"][0]["age"] = json!(130);
    body["persons"][0]["name"] = json!("");
    let response = node.request(Method::POST, "/api/v1/reports").json(&body).send().await.unwrap();
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), ["title", "location.lat", "persons[0].name"]);

    assert!(node.situation_ids("").await.is_empty(), "a refused report was stored");
    node.stop().await;
}

async fn bad_retraction_requests_are_refused_and_the_report_stays(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let id = node.file(&report(3)).await["id"].as_str().unwrap().to_owned();
    let retract = || node.request(Method::POST, &format!("/api/v1/reports/{id}/retract"));
    let cases = [
        (retract().json(&json!({"reason": ""})), StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
        (retract().json(&json!({"reason": "x".repeat(1001)})), StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
        (retract().json(&json!({"why": "duplicate"})), StatusCode::UNPROCESSABLE_ENTITY, Some("why")),
        (retract().header("content-type", "text/plain").body("duplicate"), StatusCode::UNSUPPORTED_MEDIA_TYPE, None),
        (retract().header("content-type", "application/json").body("{\"reason\":"), StatusCode::BAD_REQUEST, None),
        (retract().header("If-Match", "\"7\""), StatusCode::PRECONDITION_FAILED, None),
    ];
    for (request, status, field) in cases {
        let problem = expect_problem(request.send().await.unwrap(), status).await;
        if let Some(field) = field {
            assert_eq!(problem_fields(&problem), [field], "{problem}");
        }
    }
    let current: Value = node.get(&format!("/api/v1/reports/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(current["version"], 1);
    assert!(current.get("retracted").is_none());
    assert_eq!(node.situation_ids("").await, [id]);
    node.stop().await;
}

async fn broken_json_and_wrong_media_types_are_refused(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let post = || node.request(Method::POST, "/api/v1/reports");
    let cases = [
        (post().header("content-type", "application/json").body("{\"title\": "), StatusCode::BAD_REQUEST),
        (
            post().header("content-type", "application/json").body(format!("{} {{}}", report(3))),
            StatusCode::BAD_REQUEST,
        ),
        (post().header("content-type", "application/json").body(""), StatusCode::BAD_REQUEST),
        (post().header("content-type", "application/json").body("[1, 2]"), StatusCode::UNPROCESSABLE_ENTITY),
        (post().header("content-type", "text/plain").body(report(3).to_string()), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (post().body(report(3).to_string()), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (post().header("content-type", "application/json").body(vec![0xff, 0xfe, 0x00]), StatusCode::BAD_REQUEST),
    ];
    for (request, status) in cases {
        expect_problem(request.send().await.unwrap(), status).await;
    }
    // A JSON media type with a suffix or a charset is JSON.
    let ok = post().header("content-type", "application/json; charset=utf-8").body(report(3).to_string());
    assert_eq!(ok.send().await.unwrap().status(), StatusCode::CREATED);
    node.stop().await;
}

async fn bodies_over_the_limit_are_refused_before_parsing(backend: Backend) {
    let node = TestNode::spawn_with(backend, |config| config.api.body_limit_bytes = 4096).await;
    let mut big = report(3);
    big["description"] = json!("x".repeat(5000));
    let response = node.request(Method::POST, "/api/v1/reports").json(&big).send().await.unwrap();
    let problem = expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(problem["detail"].as_str().unwrap().contains("4096"), "{problem}");

    // Without a Content-Length (chunked), the limit holds while reading: not valid JSON, but too
    // large is what is reported, because nothing is parsed past the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..10).map(|_| Ok(vec![b' '; 1000])).collect();
    let stream = futures_util::stream::iter(chunks);
    let response = node
        .request(Method::POST, "/api/v1/reports")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    // The default limit is 256 KiB.
    let node_default = TestNode::spawn(backend).await;
    let mut huge = report(3);
    huge["description"] = json!("x".repeat(300 * 1024));
    let response = node_default.request(Method::POST, "/api/v1/reports").json(&huge).send().await.unwrap();
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(node.situation_ids("").await.is_empty());
    assert!(node_default.situation_ids("").await.is_empty());
    node_default.stop().await;
    node.stop().await;
}
