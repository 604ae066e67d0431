//! A situation report: what happened, where, when, how serious, what was done and who was involved,
//! with its TLP marking. The model borrows from CAP 1.2 and EDXL-SitRep and stays small. A report
//! never changes in place: an update or a retraction makes the next [`Version`], and the rules for
//! making one live here, not in the store or the API.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{OrgId, ReportId, Version};
use super::validation::ValidationErrors;

/// Declares an enum that travels as one fixed string per variant (in JSON and in database columns).
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] #[schema(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown value '{s}', expected one of: {}", names.join(", "))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// What kind of incident or condition the report is about.
    pub enum Category {
        Burglary = "burglary",
        Vandalism = "vandalism",
        Theft = "theft",
        Fire = "fire",
        Threat = "threat",
        Violence = "violence",
        Disorder = "disorder",
        SuspiciousActivity = "suspicious_activity",
        Drugs = "drugs",
        Other = "other",
    }
}

named_enum! {
    /// How serious it is, from least to most; the order matters for `min_severity` filters.
    pub enum Severity {
        Minor = "minor",
        Moderate = "moderate",
        Severe = "severe",
        Critical = "critical",
    }
}

impl Severity {
    /// 1 (minor) to 4 (critical): the rank stored for range queries.
    pub fn rank(self) -> i16 {
        match self {
            Severity::Minor => 1,
            Severity::Moderate => 2,
            Severity::Severe => 3,
            Severity::Critical => 4,
        }
    }
}

named_enum! {
    /// Whether the situation is still going on.
    pub enum Status {
        Ongoing = "ongoing",
        Resolved = "resolved",
    }
}

named_enum! {
    /// Traffic Light Protocol 2.0 marking: who the report may be shared with.
    pub enum Tlp {
        /// No limit on disclosure.
        Clear = "CLEAR",
        /// The community: partners and their staff.
        Green = "GREEN",
        /// The recipient organisation and its clients, on a need-to-know basis.
        Amber = "AMBER",
        /// The recipient organisation only.
        AmberStrict = "AMBER+STRICT",
        /// Named recipients only: never leaves this node.
        Red = "RED",
    }
}

named_enum! {
    /// What part a person played.
    pub enum PersonRole {
        Victim = "victim",
        Suspect = "suspect",
        Witness = "witness",
        Staff = "staff",
    }
}

named_enum! {
    /// The kind of site where it happened, after the places named in the partners' agreements.
    pub enum SiteKind {
        School = "school",
        Preschool = "preschool",
        CareHome = "care_home",
        YouthCentre = "youth_centre",
        Shop = "shop",
        ShoppingCentre = "shopping_centre",
        Office = "office",
        PublicSpace = "public_space",
        Transport = "transport",
        Residential = "residential",
        Other = "other",
    }
}

/// Where it happened: a WGS84 point and what a person would call the place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Latitude in degrees (WGS84), -90 to 90.
    #[schema(example = 58.5877)]
    pub lat: f64,
    /// Longitude in degrees (WGS84), -180 to 180.
    #[schema(example = 16.1924)]
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Hageby centrum")]
    pub place_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Hagebygatan 10")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
    /// The four-digit municipality code (kommunkod / kommunenummer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "0581", pattern = "^[0-9]{4}$")]
    pub municipality_code: Option<String>,
}

/// A site such as a school or a shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub kind: SiteKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Hagebyskolan")]
    pub name: Option<String>,
}

/// A person involved. Everything but the role is personal data, which agreements usually drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub role: PersonRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 130)]
    pub age: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An intervention (insats): what was done, by whom, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[schema(example = "Guard patrol checked the perimeter and locked the side entrance")]
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Patrol 2")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// What a person files or updates: the content of one version of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportContent {
    /// When it happened (or began).
    pub observed_at: DateTime<Utc>,
    /// When it ended, if it lasted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_until: Option<DateTime<Utc>>,
    pub category: Category,
    pub severity: Severity,
    /// Marked urgent by the one who filed it (ongoing deadly violence, for instance): shared ahead
    /// of everything queued and shown to the receivers as an alert, as a critical report is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
    #[serde(default = "default_status")]
    pub status: Status,
    #[schema(example = "Broken windows at Hagebyskolan")]
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub location: Location,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persons: Vec<Person>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// TLP 2.0 marking; AMBER when not given.
    #[serde(default = "default_tlp")]
    pub tlp: Tlp,
    /// After this time the report no longer belongs in the situation picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

fn default_status() -> Status {
    Status::Ongoing
}

fn default_tlp() -> Tlp {
    Tlp::Amber
}

/// Report content that has passed [`ReportContent::validate`]; only it can be filed.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidContent(ReportContent);

/// How far ahead of the node's clock `observed_at` may lie, for clocks that are a little off.
const OBSERVED_AT_SLACK: Duration = Duration::minutes(15);

impl ReportContent {
    /// Checks every field and reports every problem at once, each naming its field.
    pub fn validate(self, now: DateTime<Utc>) -> Result<ValidContent, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        errors.check_text("title", &self.title, 1, 200, false);
        errors.check_text("description", &self.description, 0, 10_000, true);
        errors.check(
            self.observed_at <= now + OBSERVED_AT_SLACK,
            "observed_at",
            "must not be in the future (it is when the incident happened)",
        );
        if let Some(until) = self.observed_until {
            errors.check(until >= self.observed_at, "observed_until", "must not be before observed_at");
        }
        if let Some(expires) = self.expires_at {
            errors.check(expires > now, "expires_at", "must be in the future");
        }
        self.location.validate(&mut errors);
        errors.check(self.persons.len() <= 100, "persons", "at most 100 persons per report");
        for (i, person) in self.persons.iter().enumerate() {
            person.validate(&format!("persons[{i}]"), &mut errors);
        }
        errors.check(self.actions.len() <= 100, "actions", "at most 100 actions per report");
        for (i, action) in self.actions.iter().enumerate() {
            let field = format!("actions[{i}]");
            errors.check_text(&format!("{field}.what"), &action.what, 1, 1_000, true);
            if let Some(by) = &action.by {
                errors.check_text(&format!("{field}.by"), by, 1, 200, false);
            }
        }
        errors.into_result(ValidContent(self))
    }
}

impl Location {
    fn validate(&self, errors: &mut ValidationErrors) {
        errors.check(
            self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat),
            "location.lat",
            "must be between -90 and 90 (WGS84 degrees)",
        );
        errors.check(
            self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon),
            "location.lon",
            "must be between -180 and 180 (WGS84 degrees)",
        );
        if let Some(name) = &self.place_name {
            errors.check_text("location.place_name", name, 1, 200, false);
        }
        if let Some(address) = &self.address {
            errors.check_text("location.address", address, 1, 300, false);
        }
        if let Some(Site { name: Some(name), .. }) = &self.site {
            errors.check_text("location.site.name", name, 1, 200, false);
        }
        if let Some(code) = &self.municipality_code {
            errors.check(
                code.len() == 4 && code.chars().all(|c| c.is_ascii_digit()),
                "location.municipality_code",
                "must be a four-digit municipality code, such as 0581",
            );
        }
    }
}

impl Person {
    fn validate(&self, field: &str, errors: &mut ValidationErrors) {
        if let Some(name) = &self.name {
            errors.check_text(&format!("{field}.name"), name, 1, 200, false);
        }
        if let Some(age) = self.age {
            errors.check(age <= 130, format!("{field}.age"), "must be between 0 and 130");
        }
        if let Some(description) = &self.description {
            errors.check_text(&format!("{field}.description"), description, 1, 2_000, true);
        }
    }
}

impl ValidContent {
    pub fn content(&self) -> &ReportContent {
        &self.0
    }
}

/// That a report was withdrawn, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Retraction {
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One version of a situation report, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub id: ReportId,
    /// The organisation that filed it.
    pub origin: OrgId,
    pub version: Version,
    /// When version 1 was filed.
    pub created_at: DateTime<Utc>,
    /// When this version was made.
    pub updated_at: DateTime<Utc>,
    /// Present when this version withdraws the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retracted: Option<Retraction>,
    /// Who filed it (as the audit trail names them): a reporter may change only their own reports.
    /// Never shared with partners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filed_by: Option<String>,
    #[serde(flatten)]
    pub content: ReportContent,
}

/// A name as compared for data-protection requests: trimmed, lower-cased, inner spaces folded.
pub fn normalise_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

impl Person {
    /// Whether this person's name is exactly `name` (normalised).
    pub fn named(&self, name: &str) -> bool {
        self.name.as_deref().is_some_and(|n| normalise_name(n) == name)
    }
}

impl Action {
    /// Whether who acted is exactly `name` (normalised).
    pub fn by_named(&self, name: &str) -> bool {
        self.by.as_deref().is_some_and(|by| normalise_name(by) == name)
    }
}

/// Reduces every person named exactly `name` (normalised) to their role, and removes the name
/// from every action they are said to have done; whether anything was erased.
pub(crate) fn erase_person(persons: &mut [Person], actions: &mut [Action], name: &str) -> bool {
    let mut erased = false;
    for person in persons.iter_mut().filter(|p| p.named(name)) {
        *person = Person { role: person.role, name: None, age: None, description: None };
        erased = true;
    }
    for action in actions.iter_mut().filter(|a| a.by_named(name)) {
        action.by = None;
        erased = true;
    }
    erased
}

impl Report {
    /// This version with every person named exactly `name` (normalised) reduced to their role:
    /// name, age and description removed, and the name removed from the actions they did. `None`
    /// if nobody in it has that name.
    pub fn without_person(&self, name: &str) -> Option<Report> {
        let mut erased = self.clone();
        let content = &mut erased.content;
        erase_person(&mut content.persons, &mut content.actions, name).then_some(erased)
    }
}

/// Why a report cannot get another version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RevisionError {
    #[error("the report has been retracted; a retracted report cannot be changed")]
    Retracted,
}

impl Report {
    /// Version 1 of a new report filed by `origin`.
    pub fn file(origin: OrgId, content: ValidContent, now: DateTime<Utc>) -> Self {
        Self {
            id: ReportId::new_at(now),
            origin,
            version: Version::FIRST,
            created_at: now,
            updated_at: now,
            retracted: None,
            filed_by: None,
            content: content.0,
        }
    }

    /// The same report, recorded as filed by `actor`.
    pub fn filed_by(mut self, actor: &str) -> Self {
        self.filed_by = Some(actor.to_owned());
        self
    }

    /// The next version, with new content.
    pub fn revise(&self, content: ValidContent, now: DateTime<Utc>) -> Result<Self, RevisionError> {
        self.successor(now, |next| next.content = content.0)
    }

    /// The next version, saying the report is withdrawn; its content stays for the owner's record.
    pub fn retract(&self, reason: Option<String>, now: DateTime<Utc>) -> Result<Self, RevisionError> {
        self.successor(now, |next| next.retracted = Some(Retraction { at: now, reason }))
    }

    /// The next version with this version's content, as it now stands: how a change made in place
    /// (a data-protection erasure) is carried to the partners that received the report.
    pub fn reissue(&self, now: DateTime<Utc>) -> Result<Self, RevisionError> {
        self.successor(now, |_| {})
    }

    fn successor(&self, now: DateTime<Utc>, change: impl FnOnce(&mut Self)) -> Result<Self, RevisionError> {
        if self.retracted.is_some() {
            return Err(RevisionError::Retracted);
        }
        let mut next = self.clone();
        next.version = self.version.next();
        // Never let a version look older than the one it replaces, even if the clock stepped back.
        next.updated_at = now.max(self.updated_at);
        change(&mut next);
        Ok(next)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid report's content observed two hours before `now`, for the domain's tests.
    pub(crate) fn content(now: DateTime<Utc>) -> ReportContent {
        ReportContent {
            observed_at: now - Duration::hours(2),
            observed_until: None,
            category: Category::Vandalism,
            severity: Severity::Moderate,
            urgent: false,
            status: Status::Ongoing,
            title: "Broken windows".into(),
            description: String::new(),
            location: Location {
                lat: 58.59,
                lon: 16.18,
                place_name: None,
                address: None,
                site: None,
                municipality_code: Some("0581".into()),
            },
            persons: vec![],
            actions: vec![],
            tlp: Tlp::Amber,
            expires_at: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap()
    }

    #[test]
    fn validation_names_every_bad_field() {
        let mut bad = content(now());
        bad.title = String::new();
        bad.location.lat = 91.0;
        bad.location.municipality_code = Some("58".into());
        bad.persons.push(Person {
            role: PersonRole::Victim,
            name: Some(String::new()),
            age: Some(200),
            description: None,
        });
        let errors = bad.validate(now()).unwrap_err();
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["title", "location.lat", "location.municipality_code", "persons[0].name", "persons[0].age"]
        );
    }

    #[test]
    fn observed_until_before_observed_at_is_refused() {
        let mut bad = content(now());
        bad.observed_until = Some(bad.observed_at - Duration::minutes(1));
        assert_eq!(bad.validate(now()).unwrap_err().errors()[0].field, "observed_until");
    }

    #[test]
    fn a_retracted_report_cannot_be_revised_or_retracted_again() {
        let report = Report::file(OrgId::parse("se-test").unwrap(), content(now()).validate(now()).unwrap(), now());
        let retracted = report.retract(Some("filed twice".into()), now()).unwrap();
        assert_eq!(retracted.version.get(), 2);
        let again = content(now()).validate(now()).unwrap();
        assert_eq!(retracted.revise(again, now()), Err(RevisionError::Retracted));
        assert_eq!(retracted.retract(None, now()), Err(RevisionError::Retracted));
    }

    #[test]
    fn versions_never_go_back_in_time() {
        let report = Report::file(OrgId::parse("se-test").unwrap(), content(now()).validate(now()).unwrap(), now());
        let earlier = now() - Duration::minutes(5);
        let next = report.revise(content(now()).validate(now()).unwrap(), earlier).unwrap();
        assert_eq!(next.updated_at, now());
    }

    #[test]
    fn tlp_travels_in_its_tlp_2_spelling() {
        assert_eq!(serde_json::to_string(&Tlp::AmberStrict).unwrap(), "\"AMBER+STRICT\"");
        assert_eq!("AMBER+STRICT".parse::<Tlp>().unwrap(), Tlp::AmberStrict);
    }
}
