//! Keeping the audit trail: entries past their retention are pruned behind a checkpoint the node
//! signs (the sequence number and hash of the last entry pruned), so the rest of the chain still
//! verifies, and nobody without the node's key can forge a checkpoint to hide a deletion. Pruning
//! needs the node's identity; a node without one keeps every entry. The node also verifies the
//! whole trail on a schedule, and keeps the outcome for its metrics (an operator's alert).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::crypto::jws::{self, Jws};
use crate::crypto::keys::{PublicKey, SigningKey};
use crate::domain::audit::{AuditEvent, ChainBreak};
use crate::store::{CheckpointRecord, Store, StoreError};

/// The JWS `typ` of a checkpoint.
pub const CHECKPOINT_TYPE: &str = "lagesbild-audit-checkpoint+json";

/// What a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    seq: i64,
    hash: String,
    pruned_before: DateTime<Utc>,
}

/// Why the trail does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Broken(#[from] ChainBreak),
    #[error("the checkpoint at entry {seq} is not signed by this node's key: {reason}")]
    Checkpoint { seq: i64, reason: String },
    #[error(
        "entries were pruned behind a signed checkpoint; give the node's configuration ([identity]) to check its signature"
    )]
    NoKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the whole trail: the checkpoint's signature (if entries were pruned), then the chain.
pub async fn verify(store: &Store, node_key: Option<PublicKey>) -> Result<u64, VerifyError> {
    if let Some(checkpoint) = store.latest_checkpoint().await? {
        let key = node_key.ok_or(VerifyError::NoKey)?;
        let bad = |reason: String| VerifyError::Checkpoint { seq: checkpoint.seq, reason };
        let signed = Jws::parse(checkpoint.statement.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let verified = signed
            .verify(CHECKPOINT_TYPE, |kid| (kid == key.key_id()).then_some(key))
            .map_err(|e| bad(e.to_string()))?;
        let stated: Checkpoint = serde_json::from_slice(&verified.payload).map_err(|e| bad(e.to_string()))?;
        if (stated.seq, stated.hash.as_str()) != (checkpoint.seq, checkpoint.hash.as_str()) {
            return Err(bad("the stored checkpoint differs from what was signed".into()));
        }
    }
    Ok(store.verify_audit().await??)
}

/// Prunes the entries older than `retention` at `now` behind a signed checkpoint. Returns the
/// number of entries pruned.
pub async fn prune(
    store: &Store,
    key: &SigningKey,
    now: DateTime<Utc>,
    retention: Duration,
) -> Result<u64, StoreError> {
    let before = now - retention;
    let Some((seq, hash)) = store.audit_prune_point(before).await? else { return Ok(0) };
    let statement = Checkpoint { seq, hash: hash.clone(), pruned_before: before };
    let signed = jws::sign(&serde_json::to_vec(&statement).unwrap_or_default(), CHECKPOINT_TYPE, &[key]);
    let record = CheckpointRecord { seq, hash, at: now, statement: signed.to_json() };
    let event = AuditEvent::new("audit.pruned", "node")
        .object(record.statement.as_bytes())
        .detail(format!("entries up to {seq}"));
    let pruned = store.prune_audit(&record, &event).await?;
    tracing::info!(through = seq, pruned, "audit entries past their retention pruned behind a signed checkpoint");
    Ok(pruned)
}

/// Prunes once an hour, from start-up on.
pub fn spawn_retention(
    store: Store,
    key: Arc<SigningKey>,
    clock: Arc<dyn Clock>,
    retention: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(StdDuration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Err(error) = prune(&store, &key, clock.now(), retention).await {
                tracing::warn!(%error, "pruning the audit trail failed; will retry");
            }
        }
    })
}

/// The outcome of the node's latest verification of its whole trail.
#[derive(Debug, Default)]
pub struct Verification {
    latest: Mutex<Option<(bool, DateTime<Utc>)>>,
}

impl Verification {
    /// Whether the trail verified, and when that was found; nothing before the first run ends.
    pub fn latest(&self) -> Option<(bool, DateTime<Utc>)> {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, intact: bool, at: DateTime<Utc>) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some((intact, at));
    }
}

/// Verifies the whole trail every `every`, from start-up on, and records the outcome. A broken
/// chain is logged as an error; the metrics carry it to the operator's alerts.
pub fn spawn_verification(
    store: Store,
    node_key: Option<PublicKey>,
    clock: Arc<dyn Clock>,
    every: StdDuration,
    outcome: Arc<Verification>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match verify(&store, node_key).await {
                Ok(entries) => {
                    tracing::debug!(entries, "the audit trail verifies");
                    outcome.record(true, clock.now());
                }
                Err(VerifyError::Store(error)) => {
                    tracing::warn!(%error, "verifying the audit trail failed; will retry")
                }
                Err(error) => {
                    tracing::error!(%error, "the audit trail does not verify");
                    outcome.record(false, clock.now());
                }
            }
        }
    })
}
