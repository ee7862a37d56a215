//! The hash-chained audit log: sealing records, signing checkpoints, verifying the chain.
//!
//! Every record commits to the one before it:
//!
//! ```text
//! hash = sha256_hex(prev_hash + "\n" + canonical_json({"seq", "ts", "run_id", "kind", "body"}))
//! ```
//!
//! with `prev_hash` = 64 zeros for `seq` 1. Editing, deleting, inserting or reordering a record
//! breaks the chain at that record; [`verify`] names it. What the chain alone cannot show is
//! the loss of its newest records (truncation) or the restore of an older database (rollback):
//! for that the head is signed now and then ([`Signer`]) and the signed checkpoint is kept both
//! in the database and in a file beside the key, outside the database.
//!
//! The store seals records inside the transaction that writes them, so the chain has no gaps
//! even with several processes writing one database.

mod anchor;
mod canonical;
mod event;
#[cfg(test)]
mod event_doc;
mod export;
mod signer;
mod verify;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use anchor::{AnchorError, check_anchor};
pub use canonical::canonical_json;
pub use ed25519_dalek::VerifyingKey;
pub use event::*;
pub use export::{VerifyStoreError, export_jsonl, verify_store, verify_store_with};
pub use signer::{
    AuditCheckpoint, CHECKPOINT_MESSAGE_PREFIX, Signer, checkpoint_message, checkpoints_path_for,
    read_external_checkpoints,
};
pub use verify::{ChainVerifier, Tamper, TamperKind, VerifyReport, verify};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record of the chain as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedRecord {
    pub seq: u64,
    /// Milliseconds since the Unix epoch, as given by the writer.
    pub ts: i64,
    pub run_id: Option<String>,
    pub kind: String,
    pub body: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl SealedRecord {
    /// The hash this record's content and link should have; differs from `hash` if edited.
    pub fn computed_hash(&self) -> String {
        record_hash(&self.prev_hash, self.seq, self.ts, self.run_id.as_deref(), &self.kind, &self.body)
    }
}

/// Seal `entry` as the record after `prev` (`(seq, hash)` of the current head; `None` for an
/// empty chain).
pub fn seal(prev: Option<(u64, &str)>, entry: &AuditEntry) -> SealedRecord {
    seal_raw(prev, entry.ts, entry.run_id.clone(), entry.event.kind(), entry.event.body())
}

/// Seal a record from its stored parts. The chain does not care what a kind means: tests
/// build chains of any content with this.
pub fn seal_raw(prev: Option<(u64, &str)>, ts: i64, run_id: Option<String>, kind: &str, body: Value) -> SealedRecord {
    let (seq, prev_hash) = match prev {
        Some((seq, hash)) => (seq + 1, hash.to_string()),
        None => (1, GENESIS_HASH.to_string()),
    };
    let hash = record_hash(&prev_hash, seq, ts, run_id.as_deref(), kind, &body);
    SealedRecord { seq, ts, run_id, kind: kind.to_string(), body, prev_hash, hash }
}

impl SealedRecord {
    /// The record's event, if its kind and body are ones this build knows.
    pub fn event(&self) -> Result<AuditEvent, serde_json::Error> {
        AuditEvent::parse(&self.kind, &self.body)
    }
}

/// `sha256_hex(prev_hash + "\n" + canonical_json({seq, ts, run_id, kind, body}))`.
pub fn record_hash(prev_hash: &str, seq: u64, ts: i64, run_id: Option<&str>, kind: &str, body: &Value) -> String {
    let content = json!({ "seq": seq, "ts": ts, "run_id": run_id, "kind": kind, "body": body });
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_json(&content).as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, body: Value) -> SealedRecord {
        seal_raw(None, 1_700_000_000_000, Some("run_1".into()), kind, body)
    }

    fn after(prev: &SealedRecord, kind: &str, body: Value) -> SealedRecord {
        seal_raw(Some((prev.seq, &prev.hash)), 1_700_000_000_000, Some("run_1".into()), kind, body)
    }

    #[test]
    fn first_record_links_to_genesis_and_later_ones_to_their_predecessor() {
        let first = event("run.started", json!({"goal": "g"}));
        assert_eq!(first.seq, 1);
        assert_eq!(first.prev_hash, GENESIS_HASH);
        let second = after(&first, "run.ended", json!({}));
        assert_eq!(second.seq, 2);
        assert_eq!(second.prev_hash, first.hash);
        assert_ne!(second.hash, first.hash);
        assert_eq!(second.computed_hash(), second.hash);
    }

    #[test]
    fn hash_is_the_documented_formula() {
        let record = event("k", json!({"b": 2, "a": "x"}));
        let preimage = format!(
            "{GENESIS_HASH}\n{{\"body\":{{\"a\":\"x\",\"b\":2}},\"kind\":\"k\",\"run_id\":\"run_1\",\"seq\":1,\"ts\":1700000000000}}"
        );
        assert_eq!(record.hash, hex::encode(Sha256::digest(preimage.as_bytes())));
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let record = event("k", json!({"a": 1}));
        let mut changed = vec![record.clone(); 6];
        changed[0].seq = 2;
        changed[1].ts += 1;
        changed[2].run_id = None;
        changed[3].kind = "j".into();
        changed[4].body = json!({"a": 2});
        changed[5].prev_hash = "1".repeat(64);
        for other in changed {
            assert_ne!(other.computed_hash(), record.hash, "{other:?}");
        }
    }
}
