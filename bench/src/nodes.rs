//! Nodes under test, each a child process of this binary running `lagesbild-bench node --config
//! FILE`, which starts the node exactly as `lagesbild serve` does (`lagesbild::server::start` on a
//! multi-threaded runtime, logging to stderr at the configured filter). Separate processes keep the
//! load generator out of the node's memory and threads, so RSS read from `/proc/<pid>/status` is
//! the node's own. A child watches its stdin and stops when the bench goes away, so no node
//! outlives a run. Each node has its own identity (`lagesbild::identity::init`), its own ports and
//! its own database: a SQLite file, or a PostgreSQL database `lagesbild_bench_*` created here and
//! dropped when it is no longer used.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lagesbild::clock::SystemClock;
use lagesbild::config::NodeConfig;
use lagesbild::domain::OrgId;
use lagesbild::domain::agreement::Agreement;
use lagesbild::identity::InitOptions;
use serde_json::Value;
use sqlx::Connection;

use crate::workload::now;

/// The bearer token every bench node accepts (the node's `api.dev_token`).
pub const TOKEN: &str = "bench-token-0123456789abcdef";
/// Where PostgreSQL listens (trust auth), as on the development machines and in CI.
pub const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub const MUNICIPALITY: &str = "se-kommun-norrkoping";
pub const GUARDS: &str = "se-vaktbolaget-ost";
/// The agreement between them, from `policies/`.
pub const GUARDING: &str = include_str!("../../policies/norrkoping-municipality-guards.toml");

/// Which database a node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A database of one node: a SQLite file in the run's folder, or a PostgreSQL database that is
/// dropped when this goes out of scope.
pub struct Database {
    pub url: String,
    postgres_name: Option<String>,
}

impl Database {
    pub async fn create(backend: Backend, dir: &Path, name: &str) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                std::fs::create_dir_all(dir)?;
                let url = format!("sqlite://{}/{name}.db", dir.display());
                Ok(Self { url, postgres_name: None })
            }
            Backend::Postgres => {
                let db = format!("lagesbild_bench_{}_{}", name.replace('-', "_"), uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(POSTGRES_ADMIN)
                    .await
                    .with_context(|| format!("PostgreSQL is not reachable at {POSTGRES_ADMIN}"))?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut conn).await?;
                conn.close().await.ok();
                let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
                Ok(Self { url, postgres_name: Some(db) })
            }
        }
    }

    /// Drops every `lagesbild_bench_*` database an interrupted earlier run left behind.
    pub async fn drop_leftovers() -> anyhow::Result<usize> {
        let mut conn = sqlx::PgConnection::connect(POSTGRES_ADMIN)
            .await
            .with_context(|| format!("PostgreSQL is not reachable at {POSTGRES_ADMIN}"))?;
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'lagesbild\\_bench\\_%'")
                .fetch_all(&mut conn)
                .await?;
        for name in &names {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut conn)
                .await?;
        }
        Ok(names.len())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else { return };
        // Drop may run inside the runtime, which cannot block on itself: use a thread of its own.
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(POSTGRES_ADMIN).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a bench database; the next run removes it");
        }
    }
}

/// A node running as a child process.
pub struct NodeProcess {
    pub org: OrgId,
    pub token: String,
    pub api: String,
    pub federation_url: String,
    pub config: PathBuf,
    pub db: Arc<Database>,
    log: PathBuf,
    child: Option<(Child, ChildStdin)>,
}

impl NodeProcess {
    /// Makes a node of `org` in `dir` (its keys, card and `node.toml`) on `db`, and starts it.
    pub async fn start(org: &str, dir: &Path, db: Arc<Database>, logs: &Path) -> anyhow::Result<Self> {
        let (api_port, federation_port) = (free_port()?, free_port()?);
        let federation_url = format!("https://127.0.0.1:{federation_port}");
        let options = InitOptions {
            org_id: OrgId::parse(org).map_err(|e| anyhow::anyhow!("{e}"))?,
            name: format!("Bench node {org}"),
            dir: dir.to_owned(),
            api_listen: format!("127.0.0.1:{api_port}").parse()?,
            federation_listen: format!("127.0.0.1:{federation_port}").parse()?,
            federation_url: federation_url.clone(),
            database_url: Some(db.url.clone()),
        };
        let config = lagesbild::identity::init(&options, now()).context("lagesbild init")?;
        std::fs::create_dir_all(logs)?;
        let name =
            |p: Option<&Path>| p.and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("node").to_owned();
        let log = logs.join(format!("{}-{}-{org}.log", name(dir.parent()), name(Some(dir))));
        let mut node = Self {
            org: options.org_id,
            token: TOKEN.to_owned(),
            api: format!("http://127.0.0.1:{api_port}"),
            federation_url,
            config,
            db,
            log,
            child: None,
        };
        node.spawn().await?;
        Ok(node)
    }

    /// Starts the process (again) and waits until it answers `/readyz`.
    pub async fn spawn(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("{} is running already", self.org);
        }
        let exe = std::env::current_exe().context("cannot find this program to start a node")?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut child = Command::new(exe)
            .args(["node", "--config"])
            .arg(&self.config)
            .env("LAGESBILD_API_DEV_TOKEN", &self.token)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start a node process")?;
        let stdin = child.stdin.take().context("no stdin pipe to the node")?;
        self.child = Some((child, stdin));
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(self.url("/readyz")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some((child, _)) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                bail!("the node {} exited at start ({status}); see {}", self.org, self.log.display());
            }
            if Instant::now() > deadline {
                bail!("the node {} was not ready within 60 s; see {}", self.org, self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the process gracefully (SIGTERM, as systemd would), killing it after 20 s.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some((mut child, stdin)) = self.child.take() else { return Ok(()) };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|(c, _)| c.id())
    }

    /// Where the node's log goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.api, path)
    }

    /// The node's configuration as it loads it.
    pub fn node_config(&self) -> anyhow::Result<NodeConfig> {
        let env: HashMap<String, String> = [("LAGESBILD_API_DEV_TOKEN".to_owned(), self.token.clone())].into();
        Ok(NodeConfig::load(Some(&self.config), &env)?)
    }

    /// Calls the node's API and answers the JSON it returned, failing on any error status.
    pub async fn call(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = http.request(method.clone(), self.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| format!("{method} {path} at {}", self.org))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path} at {} answered {status}: {text}", self.org);
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }

    /// The node's signed card, as `GET /api/v1/node` serves it.
    pub async fn signed_card(&self, http: &reqwest::Client) -> anyhow::Result<Value> {
        Ok(self.call(http, reqwest::Method::GET, "/api/v1/node", None).await?["signed_card"].clone())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Each node imports every other's card.
pub async fn introduce(http: &reqwest::Client, nodes: &[&NodeProcess]) -> anyhow::Result<()> {
    for a in nodes {
        let card = a.signed_card(http).await?;
        for b in nodes.iter().filter(|b| b.org != a.org) {
            b.call(http, reqwest::Method::POST, "/api/v1/partners", Some(&card)).await?;
        }
    }
    Ok(())
}

/// Puts `agreement` in force: proposed at the first node, signed at the others, active at all.
pub async fn agree(http: &reqwest::Client, nodes: &[&NodeProcess], agreement: &Value) -> anyhow::Result<String> {
    let id = agreement["id"].as_str().context("the agreement has no id")?.to_owned();
    let first = nodes.first().context("no node to propose at")?;
    first.call(http, reqwest::Method::POST, "/api/v1/agreements", Some(agreement)).await?;
    for node in &nodes[1..] {
        // The proposal reaches each party through the proposer's lifecycle outbox.
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.call(http, reqwest::Method::GET, &format!("/api/v1/agreements/{id}"), None).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "agreement {id} did not reach {}", node.org);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node.call(http, reqwest::Method::POST, &format!("/api/v1/agreements/{id}/sign"), None).await?;
    }
    for node in nodes {
        wait_active(http, node, &id).await?;
    }
    Ok(id)
}

/// Waits until `node` holds agreement `id` as active.
pub async fn wait_active(http: &reqwest::Client, node: &NodeProcess, id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = node.call(http, reqwest::Method::GET, &format!("/api/v1/agreements/{id}"), None).await;
        if let Ok(view) = &view
            && view["status"]["state"] == "active"
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("agreement {id} did not become active at {} within 30 s: {view:?}", node.org);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The municipality-guards agreement as the API takes it.
pub fn guarding_agreement() -> anyhow::Result<(Agreement, Value)> {
    let agreement: Agreement = toml::from_str(GUARDING).context("the guards' agreement template")?;
    let json = serde_json::to_value(&agreement)?;
    Ok((agreement, json))
}

/// A loopback port nobody listens on now (a node's federation URL is fixed before it binds).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `lagesbild-bench node --config FILE`: runs one node the way `lagesbild serve --config FILE`
/// does, until SIGTERM, Ctrl-C, or the bench closing this process's stdin.
pub fn serve_child(config_path: &Path) -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("LAGESBILD_")).collect();
    let config = NodeConfig::load(Some(config_path), &env)?;
    let filter = tracing_subscriber::EnvFilter::new(&config.log.filter);
    // Plain text: the bench reads some lines back (catch-up's first read of a feed).
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::io::stderr).init();
    lagesbild::crypto::tls::install_default_provider();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let stop = lagesbild::server::shutdown_signal()?;
        let node = lagesbild::server::start(&config, Arc::new(SystemClock)).await?;
        let (orphaned, mut parent_gone) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().lock().read_to_end(&mut sink);
            let _ = orphaned.send(());
        });
        tokio::select! {
            _ = stop => {}
            _ = &mut parent_gone => {}
        }
        node.stop().await;
        anyhow::Ok(())
    })
}
