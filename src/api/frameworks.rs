//! Frameworks through the user API: an agreement's signed document, as a framework party's node
//! exports it, and a framework imported at a node that is no party to it but will propose local
//! agreements under it (`federation::frameworks`). The framework must be signed by every one of its
//! parties with the keys on their cards, imported here first.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};

use super::AppState;
use super::agreements::{AgreementView, stored};
use super::auth::{AGREEMENT_ADMINS, AGREEMENT_READERS, Caller};
use crate::crypto::jws::Jws;
use crate::federation::agreements as lifecycle;
use crate::federation::frameworks;
use crate::http::problem::{ApiError, AuthProblems, BodyProblems, Problem};

/// An agreement's signed document (JWS JSON, every party's signature so far): what a framework
/// party hands the parties of local agreements, and an archive of what was signed.
#[utoipa::path(get, path = "/api/v1/agreements/{id}/document", tag = "agreements",
    params(("id" = String, Path, description = "The agreement's id")),
    responses((status = 200, description = "The signed document", body = Jws),
        (status = 404, description = "No such agreement", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["agreement-admin", "coordinator", "node-admin"])))]
pub async fn document(caller: Caller, state: Data<AppState>, id: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(AGREEMENT_READERS)?;
    let (checked, _) = stored(&state, &id).await?;
    Ok(HttpResponse::Ok().json(checked.document))
}

/// Hold a framework this node is no party to, to propose local agreements under it: its signed
/// document, as a party's node exports it (`GET /api/v1/agreements/{id}/document`). Every party
/// must have signed it, with the key on its card here.
#[utoipa::path(post, path = "/api/v1/frameworks", tag = "agreements",
    request_body(content = Jws, description = "The framework's signed document"),
    responses((status = 201, description = "Held", body = AgreementView),
        (status = 409, description = "This node is a party to it (propose and sign it as such), or no federation identity", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems),
    security(("bearer" = ["agreement-admin"])))]
pub async fn import(
    caller: Caller,
    state: Data<AppState>,
    req: actix_web::HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(AGREEMENT_ADMINS)?;
    let document: Jws = crate::http::body::read_body(&req, payload).await?;
    let federation = super::agreements::federation(&state)?;
    let now = state.clock.now();
    let checked = frameworks::hold(federation, None, &document, now, &caller.actor).await?;
    let record = state.store.agreement(checked.agreement.id.as_str()).await?;
    let status = lifecycle::status(&checked, record.as_ref().and_then(|r| r.revocation.as_ref()), now);
    Ok(HttpResponse::Created().json(AgreementView {
        summary: checked.agreement.summary(),
        held_as_framework: checked.held_as_framework,
        agreement: checked.agreement,
        status,
    }))
}
