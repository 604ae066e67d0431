//! Receipts for urgent alerts between nodes: when someone here has seen a partner's urgent report,
//! the node signs an [`AlertSeen`] statement and sends it to the report's origin through the
//! lifecycle outbox (durable, retried); the origin takes a statement signed by the partner's key,
//! about the partner itself, for one of its own reports that it delivered to that partner, and
//! records who has seen it. Nothing else is taken: a partner cannot learn, by sending receipts,
//! which reports exist.

use chrono::{DateTime, Utc};

use super::Federation;
use super::agreements::LifecycleError;
use crate::crypto::jws::{self, Jws};
use crate::domain::alert::{ALERT_SEEN_TYPE, AlertSeen};
use crate::domain::audit::AuditEvent;
use crate::domain::{OrgId, ValidationErrors};
use crate::store::{Alert, AlertReceipt, LifecycleDocument, LifecycleKind};

/// The signed receipt for `alert`'s origin: someone with `roles` here saw it at `now`.
pub fn receipt(
    federation: &Federation,
    alert: &Alert,
    roles: Vec<String>,
    now: DateTime<Utc>,
) -> Result<LifecycleDocument, String> {
    let origin = OrgId::parse(&alert.origin).map_err(|e| e.to_string())?;
    let statement = AlertSeen {
        report: alert.report,
        version: u32::try_from(alert.version).unwrap_or(u32::MAX),
        by: federation.keys.card.org_id.clone(),
        roles,
        seen_at: now,
    };
    // A statement is plain data: serialising it cannot fail.
    let payload = serde_json::to_vec(&statement).unwrap_or_default();
    let signed = jws::sign(&payload, ALERT_SEEN_TYPE, &[&federation.keys.signing]).to_json();
    Ok(LifecycleDocument {
        recipient: origin,
        kind: LifecycleKind::AlertSeen,
        agreement: alert.agreement.clone(),
        document: signed,
    })
}

/// Takes `peer`'s receipt for one of this node's urgent reports.
pub async fn receive_seen(
    federation: &Federation,
    peer: &OrgId,
    statement: &Jws,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let (seen, payload): (AlertSeen, _) =
        super::registry::partner_statement(&federation.store, peer, statement, ALERT_SEEN_TYPE).await?;
    if &seen.by != peer {
        return Err(LifecycleError::Forbidden(format!("{peer} cannot state that {} has seen an alert", seen.by)));
    }
    if let Some(problem) = seen.problem() {
        return Err(LifecycleError::Invalid(ValidationErrors::single("roles", problem)));
    }
    let receipt = AlertReceipt {
        partner: peer.to_string(),
        version: i64::from(seen.version),
        roles: seen.roles.clone(),
        seen_at: seen.seen_at,
        received_at: now,
    };
    let audit = AuditEvent::new("alert.seen_by_partner", &format!("partner:{peer}"))
        .partner(peer)
        .report(seen.report)
        .object(&payload)
        .detail(format!("version {} seen at {} by {}", seen.version, seen.seen_at, seen.roles.join(", ")));
    if !federation.store.record_alert_receipt(peer, seen.report, &receipt, &audit, now).await? {
        return Err(LifecycleError::Forbidden(format!("this node delivered no report {} to {peer}", seen.report)));
    }
    tracing::info!(partner = %peer, report = %seen.report, "a partner has seen an urgent report");
    Ok(())
}
