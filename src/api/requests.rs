//! Requests between partners over the API (issue 19): a coordinator asks a partner for something
//! (`POST /api/v1/requests`), sees the requests sent and received with their status and whether
//! they are overdue, reads one request's thread as both nodes hold it (each entry with the
//! statement its node signed), takes the asked party's steps, and follows every change live
//! (`GET /api/v1/requests/stream`). A request's report is shown with its persons as far as the
//! reader's roles see persons, like every report here.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::web::{Bytes, Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, watch};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::{Caller, REQUEST_READERS, REQUESTERS};
use super::stream::ServerSentEvent;
use crate::domain::agreement::AgreementId;
use crate::domain::request::{RequestPlace, RequestStatus, StepKind, TimeWindow, is_overdue};
use crate::domain::view::ReportView;
use crate::domain::{OrgId, ReportId, ValidationErrors};
use crate::federation::requests::{Ask, RequestError};
use crate::http::input::{parse_field, query};
use crate::http::problem::{ApiError, AuthProblems, BodyProblems, NotFoundProblems, Problem};
use crate::store::{Delivery, RequestFilter, Store, StoredRequest, StoredStep};

/// How many requests a list holds at most.
const MAX_LISTED: i64 = 200;
/// How often a stream looks for changes (other replicas' too).
const STREAM_POLL: Duration = Duration::from_millis(250);
/// How often a quiet stream sends a heartbeat comment.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A request to make of a partner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// The partner asked.
    #[schema(value_type = String, example = "se-vaktbolaget-ost")]
    pub to: String,
    /// The agreement to ask under; by default the active one whose flow to the partner allows
    /// requests.
    #[schema(value_type = Option<String>)]
    pub agreement: Option<String>,
    /// What is asked, in a line.
    #[schema(example = "Can a patrol pass Hagebyskolan between 22 and 02 tonight?")]
    pub subject: String,
    #[serde(default)]
    pub details: String,
    /// The report it is about: one of your organisation's (it goes in the form the agreement gives
    /// the partner), or one the partner shared with you.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub report: Option<String>,
    pub place: Option<RequestPlace>,
    pub window: Option<TimeWindow>,
    /// When an answer is wanted by; 24 hours from now by default, at most 90 days ahead.
    pub due: Option<DateTime<Utc>>,
}

/// A step to take on a request your organisation was asked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStep {
    pub kind: StepKind,
    /// The reason for declining, the answer, or a note.
    #[serde(default)]
    pub text: String,
}

/// Whether a document of this node's has reached the other party.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// `queued` (on its way; `last_error` says why it waits), `delivered` or `refused` (with the
    /// party's reason in `last_error`).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        Self { state: d.state, last_error: d.last_error }
    }
}

/// A request, with its thread when one request is read.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestOut {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// `sent` (your organisation asked) or `received`.
    pub direction: String,
    #[schema(value_type = String)]
    pub agreement: AgreementId,
    #[schema(value_type = String)]
    pub from: OrgId,
    #[schema(value_type = String)]
    pub to: OrgId,
    pub subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub report: Option<ReportId>,
    /// The report as the request carries it (one of the asker's own, in the agreement's form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_view: Option<ReportView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<RequestPlace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<TimeWindow>,
    pub due: DateTime<Utc>,
    pub asked_at: DateTime<Utc>,
    pub status: RequestStatus,
    /// Past its due time with no answer, decline or close yet.
    pub overdue: bool,
    /// Who here asked (your organisation's requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked_by: Option<String>,
    /// For your organisation's request: whether it has reached the partner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryOut>,
    pub updated_at: DateTime<Utc>,
    /// The request as its asker's node signed it (JWS JSON), when one request is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The asked party's steps, in order, when one request is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepOut>>,
}

/// One step of the asked party.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepOut {
    pub seq: u32,
    pub kind: StepKind,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    pub at: DateTime<Utc>,
    /// Who here took it (steps your organisation took).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryOut>,
    /// The step as the asked party's node signed it (JWS JSON).
    pub statement: String,
}

impl From<StoredStep> for StepOut {
    fn from(s: StoredStep) -> Self {
        Self {
            seq: s.step.seq,
            kind: s.step.kind,
            text: s.step.text,
            at: s.step.at,
            actor: s.actor,
            delivery: s.delivery.map(DeliveryOut::from),
            statement: s.statement,
        }
    }
}

/// Requests, most recently changed first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<RequestOut>,
}

/// Which requests to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestListFilter {
    /// `sent`, `received`, or both (default).
    #[param(value_type = Option<String>, pattern = "^(sent|received)$")]
    direction: Option<String>,
    /// `open` (awaiting an answer) or `all` (default).
    #[param(value_type = Option<String>, pattern = "^(open|all)$")]
    state: Option<String>,
}

/// Where the requests' stream starts.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestStreamParams {
    /// The id of the last event the client has (`Last-Event-ID` takes precedence); without it the
    /// stream starts with the next change.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    last_event_id: Option<String>,
}

/// Ask a partner for something, under an agreement whose flow from your organisation to the
/// partner allows requests. It is signed and sent at once, or as soon as the partner can be
/// reached; `delivery` says which.
#[utoipa::path(
    post, path = "/api/v1/requests", tag = "requests",
    request_body = NewRequest,
    responses(
        (status = 201, description = "Made and queued for the partner", body = RequestOut),
        (status = 403, description = "No active agreement lets you send requests to this partner, or the report may not go to it (held for release, or outside the agreement); nothing was sent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This node has no federation configured: it has no partners to ask", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = ["coordinator"]))
)]
pub async fn create(
    caller: Caller,
    state: Data<AppState>,
    req: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(REQUESTERS)?;
    let new: NewRequest = crate::http::body::read_body(&req, payload).await?;
    let stored = make(&state, &caller, ask_of(new)?).await?;
    let out = thread(&state, &caller, stored).await?;
    Ok(HttpResponse::Created().insert_header(("Location", format!("/api/v1/requests/{}", out.id))).json(out))
}

/// The requests your organisation sent and received, most recently changed first (at most 200).
#[utoipa::path(
    get, path = "/api/v1/requests", tag = "requests",
    params(RequestListFilter),
    responses(
        (status = 200, description = "The requests, without their threads", body = RequestList),
        (status = 422, description = "An unknown `direction` or `state`", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = ["coordinator", "analyst"]))
)]
pub async fn list(caller: Caller, state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller.require(REQUEST_READERS)?;
    let filter: RequestListFilter = query(&req)?;
    let mut errors = ValidationErrors::new();
    let asked_here = parse_field(&mut errors, "direction", filter.direction, |d| match d.as_str() {
        "sent" => Ok(true),
        "received" => Ok(false),
        _ => Err("must be sent or received"),
    });
    let open_only = parse_field(&mut errors, "state", filter.state, |s| match s.as_str() {
        "open" => Ok(true),
        "all" => Ok(false),
        _ => Err("must be open or all"),
    });
    errors.into_result(())?;
    let own = caller.org.to_string();
    let filter = RequestFilter { asked_here, open_only: open_only.unwrap_or(false), own: Some(&own) };
    let stored = state.store.requests(filter, MAX_LISTED).await?;
    let now = state.clock.now();
    let requests = stored.into_iter().map(|s| summary(&caller, s, now)).collect();
    Ok(HttpResponse::Ok().json(RequestList { requests }))
}

/// One request with its whole thread, as both nodes hold it.
#[utoipa::path(
    get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    responses((status = 200, description = "The request and its steps", body = RequestOut), AuthProblems, NotFoundProblems),
    security(("bearer" = ["coordinator", "analyst"]))
)]
pub async fn get(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(REQUEST_READERS)?;
    let stored = find(&state, &id).await?;
    Ok(HttpResponse::Ok().json(thread(&state, &caller, stored).await?))
}

/// Take the next step on a request your organisation was asked: `acknowledged`, then `accepted` or
/// `declined` (with the reason as `text`), then `answered` (as often as needed) and `done`. The step
/// is signed and sent to the asker.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/steps", tag = "requests",
    params(("id" = String, Path, description = "The request's id")),
    request_body = NewStep,
    responses(
        (status = 200, description = "Taken and queued for the asker; the request with its thread", body = RequestOut),
        (status = 403, description = "Your organisation asked this request: the partner takes its steps", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The step cannot follow the request's status (declined and done end it; accept before answering), or its agreement is no longer active", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["coordinator"]))
)]
pub async fn take_step(
    caller: Caller,
    state: Data<AppState>,
    id: Path<String>,
    req: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(REQUESTERS)?;
    let new: NewStep = crate::http::body::read_body(&req, payload).await?;
    let stored = step(&state, &caller, &id, new).await?;
    Ok(HttpResponse::Ok().json(thread(&state, &caller, stored).await?))
}

/// Follow every change of your organisation's requests as it happens (Server-Sent Events): each
/// event, `request`, carries the request as `GET /api/v1/requests` lists it, and its id is the
/// change's number, so a reconnecting client gets what it missed (each request once, as it stands).
#[utoipa::path(
    get, path = "/api/v1/requests/stream", tag = "requests",
    params(RequestStreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received; sent by a reconnecting EventSource")),
    responses(
        (status = 200, description = "An endless `text/event-stream` of `request` events whose `data` is a RequestOut, and comment lines as heartbeats", content_type = "text/event-stream", body = ServerSentEvent),
        (status = 422, description = "The last event id is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The node serves as many streams as it may; try again later", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = ["coordinator", "analyst"]))
)]
pub async fn stream(caller: Caller, state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller.require(REQUEST_READERS)?;
    let params: RequestStreamParams = query(&req)?;
    let mut errors = ValidationErrors::new();
    let header = req.headers().get("last-event-id").map(|v| v.to_str().map(str::to_owned).unwrap_or_default());
    let from = parse_field(&mut errors, "last_event_id", header.or(params.last_event_id), |s| {
        s.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or("must be an event id this node sent")
    });
    errors.into_result(())?;
    let permit = state.feed.admit().ok_or_else(|| {
        ApiError::Unavailable(format!(
            "this node serves at most {} live streams at once; try again later",
            state.feed.max_streams
        ))
    })?;
    let last = state.store.requests_last_change().await?;
    let follower = RequestFollower {
        store: state.store.clone(),
        clock: state.clock.clone(),
        caller,
        closing: state.feed.closing(),
        cursor: from.map_or(last, |n| n.min(last)),
        since_heartbeat: tokio::time::Instant::now(),
        _permit: permit,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header(("Content-Encoding", "identity"))
        .streaming(futures_util::stream::unfold(follower, RequestFollower::next)))
}

/// One client following the requests' changes.
struct RequestFollower {
    store: Store,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    caller: Caller,
    closing: watch::Receiver<bool>,
    /// The last change sent.
    cursor: i64,
    since_heartbeat: tokio::time::Instant,
    /// The stream's place among the node's streams.
    _permit: OwnedSemaphorePermit,
}

impl RequestFollower {
    /// The next bytes: the changes after the cursor, or a heartbeat when nothing changes. A store
    /// that fails ends the stream; the client reconnects from where it was.
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            let changed = self.store.requests_changed_after(self.cursor, 100).await.ok()?;
            if let Some(last) = changed.last() {
                self.cursor = last.change_seq;
                let now = self.clock.now();
                let mut bytes = Vec::new();
                for stored in changed {
                    let id = stored.change_seq;
                    let data = serde_json::to_string(&summary(&self.caller, stored, now)).unwrap_or_default();
                    bytes.extend_from_slice(
                        &ServerSentEvent { id: Some(id.to_string()), event: "request".into(), data }.to_bytes(),
                    );
                }
                self.since_heartbeat = tokio::time::Instant::now();
                return Some((Ok(Bytes::from(bytes)), self));
            }
            if self.since_heartbeat.elapsed() >= HEARTBEAT {
                self.since_heartbeat = tokio::time::Instant::now();
                return Some((Ok(Bytes::from_static(b": heartbeat\n\n")), self));
            }
            tokio::select! {
                _ = tokio::time::sleep(STREAM_POLL) => {}
                _ = self.closing.changed() => {}
            }
        }
    }
}

/// What `new` asks, checked as far as it can be before an agreement is looked for.
pub(crate) fn ask_of(new: NewRequest) -> Result<Ask, ApiError> {
    let mut errors = ValidationErrors::new();
    let to = parse_field(&mut errors, "to", Some(new.to), |t| OrgId::parse(&t).map_err(|e| e.to_string()));
    let agreement =
        parse_field(&mut errors, "agreement", new.agreement, |a| AgreementId::try_from(a).map_err(|e| e.to_string()));
    let report = parse_field(&mut errors, "report", new.report, |r| {
        r.parse::<ReportId>().map_err(|_| "must be a report's id (a UUID)")
    });
    errors.check_text("subject", &new.subject, 1, crate::domain::request::MAX_SUBJECT, false);
    let to = errors.into_result(to)?;
    Ok(Ask {
        to: to.ok_or_else(|| ApiError::Validation(ValidationErrors::single("to", "names the partner asked")))?,
        agreement,
        subject: new.subject,
        details: new.details,
        report,
        place: new.place,
        window: new.window,
        due: new.due,
    })
}

/// Makes `ask` for `caller`: what the API and the console do.
pub(crate) async fn make(state: &AppState, caller: &Caller, ask: Ask) -> Result<StoredRequest, ApiError> {
    let federation = federated(state)?;
    let now = state.clock.now();
    crate::federation::requests::ask(federation, ask, &caller.actor, now).await.map_err(problem)
}

/// Takes `new` as the next step on request `id`, for `caller`: what the API and the console do.
pub(crate) async fn step(state: &AppState, caller: &Caller, id: &str, new: NewStep) -> Result<StoredRequest, ApiError> {
    let id = parse_id(id)?;
    let federation = federated(state)?;
    let now = state.clock.now();
    crate::federation::requests::step(federation, id, new.kind, new.text, &caller.actor, now).await.map_err(problem)
}

/// The request `id`, or 404.
pub(crate) async fn find(state: &AppState, id: &str) -> Result<StoredRequest, ApiError> {
    let id = parse_id(id)?;
    state.store.request_by_id(id).await?.ok_or_else(no_such_request)
}

/// A request as lists show it: no thread, no report body.
pub(crate) fn summary(caller: &Caller, stored: StoredRequest, now: DateTime<Utc>) -> RequestOut {
    let r = stored.request;
    RequestOut {
        id: r.id,
        direction: if r.from == caller.org { "sent" } else { "received" }.into(),
        overdue: is_overdue(stored.status, r.due, now),
        agreement: r.agreement,
        from: r.from,
        to: r.to,
        subject: r.subject,
        details: r.details,
        report: r.report,
        report_view: None,
        place: r.place,
        window: r.window,
        due: r.due,
        asked_at: r.asked_at,
        status: stored.status,
        asked_by: stored.asked_by,
        delivery: stored.delivery.map(DeliveryOut::from),
        updated_at: stored.updated_at,
        statement: None,
        steps: None,
    }
}

/// A request with its thread and its report, the report's persons as `caller`'s roles see them.
pub(crate) async fn thread(state: &AppState, caller: &Caller, stored: StoredRequest) -> Result<RequestOut, ApiError> {
    let steps = state.store.request_steps(&stored.request).await?;
    let view = stored.request.report_view.clone();
    let statement = stored.statement.clone();
    let mut out = summary(caller, stored, state.clock.now());
    out.report_view = match view {
        Some(view) => Some(super::persons::shown_one(state, &caller.actor, &caller.roles, view).await?),
        None => None,
    };
    out.statement = Some(statement);
    out.steps = Some(steps.into_iter().map(StepOut::from).collect());
    Ok(out)
}

pub(crate) fn federated(state: &AppState) -> Result<&crate::federation::Federation, ApiError> {
    state
        .federation
        .as_deref()
        .ok_or_else(|| ApiError::Conflict("this node has no federation configured: it has no partners to ask".into()))
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| no_such_request())
}

fn no_such_request() -> ApiError {
    ApiError::NotFound("no request with this id was sent or received here".into())
}

/// The problem for a request or step that was not made.
pub(crate) fn problem(error: RequestError) -> ApiError {
    match error {
        RequestError::NotAllowed(reason) | RequestError::Forbidden(reason) => ApiError::Forbidden(reason),
        RequestError::Invalid(errors) => ApiError::Validation(errors),
        RequestError::NotFound => no_such_request(),
        RequestError::Conflict(reason) => ApiError::Conflict(reason),
        RequestError::Lifecycle(e) => e.into(),
        RequestError::Store(e) => e.into(),
    }
}
