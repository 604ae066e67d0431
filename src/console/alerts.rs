//! Urgent alerts in the console: every page of a reader carries the partners' urgent reports that
//! nobody here has seen yet, at its top, each with a "Seen" button; a small script on every page
//! follows the picture's live stream and, when an urgent report arrives, fetches the alerts again
//! (`GET /console/alerts`, the same block on its own), so an open console shows a new alert
//! within moments without a reload. Seeing one is what the API's `POST /api/v1/alerts/{id}/seen`
//! does: it leaves every console here and its origin is told.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::ConsoleSettings;
use super::i18n::Lang;
use super::page::{Chrome, ConsoleError, Section, html, see_other};
use super::time;
use super::viewer::Viewer;
use crate::api::AppState;
use crate::api::auth::READERS;
use crate::store::{Alert, Store};

/// The most alerts a page shows at once (the API lists them all).
const SHOWN: i64 = 20;

/// One alert as a page shows it.
#[derive(Clone)]
pub struct AlertLine {
    pub id: i64,
    pub href: String,
    pub title: String,
    pub origin: String,
    pub severity: &'static str,
    pub received: String,
}

/// The unseen alerts, as lines in `lang`; nothing if they cannot be read (the page still shows).
pub async fn unseen(store: &Store, lang: Lang, settings: &ConsoleSettings) -> Vec<AlertLine> {
    match store.unseen_alerts(SHOWN).await {
        Ok(alerts) => alerts.iter().map(|a| line(a, lang, settings)).collect(),
        Err(error) => {
            tracing::warn!(%error, "the unseen alerts could not be read for a console page");
            Vec::new()
        }
    }
}

fn line(alert: &Alert, lang: Lang, settings: &ConsoleSettings) -> AlertLine {
    let t = lang.texts();
    let view = alert.view.as_ref();
    let title = view.and_then(|v| v.title.clone()).or_else(|| view.map(|v| t.category(v.category).to_owned()));
    AlertLine {
        id: alert.id,
        href: format!("/console/reports/{}", alert.report),
        title: title.unwrap_or_default(),
        origin: alert.origin.clone(),
        severity: view.map_or("", |v| t.severity(v.severity)),
        received: time::moment(alert.received_at, settings.zone, lang),
    }
}

/// The alerts block alone, for the script that refreshes it.
#[derive(Template)]
#[template(path = "alerts_block.html")]
struct AlertsBlock {
    chrome: Chrome,
}

/// `GET /console/alerts?next=PAGE`: the alerts block of the page at `next`.
pub async fn block(viewer: Viewer, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    viewer.require(READERS)?;
    let next: Vec<(String, String)> = crate::http::input::query(&req).map_err(|e| viewer.fail(e))?;
    let next = next.iter().find(|(k, _)| k == "next").map(|(_, v)| v.as_str());
    let mut chrome = viewer.chrome(Section::None);
    chrome.here = super::signin::safe_next(next);
    html(StatusCode::OK, &AlertsBlock { chrome })
}

/// `POST /console/alerts/{id}/seen`: the reader has seen the alert; back to the page they were on.
pub async fn seen(
    viewer: Viewer,
    state: Data<AppState>,
    id: Path<String>,
    req: HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ConsoleError> {
    let data = viewer.form(READERS, &req, payload).await?;
    crate::api::alerts::see(&state, &viewer.caller, &id).await.map_err(|e| viewer.fail(e))?;
    Ok(see_other(&super::signin::safe_next(Some(data.text("next")))))
}
