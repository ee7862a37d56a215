//! Pinned toolchains: where they live and how commands run.
//!
//! Every version a build depends on is a constant here, so one place says what a build uses.
//! Toolchains install under [`default_dir`] (`$TOLLGATE_TOOLCHAINS`, else
//! `$XDG_CACHE_HOME/tollgate/toolchains`, else `~/.cache/tollgate/toolchains`), one directory
//! per language and pin, so two pins never mix.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::BuildError;

/// The toolchain directory used when none is given.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TOLLGATE_TOOLCHAINS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("tollgate").join("toolchains")
}

/// Runs `cmd`, returning its combined output; on failure, `make_err(output)`.
pub fn run(cmd: &mut Command, make_err: impl FnOnce(String) -> BuildError) -> Result<String, BuildError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BuildError::MissingTool { hint: format!("`{program}` is not on PATH"), what: program });
        }
        Err(e) => return Err(make_err(e.to_string())),
    };
    let mut log = String::from_utf8_lossy(&output.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() { Ok(log) } else { Err(make_err(log)) }
}

/// Unless `verbose`, the tool (componentize-py, wizer: Rust programs) prints no Rust backtrace
/// even where the user's `RUST_BACKTRACE` asks for one: a plugin author needs the message, and
/// a backtrace of the componentizer's internals buries it.
pub fn backtraces(cmd: &mut Command, verbose: bool) {
    if !verbose {
        cmd.env("RUST_BACKTRACE", "0").env("RUST_LIB_BACKTRACE", "0");
    }
}

/// Installs into `dir` with `install` unless `dir/.complete` exists. Installs go to a
/// temporary sibling and are renamed into place, so an interrupted install is never mistaken
/// for a finished one and two concurrent installs do not corrupt each other.
pub fn ensure_installed(
    dir: &Path,
    install: impl FnOnce(&Path) -> Result<(), BuildError>,
) -> Result<PathBuf, BuildError> {
    if dir.join(".complete").is_file() {
        return Ok(dir.to_owned());
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique per install attempt, also between threads of one process.
    static ATTEMPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = ATTEMPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let staging = parent.join(format!(".{name}.{}-{attempt}.partial", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| BuildError::io(&staging, e))?;
    let result = install(&staging).and_then(|()| {
        std::fs::write(staging.join(".complete"), "").map_err(|e| BuildError::io(&staging, e))?;
        match std::fs::rename(&staging, dir) {
            Ok(()) => Ok(()),
            // Another process finished first: use theirs.
            Err(_) if dir.join(".complete").is_file() => Ok(()),
            Err(e) => Err(BuildError::io(dir, e)),
        }
    });
    let _ = std::fs::remove_dir_all(&staging);
    result.map(|()| dir.to_owned())
}
