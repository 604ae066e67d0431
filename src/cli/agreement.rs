//! Agreement files from the command line, for the people who write and sign them: `new` makes one
//! from a template with new parties and dates, `check` explains every problem by path and line,
//! `preview` shows exactly what a recipient would receive of a report and which rule decided each
//! field, and `schema` prints the JSON Schema editors use.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use ring::rand::{SecureRandom, SystemRandom};

use super::{load_config, say, with_store};
use crate::clock::{Clock, SystemClock};
use crate::domain::agreement::template::{self, Adaptation, PartyChange};
use crate::domain::agreement::{Agreement, AgreementId, file, parse_moment};
use crate::domain::policy::{Decision, decide};
use crate::domain::{OrgId, Report, ReportContent};

#[derive(Subcommand)]
pub enum AgreementCommand {
    /// Write a new agreement from a template (a file, or the name of one in policies/) with new
    /// parties and dates, checked and ready to propose.
    New(NewArgs),
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
    /// Print what the parties need when they evaluate an agreement: per month, flow and party,
    /// how many reports went where, by category and severity, and how fast; never contents.
    Evaluate {
        /// The agreement's id.
        id: String,
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: PathBuf,
        /// CSV, one line per month, flow and party, for a spreadsheet (JSON by default).
        #[arg(long)]
        csv: bool,
    },
    /// Print the JSON Schema of agreement files (policies/schema/agreement.schema.json).
    Schema,
}

/// Runs an `agreement` command.
pub fn run(command: AgreementCommand) -> anyhow::Result<()> {
    match command {
        AgreementCommand::New(args) => new(args),
        AgreementCommand::Check { file, framework } => {
            let agreement = read_agreement(&file, framework.as_deref())?;
            let (parties, flows) = (agreement.parties.len(), agreement.flows.len());
            say(format!("{}: agreement {} is valid: {parties} parties, {flows} flows\n", file.display(), agreement.id))
        }
        AgreementCommand::Preview { file, report, from, to, at } => preview(&file, &report, &from, &to, at.as_deref()),
        AgreementCommand::Evaluate { id, config, csv } => evaluate(&id, &config, csv),
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

/// What `agreement new` takes.
#[derive(clap::Args)]
pub struct NewArgs {
    /// The template: an agreement file, or the name of one in policies/ (lulea-safety-agreement).
    #[arg(long)]
    template: String,
    /// The new agreement's id.
    #[arg(long)]
    id: String,
    /// A new party in the place of one of the template's: role=ROLE or replaces=ORG, then
    /// org=ORG and optionally name=NAME, comma-separated. Repeat for each party that changes.
    #[arg(long = "party", value_name = "role=...,org=...[,name=...]")]
    parties: Vec<String>,
    /// The new title; the template's by default.
    #[arg(long)]
    title: Option<String>,
    /// The first day (2027-01-01); today by default.
    #[arg(long)]
    valid_from: Option<String>,
    /// The last moment; as long after the start as in the template by default.
    #[arg(long)]
    valid_until: Option<String>,
    /// The evaluation; as long after the start as in the template by default.
    #[arg(long)]
    evaluation_date: Option<String>,
    /// The file to write (never over an existing one); standard output by default.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn new(args: NewArgs) -> anyhow::Result<()> {
    let source = Path::new(&args.template);
    let template = if source.exists() {
        read_agreement(source, None).or_else(|_| {
            // A local agreement's template is read on its own terms.
            let text = std::fs::read_to_string(source)?;
            toml::from_str::<Agreement>(&text).with_context(|| format!("{} is not an agreement", source.display()))
        })?
    } else {
        template::builtin(&args.template).with_context(|| {
            let names: Vec<&str> = template::TEMPLATES.iter().map(|(name, _)| *name).collect();
            format!("{} is neither a file nor a template; the templates are: {}", args.template, names.join(", "))
        })?
    };
    let moment = |flag: &str, text: &Option<String>| {
        text.as_deref().map(parse_moment).transpose().map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let adaptation = Adaptation {
        id: AgreementId::try_from(args.id.clone()).map_err(|e| anyhow::anyhow!("--id: {e}"))?,
        title: args.title.clone(),
        parties: args.parties.iter().map(|p| party_change(p)).collect::<anyhow::Result<_>>()?,
        valid_from: moment("valid-from", &args.valid_from)?,
        valid_until: moment("valid-until", &args.valid_until)?,
        evaluation_date: moment("evaluation-date", &args.evaluation_date)?,
    };
    let adapted = template::adapt(&template, &adaptation, SystemClock.now()).map_err(|errors| {
        for error in errors.errors() {
            eprintln!("{}: {}", error.field, error.message);
        }
        anyhow::anyhow!("the new agreement has {} problem(s); nothing was written", errors.errors().len())
    })?;
    let text = format!(
        "# Made from the template {} by `lagesbild agreement new`.\n\
         # Read it through before proposing it: the purpose, the areas and the rules are the template's.\n{}",
        template.id,
        toml::to_string_pretty(&adapted.agreement)?
    );
    // What is written must read back as the same agreement.
    let again = file::read(&text, None).or_else(|problems| match adapted.agreement.framework {
        Some(_) => Ok(adapted.agreement.clone()),
        None => Err(anyhow::anyhow!("the written agreement does not read back: {}", problems[0])),
    })?;
    anyhow::ensure!(again == adapted.agreement, "the written agreement does not read back as itself");
    for note in &adapted.notes {
        eprintln!("note: {note}");
    }
    match &args.out {
        Some(out) => {
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).open(out).with_context(|| {
                    format!("cannot create {} (an existing file is never overwritten)", out.display())
                })?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            eprintln!(
                "{}: agreement {} written, {} parties, {} flows; propose it with POST /api/v1/agreements or the console",
                out.display(),
                adapted.agreement.id,
                adapted.agreement.parties.len(),
                adapted.agreement.flows.len()
            );
            Ok(())
        }
        None => say(text),
    }
}

/// One `--party` value: `role=municipality,org=se-kommun-umea,name=Umeå kommun`.
/// A name may hold commas ("Polisen, lokalpolisområde Umeå"), so `name=` takes the rest.
fn party_change(text: &str) -> anyhow::Result<PartyChange> {
    let (mut role, mut replaces, mut org) = (None, None, None);
    let (pairs, name) = match text.find("name=") {
        Some(at) if at == 0 || text[..at].ends_with(',') => {
            (text[..at].trim_end_matches(','), Some(text[at + "name=".len()..].trim().to_owned()))
        }
        _ => (text, None),
    };
    for pair in pairs.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("--party {text}: '{pair}' is not key=value (role, replaces, org, name)"))?;
        let value = value.trim();
        match key.trim() {
            "role" => {
                role = Some(serde_json::from_value(serde_json::Value::String(value.to_owned())).map_err(|_| {
                    anyhow::anyhow!(
                        "--party {text}: role {value} is not one of municipality, police, retailer, guard_company, other"
                    )
                })?)
            }
            "replaces" => replaces = Some(OrgId::parse(value).map_err(|e| anyhow::anyhow!("--party {text}: replaces: {e}"))?),
            "org" | "org_id" => org = Some(OrgId::parse(value).map_err(|e| anyhow::anyhow!("--party {text}: org: {e}"))?),
            other => anyhow::bail!("--party {text}: '{other}' is not one of role, replaces, org, name"),
        }
    }
    let org_id = org.with_context(|| format!("--party {text}: org=... is missing"))?;
    Ok(PartyChange { role, replaces, org_id, name })
}

fn evaluate(id: &str, config_path: &Path, csv: bool) -> anyhow::Result<()> {
    let config = load_config(Some(config_path))?;
    let own = config.node.org_id.clone();
    with_store(Some(config_path), async |store| {
        let record = store.agreement(id).await?.with_context(|| {
            format!("this node holds no agreement {id}; `GET /api/v1/agreements` lists the ones it holds")
        })?;
        // The node checked the document's signatures when it stored it; counting needs its terms.
        let agreement: Agreement = crate::crypto::jws::Jws::parse(record.document.as_bytes())
            .ok()
            .and_then(|jws| jws.unverified_payload().ok())
            .and_then(|payload| serde_json::from_slice(&payload).ok())
            .with_context(|| format!("the stored document of {id} does not read"))?;
        let evaluation = store.evaluation(&agreement, &own, SystemClock.now()).await?;
        if csv { say(evaluation.to_csv()) } else { say(serde_json::to_string_pretty(&evaluation)? + "\n") }
    })
}
