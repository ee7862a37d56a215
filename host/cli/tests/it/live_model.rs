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
    let rewritten = source.replace("../../target/plugins", plugin_dir().to_str().unwrap());
    let path = dir.join("workflow.toml");
    std::fs::write(&path, rewritten).unwrap();
    std::fs::copy(workspace().join("examples/campaign-review/turns.toml"), dir.join("turns.toml")).unwrap();
    path
}

type Seen = Arc<Mutex<Vec<Value>>>;

/// Answers like a model would: first list the campaigns, then (having seen the tool result)
/// finish with a text answer.
async fn chat(State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}")) {
        let error = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}});
        return (StatusCode::UNAUTHORIZED, Json(error));
    }
    seen.lock().unwrap().push(body.clone());
    let has_result = body["messages"].as_array().unwrap().iter().any(|m| m["role"] == "tool");
    let message = if has_result {
        json!({"role": "assistant", "content": "Reviewed the campaigns; the report is ready."})
    } else {
        json!({"role": "assistant", "content": "Let me list the campaigns first.", "tool_calls": [{
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
    (StatusCode::OK, Json(reply))
}

fn start_model() -> (String, Seen, std::thread::JoinHandle<()>, tokio::sync::oneshot::Sender<()>) {
    let seen: Seen = Arc::default();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let state = seen.clone();
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
    let (model_url, seen, thread, stop) = start_model();
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
