//! The one duration and size syntax of CLI flags and workflow files: any text parses or is
//! refused, never panics or overflows; what parses prints back to something that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_contract::units::{parse_bytes, parse_duration};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_duration(text);
    let _ = parse_bytes(text);
});
