//! Host patterns, request targets, IP literal spellings and request scopes: whatever the text,
//! parsing returns, and what parses matches without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_contract::RequestScope;
use tollgate_contract::pattern::{HostPattern, parse_ip_literal};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (a, b) = text.split_once('\n').unwrap_or((text, "/x"));
    if let Ok(p) = HostPattern::parse(a) {
        let _ = p.to_string();
    }
    let _ = parse_ip_literal(a);
    if let Ok(scope) = RequestScope::parse(a) {
        let _ = scope.matches("GET", "api.example.com", b);
    }
});
