//! The operator console as a browser meets it, over HTTP: how a person gets in (single-use codes,
//! the development token with chosen roles), what every answer carries (a strict CSP, no caching),
//! forms that must carry the session's token, the same roles as the API with a page that names
//! the role needed, a refused form that shows each error beside its field and stores nothing, the
//! per-recipient preview from the exchange's own policy engine, and the two languages. The real
//! browser's journey through the four demo partners is `console_browser.rs`.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_LANGUAGE, LOCATION};
use serde_json::Value;

use lagesbild::clock::Clock;
use lagesbild::domain::Role;

use crate::exchange::{MUNICIPALITY, POLICE, RETAILER, SAFETY, agree, federation};
use crate::on_both_backends;
use crate::support::{Backend, TOKEN, TestNode};

/// A browser: a cookie jar, no redirects followed (each answer is looked at).
fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A browser signed in to `node` with `roles`, through a single-use code as the demo prints.
pub async fn signed_in(node: &TestNode, roles: &[Role]) -> reqwest::Client {
    let roles: BTreeSet<Role> = roles.iter().copied().collect();
    let code = lagesbild::auth::session::issue_code(node.store(), &roles, node.clock.now()).await.unwrap();
    let browser = browser();
    let answer = browser.get(node.url(&format!("/console/signin?code={code}"))).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    browser
}

/// The page's text and the form token it carries.
async fn page(browser: &reqwest::Client, node: &TestNode, path: &str) -> (StatusCode, String) {
    let answer = browser.get(node.url(path)).header(ACCEPT_LANGUAGE, "en").send().await.unwrap();
    (answer.status(), answer.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("the page has a form token") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// A valid filing form, as the browser sends it.
fn report_form(csrf: &str, title: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_owned()),
        ("category", "vandalism".into()),
        ("severity", "moderate".into()),
        ("status", "ongoing".into()),
        ("observed_at", "2026-11-25T10:30".into()),
        ("title", title.to_owned()),
        ("description", "Glass on the schoolyard".into()),
        ("lat", "58.6110".into()),
        ("lon", "16.1510".into()),
        ("site_kind", "school".into()),
        ("site_name", "Hagebyskolan".into()),
        ("municipality_code", "0581".into()),
        ("person_role", "witness".into()),
        ("person_name", "Anna Andersson".into()),
        ("person_age", "44".into()),
        ("person_description", String::new()),
        ("action_what", "Guard patrol secured the area".into()),
        ("action_by", String::new()),
        ("action_at", String::new()),
        ("tlp", "AMBER".into()),
    ]
}

async fn own_reports(node: &TestNode) -> usize {
    node.situation("?source=own").await["reports"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_answer_carries_a_strict_content_security_policy() {
    let node = TestNode::spawn(Backend::Sqlite).await;
    let browser = signed_in(&node, &Role::ALL).await;
    for path in
        ["/console/", "/console/reports/new", "/console/signin", "/console/assets/picture.js", "/console/nowhere"]
    {
        let answer = browser.get(node.url(path)).send().await.unwrap();
        let policy = answer.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_owned());
        let policy = policy.unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"));
        for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert_eq!(answer.headers()["x-frame-options"], "DENY", "{path}");
        assert_eq!(answer.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    let (_, html) = page(&browser, &node, "/console/").await;
    assert!(!html.contains("<script>") && !html.contains(" style=\""), "no inline script or style");
    let answer = browser.get(node.url("/console/")).send().await.unwrap();
    assert_eq!(answer.headers()["cache-control"], "no-store", "a page with reports is never cached");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_way_in_leads_to_sign_in_and_back_to_the_page_asked_for() {
    let node = TestNode::spawn(Backend::Sqlite).await;
    let answer = browser().get(node.url("/")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/console/");
    let answer = browser().get(node.url("/console/agreements")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/console/signin?next=%2Fconsole%2Fagreements");
    let (status, html) = page(&browser(), &node, "/console/signin?next=%2Fconsole%2Fagreements").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"token\"") && html.contains("value=\"/console/agreements\""), "{html}");
    node.stop().await;
}

on_both_backends!(a_sign_in_code_opens_one_session_once);
async fn a_sign_in_code_opens_one_session_once(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let roles: BTreeSet<Role> = [Role::Coordinator].into_iter().collect();
    let code = lagesbild::auth::session::issue_code(node.store(), &roles, node.clock.now()).await.unwrap();
    let first = browser();
    let answer = first.get(node.url(&format!("/console/signin?code={code}"))).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let (status, html) = page(&first, &node, "/console/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("security coordinator"), "the session has the code's roles");

    let second = browser();
    let (status, html) = page(&second, &node, &format!("/console/signin?code={code}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code works once");
    assert!(html.contains("has been used already"), "{html}");
    let answer = second.get(node.url("/console/")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "and opened no second session");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_token_signs_in_with_the_roles_chosen_and_a_reporter_is_told_what_it_may_not() {
    let node = TestNode::spawn(Backend::Sqlite).await;
    let browser = browser();
    let sign_in = |token: &'static str, roles: &'static [&'static str]| {
        let mut form: Vec<(&str, &str)> = vec![("token", token), ("next", "/console/")];
        form.extend(roles.iter().map(|r| ("role", *r)));
        browser.post(node.url("/console/signin")).header("Origin", node.base.clone()).form(&form).send()
    };
    let wrong = sign_in("not-the-token-at-all", &["reporter"]).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("not valid for this node"));
    let elsewhere = browser
        .post(node.url("/console/signin"))
        .header("Origin", "https://evil.example")
        .form(&[("token", TOKEN), ("role", "reporter")])
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::FORBIDDEN, "a sign-in form posted from another site");
    let answer = sign_in(TOKEN, &["reporter"]).await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);

    let (status, html) = page(&browser, &node, "/console/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("/console/agreements\"") && !html.contains("/console/audit\""), "the menu leaves them out");
    for path in ["/console/agreements", "/console/audit", "/console/partners", "/console/dead-letters"] {
        let (status, html) = page(&browser, &node, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("This needs the role") && html.contains("security representative (reporter)"), "{html}");
    }
    let (_, html) = page(&browser, &node, "/console/me").await;
    assert!(html.contains("You may not") && html.contains("propose, sign and revoke agreements"), "{html}");
    node.stop().await;
}

on_both_backends!(a_form_without_the_sessions_token_changes_nothing);
async fn a_form_without_the_sessions_token_changes_nothing(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let browser = signed_in(&node, &[Role::Reporter]).await;
    let forged = report_form("forged-token", "Filed from another site");
    let answer = browser.post(node.url("/console/reports")).form(&forged).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let (_, html) = page(&browser, &node, "/console/reports/new").await;
    let from_elsewhere = browser
        .post(node.url("/console/reports"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&report_form(&csrf_of(&html), "Filed from another site"))
        .send()
        .await
        .unwrap();
    assert_eq!(from_elsewhere.status(), StatusCode::FORBIDDEN, "the right token, sent by another site's page");
    assert_eq!(own_reports(&node).await, 0, "nothing was filed");
    node.stop().await;
}

on_both_backends!(a_report_filed_in_the_console_is_the_report_the_api_serves);
async fn a_report_filed_in_the_console_is_the_report_the_api_serves(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let browser = signed_in(&node, &[Role::Reporter]).await;
    let (_, html) = page(&browser, &node, "/console/reports/new").await;
    let answer = browser
        .post(node.url("/console/reports"))
        .form(&report_form(&csrf_of(&html), "Broken windows at Hagebyskolan"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let location = answer.headers()[LOCATION].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/console/reports/").unwrap();
    let report: Value = node.get(&format!("/api/v1/reports/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["title"], "Broken windows at Hagebyskolan");
    assert_eq!(report["observed_at"], "2026-11-25T09:30:00Z", "10:30 in Stockholm is 09:30 UTC");
    assert_eq!(report["location"]["site"]["name"], "Hagebyskolan");
    assert_eq!(report["persons"][0]["name"], "Anna Andersson");
    assert_eq!(report["persons"][0]["age"], 44);
    assert_eq!(report["actions"][0]["what"], "Guard patrol secured the area");
    assert_eq!(report["filed_by"], "token:dev");
    // A reporter does not see the persons of stored reports (privacy.persons_visible_to), their
    // own included; a coordinator does.
    let (status, html) = page(&browser, &node, &location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Every version") && !html.contains("Anna Andersson"), "{html}");
    let coordinator = signed_in(&node, &[Role::Coordinator]).await;
    let (_, html) = page(&coordinator, &node, &location).await;
    assert!(html.contains("Anna Andersson"), "{html}");
    node.stop().await;
}

on_both_backends!(a_bad_report_form_shows_each_error_beside_its_field_and_stores_nothing);
async fn a_bad_report_form_shows_each_error_beside_its_field_and_stores_nothing(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let browser = signed_in(&node, &[Role::Reporter]).await;
    let (_, html) = page(&browser, &node, "/console/reports/new").await;
    let mut form = report_form(&csrf_of(&html), "");
    for (name, value) in &mut form {
        match *name {
            "lat" => *value = "91".into(),
            "person_age" => *value = "old".into(),
            _ => {}
        }
    }
    let answer =
        browser.post(node.url("/console/reports")).header(ACCEPT_LANGUAGE, "en").form(&form).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = answer.text().await.unwrap();
    assert!(html.contains("Nothing has been saved"), "{html}");
    assert!(html.contains("id=\"person_age_0\" name=\"person_age\" value=\"old\""), "what was typed stays");
    assert!(html.contains("must be between 0 and 130"), "the age's error is beside the age");
    // Fixed the age: now the domain's own checks speak, each beside its field.
    for (name, value) in &mut form {
        if *name == "person_age" {
            *value = "44".into();
        }
    }
    let answer =
        browser.post(node.url("/console/reports")).header(ACCEPT_LANGUAGE, "en").form(&form).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = answer.text().await.unwrap();
    assert!(html.contains("<span class=\"error\" id=\"title-error\">must not be empty</span>"), "{html}");
    assert!(html.contains("<span class=\"error\" id=\"lat-error\">must be between -90 and 90"), "{html}");
    assert!(html.contains("aria-describedby=\"lat-error\""), "the field names its error for screen readers");
    assert_eq!(own_reports(&node).await, 0, "nothing was filed");
    node.stop().await;
}

on_both_backends!(the_preview_shows_each_partner_what_it_would_receive_by_the_exchanges_own_rules);
async fn the_preview_shows_each_partner_what_it_would_receive_by_the_exchanges_own_rules(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    let [municipality, police, retailer] = &nodes[..] else { unreachable!() };
    agree(&[municipality, police, retailer], SAFETY).await;
    let browser = signed_in(municipality, &[Role::Reporter]).await;
    let (_, html) = page(&browser, municipality, "/console/reports/new").await;
    let mut form = report_form(&csrf_of(&html), "Window broken at the centre");
    for (name, value) in &mut form {
        match *name {
            "tlp" => *value = "GREEN".into(),
            "lat" => *value = "58.6100".into(),
            "lon" => *value = "16.1540".into(),
            _ => {}
        }
    }
    let answer = browser
        .post(municipality.url("/console/reports/preview?fragment=1"))
        .header(ACCEPT_LANGUAGE, "en")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let panel = answer.text().await.unwrap();
    let section = |org: &str| {
        let start = panel.find(&format!("data-org=\"{org}\"")).unwrap_or_else(|| panic!("{org} is not in {panel}"));
        panel[start..].split("</section>").next().unwrap().to_owned()
    };
    let (at_police, at_shop) = (section(POLICE), section(RETAILER));
    assert!(at_police.contains("receives") && at_police.contains("Window broken at the centre"), "{at_police}");
    assert!(at_police.contains("Anna Andersson"), "the police see persons: {at_police}");
    assert!(at_shop.contains("receives") && at_shop.contains("500 m square"), "{at_shop}");
    assert!(
        !at_shop.contains("Window broken") && !at_shop.contains("Anna"),
        "the shop sees no title, no person: {at_shop}"
    );
    assert!(
        at_shop.contains("grid 500m") && at_shop.contains("Wednesday 25 November 2026"),
        "the cell, the day: {at_shop}"
    );
    assert!(at_police.contains("Wed 25 Nov 2026 10:30"), "the police get the time as filed: {at_police}");
    assert_eq!(own_reports(municipality).await, 0, "a preview files nothing");

    // AMBER may not reach the shop at all; the panel says why.
    for (name, value) in &mut form {
        if *name == "tlp" {
            *value = "AMBER".into();
        }
    }
    let panel = browser
        .post(municipality.url("/console/reports/preview?fragment=1"))
        .header(ACCEPT_LANGUAGE, "en")
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = panel.find(&format!("data-org=\"{RETAILER}\"")).unwrap();
    let at_shop = panel[start..].split("</section>").next().unwrap();
    assert!(at_shop.contains("receives nothing") && at_shop.contains("TLP:AMBER is above"), "{at_shop}");
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_speaks_the_browsers_language_and_keeps_the_one_switched_to() {
    let node = TestNode::spawn(Backend::Sqlite).await;
    let browser = signed_in(&node, &[Role::Coordinator]).await;
    let swedish = browser.get(node.url("/console/")).header(ACCEPT_LANGUAGE, "sv-SE,sv;q=0.9").send().await.unwrap();
    let html = swedish.text().await.unwrap();
    assert!(html.contains("<html lang=\"sv\">") && html.contains("Lägesbild") && html.contains("säkerhetssamordnare"));
    let switched = browser.get(node.url("/console/lang/en?next=%2Fconsole%2Fpatrol")).send().await.unwrap();
    assert_eq!(switched.headers()[LOCATION], "/console/patrol");
    let english = browser.get(node.url("/console/patrol")).header(ACCEPT_LANGUAGE, "sv").send().await.unwrap();
    assert!(english.text().await.unwrap().contains("<html lang=\"en\">"), "the switch wins over the browser");
    let away = browser.get(node.url("/console/lang/sv?next=https%3A%2F%2Fevil.example%2F")).send().await.unwrap();
    assert_eq!(away.headers()[LOCATION], "/console/", "the switch never leads off the node");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_opens_for_exactly_the_roles_its_api_routes_allow() {
    let node = TestNode::spawn(Backend::Sqlite).await;
    // Each page, and the API route whose roles (as its OpenAPI document lists them) it must keep.
    let document: Value = serde_json::from_str(&lagesbild::api::docs::openapi_json()).unwrap();
    let roles_of = |method: &str, path: &str| -> Vec<Role> {
        let scopes = document["paths"][path][method]["security"][0]["bearer"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} documents no security requirement"));
        // No scope: any signed-in caller.
        if scopes.is_empty() {
            return Role::ALL.to_vec();
        }
        scopes.iter().map(|r| r.as_str().unwrap().parse().unwrap()).collect()
    };
    let pages: Vec<(&str, Vec<Role>)> = [
        ("/console/", "get", "/api/v1/situation"),
        ("/console/reports/new", "post", "/api/v1/reports"),
        ("/console/patrol", "get", "/api/v1/situation"),
        ("/console/agreements", "get", "/api/v1/agreements"),
        ("/console/agreements/new", "post", "/api/v1/agreements"),
        ("/console/partners", "get", "/api/v1/partners"),
        ("/console/audit", "get", "/api/v1/audit"),
        ("/console/dead-letters", "get", "/api/v1/dead-letters"),
        ("/console/subscriptions", "get", "/api/v1/subscriptions"),
        ("/console/me", "get", "/api/v1/me"),
    ]
    .into_iter()
    .map(|(page, method, route)| (page, roles_of(method, route)))
    .collect();
    for role in Role::ALL {
        let browser = signed_in(&node, &[role]).await;
        for (path, allowed) in &pages {
            let (status, html) = page(&browser, &node, path).await;
            let expected = if allowed.contains(&role) { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(status, expected, "{role} on {path}");
            if status == StatusCode::FORBIDDEN {
                assert!(html.contains("This needs the role"), "{role} on {path}: {html}");
            }
        }
    }
    node.stop().await;
}

on_both_backends!(a_change_made_on_a_stale_version_is_refused_and_said_so);
async fn a_change_made_on_a_stale_version_is_refused_and_said_so(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    let filed = node.file(&crate::support::report(2)).await;
    let id = filed["id"].as_str().unwrap();
    let browser = signed_in(&node, &[Role::Coordinator]).await;
    let (status, html) = page(&browser, &node, &format!("/console/reports/{id}/edit")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"version\" value=\"1\""), "the form carries the version it changes");
    // Someone else changes the report meanwhile.
    let changed = node
        .request(reqwest::Method::PUT, &format!("/api/v1/reports/{id}"))
        .header("If-Match", "\"1\"")
        .json(&crate::support::report(2))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let mut form = report_form(&csrf_of(&html), "Changed in the console");
    form.push(("version", "1".into()));
    let answer = browser
        .post(node.url(&format!("/console/reports/{id}")))
        .header(ACCEPT_LANGUAGE, "en")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PRECONDITION_FAILED);
    assert!(answer.text().await.unwrap().contains("Someone else changed the report meanwhile (now version 2)"));
    let report: Value = node.get(&format!("/api/v1/reports/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["version"], 2, "the stale change stored nothing");
    node.stop().await;
}

on_both_backends!(the_patrol_sheet_lists_the_window_oldest_first_and_says_how_to_handle_it);
async fn the_patrol_sheet_lists_the_window_oldest_first_and_says_how_to_handle_it(backend: Backend) {
    let node = TestNode::spawn(backend).await;
    for (hours, title) in [(3, "Earlier: broken window"), (1, "Later: youths on the roof"), (30, "Yesterday")] {
        let mut body = crate::support::report(hours);
        body["title"] = serde_json::json!(title);
        node.file(&body).await;
    }
    let browser = signed_in(&node, &[Role::Analyst]).await;
    let (status, html) = page(&browser, &node, "/console/patrol?window=6h").await;
    assert_eq!(status, StatusCode::OK);
    let (earlier, later) = (html.find("Earlier: broken window").unwrap(), html.find("Later: youths").unwrap());
    assert!(earlier < later, "oldest first, the order of a round");
    assert!(!html.contains("Yesterday"), "outside the window");
    assert!(html.contains("2 reports") && html.contains("Contains TLP:AMBER"), "{html}");
    node.stop().await;
}

on_both_backends!(a_card_that_does_not_verify_is_refused_on_the_page_and_adds_no_partner);
async fn a_card_that_does_not_verify_is_refused_on_the_page_and_adds_no_partner(backend: Backend) {
    let node = TestNode::spawn_federated(backend, MUNICIPALITY).await;
    let other = TestNode::spawn_federated(backend, POLICE).await;
    let browser = signed_in(&node, &[Role::NodeAdmin]).await;
    let (_, html) = page(&browser, &node, "/console/partners").await;
    let csrf = csrf_of(&html);
    let view: Value = other.get("/api/v1/node").send().await.unwrap().json().await.unwrap();
    let mut forged = view["signed_card"].clone();
    let payload = forged["payload"].as_str().unwrap().to_owned();
    forged["payload"] = serde_json::json!(format!("{}A", &payload[..payload.len() - 1]));
    for card in ["not a card at all".to_owned(), forged.to_string()] {
        let form = reqwest::multipart::Form::new().text("csrf", csrf.clone()).text("card", card.clone());
        let answer = browser.post(node.url("/console/partners")).multipart(form).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{card}");
        assert!(answer.text().await.unwrap().contains("id=\"card-problem\""));
    }
    let partners: Value = node.get("/api/v1/partners").send().await.unwrap().json().await.unwrap();
    assert_eq!(partners.as_array().unwrap().len(), 0, "no partner was added");
    let form = reqwest::multipart::Form::new().text("csrf", csrf).text("file", view["signed_card"].to_string());
    let answer = browser.post(node.url("/console/partners")).multipart(form).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "the card as an uploaded file");
    let (_, html) = page(&browser, &node, "/console/partners").await;
    assert!(html.contains(POLICE), "{html}");
    node.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_verifies_the_chain_on_request_and_pages_the_trail() {
    let node = TestNode::spawn(Backend::Sqlite).await;
    for hours in 0..3 {
        node.file(&crate::support::report(hours)).await;
    }
    let browser = signed_in(&node, &[Role::NodeAdmin]).await;
    let (status, html) = page(&browser, &node, "/console/audit?event=report.created&verify=1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("The chain is intact") && html.contains("id=\"verify-result\""), "{html}");
    assert_eq!(html.matches("<code>report.created</code>").count(), 3, "{html}");
    node.stop().await;
}

on_both_backends!(an_agreement_starts_from_a_template_and_a_bad_file_is_explained_by_line);
async fn an_agreement_starts_from_a_template_and_a_bad_file_is_explained_by_line(backend: Backend) {
    let node = TestNode::spawn_federated(backend, MUNICIPALITY).await;
    let browser = signed_in(&node, &[Role::AgreementAdmin]).await;
    let (status, html) =
        page(&browser, &node, "/console/agreements/new?template=norrkoping-safety-agreement.toml").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("se-norrkoping-trygghetsoverenskommelse"), "the template fills the text");
    let csrf = csrf_of(&html);
    let broken = "id = \"se-broken-agreement\"\ntitle = \"Broken\"\npurpose = \"x\"\nvalid_from = 2026-01-01\n\
                  valid_until = 2025-01-01\nevaluation_date = 2026-06-01\nretention_days = 30\n";
    let form = reqwest::multipart::Form::new().text("csrf", csrf).text("text", broken);
    let answer = browser
        .post(node.url("/console/agreements"))
        .header(ACCEPT_LANGUAGE, "en")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = answer.text().await.unwrap();
    assert!(html.contains("id=\"agreement-problems\"") && html.contains("parties"), "{html}");
    assert!(html.contains("se-broken-agreement"), "the text comes back to be corrected");
    let agreements: Value = node.get("/api/v1/agreements").send().await.unwrap().json().await.unwrap();
    assert_eq!(agreements.as_array().unwrap().len(), 0, "nothing was proposed");
    node.stop().await;
}

on_both_backends!(blocking_a_partner_in_the_console_names_the_consequence_then_refuses_it);
async fn blocking_a_partner_in_the_console_names_the_consequence_then_refuses_it(backend: Backend) {
    let nodes = federation(backend, &[MUNICIPALITY, POLICE], |_| {}).await;
    let municipality = &nodes[0];
    let browser = signed_in(municipality, &[Role::NodeAdmin]).await;
    let (status, html) = page(&browser, municipality, &format!("/console/partners/{POLICE}/block")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("refused at the TLS handshake"), "the page names the consequence: {html}");
    let answer = browser
        .post(municipality.url(&format!("/console/partners/{POLICE}/block")))
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let partner: Value =
        municipality.get(&format!("/api/v1/partners/{POLICE}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(partner["blocked"], true);
    let (_, html) = page(&browser, municipality, "/console/partners").await;
    assert!(html.contains(&format!("/console/partners/{POLICE}/unblock")), "the page offers to unblock it");
    for node in nodes {
        node.stop().await;
    }
}
