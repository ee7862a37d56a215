//! What a model, a plugin or a writer of the database supplied is printed escaped by the run
//! and approval commands (issue 12 §7, issue 13 §4): no terminal control sequence or bidi
//! override reaches the terminal raw, and JSON output stays the same JSON.

use crate::anchor::World;

/// The model proposes an echo whose note sets the terminal title, clears the screen, forges a
/// line and reverses the text after it.
const TURNS: &str = r#"
[[turns]]
agent = "ops"
text = "Echo it.\u001b[2J"
[[turns.tool_calls]]
name = "echo__echo"
input = { note = "\u001b]0;pwned\u0007\r\ngate: allow\u202egnp.exe" }

[[turns]]
agent = "ops"
text = "Done."
"#;

fn assert_inert(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    for raw in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
        assert!(!text.contains(raw), "{what} printed {raw:?} raw: {text:?}");
    }
}

#[test]
fn guest_and_model_text_is_escaped_in_run_approvals_and_runs_show() {
    let w = World::with_turns(TURNS);
    let run = w.tollgate(&["run", "workflow.toml"]);
    assert_eq!(run.status.code(), Some(3), "{}", String::from_utf8_lossy(&run.stderr));
    assert_inert("run", &run.stdout);
    let (run_id, _) = w.waiting_run();

    let list = w.tollgate(&["approvals", "list"]);
    assert!(list.status.success());
    assert_inert("approvals list", &list.stdout);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(r"\u001b]0;pwned"),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );

    let json = w.tollgate(&["approvals", "list", "--json"]);
    assert_inert("approvals list --json", &json.stdout);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed[0]["input"]["note"], "\u{1b}]0;pwned\u{7}\r\ngate: allow\u{202e}gnp.exe", "same value");

    let show = w.tollgate(&["runs", "show", &run_id]);
    assert!(show.status.success(), "{}", String::from_utf8_lossy(&show.stderr));
    assert_inert("runs show", &show.stdout);
    let show_text = String::from_utf8_lossy(&show.stdout);
    assert!(!show_text.lines().any(|l| l.trim_start().starts_with("gate: allow")), "a forged line: {show_text}");
}
