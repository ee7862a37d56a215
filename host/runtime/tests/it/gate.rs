//! The gate, end to end: every refusal is recorded as a denied tool call and reaches the model
//! as a tool result carrying the reason; the checks run in the documented order (enabled →
//! schema → caps → approval rules); caps hold within a turn, across turns and across runs.

use crate::common;
use crate::common::racing::RacingStore;
use crate::common::{Harness, Recorder, requests_to, result_of, start, tool_results};
use serde_json::{Value, json};
use tollgate_runtime::Event;
use tollgate_store::{RunStatus, Store, ToolCallStatus};

/// A workflow with one agent, `ops`, allowed ads, email, crm notes and echo, and `policy`.
fn workflow(policy: &str) -> String {
    format!(
        r#"
name = "gate-test"
version = "1.0.0"
entry = "ops"
goal = "Exercise the gate."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Operate the accounts."
tools = ["ads.*", "email.send_email", "crm.add_note", "echo.*"]

{policy}
"#
    )
}

/// A script for `ops`: one turn per entry of `turns` (each a list of `(model tool name, input)`),
/// then a final answer.
fn script(turns: &[Vec<(&str, Value)>]) -> String {
    let mut out = String::new();
    for (n, calls) in turns.iter().enumerate() {
        out += &format!("[[turns]]\nagent = \"ops\"\ntext = \"Turn {n}.\"\n");
        for (name, input) in calls {
            out += &format!("[[turns.tool_calls]]\nname = \"{name}\"\ninput = {}\n", toml_inline(input));
        }
        out += "\n";
    }
    out + "[[turns]]\nagent = \"ops\"\ntext = \"All done.\"\n"
}

/// JSON → TOML inline value (objects, arrays, strings, numbers, booleans).
fn toml_inline(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let fields: Vec<String> = map.iter().map(|(k, v)| format!("{k} = {}", toml_inline(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(toml_inline).collect::<Vec<_>>().join(", ")),
        Value::String(s) => serde_json::to_string(s).unwrap(),
        other => other.to_string(),
    }
}

fn email(to: &str) -> Value {
    json!({
        "from": {"email": "reviews@tollgate-demo.example"},
        "to": [{"email": to}],
        "subject": "Weekly review",
        "text": "Numbers are in.",
    })
}

const C1: &str = "120210000000000101";
const C2: &str = "120210000000000102";
const C3: &str = "120210000000000103";

fn budget(campaign: &str, cents: u64) -> Value {
    json!({"campaign_id": campaign, "daily_budget": cents})
}

/// The gate events of a run, as `(step, index, decision, reason)`.
fn gate_events(events: &[Event]) -> Vec<(u32, u32, String, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Gate { step, index, decision, reason, .. } => {
                Some((*step, *index, decision.clone(), reason.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tools_and_bad_inputs_are_denied_and_the_model_is_told_why() {
    let h = Harness::new().await;
    let turns = script(&[vec![
        ("crm__get_contact", json!({"id": "1001"})),
        ("nonsense", json!({})),
        ("ads__update_campaign", json!({"campaign_id": C1, "daily_budget": 50})),
        ("echo__add", json!({"a": 1, "b": 2})),
    ]]);
    let runtime = h.runtime(&workflow(""), &turns).await;
    let events = Recorder::default();
    let (id, outcome) = start(&runtime, &events).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");

    let state = h.state(&id).await;
    let (unknown, is_error) = result_of(&state, "ops", "call_ops_0_0");
    assert!(is_error);
    assert!(
        unknown.starts_with("Refused by Tollgate's gate (enabled): `crm__get_contact` is not a tool of agent `ops`"),
        "{unknown}"
    );
    // The model is told what it does have.
    assert!(unknown.contains("crm__add_note") && unknown.contains("echo__add"), "{unknown}");
    let (nonsense, _) = result_of(&state, "ops", "call_ops_0_1");
    assert!(nonsense.contains("(enabled): `nonsense` is not a tool"), "{nonsense}");
    let (schema, is_error) = result_of(&state, "ops", "call_ops_0_2");
    assert!(is_error);
    assert!(
        schema.starts_with("Refused by Tollgate's gate (schema): input does not match the tool's schema"),
        "{schema}"
    );
    let (sum, is_error) = result_of(&state, "ops", "call_ops_0_3");
    assert!(!is_error, "{sum}");
    assert_eq!(serde_json::from_str::<Value>(&sum).unwrap()["sum"].as_f64(), Some(3.0));

    let statuses: Vec<ToolCallStatus> = h.rows(&id).await.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [ToolCallStatus::Denied, ToolCallStatus::Denied, ToolCallStatus::Denied, ToolCallStatus::Done]
    );
    let decisions: Vec<String> = gate_events(&events.events()).into_iter().map(|g| g.2).collect();
    assert_eq!(decisions, ["deny", "deny", "deny", "allow"]);
    assert!(h.standins.hubspot.requests().is_empty(), "a tool the agent lacks must not run");
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty(), "an invalid input must not reach Meta");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_run_in_order_schema_then_caps_then_approval_rules() {
    let h = Harness::new().await;
    let policy = r#"
[[policy.approvals]]
tool = "ads.update_campaign"
when = "has(input.daily_budget) && input.daily_budget > 100000"
action = "deny"
reason = "Budgets above $1,000/day are set by finance."

[[policy.approvals]]
tool = "ads.update_campaign"
action = "allow"

[[policy.spend_caps]]
tool = "ads.update_campaign"
cost = "has(input.daily_budget) ? input.daily_budget : 0"
max_per_run = 150000
"#;
    let turns = script(&[vec![
        // Fails the schema (a number id), would also pass the cap and match the deny rule.
        ("ads__update_campaign", json!({"campaign_id": 120210000000000101u64, "daily_budget": 500000})),
        // Over the spend cap and matching the deny rule: refused, in the operator's words and the cap's.
        ("ads__update_campaign", budget(C1, 200000)),
        // Under the cap, matching the deny rule.
        ("ads__update_campaign", budget(C2, 120000)),
        // Under the cap, allowed by the second rule.
        ("ads__update_campaign", budget(C3, 30000)),
    ]]);
    let runtime = h.runtime(&workflow(policy), &turns).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");

    let state = h.state(&id).await;
    let content = |i: u32| result_of(&state, "ops", &format!("call_ops_0_{i}")).0;
    assert!(content(0).starts_with("Refused by Tollgate's gate (schema):"), "{}", content(0));
    assert_eq!(
        content(1),
        "Refused by Tollgate's gate (policy): policy.approvals[0]: Budgets above $1,000/day are set by finance. \
         (also over a cap: spend cap policy.spend_caps[0]: 0 used + 200000 > 150000)"
    );
    assert_eq!(
        content(2),
        "Refused by Tollgate's gate (policy): policy.approvals[0]: Budgets above $1,000/day are set by finance."
    );
    assert_eq!(serde_json::from_str::<Value>(&content(3)).unwrap()["daily_budget"], 30000);

    let meta = h.standins.meta_state();
    assert_eq!(meta.campaign(C1).unwrap().daily_budget, Some(50000), "denied by the cap, unchanged");
    assert_eq!(meta.campaign(C2).unwrap().daily_budget, Some(20000), "denied by policy, unchanged");
    assert_eq!(meta.campaign(C3).unwrap().daily_budget, Some(30000));
    // Only the allowed call was charged.
    assert_eq!(h.run(&id).await.counters.spend, 30000);
    assert_eq!(h.run(&id).await.counters.tool_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_cap_charges_within_a_turn_and_across_turns() {
    let h = Harness::new().await;
    let policy = r#"
[[policy.approvals]]
tool = "ads.update_campaign"
action = "allow"

[[policy.spend_caps]]
tool = "ads.update_campaign"
cost = "has(input.daily_budget) ? input.daily_budget : 0"
max_per_run = 100000
"#;
    let turns = script(&[
        // The second raise of the same turn would pass the cap: the first one's charge counts.
        vec![("ads__update_campaign", budget(C1, 60000)), ("ads__update_campaign", budget(C2, 50000))],
        // Exactly up to the cap is fine.
        vec![("ads__update_campaign", budget(C3, 40000))],
        // A cost-free change still passes; any raise does not.
        vec![
            ("ads__update_campaign", json!({"campaign_id": C2, "status": "PAUSED"})),
            ("ads__update_campaign", budget(C2, 100)),
        ],
    ]);
    let runtime = h.runtime(&workflow(policy), &turns).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");

    let state = h.state(&id).await;
    let (first, is_error) = result_of(&state, "ops", "call_ops_0_0");
    assert!(!is_error, "{first}");
    let (second, is_error) = result_of(&state, "ops", "call_ops_0_1");
    assert!(is_error);
    assert_eq!(
        second,
        "Refused by Tollgate's gate (caps): spend cap policy.spend_caps[0]: 60000 used + 50000 > 100000"
    );
    assert!(!result_of(&state, "ops", "call_ops_1_0").1);
    assert!(!result_of(&state, "ops", "call_ops_2_0").1);
    let (last, _) = result_of(&state, "ops", "call_ops_2_1");
    assert_eq!(last, "Refused by Tollgate's gate (caps): spend cap policy.spend_caps[0]: 100000 used + 100 > 100000");

    let run = h.run(&id).await;
    assert_eq!(run.counters.spend, 100000);
    assert_eq!(run.counters.tool_calls, 3);
    let meta = h.standins.meta_state();
    assert_eq!(meta.campaign(C1).unwrap().daily_budget, Some(60000));
    assert_eq!(meta.campaign(C2).unwrap().daily_budget, Some(20000));
    assert_eq!(meta.campaign(C2).unwrap().status, "PAUSED");
    assert_eq!(meta.campaign(C3).unwrap().daily_budget, Some(40000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_counts_calls_per_tool_across_runs() {
    let h = Harness::new().await;
    let policy = r#"
[[policy.rate_limits]]
tool = "echo.add"
max = 2
per = "1h"
"#;
    let add = |a: i64| ("echo__add", json!({"a": a, "b": 1}));
    let turns = script(&[vec![add(1), add(2), add(3), ("echo__echo", json!({"note": "not rate limited"}))]]);
    let runtime = h.runtime(&workflow(policy), &turns).await;

    let (first, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let state = h.state(&first).await;
    assert!(!result_of(&state, "ops", "call_ops_0_0").1);
    assert!(!result_of(&state, "ops", "call_ops_0_1").1);
    assert_eq!(
        result_of(&state, "ops", "call_ops_0_2").0,
        "Refused by Tollgate's gate (caps): rate limit policy.rate_limits[0]: 2 used in the last 1h + 1 > 2"
    );
    assert!(!result_of(&state, "ops", "call_ops_0_3").1, "the limit is per tool");

    // The window spans runs: a new run gets no fresh allowance.
    let (second, _) = start(&runtime, &Recorder::default()).await;
    let state = h.state(&second).await;
    for i in 0..3 {
        let (content, is_error) = result_of(&state, "ops", &format!("call_ops_0_{i}"));
        assert!(is_error && content.contains("rate limit policy.rate_limits[0]: 2 used"), "{content}");
    }
    assert!(!result_of(&state, "ops", "call_ops_0_3").1);
}

/// Another process takes the last of a rate limit between the gate's read and the turn's commit:
/// the commit fails, the turn is gated again from the state before it, and the call is refused.
/// The model's turn is in its conversation once, not once per attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_taken_by_a_rival_between_gate_and_commit_is_gated_again() {
    let h = Harness::new().await;
    let policy = r#"
[[policy.rate_limits]]
tool = "echo.add"
max = 1
per = "1h"
"#;
    let turns = script(&[vec![("echo__add", json!({"a": 1, "b": 1}))]]);
    h.runtime(&workflow(policy), &turns).await;
    let racing = std::sync::Arc::new(RacingStore::cap_rival(h.store.clone()));
    let runtime = h.open_on(racing.clone()).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    assert!(racing.raced.load(std::sync::atomic::Ordering::SeqCst), "the rival never charged");

    let state = h.state(&id).await;
    assert_eq!(
        result_of(&state, "ops", "call_ops_0_0").0,
        "Refused by Tollgate's gate (caps): rate limit policy.rate_limits[0]: 1 used in the last 1h + 1 > 1"
    );
    // Goal, the turn, its refusal, the answer: each once, in memory and in the rows.
    let roles: Vec<&str> = state.conversations["ops"]
        .iter()
        .map(|m| match m {
            tollgate_models::Message::User { .. } => "user",
            tollgate_models::Message::Assistant { .. } => "assistant",
            tollgate_models::Message::ToolResult { .. } => "tool",
        })
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(h.store.messages(&id, "ops", 0).await.unwrap().len(), 4);
    let rows = h.rows(&id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, ToolCallStatus::Denied);
    assert_eq!(h.run(&id).await.counters.tool_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frequency_cap_counts_each_target_across_runs() {
    let h = Harness::new().await;
    let policy = r#"
[[policy.approvals]]
tool = "email.send_email"
action = "allow"

[[policy.frequency_caps]]
tool = "email.send_email"
target = "input.to.map(r, r.email)"
max = 1
per = "7d"
"#;
    let runtime = h.runtime(&workflow(policy), &script(&[vec![("email__send_email", email("ana@example.com"))]])).await;
    let (first, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(!result_of(&h.state(&first).await, "ops", "call_ops_0_0").1);

    // A second run, started by another process with another script: the same recipient (in
    // another case) is refused, a different one is not.
    let turns = script(&[vec![
        ("email__send_email", email("Ana@Example.com")),
        ("email__send_email", email("ben@example.com")),
    ]]);
    std::fs::write(h.dir.path().join("turns.toml"), turns).unwrap();
    let runtime = h.open().await;
    let (second, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let state = h.state(&second).await;
    let (same, is_error) = result_of(&state, "ops", "call_ops_0_0");
    assert!(is_error);
    assert_eq!(
        same,
        "Refused by Tollgate's gate (caps): frequency cap policy.frequency_caps[0] for ana@example.com: \
         1 used in the last 7d + 1 > 1"
    );
    assert!(!result_of(&state, "ops", "call_ops_0_1").1);

    let sent: Vec<Vec<String>> = h.standins.sendgrid_state().sent().into_iter().map(|m| m.to).collect();
    assert_eq!(sent, [vec!["ana@example.com".to_string()], vec!["ben@example.com".to_string()]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_named_twice_in_one_call_counts_once() {
    let h = Harness::new().await;
    let policy = r#"
[[policy.approvals]]
tool = "email.send_email"
action = "allow"

[[policy.frequency_caps]]
tool = "email.send_email"
target = "input.to.map(r, r.email)"
max = 1
per = "7d"
"#;
    // The schema does not forbid repeats; the gate must still decide (not wedge the run).
    let mut twice = email("ana@example.com");
    twice["to"] = json!([{"email": "Ana@example.com"}, {"email": "ana@example.com"}]);
    let turns = script(&[vec![("email__send_email", twice)], vec![("email__send_email", email("ana@example.com"))]]);
    let runtime = h.runtime(&workflow(policy), &turns).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");

    let gates = h.audit_of(&id, "gate.decision").await;
    assert_eq!(gates[0]["decision"], "allow", "{gates:#?}");
    let charges = gates[0]["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["scope"], "freq:0:email.send_email:ana@example.com");
    let (later, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_1_0");
    assert!(is_error);
    assert!(later.contains("frequency cap policy.frequency_caps[0] for ana@example.com: 1 used"), "{later}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_expressions_that_fail_deny_the_call() {
    let h = Harness::new().await;
    // Both expressions read a field without `has()`; `cost` may also be a non-integer.
    let policy = r#"
[[policy.approvals]]
tool = "ads.update_campaign"
when = "input.daily_budget > 100000"
action = "deny"

[[policy.approvals]]
tool = "ads.update_campaign"
action = "allow"

[[policy.spend_caps]]
tool = "echo.add"
cost = "input.a"
max_per_run = 100
"#;
    let turns = script(&[vec![
        ("ads__update_campaign", json!({"campaign_id": C1, "status": "PAUSED"})),
        ("echo__add", json!({"a": 1.5, "b": 1})),
        ("echo__add", json!({"a": 2, "b": 1})),
    ]]);
    let runtime = h.runtime(&workflow(policy), &turns).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");

    let state = h.state(&id).await;
    let (when, is_error) = result_of(&state, "ops", "call_ops_0_0");
    assert!(is_error);
    assert!(when.starts_with("Refused by Tollgate's gate (policy): policy could not be evaluated:"), "{when}");
    assert!(when.contains("policy.approvals[0].when"), "names the rule: {when}");
    let (cost, is_error) = result_of(&state, "ops", "call_ops_0_1");
    assert!(is_error);
    assert!(cost.starts_with("Refused by Tollgate's gate (caps): cap could not be evaluated:"), "{cost}");
    assert!(!result_of(&state, "ops", "call_ops_0_2").1, "an integer cost is fine");
    assert_eq!(h.run(&id).await.counters.spend, 2);
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty(), "fail closed: nothing reached Meta");
    assert_eq!(h.standins.meta_state().campaign(C1).unwrap().status, "ACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_and_send_message_effects_need_approval_by_default() {
    let h = Harness::new().await;
    let turns = script(&[vec![
        ("email__send_email", email("ana@example.com")),
        ("ads__update_campaign", json!({"campaign_id": C1, "status": "PAUSED"})),
        ("crm__add_note", json!({"contact_id": "1001", "body": "Reviewed."})),
        ("echo__add", json!({"a": 1, "b": 1})),
    ]]);
    let runtime = h.runtime(&workflow(""), &turns).await;
    let notes_before = h.standins.hubspot_state().notes().len();
    let events = Recorder::default();
    let (id, outcome) = start(&runtime, &events).await;
    assert_eq!(outcome.status, RunStatus::WaitingApproval, "{outcome:?}");

    let reasons: Vec<(u32, String)> = outcome.pending_approvals.iter().map(|a| (a.index, a.reason.clone())).collect();
    assert_eq!(
        reasons,
        [
            (0, "email.send_email has the `send-message` effect, which needs approval".to_string()),
            (1, "ads.update_campaign has the `spend` effect, which needs approval".to_string()),
        ]
    );
    let statuses: Vec<ToolCallStatus> = h.rows(&id).await.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [ToolCallStatus::WaitingApproval, ToolCallStatus::WaitingApproval, ToolCallStatus::Done, ToolCallStatus::Done]
    );
    let decisions: Vec<String> = gate_events(&events.events()).into_iter().map(|g| g.2).collect();
    assert_eq!(decisions, ["require_approval", "require_approval", "allow", "allow"]);
    assert!(h.standins.sendgrid_state().sent().is_empty());
    assert!(requests_to(&h.standins.meta, "POST", C1).is_empty());
    // The write without a gating effect ran while the others wait.
    assert_eq!(h.standins.hubspot_state().notes().len(), notes_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_rule_overrides_the_default_approval() {
    let h = Harness::new().await;
    let policy = r#"
[[policy.approvals]]
tool = "email.send_email"
when = "input.to.all(r, r.email.endsWith('@tollgate-demo.example'))"
action = "allow"
"#;
    let turns = script(&[vec![
        ("email__send_email", email("paid-social@tollgate-demo.example")),
        ("email__send_email", email("client@example.com")),
    ]]);
    let runtime = h.runtime(&workflow(policy), &turns).await;
    let events = Recorder::default();
    let (id, outcome) = start(&runtime, &events).await;
    assert_eq!(outcome.status, RunStatus::WaitingApproval);
    let approval = common::only_approval(&outcome);
    assert_eq!(approval.index, 1, "only the external email waits");

    let gates = gate_events(&events.events());
    assert_eq!(gates[0], (0, 0, "allow".into(), Some("allowed by policy.approvals[0]".into())));
    assert_eq!(gates[1].2, "require_approval");
    let sent: Vec<Vec<String>> = h.standins.sendgrid_state().sent().into_iter().map(|m| m.to).collect();
    assert_eq!(sent, [vec!["paid-social@tollgate-demo.example".to_string()]]);
    let audit = h.audit_of(&id, "gate.decision").await;
    assert_eq!(audit[0]["rule"], 0);
    assert_eq!(audit[0]["decision"], "allow");
    assert_eq!(tool_results(&h.state(&id).await, "ops").len(), 0, "the step waits for its last call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_that_would_overflow_the_cap_counter_is_refused_not_a_panic() {
    let h = Harness::new().await;
    let policy = r#"
[[policy.approvals]]
tool = "ads.update_campaign"
action = "allow"

[[policy.spend_caps]]
tool = "ads.update_campaign"
cost = "has(input.daily_budget) ? input.daily_budget : 0"
max_per_run = 100000
"#;
    // A small raise is charged; a budget of i64::MAX after it would overflow `used + cost`.
    let turns = script(&[
        vec![("ads__update_campaign", budget(C1, 100))],
        vec![("ads__update_campaign", budget(C2, i64::MAX as u64))],
    ]);
    let runtime = h.runtime(&workflow(policy), &turns).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let (refused, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_1_0");
    assert!(is_error);
    assert_eq!(
        refused,
        "Refused by Tollgate's gate (caps): spend cap policy.spend_caps[0]: 100 used + 9223372036854775807 > 100000"
    );
    assert_eq!(h.run(&id).await.counters.spend, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_waiting_for_approval_count_against_max_tool_calls() {
    let h = Harness::new().await;
    // Every email needs approval (send-message); the run may make two tool calls in all.
    let policy = "[run]\nmax_tool_calls = 2\n";
    let turns = script(&[vec![
        ("email__send_email", email("a@example.com")),
        ("email__send_email", email("b@example.com")),
        ("email__send_email", email("c@example.com")),
        ("email__send_email", email("d@example.com")),
    ]]);
    let runtime = h.runtime(&workflow(policy), &turns).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::WaitingApproval, "{outcome:?}");
    assert_eq!(outcome.pending_approvals.len(), 2, "{outcome:#?}");
    let statuses: Vec<ToolCallStatus> = h.rows(&id).await.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            ToolCallStatus::WaitingApproval,
            ToolCallStatus::WaitingApproval,
            ToolCallStatus::Denied,
            ToolCallStatus::Denied
        ]
    );
    let gates = h.audit_of(&id, "gate.decision").await;
    assert_eq!(gates[2]["stage"], "bound", "{gates:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_gated_after_the_runs_deadline_is_denied() {
    use tollgate_runtime::CallTarget;
    use tollgate_runtime::gate::{CallRequest, GateContext, Tally, Verdict, check};

    let h = Harness::new().await;
    let workflow = crate::tampering::WORKFLOW.replace("action = \"require_approval\"", "action = \"allow\"");
    let runtime = h.runtime(&workflow, crate::tampering::TURNS).await;
    let id = runtime.start(None).await.unwrap();
    let mut run = h.run(&id).await;
    let target = CallTarget::Tool { qualified: "ads.update_campaign".into() };
    let input = json!({"campaign_id": crate::tampering::C1, "status": "PAUSED"});
    let tools = ["ads.update_campaign".to_string()];
    let call = CallRequest {
        agent: "ops",
        target: &target,
        name: "ads__update_campaign",
        input: &input,
        agent_tools: &tools,
        arguments_error: None,
    };
    async fn gate(
        store: &dyn Store,
        runtime: &tollgate_runtime::Runtime,
        run: &tollgate_store::RunRecord,
        call: &CallRequest<'_>,
    ) -> Verdict {
        let now = tollgate_runtime::now_ms();
        let ctx = GateContext { store, catalogue: runtime.catalogue(), workflow: runtime.workflow(), run, now };
        check(&ctx, &mut Tally::default(), call, None).await
    }
    assert!(matches!(gate(&*h.store, &runtime, &run, &call).await, Verdict::Allow { .. }));
    run.deadline_at = Some(tollgate_runtime::now_ms() - 1);
    match gate(&*h.store, &runtime, &run, &call).await {
        Verdict::Deny { reason, .. } => assert_eq!(reason, "the run passed its deadline"),
        other => panic!("expected a denial, got {other:?}"),
    }
}
