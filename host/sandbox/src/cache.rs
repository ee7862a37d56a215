//! The on-disk compilation cache. Compiling a component takes 60 ms (Rust) to 10 s (Python,
//! JavaScript); loading the precompiled artifact takes well under a millisecond to a few.
//!
//! Keyed by the component's sha256 and a hash of the engine's compatibility settings (fuel,
//! epochs, target, wasmtime version), so a changed setting never loads a stale artifact.
//! Deserialising is `unsafe` in wasmtime — an artifact is trusted native code — so the cache
//! only loads artifacts the host itself wrote: the directory is created `0700`, and both the
//! directory and the artifact must be owned by this process's user and writable by no one
//! else. Anything else is ignored and recompiled. Writes go to a temporary file and are
//! renamed into place, so a crash never leaves a half-written artifact under a real name.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::engine::SandboxConfig;
use crate::error::LoadError;
use crate::isolate;
use crate::precheck;

/// How a component was obtained, for reports and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// Loaded a precompiled artifact.
    Hit,
    /// Compiled, and wrote the artifact.
    Miss,
    /// Compiled; no cache directory configured (or it is unusable).
    Disabled,
}

pub(crate) fn engine_key(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

fn artifact_path(dir: &Path, digest: &str, engine: &Engine) -> PathBuf {
    dir.join(format!("{digest}-{:016x}.cwasm", engine_key(engine)))
}

#[cfg(unix)]
fn trusted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    match std::fs::symlink_metadata(path) {
        Ok(m) => m.uid() == me && m.mode() & 0o022 == 0 && !m.file_type().is_symlink(),
        Err(_) => false,
    }
}

#[cfg(not(unix))]
fn trusted(_path: &Path) -> bool {
    false
}

fn ensure_dir(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() && std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).is_err() {
            return false;
        }
    }
    trusted(dir)
}

/// Checks the component's shape ([`crate::precheck`]), then compiles it, in a child process
/// when the sandbox is configured so ([`crate::isolate`]). Returns the artifact when the child
/// made one.
fn compile(engine: &Engine, bytes: &[u8], config: &SandboxConfig) -> Result<(Component, Option<Vec<u8>>), LoadError> {
    precheck::check(bytes, &config.compile)?;
    if let Some(isolation) = &config.compile_isolation {
        let (component, artifact) = isolate::compile(engine, bytes, isolation, config.max_wasm_stack)?;
        return Ok((component, Some(artifact)));
    }
    let component = Component::new(engine, bytes).map_err(|e| LoadError::InvalidComponent(format!("{e:#}")))?;
    Ok((component, None))
}

/// Loads the component from the cache, or checks and compiles it (and stores the artifact).
/// Only compiled artifacts are cached, so everything in the cache passed the check once.
pub(crate) fn load_or_compile(
    engine: &Engine,
    config: &SandboxConfig,
    bytes: &[u8],
    digest: &str,
) -> Result<(Component, CacheOutcome), LoadError> {
    let cache_dir = config.cache_dir.as_deref();
    let Some(dir) = cache_dir.filter(|d| ensure_dir(d)) else {
        if let Some(d) = cache_dir {
            tracing::warn!(dir = %d.display(), "compilation cache directory is not private to this user; not using it");
        }
        return Ok((compile(engine, bytes, config)?.0, CacheOutcome::Disabled));
    };
    let path = artifact_path(dir, digest, engine);
    if trusted(&path) {
        // SAFETY: the artifact was written by this host (same user, private directory, atomic
        // rename) for this exact engine configuration; wasmtime re-checks the header.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok((c, CacheOutcome::Hit)),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached artifact"),
        }
    }
    let (component, artifact) = compile(engine, bytes, config)?;
    let artifact = match artifact {
        Some(a) => a,
        None => component.serialize().map_err(|e| LoadError::InvalidComponent(format!("{e:#}")))?,
    };
    if let Err(e) = store(&path, &artifact) {
        tracing::warn!(path = %path.display(), error = %e, "could not write compilation cache");
    }
    Ok((component, CacheOutcome::Miss))
}

fn store(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(artifact)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
