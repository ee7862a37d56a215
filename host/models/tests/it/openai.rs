//! OpenAI Chat Completions and OpenAI-compatible servers, against local stand-ins.

use crate::common;

use std::time::{Duration, Instant};

use common::{Auth, Reply, Seen, options, request, start};
use serde_json::{Value, json};
use tollgate_models::{
    Message, ModelError, ModelRequest, ModelSpec, ModelTurn, Sampling, StopReason, ToolChoice, TurnSource, Usage,
    connect,
};

const KEY: &str = "sk-proj-test-4f9a2b7c1d8e3f6a0b5c9d2e7f1a4b8c";
const PATH: &str = "/v1/chat/completions";

fn tool_call_reply() -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4.1",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Checking the CRM.", "refusal": null,
                "tool_calls": [{"id": "call_xyz", "type": "function", "function": {
                    "name": "crm__find_contact", "arguments": "{\"email\":\"ana@example.com\"}"}}]}}],
            "usage": {"prompt_tokens": 321, "completion_tokens": 17, "total_tokens": 338}
        }),
    )
}

fn text_reply(text: &str) -> Reply {
    Reply::json(
        200,
        json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 3}}),
    )
}

async fn ask(spec: &str, vars: &[(&str, &str)]) -> Result<ModelTurn, ModelError> {
    let provider = connect(&spec.parse::<ModelSpec>().unwrap(), &options(vars))?;
    provider.complete(&request()).await
}

fn openai_vars(base: &str) -> Vec<(&'static str, String)> {
    vec![("OPENAI_API_KEY", KEY.to_string()), ("OPENAI_BASE_URL", format!("{base}/v1"))]
}

fn borrow<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn request_shape_and_tool_call_response() {
    let mock = start(PATH, Auth::Bearer(KEY.into()), |_, _| tool_call_reply()).await;
    let vars = openai_vars(&mock.base);
    let turn = ask("openai:gpt-4.1", &borrow(&vars)).await.unwrap();

    assert_eq!(turn.text.as_deref(), Some("Checking the CRM."));
    assert_eq!(turn.tool_calls.len(), 1);
    assert_eq!(turn.tool_calls[0].id, "call_xyz");
    assert_eq!(turn.tool_calls[0].name, "crm__find_contact");
    assert_eq!(turn.tool_calls[0].input, json!({"email": "ana@example.com"}));
    assert_eq!(turn.usage, Usage { input_tokens: 321, output_tokens: 17 });
    assert_eq!(turn.stop, StopReason::ToolUse);
    assert_eq!(turn.source, TurnSource::Live { provider: "openai".into(), model: "gpt-4.1".into() });

    let seen = mock.seen();
    assert_eq!(seen.len(), 1);
    let body = &seen[0].body;
    assert_eq!(body["model"], "gpt-4.1");
    assert_eq!(body["max_completion_tokens"], 1024);
    assert!(body.get("max_tokens").is_none(), "official API gets max_completion_tokens only");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0], json!({"role": "system", "content": "You analyse ad campaigns."}));
    assert_eq!(messages[1], json!({"role": "user", "content": "How did campaign 101 do?"}));
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["content"], "Looking it up.");
    assert_eq!(body["tool_choice"], "auto", "said whenever tools are offered");
    for unset in ["temperature", "top_p", "stop", "seed"] {
        assert!(body.get(unset).is_none(), "{unset} is the server's choice unless set");
    }
    let call = &messages[2]["tool_calls"][0];
    assert_eq!(call["id"], "call_a");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "ads__campaign_insights");
    let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"campaign_id": "101", "date_preset": "last_7d"}));
    assert_eq!(messages[3], json!({"role": "tool", "tool_call_id": "call_a", "content": "{\"spend\": 12.5}"}));
    assert_eq!(messages[4], json!({"role": "tool", "tool_call_id": "call_b", "content": "Error: not found"}));
    assert_eq!(messages.len(), 5);
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {"name": "ads__campaign_insights",
            "description": "Insights for one campaign.",
            "parameters": {"type": "object", "properties": {"campaign_id": {"type": "string"}},
                "required": ["campaign_id"]}}}])
    );
}

#[tokio::test]
async fn invalid_arguments_become_raw_and_text_turns_end() {
    let mock = start(PATH, Auth::Bearer(KEY.into()), |n, _| match n {
        0 => Reply::json(
            200,
            json!({"choices": [{"finish_reason": "tool_calls", "message": {"content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{\"a\": 1"}},
                {"id": "c2", "type": "function", "function": {"name": "u", "arguments": ""}}]}}],
             "usage": {"prompt_tokens": 1, "completion_tokens": 1}}),
        ),
        _ => Reply::json(
            200,
            json!({"choices": [{"finish_reason": "length", "message": {"content": "Partial answ"}}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 1024}}),
        ),
    })
    .await;
    let vars = openai_vars(&mock.base);
    let first = ask("openai:gpt-4.1", &borrow(&vars)).await.unwrap();
    assert_eq!(first.text, None);
    assert_eq!(first.tool_calls[0].input, json!({"_raw": "{\"a\": 1"}));
    assert!(first.tool_calls[0].arguments_error.as_deref().is_some_and(|e| e.contains("EOF")), "{first:?}");
    assert_eq!(first.tool_calls[1].input, json!({}));
    assert_eq!(first.tool_calls[1].arguments_error, None);
    let second = ask("openai:gpt-4.1", &borrow(&vars)).await.unwrap();
    assert_eq!(second.stop, StopReason::MaxTokens);
    assert_eq!(second.text.as_deref(), Some("Partial answ"));
    assert!(second.tool_calls.is_empty());
}

#[tokio::test]
async fn wrong_key_is_401_with_vendor_message_and_never_the_key() {
    let mock = start(PATH, Auth::Bearer(KEY.into()), |_, _| text_reply("unreachable")).await;
    let wrong = "sk-proj-wrong-9z8y7x6w5v4u3t2s1r0q9p8o7n6m";
    let vars = [("OPENAI_API_KEY", wrong), ("OPENAI_BASE_URL", &format!("{}/v1", mock.base))];
    let options = options(&vars);
    let provider = connect(&"openai:gpt-4.1".parse().unwrap(), &options).unwrap();
    let error = provider.complete(&request()).await.unwrap_err();

    let ModelError::Http { status, message, attempts, .. } = &error else { panic!("{error:?}") };
    assert_eq!((*status, *attempts), (401, 1), "auth failures are not retried");
    assert!(message.contains("Incorrect API key provided"), "{message}");
    assert!(message.contains("OPENAI_API_KEY"), "names the variable to fix: {message}");
    for text in [error.to_string(), format!("{error:?}"), format!("{options:?}"), provider.describe()] {
        assert!(!text.contains(wrong) && !text.contains("wrong-9z8y7x6w"), "key leaked: {text}");
    }
    // The stand-in did see the key: the redaction is ours, not the server's.
    assert_eq!(mock.seen()[0].headers["authorization"], format!("Bearer {wrong}").as_str());
}

#[tokio::test]
async fn missing_key_fails_at_connect_without_a_request() {
    let mock = start(PATH, Auth::Bearer(KEY.into()), |_, _| text_reply("x")).await;
    let base = format!("{}/v1", mock.base);
    let options = options(&[("OPENAI_API_KEY", "  "), ("OPENAI_BASE_URL", &base)]);
    let error = connect(&"openai:gpt-4.1".parse().unwrap(), &options).err().unwrap();
    assert_eq!(error, ModelError::MissingApiKey { var: "OPENAI_API_KEY".into() });
    assert!(error.to_string().contains("export your API key in OPENAI_API_KEY"));
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_retried_then_succeeds() {
    let mock = start(PATH, Auth::Bearer(KEY.into()), |n, _| match n {
        0 => Reply::json(
            429,
            json!({"error": {"message": "Rate limit reached for gpt-4.1", "type": "requests",
            "param": null, "code": "rate_limit_exceeded"}}),
        )
        .header("retry-after", "1"),
        _ => text_reply("Done."),
    })
    .await;
    let vars = openai_vars(&mock.base);
    let started = Instant::now();
    let turn = ask("openai:gpt-4.1", &borrow(&vars)).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(turn.text.as_deref(), Some("Done."));
    assert_eq!(mock.count(), 2);
    assert!(elapsed >= Duration::from_secs(1), "Retry-After honoured: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_beyond_the_bound_ends_the_call_at_once() {
    let mock = start(PATH, Auth::Bearer(KEY.into()), |_, _| {
        Reply::json(429, json!({"error": {"message": "quota", "type": "requests", "code": "rate_limit_exceeded"}}))
            .header("retry-after", "3600")
    })
    .await;
    let vars = openai_vars(&mock.base);
    let started = Instant::now();
    let error = ask("openai:gpt-4.1", &borrow(&vars)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        error,
        ModelError::RateLimited {
            provider: "openai".into(),
            retry_after: Some(Duration::from_secs(3600)),
            attempts: 1
        }
    );
    assert!(error.to_string().contains("retry after 3600s"), "{error}");
    assert_eq!(mock.count(), 1);
}

#[tokio::test]
async fn server_error_forever_gives_up_after_max_retries() {
    let mock = start(PATH, Auth::Bearer(KEY.into()), |_, _| {
        Reply::json(
            500,
            json!({"error": {"message": "The server had an error while processing your request.",
            "type": "server_error", "param": null, "code": null}}),
        )
    })
    .await;
    let vars = openai_vars(&mock.base);
    let error = ask("openai:gpt-4.1", &borrow(&vars)).await.unwrap_err();
    let ModelError::Http { status, attempts, message, .. } = &error else { panic!("{error:?}") };
    assert_eq!((*status, *attempts), (500, 3));
    assert!(message.contains("The server had an error"), "{message}");
    assert!(error.is_transient());
    assert_eq!(mock.count(), 3, "1 attempt + max_retries (2)");
}

#[tokio::test]
async fn malformed_json_is_bad_response_and_not_retried() {
    let mock = start(PATH, Auth::Bearer(KEY.into()), |_, _| Reply {
        status: 200,
        headers: vec![],
        body: "{\"choices\": [".into(),
        delay: Duration::ZERO,
    })
    .await;
    let vars = openai_vars(&mock.base);
    let error = ask("openai:gpt-4.1", &borrow(&vars)).await.unwrap_err();
    assert!(matches!(&error, ModelError::BadResponse { message, .. } if message.contains("not JSON")), "{error:?}");
    assert_eq!(mock.count(), 1);

    let mock = start(PATH, Auth::Bearer(KEY.into()), |_, _| Reply::json(200, json!({"choices": []}))).await;
    let vars = openai_vars(&mock.base);
    let error = ask("openai:gpt-4.1", &borrow(&vars)).await.unwrap_err();
    assert!(matches!(&error, ModelError::BadResponse { message, .. } if message.contains("choices[0]")), "{error:?}");
}

#[tokio::test]
async fn slow_server_times_out_within_the_bound() {
    let mock = start(PATH, Auth::Bearer(KEY.into()), |_, _| {
        let mut reply = text_reply("too late");
        reply.delay = Duration::from_secs(30);
        reply
    })
    .await;
    let vars = openai_vars(&mock.base);
    let mut options = options(&borrow(&vars));
    options.timeout = Duration::from_millis(300);
    options.max_retries = 1;
    let provider = connect(&"openai:gpt-4.1".parse().unwrap(), &options).unwrap();
    let started = Instant::now();
    let error = provider.complete(&request()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        error,
        ModelError::Timeout { provider: "openai".into(), after: Duration::from_millis(300), attempts: 2 }
    );
    assert!(elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(mock.count(), 2);
}

#[tokio::test]
async fn connection_refused_is_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let error = ask(&format!("openai-compatible:llama3.1@{base}"), &[]).await.unwrap_err();
    let ModelError::Transport { provider, message } = &error else { panic!("{error:?}") };
    assert_eq!(provider, "openai-compatible");
    assert!(message.contains("127.0.0.1"), "says where: {message}");
}

#[tokio::test]
async fn compatible_without_key_sends_no_auth_and_uses_max_tokens() {
    let mock = start(PATH, Auth::Open, |_, _| {
        // Older Ollama: no usage, no call id, "stop" despite a tool call, arguments as an object.
        Reply::json(
            200,
            json!({"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": "ads__campaign_insights", "arguments": {"campaign_id": "7"}}}]}}]}),
        )
    })
    .await;
    let spec = format!("openai-compatible:llama3.1:8b@{}/v1", mock.base);
    let turn = ask(&spec, &[("OPENAI_API_KEY", KEY)]).await.unwrap();
    assert_eq!(turn.usage, Usage::default());
    assert_eq!(turn.stop, StopReason::ToolUse);
    assert_eq!(turn.text, None);
    assert_eq!(turn.tool_calls[0].id, "call_t1_0");
    assert_eq!(turn.tool_calls[0].input, json!({"campaign_id": "7"}));
    assert_eq!(turn.source, TurnSource::Live { provider: "openai-compatible".into(), model: "llama3.1:8b".into() });

    let seen: Seen = mock.seen().remove(0);
    assert!(seen.headers.get("authorization").is_none(), "OPENAI_API_KEY is not sent to other servers");
    assert_eq!(seen.body["max_tokens"], 1024);
    assert!(seen.body.get("max_completion_tokens").is_none());
    assert_eq!(seen.body["model"], "llama3.1:8b");
}

#[tokio::test]
async fn compatible_with_key_sends_bearer_and_reports_server_errors() {
    let key = "local-secret-key-123456";
    let mock = start(PATH, Auth::Bearer(key.into()), |_, _| {
        Reply::json(
            404,
            json!({"error": {"message": "model \"nope\" not found, try pulling it first",
            "type": "api_error", "param": null, "code": null}}),
        )
    })
    .await;
    let spec = format!("openai-compatible:nope@{}/v1", mock.base);
    let error = ask(&spec, &[("OPENAI_COMPATIBLE_API_KEY", key)]).await.unwrap_err();
    let ModelError::Http { status, message, .. } = &error else { panic!("{error:?}") };
    assert_eq!(*status, 404);
    assert!(message.contains("not found, try pulling it first"), "{message}");
    assert!(message.contains("check the model name"), "{message}");
    assert_eq!(mock.count(), 1);
    assert_eq!(mock.seen()[0].headers["authorization"], format!("Bearer {key}").as_str());
}

/// llama-cpp-python answers HTTP 500 to an assistant turn whose `content` is `null`, so an
/// assistant turn with tool calls and no text goes out with `""`.
#[tokio::test]
async fn assistant_tool_call_turns_without_text_send_empty_content_not_null() {
    let mock = start(PATH, Auth::Open, |_, _| text_reply("Done.")).await;
    let provider = connect(&format!("openai-compatible:m@{}/v1", mock.base).parse().unwrap(), &options(&[])).unwrap();
    let mut request = request();
    let Message::Assistant { text, .. } = &mut request.messages[1] else { panic!("fixture changed") };
    *text = None;
    provider.complete(&request).await.unwrap();
    let body = mock.seen().remove(0).body;
    let assistant = &body["messages"][2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["content"], "", "{assistant}");
    assert_eq!(assistant["tool_calls"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn tool_choice_and_sampling_options_are_sent_as_set() {
    let mock = start(PATH, Auth::Open, |_, _| text_reply("Done.")).await;
    let provider = connect(&format!("openai-compatible:m@{}/v1", mock.base).parse().unwrap(), &options(&[])).unwrap();
    let sampling =
        Sampling { temperature: Some(0.0), top_p: Some(0.5), stop: vec!["</answer>".into()], seed: Some(42) };
    let with_tools = ModelRequest { tool_choice: ToolChoice::Required, sampling: sampling.clone(), ..request() };
    provider.complete(&with_tools).await.unwrap();
    let without_tools = ModelRequest { tools: vec![], sampling, ..request() };
    provider.complete(&without_tools).await.unwrap();

    let seen = mock.seen();
    let body = &seen[0].body;
    assert_eq!(body["tool_choice"], "required");
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["top_p"], 0.5);
    assert_eq!(body["stop"], json!(["</answer>"]));
    assert_eq!(body["seed"], 42);
    let body = &seen[1].body;
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none(), "no tools, no tool_choice: {body}");
    assert_eq!(body["temperature"], 0.0);
}

/// `content: null` with `tool_calls: []` (and `""` with `finish_reason: "tool_calls"`, which
/// llama-cpp-python sends when its model chose `message:`) is a final answer with no text, not
/// a tool turn with nothing to run and not an unreadable response.
#[tokio::test]
async fn a_turn_with_neither_text_nor_tool_calls_ends_the_agent() {
    let mock = start(PATH, Auth::Open, |n, _| {
        let message = match n {
            0 => json!({"role": "assistant", "content": null, "tool_calls": []}),
            _ => json!({"role": "assistant", "content": ""}),
        };
        Reply::json(200, json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}]}))
    })
    .await;
    let provider = connect(&format!("openai-compatible:m@{}/v1", mock.base).parse().unwrap(), &options(&[])).unwrap();
    for _ in 0..2 {
        let turn = provider.complete(&request()).await.unwrap();
        assert_eq!((turn.text, turn.tool_calls.len(), turn.stop), (None, 0, StopReason::EndTurn));
    }
}

/// Token counts a server reports as floats, negative, or beyond `u64` do not become 0 when
/// they are large (the run's token bound must still see them) and do not fail the turn.
#[tokio::test]
async fn huge_or_odd_token_counts_saturate_instead_of_vanishing() {
    let mock = start(PATH, Auth::Open, |n, _| {
        let usage = match n {
            0 => json!({"prompt_tokens": 1e300, "completion_tokens": 18446744073709551615_u64}),
            1 => json!({"prompt_tokens": 12.0, "completion_tokens": -5}),
            _ => json!({"prompt_tokens": "many", "completion_tokens": null}),
        };
        Reply::json(200, json!({"choices": [{"finish_reason": "stop", "message": {"content": "ok"}}], "usage": usage}))
    })
    .await;
    let provider = connect(&format!("openai-compatible:m@{}/v1", mock.base).parse().unwrap(), &options(&[])).unwrap();
    let usage = |turn: ModelTurn| (turn.usage.input_tokens, turn.usage.output_tokens);
    assert_eq!(usage(provider.complete(&request()).await.unwrap()), (u64::MAX, u64::MAX));
    assert_eq!(usage(provider.complete(&request()).await.unwrap()), (12, 0));
    assert_eq!(usage(provider.complete(&request()).await.unwrap()), (0, 0));
}
