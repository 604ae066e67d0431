//! The audit trail for node administrators: who did what when, by ids and hashes, filtered and
//! paged. Entries hold no report contents; reading the trail is itself not recorded (it would
//! grow the trail with every look at it).

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Caller, NODE_ADMINS};
use crate::domain::ValidationErrors;
use crate::domain::audit::AuditEntry;
use crate::http::input::{parse_field, parse_time, query};
use crate::http::problem::{ApiError, AuthProblems, Problem};
use crate::store::AuditQuery;

/// Filters of the audit trail.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Entries at or before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// An event name, such as `report.created` or `partner.blocked`.
    event: Option<String>,
    partner: Option<String>,
    report: Option<String>,
    agreement: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<i64>,
    /// Entries per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One page of the audit trail, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// The audit trail: every report filed, changed, retracted or read, every partner and agreement
/// change, every refusal, by ids and hashes.
#[utoipa::path(get, path = "/api/v1/audit", tag = "operations",
    params(AuditParams),
    responses((status = 200, description = "A page of entries", body = AuditPage),
        (status = 422, description = "A filter is invalid", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["node-admin"])))]
pub async fn audit(
    caller: Caller,
    state: Data<AppState>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(NODE_ADMINS)?;
    let params: AuditParams = query(&req)?;
    let mut errors = ValidationErrors::new();
    let since = parse_field(&mut errors, "since", params.since, parse_time);
    let until = parse_field(&mut errors, "until", params.until, parse_time);
    let limit = params.limit.unwrap_or(100);
    errors.check((1..=1000).contains(&limit), "limit", "must be between 1 and 1000");
    errors.into_result(())?;
    let query = AuditQuery {
        since,
        until,
        event: params.event,
        partner: params.partner,
        report: params.report,
        agreement: params.agreement,
        after: params.after.unwrap_or(0),
        limit,
    };
    Ok(HttpResponse::Ok().json(page(&state, query).await?))
}

/// One page of the trail for `query` (its `limit` entries at most), and where the next begins.
pub(crate) async fn page(state: &AppState, mut query: AuditQuery) -> Result<AuditPage, ApiError> {
    let limit = query.limit;
    query.limit = limit + 1;
    let mut entries = state.store.audit_entries(&query).await?;
    let next_after = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AuditPage { entries, next_after })
}
