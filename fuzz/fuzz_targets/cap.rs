//! A CAP 1.2 alert from another authority's system, filed as a report.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = lagesbild::domain::cap::content_of(data) {
        let _ = content.validate(chrono::DateTime::UNIX_EPOCH);
    }
});
