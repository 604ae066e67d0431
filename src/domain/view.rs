//! What a recipient receives of a report: the view, field by field, in the forms the field rules
//! allow (a time to the hour, a location as a grid cell, persons as roles or pseudonyms). These are
//! the types that travel in envelopes and fill a received report; the policy engine (`policy`) is
//! what makes them, and the only thing that may.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::agreement::AgreementId;
use super::ids::{OrgId, ReportId, Version};
use super::report::{Action, Category, Person, PersonRole, Severity, SiteKind, Status, Tlp, erase_person};

/// What a recipient receives of one version of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportView {
    pub id: ReportId,
    pub origin: OrgId,
    pub version: Version,
    /// The agreement it was shared under.
    #[schema(value_type = String)]
    pub agreement: AgreementId,
    pub category: Category,
    pub severity: Severity,
    /// Marked urgent by its sender (see [`alert::is_urgent`](super::alert::is_urgent)).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
    pub tlp: Tlp,
    pub retracted: bool,
    /// Whether the recipient may share it onwards.
    pub onward_sharing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_precision: Option<TimePrecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<ViewLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<ViewSite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persons: Option<ViewPersons>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
}

impl ReportView {
    /// What a recipient that holds this view receives when version `version` of the report may no
    /// longer reach it (changed out of the flow's scope, or retracted): the report withdrawn,
    /// saying nothing the recipient did not already know.
    pub fn withdrawn(&self, version: Version) -> ReportView {
        ReportView { version, retracted: true, ..self.bare() }
    }

    /// Only what always travels (which report, which version, under which agreement, its
    /// classification and marking): what a recipient knew of the report besides its content.
    pub fn bare(&self) -> ReportView {
        Always {
            id: self.id,
            origin: self.origin.clone(),
            version: self.version,
            agreement: self.agreement.clone(),
            category: self.category,
            severity: self.severity,
            urgent: self.urgent,
            tlp: self.tlp,
            retracted: self.retracted,
            onward_sharing: self.onward_sharing,
        }
        .into()
    }
}

/// What every view carries, whatever the flow's rules: which report, which version, under which
/// agreement, its classification and marking, and whether it was withdrawn.
pub(super) struct Always {
    pub id: ReportId,
    pub origin: OrgId,
    pub version: Version,
    pub agreement: AgreementId,
    pub category: Category,
    pub severity: Severity,
    pub urgent: bool,
    pub tlp: Tlp,
    pub retracted: bool,
    pub onward_sharing: bool,
}

impl From<Always> for ReportView {
    /// A view of only what always travels; every other field empty.
    fn from(a: Always) -> Self {
        ReportView {
            id: a.id,
            origin: a.origin,
            version: a.version,
            agreement: a.agreement,
            category: a.category,
            severity: a.severity,
            urgent: a.urgent,
            tlp: a.tlp,
            retracted: a.retracted,
            onward_sharing: a.onward_sharing,
            time_precision: None,
            observed_at: None,
            observed_until: None,
            updated_at: None,
            expires_at: None,
            status: None,
            title: None,
            description: None,
            location: None,
            site: None,
            persons: None,
            actions: None,
        }
    }
}

impl ReportView {
    /// The names of persons this view gives in full.
    pub fn named_persons(&self) -> impl Iterator<Item = &Person> {
        let persons = match &self.persons {
            Some(ViewPersons::Full(persons)) => persons.as_slice(),
            _ => &[],
        };
        persons.iter().filter(|p| p.name.is_some())
    }

    /// This view with every person named exactly `name` (normalised) reduced to their role, and the
    /// name removed from the actions they did; `None` if nobody in it has that name.
    pub fn without_person(&self, name: &str) -> Option<ReportView> {
        let mut erased = self.clone();
        let mut none = Vec::new();
        let persons = match &mut erased.persons {
            Some(ViewPersons::Full(persons)) => persons,
            _ => &mut none,
        };
        let mut no_actions = Vec::new();
        let actions = erased.actions.as_mut().unwrap_or(&mut no_actions);
        erase_person(persons, actions, name).then_some(erased)
    }

    /// The actions this view says who did.
    pub fn attributed_actions(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().flatten().filter(|a| a.by.is_some())
    }
}

/// How finely the view's times are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimePrecision {
    Exact,
    Hour,
    Day,
}

/// The location as the recipient may see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewLocation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// The side of the grid cell whose centre `lat`/`lon` are; absent for an exact point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_metres: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The site as the recipient may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewSite {
    pub kind: SiteKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The persons as the recipient may see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ViewPersons {
    Full(Vec<Person>),
    Pseudonymous(Vec<PseudonymousPerson>),
    Counts(Vec<RoleCount>),
}

/// A person known only by role and a pseudonym that is stable within one agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PseudonymousPerson {
    pub role: PersonRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonym: Option<String>,
}

/// How many persons had a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleCount {
    pub role: PersonRole,
    pub count: u32,
}

/// How many persons had each role, in the roles' order, leaving out the roles nobody had.
pub(crate) fn role_counts(roles: impl Iterator<Item = PersonRole>) -> Vec<RoleCount> {
    let roles: Vec<PersonRole> = roles.collect();
    PersonRole::ALL
        .iter()
        .map(|role| RoleCount { role: *role, count: roles.iter().filter(|r| *r == role).count() as u32 })
        .filter(|c| c.count > 0)
        .collect()
}
