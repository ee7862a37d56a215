//! The rollback anchor: the store is compared with its key and its witness (the external
//! checkpoint file) before anything acts on it. A database restored from an older copy, a
//! deleted or truncated witness, or a replaced key is refused here, instead of reading as
//! "nothing signed yet".
//!
//! The witness is created (empty) together with the key, so once a key exists a missing witness
//! always means it was removed. Only its newest line is read: the chain must still hold that
//! record with that hash. The witness can live outside the data dir (`Signer::with_witness`),
//! where a writer of the data dir cannot roll it back together with the database.
//!
//! Of the database's checkpoint rows only the newest is read (one indexed row, so the check
//! costs the same after years of history), and only to name a replaced key and to tell "nothing
//! signed yet" from "witness removed". It is never evidence that the store is current: a writer
//! of the file can add a row with any seq, so the verdict always comes from the witness's
//! signed line and the audit record the chain holds at its seq.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{AuditCheckpoint, Signer};
use crate::{Store, StoreError};

/// Why the store must not be acted on.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The key that signed the store's checkpoints is not the key given.
    #[error(
        "the audit key {key} did not sign this store's checkpoints (the newest is signed by {signed_by}); restore the key that did"
    )]
    KeyReplaced { key: String, signed_by: String },
    /// The store has signed checkpoints but the witness file is gone.
    #[error(
        "the audit witness {path} is missing but the store has signed checkpoints (the newest at record #{newest}); restore it (it is never recreated)"
    )]
    WitnessMissing { path: String, newest: u64 },
    /// The witness's newest checkpoint is not in the store's chain: the database is older
    /// than the witness, or was edited.
    #[error(
        "the store does not hold the audit record #{seq} its witness {path} signed ({found}); the database was rolled back or edited — check it with `tollgate audit verify`"
    )]
    RolledBack { path: String, seq: u64, found: String },
    /// The witness file could not be read, or its newest line is not a checkpoint this key signed.
    #[error("audit witness {path}: {message}")]
    Witness { path: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `store` against `signer`'s key and witness; see the module docs.
pub async fn check_anchor(store: &dyn Store, signer: &Signer) -> Result<(), AnchorError> {
    let witness = signer.checkpoints_path();
    let shown = witness.display().to_string();
    let in_db = store.newest_audit_checkpoint().await?;
    if let Some(newest) = &in_db
        && newest.public_key != signer.public_key_hex()
    {
        return Err(AnchorError::KeyReplaced {
            key: signer.key_path().display().to_string(),
            signed_by: newest.public_key.clone(),
        });
    }
    let newest = match newest_line(witness) {
        Ok(line) => line,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let Some(in_db) = in_db else {
                // A key from before witnesses were created with it, and nothing signed yet.
                signer.create_witness()?;
                return Ok(());
            };
            return Err(AnchorError::WitnessMissing { path: shown, newest: in_db.seq });
        }
        Err(e) => return Err(AnchorError::Witness { path: shown, message: e.to_string() }),
    };
    let Some(line) = newest else { return Ok(()) };
    let checkpoint: AuditCheckpoint = serde_json::from_str(&line)
        .map_err(|e| AnchorError::Witness { path: shown.clone(), message: format!("newest line: {e}") })?;
    checkpoint
        .check_signature(Some(&signer.verifying_key()))
        .map_err(|message| AnchorError::Witness { path: shown.clone(), message })?;
    let held = store.audit_records(checkpoint.seq, 1).await?;
    match held.first() {
        // The row's `hash` column is only what the file says; its content must hash to it, or a
        // writer who read the witness could plant a row carrying the witnessed hash on an older
        // chain.
        Some(record) if record.seq == checkpoint.seq && record.hash == checkpoint.hash => {
            if record.computed_hash() == record.hash {
                Ok(())
            } else {
                Err(AnchorError::RolledBack {
                    path: shown,
                    seq: checkpoint.seq,
                    found: format!("its record #{} carries that hash but its content has another", record.seq),
                })
            }
        }
        Some(record) if record.seq == checkpoint.seq => Err(AnchorError::RolledBack {
            path: shown,
            seq: checkpoint.seq,
            found: format!("its record #{} has another hash", record.seq),
        }),
        _ => Err(AnchorError::RolledBack { path: shown, seq: checkpoint.seq, found: "it ends before it".into() }),
    }
}

/// The last complete line of the witness (a torn last line, from a crash mid-append, is
/// skipped), reading at most its last 64 KiB. `Ok(None)` for an empty witness.
fn newest_line(path: &Path) -> io::Result<Option<String>> {
    let mut file: File = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(64 * 1024).read_to_end(&mut tail)?;
    let text = String::from_utf8_lossy(&tail);
    // Everything after the last newline is a torn line (or nothing).
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => return Ok(None),
    };
    Ok(complete.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
}
