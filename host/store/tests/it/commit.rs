//! `Store::commit` and `create_run` on a real SQLite file: everything or nothing, version
//! conflicts across handles, approval transitions, tool-call upserts, durability across reopen.

use crate::common::*;
use serde_json::json;
use tollgate_store::audit::verify_store;
use tollgate_store::{
    ApprovalFilter, ApprovalKind, ApprovalRecord, ApprovalStatus, ApprovalTransition, CapCharge, Checkpoint, Commit,
    Durability, MessageRecord, RunFilter, RunStatus, StepRecord, Store, StoreError, ToolCallStatus,
};

fn step(run_id: &str, step: u32) -> StepRecord {
    StepRecord {
        run_id: run_id.into(),
        step,
        agent: "writer".into(),
        turn: json!({ "text": "thinking" }),
        created_at: 2_000,
    }
}

fn spend(run_id: &str, amount: i64, limit: i64) -> CapCharge {
    CapCharge { scope: format!("spend:{run_id}"), run_id: run_id.into(), amount, at: 2_000, limit, window_ms: None }
}

fn transition(id: &str, from: ApprovalStatus, to: ApprovalStatus, by: Option<&str>) -> ApprovalTransition {
    ApprovalTransition {
        id: id.into(),
        from,
        to,
        decided_by: by.map(String::from),
        decided_at: by.map(|_| 5_000),
        note: None,
        approved_input: None,
    }
}

/// A full turn commit for step 1 of `run_id`, reading version `version`.
fn turn_commit(run_id: &str, version: i64) -> Commit {
    Commit {
        run: Some(update(run_id, version, RunStatus::WaitingApproval, 1)),
        steps: vec![step(run_id, 1)],
        tool_calls: vec![
            tool_call(run_id, 1, 0, ToolCallStatus::Allowed),
            tool_call(run_id, 1, 1, ToolCallStatus::WaitingApproval),
        ],
        new_approvals: vec![approval(&format!("ap_{run_id}"), run_id, 1, 90_000)],
        approval_transitions: vec![],
        approval_votes: vec![],
        fence: None,
        cap_charges: vec![spend(run_id, 10, 100)],
        audit: vec![
            event(run_id, "model.turn", 2_000, json!({ "calls": 2 })),
            event(run_id, "gate.decision", 2_001, json!({ "index": 0, "decision": "allowed" })),
        ],
        checkpoint: Checkpoint::Witnessed,
        durability: Durability::Immediate,
    }
}

#[tokio::test]
async fn a_commit_writes_every_part_and_bumps_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1_000), &[event("r1", "run.started", 1_000, json!({}))]).await.unwrap();
    assert_eq!(store.run("r1").await.unwrap().unwrap().version, 1);

    store.commit(turn_commit("r1", 1)).await.unwrap();
    let stored = store.run("r1").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.status), (2, RunStatus::WaitingApproval));
    assert_eq!(stored.checkpoint, json!({ "step": 1 }));
    assert_eq!(stored.counters.steps, 1);
    assert_eq!(store.steps("r1").await.unwrap(), vec![step("r1", 1)]);
    let calls = store.tool_calls("r1").await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1], tool_call("r1", 1, 1, ToolCallStatus::WaitingApproval));
    assert_eq!(store.approval("ap_r1").await.unwrap().unwrap(), approval("ap_r1", "r1", 1, 90_000));
    assert_eq!(store.cap_usage("spend:r1", 2_000, None).await.unwrap(), 10);
    let kinds: Vec<String> = store.audit_records(0, 100).await.unwrap().into_iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["run.started", "model.turn", "gate.decision"]);
    // The run's start is signed; Checkpoint::Witnessed: the head was signed, in the database
    // and beside the key.
    let checkpoints = store.audit_checkpoints().await.unwrap();
    assert_eq!(checkpoints.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 3]);
    let report = verify_store(&store, Some(&key_path(dir.path()))).await.unwrap();
    assert_eq!((report.records, report.head_seq, report.checkpoints_checked), (3, 3, 3));
}

#[tokio::test]
async fn conversation_messages_are_written_with_the_run_update_and_read_per_agent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1_000), &[]).await.unwrap();
    let message = |seq: u64, agent: &str| MessageRecord { seq, agent: agent.into(), message: json!({ "n": seq }) };
    let mut first = update("r1", 1, RunStatus::Running, 1);
    first.messages = vec![message(0, "analyst"), message(1, "analyst"), message(2, "writer")];
    store.commit(Commit { run: Some(first), ..Commit::default() }).await.unwrap();
    let mut second = update("r1", 2, RunStatus::Running, 2);
    second.messages = vec![message(3, "analyst")];
    // A deferred commit (not fsynced) is as atomic and as visible as any other, to every handle.
    store.commit(Commit { run: Some(second), durability: Durability::Deferred, ..Commit::default() }).await.unwrap();
    let other = open(dir.path()).await;
    assert_eq!(other.run("r1").await.unwrap().unwrap().version, 3);

    let texts = |v: Vec<serde_json::Value>| v.into_iter().map(|m| m["n"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(texts(store.messages("r1", "analyst", 0).await.unwrap()), [0, 1, 3]);
    // A conversation started anew reads from its first seq on.
    assert_eq!(texts(store.messages("r1", "analyst", 2).await.unwrap()), [3]);
    assert_eq!(texts(store.messages("r1", "writer", 0).await.unwrap()), [2]);
    assert!(store.messages("other", "analyst", 0).await.unwrap().is_empty());

    // A commit that loses the version race writes none of its messages.
    let mut stale = update("r1", 2, RunStatus::Running, 3);
    stale.messages = vec![message(4, "analyst")];
    let err = store.commit(Commit { run: Some(stale), ..Commit::default() }).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 2, found: 3, .. }), "{err:?}");
    assert_eq!(texts(store.messages("r1", "analyst", 0).await.unwrap()), [0, 1, 3]);
}

/// What a failed commit must leave behind: exactly what was there before.
async fn assert_untouched(store: &impl Store, run_id: &str, audit_before: usize) {
    let stored = store.run(run_id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.status), (1, RunStatus::Running));
    assert!(store.steps(run_id).await.unwrap().is_empty());
    assert!(store.tool_calls(run_id).await.unwrap().is_empty());
    assert!(store.approval(&format!("ap_{run_id}")).await.unwrap().is_none());
    assert_eq!(store.cap_usage(&format!("spend:{run_id}"), 2_000, None).await.unwrap(), 0);
    assert_eq!(store.audit_records(0, 1_000).await.unwrap().len(), audit_before);
}

#[tokio::test]
async fn a_failing_part_leaves_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1_000), &[event("r1", "run.started", 1_000, json!({}))]).await.unwrap();
    store.create_run(&run("other", 1_000), &[]).await.unwrap();
    let other_approval = approval("ap_other", "other", 1, 90_000);
    store.commit(Commit { new_approvals: vec![other_approval], ..Commit::default() }).await.unwrap();
    let before = audit_count(&store).await;

    // The cap charge fails after the run update passed its version check.
    let mut over_cap = turn_commit("r1", 1);
    over_cap.cap_charges = vec![spend("r1", 60, 100), spend("r1", 41, 100)];
    let err = store.commit(over_cap).await.unwrap_err();
    assert!(matches!(err, StoreError::CapExceeded { used: 60, amount: 41, limit: 100, .. }), "{err:?}");
    assert_untouched(&store, "r1", before).await;

    // An approval transition from the wrong status.
    let mut moved = turn_commit("r1", 1);
    moved.approval_transitions = vec![transition("ap_other", ApprovalStatus::Approved, ApprovalStatus::Consumed, None)];
    let err = store.commit(moved).await.unwrap_err();
    assert!(matches!(&err, StoreError::ApprovalMoved { found, .. } if found == "pending"), "{err:?}");
    assert_untouched(&store, "r1", before).await;
    assert_eq!(store.approval("ap_other").await.unwrap().unwrap().status, ApprovalStatus::Pending);

    // A stale version.
    let err = store.commit(turn_commit("r1", 7)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 7, found: 1, .. }), "{err:?}");
    assert_untouched(&store, "r1", before).await;

    // The last write of the transaction fails (a step that belongs to no run): still nothing.
    let mut orphan = turn_commit("r1", 1);
    orphan.steps.push(step("no_such_run", 1));
    assert!(matches!(store.commit(orphan).await.unwrap_err(), StoreError::Database(_)));
    assert_untouched(&store, "r1", before).await;

    // And the same commit, corrected, goes through afterwards.
    store.commit(turn_commit("r1", 1)).await.unwrap();
    assert_eq!(store.run("r1").await.unwrap().unwrap().version, 2);
    verify_store(&store, Some(&key_path(dir.path()))).await.unwrap();
}

/// A commit whose future is dropped after it sent `BEGIN IMMEDIATE` (a cancelled step) must write
/// nothing and must not keep the write lock: another handle, as another process would, commits
/// at once instead of waiting out the busy timeout (10 s).
#[tokio::test]
async fn a_cancelled_commit_writes_nothing_and_releases_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1_000), &[event("r1", "run.started", 1_000, json!({}))]).await.unwrap();
    store.create_run(&run("r2", 1_000), &[event("r2", "run.started", 1_000, json!({}))]).await.unwrap();
    let audit_before = audit_count(&store).await;

    // Someone else holds the write lock, so the commit's BEGIN waits in SQLite: one poll sends
    // it, then the commit is dropped.
    let mut holder = raw(dir.path()).await;
    sqlx::raw_sql("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
    let tasks = tokio::runtime::Handle::current().metrics();
    let tasks_before = tasks.num_alive_tasks();
    let cancelled = tokio::time::timeout(std::time::Duration::ZERO, store.commit(turn_commit("r1", 1))).await;
    assert!(cancelled.is_err(), "the commit cannot finish while another connection holds the lock");
    // The drop handed the connection to a task that sends ROLLBACK after the waiting BEGIN.
    let rollback_spawned = tasks.num_alive_tasks() > tasks_before;
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    // Let the waiting BEGIN take the lock (SQLite's busy handler retries at least every 100 ms)
    // before another handle competes for it. Signals, not a guess at the time: the rollback
    // task has finished (so BEGIN got the lock and gave it back), or the lock is seen held by
    // the cancelled commit's connection (the only other one).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if rollback_spawned && tasks.num_alive_tasks() <= tasks_before {
            break;
        }
        match sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut holder).await {
            Ok(_) => sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.map(drop).unwrap(),
            Err(e) if e.to_string().contains("locked") => break,
            Err(e) => panic!("probing the write lock: {e}"),
        }
        assert!(std::time::Instant::now() < deadline, "the cancelled commit's BEGIN never took the lock");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }

    let other = async { open(dir.path()).await.commit(turn_commit("r1", 1)).await };
    tokio::time::timeout(std::time::Duration::from_secs(5), other)
        .await
        .expect("the cancelled commit still holds the write lock")
        .expect("the cancelled commit wrote to r1");
    assert_eq!(audit_count(&store).await, audit_before + 2);
    // The cancelled handle's own connection works for its next commit.
    store.commit(turn_commit("r2", 1)).await.unwrap();
    assert_eq!(store.run("r2").await.unwrap().unwrap().version, 2);
    let report = verify_store(&store, Some(&key_path(dir.path()))).await.unwrap();
    assert_eq!(report.records as usize, audit_before + 4);
}

#[tokio::test]
async fn two_handles_on_one_file_cannot_both_advance_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await;
    let second = open(dir.path()).await;
    first.create_run(&run("r1", 1_000), &[]).await.unwrap();
    let read_by_second = second.run("r1").await.unwrap().unwrap();
    assert_eq!(read_by_second.version, 1);

    first.commit(Commit { run: Some(update("r1", 1, RunStatus::Running, 1)), ..Commit::default() }).await.unwrap();
    let err = second
        .commit(Commit {
            run: Some(update("r1", read_by_second.version, RunStatus::Running, 1)),
            audit: vec![event("r1", "model.turn", 5, json!({}))],
            ..Commit::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 1, found: 2, .. }), "{err:?}");
    assert_eq!(audit_count(&second).await, 0);

    // Racing: of many commits naming the same version, exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { first.clone() } else { second.clone() };
        tasks.push(tokio::spawn(async move {
            let commit = Commit {
                run: Some(update("r1", 2, RunStatus::Running, 2)),
                audit: vec![event("r1", "model.turn", i, json!({ "writer": i }))],
                ..Commit::default()
            };
            store.commit(commit).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict { found: 3, .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(first.run("r1").await.unwrap().unwrap().version, 3);
    let report = verify_store(&second, Some(&key_path(dir.path()))).await.unwrap();
    assert_eq!(report.records, 1);
}

/// An in-doubt approval (approve = run again, deny = mark done) reads back as one.
#[tokio::test]
async fn approval_kinds_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1_000), &[]).await.unwrap();
    let in_doubt = ApprovalRecord { kind: ApprovalKind::InDoubt, ..approval("ap_2", "r1", 1, 90_000) };
    let approvals = vec![approval("ap_1", "r1", 1, 90_000), in_doubt.clone()];
    store.commit(Commit { new_approvals: approvals, ..Commit::default() }).await.unwrap();
    assert_eq!(store.approval("ap_1").await.unwrap().unwrap().kind, ApprovalKind::Call);
    assert_eq!(store.approval("ap_2").await.unwrap().unwrap(), in_doubt);
}

#[tokio::test]
async fn approvals_are_single_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1_000), &[]).await.unwrap();
    store.commit(Commit { new_approvals: vec![approval("ap_1", "r1", 1, 90_000)], ..Commit::default() }).await.unwrap();

    let approve = || Commit {
        approval_transitions: vec![transition("ap_1", ApprovalStatus::Pending, ApprovalStatus::Approved, Some("ana"))],
        audit: vec![event("r1", "approval.granted", 5_000, json!({ "approval_id": "ap_1" }))],
        ..Commit::default()
    };
    store.commit(approve()).await.unwrap();
    let err = store.commit(approve()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::ApprovalMoved { id, expected, found } if id == "ap_1" && expected == "pending" && found == "approved"),
        "{err:?}"
    );

    let consume = || Commit {
        approval_transitions: vec![transition("ap_1", ApprovalStatus::Approved, ApprovalStatus::Consumed, None)],
        ..Commit::default()
    };
    store.commit(consume()).await.unwrap();
    assert!(matches!(store.commit(consume()).await.unwrap_err(), StoreError::ApprovalMoved { .. }));
    let stored = store.approval("ap_1").await.unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::Consumed);
    // Consuming does not erase who approved and when.
    assert_eq!((stored.decided_by.as_deref(), stored.decided_at), (Some("ana"), Some(5_000)));
    assert_eq!(audit_count(&store).await, 1);

    let unknown = Commit {
        approval_transitions: vec![transition("ap_nope", ApprovalStatus::Pending, ApprovalStatus::Approved, None)],
        ..Commit::default()
    };
    assert!(matches!(store.commit(unknown).await.unwrap_err(), StoreError::NotFound { what: "approval", .. }));
}

#[tokio::test]
async fn approval_edits_are_stored_and_filters_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    for id in ["r1", "r2"] {
        store.create_run(&run(id, 1_000), &[]).await.unwrap();
    }
    let mut later = approval("ap_2", "r2", 1, 90_000);
    later.requested_at = 2_000;
    store
        .commit(Commit { new_approvals: vec![later, approval("ap_1", "r1", 1, 90_000)], ..Commit::default() })
        .await
        .unwrap();
    let mut edit = transition("ap_2", ApprovalStatus::Pending, ApprovalStatus::Approved, Some("ana"));
    edit.approved_input = Some(json!({ "to": "bo@example.com" }));
    edit.note = Some("use Bo".into());
    store.commit(Commit { approval_transitions: vec![edit], ..Commit::default() }).await.unwrap();

    let all = store.approvals(&ApprovalFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["ap_1", "ap_2"]);
    assert_eq!(all[1].approved_input, Some(json!({ "to": "bo@example.com" })));
    assert_eq!(all[1].note.as_deref(), Some("use Bo"));
    let pending = store
        .approvals(&ApprovalFilter { status: Some(ApprovalStatus::Pending), run_id: None, ..ApprovalFilter::default() })
        .await
        .unwrap();
    assert_eq!(pending.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["ap_1"]);
    let of_r2 = store
        .approvals(&ApprovalFilter { status: None, run_id: Some("r2".into()), ..ApprovalFilter::default() })
        .await
        .unwrap();
    assert_eq!(of_r2.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["ap_2"]);
}

/// Pages of pending approvals in `(requested_at, id)` order: every approval once, ties on the
/// time broken by id, a cursor past the last one gives an empty page.
#[tokio::test]
async fn approvals_come_in_pages_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1_000), &[]).await.unwrap();
    let approvals: Vec<_> = (0..7)
        .map(|i| {
            let mut a = approval(&format!("ap_{i}"), "r1", i, 90_000);
            a.requested_at = 1_000 + i64::from(i / 2);
            a
        })
        .collect();
    store.commit(Commit { new_approvals: approvals, ..Commit::default() }).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .approvals(&ApprovalFilter {
                status: Some(ApprovalStatus::Pending),
                run_id: None,
                limit: Some(3),
                after: after.clone(),
            })
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some((last.requested_at, last.id.clone()));
        seen.extend(page.iter().map(|a| a.id.clone()));
    }
    assert_eq!(seen, (0..7).map(|i| format!("ap_{i}")).collect::<Vec<_>>());
    let of_run = ApprovalFilter { run_id: Some("r1".into()), limit: Some(2), ..ApprovalFilter::default() };
    assert_eq!(store.approvals(&of_run).await.unwrap().len(), 2);
}

#[tokio::test]
async fn expiry_escalates_the_run_and_leaves_the_rest_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    for id in ["due", "later", "done"] {
        store.create_run(&run(id, 1_000), &[]).await.unwrap();
    }
    let mut approved = approval("ap_approved", "done", 1, 1_500);
    approved.status = ApprovalStatus::Approved;
    let commit = Commit {
        new_approvals: vec![
            approval("ap_due_a", "due", 1, 1_500),
            approval("ap_due_b", "due", 1, 2_000),
            approval("ap_later", "later", 1, 2_001),
            approved,
        ],
        ..Commit::default()
    };
    store.commit(commit).await.unwrap();
    let before = audit_count(&store).await;

    let expired = store.expire_approvals(2_000, 256).await.unwrap();
    assert_eq!(expired.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["ap_due_a", "ap_due_b"]);
    assert!(expired.iter().all(|a| a.status == ApprovalStatus::Expired && a.decided_at == Some(2_000)));
    assert_eq!(store.approval("ap_due_b").await.unwrap().unwrap().status, ApprovalStatus::Expired);

    let due = store.run("due").await.unwrap().unwrap();
    assert_eq!((due.status, due.version, due.updated_at), (RunStatus::Escalated, 2, 2_000));
    assert!(due.status_detail.unwrap().contains("ap_due_a"));
    let later = store.run("later").await.unwrap().unwrap();
    assert_eq!((later.status, later.version), (RunStatus::Running, 1));
    assert_eq!(store.approval("ap_later").await.unwrap().unwrap().status, ApprovalStatus::Pending);
    assert_eq!(store.approval("ap_approved").await.unwrap().unwrap().status, ApprovalStatus::Approved);

    let records = store.audit_records(0, 100).await.unwrap();
    let added: Vec<(&str, &str)> =
        records[before..].iter().map(|r| (r.kind.as_str(), r.run_id.as_deref().unwrap_or(""))).collect();
    assert_eq!(added, [("approval.expired", "due"), ("approval.expired", "due"), ("run.escalated", "due")]);
    assert_eq!(records[before].body["approval_id"], "ap_due_a");
    // An escalation stops the run for a human: the head is signed.
    assert_eq!(store.audit_checkpoints().await.unwrap().last().unwrap().seq, records.len() as u64);

    // Nothing more is due: no change, no records.
    assert!(store.expire_approvals(2_000, 256).await.unwrap().is_empty());
    assert_eq!(audit_count(&store).await, records.len());
    // When the last one falls due, its run escalates too.
    assert_eq!(store.expire_approvals(2_001, 256).await.unwrap().len(), 1);
    assert_eq!(store.run("later").await.unwrap().unwrap().status, RunStatus::Escalated);
}

/// However many approvals fall due at once, one transaction takes at most `limit` of them,
/// earliest first; the next call takes the rest, and a run escalated by the first batch is not
/// escalated again.
#[tokio::test]
async fn expiry_takes_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("due", 1_000), &[]).await.unwrap();
    let new_approvals = (0..5).map(|i| approval(&format!("ap_{i}"), "due", 1, 1_500 + i)).collect();
    store.commit(Commit { new_approvals, ..Commit::default() }).await.unwrap();
    let before = audit_count(&store).await;
    let first = store.expire_approvals(2_000, 2).await.unwrap();
    assert_eq!(first.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["ap_0", "ap_1"]);
    assert_eq!(store.approval("ap_2").await.unwrap().unwrap().status, ApprovalStatus::Pending);
    assert_eq!(store.expire_approvals(2_000, 2).await.unwrap().len(), 2);
    assert_eq!(store.expire_approvals(2_000, 2).await.unwrap().len(), 1);
    assert!(store.expire_approvals(2_000, 2).await.unwrap().is_empty());
    let kinds: Vec<String> =
        store.audit_records(0, 100).await.unwrap()[before..].iter().map(|r| r.kind.clone()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "approval.expired").count(), 5);
    assert_eq!(kinds.iter().filter(|k| *k == "run.escalated").count(), 1, "{kinds:?}");
}

/// One idempotency key, one run: a second start with the key creates nothing and names the
/// first run, and says whether it asked for the same thing; keys of different callers are apart.
#[tokio::test]
async fn a_start_key_makes_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let key = |caller: &str, hash: &str| tollgate_store::StartKey {
        caller: caller.into(),
        key: "k-1".into(),
        request_hash: hash.into(),
    };
    assert_eq!(
        store.create_run_keyed(&run("r1", 1_000), &[], &key("ada", "h")).await.unwrap(),
        tollgate_store::Started::New
    );
    let again = store.create_run_keyed(&run("r2", 1_001), &[], &key("ada", "h")).await.unwrap();
    assert_eq!(again, tollgate_store::Started::Existing { run_id: "r1".into(), same_request: true });
    let other = store.create_run_keyed(&run("r3", 1_002), &[], &key("ada", "other")).await.unwrap();
    assert_eq!(other, tollgate_store::Started::Existing { run_id: "r1".into(), same_request: false });
    assert!(store.run("r2").await.unwrap().is_none() && store.run("r3").await.unwrap().is_none());
    assert_eq!(
        store.create_run_keyed(&run("r4", 1_003), &[], &key("bob", "h")).await.unwrap(),
        tollgate_store::Started::New
    );
}

/// A quorum is counted under the write lock: distinct approvers, one input, and the vote that
/// reaches it approves; nothing is counted twice or after the decision.
#[tokio::test]
async fn votes_reach_a_quorum_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1_000), &[]).await.unwrap();
    let mut two = approval("ap_q", "r1", 1, 90_000);
    two.authority.quorum = 2;
    store.commit(Commit { new_approvals: vec![two], ..Commit::default() }).await.unwrap();
    let vote = |by: &str, input: Option<serde_json::Value>| Commit {
        approval_votes: vec![tollgate_store::VoteCast {
            id: "ap_q".into(),
            by: by.into(),
            at: 2_000,
            approved_input: input,
            quorum: 2,
        }],
        ..Commit::default()
    };
    store.commit(vote("ada", Some(json!({"to": "x"})))).await.unwrap();
    let after_one = store.approval("ap_q").await.unwrap().unwrap();
    assert_eq!((after_one.status, after_one.votes.len()), (ApprovalStatus::Pending, 1));
    assert!(matches!(store.commit(vote("ada", Some(json!({"to": "x"})))).await, Err(StoreError::AlreadyVoted { .. })));
    assert!(matches!(store.commit(vote("bob", None)).await, Err(StoreError::VoteDiffers { .. })));
    store.commit(vote("bob", Some(json!({"to": "x"})))).await.unwrap();
    let done = store.approval("ap_q").await.unwrap().unwrap();
    assert_eq!(done.status, ApprovalStatus::Approved);
    assert_eq!(done.decided_by.as_deref(), Some("ada, bob"));
    assert_eq!(done.approved_input, Some(json!({"to": "x"})));
    assert!(matches!(store.commit(vote("cy", Some(json!({"to": "x"})))).await, Err(StoreError::ApprovalMoved { .. })));
}

#[tokio::test]
async fn tool_calls_upsert_by_run_step_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&run("r1", 1_000), &[]).await.unwrap();
    let turn = Commit {
        tool_calls: vec![
            tool_call("r1", 2, 0, ToolCallStatus::Allowed),
            tool_call("r1", 1, 1, ToolCallStatus::Denied),
            tool_call("r1", 1, 0, ToolCallStatus::Allowed),
        ],
        ..Commit::default()
    };
    store.commit(turn).await.unwrap();
    let mut done = tool_call("r1", 1, 0, ToolCallStatus::Done);
    done.result = Some(json!({ "ok": true }));
    done.report = Some(json!({ "fuel": 1234, "egress": [] }));
    done.updated_at = 9_000;
    store.commit(Commit { tool_calls: vec![done.clone()], ..Commit::default() }).await.unwrap();

    let calls = store.tool_calls("r1").await.unwrap();
    let keys: Vec<(u32, u32)> = calls.iter().map(|c| (c.step, c.index)).collect();
    assert_eq!(keys, [(1, 0), (1, 1), (2, 0)]);
    assert_eq!(calls[0], done);
    assert_eq!(calls[1].status, ToolCallStatus::Denied);
}

#[tokio::test]
async fn runs_list_newest_first_with_filter_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    for (id, created) in [("a", 1_000), ("c", 3_000), ("b", 2_000), ("b2", 2_000)] {
        store.create_run(&run(id, created), &[]).await.unwrap();
    }
    store.commit(Commit { run: Some(update("c", 1, RunStatus::Completed, 1)), ..Commit::default() }).await.unwrap();

    let ids = |runs: Vec<tollgate_store::RunSummary>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    // Same created_at: the one inserted later first.
    assert_eq!(ids(store.runs(&RunFilter::default()).await.unwrap()), ["c", "b2", "b", "a"]);
    assert_eq!(
        ids(store.runs(&RunFilter { status: None, limit: Some(2), ..RunFilter::default() }).await.unwrap()),
        ["c", "b2"]
    );
    let running = RunFilter { status: Some(RunStatus::Running), limit: None, ..RunFilter::default() };
    assert_eq!(ids(store.runs(&running).await.unwrap()), ["b2", "b", "a"]);
    let completed = store
        .runs(&RunFilter { status: Some(RunStatus::Completed), limit: Some(5), ..RunFilter::default() })
        .await
        .unwrap();
    assert_eq!(completed.len(), 1);
    assert_eq!((completed[0].status, completed[0].counters.steps), (RunStatus::Completed, 1));
    // Pages with a cursor, ties on `created_at` included: every run once, in list order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.runs(&RunFilter { status: None, limit: Some(1), after: after.clone() }).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id.clone()));
        seen.push(last.id.clone());
    }
    assert_eq!(seen, ["c", "b2", "b", "a"]);
    assert!(store.run("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn create_run_is_atomic_and_starts_at_version_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let started = [event("r1", "run.started", 1_000, json!({ "goal": "g" }))];
    store.create_run(&run("r1", 1_000), &started).await.unwrap();
    let stored = store.run("r1").await.unwrap().unwrap();
    let mut expected = run("r1", 1_000);
    expected.version = 1;
    assert_eq!(stored, expected);
    // A duplicate id fails, and its audit records are not written.
    assert!(store.create_run(&run("r1", 5_000), &started).await.is_err());
    assert_eq!(audit_count(&store).await, 1);
}

#[tokio::test]
async fn everything_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path()).await;
        store.create_run(&run("r1", 1_000), &[event("r1", "run.started", 1_000, json!({}))]).await.unwrap();
        store.commit(turn_commit("r1", 1)).await.unwrap();
        store.kv_set("plugin", "k", b"v").await.unwrap();
        store.close().await;
    }
    let store = open(dir.path()).await;
    assert_eq!(store.run("r1").await.unwrap().unwrap().version, 2);
    assert_eq!(store.steps("r1").await.unwrap().len(), 1);
    assert_eq!(store.tool_calls("r1").await.unwrap().len(), 2);
    assert!(store.approval("ap_r1").await.unwrap().is_some());
    assert_eq!(store.cap_usage("spend:r1", 2_000, None).await.unwrap(), 10);
    assert_eq!(store.kv_get("plugin", "k").await.unwrap().as_deref(), Some(&b"v"[..]));
    // The chain continues where it stopped.
    store
        .commit(Commit { audit: vec![event("r1", "run.ended", 9_000, json!({}))], ..Commit::default() })
        .await
        .unwrap();
    let records = store.audit_records(0, 100).await.unwrap();
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(records[3].prev_hash, records[2].hash);
    let report = verify_store(&store, Some(&key_path(dir.path()))).await.unwrap();
    assert_eq!(report.head_seq, 4);
    // Dropped without closing: the same.
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(audit_count(&store).await, 4);
}

#[tokio::test]
async fn a_database_from_before_waiting_approval_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path()).await;
        store.create_run(&run("r1", 1_000), &[event("r1", "run.started", 1_000, json!({}))]).await.unwrap();
        store.commit(turn_commit("r1", 1)).await.unwrap();
        store.close().await;
    }
    // Back to schema version 2: the call waits under its old name, and migration 3 never ran.
    let mut conn = raw(dir.path()).await;
    sqlx::query("UPDATE tool_calls SET status = 'parked' WHERE status = 'waiting_approval'")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DROP INDEX audit_by_kind").execute(&mut conn).await.unwrap();
    sqlx::query("DROP TABLE run_leases").execute(&mut conn).await.unwrap();
    sqlx::query("ALTER TABLE approvals DROP COLUMN votes").execute(&mut conn).await.unwrap();
    sqlx::query("ALTER TABLE approvals DROP COLUMN authority").execute(&mut conn).await.unwrap();
    sqlx::query("DROP TABLE run_starts").execute(&mut conn).await.unwrap();
    sqlx::query("DROP TABLE workflow_deployments").execute(&mut conn).await.unwrap();
    sqlx::query("DROP TABLE api_tokens").execute(&mut conn).await.unwrap();
    sqlx::query("DROP INDEX approvals_by_status_requested").execute(&mut conn).await.unwrap();
    sqlx::query("DROP INDEX audit_by_run_step").execute(&mut conn).await.unwrap();
    sqlx::query("ALTER TABLE approvals DROP COLUMN kind").execute(&mut conn).await.unwrap();
    sqlx::query("PRAGMA user_version = 2").execute(&mut conn).await.unwrap();
    drop(conn);
    let store = open(dir.path()).await;
    let statuses: Vec<ToolCallStatus> = store.tool_calls("r1").await.unwrap().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [ToolCallStatus::Allowed, ToolCallStatus::WaitingApproval]);
    // Approvals from before in-doubt calls existed all decide whether a call may run.
    assert_eq!(store.approval("ap_r1").await.unwrap().unwrap().kind, ApprovalKind::Call);
}
