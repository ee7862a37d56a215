//! Rust plugin projects: a cargo crate (cdylib) built for `wasm32-wasip2`, using the Tollgate
//! Rust SDK vendored into the project (`vendor/tollgate-sdk`), so the project needs nothing
//! from outside crates.io and builds the same anywhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BuildOptions;
use crate::error::BuildError;
use crate::toolchain;

/// The Rust target every plugin is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The SDK's sources, compiled into the kit: `(path inside vendor/tollgate-sdk, text)`.
const SDK_FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../../../plugins/sdk-rust/README.md")),
    ("src/lib.rs", include_str!("../../../plugins/sdk-rust/src/lib.rs")),
    ("src/bindings.rs", include_str!("../../../plugins/sdk-rust/src/bindings.rs")),
    ("src/context.rs", include_str!("../../../plugins/sdk-rust/src/context.rs")),
    ("src/error.rs", include_str!("../../../plugins/sdk-rust/src/error.rs")),
    ("src/kv.rs", include_str!("../../../plugins/sdk-rust/src/kv.rs")),
    ("src/log.rs", include_str!("../../../plugins/sdk-rust/src/log.rs")),
    ("src/plugin.rs", include_str!("../../../plugins/sdk-rust/src/plugin.rs")),
    ("src/plugin_tests.rs", include_str!("../../../plugins/sdk-rust/src/plugin_tests.rs")),
    ("src/secrets.rs", include_str!("../../../plugins/sdk-rust/src/secrets.rs")),
    ("src/testing.rs", include_str!("../../../plugins/sdk-rust/src/testing.rs")),
    ("src/http/mod.rs", include_str!("../../../plugins/sdk-rust/src/http/mod.rs")),
    ("src/http/transport.rs", include_str!("../../../plugins/sdk-rust/src/http/transport.rs")),
    ("src/http/url.rs", include_str!("../../../plugins/sdk-rust/src/http/url.rs")),
];

/// The vendored SDK's manifest: the workspace's pins, written out (the SDK is not in a
/// workspace once vendored).
const SDK_MANIFEST: &str = r#"[package]
name = "tollgate-sdk"
description = "Write Tollgate plugins (WebAssembly components) in Rust as plain functions over serde types."
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"
publish = false

# Vendored by `tollgate new plugin`: a copy of the SDK the host was built with.
[dependencies]
wit-bindgen = { version = "=0.63.0", default-features = false, features = ["macros", "realloc", "std", "bitflags"] }
wasip2 = "=2.0.1"
schemars = "1.0"
serde = { version = "1.0.219", features = ["derive"] }
serde_json = "1.0.140"
serde_path_to_error = "0.1.20"
"#;

/// Builds the crate in `dir` with cargo for [`TARGET`] and returns the component.
pub fn build(dir: &Path, options: &BuildOptions) -> Result<PathBuf, BuildError> {
    ensure_target(&options.progress)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(dir).args(["build", "--target", TARGET, "--message-format=json-render-diagnostics"]);
    if !options.debug {
        cmd.arg("--release");
    }
    let profile = if options.debug { "dev" } else { "release" };
    let step = format!("cargo build ({profile}, {TARGET}; a first build compiles the dependencies too)");
    let output = options
        .progress
        .step(&step, || cmd.output())
        .map_err(|e| BuildError::MissingTool { what: cargo.clone(), hint: e.to_string() })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(BuildError::Build {
            what: format!("cargo build --target {TARGET}"),
            log: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let wasm = artifact(&stdout).ok_or_else(|| BuildError::Project {
        path: dir.join("Cargo.toml").display().to_string(),
        message: "cargo built no .wasm (is `crate-type = [\"cdylib\"]` set under [lib]?)".into(),
    })?;
    // Copied to a path that does not depend on CARGO_TARGET_DIR or the profile, like the other
    // languages' `target/<name>.wasm`.
    let out = match options.output.clone() {
        Some(out) => out,
        None => dir.join("target").join(format!("{}.wasm", package_name(dir)?)),
    };
    let out = out.as_path();
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    }
    std::fs::copy(&wasm, out).map_err(|e| BuildError::io(out, e))?;
    Ok(out.to_owned())
}

/// `[package] name` of the crate in `dir`.
fn package_name(dir: &Path) -> Result<String, BuildError> {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| BuildError::io(&path, e))?;
    let manifest: toml::Table = toml::from_str(&text)
        .map_err(|e| BuildError::Project { path: path.display().to_string(), message: e.to_string() })?;
    manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .ok_or_else(|| BuildError::Project { path: path.display().to_string(), message: "no [package] name".into() })
}

/// The last `.wasm` file cargo reported in its JSON messages.
fn artifact(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
}

/// Makes sure the standard library for [`TARGET`] is installed (through rustup if it is not).
fn ensure_target(progress: &crate::Progress) -> Result<(), BuildError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = toolchain::run(Command::new(&rustc).args(["--print", "sysroot"]), |log| BuildError::Build {
        what: "rustc --print sysroot".into(),
        log,
    })?;
    if Path::new(sysroot.trim()).join("lib/rustlib").join(TARGET).is_dir() {
        return Ok(());
    }
    progress
        .step(&format!("installing the {TARGET} target (rustup target add {TARGET}, once)"), || {
            toolchain::run(Command::new("rustup").args(["target", "add", TARGET]), |log| BuildError::Install {
                what: format!("the {TARGET} target (rustup target add {TARGET})"),
                log,
            })
        })
        .map(drop)
}

/// The files of a new Rust plugin project named `name`.
pub fn template(name: &str) -> Vec<(PathBuf, String)> {
    let mut files = vec![
        (PathBuf::from("Cargo.toml"), CARGO_TOML.replace("__NAME__", name)),
        (PathBuf::from("src/lib.rs"), LIB_RS.replace("__NAME__", name)),
        (PathBuf::from("README.md"), README.replace("__NAME__", name)),
        (PathBuf::from(".gitignore"), "/target\n".to_string()),
        (PathBuf::from("vendor/tollgate-sdk/Cargo.toml"), SDK_MANIFEST.to_string()),
        (PathBuf::from("vendor/tollgate-sdk/wit/plugin.wit"), crate::PLUGIN_WIT.to_string()),
    ];
    for (path, text) in SDK_FILES {
        // In the repository the SDK reads the contract from the top-level `wit/`; vendored, it
        // carries its own copy.
        let text = if *path == "src/bindings.rs" {
            text.replace("path: \"../../wit\"", "path: \"wit\"")
        } else {
            text.to_string()
        };
        files.push((Path::new("vendor/tollgate-sdk").join(path), text));
    }
    files
}

const CARGO_TOML: &str = r#"[package]
name = "__NAME__"
version = "0.1.0"
edition = "2024"
publish = false

# A standalone project, even when created inside another cargo workspace.
[workspace]

[lib]
# A WebAssembly component for wasm32-wasip2 (`tollgate plugin build`); `cargo test` runs natively.
crate-type = ["cdylib"]

[dependencies]
tollgate-sdk = { path = "vendor/tollgate-sdk" }
# Direct dependencies because the derive macros refer to these crates by name.
serde = { version = "1.0.219", features = ["derive"] }
schemars = "1.0"
serde_json = "1.0.140"

[profile.release]
# Components are downloaded and compiled by hosts: keep them small.
opt-level = "s"
lto = true
strip = true
codegen-units = 1
panic = "abort"
"#;

const LIB_RS: &str = r#"//! `__NAME__`: a Tollgate plugin. Each tool is a plain function from a serde input to a serde
//! output; `plugin!` turns them into a component exporting `tollgate:plugin/tool`.

use tollgate_sdk::prelude::*;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GreetInput {
    /// Who to greet.
    pub name: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GreetOutput {
    pub greeting: String,
}

/// Greets someone by name. A tool's own failures are typed [`ToolError`]s.
pub fn greet(_ctx: &Context, input: GreetInput) -> Result<GreetOutput, ToolError> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err(ToolError::invalid_input("`name` is empty"));
    }
    Ok(GreetOutput { greeting: format!("Hello, {name}!") })
}

tollgate_sdk::plugin! {
    name: "__NAME__",
    version: env!("CARGO_PKG_VERSION"),
    description: "Greets people by name.",
    tools: [Tool::new("greet", "Greet someone by name.", greet)],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::new("run_test", "call_1", "run_test:0:0")
    }

    #[test]
    fn greets_by_name() {
        let out = greet(&ctx(), GreetInput { name: " Ada ".into() }).unwrap();
        assert_eq!(out.greeting, "Hello, Ada!");
    }

    #[test]
    fn an_empty_name_is_invalid_input() {
        assert!(greet(&ctx(), GreetInput { name: "  ".into() }).is_err());
    }
}
"#;

const README: &str = r#"# __NAME__

A Tollgate plugin in Rust: one tool, `greet`.

    tollgate plugin build                          # → target/__NAME__.wasm
    cargo test                                     # unit tests, natively
    tollgate plugin inspect target/__NAME__.wasm
    tollgate plugin call target/__NAME__.wasm greet --input '{"name": "Ada"}'

`vendor/tollgate-sdk` is the SDK this project was created with (a copy of the one the host was
built with). Capabilities follow calls: a plugin that never calls `tollgate_sdk::kv` does not
import the kv interface, and the host grants only what a workflow allows.
"#;
