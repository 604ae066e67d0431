//! The browser's sign-in: `/auth/login` sends a person to the organisation's provider, the
//! provider sends them back to `/auth/callback`, and a session cookie (HttpOnly, SameSite=Strict,
//! Secure over https) follows; `/auth/logout` ends it.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use crate::auth::LoginError;
use crate::domain::audit::AuditEvent;
use crate::http::problem::{ApiError, Problem};

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "lagesbild_session";
/// The cookie that ties a sign-in in progress to the browser that began it.
const LOGIN_COOKIE: &str = "lagesbild_login";

/// What the provider sends back.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Start signing in: redirects to the organisation's identity provider.
#[utoipa::path(get, path = "/auth/login", tag = "sign-in",
    responses((status = 303, description = "To the identity provider"),
        (status = 404, description = "Sign-in for people is not configured on this node", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The identity provider cannot be reached", body = Problem, content_type = "application/problem+json")))]
pub async fn login(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let login = state.login.as_ref().ok_or_else(not_configured)?;
    let (url, browser) = login.begin(&state.store, state.clock.now()).await.map_err(refused)?;
    // Lax, so it comes back on the provider's top-level redirect to the callback.
    let cookie = Cookie::build(LOGIN_COOKIE, browser)
        .path("/auth/callback")
        .http_only(true)
        .secure(login.secure_cookie)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::minutes(10))
        .finish();
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, url)).cookie(cookie).finish())
}

/// Where the identity provider sends the person back; sets the session cookie.
#[utoipa::path(get, path = "/auth/callback", tag = "sign-in", params(Callback),
    responses((status = 303, description = "Signed in; to the console", headers(("Set-Cookie" = String, description = "The session"))),
        (status = 400, description = "The sign-in failed or was refused", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Sign-in for people is not configured on this node", body = Problem, content_type = "application/problem+json")))]
pub async fn callback(
    state: Data<AppState>,
    query: Query<Callback>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let login = state.login.as_ref().ok_or_else(not_configured)?;
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or("");
        return Err(ApiError::MalformedBody(format!("the identity provider refused the sign-in: {error} {detail}")));
    }
    let (Some(code), Some(sign_in)) = (&query.code, &query.state) else {
        return Err(ApiError::MalformedBody("the callback needs code and state".into()));
    };
    let now = state.clock.now();
    let browser = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_owned()).unwrap_or_default();
    let (secret, session) = login.complete(&state.store, code, sign_in, &browser, now).await.map_err(refused)?;
    state.store.record_audit(&AuditEvent::new("auth.signed_in", &session.actor).detail(&session.roles), now).await?;
    let cookie = session_cookie(secret, login.secure_cookie, login.session_lifetime);
    let mut used = Cookie::build(LOGIN_COOKIE, "").path("/auth/callback").finish();
    used.make_removal();
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/console/")).cookie(cookie).cookie(used).finish())
}

/// The cookie of a session however it was opened: HttpOnly (no script reads it), SameSite=Strict
/// (no other site's page sends it), Secure where the node is reached over https.
pub fn session_cookie(secret: String, secure: bool, lifetime: chrono::Duration) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, secret)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(lifetime.num_seconds()))
        .finish()
}

/// The cookie that ends the session in the browser.
pub fn session_cookie_removal() -> Cookie<'static> {
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").http_only(true).same_site(SameSite::Strict).finish();
    gone.make_removal();
    gone
}

/// End the session.
#[utoipa::path(post, path = "/auth/logout", tag = "sign-in",
    responses((status = 204, description = "Signed out (or was not signed in)")))]
pub async fn logout(state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        end_session(&state, cookie.value()).await?;
    }
    Ok(HttpResponse::NoContent().cookie(session_cookie_removal()).finish())
}

/// Ends the session with this cookie secret, if it is open, and records who signed out.
pub async fn end_session(state: &AppState, secret: &str) -> Result<(), ApiError> {
    let hash = crate::auth::session::stored_hash(secret);
    let now = state.clock.now();
    if let Some(session) = state.store.session(&hash, now).await? {
        state.store.record_audit(&AuditEvent::new("auth.signed_out", &session.actor), now).await?;
    }
    state.store.delete_session(&hash).await?;
    Ok(())
}

fn not_configured() -> ApiError {
    ApiError::NotFound("sign-in for people is not configured on this node (auth.client_id)".into())
}

fn refused(error: LoginError) -> ApiError {
    match error {
        LoginError::Provider(why) => ApiError::Unavailable(format!("the identity provider cannot be reached: {why}")),
        LoginError::Store(e) => e.into(),
        other => ApiError::MalformedBody(other.to_string()),
    }
}
