//! The flagship workflow against a live model API: a local OpenAI-compatible server (what
//! Ollama, llama.cpp and vLLM expose) plays the model, so the test checks the real wire format
//! end to end — tools offered, tool results threaded back, the turn labelled live, not replay.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tollgate_standins::{StandIns, Tokens};

const KEY: &str = "sk-local-test-key";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the example's plugins are built (each checked, so a missing one names the command).
fn plugin_dir() -> PathBuf {
    for name in ["ads", "crm", "email"] {
        crate::built_plugins::path(name);
    }
    crate::built_plugins::dir()
}

/// The example workflow, copied with absolute plugin paths (the build may live elsewhere).
fn workflow_copy(dir: &Path) -> PathBuf {
    let source = std::fs::read_to_string(workspace().join("examples/campaign-review/workflow.toml")).unwrap();
    let mut rewritten = source.replace("../../target/plugins", plugin_dir().to_str().unwrap());
    // The analyst's sampling settings must reach the server as written.
    rewritten.push_str("\n[agents.analyst.sampling]\ntemperature = 0\nseed = 7\nstop = [\"</report>\"]\n");
    let path = dir.join("workflow.toml");
    std::fs::write(&path, rewritten).unwrap();
    std::fs::copy(workspace().join("examples/campaign-review/turns.toml"), dir.join("turns.toml")).unwrap();
    path
}

type Seen = Arc<Mutex<Vec<Value>>>;

/// The stand-in's state: the requests it saw, and whether it reports absurd token counts.
#[derive(Clone, Default)]
struct Model {
    seen: Seen,
    huge_usage: bool,
}

/// Answers like a model would: first list the campaigns, then (having seen the tool result)
/// finish with a text answer.
async fn chat(State(model): State<Model>, headers: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let seen = &model.seen;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}")) {
        let error = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}});
        return (StatusCode::UNAUTHORIZED, Json(error));
    }
    seen.lock().unwrap().push(body.clone());
    let messages = body["messages"].as_array().unwrap();
    // As llama-cpp-python 0.3.36 does: an assistant turn whose content is null fails its
    // request validation (HTTP 500).
    if messages.iter().any(|m| m["role"] == "assistant" && m["content"].is_null()) {
        let error = json!({"error": {"message": "7 validation errors for ChatCompletionRequest", "type": "internal_server_error"}});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(error));
    }
    let has_result = messages.iter().any(|m| m["role"] == "tool");
    // As llama-cpp-python's function-calling formats do: without `tool_choice` the tools are
    // left out of the prompt, so the model can only answer in text.
    let sees_tools = body["tools"].is_array() && body["tool_choice"] == "auto";
    let message = if has_result || !sees_tools {
        json!({"role": "assistant", "content": "Reviewed the campaigns; the report is ready."})
    } else {
        // No text beside the call: the turn goes back in the history with no text.
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "ads__list_campaigns", "arguments": "{\"ad_account_id\":\"1234567890\"}"},
        }]})
    };
    let finish = if has_result { "stop" } else { "tool_calls" };
    let reply = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 420, "completion_tokens": 17, "total_tokens": 437},
    });
    let mut reply = reply;
    if model.huge_usage {
        // Beyond u64 (a float to JSON parsers) and u64::MAX itself.
        reply["usage"] = json!({"prompt_tokens": 1e300, "completion_tokens": u64::MAX});
    }
    (StatusCode::OK, Json(reply))
}

fn start_model(huge_usage: bool) -> (String, Seen, std::thread::JoinHandle<()>, tokio::sync::oneshot::Sender<()>) {
    let seen: Seen = Arc::default();
    let model = Model { seen: seen.clone(), huge_usage };
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let state = model;
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new().route("/v1/chat/completions", post(chat)).with_state(state);
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stop_rx.await;
            });
            let _ = tokio::time::timeout(std::time::Duration::from_secs(120), server).await;
        });
    });
    let addr = addr_rx.recv().unwrap();
    (format!("http://{addr}/v1"), seen, thread, stop_tx)
}

#[test]
fn campaign_review_runs_against_an_openai_compatible_model() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = workflow_copy(dir.path());
    let (standins, _bg) = StandIns::start_blocking(Tokens::default()).unwrap();
    let (model_url, seen, thread, stop) = start_model(false);
    let tollgate = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .env("TOLLGATE_DATA_DIR", dir.path().join("data"))
            .env("OPENAI_COMPATIBLE_API_KEY", KEY)
            .env("META_ACCESS_TOKEN", "meta-test-token")
            .env("SENDGRID_API_KEY", "SG.test-token")
            .env("HUBSPOT_TOKEN", "hubspot-test-token")
            .output()
            .unwrap()
    };
    let model = format!("openai-compatible:test-model@{model_url}");
    let upstream = format!("graph.facebook.com={}", standins.meta.base_url());
    let out = tollgate(&["run", workflow.to_str().unwrap(), "--model", &model, "--upstream", &upstream]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("openai-compatible:test-model") && !stdout.contains("[replay]"), "{stdout}");
    assert!(stdout.contains("Reviewed the campaigns; the report is ready."), "{stdout}");

    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "one request per model turn");
    let first = &requests[0];
    assert_eq!(first["model"], "test-model");
    let tools: Vec<&str> =
        first["tools"].as_array().unwrap().iter().filter_map(|t| t["function"]["name"].as_str()).collect();
    assert!(tools.contains(&"ads__list_campaigns") && tools.contains(&"handoff__copywriter"), "{tools:?}");
    assert!(
        !tools.iter().any(|t| t.starts_with("email__")),
        "the analyst must not see the copywriter's tools: {tools:?}"
    );
    assert_eq!(first["messages"][0]["role"], "system");
    assert_eq!(first["tool_choice"], "auto");
    assert_eq!(
        (&first["temperature"], &first["seed"], &first["stop"]),
        (&json!(0.0), &json!(7), &json!(["</report>"]))
    );
    let assistant = requests[1]["messages"].as_array().unwrap().iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant["content"], "", "a tool-call turn without text goes back with \"\", not null");
    let second = requests[1]["messages"].as_array().unwrap();
    let result = second.iter().find(|m| m["role"] == "tool").expect("the tool result went back to the model");
    assert_eq!(result["tool_call_id"], "call_1");
    assert!(result["content"].as_str().unwrap().contains("Black Friday Retargeting"), "{result}");

    let show = tollgate(&["runs", "list", "--json"]);
    let runs: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["counters"]["input_tokens"], 840, "usage from both turns is counted");
    let id = runs[0]["id"].as_str().unwrap();
    let detail: Value = serde_json::from_slice(&tollgate(&["runs", "show", id, "--json"]).stdout).unwrap();
    assert_eq!(detail["steps"][0]["turn"]["source"]["kind"], "live", "{}", detail["steps"][0]["turn"]);

    let _ = stop.send(());
    thread.join().unwrap();
}

/// A server reporting absurd token counts (beyond u64, u64::MAX) does not slip past the run's
/// token bound as "0 tokens": the counts saturate, the bound stops the run (exit 4), and the
/// store keeps and shows the numbers.
#[test]
fn huge_token_counts_from_a_server_hit_the_token_bound() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = workflow_copy(dir.path());
    let (standins, _bg) = StandIns::start_blocking(Tokens::default()).unwrap();
    let (model_url, _seen, thread, stop) = start_model(true);
    let tollgate = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .env("TOLLGATE_DATA_DIR", dir.path().join("data"))
            .env("OPENAI_COMPATIBLE_API_KEY", KEY)
            .env("META_ACCESS_TOKEN", "meta-test-token")
            .output()
            .unwrap()
    };
    let model = format!("openai-compatible:test-model@{model_url}");
    let upstream = format!("graph.facebook.com={}", standins.meta.base_url());
    let out = tollgate(&["run", workflow.to_str().unwrap(), "--model", &model, "--upstream", &upstream]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("max_tokens"), "{stdout}");

    let runs: Value = serde_json::from_slice(&tollgate(&["runs", "list", "--json"]).stdout).unwrap();
    assert_eq!(runs[0]["status"], "bound_hit");
    assert_eq!(runs[0]["counters"]["input_tokens"], u64::MAX, "{}", runs[0]);
    let _ = stop.send(());
    thread.join().unwrap();
}
