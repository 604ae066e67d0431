//! Four-eyes release over the API (issue 19): whether one of the organisation's reports waits for
//! a release, and a second person with the coordinator role releasing it (its envelopes for
//! partners are queued then, not before) or refusing it, with a reason. Both are audited naming
//! who wrote the version and who decided. The rule is [`ReleaseRule`], set by `[release]`.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, READERS};
use super::reports::{envelopes_for, own_report, wake_delivery};
use crate::domain::audit::AuditEvent;
use crate::domain::release::may_release;
use crate::domain::{Report, Role};
use crate::http::problem::{ApiError, AuthProblems, BodyProblems, NotFoundProblems, Problem};
use crate::store::{Hold, HoldRow, StoreError};

/// Who may release a held report (and never the person who wrote the version).
const RELEASERS: &[Role] = &[Role::Coordinator];

/// Whether `report`, just written by `caller`, waits for a release: by the organisation's rule, or
/// because an earlier version of it still does (or was refused).
pub(crate) fn hold_for(state: &AppState, caller: &Caller, report: &Report, earlier: Option<&HoldRow>) -> Option<Hold> {
    let reason = state.release.holds(report, &caller.roles).or_else(|| {
        earlier.filter(|e| e.holds()).map(|e| format!("an earlier version waits for a release ({})", e.reason))
    })?;
    Some(Hold { reason, author: caller.actor.clone() })
}

/// A report's release: whether it waits, why, who wrote it and who decided.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Release {
    /// `not_held` (it never waited: it went to partners as written), `held` (waiting for a
    /// coordinator), `refused` (stays in your own picture) or `released`.
    pub state: String,
    /// The version held, or decided on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who wrote that version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
}

impl Release {
    /// A report that never waited for a release.
    fn not_held() -> Self {
        Self { state: "not_held".into(), ..Self::default() }
    }
}

impl From<HoldRow> for Release {
    fn from(row: HoldRow) -> Self {
        Self {
            held_at: Some(row.held_at()),
            decided_at: row.decided_at_ms.map(crate::store::time),
            state: row.state,
            version: Some(row.version),
            reason: Some(row.reason),
            author: Some(row.author),
            decided_by: row.decided_by,
            decision: row.decision,
        }
    }
}

/// Why a held report is not released.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefuseRequest {
    /// Said to who wrote it: 1 to 1 000 characters, no control characters but line breaks.
    #[schema(example = "Names a minor; rewrite it without the name")]
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

/// Whether one of your organisation's reports waits for a coordinator's release.
#[utoipa::path(
    get, path = "/api/v1/reports/{id}/release", tag = "reports",
    params(("id" = String, Path, description = "The report's id")),
    responses(
        (status = 200, description = "Its release", body = Release),
        AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn get_release(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let report = own_report(&caller, &state, &id).await?;
    let release = state.store.hold_of(report.id).await?.map_or_else(Release::not_held, Release::from);
    Ok(HttpResponse::Ok().json(release))
}

/// Release a held report: its latest version goes to every partner it may reach. Only a
/// coordinator, and not the person who wrote the version.
#[utoipa::path(
    post, path = "/api/v1/reports/{id}/release", tag = "reports",
    params(("id" = String, Path, description = "The report's id")),
    responses(
        (status = 200, description = "Released; its envelopes are queued", body = Release),
        (status = 409, description = "It does not wait for a release (never did, or no longer)", body = Problem, content_type = "application/problem+json"),
        AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["coordinator"]))
)]
pub async fn release_report(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(RELEASERS)?;
    Ok(HttpResponse::Ok().json(release(&state, &caller, &id).await?))
}

/// Refuse to release a held report: it stays in your own picture only, until it is changed and
/// released. Only a coordinator, and not the person who wrote the version.
#[utoipa::path(
    post, path = "/api/v1/reports/{id}/refuse-release", tag = "reports",
    params(("id" = String, Path, description = "The report's id")),
    request_body = RefuseRequest,
    responses(
        (status = 200, description = "Refused", body = Release),
        (status = 409, description = "It does not wait for a release (never did, or no longer)", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["coordinator"]))
)]
pub async fn refuse_release(
    caller: Caller,
    state: Data<AppState>,
    req: actix_web::HttpRequest,
    id: Path<String>,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(RELEASERS)?;
    let request: RefuseRequest = crate::http::body::read_body(&req, payload).await?;
    Ok(HttpResponse::Ok().json(refuse(&state, &caller, &id, request.reason).await?))
}

/// Releases the held report `id` as `caller`: what the API and the console both do.
pub(crate) async fn release(state: &AppState, caller: &Caller, id: &str) -> Result<Release, ApiError> {
    let (report, hold) = decidable(state, caller, id).await?;
    let envelopes = envelopes_for(state, &report).await?;
    let event = decision_event("report.released", caller, &report).detail(format!(
        "version {} by {}, released by {}; {} envelope(s) queued",
        report.version,
        hold.author,
        caller.actor,
        envelopes.len()
    ));
    state.store.release(&report, &event, &envelopes, state.clock.now()).await.map_err(decided_meanwhile)?;
    wake_delivery(state, &envelopes);
    tracing::info!(report = %report.id, version = %report.version, "held report released");
    Ok(state.store.hold_of(report.id).await?.ok_or_else(never_held)?.into())
}

/// Refuses to release the held report `id` as `caller`, for `reason`.
pub(crate) async fn refuse(state: &AppState, caller: &Caller, id: &str, reason: String) -> Result<Release, ApiError> {
    crate::http::input::check_reason(Some(&reason))?;
    let (report, hold) = decidable(state, caller, id).await?;
    let event = decision_event("report.release_refused", caller, &report)
        .detail(format!("version {} by {}, refused by {}", report.version, hold.author, caller.actor));
    state.store.refuse_release(&report, &reason, &event, state.clock.now()).await.map_err(decided_meanwhile)?;
    Ok(state.store.hold_of(report.id).await?.ok_or_else(never_held)?.into())
}

/// The report `id` and its hold, if `caller` may decide on it now.
async fn decidable(state: &AppState, caller: &Caller, id: &str) -> Result<(Report, HoldRow), ApiError> {
    let report = own_report(caller, state, id).await?;
    let hold = state.store.hold_of(report.id).await?.ok_or_else(never_held)?;
    may_release(&caller.actor, &caller.roles, &hold.author).map_err(|why| ApiError::Forbidden(why.to_owned()))?;
    if hold.state != "held" || hold.version != i64::from(report.version.get()) {
        return Err(ApiError::Conflict(format!(
            "version {} does not wait for a release: its release is {}",
            report.version, hold.state
        )));
    }
    Ok((report, hold))
}

fn decision_event(event: &str, caller: &Caller, report: &Report) -> AuditEvent {
    AuditEvent::new(event, &caller.actor).report(report.id)
}

fn never_held() -> ApiError {
    ApiError::Conflict("this report never waited for a release: it went to partners as written".into())
}

fn decided_meanwhile(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict => {
            ApiError::Conflict("someone decided on this version, or changed it, at the same moment".into())
        }
        other => other.into(),
    }
}
