//! Liveness, readiness and metrics for the operator's orchestrator and Prometheus. They need no token
//! and reveal no report content: readiness says only whether the database answers and is migrated;
//! metrics hold counts and latencies by route, never ids or contents.

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::http::problem::{ApiError, Problem};
use crate::metrics::Facts;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The node can serve requests: the database answers and its migrations are applied.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready; the detail says why", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.store.check_ready().await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

/// Prometheus metrics (OpenMetrics text): requests and latencies by route and status, reports
/// stored, envelopes queued, partners' last contact, refused envelopes, the audit trail's latest
/// verification, and when the node's certificate and overlapping pins end.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", body = String, content_type = "application/openmetrics-text"))
)]
pub async fn metrics(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let counts = state.store.count_reports().await?;
    let deliveries = state.store.delivery_states().await?;
    let partners = state.store.partners().await?;
    let keys = state.federation.as_ref().map(|f| &f.keys);
    let own_overlaps = keys
        .into_iter()
        .flat_map(|k| k.card.tls_pins.iter().filter_map(|p| p.until))
        .map(|until| (state.node.org_id.to_string(), until));
    let partner_overlaps = partners
        .iter()
        .flat_map(|p| p.pins.iter().filter_map(move |(_, until)| until.map(|u| (p.org_id.to_string(), u))));
    let facts = Facts {
        counts: &counts,
        deliveries: &deliveries,
        partners: &partners,
        dead_letters: state.store.dead_letters_so_far().await?,
        audit: state.audit.latest(),
        certificate_expiry: keys.and_then(|k| k.tls.not_after()),
        pin_overlaps: own_overlaps.chain(partner_overlaps).collect(),
    };
    let text = state.metrics.render(&facts).map_err(|e| ApiError::Internal(format!("metrics: {e}")))?;
    Ok(HttpResponse::Ok().content_type("application/openmetrics-text; version=1.0.0; charset=utf-8").body(text))
}
