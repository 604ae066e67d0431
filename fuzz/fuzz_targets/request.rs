//! The request bodies of the user API that no other target covers: a subscription's watch (a
//! GeoJSON polygon, categories, severity, sources), checked, then asked whether it admits a report
//! at the corners of its own area; a template's adaptation, applied to every built-in template;
//! and a partner's request or step between nodes, checked as the receiver checks it (its bounds,
//! its report against every flow of a real agreement as requests use them, the order of steps).
#![no_main]

use std::sync::LazyLock;

use chrono::DateTime;
use lagesbild::domain::agreement::Agreement;
use lagesbild::domain::policy::exceeds;
use lagesbild::domain::request::{PartnerRequest, RequestStep, request_flow, status_of};
use lagesbild::domain::ValidationErrors;
use lagesbild::domain::agreement::template::{Adaptation, TEMPLATES, adapt, builtin};
use lagesbild::domain::situation::PictureFacts;
use lagesbild::domain::watch::Watch;
use libfuzzer_sys::fuzz_target;

static AGREEMENT: LazyLock<Agreement> = LazyLock::new(|| {
    toml::from_str(include_str!("../../policies/lulea-safety-agreement.toml")).expect("the Luleå agreement parses")
});

fuzz_target!(|data: &[u8]| {
    if let Ok(watch) = serde_json::from_slice::<Watch>(data) {
        let mut errors = ValidationErrors::new();
        watch.check(&mut errors);
        if errors.into_result(()).is_ok() {
            let corners = watch.area.iter().flat_map(|a| a.coordinates.iter().flatten()).take(8);
            for [lon, lat] in corners.copied().chain([[16.15, 58.61]]) {
                let facts = PictureFacts {
                    observed_at_ms: 0,
                    observed_end_ms: 0,
                    lat: Some(lat),
                    lon: Some(lon),
                    category: "vandalism".into(),
                    severity: 2,
                    origin: "se-kommun-norrkoping".into(),
                    status: "ongoing".into(),
                    retracted: false,
                    expires_at_ms: None,
                    received: false,
                };
                let _ = watch.admits(&facts, DateTime::UNIX_EPOCH);
            }
        }
    }
    if let Ok(request) = serde_json::from_slice::<PartnerRequest>(data) {
        let _ = request.check(DateTime::UNIX_EPOCH);
        if let (Some(view), Some((_, flow))) = (&request.report_view, AGREEMENT.flow(&request.from, &request.to)) {
            let _ = exceeds(view, &request_flow(flow));
        }
    }
    if let Ok(step) = serde_json::from_slice::<RequestStep>(data) {
        let _ = step.check();
        let _ = status_of([&step, &step, &step]);
    }
    if let Ok(adaptation) = serde_json::from_slice::<Adaptation>(data) {
        for (name, _) in TEMPLATES {
            if let Some(template) = builtin(name) {
                let _ = adapt(&template, &adaptation, DateTime::UNIX_EPOCH);
            }
        }
    }
});
