//! `instances = "per-run"`: the calls of one run reuse a plugin instance (guest state carries
//! over), another run starts fresh, and the default keeps a fresh instance per call. The
//! echo test plugin's `calls` tool counts the calls its instance served, in guest memory.

use crate::common::{Harness, Recorder, plugins_dir, result_of, start};
use serde_json::json;
use tollgate_store::RunStatus;

fn workflow(instances: &str) -> String {
    format!(
        r#"
name = "instances-test"
version = "1.0.0"
entry = "ops"
goal = "Count."

[plugins.echo]
source = "{}/echo.wasm"
{instances}

[agents.ops]
model = "scripted:turns.toml"
instructions = "Count."
tools = ["echo.calls"]
"#,
        plugins_dir().display()
    )
}

/// Two turns with one `calls` call each, then an answer; the script replays for every run.
const TURNS: &str = r#"
[[turns]]
agent = "ops"
text = "First."
[[turns.tool_calls]]
name = "echo__calls"
input = {}

[[turns]]
agent = "ops"
text = "Second."
[[turns.tool_calls]]
name = "echo__calls"
input = {}

[[turns]]
agent = "ops"
text = "Counted."
"#;

/// The counts the two calls of a run returned, and the instance each ran on per the audit.
async fn counts(h: &Harness, id: &str) -> (Vec<serde_json::Value>, Vec<String>) {
    let state = h.state(id).await;
    let counts = ["call_ops_0_0", "call_ops_1_0"]
        .iter()
        .map(|call| serde_json::from_str(&result_of(&state, "ops", call).0).unwrap())
        .collect();
    let instances =
        h.audit_of(id, "tool.call").await.iter().map(|b| b["instance"].as_str().unwrap().to_string()).collect();
    (counts, instances)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_run_instances_carry_guest_state_within_a_run_and_never_across_runs() {
    let h = Harness::new().await;
    let runtime = h.runtime(&workflow(r#"instances = "per-run""#), TURNS).await;
    for _ in 0..2 {
        let (id, outcome) = start(&runtime, &Recorder::default()).await;
        assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
        let (counts, instances) = counts(&h, &id).await;
        assert_eq!(counts, [json!({"calls": 1}), json!({"calls": 2})], "run {id}");
        assert_eq!(instances, ["fresh", "reused"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_every_call_gets_a_fresh_instance() {
    let h = Harness::new().await;
    let runtime = h.runtime(&workflow(""), TURNS).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let (counts, instances) = counts(&h, &id).await;
    assert_eq!(counts, [json!({"calls": 1}), json!({"calls": 1})]);
    assert_eq!(instances, ["fresh", "fresh"]);
}
