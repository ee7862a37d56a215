//! The audit chain against someone editing the SQLite file by hand: every kind of tampering is
//! named at the right seq by `verify_store`.

use std::fs;
use std::path::Path;

use crate::common::*;
use serde_json::json;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tollgate_store::audit::{
    SealedRecord, Signer, VerifyStoreError, checkpoints_path_for, export_jsonl, read_external_checkpoints, seal,
    verify_store,
};
use tollgate_store::{AuditEntry, Checkpoint, Commit, SqliteStore, Store, Tamper, TamperKind};

/// A closed store under `dir` whose chain has `n` records, the last commit asking for a signed
/// checkpoint.
async fn signed_chain(dir: &Path, n: u64) {
    let store = open(dir).await;
    chain_of(&store, "r1", n - 1).await;
    let last = Commit {
        audit: vec![event("r1", "run.ended", 9_000, json!({ "status": "completed" }))],
        checkpoint: Checkpoint::Witnessed,
        ..Commit::default()
    };
    store.commit(last).await.unwrap();
    store.close().await;
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) {
    sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap();
}

/// Reopen the store and verify it with the key (database and external checkpoints).
async fn verdict(dir: &Path) -> Tamper {
    let store = open(dir).await;
    match verify_store(&store, Some(&key_path(dir))).await {
        Err(VerifyStoreError::Tamper(tamper)) => tamper,
        other => panic!("expected tampering to be found, got {other:?}"),
    }
}

async fn expect(dir: &Path, seq: u64, kind: TamperKind) -> Tamper {
    let tamper = verdict(dir).await;
    assert_eq!((tamper.seq, tamper.kind), (seq, kind), "{tamper}");
    tamper
}

#[tokio::test]
async fn an_untouched_chain_verifies_with_the_right_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    chain_of(&store, "r1", 130).await;
    // The run's start is signed (it binds what the run may use); passing 64 and 128 signs
    // without anyone asking.
    let seqs = |cps: Vec<tollgate_store::AuditCheckpoint>| cps.into_iter().map(|c| c.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.audit_checkpoints().await.unwrap()), [1, 64, 128]);
    store
        .commit(Commit {
            audit: vec![event("r1", "run.ended", 9, json!({}))],
            checkpoint: Checkpoint::Witnessed,
            ..Commit::default()
        })
        .await
        .unwrap();
    let external = read_external_checkpoints(&checkpoints_path_for(&key_path(dir.path()))).unwrap();
    assert_eq!(seqs(external.clone()), [64, 128, 131]);
    // Signed-only checkpoints (the run's start) stay in the database; every witnessed one is
    // in both.
    let in_db = store.audit_checkpoints().await.unwrap();
    assert_eq!(seqs(in_db.clone()), [1, 64, 128, 131]);
    assert!(external.iter().all(|c| in_db.contains(c)));

    let head = store.audit_records(131, 1).await.unwrap().remove(0);
    let report = verify_store(&store, Some(&key_path(dir.path()))).await.unwrap();
    assert_eq!((report.records, report.head_seq), (131, 131));
    assert_eq!(report.head_hash, head.hash);
    assert_eq!((report.checkpoints_checked, report.newest_checkpoint_seq), (7, Some(131)));
    // Without the key: only the database's own checkpoints, checked against the key they name.
    let report = verify_store(&store, None).await.unwrap();
    assert_eq!((report.records, report.checkpoints_checked), (131, 4));
}

#[tokio::test]
async fn one_large_commit_passing_a_multiple_of_64_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1), &[]).await.unwrap();
    let events: Vec<AuditEntry> = (0..70).map(|i| event("r1", "gate.decision", i, json!({ "i": i }))).collect();
    store.commit(Commit { audit: events, ..Commit::default() }).await.unwrap();
    let checkpoints = store.audit_checkpoints().await.unwrap();
    assert_eq!(checkpoints.iter().map(|c| c.seq).collect::<Vec<_>>(), [70]);
    // A store without a signer writes no checkpoints but the same chain.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = SqliteStore::open(&db_path(plain_dir.path()), None).await.unwrap();
    plain.create_run(&run("r1", 1), &[]).await.unwrap();
    let events: Vec<AuditEntry> = (0..70).map(|i| event("r1", "gate.decision", i, json!({ "i": i }))).collect();
    plain.commit(Commit { audit: events, checkpoint: Checkpoint::Witnessed, ..Commit::default() }).await.unwrap();
    assert!(plain.audit_checkpoints().await.unwrap().is_empty());
    assert_eq!(plain.audit_records(70, 1).await.unwrap()[0].hash, store.audit_records(70, 1).await.unwrap()[0].hash);
}

#[tokio::test]
async fn the_audit_table_refuses_casual_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 3).await;
    let mut conn =
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(db_path(dir.path()))).await.unwrap();
    let err = sqlx::raw_sql("UPDATE audit SET body = '{}' WHERE seq = 1").execute(&mut conn).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = sqlx::raw_sql("DELETE FROM audit WHERE seq = 3").execute(&mut conn).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn an_edited_body_is_named() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    exec(&mut raw(dir.path()).await, r#"UPDATE audit SET body = '{"i":999,"output_digest":"x"}' WHERE seq = 5"#).await;
    expect(dir.path(), 5, TamperKind::Edited).await;
}

#[tokio::test]
async fn a_deleted_middle_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    exec(&mut raw(dir.path()).await, "DELETE FROM audit WHERE seq = 5").await;
    let tamper = expect(dir.path(), 5, TamperKind::Deleted).await;
    assert!(tamper.message.contains("record 5 is missing"), "{tamper}");
}

#[tokio::test]
async fn a_deleted_record_with_the_rest_renumbered_is_named() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    let mut conn = raw(dir.path()).await;
    exec(&mut conn, "DELETE FROM audit WHERE seq = 5").await;
    exec(&mut conn, "UPDATE audit SET seq = -seq WHERE seq > 5; UPDATE audit SET seq = -seq - 1 WHERE seq < 0").await;
    expect(dir.path(), 5, TamperKind::Deleted).await;
}

#[tokio::test]
async fn a_forged_record_is_named_as_inserted() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    let store = open(dir.path()).await;
    let fifth = store.audit_records(5, 1).await.unwrap().remove(0);
    store.close().await;
    // The forger knows the formula: the record links to record 5 and hashes correctly.
    let forged = seal(
        Some((fifth.seq, &fifth.hash)),
        &event("r1", "approval.granted", 1_005, json!({ "approval_id": "ap_forged", "by": "mallory" })),
    );
    let mut conn = raw(dir.path()).await;
    exec(&mut conn, "UPDATE audit SET seq = -seq WHERE seq >= 6; UPDATE audit SET seq = -seq + 1 WHERE seq < 0").await;
    insert(&mut conn, &forged).await;
    let tamper = expect(dir.path(), 6, TamperKind::Inserted).await;
    assert!(tamper.message.contains("do not belong"), "{tamper}");
}

async fn insert(conn: &mut SqliteConnection, r: &SealedRecord) {
    sqlx::query("INSERT INTO audit (seq, ts, run_id, kind, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .bind(r.seq as i64)
        .bind(r.ts)
        .bind(r.run_id.as_deref())
        .bind(&r.kind)
        .bind(r.body.to_string())
        .bind(&r.prev_hash)
        .bind(&r.hash)
        .execute(&mut *conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_carelessly_forged_record_is_named_as_inserted() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    let mut conn = raw(dir.path()).await;
    exec(&mut conn, "UPDATE audit SET seq = -seq WHERE seq >= 6; UPDATE audit SET seq = -seq + 1 WHERE seq < 0").await;
    let forged = SealedRecord {
        seq: 6,
        ts: 1,
        run_id: None,
        kind: "tool.call".into(),
        body: json!({}),
        prev_hash: "1".repeat(64),
        hash: "2".repeat(64),
    };
    insert(&mut conn, &forged).await;
    expect(dir.path(), 6, TamperKind::Inserted).await;
}

#[tokio::test]
async fn swapped_records_are_named_as_reordered() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    exec(
        &mut raw(dir.path()).await,
        "UPDATE audit SET seq = -1 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 7; \
         UPDATE audit SET seq = 7 WHERE seq = -1",
    )
    .await;
    expect(dir.path(), 3, TamperKind::Reordered).await;
}

#[tokio::test]
async fn swapped_contents_are_named_as_reordered() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    exec(
        &mut raw(dir.path()).await,
        "CREATE TEMP TABLE saved AS SELECT seq, ts, run_id, kind, body FROM audit WHERE seq IN (4, 8); \
         UPDATE audit SET (ts, run_id, kind, body) = \
           (SELECT ts, run_id, kind, body FROM saved WHERE saved.seq = 12 - audit.seq) WHERE seq IN (4, 8)",
    )
    .await;
    let tamper = expect(dir.path(), 4, TamperKind::Reordered).await;
    assert!(tamper.message.contains("record 8"), "{tamper}");
}

#[tokio::test]
async fn deleting_the_newest_records_after_a_checkpoint_is_truncation() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    exec(&mut raw(dir.path()).await, "DELETE FROM audit WHERE seq > 6").await;
    expect(dir.path(), 7, TamperKind::Truncated).await;
    // The database's own checkpoint alone shows it, even without the key file.
    let store = open(dir.path()).await;
    let Err(VerifyStoreError::Tamper(tamper)) = verify_store(&store, None).await else { panic!("not detected") };
    assert_eq!((tamper.seq, tamper.kind), (7, TamperKind::Truncated));
    store.close().await;
    // Removing the database's checkpoints too leaves the external file ahead of the chain.
    exec(&mut raw(dir.path()).await, "DELETE FROM audit_checkpoints").await;
    expect(dir.path(), 7, TamperKind::RolledBack).await;
}

#[tokio::test]
async fn restoring_an_older_copy_of_the_database_is_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let state = db_path(dir.path()).parent().unwrap().to_path_buf();
    let backup = dir.path().join("backup");
    signed_chain(dir.path(), 5).await;
    copy_db(&state, &backup);

    let store = open(dir.path()).await;
    for i in 0..3 {
        let commit = Commit {
            audit: vec![event("r1", "tool.call", 20_000 + i, json!({ "i": i }))],
            checkpoint: Checkpoint::Witnessed,
            ..Commit::default()
        };
        store.commit(commit).await.unwrap();
    }
    store.close().await;
    copy_db(&backup, &state);

    let tamper = expect(dir.path(), 6, TamperKind::RolledBack).await;
    assert!(tamper.message.contains("older copy"), "{tamper}");

    // Writing on after the restore forks the history: seqs 6..=8 exist again, with other hashes.
    let store = open(dir.path()).await;
    let commit = Commit {
        audit: (0..4).map(|i| event("r1", "tool.call", 30_000 + i, json!({ "fork": i }))).collect(),
        ..Commit::default()
    };
    store.commit(commit).await.unwrap();
    store.close().await;
    let tamper = expect(dir.path(), 6, TamperKind::RolledBack).await;
    assert!(tamper.message.contains("rewritten or replaced"), "{tamper}");
}

#[tokio::test]
async fn a_tampered_checkpoint_signature_is_named() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    // A signature from the real key, but over another checkpoint.
    let signer = Signer::load(&key_path(dir.path())).unwrap();
    let other = signer.sign(3, &"0".repeat(64), 1);
    sqlx::query("UPDATE audit_checkpoints SET signature = ?1 WHERE seq = 10")
        .bind(&other.signature)
        .execute(&mut raw(dir.path()).await)
        .await
        .unwrap();
    let tamper = expect(dir.path(), 10, TamperKind::BadSignature).await;
    assert!(tamper.message.contains("database checkpoint"), "{tamper}");
}

#[tokio::test]
async fn a_tampered_external_checkpoint_is_named() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 10).await;
    let signer = Signer::load(&key_path(dir.path())).unwrap();
    let path = signer.checkpoints_path().to_path_buf();
    let mut checkpoints = read_external_checkpoints(&path).unwrap();
    assert_eq!(checkpoints.len(), 1);
    // Re-signed by an attacker's own key: valid signature, wrong key.
    let mallory = Signer::load_or_create(&dir.path().join("mallory.key")).unwrap();
    checkpoints[0] = mallory.sign(checkpoints[0].seq, &checkpoints[0].hash, checkpoints[0].signed_at);
    fs::write(&path, format!("{}\n", serde_json::to_string(&checkpoints[0]).unwrap())).unwrap();
    let tamper = expect(dir.path(), 10, TamperKind::BadSignature).await;
    assert!(tamper.message.contains("external checkpoint"), "{tamper}");
}

#[tokio::test]
async fn export_writes_one_record_per_line() {
    let dir = tempfile::tempdir().unwrap();
    signed_chain(dir.path(), 7).await;
    let store = open(dir.path()).await;
    let records = store.audit_records(0, 100).await.unwrap();
    let mut out = Vec::new();
    assert_eq!(export_jsonl(records.clone(), &mut out).unwrap(), 7);
    let text = String::from_utf8(out).unwrap();
    let parsed: Vec<SealedRecord> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(parsed, records);
    assert!(text.ends_with('\n'));
}
