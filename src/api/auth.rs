//! Who is calling. Until the node signs people in through the organisation's identity provider, the
//! user API accepts one static bearer token from the configuration (`api.dev_token`); without one
//! configured, every `/api/v1` route refuses. The caller's organisation is always the node's own:
//! nothing a client sends can choose it.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest, http::header};
use ring::digest::{SHA256, digest};

use super::AppState;
use super::problem::ApiError;
use crate::domain::OrgId;

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

    fn accepts(&self, presented: &str) -> bool {
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
    /// Who the audit trail names: until people sign in through the organisation's identity
    /// provider, the static token itself.
    pub actor: String,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let state =
        req.app_data::<Data<AppState>>().ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("send a bearer token: Authorization: Bearer <token>"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized("the Authorization header must be: Bearer <token>"))?;
    if !state.tokens.accepts(token) {
        return Err(ApiError::Unauthorized("the bearer token is not valid for this node"));
    }
    Ok(Caller { org: state.node.org_id.clone(), actor: "token:dev".to_owned() })
}
