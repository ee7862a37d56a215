//! What both runtime benchmarks share: where the built test plugin is.

use std::path::PathBuf;

/// `target/plugins/echo.wasm` (honouring `CARGO_TARGET_DIR`); exits 2 when it is not built.
pub fn echo_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target.join("plugins").join("echo.wasm");
    if !path.exists() {
        eprintln!("{} is missing: run `cargo xtask plugins` first", path.display());
        std::process::exit(2);
    }
    path
}
