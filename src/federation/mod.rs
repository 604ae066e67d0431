//! Federation: the listener partner nodes call (mutual TLS, pinned keys only, on its own port), the
//! client this node calls them with, and the registry of partners built from their signed cards;
//! the life of agreements between nodes (`agreements`), and the exchange under them: sharing
//! through the outbox, delivery, receiving, catch-up and the sweep that ends sharing.
//! The partner behind a request is always the one whose pinned key presented the TLS client
//! certificate; nothing a client sends can choose it.

pub mod agreements;
pub mod alerts;
pub mod amendments;
pub mod announce;
pub mod catch_up;
pub mod client;
pub mod delivery;
pub mod docs;
pub mod frameworks;
pub mod inbox;
pub mod lifecycle;
pub mod listener;
pub mod pins;
pub mod refusals;
pub mod registry;
pub mod requests;
pub mod reshare;
pub mod sharing;
pub mod sweep;

use std::sync::Arc;

use chrono::Duration;

use crate::clock::Clock;
use crate::config::FederationSection;
use crate::identity::NodeKeys;
use crate::store::Store;

/// What the federation parts of a node share.
pub struct Federation {
    pub keys: NodeKeys,
    /// Whether partners' certificates are trusted by pin or by a certificate authority.
    pub trust: crate::crypto::tls::PeerTrust,
    pub pins: Arc<pins::PinCache>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub settings: ExchangeSettings,
    /// The agreements in force, checked once per document.
    pub agreements: sharing::ActiveAgreements,
    /// Wakes the delivery worker when envelopes were queued.
    pub outbox: delivery::Wake,
    /// Wakes the lifecycle worker when an agreement's document was queued for its parties.
    pub lifecycle: lifecycle::Wake,
    /// Clients for partners, kept so connections are reused.
    pub clients: client::ClientCache,
    /// Per-partner budgets of the federation listener: requests, and envelopes delivered.
    pub limits: inbox::RateLimits,
    /// Partners whose feed this node is reading to catch up.
    pub catching_up: catch_up::CatchingUp,
    /// Refused handshakes and deferred envelopes, counted so a flood adds few audit entries.
    pub refusals: Arc<refusals::RefusalTally>,
}

/// How the exchange behaves, from `[federation]`.
#[derive(Debug, Clone)]
pub struct ExchangeSettings {
    pub claim_lease: Duration,
    pub window: Duration,
    pub requests_per_second: u32,
    pub envelopes_per_second: u32,
    pub catch_up_every: std::time::Duration,
    pub sweep_every: std::time::Duration,
}

impl ExchangeSettings {
    pub fn from_config(section: &FederationSection) -> Self {
        Self {
            claim_lease: Duration::seconds(i64::from(section.claim_seconds.max(1))),
            window: Duration::minutes(i64::from(section.envelope_window_minutes.max(1))),
            requests_per_second: section.requests_per_second.max(1),
            envelopes_per_second: section.envelopes_per_second.max(1),
            catch_up_every: std::time::Duration::from_secs(u64::from(section.catch_up_seconds.max(1))),
            sweep_every: std::time::Duration::from_secs(u64::from(section.sweep_seconds.max(1))),
        }
    }
}

impl Federation {
    /// A federation handle for command-line tools working on a node's database: it signs and
    /// queues envelopes for the running node to deliver, and never listens. `None` when the node
    /// has no `[federation]`.
    pub fn for_tools(
        config: &crate::config::NodeConfig,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, crate::identity::IdentityError> {
        let Some(section) = &config.federation else { return Ok(None) };
        let keys = NodeKeys::load(config, clock.now())?;
        let pins = Arc::new(pins::PinCache::new(clock.clone()));
        let refusals = Arc::new(refusals::RefusalTally::new(clock.clone()));
        let settings = ExchangeSettings::from_config(section);
        let trust = crate::crypto::tls::PeerTrust::Pins;
        Ok(Some(Self::new(keys, trust, (pins, refusals), store, clock, settings)))
    }

    /// `pins` must audit its refused handshakes through `refusals` (see [`pins::PinCache::auditing_refusals`]).
    pub fn new(
        keys: NodeKeys,
        trust: crate::crypto::tls::PeerTrust,
        (pins, refusals): (Arc<pins::PinCache>, Arc<refusals::RefusalTally>),
        store: Store,
        clock: Arc<dyn Clock>,
        settings: ExchangeSettings,
    ) -> Self {
        let limits = inbox::RateLimits::new(settings.requests_per_second, settings.envelopes_per_second);
        Self {
            keys,
            trust,
            pins,
            store,
            clock,
            settings,
            agreements: sharing::ActiveAgreements::default(),
            outbox: delivery::Wake::default(),
            lifecycle: lifecycle::Wake::default(),
            clients: client::ClientCache::default(),
            limits,
            catching_up: catch_up::CatchingUp::default(),
            refusals,
        }
    }
}
