//! The node's own card and its partners, for the node's administrators: import a partner's signed
//! card (verified; never fetched from a URL it names), list partners with their contact status,
//! block and unblock them. Changes take effect on the federation listener at once.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{ANYONE, Caller, NODE_ADMINS};
use crate::crypto::jws::Jws;
use crate::domain::audit::AuditEvent;
use crate::domain::{CardPin, NodeCard, OrgId};
use crate::federation::registry::{Imported, import_card};
use crate::http::problem::{ApiError, AuthProblems, BodyProblems, Problem};
use crate::store::{DeliveryState, PartnerRecord};

/// This node, as partners see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    pub org_id: OrgId,
    pub name: String,
    /// The node card; absent when the node has no identity (no federation configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<NodeCard>,
    /// The signed card to hand to partners (what `POST /api/v1/partners` takes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_card: Option<Jws>,
}

/// A partner node as this node knows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerView {
    pub org_id: OrgId,
    pub name: String,
    pub federation_url: String,
    pub signing_key: String,
    pub tls_pins: Vec<CardPin>,
    pub blocked: bool,
    pub added_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
    /// How delivery to this partner stands.
    pub delivery: DeliveryView,
}

/// The outbox towards one partner.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Envelopes waiting to be acknowledged.
    pub queued: i64,
    /// Agreement documents (proposals, signatures, revocations) waiting to be acknowledged.
    pub documents_queued: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Why the last attempt or envelope failed, while envelopes wait or after one was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<DeliveryState> for DeliveryView {
    fn from(d: DeliveryState) -> Self {
        Self { queued: d.queued, documents_queued: 0, last_delivered_at: d.last_delivered_at, last_error: d.last_error }
    }
}

impl From<PartnerRecord> for PartnerView {
    fn from(p: PartnerRecord) -> Self {
        Self {
            org_id: p.org_id,
            name: p.name,
            federation_url: p.federation_url,
            signing_key: p.signing_key,
            tls_pins: p.pins.into_iter().map(|(pin, until)| CardPin { pin, until }).collect(),
            blocked: p.blocked,
            added_at: p.added_at,
            updated_at: p.updated_at,
            last_contact_at: p.last_contact_at,
            last_error: p.last_error,
            last_error_at: p.last_error_at,
            delivery: DeliveryView::default(),
        }
    }
}

/// This node's identity and signed card.
#[utoipa::path(get, path = "/api/v1/node", tag = "partners",
    responses((status = 200, description = "This node", body = NodeView), AuthProblems),
    security(("bearer" = ["reporter", "coordinator", "analyst", "agreement-admin", "node-admin"])))]
pub async fn node(caller: Caller, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(ANYONE)?;
    let keys = state.federation.as_ref().map(|f| &f.keys);
    Ok(HttpResponse::Ok().json(NodeView {
        org_id: state.node.org_id.clone(),
        name: state.node.name.clone(),
        card: keys.map(|k| k.card.clone()),
        signed_card: keys.map(|k| k.signed_card.clone()),
    }))
}

/// Import a partner's signed node card (or a renewed card of a known partner).
#[utoipa::path(post, path = "/api/v1/partners", tag = "partners",
    request_body(content = Jws, description = "The partner's signed node card, as its `GET /api/v1/node` gives it"),
    responses(
        (status = 201, description = "A new partner", body = PartnerView),
        (status = 200, description = "A known partner's card was renewed", body = PartnerView),
        (status = 409, description = "The card changes the partner's key without its known key's signature, is older than the one on record, or pins a key another partner holds", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems),
    security(("bearer" = ["node-admin"])))]
pub async fn add_partner(
    caller: Caller,
    state: Data<AppState>,
    req: actix_web::HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(NODE_ADMINS)?;
    let card: Jws = crate::http::body::read_body(&req, payload).await?;
    let (view, outcome) = import(&state, &caller, &card).await?;
    Ok(match outcome {
        Imported::Added => HttpResponse::Created().json(view),
        Imported::Updated => HttpResponse::Ok().json(view),
    })
}

/// Imports a partner's signed card (verified here, never fetched), and lets its node in at once.
pub(crate) async fn import(state: &AppState, caller: &Caller, card: &Jws) -> Result<(PartnerView, Imported), ApiError> {
    caller.require(NODE_ADMINS)?;
    let now = state.clock.now();
    let (record, outcome) =
        import_card(&state.store, card, &caller.org, None, now, &caller.actor).await.map_err(ApiError::from)?;
    reload_pins(state).await?;
    Ok((PartnerView::from(record), outcome))
}

/// Every partner, with the state of the last contact.
#[utoipa::path(get, path = "/api/v1/partners", tag = "partners",
    responses((status = 200, description = "Partners by organisation id", body = Vec<PartnerView>), AuthProblems),
    security(("bearer" = ["node-admin"])))]
pub async fn list_partners(caller: Caller, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(NODE_ADMINS)?;
    let partners = with_delivery(&state, state.store.partners().await?).await?;
    Ok(HttpResponse::Ok().json(partners))
}

/// Partners as shown, each with how delivery to it stands.
pub(crate) async fn with_delivery(
    state: &AppState,
    partners: Vec<PartnerRecord>,
) -> Result<Vec<PartnerView>, ApiError> {
    let mut deliveries: std::collections::HashMap<String, DeliveryState> =
        state.store.delivery_states().await?.into_iter().collect();
    let mut documents: std::collections::HashMap<String, (i64, Option<String>)> =
        state.store.lifecycle_states().await?.into_iter().map(|(org, queued, error)| (org, (queued, error))).collect();
    Ok(partners
        .into_iter()
        .map(|p| {
            let mut delivery = DeliveryView::from(deliveries.remove(p.org_id.as_str()).unwrap_or_default());
            if let Some((queued, error)) = documents.remove(p.org_id.as_str()) {
                delivery.documents_queued = queued;
                delivery.last_error = delivery.last_error.or(error);
            }
            PartnerView { delivery, ..PartnerView::from(p) }
        })
        .collect())
}

/// One partner.
#[utoipa::path(get, path = "/api/v1/partners/{org}", tag = "partners",
    params(("org" = String, Path, description = "The partner's organisation id")),
    responses((status = 200, description = "The partner", body = PartnerView),
        (status = 404, description = "No such partner", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["node-admin"])))]
pub async fn get_partner(caller: Caller, state: Data<AppState>, org: Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require(NODE_ADMINS)?;
    let org = parse_org(&org)?;
    let partner = state.store.partner(&org).await?.ok_or_else(no_such_partner)?;
    Ok(HttpResponse::Ok().json(with_delivery(&state, vec![partner]).await?.pop()))
}

/// Block a partner: its node is refused at the TLS handshake from now on.
#[utoipa::path(post, path = "/api/v1/partners/{org}/block", tag = "partners",
    params(("org" = String, Path, description = "The partner's organisation id")),
    responses((status = 200, description = "Blocked", body = PartnerView),
        (status = 404, description = "No such partner", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["node-admin"])))]
pub async fn block_partner(caller: Caller, state: Data<AppState>, org: Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(set_blocked(&state, &caller, &org, true).await?))
}

/// Unblock a partner.
#[utoipa::path(post, path = "/api/v1/partners/{org}/unblock", tag = "partners",
    params(("org" = String, Path, description = "The partner's organisation id")),
    responses((status = 200, description = "Unblocked", body = PartnerView),
        (status = 404, description = "No such partner", body = Problem, content_type = "application/problem+json"), AuthProblems),
    security(("bearer" = ["node-admin"])))]
pub async fn unblock_partner(
    caller: Caller,
    state: Data<AppState>,
    org: Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(set_blocked(&state, &caller, &org, false).await?))
}

/// Blocks or unblocks the partner `org`: it is refused (or let in) at the handshake from now on.
pub(crate) async fn set_blocked(
    state: &AppState,
    caller: &Caller,
    org: &str,
    blocked: bool,
) -> Result<PartnerView, ApiError> {
    caller.require(NODE_ADMINS)?;
    let org = parse_org(org)?;
    let event =
        AuditEvent::new(if blocked { "partner.blocked" } else { "partner.unblocked" }, &caller.actor).partner(&org);
    if !state.store.set_partner_blocked(&org, blocked, state.clock.now(), &event).await? {
        return Err(no_such_partner());
    }
    reload_pins(state).await?;
    tracing::info!(partner = %org, blocked, "partner block changed");
    let partner = state.store.partner(&org).await?.ok_or_else(no_such_partner)?;
    Ok(PartnerView::from(partner))
}

async fn reload_pins(state: &AppState) -> Result<(), ApiError> {
    if let Some(federation) = &state.federation {
        federation.pins.reload(&state.store).await?;
    }
    Ok(())
}

fn parse_org(raw: &str) -> Result<OrgId, ApiError> {
    OrgId::parse(raw).map_err(|_| no_such_partner())
}

fn no_such_partner() -> ApiError {
    ApiError::NotFound("no partner with this organisation id".into())
}
