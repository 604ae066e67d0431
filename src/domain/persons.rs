//! Who inside this organisation sees the persons in reports, its own and those partners shared
//! (issue 19). Each node says, by role, which of its people do (`[privacy] persons_visible_to`;
//! by default coordinators and analysts, never reporters); everyone else is shown only the
//! persons' roles: names, ages and descriptions gone, and the names out of the actions. An
//! agreement decides what a partner receives; this decides who inside the receiving organisation
//! sees it. [`PersonsAccess`] is the one place that decides, and every route that shows a report
//! to a person (the API, the live stream, the exports and the console) passes it through
//! [`PersonsAccess::show`], which also says whose persons were read, for the audit trail.

use std::collections::BTreeSet;

use super::ids::ReportId;
use super::report::{Person, Report, erase_person, normalise_name};
use super::role::Role;
use super::situation::PictureReport;
use super::view::{ReportView, ViewPersons, role_counts};

/// The roles whose holders see the persons in reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonsAccess {
    visible_to: BTreeSet<Role>,
}

impl PersonsAccess {
    /// The roles of this node's people who see persons.
    pub const DEFAULT: [Role; 2] = [Role::Coordinator, Role::Analyst];

    pub fn new(visible_to: impl IntoIterator<Item = Role>) -> Self {
        Self { visible_to: visible_to.into_iter().collect() }
    }

    /// Whether someone holding `roles` sees persons.
    pub fn sees_persons(&self, roles: &BTreeSet<Role>) -> bool {
        roles.iter().any(|role| self.visible_to.contains(role))
    }

    /// One report as someone holding `roles` is shown it: as it is, or with its persons reduced to
    /// roles. For what they wrote or previewed themselves; a reading goes through [`Self::show`].
    pub fn shown_to<T: NamesPersons>(&self, roles: &BTreeSet<Role>, report: T) -> T {
        if self.sees_persons(roles) { report } else { report.without_persons() }
    }

    /// What someone holding `roles` is shown of `reports`: as they are, or with their persons
    /// reduced to roles; and the reports whose persons they read (for the audit trail).
    pub fn show<T: NamesPersons>(&self, roles: &BTreeSet<Role>, reports: Vec<T>) -> Shown<T> {
        if self.sees_persons(roles) {
            let read = reports.iter().filter(|r| r.names_persons()).map(NamesPersons::report_id).collect();
            Shown { reports, persons_read: read }
        } else {
            Shown { reports: reports.iter().map(NamesPersons::without_persons).collect(), persons_read: Vec::new() }
        }
    }
}

impl Default for PersonsAccess {
    fn default() -> Self {
        Self::new(Self::DEFAULT)
    }
}

/// Reports as shown to one person, and which of them showed persons.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown<T> {
    pub reports: Vec<T>,
    pub persons_read: Vec<ReportId>,
}

/// A report in some form that may name persons.
pub trait NamesPersons: Sized {
    fn report_id(&self) -> ReportId;
    /// Whether it says more of a person than their role.
    fn names_persons(&self) -> bool;
    /// The same with every person reduced to their role.
    fn without_persons(&self) -> Self;
}

impl NamesPersons for Report {
    fn report_id(&self) -> ReportId {
        self.id
    }

    fn names_persons(&self) -> bool {
        self.content.persons.iter().any(|p| p.name.is_some() || p.age.is_some() || p.description.is_some())
    }

    fn without_persons(&self) -> Self {
        let mut shown = self.clone();
        let content = &mut shown.content;
        let names: Vec<String> = content.persons.iter().filter_map(|p| p.name.as_deref().map(normalise_name)).collect();
        for name in &names {
            erase_person(&mut content.persons, &mut content.actions, name);
        }
        for person in &mut content.persons {
            *person = Person { role: person.role, name: None, age: None, description: None };
        }
        shown
    }
}

impl NamesPersons for ReportView {
    fn report_id(&self) -> ReportId {
        self.id
    }

    fn names_persons(&self) -> bool {
        match &self.persons {
            Some(ViewPersons::Full(persons)) => {
                persons.iter().any(|p| p.name.is_some() || p.age.is_some() || p.description.is_some())
            }
            Some(ViewPersons::Pseudonymous(persons)) => persons.iter().any(|p| p.pseudonym.is_some()),
            Some(ViewPersons::Counts(_)) | None => false,
        }
    }

    fn without_persons(&self) -> Self {
        let mut shown = self.clone();
        let names: Vec<String> = shown.named_persons().filter_map(|p| p.name.as_deref().map(normalise_name)).collect();
        for name in &names {
            if let Some(erased) = shown.without_person(name) {
                shown = erased;
            }
        }
        shown.persons = match &shown.persons {
            Some(ViewPersons::Full(persons)) => Some(ViewPersons::Counts(role_counts(persons.iter().map(|p| p.role)))),
            Some(ViewPersons::Pseudonymous(persons)) => {
                Some(ViewPersons::Counts(role_counts(persons.iter().map(|p| p.role))))
            }
            other => other.clone(),
        };
        shown
    }
}

impl NamesPersons for PictureReport {
    fn report_id(&self) -> ReportId {
        self.id()
    }

    fn names_persons(&self) -> bool {
        match self {
            Self::Own(report) => report.names_persons(),
            Self::Received(view) => view.names_persons(),
        }
    }

    fn without_persons(&self) -> Self {
        match self {
            Self::Own(report) => Self::Own(report.without_persons()),
            Self::Received(view) => Self::Received(view.without_persons()),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::OrgId;
    use crate::domain::agreement::AgreementId;
    use crate::domain::report::tests::content;
    use crate::domain::report::{Action, Category, PersonRole, ReportContent, Severity, Tlp};

    fn report() -> Report {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let content = ReportContent {
            persons: vec![
                Person {
                    role: PersonRole::Suspect,
                    name: Some("Bertil Berg".into()),
                    age: Some(19),
                    description: Some("red jacket".into()),
                },
                Person { role: PersonRole::Witness, name: None, age: None, description: None },
            ],
            actions: vec![
                Action { what: "Spoke to him".into(), by: Some("Bertil Berg".into()), at: None },
                Action { what: "Closed the entrance".into(), by: Some("Patrol 2".into()), at: None },
            ],
            ..content(at)
        };
        Report::file(OrgId::parse("se-polisen-ost").unwrap(), content.validate(at).unwrap(), at)
    }

    #[test]
    fn someone_without_the_roles_is_shown_roles_and_no_names_anywhere() {
        let access = PersonsAccess::default();
        let shown = access.show(&[Role::Reporter].into(), vec![report()]);
        let text = serde_json::to_string(&shown.reports).unwrap();
        assert!(!text.contains("Bertil") && !text.contains("red jacket") && !text.contains("19"), "{text}");
        let content = &shown.reports[0].content;
        assert_eq!(
            content.persons.iter().map(|p| p.role).collect::<Vec<_>>(),
            [PersonRole::Suspect, PersonRole::Witness]
        );
        assert_eq!(content.actions[1].by.as_deref(), Some("Patrol 2"), "a unit that is not a person stays");
        assert!(shown.persons_read.is_empty());
    }

    #[test]
    fn someone_with_the_roles_sees_persons_and_the_reading_is_named() {
        let access = PersonsAccess::default();
        let report = report();
        let shown = access.show(&[Role::Analyst].into(), vec![report.clone(), report.without_persons()]);
        assert_eq!(shown.reports[0], report);
        assert_eq!(shown.persons_read, vec![report.id], "only the report that names someone was read for persons");
    }

    #[test]
    fn a_received_view_is_reduced_to_counts_of_roles() {
        let report = report();
        let view = ReportView {
            persons: Some(ViewPersons::Full(report.content.persons.clone())),
            ..ReportView::from(super::super::view::Always {
                id: report.id,
                origin: report.origin.clone(),
                version: report.version,
                agreement: AgreementId::try_from("se-safety".to_owned()).unwrap(),
                category: Category::Threat,
                severity: Severity::Moderate,
                urgent: false,
                tlp: Tlp::Amber,
                retracted: false,
                onward_sharing: false,
            })
        };
        assert!(view.names_persons());
        let shown = view.without_persons();
        assert!(!shown.names_persons());
        assert_eq!(
            shown.persons,
            Some(ViewPersons::Counts(role_counts([PersonRole::Suspect, PersonRole::Witness].into_iter())))
        );
    }
}
