//! The per-recipient panel of the filing form: before a report is filed (or a new version stored),
//! who will receive it and exactly what each will see, field by field, with the rule that decided
//! each field and the value as the recipient gets it. It asks `sharing::deliveries`, the exchange's
//! own answer, so the panel cannot say anything the exchange would not do.

use askama::Template;
use chrono_tz::Tz;

use super::ConsoleSettings;
use super::i18n::{Lang, Texts};
use super::reports::partner_names;
use super::time;
use super::viewer::Viewer;
use crate::api::AppState;
use crate::domain::policy::{Effect, FieldDecision};
use crate::domain::view::{ReportView, ViewPersons};
use crate::domain::{Report, ReportContent, ReportId, ValidationErrors};
use crate::federation::sharing::{Delivery, deliveries};
use crate::http::ApiError;

/// One field of what a recipient receives.
pub struct FieldLine {
    pub field: &'static str,
    pub rule: String,
    pub effect: String,
    /// The value as the recipient gets it; empty where it gets none.
    pub value: String,
    pub kept: bool,
    /// Left out by the rule (not merely empty in the report).
    pub dropped: bool,
}

/// What one partner gets.
pub struct RecipientLine {
    pub name: String,
    pub org: String,
    pub agreement: String,
    /// `share`, `withdraw` or `withhold`.
    pub outcome: &'static str,
    pub reason: String,
    pub fields: Vec<FieldLine>,
}

impl RecipientLine {
    /// What the recipient sees, in one line: each field it gets, with its value.
    pub fn sees(&self) -> String {
        let seen: Vec<String> = self
            .fields
            .iter()
            .filter(|f| f.kept && !f.value.is_empty())
            .map(|f| format!("{}: {}", f.field, f.value))
            .collect();
        seen.join(" · ")
    }

    /// The fields it does not get.
    pub fn misses(&self) -> String {
        let mut missed: Vec<&str> = self.fields.iter().filter(|f| f.dropped).map(|f| f.field).collect();
        missed.dedup();
        missed.join(", ")
    }
}

/// The panel, or why it cannot be shown yet.
#[derive(Template)]
#[template(path = "recipients.html")]
pub struct RecipientPanel {
    pub t: &'static Texts,
    pub federates: bool,
    /// Set while the form lacks what the preview needs (the fields to fill in).
    pub incomplete: Option<String>,
    pub lines: Vec<RecipientLine>,
}

/// The panel for the report the form describes (a new one, or the next version of `editing`).
pub async fn panel(
    state: &AppState,
    viewer: &Viewer,
    settings: &ConsoleSettings,
    editing: Option<ReportId>,
    content: Result<ReportContent, ValidationErrors>,
) -> Result<RecipientPanel, ApiError> {
    let t = viewer.lang.texts();
    if state.federation.is_none() {
        return Ok(RecipientPanel { t, federates: false, incomplete: None, lines: Vec::new() });
    }
    let now = state.clock.now();
    let incomplete = |errors: ValidationErrors| {
        let mut fields: Vec<&str> = errors.errors().iter().map(|e| form_label(&e.field, t)).collect();
        fields.dedup();
        Ok(RecipientPanel { t, federates: true, incomplete: Some(fields.join(", ")), lines: Vec::new() })
    };
    let current = match editing {
        Some(id) => Some(crate::api::reports::own_report(&viewer.caller, state, &id.to_string()).await?),
        None => None,
    };
    // What an update will store: the persons the writer does not see stay as they are.
    let content = match (&current, content) {
        (Some(current), Ok(content)) => {
            Ok(crate::api::reports::keep_hidden_persons(state, &viewer.caller, current, content)?)
        }
        (_, content) => content,
    };
    let valid = match content.and_then(|c| c.validate(now)) {
        Ok(valid) => valid,
        Err(errors) => return incomplete(errors),
    };
    // A new report's persons are what the writer typed; a stored one's are shown as their roles allow.
    let stored = current.is_some();
    let draft = match current {
        Some(current) => current.revise(valid, now).map_err(|e| ApiError::Conflict(e.to_string()))?,
        None => Report::file(viewer.caller.org.clone(), valid, now),
    };
    lines_for(state, viewer, settings, &draft, stored).await
}

/// The panel for a report as it is stored (one held for a release, say): who would receive what.
pub async fn panel_of(
    state: &AppState,
    viewer: &Viewer,
    settings: &ConsoleSettings,
    report: &Report,
) -> Result<RecipientPanel, ApiError> {
    lines_for(state, viewer, settings, report, true).await
}

/// Who would receive what of `draft`; with `stored`, persons as far as the viewer's roles see them.
async fn lines_for(
    state: &AppState,
    viewer: &Viewer,
    settings: &ConsoleSettings,
    draft: &Report,
    stored: bool,
) -> Result<RecipientPanel, ApiError> {
    let t = viewer.lang.texts();
    let Some(federation) = &state.federation else {
        return Ok(RecipientPanel { t, federates: false, incomplete: None, lines: Vec::new() });
    };
    let now = state.clock.now();
    let names = partner_names(state).await?;
    let name_of = |org: &str| names.iter().find(|(id, _)| id == org).map_or_else(|| org.to_owned(), |(_, n)| n.clone());
    let lines = deliveries(federation, draft, now)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|delivery| match delivery {
            Delivery::Share { recipient, view, explanation } => {
                // What the recipient would receive, as far as the viewer's roles see stored persons.
                let view = if stored { state.persons.shown_to(&viewer.caller.roles, *view) } else { *view };
                RecipientLine {
                    name: name_of(recipient.as_str()),
                    org: recipient.to_string(),
                    agreement: view.agreement.to_string(),
                    outcome: "share",
                    reason: String::new(),
                    fields: field_lines(&explanation, &view, t, settings.zone, viewer.lang),
                }
            }
            Delivery::Withdraw { recipient, view } => RecipientLine {
                name: name_of(recipient.as_str()),
                org: recipient.to_string(),
                agreement: view.agreement.to_string(),
                outcome: "withdraw",
                reason: String::new(),
                fields: Vec::new(),
            },
            Delivery::Withhold { recipient, agreement, reason } => RecipientLine {
                name: name_of(recipient.as_str()),
                org: recipient.to_string(),
                agreement: agreement.to_string(),
                outcome: "withhold",
                reason,
                fields: Vec::new(),
            },
        })
        .collect();
    Ok(RecipientPanel { t, federates: true, incomplete: None, lines })
}

/// The form's label of a field path the form or the API named.
fn form_label(path: &str, t: &Texts) -> &'static str {
    match path.split(['[', '.']).next().unwrap_or(path) {
        "category" => t.field_category,
        "severity" => t.field_severity,
        "status" => t.field_status,
        "observed_at" => t.field_observed_at,
        "observed_until" => t.field_observed_until,
        "expires_at" => t.field_expires_at,
        "title" => t.field_title,
        "description" => t.field_description,
        "location" => t.field_where,
        "persons" => t.field_persons,
        "actions" => t.field_actions,
        "tlp" => t.field_tlp,
        _ => t.error_other,
    }
}

/// The explanation as lines a person reads: the identifying fields that always travel are left
/// out, the rest say rule, effect and value.
pub(super) fn field_lines(
    explanation: &[FieldDecision],
    view: &ReportView,
    t: &Texts,
    zone: Tz,
    lang: Lang,
) -> Vec<FieldLine> {
    explanation
        .iter()
        .filter(|d| !matches!(d.field, "id" | "origin" | "version" | "retracted"))
        .map(|d| FieldLine {
            field: t.field(d.field.split('.').next().unwrap_or(d.field)),
            rule: if d.rule == "always" { t.rule_always.to_owned() } else { d.rule.clone() },
            effect: effect_text(&d.effect, t),
            value: seen(d.field, view, t, zone, lang),
            kept: !matches!(d.effect, Effect::Dropped | Effect::Empty),
            dropped: d.effect == Effect::Dropped,
        })
        .collect()
}

/// What the engine did, in the reader's language.
fn effect_text(effect: &Effect, t: &Texts) -> String {
    match effect {
        Effect::Kept => t.effect_kept.to_owned(),
        Effect::Dropped => t.effect_dropped.to_owned(),
        Effect::Empty => t.effect_empty.to_owned(),
        Effect::Generalised(how) if t.lang == Lang::Sv => {
            let how = match how.as_str() {
                "to the municipality" => "till kommunen".to_owned(),
                "to its kind" => "till typen av plats".to_owned(),
                "to roles and counts" => "till roller och antal".to_owned(),
                "to roles and pseudonyms" => "till roller och pseudonymer".to_owned(),
                "to pseudonyms" => "till pseudonymer".to_owned(),
                "to the hour" => "till timmen".to_owned(),
                "to the day" => "till dagen".to_owned(),
                other => other
                    .strip_prefix("to the centre of a ")
                    .and_then(|rest| rest.strip_suffix(" m cell"))
                    .map_or_else(|| other.to_owned(), |m| format!("till mitten av en {m} m-ruta")),
            };
            format!("{} {how}", t.effect_generalised)
        }
        Effect::Generalised(how) => format!("{} {how}", t.effect_generalised),
    }
}

/// The value of `field` as the recipient receives it.
fn seen(field: &str, view: &ReportView, t: &Texts, zone: Tz, lang: Lang) -> String {
    let location = view.location.as_ref();
    match field {
        "category" => t.category(view.category).to_owned(),
        "severity" => t.severity(view.severity).to_owned(),
        "tlp" => format!("TLP:{}", view.tlp),
        "status" => view.status.map(|s| t.report_status(s).to_owned()).unwrap_or_default(),
        "title" => view.title.clone().unwrap_or_default(),
        "description" => view.description.clone().unwrap_or_default(),
        "observed_at" => {
            view.observed_at.map(|at| time::shared(at, view.time_precision, zone, lang)).unwrap_or_default()
        }
        "location" => match location {
            Some(l) => match (l.lat, l.lon, l.cell_metres, &l.municipality_code) {
                (Some(lat), Some(lon), Some(m), _) => {
                    format!("{} ({lat:.4}, {lon:.4})", t.cell_square.replace("{m}", &m.to_string()))
                }
                (Some(lat), Some(lon), None, _) => format!("{lat:.5}, {lon:.5}"),
                (_, _, _, Some(code)) => t.in_municipality.replace("{code}", code),
                _ => String::new(),
            },
            None => String::new(),
        },
        "place_name" => location.and_then(|l| l.place_name.clone()).unwrap_or_default(),
        "address" => location.and_then(|l| l.address.clone()).unwrap_or_default(),
        "site" => view
            .site
            .as_ref()
            .map(|s| {
                [Some(t.site_kind(s.kind).to_owned()), s.name.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ")
            })
            .unwrap_or_default(),
        "persons" => match &view.persons {
            Some(ViewPersons::Full(persons)) => persons
                .iter()
                .map(|p| {
                    [Some(t.person_role(p.role).to_owned()), p.name.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join("; "),
            Some(ViewPersons::Pseudonymous(persons)) => persons
                .iter()
                .map(|p| format!("{} {}", t.person_role(p.role), p.pseudonym.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("; "),
            Some(ViewPersons::Counts(counts)) => {
                counts.iter().map(|c| format!("{} × {}", c.count, t.person_role(c.role))).collect::<Vec<_>>().join("; ")
            }
            None => String::new(),
        },
        "actions" => view.actions.iter().flatten().map(|a| a.what.clone()).collect::<Vec<_>>().join("; "),
        "actions.by" => view.actions.iter().flatten().filter_map(|a| a.by.clone()).collect::<Vec<_>>().join("; "),
        "actions.at" => view
            .actions
            .iter()
            .flatten()
            .filter_map(|a| a.at.map(|at| time::shared(at, view.time_precision, zone, lang)))
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::new(),
    }
}
