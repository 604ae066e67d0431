//! Envelopes partners sent that this node refused, newest first, with the reason: where an
//! operator looks when a partner says "we sent it" and the report is not in the picture. The
//! envelopes themselves stay in the database; the list gives their hashes.

use actix_web::HttpResponse;
use actix_web::web::Data;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, NODE_ADMINS};
use crate::http::problem::{ApiError, AuthProblems};

/// One refused envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    /// The partner whose connection it came on.
    pub partner: String,
    pub reason: String,
    /// SHA-256 (hex) of the envelope as it arrived; the audit trail names the same hash.
    pub envelope_hash: String,
}

/// The latest 500 refused envelopes, newest first.
#[utoipa::path(get, path = "/api/v1/dead-letters", tag = "partners",
    responses((status = 200, description = "Refused envelopes", body = Vec<DeadLetterView>), AuthProblems),
    security(("bearer" = ["node-admin"])))]
pub async fn dead_letters(caller: Caller, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(NODE_ADMINS)?;
    Ok(HttpResponse::Ok().json(latest(&state).await?))
}

/// The latest 500 refused envelopes, newest first.
pub(crate) async fn latest(state: &AppState) -> Result<Vec<DeadLetterView>, ApiError> {
    Ok(state
        .store
        .dead_letters(500)
        .await?
        .into_iter()
        .map(|(id, received_at, partner, reason, envelope_hash)| DeadLetterView {
            id,
            received_at,
            partner,
            reason,
            envelope_hash,
        })
        .collect())
}
