//! The node's identity: its signing key, its TLS key and certificate, and the node card that ties
//! them to its organisation. `init` creates them, start-up loads and cross-checks them (a missing or
//! mismatched file stops the node; it never makes itself a new identity), `rotate` replaces the keys
//! with a card signed by both the old and the new key. Cards from partners are verified here too.

mod card;
mod files;

pub use card::{CardError, sign_card, verify_card};
pub use files::{InitOptions, NodeKeys, RotateOutcome, init, reissue_card, rotate};

use crate::crypto::KeyFileError;

/// Why the node's identity cannot be made or used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error("the node card {path}: {reason}")]
    Card { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}
