//! The `lagesbild` command: parses arguments and calls into the library. Errors end here, printed
//! with their causes and what to fix, and a non-zero exit code.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use clap::{Parser, Subcommand};
use lagesbild::clock::{Clock, SystemClock};
use lagesbild::config::{DEFAULT_DATA_DIR, LogFormat, NodeConfig, is_usable_token};
use lagesbild::crypto::jws::Jws;
use lagesbild::crypto::keys::SigningKey;
use lagesbild::domain::agreement::Agreement;
use lagesbild::domain::policy::{Decision, decide};
use lagesbild::domain::{OrgId, Report, ReportContent};
use lagesbild::federation::registry::import_card;
use lagesbild::identity::InitOptions;
use lagesbild::store::{AuditQuery, Store};
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Parser)]
#[command(name = "lagesbild", version, about = "A federated node for sharing situation pictures between partners")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node. Without --config it runs on an embedded default: SQLite in ./lagesbild-data,
    /// the API on 127.0.0.1:8080, and a generated API token kept in ./lagesbild-data/dev-token.
    Serve {
        /// The node's configuration file (node.toml).
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run four partner nodes on loopback (a municipality, the police, a retailer and a guard
    /// company) under the example agreements, with example reports, on SQLite in a folder. Prints
    /// each node's URLs and token and writes them to FOLDER/nodes.json. Run it again to resume.
    Demo {
        /// The folder the demo keeps its nodes in.
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// The first node's API port; the others follow it, and federation ports are ten above.
        #[arg(long, default_value_t = 7401)]
        base_port: u16,
    },
    /// Create a node: its configuration, Ed25519 signing key, TLS key and certificate, and signed
    /// node card, in a new folder. Never overwrites existing keys.
    Init {
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
        /// The database (default: SQLite in the folder).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Manage partner nodes.
    Partner {
        #[command(subcommand)]
        command: PartnerCommand,
    },
    /// Replace the node's signing and TLS keys. The new card is signed by the old key too, and the
    /// old TLS key stays accepted for federation.tls_overlap_days, so partners follow without a new
    /// exchange. Restart the node afterwards.
    RotateKeys {
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: PathBuf,
    },
    /// Work with agreement files (policies/*.toml).
    Agreement {
        #[command(subcommand)]
        command: AgreementCommand,
    },
    /// Check or export the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Answer a data-protection request about a person named in this node's reports.
    Gdpr {
        #[command(subcommand)]
        command: GdprCommand,
    },
    /// Manage the node's own card.
    Card {
        #[command(subcommand)]
        command: CardCommand,
    },
    /// Print an OpenAPI document: the user API (openapi/lagesbild.json), or with --federation the
    /// federation API (openapi/federation.json).
    Openapi {
        #[arg(long)]
        federation: bool,
    },
}

#[derive(Subcommand)]
enum AgreementCommand {
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

#[derive(Subcommand)]
enum AuditCommand {
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

#[derive(Subcommand)]
enum GdprCommand {
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

#[derive(Subcommand)]
enum CardCommand {
    /// Sign a new card for the node's current keys, for example after installing a TLS
    /// certificate from a certificate authority. Restart the node to send it to partners.
    Reissue {
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum PartnerCommand {
    /// Import a partner's signed node card (the file its admin sent you).
    Add {
        /// The partner's card (JWS JSON).
        file: PathBuf,
        #[arg(long, env = "LAGESBILD_CONFIG")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    lagesbild::crypto::tls::install_default_provider();
    let result = match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::Demo { dir, base_port } => demo(&dir, base_port),
        Command::Init { org_id, name, dir, api_listen, federation_listen, federation_url, database_url } => {
            init(org_id, name, dir, api_listen, federation_listen, federation_url, database_url)
        }
        Command::Partner { command: PartnerCommand::Add { file, config } } => partner_add(&file, &config),
        Command::RotateKeys { config } => rotate_keys(&config),
        Command::Card { command: CardCommand::Reissue { config } } => reissue_card(&config),
        Command::Gdpr { command: GdprCommand::Find { name, config } } => gdpr_find(&name, config.as_deref()),
        Command::Gdpr { command: GdprCommand::Erase { name, config, yes } } => {
            gdpr_erase(&name, config.as_deref(), yes)
        }
        Command::Audit { command: AuditCommand::Verify { config } } => audit_verify(config.as_deref()),
        Command::Audit { command: AuditCommand::Prune { config } } => audit_prune(&config),
        Command::Audit { command: AuditCommand::Export { config, since } } => {
            audit_export(config.as_deref(), since.as_deref())
        }
        Command::Agreement { command: AgreementCommand::Check { file, framework } } => {
            read_agreement(&file, framework.as_deref()).and_then(|agreement| {
                let (parties, flows) = (agreement.parties.len(), agreement.flows.len());
                say(format!(
                    "{}: agreement {} is valid: {parties} parties, {flows} flows\n",
                    file.display(),
                    agreement.id
                ))
            })
        }
        Command::Agreement { command: AgreementCommand::Preview { file, report, from, to, at } } => {
            agreement_preview(&file, &report, &from, &to, at.as_deref())
        }
        Command::Agreement { command: AgreementCommand::Schema } => say(lagesbild::agreement_file::schema_json()),
        Command::Openapi { federation: true } => say(lagesbild::federation::docs::openapi_json()),
        Command::Openapi { federation: false } => say(lagesbild::api::docs::openapi_json()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`| head`) is not an error worth a message.
        Err(error)
            if error.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config_path: Option<&Path>) -> anyhow::Result<()> {
    let env = environment()?;
    let mut config = NodeConfig::load(config_path, &env)?;
    // Only a token this command made itself is printed: a configured one stays out of logs.
    let mut token_line = match config.api.dev_token {
        Some(_) => "set by api.dev_token".to_owned(),
        None => {
            "none configured: set api.dev_token (or LAGESBILD_API_DEV_TOKEN), or every API call is refused".to_owned()
        }
    };
    if config_path.is_none() && config.api.dev_token.is_none() {
        let path = Path::new(DEFAULT_DATA_DIR).join("dev-token");
        let token = dev_token(&path)?;
        token_line = format!("{token} (kept in {})", path.display());
        config.api.dev_token = Some(token);
    }
    init_logging(&config);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let node = lagesbild::server::start(&config, Arc::new(SystemClock)).await?;
        let base = format!("http://{}", node.api_addr);
        let mut out = std::io::stdout().lock();
        writeln!(out, "lagesbild node {} ({}) is running", config.node.org_id, config.node.name)?;
        writeln!(out, "  API:      {base}/api/v1")?;
        writeln!(out, "  API docs: {base}/docs/")?;
        if let Some(federation) = node.federation_addr {
            writeln!(out, "  Federation (mutual TLS): https://{federation}/federation/v1")?;
        }
        writeln!(out, "  Database: {}", redact_password(&config.database.url))?;
        writeln!(out, "  Token:    {token_line}")?;
        writeln!(out, "Press Ctrl-C to stop.")?;
        drop(out);
        node.run_until_signalled().await?;
        anyhow::Ok(())
    })
}

fn demo(dir: &Path, base_port: u16) -> anyhow::Result<()> {
    anyhow::ensure!(base_port <= u16::MAX - 20, "--base-port must leave room for 20 ports above it");
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(lagesbild::demo::run(dir, base_port))
}

fn init(
    org_id: String,
    name: String,
    dir: PathBuf,
    api_listen: std::net::SocketAddr,
    federation_listen: std::net::SocketAddr,
    federation_url: Option<String>,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let org_id = OrgId::parse(&org_id).map_err(|e| anyhow::anyhow!("--org-id {org_id:?}: {e}"))?;
    let options = InitOptions {
        org_id,
        name,
        dir,
        api_listen,
        federation_listen,
        federation_url: federation_url.unwrap_or_else(|| format!("https://{federation_listen}")),
        database_url,
    };
    let config_path = lagesbild::identity::init(&options, SystemClock.now())?;
    let dir = config_path.parent().unwrap_or(Path::new("."));
    println!("Created node {} in {}", options.org_id, dir.display());
    println!("  configuration: {}", config_path.display());
    println!("  node card:     {} (send it to your partners' administrators)", dir.join("node-card.json").display());
    println!("Start it with: LAGESBILD_API_DEV_TOKEN=... lagesbild serve --config {}", config_path.display());
    Ok(())
}

fn partner_add(file: &Path, config_path: &Path) -> anyhow::Result<()> {
    let config = NodeConfig::load(Some(config_path), &environment()?)?;
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let card = Jws::parse(&text).with_context(|| format!("{} is not a signed node card", file.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = Store::open(&config.database).await?;
        let outcome = import_card(&store, &card, &config.node.org_id, None, SystemClock.now(), "cli").await;
        store.close().await;
        let (partner, imported) = outcome.with_context(|| format!("the card in {} was refused", file.display()))?;
        println!("{imported:?} partner {} ({}) at {}", partner.org_id, partner.name, partner.federation_url);
        println!("A running node picks the change up when it restarts or when a partner is changed through the API.");
        anyhow::Ok(())
    })
}

fn rotate_keys(config_path: &Path) -> anyhow::Result<()> {
    let config = NodeConfig::load(Some(config_path), &environment()?)?;
    let outcome = lagesbild::identity::rotate(&config, SystemClock.now())?;
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

fn reissue_card(config_path: &Path) -> anyhow::Result<()> {
    let config = NodeConfig::load(Some(config_path), &environment()?)?;
    let card = lagesbild::identity::reissue_card(&config, SystemClock.now())?;
    let pin = card.tls_pins.first().map(|p| p.pin.to_string()).unwrap_or_default();
    println!(
        "Signed a new card for {} with TLS pin {pin}. Restart the node: it sends the card to every partner.",
        card.org_id
    );
    Ok(())
}

/// Runs `work` against the node's store, closing it afterwards.
fn with_store<T>(config_path: Option<&Path>, work: impl AsyncFnOnce(&Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let config = NodeConfig::load(config_path, &environment()?)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = Store::open(&config.database).await?;
        let result = work(&store).await;
        store.close().await;
        result
    })
}

fn gdpr_find(name: &str, config_path: Option<&Path>) -> anyhow::Result<()> {
    anyhow::ensure!(
        name.trim().chars().count() >= 3,
        "--name needs at least 3 characters, or it matches too many people"
    );
    let org = NodeConfig::load(config_path, &environment()?)?.node.org_id;
    with_store(config_path, async |store| {
        let findings = lagesbild::gdpr::find(store, &org, name, "cli:gdpr", SystemClock.now()).await?;
        say(describe_findings(&findings, "names"))
    })
}

fn gdpr_erase(name: &str, config_path: Option<&Path>, apply: bool) -> anyhow::Result<()> {
    let config = NodeConfig::load(config_path, &environment()?)?;
    let org = config.node.org_id.clone();
    with_store(config_path, async |store| {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let federation = lagesbild::federation::Federation::for_tools(&config, store.clone(), clock.clone())?;
        let erasure =
            lagesbild::gdpr::erase(store, federation.as_ref(), &org, name, apply, "cli:gdpr", clock.now()).await?;
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

fn describe_findings(findings: &[lagesbild::gdpr::Finding], verb: &str) -> String {
    if findings.is_empty() {
        return "no report names this person\n".to_owned();
    }
    let mut text = String::new();
    for finding in findings {
        let persons: Vec<String> = finding.persons.iter().map(|(name, role)| format!("{name} ({role})")).collect();
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

fn audit_verify(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = NodeConfig::load(config_path, &environment()?)?;
    let key = match &config.identity {
        Some(identity) => Some(SigningKey::load(&identity.signing_key)?.public()),
        None => None,
    };
    with_store(config_path, async |store| {
        let count = lagesbild::audit::verify(store, key).await?;
        say(format!("the audit chain is intact: {count} entries\n"))
    })
}

fn audit_prune(config_path: &Path) -> anyhow::Result<()> {
    let config = NodeConfig::load(Some(config_path), &environment()?)?;
    let identity = config
        .identity
        .as_ref()
        .context("pruning signs a checkpoint with the node's key: the configuration needs [identity]")?;
    let key = SigningKey::load(&identity.signing_key)?;
    let retention = chrono::Duration::days(i64::from(config.audit.retention_days));
    with_store(Some(config_path), async |store| {
        let pruned = lagesbild::audit::prune(store, &key, SystemClock.now(), retention).await?;
        say(format!("pruned {pruned} audit entries older than {} days\n", config.audit.retention_days))
    })
}

fn audit_export(config_path: Option<&Path>, since: Option<&str>) -> anyhow::Result<()> {
    let since = since
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&chrono::Utc)))
        .transpose()
        .context("--since must be an RFC 3339 time such as 2026-11-01T00:00:00Z")?;
    with_store(config_path, async |store| {
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

/// Writes to standard output, so a closed pipe is an error to handle, not a panic.
fn say(text: impl AsRef<str>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref().as_bytes()).and_then(|()| out.flush())?;
    Ok(())
}

/// Reads and checks an agreement file (and its framework), printing every problem.
fn read_agreement(file: &Path, framework: Option<&Path>) -> anyhow::Result<Agreement> {
    let outer = match framework {
        Some(path) => {
            Some(read_agreement(path, None).with_context(|| format!("the framework {} is not valid", path.display()))?)
        }
        None => None,
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match lagesbild::agreement_file::read(&text, outer.as_ref()) {
        Ok(agreement) => Ok(agreement),
        Err(problems) => {
            for problem in &problems {
                eprintln!("{}: {problem}", file.display());
            }
            anyhow::bail!("{} has {} problem(s)", file.display(), problems.len())
        }
    }
}

fn agreement_preview(file: &Path, report: &Path, from: &str, to: &str, at: Option<&str>) -> anyhow::Result<()> {
    let agreement = read_agreement(file, None).or_else(|error| {
        // A local agreement is previewed on its own terms; `check --framework` judges the rest.
        let text = std::fs::read_to_string(file)?;
        let agreement: Agreement = toml::from_str(&text).map_err(|_| error)?;
        agreement.check().map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
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

/// The embedded default's API token: read from `path`, or made and saved there (mode 0600). The
/// file is written under another name and renamed, so a crash never leaves an empty token behind.
fn dev_token(path: &Path) -> anyhow::Result<String> {
    if path.exists() {
        let token = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let token = token.trim().to_owned();
        anyhow::ensure!(
            is_usable_token(&token),
            "{} does not hold a usable token (16 or more printable characters); delete it to have a new one made",
            path.display()
        );
        return Ok(token);
    }
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    writeln!(file, "{token}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(token)
}

fn init_logging(config: &NodeConfig) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log.filter);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

/// A database URL fit to print: any password replaced.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
