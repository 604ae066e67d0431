//! Filing and changing reports, and a report's own page. The form works on a phone as on a desktop
//! (tap the map, the device's position, or one of the organisation's sites), and beside it the
//! per-recipient panel shows, before anything is filed, who will receive the report and exactly
//! what each will see, field by field with the rule that decided it: computed by the exchange's own
//! `sharing::deliveries`. Filing, changing and retracting call the API's operations. A report's
//! page shows every version and the sharing ledger; a received report is shown as it was shared.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::ConsoleSettings;
use super::i18n::Texts;
use super::page::{Chrome, ConsoleError, Section, html, see_other};
use super::recipients::{RecipientPanel, panel, panel_of};
use super::report_form::{FieldErrors, ReportForm};
use super::time;
use super::viewer::Viewer;
use crate::api::AppState;
use crate::api::auth::{READERS, WRITERS};
use crate::api::persons::{shown, shown_one};
use crate::api::shares::Share;
use crate::config::ConsoleSite;
use crate::domain::audit::AuditEvent;
use crate::domain::release::may_release;
use crate::domain::view::{ReportView, ViewPersons};
use crate::domain::{Report, ReportId, Role, ValidationErrors, Version};
use crate::http::ApiError;
use crate::store::HoldRow;

#[derive(Template)]
#[template(path = "report_form.html")]
struct FormPage<'a> {
    chrome: Chrome,
    form: ReportForm,
    errors: FieldErrors,
    /// Where the form is sent: `/console/reports` or `/console/reports/{id}`.
    action: String,
    heading: &'static str,
    submit: &'static str,
    sites: &'a [ConsoleSite],
    panel: Option<RecipientPanel>,
    /// Said above the form when it came back refused.
    notice: Option<String>,
    config: String,
    /// The report being changed, for the preview.
    editing: Option<String>,
}

impl<'a> FormPage<'a> {
    fn new(
        viewer: &Viewer,
        settings: &'a ConsoleSettings,
        form: ReportForm,
        action: String,
        editing: Option<String>,
    ) -> Self {
        let t = viewer.lang.texts();
        let config = serde_json::json!({
            "tiles": settings.tiles.as_ref().map(|(url, attribution)| serde_json::json!({"url": url, "attribution": attribution})),
            "sites": settings.sites.iter().map(|s| serde_json::json!({
                "name": s.name, "lat": s.lat, "lon": s.lon, "kind": s.kind.as_str(),
                "address": s.address, "municipality_code": s.municipality_code,
            })).collect::<Vec<_>>(),
            "position_failed": t.position_failed,
        });
        FormPage {
            chrome: viewer.chrome(if editing.is_some() { Section::None } else { Section::NewReport }),
            form,
            errors: FieldErrors::default(),
            action,
            heading: if editing.is_some() { t.edit_report_title } else { t.new_report_title },
            submit: if editing.is_some() { t.submit_update } else { t.submit_file },
            sites: &settings.sites,
            panel: None,
            notice: None,
            config: config.to_string(),
            editing,
        }
    }

    /// The page again with the problems of a refused form beside their fields.
    fn refused(mut self, errors: &ValidationErrors, t: &Texts, lang: super::i18n::Lang) -> Self {
        self.errors = FieldErrors::of(errors, lang);
        self.notice = Some(t.form_has_errors.to_owned());
        self
    }
}

/// `GET /console/reports/new`.
pub async fn new(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(WRITERS)?;
    let form = ReportForm::blank(state.clock.now(), settings.zone);
    html(StatusCode::OK, &FormPage::new(&viewer, &settings, form, "/console/reports".into(), None))
}

/// `POST /console/reports`: files the report, or shows the form again with what to correct.
pub async fn file(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let data = viewer.form(WRITERS, &req, payload).await?;
    let form = ReportForm::of_form(&data);
    let page = FormPage::new(&viewer, &settings, form.clone(), "/console/reports".into(), None);
    let t = viewer.lang.texts();
    let content = match form.content(settings.zone, &settings.sites) {
        Ok(content) => content,
        Err(errors) => return html(StatusCode::UNPROCESSABLE_ENTITY, &page.refused(&errors, t, viewer.lang)),
    };
    match crate::api::reports::file(&state, &viewer.caller, content).await {
        Ok(report) => Ok(see_other(&format!("/console/reports/{}", report.id))),
        Err(ApiError::Validation(errors)) => {
            html(StatusCode::UNPROCESSABLE_ENTITY, &page.refused(&errors, t, viewer.lang))
        }
        Err(other) => Err(viewer.fail(other)),
    }
}

/// `GET /console/reports/{id}/edit`.
pub async fn edit(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    id: Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(WRITERS)?;
    let report = crate::api::reports::own_report(&viewer.caller, &state, &id).await.map_err(|e| viewer.fail(e))?;
    crate::api::reports::may_change(&viewer.caller, &report).map_err(|e| viewer.fail(e))?;
    let report = shown_one(&state, &viewer.caller.actor, &viewer.caller.roles, report)
        .await
        .map_err(|e| viewer.fail(e.into()))?;
    let form = ReportForm::of_report(&report, settings.zone);
    let action = format!("/console/reports/{}", report.id);
    html(StatusCode::OK, &FormPage::new(&viewer, &settings, form, action, Some(report.id.to_string())))
}

/// `POST /console/reports/{id}`: stores the next version, if nobody changed the report meanwhile.
pub async fn update(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    id: Path<String>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let data = viewer.form(WRITERS, &req, payload).await?;
    let form = ReportForm::of_form(&data);
    let page = FormPage::new(&viewer, &settings, form.clone(), format!("/console/reports/{id}"), Some(id.to_string()));
    let (t, lang) = (viewer.lang.texts(), viewer.lang);
    let content = match form.content(settings.zone, &settings.sites) {
        Ok(content) => content,
        Err(errors) => return html(StatusCode::UNPROCESSABLE_ENTITY, &page.refused(&errors, t, lang)),
    };
    let expected = form.version.and_then(Version::new).ok_or_else(|| {
        viewer.fail(ApiError::Validation(ValidationErrors::single("If-Match", "the form names no version")))
    })?;
    match crate::api::reports::update(&state, &viewer.caller, &id, expected, content).await {
        Ok(report) => Ok(see_other(&format!("/console/reports/{}", report.id))),
        Err(ApiError::Validation(errors)) => html(StatusCode::UNPROCESSABLE_ENTITY, &page.refused(&errors, t, lang)),
        Err(ApiError::PreconditionFailed { current }) => {
            let mut page = page;
            page.notice = Some(t.stale_version.replace("{v}", &current.to_string()));
            html(StatusCode::PRECONDITION_FAILED, &page)
        }
        Err(other) => Err(viewer.fail(other)),
    }
}

/// `POST /console/reports/preview`: who would receive the report the form describes, and what
/// each would see. With `?fragment=1` (the page's script) only the panel; otherwise the whole form
/// with the panel under it (a browser without scripts).
pub async fn preview(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let data = viewer.form(WRITERS, &req, payload).await?;
    let form = ReportForm::of_form(&data);
    let editing = data.optional("report").and_then(|id| id.parse::<ReportId>().ok());
    let content = form.content(settings.zone, &settings.sites);
    let panel = panel(&state, &viewer, &settings, editing, content).await.map_err(|e| viewer.fail(e))?;
    if req.query_string().contains("fragment=1") {
        return html(StatusCode::OK, &panel);
    }
    let action = editing.map_or_else(|| "/console/reports".to_owned(), |id| format!("/console/reports/{id}"));
    let mut page = FormPage::new(&viewer, &settings, form, action, editing.map(|id| id.to_string()));
    page.panel = Some(panel);
    html(StatusCode::OK, &page)
}

/// One version, as the report page lists it.
struct VersionLine {
    version: u32,
    at: String,
    by: String,
    title: String,
    summary: String,
    retracted: Option<String>,
}

/// One envelope of the sharing ledger.
struct ShareLine {
    share: Share,
    recipient: String,
    state: &'static str,
    queued: String,
}

/// A partner's receipt for an urgent report, as the report's page shows it.
struct SeenLine {
    partner: String,
    version: i64,
    roles: String,
    seen: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    chrome: Chrome,
    report: Report,
    observed: String,
    place: String,
    versions: Vec<VersionLine>,
    shares: Vec<ShareLine>,
    /// The partners that have seen this urgent report, and when.
    seen_by: Vec<SeenLine>,
    may_change: bool,
    /// Whether this person may ask a partner about it (a coordinator, the report not retracted).
    may_ask: bool,
    /// Set while the report waits for a release, or was refused one.
    release: Option<HoldRow>,
    /// Whether this person may release or refuse it (a coordinator who did not write it).
    may_decide: bool,
    /// What each partner would receive, for the one deciding.
    preview: Option<RecipientPanel>,
}

/// `POST /console/reports/{id}/release`: a coordinator releases a held report.
pub async fn release(
    viewer: Viewer,
    state: Data<AppState>,
    id: Path<String>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    viewer.form(&[Role::Coordinator], &req, payload).await?;
    crate::api::release::release(&state, &viewer.caller, &id).await.map_err(|e| viewer.fail(e))?;
    Ok(see_other(&format!("/console/reports/{id}")))
}

/// `POST /console/reports/{id}/refuse-release`: a coordinator refuses a held report, saying why.
pub async fn refuse_release(
    viewer: Viewer,
    state: Data<AppState>,
    id: Path<String>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let data = viewer.form(&[Role::Coordinator], &req, payload).await?;
    let reason = data.text("reason").to_owned();
    crate::api::release::refuse(&state, &viewer.caller, &id, reason).await.map_err(|e| viewer.fail(e))?;
    Ok(see_other(&format!("/console/reports/{id}")))
}

#[derive(Template)]
#[template(path = "received.html")]
struct ReceivedPage {
    chrome: Chrome,
    view: ReportView,
    intro: String,
    when: String,
    persons: Vec<String>,
    /// Whether this person may ask the report's origin about it.
    may_ask: bool,
}

/// `GET /console/reports/{id}`: one of the organisation's reports with every version and the
/// sharing ledger, or a received report as it was shared.
pub async fn show(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    id: Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(READERS)?;
    let (t, lang, zone) = (viewer.lang.texts(), viewer.lang, settings.zone);
    let missing = || ConsoleError::page(StatusCode::NOT_FOUND, lang, t.report_missing);
    let report_id: ReportId = id.parse().map_err(|_| missing())?;
    let versions =
        state.store.report_versions(&viewer.caller.org, report_id).await.map_err(|e| viewer.fail(e.into()))?;
    let (actor, roles) = (&viewer.caller.actor, &viewer.caller.roles);
    let versions = shown(&state, actor, roles, versions).await.map_err(|e| viewer.fail(e.into()))?;
    let Some(latest) = versions.last().cloned() else {
        let view =
            state.store.received_view(report_id).await.map_err(|e| viewer.fail(e.into()))?.ok_or_else(missing)?;
        let view = shown_one(&state, actor, roles, view).await.map_err(|e| viewer.fail(e.into()))?;
        audit_read(&state, &viewer, report_id, view.version, Some(view.agreement.as_str())).await?;
        return received_page(&viewer, &state, view, zone).await;
    };
    audit_read(&state, &viewer, report_id, latest.version, None).await?;
    let held = state.store.hold_of(report_id).await.map_err(|e| viewer.fail(e.into()))?.filter(|h| h.holds());
    let may_decide = held.as_ref().is_some_and(|h| {
        h.state == "held" && may_release(&viewer.caller.actor, &viewer.caller.roles, &h.author).is_ok()
    });
    // The releaser sees what each partner would receive of the version held.
    let preview = if may_decide {
        Some(panel_of(&state, &viewer, &settings, &latest).await.map_err(|e| viewer.fail(e))?)
    } else {
        None
    };
    let names = partner_names(&state).await.map_err(|e| viewer.fail(e))?;
    let ledger = state.store.shares_of(report_id).await.map_err(|e| viewer.fail(e.into()))?;
    let receipts = state.store.alert_receipts(report_id).await.map_err(|e| viewer.fail(e.into()))?;
    let name_of = |org: &str| names.iter().find(|(o, _)| o == org).map_or_else(|| org.to_owned(), |(_, n)| n.clone());
    let c = &latest.content;
    let page = ReportPage {
        chrome: viewer.chrome(Section::None),
        observed: time::moment(c.observed_at, zone, lang),
        place: place_of(&latest, t),
        versions: versions
            .iter()
            .rev()
            .map(|v| VersionLine {
                version: v.version.get(),
                at: time::moment(v.updated_at, zone, lang),
                by: if v.version.get() == 1 { v.filed_by.clone().unwrap_or_default() } else { String::new() },
                title: v.content.title.clone(),
                summary: format!(
                    "{} · {} · TLP:{}",
                    t.category(v.content.category),
                    t.severity(v.content.severity),
                    v.content.tlp
                ),
                retracted: v.retracted.as_ref().map(|r| r.reason.clone().unwrap_or_default()),
            })
            .collect(),
        shares: ledger
            .into_iter()
            .map(Share::from)
            .map(|share| ShareLine {
                recipient: name_of(&share.recipient),
                state: t.share_state(&share.state),
                queued: time::moment(share.queued_at, zone, lang),
                share,
            })
            .collect(),
        seen_by: receipts
            .into_iter()
            .map(|r| SeenLine {
                partner: name_of(&r.partner),
                version: r.version,
                roles: t.roles_list(&r.roles.iter().filter_map(|r| r.parse().ok()).collect::<Vec<Role>>()),
                seen: time::moment(r.seen_at, zone, lang),
            })
            .collect(),
        may_ask: latest.retracted.is_none() && viewer.may(crate::api::auth::REQUESTERS),
        may_change: latest.retracted.is_none()
            && viewer.may(WRITERS)
            && crate::api::reports::may_change(&viewer.caller, &latest).is_ok(),
        release: held,
        may_decide,
        preview,
        report: latest,
    };
    html(StatusCode::OK, &page)
}

/// A report's content is read by whoever opens its page: the trail says who, never what.
async fn audit_read(
    state: &AppState,
    viewer: &Viewer,
    id: ReportId,
    version: Version,
    agreement: Option<&str>,
) -> Result<(), ConsoleError> {
    let mut read =
        AuditEvent::new("report.read", &viewer.caller.actor).report(id).detail(format!("version {version}, console"));
    if let Some(agreement) = agreement {
        read = read.agreement(agreement);
    }
    state.store.record_audit(&read, state.clock.now()).await.map_err(|e| viewer.fail(e.into()))
}

async fn received_page(
    viewer: &Viewer,
    state: &AppState,
    view: ReportView,
    zone: chrono_tz::Tz,
) -> Result<HttpResponse, ConsoleError> {
    let (t, lang) = (viewer.lang.texts(), viewer.lang);
    let names = partner_names(state).await.map_err(|e| viewer.fail(e))?;
    let origin = names
        .iter()
        .find(|(org, _)| org == view.origin.as_str())
        .map_or_else(|| view.origin.to_string(), |(_, n)| n.clone());
    let persons = match &view.persons {
        Some(ViewPersons::Full(persons)) => persons
            .iter()
            .map(|p| {
                let mut words = vec![t.person_role(p.role).to_owned()];
                words.extend(p.name.clone());
                words.extend(p.age.map(|a| a.to_string()));
                words.extend(p.description.clone());
                words.join(", ")
            })
            .collect(),
        Some(ViewPersons::Pseudonymous(persons)) => persons
            .iter()
            .map(|p| {
                format!(
                    "{} ({}) {}",
                    t.person_role(p.role),
                    t.persons_pseudonymous,
                    p.pseudonym.clone().unwrap_or_default()
                )
            })
            .collect(),
        Some(ViewPersons::Counts(counts)) => counts
            .iter()
            .map(|c| format!("{} × {} ({})", c.count, t.person_role(c.role), t.persons_roles_only))
            .collect(),
        None => Vec::new(),
    };
    let page = ReceivedPage {
        chrome: viewer.chrome(Section::None),
        intro: t.received_intro.replace("{origin}", &origin).replace("{agreement}", view.agreement.as_str()),
        when: view
            .observed_at
            .map_or_else(|| t.time_hidden.to_owned(), |at| time::shared(at, view.time_precision, zone, lang)),
        persons,
        may_ask: !view.retracted && viewer.may(crate::api::auth::REQUESTERS),
        view,
    };
    html(StatusCode::OK, &page)
}

/// Where a report of the organisation happened, in words.
fn place_of(report: &Report, t: &Texts) -> String {
    let l = &report.content.location;
    let site = l.site.as_ref().map(|s| match &s.name {
        Some(name) => format!("{name} ({})", t.site_kind(s.kind)),
        None => t.site_kind(s.kind).to_owned(),
    });
    let words: Vec<String> =
        [site, l.place_name.clone(), l.address.clone(), l.municipality_code.clone()].into_iter().flatten().collect();
    format!("{} · {:.5}, {:.5}", words.join(", "), l.lat, l.lon)
}

/// `GET /console/reports/{id}/retract`: what retracting means, and why.
pub async fn confirm_retract(
    viewer: Viewer,
    state: Data<AppState>,
    id: Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(WRITERS)?;
    let report = crate::api::reports::own_report(&viewer.caller, &state, &id).await.map_err(|e| viewer.fail(e))?;
    crate::api::reports::may_change(&viewer.caller, &report).map_err(|e| viewer.fail(e))?;
    let report = shown_one(&state, &viewer.caller.actor, &viewer.caller.roles, report)
        .await
        .map_err(|e| viewer.fail(e.into()))?;
    html(StatusCode::OK, &RetractPage { chrome: viewer.chrome(Section::None), report, error: None })
}

#[derive(Template)]
#[template(path = "retract.html")]
struct RetractPage {
    chrome: Chrome,
    report: Report,
    error: Option<String>,
}

/// `POST /console/reports/{id}/retract`.
pub async fn retract(
    viewer: Viewer,
    state: Data<AppState>,
    id: Path<String>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let data = viewer.form(WRITERS, &req, payload).await?;
    let expected = data.text("version").parse().ok().and_then(Version::new);
    match crate::api::reports::retract(&state, &viewer.caller, &id, expected, data.optional("reason")).await {
        Ok(report) => Ok(see_other(&format!("/console/reports/{}", report.id))),
        Err(ApiError::Validation(errors)) => {
            let report =
                crate::api::reports::own_report(&viewer.caller, &state, &id).await.map_err(|e| viewer.fail(e))?;
            let report = state.persons.shown_to(&viewer.caller.roles, report);
            let error = FieldErrors::of(&errors, viewer.lang).get("reason").map(str::to_owned);
            html(StatusCode::UNPROCESSABLE_ENTITY, &RetractPage { chrome: viewer.chrome(Section::None), report, error })
        }
        Err(other) => Err(viewer.fail(other)),
    }
}

/// Partners' names by organisation id (with this node's own).
pub async fn partner_names(state: &AppState) -> Result<Vec<(String, String)>, ApiError> {
    let mut names: Vec<(String, String)> =
        state.store.partners().await?.into_iter().map(|p| (p.org_id.to_string(), p.name)).collect();
    names.push((state.node.org_id.to_string(), state.node.name.clone()));
    Ok(names)
}
