//! Whole runs: handoffs between agents, the run's bounds, concurrent calls within a turn, and
//! the shipped campaign-review example from start to finish with its audit trail.

use crate::common;
use crate::common::{Harness, Recorder, only_approval, requests_to, result_of, start, tool_results};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate_models::Message;
use tollgate_runtime::{Event, RuntimeError};
use tollgate_standins::Tokens;
use tollgate_store::{RunStatus, Store, ToolCallStatus};

/// Agent `ops` with echo tools, under `run` bounds and an optional per-agent `max_steps`.
fn echo_workflow(run: &str, agent_max_steps: Option<u32>) -> String {
    let max = agent_max_steps.map(|n| format!("max_steps = {n}")).unwrap_or_default();
    format!(
        r#"
name = "bounds-test"
version = "1.0.0"
entry = "ops"
goal = "Add numbers."

[run]
{run}

[agents.ops]
model = "scripted:turns.toml"
instructions = "Add."
tools = ["echo.*"]
{max}
"#
    )
}

/// `n` turns of `calls_per_turn` `echo__add` calls each (`a` = turn, `b` = index), then an answer.
fn add_script(n: usize, calls_per_turn: usize, usage: Option<(u64, u64)>) -> String {
    let mut out = String::new();
    for t in 0..n {
        out += &format!("[[turns]]\nagent = \"ops\"\ntext = \"Adding, turn {t}.\"\n");
        if let Some((i, o)) = usage {
            out += &format!("usage = {{ input_tokens = {i}, output_tokens = {o} }}\n");
        }
        for c in 0..calls_per_turn {
            out += &format!("[[turns.tool_calls]]\nname = \"echo__add\"\ninput = {{ a = {t}, b = {} }}\n", c * 10);
        }
    }
    out + "[[turns]]\nagent = \"ops\"\ntext = \"The sums are in.\"\n"
}

fn model_turns(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::ModelTurn { .. })).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_steps_ends_the_run() {
    let h = Harness::new().await;
    let runtime = h.runtime(&echo_workflow("max_steps = 2", None), &add_script(3, 1, None)).await;
    let events = Recorder::default();
    let (id, outcome) = start(&runtime, &events).await;
    assert_eq!(outcome.status, RunStatus::BoundHit);
    assert_eq!(outcome.detail.as_deref(), Some("max_steps: the run took 2 model turns (bound 2)"));
    assert_eq!(model_turns(&events.events()), 2, "no third turn was asked for");
    assert_eq!(h.store.steps(&id).await.unwrap().len(), 2);
    assert_eq!(h.audit_of(&id, "run.ended").await[0]["status"], "bound_hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_own_max_steps_ends_the_run() {
    let h = Harness::new().await;
    let runtime = h.runtime(&echo_workflow("max_steps = 10", Some(2)), &add_script(3, 1, None)).await;
    let events = Recorder::default();
    let (_, outcome) = start(&runtime, &events).await;
    assert_eq!(outcome.status, RunStatus::BoundHit);
    assert_eq!(outcome.detail.as_deref(), Some("max_steps: agent `ops` took 2 model turns (bound 2)"));
    assert_eq!(model_turns(&events.events()), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tool_calls_denies_the_excess_and_ends_the_run() {
    let h = Harness::new().await;
    let runtime = h.runtime(&echo_workflow("max_tool_calls = 2", None), &add_script(2, 3, None)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::BoundHit);
    assert_eq!(outcome.detail.as_deref(), Some("max_tool_calls: 2 tool calls (bound 2)"));
    let state = h.state(&id).await;
    assert!(!result_of(&state, "ops", "call_ops_0_0").1);
    assert!(!result_of(&state, "ops", "call_ops_0_1").1);
    assert_eq!(
        result_of(&state, "ops", "call_ops_0_2").0,
        "Refused by Tollgate's gate (bound): the run reached its max_tool_calls bound (2)"
    );
    assert_eq!(h.run(&id).await.counters.tool_calls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_ends_the_run() {
    let h = Harness::new().await;
    let runtime = h.runtime(&echo_workflow("max_tokens = 1000", None), &add_script(2, 1, Some((800, 300)))).await;
    let events = Recorder::default();
    let (id, outcome) = start(&runtime, &events).await;
    assert_eq!(outcome.status, RunStatus::BoundHit);
    assert_eq!(outcome.detail.as_deref(), Some("max_tokens: 1100 tokens used (bound 1000)"));
    assert_eq!(model_turns(&events.events()), 1);
    let counters = h.run(&id).await.counters;
    assert_eq!((counters.input_tokens, counters.output_tokens), (800, 300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_script_fails_the_run_with_a_clear_message() {
    let h = Harness::new().await;
    let script = "[[turns]]\nagent = \"ops\"\ntext = \"One call only.\"\n[[turns.tool_calls]]\nname = \"echo__add\"\ninput = { a = 1, b = 1 }\n";
    let runtime = h.runtime(&echo_workflow("", None), script).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    let detail = outcome.detail.unwrap_or_default();
    assert!(detail.contains("has no turn 1 for agent `ops`"), "{detail}");
    assert!(detail.contains("turns.toml"), "names the script: {detail}");
    assert_eq!(h.audit_of(&id, "run.ended").await[0]["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_a_turn_runs_and_results_come_back_in_call_order() {
    let h = Harness::new().await;
    let runtime = h.runtime(&echo_workflow("", None), &add_script(1, 3, None)).await;
    let events = Recorder::default();
    let (id, outcome) = start(&runtime, &events).await;
    assert_eq!(outcome.status, RunStatus::Completed);

    let results = tool_results(&h.state(&id).await, "ops");
    let ids: Vec<&str> = results.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids, ["call_ops_0_0", "call_ops_0_1", "call_ops_0_2"]);
    let sums: Vec<f64> =
        results.iter().map(|r| serde_json::from_str::<Value>(&r.2).unwrap()["sum"].as_f64().unwrap()).collect();
    assert_eq!(sums, [0.0, 10.0, 20.0]);
    let finished = events.events().iter().filter(|e| matches!(e, Event::ToolFinished { .. })).count();
    assert_eq!(finished, 3);
    assert!(h.rows(&id).await.iter().all(|r| r.status == ToolCallStatus::Done));
}

/// `analyst` (ads tools) hands off to `writer` (echo tools), which accepts a checked payload.
const HANDOFF_WORKFLOW: &str = r#"
name = "handoff-test"
version = "1.0.0"
entry = "analyst"
goal = "Find the overspender and write it up."

[agents.analyst]
model = "scripted:turns.toml"
instructions = "Analyse, then hand off."
tools = ["ads.list_campaigns"]
handoffs = ["writer"]

[agents.writer]
model = "scripted:turns.toml"
instructions = "Write it up."
tools = ["echo.*"]

[agents.writer.accepts]
type = "object"
required = ["campaign_id", "finding"]
additionalProperties = false
properties.campaign_id = { type = "string" }
properties.finding = { type = "string" }
"#;

const HANDOFF_TURNS: &str = r#"
[[turns]]
agent = "analyst"
text = "Hand over without the finding."
[[turns.tool_calls]]
name = "handoff__writer"
input = { campaign_id = "120210000000000101" }

[[turns]]
agent = "analyst"
text = "Hand over twice."
[[turns.tool_calls]]
name = "handoff__writer"
input = { campaign_id = "120210000000000101", finding = "first: 3.7x over budget" }
[[turns.tool_calls]]
name = "handoff__writer"
input = { campaign_id = "120210000000000102", finding = "second: should not arrive" }

[[turns]]
agent = "writer"
text = "Try the analyst's tool, and one of mine."
[[turns.tool_calls]]
name = "ads__list_campaigns"
input = { ad_account_id = "1234567890" }
[[turns.tool_calls]]
name = "echo__echo"
input = { draft = "Black Friday is 3.7x over budget." }

[[turns]]
agent = "writer"
text = "Written up."
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoffs_check_the_payload_and_give_the_receiver_a_fresh_conversation() {
    let h = Harness::new().await;
    let runtime = h.runtime(HANDOFF_WORKFLOW, HANDOFF_TURNS).await;
    let events = Recorder::default();
    let (id, outcome) = start(&runtime, &events).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.output.as_deref(), Some("Written up."));

    let state = h.state(&id).await;
    assert_eq!(state.agent, "writer");
    let (bad, is_error) = result_of(&state, "analyst", "call_analyst_0_0");
    assert!(is_error);
    assert!(
        bad.starts_with(
            "Refused by Tollgate's gate (schema): the handoff payload does not match what `writer` accepts:"
        ),
        "{bad}"
    );
    let (good, is_error) = result_of(&state, "analyst", "call_analyst_1_0");
    assert!(!is_error);
    assert_eq!(serde_json::from_str::<Value>(&good).unwrap(), json!({"handed_off_to": "writer"}));
    assert_eq!(
        result_of(&state, "analyst", "call_analyst_1_1").0,
        "Refused by Tollgate's gate (handoff): only one handoff per turn"
    );

    // The writer starts from the goal and the payload, not from the analyst's conversation.
    let writer = &state.conversations["writer"];
    let Message::User { text: brief } = &writer[0] else { panic!("{writer:#?}") };
    assert!(brief.contains("Find the overspender and write it up."), "{brief}");
    assert!(brief.contains("first: 3.7x over budget"), "{brief}");
    assert!(!brief.contains("should not arrive"), "{brief}");
    assert!(
        !writer.iter().any(|m| matches!(m, Message::Assistant { text: Some(t), .. } if t.starts_with("Hand over")))
    );
    assert_eq!(writer.iter().filter(|m| matches!(m, Message::User { .. })).count(), 1);

    // The writer only has its own tools.
    let (sender_tool, is_error) = result_of(&state, "writer", "call_writer_0_0");
    assert!(is_error);
    assert_eq!(
        sender_tool,
        "Refused by Tollgate's gate (enabled): `ads__list_campaigns` is not a tool of agent `writer`; its tools are: \
         echo__echo, echo__add, echo__slow_sum, echo__calls"
    );
    assert!(h.standins.meta.requests().is_empty());
    assert!(!result_of(&state, "writer", "call_writer_0_1").1);

    let handoffs: Vec<(String, String)> = events
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Handoff { from, to } => Some((from.clone(), to.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(handoffs, [("analyst".to_string(), "writer".to_string())]);
    let audit = h.audit_of(&id, "handoff").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["payload"]["finding"], "first: 3.7x over budget");
}

/// The shipped example, with its plugins by absolute path and its credentials in files.
fn campaign_review() -> (String, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/campaign-review");
    let workflow = std::fs::read_to_string(root.join("workflow.toml"))
        .unwrap()
        .replace("../../target/plugins/", &format!("{}/", common::plugins_dir().display()))
        .replace("env:META_ACCESS_TOKEN", "file:secrets/meta")
        .replace("env:SENDGRID_API_KEY", "file:secrets/sendgrid")
        .replace("env:HUBSPOT_TOKEN", "file:secrets/hubspot");
    (workflow, std::fs::read_to_string(root.join("turns.toml")).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_review_runs_to_the_end_with_a_verifiable_audit_trail() {
    let h = Harness::new().await;
    let (workflow, turns) = campaign_review();
    let runtime = h.runtime(&workflow, &turns).await;
    let notes_before = h.standins.hubspot_state().notes().len();
    let events = Recorder::default();
    let (id, outcome) = start(&runtime, &events).await;
    assert_eq!(outcome.status, RunStatus::WaitingApproval, "{outcome:?}");
    let pause = only_approval(&outcome);
    assert_eq!(pause.tool, "ads.update_campaign");
    runtime.approve(&pause.id, "alice", None).await.unwrap();
    let outcome = runtime.advance(&id, &events).await.unwrap();
    assert_eq!(outcome.status, RunStatus::WaitingApproval, "{outcome:?}");
    let email = only_approval(&outcome);
    assert_eq!(email.tool, "email.send_email");
    runtime.approve(&email.id, "alice", None).await.unwrap();
    let outcome = runtime.advance(&id, &events).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");

    // What happened outside.
    assert_eq!(h.standins.meta_state().campaign("120210000000000101").unwrap().status, "PAUSED");
    let pauses = requests_to(&h.standins.meta, "POST", "120210000000000101");
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].idempotency_key.as_deref(), Some(format!("{id}:2:0").as_str()));
    assert_eq!(h.standins.sendgrid_state().sent().len(), 1);
    assert_eq!(h.standins.hubspot_state().notes().len(), notes_before + 1);
    // The credentials were injected, so their absence from the record below means something.
    let tokens = Tokens::default();
    assert_eq!(pauses[0].header("authorization"), Some(format!("Bearer {}", tokens.meta).as_str()));

    // The chain verifies, against the signing key and its external checkpoint file.
    let report = tollgate_store::audit::verify_store(&*h.dyn_store(), Some(&h.key_path)).await.unwrap();
    assert!(report.records > 0 && report.checkpoints_checked > 0, "{report:?}");

    let records = h.audit().await;
    let kinds: Vec<&str> =
        records.iter().filter(|r| r.run_id.as_deref() == Some(id.as_str())).map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"run.started"));
    assert_eq!(kinds.last(), Some(&"run.ended"));
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    assert_eq!(count("model.turn"), 6);
    assert_eq!(count("approval.requested"), 2);
    assert_eq!(count("approval.granted"), 2);
    assert_eq!(count("approval.consumed"), 2);
    assert_eq!(count("handoff"), 1);

    let turns_audit = h.audit_of(&id, "model.turn").await;
    assert!(turns_audit[0]["reasoning"].as_str().unwrap().starts_with("Start with the account's campaigns"));
    assert!(turns_audit.iter().all(|t| t["source"]["kind"] == "replay"), "{turns_audit:#?}");
    assert!(turns_audit.iter().all(|t| t["reasoning"].as_str().is_some_and(|r| !r.is_empty())));

    // One gate decision per call, every call.
    let rows = h.rows(&id).await;
    assert_eq!(rows.len(), 8);
    let gates = h.audit_of(&id, "gate.decision").await;
    let gated: Vec<(u64, u64)> =
        gates.iter().map(|g| (g["step"].as_u64().unwrap(), g["index"].as_u64().unwrap())).collect();
    let called: Vec<(u64, u64)> = rows.iter().map(|r| (u64::from(r.step), u64::from(r.index))).collect();
    assert_eq!(gated, called);

    // One tool.call per executed plugin call, with what it produced and what it cost.
    let calls = h.audit_of(&id, "tool.call").await;
    let executed: Vec<_> = rows
        .iter()
        .filter(|r| r.status == ToolCallStatus::Done && r.tool.contains('.') && !r.tool.starts_with("handoff."))
        .collect();
    assert_eq!(calls.len(), executed.len());
    assert_eq!(calls.len(), 7);
    for call in &calls {
        let row =
            rows.iter().find(|r| u64::from(r.step) == call["step"] && u64::from(r.index) == call["index"]).unwrap();
        let output = &row.result.as_ref().unwrap()["output"];
        let digest = hex::encode(Sha256::digest(serde_json::to_string(output).unwrap().as_bytes()));
        assert_eq!(call["output_sha256"], digest, "{call}");
        assert!(call["fuel_used"].as_u64().unwrap() > 0, "{call}");
        assert!(call["duration_us"].as_u64().is_some(), "{call}");
        let egress = call["egress"].as_array().unwrap();
        assert!(!egress.is_empty() && egress.iter().all(|e| e["host"].is_string()), "{call}");
        assert_eq!(call["idempotency_key"], row.idempotency_key);
    }
    let ended = h.audit_of(&id, "run.ended").await;
    assert_eq!(ended[0]["status"], "completed");

    // Credentials appear nowhere in the record.
    let mut export = Vec::new();
    tollgate_store::audit::export_jsonl(records, &mut export).unwrap();
    let export = String::from_utf8(export).unwrap();
    let stored_rows = serde_json::to_string(&rows).unwrap();
    for token in [&tokens.meta, &tokens.sendgrid, &tokens.hubspot] {
        assert!(!export.contains(token.as_str()), "{token} in the audit export");
        assert!(!stored_rows.contains(token.as_str()), "{token} in the tool call rows");
    }

    // Every turn was shown as replay, never as a model's reasoning.
    let replays: Vec<(bool, String)> = events
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::ModelTurn { replay, model, .. } => Some((*replay, model.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(replays.len(), 6);
    assert!(replays.iter().all(|(replay, model)| *replay && model.contains("turns.toml #")), "{replays:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_put_back_to_allowed_after_it_ran_is_refused_not_sent_again() {
    let h = Harness::new().await;
    let workflow = r#"
name = "resume-test"
version = "1.0.0"
entry = "ops"
goal = "Pause a campaign and echo."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Operate."
tools = ["ads.update_campaign", "echo.*"]

[[policy.approvals]]
tool = "ads.update_campaign"
action = "allow"

[[policy.approvals]]
tool = "echo.echo"
action = "require_approval"
"#;
    let turns = r#"
[[turns]]
agent = "ops"
text = "Pause it; echo after approval; add now."
[[turns.tool_calls]]
name = "ads__update_campaign"
input = { campaign_id = "120210000000000101", status = "PAUSED" }
[[turns.tool_calls]]
name = "echo__echo"
input = { note = "after approval" }
[[turns.tool_calls]]
name = "echo__add"
input = { a = 1, b = 1 }

[[turns]]
agent = "ops"
text = "Done."
"#;
    let runtime = h.runtime(workflow, turns).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::WaitingApproval);
    let echo = only_approval(&outcome);
    assert_eq!(requests_to(&h.standins.meta, "POST", "120210000000000101").len(), 1);

    // A writer of the database puts the pause call back to `allowed` without a result, as a
    // crash between the request and its commit would leave it — but its signed `tool.call`
    // record says it ran, so it is not sent again. (A real crash there, with no record, is
    // rerun with the same key: the CLI's kill -9 test covers it.)
    let mut row = h.rows(&id).await.into_iter().find(|r| r.index == 0).unwrap();
    row.status = ToolCallStatus::Allowed;
    row.result = None;
    row.report = None;
    h.store.commit(tollgate_store::Commit { tool_calls: vec![row], ..Default::default() }).await.unwrap();

    runtime.approve(&echo.id, "alice", None).await.unwrap();
    let refused = runtime.advance(&id, &Recorder::default()).await.unwrap_err();
    assert!(
        matches!(&refused, RuntimeError::Tampered { what, .. } if what.contains("call 0#0 (ads.update_campaign) already ran")),
        "{refused:?}"
    );
    assert_eq!(requests_to(&h.standins.meta, "POST", "120210000000000101").len(), 1);
    assert_eq!(h.standins.meta.side_effects(), 1);
    assert!(h.audit_of(&id, "tool.call").await.iter().all(|c| c["index"] != 1), "the echo did not run either");
}
