//! Durability against `kill -9`: a child process commits in a loop and is killed mid-stream;
//! every commit it reported as returned is there afterwards and the chain still verifies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;
use tollgate_store::audit::verify_store;
use tollgate_store::{Checkpoint, Commit, RunStatus, Store};

const DIR_ENV: &str = "TOLLGATE_STORE_CRASH_DIR";

/// Run only as the child of `commits_survive_kill_9`.
#[tokio::test]
#[ignore = "child process of commits_survive_kill_9"]
async fn crash_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else { return };
    let dir = std::path::PathBuf::from(dir);
    let store = open(&dir).await;
    store.create_run(&run("r1", 1_000), &[event("r1", "run.started", 1_000, json!({}))]).await.unwrap();
    println!("committed 1");
    for version in 1.. {
        let commit = Commit {
            run: Some(update("r1", version, RunStatus::Running, version as u64)),
            audit: vec![event("r1", "model.turn", 1_000 + version, json!({ "version": version }))],
            checkpoint: if version % 5 == 0 { Checkpoint::Witnessed } else { Checkpoint::Regular },
            ..Commit::default()
        };
        store.commit(commit).await.unwrap();
        // Printed only after commit returned: the parent counts on these being durable.
        println!("committed {}", version + 1);
    }
}

#[tokio::test]
async fn commits_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash::crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reported = 0u64;
    while reported < 30 {
        assert!(Instant::now() < deadline, "child too slow");
        let line = lines.next().expect("child exited early").unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            reported = n.parse().unwrap();
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let store = open(dir.path()).await;
    let run = store.run("r1").await.unwrap().unwrap();
    // Version v means v - 1 commits after create_run; at least the reported ones are there.
    assert!(run.version as u64 >= reported, "version {} < reported {reported}", run.version);
    let report = verify_store(&store, Some(&key_path(dir.path()))).await.unwrap();
    assert_eq!(report.records, run.version as u64, "one audit record per commit, none half-written");
    assert!(report.newest_checkpoint_seq.is_some());
}
