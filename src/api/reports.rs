//! Filing, reading, updating and retracting the organisation's own reports. A report is only ever
//! visible here to its origin organisation; any other id answers 404, exactly as an id that does not
//! exist, so ids leak nothing. Updates need `If-Match` with the version they change.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, READERS, WRITERS};
use super::persons::{shown, shown_one};
use super::release;
use crate::domain::audit::AuditEvent;
use crate::domain::cap;
use crate::domain::persons::NamesPersons;
use crate::domain::report::RevisionError;
use crate::domain::{Report, ReportContent, ReportId, Version};
use crate::federation::sharing;
use crate::http::problem::{ApiError, AuthProblems, BodyProblems, NotFoundProblems, Problem, VersionProblems};
use crate::store::{Hold, QueuedEnvelope};

/// Why a report is withdrawn.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetractRequest {
    /// Shown to partners that received the report: 1 to 1 000 characters, no control characters
    /// but line breaks.
    #[schema(example = "Filed twice; see the other report")]
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub reason: Option<String>,
}

/// File a new situation report, in JSON or as a CAP 1.2 alert (`Content-Type: application/cap+xml`;
/// an alert from another authority's system becomes a report here).
#[utoipa::path(
    post, path = "/api/v1/reports", tag = "reports",
    request_body(content(
        (ReportContent = "application/json"),
        (String = "application/cap+xml"),
    )),
    responses(
        (status = 201, description = "Filed as version 1", body = Report,
            headers(("Location" = String, description = "The report's URL"), ("ETag" = String, description = "The version, for If-Match"))),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = ["reporter", "coordinator"]))
)]
pub async fn file_report(
    caller: Caller,
    state: Data<AppState>,
    req: actix_web::HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let content: ReportContent = if is_cap(req.headers().get(header::CONTENT_TYPE)) {
        cap::content_of(&crate::http::body::read_bytes(&req, payload).await?)?
    } else {
        crate::http::body::read_body(&req, payload).await?
    };
    let report = file(&state, &caller, content).await?;
    let report = state.persons.shown_to(&caller.roles, report);
    Ok(with_etag(HttpResponse::Created(), &report)
        .insert_header((header::LOCATION, format!("/api/v1/reports/{}", report.id)))
        .json(&report))
}

/// Read the latest version of one of your organisation's reports, in JSON or, with
/// `Accept: application/cap+xml`, as a CAP 1.2 alert (without persons or actions).
#[utoipa::path(
    get, path = "/api/v1/reports/{id}", tag = "reports",
    params(("id" = String, Path, description = "The report's id")),
    responses(
        (status = 200, description = "The latest version", content(
            (Report = "application/json"),
            (String = "application/cap+xml"),
        ), headers(("ETag" = String, description = "The version, for If-Match"))),
        AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn get_report(
    caller: Caller,
    state: Data<AppState>,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let report = own_report(&caller, &state, &id).await?;
    let shown = state.persons.show(&caller.roles, vec![report]);
    let persons = if shown.persons_read.is_empty() { "" } else { ", with its persons" };
    let report = shown.reports.into_iter().next().ok_or_else(no_such_report)?;
    let read = AuditEvent::new("report.read", &caller.actor)
        .report(report.id)
        .detail(format!("version {}{persons}", report.version));
    state.store.record_audit(&read, state.clock.now()).await?;
    if is_cap(req.headers().get(header::ACCEPT)) {
        return Ok(with_etag(HttpResponse::Ok(), &report).content_type(cap::MEDIA_TYPE).body(cap::alert_of(&report)));
    }
    Ok(with_etag(HttpResponse::Ok(), &report).json(&report))
}

/// Whether a header (Content-Type or Accept) names CAP.
fn is_cap(value: Option<&HeaderValue>) -> bool {
    value.and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(cap::MEDIA_TYPE))
}

/// Replace a report's content with a new version. `If-Match` must name the version you changed.
#[utoipa::path(
    put, path = "/api/v1/reports/{id}", tag = "reports",
    params(
        ("id" = String, Path, description = "The report's id"),
        ("If-Match" = String, Header, pattern = r#"^(W/)?"?[1-9][0-9]{0,8}"?$"#, description = "The version being changed, as served in ETag, e.g. \"1\""),
    ),
    request_body = ReportContent,
    responses(
        (status = 200, description = "Stored as the next version", body = Report, headers(("ETag" = String, description = "The new version"))),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems, NotFoundProblems, VersionProblems,
    ),
    security(("bearer" = ["reporter", "coordinator"]))
)]
pub async fn update_report(
    caller: Caller,
    state: Data<AppState>,
    req: HttpRequest,
    id: Path<String>,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let content: ReportContent = crate::http::body::read_body(&req, payload).await?;
    let expected = if_match(&req)?.ok_or(ApiError::PreconditionRequired)?;
    let next = update(&state, &caller, &id, expected, content).await?;
    let next = state.persons.shown_to(&caller.roles, next);
    Ok(with_etag(HttpResponse::Ok(), &next).json(&next))
}

/// Withdraw a report. It leaves the situation picture; its versions stay readable to you.
#[utoipa::path(
    post, path = "/api/v1/reports/{id}/retract", tag = "reports",
    params(
        ("id" = String, Path, description = "The report's id"),
        ("If-Match" = Option<String>, Header, pattern = r#"^(W/)?"?[1-9][0-9]{0,8}"?$"#, description = "If given, the version being retracted"),
    ),
    request_body(content = Option<RetractRequest>, description = "Optional: why"),
    responses(
        (status = 200, description = "The retraction, stored as the next version", body = Report),
        BodyProblems, AuthProblems, NotFoundProblems, VersionProblems,
    ),
    security(("bearer" = ["reporter", "coordinator"]))
)]
pub async fn retract_report(
    caller: Caller,
    state: Data<AppState>,
    req: HttpRequest,
    id: Path<String>,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let request: RetractRequest = crate::http::body::read_optional_body(&req, payload).await?;
    let next = retract(&state, &caller, &id, if_match(&req)?, request.reason).await?;
    let next = state.persons.shown_to(&caller.roles, next);
    Ok(with_etag(HttpResponse::Ok(), &next).json(&next))
}

/// Every version of one of your organisation's reports, oldest first.
#[utoipa::path(
    get, path = "/api/v1/reports/{id}/versions", tag = "reports",
    params(("id" = String, Path, description = "The report's id")),
    responses(
        (status = 200, description = "All versions, oldest first", body = Vec<Report>),
        AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn list_versions(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let id = parse_id(&id)?;
    let versions = state.store.report_versions(&caller.org, id).await?;
    if versions.is_empty() {
        return Err(no_such_report());
    }
    Ok(HttpResponse::Ok().json(shown(&state, &caller.actor, &caller.roles, versions).await?))
}

/// One version of one of your organisation's reports.
#[utoipa::path(
    get, path = "/api/v1/reports/{id}/versions/{version}", tag = "reports",
    params(("id" = String, Path, description = "The report's id"), ("version" = u32, Path, description = "The version, from 1")),
    responses(
        (status = 200, description = "That version", body = Report),
        AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn get_version(
    caller: Caller,
    state: Data<AppState>,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let (id, version) = path.into_inner();
    let id = parse_id(&id)?;
    let version = version.parse().ok().and_then(Version::new).ok_or_else(no_such_report)?;
    let versions = state.store.report_versions(&caller.org, id).await?;
    let report = versions.into_iter().find(|r| r.version == version).ok_or_else(no_such_report)?;
    Ok(HttpResponse::Ok().json(shown_one(&state, &caller.actor, &caller.roles, report).await?))
}

/// Files `content` as version 1 of a new report of the caller's organisation, with its envelopes
/// to every partner it may reach, and audits it: what the API and the console both do.
pub(crate) async fn file(state: &AppState, caller: &Caller, content: ReportContent) -> Result<Report, ApiError> {
    caller.require(WRITERS)?;
    let now = state.clock.now();
    let report = Report::file(caller.org.clone(), content.validate(now)?, now).filed_by(&caller.actor);
    let hold = release::hold_for(state, caller, &report, None);
    let envelopes = if hold.is_some() { Vec::new() } else { envelopes_for(state, &report).await? };
    let event = held(version_event("report.created", caller, &report), hold.as_ref());
    state.store.insert_report(&report, &event, &envelopes, hold.as_ref()).await?;
    wake_delivery(state, &envelopes);
    tracing::info!(report = %report.id, version = %report.version, "report filed");
    Ok(report)
}

/// Stores `content` as the next version of the report `id`, if `expected` is still its version.
pub(crate) async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    expected: Version,
    content: ReportContent,
) -> Result<Report, ApiError> {
    caller.require(WRITERS)?;
    let current = own_report(caller, state, id).await?;
    may_change(caller, &current)?;
    if current.version != expected {
        return Err(ApiError::PreconditionFailed { current: current.version });
    }
    let content = keep_hidden_persons(state, caller, &current, content)?;
    let now = state.clock.now();
    let next = current.revise(content.validate(now)?, now).map_err(revision_refused)?;
    let earlier = state.store.hold_of(next.id).await?;
    let hold = release::hold_for(state, caller, &next, earlier.as_ref());
    let envelopes = if hold.is_some() { Vec::new() } else { envelopes_for(state, &next).await? };
    let event = held(version_event("report.updated", caller, &next), hold.as_ref());
    state.store.append_version(&next, &event, &envelopes, hold.as_ref()).await?;
    wake_delivery(state, &envelopes);
    tracing::info!(report = %next.id, version = %next.version, "report updated");
    Ok(next)
}

/// Withdraws the report `id` (a new version saying so), if `expected`, when given, is still its
/// version.
pub(crate) async fn retract(
    state: &AppState,
    caller: &Caller,
    id: &str,
    expected: Option<Version>,
    reason: Option<String>,
) -> Result<Report, ApiError> {
    caller.require(WRITERS)?;
    crate::http::input::check_reason(reason.as_ref())?;
    let current = own_report(caller, state, id).await?;
    may_change(caller, &current)?;
    if let Some(expected) = expected
        && current.version != expected
    {
        return Err(ApiError::PreconditionFailed { current: current.version });
    }
    let next = current.retract(reason, state.clock.now()).map_err(revision_refused)?;
    // Withdrawing shares less: a retraction waits for a release only if the report already did.
    let earlier = state.store.hold_of(next.id).await?.filter(|h| h.holds());
    let hold = earlier.as_ref().and_then(|earlier| release::hold_for(state, caller, &next, Some(earlier)));
    let envelopes = if hold.is_some() { Vec::new() } else { envelopes_for(state, &next).await? };
    let event = held(version_event("report.retracted", caller, &next), hold.as_ref());
    state.store.append_version(&next, &event, &envelopes, hold.as_ref()).await?;
    wake_delivery(state, &envelopes);
    tracing::info!(report = %next.id, version = %next.version, "report retracted");
    Ok(next)
}

/// The audit entry of a new version: which report, which version, the hash of what was stored.
fn version_event(event: &str, caller: &Caller, report: &Report) -> AuditEvent {
    AuditEvent::new(event, &caller.actor)
        .report(report.id)
        .object(&serde_json::to_vec(report).unwrap_or_default())
        .detail(format!("version {}", report.version))
}

/// `event` saying, when the version is held for a release, why.
fn held(event: AuditEvent, hold: Option<&Hold>) -> AuditEvent {
    match hold {
        Some(hold) => {
            let detail = format!(
                "{}; held for a coordinator's release: {}",
                event.detail.clone().unwrap_or_default(),
                hold.reason
            );
            event.detail(detail)
        }
        None => event,
    }
}

/// A coordinator changes any of the organisation's reports; a reporter only those they filed.
pub(crate) fn may_change(caller: &Caller, report: &Report) -> Result<(), ApiError> {
    if caller.roles.contains(&crate::domain::Role::Coordinator)
        || report.filed_by.as_deref() == Some(caller.actor.as_str())
    {
        return Ok(());
    }
    Err(ApiError::Forbidden("a reporter changes only the reports they filed; a coordinator can change any".into()))
}

pub(crate) async fn own_report(caller: &Caller, state: &AppState, id: &str) -> Result<Report, ApiError> {
    let id = parse_id(id)?;
    state.store.latest_report(&caller.org, id).await?.ok_or_else(no_such_report)
}

/// An id that is not a UUID cannot name a report: 404, like any unknown id.
fn parse_id(raw: &str) -> Result<ReportId, ApiError> {
    raw.parse().map_err(|_| no_such_report())
}

fn no_such_report() -> ApiError {
    ApiError::NotFound("no report with this id exists for your organisation".into())
}

fn revision_refused(error: RevisionError) -> ApiError {
    ApiError::Conflict(error.to_string())
}

/// The version named by `If-Match`, if the header is present: `"3"`, `W/"3"` or `3`.
fn if_match(req: &HttpRequest) -> Result<Option<Version>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<u32>().ok().and_then(Version::new).map(Some).ok_or_else(|| {
        ApiError::Validation(crate::domain::ValidationErrors::single(
            "If-Match",
            "must be the report's version as served in ETag, such as \"2\"",
        ))
    })
}

fn with_etag(mut builder: actix_web::HttpResponseBuilder, report: &Report) -> actix_web::HttpResponseBuilder {
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", report.version)) {
        builder.insert_header((header::ETAG, etag));
    }
    builder
}

/// The envelopes a new version goes out in, one per partner it may reach (none when this node does
/// not federate). They are queued in the transaction that stores the version.
pub(crate) async fn envelopes_for(state: &AppState, report: &Report) -> Result<Vec<QueuedEnvelope>, ApiError> {
    match &state.federation {
        Some(federation) => sharing::envelopes_for(federation, report, report.updated_at).await.map_err(ApiError::from),
        None => Ok(Vec::new()),
    }
}

/// Tells the delivery worker to send what was just queued.
pub(crate) fn wake_delivery(state: &AppState, envelopes: &[QueuedEnvelope]) {
    if let (Some(federation), false) = (&state.federation, envelopes.is_empty()) {
        federation.outbox.wake();
    }
}

/// The content of an update by `caller`, with the persons it was not shown put back: someone who
/// does not see persons sends them as shown (roles only), and the stored ones stay; they cannot
/// change them. Actions sent as shown get back the names taken out of them.
pub(crate) fn keep_hidden_persons(
    state: &AppState,
    caller: &Caller,
    current: &Report,
    mut content: ReportContent,
) -> Result<ReportContent, ApiError> {
    if state.persons.sees_persons(&caller.roles) {
        return Ok(content);
    }
    let shown = current.without_persons();
    if content.persons != shown.content.persons {
        return Err(ApiError::Forbidden(
            "your roles do not see the persons in this node's reports (privacy.persons_visible_to), so you cannot \
             change them: send `persons` as you were shown them, or ask a coordinator"
                .into(),
        ));
    }
    content.persons = current.content.persons.clone();
    for action in &mut content.actions {
        if let Some(at) = shown.content.actions.iter().position(|a| a == action) {
            *action = current.content.actions[at].clone();
        }
    }
    Ok(content)
}
