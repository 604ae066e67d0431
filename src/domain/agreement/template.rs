//! Agreements made from templates: the next municipality copies the Luleå safety agreement with its
//! own parties and dates. The templates are the agreements in `policies/`, built into the binary;
//! [`adapt`] puts new organisations in the places of the template's parties (matched by role, or
//! by the organisation they replace), rewrites every flow to name them, moves the dates, and checks
//! the result. What a template cannot know, such as the area around the new shopping centre, it
//! says in notes rather than guessing.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Agreement, AgreementId, PartyRole};
use crate::domain::OrgId;
use crate::domain::validation::ValidationErrors;

/// The templates in `policies/`: file name and text.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("norrkoping-safety-agreement.toml", include_str!("../../../policies/norrkoping-safety-agreement.toml")),
    ("norrkoping-municipality-guards.toml", include_str!("../../../policies/norrkoping-municipality-guards.toml")),
    ("lulea-safety-agreement.toml", include_str!("../../../policies/lulea-safety-agreement.toml")),
    ("labour-market-staff-protected.toml", include_str!("../../../policies/labour-market-staff-protected.toml")),
    ("no-politi-vekter-rammeavtale.toml", include_str!("../../../policies/no-politi-vekter-rammeavtale.toml")),
    ("no-oslo-lokal-avtale.toml", include_str!("../../../policies/no-oslo-lokal-avtale.toml")),
];

/// The built-in template of this file name, read.
pub fn builtin(name: &str) -> Option<Agreement> {
    let (_, text) = TEMPLATES.iter().find(|(file, _)| *file == name || file.trim_end_matches(".toml") == name)?;
    toml::from_str(text).ok()
}

/// What changes from the template.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adaptation {
    /// The new agreement's id.
    #[schema(value_type = String, pattern = r"^[a-z][a-z0-9-]{2,99}$")]
    pub id: AgreementId,
    /// The new title; the template's when absent.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    /// New organisations in the places of the template's parties; a party not named stays.
    #[schema(max_items = 100)]
    pub parties: Vec<PartyChange>,
    /// The first day; today when absent.
    #[serde(default)]
    pub valid_from: Option<DateTime<Utc>>,
    /// The last moment; as long after `valid_from` as in the template when absent.
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// The evaluation; as long after `valid_from` as in the template when absent.
    #[serde(default)]
    pub evaluation_date: Option<DateTime<Utc>>,
}

/// One organisation in the place of one of the template's parties.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyChange {
    /// The role of the template's party it takes the place of (when the template has one party of
    /// that role).
    #[serde(default)]
    pub role: Option<PartyRole>,
    /// The template's party it takes the place of, by organisation id (when several share a role).
    #[serde(default)]
    #[schema(value_type = Option<OrgId>)]
    pub replaces: Option<OrgId>,
    /// The new party's organisation id.
    #[schema(value_type = OrgId)]
    pub org_id: OrgId,
    /// Its name; its id when absent (and a note says so).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
}

/// The new agreement, checked, and what its writer should look at before proposing it.
#[derive(Debug, Clone)]
pub struct Adapted {
    pub agreement: Agreement,
    pub notes: Vec<String>,
}

/// The template with `adaptation` applied at `today`, checked like any agreement; every problem
/// is named by its place in the adaptation (`parties[1].role`) or in the new agreement.
pub fn adapt(template: &Agreement, adaptation: &Adaptation, today: DateTime<Utc>) -> Result<Adapted, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut notes = Vec::new();
    let mut agreement = template.clone();
    let mut renamed: HashMap<OrgId, OrgId> = HashMap::new();
    for (i, change) in adaptation.parties.iter().enumerate() {
        let Some(index) = place_of(template, change, &format!("parties[{i}]"), &mut errors) else { continue };
        let old = &template.parties[index];
        if renamed.contains_key(&old.org_id) {
            errors.add(format!("parties[{i}]"), format!("{} is replaced twice", old.org_id));
            continue;
        }
        renamed.insert(old.org_id.clone(), change.org_id.clone());
        let party = &mut agreement.parties[index];
        party.org_id = change.org_id.clone();
        party.name = match &change.name {
            Some(name) => name.clone(),
            None => {
                notes.push(format!("{} is named by its id: give its name (name=...)", change.org_id));
                change.org_id.to_string()
            }
        };
        for (text, field) in [(&template.title, "title"), (&template.purpose, "purpose")] {
            if text.contains(&old.name) && !(field == "title" && adaptation.title.is_some()) {
                notes.push(format!("the {field} still names {}, the party {} replaces", old.name, change.org_id));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Keys come from the parties' cards when the agreement is proposed, never from a template.
    for party in &mut agreement.parties {
        party.signing_key = None;
        party.tls_pins.clear();
    }
    let rename = |org: &mut OrgId| {
        if let Some(new) = renamed.get(org) {
            *org = new.clone();
        }
    };
    for (i, flow) in agreement.flows.iter_mut().enumerate() {
        flow.from.iter_mut().for_each(rename);
        flow.to.iter_mut().for_each(rename);
        let moved = template.flows[i].from.iter().chain(&template.flows[i].to).any(|org| renamed.contains_key(org));
        if flow.area.is_some() && moved {
            notes.push(format!(
                "flows[{i}] keeps the template's area: change it to where {} works",
                flow.to.iter().map(OrgId::as_str).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    agreement.id = adaptation.id.clone();
    match &adaptation.title {
        Some(title) => agreement.title = title.clone(),
        None => notes.push(format!("the title is the template's ({}): give the new agreement its own", template.title)),
    }
    let valid_from = adaptation.valid_from.unwrap_or_else(|| start_of_day(today));
    let after_start = |moment: DateTime<Utc>| valid_from + (moment - template.valid_from).max(Duration::zero());
    agreement.valid_from = valid_from;
    agreement.valid_until = adaptation.valid_until.unwrap_or_else(|| after_start(template.valid_until));
    agreement.evaluation_date = adaptation.evaluation_date.unwrap_or_else(|| after_start(template.evaluation_date));
    if agreement.id == template.id {
        errors.add("id", "is the template's id: give the new agreement its own");
    }
    if let Err(problems) = agreement.check() {
        for problem in problems.errors() {
            errors.add(problem.field.clone(), problem.message.clone());
        }
    }
    errors.into_result(Adapted { agreement, notes })
}

/// Which of the template's parties `change` takes the place of.
fn place_of(template: &Agreement, change: &PartyChange, at: &str, errors: &mut ValidationErrors) -> Option<usize> {
    let found: Vec<usize> = template
        .parties
        .iter()
        .enumerate()
        .filter(|(_, p)| change.replaces.as_ref().is_none_or(|org| &p.org_id == org))
        .filter(|(_, p)| change.role.is_none_or(|role| p.role == role))
        .map(|(i, _)| i)
        .collect();
    match (found.as_slice(), &change.replaces, change.role) {
        ([index], _, _) => return Some(*index),
        (_, None, None) => errors.add(at, "say whose place the party takes: role=... or replaces=..."),
        ([], Some(org), _) => errors.add(format!("{at}.replaces"), format!("the template has no party {org}")),
        ([], None, Some(role)) => {
            errors.add(format!("{at}.role"), format!("the template has no party of role {}", role_name(role)))
        }
        (_, _, Some(role)) => errors.add(
            format!("{at}.role"),
            format!("the template has several parties of role {}: say which with replaces=...", role_name(role)),
        ),
        (_, Some(_), None) => unreachable!("an organisation id names at most one party of a checked template"),
    }
    None
}

fn role_name(role: PartyRole) -> String {
    serde_json::to_value(role).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn start_of_day(moment: DateTime<Utc>) -> DateTime<Utc> {
    moment.date_naive().and_hms_opt(0, 0, 0).map_or(moment, |midnight| midnight.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lulea() -> Agreement {
        builtin("lulea-safety-agreement.toml").unwrap()
    }

    fn change(role: &str, org: &str, name: Option<&str>) -> PartyChange {
        PartyChange {
            role: Some(serde_json::from_value(serde_json::json!(role)).unwrap()),
            replaces: None,
            org_id: OrgId::parse(org).unwrap(),
            name: name.map(str::to_owned),
        }
    }

    fn adaptation(parties: Vec<PartyChange>) -> Adaptation {
        Adaptation {
            id: AgreementId::try_from("se-umea-trygghetsoverenskommelse".to_owned()).unwrap(),
            title: None,
            parties,
            valid_from: None,
            valid_until: None,
            evaluation_date: None,
        }
    }

    #[test]
    fn every_builtin_template_reads_and_checks() {
        for (name, _) in TEMPLATES {
            let template = builtin(name).unwrap_or_else(|| panic!("{name} does not read"));
            template.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn a_new_party_takes_the_place_of_the_templates_party_of_its_role_in_every_flow() {
        let today = "2027-03-15T10:00:00Z".parse().unwrap();
        let adapted =
            adapt(&lulea(), &adaptation(vec![change("municipality", "se-kommun-umea", Some("Umeå kommun"))]), today)
                .unwrap();
        let agreement = adapted.agreement;
        let umea = OrgId::parse("se-kommun-umea").unwrap();
        let old = OrgId::parse("se-kommun-lulea").unwrap();
        assert_eq!(agreement.party(&umea).unwrap().name, "Umeå kommun");
        assert!(agreement.party(&old).is_none());
        assert!(agreement.flows.iter().all(|f| !f.from.contains(&old) && !f.to.contains(&old)));
        assert!(agreement.flows[0].from.contains(&umea));
        assert!(agreement.flows[2].from.contains(&umea), "a flow from several parties names the new one");
        // The dates move with the start: a year's validity from today, the evaluation as far in.
        assert_eq!(agreement.valid_from, "2027-03-15T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let template = lulea();
        assert_eq!(agreement.valid_until - agreement.valid_from, template.valid_until - template.valid_from);
        assert_eq!(agreement.evaluation_date - agreement.valid_from, template.evaluation_date - template.valid_from);
        assert!(adapted.notes.iter().any(|n| n.contains("flows[2] keeps the template's area")), "{:?}", adapted.notes);
    }

    #[test]
    fn an_adaptation_that_cannot_be_placed_names_the_party_it_concerns() {
        let today = "2027-03-15T10:00:00Z".parse().unwrap();
        let nobody = adapt(&lulea(), &adaptation(vec![change("guard_company", "se-vakt-umea", None)]), today);
        let errors = nobody.unwrap_err();
        assert_eq!(errors.errors()[0].field, "parties[0].role");
        let twice = adapt(
            &lulea(),
            &adaptation(vec![
                change("police", "se-polisen-vasterbotten", None),
                change("police", "se-polisen-umea", None),
            ]),
            today,
        );
        assert_eq!(twice.unwrap_err().errors()[0].field, "parties[1]");
        let same_id = Adaptation { id: lulea().id, ..adaptation(vec![]) };
        assert_eq!(adapt(&lulea(), &same_id, today).unwrap_err().errors()[0].field, "id");
    }

    #[test]
    fn a_party_given_no_name_is_named_by_its_id_with_a_note() {
        let adapted = adapt(
            &lulea(),
            &adaptation(vec![change("retailer", "se-coop-umea", None)]),
            "2027-03-15T10:00:00Z".parse().unwrap(),
        )
        .unwrap();
        let coop = OrgId::parse("se-coop-umea").unwrap();
        assert_eq!(adapted.agreement.party(&coop).unwrap().name, "se-coop-umea");
        assert!(adapted.notes.iter().any(|n| n.contains("se-coop-umea is named by its id")));
    }
}
