//! What a situation query carries as text: a bounding box and a page cursor.
#![no_main]

use std::str::FromStr;

use lagesbild::domain::{BBox, Cursor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = BBox::from_str(text);
    if let Ok(cursor) = Cursor::from_str(text) {
        let _ = cursor.encode();
    }
});
