//! Drives the real `tollgate` binary, as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

fn plugin(name: &str) -> PathBuf {
    crate::built_plugins::path(name)
}

/// `tollgate ARGS` with a per-test-process compile cache.
pub(crate) fn tollgate(args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join(format!("tollgate-cli-test-cache-{}", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("TOLLGATE_CACHE_DIR", cache)
        .output()
        .expect("tollgate runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn inspect_shows_manifest_tools_capabilities_and_digest() {
    let p = plugin("misbehave");
    let out = tollgate(&["plugin", "inspect", p.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["manifest"]["name"], "misbehave");
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["capabilities"], serde_json::json!(["http", "kv", "log", "secrets"]));
    assert!(v["manifest"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "fetch"));
    assert!(v["imports"].as_array().unwrap().iter().any(|i| i["class"] == "capability:http"));

    let out = tollgate(&["plugin", "inspect", plugin("echo").to_str().unwrap()]);
    let s = text(&out.stdout);
    assert!(out.status.success());
    assert!(s.contains("capabilities  none (pure)") && s.contains("slow_sum") && s.contains("sha256"), "{s}");
}

#[test]
fn call_prints_output_and_report() {
    let out = tollgate(&["plugin", "call", plugin("echo").to_str().unwrap(), "add", "--input", r#"{"a":2,"b":40}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sum"].as_f64(), Some(42.0));
    assert!(text(&out.stderr).contains("echo.add ok"), "{}", text(&out.stderr));
}

#[test]
fn invalid_input_exits_1_with_the_schema_error() {
    let out = tollgate(&["plugin", "call", plugin("echo").to_str().unwrap(), "add", "--input", r#"{"a":"two"}"#]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("error [invalid-input]") && err.contains("/a"), "{err}");
}

#[test]
fn ungranted_import_exits_2_naming_it() {
    let out = tollgate(&["plugin", "call", plugin("misbehave").to_str().unwrap(), "echo"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("did not grant") && err.contains("tollgate:plugin/"), "{err}");
}

#[test]
fn limits_from_flags_apply_and_json_reports_the_kind() {
    let p = plugin("misbehave");
    let out = tollgate(&[
        "plugin",
        "call",
        p.to_str().unwrap(),
        "spin",
        "--kv",
        "--allow-host",
        "https://unused.test",
        "--secret",
        "demo=env:TOLLGATE_UNSET",
        "--timeout",
        "200ms",
        "--fuel",
        "1000000000000000",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "timeout");
    assert_eq!(v["report"]["outcome"], "timeout");
}

#[test]
fn unreadable_plugin_and_bad_flags_exit_2() {
    let out = tollgate(&["plugin", "call", "/nonexistent.wasm", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read"), "{}", text(&out.stderr));
    let out = tollgate(&["plugin", "call", plugin("echo").to_str().unwrap(), "echo", "--memory", "12 parsecs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--memory"), "{}", text(&out.stderr));
    let out = tollgate(&["plugin", "call", plugin("echo").to_str().unwrap(), "echo", "--allow-host", "ftp://x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("scheme"), "{}", text(&out.stderr));
}

#[test]
fn new_plugin_writes_a_project_and_refuses_bad_names_and_existing_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("scorer");
    let out = tollgate(&["new", "plugin", "scorer", "--lang", "python", "--dir", project.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("tollgate plugin build"), "{}", text(&out.stdout));
    for file in ["pyproject.toml", "app.py", "test_app.py", "README.md"] {
        assert!(project.join(file).is_file(), "{file} missing");
    }
    let again = tollgate(&["new", "plugin", "scorer", "--lang", "python", "--dir", project.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already exists and is not empty"), "{}", text(&again.stderr));

    let bad = tollgate(&["new", "plugin", "Scorer", "--lang", "js", "--dir", dir.path().join("x").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("invalid plugin name `Scorer`"), "{}", text(&bad.stderr));
    let lang = tollgate(&["new", "plugin", "scorer", "--lang", "cobol"]);
    assert_eq!(lang.status.code(), Some(2));
    assert!(text(&lang.stderr).contains("unknown language `cobol`"), "{}", text(&lang.stderr));

    let not_a_project = tollgate(&["plugin", "build", dir.path().to_str().unwrap()]);
    assert_eq!(not_a_project.status.code(), Some(2));
    assert!(text(&not_a_project.stderr).contains("not a plugin project"), "{}", text(&not_a_project.stderr));
}

#[test]
fn a_decider_name_with_control_characters_is_refused_before_anything_is_read() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let out =
        tollgate(&["approvals", "deny", "ap_0000000000", "--reason", "no", "--as", "ops\u{1b}[2J", "--data-dir", dir]);
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("contains the control character U+001B"), "{err}");
    assert!(!err.contains('\u{1b}'), "the refused name is not echoed raw: {err:?}");
}

/// Issue 13 §1: components are compiled by a child `tollgate` under a CPU-time limit. 75,000
/// trivial functions pass the compile limits but take ~6 s of CPU to compile: with a 1 s limit
/// the child is killed and the load fails, quickly and typed; the host is untouched.
#[test]
fn compiling_runs_in_a_child_under_a_cpu_limit() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.wasm");
    let wat = format!("(component (core module {}))", "(func)".repeat(75_000));
    std::fs::write(&bomb, wat::parse_str(wat).unwrap()).unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["plugin", "inspect", bomb.to_str().unwrap(), "--no-cache"])
        .env("TOLLGATE_COMPILE_CPU", "1s")
        .output()
        .expect("tollgate runs");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("CPU time limit of 1 s"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    // An ordinary plugin compiles in the child and runs.
    let out = tollgate(&[
        "plugin",
        "call",
        plugin("echo").to_str().unwrap(),
        "add",
        "--input",
        r#"{"a":1,"b":2}"#,
        "--no-cache",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Issue 13 §2: raw secret reads are flagged wherever a plugin's capabilities are shown.
#[test]
fn raw_secret_reads_are_flagged() {
    let out = tollgate(&["plugin", "inspect", plugin("misbehave").to_str().unwrap()]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(s.contains("  ! secrets: raw secret values reach the plugin"), "{s}");
    let out = tollgate(&["plugin", "inspect", plugin("echo").to_str().unwrap()]);
    assert!(!text(&out.stdout).contains("  ! "), "{}", text(&out.stdout));
}

/// Issue 14: a refusal says which flag fixes it, on the error itself.
#[test]
fn refusals_name_the_flag_that_fixes_them() {
    let crm = plugin("crm");
    let crm = crm.to_str().unwrap();
    let input = r#"{"query": "ada"}"#;
    let out = tollgate(&["plugin", "call", plugin("misbehave").to_str().unwrap(), "echo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("did not grant kv: add `--kv`"), "{}", text(&out.stderr));

    let out = tollgate(&["plugin", "call", crm, "search_contacts", "--input", input]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("did not grant http") && err.contains("add `--allow-host https://api.hubapi.com`"), "{err}");

    let out = tollgate(&["plugin", "call", crm, "search_contacts", "--input", input, "--allow-host", "other.example"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let error_line = err.lines().position(|l| l.starts_with("error [tool-denied]")).unwrap_or_else(|| panic!("{err}"));
    let hint = err.lines().nth(error_line + 1).unwrap_or_default();
    assert_eq!(hint, "   = https://api.hubapi.com:443 is not granted: add `--allow-host https://api.hubapi.com`");

    let upstream = "api.hubapi.com=http://127.0.0.1:9";
    let out = tollgate(&["plugin", "call", crm, "search_contacts", "--input", input, "--upstream", upstream]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--upstream for api.hubapi.com has no effect without a grant"), "{err}");
    assert!(err.contains("add `--allow-host https://api.hubapi.com`"), "{err}");
}

/// Issue 14: `inspect --tool NAME` shows one tool with its schemas pretty-printed; an unknown
/// name lists the tools there are; the size is said once.
#[test]
fn inspect_one_tool_pretty_prints_its_schemas() {
    let echo = plugin("echo");
    let out = tollgate(&["plugin", "inspect", echo.to_str().unwrap(), "--tool", "add"]);
    let s = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(s.contains("      input\n        {\n") && s.contains("\n          \"required\": [\n"), "{s}");
    assert!(!s.contains("    slow_sum  ["), "only the tool asked for: {s}");
    let size = s.lines().find(|l| l.starts_with("  size ")).unwrap_or_else(|| panic!("{s}"));
    assert!(size.ends_with(" KiB") && size.matches(|c: char| c.is_ascii_digit()).count() <= 5, "{size}");

    let out = tollgate(&["plugin", "inspect", echo.to_str().unwrap(), "--tool", "add", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "add");
    assert_eq!(v["input_schema"]["required"], serde_json::json!(["a", "b"]));

    let out = tollgate(&["plugin", "inspect", echo.to_str().unwrap(), "--tool", "sum"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no tool `sum` in") && text(&out.stderr).contains("(it has: echo, add, slow_sum")
    );
}
