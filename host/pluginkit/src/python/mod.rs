//! Python plugin projects: the pinned componentize-py toolchain, builds to a component, and
//! the `tollgate new plugin NAME --lang python` template.
//!
//! ```text
//! build(dir)
//!   ├─ pyproject.toml → Project (module, capabilities)                 project.rs
//!   ├─ .tollgate/build/project/         the module and what it imports    bundle.rs
//!   ├─ toolchains/python-componentize-py-<pin>/  pip install --target (once; relocatable)
//!   ├─ .tollgate/sdk/tollgate/*.py      the SDK compiled into this crate (tests import it too)
//!   ├─ .tollgate/build/wit/             world.wit (declared capabilities only) + deps/
//!   ├─ .tollgate/build/entry/_tollgate_entry.py   `Tool, Requests = export(<module>)`
//!   └─ python3 -c <launcher> … componentize  → target/<name>.wasm
//! ```
//!
//! Why a generated world: componentize-py imports everything its target world imports, and
//! the host reads imports as capabilities. A project without `http` is built with
//! `--stub-wasi`, which also drops the WASI imports (clocks, random, filesystem, stdio) a pure
//! tool does not need; with `http` the component keeps them (the host links them empty).

mod bundle;
mod project;
mod template;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use project::{Capability, Project};
pub use template::template;

use tollgate_contract::capability::HTTP_TYPES;

use crate::error::BuildError;
use crate::{BuildOptions, Progress, toolchain};

/// The componentize-py release every Python build uses (PyPI; embeds CPython 3.14).
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The SDK (`plugins/sdk-python/tollgate`), as the kit writes it next to every build.
pub(crate) const SDK_FILES: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../../../../plugins/sdk-python/tollgate/__init__.py")),
    ("_guest.py", include_str!("../../../../plugins/sdk-python/tollgate/_guest.py")),
    ("_host.py", include_str!("../../../../plugins/sdk-python/tollgate/_host.py")),
    ("_wasi_http.py", include_str!("../../../../plugins/sdk-python/tollgate/_wasi_http.py")),
    ("context.py", include_str!("../../../../plugins/sdk-python/tollgate/context.py")),
    ("errors.py", include_str!("../../../../plugins/sdk-python/tollgate/errors.py")),
    ("http.py", include_str!("../../../../plugins/sdk-python/tollgate/http.py")),
    ("kv.py", include_str!("../../../../plugins/sdk-python/tollgate/kv.py")),
    ("log.py", include_str!("../../../../plugins/sdk-python/tollgate/log.py")),
    ("plugin.py", include_str!("../../../../plugins/sdk-python/tollgate/plugin.py")),
    ("schema.py", include_str!("../../../../plugins/sdk-python/tollgate/schema.py")),
    ("secrets.py", include_str!("../../../../plugins/sdk-python/tollgate/secrets.py")),
];

/// The generated module componentize-py builds: it imports the app module and exports its
/// plugin. Its name cannot clash with the world module (`wit_world`) or the SDK.
const ENTRY_MODULE: &str = "_tollgate_entry";

/// Runs componentize-py's CLI from the toolchain directory given as the first argument; the
/// second is `verbose`. `python3 -I` ignores PYTHONPATH, user site-packages and PYTHON*
/// variables, so only the pinned install is used; the `componentize-py` console script is not
/// relocatable. componentize-py reports a failed build as an AssertionError raised from
/// `script()`: unless verbose, only its message is printed, not the launcher's own traceback.
const LAUNCHER: &str = "import sys\nsys.path.insert(0, sys.argv.pop(1)); verbose = sys.argv.pop(1) == '1'\n\
                        from componentize_py import script\nsys.argv[0] = 'componentize-py'\n\
                        try:\n    sys.exit(script())\n\
                        except AssertionError as e:\n    if verbose: raise\n    sys.exit(str(e))\n";

/// The toolchain directory for the pinned componentize-py.
pub fn toolchain_dir(toolchains: &Path) -> PathBuf {
    toolchains.join(format!("python-componentize-py-{COMPONENTIZE_PY}"))
}

/// Installs componentize-py from PyPI into the toolchain directory unless it is there.
/// Only binary wheels: a source build would need a Rust toolchain.
pub fn install_toolchain(toolchains: &Path, progress: &Progress) -> Result<PathBuf, BuildError> {
    let dir = toolchain_dir(toolchains);
    let step = format!("installing componentize-py {COMPONENTIZE_PY} from PyPI into {} (once)", dir.display());
    toolchain::ensure_installed(&dir, |staging| {
        progress.step(&step, || {
            let what = format!("componentize-py {COMPONENTIZE_PY}");
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--only-binary=:all:"])
                .arg("--target")
                .arg(staging)
                .arg(format!("componentize-py=={COMPONENTIZE_PY}"))
                .env_remove("PIP_TARGET")
                .env_remove("PIP_PREFIX");
            toolchain::run(&mut cmd, |log| BuildError::Install { what, log }).map(drop)
        })
    })
}

/// Writes the SDK into `<dir>/.tollgate/sdk/tollgate/`, replacing an older copy, so the
/// project's unit tests import the SDK the build uses.
pub fn write_sdk(dir: &Path) -> Result<PathBuf, BuildError> {
    let root = dir.join(".tollgate").join("sdk");
    let package = root.join("tollgate");
    if package.exists() {
        std::fs::remove_dir_all(&package).map_err(|e| BuildError::io(&package, e))?;
    }
    for (name, text) in SDK_FILES {
        write(&package.join(name), text)?;
    }
    Ok(root)
}

/// Builds the project in `dir` into a component at `output` (default
/// `<dir>/target/<project name>.wasm`).
/// `dir` and `output` are absolute ([`crate::build`] resolves them): the tools run elsewhere.
pub fn build(dir: &Path, toolchains: &Path, options: &BuildOptions) -> Result<PathBuf, BuildError> {
    let (output, verbose) = (options.output.as_deref(), options.verbose);
    let project = Project::read(dir)?;
    let toolchain = install_toolchain(toolchains, &options.progress)?;
    let sdk = write_sdk(dir)?;
    let work = dir.join(".tollgate").join("build");
    // Recreated every build: what componentize-py sees of it (listings, bytecode it wrote last
    // time) would otherwise end up in the component.
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| BuildError::io(&work, e))?;
    }
    let staged = work.join("project");
    bundle::stage(dir, &project.module, &staged)?;
    let wit = write_world(&work, &project)?;
    write(
        &work.join("entry").join(format!("{ENTRY_MODULE}.py")),
        &format!(
            "# Generated by tollgate-pluginkit: exports the plugin that module `{module}` defines.\n\
             import {module}\nfrom tollgate._guest import export\n\nTool, Requests = export({module})\n",
            module = project.module
        ),
    )?;
    let output =
        output.map(Path::to_path_buf).unwrap_or_else(|| dir.join("target").join(format!("{}.wasm", project.name)));
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    }
    let package = project::package_of(crate::PLUGIN_WIT).unwrap_or("tollgate:plugin@0.1.1");
    let (namespace, version) = package.split_once('@').unwrap_or((package, ""));
    let mut cmd = Command::new("python3");
    cmd.current_dir(&work)
        .env_remove("VIRTUAL_ENV")
        .args(["-I", "-c", LAUNCHER])
        .arg(&toolchain)
        .arg(if verbose { "1" } else { "0" })
        .arg("--quiet")
        .arg("-d")
        .arg(&wit)
        .args(["-w", "plugin"])
        // Fixed module names whatever the world holds: `wit_world.imports.types` is always
        // the contract's types, `http_types` wasi:http's (the two would otherwise clash).
        .arg("--import-interface-name")
        .arg(format!("{namespace}/types@{version}=types"));
    if project.uses(Capability::Http) {
        cmd.arg("--import-interface-name").arg(format!("{HTTP_TYPES}@{}=http_types", project::WASI_VERSION));
    }
    cmd.arg("componentize").arg("-p").arg(&staged).arg("-p").arg(&sdk).arg("-p").arg(work.join("entry"));
    if !project.uses(Capability::Http) {
        cmd.arg("--stub-wasi");
    }
    cmd.arg(ENTRY_MODULE).arg("-o").arg(&output);
    toolchain::backtraces(&mut cmd, verbose);
    let what = format!("componentize-py {COMPONENTIZE_PY}");
    options.progress.step(&format!("building the component with {what} (imports and snapshots the plugin)"), || {
        toolchain::run(&mut cmd, |log| BuildError::Build { what: what.clone(), log })
    })?;
    Ok(output)
}

/// Writes `<work>/wit/`: the generated world and its dependencies. Returns the directory.
fn write_world(work: &Path, project: &Project) -> Result<PathBuf, BuildError> {
    let wit = work.join("wit");
    if wit.exists() {
        std::fs::remove_dir_all(&wit).map_err(|e| BuildError::io(&wit, e))?;
    }
    let package = project::package_of(crate::PLUGIN_WIT).unwrap_or("tollgate:plugin@0.1.1");
    write(&wit.join("world.wit"), &project.world(package))?;
    write(&wit.join("deps").join("tollgate-plugin").join("plugin.wit"), crate::PLUGIN_WIT)?;
    if project.uses(Capability::Http) {
        for (name, text) in crate::wit::WASI_WIT {
            write(&wit.join("deps").join(name).join(format!("{name}.wit")), text)?;
        }
    }
    Ok(wit)
}

fn write(path: &Path, text: &str) -> Result<(), BuildError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| BuildError::io(path, e))
}
