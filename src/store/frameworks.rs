//! Frameworks in storage, beyond the agreements this node is a party to: which nodes hold one of
//! this node's frameworks (they hold it for a local agreement under it, and are told when it is
//! revoked), and how many frameworks a partner has handed this node to hold.

use chrono::{DateTime, Utc};

use super::audit::append_audit;
use super::{StoreError, in_write_tx, on_pool};
use crate::domain::audit::AuditEvent;

/// The most nodes recorded as holding one framework: far above the police districts of a country.
pub const MAX_HOLDERS: i64 = 1_000;

impl super::Store {
    /// Records that `holder` holds `framework`, with `audit`; false if it was recorded already or
    /// the framework has as many holders as it may.
    pub async fn add_framework_holder(
        &self,
        framework: &str,
        holder: &str,
        audit: &AuditEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let added = in_write_tx!(self, |tx| {
            let added = sqlx::query(
                "INSERT INTO framework_holders (framework_id, holder, registered_at_ms) \
                 SELECT $1, $2, $3 WHERE (SELECT COUNT(*) FROM framework_holders WHERE framework_id = $1) < $4 \
                 ON CONFLICT (framework_id, holder) DO NOTHING",
            )
            .bind(framework)
            .bind(holder)
            .bind(now.timestamp_millis())
            .bind(MAX_HOLDERS)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added == 1 {
                append_audit!(tx, audit, now);
            }
            added
        });
        Ok(added == 1)
    }

    /// The nodes that hold `framework`, by organisation id.
    pub async fn framework_holders(&self, framework: &str) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT holder FROM framework_holders WHERE framework_id = $1 ORDER BY holder")
                .bind(framework)
                .fetch_all(p)
                .await?
        }))
    }

    /// How many frameworks `partner` handed this node to hold.
    pub async fn frameworks_held_from(&self, partner: &str) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM agreements WHERE held_as = 'framework' AND proposed_by = $1")
                .bind(partner)
                .fetch_one(p)
                .await?
        }))
    }
}
