//! Paths the gate must not let through under an upstream's path prefix: ones a server that
//! decodes and normalises would read as climbing out of it.

/// Whether `path`, appended to an upstream's path prefix, could climb out of it on a server
/// that decodes before normalising: any dot segment (`.`, `..`) once percent-decoding (as
/// often as a server might) and with `\\` read as `/`, or any encoded slash or backslash
/// (`%2f`, `%5c`) at all, which a server may or may not treat as a separator.
pub(super) fn could_leave_prefix(path: &str) -> bool {
    let mut decoded = path.to_string();
    for _ in 0..3 {
        let lower = decoded.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return true;
        }
        if decoded.split(['/', '\\']).any(|seg| matches!(seg.split(';').next(), Some("." | ".."))) {
            return true;
        }
        let next = percent_decode(&decoded);
        if next == decoded {
            return false;
        }
        decoded = next;
    }
    // Still changing after three rounds of decoding: nothing legitimate looks like that.
    true
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
