//! Exactly-once is only as good as the vendor (issue 12 §6). A call whose process stopped while
//! running it may have happened. A tool its plugin declares idempotent runs again with the same
//! key (the vendor recognises the repeat); any other — an email: SendGrid does not deduplicate —
//! is put before a person as "in doubt": approving runs it again exactly as it was, denying (or
//! letting the approval expire) marks it done without running it, audited, and the model is told
//! the outcome is unknown.

use crate::common::{Harness, Recorder, only_approval, requests_to, result_of};
use crate::tampering::C1;
use serde_json::json;
use tollgate_runtime::{RuntimeError, now_ms};
use tollgate_store::audit::{AuditEntry, ToolClaimed};
use tollgate_store::{ApprovalKind, ApprovalStatus, Checkpoint, Commit, RunStatus, Store, ToolCallStatus};

/// One agent, allowed to email and to change campaigns without asking.
const WORKFLOW: &str = r#"
name = "in-doubt-test"
version = "1.0.0"
entry = "ops"
goal = "Pause the campaign and tell the team."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Operate the account."
tools = ["ads.update_campaign", "email.send_email"]

[[policy.approvals]]
tool = "*"
action = "allow"
"#;

/// The email (not idempotent) and the pause (idempotent), in one turn.
const TURNS: &str = r#"
[[turns]]
agent = "ops"
text = "Pause it and tell them."
[[turns.tool_calls]]
name = "email__send_email"
[turns.tool_calls.input]
from = { email = "reviews@tollgate-demo.example", name = "Campaign review" }
to = [{ email = "paid-social@tollgate-demo.example" }]
subject = "Campaign paused"
text = "Paused for review."
[[turns.tool_calls]]
name = "ads__update_campaign"
input = { campaign_id = "120210000000000101", status = "PAUSED" }

[[turns]]
agent = "ops"
text = "Done."
"#;

const MAIL: &str = "/v3/mail/send";

/// Starts the run and stops its process right after both calls were claimed, before either
/// started; then makes the claims look as a kill leaves them: by a process of this host that
/// no longer exists (pids never reach 2^22 + 1 on Linux), signed by the store's key as the
/// process would have. Returns the run id.
async fn abandoned_run(h: &Harness) -> String {
    let runtime = h.runtime(WORKFLOW, TURNS).await;
    let id = runtime.start(None).await.unwrap();
    h.advance_killed_after_claim(&id).await;
    let rows = h.rows(&id).await;
    assert_eq!(rows.iter().map(|r| r.status).collect::<Vec<_>>(), [ToolCallStatus::InFlight; 2]);

    let claimed = h.audit_of(&id, "tool.claimed").await;
    let host = claimed[0]["by"].as_str().unwrap().rsplit_once(':').unwrap().0.to_string();
    let audit = rows
        .iter()
        .map(|row| {
            let gone = ToolClaimed {
                step: row.step,
                index: row.index,
                tool: row.tool.clone(),
                idempotency_key: row.idempotency_key.clone(),
                by: format!("{host}:4194305"),
                lease_until: now_ms() + 3_600_000,
            };
            AuditEntry::of_run(&id, now_ms(), gone)
        })
        .collect();
    h.store.commit(Commit { audit, checkpoint: Checkpoint::Signed, ..Commit::default() }).await.unwrap();
    id
}

/// Resumes the abandoned run: the pause runs again (idempotent), the email waits for a person.
async fn resumed_to_the_question(h: &Harness, id: &str) -> tollgate_store::ApprovalRecord {
    let outcome = h.open().await.advance(id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::WaitingApproval, "{outcome:?}");
    let question = only_approval(&outcome);
    assert_eq!(question.kind, ApprovalKind::InDoubt);
    assert_eq!(question.tool, "email.send_email");
    assert!(question.reason.starts_with("in doubt: `email.send_email` was running in process "), "{}", question.reason);
    assert!(question.reason.contains(":4194305 when it stopped"), "{}", question.reason);
    assert_eq!(requests_to(&h.standins.meta, "POST", C1).len(), 1, "the idempotent pause ran again");
    assert!(requests_to(&h.standins.sendgrid, "POST", MAIL).is_empty(), "the email was not sent again");
    let requested = h.audit_of(id, "approval.requested").await;
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0]["kind"], "in_doubt");
    question
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_doubt_is_sent_again_only_when_a_person_approves_and_exactly_as_it_was() {
    let h = Harness::new().await;
    let id = abandoned_run(&h).await;
    let question = resumed_to_the_question(&h, &id).await;

    // Approving re-sends the call as it was: an edit would be a new call under the old key.
    let edited = h.open().await.approve(&question.id, "alice", Some(json!({"subject": "x"}))).await.unwrap_err();
    assert!(matches!(&edited, RuntimeError::InvalidInput(m) if m.contains("cannot be edited")), "{edited}");
    h.open().await.approve(&question.id, "alice", None).await.unwrap();

    let outcome = h.open().await.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let mails = requests_to(&h.standins.sendgrid, "POST", MAIL);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].idempotency_key.as_deref(), Some(format!("{id}:0:0").as_str()), "same key as the first try");
    let run = h.run(&id).await;
    assert_eq!(run.counters.tool_calls, 2, "the retry is not counted or charged a second time");
    assert_eq!(h.store.approval(&question.id).await.unwrap().unwrap().status, ApprovalStatus::Consumed);
    assert_eq!(h.audit_of(&id, "tool.call").await.len(), 2);
    assert!(h.audit_of(&id, "tool.marked_done").await.is_empty());
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(!is_error, "{content}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_doubt_denied_is_marked_done_unsent_and_the_model_is_told_the_outcome_is_unknown() {
    let h = Harness::new().await;
    let id = abandoned_run(&h).await;
    let question = resumed_to_the_question(&h, &id).await;
    tollgate_runtime::approvals::deny(&*h.dyn_store(), &question.id, "alice", "the team confirmed it arrived")
        .await
        .unwrap();

    let outcome = h.open().await.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    assert!(requests_to(&h.standins.sendgrid, "POST", MAIL).is_empty(), "nothing was re-sent");
    let email = h.rows(&id).await.into_iter().find(|r| r.index == 0).unwrap();
    assert_eq!(email.status, ToolCallStatus::Done);
    assert_eq!(email.result.as_ref().unwrap()["in_doubt"], "marked_done");
    let marked = h.audit_of(&id, "tool.marked_done").await;
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0]["by"], "alice");
    assert_eq!(marked[0]["approval_id"], question.id.as_str());
    assert_eq!(marked[0]["idempotency_key"], format!("{id}:0:0").as_str());
    assert!(marked[0]["reason"].as_str().unwrap().contains("the team confirmed it arrived"));
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(is_error);
    assert!(content.starts_with("Outcome unknown:"), "{content}");
    assert!(content.contains("Do not assume it failed"), "{content}");
    let report = tollgate_store::audit::verify_store(&*h.dyn_store(), Some(&h.key_path)).await.unwrap();
    assert!(report.records > 0 && report.checkpoints_checked > 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_doubt_nobody_decides_is_never_sent_again() {
    let h = Harness::new().await;
    let id = abandoned_run(&h).await;
    let question = resumed_to_the_question(&h, &id).await;
    let expired = h.store.expire_approvals(now_ms() + 365 * 86_400_000, 256).await.unwrap();
    assert_eq!(expired.len(), 1);

    let outcome = h.open().await.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    assert!(requests_to(&h.standins.sendgrid, "POST", MAIL).is_empty());
    let marked = h.audit_of(&id, "tool.marked_done").await;
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0]["by"], serde_json::Value::Null);
    assert_eq!(marked[0]["approval_id"], question.id.as_str());
}

/// The in-doubt kind is part of the signed request: a row re-labelled as an ordinary approval
/// (which an edit could then rewrite) does not settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_doubt_approval_relabelled_in_the_database_is_refused() {
    let h = Harness::new().await;
    let id = abandoned_run(&h).await;
    let question = resumed_to_the_question(&h, &id).await;
    h.tamper(&format!("UPDATE approvals SET kind = 'call' WHERE id = '{}'", question.id)).await;
    let refused = h.open().await.approve(&question.id, "alice", Some(json!({"subject": "x"}))).await.unwrap_err();
    assert!(matches!(&refused, RuntimeError::Tampered { .. }), "{refused}");
    assert!(requests_to(&h.standins.sendgrid, "POST", MAIL).is_empty());
}
