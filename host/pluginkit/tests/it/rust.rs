//! Rust plugin projects end to end: `tollgate new plugin --lang rust` writes a standalone crate
//! with the SDK vendored; `tollgate_pluginkit::build` builds it for wasm32-wasip2 with cargo;
//! the component loads with no grants and its tool answers in the real sandbox. Network: crates.io
//! only, for the template's first dependency resolution.

use std::path::PathBuf;

use serde_json::json;
use tollgate_pluginkit::{BuildError, BuildOptions, Lang};
use tollgate_sandbox::{CallContext, CallError, Grants, Sandbox, SandboxConfig, ToolError};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn ctx() -> CallContext {
    CallContext { run_id: "run_t".into(), call_id: "c1".into(), idempotency_key: "run_t:0:0".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rust_project_builds_loads_with_no_grants_and_answers() {
    let dir = target_dir().join("pluginkit-rust-tests/hello-rs");
    let _ = std::fs::remove_dir_all(&dir);
    let files = tollgate_pluginkit::new_project(&dir, "hello-rs", Lang::Rust).unwrap();
    for expected in ["Cargo.toml", "src/lib.rs", "README.md", "vendor/tollgate-sdk/wit/plugin.wit"] {
        assert!(files.iter().any(|f| f == &PathBuf::from(expected)), "{expected} in {files:?}");
    }
    // A second `new` into the same directory refuses rather than overwrite.
    let again = tollgate_pluginkit::new_project(&dir, "hello-rs", Lang::Rust).unwrap_err();
    assert!(matches!(again, BuildError::NotEmpty(_)), "{again}");

    let project = dir.clone();
    let built = tokio::task::spawn_blocking(move || tollgate_pluginkit::build(&project, &BuildOptions::default()))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("build: {e}"));
    assert_eq!(built.lang, Lang::Rust);
    assert_eq!(built.component, dir.join("target/hello-rs.wasm"));

    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    let plugin = sandbox.load_file(&built.component, Grants::new()).await.unwrap_or_else(|e| panic!("load: {e}"));
    assert_eq!(plugin.manifest().name, "hello-rs");
    assert!(plugin.capabilities().is_empty(), "a pure tool imports no capability: {:?}", plugin.capabilities());

    let out = plugin.call("greet", r#"{"name": "Ada"}"#, &ctx()).await;
    assert_eq!(out.result.unwrap(), json!({"greeting": "Hello, Ada!"}));
    let out = plugin.call("greet", r#"{"name": "  "}"#, &ctx()).await;
    assert!(matches!(out.result, Err(CallError::Tool(ToolError::InvalidInput { .. }))), "{:?}", out.result);
    let out = plugin.call("greet", r#"{"nom": "Ada"}"#, &ctx()).await;
    assert!(matches!(out.result, Err(CallError::InvalidInput { .. })), "{:?}", out.result);
}

#[test]
fn invalid_names_and_unknown_projects_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let err = tollgate_pluginkit::new_project(&dir.path().join("x"), "Bad Name", Lang::Rust).unwrap_err();
    assert_eq!(err.to_string(), "invalid plugin name `Bad Name`: must start with a lowercase letter");
    let err = tollgate_pluginkit::build(dir.path(), &BuildOptions::default()).unwrap_err();
    assert!(matches!(err, BuildError::UnknownProject(_)), "{err}");
}

/// Issue 14: `cargo test` of a new project whose tool uses kv, log and secrets runs natively
/// (the vendored SDK answers them with its stand-ins) instead of aborting the test run.
#[test]
fn a_new_projects_tests_run_natively_with_kv_log_and_secrets() {
    let dir = target_dir().join("pluginkit-rust-tests/native-caps");
    let _ = std::fs::remove_dir_all(&dir);
    tollgate_pluginkit::new_project(&dir, "native-caps", Lang::Rust).unwrap();
    let lib = dir.join("src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap().replace(
        "    Ok(GreetOutput { greeting: format!(\"Hello, {name}!\") })",
        "    let key = secrets::get(\"greeting_key\")?;\n    kv::set(\"last\", name.as_bytes())?;\n    \
         log::info(\"greeted\");\n    Ok(GreetOutput { greeting: format!(\"Hello, {name}! ({})\", key.len()) })",
    );
    let text = text.replace(
        "    #[test]\n    fn greets_by_name() {\n",
        "    #[test]\n    fn greets_by_name() {\n        tollgate_sdk::testing::set_secret(\"greeting_key\", \"k\");\n",
    );
    let text = text.replace(
        "        assert_eq!(out.greeting, \"Hello, Ada!\");",
        "        assert_eq!(out.greeting, \"Hello, Ada! (1)\");\n        \
         assert_eq!(kv::get(\"last\").unwrap().as_deref(), Some(&b\"Ada\"[..]));\n        \
         assert_eq!(tollgate_sdk::testing::logs()[0].message, \"greeted\");",
    );
    std::fs::write(&lib, text).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo).arg("test").current_dir(&dir).output().unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cargo test of the project failed:\n{log}");
    assert!(log.contains("test tests::greets_by_name ... ok"), "{log}");
}
