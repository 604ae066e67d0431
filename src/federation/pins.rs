//! The partners the federation listener accepts (by pin, or by organisation under a certificate
//! authority): the pins the federation listener accepts, cached in memory for the TLS handshake (which cannot
//! wait for a database) and reloaded from the store whenever partners change. A retiring pin's end
//! is checked against the clock at every handshake, so an overlap ends on time without a reload.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use super::refusals::RefusalTally;
use crate::clock::Clock;
use crate::crypto::tls::TrustedPeers;
use crate::domain::audit::AuditEvent;
use crate::domain::{OrgId, TlsPin};
use crate::store::{Store, StoreError};

/// How often every replica re-reads the partners' pins.
const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A pin's partner, and the pin's end if it is retiring.
type PinEntry = (OrgId, Option<DateTime<Utc>>);

/// Pin to partner, for partners that are not blocked.
pub struct PinCache {
    pins: RwLock<HashMap<TlsPin, PinEntry>>,
    clock: Arc<dyn Clock>,
    /// Where refused handshakes are counted to be audited (a flood of strangers costs a bounded
    /// number of entries and no memory).
    refusals: Option<Arc<RefusalTally>>,
}

impl std::fmt::Debug for PinCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.pins.read().map_or(0, |pins| pins.len());
        f.debug_struct("PinCache").field("pins", &count).finish()
    }
}

impl PinCache {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { pins: RwLock::default(), clock, refusals: None }
    }

    /// Audits refused handshakes through `tally` (the handshake cannot wait for a database).
    pub fn auditing_refusals(mut self, tally: Arc<RefusalTally>) -> Self {
        self.refusals = Some(tally);
        self
    }

    /// Replaces the cache with what the store says now.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let fresh = store.trusted_pins().await?.into_iter().map(|(pin, org, until)| (pin, (org, until))).collect();
        *self.pins.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    /// Reloads the cache every few seconds, so that with several replicas on one database a partner
    /// added or blocked through one of them is known to all.
    pub fn spawn_reload(self: Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            loop {
                tick.tick().await;
                if let Err(error) = self.reload(&store).await {
                    tracing::warn!(%error, "reloading partner pins failed; keeping the ones known");
                }
            }
        })
    }

    /// The partner a pin belongs to, if it is trusted now.
    pub fn partner_of(&self, pin: &TlsPin) -> Option<OrgId> {
        let now = self.clock.now();
        let pins = self.pins.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        pins.get(pin).filter(|(_, until)| until.is_none_or(|until| until > now)).map(|(org, _)| org.clone())
    }
}

impl TrustedPeers for PinCache {
    fn trusts_pin(&self, pin: &TlsPin) -> bool {
        self.partner_of(pin).is_some()
    }

    fn trusts_org(&self, org: &OrgId) -> bool {
        let pins = self.pins.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        pins.values().any(|(partner, _)| partner == org)
    }

    fn refused(&self, pin: Option<&TlsPin>, reason: &str) {
        let Some(tally) = &self.refusals else { return };
        let mut event = AuditEvent::new("federation.handshake_refused", "unknown").detail(reason);
        if let Some(pin) = pin {
            event = event.object(pin.as_str().as_bytes());
        }
        let source = pin.map_or("a client without a readable certificate", TlsPin::as_str);
        tally.note_and_write(source, reason, event);
    }
}
