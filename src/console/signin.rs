//! Getting into the console and out of it. A node with the organisation's identity provider signs
//! people in there (`/auth/login`); a node that accepts its development token takes it on the
//! sign-in page, with the roles the person chooses to act in (fewer than the token's, to see the
//! console as a reporter would); a single-use code (the links the demo prints) opens a session
//! once. The token itself never travels in a link. Also here: the language switch, signing out,
//! and the page that says what the signed-in person may and may not do.

use std::collections::BTreeSet;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::Duration;

use super::ConsoleSettings;
use super::form::FormData;
use super::i18n::{LANG_COOKIE, Lang, Texts};
use super::page::{Chrome, ConsoleError, Section, html, permissions, see_other};
use super::viewer::Viewer;
use crate::api::AppState;
use crate::api::auth::from_this_node;
use crate::api::login::{SESSION_COOKIE, end_session, session_cookie, session_cookie_removal};
use crate::auth::session;
use crate::domain::Role;
use crate::domain::audit::AuditEvent;

/// Who the audit trail names for a session opened with the development token or a code.
const DEV_ACTOR: &str = "token:dev";

/// How long a session opened here lasts without an identity provider's setting.
const DEFAULT_SESSION: Duration = Duration::hours(8);

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    chrome: Chrome,
    next: &'a str,
    provider: bool,
    dev_token: bool,
    message: Option<&'static str>,
    roles: Vec<(&'static str, &'static str)>,
}

/// `GET /console/signin`: the sign-in page, or, with `?code=`, a single-use code redeemed.
pub async fn page(
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let lang = Lang::of(&req);
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let value = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let next = safe_next(value("next"));
    let mut message = None;
    if let Some(code) = value("code") {
        let now = state.clock.now();
        match session::redeem_code(&state.store, code, now).await.map_err(|e| ConsoleError::from_api(e.into(), lang))? {
            Some(roles) => return open_session(&state, &settings, &roles, "code", &next).await,
            None => message = Some(lang.texts().signin_code_used),
        }
    }
    let status = if message.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    render(&state, &settings, lang, &next, message, status)
}

/// `POST /console/signin`: the development token, and the roles to act in.
pub async fn with_token(
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let lang = Lang::of(&req);
    let t = lang.texts();
    if !settings.dev_sign_in {
        return Err(ConsoleError::page(StatusCode::NOT_FOUND, lang, t.signin_unavailable));
    }
    // No session yet, so no form token: the browser must say the form is this node's own.
    if !from_this_node(&req, state.login.as_ref().map(|l| l.origin.as_str())) {
        return Err(ConsoleError::page(StatusCode::FORBIDDEN, lang, t.form_expired));
    }
    let form = FormData::read(&req, payload).await.map_err(|e| ConsoleError::from_api(e, lang))?;
    let next = safe_next(form.optional("next").as_deref());
    if !state.tokens.accepts(form.text("token")) {
        return render(&state, &settings, lang, &next, Some(t.signin_wrong_token), StatusCode::UNAUTHORIZED);
    }
    let roles: BTreeSet<Role> = form.all("role").iter().filter_map(|r| r.parse().ok()).collect();
    if roles.is_empty() {
        return render(&state, &settings, lang, &next, Some(t.signin_pick_role), StatusCode::UNPROCESSABLE_ENTITY);
    }
    open_session(&state, &settings, &roles, "token", &next).await
}

/// Opens a session for the development token's holder with `roles`, and goes on to `next`.
async fn open_session(
    state: &AppState,
    settings: &ConsoleSettings,
    roles: &BTreeSet<Role>,
    how: &str,
    next: &str,
) -> Result<HttpResponse, ConsoleError> {
    let now = state.clock.now();
    let lifetime = state.login.as_ref().map_or(DEFAULT_SESSION, |l| l.session_lifetime);
    let secret = session::open(&state.store, DEV_ACTOR, roles, now, lifetime)
        .await
        .map_err(|e| ConsoleError::internal(e.to_string()))?;
    let signed_in =
        AuditEvent::new("auth.signed_in", DEV_ACTOR).detail(format!("console, {how}: {}", session::role_names(roles)));
    state.store.record_audit(&signed_in, now).await.map_err(|e| ConsoleError::internal(e.to_string()))?;
    let mut response = see_other(next);
    response
        .add_cookie(&session_cookie(secret, settings.secure_cookies, lifetime))
        .map_err(|e| ConsoleError::internal(e.to_string()))?;
    Ok(response)
}

fn render(
    state: &AppState,
    settings: &ConsoleSettings,
    lang: Lang,
    next: &str,
    message: Option<&'static str>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let t = lang.texts();
    let page = SignInPage {
        chrome: Chrome::signed_out(
            lang,
            &state.node.name,
            format!("/console/signin?next={}", super::page::url_encode(next)),
        ),
        next,
        provider: state.login.is_some(),
        dev_token: settings.dev_sign_in,
        message,
        roles: Role::ALL.iter().map(|r| (r.as_str(), t.role(*r))).collect(),
    };
    html(status, &page)
}

/// Where to go after signing in or switching language: a console page of this node, never
/// another site (`//elsewhere` or `/\elsewhere` are not paths of this node).
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with("/console") && !path.contains("//") && !path.contains('\\') => path.to_owned(),
        _ => "/console/".to_owned(),
    }
}

/// `POST /console/signout`.
pub async fn sign_out(
    viewer: Viewer,
    state: Data<AppState>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    viewer.form(&Role::ALL, &req, payload).await?;
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        end_session(&state, cookie.value()).await.map_err(|e| viewer.fail(e))?;
    }
    let mut response = see_other("/console/signin");
    response.add_cookie(&session_cookie_removal()).map_err(|e| ConsoleError::internal(e.to_string()))?;
    Ok(response)
}

/// `GET /console/lang/{sv|en}?next=`: keeps the language, and goes back.
pub async fn switch_language(lang: Path<String>, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let Some(chosen) = Lang::parse(&lang) else {
        let lang = Lang::of(&req);
        return Err(ConsoleError::page(StatusCode::NOT_FOUND, lang, lang.texts().page_missing));
    };
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let next = safe_next(query.iter().find(|(k, _)| k == "next").map(|(_, v)| v.as_str()));
    let cookie = Cookie::build(LANG_COOKIE, chosen.code())
        .path("/")
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    let mut response = see_other(&next);
    response.add_cookie(&cookie).map_err(|e| ConsoleError::internal(e.to_string()))?;
    Ok(response)
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    chrome: Chrome,
    may: Vec<&'static str>,
    may_not: Vec<(&'static str, String)>,
}

/// `GET /console/me`: what the signed-in person may do, and what not, and which role would.
pub async fn me(viewer: Viewer) -> Result<HttpResponse, ConsoleError> {
    let t: &Texts = viewer.lang.texts();
    let (mut may, mut may_not) = (Vec::new(), Vec::new());
    for (what, roles) in permissions(t) {
        if viewer.may(roles) {
            may.push(what);
        } else {
            may_not.push((what, t.roles_or(roles)));
        }
    }
    html(StatusCode::OK, &MePage { chrome: viewer.chrome(Section::Me), may, may_not })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_console_path_of_this_node_is_a_place_to_go_next() {
        assert_eq!(safe_next(Some("/console/agreements?x=1")), "/console/agreements?x=1");
        for elsewhere in
            ["https://evil.example/", "//evil.example/console", "/console//evil", "/console/\\evil", "/docs/"]
        {
            assert_eq!(safe_next(Some(elsewhere)), "/console/", "{elsewhere}");
        }
        assert_eq!(safe_next(None), "/console/");
    }
}
