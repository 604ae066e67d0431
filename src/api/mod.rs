//! The user API (`/api/v1`), its health and metrics endpoints and its documentation (`/docs`,
//! `/openapi.json`). Handlers parse and check input, call the domain for decisions and the store for
//! data, and map every failure to problem+json. They never build SQL or decide policy.

pub(crate) mod agreement_templates;
pub(crate) mod agreements;
pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod dead_letters;
pub mod docs;
mod evaluation;
mod frameworks;
mod health;
pub mod login;
pub(crate) mod partners;
pub(crate) mod persons;
pub(crate) mod release;
pub(crate) mod reports;
pub(crate) mod requests;
pub(crate) mod shares;
pub(crate) mod situation;
mod stream;
pub(crate) mod subscriptions;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};

pub use auth::TokenCheck;

use crate::clock::Clock;
use crate::domain::OrgId;
use crate::http::ApiError;
use crate::http::routes::{self, Path, on, path};
use crate::metrics::Metrics;
use crate::store::Store;

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
    /// Signs people in through the organisation's identity provider, when configured.
    pub login: Option<Arc<crate::auth::Login>>,
    /// Validates tokens from the organisation's identity provider, when one is configured.
    pub validator: Option<Arc<crate::auth::TokenValidator>>,
    /// The node's identity and partners' pins, when federation is configured.
    pub federation: Option<Arc<crate::federation::Federation>>,
    /// The picture's changes as they happen, for the live streams.
    pub feed: Arc<crate::picture_feed::PictureFeed>,
    /// Where webhooks may go, and how many subscriptions the node keeps.
    pub webhooks: crate::config::WebhooksSection,
    /// The outcome of the node's latest verification of its audit trail.
    pub audit: Arc<crate::audit_retention::Verification>,
    /// Who inside the organisation sees the persons in reports.
    pub persons: crate::domain::persons::PersonsAccess,
    /// Which of the organisation's reports wait for a second person's release.
    pub release: crate::domain::release::ReleaseRule,
}

/// Registers every route. Each path lists its methods; any other method gets a 405 problem.
pub fn routes(cfg: &mut ServiceConfig) {
    routes::register(cfg, paths());
    cfg.configure(docs::routes).default_service(web::to(not_found));
}

/// Every path and method registered by [`routes()`], besides the documentation's own (`/docs`,
/// `/openapi.json`): what a test holds against the OpenAPI document, so that no route escapes it.
pub fn registered_routes() -> Vec<(String, Method)> {
    routes::listing(paths())
}

/// The API's paths with their methods, in the order they are matched.
fn paths() -> Vec<Path> {
    vec![
        path("/api/v1/reports", vec![on(Method::POST, reports::file_report)]),
        path(
            "/api/v1/reports/{id}",
            vec![on(Method::GET, reports::get_report), on(Method::PUT, reports::update_report)],
        ),
        path("/api/v1/reports/{id}/retract", vec![on(Method::POST, reports::retract_report)]),
        path("/api/v1/reports/{id}/versions", vec![on(Method::GET, reports::list_versions)]),
        path("/api/v1/reports/{id}/shares", vec![on(Method::GET, shares::shares)]),
        path(
            "/api/v1/reports/{id}/release",
            vec![on(Method::GET, release::get_release), on(Method::POST, release::release_report)],
        ),
        path("/api/v1/reports/{id}/refuse-release", vec![on(Method::POST, release::refuse_release)]),
        path("/api/v1/reports/{id}/seen-by", vec![on(Method::GET, alerts::seen_by)]),
        path("/api/v1/reports/{id}/versions/{version}", vec![on(Method::GET, reports::get_version)]),
        path("/api/v1/alerts", vec![on(Method::GET, alerts::list)]),
        path("/api/v1/alerts/{id}/seen", vec![on(Method::POST, alerts::seen)]),
        path("/api/v1/requests", vec![on(Method::GET, requests::list), on(Method::POST, requests::create)]),
        path("/api/v1/requests/stream", vec![on(Method::GET, requests::stream)]),
        path("/api/v1/requests/{id}", vec![on(Method::GET, requests::get)]),
        path("/api/v1/requests/{id}/steps", vec![on(Method::POST, requests::take_step)]),
        path("/api/v1/situation", vec![on(Method::GET, situation::situation)]),
        path("/api/v1/situation/stream", vec![on(Method::GET, stream::stream)]),
        path(
            "/api/v1/subscriptions",
            vec![on(Method::GET, subscriptions::list), on(Method::POST, subscriptions::create)],
        ),
        path(
            "/api/v1/subscriptions/{id}",
            vec![on(Method::GET, subscriptions::get), on(Method::DELETE, subscriptions::delete)],
        ),
        path("/api/v1/subscriptions/{id}/rotate-secret", vec![on(Method::POST, subscriptions::rotate_secret)]),
        path("/api/v1/node", vec![on(Method::GET, partners::node)]),
        path("/api/v1/audit", vec![on(Method::GET, audit::audit)]),
        path("/api/v1/me", vec![on(Method::GET, auth::me)]),
        path("/api/v1/agreements", vec![on(Method::GET, agreements::list), on(Method::POST, agreements::propose)]),
        path("/api/v1/agreements/{id}", vec![on(Method::GET, agreements::get)]),
        path("/api/v1/agreements/{id}/sign", vec![on(Method::POST, agreements::sign)]),
        path("/api/v1/agreements/{id}/revoke", vec![on(Method::POST, agreements::revoke)]),
        path("/api/v1/agreements/{id}/decline", vec![on(Method::POST, agreements::decline)]),
        path("/api/v1/agreements/{id}/preview", vec![on(Method::GET, agreements::preview)]),
        path("/api/v1/agreements/{id}/evaluation", vec![on(Method::GET, evaluation::evaluation)]),
        path("/api/v1/agreements/{id}/document", vec![on(Method::GET, frameworks::document)]),
        path("/api/v1/frameworks", vec![on(Method::POST, frameworks::import)]),
        path("/api/v1/agreement-templates", vec![on(Method::GET, agreement_templates::list)]),
        path("/api/v1/agreement-templates/{name}/draft", vec![on(Method::POST, agreement_templates::draft)]),
        path(
            "/api/v1/partners",
            vec![on(Method::GET, partners::list_partners), on(Method::POST, partners::add_partner)],
        ),
        path("/api/v1/partners/{org}", vec![on(Method::GET, partners::get_partner)]),
        path("/api/v1/partners/{org}/block", vec![on(Method::POST, partners::block_partner)]),
        path("/api/v1/partners/{org}/unblock", vec![on(Method::POST, partners::unblock_partner)]),
        path("/api/v1/dead-letters", vec![on(Method::GET, dead_letters::dead_letters)]),
        path("/auth/login", vec![on(Method::GET, login::login)]),
        path("/auth/callback", vec![on(Method::GET, login::callback)]),
        path("/auth/logout", vec![on(Method::POST, login::logout)]),
        path("/healthz", vec![on(Method::GET, health::healthz)]),
        path("/readyz", vec![on(Method::GET, health::readyz)]),
        path("/metrics", vec![on(Method::GET, health::metrics)]),
    ]
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!("there is no resource at {}; the API is described at /docs/", req.path())))
}
