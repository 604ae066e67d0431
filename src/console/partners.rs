//! Partners and the systems that follow the picture, for the node's operator: each partner's status
//! in plain words (last contact, what waits for it, the last delivery, the last error), importing a
//! partner's card (pasted or uploaded), blocking and unblocking after a page that names the
//! consequence; and the webhook subscriptions with how their deliveries go.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::ConsoleSettings;
use super::page::{Chrome, ConfirmPage, ConsoleError, Section, html, see_other};
use super::time;
use super::viewer::Viewer;
use crate::api::AppState;
use crate::api::auth::{NODE_ADMINS, SUBSCRIBERS, SUBSCRIPTION_READERS};
use crate::api::partners::{import as import_card, set_blocked, with_delivery};
use crate::crypto::jws::Jws;
use crate::http::ApiError;

/// A partner as the page shows it.
struct PartnerLine {
    org: String,
    name: String,
    blocked: bool,
    last_contact: String,
    queued: i64,
    last_delivery: String,
    /// The last problem in plain words, and as the node recorded it.
    problem: Option<(String, String)>,
}

/// A delivery or contact error in words an operator can act on.
fn plain_words(raw: &str, t: &super::i18n::Texts) -> String {
    let lower = raw.to_ascii_lowercase();
    let words = if lower.contains("refused") && !lower.contains("connection refused") {
        return format!("{} {raw}", t.partner_refused_envelope);
    } else if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("pin")
    {
        t.partner_tls
    } else if lower.contains("timed out") || lower.contains("timeout") || lower.contains("no answer") {
        t.partner_timeout
    } else if lower.contains("503") || lower.contains("429") || lower.contains("busy") {
        t.partner_busy
    } else if lower.contains("connect") || lower.contains("sending request") || lower.contains("dns") {
        t.partner_unreachable
    } else {
        return raw.to_owned();
    };
    words.to_owned()
}

#[derive(Template)]
#[template(path = "partners.html")]
struct PartnersPage {
    chrome: Chrome,
    lines: Vec<PartnerLine>,
    card: String,
    problem: Option<String>,
}

/// `GET /console/partners`.
pub async fn list(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(NODE_ADMINS)?;
    render(&viewer, &state, &settings, String::new(), None, StatusCode::OK).await
}

async fn render(
    viewer: &Viewer,
    state: &AppState,
    settings: &ConsoleSettings,
    card: String,
    problem: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let t = viewer.lang.texts();
    let (zone, lang) = (settings.zone, viewer.lang);
    let when = |t_: Option<chrono::DateTime<chrono::Utc>>| {
        t_.map_or_else(|| t.never.to_owned(), |at| time::moment(at, zone, lang))
    };
    let partners = state.store.partners().await.map_err(|e| viewer.fail(e.into()))?;
    let lines = with_delivery(state, partners)
        .await
        .map_err(|e| viewer.fail(e))?
        .into_iter()
        .map(|p| PartnerLine {
            org: p.org_id.to_string(),
            name: p.name,
            blocked: p.blocked,
            last_contact: when(p.last_contact_at),
            queued: p.delivery.queued,
            last_delivery: when(p.delivery.last_delivered_at),
            // The delivery's error is what an operator acts on; the contact's only while no contact
            // has succeeded since.
            problem: p
                .delivery
                .last_error
                .or(p.last_error.filter(|_| p.last_error_at >= p.last_contact_at))
                .map(|raw| (plain_words(&raw, t), raw)),
        })
        .collect();
    html(status, &PartnersPage { chrome: viewer.chrome(Section::Partners), lines, card, problem })
}

/// `POST /console/partners`: imports a card, pasted or uploaded.
pub async fn import(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let form = viewer.form(NODE_ADMINS, &req, payload).await?;
    let text = form.optional("file").unwrap_or_else(|| form.text("card").to_owned());
    let card = Jws::parse(text.as_bytes())
        .map_err(|e| ApiError::MalformedBody(format!("this is not a signed node card (JWS JSON): {e}")));
    let outcome = match card {
        Ok(card) => import_card(&state, &viewer.caller, &card).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(see_other("/console/partners")),
        Err(error @ (ApiError::MalformedBody(_) | ApiError::Validation(_) | ApiError::Conflict(_))) => {
            let problem = viewer.fail(error).to_string();
            render(&viewer, &state, &settings, text, Some(problem), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(other) => Err(viewer.fail(other)),
    }
}

/// `GET /console/partners/{org}/{block|unblock}`: the consequence, named before it is done.
pub async fn confirm(
    viewer: Viewer,
    state: Data<AppState>,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(NODE_ADMINS)?;
    let (org, action) = path.into_inner();
    let t = viewer.lang.texts();
    let (button, consequence, button_class) = match action.as_str() {
        "block" => (t.partner_block, t.block_consequence, "danger"),
        "unblock" => (t.partner_unblock, t.unblock_consequence, "primary"),
        _ => return Err(ConsoleError::page(StatusCode::NOT_FOUND, viewer.lang, t.page_missing)),
    };
    let partner = crate::domain::OrgId::parse(&org).ok();
    let record = match partner {
        Some(org) => state.store.partner(&org).await.map_err(|e| viewer.fail(e.into()))?,
        None => None,
    };
    let record =
        record.ok_or_else(|| viewer.fail(ApiError::NotFound("no partner with this organisation id".into())))?;
    let page = ConfirmPage {
        chrome: viewer.chrome(Section::Partners),
        heading: format!("{button}: {}", record.name),
        consequence,
        action: format!("/console/partners/{org}/{action}"),
        button,
        button_class,
        reason: false,
        back: "/console/partners".into(),
    };
    html(StatusCode::OK, &page)
}

/// `POST /console/partners/{org}/{block|unblock}`.
pub async fn act(
    viewer: Viewer,
    state: Data<AppState>,
    path: Path<(String, String)>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    viewer.form(NODE_ADMINS, &req, payload).await?;
    let (org, action) = path.into_inner();
    let blocked = match action.as_str() {
        "block" => true,
        "unblock" => false,
        _ => return Err(ConsoleError::page(StatusCode::NOT_FOUND, viewer.lang, viewer.lang.texts().page_missing)),
    };
    set_blocked(&state, &viewer.caller, &org, blocked).await.map_err(|e| viewer.fail(e))?;
    Ok(see_other("/console/partners"))
}

/// A subscription as the page shows it.
struct SubscriptionLine {
    id: String,
    name: String,
    target: String,
    queued: i64,
    dropped: i64,
    last_success: String,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "subscriptions.html")]
struct SubscriptionsPage {
    chrome: Chrome,
    lines: Vec<SubscriptionLine>,
    may_delete: bool,
}

/// `GET /console/subscriptions`.
pub async fn subscriptions(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(SUBSCRIPTION_READERS)?;
    let t = viewer.lang.texts();
    let lines = crate::api::subscriptions::all(&state, &viewer.caller)
        .await
        .map_err(|e| viewer.fail(e))?
        .into_iter()
        .map(|s| SubscriptionLine {
            name: s.name.clone().unwrap_or_default(),
            target: s.target_url.clone(),
            queued: s.delivery.queued,
            dropped: s.delivery.dropped,
            last_success: s
                .delivery
                .last_success_at
                .map_or_else(|| t.never.to_owned(), |at| time::moment(at, settings.zone, viewer.lang)),
            problem: s.delivery.last_error.clone(),
            id: s.id,
        })
        .collect();
    let page =
        SubscriptionsPage { chrome: viewer.chrome(Section::Subscriptions), lines, may_delete: viewer.may(SUBSCRIBERS) };
    html(StatusCode::OK, &page)
}

/// `POST /console/subscriptions/{id}/delete`.
pub async fn delete_subscription(
    viewer: Viewer,
    state: Data<AppState>,
    id: Path<String>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    viewer.form(SUBSCRIBERS, &req, payload).await?;
    crate::api::subscriptions::remove(&state, &viewer.caller, &id).await.map_err(|e| viewer.fail(e))?;
    Ok(see_other("/console/subscriptions"))
}
