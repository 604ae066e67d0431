//! Agreement files from the command line, for the people who write and sign them: `check` explains
//! every problem by path and line, `preview` shows exactly what a recipient would receive of a
//! report and which rule decided each field, and `schema` prints the JSON Schema editors use.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use ring::rand::{SecureRandom, SystemRandom};

use super::say;
use crate::clock::{Clock, SystemClock};
use crate::domain::agreement::{Agreement, file};
use crate::domain::policy::{Decision, decide};
use crate::domain::{OrgId, Report, ReportContent};

#[derive(Subcommand)]
pub enum AgreementCommand {
    /// Check an agreement file and explain every problem by path and line.
    Check {
        file: PathBuf,
        /// The framework agreement the file sits under, if it names one.
        #[arg(long)]
        framework: Option<PathBuf>,
    },
    /// Show exactly what a recipient would receive of a report under an agreement, and which rule
    /// decided each field.
    Preview {
        file: PathBuf,
        /// The report, as it would be filed (the body of POST /api/v1/reports), in JSON.
        #[arg(long)]
        report: PathBuf,
        /// The organisation that files it.
        #[arg(long)]
        from: String,
        /// The recipient.
        #[arg(long)]
        to: String,
        /// The moment to judge at (RFC 3339); now by default.
        #[arg(long)]
        at: Option<String>,
    },
    /// Print the JSON Schema of agreement files (policies/schema/agreement.schema.json).
    Schema,
}

/// Runs an `agreement` command.
pub fn run(command: AgreementCommand) -> anyhow::Result<()> {
    match command {
        AgreementCommand::Check { file, framework } => {
            let agreement = read_agreement(&file, framework.as_deref())?;
            let (parties, flows) = (agreement.parties.len(), agreement.flows.len());
            say(format!("{}: agreement {} is valid: {parties} parties, {flows} flows\n", file.display(), agreement.id))
        }
        AgreementCommand::Preview { file, report, from, to, at } => preview(&file, &report, &from, &to, at.as_deref()),
        AgreementCommand::Schema => say(file::schema_json()),
    }
}

/// Reads and checks an agreement file (and its framework), printing every problem.
fn read_agreement(path: &Path, framework: Option<&Path>) -> anyhow::Result<Agreement> {
    let outer = match framework {
        Some(framework) => Some(
            read_agreement(framework, None)
                .with_context(|| format!("the framework {} is not valid", framework.display()))?,
        ),
        None => None,
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match file::read(&text, outer.as_ref()) {
        Ok(agreement) => Ok(agreement),
        Err(problems) => {
            for problem in &problems {
                eprintln!("{}: {problem}", path.display());
            }
            anyhow::bail!("{} has {} problem(s)", path.display(), problems.len())
        }
    }
}

fn preview(path: &Path, report: &Path, from: &str, to: &str, at: Option<&str>) -> anyhow::Result<()> {
    let agreement = read_agreement(path, None).or_else(|error| {
        // A local agreement is previewed on its own terms; `check --framework` judges the rest.
        let text = std::fs::read_to_string(path)?;
        let agreement: Agreement = toml::from_str(&text).map_err(|_| error)?;
        agreement.check().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        anyhow::Ok(agreement)
    })?;
    let now = match at {
        Some(at) => chrono::DateTime::parse_from_rfc3339(at)
            .map(|t| t.with_timezone(&chrono::Utc))
            .context("--at must be an RFC 3339 time")?,
        None => SystemClock.now(),
    };
    let text = std::fs::read(report).with_context(|| format!("cannot read {}", report.display()))?;
    let content: ReportContent =
        serde_json::from_slice(&text).with_context(|| format!("{} is not a report", report.display()))?;
    let content = content.validate(now).map_err(|e| anyhow::anyhow!("{}: {e}", report.display()))?;
    let from = OrgId::parse(from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to = OrgId::parse(to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    let report = Report::file(from, content, now);
    // Pseudonyms in a preview are only illustrative: a node keys them with its own secret.
    let mut key = [0u8; 32];
    SystemRandom::new().fill(&mut key).map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let text = match decide(&report, &agreement, &to, now, &key) {
        Decision::Withhold { reason } => format!("{to} receives nothing: {reason}\n"),
        Decision::Share { view, flow, explanation } => {
            let mut text = format!("{to} receives, under flow {flow} of {}:\n", agreement.id);
            for decision in &explanation {
                text.push_str(&format!("  {:<12} {:<14} {}\n", decision.field, decision.rule, decision.effect));
            }
            text + &serde_json::to_string_pretty(&view)? + "\n"
        }
    };
    say(text)
}
