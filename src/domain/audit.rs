//! The audit trail's rules: each entry records one action by ids and hashes (never contents), and
//! holds the hash of the entry before it, so a changed, deleted or reordered entry breaks the
//! chain. Computing and checking the chain is pure; the store appends and reads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, without its time and place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// Such as `report.created`, `partner.blocked`, `agreement.signed`.
    pub event: String,
    /// Who acted: a user, a system, or `node` for the node itself.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<String>,
    /// The SHA-256 of the object concerned (an envelope, a card, a document), hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_hash: Option<String>,
    /// A short reason (why something was refused); never report contents or personal data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(event: &str, actor: &str) -> Self {
        Self {
            event: event.to_owned(),
            actor: actor.to_owned(),
            partner: None,
            report: None,
            agreement: None,
            object_hash: None,
            detail: None,
        }
    }

    pub fn partner(mut self, partner: impl ToString) -> Self {
        self.partner = Some(partner.to_string());
        self
    }

    pub fn report(mut self, report: impl ToString) -> Self {
        self.report = Some(report.to_string());
        self
    }

    pub fn agreement(mut self, agreement: impl ToString) -> Self {
        self.agreement = Some(agreement.to_string());
        self
    }

    pub fn object(mut self, bytes: &[u8]) -> Self {
        self.object_hash = Some(sha256_hex(bytes));
        self
    }

    pub fn detail(mut self, detail: impl ToString) -> Self {
        self.detail = Some(detail.to_string());
        self
    }
}

/// One entry of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// The entry that follows `prev_hash` at `seq`, with its hash.
    pub fn chain(seq: i64, at: DateTime<Utc>, event: AuditEvent, prev_hash: &str) -> Self {
        let hash = entry_hash(seq, at, &event, prev_hash);
        Self { seq, at, event, prev_hash: prev_hash.to_owned(), hash }
    }
}

/// The hash of an entry: SHA-256 over its fields in a fixed order, each length-prefixed so that no
/// two different entries can be written as the same bytes.
fn entry_hash(seq: i64, at: DateTime<Utc>, event: &AuditEvent, prev_hash: &str) -> String {
    let fields = [
        Some(seq.to_string()),
        Some(at.timestamp_micros().to_string()),
        Some(event.event.clone()),
        Some(event.actor.clone()),
        event.partner.clone(),
        event.report.clone(),
        event.agreement.clone(),
        event.object_hash.clone(),
        event.detail.clone(),
        Some(prev_hash.to_owned()),
    ];
    let mut bytes = Vec::new();
    for field in fields {
        match field {
            Some(text) => {
                bytes.extend_from_slice(&(text.len() as u64).to_be_bytes());
                bytes.extend_from_slice(text.as_bytes());
            }
            None => bytes.extend_from_slice(&u64::MAX.to_be_bytes()),
        }
    }
    sha256_hex(&bytes)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit chain breaks at entry {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// Checks entries in order, from the anchor (the sequence number and hash the chain continues from:
/// `(0, GENESIS)`, or a checkpoint's). Returns how many entries were checked.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>, anchor: (i64, &str)) -> Result<u64, ChainBreak> {
    let (mut seq, mut hash) = (anchor.0, anchor.1.to_owned());
    let mut count = 0;
    for entry in entries {
        if entry.seq != seq + 1 {
            return Err(ChainBreak {
                seq: entry.seq,
                reason: format!("expected entry {} next: an entry is missing or out of order", seq + 1),
            });
        }
        if entry.prev_hash != hash {
            return Err(ChainBreak {
                seq: entry.seq,
                reason: "it does not hold the hash of the entry before it".into(),
            });
        }
        if entry_hash(entry.seq, entry.at, &entry.event, &entry.prev_hash) != entry.hash {
            return Err(ChainBreak {
                seq: entry.seq,
                reason: "its content does not match its hash: it was changed".into(),
            });
        }
        (seq, hash) = (entry.seq, entry.hash.clone());
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let entry = AuditEntry::chain(
                    seq,
                    DateTime::UNIX_EPOCH,
                    AuditEvent::new("report.created", "user").report(seq),
                    &prev,
                );
                prev = entry.hash.clone();
                entry
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_every_kind_of_tampering_breaks_it() {
        let entries = chain(5);
        assert_eq!(verify(&entries, (0, GENESIS)), Ok(5));
        let mut changed = entries.clone();
        changed[2].event.actor = "someone else".into();
        assert_eq!(verify(&changed, (0, GENESIS)).unwrap_err().seq, 3);
        let mut deleted = entries.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, (0, GENESIS)).unwrap_err().seq, 3);
        let mut reordered = entries.clone();
        reordered.swap(1, 2);
        assert_eq!(verify(&reordered, (0, GENESIS)).unwrap_err().seq, 3);
        // A pruned chain verifies from its checkpoint.
        assert_eq!(verify(&entries[2..], (2, &entries[1].hash)), Ok(3));
    }
}
