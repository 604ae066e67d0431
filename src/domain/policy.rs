//! The policy engine: the only way a report becomes what a recipient receives. Given a report, an
//! agreement and a recipient, it decides whether anything flows and, field by field, in what form,
//! and says which rule decided each field: the explanation that `preview` shows. Pure: no I/O, no
//! clock of its own, no key store (the pseudonym key is handed in).

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::agreement::{Agreement, AgreementId, Flow};
use super::ids::OrgId;
use super::report::{Action, Report, Tlp};
use super::rules::{LocationRule, PersonsRule, SiteRule, TextRule, TimeRule};
use super::view::{
    Always, PseudonymousPerson, ReportView, TimePrecision, ViewLocation, ViewPersons, ViewSite, role_counts,
};

/// What the engine did with one field, and under which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldDecision {
    pub field: &'static str,
    /// The rule as written in the agreement (`keep`, `grid 500m`, ...), or `always` for the fields
    /// that always travel.
    pub rule: String,
    pub effect: Effect,
}

/// What happened to a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Kept,
    Dropped,
    /// Made coarser; says how.
    Generalised(String),
    /// The report has no value here.
    Empty,
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::Kept => f.write_str("kept"),
            Effect::Dropped => f.write_str("dropped"),
            Effect::Generalised(how) => write!(f, "generalised {how}"),
            Effect::Empty => f.write_str("(no value)"),
        }
    }
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The recipient receives `view`, under the flow at index `flow`.
    Share { view: Box<ReportView>, flow: usize, explanation: Vec<FieldDecision> },
    /// Nothing flows, for this reason.
    Withhold { reason: String },
}

impl Decision {
    pub fn view(&self) -> Option<&ReportView> {
        match self {
            Decision::Share { view, .. } => Some(view),
            Decision::Withhold { .. } => None,
        }
    }
}

/// Decides what `recipient` receives of `report` under `agreement` at `now`. `pseudonym_key` keys
/// the pseudonyms of persons; it must be secret from recipients and the same for one agreement.
pub fn decide(
    report: &Report,
    agreement: &Agreement,
    recipient: &OrgId,
    now: DateTime<Utc>,
    pseudonym_key: &[u8],
) -> Decision {
    let withhold = |reason: String| Decision::Withhold { reason };
    if !agreement.in_force(now) {
        return withhold(format!("agreement {} is not in force at {now}", agreement.id));
    }
    if report.origin == *recipient {
        return withhold("the recipient is the report's origin".into());
    }
    let Some((index, flow)) = agreement.flow(&report.origin, recipient) else {
        return withhold(format!("agreement {} has no flow from {} to {recipient}", agreement.id, report.origin));
    };
    if let Some(reason) = out_of_scope(report, flow) {
        return withhold(reason);
    }
    let (view, explanation) = shape(report, agreement, flow, pseudonym_key);
    Decision::Share { view: Box::new(view), flow: index, explanation }
}

/// Checks a received view against the flow it came under, again (defence in depth): a sender
/// whose engine let through more than the flow allows is refused, not trusted. `None` when the
/// view keeps within the flow; otherwise the first thing it exceeds.
pub fn exceeds(view: &ReportView, flow: &Flow) -> Option<String> {
    let rules = &flow.fields;
    if view.tlp == Tlp::Red || view.tlp > flow.max_tlp {
        return Some(format!("TLP:{} is above the flow's limit TLP:{}", view.tlp, flow.max_tlp));
    }
    if !flow.categories.contains(&view.category) {
        return Some(format!("category {} is not among the flow's categories", view.category));
    }
    if view.severity < flow.min_severity {
        return Some(format!("severity {} is below the flow's minimum", view.severity));
    }
    if view.onward_sharing && !flow.onward_sharing {
        return Some("onward sharing is not allowed by the flow".into());
    }
    let kept = |present: bool, rule: TextRule| !present || rule == TextRule::Keep;
    let texts = [
        ("status", view.status.is_some(), rules.status),
        ("title", view.title.is_some(), rules.title),
        ("description", view.description.is_some(), rules.description),
        ("actions", view.actions.is_some(), rules.actions),
    ];
    if let Some((field, ..)) = texts.iter().find(|(_, present, rule)| !kept(*present, *rule)) {
        return Some(format!("{field} is present, but the flow drops it"));
    }
    if let Some(reason) = exceeds_in_time(view, rules.observed_at) {
        return Some(reason);
    }
    if let Some(location) = &view.location {
        if !kept(location.place_name.is_some() || location.address.is_some(), rules.place) {
            return Some("the place name or address is present, but the flow drops it".into());
        }
        if location.municipality_code.is_some() && rules.location == LocationRule::Drop {
            return Some("the municipality is present, but the flow drops the location".into());
        }
        if location.lat.is_some() != location.lon.is_some() {
            return Some("the location has a latitude or a longitude without the other".into());
        }
        let point = location.lat.zip(location.lon);
        match (rules.location, point) {
            (_, None) | (LocationRule::Keep, Some(_)) => {}
            (LocationRule::Grid { metres }, Some((lat, lon)))
                if location.cell_metres == Some(metres) && grid_centre(lat, lon, metres) == (lat, lon) => {}
            (rule, Some(_)) => return Some(format!("the point is finer than the flow's location rule '{rule}'")),
        }
        if let (Some(area), Some((lat, lon)), LocationRule::Keep) = (&flow.area, point, rules.location)
            && !area.contains(lat, lon, location.municipality_code.as_deref())
        {
            return Some("the location is outside the flow's area".into());
        }
    }
    match (&view.site, rules.site) {
        (None, _) | (Some(_), SiteRule::Keep) => {}
        (Some(site), SiteRule::Kind) if site.name.is_none() => {}
        (Some(_), rule) => return Some(format!("the site is finer than the flow's rule '{rule}'")),
    }
    let by_allowed = |by: &str| match rules.persons {
        PersonsRule::Keep => true,
        PersonsRule::Pseudonymise => is_pseudonym(by),
        PersonsRule::Roles | PersonsRule::Drop => false,
    };
    if view.actions.iter().flatten().filter_map(|a| a.by.as_deref()).any(|by| !by_allowed(by)) {
        return Some(format!("an action says who acted more finely than the flow's persons rule '{}'", rules.persons));
    }
    match (&view.persons, rules.persons) {
        (None, _)
        | (Some(ViewPersons::Full(_)), PersonsRule::Keep)
        | (Some(ViewPersons::Pseudonymous(_)), PersonsRule::Pseudonymise)
        | (Some(ViewPersons::Counts(_)), PersonsRule::Roles) => {}
        (Some(_), rule) => return Some(format!("persons are finer than the flow's rule '{rule}'")),
    }
    None
}

/// Whether the view's times are finer than the flow's time rule allows.
fn exceeds_in_time(view: &ReportView, rule: TimeRule) -> Option<String> {
    let acted = view.actions.iter().flatten().map(|a| a.at);
    let times: Vec<Option<DateTime<Utc>>> =
        [view.observed_at, view.observed_until, view.updated_at, view.expires_at].into_iter().chain(acted).collect();
    let precision = match rule {
        TimeRule::Drop if times.iter().any(Option::is_some) => {
            return Some("a time is present, but the flow drops it".into());
        }
        TimeRule::Drop | TimeRule::Keep => return None,
        TimeRule::Hour => TimePrecision::Hour,
        TimeRule::Day => TimePrecision::Day,
    };
    times
        .into_iter()
        .flatten()
        .any(|t| truncate(t, precision) != t)
        .then(|| format!("a time is finer than the flow's rule '{rule}'"))
}

/// Why the report is outside the flow, if it is.
fn out_of_scope(report: &Report, flow: &Flow) -> Option<String> {
    let content = &report.content;
    if content.tlp == Tlp::Red {
        return Some("TLP:RED never leaves the node".into());
    }
    if content.tlp > flow.max_tlp {
        return Some(format!("TLP:{} is above the flow's limit TLP:{}", content.tlp, flow.max_tlp));
    }
    if !flow.categories.contains(&content.category) {
        return Some(format!("category {} is not among the flow's categories", content.category));
    }
    if content.severity < flow.min_severity {
        return Some(format!("severity {} is below the flow's minimum {}", content.severity, flow.min_severity));
    }
    let location = &content.location;
    if let Some(area) = &flow.area
        && !area.contains(location.lat, location.lon, location.municipality_code.as_deref())
    {
        return Some("the location is outside the flow's area".into());
    }
    None
}

/// Builds the view under `flow`'s rules, and the explanation of every field.
fn shape(report: &Report, agreement: &Agreement, flow: &Flow, key: &[u8]) -> (ReportView, Vec<FieldDecision>) {
    let rules = &flow.fields;
    let content = &report.content;
    let mut explain = Explanation::default();
    for field in ["id", "origin", "version", "category", "severity", "urgent", "tlp", "retracted"] {
        explain.push(field, "always", Effect::Kept);
    }
    let mut view: ReportView = Always {
        id: report.id,
        origin: report.origin.clone(),
        version: report.version,
        agreement: agreement.id.clone(),
        category: content.category,
        severity: content.severity,
        urgent: content.urgent,
        tlp: content.tlp,
        retracted: report.retracted.is_some(),
        onward_sharing: flow.onward_sharing,
    }
    .into();
    if report.retracted.is_some() {
        // A retraction says only which report is withdrawn.
        explain.push("content", "retracted", Effect::Dropped);
        return (view, explain.0);
    }

    view.status = explain.text("status", rules.status, Some(content.status));
    view.title = explain.text("title", rules.title, Some(content.title.clone()));
    view.description =
        explain.text("description", rules.description, Some(content.description.clone()).filter(|d| !d.is_empty()));

    let precision = match rules.observed_at {
        TimeRule::Drop => None,
        TimeRule::Day => Some(TimePrecision::Day),
        TimeRule::Hour => Some(TimePrecision::Hour),
        TimeRule::Keep => Some(TimePrecision::Exact),
    };
    if let Some(p) = precision {
        view.time_precision = Some(p);
        view.observed_at = Some(truncate(content.observed_at, p));
        view.observed_until = content.observed_until.map(|t| truncate(t, p));
        view.updated_at = Some(truncate(report.updated_at, p));
        // The expiry could give away when the report was filed: it follows the same rule.
        view.expires_at = content.expires_at.map(|t| truncate(t, p));
    }
    explain.push("observed_at", &rules.observed_at.to_string(), time_effect(precision, rules.observed_at));
    let actions = explain.text("actions", rules.actions, Some(content.actions.clone()).filter(|a| !a.is_empty()));
    view.actions = actions.map(|actions| shape_actions(&mut explain, actions, flow, precision, key, &agreement.id));

    let location = &content.location;
    let mut view_location = ViewLocation::default();
    let rule = rules.location.to_string();
    match rules.location {
        LocationRule::Drop => explain.push("location", &rule, Effect::Dropped),
        LocationRule::Municipality => {
            view_location.municipality_code = location.municipality_code.clone();
            let effect = if location.municipality_code.is_some() {
                Effect::Generalised("to the municipality".into())
            } else {
                Effect::Dropped
            };
            explain.push("location", &rule, effect);
        }
        LocationRule::Grid { metres } => {
            let (lat, lon) = grid_centre(location.lat, location.lon, metres);
            (view_location.lat, view_location.lon, view_location.cell_metres) = (Some(lat), Some(lon), Some(metres));
            view_location.municipality_code = location.municipality_code.clone();
            explain.push("location", &rule, Effect::Generalised(format!("to the centre of a {metres} m cell")));
        }
        LocationRule::Keep => {
            (view_location.lat, view_location.lon) = (Some(location.lat), Some(location.lon));
            view_location.municipality_code = location.municipality_code.clone();
            explain.push("location", &rule, Effect::Kept);
        }
    }
    view_location.place_name = explain.text("place_name", rules.place, location.place_name.clone());
    view_location.address = explain.text("address", rules.place, location.address.clone());
    if view_location != ViewLocation::default() {
        view.location = Some(view_location);
    }

    let rule = rules.site.to_string();
    view.site = match (&location.site, rules.site) {
        (None, _) => {
            explain.push("site", &rule, Effect::Empty);
            None
        }
        (Some(_), SiteRule::Drop) => {
            explain.push("site", &rule, Effect::Dropped);
            None
        }
        (Some(site), SiteRule::Kind) => {
            explain.push("site", &rule, Effect::Generalised("to its kind".into()));
            Some(ViewSite { kind: site.kind, name: None })
        }
        (Some(site), SiteRule::Keep) => {
            explain.push("site", &rule, Effect::Kept);
            Some(ViewSite { kind: site.kind, name: site.name.clone() })
        }
    };

    let rule = rules.persons.to_string();
    view.persons = if content.persons.is_empty() {
        explain.push("persons", &rule, Effect::Empty);
        None
    } else {
        match rules.persons {
            PersonsRule::Drop => {
                explain.push("persons", &rule, Effect::Dropped);
                None
            }
            PersonsRule::Roles => {
                explain.push("persons", &rule, Effect::Generalised("to roles and counts".into()));
                Some(ViewPersons::Counts(role_counts(content.persons.iter().map(|p| p.role))))
            }
            PersonsRule::Pseudonymise => {
                explain.push("persons", &rule, Effect::Generalised("to roles and pseudonyms".into()));
                let people = content
                    .persons
                    .iter()
                    .map(|p| PseudonymousPerson {
                        role: p.role,
                        pseudonym: p.name.as_deref().map(|n| pseudonym(key, &agreement.id, n)),
                    })
                    .collect();
                Some(ViewPersons::Pseudonymous(people))
            }
            PersonsRule::Keep => {
                explain.push("persons", &rule, Effect::Kept);
                Some(ViewPersons::Full(content.persons.clone()))
            }
        }
    };
    (view, explain.0)
}

/// The actions as the flow allows them: when each was done follows the time rule and who did it
/// the persons rule (kept, pseudonymised, or dropped where the flow gives roles or nothing), so
/// that an action never tells more of a moment or a person than the rest of the view does.
fn shape_actions(
    explain: &mut Explanation,
    mut actions: Vec<Action>,
    flow: &Flow,
    precision: Option<TimePrecision>,
    key: &[u8],
    agreement: &AgreementId,
) -> Vec<Action> {
    let rules = &flow.fields;
    if actions.iter().any(|a| a.at.is_some()) {
        explain.push("actions.at", &rules.observed_at.to_string(), time_effect(precision, rules.observed_at));
    }
    if actions.iter().any(|a| a.by.is_some()) {
        let effect = match rules.persons {
            PersonsRule::Keep => Effect::Kept,
            PersonsRule::Pseudonymise => Effect::Generalised("to pseudonyms".into()),
            PersonsRule::Roles | PersonsRule::Drop => Effect::Dropped,
        };
        explain.push("actions.by", &rules.persons.to_string(), effect);
    }
    for action in &mut actions {
        action.at = action.at.zip(precision).map(|(at, p)| truncate(at, p));
        action.by = match rules.persons {
            PersonsRule::Keep => action.by.take(),
            PersonsRule::Pseudonymise => action.by.as_deref().map(|by| pseudonym(key, agreement, by)),
            PersonsRule::Roles | PersonsRule::Drop => None,
        };
    }
    actions
}

#[derive(Default)]
struct Explanation(Vec<FieldDecision>);

impl Explanation {
    fn push(&mut self, field: &'static str, rule: &str, effect: Effect) {
        self.0.push(FieldDecision { field, rule: rule.to_owned(), effect });
    }

    /// Applies a keep-or-drop rule to an optional value.
    fn text<T>(&mut self, field: &'static str, rule: TextRule, value: Option<T>) -> Option<T> {
        let effect = match (&value, rule) {
            (None, _) => Effect::Empty,
            (Some(_), TextRule::Drop) => Effect::Dropped,
            (Some(_), TextRule::Keep) => Effect::Kept,
        };
        self.push(field, &rule.to_string(), effect);
        value.filter(|_| rule == TextRule::Keep)
    }
}

/// A time made no finer than `precision` (UTC).
pub fn truncate(t: DateTime<Utc>, precision: TimePrecision) -> DateTime<Utc> {
    let step = match precision {
        TimePrecision::Exact => return t,
        TimePrecision::Hour => TimeDelta::hours(1),
        TimePrecision::Day => TimeDelta::days(1),
    };
    t.duration_trunc(step).unwrap_or(t)
}

/// Metres in one degree of latitude (and of longitude at the equator).
const METRES_PER_DEGREE: f64 = 111_320.0;

/// The centre of the grid cell of side `metres` that holds the point. Cells are bands of latitude
/// cut into longitude steps that keep roughly `metres` at the band's centre.
pub fn grid_centre(lat: f64, lon: f64, metres: u32) -> (f64, f64) {
    let lat_step = f64::from(metres) / METRES_PER_DEGREE;
    let centre_lat = ((lat / lat_step).floor() + 0.5) * lat_step;
    let centre_lat = centre_lat.clamp(-90.0, 90.0);
    let lon_step = (f64::from(metres) / (METRES_PER_DEGREE * centre_lat.to_radians().cos().max(0.01))).min(360.0);
    let centre_lon = (((lon / lon_step).floor() + 0.5) * lon_step).clamp(-180.0, 180.0);
    (centre_lat, centre_lon)
}

/// What the time rule `rule`, giving times to `precision` (none: dropped), does to a time.
fn time_effect(precision: Option<TimePrecision>, rule: TimeRule) -> Effect {
    match precision {
        None => Effect::Dropped,
        Some(TimePrecision::Exact) => Effect::Kept,
        Some(_) => Effect::Generalised(format!("to the {rule}")),
    }
}

/// Whether `text` has the form of a [`pseudonym`]: `p-` and 16 URL-safe base64 characters.
fn is_pseudonym(text: &str) -> bool {
    text.strip_prefix("p-")
        .is_some_and(|tag| tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// A stable pseudonym for a name within one agreement: a keyed SHA-256 HMAC, shortened.
fn pseudonym(key: &[u8], agreement: &AgreementId, name: &str) -> String {
    use base64::Engine;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let normalised = name.trim().to_lowercase();
    let tag = ring::hmac::sign(&key, format!("{agreement}\u{0}{normalised}").as_bytes());
    format!("p-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..12]))
}
