//! Agreements through the user API: propose one (from the same document as a `policies/` file, in
//! JSON), read it with a plain-language summary and its status, sign it, decline it while it awaits
//! signatures, revoke it, and preview exactly what a recipient would receive of one of your reports
//! under it.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{AGREEMENT_ADMINS, AGREEMENT_READERS, Caller, PREVIEWERS};
use crate::domain::agreement::Agreement;
use crate::domain::agreement::{AgreementStatus, RevocationRecord};
use crate::domain::audit::AuditEvent;
use crate::domain::policy::{Decision, FieldDecision, decide};
use crate::domain::view::ReportView;
use crate::domain::{OrgId, ValidationErrors};
use crate::federation::Federation;
use crate::federation::agreements::{self, Checked};
use crate::http::problem::{ApiError, AuthProblems, BodyProblems, Problem};

/// An agreement as a party's admin reviews it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementView {
    #[schema(value_type = Object)]
    pub agreement: Agreement,
    /// What flows where, one sentence per flow.
    pub summary: Vec<String>,
    pub status: AgreementStatus,
    /// This node holds it as the framework of its local agreements and is no party to it: it
    /// neither signs nor revokes it, and nothing flows under it here.
    pub held_as_framework: bool,
}

/// Why an agreement is revoked or declined.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why: 1 to 1 000 characters, no control characters but line breaks.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub reason: Option<String>,
}

/// Which report, for whom.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    /// One of your organisation's reports.
    #[param(value_type = String, format = Uuid)]
    report: String,
    /// The recipient organisation.
    #[param(value_type = OrgId)]
    recipient: String,
}

/// What a recipient would receive, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    /// `share` or `withhold`.
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<ReportView>,
    pub explanation: Vec<FieldDecision>,
}

/// Propose an agreement to its parties: this node signs it and sends it to the others.
#[utoipa::path(post, path = "/api/v1/agreements", tag = "agreements",
    request_body(content = Object, description = "The agreement, as in a policies/ file, in JSON"),
    responses((status = 201, description = "Proposed and signed by this node", body = AgreementView),
        (status = 409, description = "An agreement with this id exists, or this node has no federation identity", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems),
    security(("bearer" = ["agreement-admin"])))]
pub async fn propose(
    caller: Caller,
    state: Data<AppState>,
    req: actix_web::HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(AGREEMENT_ADMINS)?;
    let agreement: Agreement = crate::http::body::read_body(&req, payload).await?;
    Ok(HttpResponse::Created().json(propose_agreement(&state, &caller, agreement).await?))
}

/// Proposes `agreement` as this node's organisation: signed here and sent to the other parties.
pub(crate) async fn propose_agreement(
    state: &AppState,
    caller: &Caller,
    agreement: Agreement,
) -> Result<AgreementView, ApiError> {
    caller.require(AGREEMENT_ADMINS)?;
    let now = state.clock.now();
    let checked =
        agreements::propose(federation(state)?, agreement, now, &caller.actor).await.map_err(ApiError::from)?;
    Ok(view_of(checked, None, now))
}

/// Every agreement this node is a party to, with its status.
#[utoipa::path(get, path = "/api/v1/agreements", tag = "agreements",
    responses((status = 200, description = "Agreements by id", body = Vec<AgreementView>), AuthProblems),
    security(("bearer" = ["agreement-admin", "coordinator", "node-admin"])))]
pub async fn list(caller: Caller, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(AGREEMENT_READERS)?;
    Ok(HttpResponse::Ok().json(all(&state).await?))
}

/// Every agreement this node is a party to, as its admin reviews it; one whose stored document no
/// longer checks is shown as `unverifiable`, with why, never hidden.
pub(crate) async fn all(state: &AppState) -> Result<Vec<AgreementView>, ApiError> {
    let now = state.clock.now();
    let mut views = Vec::new();
    if let Some(federation) = &state.federation {
        for record in state.store.agreements().await? {
            match agreements::load(&state.store, federation, &record).await {
                Ok(checked) => views.push(view_of(checked, record.revocation.as_ref(), now)),
                Err(error) => {
                    // Shown, not hidden: the admin must see that an agreement no longer checks, and why.
                    tracing::warn!(agreement = %record.id, %error, "a stored agreement no longer checks");
                    let agreement = crate::crypto::jws::Jws::parse(record.document.as_bytes())
                        .ok()
                        .and_then(|jws| jws.unverified_payload().ok())
                        .and_then(|payload| serde_json::from_slice::<Agreement>(&payload).ok());
                    if let Some(agreement) = agreement {
                        let status = AgreementStatus {
                            state: "unverifiable",
                            detail: format!("nothing flows under it: {error}"),
                            signed_by: Vec::new(),
                            awaiting: Vec::new(),
                        };
                        let held_as_framework = record.held_as_framework;
                        views.push(AgreementView {
                            summary: agreement.summary(),
                            agreement,
                            status,
                            held_as_framework,
                        });
                    }
                }
            }
        }
    }
    Ok(views)
}

/// One agreement: its terms, a plain-language summary and its status.
#[utoipa::path(get, path = "/api/v1/agreements/{id}", tag = "agreements",
    params(("id" = String, Path, description = "The agreement's id")),
    responses((status = 200, description = "The agreement", body = AgreementView),
        (status = 404, description = "No such agreement", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["agreement-admin", "coordinator", "node-admin"])))]
pub async fn get(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(AGREEMENT_READERS)?;
    let (checked, revocation) = stored(&state, &id).await?;
    Ok(HttpResponse::Ok().json(view_of(checked, revocation.as_ref(), state.clock.now())))
}

/// Sign an agreement as this node's organisation; the signature is sent to the other parties.
#[utoipa::path(post, path = "/api/v1/agreements/{id}/sign", tag = "agreements",
    params(("id" = String, Path, description = "The agreement's id")),
    responses((status = 200, description = "Signed", body = AgreementView),
        (status = 404, description = "No such agreement", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already signed by this node, or revoked", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["agreement-admin"])))]
pub async fn sign(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(sign_agreement(&state, &caller, &id).await?))
}

/// Signs the agreement `id` as this node's organisation and sends the signature to the others.
pub(crate) async fn sign_agreement(state: &AppState, caller: &Caller, id: &str) -> Result<AgreementView, ApiError> {
    caller.require(AGREEMENT_ADMINS)?;
    let now = state.clock.now();
    let checked = agreements::sign(federation(state)?, id, now, &caller.actor).await.map_err(ApiError::from)?;
    Ok(view_of(checked, None, now))
}

/// Revoke an agreement, at once, for every party.
#[utoipa::path(post, path = "/api/v1/agreements/{id}/revoke", tag = "agreements",
    params(("id" = String, Path, description = "The agreement's id")),
    request_body(content = Option<RevokeRequest>, description = "Optional: why"),
    responses((status = 200, description = "Revoked", body = AgreementView),
        (status = 404, description = "No such agreement", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked", body = Problem, content_type = "application/problem+json"), BodyProblems, AuthProblems),
    security(("bearer" = ["agreement-admin"])))]
pub async fn revoke(
    caller: Caller,
    state: Data<AppState>,
    id: Path<String>,
    req: actix_web::HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    end(caller, state, id, req, payload, agreements::revoke).await
}

/// Decline an agreement that awaits signatures (a partner's proposal this organisation will not
/// sign): every party is told, and it can no longer take effect. An agreement every party has
/// signed is revoked instead.
#[utoipa::path(post, path = "/api/v1/agreements/{id}/decline", tag = "agreements",
    params(("id" = String, Path, description = "The agreement's id")),
    request_body(content = Option<RevokeRequest>, description = "Optional: why"),
    responses((status = 200, description = "Declined", body = AgreementView),
        (status = 404, description = "No such agreement", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Every party has signed it (revoke it instead), or it is revoked already", body = Problem, content_type = "application/problem+json"), BodyProblems, AuthProblems),
    security(("bearer" = ["agreement-admin"])))]
pub async fn decline(
    caller: Caller,
    state: Data<AppState>,
    id: Path<String>,
    req: actix_web::HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    end(caller, state, id, req, payload, agreements::decline).await
}

/// Ends an agreement as `how` does (revoking or declining it), for an agreement-admin, with the
/// optional reason of the body; answers the agreement as it stands then.
async fn end<F>(
    caller: Caller,
    state: Data<AppState>,
    id: Path<String>,
    req: actix_web::HttpRequest,
    payload: actix_web::web::Payload,
    how: F,
) -> Result<HttpResponse, ApiError>
where
    F: AsyncFnOnce(
        &Federation,
        &str,
        Option<String>,
        chrono::DateTime<chrono::Utc>,
        &str,
    ) -> Result<RevocationRecord, agreements::LifecycleError>,
{
    caller.require(AGREEMENT_ADMINS)?;
    let request: RevokeRequest = crate::http::body::read_optional_body(&req, payload).await?;
    Ok(HttpResponse::Ok().json(end_agreement(&state, &caller, &id, request.reason, how).await?))
}

/// Ends the agreement `id` as `how` does (revoking or declining it), with an optional reason; the
/// agreement as it stands then.
pub(crate) async fn end_agreement<F>(
    state: &AppState,
    caller: &Caller,
    id: &str,
    reason: Option<String>,
    how: F,
) -> Result<AgreementView, ApiError>
where
    F: AsyncFnOnce(
        &Federation,
        &str,
        Option<String>,
        chrono::DateTime<chrono::Utc>,
        &str,
    ) -> Result<RevocationRecord, agreements::LifecycleError>,
{
    caller.require(AGREEMENT_ADMINS)?;
    crate::http::input::check_reason(reason.as_ref())?;
    let now = state.clock.now();
    how(federation(state)?, id, reason, now, &caller.actor).await.map_err(ApiError::from)?;
    let (checked, revocation) = stored(state, id).await?;
    Ok(view_of(checked, revocation.as_ref(), now))
}

/// Exactly what a recipient would receive of one of your reports under this agreement, and which
/// rule decided each field.
#[utoipa::path(get, path = "/api/v1/agreements/{id}/preview", tag = "agreements",
    params(("id" = String, Path, description = "The agreement's id"), PreviewParams),
    responses((status = 200, description = "The recipient's view, or why nothing would flow", body = Preview),
        (status = 404, description = "No such agreement or report", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["agreement-admin", "coordinator"])))]
pub async fn preview(
    caller: Caller,
    state: Data<AppState>,
    id: Path<String>,
    query: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(PREVIEWERS)?;
    let params: PreviewParams = crate::http::input::query(&query)?;
    Ok(HttpResponse::Ok().json(preview_report(&state, &caller, &id, &params.report, &params.recipient).await?))
}

/// Exactly what `recipient` would receive of the caller's report `report` under agreement `id`
/// now, and which rule decided each field; reading the report this way is audited as a read.
pub(crate) async fn preview_report(
    state: &AppState,
    caller: &Caller,
    id: &str,
    report: &str,
    recipient: &str,
) -> Result<Preview, ApiError> {
    caller.require(PREVIEWERS)?;
    let recipient = OrgId::parse(recipient)
        .map_err(|e| ApiError::Validation(ValidationErrors::single("recipient", e.to_string())))?;
    let report_id =
        report.parse().map_err(|_| ApiError::NotFound("no report with this id exists for your organisation".into()))?;
    let report = state
        .store
        .latest_report(&caller.org, report_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no report with this id exists for your organisation".into()))?;
    let (checked, revocation) = stored(state, id).await?;
    let federation = federation(state)?;
    let now = state.clock.now();
    let status = agreements::status(&checked, revocation.as_ref(), now);
    if status.state != "active" {
        // Nothing flows under an agreement that is not in force, whatever its rules say.
        let reason = format!("the agreement is {}: {}", status.state.replace('_', " "), status.detail);
        return Ok(Preview {
            decision: "withhold",
            reason: Some(reason),
            flow: None,
            view: None,
            explanation: Vec::new(),
        });
    }
    let key = agreements::pseudonym_key(&federation.keys.signing, &checked.agreement.id);
    Ok(match decide(&report, &checked.agreement, &recipient, now, &key) {
        Decision::Share { view, flow, explanation } => {
            // The preview shows the report's content: it is a read like any other.
            let read = AuditEvent::new("report.read", &caller.actor)
                .report(report.id)
                .agreement(&checked.agreement.id)
                .detail(format!(
                    "version {}, previewed as {recipient} would receive it under {}",
                    report.version, checked.agreement.id
                ));
            state.store.record_audit(&read, now).await?;
            // What the recipient would receive, as far as the previewer's roles see persons.
            let view = state.persons.shown_to(&caller.roles, *view);
            Preview { decision: "share", reason: None, flow: Some(flow), view: Some(view), explanation }
        }
        Decision::Withhold { reason } => {
            Preview { decision: "withhold", reason: Some(reason), flow: None, view: None, explanation: Vec::new() }
        }
    })
}

pub(crate) fn federation(state: &AppState) -> Result<&Federation, ApiError> {
    state.federation.as_deref().ok_or_else(|| {
        ApiError::Conflict("this node has no federation identity; agreements need one (see `lagesbild init`)".into())
    })
}

pub(crate) async fn stored(state: &AppState, id: &str) -> Result<(Checked, Option<RevocationRecord>), ApiError> {
    let not_found = || ApiError::NotFound("no agreement with this id".into());
    let federation = state.federation.as_deref().ok_or_else(not_found)?;
    let record = state.store.agreement(id).await?.ok_or_else(not_found)?;
    let checked = agreements::load(&state.store, federation, &record).await.map_err(ApiError::from)?;
    Ok((checked, record.revocation))
}

fn view_of(
    checked: Checked,
    revocation: Option<&RevocationRecord>,
    now: chrono::DateTime<chrono::Utc>,
) -> AgreementView {
    let status = agreements::status(&checked, revocation, now);
    AgreementView {
        summary: checked.agreement.summary(),
        held_as_framework: checked.held_as_framework,
        agreement: checked.agreement,
        status,
    }
}
