//! The situation picture: filters, GeoJSON, pages, and what leaves the picture (retracted and
//! expired reports), on both backends.

use std::collections::HashSet;

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestNode, expect_problem, problem_fields, report, start_time};

on_both_backends!(
    picture_shows_latest_versions_newest_first,
    time_window_selects_reports_whose_span_overlaps_it,
    filters_by_bbox_category_severity_origin_and_status,
    geojson_is_a_feature_collection_a_map_opens,
    pages_cover_every_report_once,
    expired_report_leaves_the_picture_when_its_time_comes,
    bad_filters_are_refused_by_name,
    a_list_filter_may_be_repeated_as_openapi_clients_send_it,
);

/// `category=a,b` and `category=a&category=b` (how a client generated from the document sends an
/// array) select the same reports.
async fn a_list_filter_may_be_repeated_as_openapi_clients_send_it(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let mut ids = Vec::new();
    for category in ["vandalism", "fire", "theft"] {
        let mut body = report(1);
        body["category"] = json!(category);
        ids.push(node.file(&body).await["id"].as_str().unwrap().to_owned());
    }
    let mut expected = ids[..2].to_vec();
    expected.sort();
    for query in ["?category=vandalism,fire", "?category=vandalism&category=fire", "?category=vandalism,fire&category="]
    {
        let mut found = node.situation_ids(query).await;
        found.sort();
        assert_eq!(found, expected, "{query}");
    }
    node.stop().await;
}

async fn picture_shows_latest_versions_newest_first(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let older = node.file(&report(5)).await;
    let newer = node.file(&report(1)).await;
    let mut changed = report(5);
    changed["title"] = json!("Windows boarded up");
    let id = older["id"].as_str().unwrap();
    let response = node
        .request(Method::PUT, &format!("/api/v1/reports/{id}"))
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let page = node.situation("").await;
    let reports = page["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["id"], newer["id"]);
    assert_eq!(reports[1]["id"], older["id"]);
    assert_eq!(reports[1]["version"], 2);
    assert_eq!(reports[1]["title"], "Windows boarded up");
    assert!(page.get("next_cursor").is_none());
    node.stop().await;
}

async fn time_window_selects_reports_whose_span_overlaps_it(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let last_night = node.file(&report(14)).await; // 22:00 yesterday
    let this_morning = node.file(&report(4)).await; // 08:00
    let mut long_running = report(30); // began 06:00 yesterday, went on until 23:00 yesterday
    long_running["observed_until"] = json!((start_time() - Duration::hours(13)).to_rfc3339());
    let long_running = node.file(&long_running).await;

    let night = "?since=2026-11-24T20:00:00Z&until=2026-11-25T06:00:00Z";
    let ids = node.situation_ids(night).await;
    assert_eq!(ids, [last_night["id"].as_str().unwrap(), long_running["id"].as_str().unwrap()]);

    let ids = node.situation_ids("?since=2026-11-25T07:00:00%2B01:00").await;
    assert_eq!(ids, [this_morning["id"].as_str().unwrap()]);
    // A `+` left unencoded arrives as a space and still means an offset.
    let ids = node.situation_ids("?since=2026-11-25T07:00:00+01:00").await;
    assert_eq!(ids, [this_morning["id"].as_str().unwrap()]);
    node.stop().await;
}

async fn filters_by_bbox_category_severity_origin_and_status(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let school = node.file(&report(3)).await;
    let mut care_home = report(2);
    care_home["category"] = json!("threat");
    care_home["severity"] = json!("severe");
    care_home["status"] = json!("resolved");
    care_home["location"] = json!({"lat": 58.5877, "lon": 16.1924, "site": {"kind": "care_home"}});
    let care_home = node.file(&care_home).await;
    let mut lulea = report(1);
    lulea["category"] = json!("theft");
    lulea["severity"] = json!("minor");
    lulea["location"] = json!({"lat": 65.5848, "lon": 22.1547, "municipality_code": "2580"});
    let lulea = node.file(&lulea).await;
    let id = |r: &Value| r["id"].as_str().unwrap().to_owned();

    assert_eq!(node.situation_ids("?bbox=16.0,58.5,16.3,58.7").await, [id(&care_home), id(&school)]);
    assert_eq!(node.situation_ids("?bbox=22,65,23,66").await, [id(&lulea)]);
    assert_eq!(node.situation_ids("?category=vandalism,theft").await, [id(&lulea), id(&school)]);
    assert_eq!(node.situation_ids("?min_severity=moderate").await, [id(&care_home), id(&school)]);
    assert_eq!(node.situation_ids("?min_severity=critical").await, Vec::<String>::new());
    assert_eq!(node.situation_ids("?status=resolved").await, [id(&care_home)]);
    assert_eq!(node.situation_ids("?origin=se-kommun-test").await.len(), 3);
    assert_eq!(node.situation_ids("?origin=SE-Kommun-Test").await.len(), 3, "org ids compare after normalising");
    assert!(node.situation_ids("?origin=se-polisen-ost").await.is_empty());
    assert_eq!(
        node.situation_ids("?bbox=16.0,58.5,16.3,58.7&category=threat&min_severity=severe&status=resolved").await,
        [id(&care_home)]
    );
    node.stop().await;
}

async fn geojson_is_a_feature_collection_a_map_opens(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let filed = node.file(&report(3)).await;
    for request in [
        node.get("/api/v1/situation?format=geojson"),
        node.get("/api/v1/situation").header("Accept", "application/geo+json"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/geo+json");
        let collection: Value = response.json().await.unwrap();
        assert_eq!(collection["type"], "FeatureCollection");
        let feature = &collection["features"][0];
        assert_eq!(feature["type"], "Feature");
        assert_eq!(feature["id"], filed["id"]);
        // RFC 7946: longitude first.
        assert_eq!(feature["geometry"], json!({"type": "Point", "coordinates": [16.1510, 58.6110]}));
        assert_eq!(feature["properties"]["title"], filed["title"]);
    }
    let refused = node.get("/api/v1/situation").header("Accept", "text/html").send().await.unwrap();
    expect_problem(refused, StatusCode::NOT_ACCEPTABLE).await;
    node.stop().await;
}

async fn pages_cover_every_report_once(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let mut filed = Vec::new();
    for i in 0..23 {
        // Several reports share an observation time, so the id must break ties.
        filed.push(node.file(&report(i / 3)).await["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut query = "?limit=5".to_owned();
    let mut pages = 0;
    loop {
        let page = node.situation(&query).await;
        pages += 1;
        let reports = page["reports"].as_array().unwrap();
        assert!(reports.len() <= 5);
        seen.extend(
            reports
                .iter()
                .map(|r| (r["observed_at"].as_str().unwrap().to_owned(), r["id"].as_str().unwrap().to_owned())),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=5&cursor={cursor}"),
            None => break,
        }
        // A report filed between pages must not disturb the pages still to come.
        if pages == 2 {
            node.file(&report(30)).await;
        }
    }
    assert_eq!(pages, 5);
    let ids: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), seen.len(), "a report appeared twice");
    assert!(filed.iter().all(|id| ids.contains(id)), "a report was skipped");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "pages are newest first, ties by id");
    node.stop().await;
}

async fn expired_report_leaves_the_picture_when_its_time_comes(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let mut expiring = report(3);
    expiring["expires_at"] = json!((start_time() + Duration::hours(1)).to_rfc3339());
    let expiring = node.file(&expiring).await;
    let lasting = node.file(&report(4)).await;
    assert_eq!(node.situation_ids("").await.len(), 2);
    node.clock.advance(Duration::minutes(61));
    assert_eq!(node.situation_ids("").await, [lasting["id"].as_str().unwrap()]);
    // Still the owner's to read.
    let id = expiring["id"].as_str().unwrap();
    assert_eq!(node.get(&format!("/api/v1/reports/{id}")).send().await.unwrap().status(), StatusCode::OK);
    node.stop().await;
}

async fn bad_filters_are_refused_by_name(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let cases = [
        ("?since=yesterday", vec!["since"]),
        ("?since=2026-11-25T00:00:00Z&until=2026-11-24T00:00:00Z", vec!["until"]),
        ("?bbox=16,58,17", vec!["bbox"]),
        ("?bbox=17,58,16,59", vec!["bbox"]),
        ("?category=vandalism,arson", vec!["category"]),
        ("?min_severity=huge", vec!["min_severity"]),
        ("?origin=se-pol%D0%B8sen", vec!["origin"]),
        ("?status=closed", vec!["status"]),
        ("?limit=0", vec!["limit"]),
        ("?limit=1001", vec!["limit"]),
        ("?limit=ten", vec!["limit"]),
        ("?cursor=bm9wZQ", vec!["cursor"]),
        ("?format=kml", vec!["format"]),
        ("?colour=red", vec!["query"]),
        ("?since=x&status=y&limit=-1", vec!["since", "status", "limit"]),
    ];
    for (query, fields) in cases {
        let response = node.get(&format!("/api/v1/situation{query}")).send().await.unwrap();
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&problem), fields, "{query}");
    }
    node.stop().await;
}
