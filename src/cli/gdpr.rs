//! Data-protection requests from the command line: `gdpr find` lists every report (every version,
//! own and received) that names a person, and `gdpr erase` removes the person from them, passing
//! the erasure on to the partners that received the report.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::{load_config, say, with_store};
use crate::clock::{Clock, SystemClock};
use crate::gdpr::Finding;

#[derive(Subcommand)]
pub enum GdprCommand {
    /// List every report (every version) naming a person whose name contains NAME.
    Find {
        #[arg(long)]
        name: String,
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Remove the person named exactly NAME (case aside) from every version of every report: name,
    /// age and description go, the role stays. Without --yes, only shows what would be erased.
    Erase {
        #[arg(long)]
        name: String,
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: Option<PathBuf>,
        /// Erase for real.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs a `gdpr` command.
pub fn run(command: GdprCommand) -> anyhow::Result<()> {
    match command {
        GdprCommand::Find { name, config } => find(&name, config),
        GdprCommand::Erase { name, config, yes } => erase(&name, config, yes),
    }
}

fn find(name: &str, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!(
        name.trim().chars().count() >= 3,
        "--name needs at least 3 characters, or it matches too many people"
    );
    let org = load_config(config_path.as_deref())?.node.org_id;
    with_store(config_path.as_deref(), async |store| {
        let findings = crate::gdpr::find(store, &org, name, "cli:gdpr", SystemClock.now()).await?;
        say(describe_findings(&findings, "names"))
    })
}

fn erase(name: &str, config_path: Option<PathBuf>, apply: bool) -> anyhow::Result<()> {
    let config = load_config(config_path.as_deref())?;
    let org = config.node.org_id.clone();
    with_store(config_path.as_deref(), async |store| {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let federation = crate::federation::Federation::for_tools(&config, store.clone(), clock.clone())?;
        let erasure =
            crate::gdpr::erase(store, federation.as_ref(), &org, name, apply, "cli:gdpr", clock.now()).await?;
        let mut text =
            describe_findings(&erasure.findings, if apply { "was erased from" } else { "would be erased from" });
        for (report, version, partners) in &erasure.passed_on {
            text.push_str(&format!(
                "report {report} re-issued as version {version} to pass the erasure on to {partners} partners\n"
            ));
        }
        if !apply && !erasure.findings.is_empty() {
            text.push_str("Nothing was changed. Run again with --yes to erase.\n");
        }
        say(text)
    })
}

fn describe_findings(findings: &[Finding], verb: &str) -> String {
    if findings.is_empty() {
        return "no report names this person\n".to_owned();
    }
    let mut text = String::new();
    for finding in findings {
        let persons: Vec<String> = finding
            .persons
            .iter()
            .map(|(name, role)| format!("{name} ({role})"))
            .chain(finding.acted.iter().map(|name| format!("{name} (who acted)")))
            .collect();
        let source = finding.received_from.as_ref().map(|org| format!(" (received from {org})")).unwrap_or_default();
        text.push_str(&format!(
            "report {}{source} version {} {verb}: {}\n",
            finding.report,
            finding.version,
            persons.join(", ")
        ));
    }
    text
}
