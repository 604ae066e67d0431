//! Urgent alerts over the API (issue 19): the partners' urgent reports this node holds as alerts,
//! marking one seen (which sends the signed receipt to its origin), and, for the node's own urgent
//! reports, which partners have seen them. The console shows the same alerts on every page.

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Caller, READERS};
use super::reports::own_report;
use crate::domain::audit::AuditEvent;
use crate::domain::{Category, ReportId, Severity};
use crate::http::input::query;
use crate::http::problem::{ApiError, AuthProblems, NotFoundProblems, Problem};
use crate::store::{Alert, AlertReceipt};

/// How many alerts a list holds at most, and how far back `state=all` reaches.
const MAX_ALERTS: i64 = 200;
const ALL_REACH_DAYS: i64 = 7;

/// A partner's urgent report, as an alert here.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOut {
    /// The alert's number here.
    pub id: i64,
    #[schema(value_type = String, format = Uuid)]
    pub report: ReportId,
    #[schema(value_type = String)]
    pub origin: String,
    /// The version that raised it.
    pub version: i64,
    pub agreement: String,
    pub received_at: DateTime<Utc>,
    /// The report as it stands (absent once it left the picture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// When someone here first saw it, and who.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_by: Option<String>,
}

impl From<Alert> for AlertOut {
    fn from(alert: Alert) -> Self {
        let view = alert.view.as_ref();
        Self {
            id: alert.id,
            report: alert.report,
            origin: alert.origin,
            version: alert.version,
            agreement: alert.agreement,
            received_at: alert.received_at,
            category: view.map(|v| v.category),
            severity: view.map(|v| v.severity),
            title: view.and_then(|v| v.title.clone()),
            seen_at: alert.seen_at,
            seen_by: alert.seen_by,
        }
    }
}

/// A list of alerts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertOut>,
}

/// Which alerts to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertFilter {
    /// `unseen` (default: what nobody here has seen yet) or `all` (the last seven days).
    #[param(value_type = Option<String>, pattern = "^(unseen|all)$")]
    state: Option<String>,
}

/// A partner that has seen one of your urgent reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptOut {
    #[schema(value_type = String)]
    pub partner: String,
    /// The version seen.
    pub version: i64,
    /// The roles of the person there who saw it (the partner does not say who).
    pub roles: Vec<String>,
    pub seen_at: DateTime<Utc>,
    /// When the partner's receipt arrived here.
    pub received_at: DateTime<Utc>,
}

impl From<AlertReceipt> for ReceiptOut {
    fn from(r: AlertReceipt) -> Self {
        Self { partner: r.partner, version: r.version, roles: r.roles, seen_at: r.seen_at, received_at: r.received_at }
    }
}

/// Which partners have seen one of your urgent reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptList {
    pub receipts: Vec<ReceiptOut>,
}

/// Partners' urgent reports held here as alerts: by default those nobody here has seen yet.
#[utoipa::path(
    get, path = "/api/v1/alerts", tag = "alerts",
    params(AlertFilter),
    responses(
        (status = 200, description = "The alerts, newest first (at most 200)", body = AlertList),
        (status = 422, description = "An unknown `state`", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn list(caller: Caller, state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let filter: AlertFilter = query(&req)?;
    let alerts = match filter.state.as_deref() {
        None | Some("unseen") => state.store.unseen_alerts(MAX_ALERTS).await?,
        Some("all") => {
            let since = state.clock.now() - Duration::days(ALL_REACH_DAYS);
            state.store.alerts_since(since, MAX_ALERTS).await?
        }
        Some(_) => {
            return Err(ApiError::Validation(crate::domain::ValidationErrors::single(
                "state",
                "must be unseen or all",
            )));
        }
    };
    Ok(HttpResponse::Ok().json(AlertList { alerts: alerts.into_iter().map(AlertOut::from).collect() }))
}

/// Say that you have seen an alert: it leaves every console here, and its origin is told that
/// someone with your roles at your organisation has seen it. Seeing it again changes nothing.
#[utoipa::path(
    post, path = "/api/v1/alerts/{id}/seen", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's number")),
    responses(
        (status = 200, description = "Seen (by you now, or by whoever saw it first)", body = AlertOut),
        AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn seen(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    Ok(HttpResponse::Ok().json(AlertOut::from(see(&state, &caller, &id).await?)))
}

/// Which partners have seen one of your organisation's urgent reports, and when.
#[utoipa::path(
    get, path = "/api/v1/reports/{id}/seen-by", tag = "alerts",
    params(("id" = String, Path, description = "The report's id")),
    responses(
        (status = 200, description = "The partners' receipts, in the order they saw it", body = ReceiptList),
        AuthProblems, NotFoundProblems,
    ),
    security(("bearer" = ["reporter", "coordinator", "analyst"]))
)]
pub async fn seen_by(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let report = own_report(&caller, &state, &id).await?;
    let receipts = state.store.alert_receipts(report.id).await?;
    Ok(HttpResponse::Ok().json(ReceiptList { receipts: receipts.into_iter().map(ReceiptOut::from).collect() }))
}

/// Marks alert `id` seen by `caller` and queues the receipt for its origin: what the API and the
/// console both do. An alert seen already is answered as it is.
pub(crate) async fn see(state: &AppState, caller: &Caller, id: &str) -> Result<Alert, ApiError> {
    let no_such = || ApiError::NotFound("no alert with this number".into());
    let id: i64 = id.parse().map_err(|_| no_such())?;
    let alert = state.store.alert(id).await?.ok_or_else(no_such)?;
    if alert.seen_at.is_some() {
        return Ok(alert);
    }
    let federation = state.federation.as_ref().ok_or_else(no_such)?;
    let now = state.clock.now();
    let roles: Vec<String> = caller.roles.iter().map(|r| r.as_str().to_owned()).collect();
    let receipt = crate::federation::alerts::receipt(federation, &alert, roles.clone(), now)
        .map_err(|e| ApiError::Internal(format!("alert {id} names an origin that is no organisation id: {e}")))?;
    let audit = AuditEvent::new("alert.seen", &caller.actor)
        .report(alert.report)
        .agreement(&alert.agreement)
        .partner(&receipt.recipient)
        .detail(format!("version {} of {}'s urgent report", alert.version, alert.origin));
    // Someone else may have seen it meanwhile: then their receipt is the one queued.
    if state.store.mark_alert_seen(id, &caller.actor, &roles.join(","), &receipt, &audit, now).await? {
        federation.lifecycle.wake();
    }
    state.store.alert(id).await?.ok_or_else(no_such)
}
