//! Property tests of the policy engine over random reports and random agreements: a view never
//! holds a field, a location or a time finer than its flow allows, nor a report above the TLP
//! limit; narrowing a flow never widens any view; a report out of scope yields nothing. Every
//! report names persons and has actions that say who acted and when (to the odd second and
//! millisecond), so no rule is judged on a report that has nothing for it to hide, and the tests
//! count the cases that reach a share, so no property holds only because nothing was shared.

use chrono::{DateTime, Duration, Timelike, Utc};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use super::agreement::{Agreement, AgreementId, Area, Flow, Party, PartyRole};
use super::ids::OrgId;
use super::policy::{Decision, decide, grid_centre};
use super::report::{
    Action, Category, Location, Person, PersonRole, Report, ReportContent, Severity, Site, SiteKind, Status, Tlp,
};
use super::rules::{FieldRules, LocationRule, PersonsRule, SiteRule, TextRule, TimeRule};
use super::view::{ReportView, ViewPersons};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap()
}

fn org(id: &str) -> OrgId {
    OrgId::parse(id).unwrap()
}

fn any_category() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

fn any_severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(Severity::ALL.to_vec())
}

fn any_tlp() -> impl Strategy<Value = Tlp> {
    prop::sample::select(Tlp::ALL.to_vec())
}

fn any_rules() -> impl Strategy<Value = FieldRules> {
    let text = || prop::sample::select(vec![TextRule::Drop, TextRule::Keep]);
    let time = prop::sample::select(vec![TimeRule::Drop, TimeRule::Day, TimeRule::Hour, TimeRule::Keep]);
    let location = prop_oneof![
        Just(LocationRule::Drop),
        Just(LocationRule::Municipality),
        (50u32..=20_000).prop_map(|metres| LocationRule::Grid { metres }),
        Just(LocationRule::Keep),
    ];
    let site = prop::sample::select(vec![SiteRule::Drop, SiteRule::Kind, SiteRule::Keep]);
    let persons =
        prop::sample::select(vec![PersonsRule::Drop, PersonsRule::Roles, PersonsRule::Pseudonymise, PersonsRule::Keep]);
    (text(), text(), text(), time, location, text(), site, persons, text()).prop_map(
        |(title, description, status, observed_at, location, place, site, persons, actions)| FieldRules {
            title,
            description,
            status,
            observed_at,
            location,
            place,
            site,
            persons,
            actions,
        },
    )
}

fn any_flow() -> impl Strategy<Value = Flow> {
    let area = prop_oneof![
        Just(None),
        (-60.0f64..60.0, -170.0f64..170.0, 0.1f64..20.0).prop_map(|(s, w, size)| Some(Area::Bbox([
            w,
            s,
            w + size,
            s + size
        ]))),
        Just(Some(Area::Municipalities(vec!["0581".into(), "2580".into()]))),
    ];
    let tlp = prop::sample::select(vec![Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict]);
    (prop::collection::hash_set(any_category(), 1..=10), area, any_severity(), tlp, any::<bool>(), any_rules())
        .prop_map(|(categories, area, min_severity, max_tlp, onward_sharing, fields)| Flow {
            from: vec![org("se-a")],
            to: vec![org("se-b")],
            categories: categories.into_iter().collect(),
            area,
            min_severity,
            max_tlp,
            onward_sharing: onward_sharing && max_tlp != Tlp::AmberStrict,
            requests: false,
            fields,
        })
}

fn agreement_with(flow: Flow) -> Agreement {
    let party = |id: &str, role| Party { org_id: org(id), name: id.into(), role, signing_key: None, tls_pins: vec![] };
    Agreement {
        id: AgreementId::try_from("se-property-test".to_owned()).unwrap(),
        title: "Property test".into(),
        purpose: "Testing".into(),
        framework: None,
        replaces: None,
        backfill: false,
        valid_from: now() - Duration::days(30),
        valid_until: now() + Duration::days(30),
        evaluation_date: now(),
        retention_days: 30,
        parties: vec![party("se-a", PartyRole::Municipality), party("se-b", PartyRole::GuardCompany)],
        flows: vec![flow],
    }
}

/// A distinctive name, so a leak is found by searching the serialised view.
const SECRET_NAME: &str = "Zelda Quoxington";

fn any_report() -> impl Strategy<Value = Report> {
    report_in(Scope {
        categories: Category::ALL.to_vec(),
        severities: Severity::ALL.to_vec(),
        tlps: Tlp::ALL.to_vec(),
        area: None,
    })
}

/// Reports inside `flow`'s scope three times in four (a category, severity, marking and place it
/// takes), any report otherwise.
fn any_report_for(flow: &Flow) -> impl Strategy<Value = Report> + use<> {
    let within = Scope {
        categories: flow.categories.clone(),
        severities: Severity::ALL.iter().copied().filter(|s| *s >= flow.min_severity).collect(),
        tlps: Tlp::ALL.iter().copied().filter(|t| *t <= flow.max_tlp && *t != Tlp::Red).collect(),
        area: flow.area.clone(),
    };
    prop_oneof![1 => any_report().boxed(), 3 => report_in(within).boxed()]
}

/// What a generated report is drawn from: its category, severity and marking among these, and
/// its place in the area, if one is given.
struct Scope {
    categories: Vec<Category>,
    severities: Vec<Severity>,
    tlps: Vec<Tlp>,
    area: Option<Area>,
}

fn report_in(scope: Scope) -> impl Strategy<Value = Report> {
    let (lats, lons, codes) = match &scope.area {
        // A generated flow's box may reach past 180° east; a report's point may not.
        Some(Area::Bbox([w, s, e, n])) => (*s..*n, *w..e.min(179.9), vec!["0581", "2580", "0301"]),
        Some(Area::Municipalities(_)) => (-70.0f64..70.0, -179.0f64..179.0, vec!["0581", "2580"]),
        _ => (-70.0f64..70.0, -179.0f64..179.0, vec!["0581", "2580", "0301"]),
    };
    let code = if matches!(scope.area, Some(Area::Municipalities(_))) {
        prop::sample::select(codes).prop_map(Some).boxed()
    } else {
        prop::option::of(prop::sample::select(codes)).boxed()
    };
    let location = (lats, lons, code, any::<bool>()).prop_map(|(lat, lon, municipality, with_site)| Location {
        lat,
        lon,
        place_name: Some("Secret Place".into()),
        address: Some("Hidden Street 1".into()),
        site: with_site.then(|| Site { kind: SiteKind::School, name: Some("Secret School".into()) }),
        municipality_code: municipality.map(str::to_owned),
    });
    let persons = prop::collection::vec(prop::sample::select(PersonRole::ALL.to_vec()), 1..4).prop_map(|roles| {
        roles
            .into_iter()
            .map(|role| Person { role, name: Some(SECRET_NAME.into()), age: Some(40), description: None })
            .collect()
    });
    (
        prop::sample::select(scope.categories),
        prop::sample::select(scope.severities),
        prop::sample::select(scope.tlps),
        location,
        persons,
        0i64..1_000_000,
        any::<bool>(),
        prop::option::of(1i64..10_000_000),
        1usize..4,
    )
        .prop_map(|(category, severity, tlp, location, persons, seconds_ago, retracted, expires_in, acted)| {
            let observed_at = now() - Duration::seconds(seconds_ago) - Duration::milliseconds(123);
            let content = ReportContent {
                observed_at,
                observed_until: Some(observed_at + Duration::minutes(37)),
                category,
                severity,
                urgent: false,
                status: Status::Ongoing,
                title: "Secret Title".into(),
                description: "Secret Description".into(),
                location,
                persons,
                actions: (0..acted)
                    .map(|i| Action {
                        what: "Secret Action".into(),
                        by: Some(SECRET_NAME.into()),
                        at: Some(observed_at + Duration::seconds(97 * i as i64 + 13)),
                    })
                    .collect(),
                tlp,
                expires_at: expires_in.map(|s| now() + Duration::seconds(s) + Duration::milliseconds(7)),
            };
            let report =
                Report::file(org("se-a"), content.validate(now()).unwrap(), now() - Duration::seconds(seconds_ago / 2));
            if retracted { report.retract(None, now()).unwrap() } else { report }
        })
}

/// Every invariant a view must keep under its flow.
fn assert_within(view: &ReportView, report: &Report, flow: &Flow) {
    // What the engine sends, a receiver's re-check admits, after the trip through JSON too.
    assert_eq!(super::policy::exceeds(view, flow), None, "{view:?}");
    let received: ReportView = serde_json::from_str(&serde_json::to_string(view).unwrap()).unwrap();
    assert_eq!(super::policy::exceeds(&received, flow), None, "{received:?}");
    let content = &report.content;
    let rules = &flow.fields;
    assert_ne!(view.tlp, Tlp::Red);
    assert!(view.tlp <= flow.max_tlp);
    assert!(flow.categories.contains(&view.category));
    assert!(view.severity >= flow.min_severity);
    let json = serde_json::to_string(view).unwrap();
    let leaks = |secret: &str, allowed: bool| assert!(allowed || !json.contains(secret), "{secret} leaked: {json}");
    leaks("Secret Title", rules.title == TextRule::Keep);
    leaks("Secret Description", rules.description == TextRule::Keep);
    leaks("Secret Place", rules.place == TextRule::Keep);
    leaks("Hidden Street", rules.place == TextRule::Keep);
    leaks("Secret School", rules.site == SiteRule::Keep);
    leaks(SECRET_NAME, rules.persons == PersonsRule::Keep);
    leaks("Secret Action", rules.actions == TextRule::Keep);
    assert!(view.status.is_none() || rules.status == TextRule::Keep);

    let acted = view.actions.iter().flatten().map(|a| a.at);
    let times = [view.observed_at, view.observed_until, view.updated_at, view.expires_at].into_iter().chain(acted);
    for time in times.flatten() {
        match rules.observed_at {
            TimeRule::Drop => panic!("a time travelled under 'drop': {json}"),
            TimeRule::Day => {
                assert!(time.hour() == 0 && time.minute() == 0 && time.second() == 0 && time.nanosecond() == 0)
            }
            TimeRule::Hour => assert!(time.minute() == 0 && time.second() == 0 && time.nanosecond() == 0),
            TimeRule::Keep => {}
        }
    }
    if let Some(location) = &view.location {
        match (rules.location, location.lat, location.lon) {
            (_, None, None) => {}
            (LocationRule::Keep, Some(lat), Some(lon)) => {
                assert_eq!((lat, lon), (content.location.lat, content.location.lon))
            }
            (LocationRule::Grid { metres }, Some(lat), Some(lon)) => {
                assert_eq!(location.cell_metres, Some(metres));
                // The point given is a cell centre of that size: generalising it again changes nothing.
                assert_eq!(grid_centre(lat, lon, metres), (lat, lon));
            }
            (rule, lat, lon) => panic!("a point {lat:?},{lon:?} travelled under location '{rule}'"),
        }
    }
    match (&view.persons, rules.persons) {
        (None, _) | (Some(ViewPersons::Full(_)), PersonsRule::Keep) => {}
        (Some(ViewPersons::Pseudonymous(_)), PersonsRule::Pseudonymise)
        | (Some(ViewPersons::Counts(_)), PersonsRule::Roles) => {}
        (persons, rule) => panic!("{persons:?} travelled under persons '{rule}'"),
    }
    if report.retracted.is_some() {
        assert!(view.retracted && view.title.is_none() && view.location.is_none() && view.persons.is_none());
    }
}

/// A flow that allows no more than `flow` in any respect.
fn narrowed(flow: Flow) -> impl Strategy<Value = Flow> {
    let categories = prop::sample::subsequence(flow.categories.clone(), 1..=flow.categories.len());
    (categories, any_severity(), any_tlp(), any_rules(), any::<bool>()).prop_map(
        move |(categories, severity, tlp, rules, drop_onward)| {
            let coarser = |a: u32, b: u32| a <= b;
            let f = &flow.fields;
            let pick_text = |narrow: TextRule, wide: TextRule| {
                if coarser(narrow.fineness(), wide.fineness()) { narrow } else { wide }
            };
            let fields = FieldRules {
                title: pick_text(rules.title, f.title),
                description: pick_text(rules.description, f.description),
                status: pick_text(rules.status, f.status),
                observed_at: if coarser(rules.observed_at.fineness(), f.observed_at.fineness()) {
                    rules.observed_at
                } else {
                    f.observed_at
                },
                location: if rules.location.no_finer_than(f.location) { rules.location } else { f.location },
                place: pick_text(rules.place, f.place),
                site: if coarser(rules.site.fineness(), f.site.fineness()) { rules.site } else { f.site },
                persons: if coarser(rules.persons.fineness(), f.persons.fineness()) {
                    rules.persons
                } else {
                    f.persons
                },
                actions: pick_text(rules.actions, f.actions),
            };
            Flow {
                categories,
                min_severity: severity.max(flow.min_severity),
                max_tlp: tlp.min(flow.max_tlp),
                onward_sharing: flow.onward_sharing && !drop_onward,
                requests: false,
                fields,
                ..flow.clone()
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn narrowing_an_agreement_never_widens_a_view(
        (flow, narrow) in any_flow().prop_flat_map(|f| (Just(f.clone()), narrowed(f))),
        report in any_report(),
    ) {
        let wide = decide(&report, &agreement_with(flow), &org("se-b"), now(), b"key");
        let narrow = decide(&report, &agreement_with(narrow), &org("se-b"), now(), b"key");
        if let Some(n) = narrow.view() {
            let w = wide.view().expect("the narrowed agreement shared what the wider one withheld");
            let present = |v: &ReportView| [v.title.is_some(), v.description.is_some(), v.status.is_some(), v.observed_at.is_some(), v.location.is_some(), v.site.is_some(), v.persons.is_some(), v.actions.is_some()];
            for (narrow_has, wide_has) in present(n).into_iter().zip(present(w)) {
                prop_assert!(!narrow_has || wide_has, "the narrowed view holds a field the wider one does not");
            }
            let precision = |v: &ReportView| v.time_precision.map(|p| p as u8);
            prop_assert!(precision(n).is_none() || precision(n) >= precision(w) || w.time_precision == Some(super::view::TimePrecision::Exact));
            if let (Some(nl), Some(wl)) = (&n.location, &w.location) {
                prop_assert!(nl.lat.is_none() || wl.lat.is_some());
                if let (Some(nc), Some(wc)) = (nl.cell_metres, wl.cell_metres) {
                    prop_assert!(nc >= wc);
                }
                prop_assert!(nl.cell_metres.is_some() || nl.lat.is_none() || wl.cell_metres.is_none());
            }
        }
    }

    #[test]
    fn a_report_out_of_scope_yields_nothing(report in any_report(), flow in any_flow()) {
        let content = &report.content;
        let outside = content.tlp == Tlp::Red
            || content.tlp > flow.max_tlp
            || !flow.categories.contains(&content.category)
            || content.severity < flow.min_severity
            || flow.area.as_ref().is_some_and(|a| !a.contains(content.location.lat, content.location.lon, content.location.municipality_code.as_deref()));
        let decision = decide(&report, &agreement_with(flow), &org("se-b"), now(), b"key");
        prop_assert_eq!(outside, decision.view().is_none());
        // And nobody else, nor the origin itself, is ever a recipient.
        prop_assert!(decide(&report, &agreement_with(any_flow_fixed()), &org("se-c"), now(), b"key").view().is_none());
    }
}

/// Runs `property` over `cases` random reports and flows; answers how many reached a share.
fn shares_over(cases: u32, property: impl Fn(&Report, &Flow) -> bool) -> u32 {
    let shared = std::cell::Cell::new(0);
    let mut runner = TestRunner::new(ProptestConfig::with_cases(cases));
    let case = any_flow().prop_flat_map(|flow| (any_report_for(&flow), Just(flow)));
    let outcome = runner.run(&case, |(report, flow)| {
        if property(&report, &flow) {
            shared.set(shared.get() + 1);
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    shared.get()
}

#[test]
fn a_view_never_holds_more_than_its_flow_allows() {
    let cases = 512;
    let shared = shares_over(cases, |report, flow| {
        let agreement = agreement_with(flow.clone());
        match decide(report, &agreement, &org("se-b"), now(), b"key") {
            Decision::Share { view, .. } => {
                assert_within(&view, report, flow);
                true
            }
            Decision::Withhold { .. } => false,
        }
    });
    println!("{shared} of {cases} cases reached a share");
    assert!(shared >= cases / 10, "only {shared} of {cases} cases reached a share: the property is nearly vacuous");
}

fn any_flow_fixed() -> Flow {
    Flow {
        from: vec![org("se-a")],
        to: vec![org("se-b")],
        categories: Category::ALL.to_vec(),
        area: None,
        min_severity: Severity::Minor,
        max_tlp: Tlp::AmberStrict,
        onward_sharing: false,
        requests: false,
        fields: FieldRules { persons: PersonsRule::Keep, ..FieldRules::default() },
    }
}

#[test]
fn a_receiver_refuses_actions_finer_than_the_flow() {
    let flow = |persons, observed_at| Flow {
        fields: FieldRules { persons, observed_at, actions: TextRule::Keep, ..FieldRules::default() },
        ..any_flow_fixed()
    };
    let action = |by: Option<&str>, at: DateTime<Utc>| Action {
        what: "Called guards".into(),
        by: by.map(str::to_owned),
        at: Some(at),
    };
    let on_the_hour = DateTime::from_timestamp(1_795_000_000 - 1_795_000_000 % 3600, 0).unwrap();
    let exact = on_the_hour + Duration::seconds(2_232);
    let report = |actions| {
        let mut report = Report::file(
            org("se-a"),
            ReportContent {
                observed_at: on_the_hour,
                observed_until: None,
                category: Category::Vandalism,
                severity: Severity::Moderate,
                urgent: false,
                status: Status::Ongoing,
                title: "Called guards".into(),
                description: String::new(),
                location: Location {
                    lat: 58.6,
                    lon: 16.1,
                    place_name: None,
                    address: None,
                    site: None,
                    municipality_code: None,
                },
                persons: vec![],
                actions,
                tlp: Tlp::Green,
                expires_at: None,
            }
            .validate(now())
            .unwrap(),
            on_the_hour,
        );
        report.updated_at = on_the_hour;
        report
    };
    let hourly = flow(PersonsRule::Drop, TimeRule::Hour);
    let Decision::Share { view, .. } =
        decide(&report(vec![action(None, on_the_hour)]), &agreement_with(hourly.clone()), &org("se-b"), now(), b"key")
    else {
        panic!("the report should be shared");
    };
    assert_eq!(super::policy::exceeds(&view, &hourly), None, "the engine's own view is admitted");
    let with = |actions: Vec<Action>| ReportView { actions: Some(actions), ..(*view).clone() };
    let refused = |view: &ReportView, flow: &Flow| super::policy::exceeds(view, flow).is_some();
    assert!(refused(&with(vec![action(None, exact)]), &hourly), "an action at the exact second under 'hour'");
    assert!(refused(&with(vec![action(Some("Zelda Quoxington"), on_the_hour)]), &hourly), "who acted, under 'drop'");
    let roles = flow(PersonsRule::Roles, TimeRule::Hour);
    assert!(refused(&with(vec![action(Some("Zelda Quoxington"), on_the_hour)]), &roles), "who acted, under 'roles'");
    let pseudonyms = flow(PersonsRule::Pseudonymise, TimeRule::Hour);
    assert!(
        refused(&with(vec![action(Some("Zelda Quoxington"), on_the_hour)]), &pseudonyms),
        "a name, under 'pseudonymise'"
    );
    assert!(
        !refused(&with(vec![action(Some("p-AAAAAAAAAAAAAAAA"), on_the_hour)]), &pseudonyms),
        "a pseudonym, under 'pseudonymise'"
    );
    let dropped_times = flow(PersonsRule::Keep, TimeRule::Drop);
    let untimed = ReportView {
        observed_at: None,
        observed_until: None,
        updated_at: None,
        expires_at: None,
        time_precision: None,
        ..(*view).clone()
    };
    assert!(
        super::policy::exceeds(
            &ReportView { actions: Some(vec![action(None, on_the_hour)]), ..untimed },
            &dropped_times
        )
        .is_some(),
        "an action's time, under 'drop'"
    );
}
