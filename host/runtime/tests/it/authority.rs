//! Approval authority (issue 15 §4): a rule's `approvers`, `quorum` and `self_approval` decide
//! who may decide its approvals. Only named approvers decide; a quorum needs that many distinct
//! approvers of one input, and the call runs only then; whoever started the run may not decide
//! its calls unless the rule allows it; the local operator is not bound by `approvers`.

use crate::common::{Harness, Recorder, only_approval};
use tollgate_runtime::approvals::{self, Decider};
use tollgate_runtime::{RuntimeError, Start};
use tollgate_store::{ApprovalStatus, RunStatus, Store};

fn workflow(authority: &str) -> String {
    format!(
        r#"
name = "authority-test"
version = "1.0.0"
entry = "ops"
goal = "Echo once approved."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Echo."
tools = ["echo.*"]

[[policy.approvals]]
tool = "echo.*"
action = "require_approval"
{authority}
"#
    )
}

const TURNS: &str = r#"
[[turns]]
agent = "ops"
text = "Echo it."
[[turns.tool_calls]]
name = "echo__echo"
input = { note = "hi" }

[[turns]]
agent = "ops"
text = "Done."
"#;

fn as_role(name: &str, role: &str) -> Decider {
    Decider { name: name.into(), role: Some(role.into()) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_of_named_approvers_lets_the_call_run_and_nobody_else_decides() {
    let h = Harness::new().await;
    let wf = workflow(
        r#"approvers = ["role:approver", "user:fin"]
quorum = 2"#,
    );
    let runtime = h.runtime(&wf, TURNS).await;
    let started = runtime.start_with(Start { by: Some("olga".into()), ..Start::default() }).await.unwrap();
    let id = started.run_id;
    let approval = only_approval(&runtime.advance(&id, &Recorder::default()).await.unwrap());
    assert_eq!(approval.authority.quorum, 2);

    // Not an approver: an auditor, by role; refused before anything is recorded.
    let refused = runtime.approve(&approval.id, as_role("aud", "auditor"), None).await.unwrap_err();
    assert!(matches!(refused, RuntimeError::NotPermitted(_)), "{refused}");
    let refused = approvals::deny(&**runtime.store(), &approval.id, as_role("aud", "auditor"), "no").await.unwrap_err();
    assert!(matches!(refused, RuntimeError::NotPermitted(_)), "{refused}");

    // One of two: still pending, and advancing does not run the call.
    let one = runtime.approve(&approval.id, as_role("ada", "approver"), None).await.unwrap();
    assert_eq!((one.status, one.votes.len()), (ApprovalStatus::Pending, 1));
    assert_eq!(runtime.advance(&id, &Recorder::default()).await.unwrap().status, RunStatus::WaitingApproval);
    // The same approver twice is still one.
    let again = runtime.approve(&approval.id, as_role("ada", "approver"), None).await.unwrap_err();
    assert!(matches!(again, RuntimeError::State(_)), "{again}");
    // A second approver must approve the same input.
    let edited = runtime.approve(&approval.id, as_role("fin", "viewer"), Some(serde_json::json!({"note": "x"}))).await;
    assert!(matches!(edited, Err(RuntimeError::State(_))), "{edited:?}");
    // `user:fin` is named, whatever its role.
    let two = runtime.approve(&approval.id, as_role("fin", "viewer"), None).await.unwrap();
    assert_eq!((two.status, two.decided_by.as_deref()), (ApprovalStatus::Approved, Some("ada, fin")));
    assert_eq!(runtime.advance(&id, &Recorder::default()).await.unwrap().status, RunStatus::Completed);
    let grants = h.audit_of(&id, "approval.granted").await;
    assert_eq!(grants.len(), 2, "each approval of the quorum is audited");
    assert_eq!(h.audit_of(&id, "tool.call").await.len(), 1, "the call ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoever_started_the_run_may_not_decide_its_calls_unless_the_rule_says_so() {
    let h = Harness::new().await;
    let runtime = h.runtime(&workflow(""), TURNS).await;
    let started = runtime.start_with(Start { by: Some("olga".into()), ..Start::default() }).await.unwrap();
    let approval = only_approval(&runtime.advance(&started.run_id, &Recorder::default()).await.unwrap());
    let refused = runtime.approve(&approval.id, as_role("olga", "approver"), None).await.unwrap_err();
    assert!(refused.to_string().contains("started run"), "{refused}");
    let refused = approvals::deny(&**runtime.store(), &approval.id, as_role("olga", "approver"), "no").await;
    assert!(matches!(refused, Err(RuntimeError::NotPermitted(_))));
    assert_eq!(h.store.approval(&approval.id).await.unwrap().unwrap().status, ApprovalStatus::Pending);
    runtime.approve(&approval.id, as_role("ada", "approver"), None).await.unwrap();

    let h = Harness::new().await;
    let runtime = h.runtime(&workflow("self_approval = true"), TURNS).await;
    let started = runtime.start_with(Start { by: Some("olga".into()), ..Start::default() }).await.unwrap();
    let approval = only_approval(&runtime.advance(&started.run_id, &Recorder::default()).await.unwrap());
    runtime.approve(&approval.id, as_role("olga", "approver"), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_row_short_of_its_quorum_runs_nothing() {
    let h = Harness::new().await;
    let runtime = h.runtime(&workflow("quorum = 2"), TURNS).await;
    let id = runtime.start(None).await.unwrap();
    let approval = only_approval(&runtime.advance(&id, &Recorder::default()).await.unwrap());
    runtime.approve(&approval.id, "ada", None).await.unwrap();
    // Someone who can write the database file marks it approved after one of two approvals.
    h.tamper(&format!("UPDATE approvals SET status = 'approved', decided_by = 'ada' WHERE id = '{}'", approval.id))
        .await;
    let refused = h.open().await.advance(&id, &Recorder::default()).await.unwrap_err();
    assert!(matches!(refused, RuntimeError::Tampered { .. }), "{refused}");
    assert!(h.audit_of(&id, "tool.call").await.is_empty());
    // And lowering the quorum in the row is caught before a decision is recorded.
    h.tamper(&format!(
        "UPDATE approvals SET status = 'pending', authority = '{{\"approvers\":[],\"quorum\":1,\"self_approval\":false}}' WHERE id = '{}'",
        approval.id
    ))
    .await;
    let refused = h.open().await.approve(&approval.id, "bob", None).await.unwrap_err();
    assert!(matches!(refused, RuntimeError::Tampered { .. }), "{refused}");
}
