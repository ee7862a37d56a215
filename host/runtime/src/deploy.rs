//! Deployed workflows: a workflow file and every file it names (plugin components, replay
//! scripts) snapshotted into the data dir, checked as a run would load them, and recorded as an
//! immutable, signed version in the store ([`deploy`]); runs started from it load the snapshot
//! and nothing else ([`open_deployment`]), so editing or redeploying the original files never
//! changes a run already going.
//!
//! A snapshot lives at `<data>/deployments/<name>/<version>-<hash>/` where `hash` covers every
//! file's content. Inside it the workflow sits under `tree/` as deep as its paths climb (`..`),
//! so each name it gives still resolves, relative to it, to its own copy: the file's bytes, and
//! so its sha256, are the ones that were deployed. Only relative names can be snapshotted, so a
//! deployed workflow may not name a file by an absolute path.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tollgate_models::ModelSpec;
use tollgate_sandbox::Sandbox;
use tollgate_store::audit::{AuditEntry, WorkflowDeployed, WorkflowSwitched};
use tollgate_store::{Deployed, DeploymentRecord, Store, StoreError};
use tollgate_workflow::{Diagnostics, LoadedWorkflow};

use crate::error::RuntimeError;
use crate::ids::now_ms;
use crate::options::RunOptions;
use crate::runtime::Runtime;

/// Largest file a deployed workflow may name (a component, a replay script).
const MAX_NAMED_FILE: u64 = 256 << 20;

/// Why a deploy did not happen. Nothing is recorded then, and no snapshot is left behind.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The workflow file is invalid: every finding, with file:line:col.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The workflow loads, but not as a run would run it (a plugin, a grant, a model spec).
    #[error("{0}")]
    Load(RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to deploy and where.
#[derive(Debug, Clone, Copy)]
pub struct DeployRequest<'a> {
    /// The workflow file.
    pub file: &'a Path,
    /// The data dir: the snapshot goes under `deployments/`.
    pub data_dir: &'a Path,
    /// Who deploys (a token's name, or `local:<user>`).
    pub by: &'a str,
    /// When set, the workflow and every file it names must be inside this folder (the server's
    /// `workflows_dir`: an API caller cannot make the server read anything else).
    pub confine_to: Option<&'a Path>,
}

/// Validates `request.file`, snapshots it with the files it names, loads the snapshot as a run
/// would, and records the version. Deploying the same content again returns the existing record.
pub async fn deploy(
    store: Arc<dyn Store>,
    sandbox: &Sandbox,
    request: DeployRequest<'_>,
) -> Result<Deployed, DeployError> {
    let root = request.confine_to.map(|r| r.canonicalize().map_err(|e| io(r, e))).transpose()?;
    // Read once, through one descriptor checked to be a regular file inside the root: what is
    // validated, hashed and snapshotted are the same bytes.
    let source = read_confined(request.file, root.as_deref(), tollgate_workflow::MAX_FILE_BYTES as u64)?;
    let source =
        String::from_utf8(source).map_err(|_| DeployError::Io(format!("{} is not UTF-8", request.file.display())))?;
    let path = std::path::absolute(request.file).map_err(|e| io(request.file, e))?;
    let workflow = tollgate_workflow::parse(&source, &path).map_err(DeployError::Invalid)?;
    let named = named_files(&workflow, root.as_deref())?;
    // Recorded paths are absolute: a server started from another directory finds them.
    let data_dir = std::path::absolute(request.data_dir).map_err(|e| io(request.data_dir, e))?;
    let snapshot = write_snapshot(&workflow, &named, &data_dir, root.as_deref())?;
    let result = record(store, sandbox, &workflow, &snapshot, request.by).await;
    if result.is_err() && snapshot.created {
        // Nothing refers to a snapshot whose version was not recorded.
        let _ = std::fs::remove_dir_all(&snapshot.dir);
    }
    result
}

async fn record(
    store: Arc<dyn Store>,
    sandbox: &Sandbox,
    original: &LoadedWorkflow,
    snapshot: &Snapshot,
    by: &str,
) -> Result<Deployed, DeployError> {
    let loaded = tollgate_workflow::load(&snapshot.workflow).map_err(DeployError::Invalid)?;
    if loaded.digest != original.digest {
        return Err(DeployError::Io(format!("{} changed while it was being deployed", original.path.display())));
    }
    let runtime =
        Runtime::open(store.clone(), sandbox, loaded, RunOptions::default()).await.map_err(DeployError::Load)?;
    let plugins: BTreeMap<String, String> = plugin_digests(&runtime);
    let wf = &original.definition;
    let now = now_ms();
    let deployment = DeploymentRecord {
        name: wf.name.clone(),
        version: wf.version.to_string(),
        digest: original.digest.clone(),
        plugins: plugins.clone(),
        path: snapshot.workflow.display().to_string(),
        deployed_at: now,
        deployed_by: by.to_string(),
        enabled: true,
        switched_at: now,
        signature: String::new(),
    };
    let event = WorkflowDeployed {
        workflow: deployment.name.clone(),
        version: deployment.version.clone(),
        workflow_sha256: deployment.digest.clone(),
        plugins,
        by: by.to_string(),
    };
    let audit = [AuditEntry { ts: now, run_id: None, event: event.into() }];
    Ok(store.deploy_workflow(&deployment, &audit).await?)
}

fn plugin_digests(runtime: &Runtime) -> BTreeMap<String, String> {
    let workflow = runtime.workflow();
    workflow
        .definition
        .plugins
        .keys()
        .filter_map(|p| Some((p.clone(), runtime.catalogue().plugin(p)?.digest().to_string())))
        .collect()
}

/// The runtime for runs of `deployment`: its snapshot, checked to hold what was deployed (the
/// workflow's sha256 and every plugin's) before anything starts.
pub async fn open_deployment(
    store: Arc<dyn Store>,
    sandbox: &Sandbox,
    deployment: &DeploymentRecord,
    options: RunOptions,
) -> Result<Runtime, RuntimeError> {
    let loaded = tollgate_workflow::load(Path::new(&deployment.path))
        .map_err(|d| RuntimeError::Workflow(format!("the deployed snapshot does not load: {d}")))?;
    if loaded.digest != deployment.digest {
        return Err(RuntimeError::Workflow(format!(
            "the snapshot of {} {} at {} was changed after it was deployed (sha256 was {}, now {})",
            deployment.name, deployment.version, deployment.path, deployment.digest, loaded.digest
        )));
    }
    let runtime = Runtime::open(store, sandbox, loaded, options).await?;
    let now = plugin_digests(&runtime);
    if now != deployment.plugins {
        return Err(RuntimeError::Workflow(format!(
            "a plugin of the snapshot of {} {} was changed after it was deployed",
            deployment.name, deployment.version
        )));
    }
    Ok(runtime)
}

/// Whether workflow `name` is switched on: its newest signed `workflow.switched` record says
/// so, or it has none. The chain is the authority, not a row: a row restored from an older
/// copy of the database cannot switch a workflow back on.
pub async fn switched_on(store: &dyn Store, name: &str) -> Result<bool, StoreError> {
    let newest = store.vouched_workflow_switch(name).await?;
    Ok(match newest.map(|r| r.event()) {
        None => true,
        Some(Ok(tollgate_store::AuditEvent::WorkflowSwitched(s))) => s.enabled,
        // A record of that kind this build cannot read: fail closed.
        Some(_) => false,
    })
}

/// Whether runs of `deployment` may start and go on: its row says enabled and so does the
/// chain ([`switched_on`]).
pub async fn deployment_enabled(store: &dyn Store, deployment: &DeploymentRecord) -> Result<bool, StoreError> {
    Ok(deployment.enabled && switched_on(store, &deployment.name).await?)
}

/// Moves the kill switch of every version of `name`, audited with who did it. `false` when
/// nothing changed (no such workflow, or it was already so).
pub async fn switch(store: &dyn Store, name: &str, enabled: bool, by: &str) -> Result<bool, StoreError> {
    let now = now_ms();
    let event = WorkflowSwitched { workflow: name.to_string(), enabled, by: by.to_string() };
    store.switch_workflow(name, enabled, now, &[AuditEntry { ts: now, run_id: None, event: event.into() }]).await
}

/// One file a workflow names: where it is written, where it is read from, and where its
/// name is in the workflow (for a diagnostic).
struct NamedFile {
    written: PathBuf,
    read_from: PathBuf,
    key: Vec<String>,
}

/// The files `workflow` names relative to itself: plugin sources and `scripted:` models; with
/// `confine_to` (canonical), each must resolve inside it (checked again when it is read).
fn named_files(workflow: &LoadedWorkflow, confine_to: Option<&Path>) -> Result<Vec<NamedFile>, DeployError> {
    let dir = workflow.path.parent().unwrap_or(Path::new("/"));
    let mut named = Vec::new();
    for (plugin, config) in &workflow.definition.plugins {
        named.push(NamedFile {
            written: config.source.clone(),
            read_from: dir.join(&config.source),
            key: vec!["plugins".into(), plugin.clone(), "source".into()],
        });
    }
    for (agent, config) in &workflow.definition.agents {
        if let Some(Ok(ModelSpec::Scripted { path })) = config.model.as_deref().map(str::parse::<ModelSpec>) {
            named.push(NamedFile {
                read_from: dir.join(&path),
                written: path,
                key: vec!["agents".into(), agent.clone(), "model".into()],
            });
        }
    }
    let mut found = Vec::new();
    let at = |f: &NamedFile, message: String, help: &str| {
        let key: Vec<&str> = f.key.iter().map(String::as_str).collect();
        workflow.diagnostic_at(&key, message, Some(help.to_string()))
    };
    // Secrets are never copied into a snapshot: a credential read from a file names it
    // absolutely, so the snapshot's runs read the same file.
    for (plugin, config) in &workflow.definition.plugins {
        for (credential, spec) in &config.grants.credentials {
            if let Ok(tollgate_contract::SecretSource::File(p)) = tollgate_contract::SecretSource::parse(spec)
                && !p.is_absolute()
            {
                found.push(workflow.diagnostic_at(
                    &["plugins", plugin, "grants", "credentials", credential],
                    format!("a deployed workflow reads credential `{credential}` from `{}`: give its absolute path", p.display()),
                    Some("secrets are not copied into the deployment; `env:VAR` or `file:/absolute/path` reach the same one".into()),
                ));
            }
        }
    }
    for f in &named {
        if f.written.is_absolute() {
            found.push(at(
                f,
                format!("a deployed workflow names its files relative to itself, not `{}`", f.written.display()),
                "give the path relative to the workflow file; deploying copies the file beside the snapshot",
            ));
        }
    }
    if let Some(root) = confine_to {
        for f in &named {
            let inside = f.read_from.canonicalize().is_ok_and(|p| p.starts_with(root));
            if !inside {
                let message = format!("{} is not inside the server's workflows_dir", f.written.display());
                found.push(at(f, message, "keep deployed workflows and their files in workflows_dir"));
            }
        }
    }
    if !found.is_empty() {
        return Err(DeployError::Invalid(Diagnostics(found)));
    }
    Ok(named)
}

/// A snapshot on disk: its folder, its workflow file, and whether this deploy wrote it.
struct Snapshot {
    dir: PathBuf,
    workflow: PathBuf,
    created: bool,
}

/// `path` with `.` dropped and each `..` taking back a name before it; the `..` left at the
/// front are counted and returned apart.
fn lexical(path: &Path) -> (usize, PathBuf) {
    let mut up = 0;
    let mut kept: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if kept.pop().is_none() {
                    up += 1;
                }
            }
            Component::Normal(name) => kept.push(name),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    (up, kept.iter().collect())
}

fn io(path: &Path, e: std::io::Error) -> DeployError {
    DeployError::Io(format!("{}: {e}", path.display()))
}

/// Reads `path` through one descriptor: it must be a regular file (not a FIFO or a device,
/// which could block or never end), at most `limit` bytes, and — with `root` (canonical) —
/// really inside `root`, whatever symlinks were swapped since it was checked.
fn read_confined(path: &Path, root: Option<&Path>, limit: u64) -> Result<Vec<u8>, DeployError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(|e| io(path, e))?;
    let meta = file.metadata().map_err(|e| io(path, e))?;
    if !meta.is_file() {
        return Err(DeployError::Io(format!("{} is not a regular file", path.display())));
    }
    if let Some(root) = root {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let opened = std::fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|e| io(path, e))?;
        if !opened.starts_with(root) {
            return Err(DeployError::Io(format!("{} is not inside the server's workflows_dir", path.display())));
        }
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(DeployError::Io(format!("{} is over {limit} bytes", path.display())));
    }
    Ok(bytes)
}

fn write_snapshot(
    workflow: &LoadedWorkflow,
    named: &[NamedFile],
    data_dir: &Path,
    root: Option<&Path>,
) -> Result<Snapshot, DeployError> {
    let mut files: Vec<(usize, PathBuf, Vec<u8>)> = Vec::new();
    let mut hash = Sha256::new();
    hash.update(workflow.digest.as_bytes());
    for f in named {
        let bytes = match read_confined(&f.read_from, root, MAX_NAMED_FILE) {
            Ok(bytes) => bytes,
            Err(DeployError::Io(message)) => {
                let key: Vec<&str> = f.key.iter().map(String::as_str).collect();
                return Err(DeployError::Invalid(Diagnostics(vec![workflow.diagnostic_at(&key, message, None)])));
            }
            Err(e) => return Err(e),
        };
        let (up, rest) = lexical(&f.written);
        hash.update(format!("\n{}\n{}\n", f.written.display(), tollgate_sandbox::sha256_hex(&bytes)).as_bytes());
        files.push((up, rest, bytes));
    }
    let depth = files.iter().map(|(up, _, _)| *up).max().unwrap_or(0);
    let wf = &workflow.definition;
    let folder = format!("{}-{}", wf.version, &hex::encode(hash.finalize())[..16]);
    let parent = data_dir.join("deployments").join(&wf.name);
    let dir = parent.join(&folder);
    let inner = |root: &Path| {
        let mut w = root.join("tree");
        for level in 0..depth {
            w.push(format!("d{level}"));
        }
        w
    };
    let workflow_at = |root: &Path| inner(root).join("workflow.toml");
    let place = |root: &Path, up: usize, rest: &Path| {
        let mut target = inner(root);
        for _ in 0..up {
            target.pop();
        }
        target.join(rest)
    };
    if dir.is_dir() {
        // The same content was snapshotted before (the folder's name is its hash) — unless
        // someone wrote into it since: every file must hold exactly what was read now.
        let same = |target: &Path, bytes: &[u8]| std::fs::read(target).is_ok_and(|b| b == bytes);
        let intact = same(&workflow_at(&dir), workflow.source.as_bytes())
            && files.iter().all(|(up, rest, bytes)| same(&place(&dir, *up, rest), bytes));
        if !intact {
            return Err(DeployError::Io(format!(
                "the snapshot folder {} does not hold what its name says; remove it and deploy again",
                dir.display()
            )));
        }
        return Ok(Snapshot { workflow: workflow_at(&dir), dir, created: false });
    }
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    let staging = parent.join(format!(".staging-{folder}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let written = (|| -> Result<(), DeployError> {
        let at = inner(&staging);
        std::fs::create_dir_all(&at).map_err(|e| io(&at, e))?;
        write_synced(&at.join("workflow.toml"), workflow.source.as_bytes())?;
        for (up, rest, bytes) in &files {
            let target = place(&staging, *up, rest);
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(|e| io(p, e))?;
            }
            write_synced(&target, bytes)?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    // A folder appears whole or not at all; a concurrent deploy of the same content may have
    // put the same folder there first, which is as good.
    match std::fs::rename(&staging, &dir) {
        Ok(()) => {
            let _ = std::fs::File::open(&parent).and_then(|d| d.sync_all());
            Ok(Snapshot { workflow: workflow_at(&dir), dir, created: true })
        }
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(Snapshot { workflow: workflow_at(&dir), dir, created: false })
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(io(&dir, e))
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), DeployError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| io(path, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::lexical;

    #[test]
    fn lexical_paths_count_the_climb() {
        assert_eq!(lexical(Path::new("../../target/plugins/a.wasm")), (2, PathBuf::from("target/plugins/a.wasm")));
        assert_eq!(lexical(Path::new("./turns.toml")), (0, PathBuf::from("turns.toml")));
        assert_eq!(lexical(Path::new("a/../../b/./c")), (1, PathBuf::from("b/c")));
        assert_eq!(lexical(Path::new("a/b/..")), (0, PathBuf::from("a")));
    }
}
