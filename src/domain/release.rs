//! Four-eyes release (issue 19): an organisation may require that some of its reports are
//! released by a second person with the coordinator role before anything of them leaves the node:
//! reports at or above a severity, or marked at or above a TLP, or written by someone whose roles
//! the organisation names (new reporters, say) and who is not a coordinator. Until released a
//! report is in the organisation's own picture, marked as held, and nothing of it is queued for
//! any partner; the store refuses to queue an envelope of a held version, whoever asks. This module
//! holds the rule and who may release; the API and the console apply them.

use std::collections::BTreeSet;

use super::report::{Report, Severity, Tlp};
use super::role::Role;

/// Which reports wait for a second person's release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseRule {
    /// Reports of this severity or higher.
    pub min_severity: Option<Severity>,
    /// Reports marked with this TLP or a stricter one.
    pub min_tlp: Option<Tlp>,
    /// Reports written by someone holding one of these roles, unless they are a coordinator.
    pub roles: BTreeSet<Role>,
}

impl ReleaseRule {
    /// Whether the rule holds anything at all.
    pub fn is_set(&self) -> bool {
        self.min_severity.is_some() || self.min_tlp.is_some() || !self.roles.is_empty()
    }

    /// Why `report`, as written by someone holding `author_roles`, must wait for a release; `None`
    /// when it may be shared at once.
    pub fn holds(&self, report: &Report, author_roles: &BTreeSet<Role>) -> Option<String> {
        let content = &report.content;
        if let Some(min) = self.min_severity.filter(|min| content.severity >= *min) {
            return Some(format!(
                "severity {} (reports from {min} up are released by a coordinator)",
                content.severity
            ));
        }
        if let Some(min) = self.min_tlp.filter(|min| content.tlp >= *min) {
            return Some(format!("TLP:{} (reports from TLP:{min} up are released by a coordinator)", content.tlp));
        }
        let coordinator = author_roles.contains(&Role::Coordinator);
        if let Some(role) = author_roles.iter().find(|r| self.roles.contains(r)).filter(|_| !coordinator) {
            return Some(format!("written by a {role} (their reports are released by a coordinator)"));
        }
        None
    }
}

/// Whether `releaser` (an actor holding `roles`) may release or refuse what `author` wrote: only a
/// coordinator, and only someone else.
pub fn may_release(releaser: &str, roles: &BTreeSet<Role>, author: &str) -> Result<(), &'static str> {
    if !roles.contains(&Role::Coordinator) {
        return Err("only a coordinator may release a held report, or refuse it");
    }
    if releaser == author {
        return Err("a held report is released by a second person: someone other than who wrote this version");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::OrgId;
    use crate::domain::report::ReportContent;
    use crate::domain::report::tests::content;

    fn report(severity: Severity, tlp: Tlp) -> Report {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let content = ReportContent { severity, tlp, ..content(at) };
        Report::file(OrgId::parse("se-kommun-norrkoping").unwrap(), content.validate(at).unwrap(), at)
    }

    #[test]
    fn a_rule_holds_from_its_severity_and_tlp_up_and_reporters_but_not_coordinators() {
        let rule = ReleaseRule {
            min_severity: Some(Severity::Severe),
            min_tlp: Some(Tlp::AmberStrict),
            roles: [Role::Reporter].into(),
        };
        let coordinator: BTreeSet<Role> = [Role::Coordinator].into();
        let reporter: BTreeSet<Role> = [Role::Reporter].into();
        assert!(rule.holds(&report(Severity::Severe, Tlp::Green), &coordinator).is_some());
        assert!(rule.holds(&report(Severity::Moderate, Tlp::AmberStrict), &coordinator).is_some());
        assert!(rule.holds(&report(Severity::Moderate, Tlp::Amber), &coordinator).is_none());
        assert!(rule.holds(&report(Severity::Minor, Tlp::Clear), &reporter).is_some());
        let both: BTreeSet<Role> = [Role::Reporter, Role::Coordinator].into();
        assert!(rule.holds(&report(Severity::Minor, Tlp::Clear), &both).is_none());
        assert!(ReleaseRule::default().holds(&report(Severity::Critical, Tlp::Red), &reporter).is_none());
    }

    #[test]
    fn only_another_coordinator_may_release() {
        let coordinator: BTreeSet<Role> = [Role::Coordinator].into();
        assert!(may_release("user:b", &coordinator, "user:a").is_ok());
        assert!(may_release("user:a", &coordinator, "user:a").is_err());
        assert!(may_release("user:b", &[Role::Reporter].into(), "user:a").is_err());
    }
}
