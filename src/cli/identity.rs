//! The node's own identity from the command line: `init` makes a node (configuration, keys,
//! certificate and signed card), `rotate-keys` replaces its keys so partners follow without a new
//! exchange, and `card reissue` signs a new card for the keys it has.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::load_config;
use crate::clock::{Clock, SystemClock};
use crate::domain::OrgId;
use crate::identity::InitOptions;

/// Create a node: its configuration, Ed25519 signing key, TLS key and certificate, and signed
/// node card, in a new folder. Never overwrites existing keys.
#[derive(clap::Args)]
pub struct InitArgs {
    /// The organisation's id, such as se-kommun-norrkoping.
    #[arg(long)]
    org_id: String,
    /// The organisation's name as people know it.
    #[arg(long)]
    name: String,
    /// The folder to create the node in.
    #[arg(long)]
    dir: PathBuf,
    /// Where the user API listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    api_listen: std::net::SocketAddr,
    /// Where the federation listener listens.
    #[arg(long, default_value = "127.0.0.1:8443")]
    federation_listen: std::net::SocketAddr,
    /// The URL partners reach the federation listener at (default: https://FEDERATION_LISTEN).
    #[arg(long)]
    federation_url: Option<String>,
    /// The database (default: SQLite in the folder; a relative SQLite path is read from the folder).
    #[arg(long)]
    database_url: Option<String>,
    /// Succeed without a change when the folder holds a node already (a container's first-start
    /// step, run again at every start); without it, an existing node is an error.
    #[arg(long)]
    if_missing: bool,
}

/// Replace the node's signing and TLS keys. The new card is signed by the old key too, and the
/// old TLS key stays accepted for federation.tls_overlap_days, so partners follow without a new
/// exchange. Restart the node afterwards.
#[derive(clap::Args)]
pub struct RotateKeysArgs {
    #[arg(long, env = "LAGESBILD_CONFIG")]
    config: PathBuf,
}

#[derive(Subcommand)]
pub enum CardCommand {
    /// Sign a new card for the node's current keys, for example after installing a TLS
    /// certificate from a certificate authority. Restart the node to send it to partners.
    Reissue {
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: PathBuf,
    },
}

/// Makes a new node in a new folder and says what to do next.
pub fn init(args: InitArgs) -> anyhow::Result<()> {
    let InitArgs { org_id, name, dir, api_listen, federation_listen, federation_url, database_url, if_missing } = args;
    let org_id = OrgId::parse(&org_id).map_err(|e| anyhow::anyhow!("--org-id {org_id:?}: {e}"))?;
    let existing = dir.join("node.toml");
    if if_missing && existing.exists() {
        println!("{} holds a node already; nothing changed", existing.display());
        return Ok(());
    }
    let options = InitOptions {
        org_id,
        name,
        dir,
        api_listen,
        federation_listen,
        federation_url: federation_url.unwrap_or_else(|| format!("https://{federation_listen}")),
        database_url,
    };
    let config_path = crate::identity::init(&options, SystemClock.now())?;
    let dir = config_path.parent().unwrap_or(Path::new("."));
    println!("Created node {} in {}", options.org_id, dir.display());
    println!("  configuration: {}", config_path.display());
    println!("  node card:     {} (send it to your partners' administrators)", dir.join("node-card.json").display());
    println!("Start it with: LAGESBILD_API_DEV_TOKEN=... lagesbild serve --config {}", config_path.display());
    Ok(())
}

/// Replaces the node's keys, keeping the old ones where partners still need them.
pub fn rotate_keys(args: RotateKeysArgs) -> anyhow::Result<()> {
    let config = load_config(Some(&args.config))?;
    let outcome = crate::identity::rotate(&config, SystemClock.now())?;
    println!(
        "New keys made for {}; the old signing key is kept at {}",
        outcome.card.org_id,
        outcome.retired_signing_key.display()
    );
    if let Some(old) = outcome.card.tls_pins.get(1) {
        println!("The old TLS key stays accepted until {}.", old.until.map(|t| t.to_rfc3339()).unwrap_or_default());
    }
    println!("Restart the node: it sends the new card to every partner.");
    Ok(())
}

/// Runs a `card` command.
pub fn card(command: CardCommand) -> anyhow::Result<()> {
    let CardCommand::Reissue { config } = command;
    let config = load_config(Some(&config))?;
    let card = crate::identity::reissue_card(&config, SystemClock.now())?;
    let pin = card.tls_pins.first().map(|p| p.pin.to_string()).unwrap_or_default();
    println!(
        "Signed a new card for {} with TLS pin {pin}. Restart the node: it sends the card to every partner.",
        card.org_id
    );
    Ok(())
}
