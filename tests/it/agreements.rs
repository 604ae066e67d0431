//! The agreement templates in `policies/` against the seed scenarios: each one is valid, and the
//! policy engine gives each recipient what the seed documents ask for, and nothing more. Also the
//! `agreement` commands as an author meets them.

use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, Utc};
use lagesbild::domain::agreement::Agreement;
use lagesbild::domain::agreement::file as agreement_file;
use lagesbild::domain::policy::{Decision, decide};
use lagesbild::domain::view::ViewPersons;
use lagesbild::domain::{OrgId, Report, ReportContent};
use serde_json::{Value, json};

fn policy(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies").join(name)
}

fn load(name: &str, framework: Option<&Agreement>) -> Agreement {
    let text = std::fs::read_to_string(policy(name)).unwrap();
    agreement_file::read(&text, framework).unwrap_or_else(|problems| panic!("{name}: {problems:#?}"))
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T08:00:00Z").unwrap().with_timezone(&Utc)
}

/// A report filed by `origin`, from the common example with `changes` applied.
fn report(origin: &str, changes: Value) -> Report {
    let mut body = json!({
        "observed_at": "2026-11-24T19:42:10Z",
        "category": "vandalism",
        "severity": "moderate",
        "title": "Krossad ruta vid entrén",
        "description": "Två ungdomar slog sönder glasdörren",
        "location": {"lat": 58.6110, "lon": 16.1510, "place_name": "Hageby", "address": "Hagebygatan 10",
                     "site": {"kind": "school", "name": "Hagebyskolan"}, "municipality_code": "0581"},
        "persons": [{"role": "suspect", "name": "Kalle Karlsson", "age": 16}, {"role": "staff", "name": "Eva Ek"}],
        "actions": [{"what": "Väktare säkrade platsen"}],
        "tlp": "AMBER"
    });
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    let content: ReportContent = serde_json::from_value(body).unwrap();
    Report::file(OrgId::parse(origin).unwrap(), content.validate(at()).unwrap(), at())
}

fn view(report: &Report, agreement: &Agreement, to: &str) -> Option<Value> {
    match decide(report, agreement, &OrgId::parse(to).unwrap(), at(), b"test key") {
        Decision::Share { view, .. } => Some(serde_json::to_value(view).unwrap()),
        Decision::Withhold { .. } => None,
    }
}

#[test]
fn every_template_is_valid_and_the_local_agreement_narrows_its_framework() {
    for name in [
        "norrkoping-municipality-guards.toml",
        "norrkoping-safety-agreement.toml",
        "lulea-safety-agreement.toml",
        "labour-market-staff-protected.toml",
    ] {
        load(name, None);
    }
    let framework = load("no-politi-vekter-rammeavtale.toml", None);
    load("no-oslo-lokal-avtale.toml", Some(&framework));
}

#[test]
fn a_local_agreement_that_widens_its_framework_is_refused() {
    let framework = load("no-politi-vekter-rammeavtale.toml", None);
    let text = std::fs::read_to_string(policy("no-oslo-lokal-avtale.toml")).unwrap();
    for (change, expect) in [
        (
            (
                "categories = [\"burglary\", \"vandalism\", \"theft\", \"disorder\"]",
                "categories = [\"burglary\", \"drugs\"]",
            ),
            "category drugs",
        ),
        (("location = \"grid 500m\"", "location = \"grid 100m\""), "a finer location"),
        (("max_tlp = \"GREEN\"", "max_tlp = \"AMBER+STRICT\""), "max_tlp"),
        (("persons = \"pseudonymise\"", "persons = \"keep\""), "a finer persons"),
        (("retention_days = 14", "retention_days = 60"), "at most 30 days"),
    ] {
        let widened = text.replacen(change.0, change.1, 1);
        assert_ne!(widened, text, "the template changed; update this test");
        let problems = agreement_file::read(&widened, Some(&framework)).unwrap_err();
        assert!(problems.iter().any(|p| p.to_string().contains(expect)), "{expect}: {problems:#?}");
        assert!(problems.iter().all(|p| p.line.is_some()), "{problems:#?}");
    }
}

#[test]
fn norrkoping_guards_see_place_and_category_but_never_persons() {
    let agreement = load("norrkoping-municipality-guards.toml", None);
    let guards = view(&report("se-kommun-norrkoping", json!({})), &agreement, "se-vaktbolaget-ost").unwrap();
    assert_eq!(guards["category"], "vandalism");
    assert_eq!(guards["location"]["lat"], 58.611);
    assert_eq!(guards["site"]["name"], "Hagebyskolan");
    assert!(guards.get("persons").is_none());
    assert!(!guards.to_string().contains("Kalle"));
    // Outside the municipality nothing flows.
    let elsewhere =
        report("se-kommun-norrkoping", json!({"location": {"lat": 59.3, "lon": 18.0, "municipality_code": "0180"}}));
    assert!(view(&elsewhere, &agreement, "se-vaktbolaget-ost").is_none());
}

#[test]
fn lulea_retailer_sees_a_generalised_picture_and_the_police_see_everything_up_to_amber() {
    let agreement = load("lulea-safety-agreement.toml", None);
    let near_the_centre = json!({"tlp": "GREEN", "location": {"lat": 65.5871, "lon": 22.1611,
        "place_name": "Hertsötorget", "site": {"kind": "shopping_centre", "name": "Hertsö centrum"}, "municipality_code": "2580"}});
    let shop =
        view(&report("se-polisen-norrbotten", near_the_centre.clone()), &agreement, "se-ica-hertsotorget").unwrap();
    assert_eq!(shop["observed_at"], "2026-11-24T00:00:00Z", "the day, not the hour");
    assert_eq!(shop["location"]["cell_metres"], 500);
    assert_ne!(shop["location"]["lat"], 65.5871);
    assert_eq!(shop["site"], json!({"kind": "shopping_centre"}));
    for secret in ["Krossad", "Hertsötorget", "Kalle", "Hertsö centrum"] {
        assert!(!shop.to_string().contains(secret), "{secret} reached the shop: {shop}");
    }
    // AMBER is above the shop's GREEN limit; the police get it, persons included.
    let amber = report("se-kommun-lulea", json!({"location": near_the_centre["location"].clone()}));
    assert!(view(&amber, &agreement, "se-ica-hertsotorget").is_none());
    let police = view(&amber, &agreement, "se-polisen-norrbotten").unwrap();
    assert_eq!(police["persons"]["full"][0]["name"], "Kalle Karlsson");
    // RED reaches no one.
    let red = report("se-kommun-lulea", json!({"tlp": "RED"}));
    assert!(view(&red, &agreement, "se-polisen-norrbotten").is_none());
    // The agreement ran out at the end of 2026.
    let later = DateTime::parse_from_rfc3339("2027-01-02T00:00:00Z").unwrap().with_timezone(&Utc);
    assert!(decide(&amber, &agreement, &OrgId::parse("se-polisen-norrbotten").unwrap(), later, b"k").view().is_none());
}

#[test]
fn labour_market_staff_are_never_named() {
    let agreement = load("labour-market-staff-protected.toml", None);
    let incident = report("se-kommun-arbetsmarknad", json!({"category": "threat"}));
    let security = view(&incident, &agreement, "se-kommun-sakerhet").unwrap();
    assert_eq!(
        security["persons"],
        json!({"counts": [{"role": "suspect", "count": 1}, {"role": "staff", "count": 1}]})
    );
    let guards = view(&incident, &agreement, "se-falck-bevakning").unwrap();
    assert!(guards.get("persons").is_none());
    for v in [security, guards] {
        assert!(!v.to_string().contains("Eva Ek") && !v.to_string().contains("Kalle"), "{v}");
    }
}

#[test]
fn norwegian_guards_report_persons_under_stable_pseudonyms() {
    let framework = load("no-politi-vekter-rammeavtale.toml", None);
    let agreement = load("no-oslo-lokal-avtale.toml", Some(&framework));
    let oslo = json!({"location": {"lat": 59.91, "lon": 10.75, "municipality_code": "0301"}});
    let first = view(&report("no-vekterselskapet-oslo", oslo.clone()), &agreement, "no-politiet-oslo").unwrap();
    let second = view(&report("no-vekterselskapet-oslo", oslo.clone()), &agreement, "no-politiet-oslo").unwrap();
    let pseudonyms = |v: &Value| match serde_json::from_value::<ViewPersons>(v["persons"].clone()).unwrap() {
        ViewPersons::Pseudonymous(people) => people.into_iter().map(|p| p.pseudonym).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(pseudonyms(&first), pseudonyms(&second), "one person, one pseudonym within the agreement");
    assert!(!first.to_string().contains("Kalle"));
    // The police district's reports reach the guards by the hour, in 500 m cells.
    let to_guards = view(
        &report("no-politiet-oslo", json!({"tlp": "GREEN", "location": oslo["location"].clone()})),
        &agreement,
        "no-vekterselskapet-oslo",
    )
    .unwrap();
    assert_eq!(to_guards["observed_at"], "2026-11-24T19:00:00Z");
    assert_eq!(to_guards["location"]["cell_metres"], 500);
}

#[test]
fn committed_agreement_schema_matches_the_code() {
    let committed = std::fs::read_to_string(policy("schema/agreement.schema.json")).unwrap_or_default();
    assert!(
        committed == agreement_file::schema_json(),
        "policies/schema/agreement.schema.json is out of date: run `cargo run -- agreement schema > policies/schema/agreement.schema.json`"
    );
}

#[test]
fn agreement_check_explains_problems_by_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let broken = std::fs::read_to_string(policy("lulea-safety-agreement.toml")).unwrap().replacen(
        "max_tlp = \"GREEN\"",
        "max_tlp = \"RED\"",
        1,
    );
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, broken).unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_lagesbild")).args(["agreement", "check"]).arg(&path).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 73: flows[2].max_tlp: TLP:RED never leaves a node"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["agreement", "check"])
        .arg(policy("lulea-safety-agreement.toml"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// A staff member's name and an odd second, planted in every field that can carry them.
const STAFF_NAME: &str = "Greta Staffansdotter";
const ODD_SECOND: &str = "21:37:12";

#[test]
fn no_template_lets_an_action_say_more_of_a_person_or_a_moment_than_its_flow() {
    let mut shared = 0;
    let mut cases = 0;
    for name in [
        "norrkoping-municipality-guards.toml",
        "norrkoping-safety-agreement.toml",
        "lulea-safety-agreement.toml",
        "labour-market-staff-protected.toml",
        "no-politi-vekter-rammeavtale.toml",
        "no-oslo-lokal-avtale.toml",
    ] {
        // A local agreement is judged on its own flows here; its narrowing is tested above.
        let agreement: Agreement = toml::from_str(&std::fs::read_to_string(policy(name)).unwrap()).unwrap();
        for (index, flow) in agreement.flows.iter().enumerate() {
            let (lat, lon, municipality) = match &flow.area {
                Some(lagesbild::domain::agreement::Area::Bbox([w, s, e, n])) => ((s + n) / 2.0, (w + e) / 2.0, "0581"),
                Some(lagesbild::domain::agreement::Area::Municipalities(codes)) => (58.6, 16.1, codes[0].as_str()),
                _ => (58.6, 16.1, "0581"),
            };
            let tlp = if flow.max_tlp >= lagesbild::domain::Tlp::Green { "GREEN" } else { "CLEAR" };
            for from in &flow.from {
                for to in &flow.to {
                    cases += 1;
                    let incident = report(
                        from.as_str(),
                        json!({
                            "observed_at": format!("2026-11-24T{ODD_SECOND}Z"),
                            "category": flow.categories[0],
                            "severity": "critical",
                            "tlp": tlp,
                            "location": {"lat": lat, "lon": lon, "municipality_code": municipality},
                            "persons": [{"role": "staff", "name": STAFF_NAME}],
                            "actions": [{"what": "Receptionist called guards", "by": STAFF_NAME,
                                         "at": format!("2026-11-24T{ODD_SECOND}Z")}],
                        }),
                    );
                    let Some(view) = view(&incident, &agreement, to.as_str()) else { continue };
                    shared += 1;
                    let text = view.to_string();
                    let rules = &flow.fields;
                    let case = format!("{name} flow {index} from {from} to {to}");
                    if rules.persons.to_string() != "keep" {
                        assert!(!text.contains(STAFF_NAME), "{case} names the staff member: {text}");
                    }
                    if rules.observed_at.to_string() != "keep" {
                        assert!(!text.contains(ODD_SECOND), "{case} gives the exact second: {text}");
                    }
                }
            }
        }
    }
    println!("{shared} of {cases} template flows reached a share");
    assert!(shared >= cases / 2, "only {shared} of {cases} template flows reached a share");
}

#[test]
fn preview_shows_the_guards_neither_the_staff_members_name_nor_the_exact_second() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let body = json!({
        "observed_at": format!("2026-11-24T{ODD_SECOND}Z"),
        "category": "threat", "severity": "severe", "title": "Threat in the reception",
        "location": {"lat": 58.59, "lon": 16.18},
        "actions": [{"what": "Receptionist called guards", "by": STAFF_NAME, "at": format!("2026-11-24T{ODD_SECOND}Z")}],
        "tlp": "AMBER"
    });
    std::fs::write(&report, body.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_lagesbild"))
        .args(["agreement", "preview"])
        .arg(policy("labour-market-staff-protected.toml"))
        .arg("--report")
        .arg(&report)
        .args(["--from", "se-kommun-arbetsmarknad", "--to", "se-falck-bevakning", "--at", "2026-11-25T08:00:00Z"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("se-falck-bevakning receives, under flow"), "{stdout}");
    assert!(stdout.contains("Receptionist called guards"), "the action itself is kept: {stdout}");
    assert!(stdout.contains("2026-11-24T21:00:00Z"), "the action's time is given to the hour: {stdout}");
    assert!(!stdout.contains(STAFF_NAME), "{stdout}");
    assert!(!stdout.contains(ODD_SECOND), "{stdout}");
    assert!(stdout.contains("actions.by"), "the explanation says what became of who acted: {stdout}");
}

#[test]
fn agreement_new_writes_a_checked_agreement_for_the_next_municipality_from_a_template() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("umea.toml");
    let new = |out: &std::path::Path, parties: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lagesbild"));
        command.args([
            "agreement",
            "new",
            "--template",
            "lulea-safety-agreement",
            "--id",
            "se-umea-trygghetsoverenskommelse",
        ]);
        command.args(["--title", "Trygghetsöverenskommelse Ersboda", "--valid-from", "2027-01-01"]);
        for party in parties {
            command.args(["--party", party]);
        }
        command.arg("--out").arg(out).output().unwrap()
    };
    let made = new(
        &out,
        &[
            "role=municipality,org=se-kommun-umea,name=Umeå kommun",
            "role=police,org=se-polisen-vasterbotten,name=Polisen, lokalpolisområde Umeå",
            "role=retailer,org=se-ica-ersboda,name=ICA Ersboda",
        ],
    );
    let said = String::from_utf8_lossy(&made.stderr);
    assert!(made.status.success(), "{said}");
    assert!(said.contains("flows[2] keeps the template's area"), "the writer is told what to look at: {said}");
    // The file is an agreement `check` accepts, with the new parties in every flow and a year from
    // the new start, as the template has.
    let text = std::fs::read_to_string(&out).unwrap();
    let agreement = agreement_file::read(&text, None).unwrap_or_else(|p| panic!("{p:?}\n{text}"));
    let names: Vec<&str> = agreement.parties.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Umeå kommun", "Polisen, lokalpolisområde Umeå", "ICA Ersboda"]);
    for old in ["se-kommun-lulea", "se-polisen-norrbotten", "se-ica-hertsotorget"] {
        assert!(!text.contains(old), "{old} stays in the new agreement:\n{text}");
    }
    assert_eq!(agreement.valid_from.to_rfc3339(), "2027-01-01T00:00:00+00:00");
    assert_eq!(agreement.valid_until.to_rfc3339(), "2027-12-31T23:59:59+00:00");
    let checked =
        Command::new(env!("CARGO_BIN_EXE_lagesbild")).args(["agreement", "check"]).arg(&out).output().unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));

    // An existing file is never overwritten; a party that takes no one's place is named.
    let again = new(&out, &["role=municipality,org=se-kommun-umea"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    let nowhere = new(&dir.path().join("other.toml"), &["role=guard_company,org=se-vakt-umea"]);
    let said = String::from_utf8_lossy(&nowhere.stderr);
    assert!(
        !nowhere.status.success() && said.contains("parties[0].role: the template has no party of role guard_company"),
        "{said}"
    );
    assert!(!dir.path().join("other.toml").exists(), "nothing is written when the agreement has problems");
}
