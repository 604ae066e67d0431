//! The federation API's own OpenAPI document, for partners who implement a node of their own. It is
//! committed as `openapi/federation.json`; a test fails when it differs from the code.

use utoipa::OpenApi;

use super::{inbox, listener};
use crate::crypto::jws::{Jws, JwsSignature};
use crate::domain::{CardPin, NodeCard};
use crate::http::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lagesbild federation API",
        description = "What one lagesbild node offers its partner nodes, on the federation listener. Every \
request needs mutual TLS: the client certificate's public key must be pinned in a node card this node has \
imported, and the partner behind a request is the one that key belongs to. Reports travel as envelopes: \
JWS JSON serialisation, EdDSA, one signature whose protected header carries `envelope` (sender, recipient, \
agreement, report, version and `iat`); the payload is the recipient's view of the report. Each partner is \
rate-limited (429 with Retry-After). Errors are RFC 9457 problem documents.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
    ),
    paths(
        listener::hello,
        listener::own_card,
        listener::receive_card,
        listener::receive_agreement,
        listener::receive_revocation,
        listener::receive_framework,
        listener::receive_holding,
        listener::receive_alert_seen,
        listener::receive_request,
        listener::receive_request_step,
        inbox::receive_envelopes,
        inbox::feed
    ),
    components(schemas(Jws, JwsSignature, NodeCard, CardPin, Problem, listener::Hello)),
    tags((name = "federation", description = "Node to node, over mutual TLS"))
)]
pub struct FederationDoc;

/// The document as committed in `openapi/federation.json`.
pub fn openapi_json() -> String {
    let mut text = FederationDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
