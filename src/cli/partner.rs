//! Partners from the command line: `partner add` imports a partner's signed node card, the file its
//! administrator sent. No URL is ever fetched: a card arrives as a file, through people.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use super::{load_config, runtime};
use crate::clock::{Clock, SystemClock};
use crate::crypto::jws::Jws;
use crate::federation::registry::import_card;
use crate::store::Store;

#[derive(Subcommand)]
pub enum PartnerCommand {
    /// Import a partner's signed node card (the file its admin sent you).
    Add {
        /// The partner's card (JWS JSON).
        file: PathBuf,
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: PathBuf,
    },
}

/// Runs a `partner` command.
pub fn run(command: PartnerCommand) -> anyhow::Result<()> {
    let PartnerCommand::Add { file, config } = command;
    add(&file, &config)
}

fn add(file: &Path, config_path: &Path) -> anyhow::Result<()> {
    let config = load_config(Some(config_path))?;
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let card = Jws::parse(&text).with_context(|| format!("{} is not a signed node card", file.display()))?;
    runtime()?.block_on(async {
        let store = Store::open(&config.database).await?;
        let outcome = import_card(&store, &card, &config.node.org_id, None, SystemClock.now(), "cli").await;
        store.close().await;
        let (partner, imported) = outcome.with_context(|| format!("the card in {} was refused", file.display()))?;
        println!("{imported:?} partner {} ({}) at {}", partner.org_id, partner.name, partner.federation_url);
        println!("A running node picks the change up when it restarts or when a partner is changed through the API.");
        anyhow::Ok(())
    })
}
