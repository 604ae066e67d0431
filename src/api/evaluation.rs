//! An agreement's evaluation through the user API (`domain::evaluation`): what the parties bring to
//! the meeting where they decide whether it worked, from this node's sharing ledger. Counts and
//! times only, never a report's contents; as JSON, or as CSV for a spreadsheet (`format=csv`, or
//! `Accept: text/csv`).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, http::header};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::agreements::stored;
use super::auth::{AGREEMENT_READERS, Caller};
use crate::domain::ValidationErrors;
use crate::domain::evaluation::Evaluation;
use crate::http::input::query;
use crate::http::problem::{ApiError, AuthProblems, Problem};

/// How the evaluation is rendered.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EvaluationParams {
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    #[param(value_type = Option<EvaluationFormat>)]
    format: Option<String>,
}

/// How an evaluation is rendered, as the `format` parameter names it.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum EvaluationFormat {
    Json,
    Csv,
}

const CSV: &str = "text/csv; charset=utf-8";

/// What the parties need when they evaluate an agreement: per month and per flow, how many reports
/// this node sent to each party, by category and severity; how many were new, updated, retracted,
/// refused or are still waiting; how fast they were acknowledged; and how many each party's node
/// delivered here. Never a report's contents.
#[utoipa::path(get, path = "/api/v1/agreements/{id}/evaluation", tag = "agreements",
    params(("id" = String, Path, description = "The agreement's id"), EvaluationParams),
    responses(
        (status = 200, description = "The evaluation", content(
            (Evaluation = "application/json"),
            (String = "text/csv"),
        )),
        (status = 404, description = "No such agreement", body = Problem, content_type = "application/problem+json"),
        (status = 406, description = "The Accept header allows neither JSON nor CSV", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`format` is neither json nor csv", body = Problem, content_type = "application/problem+json"),
        AuthProblems),
    security(("bearer" = ["agreement-admin", "coordinator", "node-admin"])))]
pub async fn evaluation(
    caller: Caller,
    state: Data<AppState>,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(AGREEMENT_READERS)?;
    let params: EvaluationParams = query(&req)?;
    let format = wanted_format(&req, params.format.as_deref())?;
    let (checked, _) = stored(&state, &id).await?;
    let evaluation = state.store.evaluation(&checked.agreement, &state.node.org_id, state.clock.now()).await?;
    Ok(if let EvaluationFormat::Csv = format {
        let name = format!("attachment; filename=\"{}-evaluation.csv\"", checked.agreement.id);
        HttpResponse::Ok()
            .content_type(CSV)
            .insert_header((header::CONTENT_DISPOSITION, name))
            .body(evaluation.to_csv())
    } else {
        HttpResponse::Ok().json(evaluation)
    })
}

/// The form asked for, by `format` or else by `Accept`.
fn wanted_format(req: &HttpRequest, format: Option<&str>) -> Result<EvaluationFormat, ApiError> {
    match format {
        Some("csv") => return Ok(EvaluationFormat::Csv),
        Some("json") => return Ok(EvaluationFormat::Json),
        Some(_) => return Err(ValidationErrors::single("format", "must be json or csv").into()),
        None => {}
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    if accept.contains("text/csv") {
        Ok(EvaluationFormat::Csv)
    } else if accept.contains("json") || accept.contains("*/*") || accept.contains("application/*") {
        Ok(EvaluationFormat::Json)
    } else {
        Err(ApiError::NotAcceptable)
    }
}
