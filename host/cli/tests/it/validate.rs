//! `tollgate validate`, driven through the real binary against the built connectors. Each
//! fixture under `tests/fixtures/workflows/` is copied next to the plugins (`plugins/*.wasm`)
//! and lists the diagnostics it must produce in its header:
//!
//! ```text
//! # expect: 12:5: error: unknown key `sorce`     ← prefix of "line:col: severity: message"
//! # help: did you mean `source`?                 ← substring of that diagnostic's help line
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn plugin(name: &str) -> PathBuf {
    crate::built_plugins::path(name)
}

fn tollgate(cwd: &Path, args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join(format!("tollgate-cli-test-cache-{}", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(cwd)
        .args(args)
        .env("TOLLGATE_CACHE_DIR", cache)
        .output()
        .expect("tollgate runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn sha256_of(path: &Path) -> String {
    let out = tollgate(Path::new("/"), &["plugin", "inspect", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["sha256"].as_str().unwrap().to_string()
}

/// A temp dir with `workflow.toml` (the fixture, `@ADS_SHA256@` filled in) and `plugins/`.
fn workspace(fixture: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    for p in ["ads", "crm", "email"] {
        std::fs::copy(plugin(p), dir.path().join("plugins").join(format!("{p}.wasm"))).unwrap();
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workflows").join(fixture);
    let source = std::fs::read_to_string(&path).unwrap();
    let source = if source.contains("@ADS_SHA256@") {
        source.replace("@ADS_SHA256@", &sha256_of(&plugin("ads")))
    } else {
        source
    };
    std::fs::write(dir.path().join("workflow.toml"), &source).unwrap();
    (dir, source)
}

/// `(head, help)` of every `# expect:` line of a fixture.
fn expectations(source: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for line in source.lines() {
        if let Some(e) = line.strip_prefix("# expect: ") {
            out.push((e.to_string(), None));
        } else if let Some(h) = line.strip_prefix("# help: ") {
            out.last_mut().unwrap().1 = Some(h.to_string());
        }
    }
    out
}

/// `(line:col: severity: message, help)` of every diagnostic in text output.
fn diagnostics(stderr: &str, file: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for line in stderr.lines() {
        if let Some(d) = line.strip_prefix(&format!("{file}:")) {
            out.push((d.to_string(), None));
        } else if let Some(h) = line.strip_prefix("    help: ") {
            out.last_mut().expect("help follows a diagnostic").1 = Some(h.to_string());
        } else {
            panic!("unexpected output line: {line:?}\n{stderr}");
        }
    }
    out
}

fn assert_matches(found: &[(String, Option<String>)], expected: &[(String, Option<String>)], all: &str) {
    assert_eq!(found.len(), expected.len(), "expected {} diagnostics:\n{all}", expected.len());
    for ((f, fh), (e, eh)) in found.iter().zip(expected) {
        assert!(f.starts_with(e.as_str()), "expected `{e}`, got `{f}`:\n{all}");
        if let Some(eh) = eh {
            assert!(fh.as_deref().is_some_and(|h| h.contains(eh.as_str())), "`{e}` should have help `{eh}`:\n{all}");
        }
    }
}

#[test]
fn valid_workflow_prints_ok_and_exits_0() {
    let (dir, _) = workspace("valid.toml");
    let out = tollgate(dir.path(), &["validate", "workflow.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: campaign-review 1.0.0: 3 plugins, 9 tools, 2 agents\n");
    assert_eq!(text(&out.stderr), "");

    // Plugin sources resolve against the workflow's directory, not the working directory.
    let abs = dir.path().join("workflow.toml");
    let out = tollgate(Path::new("/"), &["validate", abs.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["diagnostics"], serde_json::json!([]));
    assert_eq!((v["workflow"]["tools"].as_u64(), v["workflow"]["steps"].as_u64()), (Some(9), Some(4)));
}

#[test]
fn structural_errors_are_reported_at_their_position_and_exit_1() {
    let (dir, source) = workspace("structural_errors.toml");
    let out = tollgate(dir.path(), &["validate", "workflow.toml"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(text(&out.stdout), "");
    assert_matches(&diagnostics(&err, "workflow.toml"), &expectations(&source), &err);
}

#[test]
fn manifest_errors_need_the_plugins_and_point_at_the_workflow() {
    let (dir, source) = workspace("plugin_errors.toml");
    let out = tollgate(dir.path(), &["validate", "workflow.toml"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_matches(&diagnostics(&err, "workflow.toml"), &expectations(&source), &err);
    // The pin message names the real digest.
    assert!(err.contains(&sha256_of(&plugin("crm"))), "{err}");

    let out = tollgate(dir.path(), &["validate", "workflow.toml", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), expectations(&source).len());
    let first = &diags[0];
    assert_eq!(first["file"], "workflow.toml");
    let (line, column) = (first["line"].as_u64().unwrap(), first["column"].as_u64().unwrap());
    assert!(expectations(&source)[0].0.starts_with(&format!("{line}:{column}: error: ")), "{first}");
    assert_eq!(first["severity"], "error");
    assert!(first["message"].as_str().unwrap().contains("wider than what plugin `ads` declares"), "{first}");
    assert!(first["help"].as_str().unwrap().contains("graph.facebook.com"), "{first}");
}

#[test]
fn unreadable_workflow_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = tollgate(dir.path(), &["validate", "nope.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: cannot read nope.toml"), "{}", text(&out.stderr));
}

/// Issue 14 §2: `validate --require-report` wants a passing `plugin test` report for each
/// plugin's exact bytes — none, a failing one, or one for other bytes is an error at `source`.
#[test]
fn require_report_wants_a_passing_report_for_each_pinned_digest() {
    let (dir, _) = workspace("valid.toml");
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/connectors");
    for p in ["ads", "crm"] {
        let tests = cases.join(p).join("tests");
        let wasm = format!("plugins/{p}.wasm");
        let report = format!("reports/{p}.json");
        let out = tollgate(
            dir.path(),
            &["plugin", "test", &wasm, "--tests", tests.to_str().unwrap(), "--cases", "4", "--report", &report],
        );
        assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    }
    let out = tollgate(dir.path(), &["validate", "workflow.toml", "--require-report", "reports"]);
    assert_eq!(out.status.code(), Some(1), "email has no report: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no `tollgate plugin test` report for plugin `email`"), "{stderr}");
    assert!(!stderr.contains("plugin `ads`") && !stderr.contains("plugin `crm`"), "{stderr}");

    // A report for other bytes does not count; a failing one says why.
    let email = dir.path().join("reports/email.json");
    let crm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("crm.json")).unwrap()).unwrap();
    let mut forged = crm.clone();
    forged["sha256"] = serde_json::json!(sha256_of(&dir.path().join("plugins/email.wasm")));
    forged["findings"] = serde_json::json!([{ "severity": "error", "code": "breaks-on-valid-input", "message": "x" }]);
    std::fs::write(&email, forged.to_string()).unwrap();
    let out = tollgate(dir.path(), &["validate", "workflow.toml", "--require-report", "reports"]);
    assert!(
        text(&out.stderr).contains("did not pass: 1 error finding(s), 0 failed test case(s)"),
        "{}",
        text(&out.stderr)
    );
    forged["findings"] = serde_json::json!([]);
    std::fs::write(&email, forged.to_string()).unwrap();
    let out = tollgate(dir.path(), &["validate", "workflow.toml", "--require-report", "reports"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Something that is not a report is a usage error, not a silent pass.
    std::fs::write(reports.join("notes.json"), "{}").unwrap();
    let out = tollgate(dir.path(), &["validate", "workflow.toml", "--require-report", "reports"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("notes.json is not a `tollgate plugin test --report` file"),
        "{}",
        text(&out.stderr)
    );
}
