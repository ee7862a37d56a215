//! What `check_anchor` costs as checkpoints accumulate: every acting CLI command runs it once.
//!
//! Run: `cargo bench -p tollgate-store --bench anchor` (optionally `-- CHECKPOINTS REPS`,
//! default 10,000 and 200). Prints numbers; asserts only that both checks pass on the intact
//! store, never anything about speed. See BENCHMARKS.md.
//!
//! One `SqliteStore` (WAL, audit signer) in a temp dir with `CHECKPOINTS` signed checkpoints
//! (one record and one signed checkpoint per commit; the last one witnessed). Each rep times, in
//! turn, the check as it was before it read only the newest checkpoint row ("before": every
//! row read and decoded, then the same witness and chain checks, reproduced here from the
//! library's earlier code) and `check_anchor` as it is ("after").

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use tollgate_store::audit::{self, AuditCheckpoint, AuditEntry, check_anchor};
use tollgate_store::{Checkpoint, Commit, Durability, Signer, SqliteStore, Store};

fn entry(i: u32) -> AuditEntry {
    let event = audit::StepStarted { step: i, step_id: format!("s{i}"), agent: "agent".into() };
    AuditEntry { ts: 1_000 + i64::from(i), run_id: None, event: event.into() }
}

/// The check before this change, step for step: all checkpoint rows read, the newest's key
/// compared, then the witness's newest line checked against the chain.
async fn check_anchor_before(store: &dyn Store, signer: &Signer) {
    let in_db = store.audit_checkpoints().await.unwrap();
    let newest = in_db.last().expect("signed checkpoints");
    assert_eq!(newest.public_key, signer.public_key_hex());
    let mut file = File::open(signer.checkpoints_path()).unwrap();
    let len = file.metadata().unwrap().len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024))).unwrap();
    let mut tail = Vec::new();
    file.take(64 * 1024).read_to_end(&mut tail).unwrap();
    let text = String::from_utf8_lossy(&tail);
    let complete = &text[..text.rfind('\n').unwrap()];
    let line = complete.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    let checkpoint: AuditCheckpoint = serde_json::from_str(line).unwrap();
    checkpoint.check_signature(Some(&signer.verifying_key())).unwrap();
    let held = store.audit_records(checkpoint.seq, 1).await.unwrap();
    assert_eq!(held[0].hash, checkpoint.hash);
}

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!("{name:<8} median {:>8.3} ms   p10 {:>8.3}   p90 {:>8.3}", at(0.5), at(0.1), at(0.9));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let checkpoints: u32 = args.first().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let reps: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(200);

    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::load_or_create(&dir.path().join("audit.key")).unwrap();
    let store = SqliteStore::open(&dir.path().join("tollgate.db"), Some(signer)).await.unwrap();
    let started = Instant::now();
    for i in 1..=checkpoints {
        let last = i == checkpoints;
        let commit = Commit {
            audit: vec![entry(i)],
            checkpoint: if last { Checkpoint::Witnessed } else { Checkpoint::Signed },
            durability: if last { Durability::Immediate } else { Durability::Deferred },
            ..Commit::default()
        };
        store.commit(commit).await.unwrap();
    }
    let in_db = store.audit_checkpoints().await.unwrap().len();
    println!("{in_db} checkpoints written in {:.1?}; {reps} reps, before and after in turn", started.elapsed());

    let signer = Signer::load(&dir.path().join("audit.key")).unwrap();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        check_anchor_before(&store, &signer).await;
        before.push(t.elapsed());
        let t = Instant::now();
        check_anchor(&store, &signer).await.expect("the intact store passes");
        after.push(t.elapsed());
    }
    summary("before", before);
    summary("after", after);
    store.close().await;
}
