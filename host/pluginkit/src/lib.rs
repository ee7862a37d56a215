//! `tollgate-pluginkit` turns a plugin *project* (source in Rust, Python or JavaScript) into a
//! component the sandbox can load, and writes new projects from templates.
//!
//! ```text
//! new_project(dir, name, lang)   template files for one tool, a test, a README
//! build(dir, options)            detect language → ensure pinned toolchain → component .wasm
//!   ├─ rust     cargo build --target wasm32-wasip2 (wit-bindgen, the Rust SDK)
//!   ├─ python   componentize-py (pinned, pip-installed into the toolchain dir) + the Python SDK
//!   └─ js       the JS SDK + the pinned JS componentizer (npm, installed by the kit)
//! ```
//!
//! Invariants:
//! - Toolchains are pinned here (see [`toolchain`]) and installed from the package registries
//!   into the toolchain directory, never taken from whatever happens to be on `PATH`.
//! - The WIT contract and the SDK sources are compiled into this crate, so a project outside
//!   the Tollgate repository builds against the same contract as the host that runs it.
//! - Only this crate knows how to invoke componentizers; the CLI and xtask call [`build`].

pub mod error;
pub mod js;
pub mod lang;
pub mod progress;
pub mod python;
pub mod rust;
pub mod toolchain;
pub mod wit;

pub use error::BuildError;
pub use lang::Lang;
pub use progress::{Progress, Step};

use std::path::{Path, PathBuf};

/// The Tollgate plugin contract, as the host was built with it.
pub const PLUGIN_WIT: &str = include_str!("../../../wit/plugin.wit");

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Where the component goes; default `<project>/target/<name>.wasm` (Rust: `target/plugins`).
    pub output: Option<PathBuf>,
    /// Toolchain directory; default [`toolchain::default_dir`].
    pub toolchains: Option<PathBuf>,
    /// Rust only: build with the dev profile.
    pub debug: bool,
    /// Keep the componentizers' own tracebacks and backtraces in build errors.
    pub verbose: bool,
    /// Where the long steps are reported.
    pub progress: Progress,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub lang: Lang,
    pub component: PathBuf,
    pub size: u64,
}

/// Builds the project in `dir` to a component.
///
/// Relative paths (`dir`, `output`, `toolchains`) are resolved against the working directory
/// here, once: the language builds run their tools in other directories, so everything past
/// this point uses absolute paths and never depends on the process's working directory.
pub fn build(dir: &Path, options: &BuildOptions) -> Result<Built, BuildError> {
    let dir = dir.canonicalize().map_err(|e| BuildError::io(dir, e))?;
    let dir = dir.as_path();
    let lang = Lang::detect(dir)?;
    let absolute = |path: &Path| std::path::absolute(path).map_err(|e| BuildError::io(path, e));
    let toolchains = absolute(&options.toolchains.clone().unwrap_or_else(toolchain::default_dir))?;
    let output = options.output.as_deref().map(absolute).transpose()?;
    let options = BuildOptions { output, toolchains: Some(toolchains.clone()), ..options.clone() };
    let component = match lang {
        Lang::Rust => rust::build(dir, &options)?,
        Lang::Python => python::build(dir, &toolchains, &options)?,
        Lang::Js => js::build(dir, &toolchains, &options)?,
    };
    let size = std::fs::metadata(&component).map_err(|e| BuildError::io(&component, e))?.len();
    Ok(Built { lang, component, size })
}

/// Writes a new project named `name` in `dir` (which must not exist or be empty). Returns the
/// files written, relative to `dir`.
pub fn new_project(dir: &Path, name: &str, lang: Lang) -> Result<Vec<PathBuf>, BuildError> {
    lang::check_name(name)?;
    if dir.exists() && dir.read_dir().map_err(|e| BuildError::io(dir, e))?.next().is_some() {
        return Err(BuildError::NotEmpty(dir.display().to_string()));
    }
    let files = match lang {
        Lang::Rust => rust::template(name),
        Lang::Python => python::template(name),
        Lang::Js => js::template(name),
    };
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| BuildError::io(&path, e))?;
        written.push(rel);
    }
    Ok(written)
}
