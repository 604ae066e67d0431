//! Urgent alerts: which reports are urgent, and the receipt a receiving node sends back when one
//! of its people has seen one. A report is urgent when it is critical or its author marked it so
//! (ongoing deadly violence, for instance); an urgent report goes ahead of every queued envelope,
//! and a partner's urgent report is shown in this node's console as an alert until someone here
//! says they have seen it. That acknowledgement goes back to the report's origin as a signed
//! [`AlertSeen`] statement, so the sender knows which partners have seen it and when. The statement
//! names the organisation and the roles of the person who saw it, never the person: who at a
//! partner read an alert is the partner's to know (its own audit trail records it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{OrgId, ReportId};
use super::report::Severity;
use super::view::ReportView;

/// The JWS `typ` of an [`AlertSeen`] statement.
pub const ALERT_SEEN_TYPE: &str = "lagesbild-alert-seen+json";

/// Whether a report of `severity`, marked `urgent` or not, is urgent.
pub fn is_urgent(severity: Severity, urgent: bool) -> bool {
    urgent || severity == Severity::Critical
}

impl ReportView {
    /// Whether the report this view shows is urgent (and not withdrawn: a withdrawal is no alert).
    pub fn is_urgent(&self) -> bool {
        !self.retracted && is_urgent(self.severity, self.urgent)
    }
}

/// A receiving node's signed statement that one of its people has seen an urgent report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSeen {
    /// The report, one of the recipient's own.
    #[schema(value_type = String, format = Uuid)]
    pub report: ReportId,
    /// The version that was seen.
    pub version: u32,
    /// The node whose person saw it: the one that signs the statement.
    #[schema(value_type = String)]
    pub by: OrgId,
    /// The roles of the person who saw it (never who it was).
    pub roles: Vec<String>,
    pub seen_at: DateTime<Utc>,
}

impl AlertSeen {
    /// The most roles one statement may name, and the longest a role may be.
    pub const MAX_ROLES: usize = 8;
    pub const MAX_ROLE_CHARS: usize = 40;

    /// Whether the statement keeps within its bounds.
    pub fn problem(&self) -> Option<String> {
        if self.roles.len() > Self::MAX_ROLES {
            return Some(format!("at most {} roles", Self::MAX_ROLES));
        }
        if self.roles.iter().any(|r| r.is_empty() || r.chars().count() > Self::MAX_ROLE_CHARS) {
            return Some(format!("each role 1 to {} characters", Self::MAX_ROLE_CHARS));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_critical_or_marked_report_is_urgent_and_nothing_else_is() {
        assert!(is_urgent(Severity::Critical, false));
        assert!(is_urgent(Severity::Minor, true));
        assert!(!is_urgent(Severity::Severe, false));
    }

    #[test]
    fn a_seen_statement_with_too_many_or_too_long_roles_is_refused() {
        let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let seen = |roles: Vec<String>| AlertSeen {
            report: ReportId::new_at(at),
            version: 1,
            by: OrgId::parse("se-police-ostergotland").unwrap(),
            roles,
            seen_at: at,
        };
        assert!(seen(vec!["coordinator".into()]).problem().is_none());
        assert!(seen(vec!["r".into(); 9]).problem().is_some());
        assert!(seen(vec!["x".repeat(41)]).problem().is_some());
        assert!(seen(vec![String::new()]).problem().is_some());
    }
}
