//! Group commit of new reports. Filing a report is one durable commit (its first version, its head
//! row, its audit entry and its envelopes for partners), and a commit costs a disk flush whatever it
//! holds. So reports filed at the same moment are written together: each filing joins a queue, the
//! first filer to get the turn writes everything queued in one transaction, and every filer learns
//! its own outcome. A lone filing is a batch of one, written at once; under load the batches grow by
//! themselves, to at most [`MAX_BATCH`].
//!
//! The batch is all or nothing, so if it fails each filing is written again on its own: one bad
//! filing answers its own error and never takes its neighbours down with it. The write runs in a
//! task of its own, so a filer that goes away (a client that hangs up) cannot abandon the others'
//! reports halfway.

use std::sync::{Arc, Mutex, PoisonError};

use sqlx::types::Json;
use tokio::sync::oneshot;

use super::audit::append_audit_all;
use super::outbox::{QueuedEnvelope, queue_envelopes};
use super::release::{Hold, hold_version};
use super::reports::{HeadRow, INSERT_HEAD, INSERT_VERSION, bind_head, insert_version};
use super::{StoreError, in_write_tx};
use crate::domain::Report;
use crate::domain::audit::AuditEvent;

/// The most reports one transaction writes.
const MAX_BATCH: usize = 256;

/// Filings waiting to be written, and the turn to write them.
#[derive(Default)]
pub(super) struct FilingQueue {
    waiting: Mutex<Vec<Filing>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for FilingQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.waiting.lock().map_or(0, |w| w.len());
        f.debug_struct("FilingQueue").field("waiting", &waiting).finish()
    }
}

/// One report to be filed, and where its outcome goes.
struct Filing {
    report: Report,
    audit: AuditEvent,
    envelopes: Vec<QueuedEnvelope>,
    /// Set when the report waits for a four-eyes release (and `envelopes` is empty).
    hold: Option<Hold>,
    outcome: oneshot::Sender<Result<(), StoreError>>,
}

impl super::Store {
    /// Stores version 1 of a new report, its audit entry and its envelopes for partners (or its
    /// hold for a release): all or nothing (a transactional outbox), committed together with
    /// whatever else is being filed at the same moment.
    pub async fn insert_report(
        &self,
        report: &Report,
        audit: &AuditEvent,
        envelopes: &[QueuedEnvelope],
        hold: Option<&Hold>,
    ) -> Result<(), StoreError> {
        let (outcome, mut answer) = oneshot::channel();
        let filing = Filing {
            report: report.clone(),
            audit: audit.clone(),
            envelopes: envelopes.to_vec(),
            hold: hold.cloned(),
            outcome,
        };
        self.filings.waiting.lock().unwrap_or_else(PoisonError::into_inner).push(filing);
        // Either another filer's turn writes this filing, or this filer gets the turn and writes
        // what is waiting, oldest first, until this filing is written.
        loop {
            let turn = tokio::select! {
                biased;
                written = &mut answer => return written.unwrap_or_else(|_| Err(unwritten())),
                turn = self.filings.turn.clone().lock_owned() => turn,
            };
            let batch = self.next_batch();
            if batch.is_empty() {
                continue;
            }
            let store = self.clone();
            let writer = tokio::spawn(async move {
                let _turn = turn;
                store.write_batch(batch).await;
            });
            if writer.await.is_err() {
                tracing::error!("writing a batch of filed reports stopped abnormally");
            }
        }
    }

    /// Takes up to [`MAX_BATCH`] waiting filings, oldest first.
    fn next_batch(&self) -> Vec<Filing> {
        let mut waiting = self.filings.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let take = waiting.len().min(MAX_BATCH);
        waiting.drain(..take).collect()
    }

    /// Writes `batch` in one transaction, or, if that fails, each filing in its own.
    async fn write_batch(&self, batch: Vec<Filing>) {
        if batch.len() > 1 {
            match self.write_filings(&batch).await {
                Ok(()) => {
                    for filing in batch {
                        let _ = filing.outcome.send(Ok(()));
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, reports = batch.len(), "a batch of filed reports failed; writing each alone")
                }
            }
        }
        for filing in batch {
            let written = self.write_filings(std::slice::from_ref(&filing)).await;
            let _ = filing.outcome.send(written);
        }
    }

    /// One transaction: every filing's version and head, their audit entries in order, and their
    /// envelopes.
    async fn write_filings(&self, filings: &[Filing]) -> Result<(), StoreError> {
        let audits: Vec<AuditEvent> = filings.iter().map(|f| f.audit.clone()).collect();
        let at = filings.iter().map(|f| f.report.updated_at).max().unwrap_or_default();
        in_write_tx!(self, |tx| {
            for filing in filings {
                let head = HeadRow::of(&filing.report);
                insert_version!(&mut *tx, &filing.report, head.updated_at_ms)?;
                bind_head!(sqlx::query(INSERT_HEAD), &head).execute(&mut *tx).await?;
            }
            append_audit_all!(tx, &audits, at);
            for filing in filings {
                if let Some(hold) = &filing.hold {
                    hold_version!(tx, &filing.report, hold);
                }
                queue_envelopes!(tx, &filing.envelopes, filing.report.updated_at);
            }
        });
        Ok(())
    }
}

/// The answer when a filing's writer went away without one (it panicked): the report may not be
/// stored, and the client should try again.
fn unwritten() -> StoreError {
    StoreError::NotReady("the report could not be written; try again".into())
}
