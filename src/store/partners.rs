//! Partners in storage: what their cards said, whether they are blocked, and how the last contact
//! went; their TLS pins in a table of their own whose key makes each pin belong to one partner.

use chrono::{DateTime, Utc};

use super::audit::append_audit;
use super::{StoreError, in_write_tx, on_pool, time};
use crate::domain::audit::AuditEvent;
use crate::domain::{OrgId, TlsPin};

/// A partner node as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRecord {
    pub org_id: OrgId,
    pub name: String,
    pub federation_url: String,
    /// Base64url Ed25519 public key.
    pub signing_key: String,
    /// The signed card as received (JWS JSON).
    pub card: String,
    pub card_issued_at: DateTime<Utc>,
    pub pins: Vec<(TlsPin, Option<DateTime<Utc>>)>,
    pub blocked: bool,
    pub added_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A pin row: partner, pin, end of overlap.
type PinRow = (String, String, Option<i64>);

type PartnerRow =
    (String, String, String, String, String, i64, bool, i64, i64, Option<i64>, Option<String>, Option<i64>);

const PARTNER_COLUMNS: &str = "org_id, name, federation_url, signing_key, card, card_issued_at_ms, blocked, \
     added_at_ms, updated_at_ms, last_contact_at_ms, last_error, last_error_at_ms";

/// Records a contact with partner `$org` at `$at` on `$executor` (a pool or a transaction):
/// successful when `$error` is `None`, else the error and its time.
macro_rules! record_contact {
    ($executor:expr, $org:expr, $at:expr, $error:expr) => {{
        let (org, at, error): (&crate::domain::OrgId, chrono::DateTime<chrono::Utc>, Option<&str>) =
            ($org, $at, $error);
        let query = match error {
            None => sqlx::query("UPDATE partners SET last_contact_at_ms = $2 WHERE org_id = $1")
                .bind(org.as_str())
                .bind(at.timestamp_millis()),
            Some(error) => sqlx::query("UPDATE partners SET last_error = $3, last_error_at_ms = $2 WHERE org_id = $1")
                .bind(org.as_str())
                .bind(at.timestamp_millis())
                .bind(error.to_owned()),
        };
        query.execute($executor).await?;
    }};
}

pub(crate) use record_contact;

impl super::Store {
    /// Adds a partner or replaces what is known of it (keeping when it was added, whether it is
    /// blocked, and its contact history). Fails with [`StoreError::AlreadyExists`] if a pin belongs
    /// to another partner.
    pub async fn save_partner(&self, partner: &PartnerRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        in_write_tx!(self, |tx| {
            append_audit!(tx, audit, partner.updated_at);
            sqlx::query(
                "INSERT INTO partners (org_id, name, federation_url, signing_key, card, card_issued_at_ms, blocked, \
                 added_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (org_id) DO UPDATE SET name = $2, federation_url = $3, signing_key = $4, card = $5, \
                 card_issued_at_ms = $6, updated_at_ms = $8",
            )
            .bind(partner.org_id.as_str())
            .bind(&partner.name)
            .bind(&partner.federation_url)
            .bind(&partner.signing_key)
            .bind(&partner.card)
            .bind(partner.card_issued_at.timestamp_millis())
            .bind(partner.blocked)
            .bind(partner.updated_at.timestamp_millis())
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM partner_pins WHERE org_id = $1")
                .bind(partner.org_id.as_str())
                .execute(&mut *tx)
                .await?;
            for (pin, until) in &partner.pins {
                sqlx::query("INSERT INTO partner_pins (pin, org_id, valid_until_ms) VALUES ($1, $2, $3)")
                    .bind(pin.as_str())
                    .bind(partner.org_id.as_str())
                    .bind(until.map(|t| t.timestamp_millis()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match e {
                        sqlx::Error::Database(db) if db.is_unique_violation() => {
                            StoreError::AlreadyExists(format!("the TLS pin {pin} belongs to another partner"))
                        }
                        other => StoreError::Database(other),
                    })?;
            }
        });
        Ok(())
    }

    pub async fn partner(&self, org: &OrgId) -> Result<Option<PartnerRecord>, StoreError> {
        Ok(self.load_partners(Some(org)).await?.pop())
    }

    /// Every partner, by organisation id.
    pub async fn partners(&self) -> Result<Vec<PartnerRecord>, StoreError> {
        self.load_partners(None).await
    }

    async fn load_partners(&self, only: Option<&OrgId>) -> Result<Vec<PartnerRecord>, StoreError> {
        let filter = only.map_or("", |_| " WHERE org_id = $1");
        let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners{filter} ORDER BY org_id");
        let pin_sql = format!(
            "SELECT org_id, pin, valid_until_ms FROM partner_pins{filter} ORDER BY org_id, valid_until_ms DESC"
        );
        let (rows, pins): (Vec<PartnerRow>, Vec<PinRow>) = on_pool!(self, |p| {
            let mut rows = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            let mut pins = sqlx::query_as(sqlx::AssertSqlSafe(pin_sql));
            if let Some(org) = only {
                rows = rows.bind(org.as_str());
                pins = pins.bind(org.as_str());
            }
            (rows.fetch_all(p).await?, pins.fetch_all(p).await?)
        });
        rows.into_iter()
            .map(|r| {
                let org_id = OrgId::parse(&r.0).map_err(|e| StoreError::Corrupt(format!("partner id {}: {e}", r.0)))?;
                let pins = pins
                    .iter()
                    .filter(|(org, ..)| *org == r.0)
                    .map(|(_, pin, until)| {
                        TlsPin::try_from(pin.clone()).map(|p| (p, until.map(time))).map_err(StoreError::Corrupt)
                    })
                    .collect::<Result<_, _>>()?;
                Ok(PartnerRecord {
                    org_id,
                    name: r.1,
                    federation_url: r.2,
                    signing_key: r.3,
                    card: r.4,
                    card_issued_at: time(r.5),
                    pins,
                    blocked: r.6,
                    added_at: time(r.7),
                    updated_at: time(r.8),
                    last_contact_at: r.9.map(time),
                    last_error: r.10,
                    last_error_at: r.11.map(time),
                })
            })
            .collect()
    }

    /// Blocks or unblocks a partner, with its audit entry; false if there is no such partner.
    pub async fn set_partner_blocked(
        &self,
        org: &OrgId,
        blocked: bool,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let changed = in_write_tx!(self, |tx| {
            let changed = sqlx::query("UPDATE partners SET blocked = $2, updated_at_ms = $3 WHERE org_id = $1")
                .bind(org.as_str())
                .bind(blocked)
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 1 {
                append_audit!(tx, audit, now);
            }
            changed
        });
        Ok(changed == 1)
    }

    /// Records a contact with a partner: successful when `error` is `None`.
    pub async fn record_partner_contact(
        &self,
        org: &OrgId,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| record_contact!(p, org, at, error));
        Ok(())
    }

    /// Every pin of a partner that is not blocked, with its partner and, for a retiring pin, its end.
    pub async fn trusted_pins(&self) -> Result<Vec<(TlsPin, OrgId, Option<DateTime<Utc>>)>, StoreError> {
        let rows: Vec<(String, String, Option<i64>)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT pp.pin, pp.org_id, pp.valid_until_ms FROM partner_pins pp \
                 JOIN partners pa ON pa.org_id = pp.org_id WHERE pa.blocked = FALSE",
            )
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(pin, org, until)| {
                let pin = TlsPin::try_from(pin).map_err(StoreError::Corrupt)?;
                let org = OrgId::parse(&org).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((pin, org, until.map(time)))
            })
            .collect()
    }
}
