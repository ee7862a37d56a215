//! Numbers a model server reports are data, not trusted arithmetic: a token count of 2^64 − 1
//! must end the run at its token bound, never panic the host (which would wedge the run: every
//! resume would panic again).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tollgate_store::RunStatus;

use crate::common::{Harness, Recorder, start};

/// An OpenAI-compatible server on 127.0.0.1 whose first answer calls `echo__echo` and reports
/// `prompt_tokens = u64::MAX`; later answers finish. Returns its base URL; it stops with the
/// test's runtime.
async fn serve_huge_usage() -> String {
    async fn chat(State(turns): State<Arc<AtomicUsize>>, Json(body): Json<Value>) -> Json<Value> {
        let first = turns.fetch_add(1, Ordering::SeqCst) == 0;
        let message = if first {
            json!({"role": "assistant", "content": "Echo first.", "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "echo__echo", "arguments": "{\"note\":\"hi\"}"},
            }]})
        } else {
            json!({"role": "assistant", "content": "Done."})
        };
        Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": if first { "tool_calls" } else { "stop" }}],
            "usage": {"prompt_tokens": u64::MAX, "completion_tokens": 7, "total_tokens": u64::MAX},
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/v1/chat/completions", post(chat)).with_state(Arc::new(AtomicUsize::new(0)));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_count_of_u64_max_ends_the_run_at_its_token_bound() {
    let h = Harness::new().await;
    let url = serve_huge_usage().await;
    let workflow = format!(
        r#"
name = "huge-usage"
version = "1.0.0"
entry = "ops"
goal = "Echo something."

[agents.ops]
model = "openai-compatible:test@{url}"
instructions = "Echo."
tools = ["echo.echo"]
"#
    );
    let runtime = h.runtime(&workflow, "").await;
    let (id, outcome) = start(&runtime, &Recorder::default()).await;
    assert_eq!(outcome.status, RunStatus::BoundHit, "{outcome:?}");
    assert!(outcome.detail.as_deref().unwrap_or_default().starts_with("max_tokens:"), "{outcome:?}");
    let counters = h.run(&id).await.counters;
    assert_eq!((counters.input_tokens, counters.output_tokens, counters.tool_calls), (u64::MAX, 7, 1));
    // Resuming the ended run is a no-op, not a panic.
    assert_eq!(runtime.advance(&id, &Recorder::default()).await.unwrap().status, RunStatus::BoundHit);
}
