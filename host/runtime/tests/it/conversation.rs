//! Conversations live in the store's message rows, written by the same commits that move the
//! checkpoint; the checkpoint holds only a cursor, so it does not grow with the run.

use crate::common::{Harness, Recorder, start};
use serde_json::json;
use tollgate_models::Message;
use tollgate_runtime::RunState;
use tollgate_store::{Commit, RunStatus, RunUpdate, Store};

const WORKFLOW: &str = r#"
name = "conversation-test"
version = "1.0.0"
entry = "ops"
goal = "Add numbers."

[agents.ops]
model = "scripted:turns.toml"
instructions = "Add."
tools = ["echo.*"]
"#;

/// `n` turns with one `echo__add` call each, then an answer.
fn script(n: usize) -> String {
    let mut out = String::new();
    for t in 0..n {
        out += &format!(
            "[[turns]]\nagent = \"ops\"\ntext = \"Turn {t}.\"\n\
             [[turns.tool_calls]]\nname = \"echo__add\"\ninput = {{ a = {t}, b = 1 }}\n"
        );
    }
    out + "[[turns]]\nagent = \"ops\"\ntext = \"Done.\"\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_is_a_cursor_and_the_conversation_is_in_message_rows() {
    let h = Harness::new().await;
    let runtime = h.runtime(WORKFLOW, &script(30)).await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");

    let run = h.run(&id).await;
    let checkpoint = run.checkpoint.to_string();
    assert!(run.checkpoint.get("conversations").is_none(), "{checkpoint}");
    assert!(checkpoint.len() < 1024, "checkpoint of {} bytes: {checkpoint}", checkpoint.len());

    // Goal, 30 × (turn + tool result), the final answer.
    let rows = h.store.messages(&id, "ops", 0).await.unwrap();
    assert_eq!(rows.len(), 62);
    let state = h.state(&id).await;
    let ops = &state.conversations["ops"];
    assert_eq!(ops.len(), 62);
    assert_eq!(ops[0], Message::User { text: "Add numbers.".into() });
    let Message::ToolResult { content, is_error: false, .. } = &ops[60] else { panic!("{:#?}", ops[60]) };
    assert_eq!(serde_json::from_str::<serde_json::Value>(content).unwrap(), json!({"sum": 30.0}));
    assert!(matches!(&ops[61], Message::Assistant { text: Some(t), .. } if t == "Done."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_checkpointed_with_its_whole_conversation_continues_from_it() {
    let h = Harness::new().await;
    let runtime = h.runtime(WORKFLOW, &script(1)).await;
    let id = runtime.start(None).await.unwrap();
    // Rewrite the checkpoint the way builds before message rows stored it.
    let run = h.run(&id).await;
    let legacy = json!({
        "agent": "ops", "agent_turns": {}, "next_step": 0, "pending": null, "active_ms": 0,
        "final_output": null,
        "conversations": {"ops": [
            {"role": "user", "text": "Add numbers."},
            {"role": "user", "text": "An earlier note kept in the old checkpoint."},
        ]},
    });
    let update = RunUpdate {
        id: id.clone(),
        expected_version: run.version,
        status: RunStatus::Running,
        status_detail: None,
        counters: run.counters.clone(),
        checkpoint: legacy,
        updated_at: run.updated_at,
        messages: Vec::new(),
    };
    h.store.commit(Commit { run: Some(update), ..Commit::default() }).await.unwrap();

    let outcome = runtime.advance(&id, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.status, RunStatus::Completed, "{outcome:?}");
    let state: RunState = h.state(&id).await;
    let ops = &state.conversations["ops"];
    assert_eq!(ops[1], Message::User { text: "An earlier note kept in the old checkpoint.".into() });
    assert_eq!(ops.len(), 5, "{ops:#?}");
    assert!(h.run(&id).await.checkpoint.get("conversations").is_none());
}
