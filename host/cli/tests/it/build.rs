//! `tollgate new plugin` then `tollgate plugin build`, typed the way users type them: from the
//! parent with a relative path, from inside the project with no argument (the command `new`
//! prints), and with a relative `-o`; then the component answers through `plugin call` given
//! a relative path. One test per language, each with the real pinned toolchain (PyPI and npm
//! for the first install; crates.io for Rust's first dependency resolution).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// `tollgate ARGS` run in `cwd`. Python's toolchain goes where the pluginkit tests install it;
/// the JavaScript toolchains stay in the default directory (they are large).
fn tollgate_in(cwd: &Path, args: &[&str], python: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(args)
        .current_dir(cwd)
        .env("TOLLGATE_CACHE_DIR", target_dir().join("tollgate-cli-build-cache"))
        .env_remove("TOLLGATE_TOOLCHAINS");
    if python {
        cmd.env("TOLLGATE_TOOLCHAINS", target_dir().join("tollgate-toolchains"));
    }
    cmd.output().expect("tollgate runs")
}

fn ok(out: &Output, what: &str) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({:?}):\n{stdout}\n{stderr}", out.status.code());
    format!("{stdout}{stderr}")
}

/// The three ways of typing the build, each leaving a component that answers `input`. Off a
/// terminal, the long step (`step`) is said in plain lines as it starts and ends.
fn builds_the_way_users_type_it(name: &str, lang: &str, step: &str, tool: &str, input: &str, expect: &str) {
    let python = lang == "python";
    let parent = tempfile::tempdir().unwrap();
    ok(&tollgate_in(parent.path(), &["new", "plugin", name, "--lang", lang], python), "new plugin");
    let project = parent.path().join(name);
    let component = project.join("target").join(format!("{name}.wasm"));

    // From the parent, with a relative path.
    let printed = ok(&tollgate_in(parent.path(), &["plugin", "build", name], python), "build NAME");
    assert!(component.is_file(), "{} missing after `plugin build {name}`: {printed}", component.display());
    let said = printed.lines().position(|l| l.starts_with(step) && l.ends_with(" ..."));
    let said = said.unwrap_or_else(|| panic!("no line starting `{step}` and ending ` ...` in:\n{printed}"));
    assert!(printed.lines().nth(said + 1).is_some_and(|l| l.starts_with("  done in ")), "{printed}");
    std::fs::remove_file(&component).unwrap();

    // From inside the project, with no argument (what `tollgate new` prints).
    ok(&tollgate_in(&project, &["plugin", "build"], python), "build (no argument)");
    assert!(component.is_file(), "{} missing after `plugin build`", component.display());

    // A relative `-o` is relative to where the user is, not to the project.
    ok(&tollgate_in(parent.path(), &["plugin", "build", name, "-o", "out/x.wasm"], python), "build -o");
    assert!(parent.path().join("out/x.wasm").is_file(), "-o out/x.wasm is relative to the working directory");

    let relative = format!("target/{name}.wasm");
    let out = tollgate_in(&project, &["plugin", "call", &relative, tool, "--input", input], python);
    let printed = ok(&out, "plugin call");
    assert!(printed.contains(expect), "{printed}");
    if python {
        // 18 MB of fresh component (a rebuild differs in bytes): its first compile is slow.
        assert!(printed.contains(&format!("compiling {relative} to native code ...")), "{printed}");
    }

    // `plugin test` from inside the project, no argument: it builds, then runs conformance and
    // the project's `tests/*.test.toml` (no network needed: the tool is pure).
    std::fs::create_dir_all(project.join("tests")).unwrap();
    let input: serde_json::Value = serde_json::from_str(input).unwrap();
    let case = serde_json::json!({ "case": [{ "name": "answers", "tool": tool, "input": input }] });
    std::fs::write(project.join("tests/smoke.test.json"), case.to_string()).unwrap();
    let printed = ok(&tollgate_in(&project, &["plugin", "test", "--cases", "8"], python), "plugin test");
    assert!(printed.contains("tests/smoke.test.json (offline): 1/1 passed"), "{printed}");
    assert!(printed.contains("0 error(s)"), "{printed}");
}

#[test]
fn python_builds_with_a_relative_path_and_from_inside_the_project() {
    let step = "building the component with componentize-py";
    builds_the_way_users_type_it("hello-py", "python", step, "greet", r#"{"name": "Ada"}"#, "Hello, Ada.");
}

#[test]
fn js_builds_with_a_relative_path_and_from_inside_the_project() {
    let step = "building the component with the starlingmonkey engine";
    builds_the_way_users_type_it("slugs", "js", step, "slugify", r#"{"text": "Hello, World!"}"#, "hello-world");
}

#[test]
fn rust_builds_with_a_relative_path_and_from_inside_the_project() {
    builds_the_way_users_type_it(
        "hello-rs",
        "rust",
        "cargo build (release",
        "greet",
        r#"{"name": "Ada"}"#,
        "Hello, Ada!",
    );
}

/// A build the componentizer refuses shows its message, not the componentizer's internals, even
/// where the user's environment asks Rust programs for backtraces; `--verbose` shows them all.
#[test]
fn a_refused_python_build_shows_the_reason_and_backtraces_only_with_verbose() {
    let parent = tempfile::tempdir().unwrap();
    ok(&tollgate_in(parent.path(), &["new", "plugin", "bad-name", "--lang", "python"], true), "new plugin");
    let app = parent.path().join("bad-name/app.py");
    let text =
        std::fs::read_to_string(&app).unwrap().replace("@plugin.tool(idempotent=True)", "@plugin.tool(name=\"Greet\")");
    std::fs::write(&app, text).unwrap();
    let build = |verbose: bool| {
        let mut args = vec!["plugin", "build", "bad-name"];
        if verbose {
            args.push("--verbose");
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(&args).current_dir(parent.path()).env("RUST_BACKTRACE", "1");
        cmd.env("TOLLGATE_TOOLCHAINS", target_dir().join("tollgate-toolchains"));
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = build(false);
    assert!(err.contains("tool name `Greet` must match"), "{err}");
    assert!(!err.contains("Stack backtrace") && !err.contains("File \"<string>\""), "{err}");
    assert!(err.lines().count() < 20, "{} lines:\n{err}", err.lines().count());
    let verbose = build(true);
    assert!(verbose.contains("tool name `Greet` must match") && verbose.contains("Stack backtrace"), "{verbose}");
}

/// A tool that reads the clock in a pure Python component traps in the stubbed WASI clock: the
/// error says so in the author's terms, and the guest backtrace waits for `--verbose`.
#[test]
fn a_clock_read_in_a_pure_python_tool_is_explained() {
    let parent = tempfile::tempdir().unwrap();
    ok(&tollgate_in(parent.path(), &["new", "plugin", "clocky", "--lang", "python"], true), "new plugin");
    let project = parent.path().join("clocky");
    let app = project.join("app.py");
    let text = std::fs::read_to_string(&app)
        .unwrap()
        .replace("    message = f\"Hello", "    import time\n\n    _ = time.time()\n    message = f\"Hello");
    std::fs::write(&app, text).unwrap();
    ok(&tollgate_in(&project, &["plugin", "build"], true), "build");
    let call = |extra: &[&str]| {
        let mut args = vec!["plugin", "call", "target/clocky.wasm", "greet", "--input", r#"{"name": "Ada"}"#];
        args.extend_from_slice(extra);
        let out = tollgate_in(&project, &args, true);
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = call(&[]);
    assert!(err.contains("error [trap]") && err.contains("(--verbose shows the guest backtrace)"), "{err}");
    assert!(err.contains("   = the plugin read the clock (Python `time.time()`"), "{err}");
    assert!(!err.contains("wall_clock_now"), "no backtrace without --verbose: {err}");
    assert!(call(&["--verbose"]).contains("wall_clock_now"));
}
