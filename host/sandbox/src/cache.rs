//! The on-disk compilation cache. Compiling a component takes 60 ms (Rust) to 10 s (Python,
//! JavaScript); loading the precompiled artifact takes well under a millisecond to a few tens:
//! checking its seal hashes it, about 1 ms per MB (~35 ms for a 40 MB Python artifact), and
//! it is read into memory, then copied by wasmtime, so a load briefly holds it twice.
//!
//! Keyed by the component's sha256 and a hash of the engine's compatibility settings (fuel,
//! epochs, target, wasmtime version), so a changed setting never loads a stale artifact.
//! Deserialising is `unsafe` in wasmtime — an artifact is trusted native code, and nothing in
//! it says which component it came from — so an entry loads only if all of these hold:
//!
//! - the directory is owned by this process's user and writable by no one else (it is
//!   created `0700`); the entry is a regular file (not a symlink), owned by this user and
//!   writable by no one else;
//! - its seal verifies ([`crate::cache_key`]): an HMAC-SHA256, under a per-install key kept
//!   outside the cache directory, over the sha256 of the component being loaded, this
//!   engine's compatibility hash and the artifact. An artifact of another component planted
//!   under this one's name, by any user, does not verify.
//!
//! What the cache trusts: the key file, and whoever can read it (they can forge entries), so
//! it must be readable by the host's user only and live outside the cache directory; and the
//! host's own compiler. What it does not trust: the content of the cache directory. Anything
//! there that does not pass is not loaded: the component is compiled and the entry replaced
//! ([`CacheOutcome::Rejected`], and a warning). A missing or replaced key only turns entries
//! into misses; a key that is not private (or a symlink, or not a key) turns the cache off
//! ([`CacheOutcome::Disabled`], and a warning).
//!
//! The entry is read into memory once, checked, and deserialised from that copy, so it cannot
//! change between the check and the load. Writes go to a temporary file and are renamed into
//! place, so a crash never leaves a half-written entry under a real name.

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::cache_key::{self, CacheKey, HEADER_LEN};
use crate::engine::SandboxConfig;
use crate::error::LoadError;
use crate::isolate::{self, MAX_ARTIFACT};
use crate::precheck;

/// How a component was obtained, for reports and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// Loaded a precompiled artifact.
    Hit,
    /// Compiled, and wrote the artifact.
    Miss,
    /// The cache held an entry for this component that was not loaded (not sealed for it
    /// with this install's key, not private, or unusable); compiled, and replaced the entry.
    Rejected,
    /// Compiled; no cache directory configured (or it, or its key, is unusable).
    Disabled,
}

pub(crate) fn engine_key(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

fn artifact_path(dir: &Path, digest: &str, engine_key: u64) -> PathBuf {
    // `.tgc`: a sealed entry (`cache_key::MAGIC`), not a bare `.cwasm`.
    dir.join(format!("{digest}-{engine_key:016x}.tgc"))
}

#[cfg(unix)]
fn owned_and_private(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    meta.uid() == me && meta.mode() & 0o022 == 0
}

#[cfg(unix)]
fn trusted_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && owned_and_private(&m))
}

#[cfg(not(unix))]
fn trusted_dir(_path: &Path) -> bool {
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
    trusted_dir(dir)
}

/// A usable cache: its private directory and its key.
struct Cache<'a> {
    dir: &'a Path,
    key: CacheKey,
}

/// The configured cache, if its directory and key are usable; warns when one is not.
fn open(config: &SandboxConfig) -> Option<Cache<'_>> {
    let dir = config.cache_dir.as_deref()?;
    if !ensure_dir(dir) {
        tracing::warn!(dir = %dir.display(), "compilation cache directory is not private to this user; not using it");
        return None;
    }
    let key = cache_key::key_path(dir, config.cache_key.as_deref())
        .and_then(|path| CacheKey::load_or_create(&path))
        .map_err(|e| tracing::warn!(error = %e, "compilation cache key is unusable; not using the cache"))
        .ok()?;
    Some(Cache { dir, key })
}

/// What the cache holds for one component.
enum Entry {
    Absent,
    /// The entry's bytes (header and artifact), owned by this user and private.
    Present(Vec<u8>),
    /// There is an entry, but it is not ours to load; why.
    Refused(String),
}

#[cfg(unix)]
fn read_entry(path: &Path) -> Entry {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Entry::Absent,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Entry::Refused("a symlink".into()),
        Err(e) => return Entry::Refused(format!("cannot open it: {e}")),
    };
    // Checked on the open file, so the file checked is the file read.
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return Entry::Refused(format!("cannot stat it: {e}")),
    };
    if !meta.is_file() || !owned_and_private(&meta) {
        return Entry::Refused("not a regular file owned by this user and writable only by it".into());
    }
    let cap = MAX_ARTIFACT + HEADER_LEN as u64;
    if meta.len() > cap {
        return Entry::Refused(format!("larger than {cap} bytes"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    match file.take(cap + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() as u64 <= cap => Entry::Present(bytes),
        Ok(_) => Entry::Refused(format!("larger than {cap} bytes")),
        Err(e) => Entry::Refused(format!("cannot read it: {e}")),
    }
}

#[cfg(not(unix))]
fn read_entry(_path: &Path) -> Entry {
    Entry::Absent
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
/// `digest` must be the sha256 of `bytes`: it is what an entry's seal binds the artifact to.
/// Only compiled artifacts are cached, so everything in the cache passed the check once.
pub(crate) fn load_or_compile(
    engine: &Engine,
    config: &SandboxConfig,
    bytes: &[u8],
    digest: &str,
) -> Result<(Component, CacheOutcome), LoadError> {
    let Some(cache) = open(config) else {
        return Ok((compile(engine, bytes, config)?.0, CacheOutcome::Disabled));
    };
    let engine_key = engine_key(engine);
    let path = artifact_path(cache.dir, digest, engine_key);
    let refused = |why: &str| {
        tracing::warn!(path = %path.display(), reason = why, "not loading a cached artifact; recompiling");
        CacheOutcome::Rejected
    };
    let outcome = match read_entry(&path) {
        Entry::Absent => CacheOutcome::Miss,
        Entry::Refused(why) => refused(&why),
        Entry::Present(entry) => match cache.key.open(digest, engine_key, &entry) {
            None => refused("its seal does not verify for this component and key"),
            // SAFETY: the artifact is sealed with this install's key for this component's
            // digest and this engine's compatibility hash, so this host compiled it from
            // these bytes; it is deserialised from the copy that was checked, and wasmtime
            // re-checks its header.
            Some(artifact) => match unsafe { Component::deserialize(engine, artifact) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => refused(&format!("it does not load: {e:#}")),
            },
        },
    };
    let (component, artifact) = compile(engine, bytes, config)?;
    let artifact = match artifact {
        Some(a) => a,
        None => component.serialize().map_err(|e| LoadError::InvalidComponent(format!("{e:#}")))?,
    };
    if artifact.len() as u64 > MAX_ARTIFACT {
        tracing::warn!(bytes = artifact.len(), "compiled artifact too large to cache");
    } else if let Err(e) = store(&path, &cache.key.seal(digest, engine_key, &artifact), &artifact) {
        tracing::warn!(path = %path.display(), error = %e, "could not write compilation cache");
    }
    Ok((component, outcome))
}

/// Writes `header ‖ artifact` to `path` through a private temporary file renamed into place
/// (which also replaces a symlink or a refused entry there, never what it points to).
fn store(path: &Path, header: &[u8], artifact: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(header)?;
        f.write_all(artifact)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
