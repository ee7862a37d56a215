//! Text a plugin or an upstream supplied, made safe to show a person: [`escape_for_terminal`]
//! and its two variants are the one rule for every text output (the CLI today; the console and
//! API tomorrow).
//!
//! A guest's text printed raw can drive the terminal — clear the screen, set the window title,
//! move the cursor, overwrite a line with `\r` — or reorder what a person reads with
//! bidirectional-formatting characters, so a plugin could forge an egress line or a
//! `capabilities none (pure)` block. Escaping the characters that do this leaves the text
//! readable and inert:
//!
//! - C0 controls (U+0000–U+001F, including ESC, CR, LF and TAB), DEL and C1 controls
//!   (U+0080–U+009F, including the one-byte CSI U+009B and NEL U+0085) become `\x1b`, `\r`,
//!   `\n`, `\t` or `\u{9b}`; without its ESC or CSI, an escape sequence is plain text;
//! - bidirectional-formatting and invisible characters — U+061C, U+200B–U+200F,
//!   U+202A–U+202E, U+2060–U+2069, U+FEFF — and the line and paragraph separators U+2028,
//!   U+2029 become `\u{202e}` and so on.
//!
//! Everything else, including non-Latin scripts and emoji, is kept. A backslash is kept as is:
//! a guest can print the *characters* `\x1b`, which are harmless.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` could change what a terminal shows beyond the character itself (see the module
/// docs for the set).
pub fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
                | '\u{2028}' | '\u{2029}'
        )
}

/// `s` with every character [`is_unsafe_for_terminal`] escaped, newlines included: for text
/// shown on one line (names, descriptions, messages, header values). Borrows when nothing
/// needed escaping.
pub fn escape_for_terminal(s: &str) -> Cow<'_, str> {
    escape_with(s, |_| false)
}

/// Like [`escape_for_terminal`] but keeps `\n` as a line break: for multi-line text whose
/// lines the caller prints as lines (stdout, stderr). A `\r` is still escaped, so no line can
/// be overwritten.
pub fn escape_lines_for_terminal(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| c == '\n')
}

/// Serialised JSON made safe to print, *still valid JSON with the same value*: every unsafe
/// character becomes a JSON `\uXXXX` escape. (A JSON serialiser escapes C0 controls inside
/// strings already, but not DEL, C1 or bidirectional formatting.) The `\n`s between values of
/// pretty-printed JSON are kept.
pub fn escape_json_for_terminal(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| c != '\n' && is_unsafe_for_terminal(c)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c != '\n' && is_unsafe_for_terminal(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| !keep(c) && is_unsafe_for_terminal(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if keep(c) || !is_unsafe_for_terminal(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(escape_for_terminal("plain ünïcode 日本 🙂"), "plain ünïcode 日本 🙂");
        assert!(matches!(escape_for_terminal("plain"), Cow::Borrowed(_)));
        assert_eq!(escape_for_terminal("\u{1b}[2J\u{1b}]0;title\u{7}"), "\\x1b[2J\\x1b]0;title\\x07");
        assert_eq!(escape_for_terminal("a\r\nb\tc"), "a\\r\\nb\\tc");
        assert_eq!(escape_for_terminal("\u{9b}31m \u{85} \u{7f}"), "\\u{9b}31m \\u{85} \\x7f");
        assert_eq!(
            escape_for_terminal("user\u{202E}nimda\u{2066}x\u{200B}\u{2028}"),
            "user\\u{202e}nimda\\u{2066}x\\u{200b}\\u{2028}"
        );
    }

    #[test]
    fn lines_keep_newlines_only() {
        assert_eq!(escape_lines_for_terminal("one\ntwo\rthree\u{1b}[1A"), "one\ntwo\\rthree\\x1b[1A");
    }

    #[test]
    fn json_stays_json_with_the_same_value() {
        let value = serde_json::json!({"s": "a\u{9b}b\u{202e}c\u{7f}\u{1b}", "t": "🙂"});
        let text = serde_json::to_string_pretty(&value).unwrap();
        let safe = escape_json_for_terminal(&text);
        assert!(!safe.chars().any(|c| c != '\n' && is_unsafe_for_terminal(c)), "{safe}");
        assert!(safe.contains('\n'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
    }
}
