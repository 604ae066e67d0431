//! The sharing ledger of one report: to whom each version went, under which agreement, the hash of
//! what was sent, and whether the partner acknowledged it. Read from the outbox, which keeps every
//! envelope after delivery for exactly this question.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, READERS};
use super::reports::own_report;
use crate::http::problem::{ApiError, AuthProblems, NotFoundProblems};
use crate::store::OutboxEntry;

/// One envelope of one version to one partner.
#[derive(Debug, Serialize, ToSchema)]
pub struct Share {
    pub version: i64,
    pub recipient: String,
    pub agreement: String,
    /// SHA-256 (hex) of what the partner receives: the view, as signed.
    pub content_hash: String,
    /// `queued` (not yet acknowledged), `delivered` (acknowledged), `refused` (permanently, see
    /// `last_error`) or `cancelled` (its agreement ended first).
    pub state: String,
    pub acknowledged: bool,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub queued_at: DateTime<Utc>,
    /// When it was acknowledged, refused or cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<DateTime<Utc>>,
}

impl From<OutboxEntry> for Share {
    fn from(e: OutboxEntry) -> Self {
        Self {
            version: e.version,
            acknowledged: e.state == "delivered",
            recipient: e.recipient,
            agreement: e.agreement,
            content_hash: e.content_hash,
            state: e.state,
            attempts: e.attempts,
            last_error: e.last_error,
            queued_at: e.created_at,
            settled_at: e.settled_at,
        }
    }
}

/// The sharing ledger of one of your organisation's reports, oldest envelope first.
#[utoipa::path(
    get, path = "/api/v1/reports/{id}/shares", tag = "reports",
    params(("id" = String, Path, description = "The report's id")),
    responses(
        (status = 200, description = "Every envelope of every version", body = Vec<Share>),
        AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn shares(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let report = own_report(&caller, &state, &id).await?;
    let ledger: Vec<Share> = state.store.shares_of(report.id).await?.into_iter().map(Share::from).collect();
    Ok(HttpResponse::Ok().json(ledger))
}
