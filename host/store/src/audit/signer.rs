//! The audit signing key and its checkpoints.
//!
//! The key is an ed25519 seed, hex, in a file of its own (mode 0600, never a symlink) kept
//! outside the database, so someone who can rewrite the database cannot forge checkpoints.
//! Every checkpoint is also appended to `<key file>.checkpoints.jsonl`: restoring an old
//! database or cutting records off its end leaves that file ahead of the chain.
//!
//! A checkpoint signs exactly these bytes (UTF-8, `\n` separators, no trailing newline):
//!
//! ```text
//! tollgate-audit-checkpoint-v1
//! {seq}
//! {hash}
//! {signed_at}
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// First line of every signed checkpoint message; bump the version if the message changes.
pub const CHECKPOINT_MESSAGE_PREFIX: &str = "tollgate-audit-checkpoint-v1";

/// A signed statement that the chain's record `seq` had hash `hash` at `signed_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    pub seq: u64,
    pub hash: String,
    /// Milliseconds since the Unix epoch (wall clock of the signing process).
    pub signed_at: i64,
    /// The ed25519 public key, hex.
    pub public_key: String,
    /// The ed25519 signature over [`checkpoint_message`], hex.
    pub signature: String,
}

/// The exact bytes a checkpoint signature covers.
pub fn checkpoint_message(seq: u64, hash: &str, signed_at: i64) -> String {
    format!("{CHECKPOINT_MESSAGE_PREFIX}\n{seq}\n{hash}\n{signed_at}")
}

impl AuditCheckpoint {
    /// Check the signature, with `trusted` if given (the checkpoint must name that key), else
    /// with the key the checkpoint names (which only shows it was not damaged).
    pub fn check_signature(&self, trusted: Option<&VerifyingKey>) -> Result<(), String> {
        let named = decode_fixed::<32>(&self.public_key)
            .and_then(|bytes| VerifyingKey::from_bytes(&bytes).map_err(|e| e.to_string()))
            .map_err(|e| format!("public key is not an ed25519 key: {e}"))?;
        if let Some(trusted) = trusted
            && trusted != &named
        {
            return Err(format!("signed by key {}, not the trusted key {}", self.public_key, hex::encode(trusted)));
        }
        let signature = decode_fixed::<64>(&self.signature)
            .map(|bytes| Signature::from_bytes(&bytes))
            .map_err(|e| format!("signature is not 64 hex bytes: {e}"))?;
        named
            .verify_strict(checkpoint_message(self.seq, &self.hash, self.signed_at).as_bytes(), &signature)
            .map_err(|_| "signature does not match the checkpoint".to_string())
    }
}

fn decode_fixed<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(text).map_err(|e| e.to_string())?;
    bytes.try_into().map_err(|bytes: Vec<u8>| format!("{} bytes, expected {N}", bytes.len()))
}

/// The audit signing key, loaded from its file.
pub struct Signer {
    key: SigningKey,
    key_path: PathBuf,
    checkpoints_path: PathBuf,
    /// Serialises appends to the checkpoint file within this process.
    append_lock: Mutex<()>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret half.
        f.debug_struct("Signer")
            .field("key_path", &self.key_path)
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Load the key at `key_path`, or create a random one there (mode 0600, parent directories
    /// 0700) if there is none. Refuses a symlink and a key readable by group or others.
    pub fn load_or_create(key_path: &Path) -> Result<Signer, StoreError> {
        match Signer::load(key_path) {
            Err(StoreError::NotFound { .. }) => {}
            other => return other,
        }
        create_key_file(key_path)?;
        let signer = Signer::load(key_path)?;
        // The witness starts with the key, so a missing witness always means a removed one.
        signer.create_witness()?;
        Ok(signer)
    }

    /// Keep the witness (the external checkpoint file) at `path` instead of beside the key:
    /// another volume or an append-only mount, outside the data dir's trust domain.
    pub fn with_witness(mut self, path: &Path) -> Signer {
        self.checkpoints_path = path.to_path_buf();
        self
    }

    /// Create the witness file, empty, if there is none (mode 0600, never through a symlink).
    pub fn create_witness(&self) -> Result<(), StoreError> {
        let shown = self.checkpoints_path.display();
        if let Some(parent) = self.checkpoints_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| StoreError::Key(format!("cannot create {}: {e}", parent.display())))?;
        }
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.checkpoints_path)
            .and_then(|file| file.sync_all())
            .map_err(|e| StoreError::Key(format!("cannot create {shown}: {e}")))
    }

    /// Load the key at `key_path`; [`StoreError::NotFound`] if there is none.
    pub fn load(key_path: &Path) -> Result<Signer, StoreError> {
        let shown = key_path.display();
        let mut file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(key_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { what: "audit key", id: shown.to_string() });
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(StoreError::Key(format!("{shown} is a symlink; refusing to use it")));
            }
            Err(e) => return Err(StoreError::Key(format!("cannot open {shown}: {e}"))),
        };
        let meta = file.metadata().map_err(|e| StoreError::Key(format!("cannot stat {shown}: {e}")))?;
        if !meta.is_file() {
            return Err(StoreError::Key(format!("{shown} is not a regular file")));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(StoreError::Key(format!(
                "{shown} is accessible by group or others (mode {:o}); run chmod 600 on it",
                meta.mode() & 0o777
            )));
        }
        let mut text = String::new();
        // A key file is 65 bytes; read a little more so an oversized file is refused, not cut.
        (&mut file)
            .take(256)
            .read_to_string(&mut text)
            .map_err(|e| StoreError::Key(format!("cannot read {shown}: {e}")))?;
        let seed = decode_fixed::<32>(text.trim())
            .map_err(|e| StoreError::Key(format!("{shown} does not hold a hex ed25519 seed ({e})")))?;
        Ok(Signer {
            key: SigningKey::from_bytes(&seed),
            key_path: key_path.to_path_buf(),
            checkpoints_path: checkpoints_path_for(key_path),
            append_lock: Mutex::new(()),
        })
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The witness: `<key path>.checkpoints.jsonl` unless [`Signer::with_witness`] moved it.
    pub fn checkpoints_path(&self) -> &Path {
        &self.checkpoints_path
    }

    pub fn sign(&self, seq: u64, hash: &str, signed_at: i64) -> AuditCheckpoint {
        let signature = self.key.sign(checkpoint_message(seq, hash, signed_at).as_bytes());
        AuditCheckpoint {
            seq,
            hash: hash.to_string(),
            signed_at,
            public_key: self.public_key_hex(),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Signs `message` (anything but a checkpoint's message, which [`Signer::sign`] owns: callers
    /// prefix their own domain, e.g. `tollgate-token-v1`). Hex.
    pub fn sign_message(&self, message: &str) -> String {
        hex::encode(self.key.sign(message.as_bytes()).to_bytes())
    }

    /// Whether `signature` (hex) is this key's signature of `message`.
    pub fn verify_message(&self, message: &str, signature: &str) -> bool {
        decode_fixed::<64>(signature)
            .map(|bytes| Signature::from_bytes(&bytes))
            .is_ok_and(|sig| self.key.verifying_key().verify_strict(message.as_bytes(), &sig).is_ok())
    }

    /// Append `checkpoint` as one JSON line to the external checkpoint file and fsync it.
    pub fn append_external(&self, checkpoint: &AuditCheckpoint) -> Result<(), StoreError> {
        let shown = self.checkpoints_path.display();
        let mut line = serde_json::to_string(checkpoint).map_err(|e| StoreError::Key(e.to_string()))?;
        line.push('\n');
        let _guard = self.append_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.checkpoints_path)
            .map_err(|e| StoreError::Key(format!("cannot open {shown}: {e}")))?;
        drop_torn_tail(&mut file).map_err(|e| StoreError::Key(format!("cannot repair {shown}: {e}")))?;
        // One write: appends of whole lines from several processes do not interleave.
        file.write_all(line.as_bytes()).map_err(|e| StoreError::Key(format!("cannot write {shown}: {e}")))?;
        file.sync_data().map_err(|e| StoreError::Key(format!("cannot sync {shown}: {e}")))
    }
}

/// `<key path>.checkpoints.jsonl`: where a key's checkpoints are appended.
pub fn checkpoints_path_for(key_path: &Path) -> PathBuf {
    let mut name = key_path.as_os_str().to_os_string();
    name.push(".checkpoints.jsonl");
    PathBuf::from(name)
}

/// Write a fresh random seed to `key_path` atomically: a private temporary file, fsynced, then
/// hard-linked into place (fails if another process got there first, which is fine: its key
/// is then loaded).
fn create_key_file(key_path: &Path) -> Result<(), StoreError> {
    let shown = key_path.display();
    if let Some(parent) = key_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| StoreError::Key(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let mut tmp_name = key_path.as_os_str().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = (|| -> io::Result<()> {
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
        file.write_all(format!("{}\n", hex::encode(seed)).as_bytes())?;
        file.sync_all()?;
        match fs::hard_link(&tmp, key_path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        if let Some(parent) = key_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    written.map_err(|e| StoreError::Key(format!("cannot create {shown}: {e}")))
}

/// If a crash left half a line at the end of the checkpoint file, cut it off so the next line
/// starts clean.
fn drop_torn_tail(file: &mut File) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let start = len.saturating_sub(4096);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => start + i as u64 + 1,
        None if start == 0 => 0,
        // A "line" over 4 KiB is not one of ours; leave it for the reader to report.
        None => return Ok(()),
    };
    file.set_len(keep)
}

/// Read a checkpoint file (one [`AuditCheckpoint`] JSON per line). A missing file reads as no
/// checkpoints (nothing was signed with that key yet); a torn last line (crash mid-append) is
/// ignored; any other bad line is an error naming its line number.
pub fn read_external_checkpoints(path: &Path) -> io::Result<Vec<AuditCheckpoint>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut checkpoints = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AuditCheckpoint>(line) {
            Ok(checkpoint) => checkpoints.push(checkpoint),
            Err(_) if torn_tail && i + 1 == lines.len() => {}
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} line {}: not a checkpoint: {e}", path.display(), i + 1),
                ));
            }
        }
    }
    Ok(checkpoints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_a_private_key_and_loads_the_same_key_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/audit.key");
        let signer = Signer::load_or_create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
        let again = Signer::load_or_create(&path).unwrap();
        assert_eq!(again.public_key_hex(), signer.public_key_hex());
        assert_eq!(signer.checkpoints_path(), dir.path().join("keys/audit.key.checkpoints.jsonl"));
        let other = Signer::load_or_create(&dir.path().join("other.key")).unwrap();
        assert_ne!(other.public_key_hex(), signer.public_key_hex());
        assert!(!format!("{signer:?}").contains(&hex::encode(signer.key.to_bytes())));
    }

    #[test]
    fn refuses_a_key_readable_by_others_and_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        Signer::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = Signer::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("group or others"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = Signer::load_or_create(&link).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
    }

    #[test]
    fn refuses_a_file_that_is_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        fs::write(&path, "not hex\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(Signer::load(&path), Err(StoreError::Key(_))));
        assert!(matches!(Signer::load(&dir.path().join("none")), Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn signatures_verify_and_any_change_breaks_them() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(&dir.path().join("k")).unwrap();
        let checkpoint = signer.sign(64, &"ab".repeat(32), 1_700_000_000_000);
        checkpoint.check_signature(Some(&signer.verifying_key())).unwrap();
        checkpoint.check_signature(None).unwrap();
        let mut moved = checkpoint.clone();
        moved.seq = 63;
        assert!(moved.check_signature(None).is_err());
        let mut rehashed = checkpoint.clone();
        rehashed.hash = "cd".repeat(32);
        assert!(rehashed.check_signature(None).is_err());
        let other = Signer::load_or_create(&dir.path().join("other")).unwrap();
        let err = checkpoint.check_signature(Some(&other.verifying_key())).unwrap_err();
        assert!(err.contains("not the trusted key"), "{err}");
        // A checkpoint re-signed by another key verifies only against that key.
        let forged = other.sign(64, &checkpoint.hash, checkpoint.signed_at);
        forged.check_signature(None).unwrap();
        assert!(forged.check_signature(Some(&signer.verifying_key())).is_err());
    }

    #[test]
    fn external_file_round_trips_and_survives_a_torn_append() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(&dir.path().join("k")).unwrap();
        assert!(read_external_checkpoints(signer.checkpoints_path()).unwrap().is_empty());
        let first = signer.sign(1, &"aa".repeat(32), 1);
        signer.append_external(&first).unwrap();
        assert_eq!(fs::metadata(signer.checkpoints_path()).unwrap().mode() & 0o777, 0o600);
        // A crash mid-append leaves half a line: the reader ignores it, the next append cuts it.
        OpenOptions::new().append(true).open(signer.checkpoints_path()).unwrap().write_all(b"{\"seq\":2,").unwrap();
        assert_eq!(read_external_checkpoints(signer.checkpoints_path()).unwrap(), vec![first.clone()]);
        let second = signer.sign(3, &"bb".repeat(32), 2);
        signer.append_external(&second).unwrap();
        assert_eq!(read_external_checkpoints(signer.checkpoints_path()).unwrap(), vec![first, second]);
        // A bad line in the middle is an error, not silently skipped.
        let text = fs::read_to_string(signer.checkpoints_path()).unwrap();
        fs::write(signer.checkpoints_path(), format!("garbage\n{text}")).unwrap();
        let err = read_external_checkpoints(signer.checkpoints_path()).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
