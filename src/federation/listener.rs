//! The federation listener: its own port, mutual TLS always. The handshake already refused every
//! certificate whose pin no partner holds; each request then maps the certificate it came with to
//! its partner again (a partner blocked since the handshake is refused) as a [`Peer`].

use std::any::Any;
use std::future::{Ready, ready};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::{Extensions, Payload, Server};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web::{self, Data};
use actix_web::{App, FromRequest, HttpRequest, HttpResponse, HttpServer};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Federation;
use super::agreements;
use super::frameworks;
use super::inbox;
use super::registry::import_card;
use crate::crypto::jws::Jws;
use crate::crypto::tls::{PeerTrust, TrustedPeers, organisation_of_certificate, pin_of_certificate, server_config};
use crate::domain::OrgId;
use crate::domain::audit::AuditEvent;
use crate::http::problem::BodyProblems;
use crate::http::routes::{self, Path, on, path};
use crate::http::{ApiError, Problem, StrictJson, observe};

/// The client certificate of the connection a request came on.
#[derive(Debug, Clone)]
struct PeerCertificate(CertificateDer<'static>);

/// The partner node that sent a request, known from its TLS client certificate.
#[derive(Debug, Clone)]
pub struct Peer {
    pub org: OrgId,
}

/// Binds the federation listener and returns the server (not yet polled) and its address.
pub fn bind(federation: Arc<Federation>, listen: SocketAddr, workers: usize) -> std::io::Result<(Server, SocketAddr)> {
    let tls = server_config(&federation.keys.tls, &federation.trust, federation.pins.clone(), federation.clock.clone())
        .map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let data = Data::from(federation);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).wrap(from_fn(observe)).configure(routes))
        .on_connect(capture_peer_certificate)
        .workers(workers)
        // Small writes go out at once, not after the partner's delayed acknowledgement.
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(10)
        .listen_rustls_0_23(listener, tls)?
        .run();
    Ok((server, addr))
}

fn capture_peer_certificate(connection: &dyn Any, extensions: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(tls) = connection.downcast_ref::<Tls>()
        && let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|certs| certs.first())
    {
        extensions.insert(PeerCertificate(cert.clone().into_owned()));
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    routes::register(cfg, paths());
}

/// Every path and method the listener registers: what a test holds against the federation's
/// OpenAPI document.
pub fn registered_routes() -> Vec<(String, Method)> {
    routes::listing(paths())
}

fn paths() -> Vec<Path> {
    vec![
        path("/federation/v1/card", vec![on(Method::GET, own_card), on(Method::POST, receive_card)]),
        path("/federation/v1/hello", vec![on(Method::GET, hello)]),
        path("/federation/v1/agreements", vec![on(Method::POST, receive_agreement)]),
        path("/federation/v1/revocations", vec![on(Method::POST, receive_revocation)]),
        path("/federation/v1/frameworks", vec![on(Method::POST, receive_framework)]),
        path("/federation/v1/frameworks/holders", vec![on(Method::POST, receive_holding)]),
        path("/federation/v1/alerts/seen", vec![on(Method::POST, receive_alert_seen)]),
        path("/federation/v1/requests", vec![on(Method::POST, receive_request)]),
        path("/federation/v1/requests/steps", vec![on(Method::POST, receive_request_step)]),
        path("/federation/v1/envelopes", vec![on(Method::POST, inbox::receive_envelopes)])
            .body_limit(inbox::MAX_BATCH_BYTES),
        path("/federation/v1/feed", vec![on(Method::GET, inbox::feed)]),
    ]
}

impl FromRequest for Peer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identify(req))
    }
}

fn identify(req: &HttpRequest) -> Result<Peer, ApiError> {
    let federation =
        req.app_data::<Data<Federation>>().ok_or_else(|| ApiError::Internal("federation state missing".into()))?;
    let refused = || ApiError::Forbidden("this connection's certificate belongs to no partner of this node".into());
    let cert = req.conn_data::<PeerCertificate>().ok_or_else(refused)?;
    let org = match federation.trust {
        PeerTrust::Pins => {
            let pin = pin_of_certificate(&cert.0).map_err(|_| refused())?;
            federation.pins.partner_of(&pin)
        }
        PeerTrust::Authority(_) => organisation_of_certificate(&cert.0).filter(|org| federation.pins.trusts_org(org)),
    };
    let org = org.ok_or_else(refused)?;
    federation.limits.take(&org)?;
    Ok(Peer { org })
}

/// Who the caller is, as this node sees it, and who this node is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Hello {
    /// The partner this node took the caller's certificate for.
    pub you_are: OrgId,
    /// This node's organisation.
    pub i_am: OrgId,
}

/// Check the connection: answers which partner the client certificate belongs to.
#[utoipa::path(
    get, path = "/federation/v1/hello", tag = "federation",
    responses((status = 200, description = "The caller, as identified by its certificate", body = Hello),
        (status = 403, description = "The certificate belongs to no partner (or a blocked one)", body = Problem, content_type = "application/problem+json"))
)]
pub async fn hello(peer: Peer, federation: Data<Federation>) -> Result<HttpResponse, ApiError> {
    let now = federation.clock.now();
    federation.store.record_partner_contact(&peer.org, now, None).await?;
    Ok(HttpResponse::Ok().json(Hello { you_are: peer.org, i_am: federation.keys.card.org_id.clone() }))
}

/// This node's signed card, for partners to pick up a renewed card.
#[utoipa::path(
    get, path = "/federation/v1/card", tag = "federation",
    responses((status = 200, description = "The node card, signed (JWS JSON serialisation)", body = Jws),
        (status = 403, description = "The certificate belongs to no partner", body = Problem, content_type = "application/problem+json"))
)]
pub async fn own_card(_peer: Peer, federation: Data<Federation>) -> HttpResponse {
    HttpResponse::Ok().json(&federation.keys.signed_card)
}

/// A partner announces its card (after a key rotation). The card must be for the organisation
/// whose certificate sent it, and a new key must be signed by the key known for it.
#[utoipa::path(
    post, path = "/federation/v1/card", tag = "federation",
    request_body = Jws,
    // The body's problems first: a 422 of the route's own, below, says more than theirs.
    responses(BodyProblems, (status = 204, description = "The card was accepted"),
        (status = 403, description = "The certificate belongs to no partner, or the card is for another organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The card changes the key without the known key's signature, or is older than the one on record", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The card or its signature is invalid", body = Problem, content_type = "application/problem+json"))
)]
pub async fn receive_card(
    peer: Peer,
    federation: Data<Federation>,
    StrictJson(card): StrictJson<Jws>,
) -> Result<HttpResponse, ApiError> {
    let now = federation.clock.now();
    let own = &federation.keys.card.org_id;
    match import_card(&federation.store, &card, own, Some(&peer.org), now, &format!("partner:{}", peer.org)).await {
        Ok(_) => {
            federation.pins.reload(&federation.store).await?;
            federation.store.record_partner_contact(&peer.org, now, None).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        Err(error) => {
            refusal(&federation, &peer, "partner.card_refused", &card, &error, now).await?;
            Err(ApiError::from(error))
        }
    }
}

/// A party sends an agreement it proposed or signed; its signatures are merged into the one on
/// record, which must carry the same bytes.
#[utoipa::path(
    post, path = "/federation/v1/agreements", tag = "federation",
    request_body = Jws,
    // The body's problems first: a 422 of the route's own, below, says more than theirs.
    responses(BodyProblems, (status = 204, description = "Stored, or its signatures merged"),
        (status = 403, description = "The sender is no party to the agreement", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The signatures are over other bytes than the agreement on record", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The agreement or a signature is invalid, or a party is unknown here", body = Problem, content_type = "application/problem+json"))
)]
pub async fn receive_agreement(
    peer: Peer,
    federation: Data<Federation>,
    StrictJson(document): StrictJson<Jws>,
) -> Result<HttpResponse, ApiError> {
    let now = federation.clock.now();
    let outcome = agreements::receive(&federation, &peer.org, &document, now).await;
    answer(&federation, &peer, "agreement.refused", &document, outcome, now).await
}

/// A party revokes an agreement: the statement must be signed by a party's key. A revocation that
/// overtook its agreement is kept, and applied when the agreement arrives.
#[utoipa::path(
    post, path = "/federation/v1/revocations", tag = "federation",
    request_body = Jws,
    // The body's problems first: a 422 of the route's own, below, says more than theirs.
    responses(BodyProblems, (status = 204, description = "The agreement is revoked here, or, not known here yet, the statement is kept and applied when the agreement arrives"),
        (status = 403, description = "The sender is no party to the agreement", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The sender has as many revocations of unknown agreements kept here as it may", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The statement or its signature is invalid", body = Problem, content_type = "application/problem+json"))
)]
pub async fn receive_revocation(
    peer: Peer,
    federation: Data<Federation>,
    StrictJson(statement): StrictJson<Jws>,
) -> Result<HttpResponse, ApiError> {
    let now = federation.clock.now();
    let outcome = agreements::receive_revocation(&federation, &peer.org, &statement, now).await;
    answer(&federation, &peer, "agreement.revocation_refused", &statement, outcome, now).await
}

/// A party to a local agreement sends the framework it sits under, ahead of the agreement, for
/// this node to hold: signed by every one of the framework's parties, with the keys on their cards
/// here.
#[utoipa::path(
    post, path = "/federation/v1/frameworks", tag = "federation",
    request_body = Jws,
    // The body's problems first: a 422 of the route's own, below, says more than theirs.
    responses(BodyProblems, (status = 204, description = "Held, or held already"),
        (status = 403, description = "The sender has handed this node as many frameworks as it may", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This node is a party to the agreement: it is not held, but proposed and signed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a framework every party signed, or a party is unknown here", body = Problem, content_type = "application/problem+json"))
)]
pub async fn receive_framework(
    peer: Peer,
    federation: Data<Federation>,
    StrictJson(document): StrictJson<Jws>,
) -> Result<HttpResponse, ApiError> {
    let now = federation.clock.now();
    let actor = format!("partner:{}", peer.org);
    let outcome = frameworks::hold(&federation, Some(&peer.org), &document, now, &actor).await;
    answer(&federation, &peer, "agreement.framework_refused", &document, outcome, now).await
}

/// A node that holds one of this node's frameworks for its local agreements says so, in a statement
/// signed by its key; it is told when the framework is revoked.
#[utoipa::path(
    post, path = "/federation/v1/frameworks/holders", tag = "federation",
    request_body = Jws,
    // The body's problems first: a 422 of the route's own, below, says more than theirs.
    responses(BodyProblems, (status = 204, description = "Recorded, or recorded already"),
        (status = 403, description = "The statement is about another node, or this node is no party to the framework", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such framework here", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The statement or its signature is invalid", body = Problem, content_type = "application/problem+json"))
)]
pub async fn receive_holding(
    peer: Peer,
    federation: Data<Federation>,
    StrictJson(statement): StrictJson<Jws>,
) -> Result<HttpResponse, ApiError> {
    let now = federation.clock.now();
    let outcome = frameworks::receive_holding(&federation, &peer.org, &statement, now).await;
    answer(&federation, &peer, "agreement.holding_refused", &statement, outcome, now).await
}

/// A partner says that one of its people has seen one of this node's urgent reports, in a
/// statement signed by its key.
#[utoipa::path(
    post, path = "/federation/v1/alerts/seen", tag = "federation",
    request_body = Jws,
    // The body's problems first: a 422 of the route's own, below, says more than theirs.
    responses(BodyProblems, (status = 204, description = "Recorded, or recorded already (the first receipt of a partner stays)"),
        (status = 403, description = "The statement is about another node, or this node delivered no such report to the sender", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The statement or its signature is invalid", body = Problem, content_type = "application/problem+json"))
)]
pub async fn receive_alert_seen(
    peer: Peer,
    federation: Data<Federation>,
    StrictJson(statement): StrictJson<Jws>,
) -> Result<HttpResponse, ApiError> {
    let now = federation.clock.now();
    let outcome = super::alerts::receive_seen(&federation, &peer.org, &statement, now).await;
    answer(&federation, &peer, "alert.seen_refused", &statement, outcome, now).await
}

/// A partner asks this node for something, in a request signed by its key, under an agreement
/// whose flow from the partner to this node allows requests.
#[utoipa::path(
    post, path = "/federation/v1/requests", tag = "federation",
    request_body = Jws,
    // The body's problems first: a 422 of the route's own, below, says more than theirs.
    responses(BodyProblems, (status = 204, description = "Taken, or taken already (the same statement again)"),
        (status = 403, description = "The request is about other nodes, or no agreement active here lets the sender ask this node, or its report goes beyond the flow", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another request with this id is held here, or the sender has as many open requests here as it may", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not yet: what it needs (its agreement in force here, or an earlier step) has not arrived; send it again later", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The request, its bounds or its signature are invalid", body = Problem, content_type = "application/problem+json"))
)]
pub async fn receive_request(
    peer: Peer,
    federation: Data<Federation>,
    StrictJson(statement): StrictJson<Jws>,
) -> Result<HttpResponse, ApiError> {
    let now = federation.clock.now();
    let outcome = super::requests::receive_request(&federation, &peer.org, &statement, now).await;
    answer(&federation, &peer, "request.refused", &statement, outcome, now).await
}

/// A partner this node asked takes a step on the request (acknowledged, accepted, declined,
/// answered, done), in a statement signed by its key; steps come in order.
#[utoipa::path(
    post, path = "/federation/v1/requests/steps", tag = "federation",
    request_body = Jws,
    // The body's problems first: a 422 of the route's own, below, says more than theirs.
    responses(BodyProblems, (status = 204, description = "Taken, or taken already (the same statement again)"),
        (status = 403, description = "The step is about other nodes, or this node made no such request of the sender", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The step is not the next one, cannot follow the request's status, or another is held under its number", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not yet: what it needs (its agreement in force here, or an earlier step) has not arrived; send it again later", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The step, its text or its signature are invalid", body = Problem, content_type = "application/problem+json"))
)]
pub async fn receive_request_step(
    peer: Peer,
    federation: Data<Federation>,
    StrictJson(statement): StrictJson<Jws>,
) -> Result<HttpResponse, ApiError> {
    let now = federation.clock.now();
    let outcome = super::requests::receive_step(&federation, &peer.org, &statement, now).await;
    answer(&federation, &peer, "request.step_refused", &statement, outcome, now).await
}

/// 204 for a lifecycle document this node took; otherwise the refusal, logged and audited.
async fn answer<T>(
    federation: &Federation,
    peer: &Peer,
    event: &str,
    document: &Jws,
    outcome: Result<T, super::agreements::LifecycleError>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<HttpResponse, ApiError> {
    match outcome {
        Ok(_) => Ok(HttpResponse::NoContent().finish()),
        Err(error) => {
            refusal(federation, peer, event, document, &error, now).await?;
            Err(ApiError::from(error))
        }
    }
}

/// Logs and audits a document a partner sent that was refused: who sent it, its hash, and why.
async fn refusal(
    federation: &Federation,
    peer: &Peer,
    event: &str,
    document: &Jws,
    error: &dyn std::fmt::Display,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    tracing::warn!(partner = %peer.org, %error, event, "refused a document a partner sent");
    let refused = AuditEvent::new(event, &format!("partner:{}", peer.org))
        .partner(&peer.org)
        .object(document.to_json().as_bytes())
        .detail(error);
    Ok(federation.store.record_audit(&refused, now).await?)
}
