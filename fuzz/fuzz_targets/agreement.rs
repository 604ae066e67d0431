//! An agreement document, as a policies/ file (TOML) and as the API takes it (JSON): parsed, then
//! bounded and checked.
#![no_main]

use lagesbild::domain::agreement::Agreement;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = match std::str::from_utf8(data) {
        Ok(text) => toml::from_str::<Agreement>(text).ok(),
        Err(_) => None,
    };
    for agreement in parsed.into_iter().chain(serde_json::from_slice::<Agreement>(data).ok()) {
        if agreement.check_bounds().is_ok() {
            let _ = agreement.check();
        }
    }
});
