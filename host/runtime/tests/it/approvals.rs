//! Approvals, end to end: a call waiting for approval runs exactly once after approval, with its stable
//! idempotency key; denials and expiry reach the model; edits are checked; an approval never
//! authorises twice, nor a plugin build other than the one it was requested for.

use crate::common;
use crate::common::{Harness, Recorder, only_approval, requests_to, result_of, start};
use serde_json::{Value, json};
use tollgate_runtime::{RuntimeError, approvals, now_ms};
use tollgate_store::{ApprovalStatus, RunStatus, Store, ToolCallStatus};

const C1: &str = "120210000000000101";

/// One agent, `ops`, whose ads calls need approval (spend effect, by default) and whose echo
/// calls need it by rule; budgets over 45,000 are denied, spend is capped at 50,000 per run. Approvals expire after 1 minute,
/// the shortest the format allows.
fn workflow() -> String {
    r#"
name = "approvals-test"
version = "1.0.0"
entry = "ops"
goal = "Change the campaign."

[run]
approval_expiry = "1m"

[agents.ops]
model = "scripted:turns.toml"
instructions = "Operate the account."
tools = ["ads.*", "echo.*"]

[[policy.approvals]]
tool = "echo.*"
action = "require_approval"
reason = "A human looks at echo calls."

[[policy.approvals]]
tool = "ads.update_campaign"
when = "has(input.daily_budget) && input.daily_budget > 45000"
action = "deny"
reason = "Budgets above $450/day are set by finance."

[[policy.spend_caps]]
tool = "ads.update_campaign"
cost = "has(input.daily_budget) ? input.daily_budget : 0"
max_per_run = 50000
"#
    .to_string()
}

/// The script: one call, then a final answer.
fn script(tool: &str, input: &str) -> String {
    format!(
        r#"
[[turns]]
agent = "ops"
text = "One change, which a human approves."
[[turns.tool_calls]]
name = "{tool}"
input = {input}

[[turns]]
agent = "ops"
text = "Finished."
"#
    )
}

const PAUSE: &str = r#"{ campaign_id = "120210000000000101", status = "PAUSED" }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_call_runs_once_with_its_idempotency_key() {
    let h = Harness::new().await;
    let runtime = h.runtime(&workflow(), &script("ads__update_campaign", PAUSE)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::WaitingApproval);
    let approval = only_approval(&outcome);
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty(), "nothing runs before approval");

    // Still waiting for approval: advancing again does not run it either.
    assert_eq!(runtime.advance(&id, &Recorder::default()).await.unwrap().status, RunStatus::WaitingApproval);
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty());

    let approved = runtime.approve(&approval.id, "alice", None).await.unwrap();
    assert_eq!(approved.status, ApprovalStatus::Approved);
    let again = runtime.approve(&approval.id, "mallory", None).await.unwrap_err();
    assert!(
        matches!(&again, RuntimeError::State(m) if m == &format!("approval {} is already approved by alice", approval.id)),
        "{again}"
    );

    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    // Resuming a finished run changes nothing.
    runtime.advance(&id, &Recorder::default()).await.unwrap();

    let posts = requests_to(&h.standins.meta, "POST", C1);
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(posts[0].idempotency_key.as_deref(), Some(format!("{id}:0:0").as_str()));
    assert_eq!(h.standins.meta.side_effects(), 1);
    assert_eq!(h.standins.meta_state().campaign(C1).unwrap().status, "PAUSED");
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(!is_error, "{content}");

    let stored = h.store.approval(&approval.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ApprovalStatus::Consumed);
    assert_eq!(stored.decided_by.as_deref(), Some("alice"));
    let rows = h.rows(&id).await;
    assert_eq!(rows[0].status, ToolCallStatus::Done);
    assert_eq!(rows[0].idempotency_key, format!("{id}:0:0"));
    assert_eq!(h.audit_of(&id, "approval.granted").await[0]["by"], "alice");
    assert_eq!(h.audit_of(&id, "approval.consumed").await[0]["decision"], "allow");
    assert_eq!(h.audit_of(&id, "tool.call").await.len(), 1);
    // A consumed approval authorises nothing more.
    assert!(runtime.approve(&approval.id, "alice", None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_reaches_the_model_with_who_and_why_and_the_run_continues() {
    let h = Harness::new().await;
    let runtime = h.runtime(&workflow(), &script("ads__update_campaign", PAUSE)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    let approval = only_approval(&outcome);

    approvals::deny(&**runtime.store(), &approval.id, "bob", "not during the sale").await.unwrap();
    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.output.as_deref(), Some("Finished."));

    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(is_error);
    assert_eq!(content, "Refused by Tollgate's gate (approval): denied by bob: not during the sale");
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty());
    assert_eq!(h.audit_of(&id, "approval.denied").await[0]["reason"], "not during the sale");
    assert!(runtime.approve(&approval.id, "alice", None).await.is_err(), "a denied approval cannot be approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_input_is_schema_checked_and_runs_instead_of_the_original() {
    let h = Harness::new().await;
    let raise = r#"{ campaign_id = "120210000000000101", daily_budget = 40000 }"#;
    let runtime = h.runtime(&workflow(), &script("ads__update_campaign", raise)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    let approval = only_approval(&outcome);

    let invalid = runtime.approve(&approval.id, "alice", Some(json!({"campaign_id": C1, "daily_budget": 50}))).await;
    assert!(
        matches!(&invalid, Err(RuntimeError::InvalidInput(m)) if m.starts_with("the edited input does not match the schema")),
        "{invalid:?}"
    );
    assert_eq!(h.store.approval(&approval.id).await.unwrap().unwrap().status, ApprovalStatus::Pending);

    let edited = json!({"campaign_id": C1, "daily_budget": 30000});
    runtime.approve(&approval.id, "alice", Some(edited.clone())).await.unwrap();
    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");

    assert_eq!(h.standins.meta_state().campaign(C1).unwrap().daily_budget, Some(30000));
    let posts = requests_to(&h.standins.meta, "POST", C1);
    assert_eq!(posts.len(), 1);
    assert!(posts[0].body.contains("daily_budget=30000"), "{}", posts[0].body);
    let row = &h.rows(&id).await[0];
    assert_eq!(row.input, edited);
    assert_eq!(row.status, ToolCallStatus::Done);
    assert_eq!(h.run(&id).await.counters.spend, 30000, "the edited cost is charged");
    let granted = &h.audit_of(&id, "approval.granted").await[0];
    assert_eq!(granted["edited"], true);
    assert_eq!(granted["input"], edited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_input_passes_the_caps_again() {
    let h = Harness::new().await;
    let raise = r#"{ campaign_id = "120210000000000101", daily_budget = 40000 }"#;
    let runtime = h.runtime(&workflow(), &script("ads__update_campaign", raise)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    let approval = only_approval(&outcome);

    // Within the schema, over the run's spend cap.
    runtime.approve(&approval.id, "alice", Some(json!({"campaign_id": C1, "daily_budget": 60000}))).await.unwrap();
    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(is_error);
    assert_eq!(
        content,
        "A person approved this call with an edited input, {\"campaign_id\":\"120210000000000101\",\"daily_budget\":60000}, \
         instead of the input you proposed. The edited call's result: Refused by Tollgate's gate (policy): \
         policy.approvals[1]: Budgets above $450/day are set by finance. (also over a cap: spend cap \
         policy.spend_caps[0]: 0 used + 60000 > 50000)"
    );
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty());
    assert_eq!(h.run(&id).await.counters.spend, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_input_cannot_get_past_a_deny_rule() {
    let h = Harness::new().await;
    let raise = r#"{ campaign_id = "120210000000000101", daily_budget = 40000 }"#;
    let runtime = h.runtime(&workflow(), &script("ads__update_campaign", raise)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    let approval = only_approval(&outcome);

    // Within the schema and the cap, but a budget the policy refuses outright.
    runtime.approve(&approval.id, "alice", Some(json!({"campaign_id": C1, "daily_budget": 48000}))).await.unwrap();
    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(is_error);
    assert!(
        content.ends_with(
            "The edited call's result: Refused by Tollgate's gate (policy): policy.approvals[1]: Budgets above \
             $450/day are set by finance."
        ),
        "{content}"
    );
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty());
    assert_eq!(h.standins.meta_state().campaign(C1).unwrap().daily_budget, Some(50000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_approval_escalates_the_run_and_the_model_is_told() {
    let h = Harness::new().await;
    let runtime = h.runtime(&workflow(), &script("ads__update_campaign", PAUSE)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    let approval = only_approval(&outcome);
    assert!(approval.expires_at - approval.requested_at == 60_000, "{approval:?}");

    // Not yet due.
    assert!(h.store.expire_approvals(now_ms(), 256).await.unwrap().is_empty());
    // Two minutes later.
    let expired = h.store.expire_approvals(now_ms() + 120_000, 256).await.unwrap();
    let expired: Vec<&str> = expired.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(expired, [approval.id.as_str()]);

    let status = runtime.status(&id).await.unwrap();
    assert_eq!(status.status, RunStatus::Escalated);
    assert!(status.detail.as_deref().unwrap_or_default().contains(&approval.id), "{status:?}");
    assert_eq!(h.audit_of(&id, "approval.expired").await[0]["approval_id"], approval.id.as_str());
    assert_eq!(h.audit_of(&id, "run.escalated").await.len(), 1);
    let late = runtime.approve(&approval.id, "alice", None).await.unwrap_err();
    assert!(late.to_string().contains("already expired"), "{late}");

    // A human resumes the run: the model learns the call did not happen.
    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(is_error);
    assert_eq!(
        content,
        "Refused by Tollgate's gate (approval): nobody approved this call before its approval expired; it was \
         escalated to a human"
    );
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty());
}

/// Appends a custom section to a component: a different build (other bytes, other sha256) with
/// the same tools.
fn rebuild(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let name = b"tollgate-test-rebuild";
    let payload = b"v2";
    let size = 1 + name.len() + payload.len();
    assert!(size < 128 && name.len() < 128, "single-byte LEB128 sizes");
    bytes.extend_from_slice(&[0, size as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_plugin_changed_is_refused_before_its_approval_is_used() {
    let h = Harness::new().await;
    let plugin = h.dir.path().join("echo-copy.wasm");
    std::fs::copy(common::plugins_dir().join("echo.wasm"), &plugin).unwrap();
    let workflow = format!(
        r#"
name = "approvals-test"
version = "1.0.0"
entry = "ops"
goal = "Echo, with a human's approval."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Echo."
tools = ["echo.*"]

[[policy.approvals]]
tool = "echo.*"
action = "require_approval"

[plugins.echo]
source = "{}"
"#,
        plugin.display()
    );
    let runtime = h.runtime(&workflow, &script("echo__echo", r#"{ note = "hello" }"#)).await;
    let (unchanged, outcome) = start(&runtime, &Recorder::default()).await;
    let kept = only_approval(&outcome);
    let (changed, outcome) = start(&runtime, &Recorder::default()).await;
    let voided = only_approval(&outcome);
    drop(runtime);

    // Another process with the same plugin bytes: the approval holds.
    let runtime = h.open().await;
    runtime.approve(&kept.id, "alice", None).await.unwrap();
    assert_eq!(runtime.advance(&unchanged, &Recorder::default()).await.unwrap().status, RunStatus::Completed);
    let (content, is_error) = result_of(&h.state(&unchanged).await, "ops", "call_ops_0_0");
    assert!(!is_error, "{content}");
    assert_eq!(serde_json::from_str::<Value>(&content).unwrap(), json!({"note": "hello"}));

    // The plugin file is replaced by another build: the run is refused before anything is
    // settled, since its signed run.started binds the build it started with.
    rebuild(&plugin);
    let runtime = h.open().await;
    assert_ne!(runtime.catalogue().plugin("echo").unwrap().digest(), voided.plugin_digest);
    runtime.approve(&voided.id, "alice", None).await.unwrap();
    let refused = runtime.advance(&changed, &Recorder::default()).await.unwrap_err();
    match &refused {
        RuntimeError::PluginChanged { plugin, was, .. } => {
            assert_eq!(plugin, "echo");
            assert_eq!(was, &voided.plugin_digest);
        }
        other => panic!("expected PluginChanged, got {other:?}"),
    }
    assert_eq!(h.rows(&changed).await[0].status, ToolCallStatus::WaitingApproval);
    assert!(h.audit_of(&changed, "tool.call").await.is_empty(), "the call never ran");
    assert_eq!(h.store.approval(&voided.id).await.unwrap().unwrap().status, ApprovalStatus::Approved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_control_characters_decide_nothing() {
    let h = Harness::new().await;
    let runtime = h.runtime(&workflow(), &script("ads__update_campaign", PAUSE)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    let approval = only_approval(&outcome);
    // A name that clears the screen, an empty one, one that reverses what follows it.
    for name in ["alice\u{1b}[2J\u{1b}[H", "", "  ", "alice\u{202E}nimda"] {
        let refused = runtime.approve(&approval.id, name, None).await.unwrap_err();
        assert!(matches!(refused, RuntimeError::InvalidInput(_)), "{name:?}: {refused}");
        let refused = approvals::deny(&**runtime.store(), &approval.id, name, "no").await.unwrap_err();
        assert!(matches!(refused, RuntimeError::InvalidInput(_)), "{name:?}: {refused}");
    }
    let refused = approvals::deny(&**runtime.store(), &approval.id, "bob", "no\u{1b}]0;owned\u{7}").await.unwrap_err();
    assert!(matches!(refused, RuntimeError::InvalidInput(_)), "{refused}");
    let refused = approvals::cancel(&**runtime.store(), &id, "eve\u{0}", "stop").await.unwrap_err();
    assert!(matches!(refused, RuntimeError::InvalidInput(_)), "{refused}");
    // Nothing was decided, stored or audited.
    assert_eq!(h.store.approval(&approval.id).await.unwrap().unwrap().status, ApprovalStatus::Pending);
    assert!(h.audit_of(&id, "approval.granted").await.is_empty());
    assert!(h.audit_of(&id, "approval.denied").await.is_empty());
    assert_eq!(h.run(&id).await.status, RunStatus::WaitingApproval);
}
