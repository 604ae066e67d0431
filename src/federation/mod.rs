//! Federation: the listener partner nodes call (mutual TLS, pinned keys only, on its own port), the
//! client this node calls them with, and the registry of partners built from their signed cards.
//! The partner behind a request is always the one whose pinned key presented the TLS client
//! certificate; nothing a client sends can choose it.

pub mod announce;
pub mod client;
pub mod docs;
pub mod listener;
pub mod pins;
pub mod registry;

use std::sync::Arc;

use crate::clock::Clock;
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
}
