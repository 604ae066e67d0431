//! Starting and stopping a node: open the store, bind the user API listener, run the HTTP server.
//! The CLI's `serve` and every integration test start nodes through [`start`], so tests exercise the
//! same wiring that production runs.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::middleware::{Compress, from_fn};
use actix_web::web::Data;
use actix_web::{App, HttpServer};

use crate::api::{self, AppState, NodeIdentity, TokenCheck};
use crate::audit_retention;
use crate::auth::{Login, TokenValidator};
use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::console::ConsoleSettings;
use crate::crypto::keys::SigningKey;
use crate::crypto::tls::{PeerTrust, TlsIdentity, api_server_config};
use crate::federation::pins::PinCache;
use crate::federation::refusals::RefusalTally;
use crate::federation::{ExchangeSettings, Federation, announce, catch_up, delivery, lifecycle, listener, sweep};
use crate::http::{self, BodyLimit};
use crate::identity::{IdentityError, NodeKeys};
use crate::metrics::Metrics;
use crate::picture_feed::PictureFeed;
use crate::store::{Store, StoreError};
use crate::webhooks::Webhooks;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr} ({key}): {source}")]
    Listen { key: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("the node's identity cannot be used: {0}")]
    Identity(#[from] IdentityError),
    #[error("[auth] cannot be used: {0}")]
    Auth(String),
    #[error("api.tls_cert and api.tls_key cannot be used: {0}")]
    ApiTls(String),
}

/// The user API's TLS, when the configuration gives it a certificate.
fn api_tls(config: &NodeConfig) -> Result<Option<rustls::ServerConfig>, StartError> {
    let (Some(cert), Some(key)) = (&config.api.tls_cert, &config.api.tls_key) else { return Ok(None) };
    let identity = TlsIdentity::load(cert, key).map_err(|e| StartError::ApiTls(e.to_string()))?;
    api_server_config(&identity).map(Some).map_err(|e| StartError::ApiTls(e.to_string()))
}

/// A node that is serving.
pub struct RunningNode {
    /// Where the user API listens (the real port when the configuration asked for port 0).
    pub api_addr: SocketAddr,
    /// Where the federation listener listens, if federation is configured.
    pub federation_addr: Option<SocketAddr>,
    pub store: Store,
    /// The federation parts of the node, if federation is configured.
    pub federation: Option<Arc<Federation>>,
    servers: Vec<(ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)>,
    /// Workers: card announcement, audit retention.
    background: Vec<tokio::task::JoinHandle<()>>,
    /// The picture's changes, which the live streams follow.
    feed: Arc<PictureFeed>,
}

/// Opens the store, applies migrations and starts serving.
pub async fn start(config: &NodeConfig, clock: Arc<dyn Clock>) -> Result<RunningNode, StartError> {
    let store = Store::open(&config.database).await?;
    let workers = config.api.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let federation = match &config.federation {
        Some(section) => {
            let keys = NodeKeys::load(config, clock.now())?;
            let refusals = Arc::new(RefusalTally::new(clock.clone()));
            let pins = Arc::new(PinCache::new(clock.clone()).auditing_refusals(refusals.clone()));
            pins.reload(&store).await?;
            let trust = match &section.ca_bundle {
                Some(bundle) => PeerTrust::load_authority(bundle).map_err(IdentityError::from)?,
                None => PeerTrust::Pins,
            };
            let settings = ExchangeSettings::from_config(section);
            let federation =
                Arc::new(Federation::new(keys, trust, (pins, refusals), store.clone(), clock.clone(), settings));
            let addr = section.listen;
            let (server, bound) = listener::bind(federation.clone(), addr, workers)
                .map_err(|source| StartError::Listen { key: "federation.listen", addr, source })?;
            Some((federation, server, bound))
        }
        None => None,
    };
    let validator = match &config.auth {
        Some(auth) => Some(Arc::new(TokenValidator::new(auth, clock.clone()).map_err(StartError::Auth)?)),
        None => None,
    };
    let login = match &config.auth {
        Some(
            auth @ crate::config::AuthSection {
                client_id: Some(id),
                client_secret: Some(secret),
                redirect_url: Some(url),
                ..
            },
        ) => {
            let map = Arc::new(crate::auth::token::role_map(auth).map_err(StartError::Auth)?);
            Some(Arc::new(
                Login::new(&auth.issuer, id, secret, url, &auth.roles_claim, map, auth.session_hours)
                    .map_err(StartError::Auth)?,
            ))
        }
        _ => None,
    };
    // With a provider configured the static token is refused, unless explicitly kept.
    let dev_token = config.api.dev_token.as_deref().filter(|_| config.auth.as_ref().is_none_or(|a| a.allow_dev_token));
    let metrics = Arc::new(Metrics::new());
    let feed = PictureFeed::start(
        store.clone(),
        config.api.max_streams,
        std::time::Duration::from_secs(config.api.stream_stall_seconds),
    )
    .await?;
    let body_limit = BodyLimit(config.api.body_limit_bytes);
    let audit = Arc::new(audit_retention::Verification::default());
    let state = Data::new(AppState {
        store: store.clone(),
        clock: clock.clone(),
        node: NodeIdentity { org_id: config.node.org_id.clone(), name: config.node.name.clone() },
        tokens: TokenCheck::new(dev_token),
        validator,
        login,
        metrics: metrics.clone(),
        federation: federation.as_ref().map(|(f, ..)| f.clone()),
        feed: feed.clone(),
        webhooks: config.webhooks.clone(),
        audit: audit.clone(),
        persons: config.privacy.persons_access(),
        release: config.release.rule(),
    });
    if dev_token.is_none() && config.auth.is_none() {
        tracing::warn!("neither [auth] nor api.dev_token is set: every /api/v1 route will refuse requests");
    }
    let api_tls = api_tls(config)?;
    let addr = config.api.listen;
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Listen { key: "api.listen", addr, source })?;
    let api_addr = listener.local_addr().map_err(|source| StartError::Listen { key: "api.listen", addr, source })?;
    let console = Data::new(ConsoleSettings::new(config, dev_token.is_some()));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(console.clone())
            .app_data(Data::from(metrics.clone()))
            .app_data(body_limit)
            .wrap(Compress::default())
            .wrap(from_fn(http::observe))
            .configure(|cfg| crate::console::routes(cfg, &console))
            .configure(api::routes)
    })
    .workers(workers)
    // Without it a small write (a stream's event, a short answer) waits for the client's delayed
    // acknowledgement of the one before: up to 40 ms.
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(10);
    let server = match api_tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls),
        None => server.listen(listener),
    }
    .map_err(|source| StartError::Listen { key: "api.listen", addr, source })?
    .run();
    let mut servers = vec![(server.handle(), tokio::spawn(server))];
    let webhooks = Arc::new(Webhooks {
        store: store.clone(),
        feed: feed.clone(),
        clock: clock.clone(),
        settings: config.webhooks.clone(),
    });
    let mut background = vec![feed.clone().spawn(), webhooks.spawn()];
    let mut node_key = None;
    if let Some(identity) = &config.identity {
        let key = Arc::new(SigningKey::load(&identity.signing_key).map_err(IdentityError::from)?);
        node_key = Some(key.public());
        let retention = chrono::Duration::days(i64::from(config.audit.retention_days));
        background.push(audit_retention::spawn_retention(store.clone(), key, clock.clone(), retention));
    }
    let every = std::time::Duration::from_secs(60 * u64::from(config.audit.verify_minutes));
    background.push(audit_retention::spawn_verification(store.clone(), node_key, clock.clone(), every, audit));
    let mut federation_addr = None;
    let mut running_federation = None;
    if let Some((federation, server, bound)) = federation {
        servers.push((server.handle(), tokio::spawn(server)));
        federation_addr = Some(bound);
        background.push(federation.pins.clone().spawn_reload(store.clone()));
        background.push(federation.refusals.clone().spawn_writer(store.clone()));
        background.push(announce::spawn(federation.clone()));
        background.push(delivery::spawn(federation.clone()));
        background.push(lifecycle::spawn(federation.clone()));
        background.push(catch_up::spawn(federation.clone()));
        background.push(sweep::spawn(federation.clone()));
        running_federation = Some(federation);
    }
    Ok(RunningNode { api_addr, federation_addr, store, federation: running_federation, servers, background, feed })
}

impl RunningNode {
    /// Stops accepting, lets requests in flight finish, and closes the database.
    pub async fn stop(self) {
        self.feed.close();
        for worker in self.background {
            worker.abort();
        }
        if let Some(federation) = &self.federation {
            federation.refusals.flush(&self.store).await;
        }
        for (handle, task) in self.servers {
            handle.stop(true).await;
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "server task ended abnormally");
            }
        }
        self.store.close().await;
    }

    /// Serves until Ctrl-C or SIGTERM, then stops gracefully.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        shutdown_signal()?.await;
        tracing::info!("stopping: finishing requests in flight");
        self.stop().await;
        Ok(())
    }
}

/// Takes over Ctrl-C and SIGTERM at once (from then on they stop the node gracefully, never kill
/// it), and answers a future that ends when one arrives.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
