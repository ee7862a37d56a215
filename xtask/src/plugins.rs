//! `cargo xtask plugins`: builds every plugin crate to a WebAssembly component and copies it to
//! `<target>/plugins/<short>.wasm`.
//!
//! Plugins are discovered, not listed: every workspace member whose manifest lives under
//! `plugins/` and that has a `cdylib` target. `<short>` is the package name without its
//! `tollgate-test-` or `tollgate-` prefix (`tollgate-crm` → `crm.wasm`,
//! `tollgate-test-echo` → `echo.wasm`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

const TARGET: &str = "wasm32-wasip2";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build with the dev profile (unoptimised, with debug info) instead of `plugin`.
    #[arg(long)]
    debug: bool,
    /// Build only these packages (for example `-p tollgate-crm`); all plugins by default.
    #[arg(short = 'p', long = "package", value_name = "NAME")]
    packages: Vec<String>,
}

impl Args {
    /// Every plugin, optimised: what `test` and `demo` build.
    pub fn all() -> Args {
        Args { debug: false, packages: Vec::new() }
    }
}

/// The package names of every plugin crate, for per-target checks.
pub fn packages() -> Result<Vec<String>> {
    let cargo = cargo();
    Ok(discover(&metadata(&cargo)?).into_iter().map(|p| p.package).collect())
}

/// The target directory (honouring `CARGO_TARGET_DIR`).
pub fn target_dir() -> Result<PathBuf> {
    Ok(metadata(&cargo())?.target_directory)
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// One plugin crate found in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plugin {
    package: String,
    id: String,
    manifest_path: PathBuf,
    short: String,
}

pub fn run(args: &Args) -> Result<()> {
    let cargo = cargo();
    let metadata = metadata(&cargo)?;
    let mut plugins = discover(&metadata);
    if !args.packages.is_empty() {
        if let Some(unknown) = args.packages.iter().find(|name| !plugins.iter().any(|p| &p.package == *name)) {
            bail!("`{unknown}` is not a plugin crate (known: {})", names(&plugins));
        }
        plugins.retain(|p| args.packages.contains(&p.package));
    }
    if plugins.is_empty() {
        bail!("no plugin crates (cdylib workspace members under plugins/) found");
    }
    ensure_target()?;

    let artifacts = build(&cargo, &metadata.workspace_root, &plugins, args.debug)?;
    let out_dir = metadata.target_directory.join("plugins");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let mut failed = Vec::new();
    for plugin in &plugins {
        let dest = out_dir.join(format!("{}.wasm", plugin.short));
        let Some(wasm) = artifacts.get(&plugin.id) else {
            // A stale copy would let tests run yesterday's plugin without noticing.
            let _ = std::fs::remove_file(&dest);
            failed.push(plugin);
            continue;
        };
        std::fs::copy(wasm, &dest).with_context(|| format!("copying {} to {}", wasm.display(), dest.display()))?;
        // Workflows in examples/ name plugins as `../../target/plugins/<name>.wasm`: keep that
        // path valid when CARGO_TARGET_DIR puts the build elsewhere (CI does).
        let stable = metadata.workspace_root.join("target/plugins");
        if stable != out_dir {
            std::fs::create_dir_all(&stable)?;
            let copy = stable.join(format!("{}.wasm", plugin.short));
            std::fs::copy(&dest, &copy).with_context(|| format!("copying to {}", copy.display()))?;
        }
        let size = std::fs::metadata(&dest)?.len();
        println!(
            "{:<12} {:>10}  {}  ({})",
            plugin.short,
            human_size(size),
            relative(&dest, &metadata.workspace_root).display(),
            plugin.package
        );
    }
    if !failed.is_empty() {
        let list: Vec<String> = failed
            .iter()
            .map(|p| format!("{} ({})", p.package, relative(&p.manifest_path, &metadata.workspace_root).display()))
            .collect();
        bail!("{} plugin crate(s) failed to build: {}", failed.len(), list.join(", "));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    workspace_root: PathBuf,
    /// Already honours `CARGO_TARGET_DIR` and `build.target-dir`.
    target_directory: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    id: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    crate_types: Vec<String>,
}

fn metadata(cargo: &str) -> Result<Metadata> {
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running `{cargo} metadata`"))?;
    if !output.status.success() {
        bail!("`cargo metadata` failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("parsing `cargo metadata` output")
}

/// Workspace members under `<root>/plugins/` with a `cdylib` target, sorted by package name.
fn discover(metadata: &Metadata) -> Vec<Plugin> {
    let plugins_dir = metadata.workspace_root.join("plugins");
    let mut found: Vec<Plugin> = metadata
        .packages
        .iter()
        .filter(|p| metadata.workspace_members.contains(&p.id))
        .filter(|p| p.manifest_path.starts_with(&plugins_dir))
        .filter(|p| p.targets.iter().any(|t| t.crate_types.iter().any(|c| c == "cdylib")))
        .map(|p| Plugin {
            package: p.name.clone(),
            id: p.id.clone(),
            manifest_path: p.manifest_path.clone(),
            short: short_name(&p.name).to_owned(),
        })
        .collect();
    found.sort_by(|a, b| a.package.cmp(&b.package));
    found
}

fn short_name(package: &str) -> &str {
    package.strip_prefix("tollgate-test-").or_else(|| package.strip_prefix("tollgate-")).unwrap_or(package)
}

/// Adds the wasm32-wasip2 target through rustup when it is missing. Without rustup (a
/// distribution toolchain) there is nothing to add: the build says what is missing.
pub fn ensure_target() -> Result<()> {
    let listed = match Command::new("rustup").args(["target", "list", "--installed"]).stderr(Stdio::inherit()).output()
    {
        Ok(output) if output.status.success() => output.stdout,
        _ => {
            eprintln!("warning: could not ask rustup for installed targets; assuming {TARGET} is there");
            return Ok(());
        }
    };
    if String::from_utf8_lossy(&listed).lines().any(|line| line.trim() == TARGET) {
        return Ok(());
    }
    eprintln!("installing the {TARGET} target (rustup target add {TARGET})");
    let status =
        Command::new("rustup").args(["target", "add", TARGET]).status().context("running `rustup target add`")?;
    if !status.success() {
        bail!("`rustup target add {TARGET}` failed ({status})");
    }
    Ok(())
}

/// Builds all plugins in one cargo invocation (one build graph, shared dependencies built
/// once) with `--keep-going`, so one broken crate does not hide the others. Returns the `.wasm`
/// of each package that built, keyed by package id, from cargo's JSON artifact messages.
fn build(cargo: &str, root: &Path, plugins: &[Plugin], debug: bool) -> Result<BTreeMap<String, PathBuf>> {
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--target", TARGET, "--keep-going"])
        .args(["--profile", if debug { "dev" } else { "plugin" }])
        // Diagnostics still reach the terminal rendered; stdout carries JSON messages.
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for plugin in plugins {
        command.args(["-p", &plugin.package]);
    }
    let mut child = command.spawn().with_context(|| format!("running `{cargo} build`"))?;
    let stdout = child.stdout.take().context("capturing cargo's output")?;
    let mut artifacts = BTreeMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        if let Some((id, wasm)) = wasm_artifact(&line)
            && plugins.iter().any(|p| p.id == id)
        {
            artifacts.insert(id, wasm);
        }
    }
    // A failed build is reported per crate by the caller; cargo's own errors are on stderr.
    let _status = child.wait().context("waiting for cargo")?;
    Ok(artifacts)
}

#[derive(Debug, Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    package_id: String,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    target: Option<Target>,
}

/// The package id and `.wasm` path of a cdylib `compiler-artifact` message.
fn wasm_artifact(line: &str) -> Option<(String, PathBuf)> {
    let message: Message = serde_json::from_str(line).ok()?;
    if message.reason != "compiler-artifact" || !message.target?.crate_types.iter().any(|c| c == "cdylib") {
        return None;
    }
    let wasm = message.filenames.into_iter().find(|f| f.extension().is_some_and(|e| e == "wasm"))?;
    Some((message.package_id, wasm))
}

fn names(plugins: &[Plugin]) -> String {
    plugins.iter().map(|p| p.package.as_str()).collect::<Vec<_>>().join(", ")
}

fn relative<'a>(path: &'a Path, root: &Path) -> &'a Path {
    path.strip_prefix(root).unwrap_or(path)
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_the_prefixes() {
        assert_eq!(short_name("tollgate-crm"), "crm");
        assert_eq!(short_name("tollgate-test-misbehave"), "misbehave");
        assert_eq!(short_name("weather"), "weather");
    }

    #[test]
    fn discovers_cdylib_members_under_plugins() {
        let metadata: Metadata = serde_json::from_value(serde_json::json!({
            "workspace_root": "/ws",
            "target_directory": "/ws/target",
            "workspace_members": ["crm-id", "sdk-id", "echo-id", "host-id"],
            "packages": [
                {"name": "tollgate-crm", "id": "crm-id", "manifest_path": "/ws/plugins/connectors/crm/Cargo.toml",
                 "targets": [{"crate_types": ["cdylib"]}]},
                {"name": "tollgate-sdk", "id": "sdk-id", "manifest_path": "/ws/plugins/sdk-rust/Cargo.toml",
                 "targets": [{"crate_types": ["lib"]}]},
                {"name": "tollgate-test-echo", "id": "echo-id", "manifest_path": "/ws/plugins/testing/echo/Cargo.toml",
                 "targets": [{"crate_types": ["cdylib", "rlib"]}]},
                {"name": "tollgate-sandbox", "id": "host-id", "manifest_path": "/ws/host/sandbox/Cargo.toml",
                 "targets": [{"crate_types": ["cdylib"]}]}
            ]
        }))
        .unwrap();
        let found: Vec<(String, String)> = discover(&metadata).into_iter().map(|p| (p.package, p.short)).collect();
        assert_eq!(
            found,
            vec![("tollgate-crm".to_owned(), "crm".to_owned()), ("tollgate-test-echo".to_owned(), "echo".to_owned()),]
        );
    }

    #[test]
    fn reads_wasm_artifacts_from_cargo_messages() {
        let line = r#"{"reason":"compiler-artifact","package_id":"crm-id","target":{"crate_types":["cdylib"]},"filenames":["/ws/target/wasm32-wasip2/plugin/tollgate_crm.wasm"],"fresh":true}"#;
        assert_eq!(
            wasm_artifact(line),
            Some(("crm-id".to_owned(), PathBuf::from("/ws/target/wasm32-wasip2/plugin/tollgate_crm.wasm")))
        );
        let lib = r#"{"reason":"compiler-artifact","package_id":"sdk-id","target":{"crate_types":["lib"]},"filenames":["/x/libtollgate_sdk.rlib"]}"#;
        assert_eq!(wasm_artifact(lib), None);
        assert_eq!(wasm_artifact(r#"{"reason":"build-finished","success":false}"#), None);
        assert_eq!(wasm_artifact("not json"), None);
    }
}
