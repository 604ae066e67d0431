//! Node identity and mutual-TLS peering, with real handshakes on loopback: partners that imported
//! each other's cards talk; unknown, missing, expired and blocked certificates are refused at the
//! handshake; a card is refused when tampered with, when it claims another partner's key or another
//! organisation's connection; and a key rotation keeps a partnership working.

use std::time::Duration as StdDuration;

use chrono::Duration;
use lagesbild::clock::Clock;
use lagesbild::crypto::jws::{Jws, JwsSignature};
use lagesbild::crypto::keys::SigningKey;
use lagesbild::crypto::tls::{PeerTrust, TlsIdentity};
use lagesbild::domain::{CardPin, NodeCard, OrgId};
use lagesbild::federation::client::{ClientError, PartnerClient};
use lagesbild::identity::sign_card;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestNode, expect_problem, start_time, until_within};

on_both_backends!(
    partners_that_imported_each_others_cards_can_talk,
    strangers_and_certificate_less_clients_are_refused_at_the_handshake,
    expired_certificate_is_refused_even_when_pinned,
    blocked_partner_is_refused_until_unblocked,
    card_for_another_organisation_is_refused_on_a_partners_connection,
    card_claiming_another_partners_tls_key_is_refused,
    card_naming_another_organisations_key_as_its_previous_is_refused_unless_that_key_signed_it,
    tampered_cards_are_refused,
    key_rotation_keeps_the_partnership_working,
    node_with_an_exposed_key_or_a_foreign_card_does_not_start,
    under_a_certificate_authority_partners_talk_and_others_are_refused,
);

/// A's signed card, as its admin would download it.
pub async fn signed_card(node: &TestNode) -> Value {
    let view: Value = node.get("/api/v1/node").send().await.unwrap().json().await.unwrap();
    view["signed_card"].clone()
}

pub async fn import(into: &TestNode, card: &Value) -> reqwest::Response {
    into.request(Method::POST, "/api/v1/partners").json(card).send().await.unwrap()
}

/// Two nodes that imported each other's cards.
pub async fn partnered(backend: Backend) -> (TestNode, TestNode) {
    partners(backend, "se-kommun-norrkoping", "se-polisen-ost").await
}

/// Nodes of `a` and `b` that imported each other's cards.
pub async fn partners(backend: Backend, a: &str, b: &str) -> (TestNode, TestNode) {
    let a = TestNode::spawn_federated(backend, a).await;
    let b = TestNode::spawn_federated(backend, b).await;
    assert_eq!(import(&b, &signed_card(&a).await).await.status(), StatusCode::CREATED);
    assert_eq!(import(&a, &signed_card(&b).await).await.status(), StatusCode::CREATED);
    (a, b)
}

/// A client of `from`'s node towards partner `to`, with `from`'s current keys.
pub async fn client(from: &TestNode, to: &TestNode) -> PartnerClient {
    client_with(&from.keys().tls, from, to).await
}

pub async fn client_with(identity: &TlsIdentity, from: &TestNode, to: &TestNode) -> PartnerClient {
    let partner = from.store().partner(&OrgId::parse(&to.org).unwrap()).await.unwrap().expect("partner known");
    PartnerClient::new(identity, &PeerTrust::Pins, &partner, &from.time()).unwrap()
}

/// Asserts the call failed at the TLS handshake, for the reason `alert` names: the alert the other
/// side sent (`received fatal alert: AccessDenied`), or this side's own refusal of the server's
/// certificate (`invalid peer certificate`). A listener that is down or a timeout fails it, so each
/// refusal stands beside a positive control on the same listener.
async fn refused_at_handshake<T: std::fmt::Debug, F, Fut>(call: F, alert: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    // Under TLS 1.3 a client may send its request before the alert arrives and then see only a
    // closed or cancelled connection, without the cause: such an attempt is made again, a few
    // times at most. Any other failure (a listener that is down answers "Connection refused") or
    // a success fails at once.
    let without_cause = |reason: &str| {
        ["channel closed", "connection was not ready", "connection closed"].iter().any(|c| reason.contains(c))
    };
    let mut reasons = Vec::new();
    for _ in 0..10 {
        match call().await {
            Err(ClientError::Unreachable { reason, .. }) if reason.contains(alert) => return,
            Err(ClientError::Unreachable { reason, .. }) if without_cause(&reason) => reasons.push(reason),
            other => panic!("expected the handshake to fail with {alert}, got {other:?}"),
        }
    }
    panic!("expected the handshake to fail with {alert}; the connection only closed: {reasons:?}");
}

/// The TLS alert a listener sends a certificate it refuses; the certificate authority's verifier
/// names an issuer it does not know as such.
const ACCESS_DENIED: &str = "received fatal alert: AccessDenied";
const EXPIRED: &str = "received fatal alert: CertificateExpired";
const UNKNOWN_CA: &str = "received fatal alert: UnknownCA";
/// What a client that offers no certificate at all is told.
const CERTIFICATE_REQUIRED: &str = "received fatal alert: CertificateRequired";
/// This node's own refusal of a server whose key is not the one pinned for it.
const SERVER_NOT_PINNED: &str = "invalid peer certificate";

/// An error and every cause under it, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

async fn partners_that_imported_each_others_cards_can_talk(backend: Backend) {
    let (a, b) = partnered(backend).await;
    let hello = client(&a, &b).await.hello().await.unwrap();
    assert_eq!((hello.you_are.as_str(), hello.i_am.as_str()), ("se-kommun-norrkoping", "se-polisen-ost"));
    let hello = client(&b, &a).await.hello().await.unwrap();
    assert_eq!(hello.you_are.as_str(), "se-polisen-ost");

    let partners: Vec<Value> = b.get("/api/v1/partners").send().await.unwrap().json().await.unwrap();
    assert_eq!(partners.len(), 1);
    assert_eq!(partners[0]["org_id"], "se-kommun-norrkoping");
    assert_eq!(partners[0]["blocked"], false);
    assert!(partners[0]["last_contact_at"].is_string(), "{}", partners[0]);
    // Importing the same card again changes nothing and says so.
    assert_eq!(import(&b, &signed_card(&a).await).await.status(), StatusCode::OK);
    a.stop().await;
    b.stop().await;
}

async fn strangers_and_certificate_less_clients_are_refused_at_the_handshake(backend: Backend) {
    let (a, b) = partnered(backend).await;
    let stranger = TestNode::spawn_federated(backend, "se-okand").await;
    // The stranger knows b (imported b's card) but b does not know the stranger.
    assert_eq!(import(&stranger, &signed_card(&b).await).await.status(), StatusCode::CREATED);
    refused_at_handshake(|| async { client(&stranger, &b).await.hello().await }, ACCESS_DENIED).await;
    client(&a, &b).await.hello().await.unwrap();
    // The refusal is in b's audit trail, with the hash of the key the stranger presented.
    let stranger_pin = stranger.keys().tls.pin.to_string();
    let expected = lagesbild::domain::audit::sha256_hex(stranger_pin.as_bytes());
    until_within("the refused handshake was not audited", StdDuration::from_secs(10), || async {
        let trail: Value =
            b.get("/api/v1/audit?event=federation.handshake_refused").send().await.unwrap().json().await.unwrap();
        let audited = trail["entries"].as_array().unwrap().iter().any(|e| e["object_hash"] == expected.as_str());
        if audited { Ok(()) } else { Err(trail.to_string()) }
    })
    .await;

    // No client certificate at all.
    // TLS 1.2, where the refusal comes inside the handshake: under 1.3 the client may have sent its
    // request before the alert arrives, and then sees only a closed connection.
    let bare = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let url = b.config.federation.as_ref().map(|f| format!("https://{}/federation/v1/hello", f.listen)).unwrap();
    let error = bare.get(&url).send().await.expect_err("a client without a certificate got an answer");
    let reason = error_chain(&error);
    assert!(reason.contains(CERTIFICATE_REQUIRED), "expected {CERTIFICATE_REQUIRED}: {reason}");
    client(&a, &b).await.hello().await.unwrap();

    // A's client refuses a server whose key is not the one pinned for it: the stranger's node
    // answering at b's address is simulated by pinning only the stranger's key for b.
    let mut wrong = a.store().partner(&OrgId::parse("se-polisen-ost").unwrap()).await.unwrap().unwrap();
    wrong.pins = vec![(stranger.keys().tls.pin.clone(), None)];
    refused_at_handshake(
        || async { PartnerClient::new(&a.keys().tls, &PeerTrust::Pins, &wrong, &a.time()).unwrap().hello().await },
        SERVER_NOT_PINNED,
    )
    .await;
    client(&a, &b).await.hello().await.unwrap();
    stranger.stop().await;
    a.stop().await;
    b.stop().await;
}

async fn expired_certificate_is_refused_even_when_pinned(backend: Backend) {
    let (a, b) = partnered(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let org = OrgId::parse("se-vaktbolaget").unwrap();
    let now = start_time();
    let expired = TlsIdentity::generate(
        &org,
        &["localhost".to_owned()],
        now - Duration::days(30),
        now - Duration::days(1),
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
    )
    .unwrap();
    let signing = SigningKey::generate(&dir.path().join("signing.pem")).unwrap();
    let card = card_for(&org, &signing, &expired, "https://127.0.0.1:9");
    let signed = serde_json::to_value(sign_card(&card, &[&signing])).unwrap();
    assert_eq!(import(&b, &signed).await.status(), StatusCode::CREATED);
    let partner_of_guard = guard_view_of(&b).await;
    refused_at_handshake(
        || async {
            PartnerClient::new(&expired, &PeerTrust::Pins, &partner_of_guard, &b.time()).unwrap().hello().await
        },
        EXPIRED,
    )
    .await;
    // The same listener answers a partner whose certificate is valid.
    client(&a, &b).await.hello().await.unwrap();
    a.stop().await;
    b.stop().await;
}

/// How a test client that presents another node's key reaches `b`: a record naming b's pins.
async fn guard_view_of(b: &TestNode) -> lagesbild::store::PartnerRecord {
    let keys = b.keys();
    lagesbild::store::PartnerRecord {
        org_id: keys.card.org_id.clone(),
        name: keys.card.name.clone(),
        federation_url: format!("https://{}", b.config.federation.as_ref().unwrap().listen),
        signing_key: keys.card.signing_key.clone(),
        card: String::new(),
        card_issued_at: keys.card.issued_at,
        pins: vec![(keys.tls.pin.clone(), None)],
        blocked: false,
        added_at: keys.card.issued_at,
        updated_at: keys.card.issued_at,
        last_contact_at: None,
        last_error: None,
        last_error_at: None,
    }
}

fn card_for(org: &OrgId, signing: &SigningKey, tls: &TlsIdentity, url: &str) -> NodeCard {
    NodeCard {
        org_id: org.clone(),
        name: "Väktarbolaget AB".into(),
        federation_url: url.into(),
        signing_key: signing.public().to_b64(),
        previous_signing_key: None,
        tls_pins: vec![CardPin { pin: tls.pin.clone(), until: None }],
        issued_at: start_time(),
        valid_until: start_time() + Duration::days(365),
    }
}

async fn blocked_partner_is_refused_until_unblocked(backend: Backend) {
    let (a, b) = partnered(backend).await;
    let blocked = b.request(Method::POST, "/api/v1/partners/se-kommun-norrkoping/block").send().await.unwrap();
    assert_eq!(blocked.status(), StatusCode::OK);
    refused_at_handshake(|| async { client(&a, &b).await.hello().await }, ACCESS_DENIED).await;
    let unblocked = b.request(Method::POST, "/api/v1/partners/SE-Kommun-Norrkoping/unblock").send().await.unwrap();
    assert_eq!(unblocked.status(), StatusCode::OK);
    client(&a, &b).await.hello().await.unwrap();
    let missing = b.request(Method::POST, "/api/v1/partners/se-nobody/block").send().await.unwrap();
    expect_problem(missing, StatusCode::NOT_FOUND).await;
    a.stop().await;
    b.stop().await;
}

async fn card_for_another_organisation_is_refused_on_a_partners_connection(backend: Backend) {
    let (a, b) = partnered(backend).await;
    let other = TestNode::spawn_federated(backend, "se-ica-hertsotorget").await;
    let other_card: Jws = serde_json::from_value(signed_card(&other).await).unwrap();
    // A's pinned certificate carries a card that claims to be the retailer's.
    match client(&a, &b).await.push_card(&other_card).await {
        Err(ClientError::Refused { status: 403, .. }) => {}
        other => panic!("expected 403, got {other:?}"),
    }
    let partners: Vec<Value> = b.get("/api/v1/partners").send().await.unwrap().json().await.unwrap();
    assert_eq!(partners.len(), 1, "the retailer was added through a's connection");
    other.stop().await;
    a.stop().await;
    b.stop().await;
}

async fn card_claiming_another_partners_tls_key_is_refused(backend: Backend) {
    let (a, b) = partnered(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let signing = SigningKey::generate(&dir.path().join("signing.pem")).unwrap();
    let mut card = card_for(&OrgId::parse("se-falsk").unwrap(), &signing, &a.keys().tls, "https://127.0.0.1:9");
    card.tls_pins = vec![CardPin { pin: a.keys().tls.pin.clone(), until: None }];
    let signed = serde_json::to_value(sign_card(&card, &[&signing])).unwrap();
    let problem = expect_problem(import(&b, &signed).await, StatusCode::CONFLICT).await;
    assert!(problem["detail"].as_str().unwrap().contains("another partner"), "{problem}");
    assert!(b.store().partner(&OrgId::parse("se-falsk").unwrap()).await.unwrap().is_none());
    a.stop().await;
    b.stop().await;
}

async fn card_naming_another_organisations_key_as_its_previous_is_refused_unless_that_key_signed_it(backend: Backend) {
    let (a, b) = partnered(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let signing = SigningKey::generate(&dir.path().join("signing.pem")).unwrap();
    let org = OrgId::parse("se-falsk").unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("tls.pem"));
    let hosts = ["127.0.0.1".to_owned()];
    let tls =
        TlsIdentity::generate(&org, &hosts, start_time(), start_time() + Duration::days(365), &cert, &key).unwrap();
    // The card claims the municipality's signing key as the key it replaced, signed by its own only.
    let mut card = card_for(&org, &signing, &tls, "https://127.0.0.1:9");
    card.previous_signing_key = Some(a.keys().signing.public().to_b64());
    let claimed = serde_json::to_value(sign_card(&card, &[&signing])).unwrap();
    let problem = expect_problem(import(&b, &claimed).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem["detail"].as_str().unwrap().contains("previous_signing_key"), "{problem}");
    assert!(b.store().partner(&org).await.unwrap().is_none());
    // Signed by the key it names as its previous one too (as a rotation signs), it is accepted.
    let mut rotated = card_for(&org, &signing, &tls, "https://127.0.0.1:9");
    let old = SigningKey::generate(&dir.path().join("old.pem")).unwrap();
    rotated.previous_signing_key = Some(old.public().to_b64());
    let proven = serde_json::to_value(sign_card(&rotated, &[&signing, &old])).unwrap();
    assert_eq!(import(&b, &proven).await.status(), StatusCode::CREATED);
    a.stop().await;
    b.stop().await;
}

async fn tampered_cards_are_refused(backend: Backend) {
    let a = TestNode::spawn_federated(backend, "se-kommun-norrkoping").await;
    let b = TestNode::spawn_federated(backend, "se-polisen-ost").await;
    let genuine: Jws = serde_json::from_value(signed_card(&a).await).unwrap();
    let payload = String::from_utf8(genuine.unverified_payload().unwrap()).unwrap();
    let b64 = |text: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    };
    let with_payload = |text: &str| Jws { payload: b64(text), signatures: genuine.signatures.clone() };

    let mut flipped = genuine.clone();
    let mut bytes = flipped.signatures[0].signature.clone().into_bytes();
    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
    flipped.signatures[0].signature = String::from_utf8(bytes).unwrap();

    let changed = with_payload(&payload.replace("Test node se-kommun-norrkoping", "Polisen"));
    let duplicated = with_payload(&payload.replacen("{", "{\"org_id\":\"se-polisen-ost\",", 1));
    let unsigned = Jws { payload: genuine.payload.clone(), signatures: vec![] };
    let dir = tempfile::tempdir().unwrap();
    let stranger = SigningKey::generate(&dir.path().join("k.pem")).unwrap();
    let mut extra = genuine.clone();
    let foreign = sign_card(&serde_json::from_str(&payload).unwrap(), &[&stranger]);
    extra.signatures.push(foreign.signatures[0].clone());
    let forged_sig = Jws {
        payload: genuine.payload.clone(),
        signatures: vec![JwsSignature {
            protected: genuine.signatures[0].protected.clone(),
            signature: foreign.signatures[0].signature.clone(),
        }],
    };
    for (what, card) in [
        ("a flipped signature byte", flipped),
        ("a changed field", changed),
        ("a duplicated member", duplicated),
        ("no signature", unsigned),
        ("a signature by an unknown key", extra),
        ("another key's signature", forged_sig),
    ] {
        let response = import(&b, &serde_json::to_value(&card).unwrap()).await;
        let status = response.status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what} was not refused");
        expect_problem(response, status).await;
    }
    // A card with a duplicated member in the JWS itself.
    let text = format!(r#"{{"payload":"{}","payload":"{}","signatures":[]}}"#, genuine.payload, genuine.payload);
    let response = b
        .request(Method::POST, "/api/v1/partners")
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    // An expired card.
    b.clock.advance(Duration::days(800));
    expect_problem(import(&b, &serde_json::to_value(&genuine).unwrap()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let partners: Vec<Value> = b.get("/api/v1/partners").send().await.unwrap().json().await.unwrap();
    assert!(partners.is_empty(), "a tampered card was stored: {partners:?}");
    a.stop().await;
    b.stop().await;
}

async fn key_rotation_keeps_the_partnership_working(backend: Backend) {
    let (mut a, b) = partnered(backend).await;
    let old = a.keys();
    a.halt().await;
    // Some time passes; not much, because rustls checks certificates against the real clock.
    a.clock.advance(Duration::minutes(5));
    b.clock.advance(Duration::minutes(5));
    lagesbild::identity::rotate(&a.config, a.clock.now()).unwrap();
    let a = a.restart().await;
    let new = a.keys();
    assert_ne!(new.tls.pin, old.tls.pin);
    assert_ne!(new.signing.public(), old.signing.public());

    // A announces its new card to b by itself; b accepts it because the old key signed it too.
    let org_a = OrgId::parse(&a.org).unwrap();
    until_within("b never learnt a's new card", StdDuration::from_secs(20), || async {
        let record = b.store().partner(&org_a).await.unwrap().unwrap();
        if record.signing_key == new.signing.public().to_b64() {
            return Ok(());
        }
        let seen_by_a = a.store().partners().await.unwrap();
        Err(format!("a recorded: {:?}", seen_by_a.iter().map(|p| &p.last_error).collect::<Vec<_>>()))
    })
    .await;
    client(&a, &b).await.hello().await.unwrap();
    client(&b, &a).await.hello().await.unwrap();
    // The old TLS key is accepted during the overlap, and refused after it.
    client_with(&old.tls, &a, &b).await.hello().await.unwrap();
    b.clock.advance(Duration::days(15));
    refused_at_handshake(|| async { client_with(&old.tls, &a, &b).await.hello().await }, ACCESS_DENIED).await;
    client(&a, &b).await.hello().await.unwrap();
    a.stop().await;
    b.stop().await;
}

async fn node_with_an_exposed_key_or_a_foreign_card_does_not_start(backend: Backend) {
    let mut a = TestNode::spawn_federated(backend, "se-kommun-norrkoping").await;
    a.halt().await;
    let identity = a.config.identity.clone().unwrap();
    let start = || lagesbild::server::start(&a.config, a.clock.clone());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&identity.signing_key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = start().await.err().expect("a readable key must stop start-up").to_string();
        assert!(error.contains("chmod 600"), "{error}");
        std::fs::set_permissions(&identity.signing_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let card = std::fs::read(&identity.card).unwrap();
    std::fs::remove_file(&identity.card).unwrap();
    let error = start().await.err().expect("a missing card must stop start-up").to_string();
    assert!(error.contains("node-card.json"), "{error}");

    // Another node's card next to this node's keys.
    let other = TestNode::spawn_federated(backend, "se-polisen-ost").await;
    std::fs::copy(&other.config.identity.as_ref().unwrap().card, &identity.card).unwrap();
    let error = start().await.err().expect("a foreign card must stop start-up").to_string();
    assert!(error.contains("se-polisen-ost"), "{error}");
    std::fs::write(&identity.card, card).unwrap();

    std::fs::remove_file(&identity.tls_key).unwrap();
    let error = start().await.err().expect("a missing TLS key must stop start-up").to_string();
    assert!(error.contains("tls-key.pem") && error.contains("lagesbild init"), "{error}");
    other.stop().await;
}

/// A certificate authority for tests: its root in PEM, and a way to issue node certificates.
struct TestAuthority {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    root_pem: String,
}

impl TestAuthority {
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let root_pem = params.self_signed(&key).unwrap().pem();
        Self { issuer: rcgen::Issuer::new(params, key), root_pem }
    }

    /// Issues a certificate made out to `org` for 127.0.0.1 and writes it and its key (0600).
    fn issue(&self, org: &str, cert_path: &std::path::Path, key_path: &std::path::Path) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, org);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(cert_path, cert.pem()).unwrap();
        std::fs::write(key_path, key.serialize_pem()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// Moves a node from pins to the authority: a certificate from `ca`, the bundle in its
/// configuration, a reissued card, and a restart.
async fn under_authority(mut node: TestNode, ca: &TestAuthority) -> TestNode {
    node.halt().await;
    let identity = node.config.identity.clone().unwrap();
    ca.issue(&node.org, &identity.tls_cert, &identity.tls_key);
    let bundle = identity.card.with_file_name("ca.pem");
    std::fs::write(&bundle, &ca.root_pem).unwrap();
    node.config.federation.as_mut().unwrap().ca_bundle = Some(bundle);
    node.clock.advance(Duration::minutes(1));
    lagesbild::identity::reissue_card(&node.config, node.clock.now()).unwrap();
    node.restart().await
}

async fn under_a_certificate_authority_partners_talk_and_others_are_refused(backend: Backend) {
    let ca = TestAuthority::new("Test national PKI");
    let a = under_authority(TestNode::spawn_federated(backend, "se-kommun-norrkoping").await, &ca).await;
    let b = under_authority(TestNode::spawn_federated(backend, "se-polisen-ost").await, &ca).await;
    assert_eq!(import(&b, &signed_card(&a).await).await.status(), StatusCode::CREATED);
    assert_eq!(import(&a, &signed_card(&b).await).await.status(), StatusCode::CREATED);
    let trust = PeerTrust::load_authority(&a.config.federation.as_ref().unwrap().ca_bundle.clone().unwrap()).unwrap();
    let client = |from: &TestNode, identity: TlsIdentity, to: &str| {
        let store = from.store().clone();
        let (trust, time) = (trust.clone(), from.time());
        let to = OrgId::parse(to).unwrap();
        async move {
            let partner = store.partner(&to).await.unwrap().unwrap();
            PartnerClient::new(&identity, &trust, &partner, &time).unwrap()
        }
    };
    let hello = client(&a, a.keys().tls, "se-polisen-ost").await.hello().await.unwrap();
    assert_eq!(hello.you_are.as_str(), "se-kommun-norrkoping");
    client(&b, b.keys().tls, "se-kommun-norrkoping").await.hello().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    // Vouched for by the authority, but no partner of b's.
    ca.issue("se-okand", &cert, &key);
    refused_at_handshake(
        || async { client(&a, TlsIdentity::load(&cert, &key).unwrap(), "se-polisen-ost").await.hello().await },
        ACCESS_DENIED,
    )
    .await;
    client(&a, a.keys().tls, "se-polisen-ost").await.hello().await.unwrap();
    // Made out to a partner, but by another authority.
    let other = TestAuthority::new("Someone else");
    let (cert2, key2) = (dir.path().join("c2.pem"), dir.path().join("k2.pem"));
    other.issue("se-kommun-norrkoping", &cert2, &key2);
    refused_at_handshake(
        || async { client(&a, TlsIdentity::load(&cert2, &key2).unwrap(), "se-polisen-ost").await.hello().await },
        UNKNOWN_CA,
    )
    .await;
    client(&a, a.keys().tls, "se-polisen-ost").await.hello().await.unwrap();
    // A blocked partner, even with the authority's certificate.
    b.request(Method::POST, "/api/v1/partners/se-kommun-norrkoping/block").send().await.unwrap();
    refused_at_handshake(|| async { client(&a, a.keys().tls, "se-polisen-ost").await.hello().await }, ACCESS_DENIED)
        .await;
    b.request(Method::POST, "/api/v1/partners/se-kommun-norrkoping/unblock").send().await.unwrap();
    client(&a, a.keys().tls, "se-polisen-ost").await.hello().await.unwrap();
    a.stop().await;
    b.stop().await;
}

/// Replicas of one node share a PostgreSQL database (SQLite is one process's file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_added_through_one_replica_is_known_to_the_others() {
    let backend = Backend::Postgres;
    let b = TestNode::spawn_federated(backend, "se-polisen-ost").await;
    let b2 = b.replica().await;
    let a = TestNode::spawn_federated(backend, "se-kommun-norrkoping").await;
    assert_eq!(import(&a, &signed_card(&b).await).await.status(), StatusCode::CREATED);
    // The partner is added through the first replica only.
    assert_eq!(import(&b, &signed_card(&a).await).await.status(), StatusCode::CREATED);
    let mut at_b2 = a.store().partner(&OrgId::parse("se-polisen-ost").unwrap()).await.unwrap().unwrap();
    at_b2.federation_url = format!("https://{}", b2.federation_addr());
    let client = PartnerClient::new(&a.keys().tls, &PeerTrust::Pins, &at_b2, &a.time()).unwrap();
    // Each attempt gets a few seconds of its own, so one slow handshake cannot eat the deadline.
    until_within("the second replica never learnt of the new partner", StdDuration::from_secs(30), || async {
        match tokio::time::timeout(StdDuration::from_secs(3), client.hello()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer within 3 s".to_owned()),
        }
    })
    .await;
    a.stop().await;
    b2.stop().await;
    b.stop().await;
}
