//! The audit trail and the refused envelopes, for the node's operator: the trail filtered by time,
//! event, partner, report and agreement and paged, with the result of verifying the whole chain on
//! request; and the dead letters with their reasons.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::ConsoleSettings;
use super::page::{Chrome, ConsoleError, Section, html, url_encode};
use super::time;
use super::viewer::Viewer;
use crate::api::AppState;
use crate::api::auth::NODE_ADMINS;
use crate::store::AuditQuery;

/// Entries per page of the trail.
const PAGE: u32 = 100;

/// One entry as the page shows it.
struct EntryLine {
    seq: i64,
    at: String,
    event: String,
    actor: String,
    partner: String,
    report: String,
    agreement: String,
    detail: String,
}

/// The trail's filters as typed.
#[derive(Default)]
struct TrailFilters {
    since: String,
    until: String,
    event: String,
    partner: String,
    report: String,
    agreement: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct TrailPage {
    chrome: Chrome,
    filters: TrailFilters,
    lines: Vec<EntryLine>,
    next: Option<String>,
    verified: Option<(bool, String)>,
}

/// `GET /console/audit`: a page of the trail; `?verify=1` verifies the whole chain first.
pub async fn trail(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(NODE_ADMINS)?;
    let t = viewer.lang.texts();
    let (zone, lang) = (settings.zone, viewer.lang);
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let value =
        |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let filters = TrailFilters {
        since: value("since"),
        until: value("until"),
        event: value("event"),
        partner: value("partner"),
        report: value("report"),
        agreement: value("agreement"),
    };
    let optional = |v: &str| Some(v.to_owned()).filter(|v| !v.is_empty());
    let query = AuditQuery {
        since: time::parse_input(&filters.since, zone).ok(),
        until: time::parse_input(&filters.until, zone).ok(),
        event: optional(&filters.event),
        partner: optional(&filters.partner),
        report: optional(&filters.report),
        agreement: optional(&filters.agreement),
        after: value("after").parse().unwrap_or(0),
        limit: PAGE,
    };
    let verified = if value("verify") == "1" {
        // As `lagesbild audit verify` does: the signed checkpoint (if entries were pruned), then the chain.
        let node_key = state.federation.as_ref().map(|f| f.keys.signing.public());
        Some(match crate::audit_retention::verify(&state.store, node_key).await {
            Ok(checked) => (true, t.audit_verified.replace("{n}", &checked.to_string())),
            Err(crate::audit_retention::VerifyError::Broken(broken)) => {
                (false, t.audit_broken.replace("{seq}", &broken.seq.to_string()).replace("{why}", &broken.reason))
            }
            Err(crate::audit_retention::VerifyError::Store(e)) => return Err(viewer.fail(e.into())),
            Err(other) => (false, other.to_string()),
        })
    } else {
        None
    };
    let page = crate::api::audit::page(&state, query).await.map_err(|e| viewer.fail(e))?;
    let next = page.next_after.map(|after| {
        let mut keep: Vec<(String, String)> =
            pairs.iter().filter(|(k, _)| k != "after" && k != "verify").cloned().collect();
        keep.push(("after".into(), after.to_string()));
        let query: Vec<String> = keep.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect();
        format!("/console/audit?{}", query.join("&"))
    });
    let lines = page
        .entries
        .into_iter()
        .map(|e| EntryLine {
            seq: e.seq,
            at: time::moment(e.at, zone, lang),
            event: e.event.event,
            actor: e.event.actor,
            partner: e.event.partner.unwrap_or_default(),
            report: e.event.report.unwrap_or_default(),
            agreement: e.event.agreement.unwrap_or_default(),
            detail: e.event.detail.unwrap_or_default(),
        })
        .collect();
    html(StatusCode::OK, &TrailPage { chrome: viewer.chrome(Section::Audit), filters, lines, next, verified })
}

/// One refused envelope as the page shows it.
struct LetterLine {
    at: String,
    partner: String,
    reason: String,
    hash: String,
}

#[derive(Template)]
#[template(path = "dead_letters.html")]
struct LettersPage {
    chrome: Chrome,
    lines: Vec<LetterLine>,
}

/// `GET /console/dead-letters`.
pub async fn dead_letters(
    viewer: Viewer,
    state: Data<AppState>,
    settings: Data<ConsoleSettings>,
) -> Result<HttpResponse, ConsoleError> {
    viewer.require(NODE_ADMINS)?;
    let lines = crate::api::dead_letters::latest(&state)
        .await
        .map_err(|e| viewer.fail(e))?
        .into_iter()
        .map(|l| LetterLine {
            at: time::moment(l.received_at, settings.zone, viewer.lang),
            partner: l.partner,
            reason: l.reason,
            hash: l.envelope_hash,
        })
        .collect();
    html(StatusCode::OK, &LettersPage { chrome: viewer.chrome(Section::DeadLetters), lines })
}
