//! The pinned JavaScript toolchains: one npm install per engine, each with the bundler.
//!
//! Every package version is pinned twice: the direct dependencies here, and every transitive
//! one (with its integrity hash) in the lock file compiled into this crate. `npm install` runs
//! against that lock (it installs the locked versions and checks their hashes); not `npm ci`,
//! which refuses the lock because componentize-qjs 0.4.5 lists three optional platform
//! packages that were never published. Install scripts are disabled (`--ignore-scripts`): none
//! of these packages needs one, and the entry points are called with `node <file>`, never
//! through `.bin` links, so the install is relocatable (it is staged and renamed by
//! [`toolchain::ensure_installed`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::project::Engine;
use crate::error::BuildError;
use crate::{Progress, toolchain};

/// `@bytecodealliance/componentize-js` (StarlingMonkey): the default engine.
pub const COMPONENTIZE_JS: &str = "0.23.0";
/// `componentize-qjs` (QuickJS): the engine behind `jco componentize --backend quickjs` in
/// jco 1.35, called directly (jco itself would add ~300 MB of unrelated packages).
pub const COMPONENTIZE_QJS: &str = "0.4.5";
/// `esbuild`: bundles the project, its npm dependencies and the SDK into one ES module.
pub const ESBUILD: &str = "0.28.2";
/// The oldest Node.js the toolchains run on.
pub const MIN_NODE_MAJOR: u32 = 18;

const STARLINGMONKEY_LOCK: &str = include_str!("starlingmonkey.lock.json");
const QUICKJS_LOCK: &str = include_str!("quickjs.lock.json");

/// Paths inside an installed toolchain.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub dir: PathBuf,
    pub engine: Engine,
}

impl Toolchain {
    /// The bundler's CLI entry (a JavaScript file: run it with `node`).
    pub fn esbuild(&self) -> PathBuf {
        self.dir.join("node_modules/esbuild/bin/esbuild")
    }

    /// The componentizer's CLI entry (a JavaScript file: run it with `node`).
    pub fn componentizer(&self) -> PathBuf {
        match self.engine {
            Engine::StarlingMonkey => self.dir.join("node_modules/@bytecodealliance/componentize-js/src/cli.js"),
            Engine::QuickJs => self.dir.join("node_modules/componentize-qjs/cli.mjs"),
        }
    }
}

/// `@bytecodealliance/preview2-shim`: componentize-js 0.23.0 imports it at run time but
/// declares it only as a dev dependency, so it must be installed beside it.
pub const PREVIEW2_SHIM: &str = "0.25.0";

/// `(package, version)` of the engine's direct dependencies.
pub fn dependencies(engine: Engine) -> &'static [(&'static str, &'static str)] {
    match engine {
        Engine::StarlingMonkey => &[
            ("@bytecodealliance/componentize-js", COMPONENTIZE_JS),
            ("@bytecodealliance/preview2-shim", PREVIEW2_SHIM),
            ("esbuild", ESBUILD),
        ],
        Engine::QuickJs => &[("componentize-qjs", COMPONENTIZE_QJS), ("esbuild", ESBUILD)],
    }
}

fn lock(engine: Engine) -> &'static str {
    match engine {
        Engine::StarlingMonkey => STARLINGMONKEY_LOCK,
        Engine::QuickJs => QUICKJS_LOCK,
    }
}

/// The package.json npm installs from; it must agree with the lock file's root entry.
pub fn package_json(engine: Engine) -> String {
    let deps: serde_json::Map<String, serde_json::Value> =
        dependencies(engine).iter().map(|(name, version)| ((*name).to_owned(), (*version).into())).collect();
    let doc = serde_json::json!({ "name": "tollgate-js-toolchain", "private": true, "dependencies": deps });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The toolchain directory for `engine`'s pins. It names the direct pins and a digest of the
/// lock file, so changing any transitive pin installs afresh instead of reusing an old tree.
pub fn toolchain_dir(toolchains: &Path, engine: Engine) -> PathBuf {
    use sha2::{Digest, Sha256};
    let pin = match engine {
        Engine::StarlingMonkey => format!("js-componentize-js-{COMPONENTIZE_JS}"),
        Engine::QuickJs => format!("js-componentize-qjs-{COMPONENTIZE_QJS}"),
    };
    let digest = hex::encode(Sha256::digest(lock(engine).as_bytes()));
    toolchains.join(format!("{pin}-esbuild-{ESBUILD}-{}", &digest[..12]))
}

/// Checks that `node` is on PATH and recent enough; returns its version line.
pub fn check_node() -> Result<String, BuildError> {
    let hint = || format!("install Node.js {MIN_NODE_MAJOR} or later (with npm) and put `node` on PATH");
    let version = toolchain::run(Command::new("node").arg("--version"), |log| BuildError::MissingTool {
        what: "node".to_owned(),
        hint: format!("{} ({})", hint(), log.trim()),
    })
    .map_err(|e| match e {
        BuildError::MissingTool { what, .. } => BuildError::MissingTool { what, hint: hint() },
        other => other,
    })?;
    let version = version.trim().to_owned();
    let major = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(major) if major >= MIN_NODE_MAJOR => Ok(version),
        _ => Err(BuildError::MissingTool { what: format!("node (found {version})"), hint: hint() }),
    }
}

/// Installs `engine`'s toolchain from the npm registry unless it is there.
pub fn install(toolchains: &Path, engine: Engine, progress: &Progress) -> Result<Toolchain, BuildError> {
    check_node()?;
    let dir = toolchain_dir(toolchains, engine);
    let size = match engine {
        Engine::StarlingMonkey => "about 400 MB",
        Engine::QuickJs => "about 50 MB",
    };
    let step = format!("installing the {} toolchain from npm into {} ({size}, once)", engine.name(), dir.display());
    let dir = toolchain::ensure_installed(&dir, |staging| {
        progress.step(&step, || {
            let what = dependencies(engine).iter().map(|(n, v)| format!("{n}@{v}")).collect::<Vec<_>>().join(" ");
            let write = |name: &str, text: &str| {
                let path = staging.join(name);
                std::fs::write(&path, text).map_err(|e| BuildError::io(&path, e))
            };
            write("package.json", &package_json(engine))?;
            write("package-lock.json", lock(engine))?;
            toolchain::run(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error", "--prefix"])
                    .arg(staging),
                |log| BuildError::Install { what: what.clone(), log },
            )?;
            let installed = Toolchain { dir: staging.to_owned(), engine };
            for entry in [installed.esbuild(), installed.componentizer()] {
                if !entry.is_file() {
                    return Err(BuildError::Install {
                        what: what.clone(),
                        log: format!("npm install finished but {} is missing", entry.display()),
                    });
                }
            }
            Ok(())
        })
    })?;
    Ok(Toolchain { dir, engine })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bumped pin without a regenerated lock file would install something else (or fail).
    #[test]
    fn lock_files_pin_the_declared_versions() {
        for engine in [Engine::StarlingMonkey, Engine::QuickJs] {
            let lock: serde_json::Value = serde_json::from_str(lock(engine)).unwrap();
            let root: serde_json::Value = serde_json::from_str(&package_json(engine)).unwrap();
            assert_eq!(lock["packages"][""]["dependencies"], root["dependencies"], "{}", engine.name());
            assert_eq!(lock["name"], root["name"]);
            assert!(!lock.to_string().contains("\"extraneous\""), "npm would prune extraneous packages");
            for (name, version) in dependencies(engine) {
                let entry = &lock["packages"][format!("node_modules/{name}")];
                assert_eq!(entry["version"], *version, "{name} in the {} lock", engine.name());
                assert!(entry["integrity"].as_str().is_some_and(|i| i.starts_with("sha512-")), "{name}");
            }
        }
    }

    #[test]
    fn toolchain_dirs_name_every_pin() {
        let name = |engine| toolchain_dir(Path::new("/t"), engine).file_name().unwrap().to_string_lossy().into_owned();
        let (sm, qjs) = (name(Engine::StarlingMonkey), name(Engine::QuickJs));
        assert!(sm.starts_with("js-componentize-js-0.23.0-esbuild-0.28.2-"), "{sm}");
        assert!(qjs.starts_with("js-componentize-qjs-0.4.5-esbuild-0.28.2-"), "{qjs}");
        assert_ne!(sm.rsplit('-').next(), qjs.rsplit('-').next(), "the lock digests differ");
    }
}
