//! A call with an effect is claimed before it runs (issue 12 §5): a second process advancing
//! the same run finds it in flight and runs nothing; a claim whose process is gone is taken
//! over, and the call runs once more with the same idempotency key.

use std::sync::{Arc, Mutex};

use crate::common::racing::RacingStore;
use crate::common::{Harness, Recorder, requests_to};
use crate::tampering::{C1, waiting_run};
use tollgate_runtime::RuntimeError;
use tollgate_store::audit::{AuditEntry, ToolClaimed};
use tollgate_store::{Checkpoint, Commit, RunStatus, Store, ToolCallStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_finds_the_call_in_flight_and_runs_nothing() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    h.open().await.approve(&approval.id, "alice", None).await.unwrap();

    // The rival advances the run right after the first process claimed the call.
    let rival = h.open().await;
    let seen: Arc<Mutex<Option<Result<RunStatus, RuntimeError>>>> = Arc::default();
    let (slot, run_id) = (seen.clone(), id.clone());
    let racing = Arc::new(RacingStore::claim_rival(
        h.store.clone(),
        Box::new(move || {
            Box::pin(async move {
                let outcome = rival.advance(&run_id, &Recorder::default()).await;
                *slot.lock().unwrap() = Some(outcome.map(|o| o.status));
            })
        }),
    ));
    let first = h.open_on(racing).await;
    let outcome = first.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");

    let rival_saw = seen.lock().unwrap().take().expect("the rival ran");
    match rival_saw {
        Err(RuntimeError::InFlight { call, by, .. }) => {
            assert_eq!(call, "0#0 (ads.update_campaign)");
            assert!(by.ends_with(&format!(":{}", std::process::id())), "{by}");
        }
        other => panic!("expected InFlight, got {other:?}"),
    }
    assert_eq!(requests_to(&h.standins.meta, "POST", C1).len(), 1, "the call ran once");
    assert_eq!(h.audit_of(&id, "tool.claimed").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_process_is_gone_is_taken_over_with_the_same_key() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    h.open().await.approve(&approval.id, "alice", None).await.unwrap();

    // The first process is killed right after its claim commits, before the call starts.
    h.advance_killed_after_claim(&id).await;
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty());
    let row = h.rows(&id).await.remove(0);
    assert_eq!(row.status, ToolCallStatus::InFlight);

    // Its claim names this process, which is alive: the call is in flight until the lease
    // ends. A claim by a process of this host that no longer exists (pids never reach 2^22 + 1
    // on Linux) is what a kill leaves; the store's own key signs it, as the process would have.
    let refused = h.open().await.advance(&id, &Recorder::default()).await.unwrap_err();
    assert!(matches!(refused, RuntimeError::InFlight { .. }), "{refused:?}");
    let claimed = h.audit_of(&id, "tool.claimed").await.remove(0);
    let host = claimed["by"].as_str().unwrap().rsplit_once(':').unwrap().0.to_string();
    let gone = ToolClaimed {
        step: 0,
        index: 0,
        tool: row.tool.clone(),
        idempotency_key: row.idempotency_key.clone(),
        by: format!("{host}:4194305"),
        lease_until: tollgate_runtime::now_ms() + 3_600_000,
    };
    let commit = Commit {
        audit: vec![AuditEntry::of_run(&id, tollgate_runtime::now_ms(), gone)],
        checkpoint: Checkpoint::Signed,
        ..Commit::default()
    };
    h.store.commit(commit).await.unwrap();

    let outcome = h.open().await.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let posts = requests_to(&h.standins.meta, "POST", C1);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].idempotency_key.as_deref(), Some(format!("{id}:0:0").as_str()));
    assert_eq!(h.audit_of(&id, "tool.claimed").await.len(), 3, "two claims, then the takeover's");
    assert_eq!(h.audit_of(&id, "tool.call").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_while_its_call_is_in_flight_still_records_what_the_call_did() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    h.open().await.approve(&approval.id, "alice", None).await.unwrap();

    // Someone cancels the run right after the call was claimed, while it is about to run.
    let store = h.dyn_store();
    let reported: Arc<Mutex<Vec<String>>> = Arc::default();
    let (slot, run_id) = (reported.clone(), id.clone());
    let racing = Arc::new(RacingStore::claim_rival(
        h.store.clone(),
        Box::new(move || {
            Box::pin(async move {
                let in_flight = tollgate_runtime::approvals::cancel(&*store, &run_id, "bob", "stop").await.unwrap();
                *slot.lock().unwrap() = in_flight;
            })
        }),
    ));
    let first = h.open_on(racing).await;
    let refused = first.advance(&id, &Recorder::default()).await.unwrap_err();
    assert!(refused.to_string().contains("what they did is recorded"), "{refused}");

    assert_eq!(*reported.lock().unwrap(), ["0#0 (ads.update_campaign)"], "cancel said what was in flight");
    assert_eq!(h.run(&id).await.status, RunStatus::Cancelled);
    // The call went out, and the store and the audit log say so.
    assert_eq!(requests_to(&h.standins.meta, "POST", C1).len(), 1);
    let row = h.rows(&id).await.remove(0);
    assert_eq!(row.status, ToolCallStatus::Done);
    assert!(row.result.is_some());
    assert_eq!(h.audit_of(&id, "tool.call").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_paused_while_its_call_is_in_flight_records_the_call_and_resumes_without_running_it_again() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    h.open().await.approve(&approval.id, "alice", None).await.unwrap();

    // Someone pauses the run right after the call was claimed, while it is about to run.
    let store = h.dyn_store();
    let run_id = id.clone();
    let racing = Arc::new(RacingStore::claim_rival(
        h.store.clone(),
        Box::new(move || {
            Box::pin(async move {
                tollgate_runtime::control::pause(&*store, &run_id, "bob", "hold on").await.unwrap();
            })
        }),
    ));
    let first = h.open_on(racing).await;
    first.advance(&id, &Recorder::default()).await.unwrap_err();
    assert_eq!(h.run(&id).await.status, RunStatus::Paused);
    assert_eq!(requests_to(&h.standins.meta, "POST", C1).len(), 1, "the call went out once");
    assert_eq!(h.rows(&id).await.remove(0).status, ToolCallStatus::Done, "and what it did is recorded");

    // While paused, advancing leaves it where it is.
    let outcome = h.open().await.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Paused);
    let refused = tollgate_runtime::control::unpause(&*h.dyn_store(), &id, "bob\n").await.unwrap_err();
    assert!(matches!(refused, RuntimeError::InvalidInput(_)), "{refused}");

    tollgate_runtime::control::unpause(&*h.dyn_store(), &id, "bob").await.unwrap();
    let outcome = h.open().await.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.detail);
    assert_eq!(requests_to(&h.standins.meta, "POST", C1).len(), 1, "resuming did not run the call again");
    assert_eq!(h.audit_of(&id, "tool.call").await.len(), 1);
    assert_eq!(h.audit_of(&id, "run.paused").await.len(), 1);
    assert_eq!(h.audit_of(&id, "run.resumed").await.len(), 1);
}
