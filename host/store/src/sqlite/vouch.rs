//! Reading audit records the store's key vouches for: each record is returned only if the
//! chain links it, record by record, to a checkpoint this store's signing key signed. The
//! runtime acts on an authorisation (a gate's `allow`, a person's approval, a run's bindings)
//! only through these reads, so a writer of the database file — who can change any row but
//! cannot sign — cannot make a call run.
//!
//! Each record is held against the first valid checkpoint at or after it: commits that
//! authorise something sign their head in the same transaction (`Checkpoint::Signed`), so the
//! segment read to vouch for a record is the few records of its own commit.

use sqlx::SqlitePool;

use super::{db_error, rows};
use crate::StoreError;
use crate::audit::{AuditCheckpoint, SealedRecord, Signer};

/// Checkpoints examined past a forged one (a row whose signature does not check) before giving up.
const CHECKPOINT_CANDIDATES: i64 = 16;

/// `records` (ascending `seq`), less those after the newest signed checkpoint, each verified to
/// link to a checkpoint `signer` signed. A broken link or hash is an error: the log was edited.
pub(super) async fn vouched(
    pool: &SqlitePool,
    signer: Option<&Signer>,
    records: Vec<SealedRecord>,
) -> Result<Vec<SealedRecord>, StoreError> {
    if records.is_empty() {
        return Ok(records);
    }
    let signer = signer.ok_or_else(|| tampered("this store has no signing key to vouch for its audit log"))?;
    let key = signer.verifying_key();
    let mut out = Vec::with_capacity(records.len());
    // The segment verified so far: every record in it links to `covered_to`, which is signed.
    let mut segment: Vec<SealedRecord> = Vec::new();
    for record in records {
        if segment.last().is_none_or(|last| last.seq < record.seq) {
            let Some(checkpoint) = signed_checkpoint_at_or_after(pool, record.seq, &key).await? else {
                // Not yet signed: not vouched for (the runtime signs every authorising commit).
                break;
            };
            segment = linked_segment(pool, record.seq, &checkpoint).await?;
        }
        let Some(in_chain) = segment.iter().find(|r| r.seq == record.seq) else {
            return Err(tampered(&format!("audit record {} is missing from the chain", record.seq)));
        };
        if in_chain != &record {
            return Err(tampered(&format!("audit record {} reads differently from the chain", record.seq)));
        }
        out.push(record);
    }
    Ok(out)
}

/// The first checkpoint with `seq >= from` whose signature `key` verifies.
async fn signed_checkpoint_at_or_after(
    pool: &SqlitePool,
    from: u64,
    key: &ed25519_dalek::VerifyingKey,
) -> Result<Option<AuditCheckpoint>, StoreError> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let found = sqlx::query(
        "SELECT seq, hash, signed_at, public_key, signature FROM audit_checkpoints WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
    )
    .bind(from)
    .bind(CHECKPOINT_CANDIDATES)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    for row in &found {
        let checkpoint = rows::checkpoint(row)?;
        if checkpoint.check_signature(Some(key)).is_ok() {
            return Ok(Some(checkpoint));
        }
    }
    Ok(None)
}

/// Records `from..=checkpoint.seq`, checked to be gapless, each sealed correctly after its
/// predecessor, the last one the checkpoint's head.
async fn linked_segment(
    pool: &SqlitePool,
    from: u64,
    checkpoint: &AuditCheckpoint,
) -> Result<Vec<SealedRecord>, StoreError> {
    let found = sqlx::query(
        "SELECT seq, ts, run_id, kind, body, prev_hash, hash FROM audit WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
    )
    .bind(i64::try_from(from).unwrap_or(i64::MAX))
    .bind(i64::try_from(checkpoint.seq).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    let segment: Vec<SealedRecord> = found.iter().map(rows::sealed).collect::<Result<_, _>>()?;
    let expected = checkpoint.seq.saturating_sub(from) + 1;
    if segment.len() as u64 != expected {
        return Err(tampered(&format!("records {from}..={} of the audit log are missing", checkpoint.seq)));
    }
    for (i, record) in segment.iter().enumerate() {
        if record.seq != from + i as u64 || record.computed_hash() != record.hash {
            return Err(tampered(&format!("audit record {} was edited", record.seq)));
        }
        if i > 0 && record.prev_hash != segment[i - 1].hash {
            return Err(tampered(&format!("audit record {} does not follow its predecessor", record.seq)));
        }
    }
    if segment.last().is_none_or(|last| last.hash != checkpoint.hash) {
        return Err(tampered(&format!("the signed checkpoint at record {} does not match the chain", checkpoint.seq)));
    }
    Ok(segment)
}

fn tampered(message: &str) -> StoreError {
    StoreError::Tampered(message.to_string())
}
