//! `cargo deny check licenses bans sources`, a step of `cargo xtask test`: cargo-deny at a pinned
//! version, built from crates.io on first use into a tools directory outside the clone
//! (`$TOLLGATE_TOOLS_DIR`, default `~/.cache/tollgate-tools`) and reused while its version
//! matches. Advisories are not checked here: their database lives on GitHub (see `deny.toml`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The cargo-deny release `deny.toml` is written for.
pub const VERSION: &str = "0.20.2";

/// Where the project's tools are installed (cargo-deny, the live-model test's Python environment).
pub fn tools_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TOLLGATE_TOOLS_DIR") {
        return Ok(dir.into());
    }
    let home = std::env::var_os("HOME").context("HOME is not set (set TOLLGATE_TOOLS_DIR instead)")?;
    Ok(PathBuf::from(home).join(".cache/tollgate-tools"))
}

/// The version an installed `cargo-deny` reports (`cargo-deny 0.20.2`), if it runs.
fn installed_version(bin: &Path) -> Option<String> {
    let output = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    output.status.success().then(|| text.split_whitespace().last().unwrap_or_default().to_owned())
}

/// The pinned cargo-deny, installed first if it is missing or another version.
fn ensure_installed(cargo: &str) -> Result<PathBuf> {
    let root = tools_dir()?;
    let bin = root.join("bin/cargo-deny");
    if installed_version(&bin).as_deref() == Some(VERSION) {
        return Ok(bin);
    }
    eprintln!("installing cargo-deny {VERSION} from crates.io into {} (once)", root.display());
    let build = root.join("build");
    let status = Command::new(cargo)
        .args(["install", "cargo-deny", "--locked", "--force", "--version", VERSION, "--root"])
        .arg(&root)
        .env("CARGO_TARGET_DIR", &build)
        // cargo-deny's release profile asks for fat LTO and one codegen unit: minutes of CPU
        // for a tool that runs for a second.
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .status()
        .context("running `cargo install cargo-deny`")?;
    let _ = std::fs::remove_dir_all(&build);
    if !status.success() {
        bail!("`cargo install cargo-deny --version {VERSION}` failed ({status})");
    }
    Ok(bin)
}

/// Licences, banned and duplicate crates, and sources of the whole workspace, against
/// `deny.toml`; offline (nothing it checks needs the network). cargo-deny reads the
/// metadata of every platform's dependencies, which a build for this one never downloads, so
/// they are fetched (from the lock file, crates.io only) first.
pub fn check(cargo: &str) -> Result<Command> {
    // The runtime value, not `env!`: the target dir may be shared by several clones, and a
    // binary built in one of them must not point `cargo deny` at another's path.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").context("run xtask through `cargo xtask`")?;
    let root = Path::new(&manifest_dir).parent().context("xtask lives in the workspace root")?.to_path_buf();
    let fetched = Command::new(cargo)
        .current_dir(&root)
        .args(["fetch", "--locked"])
        .status()
        .context("running `cargo fetch --locked`")?;
    if !fetched.success() {
        bail!("`cargo fetch --locked` failed ({fetched})");
    }
    let mut command = Command::new(ensure_installed(cargo)?);
    command.current_dir(root).args(["deny", "--offline", "check", "licenses", "bans", "sources"]);
    Ok(command)
}
