//! The server expires approvals on time (issue 15 §5): a pending approval past its expiry is
//! expired and its run escalated by the server's own timer, with no request and no command.

use std::sync::Arc;
use std::time::Duration;

use tollgate_sandbox::{Sandbox, SandboxConfig};
use tollgate_server::{Parts, ServerConfig};
use tollgate_store::audit::Signer;
use tollgate_store::{ApprovalStatus, Commit, RunStatus, SqliteStore, Store};

#[path = "../../../tests/support/parked_runs.rs"]
mod parked_runs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_past_its_expiry_is_expired_by_the_server_and_its_run_escalated() {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::load_or_create(&dir.path().join("key")).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("t.db"), Some(signer)).await.unwrap());
    let now = tollgate_runtime::now_ms();
    let run = parked_runs::waiting_run("run_expiry", now);
    store.create_run(&run, &[]).await.unwrap();
    let approval =
        |id: &str, step: u32, expires_at: i64| parked_runs::pending_approval(id, &run.id, step, now - 10, expires_at);
    let (past, future) = (approval("ap_expired1", 1, now - 1), approval("ap_pending2", 2, now + 3_600_000));
    store.commit(Commit { new_approvals: vec![past, future], ..Commit::default() }).await.unwrap();

    let config = ServerConfig::parse(
        "listen = \"127.0.0.1:0\"\n[worker]\nexpire_every = \"100ms\"\n",
        std::path::Path::new("server.toml"),
    )
    .unwrap();
    let limits = config.limits(std::path::Path::new("server.toml"), "").unwrap();
    let bound = tollgate_server::bind(&config).await.unwrap();
    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let deploys = tollgate_server::Deploys {
        data_dir: dir.path().to_path_buf(),
        workflows_dir: None,
        options: Default::default(),
    };
    let parts = Parts { store: store.clone(), sandbox, deploys };
    let server = tokio::spawn(tollgate_server::serve(bound, limits, parts, async {
        let _ = stopped.await;
    }));

    let mut status = ApprovalStatus::Pending;
    for _ in 0..100 {
        status = store.approval("ap_expired1").await.unwrap().unwrap().status;
        if status == ApprovalStatus::Expired {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, ApprovalStatus::Expired, "expired by the server's timer within 5 s");
    assert_eq!(store.approval("ap_pending2").await.unwrap().unwrap().status, ApprovalStatus::Pending);
    assert_eq!(store.run("run_expiry").await.unwrap().unwrap().status, RunStatus::Escalated);
    let kinds: Vec<String> = store.audit_records(0, 10).await.unwrap().into_iter().map(|r| r.kind).collect();
    assert!(
        kinds.contains(&"approval.expired".to_string()) && kinds.contains(&"run.escalated".to_string()),
        "{kinds:?}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server).await.unwrap().unwrap().unwrap();
}
