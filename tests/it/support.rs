//! `TestNode::spawn(backend)`: a real node on a random loopback port with its own new database and
//! a clock the test controls. PostgreSQL databases are created per node and dropped afterwards; the
//! server is the one at `IT_POSTGRES_URL` (default: the local one, trust auth). If PostgreSQL cannot
//! be reached the test fails, loudly: it is never skipped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use lagesbild::clock::{Clock, FixedClock};
use lagesbild::config::NodeConfig;
use lagesbild::domain::OrgId;
use lagesbild::identity::{InitOptions, NodeKeys};
use lagesbild::server::{RunningNode, start};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

/// Which database a test node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn name(backend: Backend)` once per backend, as `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            }
        )+
    };
}

/// The moment every test node's clock starts at.
pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().with_timezone(&Utc)
}

pub const TOKEN: &str = "it-token-0123456789abcdef";

/// A running node and what a test needs to talk to it.
pub struct TestNode {
    pub base: String,
    pub clock: Arc<FixedClock>,
    pub client: reqwest::Client,
    pub db: Arc<TestDatabase>,
    pub config: NodeConfig,
    pub org: String,
    node: Option<RunningNode>,
    /// The folder of the node's keys and card, for federated nodes.
    pub identity_dir: Option<Arc<tempfile::TempDir>>,
}

impl TestNode {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// A node whose configuration `adjust` may change first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut NodeConfig)) -> Self {
        let db = Arc::new(TestDatabase::create(backend).await);
        Self::spawn_on(db, "se-kommun-test", adjust).await
    }

    /// Another node of organisation `org` on the same database as this one.
    pub async fn sibling(&self, org: &str) -> Self {
        Self::spawn_on(self.db.clone(), org, |_| {}).await
    }

    async fn spawn_on(db: Arc<TestDatabase>, org: &str, adjust: impl FnOnce(&mut NodeConfig)) -> Self {
        let mut config = NodeConfig::load(None, &node_env(org, &db)).expect("test configuration is valid");
        adjust(&mut config);
        Self::start_with(config, db, Arc::new(FixedClock::at(start_time())), None).await
    }

    /// A node of `org` with an identity (made by `lagesbild init`'s code) and a federation listener.
    pub async fn spawn_federated(backend: Backend, org: &str) -> Self {
        Self::spawn_federated_with(backend, org, |_| {}).await
    }

    /// A federated node whose configuration `adjust` may change first.
    pub async fn spawn_federated_with(backend: Backend, org: &str, adjust: impl FnOnce(&mut NodeConfig)) -> Self {
        Self::spawn_federated_at(backend, org, start_time(), adjust).await
    }

    /// A federated node whose clock starts at `now`.
    pub async fn spawn_federated_at(
        backend: Backend,
        org: &str,
        now: DateTime<Utc>,
        adjust: impl FnOnce(&mut NodeConfig),
    ) -> Self {
        let db = Arc::new(TestDatabase::create(backend).await);
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let port = free_port();
        let options = InitOptions {
            org_id: OrgId::parse(org).unwrap(),
            name: format!("Test node {org}"),
            dir: dir.path().to_owned(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            federation_listen: format!("127.0.0.1:{port}").parse().unwrap(),
            federation_url: format!("https://127.0.0.1:{port}"),
            database_url: Some(db.url.clone()),
        };
        let config_path = lagesbild::identity::init(&options, now).expect("init makes a node");
        let mut config =
            NodeConfig::load(Some(&config_path), &node_env(org, &db)).expect("init writes a valid configuration");
        adjust(&mut config);
        Self::start_with(config, db, Arc::new(FixedClock::at(now)), Some(dir)).await
    }

    async fn start_with(
        config: NodeConfig,
        db: Arc<TestDatabase>,
        clock: Arc<FixedClock>,
        identity_dir: Option<Arc<tempfile::TempDir>>,
    ) -> Self {
        lagesbild::crypto::tls::install_default_provider();
        let node = start(&config, clock.clone()).await.expect("test node starts");
        Self {
            base: format!("http://{}", node.api_addr),
            clock,
            client: reqwest::Client::new(),
            db,
            org: config.node.org_id.to_string(),
            config,
            node: Some(node),
            identity_dir,
        }
    }

    /// Stops the node and starts it again on the same configuration, database, keys and clock.
    pub async fn restart(mut self) -> Self {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
        let (config, db, clock, dir) =
            (self.config.clone(), self.db.clone(), self.clock.clone(), self.identity_dir.clone());
        Self::start_with(config, db, clock, dir).await
    }

    /// A second replica of this node: the same identity and database, its own listeners.
    pub async fn replica(&self) -> Self {
        let mut config = self.config.clone();
        config.api.listen = "127.0.0.1:0".parse().unwrap();
        if let Some(federation) = config.federation.as_mut() {
            federation.listen = "127.0.0.1:0".parse().unwrap();
        }
        Self::start_with(config, self.db.clone(), self.clock.clone(), self.identity_dir.clone()).await
    }

    /// The configuration file `init` wrote for this federated node, as the command line reads it.
    pub fn config_path(&self) -> std::path::PathBuf {
        self.identity_dir.as_ref().expect("a federated node has a folder").path().join("node.toml")
    }

    /// The files of this federated node's TLS certificate and key, which it presents to partners.
    pub fn tls_certificate(&self) -> (std::path::PathBuf, std::path::PathBuf) {
        let identity = self.config.identity.as_ref().expect("a federated node has an identity");
        let dir = self.identity_dir.as_ref().expect("a federated node has a folder of keys").path();
        (dir.join(&identity.tls_cert), dir.join(&identity.tls_key))
    }

    /// Where this node's federation listener really listens.
    pub fn federation_addr(&self) -> std::net::SocketAddr {
        self.node.as_ref().and_then(|n| n.federation_addr).expect("a federated node")
    }

    /// Stops the node, keeping what a restart needs.
    pub async fn halt(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
    }

    pub fn store(&self) -> &lagesbild::store::Store {
        &self.node.as_ref().expect("the node is running").store
    }

    /// The node's clock, as the library's functions take it.
    pub fn time(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The federation parts of the running node (which must be federated).
    pub fn federation(&self) -> &Arc<lagesbild::federation::Federation> {
        self.node.as_ref().and_then(|node| node.federation.as_ref()).expect("the node is running and federated")
    }

    /// Runs raw SQL against the node's database, as someone with access to it could.
    pub async fn sql(&self, statement: &str) -> Result<(), sqlx::Error> {
        let statement = sqlx::AssertSqlSafe(statement.to_owned());
        if self.db.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.db.url).await?;
            sqlx::raw_sql(statement).execute(&mut conn).await.map(|_| ())
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.db.url).await?;
            sqlx::raw_sql(statement).execute(&mut conn).await.map(|_| ())
        }
    }

    /// The node's keys as they are on disk now.
    pub fn keys(&self) -> NodeKeys {
        NodeKeys::load(&self.config, self.clock.now()).expect("the node's keys load")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the node's bearer token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(TOKEN)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// Files a report and returns what the node answered, asserting it was accepted.
    pub async fn file(&self, body: &Value) -> Value {
        let response = self.request(Method::POST, "/api/v1/reports").json(body).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "filing failed: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The ids in a page of the situation picture, asserting it was served.
    pub async fn situation_ids(&self, query: &str) -> Vec<String> {
        let page = self.situation(query).await;
        page["reports"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
    }

    pub async fn situation(&self, query: &str) -> Value {
        let response = self.get(&format!("/api/v1/situation{query}")).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "situation failed: {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
    }
}

fn node_env(org: &str, db: &TestDatabase) -> HashMap<String, String> {
    [
        ("LAGESBILD_NODE_ORG_ID", org),
        ("LAGESBILD_NODE_NAME", "Test node"),
        ("LAGESBILD_API_LISTEN", "127.0.0.1:0"),
        ("LAGESBILD_API_DEV_TOKEN", TOKEN),
        ("LAGESBILD_API_WORKERS", "2"),
        ("LAGESBILD_DATABASE_URL", db.url.as_str()),
        ("LAGESBILD_DATABASE_MAX_CONNECTIONS", "4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Polls `probe` until it answers, for at most 30 seconds.
pub async fn until<T, F, Fut>(probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    until_within("the condition did not come true", StdDuration::from_secs(30), || {
        let answer = probe();
        async move { answer.await.ok_or_else(String::new) }
    })
    .await
}

/// Like [`until`], moving every one of `nodes`' clocks on by `step` before each try, so that the
/// retries they scheduled come due (these clocks move only when told).
pub async fn until_advancing<T, F, Fut>(nodes: &[&TestNode], step: Duration, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    until(|| {
        for node in nodes {
            node.clock.advance(step);
        }
        probe()
    })
    .await
}

/// Polls `probe` until it answers `Ok`, for at most `limit`; otherwise fails with `what` and the
/// last reason the probe gave.
pub async fn until_within<T, F, Fut>(what: &str, limit: StdDuration, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let why = match probe().await {
            Ok(found) => return found,
            Err(why) => why,
        };
        let because = if why.is_empty() { String::new() } else { format!(": {why}") };
        assert!(Instant::now() < deadline, "{what} within {} s{because}", limit.as_secs());
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

/// A loopback port nobody listens on now. The federation URL goes into the node card before the
/// listener binds, so the port is chosen first. It is drawn below the kernel's ephemeral range
/// (32768 and up on Linux), where the tests' own outgoing connections (to PostgreSQL, between
/// nodes) never take it in between, and each port is handed out once per run.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `count` consecutive loopback ports nobody listens on now, handed out like
/// [`free_port`]'s (for the demo, which takes ports at fixed offsets from a base).
pub fn free_ports(count: u32) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const RANGE: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Where a run starts in the range depends on its process, so two runs side by side rarely meet.
    let start = std::process::id() % RANGE;
    for _ in 0..RANGE {
        let offset = (start + NEXT.fetch_add(count, Ordering::Relaxed)) % RANGE;
        if offset + count > RANGE {
            continue;
        }
        let first = FIRST + offset;
        if (first..first + count).all(|port| std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok()) {
            return first as u16;
        }
    }
    panic!("no {count} free loopback ports between {FIRST} and {}", FIRST + RANGE);
}

/// A valid report body observed `hours_ago` before the test clock's start, in Norrköping.
pub fn report(hours_ago: i64) -> Value {
    json!({
        "observed_at": (start_time() - Duration::hours(hours_ago)).to_rfc3339(),
        "category": "vandalism",
        "severity": "moderate",
        "title": "Broken windows at Hagebyskolan",
        "description": "Two windows on the east side smashed; glass on the schoolyard.",
        "location": {
            "lat": 58.6110, "lon": 16.1510,
            "place_name": "Hageby", "address": "Hagebygatan 10",
            "site": { "kind": "school", "name": "Hagebyskolan" },
            "municipality_code": "0581"
        },
        "persons": [{ "role": "witness", "name": "Anna Andersson", "age": 44 }],
        "actions": [{ "what": "Guard patrol secured the area", "by": "Patrol 2" }],
        "tlp": "AMBER"
    })
}

/// Asserts a problem+json answer with `status`, and returns the problem.
pub async fn expect_problem(response: reqwest::Response, status: StatusCode) -> Value {
    let actual = response.status();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status, body: {text}");
    let content_type = content_type.unwrap_or_default();
    assert!(content_type.starts_with("application/problem+json"), "content type {content_type}");
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["status"], status.as_u16());
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    problem
}

/// The fields named in a validation problem.
pub fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

/// A database for one test: a SQLite file in a temporary folder, or a new PostgreSQL database that
/// is dropped when the last node using it is gone.
pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

fn postgres_admin_url() -> String {
    std::env::var("IT_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/node.db", dir.path().display());
                Self { url, postgres_name: None, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {admin} ({e}); start it (tests/run does) or set IT_POSTGRES_URL"
                    )
                });
                let name = format!("lagesbild_it_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
                Self { url: format!("{base}/{name}"), postgres_name: Some(name), _dir: None }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else { return };
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread of our own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database; tests/run removes leftovers");
        }
    }
}

/// A real OpenID Connect provider (tests/oidc, the npm package oidc-provider) on a loopback port,
/// stopped when dropped. Its clients are named after their roles (`reporter-app`, `analyst-app`,
/// `no-roles-app`, ...); `tests/run` installs it.
pub struct OidcProvider {
    pub issuer: String,
    pub port: u16,
    child: std::process::Child,
}

impl OidcProvider {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        Self::launch(port, None)
    }

    /// A provider whose login client sends people back to `callback` (a node's /auth/callback).
    pub fn start_with_callback(callback: &str) -> Self {
        Self::launch(free_port(), Some(callback))
    }

    fn launch(port: u16, callback: Option<&str>) -> Self {
        use std::io::BufRead;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");
        assert!(
            std::path::Path::new(dir).join("node_modules/oidc-provider").exists(),
            "the test OIDC provider is not installed: run tests/run (it runs npm ci in tests/oidc)"
        );
        let mut child = std::process::Command::new("node")
            .arg("provider.mjs")
            .arg(port.to_string())
            .args(callback)
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("node starts (Node.js is needed for the OIDC tests)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });
        let issuer =
            rx.recv_timeout(std::time::Duration::from_secs(30)).expect("the OIDC provider did not start within 30 s");
        Self { issuer, port, child }
    }

    /// An access token for the API, by the client credentials grant.
    pub async fn token(&self, client: &str) -> String {
        self.token_for(client, "urn:lagesbild:api").await
    }

    /// An access token for another resource of the provider's.
    pub async fn token_for(&self, client: &str, resource: &str) -> String {
        let response: Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[("grant_type", "client_credentials"), ("resource", resource), ("scope", "api")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["access_token"].as_str().unwrap_or_else(|| panic!("no token: {response}")).to_owned()
    }

    /// The `[auth]` section of a node that trusts this provider.
    pub fn auth_config(&self) -> lagesbild::config::AuthSection {
        lagesbild::config::AuthSection {
            issuer: self.issuer.clone(),
            audience: "lagesbild-api".into(),
            roles_claim: "roles".into(),
            role_map: Default::default(),
            allow_dev_token: false,
            client_id: None,
            client_secret: None,
            redirect_url: None,
            session_hours: 8,
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
