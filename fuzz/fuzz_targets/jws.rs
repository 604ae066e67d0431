//! A partner's signed documents and envelopes (JWS JSON serialisation): parsing, the payload,
//! each signature's protected header, verification against no trusted key, and a node card inside.
#![no_main]

use lagesbild::crypto::jws::{Jws, envelope_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(jws) = Jws::parse(data) else { return };
    let _ = jws.verify(lagesbild::domain::envelope::ENVELOPE_TYPE, |_| None);
    for signature in &jws.signatures {
        let _ = envelope_header(&signature.protected);
    }
    if let Ok(payload) = jws.unverified_payload()
        && let Ok(card) = serde_json::from_slice::<lagesbild::domain::NodeCard>(&payload)
    {
        let _ = card.check(chrono::DateTime::UNIX_EPOCH);
    }
});
