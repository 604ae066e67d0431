//! `lagesbild backup`: what an operator needs to bring a node back. A node is its database and its
//! identity (keys, certificate, card) with its configuration; losing the keys means partners no
//! longer know the node, so the backup always holds them. SQLite is copied online, into a folder
//! that is itself a node: `serve --config FOLDER/node.toml` restores it. A PostgreSQL database is the
//! cluster's to back up (pg_dump, pgBackRest, CloudNativePG's backups): the command says so, and
//! backs up, and checks, everything else.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{load_config, runtime};
use crate::clock::{Clock, SystemClock};
use crate::config::NodeConfig;
use crate::identity::NodeKeys;
use crate::store::Store;

/// Back up the node: its SQLite database (copied while it runs), its keys, certificate and card, and
/// its configuration, into a new folder that is a node itself (`serve --config FOLDER/node.toml`).
/// For PostgreSQL, everything but the database, which the cluster's own backups hold.
#[derive(clap::Args)]
pub struct BackupArgs {
    #[arg(long, env = "LAGESBILD_CONFIG")]
    config: PathBuf,
    /// The folder to write, which must not exist yet.
    #[arg(long)]
    to: PathBuf,
}

/// Runs `backup`.
pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let config = load_config(Some(&args.config))?;
    let to = &args.to;
    if to.exists() {
        bail!("{} exists already; a backup goes into a new folder, never over another", to.display());
    }
    let identity = config
        .identity
        .as_ref()
        .context("the configuration has no [identity]: a node without keys has nothing but its database to back up")?;
    // The identity must load and agree with itself before it is worth keeping.
    NodeKeys::load(&config, SystemClock.now()).context("the node's keys do not load; fix them before backing up")?;
    std::fs::create_dir_all(to.join("keys")).with_context(|| format!("cannot create {}", to.display()))?;
    let files = [
        (&identity.signing_key, "keys/signing-key.pem"),
        (&identity.tls_cert, "keys/tls-cert.pem"),
        (&identity.tls_key, "keys/tls-key.pem"),
        (&identity.card, "node-card.json"),
    ];
    for (from, name) in files {
        copy_private(from, &to.join(name))?;
    }
    // The API's own certificate and a federation certificate authority, where configured.
    let extra = [
        (config.api.tls_cert.as_ref(), "api-tls-cert.pem"),
        (config.api.tls_key.as_ref(), "api-tls-key.pem"),
        (config.federation.as_ref().and_then(|f| f.ca_bundle.as_ref()), "federation-ca-bundle.pem"),
    ];
    for (from, name) in extra.iter().filter_map(|(from, name)| from.map(|f| (f, *name))) {
        copy_private(from, &to.join(name))?;
    }
    let database = runtime()?.block_on(async {
        let store = Store::open_existing(&config.database).await?;
        let copied = store.snapshot_to(&to.join("lagesbild.db")).await;
        store.close().await;
        anyhow::Ok(copied?)
    })?;
    let url = if database { "sqlite://lagesbild.db".to_owned() } else { config.database.url.clone() };
    let text = configuration(&args.config, &config, &url)?;
    std::fs::write(to.join("node.toml"), text)
        .with_context(|| format!("cannot write {}", to.join("node.toml").display()))?;
    let restored = load_config(Some(&to.join("node.toml")))?;
    NodeKeys::load(&restored, SystemClock.now()).context("the backed-up keys do not load")?;
    println!("Backed up node {} to {}:", config.node.org_id, to.display());
    println!("  keys, certificate and card: checked, they load and agree");
    if database {
        println!("  the SQLite database, copied while the node ran, passes SQLite's integrity check");
        println!(
            "To restore, stop the node and start it from the folder: lagesbild serve --config {}",
            to.join("node.toml").display()
        );
    } else {
        println!("  the database is PostgreSQL: back it up with the cluster's own backups (pg_dump, pgBackRest,");
        println!("  CloudNativePG's backups); this folder holds what the database does not: keys, card, configuration");
    }
    Ok(())
}

/// The node's configuration, pointing at the backup's own files.
fn configuration(path: &Path, config: &NodeConfig, database_url: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    let identity = toml::Table::from_iter([
        ("signing_key".to_owned(), "keys/signing-key.pem".into()),
        ("tls_cert".to_owned(), "keys/tls-cert.pem".into()),
        ("tls_key".to_owned(), "keys/tls-key.pem".into()),
        ("card".to_owned(), "node-card.json".into()),
    ]);
    table.insert("identity".to_owned(), identity.into());
    let mut point = |section: &str, key: &str, file: &str, present: bool| {
        if let (true, Some(section)) = (present, table.get_mut(section).and_then(|s| s.as_table_mut())) {
            section.insert(key.to_owned(), file.into());
        }
    };
    point("api", "tls_cert", "api-tls-cert.pem", config.api.tls_cert.is_some());
    point("api", "tls_key", "api-tls-key.pem", config.api.tls_key.is_some());
    let ca_bundle = config.federation.as_ref().is_some_and(|f| f.ca_bundle.is_some());
    point("federation", "ca_bundle", "federation-ca-bundle.pem", ca_bundle);
    let database = table.entry("database").or_insert_with(|| toml::Table::new().into());
    if let Some(database) = database.as_table_mut() {
        database.insert("url".to_owned(), database_url.into());
    }
    Ok(format!(
        "# A backup of node {}, made by `lagesbild backup`; serve it with `lagesbild serve --config` this file.\n{}",
        config.node.org_id,
        toml::to_string(&table)?
    ))
}

/// Copies a file, readable by its owner only (keys are).
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", to.display()))?;
    Ok(())
}
