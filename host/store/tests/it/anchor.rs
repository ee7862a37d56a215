//! `check_anchor` against someone who can write the database file: it reads only the newest
//! checkpoint row, so these tests plant rows (a newer checkpoint, a record carrying the witnessed
//! hash) and check that the verdict still comes from the witness and the chain.

use std::path::Path;

use crate::common::*;
use serde_json::json;
use tollgate_store::audit::{
    AnchorError, AuditCheckpoint, check_anchor, checkpoints_path_for, read_external_checkpoints,
};
use tollgate_store::{Checkpoint, Commit, Signer, SqliteStore, Store};

/// A store under `dir` with a chain of 5 records, witnessed; returns the open store.
async fn witnessed(dir: &Path) -> SqliteStore {
    let store = open(dir).await;
    chain_of(&store, "r1", 4).await;
    witness_one(&store, 0).await;
    store
}

async fn witness_one(store: &SqliteStore, i: i64) {
    let commit = Commit {
        audit: vec![event("r1", "tool.call", 20_000 + i, json!({ "i": i }))],
        checkpoint: Checkpoint::Witnessed,
        ..Commit::default()
    };
    store.commit(commit).await.unwrap();
}

/// [`witnessed`], backed up at seq 5, three more witnessed records (the witness's newest line
/// is #8), then the backup restored: the database is older than its witness. Returns the
/// witness's newest checkpoint.
async fn rolled_back(dir: &Path) -> AuditCheckpoint {
    let state = db_path(dir).parent().unwrap().to_path_buf();
    let backup = dir.join("backup");
    witnessed(dir).await.close().await;
    copy_db(&state, &backup);
    let store = open(dir).await;
    for i in 1..=3 {
        witness_one(&store, i).await;
    }
    store.close().await;
    copy_db(&backup, &state);
    let newest = read_external_checkpoints(&checkpoints_path_for(&key_path(dir))).unwrap().pop().unwrap();
    assert_eq!(newest.seq, 8);
    newest
}

async fn anchor(dir: &Path) -> Result<(), AnchorError> {
    let store = open(dir).await;
    let signer = Signer::load(&key_path(dir)).unwrap();
    let result = check_anchor(&store, &signer).await;
    store.close().await;
    result
}

fn rolled_back_at(result: Result<(), AnchorError>, want_seq: u64, want_found: &str) {
    match result {
        Err(AnchorError::RolledBack { seq, found, .. }) => {
            assert_eq!(seq, want_seq, "{found}");
            assert!(found.contains(want_found), "{found}");
        }
        other => panic!("want a rollback at #{want_seq}, got {other:?}"),
    }
}

async fn plant_checkpoint(dir: &Path, c: &AuditCheckpoint) {
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, signed_at, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(c.seq as i64)
    .bind(&c.hash)
    .bind(c.signed_at)
    .bind(&c.public_key)
    .bind(&c.signature)
    .execute(&mut raw(dir).await)
    .await
    .unwrap();
}

#[tokio::test]
async fn an_intact_store_passes_and_reads_its_newest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = witnessed(dir.path()).await;
    assert_eq!(store.newest_audit_checkpoint().await.unwrap().map(|c| c.seq), Some(5));
    let all = store.audit_checkpoints().await.unwrap();
    assert_eq!(store.newest_audit_checkpoint().await.unwrap().as_ref(), all.last());
    store.close().await;
    anchor(dir.path()).await.unwrap();

    let empty = tempfile::tempdir().unwrap();
    let store = open(empty.path()).await;
    assert_eq!(store.newest_audit_checkpoint().await.unwrap(), None);
    store.close().await;
    anchor(empty.path()).await.unwrap();
}

/// The attack the newest row invites: after restoring an older database, add a checkpoint row
/// newer than anything (the witness's own line, genuinely signed, copied to a larger seq, and at
/// its real seq). The row is the newest, carries the right key and a real signature — and the
/// rollback is still found, because the verdict is the witness against the chain.
#[tokio::test]
async fn a_planted_newer_checkpoint_row_does_not_hide_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let witnessed = rolled_back(dir.path()).await;
    rolled_back_at(anchor(dir.path()).await, 8, "ends before it");

    plant_checkpoint(dir.path(), &witnessed).await;
    plant_checkpoint(dir.path(), &AuditCheckpoint { seq: 1_000_000, ..witnessed.clone() }).await;
    let store = open(dir.path()).await;
    assert_eq!(store.newest_audit_checkpoint().await.unwrap().map(|c| c.seq), Some(1_000_000));
    store.close().await;
    rolled_back_at(anchor(dir.path()).await, 8, "ends before it");
}

/// The witness is readable by whoever reads the data dir: a writer can plant a record at its seq
/// carrying its hash. The record's content does not hash to it, so that is a rollback too.
#[tokio::test]
async fn a_planted_record_carrying_the_witnessed_hash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let witnessed = rolled_back(dir.path()).await;
    let head = open(dir.path()).await.audit_records(5, 1).await.unwrap().remove(0);
    for seq in 6..=8 {
        let hash = if seq == 8 { witnessed.hash.clone() } else { format!("{seq:064}") };
        sqlx::query("INSERT INTO audit (seq, ts, run_id, kind, body, prev_hash, hash) VALUES (?1, 1, 'r1', 'tool.call', '{}', ?2, ?3)")
            .bind(seq)
            .bind(&head.hash)
            .bind(hash)
            .execute(&mut raw(dir.path()).await)
            .await
            .unwrap();
    }
    rolled_back_at(anchor(dir.path()).await, 8, "its content has another");
}

#[tokio::test]
async fn a_newest_row_signed_by_another_key_names_that_key() {
    let dir = tempfile::tempdir().unwrap();
    witnessed(dir.path()).await.close().await;
    let other = Signer::load_or_create(&dir.path().join("other/key")).unwrap();
    plant_checkpoint(dir.path(), &other.sign(999, &"0".repeat(64), 1)).await;
    match anchor(dir.path()).await {
        Err(AnchorError::KeyReplaced { signed_by, .. }) => assert_eq!(signed_by, other.public_key_hex()),
        other => panic!("want a replaced key, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_witness_names_the_newest_checkpoint_and_an_unsigned_store_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    witnessed(dir.path()).await.close().await;
    let witness = checkpoints_path_for(&key_path(dir.path()));
    std::fs::remove_file(&witness).unwrap();
    match anchor(dir.path()).await {
        Err(e @ AnchorError::WitnessMissing { newest: 5, .. }) => {
            assert!(e.to_string().contains("the newest at record #5"), "{e}")
        }
        other => panic!("want a missing witness, got {other:?}"),
    }
    assert!(!witness.exists(), "the witness was recreated");

    // Nothing signed yet (a key from before witnesses): the witness is created.
    let fresh = tempfile::tempdir().unwrap();
    open(fresh.path()).await.close().await;
    let witness = checkpoints_path_for(&key_path(fresh.path()));
    std::fs::remove_file(&witness).unwrap();
    anchor(fresh.path()).await.unwrap();
    assert!(witness.exists());
}
