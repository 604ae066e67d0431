//! Systems sign in with JWT access tokens from the organisation's OpenID Connect provider, a real
//! one (oidc-provider on loopback). Every route is walked from the OpenAPI document: no token, an
//! expired token, another issuer's token and a token without the needed roles are all refused, and
//! a token with one of the roles is let through. Forged algorithms are refused; a provider's key
//! rotation is followed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use lagesbild::clock::Clock;

use crate::support::{Backend, OidcProvider, TOKEN, TestNode, expect_problem, report};

const ALL_ROLES: [&str; 5] = ["reporter", "coordinator", "analyst", "agreement-admin", "node-admin"];

async fn node_trusting(provider: &OidcProvider) -> TestNode {
    let auth = provider.auth_config();
    TestNode::spawn_with(Backend::Sqlite, move |config| config.auth = Some(auth)).await
}

/// A report whose persons are given by role only, as someone who does not see persons sends a
/// change (see `privacy.persons_visible_to`): these tests are about the routes' roles.
fn unnamed(hours_ago: i64) -> Value {
    let mut body = report(hours_ago);
    body["persons"] = json!([{ "role": "witness" }]);
    body
}

/// Files a report with `token` and returns the node's answer.
async fn file_as(node: &TestNode, token: &str) -> Value {
    node.client
        .post(node.url("/api/v1/reports"))
        .bearer_auth(token)
        .json(&report(3))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every (method, path, roles) of the user API, ids filled in.
fn routes(id: &str) -> Vec<(Method, String, Vec<String>)> {
    let doc: Value = serde_json::from_str(&lagesbild::api::docs::openapi_json()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(security) = operation.get("security") else {
                assert!(!path.starts_with("/api/"), "{method} {path} documents no security requirement");
                continue;
            };
            let roles: Vec<String> =
                security[0]["bearer"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
            let concrete = path.replace("{id}", id).replace("{version}", "1").replace("{org}", "se-polisen-ost");
            routes.push((method.to_uppercase().parse().unwrap(), concrete, roles));
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_the_token_and_the_roles_it_needs() {
    let provider = OidcProvider::start();
    let elsewhere = OidcProvider::start();
    let node = node_trusting(&provider).await;
    let reporter = provider.token("reporter-app").await;
    let filed: Value = file_as(&node, &reporter).await;
    let id = filed["id"].as_str().expect("a reporter files a report").to_owned();

    let no_roles = provider.token("no-roles-app").await;
    let foreign = elsewhere.token("everything-app").await;
    let mut checked = 0;
    for (method, path, roles) in routes(&id) {
        let send = |token: Option<&str>| {
            let mut request =
                node.client.request(method.clone(), node.url(&path)).header("If-Match", "\"1\"").json(&unnamed(1));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        expect_problem(send(None).await.unwrap(), StatusCode::UNAUTHORIZED).await;
        expect_problem(send(Some(&foreign)).await.unwrap(), StatusCode::UNAUTHORIZED).await;
        // The static token is refused once a provider is configured.
        expect_problem(send(Some(TOKEN)).await.unwrap(), StatusCode::UNAUTHORIZED).await;
        if roles.is_empty() {
            assert_eq!(send(Some(&no_roles)).await.unwrap().status(), StatusCode::OK, "{method} {path}");
            continue;
        }
        let problem = expect_problem(send(Some(&no_roles)).await.unwrap(), StatusCode::FORBIDDEN).await;
        assert!(problem["detail"].as_str().unwrap().contains(&roles[0]), "{problem}");
        // One holder of each role the route names gets past the check; every other role does not.
        for role in ALL_ROLES {
            let token = provider.token(&format!("{role}-app")).await;
            let status = send(Some(&token)).await.unwrap().status();
            if roles.iter().any(|r| r == role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{role} refused on {method} {path}: {status}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} let through on {method} {path}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} routes checked");

    // A token for another service of the same provider is not for this node.
    let other_audience = provider.token_for("everything-app", "urn:other:api").await;
    let response = node.client.get(node.url("/api/v1/me")).bearer_auth(&other_audience).send().await.unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED).await;

    // Past the token's real expiry (the node's clock is moved there), every route refuses it.
    let everything = provider.token("everything-app").await;
    let lifetime = Duration::hours(1) + Duration::minutes(2);
    node.clock.advance(lagesbild::clock::SystemClock.now() - node.clock.now() + lifetime);
    for (method, path, _) in routes(&id) {
        let response = node
            .client
            .request(method.clone(), node.url(&path))
            .bearer_auth(&everything)
            .json(&report(1))
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_says_who_you_are_and_what_you_may_do() {
    let provider = OidcProvider::start();
    let node = node_trusting(&provider).await;
    let analyst = provider.token("analyst-app").await;
    let me: Value =
        node.client.get(node.url("/api/v1/me")).bearer_auth(&analyst).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["roles"], json!(["analyst"]));
    assert_eq!(me["actor"], "client:analyst-app");
    assert_eq!(me["may"], json!(["read reports and the situation picture"]));
    // A report the analyst reads is audited under its name.
    let reporter = provider.token("reporter-app").await;
    let id = file_as(&node, &reporter).await["id"].as_str().unwrap().to_owned();
    let read = node.client.get(node.url(&format!("/api/v1/reports/{id}"))).bearer_auth(&analyst).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let admin = provider.token("everything-app").await;
    let trail: Value = node
        .client
        .get(node.url(&format!("/api/v1/audit?event=report.read&report={id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let readers: Vec<&Value> = trail["entries"].as_array().unwrap().iter().map(|e| &e["actor"]).collect();
    assert_eq!(readers, [&json!("client:analyst-app")], "{trail}");
    let filed =
        node.client.post(node.url("/api/v1/reports")).bearer_auth(&analyst).json(&report(1)).send().await.unwrap();
    expect_problem(filed, StatusCode::FORBIDDEN).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_algorithms_are_refused_and_a_key_rotation_is_followed() {
    let provider = OidcProvider::start();
    let node = node_trusting(&provider).await;
    let good = provider.token("reporter-app").await;
    let situation = |token: String| node.client.get(node.url("/api/v1/situation")).bearer_auth(token).send();
    assert_eq!(situation(good.clone()).await.unwrap().status(), StatusCode::OK);
    // RS256 from the provider's RSA key is fine.
    assert_eq!(situation(provider.token("everything-app").await).await.unwrap().status(), StatusCode::OK);

    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let forged_header = |alg: &str| URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": kid, "typ": "JWT"}).to_string());
    // alg none with no signature.
    let none = format!("{}.{}.", forged_header("none"), parts[1]);
    expect_problem(situation(none).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    // HS256 keyed with the provider's public key: the classic confusion.
    let jwks: Value = reqwest::get(format!("{}/jwks", provider.issuer)).await.unwrap().json().await.unwrap();
    let public = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap().to_string();
    let input = format!("{}.{}", forged_header("HS256"), parts[1]);
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes()), input.as_bytes());
    let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    expect_problem(situation(hs).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    // A changed claim breaks the signature.
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["node-admin"]);
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    expect_problem(
        node.client.get(node.url("/api/v1/audit")).bearer_auth(tampered).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // The provider restarts with new keys: the node fetches them when a token names one, once.
    let port = provider.port;
    drop(provider);
    let rotated = OidcProvider::start_on(port);
    node.clock.advance(Duration::minutes(1));
    assert_eq!(situation(rotated.token("reporter-app").await).await.unwrap().status(), StatusCode::OK);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_through_the_provider_and_out_again() {
    let port = crate::support::free_port();
    let callback = format!("http://127.0.0.1:{port}/auth/callback");
    let provider = OidcProvider::start_with_callback(&callback);
    let mut auth = provider.auth_config();
    auth.client_id = Some("lagesbild-node".into());
    auth.client_secret = Some("lagesbild-node-secret".into());
    auth.redirect_url = Some(callback.clone());
    let node = TestNode::spawn_with(Backend::Sqlite, move |config| {
        config.api.listen = format!("127.0.0.1:{port}").parse().unwrap();
        config.auth = Some(auth);
    })
    .await;
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // Follow the redirects as a browser would, filling in the provider's forms as a person would.
    let mut url: reqwest::Url = node.url("/auth/login").parse().unwrap();
    let mut response = browser.get(url.clone()).send().await.unwrap();
    let mut callback_url = None;
    for _ in 0..20 {
        if response.status().is_redirection() {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            url = url.join(&location).unwrap();
            if url.as_str().starts_with(&callback) {
                callback_url = Some(url.clone());
                break;
            }
            response = browser.get(url.clone()).send().await.unwrap();
            continue;
        }
        assert_eq!(response.status(), StatusCode::OK, "at {url}");
        let page = response.text().await.unwrap();
        let form: Vec<(&str, &str)> = if page.contains(r#"name="prompt" value="login""#) {
            vec![("prompt", "login"), ("login", "coordinator-anna"), ("password", "whatever")]
        } else if page.contains(r#"name="prompt" value="consent""#) {
            vec![("prompt", "consent")]
        } else {
            panic!("unexpected page at {url}: {page}");
        };
        response = browser.post(url.clone()).form(&form).send().await.unwrap();
    }
    let callback_url = callback_url.expect("the provider never sent the browser back");
    assert!(callback_url.query().unwrap().contains("state="), "{callback_url}");
    // Another browser with the same link gets nothing: the sign-in belongs to the browser that began it.
    let other_browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    expect_problem(other_browser.get(callback_url.clone()).send().await.unwrap(), StatusCode::BAD_REQUEST).await;
    let back = browser.get(callback_url.clone()).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let cookie = back.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");

    let me: Value = browser.get(node.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["actor"], "user:coordinator-anna");
    assert_eq!(me["roles"], json!(["coordinator"]));
    let filed =
        browser.post(node.url("/api/v1/reports")).header("Origin", &node.base).json(&report(2)).send().await.unwrap();
    assert_eq!(filed.status(), StatusCode::CREATED);
    // A page elsewhere cannot use the cookie to change anything.
    let cross_site = browser
        .post(node.url("/api/v1/reports"))
        .header("Origin", "https://evil.example")
        .json(&report(2))
        .send()
        .await
        .unwrap();
    expect_problem(cross_site, StatusCode::FORBIDDEN).await;
    let no_origin = browser.post(node.url("/api/v1/reports")).json(&report(2)).send().await.unwrap();
    expect_problem(no_origin, StatusCode::FORBIDDEN).await;
    let audit = browser.get(node.url("/api/v1/audit")).send().await.unwrap();
    expect_problem(audit, StatusCode::FORBIDDEN).await;

    // The same callback again: its state was used up.
    expect_problem(browser.get(callback_url).send().await.unwrap(), StatusCode::BAD_REQUEST).await;
    // A made-up state is refused too.
    let forged = browser.get(node.url("/auth/callback?code=x&state=made-up")).send().await.unwrap();
    expect_problem(forged, StatusCode::BAD_REQUEST).await;

    let out = browser.post(node.url("/auth/logout")).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    expect_problem(browser.get(node.url("/api/v1/me")).send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reporter_changes_only_their_own_reports_and_a_coordinator_any() {
    let provider = OidcProvider::start();
    let node = node_trusting(&provider).await;
    let token = |client: &'static str| provider.token(client);
    let (reporter, other, coordinator) =
        (token("reporter-app").await, token("other-reporter-app").await, token("coordinator-app").await);
    let filed: Value = file_as(&node, &reporter).await;
    assert_eq!(filed["filed_by"], "client:reporter-app");
    let path = node.url(&format!("/api/v1/reports/{}", filed["id"].as_str().unwrap()));
    let put = |token: String, version: &'static str| {
        node.client.put(&path).bearer_auth(token).header("If-Match", version).json(&unnamed(2)).send()
    };
    let problem = expect_problem(put(other.clone(), "\"1\"").await.unwrap(), StatusCode::FORBIDDEN).await;
    assert!(problem["detail"].as_str().unwrap().contains("only the reports they filed"), "{problem}");
    assert_eq!(put(reporter, "\"1\"").await.unwrap().status(), StatusCode::OK);
    assert_eq!(put(coordinator.clone(), "\"2\"").await.unwrap().status(), StatusCode::OK);
    let retract = node.client.post(format!("{path}/retract")).bearer_auth(&other).send().await.unwrap();
    expect_problem(retract, StatusCode::FORBIDDEN).await;
    let retract = node.client.post(format!("{path}/retract")).bearer_auth(&coordinator).send().await.unwrap();
    assert_eq!(retract.status(), StatusCode::OK);
    node.stop().await;
}
