//! The node's configuration: `node.toml`, then `LAGESBILD_*` environment variables over it, then
//! checks that name the key at fault. With no file the node runs on an embedded default (SQLite under
//! `./lagesbild-data`). This module reads files and the environment map it is given; it never opens a
//! database or a socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::OrgId;

/// Everything a node needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node: NodeSection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub log: LogSection,
    /// The node's keys and card; needed for federation.
    #[serde(default)]
    pub identity: Option<IdentitySection>,
    /// The federation listener; without it the node shares nothing.
    #[serde(default)]
    pub federation: Option<FederationSection>,
    #[serde(default)]
    pub audit: AuditSection,
    /// Sign-in through the organisation's OpenID Connect provider.
    #[serde(default)]
    pub auth: Option<AuthSection>,
    #[serde(default)]
    pub webhooks: WebhooksSection,
    #[serde(default)]
    pub console: ConsoleSection,
    /// Who inside this organisation sees the persons in reports.
    #[serde(default)]
    pub privacy: PrivacySection,
    /// Which reports wait for a second person's release before they leave the node.
    #[serde(default)]
    pub release: ReleaseSection,
}

/// Four-eyes release: reports that a second person with the coordinator role must release before
/// anything of them leaves the node. Nothing is held unless one of these is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSection {
    /// Reports of this severity or higher (`minor`, `moderate`, `severe`, `critical`).
    #[serde(default)]
    pub min_severity: Option<crate::domain::Severity>,
    /// Reports marked with this TLP or a stricter one (`CLEAR` ... `RED`).
    #[serde(default)]
    pub min_tlp: Option<crate::domain::Tlp>,
    /// Reports written by someone holding one of these roles who is not a coordinator.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl ReleaseSection {
    /// The rule, as the node applies it; the roles are checked when the file is loaded.
    pub fn rule(&self) -> crate::domain::release::ReleaseRule {
        crate::domain::release::ReleaseRule {
            min_severity: self.min_severity,
            min_tlp: self.min_tlp,
            roles: self.roles.iter().filter_map(|r| r.parse().ok()).collect(),
        }
    }
}

/// Who inside this organisation sees the persons involved in reports (names, ages, descriptions),
/// its own and those partners shared; everyone else is shown their roles only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySection {
    /// The roles whose holders see persons; by default coordinator and analyst.
    #[serde(default = "default_persons_visible_to")]
    pub persons_visible_to: Vec<String>,
}

impl Default for PrivacySection {
    fn default() -> Self {
        Self { persons_visible_to: default_persons_visible_to() }
    }
}

fn default_persons_visible_to() -> Vec<String> {
    crate::domain::persons::PersonsAccess::DEFAULT.iter().map(|r| r.as_str().to_owned()).collect()
}

impl PrivacySection {
    /// Who sees persons, as the node decides it; the roles are checked when the file is loaded.
    pub fn persons_access(&self) -> crate::domain::persons::PersonsAccess {
        crate::domain::persons::PersonsAccess::new(self.persons_visible_to.iter().filter_map(|r| r.parse().ok()))
    }
}

/// The operator console's map, clock and the organisation's sites.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// Map tiles, as `https://tile.example/{z}/{x}/{y}.png`; none: the map is drawn on a plain
    /// background with a scale, and nothing is fetched from outside the node.
    #[serde(default)]
    pub tile_url: Option<String>,
    /// Who the tiles are by, as the tile source asks to be credited.
    #[serde(default)]
    pub tile_attribution: Option<String>,
    /// The time zone the console shows and reads times in (an IANA name).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The organisation's sites (its schools, shops, offices), offered as places when filing.
    #[serde(default)]
    pub sites: Vec<ConsoleSite>,
    /// Municipalities by code, with a point for each: a report a partner shared only "to the
    /// municipality" is drawn there as a labelled marker (without one, it is only listed).
    #[serde(default)]
    pub municipalities: Vec<ConsoleMunicipality>,
}

/// A municipality the map can place a report in that names only it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleMunicipality {
    /// The four-digit municipality code (kommunkod / kommunenummer).
    pub code: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            tile_url: None,
            tile_attribution: None,
            time_zone: default_time_zone(),
            sites: Vec::new(),
            municipalities: Vec::new(),
        }
    }
}

fn default_time_zone() -> String {
    "Europe/Stockholm".to_owned()
}

/// One of the organisation's sites, as the filing form offers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSite {
    pub name: String,
    pub kind: crate::domain::SiteKind,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub municipality_code: Option<String>,
}

/// Webhook subscriptions: where the node may POST the picture's changes, and how many.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksSection {
    /// Allow targets on loopback, link-local and private addresses (an organisation's own network).
    /// Off by default: a user who may subscribe could otherwise make the node call its neighbours.
    #[serde(default)]
    pub allow_private_targets: bool,
    /// How many subscriptions the node keeps.
    #[serde(default = "default_max_subscriptions")]
    pub max_subscriptions: usize,
    /// How many deliveries may wait for one subscription; beyond that, changes are dropped and
    /// counted.
    #[serde(default = "default_webhook_queue")]
    pub queue_limit: i64,
}

impl Default for WebhooksSection {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            max_subscriptions: default_max_subscriptions(),
            queue_limit: default_webhook_queue(),
        }
    }
}

fn default_max_subscriptions() -> usize {
    100
}

fn default_webhook_queue() -> i64 {
    10_000
}

/// The organisation's OpenID Connect provider, whose JWT access tokens the user API accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// The provider's issuer URL (https; http only on loopback, for tests).
    pub issuer: String,
    /// The audience tokens must be issued for.
    pub audience: String,
    /// The claim holding roles; a dotted path reaches into objects (`realm_access.roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Provider role names mapped to node roles; node role names map to themselves.
    #[serde(default)]
    pub role_map: std::collections::BTreeMap<String, String>,
    /// Keep accepting `api.dev_token` next to the provider's tokens (for demos and tests only).
    #[serde(default)]
    pub allow_dev_token: bool,
    /// For people signing in with a browser (`/auth/login`): the node's client at the provider...
    #[serde(default)]
    pub client_id: Option<String>,
    /// ...its secret (prefer the environment: LAGESBILD_AUTH_CLIENT_SECRET)...
    #[serde(default)]
    pub client_secret: Option<String>,
    /// ...and the node's callback as registered there, `https://NODE/auth/callback`.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// How long a signed-in session lasts.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
}

fn default_session_hours() -> u32 {
    8
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}

/// How long the audit trail keeps its entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Entries older than this are pruned behind a signed checkpoint (needs an `[identity]`).
    #[serde(default = "default_audit_retention")]
    pub retention_days: u32,
    /// How often the node verifies its whole trail (the metrics say when and with what outcome).
    #[serde(default = "default_audit_verify_minutes")]
    pub verify_minutes: u32,
}

fn default_audit_verify_minutes() -> u32 {
    60
}

impl Default for AuditSection {
    fn default() -> Self {
        Self { retention_days: default_audit_retention(), verify_minutes: default_audit_verify_minutes() }
    }
}

fn default_audit_retention() -> u32 {
    730
}

/// Where the node's keys and card are. Relative paths are taken from the configuration file's folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// The Ed25519 signing key (PKCS#8 PEM, mode 0600).
    pub signing_key: PathBuf,
    /// The TLS certificate (PEM) and its key (PEM, mode 0600).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The node card, signed (JWS JSON), as `init` and `rotate-keys` write it.
    pub card: PathBuf,
}

/// The listener for partner nodes: mutual TLS, pinned keys only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSection {
    pub listen: SocketAddr,
    /// How long, after a key rotation, partners keep accepting the old TLS key.
    #[serde(default = "default_overlap_days")]
    pub tls_overlap_days: u32,
    /// Trust partners' certificates through this certificate authority (PEM roots) instead of by
    /// pin: a certificate must chain to it and be made out (subject O, or CN) to a partner's org id.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// How long a delivery worker holds the envelopes it claimed before another may take them
    /// (a worker that died mid-delivery is replaced after this).
    #[serde(default = "default_claim_seconds")]
    pub claim_seconds: u32,
    /// How far an envelope's signing time may lie from this node's clock.
    #[serde(default = "default_window_minutes")]
    pub envelope_window_minutes: u32,
    /// Requests per second each partner may make to the federation listener (bursts of twice as
    /// many are absorbed).
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: u32,
    /// Envelopes per second each partner may deliver (bursts of twice as many, and always one
    /// full delivery): each costs a signature check, so a delivery is charged per envelope.
    #[serde(default = "default_envelopes_per_second")]
    pub envelopes_per_second: u32,
    /// How often partners' catch-up feeds are read (also once at start).
    #[serde(default = "default_catch_up_seconds")]
    pub catch_up_seconds: u32,
    /// How often ended agreements and received data past its retention are swept.
    #[serde(default = "default_sweep_seconds")]
    pub sweep_seconds: u32,
}

impl FederationSection {
    /// A section listening on `listen`, with every other setting at its default.
    pub fn listening_on(listen: SocketAddr) -> Self {
        Self {
            listen,
            tls_overlap_days: default_overlap_days(),
            ca_bundle: None,
            claim_seconds: default_claim_seconds(),
            envelope_window_minutes: default_window_minutes(),
            requests_per_second: default_requests_per_second(),
            envelopes_per_second: default_envelopes_per_second(),
            catch_up_seconds: default_catch_up_seconds(),
            sweep_seconds: default_sweep_seconds(),
        }
    }
}

impl ConsoleSection {
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if let Some(url) = &self.tile_url {
            let loopback = ["http://127.0.0.1", "http://localhost"].iter().any(|p| url.starts_with(p));
            let placeholders = ["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p));
            if !(url.starts_with("https://") || loopback) || !placeholders || url.contains(['"', '\'', ' ', ';']) {
                return invalid(
                    "console.tile_url",
                    "must be an https:// URL with {z}, {x} and {y}, such as https://tile.example/{z}/{x}/{y}.png"
                        .into(),
                );
            }
        }
        if self.tile_attribution.as_ref().is_some_and(|a| a.chars().count() > 300) {
            return invalid("console.tile_attribution", "must be at most 300 characters".into());
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return invalid(
                "console.time_zone",
                format!("'{}' is not an IANA time zone, such as Europe/Stockholm or Europe/Oslo", self.time_zone),
            );
        }
        if self.sites.len() > 500 {
            return invalid("console.sites", "at most 500 sites".into());
        }
        for site in &self.sites {
            let name = site.name.trim().chars().count();
            let code_ok =
                site.municipality_code.as_ref().is_none_or(|c| c.len() == 4 && c.chars().all(|d| d.is_ascii_digit()));
            if !(1..=200).contains(&name)
                || !(-90.0..=90.0).contains(&site.lat)
                || !(-180.0..=180.0).contains(&site.lon)
                || !code_ok
            {
                return invalid(
                    "console.sites",
                    format!(
                        "site '{}' needs a name of 1 to 200 characters, lat -90 to 90, lon -180 to 180 and a \
                         four-digit municipality_code if any",
                        site.name
                    ),
                );
            }
        }
        if self.municipalities.len() > 1_000 {
            return invalid("console.municipalities", "at most 1000 municipalities".into());
        }
        for m in &self.municipalities {
            let name = m.name.trim().chars().count();
            if m.code.len() != 4
                || !m.code.chars().all(|d| d.is_ascii_digit())
                || !(1..=100).contains(&name)
                || !(-90.0..=90.0).contains(&m.lat)
                || !(-180.0..=180.0).contains(&m.lon)
            {
                return invalid(
                    "console.municipalities",
                    format!(
                        "municipality '{}' needs a four-digit code, a name of 1 to 100 characters, lat -90 to 90 \
                         and lon -180 to 180",
                        m.code
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Who this node is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The organisation's id, such as `se-kommun-norrkoping`.
    pub org_id: OrgId,
    /// Its name as people know it.
    pub name: String,
}

/// The user API listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// A static bearer token for development and tests. Without it every `/api/v1` route refuses.
    #[serde(default)]
    pub dev_token: Option<String>,
    /// The largest request body accepted, checked before parsing.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// HTTP worker threads; by default one per CPU core.
    #[serde(default)]
    pub workers: Option<usize>,
    /// How many live streams (`/api/v1/situation/stream`) the node serves at once.
    #[serde(default = "default_max_streams")]
    pub max_streams: usize,
    /// How long a live stream's client may accept nothing (its connection full) before it loses its
    /// place; the stream then ends when the client reads again, and it reconnects from where it was.
    #[serde(default = "default_stream_stall_seconds")]
    pub stream_stall_seconds: u64,
    /// Serve the API over TLS with this certificate (PEM, with its chain) and key (PEM), for a node
    /// without a reverse proxy in front; relative to the file. Both or neither.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

/// Where reports are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST:PORT/DB`.
    #[serde(default = "default_database_url")]
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

/// How the node logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `lagesbild=debug,info`.
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// What is wrong with the configuration, naming the file, variable or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: &'static str, message: String },
    #[error("configuration key {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Where the embedded default keeps its data, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "lagesbild-data";

const EMBEDDED_DEFAULT: &str = r#"
[node]
org_id = "local-node"
name = "Local lagesbild node"
"#;

/// Fails with `key` unless every one of `names` is one of the node's roles.
fn only_roles<'a>(key: &'static str, names: impl IntoIterator<Item = &'a String>) -> Result<(), ConfigError> {
    match names.into_iter().find(|name| name.parse::<crate::domain::Role>().is_err()) {
        Some(bad) => Err(ConfigError::Invalid {
            key,
            message: format!("'{bad}' is not a role: reporter, coordinator, analyst, agreement-admin or node-admin"),
        }),
        None => Ok(()),
    }
}

/// How an environment variable's text becomes a TOML value.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Integer,
}

/// Every environment override: variable, section, key, kind. `DATABASE_URL` is honoured as the
/// ecosystem's convention; `LAGESBILD_DATABASE_URL`, later in the list, wins over it.
const ENV_OVERRIDES: &[(&str, &str, &str, Kind)] = &[
    ("LAGESBILD_NODE_ORG_ID", "node", "org_id", Kind::Text),
    ("LAGESBILD_NODE_NAME", "node", "name", Kind::Text),
    ("LAGESBILD_API_LISTEN", "api", "listen", Kind::Text),
    ("LAGESBILD_API_DEV_TOKEN", "api", "dev_token", Kind::Text),
    ("LAGESBILD_API_BODY_LIMIT_BYTES", "api", "body_limit_bytes", Kind::Integer),
    ("LAGESBILD_API_WORKERS", "api", "workers", Kind::Integer),
    ("DATABASE_URL", "database", "url", Kind::Text),
    ("LAGESBILD_DATABASE_URL", "database", "url", Kind::Text),
    ("LAGESBILD_DATABASE_MAX_CONNECTIONS", "database", "max_connections", Kind::Integer),
    ("LAGESBILD_LOG_FORMAT", "log", "format", Kind::Text),
    ("LAGESBILD_LOG_FILTER", "log", "filter", Kind::Text),
    ("LAGESBILD_FEDERATION_LISTEN", "federation", "listen", Kind::Text),
    ("LAGESBILD_FEDERATION_CLAIM_SECONDS", "federation", "claim_seconds", Kind::Integer),
    ("LAGESBILD_FEDERATION_CATCH_UP_SECONDS", "federation", "catch_up_seconds", Kind::Integer),
    ("LAGESBILD_FEDERATION_SWEEP_SECONDS", "federation", "sweep_seconds", Kind::Integer),
    ("LAGESBILD_AUDIT_RETENTION_DAYS", "audit", "retention_days", Kind::Integer),
    ("LAGESBILD_AUTH_ISSUER", "auth", "issuer", Kind::Text),
    ("LAGESBILD_AUTH_AUDIENCE", "auth", "audience", Kind::Text),
    ("LAGESBILD_AUTH_CLIENT_SECRET", "auth", "client_secret", Kind::Text),
];

/// Environment variables that are not configuration keys and are left alone: where the
/// configuration file is, where a build takes the console's npm packages from, and where a
/// container's health check (`lagesbild health`) asks, which shares the node's environment.
const ENV_NOT_CONFIG: &[&str] = &["LAGESBILD_CONFIG", "LAGESBILD_CONSOLE_NODE_MODULES", "LAGESBILD_HEALTH_URL"];

impl NodeConfig {
    /// Reads `path` (or the embedded default), applies `env` over it and checks the result.
    pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let (origin, text) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                (path.display().to_string(), text)
            }
            None => ("the embedded default configuration".to_owned(), EMBEDDED_DEFAULT.to_owned()),
        };
        // Deserialising the text itself gives errors with their line and column; the merged table
        // below has no positions left. Only a missing key may still be supplied by the environment.
        if let Err(e) = toml::from_str::<NodeConfig>(&text)
            && !e.message().starts_with("missing field")
        {
            return Err(ConfigError::Parse { path: origin, message: e.to_string() });
        }
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: origin.clone(), message: e.to_string() })?;
        let applied = apply_env(&mut table, env)?;
        let config: NodeConfig = table.try_into().map_err(|e: toml::de::Error| {
            let source = if applied.is_empty() { origin } else { format!("{origin} with {}", applied.join(", ")) };
            ConfigError::Parse { path: source, message: e.to_string() }
        })?;
        let mut config = config.check()?;
        if let Some(dir) = path.and_then(Path::parent) {
            let identity = config
                .identity
                .iter_mut()
                .flat_map(|i| [&mut i.signing_key, &mut i.tls_cert, &mut i.tls_key, &mut i.card]);
            let bundle = config.federation.iter_mut().filter_map(|f| f.ca_bundle.as_mut());
            let api_tls = config.api.tls_cert.iter_mut().chain(config.api.tls_key.iter_mut());
            for file in identity.chain(bundle).chain(api_tls) {
                if file.is_relative() {
                    *file = dir.join(&*file);
                }
            }
            // A SQLite path in the file is relative to the file too, like the keys; one from the
            // environment is the shell's, relative to the working directory.
            if !applied.iter().any(|var| var.ends_with("DATABASE_URL")) {
                config.database.url = sqlite_beside(&config.database.url, dir);
            }
        }
        Ok(config)
    }

    fn check(self) -> Result<Self, ConfigError> {
        let invalid = |key, message: &str| Err(ConfigError::Invalid { key, message: message.to_owned() });
        let name_len = self.node.name.trim().chars().count();
        if !(1..=200).contains(&name_len) {
            return invalid("node.name", "must be 1 to 200 characters");
        }
        if self.api.dev_token.as_deref().is_some_and(|t| !is_usable_token(t)) {
            return invalid("api.dev_token", "must be at least 16 printable ASCII characters without spaces");
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.api.body_limit_bytes) {
            return invalid("api.body_limit_bytes", "must be between 1024 (1 KiB) and 16777216 (16 MiB)");
        }
        if self.api.workers.is_some_and(|w| !(1..=64).contains(&w)) {
            return invalid("api.workers", "must be between 1 and 64");
        }
        if !(1..=10_000).contains(&self.api.max_streams) {
            return invalid("api.max_streams", "must be between 1 and 10000");
        }
        if !(1..=3_600).contains(&self.api.stream_stall_seconds) {
            return invalid("api.stream_stall_seconds", "must be between 1 and 3600");
        }
        if self.api.tls_cert.is_some() != self.api.tls_key.is_some() {
            return invalid("api.tls_cert", "api.tls_cert and api.tls_key are given together, or neither");
        }
        self.console.check()?;
        if !(1..=200).contains(&self.database.max_connections) {
            return invalid("database.max_connections", "must be between 1 and 200");
        }
        if DatabaseKind::of(&self.database.url).is_none() {
            return invalid("database.url", "must start with sqlite:// or postgres:// (or postgresql://)");
        }
        if self.federation.is_some() && self.identity.is_none() {
            return invalid("federation", "needs an [identity] section with the node's keys (see `lagesbild init`)");
        }
        if self.federation.as_ref().is_some_and(|f| !(1..=365).contains(&f.tls_overlap_days)) {
            return invalid("federation.tls_overlap_days", "must be between 1 and 365");
        }
        if let Some(auth) = &self.auth {
            let loopback =
                ["http://127.0.0.1", "http://localhost", "http://[::1]"].iter().any(|p| auth.issuer.starts_with(p));
            if !(auth.issuer.starts_with("https://") || loopback) {
                return invalid("auth.issuer", "must be an https:// URL (http only on loopback, for tests)");
            }
            if auth.audience.trim().is_empty() {
                return invalid("auth.audience", "must name the audience the provider issues tokens for");
            }
            let login =
                [&auth.client_id, &auth.client_secret, &auth.redirect_url].iter().filter(|v| v.is_some()).count();
            if login != 0 && login != 3 {
                return invalid(
                    "auth.client_id",
                    "sign-in for people needs client_id, client_secret and redirect_url together",
                );
            }
            if !(1..=168).contains(&auth.session_hours) {
                return invalid("auth.session_hours", "must be 1 to 168 hours");
            }
            only_roles("auth.role_map", auth.role_map.values())?;
        }
        only_roles("privacy.persons_visible_to", &self.privacy.persons_visible_to)?;
        only_roles("release.roles", &self.release.roles)?;
        if !(1..=10_080).contains(&self.audit.verify_minutes) {
            return invalid("audit.verify_minutes", "must be between 1 and 10080 (a week)");
        }
        if !(30..=3650).contains(&self.audit.retention_days) {
            return invalid("audit.retention_days", "must be between 30 and 3650 days");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.filter).is_err() {
            return invalid("log.filter", "is not a valid filter; try `info` or `lagesbild=debug,info`");
        }
        Ok(self)
    }

    /// The default body of an example file, for documentation and `init`.
    pub fn embedded_default_text() -> &'static str {
        EMBEDDED_DEFAULT
    }
}

/// Whether a static API token is strong enough to use: 16 or more printable ASCII characters.
pub fn is_usable_token(token: &str) -> bool {
    token.len() >= 16 && token.chars().all(|c| c.is_ascii_graphic())
}

/// The database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// `url` with a relative SQLite path made relative to `dir`; any other URL as it is.
fn sqlite_beside(url: &str, dir: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return url.to_owned();
    };
    let (file, query) = rest.split_once('?').map_or((rest, None), |(file, query)| (file, Some(query)));
    if file.is_empty() || file.starts_with(':') || Path::new(file).is_absolute() {
        return url.to_owned();
    }
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("sqlite://{}{query}", dir.join(file).display())
}

/// Applies the overrides present in `env` and returns the variables it applied.
fn apply_env(table: &mut toml::Table, env: &HashMap<String, String>) -> Result<Vec<&'static str>, ConfigError> {
    let mut applied = Vec::new();
    let mut unknown: Vec<&str> = env
        .keys()
        .map(String::as_str)
        .filter(|var| var.starts_with("LAGESBILD_"))
        .filter(|var| !ENV_NOT_CONFIG.contains(var) && !ENV_OVERRIDES.iter().any(|(known, ..)| known == var))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        let known: Vec<&str> = ENV_OVERRIDES.iter().map(|(var, ..)| *var).collect();
        return Err(ConfigError::Env {
            var: "LAGESBILD_*",
            message: format!("unknown variable(s) {}; the known ones are {}", unknown.join(", "), known.join(", ")),
        });
    }
    for &(var, section, key, kind) in ENV_OVERRIDES {
        let Some(raw) = env.get(var) else { continue };
        let value = match kind {
            Kind::Text => toml::Value::String(raw.clone()),
            Kind::Integer => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .map_err(|_| ConfigError::Env { var, message: format!("'{raw}' is not a whole number") })?,
            ),
        };
        let section_table = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| ConfigError::Env { var, message: format!("[{section}] in the file is not a table") })?;
        section_table.insert(key.to_owned(), value);
        applied.push(var);
    }
    Ok(applied)
}

fn default_overlap_days() -> u32 {
    14
}

fn default_claim_seconds() -> u32 {
    60
}

fn default_window_minutes() -> u32 {
    10
}

fn default_envelopes_per_second() -> u32 {
    5_000
}

fn default_requests_per_second() -> u32 {
    500
}

fn default_catch_up_seconds() -> u32 {
    300
}

fn default_sweep_seconds() -> u32 {
    60
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_streams() -> usize {
    200
}

fn default_stream_stall_seconds() -> u64 {
    30
}

fn default_body_limit() -> usize {
    256 * 1024
}

fn default_database_url() -> String {
    format!("sqlite://{DEFAULT_DATA_DIR}/lagesbild.db")
}

fn default_max_connections() -> u32 {
    8
}

fn default_log_filter() -> String {
    "info".to_owned()
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            dev_token: None,
            body_limit_bytes: default_body_limit(),
            workers: None,
            max_streams: default_max_streams(),
            stream_stall_seconds: default_stream_stall_seconds(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self { url: default_database_url(), max_connections: default_max_connections() }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        Self { format: LogFormat::default(), filter: default_log_filter() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_example_configuration_is_one_a_node_starts_with() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node.toml");
        let config = NodeConfig::load(Some(&path), &HashMap::new()).unwrap();
        assert_eq!(config.console.time_zone, "Europe/Stockholm");
        assert_eq!(config.console.sites[0].name, "Hagebyskolan");
        assert_eq!(config.console.municipalities[0].code, "0581");
    }

    #[test]
    fn a_console_section_that_cannot_work_stops_start_up_naming_its_key() {
        let refused = |section: &str| {
            let text = format!("[node]\norg_id = \"se-test\"\nname = \"Test\"\n[console]\n{section}\n");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("node.toml");
            std::fs::write(&path, text).unwrap();
            match NodeConfig::load(Some(&path), &HashMap::new()) {
                Err(ConfigError::Invalid { key, .. }) => key,
                other => panic!("{section}: {other:?}"),
            }
        };
        assert_eq!(refused("time_zone = \"Mars/Olympus\""), "console.time_zone");
        assert_eq!(refused("tile_url = \"http://tiles.example/{z}/{x}/{y}.png\""), "console.tile_url");
        assert_eq!(refused("tile_url = \"https://tiles.example/tile.png\""), "console.tile_url");
        assert_eq!(
            refused("[[console.sites]]\nname = \"\"\nkind = \"school\"\nlat = 58.6\nlon = 16.1"),
            "console.sites"
        );
    }

    #[test]
    fn embedded_default_is_sqlite_on_loopback() {
        let config = NodeConfig::load(None, &env(&[])).unwrap();
        assert_eq!(config.database.url, "sqlite://lagesbild-data/lagesbild.db");
        assert_eq!(config.api.listen, default_listen());
        assert_eq!(config.api.dev_token, None);
    }

    #[test]
    fn environment_overrides_the_file_and_lagesbild_beats_database_url() {
        let config = NodeConfig::load(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://a@localhost/x"),
                ("LAGESBILD_DATABASE_URL", "postgres://b@localhost/y"),
                ("LAGESBILD_API_BODY_LIMIT_BYTES", "4096"),
            ]),
        )
        .unwrap();
        assert_eq!(config.database.url, "postgres://b@localhost/y");
        assert_eq!(config.api.body_limit_bytes, 4096);
    }

    #[test]
    fn errors_name_the_key_or_variable() {
        let err = NodeConfig::load(None, &env(&[("LAGESBILD_API_BODY_LIMIT_BYTES", "lots")])).unwrap_err();
        assert!(err.to_string().contains("LAGESBILD_API_BODY_LIMIT_BYTES"), "{err}");
        let err = NodeConfig::load(None, &env(&[("LAGESBILD_API_BODY_LIMIT_BYTES", "10")])).unwrap_err();
        assert!(err.to_string().contains("api.body_limit_bytes"), "{err}");
        let err = NodeConfig::load(None, &env(&[("LAGESBILD_DATABSE_URL", "x")])).unwrap_err();
        assert!(err.to_string().contains("LAGESBILD_DATABSE_URL"), "{err}");
        let err = NodeConfig::load(None, &env(&[("LAGESBILD_NODE_ORG_ID", "Not An Id")])).unwrap_err();
        assert!(err.to_string().contains("org_id") && err.to_string().contains("LAGESBILD_NODE_ORG_ID"), "{err}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_with_their_line() {
        let dir = std::env::temp_dir().join(format!("lagesbild-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.toml");
        std::fs::write(&path, "[node]\norg_id = \"se-x\"\nname = \"X\"\n\n[api]\nlisten_addr = \"127.0.0.1:1\"\n")
            .unwrap();
        let err = NodeConfig::load(Some(&path), &env(&[])).unwrap_err().to_string();
        assert!(err.contains("listen_addr") && err.contains("line 6"), "{err}");
    }
}
