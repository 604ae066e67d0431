//! Requests between partners in the console: the requests sent and received, with their status and
//! whether they are overdue; a form to ask a partner (only the partners an agreement lets this node
//! ask are offered, and a report's page links here with `?report=ID[&to=ORG]` filled in); and one
//! request's thread, where the asked party takes the next step. The pages call the API's
//! operations and follow the requests' live stream (`requests.js`), so a partner's answer shows
//! without a reload.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Payload};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, Duration, Utc};

use super::ConsoleSettings;
use super::form::FormData;
use super::i18n::Texts;
use super::page::{Chrome, ConsoleError, Section, html, see_other};
use super::time;
use super::viewer::Viewer;
use crate::api::AppState;
use crate::api::auth::{REQUEST_READERS, REQUESTERS};
use crate::api::requests::{NewStep, federated, find, make, problem as request_problem, step};
use crate::domain::request::{DEFAULT_DUE_HOURS, PartnerRequest, RequestPlace, StepKind, TimeWindow, is_overdue};
use crate::domain::{OrgId, ReportId, ValidationErrors};
use crate::federation::requests::Ask;
use crate::http::ApiError;
use crate::store::{Delivery, RequestFilter, StoredRequest};

/// The most requests the page lists.
const LISTED: i64 = 100;

/// Where a request stands, as a page shows it.
struct Standing {
    status: &'static str,
    status_code: &'static str,
    closed: bool,
    overdue: bool,
    due: String,
}

impl Standing {
    fn of(stored: &StoredRequest, t: &Texts, now: DateTime<Utc>, due: String) -> Standing {
        Standing {
            status: t.request_status(stored.status),
            status_code: stored.status.as_str(),
            closed: !stored.status.awaits_answer(),
            overdue: is_overdue(stored.status, stored.request.due, now),
            due,
        }
    }
}

/// A request as the list shows it.
struct RequestLine {
    id: String,
    subject: String,
    direction: &'static str,
    partner: String,
    standing: Standing,
    updated: String,
}

/// What the form held, to show again after a problem.
#[derive(Default)]
struct AskForm {
    to: String,
    subject: String,
    details: String,
    report: String,
    site: String,
    window_from: String,
    window_until: String,
    due: String,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    chrome: Chrome,
    lines: Vec<RequestLine>,
    may_ask: bool,
    /// The partners an agreement lets this node ask: id and name.
    partners: Vec<(String, String)>,
    sites: Vec<String>,
    form: AskForm,
    problem: Option<String>,
    /// The last change of any request when the page was made: where its live updates start.
    since: i64,
}

/// One request as its page shows it.
struct ThreadView {
    id: String,
    subject: String,
    details: String,
    direction: &'static str,
    partner: String,
    standing: Standing,
    window: Option<String>,
    place: Option<String>,
    /// Where the report can be read here, if it can, and its title or id.
    report: Option<(Option<String>, String)>,
    agreement: String,
    asked_by: Option<String>,
    asked_at: String,
    delivery: Option<String>,
}

/// One step as the page shows it.
struct StepLine {
    kind: &'static str,
    kind_code: &'static str,
    text: String,
    at: String,
    actor: Option<String>,
    delivery: Option<String>,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    chrome: Chrome,
    r: ThreadView,
    steps: Vec<StepLine>,
    /// The steps this person may take now: code and button label.
    next_steps: Vec<(&'static str, &'static str)>,
    problem: Option<String>,
    /// The last change of any request when the page was made.
    since: i64,
}

/// `GET /console/requests[?report=ID]`.
pub async fn list(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(REQUEST_READERS)?;
    let query: Vec<(String, String)> = crate::http::input::query(&req).map_err(|e| viewer.fail(e))?;
    let given = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let due = time::input_value(state.clock.now() + Duration::hours(DEFAULT_DUE_HOURS), settings.zone);
    let form = AskForm { report: given("report"), to: given("to"), due, ..AskForm::default() };
    render(&viewer, &state, &settings, form, None, StatusCode::OK).await
}

/// `POST /console/requests`: asks a partner; to the request's page, or the form again with the
/// problem.
pub async fn create(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ConsoleError> {
    let data = viewer.form(REQUESTERS, &req, payload).await?;
    let form = AskForm {
        to: data.text("to").to_owned(),
        subject: data.text("subject").to_owned(),
        details: data.text("details").to_owned(),
        report: data.text("report").to_owned(),
        site: data.text("site").to_owned(),
        window_from: data.text("window_from").to_owned(),
        window_until: data.text("window_until").to_owned(),
        due: data.text("due").to_owned(),
    };
    let made = match ask_of(&form, &data, &settings) {
        Ok(ask) => make(&state, &viewer.caller, ask).await,
        Err(errors) => Err(ApiError::Validation(errors)),
    };
    match made {
        Ok(stored) => Ok(see_other(&format!("/console/requests/{}", stored.request.id))),
        Err(error @ (ApiError::Validation(_) | ApiError::Forbidden(_) | ApiError::Conflict(_))) => {
            let problem = viewer.fail(error).to_string();
            render(&viewer, &state, &settings, form, Some(problem), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(other) => Err(viewer.fail(other)),
    }
}

/// `GET /console/requests/{id}`.
pub async fn show(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    id: Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(REQUEST_READERS)?;
    let stored = find(&state, &id).await.map_err(|e| viewer.fail(e))?;
    render_thread(&viewer, &state, &settings, stored, None, StatusCode::OK).await
}

/// `POST /console/requests/{id}/steps`: takes the step of the button pressed; back to the page, or
/// the page with the problem.
pub async fn take_step(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    id: Path<String>,
    req: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ConsoleError> {
    let data = viewer.form(REQUESTERS, &req, payload).await?;
    let kind = StepKind::parse(data.text("kind"))
        .ok_or_else(|| ApiError::Validation(ValidationErrors::single("kind", "is not a step a request takes")));
    let taken = match kind {
        Ok(kind) => step(&state, &viewer.caller, &id, NewStep { kind, text: data.text("text").to_owned() }).await,
        Err(e) => Err(e),
    };
    match taken {
        Ok(stored) => Ok(see_other(&format!("/console/requests/{}", stored.request.id))),
        Err(error @ (ApiError::Validation(_) | ApiError::Conflict(_))) => {
            let problem = viewer.fail(error).to_string();
            let stored = find(&state, &id).await.map_err(|e| viewer.fail(e))?;
            render_thread(&viewer, &state, &settings, stored, Some(problem), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(other) => Err(viewer.fail(other)),
    }
}

async fn render(
    viewer: &Viewer,
    state: &AppState,
    settings: &ConsoleSettings,
    form: AskForm,
    problem: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let t = viewer.lang.texts();
    let since = state.store.requests_last_change().await.map_err(|e| viewer.fail(e.into()))?;
    let own = viewer.caller.org.to_string();
    let filter = RequestFilter { own: Some(&own), ..RequestFilter::default() };
    let stored = state.store.requests(filter, LISTED).await.map_err(|e| viewer.fail(e.into()))?;
    let now = state.clock.now();
    let when = |at: DateTime<Utc>| time::moment(at, settings.zone, viewer.lang);
    let lines = stored
        .into_iter()
        .map(|s| {
            let sent = s.request.from == viewer.caller.org;
            RequestLine {
                id: s.request.id.to_string(),
                subject: s.request.subject.clone(),
                direction: if sent { t.request_sent } else { t.request_received },
                partner: if sent { s.request.to.to_string() } else { s.request.from.to_string() },
                standing: Standing::of(&s, t, now, when(s.request.due)),
                updated: when(s.updated_at),
            }
        })
        .collect();
    let may_ask = viewer.may(REQUESTERS) && state.federation.is_some();
    let partners = match federated(state) {
        Ok(federation) if may_ask => crate::federation::requests::askable(federation, now)
            .await
            .map_err(|e| viewer.fail(request_problem(e)))?
            .into_iter()
            .map(|(org, name, _)| (org.to_string(), name))
            .collect(),
        _ => Vec::new(),
    };
    let sites = settings.sites.iter().map(|s| s.name.clone()).collect();
    let chrome = viewer.chrome(Section::Requests);
    html(status, &RequestsPage { chrome, lines, may_ask, partners, sites, form, problem, since })
}

async fn render_thread(
    viewer: &Viewer,
    state: &AppState,
    settings: &ConsoleSettings,
    stored: StoredRequest,
    problem: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let t = viewer.lang.texts();
    let (zone, lang) = (settings.zone, viewer.lang);
    let when = |at: DateTime<Utc>| time::moment(at, zone, lang);
    let since = state.store.requests_last_change().await.map_err(|e| viewer.fail(e.into()))?;
    // Read again after `since`: what the page shows is at least that change.
    let stored =
        state.store.request_by_id(stored.request.id).await.map_err(|e| viewer.fail(e.into()))?.unwrap_or(stored);
    let steps = state.store.request_steps(&stored.request).await.map_err(|e| viewer.fail(e.into()))?;
    let r = &stored.request;
    let sent = r.from == viewer.caller.org;
    let report = match r.report {
        Some(id) => Some(report_link(state, &viewer.caller.org, r, id).await),
        None => None,
    };
    let view = ThreadView {
        id: r.id.to_string(),
        subject: r.subject.clone(),
        details: r.details.clone(),
        direction: if sent { t.request_sent } else { t.request_received },
        partner: if sent { r.to.to_string() } else { r.from.to_string() },
        standing: Standing::of(&stored, t, state.clock.now(), when(r.due)),
        window: r.window.as_ref().map(|w: &TimeWindow| format!("{} – {}", when(w.from), when(w.until))),
        place: r.place.as_ref().map(place_text),
        report,
        agreement: r.agreement.to_string(),
        asked_by: stored.asked_by.clone(),
        asked_at: when(r.asked_at),
        delivery: stored.delivery.as_ref().map(|d| delivery_text(d, t)),
    };
    let lines = steps
        .into_iter()
        .map(|s| StepLine {
            kind: t.request_status(s.step.kind.leads_to()),
            kind_code: s.step.kind.as_str(),
            text: s.step.text,
            at: when(s.step.at),
            actor: s.actor,
            delivery: s.delivery.as_ref().map(|d| delivery_text(d, t)),
        })
        .collect();
    let next_steps = if !sent && viewer.may(REQUESTERS) {
        [StepKind::Acknowledged, StepKind::Accepted, StepKind::Declined, StepKind::Answered, StepKind::Done]
            .into_iter()
            .filter(|k| stored.status.after(*k).is_ok())
            .map(|k| (k.as_str(), t.request_do(k)))
            .collect()
    } else {
        Vec::new()
    };
    let chrome = viewer.chrome(Section::Requests);
    html(status, &RequestPage { chrome, r: view, steps: lines, next_steps, problem, since })
}

/// Where report `id` can be read here, and what to call it: one of the organisation's own by its
/// own title; one the asker shared by the title the request carries; anything else (an id a partner
/// named that is neither) by its id, without a link.
async fn report_link(state: &AppState, own: &OrgId, r: &PartnerRequest, id: ReportId) -> (Option<String>, String) {
    let href = Some(format!("/console/reports/{id}"));
    if let Ok(Some(report)) = state.store.latest_report(own, id).await {
        return (href, report.content.title);
    }
    let shared_by_asker = state.store.received_view(id).await.ok().flatten().is_some_and(|v| v.origin == r.from);
    let title = r.report_view.as_ref().filter(|v| v.id == id).and_then(|v| v.title.clone());
    if shared_by_asker { (href, title.unwrap_or_else(|| id.to_string())) } else { (None, id.to_string()) }
}

fn place_text(place: &RequestPlace) -> String {
    let at = format!("{:.5}, {:.5}", place.lat, place.lon);
    let around = place.radius_m.map(|r| format!(" (± {r} m)")).unwrap_or_default();
    match &place.name {
        Some(name) => format!("{name} · {at}{around}"),
        None => format!("{at}{around}"),
    }
}

fn delivery_text(delivery: &Delivery, t: &Texts) -> String {
    let state = match delivery.state.as_str() {
        "delivered" => t.request_delivery_delivered,
        "refused" => t.request_delivery_refused,
        _ => t.request_delivery_queued,
    };
    match &delivery.last_error {
        Some(error) if delivery.state != "delivered" => format!("{state}: {error}"),
        _ => state.to_owned(),
    }
}

/// The request the form describes, read in the node's zone; or what is wrong with it, field by
/// field.
fn ask_of(form: &AskForm, data: &FormData, settings: &ConsoleSettings) -> Result<Ask, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let to = OrgId::parse(&form.to).map_err(|e| errors.add("to", e.to_string())).ok();
    let report = data.optional("report").and_then(|r| {
        r.parse::<ReportId>().map_err(|_| errors.add("report", "must be a report's id (a UUID), or empty")).ok()
    });
    let mut moment = |field: &str, text: &str| {
        if text.is_empty() {
            return None;
        }
        time::parse_input(text, settings.zone).map_err(|e| errors.add(field, e)).ok()
    };
    let due = moment("due", &form.due);
    let window = match (moment("window_from", &form.window_from), moment("window_until", &form.window_until)) {
        (Some(from), Some(until)) => Some(TimeWindow { from, until }),
        _ => None,
    };
    let place = settings.sites.iter().find(|s| !form.site.is_empty() && s.name == form.site).map(|s| RequestPlace {
        name: Some(s.name.clone()),
        lat: s.lat,
        lon: s.lon,
        radius_m: None,
    });
    let to = errors.into_result(to)?;
    Ok(Ask {
        to: to.ok_or_else(|| ValidationErrors::single("to", "names the partner asked"))?,
        agreement: None,
        subject: form.subject.clone(),
        details: form.details.clone(),
        report,
        place,
        window,
        due,
    })
}
