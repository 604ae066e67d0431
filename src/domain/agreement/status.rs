//! Where an agreement stands at a moment, and why: awaiting signatures, not started, active,
//! expired, revoked, or stopped because its framework is not active. The rules are pure; which
//! signatures are valid and whether the framework is active are decided where the keys are, and
//! handed in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Agreement, AgreementId};
use crate::domain::OrgId;

/// The JWS `typ` of an agreement and of a revocation.
pub const AGREEMENT_TYPE: &str = "lagesbild-agreement+json";
pub const REVOCATION_TYPE: &str = "lagesbild-revocation+json";

/// Where an agreement stands, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgreementStatus {
    /// `awaiting_signatures`, `not_started`, `active`, `expired`, `revoked`, `declined` (revoked
    /// before every party had signed), `replaced` (an amendment of it is in force),
    /// `framework_inactive`, or (in listings) `unverifiable` when the stored document no longer
    /// checks.
    pub state: &'static str,
    /// Why, in a sentence.
    pub detail: String,
    /// Parties that have signed.
    pub signed_by: Vec<OrgId>,
    /// Parties whose signature is still missing.
    pub awaiting: Vec<OrgId>,
}

/// A revocation statement, signed by the revoking party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub agreement: AgreementId,
    pub by: OrgId,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A revocation as this node keeps it: who revoked, when by this node's clock, why, and the signed
/// statement itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
    pub statement: String,
}

/// The status at `now` of `agreement`, signed by `signed_by` (each signature already verified),
/// its framework being active or not as said (an agreement under no framework passes true), and
/// replaced by the amendment in force that `replaced_by` names, if one is.
pub fn status(
    agreement: &Agreement,
    signed_by: &[OrgId],
    framework_active: bool,
    replaced_by: Option<&AgreementId>,
    revocation: Option<&RevocationRecord>,
    now: DateTime<Utc>,
) -> AgreementStatus {
    let awaiting: Vec<OrgId> =
        agreement.parties.iter().map(|p| p.org_id.clone()).filter(|org| !signed_by.contains(org)).collect();
    let (state, detail) = if let Some(r) = revocation {
        let state = if awaiting.is_empty() { "revoked" } else { "declined" };
        let why = r.reason.as_ref().map(|x| format!(": {x}")).unwrap_or_default();
        (state, format!("{state} by {} at {}{why}", r.by, r.at))
    } else if let Some(amendment) = replaced_by {
        ("replaced", format!("replaced by its amendment {amendment}, which is in force"))
    } else if !framework_active {
        let framework = agreement.framework.as_ref().map(ToString::to_string).unwrap_or_default();
        ("framework_inactive", format!("its framework {framework} is not active"))
    } else if !awaiting.is_empty() {
        ("awaiting_signatures", format!("{} of {} parties have signed", signed_by.len(), agreement.parties.len()))
    } else if now < agreement.valid_from {
        ("not_started", format!("signed by every party; takes effect at {}", agreement.valid_from))
    } else if now >= agreement.valid_until {
        ("expired", format!("ended at {}", agreement.valid_until))
    } else {
        ("active", format!("signed by every party; in force until {}", agreement.valid_until))
    };
    AgreementStatus { state, detail, signed_by: signed_by.to_vec(), awaiting }
}
