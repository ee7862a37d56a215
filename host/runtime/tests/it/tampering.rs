//! A writer of `tollgate.db` cannot make a call run (issue 12 §1). Each case edits the database
//! the way an attacker with write access to the file would, then resumes the run: the runtime
//! refuses with [`RuntimeError::Tampered`] (or a changed-workflow error), and the Meta stand-in
//! never sees the write.

use crate::common::{Harness, Recorder, only_approval, requests_to, start};
use serde_json::json;
use tollgate_runtime::{RuntimeError, approvals};
use tollgate_store::{ApprovalRecord, RunStatus};

pub(crate) const C1: &str = "120210000000000101";

/// One agent whose campaign changes wait for a person; echo is allowed.
pub(crate) const WORKFLOW: &str = r#"
name = "tampering-test"
version = "1.0.0"
entry = "ops"
goal = "Pause the campaign."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Operate the account."
tools = ["ads.update_campaign", "echo.*"]

[[policy.approvals]]
tool = "ads.update_campaign"
action = "require_approval"
reason = "A person approves every campaign change."

[[policy.approvals]]
tool = "echo.*"
action = "allow"
"#;

pub(crate) const TURNS: &str = r#"
[[turns]]
agent = "ops"
text = "Pause it."
[[turns.tool_calls]]
name = "ads__update_campaign"
input = { campaign_id = "120210000000000101", status = "PAUSED" }

[[turns]]
agent = "ops"
text = "Done."
"#;

/// A run waiting for approval of its pause call, and that approval.
pub(crate) async fn waiting_run(h: &Harness) -> (String, ApprovalRecord) {
    let runtime = h.runtime(WORKFLOW, TURNS).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::WaitingApproval);
    let approval = only_approval(&outcome);
    (id, approval)
}

/// Resumes `id` in a fresh runtime (as `tollgate runs resume` would) and returns its error.
async fn resume_refused(h: &Harness, id: &str) -> RuntimeError {
    let runtime = h.open().await;
    let refused = runtime.advance(id, &Recorder::default()).await.expect_err("a tampered run must not advance");
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty(), "the write went out: {refused}");
    assert!(h.audit_of(id, "tool.call").await.is_empty(), "a call ran: {refused}");
    refused
}

fn assert_tampered(refused: &RuntimeError, needle: &str) {
    assert!(
        matches!(refused, RuntimeError::Tampered { what, .. } if what.contains(needle)),
        "expected Tampered mentioning {needle:?}, got: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_row_set_to_approved_without_a_signed_grant_runs_nothing() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    h.tamper(&format!(
        "UPDATE approvals SET status = 'approved', decided_by = 'alice', decided_at = 1 WHERE id = '{}'",
        approval.id
    ))
    .await;
    let refused = resume_refused(&h, &id).await;
    assert_tampered(&refused, "the signed audit log says");
    assert!(refused.to_string().contains("is undecided"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_input_changed_after_the_decision_runs_nothing() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    // Approved as proposed; then the stored decision is given another input.
    h.open().await.approve(&approval.id, "alice", None).await.unwrap();
    h.tamper(&format!(
        r#"UPDATE approvals SET approved_input = '{{"campaign_id":"{C1}","status":"ACTIVE"}}' WHERE id = '{}'"#,
        approval.id
    ))
    .await;
    assert_tampered(&resume_refused(&h, &id).await, "the signed audit log says");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_given_a_new_input_and_a_recomputed_binding_runs_nothing() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    let active = json!({"campaign_id": C1, "status": "ACTIVE"});
    let binding = approvals::binding_hash(&approval.plugin_digest, &approval.tool, &active);
    h.tamper(&format!(
        "UPDATE approvals SET input = '{active}', binding_hash = '{binding}' WHERE id = '{}';
         UPDATE tool_calls SET input = '{active}' WHERE run_id = '{id}'",
        approval.id
    ))
    .await;
    // The person cannot approve what the edited row now displays: it is not what the signed
    // request asked for.
    let refused = h.open().await.approve(&approval.id, "alice", None).await.unwrap_err();
    assert_tampered(&refused, "differs from its signed request");
    // Nor does resuming run anything.
    resume_refused(&h, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_approved_row_for_the_same_call_runs_nothing() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    h.tamper(&format!(
        "INSERT INTO approvals SELECT 'zz-forged', run_id, step, call_index, agent, tool, input, plugin_digest,
                binding_hash, reason, 'approved', requested_at + 1, expires_at, 'alice', requested_at + 2, NULL, NULL, kind, authority, votes
         FROM approvals WHERE id = '{}'",
        approval.id
    ))
    .await;
    resume_refused(&h, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_re_pointed_from_another_run_runs_nothing() {
    let h = Harness::new().await;
    let (victim, _) = waiting_run(&h).await;
    let (other, granted) = waiting_run(&h).await;
    h.open().await.approve(&granted.id, "alice", None).await.unwrap();
    // The victim's own approval is removed and the other run's approved one moved over.
    h.tamper(&format!(
        "DELETE FROM approvals WHERE run_id = '{victim}';
         UPDATE approvals SET run_id = '{victim}' WHERE id = '{}'",
        granted.id
    ))
    .await;
    assert_tampered(&resume_refused(&h, &victim).await, "differs from its signed request");
    let _ = other;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_call_set_to_allowed_runs_nothing() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    h.tamper(&format!(
        "UPDATE tool_calls SET status = 'allowed' WHERE run_id = '{id}';
         UPDATE approvals SET status = 'consumed' WHERE id = '{}'",
        approval.id
    ))
    .await;
    resume_refused(&h, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inserted_allowed_call_for_a_tool_the_agent_lacks_runs_nothing() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    approvals::deny(&*h.store, &approval.id, "alice", "not today").await.unwrap();
    h.tamper(&format!(
        r#"INSERT INTO tool_calls SELECT run_id, step, 1, 'call_ops_0_1', agent, 'ads.create_campaign',
                '{{"name":"x","objective":"OUTCOME_SALES","daily_budget":100000}}', run_id || ':0:1', 'allowed',
                decision, NULL, NULL, updated_at
         FROM tool_calls WHERE run_id = '{id}'"#
    ))
    .await;
    assert_tampered(&resume_refused(&h, &id).await, "no signed decision allows call 0#1");
    assert!(requests_to(&h.standins.meta, "POST", "campaigns").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_re_pointed_to_a_permissive_workflow_is_refused() {
    let h = Harness::new().await;
    let (id, _) = waiting_run(&h).await;
    // A copy that allows every campaign change, and the run's columns pointed at it.
    let permissive = WORKFLOW.replace("action = \"require_approval\"", "action = \"allow\"");
    let runtime = h.runtime(&permissive, TURNS).await;
    let digest = runtime.workflow().digest.clone();
    h.tamper(&format!("UPDATE runs SET workflow_digest = '{digest}' WHERE id = '{id}'")).await;
    let refused = runtime.advance(&id, &Recorder::default()).await.unwrap_err();
    assert!(matches!(refused, RuntimeError::WorkflowChanged { .. }), "{refused:?}");
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_upstreams_were_re_pointed_is_refused() {
    let h = Harness::new().await;
    let (id, approval) = waiting_run(&h).await;
    h.open().await.approve(&approval.id, "alice", None).await.unwrap();
    // The Meta host sent to another server (here: the SendGrid stand-in, which would record
    // the bearer token), in the run's options and in the process resuming it.
    let capture = h.standins.sendgrid.base_url();
    h.tamper(&format!(
        "UPDATE runs SET options = json_set(options, '$.upstreams.\"graph.facebook.com\"', '{capture}') WHERE id = '{id}'"
    ))
    .await;
    let mut options = h.options();
    options.upstreams.insert("graph.facebook.com".into(), capture);
    let runtime = h.open_with(options).await;
    let refused = runtime.advance(&id, &Recorder::default()).await.unwrap_err();
    assert_tampered(&refused, "upstreams");
    assert!(h.standins.sendgrid.requests().is_empty(), "the token was sent to the capture server");
}
