//! JavaScript plugin projects: the pinned npm toolchains, builds to a component, and the
//! `tollgate new plugin NAME --lang js` template.
//!
//! ```text
//! build(dir)
//!   ├─ package.json → Project (main, capabilities, engine)                project.rs
//!   ├─ toolchains/js-componentize-js-<pin>-esbuild-<pin>/  npm install (once, locked)  install.rs
//!   ├─ .tollgate/sdk/*.js            the SDK compiled into this crate (`#tollgate`; tests use it too)
//!   ├─ .tollgate/build/wit/          plugin.wit + world.wit (declared capabilities only) + deps/
//!   ├─ .tollgate/build/capabilities.js   imports the declared interfaces, hands them to the SDK
//!   ├─ .tollgate/build/entry.js      `export const tool = exportTool(<main>'s default export)`, and `requests`
//!   ├─ esbuild entry.js → bundle.js  one ES module: project + npm deps + SDK
//!   └─ componentize-js (StarlingMonkey) or componentize-qjs (QuickJS) → target/<name>.wasm
//! ```
//!
//! Why a bundle: both componentizers take one ES module best, and the bundler resolves what
//! they cannot (`#tollgate` through package.json `imports`, npm packages), so a project is
//! laid out as any Node project and its pure logic tests run under plain `node --test`.
//!
//! Why a generated world and capabilities module: the componentizers import everything the
//! target world imports, and the host reads imports as capabilities. The SDK never names a WIT
//! import itself; it reads the interfaces the generated module publishes, so a plugin's imports
//! are exactly its package.json declaration. StarlingMonkey's own WASI features (stdio, random,
//! clocks, fetch) are disabled (`-d`) and QuickJS's are stubbed (`--stub-wasi`): the SDK's
//! `http` speaks wasi:http directly.

mod install;
mod project;
mod template;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use install::{COMPONENTIZE_JS, COMPONENTIZE_QJS, ESBUILD, Toolchain, install, toolchain_dir};
pub use project::{Capability, Engine, Project, SDK_IMPORT, WASI_VERSION, WORLD};
pub use template::template;

use crate::BuildOptions;
use crate::error::BuildError;

/// The SDK (`plugins/sdk-js`), as the kit writes it into every project's `.tollgate/sdk/`.
pub(crate) const SDK_FILES: &[(&str, &str)] = &[
    ("engine.js", include_str!("../../../../plugins/sdk-js/engine.js")),
    ("errors.js", include_str!("../../../../plugins/sdk-js/errors.js")),
    ("http.js", include_str!("../../../../plugins/sdk-js/http.js")),
    ("index.js", include_str!("../../../../plugins/sdk-js/index.js")),
    ("kv.js", include_str!("../../../../plugins/sdk-js/kv.js")),
    ("log.js", include_str!("../../../../plugins/sdk-js/log.js")),
    ("plugin.js", include_str!("../../../../plugins/sdk-js/plugin.js")),
    ("schema.js", include_str!("../../../../plugins/sdk-js/schema.js")),
    ("secrets.js", include_str!("../../../../plugins/sdk-js/secrets.js")),
    ("utf8.js", include_str!("../../../../plugins/sdk-js/utf8.js")),
    // The SDK is ES modules whatever the project's own package.json says.
    ("package.json", "{\n  \"name\": \"tollgate-sdk\",\n  \"private\": true,\n  \"type\": \"module\"\n}\n"),
];

/// The StarlingMonkey features the SDK does not use: each would add WASI imports.
const STARLINGMONKEY_DISABLED: &[&str] = &["stdio", "random", "clocks", "http", "fetch-event"];

/// Builds the project in `dir`; returns the component's path.
/// `dir` and `output` are absolute ([`crate::build`] resolves them): the tools run elsewhere.
pub fn build(dir: &Path, toolchains: &Path, options: &BuildOptions) -> Result<PathBuf, BuildError> {
    let (output, verbose, progress) = (options.output.as_deref(), options.verbose, &options.progress);
    let project = Project::read(dir)?;
    let main = dir.join(&project.main);
    if !main.is_file() {
        return Err(BuildError::Project {
            path: dir.join("package.json").display().to_string(),
            message: format!("`main` names {}, which does not exist", main.display()),
        });
    }
    let toolchain = install(toolchains, project.engine, progress)?;
    write_sdk(dir)?;
    let build_dir = prepare_build_dir(dir, &project)?;

    let bundle = build_dir.join("bundle.js");
    crate::toolchain::run(
        Command::new("node")
            .arg(toolchain.esbuild())
            .arg(build_dir.join("entry.js"))
            .args([
                "--bundle",
                "--format=esm",
                "--platform=neutral",
                "--main-fields=module,main",
                "--target=es2022",
                "--external:tollgate:*",
                "--external:wasi:*",
                "--log-level=warning",
            ])
            .arg(format!("--outfile={}", bundle.display()))
            .current_dir(dir),
        |log| BuildError::Build { what: format!("bundling {} (esbuild {ESBUILD})", project.main), log },
    )?;

    let output = match output {
        Some(path) => path.to_owned(),
        None => dir.join("target").join(format!("{}.wasm", project.name)),
    };
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    }
    let step = format!("building the component with the {} engine (snapshots the plugin)", toolchain.engine.name());
    progress.step(&step, || componentize(&toolchain, &build_dir, &bundle, &output, verbose))?;
    if !output.is_file() {
        return Err(BuildError::Build {
            what: "componentize".to_owned(),
            log: format!("the componentizer reported success but wrote no {}", output.display()),
        });
    }
    Ok(output)
}

/// Writes the SDK into `<dir>/.tollgate/sdk/`, replacing what is there.
pub fn write_sdk(dir: &Path) -> Result<PathBuf, BuildError> {
    let sdk = dir.join(".tollgate").join("sdk");
    std::fs::create_dir_all(&sdk).map_err(|e| BuildError::io(&sdk, e))?;
    for (name, text) in SDK_FILES {
        let path = sdk.join(name);
        std::fs::write(&path, text).map_err(|e| BuildError::io(&path, e))?;
    }
    Ok(sdk)
}

/// Recreates `<dir>/.tollgate/build/` with the WIT, the capabilities module and the entry.
fn prepare_build_dir(dir: &Path, project: &Project) -> Result<PathBuf, BuildError> {
    let build_dir = dir.join(".tollgate").join("build");
    if build_dir.exists() {
        std::fs::remove_dir_all(&build_dir).map_err(|e| BuildError::io(&build_dir, e))?;
    }
    let wit = build_dir.join("wit");
    let deps = wit.join("deps");
    let mut files = vec![
        (wit.join("plugin.wit"), crate::PLUGIN_WIT.to_owned()),
        (wit.join("world.wit"), project.world()),
        (build_dir.join("capabilities.js"), project.capabilities_module()),
        (build_dir.join("entry.js"), project.entry_module()),
    ];
    if project.has(Capability::Http) {
        files.extend(
            crate::wit::WASI_WIT.iter().map(|(name, text)| (deps.join(format!("{name}.wit")), (*text).to_owned())),
        );
    }
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| BuildError::io(&path, e))?;
    }
    Ok(build_dir)
}

fn componentize(
    toolchain: &Toolchain,
    build_dir: &Path,
    bundle: &Path,
    output: &Path,
    verbose: bool,
) -> Result<(), BuildError> {
    let wit = build_dir.join("wit");
    let mut cmd = Command::new("node");
    cmd.arg(toolchain.componentizer()).current_dir(build_dir);
    let what = match toolchain.engine {
        Engine::StarlingMonkey => {
            cmd.arg(bundle).arg("--wit").arg(&wit).args(["--world-name", WORLD, "--disable"]);
            cmd.args(STARLINGMONKEY_DISABLED).arg("--out").arg(output);
            format!("componentize-js {COMPONENTIZE_JS}")
        }
        Engine::QuickJs => {
            // `--sync`: the host does not enable the component-model async ABI. `--stub-wasi`:
            // the QuickJS runtime's own WASI imports (clocks, random, stdio, filesystem) become
            // traps inside the component instead of imports.
            cmd.arg("--wit").arg(&wit).args(["--world", WORLD, "--sync", "--stub-wasi", "--js"]).arg(bundle);
            cmd.arg("--output").arg(output);
            format!("componentize-qjs {COMPONENTIZE_QJS}")
        }
    };
    crate::toolchain::backtraces(&mut cmd, verbose);
    crate::toolchain::run(&mut cmd, |log| BuildError::Build { what, log })?;
    Ok(())
}
