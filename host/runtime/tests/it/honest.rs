//! Honest outcomes when a model misbehaves: an empty answer or one cut off at
//! `max_output_tokens` is not a success (the model is asked again once, then the run ends
//! `failed` / `bound_hit`); the same refused call is not asked for forever
//! (`max_repeated_refusals`); every proposed call is counted, whatever became of it; and what
//! the model is told about arguments that are not JSON, an upstream "not found" and an edited
//! approval is in words it can act on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tollgate_store::RunStatus;

use crate::common::{Harness, Recorder, only_approval, result_of, start};

/// One agent with echo, the CRM and the ads tools; echo.add needs approval.
fn workflow(model: &str, run: &str) -> String {
    format!(
        r#"
name = "honest-test"
version = "1.0.0"
entry = "ops"
goal = "Do the job."

[run]
{run}

[agents.ops]
model = "{model}"
instructions = "Do it."
tools = ["echo.*", "crm.*", "ads.*"]

[[policy.approvals]]
tool = "echo.add"
action = "require_approval"
reason = "Sums are checked by a person."
"#
    )
}

fn scripted(run: &str) -> String {
    workflow("scripted:turns.toml", run)
}

const FINISHED: &str = r#"
[[turns]]
agent = "ops"
text = "Finished."
"#;

const EMPTY: &str = r#"
[[turns]]
agent = "ops"
text = ""
"#;

const TRUNCATED: &str = r#"
[[turns]]
agent = "ops"
text = "And so on, and so on, and so on"
stop = "max_tokens"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_answer_is_asked_again_once_then_fails_the_run() {
    let h = Harness::new().await;
    let runtime = h.runtime(&scripted(""), &format!("{EMPTY}{EMPTY}")).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{outcome:?}");
    let detail = outcome.detail.unwrap_or_default();
    assert!(detail.starts_with("empty answer:"), "{detail}");
    assert_eq!(outcome.output, None);
    let nudges = h.audit_of(&id, "model.nudged").await;
    assert_eq!(nudges.len(), 1, "{nudges:?}");
    assert_eq!(nudges[0]["reason"], "empty_answer");
    let ended = &h.audit_of(&id, "run.ended").await[0];
    assert_eq!((ended["status"].as_str(), ended["detail"].as_str()), (Some("failed"), Some(detail.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_answer_then_a_real_one_completes_and_the_model_was_told() {
    let h = Harness::new().await;
    let runtime = h.runtime(&scripted(""), &format!("{EMPTY}{FINISHED}")).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.output.as_deref(), Some("Finished."));
    let state = h.state(&id).await;
    let told = state.conversations["ops"]
        .iter()
        .any(|m| matches!(m, tollgate_models::Message::User { text } if text.starts_with("Your last reply was empty")));
    assert!(told, "{:#?}", state.conversations["ops"]);
    assert_eq!(h.audit_of(&id, "model.nudged").await.len(), 1);
    // Each model turn's audit record says how it stopped.
    let turns = h.audit_of(&id, "model.turn").await;
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[1]["stop"], "end_turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_answer_twice_ends_the_run_at_its_output_bound() {
    let h = Harness::new().await;
    let runtime = h.runtime(&scripted("max_output_tokens = 64"), &format!("{TRUNCATED}{TRUNCATED}")).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::BoundHit, "{outcome:?}");
    let detail = outcome.detail.unwrap_or_default();
    assert!(detail.starts_with("max_output_tokens: the model's answer was cut off at 64"), "{detail}");
    assert_eq!(outcome.output, None, "a cut-off text is not the run's answer");
    assert_eq!(h.audit_of(&id, "model.nudged").await[0]["reason"], "output_truncated");
    assert_eq!(h.audit_of(&id, "model.turn").await[0]["stop"], "max_tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nudge_is_forgiven_by_a_usable_turn_in_between() {
    // Empty, a tool call, empty, answer: two unusable turns that are not in a row.
    let h = Harness::new().await;
    let call = r#"
[[turns]]
agent = "ops"
[[turns.tool_calls]]
name = "echo__echo"
input = { note = "hi" }
"#;
    let runtime = h.runtime(&scripted(""), &format!("{EMPTY}{call}{EMPTY}{FINISHED}")).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    assert_eq!(h.audit_of(&id, "model.nudged").await.len(), 2);
}

/// The same call `times` times, then a final answer.
fn repeated(tool: &str, input: &str, times: usize) -> String {
    let call = format!(
        r#"
[[turns]]
agent = "ops"
text = "Trying."
[[turns.tool_calls]]
name = "{tool}"
input = {input}
"#
    );
    call.repeat(times) + FINISHED
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_refused_call_ends_the_run_at_max_repeated_refusals() {
    let h = Harness::new().await;
    // echo.add refuses a missing `b` at the schema check, every time.
    let runtime = h.runtime(&scripted(""), &repeated("echo__add", "{ a = 1 }", 6)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::BoundHit, "{outcome:?}");
    let detail = outcome.detail.unwrap_or_default();
    assert!(
        detail.starts_with("max_repeated_refusals: agent `ops` made the same call to `echo.add` 3 times"),
        "{detail}"
    );
    assert!(detail.contains("denied (schema)"), "{detail}");
    let counters = h.run(&id).await.counters;
    assert_eq!((counters.calls_proposed, counters.calls_denied, counters.tool_calls), (3, 3, 0));
    let ended = &h.audit_of(&id, "run.ended").await[0];
    assert_eq!(ended["status"], "bound_hit");
    assert_eq!(ended["detail"].as_str(), Some(detail.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_refused_calls_do_not_add_up_and_the_limit_is_configurable() {
    let h = Harness::new().await;
    let script = ["{ a = 1 }", "{ b = 1 }", "{ a = 2 }", "{ b = 2 }"]
        .iter()
        .map(|input| repeated("echo__add", input, 1).trim_end_matches(FINISHED).to_string())
        .collect::<String>()
        + FINISHED;
    let runtime = h.runtime(&scripted(""), &script).await;
    let (_, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "four different refused calls: {outcome:?}");

    let h = Harness::new().await;
    let runtime = h.runtime(&scripted("max_repeated_refusals = 2"), &repeated("echo__add", "{ a = 1 }", 3)).await;
    let (_, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::BoundHit, "{outcome:?}");
    assert!(outcome.detail.unwrap_or_default().contains("2 times"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_call_counts_as_failed_and_not_found_is_said_in_words() {
    let h = Harness::new().await;
    let runtime = h.runtime(&scripted(""), &repeated("crm__get_contact", r#"{ id = "999999999" }"#, 1)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(is_error);
    assert!(content.starts_with("The tool ran, and what it looked for does not exist"), "{content}");
    assert!(content.contains("[tool-not-found]"), "{content}");
    let counters = h.run(&id).await.counters;
    assert_eq!((counters.calls_proposed, counters.tool_calls, counters.calls_failed), (1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_that_are_not_json_are_refused_in_words_the_model_can_act_on() {
    let h = Harness::new().await;
    let script = r#"
[[turns]]
agent = "ops"
[[turns.tool_calls]]
name = "echo__echo"
raw_arguments = '{"note": "cut off'
"#
    .to_string()
        + FINISHED;
    let runtime = h.runtime(&scripted(""), &script).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(is_error);
    assert!(
        content.starts_with(
            "Refused by Tollgate's gate (schema): the arguments of your call to `echo__echo` are not valid JSON ("
        ),
        "{content}"
    );
    assert!(!content.contains("_raw"), "{content}");
    assert_eq!(h.run(&id).await.counters.calls_denied, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_approval_is_told_to_the_model_and_every_call_is_counted() {
    let h = Harness::new().await;
    let script = r#"
[[turns]]
agent = "ops"
text = "Three calls."
[[turns.tool_calls]]
name = "echo__add"
input = { a = 1, b = 2 }
[[turns.tool_calls]]
name = "echo__echo"
input = { note = "hi" }
[[turns.tool_calls]]
name = "echo__add"
input = { a = 1 }
"#
    .to_string()
        + FINISHED;
    let runtime = h.runtime(&scripted(""), &script).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::WaitingApproval, "{outcome:?}");
    let counters = h.run(&id).await.counters;
    assert_eq!(
        (counters.calls_proposed, counters.calls_parked, counters.calls_denied, counters.tool_calls),
        (3, 1, 1, 1)
    );

    let approval = only_approval(&outcome);
    runtime.approve(&approval.id, "alice", Some(json!({"a": 10, "b": 20}))).await.unwrap();
    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_0");
    assert!(!is_error, "{content}");
    assert_eq!(
        content,
        r#"A person approved this call with an edited input, {"a":10,"b":20}, instead of the input you proposed. The edited call's result: {"sum":30.0}"#
    );
    // The approval ran the call: proposed stays 3, and the run counts it once.
    let counters = h.run(&id).await.counters;
    assert_eq!(
        (counters.calls_proposed, counters.calls_parked, counters.calls_denied, counters.tool_calls),
        (3, 1, 1, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_denial_names_the_operators_deny_rule_too() {
    // A rate limit and a deny rule both refuse the second call: the operator's reason shows.
    let h = Harness::new().await;
    let workflow = scripted("")
        + r#"
[[policy.rate_limits]]
tool = "echo.echo"
max = 1
per = "1h"

[[policy.approvals]]
tool = "echo.echo"
when = "input.note == 'secret'"
action = "deny"
reason = "Secrets are not echoed."
"#;
    let script = r#"
[[turns]]
agent = "ops"
[[turns.tool_calls]]
name = "echo__echo"
input = { note = "fine" }
[[turns.tool_calls]]
name = "echo__echo"
input = { note = "secret" }
"#
    .to_string()
        + FINISHED;
    let runtime = h.runtime(&workflow, &script).await;
    let (id, _) = start(&runtime, &Recorder::default()).await;
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_ops_0_1");
    assert!(is_error);
    assert!(
        content.starts_with(
            "Refused by Tollgate's gate (policy): policy.approvals[1]: Secrets are not echoed. (also over a cap: "
        ),
        "{content}"
    );
}

/// An OpenAI-compatible server on 127.0.0.1 answering with `replies` in turn (each a
/// `(message, finish_reason)`), the last one again once they run out. Returns its base URL.
async fn serve_replies(replies: Vec<(Value, &'static str)>) -> String {
    type Replies = Arc<(Vec<(Value, &'static str)>, AtomicUsize)>;
    async fn chat(State(replies): State<Replies>, Json(body): Json<Value>) -> Json<Value> {
        let n = replies.1.fetch_add(1, Ordering::SeqCst).min(replies.0.len() - 1);
        let (message, finish) = replies.0[n].clone();
        Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        Router::new().route("/v1/chat/completions", post(chat)).with_state(Arc::new((replies, AtomicUsize::new(0))));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_servers_empty_and_cut_off_answers_are_not_success() {
    let h = Harness::new().await;
    let url = serve_replies(vec![(json!({"role": "assistant", "content": ""}), "stop")]).await;
    let runtime = h.runtime(&workflow(&format!("openai-compatible:test@{url}"), ""), "").await;
    let (_, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{outcome:?}");

    let h = Harness::new().await;
    let long = json!({"role": "assistant", "content": "la la la la"});
    let url = serve_replies(vec![(long.clone(), "length")]).await;
    let runtime = h.runtime(&workflow(&format!("openai-compatible:test@{url}"), ""), "").await;
    let (_, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::BoundHit, "{outcome:?}");

    // Cut off once, then a short answer: completed with the short one.
    let h = Harness::new().await;
    let url =
        serve_replies(vec![(long, "length"), (json!({"role": "assistant", "content": "Short answer."}), "stop")]).await;
    let runtime = h.runtime(&workflow(&format!("openai-compatible:test@{url}"), ""), "").await;
    let (_, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.output.as_deref(), Some("Short answer."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_servers_arguments_that_are_not_json_are_refused_and_sent_back_as_written() {
    let h = Harness::new().await;
    let call = json!({"role": "assistant", "content": null, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "echo__echo", "arguments": "{\"note\": \"cut"},
    }]});
    let url =
        serve_replies(vec![(call, "tool_calls"), (json!({"role": "assistant", "content": "Done."}), "stop")]).await;
    let runtime = h.runtime(&workflow(&format!("openai-compatible:test@{url}"), ""), "").await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let (content, is_error) = result_of(&h.state(&id).await, "ops", "call_1");
    assert!(is_error);
    assert!(content.contains("are not valid JSON"), "{content}");
}
