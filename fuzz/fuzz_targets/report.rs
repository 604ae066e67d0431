//! A report body as a person or system files it (JSON), parsed and validated.
#![no_main]

use lagesbild::domain::ReportContent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = serde_json::from_slice::<ReportContent>(data) {
        let _ = content.validate(chrono::DateTime::UNIX_EPOCH);
    }
});
