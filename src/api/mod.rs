//! The user API (`/api/v1`), its health and metrics endpoints and its documentation (`/docs`,
//! `/openapi.json`). Handlers parse and check input, call the domain for decisions and the store for
//! data, and map every failure to problem+json. They never build SQL or decide policy.

mod agreements;
mod audit;
pub(crate) mod auth;
mod body;
mod dead_letters;
pub mod docs;
mod health;
mod input;
pub mod login;
mod observe;
mod partners;
pub mod problem;
mod reports;
mod shares;
mod situation;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse, Resource};

pub use agreements::refused as agreement_refused;
pub use auth::TokenCheck;
pub use body::{BodyLimit, StrictJson};
pub use observe::observe;

use crate::clock::Clock;
use crate::domain::OrgId;
use crate::metrics::Metrics;
use crate::store::Store;
use problem::ApiError;

/// The default body limit, used only if the state is missing (it never is in a running node).
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// Who this node is, as the API needs to know.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub org_id: OrgId,
    pub name: String,
}

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub node: NodeIdentity,
    pub tokens: TokenCheck,
    pub metrics: Arc<Metrics>,
    pub body_limit: usize,
    /// Signs people in through the organisation's identity provider, when configured.
    pub login: Option<Arc<crate::auth::Login>>,
    /// Validates tokens from the organisation's identity provider, when one is configured.
    pub validator: Option<Arc<crate::auth::TokenValidator>>,
    /// The node's identity and partners' pins, when federation is configured.
    pub federation: Option<Arc<crate::federation::Federation>>,
}

/// Registers every route. Each resource lists its methods; any other method gets a 405 problem.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .service(resource("/reports").route(web::post().to(reports::file_report)))
            .service(
                resource("/reports/{id}")
                    .route(web::get().to(reports::get_report))
                    .route(web::put().to(reports::update_report)),
            )
            .service(resource("/reports/{id}/retract").route(web::post().to(reports::retract_report)))
            .service(resource("/reports/{id}/versions").route(web::get().to(reports::list_versions)))
            .service(resource("/reports/{id}/shares").route(web::get().to(shares::shares)))
            .service(resource("/reports/{id}/versions/{version}").route(web::get().to(reports::get_version)))
            .service(resource("/situation").route(web::get().to(situation::situation)))
            .service(resource("/node").route(web::get().to(partners::node)))
            .service(resource("/audit").route(web::get().to(audit::audit)))
            .service(resource("/me").route(web::get().to(auth::me)))
            .service(
                resource("/agreements")
                    .route(web::get().to(agreements::list))
                    .route(web::post().to(agreements::propose)),
            )
            .service(resource("/agreements/{id}").route(web::get().to(agreements::get)))
            .service(resource("/agreements/{id}/sign").route(web::post().to(agreements::sign)))
            .service(resource("/agreements/{id}/revoke").route(web::post().to(agreements::revoke)))
            .service(resource("/agreements/{id}/preview").route(web::get().to(agreements::preview)))
            .service(
                resource("/partners")
                    .route(web::get().to(partners::list_partners))
                    .route(web::post().to(partners::add_partner)),
            )
            .service(resource("/partners/{org}").route(web::get().to(partners::get_partner)))
            .service(resource("/partners/{org}/block").route(web::post().to(partners::block_partner)))
            .service(resource("/partners/{org}/unblock").route(web::post().to(partners::unblock_partner)))
            .service(resource("/dead-letters").route(web::get().to(dead_letters::dead_letters))),
    )
    .service(web::resource("/auth/login").route(web::get().to(login::login)))
    .service(web::resource("/auth/callback").route(web::get().to(login::callback)))
    .service(web::resource("/auth/logout").route(web::post().to(login::logout)))
    .service(web::resource("/healthz").route(web::get().to(health::healthz)))
    .service(web::resource("/readyz").route(web::get().to(health::readyz)))
    .service(web::resource("/metrics").route(web::get().to(health::metrics)))
    .configure(docs::routes)
    .default_service(web::to(not_found));
}

/// A resource that answers 405 (as a problem) to any method it has no route for.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!("there is no resource at {}; the API is described at /docs/", req.path())))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.method() == Method::OPTIONS {
        return Ok(HttpResponse::NoContent().finish());
    }
    Err(ApiError::MethodNotAllowed(format!("{} is not allowed on {}", req.method(), req.path())))
}
