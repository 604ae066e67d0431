//! An envelope: one version of one report, shaped for one recipient by the policy engine, signed by
//! the sender. Its protected header names who sends what to whom under which agreement, and when,
//! so a signature can be replayed neither to another node nor under another agreement. The checks
//! a receiver makes that need no I/O live here: addressing, the time window, and that the header
//! and the view say the same thing.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{OrgId, ReportId, Version};
use super::view::ReportView;

/// The JWS `typ` of an envelope.
pub const ENVELOPE_TYPE: &str = "lagesbild-envelope+json";

/// How far an envelope's time may lie from the receiver's clock, either way.
pub const DEFAULT_WINDOW: Duration = Duration::minutes(10);

/// What an envelope's protected header says besides the algorithm, key and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeHeader {
    pub sender: OrgId,
    pub recipient: OrgId,
    pub agreement: String,
    pub report: ReportId,
    pub version: Version,
    /// When it was signed, in seconds since the epoch (as JWT's `iat`).
    pub iat: i64,
}

impl EnvelopeHeader {
    /// The header for `view`, sent by `sender` to `recipient` at `now`.
    pub fn for_view(view: &ReportView, sender: &OrgId, recipient: &OrgId, now: DateTime<Utc>) -> Self {
        Self {
            sender: sender.clone(),
            recipient: recipient.clone(),
            agreement: view.agreement.to_string(),
            report: view.id,
            version: view.version,
            iat: now.timestamp(),
        }
    }

    /// The same header, signed again at `now` (an envelope waiting in the outbox past half the
    /// window is signed afresh before it is sent; its content does not change).
    pub fn at(&self, now: DateTime<Utc>) -> Self {
        Self { iat: now.timestamp(), ..self.clone() }
    }

    pub fn signed_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.iat, 0).unwrap_or_default()
    }
}

/// Why an envelope was refused. Some refusals may pass later ([`EnvelopeRefusal::may_pass_later`]):
/// an agreement not yet active here, a clock apart, a key not learnt yet; the sender tries those
/// again. The others are final.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeRefusal {
    #[error("the envelope is malformed: {0}")]
    Malformed(String),
    #[error("the signature is not valid for the sender's key: {0}")]
    Signature(String),
    #[error("the envelope is signed by key {0}, which this node does not know for the sender (yet)")]
    UnknownKey(String),
    #[error("the envelope claims to come from {claimed}, but the connection is {peer}'s")]
    WrongSender { claimed: OrgId, peer: OrgId },
    #[error("the envelope is addressed to {0}, not to this node")]
    WrongRecipient(OrgId),
    #[error("the envelope was signed at {signed}, outside the window of {window} minutes around {now}")]
    OutsideWindow { signed: DateTime<Utc>, now: DateTime<Utc>, window: i64 },
    #[error("the header and the report disagree about {0}")]
    Inconsistent(&'static str),
    #[error("agreement {0} is not active here, or does not let the sender send this report to this node")]
    NoAgreement(String),
    #[error("the report exceeds what agreement {agreement} allows: {reason}")]
    BeyondFlow { agreement: String, reason: String },
    #[error("report {0} is known here under another origin")]
    IdTaken(ReportId),
    #[error("the report is not urgent: it goes in the ordinary lane, which waits while this node catches up")]
    NotUrgent,
}

impl EnvelopeRefusal {
    /// A short stable name, for metrics and the audit trail.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Signature(_) => "signature",
            Self::UnknownKey(_) => "unknown_key",
            Self::WrongSender { .. } => "wrong_sender",
            Self::WrongRecipient(_) => "wrong_recipient",
            Self::OutsideWindow { .. } => "outside_window",
            Self::Inconsistent(_) => "inconsistent",
            Self::NoAgreement(_) => "no_agreement",
            Self::BeyondFlow { .. } => "beyond_flow",
            Self::IdTaken(_) => "id_taken",
            Self::NotUrgent => "not_urgent",
        }
    }
}

impl EnvelopeRefusal {
    /// Whether the same envelope may be accepted later, when this node has caught up (an
    /// agreement's last signature, a partner's new card) or the clocks agree again.
    pub fn may_pass_later(&self) -> bool {
        matches!(self, Self::NoAgreement(_) | Self::OutsideWindow { .. } | Self::UnknownKey(_) | Self::NotUrgent)
    }
}

/// Checks what the header says against the connection, this node, the clock and the view.
pub fn check_addressing(
    header: &EnvelopeHeader,
    view: &ReportView,
    peer: &OrgId,
    own: &OrgId,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<(), EnvelopeRefusal> {
    if &header.sender != peer {
        return Err(EnvelopeRefusal::WrongSender { claimed: header.sender.clone(), peer: peer.clone() });
    }
    if &header.recipient != own {
        return Err(EnvelopeRefusal::WrongRecipient(header.recipient.clone()));
    }
    let signed = header.signed_at();
    if (signed - now).abs() > window {
        return Err(EnvelopeRefusal::OutsideWindow { signed, now, window: window.num_minutes() });
    }
    if header.report != view.id {
        return Err(EnvelopeRefusal::Inconsistent("the report id"));
    }
    if header.version != view.version {
        return Err(EnvelopeRefusal::Inconsistent("the version"));
    }
    if header.agreement != view.agreement.as_str() {
        return Err(EnvelopeRefusal::Inconsistent("the agreement"));
    }
    // Nothing is shared onwards: a report's sender is its origin.
    if view.origin != header.sender {
        return Err(EnvelopeRefusal::Inconsistent("the origin"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ReportView {
        serde_json::from_value(serde_json::json!({
            "id": "01937a4e-0000-7000-8000-000000000001", "origin": "se-a", "version": 2, "agreement": "ag-1",
            "category": "vandalism", "severity": "minor", "tlp": "GREEN", "retracted": false, "onward_sharing": false
        }))
        .unwrap()
    }

    fn org(id: &str) -> OrgId {
        OrgId::parse(id).unwrap()
    }

    #[test]
    fn addressing_refuses_every_mismatch() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let v = view();
        let header = EnvelopeHeader::for_view(&v, &org("se-a"), &org("se-b"), now);
        let check = |h: &EnvelopeHeader, peer: &str, own: &str| {
            check_addressing(h, &v, &org(peer), &org(own), now, DEFAULT_WINDOW).map_err(|e| e.kind())
        };
        assert_eq!(check(&header, "se-a", "se-b"), Ok(()));
        assert_eq!(check(&header, "se-c", "se-b"), Err("wrong_sender"));
        assert_eq!(check(&header, "se-a", "se-c"), Err("wrong_recipient"));
        assert_eq!(check(&header.at(now - Duration::minutes(11)), "se-a", "se-b"), Err("outside_window"));
        assert_eq!(check(&header.at(now + Duration::minutes(11)), "se-a", "se-b"), Err("outside_window"));
        assert_eq!(
            check(&EnvelopeHeader { version: Version::FIRST, ..header.clone() }, "se-a", "se-b"),
            Err("inconsistent")
        );
        assert_eq!(
            check(&EnvelopeHeader { agreement: "ag-2".into(), ..header.clone() }, "se-a", "se-b"),
            Err("inconsistent")
        );
    }
}
