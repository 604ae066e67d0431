//! The `lagesbild` command line: one module per family of commands (running a node, its identity,
//! partners, agreements, the audit trail, data-protection requests, backups, the demo), each with its
//! arguments and what it does. `main.rs` only parses and dispatches. What the commands share is
//! here: reading the environment and the configuration, a runtime, the store, and writing to
//! standard output so that a closed pipe is an error, not a panic.

pub mod agreement;
pub mod audit;
pub mod backup;
pub mod demo;
pub mod gdpr;
pub mod health;
pub mod identity;
pub mod partner;
pub mod serve;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::NodeConfig;
use crate::store::Store;

/// The command line.
#[derive(Parser)]
#[command(name = "lagesbild", version, about = "A federated node for sharing situation pictures between partners")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Subcommand)]
pub enum Command {
    Serve(serve::ServeArgs),
    Demo(demo::DemoArgs),
    Init(identity::InitArgs),
    /// Manage partner nodes.
    Partner {
        #[command(subcommand)]
        command: partner::PartnerCommand,
    },
    RotateKeys(identity::RotateKeysArgs),
    /// Work with agreement files (policies/*.toml).
    Agreement {
        #[command(subcommand)]
        command: agreement::AgreementCommand,
    },
    /// Check or export the audit trail.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Answer a data-protection request about a person named in this node's reports.
    Gdpr {
        #[command(subcommand)]
        command: gdpr::GdprCommand,
    },
    /// Manage the node's own card.
    Card {
        #[command(subcommand)]
        command: identity::CardCommand,
    },
    Openapi(serve::OpenapiArgs),
    Health(health::HealthArgs),
    Backup(backup::BackupArgs),
}

/// Runs a parsed command.
pub fn run(command: Command) -> anyhow::Result<()> {
    crate::crypto::tls::install_default_provider();
    match command {
        Command::Serve(args) => serve::serve(args),
        Command::Demo(args) => demo::command(args),
        Command::Init(args) => identity::init(args),
        Command::Partner { command } => partner::run(command),
        Command::RotateKeys(args) => identity::rotate_keys(args),
        Command::Agreement { command } => agreement::run(command),
        Command::Audit { command } => audit::run(command),
        Command::Gdpr { command } => gdpr::run(command),
        Command::Card { command } => identity::card(command),
        Command::Openapi(args) => serve::openapi(args),
        Command::Health(args) => health::health(args),
        Command::Backup(args) => backup::backup(args),
    }
}

/// The process environment. A `LAGESBILD_*` or `DATABASE_URL` variable that is not valid UTF-8 is
/// an error; other variables are none of the node's business and are left out.
fn environment() -> anyhow::Result<HashMap<String, String>> {
    let mut env = HashMap::new();
    for (key, value) in std::env::vars_os() {
        let (Some(key), value) = (key.to_str(), value.into_string()) else { continue };
        match value {
            Ok(value) => {
                env.insert(key.to_owned(), value);
            }
            Err(_) if key.starts_with("LAGESBILD_") || key == "DATABASE_URL" => {
                anyhow::bail!("environment variable {key} is not valid UTF-8")
            }
            Err(_) => {}
        }
    }
    Ok(env)
}

/// The node's configuration: the file at `path` (or the embedded default), with the environment's
/// overrides.
fn load_config(path: Option<&Path>) -> anyhow::Result<NodeConfig> {
    Ok(NodeConfig::load(path, &environment()?)?)
}

/// A runtime for a command's async work.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

/// Runs `work` against the store of the node configured at `config_path`, which must exist
/// already, closing it afterwards.
fn with_store<T>(config_path: Option<&Path>, work: impl AsyncFnOnce(&Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let config = load_config(config_path)?;
    runtime()?.block_on(async {
        let store = Store::open_existing(&config.database).await?;
        let result = work(&store).await;
        store.close().await;
        result
    })
}

/// Writes to standard output, so a closed pipe is an error to handle, not a panic.
fn say(text: impl AsRef<str>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref().as_bytes()).and_then(|()| out.flush())?;
    Ok(())
}
