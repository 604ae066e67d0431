//! A partner that misbehaves on purpose, as a compromised or broken node could: its answers never
//! end, and its feed always says there is more. This node reads every answer within a size cap and
//! reads a feed for a bounded number of pages per round, so such a partner costs it little and
//! holds up nothing else.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use actix_web::web::{self, Bytes, Query};
use actix_web::{App, HttpResponse, HttpServer};
use lagesbild::crypto::tls::{PeerTrust, TrustedPeers, server_config};
use lagesbild::domain::{OrgId, TlsPin};
use lagesbild::federation::client::ClientError;
use serde_json::json;

use crate::exchange::{MUNICIPALITY, POLICE, federation};
use crate::on_both_backends;
use crate::peering::client;
use crate::support::{Backend, TestNode};

on_both_backends!(
    an_endless_answer_from_a_partner_is_cut_off_at_its_cap,
    a_feed_that_always_has_more_is_read_a_bounded_number_of_pages_per_round,
);

/// Trusts any client certificate: the hostile partner wants to talk.
#[derive(Debug)]
struct AnyPeer;

impl TrustedPeers for AnyPeer {
    fn trusts_pin(&self, _pin: &TlsPin) -> bool {
        true
    }

    fn trusts_org(&self, _org: &OrgId) -> bool {
        true
    }
}

/// An answer that never ends.
fn endless(status: actix_web::http::StatusCode) -> HttpResponse {
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    HttpResponse::build(status)
        .content_type("application/json")
        .streaming(futures_util::stream::repeat_with(move || Ok::<_, actix_web::Error>(chunk.clone())))
}

/// The police's node replaced, at its own address and with its own TLS key, by one that answers
/// `hello` and deliveries without end and whose feed always has one more (empty) page.
async fn hostile_police(backend: Backend) -> (TestNode, TestNode, actix_web::dev::ServerHandle) {
    let mut nodes = federation(backend, &[MUNICIPALITY, POLICE], |_| {}).await;
    let mut police = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    let (addr, tls) = (police.federation_addr(), police.keys().tls);
    police.halt().await;
    let config = server_config(&tls, &PeerTrust::Pins, Arc::new(AnyPeer), police.time()).unwrap();
    let server = HttpServer::new(|| {
        App::new()
            .route("/federation/v1/hello", web::get().to(|| async { endless(actix_web::http::StatusCode::OK) }))
            .route(
                "/federation/v1/envelopes",
                web::post().to(|| async { endless(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR) }),
            )
            .route(
                "/federation/v1/feed",
                web::get().to(|query: Query<std::collections::HashMap<String, i64>>| async move {
                    let after = query.get("after").copied().unwrap_or(0);
                    HttpResponse::Ok().json(json!({"envelopes": [], "revocations": [], "next_after": after + 1}))
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen_rustls_0_23(std::net::TcpListener::bind(addr).unwrap(), config)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (municipality, police, handle)
}

async fn an_endless_answer_from_a_partner_is_cut_off_at_its_cap(backend: Backend) {
    let (municipality, police, server) = hostile_police(backend).await;
    let to_police = client(&municipality, &police).await;
    match tokio::time::timeout(StdDuration::from_secs(20), to_police.hello()).await.expect("hello never returned") {
        Err(ClientError::Refused { detail, .. }) => assert!(detail.contains("larger than"), "{detail}"),
        other => panic!("expected the answer to be refused for its size, got {other:?}"),
    }
    let delivered = tokio::time::timeout(StdDuration::from_secs(20), to_police.post_envelopes(&[])).await;
    match delivered.expect("the delivery never returned") {
        Err(ClientError::Refused { status: 500, detail, .. }) => assert!(detail.len() <= 2_000, "{}", detail.len()),
        other => panic!("expected a refusal with a capped detail, got {other:?}"),
    }
    server.stop(false).await;
    municipality.stop().await;
}

async fn a_feed_that_always_has_more_is_read_a_bounded_number_of_pages_per_round(backend: Backend) {
    let (municipality, police, server) = hostile_police(backend).await;
    let partner = OrgId::parse(&police.org).unwrap();
    let round = lagesbild::federation::catch_up::catch_up(municipality.federation(), &partner);
    let outcome =
        tokio::time::timeout(StdDuration::from_secs(60), round).await.expect("catch-up never ended its round");
    assert_eq!(outcome, Ok(0), "nothing was taken from an empty feed");
    server.stop(false).await;
    municipality.stop().await;
}
