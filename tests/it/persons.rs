//! Who inside a receiving organisation sees the persons in reports (issue 19): the police decide
//! that only coordinators and analysts do. A police reporter is shown the persons' roles and
//! nothing more, through every route that shows a report (the picture as JSON, GeoJSON and CAP,
//! the live stream, the report itself and its versions, the console's report page and patrol
//! sheet), while a police coordinator reads the name through the same routes and the audit trail
//! records that they did. A reporter's update keeps the persons they were not shown, and one that
//! tries to change them is refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use lagesbild::clock::Clock;
use lagesbild::domain::Role;

use crate::exchange::{MUNICIPALITY, POLICE, RETAILER, SAFETY, agree, federation};
use crate::on_both_backends;
use crate::stream::Stream;
use crate::support::{Backend, TestNode, expect_problem, report, until};

on_both_backends!(
    a_police_reporter_never_sees_a_name_that_a_police_coordinator_sees,
    a_reporter_keeps_the_persons_it_was_not_shown_and_cannot_change_them,
);

const NAME: &str = "Anna Andersson";
const LATER_NAME: &str = "Bertil Berg";

/// The police decide who of their people sees persons (here: the default, made explicit).
fn coordinators_and_analysts(config: &mut lagesbild::config::NodeConfig) {
    config.privacy.persons_visible_to = vec!["coordinator".into(), "analyst".into()];
}

/// A person at `node` named `actor` with `roles`, signed in (a session of their own, as the
/// identity provider's sign-in opens it).
pub async fn person(node: &TestNode, actor: &str, roles: &[Role]) -> reqwest::Client {
    let roles = roles.iter().copied().collect();
    let lifetime = chrono::Duration::hours(1);
    let secret = lagesbild::auth::session::open(node.store(), actor, &roles, node.clock.now(), lifetime).await.unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    let cookie = format!("{}={secret}", lagesbild::api::login::SESSION_COOKIE);
    headers.insert(reqwest::header::COOKIE, cookie.parse().unwrap());
    // A browser says so when a page of the node itself sends a change.
    headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
    reqwest::Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub async fn text(client: &reqwest::Client, node: &TestNode, path: &str) -> String {
    let answer = client.get(node.url(path)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{path}");
    answer.text().await.unwrap()
}

async fn a_police_reporter_never_sees_a_name_that_a_police_coordinator_sees(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], coordinators_and_analysts).await;
    let [municipality, police, retailer] = &nodes[..] else { unreachable!() };
    agree(&[municipality, police, retailer], SAFETY).await;
    let filed = municipality.file(&report(2)).await;
    let id = filed["id"].as_str().unwrap().to_owned();
    until(|| async { police.situation_ids("").await.contains(&id).then_some(()) }).await;

    let reporter = person(police, "user:police-reporter", &[Role::Reporter]).await;
    let coordinator = person(police, "user:police-coordinator", &[Role::Coordinator]).await;
    // Streams open before the next report, so each sees it arrive.
    let mut reporter_stream = Stream::of(reporter.get(police.url("/api/v1/situation/stream")).send().await.unwrap());
    let mut coordinator_stream =
        Stream::of(coordinator.get(police.url("/api/v1/situation/stream")).send().await.unwrap());
    let mut later = report(1);
    later["persons"] = json!([{ "role": "suspect", "name": LATER_NAME, "age": 19, "description": "red jacket" }]);
    later["actions"] = json!([{ "what": "Spoke to the suspect", "by": LATER_NAME }]);
    let later_id = municipality.file(&later).await["id"].as_str().unwrap().to_owned();
    until(|| async { police.situation_ids("").await.contains(&later_id).then_some(()) }).await;

    let routes = [
        "/api/v1/situation".to_owned(),
        "/api/v1/situation?format=geojson".to_owned(),
        "/api/v1/situation?format=cap".to_owned(),
        format!("/console/reports/{id}"),
        format!("/console/reports/{later_id}"),
        "/console/patrol".to_owned(),
    ];
    for route in &routes {
        let shown = text(&reporter, police, route).await;
        assert!(!shown.contains(NAME) && !shown.contains(LATER_NAME), "a reporter read a name at {route}: {shown}");
        assert!(!shown.contains("red jacket"), "a reporter read a description at {route}");
    }
    let picture: Value = serde_json::from_str(&text(&reporter, police, "/api/v1/situation").await).unwrap();
    let received = picture["reports"].as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(
        received["persons"],
        json!({ "counts": [{ "role": "witness", "count": 1 }] }),
        "the reporter is shown the persons' roles"
    );
    for route in ["/api/v1/situation", "/api/v1/situation?format=geojson"] {
        let shown = text(&coordinator, police, route).await;
        assert!(shown.contains(NAME) && shown.contains(LATER_NAME), "the coordinator reads the names at {route}");
    }
    let page = text(&coordinator, police, &format!("/console/reports/{later_id}")).await;
    assert!(page.contains(LATER_NAME), "the coordinator's report page names the suspect");

    let seen_by_reporter = event_of(&mut reporter_stream, &later_id).await;
    assert!(!seen_by_reporter.contains(LATER_NAME) && !seen_by_reporter.contains("red jacket"), "{seen_by_reporter}");
    assert!(seen_by_reporter.contains("suspect"), "the stream gives the reporter the role: {seen_by_reporter}");
    let seen_by_coordinator = event_of(&mut coordinator_stream, &later_id).await;
    assert!(seen_by_coordinator.contains(LATER_NAME), "{seen_by_coordinator}");

    let trail: Value =
        police.get("/api/v1/audit?event=persons.read&limit=1000").send().await.unwrap().json().await.unwrap();
    let readers: Vec<&str> = trail["entries"].as_array().unwrap().iter().filter_map(|e| e["actor"].as_str()).collect();
    assert!(readers.contains(&"user:police-coordinator"), "the coordinator's reading is audited: {trail}");
    assert!(!readers.contains(&"user:police-reporter"), "the reporter read no persons: {trail}");
}

/// The `filed` event of report `id` on `stream`, as its text.
async fn event_of(stream: &mut Stream, id: &str) -> String {
    loop {
        let event = stream.next().await;
        if event.data["id"] == id && event.data.get("report").is_some() {
            return event.data.to_string();
        }
    }
}

async fn a_reporter_keeps_the_persons_it_was_not_shown_and_cannot_change_them(backend: Backend) {
    let police = TestNode::spawn_with(backend, coordinators_and_analysts).await;
    let reporter = person(&police, "user:police-reporter", &[Role::Reporter]).await;
    let coordinator = person(&police, "user:police-coordinator", &[Role::Coordinator]).await;
    let filed: Value =
        reporter.post(police.url("/api/v1/reports")).json(&report(1)).send().await.unwrap().json().await.unwrap();
    let id = filed["id"].as_str().unwrap().to_owned();
    assert!(!filed.to_string().contains(NAME), "the filer is shown roles only: {filed}");
    for route in [format!("/api/v1/reports/{id}"), format!("/api/v1/reports/{id}/versions")] {
        assert!(!text(&reporter, &police, &route).await.contains(NAME), "{route}");
        assert!(text(&coordinator, &police, &route).await.contains(NAME), "{route}");
    }

    // Changed as shown: the title changes, the witness's name stays.
    let shown: Value =
        reporter.get(police.url(&format!("/api/v1/reports/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["persons"], json!([{ "role": "witness" }]), "{shown}");
    let mut content = report(1);
    content["persons"] = shown["persons"].clone();
    content["title"] = json!("Broken windows at Hagebyskolan, east side");
    let updated = reporter
        .request(Method::PUT, police.url(&format!("/api/v1/reports/{id}")))
        .header("If-Match", "\"1\"")
        .json(&content)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let latest = text(&coordinator, &police, &format!("/api/v1/reports/{id}")).await;
    assert!(latest.contains(NAME) && latest.contains("east side"), "the name survived the update: {latest}");

    // Changing the persons it was not shown is refused, and stores nothing.
    content["persons"] = json!([{ "role": "witness", "name": "Someone Else" }]);
    let refused = reporter
        .request(Method::PUT, police.url(&format!("/api/v1/reports/{id}")))
        .header("If-Match", "\"2\"")
        .json(&content)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(refused, StatusCode::FORBIDDEN).await;
    assert!(problem["detail"].as_str().unwrap().contains("persons"), "{problem}");
    let versions: Value =
        police.get(&format!("/api/v1/reports/{id}/versions")).send().await.unwrap().json().await.unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2);

    // The console's edit form of a reporter holds no name either.
    let form = text(&reporter, &police, &format!("/console/reports/{id}/edit")).await;
    assert!(!form.contains(NAME), "the edit form names nobody: {form}");
}
