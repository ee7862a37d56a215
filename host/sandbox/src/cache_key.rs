//! The compilation cache's key and the seal that binds each artifact to its source.
//!
//! A precompiled artifact is native code, and nothing in it says which component it was
//! compiled from: a valid artifact of component B copied over A's entry would load as A. So
//! every entry carries an HMAC-SHA256, under a per-install key, over
//!
//! ```text
//! "tollgate-cache-v1" ‖ len(digest) ‖ digest ‖ engine key ‖ len(artifact) ‖ artifact
//! ```
//!
//! (lengths and the engine key as 8-byte little-endian integers, `digest` the component's
//! sha256 in hex). An entry is `MAGIC ‖ mac ‖ artifact`; it is loaded only if the MAC verifies
//! for the digest of the component being loaded and this engine's compatibility hash.
//!
//! The key is 32 random bytes, hex, in a file of its own (mode 0600, owned by this user, never
//! a symlink) kept **outside** the cache directory: by default `<cache dir>.key`, beside it
//! ([`key_path`]). Someone who can write into the cache directory but cannot read the key
//! cannot make an entry load. Someone who can read the key can forge entries: keep it where
//! only the host's user can read it. A missing key is created (atomically, so two processes
//! agree on one); a key that is not private, not owned, a symlink or not a key is refused and
//! the cache is not used. A new key only makes every existing entry a miss.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

/// The first bytes of every cache entry (format version 1).
pub(crate) const MAGIC: &[u8; 8] = b"TGCACHE1";
/// Length of the MAC that follows [`MAGIC`].
pub(crate) const MAC_LEN: usize = 32;
/// Where the artifact starts in an entry.
pub(crate) const HEADER_LEN: usize = MAGIC.len() + MAC_LEN;
/// Domain separation: these MACs mean nothing anywhere else.
const DOMAIN: &[u8] = b"tollgate-cache-v1";

/// Why the cache's key cannot be used (the cache is then not used either).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheKeyError {
    #[error("the cache key {0} is a symlink; refusing to use it")]
    Symlink(PathBuf),
    #[error("the cache key {path} is accessible by group or others (mode {mode:o}); run chmod 600 on it")]
    NotPrivate { path: PathBuf, mode: u32 },
    #[error("the cache key {0} is not owned by this user")]
    NotOwned(PathBuf),
    #[error("the cache key {0} is not a regular file")]
    NotAFile(PathBuf),
    #[error("the cache key {0} does not hold 32 hex-encoded bytes")]
    Malformed(PathBuf),
    #[error("the cache key {key} is inside the cache directory {dir}; keep it outside")]
    InsideCache { key: PathBuf, dir: PathBuf },
    #[error("no place for the cache key beside the cache directory {0}; configure cache_key")]
    NoDefault(PathBuf),
    #[error("cannot {op} the cache key {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CacheKeyError + 'a {
    move |source| CacheKeyError::Io { op, path: path.to_path_buf(), source }
}

/// The per-install key. Its bytes are never printed.
#[derive(Clone)]
pub(crate) struct CacheKey([u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

/// Where the key for the cache in `dir` lives: `configured` if given, else `<dir>.key` beside
/// the directory. Refused if it would be inside the directory (compared lexically, after
/// making both absolute and resolving `.` and `..`; symlinks are not followed).
pub(crate) fn key_path(dir: &Path, configured: Option<&Path>) -> Result<PathBuf, CacheKeyError> {
    let dir_abs = lexical(dir)?;
    let key = match configured {
        Some(path) => lexical(path)?,
        None => {
            let (Some(parent), Some(name)) = (dir_abs.parent(), dir_abs.file_name()) else {
                return Err(CacheKeyError::NoDefault(dir.to_path_buf()));
            };
            let mut file = name.to_os_string();
            file.push(".key");
            parent.join(file)
        }
    };
    if key.starts_with(&dir_abs) {
        return Err(CacheKeyError::InsideCache { key, dir: dir.to_path_buf() });
    }
    Ok(key)
}

/// `path` made absolute, with `.` and `..` resolved by name.
fn lexical(path: &Path) -> Result<PathBuf, CacheKeyError> {
    use std::path::Component;
    let absolute = std::path::absolute(path).map_err(io_error("resolve", path))?;
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

impl CacheKey {
    /// Loads the key at `path`, creating a random one there (mode 0600) if there is none.
    pub(crate) fn load_or_create(path: &Path) -> Result<CacheKey, CacheKeyError> {
        match CacheKey::load(path) {
            Err(CacheKeyError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        create(path)?;
        CacheKey::load(path)
    }

    #[cfg(unix)]
    fn load(path: &Path) -> Result<CacheKey, CacheKeyError> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let mut file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(CacheKeyError::Symlink(path.into())),
            Err(e) => return Err(io_error("open", path)(e)),
        };
        let meta = file.metadata().map_err(io_error("stat", path))?;
        if !meta.is_file() {
            return Err(CacheKeyError::NotAFile(path.into()));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        if meta.uid() != unsafe { libc::geteuid() } {
            return Err(CacheKeyError::NotOwned(path.into()));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(CacheKeyError::NotPrivate { path: path.into(), mode: meta.mode() & 0o777 });
        }
        // A key file is 65 bytes; read a little more so an oversized file is refused, not cut.
        let mut text = String::new();
        (&mut file).take(256).read_to_string(&mut text).map_err(|_| CacheKeyError::Malformed(path.into()))?;
        let bytes = hex::decode(text.trim()).map_err(|_| CacheKeyError::Malformed(path.into()))?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CacheKeyError::Malformed(path.into()))?;
        Ok(CacheKey(key))
    }

    #[cfg(not(unix))]
    fn load(path: &Path) -> Result<CacheKey, CacheKeyError> {
        Err(io_error("open", path)(io::ErrorKind::Unsupported.into()))
    }

    fn mac(&self, digest: &str, engine_key: u64, artifact_len: usize) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(DOMAIN);
        mac.update(&(digest.len() as u64).to_le_bytes());
        mac.update(digest.as_bytes());
        mac.update(&engine_key.to_le_bytes());
        mac.update(&(artifact_len as u64).to_le_bytes());
        mac
    }

    /// The header of the entry for `artifact`, compiled from the component with sha256
    /// `digest` by an engine with compatibility hash `engine_key`.
    pub(crate) fn seal(&self, digest: &str, engine_key: u64, artifact: &[u8]) -> [u8; HEADER_LEN] {
        let mut mac = self.mac(digest, engine_key, artifact.len());
        mac.update(artifact);
        let mut header = [0u8; HEADER_LEN];
        header[..MAGIC.len()].copy_from_slice(MAGIC);
        header[MAGIC.len()..].copy_from_slice(&mac.finalize().into_bytes());
        header
    }

    /// The artifact in `entry`, if the entry is sealed with this key for `digest` and
    /// `engine_key`; `None` for anything else (another component's entry, another key, a
    /// changed byte, a truncated or foreign file). The comparison is constant-time.
    pub(crate) fn open<'a>(&self, digest: &str, engine_key: u64, entry: &'a [u8]) -> Option<&'a [u8]> {
        let (magic, rest) = entry.split_at_checked(MAGIC.len())?;
        let (tag, artifact) = rest.split_at_checked(MAC_LEN)?;
        if magic != MAGIC {
            return None;
        }
        let mut mac = self.mac(digest, engine_key, artifact.len());
        mac.update(artifact);
        mac.verify_slice(tag).ok()?;
        Some(artifact)
    }
}

/// Writes a fresh random key to `path` atomically: a private temporary file, synced, then
/// hard-linked into place. If another process got there first, its key stays and is loaded.
#[cfg(unix)]
fn create(path: &Path) -> Result<(), CacheKeyError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(io_error("create", path))?;
    }
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    let mut tmp_name = path.as_os_str().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = (|| -> io::Result<()> {
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
        file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
        file.sync_all()?;
        match fs::hard_link(&tmp, path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        if let Some(parent) = parent {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    written.map_err(io_error("create", path))
}

#[cfg(not(unix))]
fn create(path: &Path) -> Result<(), CacheKeyError> {
    Err(io_error("create", path)(io::ErrorKind::Unsupported.into()))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const DIGEST: &str = "aa";

    fn key() -> CacheKey {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        CacheKey(bytes)
    }

    fn entry(key: &CacheKey, digest: &str, engine_key: u64, artifact: &[u8]) -> Vec<u8> {
        [&key.seal(digest, engine_key, artifact)[..], artifact].concat()
    }

    #[test]
    fn an_entry_opens_only_for_its_component_engine_and_key() {
        let k = key();
        let sealed = entry(&k, DIGEST, 7, b"native code");
        assert_eq!(k.open(DIGEST, 7, &sealed), Some(&b"native code"[..]));
        assert_eq!(k.open("bb", 7, &sealed), None, "another component's digest");
        assert_eq!(k.open(DIGEST, 8, &sealed), None, "another engine");
        assert_eq!(key().open(DIGEST, 7, &sealed), None, "another key");
    }

    #[test]
    fn changed_truncated_and_foreign_entries_do_not_open() {
        let k = key();
        let sealed = entry(&k, DIGEST, 7, b"native code");
        let mut flipped = sealed.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert_eq!(k.open(DIGEST, 7, &flipped), None);
        assert_eq!(k.open(DIGEST, 7, &sealed[..sealed.len() - 1]), None);
        assert_eq!(k.open(DIGEST, 7, &sealed[..HEADER_LEN - 1]), None);
        assert_eq!(k.open(DIGEST, 7, b""), None);
        let mut renamed = sealed.clone();
        renamed[0] = b'X';
        assert_eq!(k.open(DIGEST, 7, &renamed), None, "wrong magic");
        // An empty artifact is still bound: it opens only as itself.
        let empty = entry(&k, DIGEST, 7, b"");
        assert_eq!(k.open(DIGEST, 7, &empty), Some(&b""[..]));
    }

    #[test]
    fn the_key_lives_beside_the_cache_never_inside_it() {
        let dir = Path::new("/var/cache/tollgate");
        assert_eq!(key_path(dir, None).unwrap(), Path::new("/var/cache/tollgate.key"));
        assert_eq!(key_path(Path::new("/var/cache/tollgate/"), None).unwrap(), Path::new("/var/cache/tollgate.key"));
        let chosen = Path::new("/etc/tollgate/cache.key");
        assert_eq!(key_path(dir, Some(chosen)).unwrap(), chosen);
        for inside in ["/var/cache/tollgate/k", "/var/cache/tollgate/../tollgate/k", "/var/cache/tollgate"] {
            let err = key_path(dir, Some(Path::new(inside))).unwrap_err();
            assert!(matches!(err, CacheKeyError::InsideCache { .. }), "{inside}: {err}");
        }
        assert!(matches!(key_path(Path::new("/"), None), Err(CacheKeyError::NoDefault(_))));
    }

    #[test]
    fn a_key_is_created_private_once_and_refused_when_not_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cache.key");
        let first = CacheKey::load_or_create(&path).unwrap();
        let again = CacheKey::load_or_create(&path).unwrap();
        assert_eq!(first.0, again.0, "an existing key is kept");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(CacheKey::load_or_create(&path), Err(CacheKeyError::NotPrivate { .. })));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(CacheKey::load_or_create(&link), Err(CacheKeyError::Symlink(_))));

        fs::write(&path, "not a key\n").unwrap();
        assert!(matches!(CacheKey::load_or_create(&path), Err(CacheKeyError::Malformed(_))));
        assert!(fs::read_to_string(&path).unwrap().starts_with("not a key"), "a bad key is never replaced");
    }
}
