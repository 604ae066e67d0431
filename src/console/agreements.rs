//! Agreements in the console: the list with where each stands; an agreement's page with its
//! purpose, parties and who has signed, validity and evaluation date, and its flows as a table a
//! non-lawyer can read; "what does partner X see" of any of the organisation's reports; and, for
//! an agreement administrator, proposing one (a TOML file, pasted or uploaded, or a template from
//! `policies/`), signing, declining and revoking, each after a page that names the consequence.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::ConsoleSettings;
use super::i18n::{Lang, Texts};
use super::page::{Chrome, ConfirmPage, ConsoleError, Section, html, see_other};
use super::recipients::{FieldLine, field_lines};
use super::reports::partner_names;
use super::time;
use super::viewer::Viewer;
use crate::api::AppState;
use crate::api::agreements::{
    AgreementView, all, end_agreement, preview_report, propose_agreement, sign_agreement, stored,
};
use crate::api::auth::{AGREEMENT_ADMINS, AGREEMENT_READERS, PREVIEWERS};
use crate::domain::agreement::template::TEMPLATES;
use crate::domain::agreement::{Agreement, Area, Flow, file};
use crate::domain::situation::{SituationQuery, Source};
use crate::federation::agreements as lifecycle;
use crate::http::ApiError;

/// One agreement in the list.
struct ListLine {
    id: String,
    title: String,
    state: &'static str,
    state_class: String,
    parties: String,
    valid_until: String,
}

#[derive(Template)]
#[template(path = "agreements.html")]
struct ListPage {
    chrome: Chrome,
    lines: Vec<ListLine>,
    may_propose: bool,
}

/// `GET /console/agreements`.
pub async fn list(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(AGREEMENT_READERS)?;
    let t = viewer.lang.texts();
    let lines = all(&state)
        .await
        .map_err(|e| viewer.fail(e))?
        .into_iter()
        .map(|v| ListLine {
            id: v.agreement.id.to_string(),
            title: v.agreement.title.clone(),
            state: t.agreement_state(v.status.state),
            state_class: format!("state-{}", v.status.state),
            parties: v.agreement.parties.iter().map(|p| p.name.clone()).collect::<Vec<_>>().join(", "),
            valid_until: time::moment(v.agreement.valid_until, settings.zone, viewer.lang),
        })
        .collect();
    html(
        StatusCode::OK,
        &ListPage { chrome: viewer.chrome(Section::Agreements), lines, may_propose: viewer.may(AGREEMENT_ADMINS) },
    )
}

/// A party as the agreement's page shows it.
struct PartyLine {
    name: String,
    org: String,
    signed: bool,
}

/// A flow as the agreement's page shows it.
struct FlowTable {
    sentence: String,
    categories: String,
    area: String,
    min_severity: &'static str,
    max_tlp: String,
    onward: &'static str,
    rules: Vec<(&'static str, String, String)>,
}

#[derive(Template)]
#[template(path = "agreement.html")]
struct AgreementPage {
    chrome: Chrome,
    view: AgreementView,
    /// Where it stands, in a sentence of the reader's language.
    said: String,
    state: &'static str,
    state_class: String,
    valid: String,
    evaluation: String,
    parties: Vec<PartyLine>,
    flows: Vec<FlowTable>,
    /// Own current reports to preview: id and title.
    reports: Vec<(String, String)>,
    /// The other parties: org and name.
    recipients: Vec<(String, String)>,
    chosen_report: String,
    chosen_recipient: String,
    preview: Option<PreviewShown>,
    may_preview: bool,
    actions: Vec<(&'static str, &'static str, &'static str)>,
}

/// A preview as the page shows it.
struct PreviewShown {
    shares: bool,
    reason: String,
    fields: Vec<FieldLine>,
}

/// `GET /console/agreements/{id}`, with `?report=&recipient=` for "what does partner X see".
pub async fn show(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(AGREEMENT_READERS)?;
    let (t, lang, zone) = (viewer.lang.texts(), viewer.lang, settings.zone);
    let (checked, revocation) = stored(&state, &id).await.map_err(|e| viewer.fail(e))?;
    let now = state.clock.now();
    let status = lifecycle::status(&checked, revocation.as_ref(), now);
    let a = &checked.agreement;
    let own = state.node.org_id.clone();
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let param = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let (chosen_report, chosen_recipient) = (param("report"), param("recipient"));
    let may_preview = viewer.may(PREVIEWERS);
    let preview = if may_preview && !chosen_report.is_empty() && !chosen_recipient.is_empty() {
        let preview = preview_report(&state, &viewer.caller, &id, &chosen_report, &chosen_recipient)
            .await
            .map_err(|e| viewer.fail(e))?;
        Some(PreviewShown {
            shares: preview.decision == "share",
            reason: preview.reason.clone().unwrap_or_default(),
            fields: preview
                .view
                .as_ref()
                .map(|v| field_lines(&preview.explanation, v, t, zone, lang))
                .unwrap_or_default(),
        })
    } else {
        None
    };
    let reports = if may_preview { own_reports(&state, now).await.map_err(|e| viewer.fail(e))? } else { Vec::new() };
    let names = partner_names(&state).await.map_err(|e| viewer.fail(e))?;
    let mut actions = Vec::new();
    // A framework held for local agreements is its own parties' to sign and revoke.
    if viewer.may(AGREEMENT_ADMINS) && !checked.held_as_framework {
        let ended = matches!(status.state, "revoked" | "declined" | "expired");
        if status.awaiting.contains(&own) && !ended {
            actions.push(("sign", t.agreement_sign, "primary"));
            actions.push(("decline", t.agreement_decline, "danger"));
        }
        if !ended && !status.awaiting.contains(&own) {
            actions.push(("revoke", t.agreement_revoke, "danger"));
        }
    }
    let said = status_words(&status, revocation.as_ref(), a, t, zone, lang);
    let page = AgreementPage {
        chrome: viewer.chrome(Section::Agreements),
        said,
        state: t.agreement_state(status.state),
        state_class: format!("state-{}", status.state),
        valid: format!("{} – {}", time::moment(a.valid_from, zone, lang), time::moment(a.valid_until, zone, lang)),
        evaluation: time::shared(a.evaluation_date, Some(crate::domain::view::TimePrecision::Day), zone, lang),
        parties: a
            .parties
            .iter()
            .map(|p| PartyLine {
                name: p.name.clone(),
                org: p.org_id.to_string(),
                signed: status.signed_by.contains(&p.org_id),
            })
            .collect(),
        flows: a.flows.iter().map(|f| flow_table(a, f, t, &names)).collect(),
        recipients: a
            .parties
            .iter()
            .filter(|p| p.org_id != own)
            .map(|p| (p.org_id.to_string(), p.name.clone()))
            .collect(),
        reports,
        chosen_report,
        chosen_recipient,
        preview,
        may_preview,
        actions,
        view: AgreementView {
            summary: a.summary(),
            agreement: a.clone(),
            status,
            held_as_framework: checked.held_as_framework,
        },
    };
    html(StatusCode::OK, &page)
}

/// Where an agreement stands, in a sentence of the reader's language.
fn status_words(
    status: &crate::domain::agreement::AgreementStatus,
    revocation: Option<&crate::domain::agreement::RevocationRecord>,
    agreement: &Agreement,
    t: &Texts,
    zone: chrono_tz::Tz,
    lang: Lang,
) -> String {
    let when = |at| time::moment(at, zone, lang);
    match (status.state, revocation) {
        ("revoked" | "declined", Some(r)) => {
            let words = if status.state == "revoked" { t.status_revoked } else { t.status_declined };
            let said = words.replace("{who}", r.by.as_str()).replace("{when}", &when(r.at));
            match &r.reason {
                Some(reason) => format!("{said}: {reason}"),
                None => format!("{said}."),
            }
        }
        ("framework_inactive", _) => t
            .status_framework
            .replace("{framework}", agreement.framework.as_ref().map(|f| f.as_str()).unwrap_or_default()),
        ("awaiting_signatures", _) => t
            .status_awaiting
            .replace("{n}", &status.signed_by.len().to_string())
            .replace("{m}", &agreement.parties.len().to_string()),
        ("not_started", _) => t.status_not_started.replace("{when}", &when(agreement.valid_from)),
        ("expired", _) => t.status_expired.replace("{when}", &when(agreement.valid_until)),
        ("active", _) => t.status_active.replace("{when}", &when(agreement.valid_until)),
        _ => status.detail.clone(),
    }
}

/// The organisation's current reports, newest first, for the preview's choice.
async fn own_reports(state: &AppState, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<(String, String)>, ApiError> {
    let query = SituationQuery { source: Some(Source::Own), limit: 200, ..SituationQuery::default() };
    let page = state.store.situation(&query, now).await?;
    Ok(page
        .reports
        .iter()
        .filter_map(|r| match r {
            crate::domain::situation::PictureReport::Own(report) => {
                Some((report.id.to_string(), report.content.title.clone()))
            }
            crate::domain::situation::PictureReport::Received(_) => None,
        })
        .collect())
}

/// A flow as a table: who shares with whom, what, where, and what each field becomes.
fn flow_table(agreement: &Agreement, flow: &Flow, t: &Texts, names: &[(String, String)]) -> FlowTable {
    let name = |org: &crate::domain::OrgId| {
        agreement
            .party(org)
            .map(|p| p.name.clone())
            .or_else(|| names.iter().find(|(id, _)| id == org.as_str()).map(|(_, n)| n.clone()))
            .unwrap_or_else(|| org.to_string())
    };
    let list = |orgs: &[crate::domain::OrgId]| orgs.iter().map(name).collect::<Vec<_>>().join(", ");
    let arrow = if t.lang == Lang::Sv { "delar med" } else { "share with" };
    let f = &flow.fields;
    let rules = vec![
        ("title", f.title.to_string()),
        ("description", f.description.to_string()),
        ("status", f.status.to_string()),
        ("observed_at", f.observed_at.to_string()),
        ("location", f.location.to_string()),
        ("place", f.place.to_string()),
        ("site", f.site.to_string()),
        ("persons", f.persons.to_string()),
        ("actions", f.actions.to_string()),
    ];
    FlowTable {
        sentence: format!("{} {arrow} {}", list(&flow.from), list(&flow.to)),
        categories: flow.categories.iter().map(|c| t.category(*c)).collect::<Vec<_>>().join(", "),
        area: match &flow.area {
            None => t.flow_area_anywhere.to_owned(),
            Some(Area::Bbox(_)) => t.flow_area_box.to_owned(),
            Some(Area::Polygon(_)) => t.flow_area_polygon.to_owned(),
            Some(Area::Municipalities(codes)) => t.flow_area_municipalities.replace("{codes}", &codes.join(", ")),
        },
        min_severity: t.severity(flow.min_severity),
        max_tlp: format!("TLP:{}", flow.max_tlp),
        onward: if flow.onward_sharing { t.yes } else { t.no },
        rules: rules.into_iter().map(|(field, rule)| (t.field(field), rule.clone(), rule_meaning(&rule, t))).collect(),
    }
}

/// A field rule in plain words.
fn rule_meaning(rule: &str, t: &Texts) -> String {
    let sv = t.lang == Lang::Sv;
    let words = match rule {
        "keep" => {
            if sv {
                "visas som det är"
            } else {
                "shown as it is"
            }
        }
        "drop" => {
            if sv {
                "visas inte"
            } else {
                "not shown"
            }
        }
        "hour" => {
            if sv {
                "till timmen"
            } else {
                "to the hour"
            }
        }
        "day" => {
            if sv {
                "bara dagen"
            } else {
                "the day only"
            }
        }
        "municipality" => {
            if sv {
                "bara kommunen"
            } else {
                "the municipality only"
            }
        }
        "kind" => {
            if sv {
                "bara typen av plats"
            } else {
                "the kind of site only"
            }
        }
        "roles" => {
            if sv {
                "bara roller och antal"
            } else {
                "roles and counts only"
            }
        }
        "pseudonymise" => {
            if sv {
                "roller med pseudonym"
            } else {
                "roles with a pseudonym"
            }
        }
        other => {
            return match other.strip_prefix("grid ").and_then(|m| m.strip_suffix('m')) {
                Some(m) if sv => format!("en {m} m-ruta"),
                Some(m) => format!("a {m} m square"),
                None => other.to_owned(),
            };
        }
    };
    words.to_owned()
}

#[derive(Template)]
#[template(path = "agreement_new.html")]
struct ProposePage {
    chrome: Chrome,
    templates: Vec<(&'static str, bool)>,
    text: String,
    problems: Vec<String>,
}

/// `GET /console/agreements/new`, with `?template=` to start from one of `policies/`.
pub async fn new(viewer: Viewer, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    viewer.require(AGREEMENT_ADMINS)?;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let chosen = pairs.iter().find(|(k, _)| k == "template").map(|(_, v)| v.as_str()).unwrap_or("");
    let text =
        TEMPLATES.iter().find(|(name, _)| *name == chosen).map(|(_, text)| (*text).to_owned()).unwrap_or_default();
    let page = ProposePage {
        chrome: viewer.chrome(Section::Agreements),
        templates: TEMPLATES.iter().map(|(name, _)| (*name, *name == chosen)).collect(),
        text,
        problems: Vec::new(),
    };
    html(StatusCode::OK, &page)
}

/// `POST /console/agreements`: proposes the agreement of the uploaded or pasted TOML.
pub async fn propose(
    viewer: Viewer,
    state: Data<AppState>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let form = viewer.form(AGREEMENT_ADMINS, &req, payload).await?;
    let text = form.optional("file").unwrap_or_else(|| form.text("text").to_owned());
    let refused = |text: String, problems: Vec<String>| {
        let page = ProposePage {
            chrome: viewer.chrome(Section::Agreements),
            templates: TEMPLATES.iter().map(|(name, _)| (*name, false)).collect(),
            text,
            problems,
        };
        html(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    let agreement = match read_with_framework(&state, &text).await {
        Ok(agreement) => agreement,
        Err(problems) => return refused(text, problems),
    };
    match propose_agreement(&state, &viewer.caller, agreement).await {
        Ok(view) => Ok(see_other(&format!("/console/agreements/{}", view.agreement.id))),
        Err(ApiError::Validation(errors)) => {
            refused(text, errors.errors().iter().map(|e| format!("{}: {}", e.field, e.message)).collect())
        }
        Err(ApiError::Conflict(why)) => refused(text, vec![why]),
        Err(other) => Err(viewer.fail(other)),
    }
}

/// Reads an agreement file, checked as `agreement check` checks it: under the framework it names,
/// when this node holds that framework. Every problem by line and path.
async fn read_with_framework(state: &AppState, text: &str) -> Result<Agreement, Vec<String>> {
    let plain: Result<Agreement, _> = toml::from_str(text);
    let framework = match plain.as_ref().ok().and_then(|a| a.framework.clone()) {
        Some(id) => match stored(state, id.as_str()).await {
            Ok((checked, _)) => Some(checked.agreement),
            Err(_) => {
                return Err(vec![format!(
                    "framework: this node holds no agreement {id}; it must be a party to it first"
                )]);
            }
        },
        None => None,
    };
    file::read(text, framework.as_ref()).map_err(|problems| problems.iter().map(ToString::to_string).collect())
}

/// What a lifecycle action is called and what it does, for the confirmation page.
fn action_words(action: &str, t: &Texts) -> Option<(&'static str, &'static str, &'static str, bool)> {
    match action {
        "sign" => Some((t.agreement_sign, t.sign_consequence, "primary", false)),
        "revoke" => Some((t.agreement_revoke, t.revoke_consequence, "danger", true)),
        "decline" => Some((t.agreement_decline, t.decline_consequence, "danger", true)),
        _ => None,
    }
}

/// `GET /console/agreements/{id}/{sign|revoke|decline}`: the consequence, named before it is done.
pub async fn confirm(
    viewer: Viewer,
    state: Data<AppState>,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(AGREEMENT_ADMINS)?;
    let (id, action) = path.into_inner();
    let t = viewer.lang.texts();
    let (button, consequence, button_class, reason) = action_words(&action, t)
        .ok_or_else(|| ConsoleError::page(StatusCode::NOT_FOUND, viewer.lang, t.page_missing))?;
    let (checked, _) = stored(&state, &id).await.map_err(|e| viewer.fail(e))?;
    let page = ConfirmPage {
        chrome: viewer.chrome(Section::Agreements),
        heading: format!("{button}: {}", checked.agreement.title),
        consequence,
        action: format!("/console/agreements/{id}/{action}"),
        button,
        button_class,
        reason,
        back: format!("/console/agreements/{id}"),
    };
    html(StatusCode::OK, &page)
}

/// `POST /console/agreements/{id}/{sign|revoke|decline}`.
pub async fn act(
    viewer: Viewer,
    state: Data<AppState>,
    path: Path<(String, String)>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let form = viewer.form(AGREEMENT_ADMINS, &req, payload).await?;
    let (id, action) = path.into_inner();
    let reason = form.optional("reason");
    let caller = &viewer.caller;
    let done = match action.as_str() {
        "sign" => sign_agreement(&state, caller, &id).await,
        "revoke" => end_agreement(&state, caller, &id, reason, lifecycle::revoke).await,
        "decline" => end_agreement(&state, caller, &id, reason, lifecycle::decline).await,
        _ => {
            let t = viewer.lang.texts();
            return Err(ConsoleError::page(StatusCode::NOT_FOUND, viewer.lang, t.page_missing));
        }
    };
    done.map_err(|e| viewer.fail(e))?;
    Ok(see_other(&format!("/console/agreements/{id}")))
}
