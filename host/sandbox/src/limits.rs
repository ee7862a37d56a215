//! Bounding what a guest hands the host: [`clip_text`]. The per-call [`Limits`] themselves, with
//! their defaults and validation, are plain data in [`tollgate_contract::limits`]; the sandbox
//! enforces them (fuel, epochs, the store limiter, capped pipes, body wrappers).
//!
//! [`Limits`]: tollgate_contract::Limits

/// Cuts guest-chosen text to at most `max` bytes (on a character boundary), marking the cut:
/// every string a guest can hand the host is bounded through this one function.
pub(crate) fn clip_text(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("…[truncated]");
    }
    s
}
