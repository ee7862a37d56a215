//! Verifying the chain and its checkpoints, and naming the first thing that is wrong.
//!
//! Records are fed in `seq` order. The walk accepts a record when its `seq` follows, its
//! `prev_hash` is the previous record's hash and its content hashes to its `hash`. At the first
//! record that fails, the verifier keeps reading a bounded tail and classifies the break:
//!
//! | what it sees at the break | verdict |
//! |---|---|
//! | a gap in `seq`, the record not linking across it | `Deleted` (the first missing seq) |
//! | link intact, content hashes differently, and fits a later record's place | `Reordered` |
//! | link intact, content hashes differently | `Edited` |
//! | `prev_hash` is the hash of a later record | `Reordered` |
//! | `prev_hash` is the hash of an earlier, not the previous, record | `Inserted` (the records between) |
//! | the next record links to the previous one, skipping this one | `Inserted` |
//! | the record hashes correctly under a higher seq | `Deleted` (the rest were renumbered) |
//! | the record is self-consistent and the chain continues from it | `Edited` (the previous record was re-sealed) |
//!
//! A chain that walks clean is then held against the signed checkpoints: every signature must
//! verify (`BadSignature`); a checkpoint at or below the head must name the hash the record at
//! its seq has (`RolledBack`: the history was rewritten); a checkpoint beyond the head means
//! records are gone: `Truncated` if the database itself recorded that checkpoint, `RolledBack`
//! if only the external file knows it (an older copy of the database was restored).

use std::collections::{HashMap, HashSet, VecDeque};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::{AuditCheckpoint, GENESIS_HASH, SealedRecord, record_hash};

/// Recent good records remembered to recognise an inserted run of records.
const HISTORY: usize = 256;
/// Records read past the break to classify it.
const TAIL: usize = 65_536;
/// How many deleted-then-renumbered records the classifier looks for.
const RENUMBER_PROBE: u64 = 4_096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TamperKind {
    Edited,
    Deleted,
    Inserted,
    Reordered,
    Truncated,
    RolledBack,
    BadSignature,
}

impl std::fmt::Display for TamperKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TamperKind::Edited => "edited",
            TamperKind::Deleted => "deleted",
            TamperKind::Inserted => "inserted",
            TamperKind::Reordered => "reordered",
            TamperKind::Truncated => "truncated",
            TamperKind::RolledBack => "rolled back",
            TamperKind::BadSignature => "bad signature",
        })
    }
}

/// The first thing found wrong with the chain: `seq` names the record (or checkpoint) at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("audit log {kind} at seq {seq}: {message}")]
pub struct Tamper {
    pub seq: u64,
    pub kind: TamperKind,
    pub message: String,
}

/// What a clean verification covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub records: u64,
    /// 0 for an empty chain.
    pub head_seq: u64,
    /// [`GENESIS_HASH`] for an empty chain.
    pub head_hash: String,
    /// Database plus external checkpoints.
    pub checkpoints_checked: usize,
    pub newest_checkpoint_seq: Option<u64>,
}

/// Verify a whole chain (records in `seq` order) against its checkpoints. With `trusted_key`,
/// every checkpoint must be signed by it; without, each is checked against the key it names.
pub fn verify(
    records: impl IntoIterator<Item = SealedRecord>,
    db_checkpoints: &[AuditCheckpoint],
    external_checkpoints: &[AuditCheckpoint],
    trusted_key: Option<&VerifyingKey>,
) -> Result<VerifyReport, Tamper> {
    let mut verifier = ChainVerifier::new(db_checkpoints, external_checkpoints, trusted_key);
    for record in records {
        if !verifier.wants_more() {
            break;
        }
        verifier.push(record);
    }
    verifier.finish()
}

/// [`verify`] one record at a time, for callers that page records in (see `verify_store`).
#[derive(Debug)]
pub struct ChainVerifier {
    db_checkpoints: Vec<AuditCheckpoint>,
    external_checkpoints: Vec<AuditCheckpoint>,
    trusted_key: Option<VerifyingKey>,
    /// Seqs some checkpoint names, and the hash the chain has there.
    watched: HashSet<u64>,
    seen: HashMap<u64, String>,
    records: u64,
    head: Option<(u64, String)>,
    history: VecDeque<(u64, String)>,
    /// The first bad record and what follows it, once the walk broke.
    broken: Option<Vec<SealedRecord>>,
}

impl ChainVerifier {
    pub fn new(
        db_checkpoints: &[AuditCheckpoint],
        external_checkpoints: &[AuditCheckpoint],
        trusted_key: Option<&VerifyingKey>,
    ) -> ChainVerifier {
        ChainVerifier {
            watched: db_checkpoints.iter().chain(external_checkpoints).map(|c| c.seq).collect(),
            db_checkpoints: db_checkpoints.to_vec(),
            external_checkpoints: external_checkpoints.to_vec(),
            trusted_key: trusted_key.copied(),
            seen: HashMap::new(),
            records: 0,
            head: None,
            history: VecDeque::new(),
            broken: None,
        }
    }

    /// False once enough of the tail after a break was read to classify it.
    pub fn wants_more(&self) -> bool {
        self.broken.as_ref().is_none_or(|tail| tail.len() < TAIL)
    }

    /// Feed the next record (in `seq` order).
    pub fn push(&mut self, record: SealedRecord) {
        if let Some(tail) = &mut self.broken {
            if tail.len() < TAIL {
                tail.push(record);
            }
            return;
        }
        let (expected_seq, expected_prev) = match &self.head {
            Some((seq, hash)) => (seq + 1, hash.as_str()),
            None => (1, GENESIS_HASH),
        };
        if record.seq != expected_seq || record.prev_hash != expected_prev || record.computed_hash() != record.hash {
            self.broken = Some(vec![record]);
            return;
        }
        self.records += 1;
        if self.watched.contains(&record.seq) {
            self.seen.insert(record.seq, record.hash.clone());
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((record.seq, record.hash.clone()));
        self.head = Some((record.seq, record.hash));
    }

    pub fn finish(self) -> Result<VerifyReport, Tamper> {
        if let Some(tail) = &self.broken {
            return Err(classify(self.head.as_ref(), &self.history, tail));
        }
        let (head_seq, head_hash) = self.head.clone().unwrap_or_else(|| (0, GENESIS_HASH.to_string()));
        let sources = [("database", &self.db_checkpoints), ("external", &self.external_checkpoints)];
        for (source, checkpoints) in sources {
            for checkpoint in checkpoints.iter() {
                checkpoint.check_signature(self.trusted_key.as_ref()).map_err(|e| Tamper {
                    seq: checkpoint.seq,
                    kind: TamperKind::BadSignature,
                    message: format!("{source} checkpoint at seq {}: {e}", checkpoint.seq),
                })?;
            }
        }
        let mut all: Vec<(&str, &AuditCheckpoint)> =
            sources.iter().flat_map(|(source, list)| list.iter().map(move |c| (*source, c))).collect();
        all.sort_by_key(|(_, c)| c.seq);
        for (source, checkpoint) in &all {
            self.check_coverage(source, checkpoint, head_seq)?;
        }
        Ok(VerifyReport {
            records: self.records,
            head_seq,
            head_hash,
            checkpoints_checked: all.len(),
            newest_checkpoint_seq: all.last().map(|(_, c)| c.seq),
        })
    }

    fn check_coverage(&self, source: &str, checkpoint: &AuditCheckpoint, head_seq: u64) -> Result<(), Tamper> {
        let seq = checkpoint.seq;
        if seq == 0 {
            // Nothing to cover: the empty chain.
            return Ok(());
        }
        if seq <= head_seq {
            let found = self.seen.get(&seq).map(String::as_str).unwrap_or("");
            if found == checkpoint.hash {
                return Ok(());
            }
            return Err(Tamper {
                seq,
                kind: TamperKind::RolledBack,
                message: format!(
                    "record {seq} has hash {found} but the {source} checkpoint signed it as {}: the history \
                     from there on was rewritten or replaced",
                    checkpoint.hash
                ),
            });
        }
        let recorded_in_db = self.db_checkpoints.iter().any(|c| c.seq == seq && c.hash == checkpoint.hash);
        if recorded_in_db {
            Err(Tamper {
                seq: head_seq + 1,
                kind: TamperKind::Truncated,
                message: format!(
                    "the chain ends at seq {head_seq} but a {source} checkpoint covers seq {seq}: records \
                     {}..={seq} were removed",
                    head_seq + 1
                ),
            })
        } else {
            Err(Tamper {
                seq: head_seq + 1,
                kind: TamperKind::RolledBack,
                message: format!(
                    "the chain ends at seq {head_seq} but the external checkpoint file covers seq {seq}, which \
                     this database never recorded: an older copy of the database was restored"
                ),
            })
        }
    }
}

fn tamper(seq: u64, kind: TamperKind, message: String) -> Tamper {
    Tamper { seq, kind, message }
}

/// Name the first bad record. `tail[0]` is the record the walk refused; `head` the last good.
fn classify(head: Option<&(u64, String)>, history: &VecDeque<(u64, String)>, tail: &[SealedRecord]) -> Tamper {
    let r = &tail[0];
    let later = &tail[1..];
    let (last_seq, expected_prev) = head.map(|(seq, hash)| (*seq, hash.as_str())).unwrap_or((0, GENESIS_HASH));
    let expected_seq = last_seq + 1;
    let hash_as = |seq: u64, prev: &str| record_hash(prev, seq, r.ts, r.run_id.as_deref(), &r.kind, &r.body);

    if r.seq < expected_seq {
        return tamper(r.seq, TamperKind::Inserted, format!("record {} is numbered before the chain starts", r.seq));
    }
    if r.seq > expected_seq {
        if r.prev_hash == expected_prev {
            let message =
                format!("record {} links to record {last_seq} but is numbered {}: its seq was changed", r.seq, r.seq);
            return tamper(r.seq, TamperKind::Edited, message);
        }
        let message = if r.seq == expected_seq + 1 {
            format!("record {expected_seq} is missing")
        } else {
            format!("records {expected_seq}..={} are missing", r.seq - 1)
        };
        return tamper(expected_seq, TamperKind::Deleted, message);
    }
    if r.prev_hash == expected_prev {
        if let Some(other) = later.iter().find(|o| hash_as(o.seq, &o.prev_hash) == o.hash) {
            let message = format!("record {} holds the content of record {} (records swapped)", r.seq, other.seq);
            return tamper(r.seq, TamperKind::Reordered, message);
        }
        let message = format!("record {}'s content no longer matches its hash", r.seq);
        return tamper(r.seq, TamperKind::Edited, message);
    }
    if let Some(other) = later.iter().find(|o| o.hash == r.prev_hash) {
        let message = format!("record {} links to record {}, which comes after it (records swapped)", r.seq, other.seq);
        return tamper(r.seq, TamperKind::Reordered, message);
    }
    if let Some((seq, _)) = history.iter().rev().skip(1).find(|(_, hash)| *hash == r.prev_hash) {
        let message = format!(
            "record {} links to record {seq}: records {}..={last_seq} do not belong to the chain",
            r.seq,
            seq + 1
        );
        return tamper(seq + 1, TamperKind::Inserted, message);
    }
    if later.first().is_some_and(|next| next.prev_hash == expected_prev) {
        let message = format!(
            "record {} does not link to record {last_seq}, and record {} does: it does not belong to the chain",
            r.seq,
            r.seq + 1
        );
        return tamper(r.seq, TamperKind::Inserted, message);
    }
    if let Some(k) = (1..=RENUMBER_PROBE).find(|k| hash_as(r.seq + k, &r.prev_hash) == r.hash) {
        let message = format!(
            "record {} was numbered {} until {k} record(s) before it were deleted and the rest renumbered",
            r.seq,
            r.seq + k
        );
        return tamper(expected_seq, TamperKind::Deleted, message);
    }
    if r.computed_hash() == r.hash {
        if last_seq > 0 && later.first().is_some_and(|next| next.prev_hash == r.hash) {
            let message = format!(
                "record {last_seq} was rewritten and re-sealed: record {} committed to another hash for it",
                r.seq
            );
            return tamper(last_seq, TamperKind::Edited, message);
        }
        if last_seq > 0 {
            let message = format!("record {} does not link to record {last_seq}", r.seq);
            return tamper(r.seq, TamperKind::Inserted, message);
        }
    }
    let message = format!("record {}'s prev_hash was changed", r.seq);
    tamper(r.seq, TamperKind::Edited, message)
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
