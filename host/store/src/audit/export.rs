//! Getting the chain out of a store: JSONL export and whole-store verification.

use std::io::{self, Write};
use std::path::Path;

use super::{ChainVerifier, SealedRecord, Signer, Tamper, VerifyReport, read_external_checkpoints};
use crate::{Store, StoreError};

/// Records fetched per `audit_records` call by [`verify_store`].
const PAGE: u32 = 1_000;

/// Write one [`SealedRecord`] JSON object per line. Returns how many were written.
pub fn export_jsonl(records: impl IntoIterator<Item = SealedRecord>, mut writer: impl Write) -> io::Result<u64> {
    let mut count = 0;
    for record in records {
        serde_json::to_writer(&mut writer, &record)?;
        writer.write_all(b"\n")?;
        count += 1;
    }
    writer.flush()?;
    Ok(count)
}

/// Why [`verify_store`] did not return a clean report.
#[derive(Debug, thiserror::Error)]
pub enum VerifyStoreError {
    /// The chain or its checkpoints show tampering.
    #[error(transparent)]
    Tamper(#[from] Tamper),
    /// The store, or the key, could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read checkpoint file {path}: {message}")]
    Checkpoints { path: String, message: String },
}

/// Verify the whole audit log of `store`, paging records in. With `signer_key_path`, every
/// checkpoint must be signed by that key and the external checkpoint file beside it
/// (`<key>.checkpoints.jsonl`) is checked too; without, checkpoints are checked against the
/// key they name and truncation/rollback can only be seen through the database's own ones.
pub async fn verify_store(store: &dyn Store, signer_key_path: Option<&Path>) -> Result<VerifyReport, VerifyStoreError> {
    match signer_key_path {
        Some(key_path) => verify_store_with(store, Some(&Signer::load(key_path)?)).await,
        None => verify_store_with(store, None).await,
    }
}

/// [`verify_store`] with a loaded key, whose witness may have been moved
/// ([`Signer::with_witness`]). Once the database holds a signed checkpoint, a missing witness
/// is an error, never "nothing signed yet".
pub async fn verify_store_with(store: &dyn Store, signer: Option<&Signer>) -> Result<VerifyReport, VerifyStoreError> {
    let (trusted_key, external) = match signer {
        Some(signer) => {
            let path = signer.checkpoints_path();
            let unreadable =
                |message: String| VerifyStoreError::Checkpoints { path: path.display().to_string(), message };
            if !path.exists() && !store.audit_checkpoints().await?.is_empty() {
                return Err(unreadable("missing, but the store has signed checkpoints".into()));
            }
            let external = read_external_checkpoints(path).map_err(|e| unreadable(e.to_string()))?;
            (Some(signer.verifying_key()), external)
        }
        None => (None, Vec::new()),
    };
    // Checkpoints before records: every checkpoint read names a record already committed, even
    // while another process keeps appending.
    let db_checkpoints = store.audit_checkpoints().await?;
    let mut verifier = ChainVerifier::new(&db_checkpoints, &external, trusted_key.as_ref());
    // From 0, not 1: a forged record numbered 0 must be seen.
    let mut from = 0;
    while verifier.wants_more() {
        let page = store.audit_records(from, PAGE).await?;
        let full = page.len() == PAGE as usize;
        for record in page {
            from = record.seq + 1;
            verifier.push(record);
        }
        if !full {
            break;
        }
    }
    Ok(verifier.finish()?)
}
