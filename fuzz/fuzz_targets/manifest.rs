//! A plugin's manifest as the guest hands it over (JSON standing in for the WIT record),
//! through the sandbox's conversion and validation: bounds, names, hosts, schema compilation
//! under the regex budget. Anything is accepted or refused with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = tollgate_sandbox::fuzzing::check_manifest(&doc);
});
