//! `lagesbild serve` runs a node until Ctrl-C; `lagesbild openapi` prints the documents that
//! describe what it serves. Without a configuration file `serve` runs on the embedded default and
//! makes (or reuses) a development token it prints, since nobody configured one to keep secret.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use super::{load_config, runtime, say};
use crate::clock::SystemClock;
use crate::config::{DEFAULT_DATA_DIR, LogFormat, NodeConfig, is_usable_token};

/// Run the node. Without --config it runs on an embedded default: SQLite in ./lagesbild-data,
/// the API on 127.0.0.1:8080, and a generated API token kept in ./lagesbild-data/dev-token.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The node's configuration file (node.toml).
    #[arg(long, env = "LAGESBILD_CONFIG")]
    config: Option<PathBuf>,
}

/// Print an OpenAPI document: the user API (openapi/lagesbild.json), or with --federation the
/// federation API (openapi/federation.json).
#[derive(clap::Args)]
pub struct OpenapiArgs {
    #[arg(long)]
    federation: bool,
}

/// Starts the node, says where it listens, and runs it until a signal stops it.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config_path = args.config.as_deref();
    let mut config = load_config(config_path)?;
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
    runtime()?.block_on(async {
        let node = crate::server::start(&config, Arc::new(SystemClock)).await?;
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

/// Prints the user API's OpenAPI document, or the federation API's.
pub fn openapi(args: OpenapiArgs) -> anyhow::Result<()> {
    if args.federation { say(crate::federation::docs::openapi_json()) } else { say(crate::api::docs::openapi_json()) }
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
