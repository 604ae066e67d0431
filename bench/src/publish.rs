//! Publishing: reports per second that `POST /api/v1/reports` accepts, from one client and from
//! many, with latencies; and fan-out, the cost of filing a report that is shared with 20 partners
//! against one that is shared with one. For fan-out the partners are real identities made by
//! `lagesbild::identity::init` whose cards the node imports; they sign the agreement with their own
//! keys and send their signatures over mutual TLS as their nodes would, but do not run: what a
//! report costs its publisher is the policy passes, the signatures and the queued envelopes, all in
//! the publishing request. Their deliveries fail and back off meanwhile, as for partners that are
//! down.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lagesbild::clock::SystemClock;
use lagesbild::crypto::jws::Jws;
use lagesbild::crypto::keys::SigningKey;
use lagesbild::crypto::tls::{PeerTrust, TlsIdentity, client_config};
use lagesbild::domain::OrgId;
use lagesbild::identity::InitOptions;
use serde_json::{Value, json};

use crate::ceilings::Ceilings;
use crate::nodes::{Backend, Database, MUNICIPALITY, NodeProcess, free_port, wait_active};
use crate::report::{Figure, Results};
use crate::workload::{Until, file_reports, now};

const SECTION: &str = "2. Publishing (POST /api/v1/reports)";
const FAN_OUT: &str = "2b. Fan-out (one report, 20 recipients vs 1)";

/// How much to publish.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub seconds: f64,
    pub clients: usize,
    pub fan_out_reports: usize,
}

/// Reports per second accepted by one client and by many.
#[derive(Debug, Default, Clone, Copy)]
pub struct Accepted {
    pub one_client: Option<f64>,
    pub many_clients: Option<f64>,
}

/// Publishing throughput and latency on a node without partners.
pub async fn throughput(
    results: &mut Results,
    http: &reqwest::Client,
    work: &Path,
    logs: &Path,
    backend: Backend,
    ceilings: &Ceilings,
    sizes: Sizes,
) -> anyhow::Result<Accepted> {
    let engine = backend.name();
    let db = Arc::new(Database::create(backend, &work.join("publish"), "publish").await?);
    let mut node = NodeProcess::start(MUNICIPALITY, &work.join("publish").join(engine), db, logs).await?;
    let span = Duration::from_secs_f64(sizes.seconds);
    let mut accepted = Accepted::default();
    for clients in [1, sizes.clients] {
        println!("  {engine}: {clients} client(s) filing for {:.1} s...", sizes.seconds);
        let filing = file_reports(http, &node, clients, Until::Elapsed(span)).await;
        if filing.accepted == 0 {
            results.add(Figure::missing(
                SECTION,
                format!("{engine}: reports accepted, {clients} client(s)"),
                "reports/s",
                format!("nothing was accepted: {}", filing.first_error.unwrap_or_default()),
            ));
            continue;
        }
        if clients == 1 {
            accepted.one_client = Some(filing.per_second());
        } else {
            accepted.many_clients = Some(filing.per_second());
        }
        let mut figure = Figure::new(
            SECTION,
            format!("{engine}: reports accepted, {clients} client(s)"),
            filing.per_second(),
            "reports/s",
        )
        .ceiling(format!("{engine} single-row commits"), ceilings.commits(backend), "rows/s");
        if filing.failed > 0 {
            figure = figure.note(format!("{} refused: {}", filing.failed, filing.first_error.unwrap_or_default()));
        }
        results.add(figure);
        for (name, value) in [("p50", filing.latencies.p50()), ("p99", filing.latencies.p99())] {
            if let Some(v) = value {
                results.add(Figure::new(SECTION, format!("{engine}: latency {name}, {clients} client(s)"), v, "ms"));
            }
        }
    }
    node.stop().await?;
    Ok(accepted)
}

/// The publishing latency of reports shared with one partner and with 20.
pub async fn fan_out(
    results: &mut Results,
    http: &reqwest::Client,
    work: &Path,
    logs: &Path,
    backend: Backend,
    reports: usize,
) -> anyhow::Result<()> {
    let engine = backend.name();
    let mut means = Vec::new();
    for recipients in [1usize, 20] {
        println!("  {engine}: a node with {recipients} partner(s) under one agreement...");
        let dir = work.join(format!("fanout-{engine}-{recipients}"));
        let db = Arc::new(Database::create(backend, &dir, "fanout").await?);
        let mut node = NodeProcess::start(MUNICIPALITY, &dir.join("publisher"), db, logs).await?;
        let partners = absent_partners(&dir, recipients)?;
        for partner in &partners {
            node.call(http, reqwest::Method::POST, "/api/v1/partners", Some(&partner.card)).await?;
        }
        let everyone: Vec<_> = partners.iter().collect();
        share_with(http, &node, &everyone, &format!("bench-fan-out-{recipients}"), NORRKOPING).await?;
        // One sequential client: the request's own cost, not queueing behind others.
        let filing = file_reports(http, &node, 1, Until::Count(reports)).await;
        let queued = queued_envelopes(&node).await?;
        node.stop().await?;
        let (Some(p50), Some(p99), Some(mean)) =
            (filing.latencies.p50(), filing.latencies.p99(), filing.latencies.mean_ms())
        else {
            bail!("no report was accepted with {recipients} recipients: {}", filing.first_error.unwrap_or_default());
        };
        let expected = (filing.accepted * recipients) as i64;
        anyhow::ensure!(
            queued == expected,
            "{queued} envelopes queued for {} reports to {recipients} recipient(s); expected {expected}",
            filing.accepted
        );
        let label = format!("{engine}: publish latency, {recipients} recipient(s)");
        results.add(Figure::new(FAN_OUT, format!("{label} p50"), p50, "ms"));
        results.add(Figure::new(FAN_OUT, format!("{label} p99"), p99, "ms").note(format!(
            "{} reports filed one at a time; {queued} envelopes queued, one per report and recipient (checked)",
            filing.accepted
        )));
        means.push(mean);
    }
    if let [one, twenty] = means[..] {
        results.add(
            Figure::new(FAN_OUT, format!("{engine}: mean publish latency, 20 recipients"), twenty, "ms")
                .ceiling("the same with 1 recipient", Some(one), "ms")
                .target("< 10x one recipient's", |_, ratio| ratio.is_some_and(|r| r < 10.0)),
        );
    }
    Ok(())
}

/// Norrköping's municipality code, where the workload's reports are.
pub const NORRKOPING: &str = "0581";

/// A partner made by `init` that never runs: its keys sign for it.
pub struct AbsentPartner {
    pub org: OrgId,
    pub card: Value,
    signing: SigningKey,
    tls: TlsIdentity,
}

/// `count` partners made by `init` in `dir`, whose federation ports nobody listens on.
pub fn absent_partners(dir: &Path, count: usize) -> anyhow::Result<Vec<AbsentPartner>> {
    (0..count)
        .map(|i| {
            let org = OrgId::parse(&format!("se-vaktbolag-{i:03}")).map_err(|e| anyhow::anyhow!("{e}"))?;
            let home = dir.join(org.as_str());
            // A port nobody listens on: deliveries to it fail at once, as to a partner that is down.
            let port = free_port()?;
            let options = InitOptions {
                org_id: org.clone(),
                name: format!("Vaktbolag {i}"),
                dir: home.clone(),
                api_listen: "127.0.0.1:0".parse()?,
                federation_listen: format!("127.0.0.1:{port}").parse()?,
                federation_url: format!("https://127.0.0.1:{port}"),
                database_url: None,
            };
            lagesbild::identity::init(&options, now()).context("init of a partner")?;
            let card = std::fs::read_to_string(home.join("node-card.json"))?;
            Ok(AbsentPartner {
                org,
                card: serde_json::from_str(&card)?,
                signing: SigningKey::load(&home.join("keys/signing-key.pem"))?,
                tls: TlsIdentity::load(&home.join("keys/tls-cert.pem"), &home.join("keys/tls-key.pem"))?,
            })
        })
        .collect()
}

/// Puts agreement `id` in force, by which `node` shares its reports in the municipality
/// `municipality` with every partner (whose cards it holds): proposed at the node, signed by each
/// partner and sent to the node over mutual TLS with that partner's certificate.
pub async fn share_with(
    http: &reqwest::Client,
    node: &NodeProcess,
    partners: &[&AbsentPartner],
    id: &str,
    municipality: &str,
) -> anyhow::Result<()> {
    let (_, mut agreement) = crate::nodes::guarding_agreement()?;
    agreement["id"] = json!(id);
    let mut parties = vec![agreement["parties"][0].clone()];
    for partner in partners {
        parties.push(json!({"org_id": partner.org.as_str(), "name": format!("Partner {}", partner.org), "role": "guard_company"}));
    }
    agreement["parties"] = json!(parties);
    let mut flow = agreement["flows"][0].clone();
    flow["to"] = json!(partners.iter().map(|p| p.org.as_str()).collect::<Vec<_>>());
    flow["area"] = json!({ "municipalities": [municipality] });
    agreement["flows"] = json!([flow]);
    node.call(http, reqwest::Method::POST, "/api/v1/agreements", Some(&agreement)).await?;
    let db = crate::db::Db::connect(&node.db.url, 1).await?;
    let stored: String = match &db {
        crate::db::Db::Sqlite(p) => {
            sqlx::query_scalar("SELECT document FROM agreements WHERE id = $1").bind(id).fetch_one(p).await?
        }
        crate::db::Db::Postgres(p) => {
            sqlx::query_scalar("SELECT document FROM agreements WHERE id = $1").bind(id).fetch_one(p).await?
        }
    };
    db.close().await;
    let mut document = Jws::parse(stored.as_bytes())?;
    let node_pin = node_pin(node)?;
    let federation = format!("{}/federation/v1/agreements", node_federation_url(node)?);
    for partner in partners {
        document.countersign(lagesbild::domain::agreement::AGREEMENT_TYPE, &partner.signing);
        let tls =
            client_config(&partner.tls, &PeerTrust::Pins, &node.org, vec![node_pin.clone()], Arc::new(SystemClock))?;
        let client = reqwest::Client::builder().use_preconfigured_tls(tls).build()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let sent = client
                .post(&federation)
                .header("content-type", "application/json")
                .body(document.to_json())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => break,
                other if Instant::now() > deadline => {
                    bail!("{} could not send its signature: {other:?}", partner.org)
                }
                // The node reloads partner pins every few seconds; a handshake may come first.
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    wait_active(http, node, id).await
}

/// The TLS pin in the node's own card.
pub fn node_pin(node: &NodeProcess) -> anyhow::Result<lagesbild::domain::TlsPin> {
    let config = node.node_config()?;
    let identity = config.identity.context("the node has no identity")?;
    Ok(TlsIdentity::load(&identity.tls_cert, &identity.tls_key)?.pin)
}

pub fn node_federation_url(node: &NodeProcess) -> anyhow::Result<String> {
    Ok(node.federation_url.trim_end_matches('/').to_owned())
}

/// How many envelopes the node queued.
pub async fn queued_envelopes(node: &NodeProcess) -> anyhow::Result<i64> {
    let db = crate::db::Db::connect(&node.db.url, 1).await?;
    let sql = "SELECT COUNT(*) FROM outbox";
    let count = match &db {
        crate::db::Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        crate::db::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
    };
    db.close().await;
    Ok(count)
}
