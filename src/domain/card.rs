//! A node card: who a node is (organisation, name, federation URL), the Ed25519 key it signs with,
//! and the pins of its TLS keys, signed by the node itself. Partners exchange cards out of band and
//! then know each other by these keys alone. This module holds the card's content and its rules;
//! signing and verifying it is `identity`'s work.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{OrgId, TlsPin};
use super::validation::ValidationErrors;

/// The JWS `typ` of a signed node card.
pub const CARD_TYPE: &str = "lagesbild-node-card+json";

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeCard {
    pub org_id: OrgId,
    #[schema(example = "Norrköpings kommun")]
    pub name: String,
    /// Where partners reach the node's federation listener (https).
    #[schema(example = "https://lagesbild.norrkoping.se:8443")]
    pub federation_url: String,
    /// The node's Ed25519 public key, base64url (the JWK `x`).
    pub signing_key: String,
    /// After a key rotation: the key this one replaces, which also signs the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signing_key: Option<String>,
    /// Pins of the TLS keys the node presents: the current one first (no `until`), then keys being
    /// retired, each accepted until its `until`.
    pub tls_pins: Vec<CardPin>,
    pub issued_at: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// One TLS key pin of a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardPin {
    pub pin: TlsPin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// How far in the future a card's issue time may lie, for clocks that are a little off.
const ISSUED_AT_SLACK: Duration = Duration::minutes(5);

impl NodeCard {
    /// Checks the card's own rules at `now`.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        errors.check_text("name", &self.name, 1, 200, false);
        errors.check(
            self.federation_url.starts_with("https://")
                && self.federation_url.len() <= 500
                && !self.federation_url.chars().any(|c| c.is_whitespace() || c.is_control()),
            "federation_url",
            "must be an https:// URL of at most 500 characters",
        );
        errors.check(
            decoded_len(&self.signing_key) == Some(32),
            "signing_key",
            "must be an Ed25519 public key: 32 bytes in base64url",
        );
        if let Some(previous) = &self.previous_signing_key {
            errors.check(decoded_len(previous) == Some(32), "previous_signing_key", "must be 32 bytes in base64url");
        }
        errors.check((1..=4).contains(&self.tls_pins.len()), "tls_pins", "must list 1 to 4 pins");
        if let Some(current) = self.tls_pins.first() {
            errors.check(current.until.is_none(), "tls_pins[0].until", "the current pin has no end");
        }
        for (i, pin) in self.tls_pins.iter().enumerate().skip(1) {
            errors.check(pin.until.is_some(), format!("tls_pins[{i}].until"), "a retiring pin needs an end");
        }
        errors.check(self.issued_at <= now + ISSUED_AT_SLACK, "issued_at", "lies in the future");
        errors.check(self.valid_until > now, "valid_until", "has passed: the card has expired");
        errors.into_result(())
    }

    /// The pins that are accepted at `now`.
    pub fn live_pins(&self, now: DateTime<Utc>) -> impl Iterator<Item = &TlsPin> {
        self.tls_pins.iter().filter(move |p| p.until.is_none_or(|until| until > now)).map(|p| &p.pin)
    }
}

fn decoded_len(b64url: &str) -> Option<usize> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64url).ok().map(|bytes| bytes.len())
}
