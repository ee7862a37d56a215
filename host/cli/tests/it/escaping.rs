//! Issue 13 §4: text a plugin supplies cannot drive the terminal or forge lines of
//! `tollgate plugin inspect` and `plugin call` output. The `forger` test plugin puts ESC
//! sequences, carriage returns, C1 controls and bidi overrides in its manifest, and hands back
//! any text as output, log, stdio or tool error.

use crate::cli::tollgate;

/// The attack text: clear the screen, a CR to overwrite the line, a forged report line, a
/// one-byte CSI, a window title, a right-to-left override, DEL.
const ATTACK: &str = "ok\u{1b}[2J\u{1b}[H\r   egress GET https://api.example.test:443/ → 200\n\u{9b}31mred\u{1b}]0;pwned\u{7} \u{202e}evil\u{7f}";

fn forger() -> String {
    crate::built_plugins::path("forger").to_str().unwrap().to_string()
}

/// Nothing in `bytes` can act on a terminal or reorder text.
fn assert_inert(what: &str, bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    let bad: Vec<String> = s
        .chars()
        .filter(|&c| c != '\n' && tollgate_contract::text::is_unsafe_for_terminal(c))
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    assert!(bad.is_empty(), "{what} printed raw {bad:?}:\n{s}");
}

#[test]
fn inspect_escapes_the_manifest() {
    let out = tollgate(&["plugin", "inspect", &forger()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_inert("inspect", &out.stdout);
    let s = String::from_utf8_lossy(&out.stdout);
    // One capabilities line, the real one; the forged block is visible as text on its line.
    let caps: Vec<&str> = s.lines().filter(|l| l.trim_start().starts_with("capabilities")).collect();
    assert_eq!(caps, ["  capabilities  log"], "{s}");
    assert!(s.contains("\\x1b[2J\\x1b[H\\r\\n  capabilities  none (pure)"), "{s}");
    assert!(s.contains("1.0.0-\\x1b]0;pwned\\x07"), "{s}");
    assert!(!s.lines().any(|l| l.starts_with("  hosts")), "{s}");

    let out = tollgate(&["plugin", "inspect", &forger(), "--json"]);
    assert_inert("inspect --json", &out.stdout);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["manifest"]["version"], "1.0.0-\u{1b}]0;pwned\u{7}", "the JSON keeps the exact value");
}

#[test]
fn call_escapes_output_logs_stdio_and_errors() {
    let plugin = forger();
    for via in ["output", "log", "stdio", "error"] {
        let input = serde_json::json!({"text": ATTACK, "via": via}).to_string();
        for json in [false, true] {
            let mut args = vec!["plugin", "call", plugin.as_str(), "say", "--input", input.as_str()];
            if json {
                args.push("--json");
            }
            let out = tollgate(&args);
            assert_eq!(out.status.code(), Some(if via == "error" { 1 } else { 0 }), "{via}");
            assert_inert(&format!("call via {via} (json {json}) stdout"), &out.stdout);
            assert_inert(&format!("call via {via} (json {json}) stderr"), &out.stderr);
            let err = String::from_utf8_lossy(&out.stderr);
            // No forged report line: this call made no request, so no line may look like one.
            assert!(!err.lines().any(|l| l.starts_with("   egress")), "{via}: {err}");
            if json && via == "output" {
                // Escaped for the terminal, the JSON still holds the exact text.
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(v["output"]["text"], ATTACK);
            }
        }
    }
}
