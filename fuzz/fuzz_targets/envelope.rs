//! What a partner's envelope carries once its signature holds: the payload, a report view, parsed
//! as the inbox parses it, its addressing checked against a header made from it, judged against
//! every flow of a real agreement as the receiver judges it (does it exceed what the flow allows?),
//! and searched for named persons as an erasure request does.
#![no_main]

use std::sync::LazyLock;

use chrono::{DateTime, Duration};
use lagesbild::domain::OrgId;
use lagesbild::domain::agreement::Agreement;
use lagesbild::domain::envelope::{EnvelopeHeader, check_addressing};
use lagesbild::domain::policy::exceeds;
use lagesbild::domain::view::ReportView;
use libfuzzer_sys::fuzz_target;

static AGREEMENT: LazyLock<Agreement> = LazyLock::new(|| {
    toml::from_str(include_str!("../../policies/lulea-safety-agreement.toml")).expect("the Luleå agreement parses")
});

fuzz_target!(|data: &[u8]| {
    let Ok(view) = serde_json::from_slice::<ReportView>(data) else { return };
    let recipients: Vec<&OrgId> = AGREEMENT.parties.iter().map(|p| &p.org_id).collect();
    for recipient in recipients {
        let header = EnvelopeHeader::for_view(&view, &view.origin, recipient, DateTime::UNIX_EPOCH);
        let _ = check_addressing(&header, &view, &view.origin, recipient, DateTime::UNIX_EPOCH, Duration::minutes(10));
        if let Some((_, flow)) = AGREEMENT.flow(&view.origin, recipient) {
            let _ = exceeds(&view, flow);
        }
    }
    if let Some(person) = view.named_persons().next() {
        let _ = view.without_person(&person.name.clone().unwrap_or_default());
    }
    let _ = view.bare();
});
