//! The audit trail from the command line: `verify` checks the whole hash chain (and the signed
//! checkpoints that pruning leaves), `prune` drops entries past their retention behind a new
//! checkpoint, and `export` writes the trail as JSON Lines for a SIEM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::{load_config, say, with_store};
use crate::clock::{Clock, SystemClock};
use crate::crypto::keys::SigningKey;
use crate::store::AuditQuery;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain and say where it breaks, if it does.
    Verify {
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Prune entries past audit.retention_days now, behind a checkpoint signed by the node's key
    /// (a running node does this every hour).
    Prune {
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: PathBuf,
    },
    /// Write the trail as JSON Lines (one entry per line) for a SIEM.
    Export {
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: Option<PathBuf>,
        /// Only entries at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
    },
}

/// Runs an `audit` command.
pub fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { config } => verify(config),
        AuditCommand::Prune { config } => prune(config),
        AuditCommand::Export { config, since } => export(config, since.as_deref()),
    }
}

fn verify(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(config_path.as_deref())?;
    let key = match &config.identity {
        Some(identity) => Some(SigningKey::load(&identity.signing_key)?.public()),
        None => None,
    };
    with_store(config_path.as_deref(), async |store| {
        let count = crate::audit_retention::verify(store, key).await?;
        anyhow::ensure!(
            count > 0,
            "the audit trail is empty: there is nothing to verify; check that database.url is the node's database"
        );
        say(format!("the audit chain is intact: {count} entries\n"))
    })
}

fn prune(config_path: PathBuf) -> anyhow::Result<()> {
    let config = load_config(Some(&config_path))?;
    let identity = config
        .identity
        .as_ref()
        .context("pruning signs a checkpoint with the node's key: the configuration needs [identity]")?;
    let key = SigningKey::load(&identity.signing_key)?;
    let retention = chrono::Duration::days(i64::from(config.audit.retention_days));
    with_store(Some(&config_path), async |store| {
        let pruned = crate::audit_retention::prune(store, &key, SystemClock.now(), retention).await?;
        say(format!("pruned {pruned} audit entries older than {} days\n", config.audit.retention_days))
    })
}

fn export(config_path: Option<PathBuf>, since: Option<&str>) -> anyhow::Result<()> {
    let since = since
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&chrono::Utc)))
        .transpose()
        .context("--since must be an RFC 3339 time such as 2026-11-01T00:00:00Z")?;
    with_store(config_path.as_deref(), async |store| {
        let mut query = AuditQuery { since, limit: 5_000, ..AuditQuery::default() };
        loop {
            let page = store.audit_entries(&query).await?;
            let Some(last) = page.last() else { return Ok(()) };
            query.after = last.seq;
            let mut lines = String::new();
            for entry in &page {
                lines.push_str(&serde_json::to_string(entry)?);
                lines.push('\n');
            }
            say(lines)?;
        }
    })
}
