//! The report form: what a person typed, kept as typed so a refused form comes back as it was,
//! and read into a [`ReportContent`] that the API's own validation then judges. Every problem is
//! named by the same field path the API uses (`location.lat`, `persons[0].age`), so the page puts
//! each error beside its field. Times are read in the node's time zone.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::form::FormData;
use super::i18n::{Lang, Texts};
use super::picture::Choice;
use super::time;
use crate::config::ConsoleSite;
use crate::domain::{
    Action, Category, Location, Person, PersonRole, Report, ReportContent, Severity, Site, SiteKind, Status, Tlp,
    ValidationErrors,
};

/// One "what was done" row.
#[derive(Debug, Clone, Default)]
pub struct ActionRow {
    pub what: String,
    pub by: String,
    /// When it was done, kept as it was (the form does not edit it).
    pub at: Option<DateTime<Utc>>,
}

/// One person row.
#[derive(Debug, Clone, Default)]
pub struct PersonRow {
    pub role: String,
    pub name: String,
    pub age: String,
    pub description: String,
}

/// The form's values as typed.
#[derive(Debug, Clone, Default)]
pub struct ReportForm {
    pub category: String,
    pub severity: String,
    pub status: String,
    pub tlp: String,
    /// Marked urgent: shared ahead of everything and shown to the receivers as an alert.
    pub urgent: bool,
    pub observed_at: String,
    pub observed_until: String,
    pub expires_at: String,
    pub title: String,
    pub description: String,
    pub lat: String,
    pub lon: String,
    pub org_site: String,
    pub site_kind: String,
    pub site_name: String,
    pub place_name: String,
    pub address: String,
    pub municipality_code: String,
    pub actions: Vec<ActionRow>,
    pub persons: Vec<PersonRow>,
    /// The version being changed (an edit), sent back as the form's `If-Match`.
    pub version: Option<u32>,
}

/// Problems by field path, in the reader's language.
#[derive(Debug, Default)]
pub struct FieldErrors(HashMap<String, String>);

impl FieldErrors {
    /// The errors of a refused form, their messages in `lang`.
    pub fn of(errors: &ValidationErrors, lang: Lang) -> FieldErrors {
        let mut by_field = HashMap::new();
        for error in errors.errors() {
            let entry: &mut String = by_field.entry(error.field.clone()).or_default();
            if !entry.is_empty() {
                entry.push_str("; ");
            }
            entry.push_str(&message(&error.message, lang));
        }
        FieldErrors(by_field)
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// The error of a field of person row `i`.
    pub fn person(&self, i: &usize, field: &str) -> Option<&str> {
        self.get(&format!("persons[{i}].{field}"))
    }

    /// The error of a field of action row `i`.
    pub fn action(&self, i: &usize, field: &str) -> Option<&str> {
        self.get(&format!("actions[{i}].{field}"))
    }

    /// Every error whose field the form does not show beside an input (so none is lost).
    pub fn others(&self) -> Vec<(&str, &str)> {
        const SHOWN: [&str; 16] = [
            "category",
            "severity",
            "status",
            "tlp",
            "observed_at",
            "observed_until",
            "expires_at",
            "title",
            "description",
            "location.lat",
            "location.lon",
            "location.site.name",
            "location.place_name",
            "location.address",
            "location.municipality_code",
            "If-Match",
        ];
        let mut others: Vec<(&str, &str)> = self
            .0
            .iter()
            .filter(|(field, _)| {
                !SHOWN.contains(&field.as_str()) && !field.starts_with("persons[") && !field.starts_with("actions[")
            })
            .map(|(f, m)| (f.as_str(), m.as_str()))
            .collect();
        others.sort();
        others
    }
}

impl ReportForm {
    /// An empty form: it happened now, ongoing, marked AMBER.
    pub fn blank(now: DateTime<Utc>, zone: Tz) -> ReportForm {
        ReportForm {
            severity: Severity::Moderate.as_str().into(),
            status: Status::Ongoing.as_str().into(),
            tlp: Tlp::Amber.as_str().into(),
            observed_at: time::input_value(now, zone),
            ..ReportForm::default()
        }
    }

    /// The form of an existing report, to change it.
    pub fn of_report(report: &Report, zone: Tz) -> ReportForm {
        let c = &report.content;
        let l = &c.location;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        ReportForm {
            category: c.category.as_str().into(),
            severity: c.severity.as_str().into(),
            status: c.status.as_str().into(),
            tlp: c.tlp.as_str().into(),
            urgent: c.urgent,
            observed_at: time::input_value(c.observed_at, zone),
            observed_until: c.observed_until.map(|t| time::input_value(t, zone)).unwrap_or_default(),
            expires_at: c.expires_at.map(|t| time::input_value(t, zone)).unwrap_or_default(),
            title: c.title.clone(),
            description: c.description.clone(),
            lat: l.lat.to_string(),
            lon: l.lon.to_string(),
            org_site: String::new(),
            site_kind: l.site.as_ref().map(|s| s.kind.as_str().to_owned()).unwrap_or_default(),
            site_name: l.site.as_ref().map(|s| text(&s.name)).unwrap_or_default(),
            place_name: text(&l.place_name),
            address: text(&l.address),
            municipality_code: text(&l.municipality_code),
            actions: c.actions.iter().map(|a| ActionRow { what: a.what.clone(), by: text(&a.by), at: a.at }).collect(),
            persons: c
                .persons
                .iter()
                .map(|p| PersonRow {
                    role: p.role.as_str().into(),
                    name: text(&p.name),
                    age: p.age.map(|a| a.to_string()).unwrap_or_default(),
                    description: text(&p.description),
                })
                .collect(),
            version: Some(report.version.get()),
        }
    }

    /// The form as the browser sent it. Rows left empty are dropped, so row `i` on the page is
    /// `persons[i]` of the report.
    pub fn of_form(form: &FormData) -> ReportForm {
        let rows = |name: &str| form.all(name).into_iter().map(|v| v.trim().to_owned()).collect::<Vec<_>>();
        let (whats, bys, ats) = (rows("action_what"), rows("action_by"), rows("action_at"));
        let actions = whats
            .iter()
            .enumerate()
            .map(|(i, what)| ActionRow {
                what: what.clone(),
                by: bys.get(i).cloned().unwrap_or_default(),
                at: ats.get(i).and_then(|at| DateTime::parse_from_rfc3339(at).ok()).map(|t| t.with_timezone(&Utc)),
            })
            .filter(|a| !a.what.is_empty() || !a.by.is_empty())
            .collect();
        let (roles, names, ages, descriptions) =
            (rows("person_role"), rows("person_name"), rows("person_age"), rows("person_description"));
        let persons = roles
            .iter()
            .enumerate()
            .map(|(i, role)| PersonRow {
                role: role.clone(),
                name: names.get(i).cloned().unwrap_or_default(),
                age: ages.get(i).cloned().unwrap_or_default(),
                description: descriptions.get(i).cloned().unwrap_or_default(),
            })
            .filter(|p| !(p.role.is_empty() && p.name.is_empty() && p.age.is_empty() && p.description.is_empty()))
            .collect();
        let text = |name: &str| form.text(name).to_owned();
        ReportForm {
            category: text("category"),
            severity: text("severity"),
            status: text("status"),
            tlp: text("tlp"),
            urgent: !form.text("urgent").is_empty(),
            observed_at: text("observed_at"),
            observed_until: text("observed_until"),
            expires_at: text("expires_at"),
            title: text("title"),
            description: form.all("description").first().map(|d| d.trim_end().to_owned()).unwrap_or_default(),
            lat: text("lat"),
            lon: text("lon"),
            org_site: text("org_site"),
            site_kind: text("site_kind"),
            site_name: text("site_name"),
            place_name: text("place_name"),
            address: text("address"),
            municipality_code: text("municipality_code"),
            actions,
            persons,
            version: form.text("version").parse().ok(),
        }
    }

    /// The report content the form describes, or every problem in reading it. The content still
    /// goes through the API's validation after this.
    pub fn content(&self, zone: Tz, sites: &[ConsoleSite]) -> Result<ReportContent, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let choice = |errors: &mut ValidationErrors, field: &str, value: &str| -> Option<String> {
            if value.is_empty() {
                errors.add(field, "choose one");
                None
            } else {
                Some(value.to_owned())
            }
        };
        let category =
            choice(&mut errors, "category", &self.category).and_then(|v| parsed(&mut errors, "category", &v));
        let severity =
            choice(&mut errors, "severity", &self.severity).and_then(|v| parsed(&mut errors, "severity", &v));
        let status = parsed(&mut errors, "status", if self.status.is_empty() { "ongoing" } else { &self.status });
        let tlp = parsed(&mut errors, "tlp", if self.tlp.is_empty() { "AMBER" } else { &self.tlp });
        let moment = |errors: &mut ValidationErrors, field: &str, value: &str| -> Option<DateTime<Utc>> {
            if value.is_empty() {
                return None;
            }
            time::parse_input(value, zone).map_err(|why| errors.add(field, why)).ok()
        };
        let observed_at = moment(&mut errors, "observed_at", &self.observed_at);
        if self.observed_at.is_empty() {
            errors.add("observed_at", "say when it happened");
        }
        let observed_until = moment(&mut errors, "observed_until", &self.observed_until);
        let expires_at = moment(&mut errors, "expires_at", &self.expires_at);
        let site = sites.iter().find(|s| s.name == self.org_site);
        let coordinate = |errors: &mut ValidationErrors,
                          field: &str,
                          value: &str,
                          from_site: Option<f64>|
         -> Option<f64> {
            if value.is_empty() {
                if from_site.is_none() {
                    errors.add(field, "tap the map, use your position or choose a site");
                }
                return from_site;
            }
            value.replace(',', ".").parse::<f64>().map_err(|_| errors.add(field, "must be a number of degrees")).ok()
        };
        let lat = coordinate(&mut errors, "location.lat", &self.lat, site.map(|s| s.lat));
        let lon = coordinate(&mut errors, "location.lon", &self.lon, site.map(|s| s.lon));
        let site_kind: Option<SiteKind> = match (self.site_kind.as_str(), site) {
            ("", Some(site)) => Some(site.kind),
            ("", None) => None,
            (kind, _) => parsed(&mut errors, "location.site.kind", kind),
        };
        let optional = |value: &str| Some(value.to_owned()).filter(|v| !v.is_empty());
        let site_name = optional(&self.site_name).or_else(|| site.map(|s| s.name.clone()));
        let persons = self
            .persons
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let field = format!("persons[{i}]");
                let role = if p.role.is_empty() {
                    errors.add(format!("{field}.role"), "choose the person's role");
                    None
                } else {
                    parsed::<PersonRole>(&mut errors, &format!("{field}.role"), &p.role)
                };
                let age = match p.age.as_str() {
                    "" => None,
                    age => age
                        .parse::<u8>()
                        .map_err(|_| errors.add(format!("{field}.age"), "must be between 0 and 130"))
                        .ok(),
                };
                Some(Person { role: role?, name: optional(&p.name), age, description: optional(&p.description) })
            })
            .collect();
        let actions =
            self.actions.iter().map(|a| Action { what: a.what.clone(), by: optional(&a.by), at: a.at }).collect();
        let content = match (category, severity, status, tlp, observed_at, lat, lon) {
            (Some(category), Some(severity), Some(status), Some(tlp), Some(observed_at), Some(lat), Some(lon)) => {
                ReportContent {
                    observed_at,
                    observed_until,
                    category,
                    severity,
                    urgent: self.urgent,
                    status,
                    title: self.title.clone(),
                    description: self.description.clone(),
                    location: Location {
                        lat,
                        lon,
                        place_name: optional(&self.place_name),
                        address: optional(&self.address).or_else(|| site.and_then(|s| s.address.clone())),
                        site: site_kind.map(|kind| Site { kind, name: site_name }),
                        municipality_code: optional(&self.municipality_code)
                            .or_else(|| site.and_then(|s| s.municipality_code.clone())),
                    },
                    persons,
                    actions,
                    tlp,
                    expires_at,
                }
            }
            _ => return Err(errors),
        };
        errors.into_result(content)
    }

    /// The form's choices of `field`, with the current value chosen and an empty choice first
    /// where the field may be left empty.
    pub fn choices(&self, field: &str, t: &Texts) -> Vec<Choice> {
        let choice = |value: &str, label: &str, current: &str| Choice {
            value: value.into(),
            label: label.into(),
            chosen: value == current,
        };
        match field {
            "category" => std::iter::once(choice("", "–", &self.category))
                .chain(Category::ALL.iter().map(|c| choice(c.as_str(), t.category(*c), &self.category)))
                .collect(),
            "severity" => Severity::ALL.iter().map(|s| choice(s.as_str(), t.severity(*s), &self.severity)).collect(),
            "status" => Status::ALL.iter().map(|s| choice(s.as_str(), t.report_status(*s), &self.status)).collect(),
            "tlp" => Tlp::ALL.iter().map(|v| choice(v.as_str(), t.tlp(*v), &self.tlp)).collect(),
            "site_kind" => std::iter::once(choice("", "–", &self.site_kind))
                .chain(SiteKind::ALL.iter().map(|k| choice(k.as_str(), t.site_kind(*k), &self.site_kind)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The choices of a person row's role.
    pub fn person_roles(&self, current: &str, t: &Texts) -> Vec<Choice> {
        std::iter::once(Choice { value: String::new(), label: "–".into(), chosen: current.is_empty() })
            .chain(PersonRole::ALL.iter().map(|r| Choice {
                value: r.as_str().into(),
                label: t.person_role(*r).into(),
                chosen: r.as_str() == current,
            }))
            .collect()
    }
}

fn parsed<T: std::str::FromStr>(errors: &mut ValidationErrors, field: &str, value: &str) -> Option<T> {
    value.parse().map_err(|_| errors.add(field, "is not one of the choices")).ok()
}

/// A validation message in the reader's language: the node's messages are English; the ones a
/// person meets on this form are said in Swedish too.
pub fn message(english: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return english.to_owned();
    }
    let fixed = [
        ("must not be empty", "får inte vara tomt"),
        ("choose one", "välj ett alternativ"),
        ("say when it happened", "ange när det hände"),
        ("tap the map, use your position or choose a site", "tryck på kartan, använd din position eller välj en plats"),
        ("must be a number of degrees", "måste vara ett tal i grader"),
        ("choose the person's role", "välj personens roll"),
        ("must be between 0 and 130", "måste vara mellan 0 och 130"),
        ("is not one of the choices", "är inte ett av alternativen"),
        (
            "must not be in the future (it is when the incident happened)",
            "får inte ligga i framtiden (det är när det hände)",
        ),
        ("must not be before observed_at", "får inte vara före när det hände"),
        ("must be in the future", "måste ligga i framtiden"),
        ("must be between -90 and 90 (WGS84 degrees)", "måste vara mellan -90 och 90 (WGS84-grader)"),
        ("must be between -180 and 180 (WGS84 degrees)", "måste vara mellan -180 och 180 (WGS84-grader)"),
        (
            "must be a four-digit municipality code, such as 0581",
            "måste vara en fyrsiffrig kommunkod, till exempel 0581",
        ),
        ("must not contain control characters", "får inte innehålla styrtecken"),
        (
            "must be a date and time, such as 2026-12-01T21:30",
            "måste vara datum och tid, till exempel 2026-12-01T21:30",
        ),
        ("at most 100 persons per report", "högst 100 personer per rapport"),
        ("at most 100 actions per report", "högst 100 åtgärder per rapport"),
    ];
    if let Some((_, swedish)) = fixed.iter().find(|(en, _)| *en == english) {
        return (*swedish).to_owned();
    }
    if let Some(rest) = english.strip_prefix("must be at most ")
        && let Some((max, _)) = rest.split_once(" characters")
    {
        return format!("får vara högst {max} tecken");
    }
    english.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: Tz = chrono_tz::Europe::Stockholm;

    fn filled() -> FormData {
        FormData::from_pairs(&[
            ("category", "vandalism"),
            ("severity", "moderate"),
            ("status", "ongoing"),
            ("tlp", "AMBER"),
            ("observed_at", "2026-12-01T21:30"),
            ("title", "Broken window"),
            ("lat", "58,611"),
            ("lon", "16.151"),
            // A browser sends every input of every row, the empty row's too.
            ("person_role", ""),
            ("person_name", ""),
            ("person_age", ""),
            ("person_description", ""),
            ("person_role", "witness"),
            ("person_name", "Anna"),
            ("person_age", "34"),
            ("person_description", ""),
            ("action_what", "Called the guards"),
            ("action_by", ""),
        ])
    }

    #[test]
    fn a_filled_form_reads_as_the_content_it_describes() {
        let content = ReportForm::of_form(&filled()).content(ZONE, &[]).unwrap();
        assert_eq!(content.category, Category::Vandalism);
        assert_eq!(content.location.lat, 58.611, "a decimal comma is read as a point");
        assert_eq!(content.persons.len(), 1, "the empty row is dropped");
        assert_eq!(content.persons[0].age, Some(34));
        assert_eq!(content.actions[0].what, "Called the guards");
        assert_eq!(content.observed_at.to_rfc3339(), "2026-12-01T20:30:00+00:00");
    }

    #[test]
    fn every_unreadable_value_is_named_by_the_apis_field_path() {
        let mut form = ReportForm::of_form(&filled());
        form.lat = "north".into();
        form.category = String::new();
        form.persons[0].age = "old".into();
        let errors = form.content(ZONE, &[]).unwrap_err();
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["category", "location.lat", "persons[0].age"]);
    }

    #[test]
    fn a_chosen_site_supplies_the_place_the_form_leaves_empty() {
        let site = ConsoleSite {
            name: "Hagebyskolan".into(),
            kind: SiteKind::School,
            lat: 58.61,
            lon: 16.15,
            address: Some("Hagebygatan 10".into()),
            municipality_code: Some("0581".into()),
        };
        let mut form = ReportForm::of_form(&filled());
        (form.lat, form.lon, form.org_site) = (String::new(), String::new(), "Hagebyskolan".into());
        let content = form.content(ZONE, &[site]).unwrap();
        assert_eq!((content.location.lat, content.location.lon), (58.61, 16.15));
        assert_eq!(content.location.site, Some(Site { kind: SiteKind::School, name: Some("Hagebyskolan".into()) }));
        assert_eq!(content.location.municipality_code.as_deref(), Some("0581"));
    }

    #[test]
    fn the_messages_a_person_meets_here_are_said_in_swedish() {
        assert_eq!(message("must not be empty", Lang::Sv), "får inte vara tomt");
        assert_eq!(message("must be at most 200 characters (it is 250)", Lang::Sv), "får vara högst 200 tecken");
        assert_eq!(message("something new", Lang::Sv), "something new");
        assert_eq!(message("must not be empty", Lang::En), "must not be empty");
    }
}
