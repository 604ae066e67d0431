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
    /// Import partners' signed node cards (the files their admins sent you).
    Add {
        /// The partners' cards (JWS JSON), one file each.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: PathBuf,
    },
}

/// Runs a `partner` command.
pub fn run(command: PartnerCommand) -> anyhow::Result<()> {
    let PartnerCommand::Add { files, config } = command;
    let config = load_config(Some(&config))?;
    runtime()?.block_on(async {
        let store = Store::open(&config.database).await?;
        let mut outcome = Ok(());
        for file in &files {
            outcome = add(&store, &config.node.org_id, file).await;
            if outcome.is_err() {
                break;
            }
        }
        store.close().await;
        outcome?;
        println!("A running node picks the change up when it restarts or when a partner is changed through the API.");
        anyhow::Ok(())
    })
}

/// Imports the card in `file` into `store`, saying what changed; the card on record already is
/// left as it is (a set-up step that runs at every start imports the same cards again).
async fn add(store: &Store, own: &crate::domain::OrgId, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let card = Jws::parse(&text).with_context(|| format!("{} is not a signed node card", file.display()))?;
    if store.partners().await?.iter().any(|p| p.card == card.to_json()) {
        println!("Unchanged: the card in {} is the one on record", file.display());
        return Ok(());
    }
    let (partner, imported) = import_card(store, &card, own, None, SystemClock.now(), "cli")
        .await
        .with_context(|| format!("the card in {} was refused", file.display()))?;
    println!("{imported:?} partner {} ({}) at {}", partner.org_id, partner.name, partner.federation_url);
    Ok(())
}
