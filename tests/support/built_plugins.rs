//! Where the components built by `cargo xtask plugins` are, for every integration test that
//! loads them, and the one message when they are missing. Included by path from the crates'
//! tests (`#[path = "../../../tests/support/built_plugins.rs"] mod built_plugins;`), so no
//! test-support crate is needed. Plain `cargo test` cannot build them itself: cargo holds the
//! target directory's lock while tests run, and they are a wasm32-wasip2 build of other crates.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};

/// `<target>/plugins`, honouring `CARGO_TARGET_DIR` as `cargo xtask plugins` does.
pub fn dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("plugins")
}

/// `<target>/plugins/<name>.wasm`; panics naming the command to run when it is not built.
pub fn path(name: &str) -> PathBuf {
    let path = dir().join(format!("{name}.wasm"));
    assert!(path.exists(), "{}", missing(&path));
    path
}

/// What to say when a built plugin is missing.
pub fn missing(path: &Path) -> String {
    format!(
        "{} is missing: build the plugins with `cargo xtask plugins` (or run the whole suite with `cargo xtask test`)",
        path.display()
    )
}
