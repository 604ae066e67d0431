//! The four-node demo: a municipality, a police region, a retailer and a guard company, each a real
//! node with its own keys, SQLite database and ports on loopback, in one process. The first run
//! makes the nodes, has them import each other's cards, puts the two Norrköping agreements in force
//! (every party signs through its own API) and files example reports modelled on the seeds; later
//! runs resume from the folder. Everything goes through the nodes' own APIs, as a partner's systems
//! would. `nodes.json` gives scripts each node's URLs and token.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::{Clock, SystemClock};
use crate::config::{ConsoleMunicipality, ConsoleSite, NodeConfig};
use crate::domain::agreement::Agreement;
use crate::domain::{OrgId, SiteKind};
use crate::identity::InitOptions;
use crate::server;

/// Run four partner nodes on loopback (a municipality, the police, a retailer and a guard
/// company) under the example agreements, with example reports, on SQLite in a folder. Prints
/// each node's URLs and token and writes them to FOLDER/nodes.json. Run it again to resume.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// The folder the demo keeps its nodes in.
    #[arg(long, default_value = "demo")]
    dir: PathBuf,
    /// The first node's API port; the others follow it, and federation ports are ten above.
    #[arg(long, default_value_t = 7401)]
    base_port: u16,
}

/// `lagesbild demo`: logs warnings only (unless `RUST_LOG` says otherwise), then runs the demo.
pub fn command(args: DemoArgs) -> anyhow::Result<()> {
    ensure!(args.base_port <= u16::MAX - 20, "--base-port must leave room for 20 ports above it");
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    super::runtime()?.block_on(run(&args.dir, args.base_port))
}

/// The demo's organisations: id, name, and the offset of their ports from the base port.
const ORGANISATIONS: [(&str, &str); 4] = [
    ("se-kommun-norrkoping", "Norrköpings kommun"),
    ("se-polisen-ost", "Polisen region Öst"),
    ("se-ica-hageby", "ICA Supermarket Hageby"),
    ("se-vaktbolaget-ost", "Vaktbolaget Öst AB"),
];

/// The agreements in force, with the parties that sign them (the first proposes).
const AGREEMENTS: [(&str, &[usize]); 2] = [
    (include_str!("../../policies/norrkoping-safety-agreement.toml"), &[0, 1, 2]),
    (include_str!("../../policies/norrkoping-municipality-guards.toml"), &[0, 3]),
];

/// One demo node as `nodes.json` describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoNode {
    pub org_id: String,
    pub name: String,
    pub api_url: String,
    pub federation_url: String,
    pub docs_url: String,
    /// A bearer token with every role, for this node's API.
    pub token: String,
    /// A link that opens the node's console signed in with every role, once (a new one each run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
}

/// Runs the demo from `dir` until Ctrl-C; the API ports are `base_port`..`base_port + 3` and the
/// federation ports the ten above those.
pub async fn run(dir: &Path, base_port: u16) -> anyhow::Result<()> {
    // Ctrl-C and SIGTERM stop the demo cleanly from the start, even while it sets up.
    let stop = server::shutdown_signal()?;
    let listing = dir.join("nodes.json");
    let fresh = !listing.exists();
    let nodes: Vec<DemoNode> = if fresh {
        if ORGANISATIONS.iter().any(|(org, _)| dir.join(org).exists()) {
            bail!(
                "{} holds a demo whose set-up did not finish (there is no nodes.json); delete the folder and run again",
                dir.display()
            );
        }
        ORGANISATIONS
            .iter()
            .enumerate()
            .map(|(i, (org, name))| planned(org, name, base_port, i))
            .collect::<Result<_, _>>()?
    } else {
        let text = std::fs::read_to_string(&listing).with_context(|| format!("cannot read {}", listing.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a demo listing; delete the folder", listing.display()))?
    };
    crate::crypto::tls::install_default_provider();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut running = Vec::new();
    for node in &nodes {
        let config = prepare(dir, node, fresh, clock.now())?;
        let started = server::start(&config, clock.clone())
            .await
            .with_context(|| format!("cannot start the node of {} (is another demo running?)", node.org_id))?;
        running.push(started);
    }
    if fresh {
        println!("Setting up the partnership (cards, agreements, example reports)...");
        set_up(&nodes, clock.now()).await?;
    }
    let mut nodes = nodes;
    for (node, started) in nodes.iter_mut().zip(&running) {
        let roles = crate::domain::Role::ALL.into_iter().collect();
        let code = crate::auth::session::issue_code(&started.store, &roles, clock.now()).await?;
        node.console_url = Some(format!("{}/console/signin?code={code}", node.api_url));
    }
    write_listing(&listing, &nodes)?;
    print_nodes(&nodes, &listing);
    stop.await;
    println!("Stopping the demo nodes...");
    for node in running {
        node.stop().await;
    }
    Ok(())
}

/// The node `index` of a new demo, with a fresh token.
fn planned(org: &str, name: &str, base_port: u16, index: usize) -> anyhow::Result<DemoNode> {
    let offset = u16::try_from(index)?;
    let (api, federation) = (base_port + offset, base_port + 10 + offset);
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(DemoNode {
        org_id: org.to_owned(),
        name: name.to_owned(),
        api_url: format!("http://127.0.0.1:{api}"),
        federation_url: format!("https://127.0.0.1:{federation}"),
        docs_url: format!("http://127.0.0.1:{api}/docs/"),
        token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        console_url: None,
    })
}

/// The node's configuration: made by `init` on the first run, then read back, with the token.
fn prepare(dir: &Path, node: &DemoNode, fresh: bool, now: DateTime<Utc>) -> anyhow::Result<NodeConfig> {
    let node_dir = dir.join(&node.org_id);
    let config_path: PathBuf = if fresh {
        let address = |url: &str| url.rsplit_once("//").map(|(_, a)| a.to_owned()).unwrap_or_default();
        let options = InitOptions {
            org_id: OrgId::parse(&node.org_id)?,
            name: node.name.clone(),
            dir: node_dir.clone(),
            api_listen: address(&node.api_url).parse()?,
            federation_listen: address(&node.federation_url).parse()?,
            federation_url: node.federation_url.clone(),
            // Beside the node's configuration, wherever the demo is run from.
            database_url: Some("sqlite://node.db".to_owned()),
        };
        crate::identity::init(&options, now)?
    } else {
        node_dir.join("node.toml")
    };
    let env = [("LAGESBILD_API_DEV_TOKEN".to_owned(), node.token.clone())].into_iter().collect();
    let mut config = NodeConfig::load(Some(&config_path), &env)?;
    config.console.sites = sites_of(&node.org_id);
    config.console.municipalities = vec![ConsoleMunicipality {
        code: "0581".to_owned(),
        name: "Norrköping".to_owned(),
        lat: 58.5877,
        lon: 16.1924,
    }];
    Ok(config)
}

/// The places each demo organisation files from, as its console offers them.
fn sites_of(org: &str) -> Vec<ConsoleSite> {
    let site = |name: &str, kind: SiteKind, lat: f64, lon: f64, address: &str| ConsoleSite {
        name: name.to_owned(),
        kind,
        lat,
        lon,
        address: Some(address.to_owned()),
        municipality_code: Some("0581".to_owned()),
    };
    match org {
        "se-kommun-norrkoping" => vec![
            site("Hagebyskolan", SiteKind::School, 58.6110, 16.1510, "Hagebygatan 10"),
            site("Förskolan Ugglan", SiteKind::Preschool, 58.6072, 16.1472, "Ugglegatan 3"),
            site("Vårdboendet Hagen", SiteKind::CareHome, 58.6121, 16.1580, "Hagebyvägen 21"),
        ],
        "se-ica-hageby" => vec![site("ICA Supermarket Hageby", SiteKind::Shop, 58.6104, 16.1538, "Hageby centrum")],
        _ => Vec::new(),
    }
}

/// Cards, agreements and example reports, each through the nodes' APIs.
async fn set_up(nodes: &[DemoNode], now: DateTime<Utc>) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let call = |node: &DemoNode, method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", node.api_url)).bearer_auth(&node.token)
    };
    for from in nodes {
        let view: Value =
            call(from, reqwest::Method::GET, "/api/v1/node").send().await?.error_for_status()?.json().await?;
        for to in nodes.iter().filter(|n| n.org_id != from.org_id) {
            call(to, reqwest::Method::POST, "/api/v1/partners")
                .json(&view["signed_card"])
                .send()
                .await?
                .error_for_status()?;
        }
    }
    for (text, parties) in AGREEMENTS {
        let agreement: Agreement = toml::from_str(text)?;
        let id = agreement.id.to_string();
        call(&nodes[parties[0]], reqwest::Method::POST, "/api/v1/agreements")
            .json(&agreement)
            .send()
            .await?
            .error_for_status()?;
        for party in &parties[1..] {
            // The proposal reaches each party through the proposer's lifecycle outbox.
            let deadline = Instant::now() + StdDuration::from_secs(10);
            let path = format!("/api/v1/agreements/{id}");
            while !call(&nodes[*party], reqwest::Method::GET, &path).send().await?.status().is_success() {
                ensure!(Instant::now() < deadline, "agreement {id} did not reach {}", nodes[*party].org_id);
                tokio::time::sleep(StdDuration::from_millis(50)).await;
            }
            call(&nodes[*party], reqwest::Method::POST, &format!("{path}/sign")).send().await?.error_for_status()?;
        }
        for party in parties {
            let deadline = Instant::now() + StdDuration::from_secs(10);
            loop {
                let view: Value = call(&nodes[*party], reqwest::Method::GET, &format!("/api/v1/agreements/{id}"))
                    .send()
                    .await?
                    .json()
                    .await?;
                if view["status"]["state"] == "active" {
                    break;
                }
                ensure!(Instant::now() < deadline, "agreement {id} did not become active at {}", nodes[*party].org_id);
                tokio::time::sleep(StdDuration::from_millis(100)).await;
            }
        }
        println!("  agreement {id} is in force");
    }
    for (index, report) in example_reports(now) {
        call(&nodes[index], reqwest::Method::POST, "/api/v1/reports").json(&report).send().await?.error_for_status()?;
    }
    println!("  example reports filed; partners receive them within a second");
    Ok(())
}

/// Reports from last night and today, by the node that files them, after the seed documents:
/// incidents at schools and care homes, a burglary and disorder around Hageby centrum.
fn example_reports(now: DateTime<Utc>) -> Vec<(usize, Value)> {
    let at = |hours: i64| (now - Duration::hours(hours)).to_rfc3339();
    let hageby = |place: &str, lat: f64, lon: f64| json!({"lat": lat, "lon": lon, "place_name": place, "municipality_code": "0581"});
    vec![
        (
            0,
            json!({
                "observed_at": at(9), "category": "vandalism", "severity": "moderate", "tlp": "AMBER",
                "title": "Broken windows at Hagebyskolan", "description": "Two windows on the east side smashed.",
                "location": {"lat": 58.6110, "lon": 16.1510, "place_name": "Hageby", "address": "Hagebygatan 10",
                             "site": {"kind": "school", "name": "Hagebyskolan"}, "municipality_code": "0581"},
                "persons": [{"role": "witness", "name": "Anna Andersson"}],
                "actions": [{"what": "Guard patrol secured the area", "by": "Patrol 2"}]
            }),
        ),
        (
            0,
            json!({
                "observed_at": at(7), "category": "fire", "severity": "moderate", "tlp": "GREEN",
                "title": "Container fire behind the preschool", "location": hageby("Förskolan Ugglan", 58.6072, 16.1472),
                "actions": [{"what": "Fire service put it out"}]
            }),
        ),
        (
            0,
            json!({
                "observed_at": at(3), "category": "threat", "severity": "severe", "tlp": "AMBER",
                "title": "Staff threatened at the care home entrance", "location": hageby("Vårdboendet Hagen", 58.6121, 16.1580),
                "persons": [{"role": "staff"}, {"role": "suspect", "description": "man about 30"}]
            }),
        ),
        (
            1,
            json!({
                "observed_at": at(6), "category": "burglary", "severity": "severe", "tlp": "AMBER",
                "title": "Burglary at the pharmacy, Hageby centrum", "location": hageby("Hageby centrum", 58.6101, 16.1544),
                "persons": [{"role": "suspect", "name": "Unknown"}]
            }),
        ),
        (
            1,
            json!({
                "observed_at": at(2), "category": "disorder", "severity": "moderate", "tlp": "GREEN",
                "title": "Group disturbing the square", "location": hageby("Hageby torg", 58.6098, 16.1530)
            }),
        ),
        (
            2,
            json!({
                "observed_at": at(5), "category": "theft", "severity": "moderate", "tlp": "GREEN",
                "title": "Repeated shoplifting at the entrance", "location": hageby("ICA Hageby", 58.6104, 16.1538),
                "persons": [{"role": "staff", "name": "Store manager"}]
            }),
        ),
        (
            3,
            json!({
                "observed_at": at(4), "category": "suspicious_activity", "severity": "minor", "tlp": "AMBER",
                "title": "Persons on the school roof at night", "location": {"lat": 58.6111, "lon": 16.1508,
                "site": {"kind": "school", "name": "Hagebyskolan"}, "municipality_code": "0581"},
                "actions": [{"what": "Patrol spoke to them; they left", "by": "Patrol 1"}]
            }),
        ),
    ]
}

/// Writes `nodes.json` readable by its owner only (it holds tokens), all at once.
fn write_listing(path: &Path, nodes: &[DemoNode]) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    std::io::Write::write_all(&mut file, serde_json::to_string_pretty(nodes)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}

fn print_nodes(nodes: &[DemoNode], listing: &Path) {
    println!();
    println!("Four partner nodes are running. Open a console link in a browser: each signs you in, once,");
    println!("as that organisation with every role (later, sign in at /console/ with the node's token).");
    for node in nodes {
        println!();
        println!("  {} ({})", node.name, node.org_id);
        println!("    Console: {}", node.console_url.as_deref().unwrap_or_default());
        println!("    API:     {}/api/v1/situation", node.api_url);
        println!("    Docs:    {}", node.docs_url);
        println!("    Token:   {}", node.token);
    }
    println!();
    println!("The same, for scripts: {}", listing.display());
    println!("Try: curl -H \"Authorization: Bearer {}\" {}/api/v1/situation", nodes[1].token, nodes[1].api_url);
    println!("Press Ctrl-C to stop; run the demo again to resume where it stopped.");
}
