//! Agreement templates through the user API: the agreements in `policies/`, listed, and a new
//! agreement drafted from one with new parties and dates (`domain::agreement::template`), checked
//! and ready to propose with `POST /api/v1/agreements`. A new party given no name takes the name on
//! its node card when this node has imported it. Drafting stores and sends nothing.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{AGREEMENT_ADMINS, AGREEMENT_READERS, Caller};
use crate::domain::agreement::template::{self, Adaptation, TEMPLATES};
use crate::domain::agreement::{Agreement, PartyRole};
use crate::http::problem::{ApiError, AuthProblems, BodyProblems, Problem};

/// A template, as offered.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    /// What to name it by: its file name in `policies/`, without `.toml`.
    #[schema(example = "lulea-safety-agreement")]
    pub name: String,
    pub title: String,
    /// The template's parties: whose places a draft gives to new organisations.
    pub parties: Vec<TemplateParty>,
    /// What flows where, one sentence per flow.
    pub summary: Vec<String>,
}

/// One of a template's parties.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateParty {
    pub org_id: String,
    pub name: String,
    pub role: PartyRole,
}

/// A new agreement drafted from a template.
#[derive(Debug, Serialize, ToSchema)]
pub struct Draft {
    /// The agreement, ready for `POST /api/v1/agreements`.
    #[schema(value_type = Object)]
    pub agreement: Agreement,
    /// What flows where, one sentence per flow.
    pub summary: Vec<String>,
    /// What to look at before proposing it: a party named by its id, an area that is the template's.
    pub notes: Vec<String>,
}

/// The agreement templates this node offers (the agreements in `policies/`).
#[utoipa::path(get, path = "/api/v1/agreement-templates", tag = "agreements",
    responses((status = 200, description = "The templates", body = Vec<TemplateView>), AuthProblems),
    security(("bearer" = ["agreement-admin", "coordinator", "node-admin"])))]
pub async fn list(caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(AGREEMENT_READERS)?;
    let views: Vec<TemplateView> = TEMPLATES
        .iter()
        .filter_map(|(file, _)| {
            let agreement = template::builtin(file)?;
            Some(TemplateView {
                name: file.trim_end_matches(".toml").to_owned(),
                title: agreement.title.clone(),
                parties: agreement
                    .parties
                    .iter()
                    .map(|p| TemplateParty { org_id: p.org_id.to_string(), name: p.name.clone(), role: p.role })
                    .collect(),
                summary: agreement.summary(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Draft a new agreement from a template: new organisations in the places of the template's
/// parties (by role, or by the organisation they replace), new dates, checked. Nothing is stored or
/// sent; propose the draft with `POST /api/v1/agreements`.
#[utoipa::path(post, path = "/api/v1/agreement-templates/{name}/draft", tag = "agreements",
    params(("name" = String, Path, description = "The template's name, as listed")),
    request_body(content = Adaptation),
    responses((status = 200, description = "The draft, checked", body = Draft),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems),
    security(("bearer" = ["agreement-admin"])))]
pub async fn draft(
    caller: Caller,
    state: Data<AppState>,
    name: Path<String>,
    req: actix_web::HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(AGREEMENT_ADMINS)?;
    let Some(template) = template::builtin(&name) else {
        return Err(ApiError::NotFound(format!(
            "there is no template {name}; GET /api/v1/agreement-templates lists them"
        )));
    };
    let mut adaptation: Adaptation = crate::http::body::read_body(&req, payload).await?;
    // A party without a name is called what its card calls it: this node's own, or a partner's on
    // record.
    for change in adaptation.parties.iter_mut().filter(|c| c.name.is_none()) {
        if change.org_id == state.node.org_id {
            let card = state.federation.as_ref().map(|f| f.keys.card.name.clone());
            change.name = Some(card.unwrap_or_else(|| state.node.name.clone()));
        } else if let Some(partner) = state.store.partner(&change.org_id).await? {
            change.name = Some(partner.name);
        }
    }
    let adapted = template::adapt(&template, &adaptation, state.clock.now())?;
    let summary = adapted.agreement.summary();
    Ok(HttpResponse::Ok().json(Draft { agreement: adapted.agreement, summary, notes: adapted.notes }))
}
