//! An agreement (trygghetsöverenskommelse, samverkansavtal): who shares what with whom, for what
//! purpose and how long, in a form people can read and the node enforces. This module holds the
//! document and its own rules (consistency, and that a local agreement only narrows its framework);
//! beside it, the geometry of its areas (`geometry`), the file format people write agreements in
//! (`file`), new agreements made from the templates in `policies/` (`template`), and where a signed
//! agreement stands at a moment (`status`). All of it is pure: how agreements are proposed, signed
//! and revoked between nodes is `federation::agreements`, and what a given report becomes for a
//! given recipient is `policy`'s work.

pub mod file;
mod geometry;
mod status;
pub mod template;

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ids::{OrgId, TlsPin};
use super::report::{Category, Severity, Tlp};
use super::rules::FieldRules;
use super::validation::ValidationErrors;
pub use geometry::Area;
use geometry::check_area;
pub use status::{AGREEMENT_TYPE, AgreementStatus, REVOCATION_TYPE, Revocation, RevocationRecord, status};

/// An agreement's id, such as `se-lulea-trygghetsoverenskommelse-2026`: 3 to 100 characters of
/// `a-z`, `0-9` and `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgreementId(String);

super::rules::word_schema!(AgreementId, r"^[a-z][a-z0-9-]{2,99}$");

impl TryFrom<String> for AgreementId {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        let id = raw.trim().to_ascii_lowercase();
        let ok = (3..=100).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_lowercase())
            && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(id))
        } else {
            Err("an agreement id is 3-100 characters of a-z, 0-9 and '-', starting with a letter".into())
        }
    }
}

impl AgreementId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<AgreementId> for String {
    fn from(id: AgreementId) -> Self {
        id.0
    }
}

impl fmt::Display for AgreementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sharing agreement between parties, as written in `policies/*.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    pub id: AgreementId,
    pub title: String,
    /// What the sharing is for; shown to everyone who signs and everyone who receives.
    pub purpose: String,
    /// The framework agreement this one sits under; it may only narrow what the framework allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<AgreementId>,
    /// The agreement this one amends: when this one takes effect, that one ends, without a gap and
    /// without a report delivered twice (what was received under it is kept, under this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<AgreementId>,
    /// In an amendment: whether parties new to it receive the reports already shared under the
    /// agreement it replaces (within this one's retention, in the form this one's rules give).
    /// No by default.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backfill: bool,
    #[serde(deserialize_with = "moment")]
    #[schemars(with = "String")]
    pub valid_from: DateTime<Utc>,
    #[serde(deserialize_with = "moment")]
    #[schemars(with = "String")]
    pub valid_until: DateTime<Utc>,
    /// When the parties evaluate the agreement together.
    #[serde(deserialize_with = "moment")]
    #[schemars(with = "String")]
    pub evaluation_date: DateTime<Utc>,
    /// How many days a recipient keeps what it received under this agreement.
    pub retention_days: u32,
    pub parties: Vec<Party>,
    pub flows: Vec<Flow>,
}

/// A party to an agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Party {
    #[schemars(with = "String")]
    pub org_id: OrgId,
    pub name: String,
    pub role: PartyRole,
    /// The party node's signing key (base64url), from its node card; filled in when proposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    /// The party node's TLS pins, from its node card.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub tls_pins: Vec<TlsPin>,
}

/// What kind of organisation a party is. A local agreement's parties are matched to its
/// framework's by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    Municipality,
    Police,
    Retailer,
    GuardCompany,
    Other,
}

/// What flows from some parties to others, and in what form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    #[schemars(with = "Vec<String>")]
    pub from: Vec<OrgId>,
    #[schemars(with = "Vec<String>")]
    pub to: Vec<OrgId>,
    pub categories: Vec<Category>,
    /// Where a report must be to flow; anywhere when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<Area>,
    #[serde(default = "least_severity")]
    pub min_severity: Severity,
    /// The highest TLP marking that may flow. RED never leaves a node.
    pub max_tlp: Tlp,
    /// Whether recipients may share what they receive onwards (under their own agreements).
    #[serde(default)]
    pub onward_sharing: bool,
    /// Whether the senders may ask the recipients for something (a patrol, footage, information),
    /// each request carrying of a report what this flow's field rules give. No by default.
    #[serde(default, skip_serializing_if = "is_false")]
    pub requests: bool,
    /// What the recipient sees of each field; a field no rule names is dropped.
    #[serde(default)]
    pub fields: FieldRules,
}

/// A moment written as RFC 3339 (`2026-01-01T00:00:00Z`) or as a date (`2026-06-30`, midnight UTC).
/// TOML's own date and time values arrive from its parser as a one-entry map holding that text, so
/// the map form is read too.
fn moment<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Toml(std::collections::BTreeMap<String, String>),
    }
    let text = match Written::deserialize(deserializer)? {
        Written::Text(text) => text,
        Written::Toml(map) if map.len() == 1 => map.into_values().next().unwrap_or_default(),
        Written::Toml(_) => return Err(serde::de::Error::custom("expected a date or a date and time")),
    };
    parse_moment(&text).map_err(serde::de::Error::custom)
}

/// A moment as agreements write it: RFC 3339 (`2026-01-01T00:00:00Z`) or a date (`2026-06-30`,
/// midnight UTC).
pub fn parse_moment(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(moment) = DateTime::parse_from_rfc3339(text) {
        return Ok(moment.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        .ok_or_else(|| {
            format!("'{text}' is neither a date (2026-06-30) nor a date and time with an offset (2026-01-01T00:00:00Z)")
        })
}

fn is_false(value: &bool) -> bool {
    !value
}

fn least_severity() -> Severity {
    Severity::Minor
}

/// The most parties and flows an agreement may have: far above any real one, and low enough that
/// checking every pair of flows stays cheap for a document a partner sends.
pub const MAX_PARTIES: usize = 100;
pub const MAX_FLOWS: usize = 100;

impl Agreement {
    /// Checks only the numbers of parties and flows, which bound the work of every other check (and
    /// of verifying the parties' signatures): cheap, so it comes first.
    pub fn check_bounds(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        self.within_bounds(&mut errors);
        errors.into_result(())
    }

    /// Adds a problem for each number out of bounds; whether both were within.
    fn within_bounds(&self, errors: &mut ValidationErrors) -> bool {
        let parties = (2..=MAX_PARTIES).contains(&self.parties.len());
        errors.check(parties, "parties", format!("an agreement has 2 to {MAX_PARTIES} parties"));
        let flows = self.flows.len() <= MAX_FLOWS;
        errors.check(
            flows,
            "flows",
            format!("an agreement has at most {MAX_FLOWS} flows; this one has {}", self.flows.len()),
        );
        parties && flows
    }

    /// Checks the agreement's own consistency: every problem, each with its path.
    pub fn check(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        errors.check_text("title", &self.title, 1, 200, false);
        errors.check_text("purpose", &self.purpose, 1, 4000, true);
        errors.check(self.valid_until > self.valid_from, "valid_until", "must be after valid_from");
        errors.check(self.evaluation_date >= self.valid_from, "evaluation_date", "must not be before valid_from");
        errors.check((1..=3650).contains(&self.retention_days), "retention_days", "must be 1 to 3650 days");
        errors.check(
            self.framework.as_ref() != Some(&self.id),
            "framework",
            "an agreement cannot be its own framework",
        );
        errors.check(self.replaces.as_ref() != Some(&self.id), "replaces", "an agreement cannot amend itself");
        errors.check(
            !self.backfill || self.replaces.is_some(),
            "backfill",
            "only an amendment (one that names the agreement it replaces) can give new parties earlier reports",
        );
        if !self.within_bounds(&mut errors) {
            // Checked no further: the work of comparing every flow with every other must stay small.
            return errors.into_result(());
        }
        let mut seen = HashSet::new();
        for (i, party) in self.parties.iter().enumerate() {
            errors.check(seen.insert(&party.org_id), format!("parties[{i}].org_id"), "names a party twice");
            errors.check_text(&format!("parties[{i}].name"), &party.name, 1, 200, false);
        }
        errors.check(!self.flows.is_empty(), "flows", "an agreement needs at least one flow");
        for (i, flow) in self.flows.iter().enumerate() {
            flow.check(&format!("flows[{i}]"), &seen, &mut errors);
        }
        self.check_overlaps(&mut errors);
        errors.into_result(())
    }

    /// Two flows for the same sender and recipient would leave it open which rules apply.
    fn check_overlaps(&self, errors: &mut ValidationErrors) {
        for (i, a) in self.flows.iter().enumerate() {
            for (j, b) in self.flows.iter().enumerate().skip(i + 1) {
                let shared = a
                    .from
                    .iter()
                    .flat_map(|f| a.to.iter().map(move |t| (f, t)))
                    .find(|(f, t)| b.from.contains(f) && b.to.contains(t));
                if let Some((from, to)) = shared {
                    errors.add(
                        format!("flows[{j}]"),
                        format!("overlaps flows[{i}] for {from} -> {to}: one pair of parties has one flow, so its rules are unambiguous; merge them"),
                    );
                }
            }
        }
    }

    pub fn party(&self, org: &OrgId) -> Option<&Party> {
        self.parties.iter().find(|p| &p.org_id == org)
    }

    /// Whether the agreement's dates put it in force at `now` (signatures and revocation are the
    /// lifecycle's to judge).
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.valid_from <= now && now < self.valid_until
    }

    /// The single flow from `sender` to `recipient`, if any.
    pub fn flow(&self, sender: &OrgId, recipient: &OrgId) -> Option<(usize, &Flow)> {
        self.flows.iter().enumerate().find(|(_, f)| f.from.contains(sender) && f.to.contains(recipient))
    }

    /// Whether `asker` may send `asked` requests under this agreement: the one flow between them
    /// says so.
    pub fn allows_requests(&self, asker: &OrgId, asked: &OrgId) -> bool {
        self.flow(asker, asked).is_some_and(|(_, flow)| flow.requests)
    }

    /// Checks that this local agreement allows nothing its `framework` does not: every flow must be
    /// covered, by party role, by a framework flow that is at least as wide in every respect.
    pub fn check_within(&self, framework: &Agreement) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        errors.check(
            self.framework.as_ref() == Some(&framework.id),
            "framework",
            format!("must name {}", framework.id),
        );
        errors.check(
            self.valid_from >= framework.valid_from && self.valid_until <= framework.valid_until,
            "valid_until",
            "must lie within the framework's validity",
        );
        errors.check(
            self.retention_days <= framework.retention_days,
            "retention_days",
            format!("the framework allows at most {} days", framework.retention_days),
        );
        let role = |a: &Agreement, org: &OrgId| a.party(org).map(|p| p.role);
        for (i, flow) in self.flows.iter().enumerate() {
            let pairs: Vec<(Option<PartyRole>, Option<PartyRole>)> = flow
                .from
                .iter()
                .flat_map(|f| flow.to.iter().map(move |t| (f, t)))
                .map(|(f, t)| (role(self, f), role(self, t)))
                .collect();
            for (from_role, to_role) in pairs {
                let covering = framework.flows.iter().find(|outer| {
                    outer.from.iter().any(|o| role(framework, o) == from_role)
                        && outer.to.iter().any(|o| role(framework, o) == to_role)
                });
                let path = format!("flows[{i}]");
                let Some(outer) = covering else {
                    errors.add(&path, format!("the framework has no flow from {from_role:?} to {to_role:?}"));
                    continue;
                };
                if let Some(reason) = flow.wider_than(outer) {
                    errors.add(&path, format!("allows more than the framework: {reason}"));
                }
            }
        }
        errors.into_result(())
    }
}

impl Agreement {
    /// What the agreement lets flow, in plain language, one sentence per flow: what an admin reads
    /// before signing.
    pub fn summary(&self) -> Vec<String> {
        let name = |org: &OrgId| self.party(org).map_or_else(|| org.to_string(), |p| p.name.clone());
        let names = |orgs: &[OrgId]| orgs.iter().map(name).collect::<Vec<_>>().join(" and ");
        self.flows
            .iter()
            .map(|flow| {
                let categories: Vec<&str> = flow.categories.iter().map(|c| c.as_str()).collect();
                let area = match &flow.area {
                    None => "anywhere".to_owned(),
                    Some(Area::Bbox([w, s, e, n])) => format!("within the box {w},{s} to {e},{n}"),
                    Some(Area::Municipalities(codes)) => format!("in municipalities {}", codes.join(", ")),
                    Some(Area::Polygon(points)) => format!("within a polygon of {} points", points.len()),
                };
                let f = &flow.fields;
                format!(
                    "{} share with {} reports of {} from severity {} up to TLP:{}, {area}. They see: title {}, \
                     description {}, status {}, time {}, location {}, place {}, site {}, persons {}, actions {}. \
                     {}",
                    names(&flow.from),
                    names(&flow.to),
                    categories.join(", "),
                    flow.min_severity,
                    flow.max_tlp,
                    f.title,
                    f.description,
                    f.status,
                    f.observed_at,
                    f.location,
                    f.place,
                    f.site,
                    f.persons,
                    f.actions,
                    if flow.onward_sharing { "They may share onwards." } else { "They may not share onwards." }
                ) + if flow.requests { " They may ask them for help, in requests." } else { "" }
            })
            .collect()
    }
}

impl Flow {
    fn check(&self, path: &str, parties: &HashSet<&OrgId>, errors: &mut ValidationErrors) {
        errors.check(!self.from.is_empty(), format!("{path}.from"), "names no sender");
        errors.check(!self.to.is_empty(), format!("{path}.to"), "names no recipient");
        for (list, name) in [(&self.from, "from"), (&self.to, "to")] {
            for (k, org) in list.iter().enumerate() {
                errors.check(
                    parties.contains(org),
                    format!("{path}.{name}[{k}]"),
                    format!("{org} is not a party to the agreement"),
                );
            }
        }
        for org in self.from.iter().filter(|o| self.to.contains(o)) {
            errors.add(format!("{path}.to"), format!("{org} would send to itself"));
        }
        errors.check(
            !self.categories.is_empty(),
            format!("{path}.categories"),
            "names no category: nothing would flow",
        );
        let unique: HashSet<_> = self.categories.iter().collect();
        errors.check(unique.len() == self.categories.len(), format!("{path}.categories"), "names a category twice");
        errors.check(self.max_tlp != Tlp::Red, format!("{path}.max_tlp"), "TLP:RED never leaves a node");
        errors.check(
            !(self.max_tlp == Tlp::AmberStrict && self.onward_sharing),
            format!("{path}.onward_sharing"),
            "contradicts max_tlp AMBER+STRICT, which keeps reports within the recipient organisation",
        );
        if let Some(area) = &self.area {
            check_area(area, &format!("{path}.area"), errors);
        }
        self.fields.check(&format!("{path}.fields"), errors);
    }

    /// Why this flow allows more than `outer`, if it does.
    fn wider_than(&self, outer: &Flow) -> Option<String> {
        if let Some(c) = self.categories.iter().find(|c| !outer.categories.contains(c)) {
            return Some(format!("category {c}"));
        }
        if self.min_severity < outer.min_severity {
            return Some(format!("min_severity {} is below {}", self.min_severity, outer.min_severity));
        }
        if self.max_tlp > outer.max_tlp {
            return Some(format!("max_tlp {} is above {}", self.max_tlp, outer.max_tlp));
        }
        if self.onward_sharing && !outer.onward_sharing {
            return Some("onward sharing".into());
        }
        if self.requests && !outer.requests {
            return Some("requests".into());
        }
        match (&self.area, &outer.area) {
            (_, None) => {}
            (None, Some(_)) => return Some("no area limit".into()),
            (Some(inner), Some(outer_area)) if !inner.within(outer_area) => {
                return Some("an area outside the framework's".into());
            }
            _ => {}
        }
        self.fields.finer_than(&outer.fields).map(|field| format!("a finer {field}"))
    }
}
