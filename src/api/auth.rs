//! Who is calling, and with which roles. A bearer JWT from the organisation's OpenID Connect
//! provider (`[auth]`), or, for demos and tests, the static `api.dev_token` (with every role),
//! which is refused when a provider is configured unless `auth.allow_dev_token` is set. The
//! caller's organisation is always the node's own: nothing a client sends can choose it.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest, http::header};
use ring::digest::{SHA256, digest};

use super::AppState;
use crate::auth::TokenError;
use crate::auth::session;
use crate::domain::OrgId;
use crate::domain::Role;
use crate::http::problem::ApiError;

/// Checks bearer tokens against the configured one.
#[derive(Clone)]
pub struct TokenCheck {
    /// SHA-256 of the configured token: comparing digests keeps the comparison's time independent of
    /// where the strings differ, and the token itself out of memory dumps of the state.
    expected: Option<[u8; 32]>,
}

impl TokenCheck {
    pub fn new(dev_token: Option<&str>) -> Self {
        Self { expected: dev_token.map(sha256) }
    }

    pub(crate) fn accepts(&self, presented: &str) -> bool {
        let Some(expected) = self.expected else { return false };
        let presented = sha256(presented);
        expected.iter().zip(presented.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCheck").field("configured", &self.expected.is_some()).finish()
    }
}

fn sha256(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, text.as_bytes()).as_ref());
    out
}

/// An authenticated caller of the user API, acting for `org`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org: OrgId,
    /// Who the audit trail names: `user:<sub>` or `client:<id>` from a token, or the static token.
    pub actor: String,
    pub roles: BTreeSet<Role>,
}

/// Who may call which route; each route names one of these, and the OpenAPI document lists the
/// same roles as the scopes of its security requirement.
pub const READERS: &[Role] = &[Role::Reporter, Role::Coordinator, Role::Analyst];
pub const WRITERS: &[Role] = &[Role::Reporter, Role::Coordinator];
pub const AGREEMENT_ADMINS: &[Role] = &[Role::AgreementAdmin];
pub const AGREEMENT_READERS: &[Role] = &[Role::AgreementAdmin, Role::Coordinator, Role::NodeAdmin];
pub const PREVIEWERS: &[Role] = &[Role::AgreementAdmin, Role::Coordinator];
pub const NODE_ADMINS: &[Role] = &[Role::NodeAdmin];
pub const SUBSCRIBERS: &[Role] = &[Role::Coordinator];
pub const REQUESTERS: &[Role] = &[Role::Coordinator];
pub const REQUEST_READERS: &[Role] = &[Role::Coordinator, Role::Analyst];
pub const SUBSCRIPTION_READERS: &[Role] = &[Role::Coordinator, Role::NodeAdmin];
pub const ANYONE: &[Role] = &Role::ALL;

impl Caller {
    /// Refuses (403) unless the caller holds one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if allowed.iter().any(|role| self.roles.contains(role)) {
            return Ok(());
        }
        let needed: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        let held: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::Forbidden(format!(
            "this needs the role {}; you have {}",
            needed.join(" or "),
            if held.is_empty() { "none".to_owned() } else { held.join(", ") }
        )))
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<Data<AppState>>().cloned();
        let header = req.headers().get(header::AUTHORIZATION).cloned();
        let session = req.cookie(super::login::SESSION_COOKIE).map(|c| c.value().to_owned());
        let unsafe_method = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
        let same_origin = from_this_node(req, state.as_ref().and_then(|s| s.login.as_ref()).map(|l| l.origin.as_str()));
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            match (header, session) {
                (None, Some(session)) => {
                    // A browser sends the cookie whoever made the page: a change must come from this node's.
                    if unsafe_method && !same_origin {
                        return Err(ApiError::Forbidden(
                            "a change made with a session cookie must come from this node's own pages".into(),
                        ));
                    }
                    from_session(&state, &session).await
                }
                (header, _) => authenticate(&state, header.as_ref()).await,
            }
        })
    }
}

/// Whether the browser says the request comes from one of this node's own pages: `Sec-Fetch-Site:
/// same-origin`, or an `Origin` that is this node's (the sign-in's configured origin, or the
/// scheme and host the request was sent to). A browser sets both headers itself; a page of
/// another site cannot.
pub fn from_this_node(req: &HttpRequest, configured_origin: Option<&str>) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site") == Some("same-origin") {
        return true;
    }
    let Some(origin) = header(header::ORIGIN.as_str()) else { return false };
    let info = req.connection_info();
    configured_origin == Some(origin) || origin == format!("{}://{}", info.scheme(), info.host())
}

/// A person signed in with a browser: the session the cookie names.
pub(crate) async fn from_session(state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    let session = state
        .store
        .session(&session::stored_hash(secret), state.clock.now())
        .await?
        .ok_or(ApiError::Unauthorized("the session has ended; sign in again"))?;
    Ok(Caller { org: state.node.org_id.clone(), actor: session.actor, roles: session::roles_of(&session.roles) })
}

async fn authenticate(state: &AppState, header: Option<&header::HeaderValue>) -> Result<Caller, ApiError> {
    let header = header.ok_or(ApiError::Unauthorized("send a bearer token: Authorization: Bearer <token>"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized("the Authorization header must be: Bearer <token>"))?;
    let org = state.node.org_id.clone();
    if state.tokens.accepts(token) {
        return Ok(Caller { org, actor: "token:dev".to_owned(), roles: Role::ALL.into_iter().collect() });
    }
    let Some(validator) = &state.validator else {
        return Err(ApiError::Unauthorized("the bearer token is not valid for this node"));
    };
    match validator.validate(token).await {
        Ok(principal) => Ok(Caller { org, actor: principal.subject, roles: principal.roles }),
        Err(TokenError::Unavailable(why)) => Err(ApiError::Unavailable(format!("cannot check the token now: {why}"))),
        Err(error) => {
            tracing::info!(%error, "refused a bearer token");
            Err(ApiError::Unauthorized("the bearer token is not valid for this node"))
        }
    }
}

/// Who the caller is and what it may do.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    #[schema(value_type = String)]
    pub org_id: OrgId,
    /// As the audit trail names you.
    pub actor: String,
    pub roles: Vec<Role>,
    /// What your roles allow, in words.
    pub may: Vec<&'static str>,
}

/// What each group of routes allows, for `/me`.
const PERMISSIONS: &[(&str, &[Role])] = &[
    ("read reports and the situation picture", READERS),
    ("file, update and retract reports", WRITERS),
    ("read agreements", AGREEMENT_READERS),
    ("preview what partners receive under an agreement", PREVIEWERS),
    ("propose, sign and revoke agreements", AGREEMENT_ADMINS),
    ("manage partners and read the audit trail", NODE_ADMINS),
    ("read webhook subscriptions and how their deliveries go", SUBSCRIPTION_READERS),
    ("register, rotate and delete webhook subscriptions", SUBSCRIBERS),
];

/// Who you are, and what you may do.
#[utoipa::path(get, path = "/api/v1/me", tag = "operations",
    responses((status = 200, description = "You", body = Me), crate::http::problem::AuthProblems),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> actix_web::HttpResponse {
    let may = PERMISSIONS.iter().filter(|(_, roles)| caller.require(roles).is_ok()).map(|(what, _)| *what).collect();
    actix_web::HttpResponse::Ok().json(Me {
        org_id: caller.org,
        actor: caller.actor,
        roles: caller.roles.into_iter().collect(),
        may,
    })
}
