//! A partner that misbehaves on purpose, as a compromised or broken node could: its answers never
//! end, its feed always says there is more, or it answers a delivery only after a long wait and then
//! with garbage. This node reads every answer within a size cap, reads a feed for a bounded number of
//! pages per round, and delivers to each partner apart from the others, so such a partner costs it
//! little and holds up nothing else.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use actix_web::web::{self, Bytes, Query};
use actix_web::{App, HttpResponse, HttpServer};
use lagesbild::crypto::tls::{PeerTrust, TrustedPeers, server_config};
use lagesbild::domain::{OrgId, TlsPin};
use lagesbild::federation::client::ClientError;
use serde_json::json;

use crate::exchange::{
    MUNICIPALITY, POLICE, RETAILER, SAFETY, agree, federation, green_report_at_the_centre, id_of, picture_entry,
};
use crate::on_both_backends;
use crate::peering::client;
use crate::support::{Backend, TestNode, until_within};

on_both_backends!(
    an_endless_answer_from_a_partner_is_cut_off_at_its_cap,
    a_feed_that_always_has_more_is_read_a_bounded_number_of_pages_per_round,
    a_partner_that_answers_slowly_and_with_garbage_holds_up_no_delivery_to_the_others,
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

/// The police's node replaced by one whose deliveries hang until `release` is notified and then
/// answer 200 with a body that is not JSON.
async fn slow_garbage_police(police: &mut TestNode, release: Arc<tokio::sync::Notify>) -> actix_web::dev::ServerHandle {
    let (addr, tls) = (police.federation_addr(), police.keys().tls);
    police.halt().await;
    let config = server_config(&tls, &PeerTrust::Pins, Arc::new(AnyPeer), police.time()).unwrap();
    let server = HttpServer::new(move || {
        let release = release.clone();
        App::new().route(
            "/federation/v1/envelopes",
            web::post().to(move || {
                let release = release.clone();
                async move {
                    release.notified().await;
                    HttpResponse::Ok().content_type("application/json").body("<html>garbage</html>")
                }
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
    handle
}

async fn a_partner_that_answers_slowly_and_with_garbage_holds_up_no_delivery_to_the_others(backend: Backend) {
    let mut nodes = federation(backend, &[MUNICIPALITY, POLICE, RETAILER], |_| {}).await;
    agree(&[&nodes[0], &nodes[1], &nodes[2]], SAFETY).await;
    let retailer = nodes.pop().unwrap();
    let mut police = nodes.pop().unwrap();
    let municipality = nodes.pop().unwrap();
    let release = Arc::new(tokio::sync::Notify::new());
    let server = slow_garbage_police(&mut police, release.clone()).await;

    // The first report goes to both; the police's delivery hangs. While it hangs, the retailer
    // receives that report and a second one filed after it.
    let first = id_of(&municipality.file(&green_report_at_the_centre()).await);
    picture_entry(&retailer, &first, |e| e.is_some()).await;
    let second = id_of(&municipality.file(&green_report_at_the_centre()).await);
    until_within(
        "the retailer receiving the second report while the police hang",
        StdDuration::from_secs(10),
        || async {
            let ids = retailer.situation_ids("?limit=100").await;
            ids.contains(&second).then_some(()).ok_or_else(|| format!("the retailer holds {ids:?}"))
        },
    )
    .await;

    // The police answer with garbage: their partner state says so, and nothing is lost.
    release.notify_waiters();
    until_within("the police's trouble in their partner state", StdDuration::from_secs(20), || async {
        let partners: serde_json::Value =
            municipality.get("/api/v1/partners").send().await.unwrap().json().await.unwrap();
        let police = partners.as_array().unwrap().iter().find(|p| p["org_id"] == POLICE).cloned().unwrap();
        let queued = police["delivery"]["queued"].as_i64().unwrap();
        match police["last_error"].as_str() {
            Some(error) if queued == 2 => Ok(error.to_owned()),
            other => Err(format!("last error {other:?}, {queued} queued")),
        }
    })
    .await;
    server.stop(false).await;
    municipality.stop().await;
    retailer.stop().await;
}
