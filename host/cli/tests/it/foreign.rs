//! Foreign components through the real binary (issue 14 §3): componentize-py's `exports#init`
//! is neither listed nor callable, an unsupported import is refused by name, a component
//! importing `wasi:filesystem/preopens` is warned about at load, and a workflow's tool
//! overrides are checked at their key and decide what the gate does. The components are WAT.

use std::path::Path;
use std::process::{Command, Output};

#[path = "../../../../tests/support/foreign_component.rs"]
mod foreign_component;

/// `seven: func() -> u32`, componentize-py's `exports#init`, and `imports`.
fn component(imports: &str) -> Vec<u8> {
    use foreign_component::{COMPONENTIZE_PY_PARAMS, init_export};
    foreign_component::component(imports, &init_export("exports", COMPONENTIZE_PY_PARAMS))
}

const PREOPENS: &str = r#"(import "wasi:filesystem/preopens@0.2.0" (instance))"#;

/// A folder with `calc.wasm` (imports preopens), `store.wasm` (imports `wasi:config/store`).
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calc.wasm"), component(PREOPENS)).unwrap();
    std::fs::write(dir.path().join("store.wasm"), component(r#"(import "wasi:config/store@0.2.0-draft" (instance))"#))
        .unwrap();
    dir
}

fn tollgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .env("TOLLGATE_DATA_DIR", dir.join("data"))
        .env("TOLLGATE_CACHE_DIR", dir.join("cache"))
        .env_remove("TOLLGATE_AUDIT_KEY")
        .env_remove("TOLLGATE_AUDIT_WITNESS")
        .output()
        .expect("tollgate runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn inspect_and_call_hide_toolchain_internals_and_warn_about_files() {
    let dir = folder();
    let out = tollgate(dir.path(), &["plugin", "inspect", "calc.wasm"]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tools = shown.split("  tools\n").nth(1).unwrap().split("  not offered").next().unwrap();
    assert!(tools.contains("seven") && !tools.contains("init"), "{shown}");
    assert!(shown.contains("not offered") && shown.contains("exports#init"), "{shown}");
    assert!(shown.contains("! imports `wasi:filesystem/preopens@0.2.0`: Tollgate preopens no directories"), "{shown}");

    let out = tollgate(dir.path(), &["plugin", "inspect", "calc.wasm", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> =
        v["manifest"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["seven"]);
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{}", v["warnings"]);

    let out = tollgate(
        dir.path(),
        &["plugin", "call", "calc.wasm", "exports_init", "--input", r#"{"app-name":"a","symbols":0}"#],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown tool `exports_init` (this plugin has: seven)"),
        "{}",
        text(&out.stderr)
    );

    let out = tollgate(dir.path(), &["plugin", "call", "calc.wasm", "seven"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "7");
    let err = text(&out.stderr);
    assert!(
        err.starts_with("warning: imports `wasi:filesystem/preopens@0.2.0`") && err.contains("os error 44"),
        "{err}"
    );
}

#[test]
fn an_unsupported_import_is_named_with_what_tollgate_provides() {
    let dir = folder();
    for args in [&["plugin", "inspect", "store.wasm"][..], &["plugin", "call", "store.wasm", "seven"]] {
        let out = tollgate(dir.path(), args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("imports `wasi:config/store@0.2.0-draft`, which Tollgate does not provide"), "{err}");
        assert!(
            err.contains("Tollgate provides: wasi:io") && !err.contains("not a valid WebAssembly component"),
            "{err}"
        );
    }
}

const WORKFLOW: &str = r#"
name = "foreign-test"
version = "1.0.0"
entry = "ops"
goal = "Get seven."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Call seven."
tools = ["calc.*"]

[plugins.calc]
source = "calc.wasm"
"#;

const TURNS: &str = r#"
[[turns]]
agent = "ops"
text = "Calling."
[[turns.tool_calls]]
name = "calc__seven"
input = {}

[[turns]]
agent = "ops"
text = "Done."
"#;

#[test]
fn overrides_are_checked_at_their_key_and_reach_the_gate() {
    let dir = folder();
    std::fs::write(dir.path().join("turns.toml"), TURNS).unwrap();
    let write = |extra: &str| std::fs::write(dir.path().join("workflow.toml"), format!("{WORKFLOW}{extra}")).unwrap();

    // Without an override the tool has no effects: the run calls it and finishes.
    write("");
    let out = tollgate(dir.path(), &["validate", "workflow.toml"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("workflow.toml:13:10: warning: plugin `calc` imports `wasi:filesystem/preopens@0.2.0`"),
        "{err}"
    );
    let out = tollgate(dir.path(), &["run", "workflow.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // `spend` needs approval by default: the overridden effect makes the same call wait.
    write("[plugins.calc.tools.seven]\ndescription = \"Returns seven, for a fee.\"\neffects = [\"spend\"]\n");
    let out = tollgate(dir.path(), &["validate", "workflow.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tollgate(dir.path(), &["run", "workflow.toml"]);
    assert_eq!(out.status.code(), Some(3), "{}{}", text(&out.stdout), text(&out.stderr));

    // A tool the component does not offer: an error at its key, for validate and run alike.
    write("[plugins.calc.tools.sevn]\neffects = [\"read\"]\n");
    for args in [&["validate", "workflow.toml"][..], &["run", "workflow.toml"]] {
        let out = tollgate(dir.path(), args);
        let err = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("workflow.toml:14:21: error: plugin `calc` offers no tool `sevn`"), "{err}");
        assert!(err.contains("did you mean `seven`?"), "{err}");
    }
}

#[test]
fn a_tollgate_plugins_tools_cannot_be_overridden() {
    let dir = folder();
    let echo = crate::built_plugins::path("echo");
    let workflow = format!(
        "{}\n[plugins.echo]\nsource = \"{}\"\n[plugins.echo.tools.echo]\neffects = []\n",
        WORKFLOW.replace("calc.*", "echo.*"),
        echo.display()
    );
    std::fs::write(dir.path().join("workflow.toml"), workflow).unwrap();
    let out = tollgate(dir.path(), &["validate", "workflow.toml"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: plugin `echo` is a Tollgate plugin: its manifest is its author's contract"), "{err}");
}
