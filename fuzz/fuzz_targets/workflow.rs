//! Workflow decoding end to end (TOML, shape, spans, policy compilation with its CEL cost
//! bound): any text loads or gives diagnostics with positions inside the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(diagnostics) = tollgate_workflow::parse(text, Path::new("fuzz.toml")) {
        let _ = diagnostics.to_string();
    }
});
