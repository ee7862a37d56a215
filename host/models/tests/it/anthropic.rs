//! Anthropic Messages against a local stand-in.

use crate::common;

use std::time::Duration;

use common::{Auth, Reply, options, request, start};
use serde_json::json;
use tollgate_models::{
    ModelError, ModelRequest, ModelSpec, Sampling, StopReason, ToolChoice, TurnSource, Usage, connect,
};

const KEY: &str = "sk-ant-api03-test-Zq8w7e6r5t4y3u2i1o0p-abcdefgh";
const PATH: &str = "/v1/messages";

fn vars(base: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![("ANTHROPIC_API_KEY", key.to_string()), ("ANTHROPIC_BASE_URL", base.to_string())]
}

fn borrow<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn spec() -> ModelSpec {
    "anthropic:claude-sonnet-4-5".parse().unwrap()
}

#[tokio::test]
async fn request_shape_and_tool_use_response() {
    let mock = start(PATH, Auth::XApiKey(KEY.into()), |_, _| {
        Reply::json(
            200,
            json!({
                "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [
                    {"type": "thinking", "thinking": "internal", "signature": "sig"},
                    {"type": "text", "text": "Spend is low; checking the contact."},
                    {"type": "tool_use", "id": "toolu_01A", "name": "crm__find_contact",
                     "input": {"email": "ana@example.com"}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 400, "cache_read_input_tokens": 100, "output_tokens": 42}
            }),
        )
    })
    .await;
    let vars = vars(&mock.base, KEY);
    let provider = connect(&spec(), &options(&borrow(&vars))).unwrap();
    assert_eq!(provider.describe(), "anthropic:claude-sonnet-4-5");
    assert!(!provider.is_replay());
    let turn = provider.complete(&request()).await.unwrap();

    assert_eq!(turn.text.as_deref(), Some("Spend is low; checking the contact."));
    assert_eq!(turn.tool_calls.len(), 1);
    assert_eq!(turn.tool_calls[0].id, "toolu_01A");
    assert_eq!(turn.tool_calls[0].input, json!({"email": "ana@example.com"}));
    assert_eq!(turn.stop, StopReason::ToolUse);
    assert_eq!(turn.usage, Usage { input_tokens: 500, output_tokens: 42 });
    assert_eq!(turn.source, TurnSource::Live { provider: "anthropic".into(), model: "claude-sonnet-4-5".into() });

    let seen = mock.seen().remove(0);
    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
    assert!(seen.headers.get("authorization").is_none());
    let body = seen.body;
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["system"], "You analyse ad campaigns.", "system is top-level");
    assert_eq!(body["tool_choice"], json!({"type": "auto"}), "said whenever tools are offered");
    for unset in ["temperature", "top_p", "stop_sequences"] {
        assert!(body.get(unset).is_none(), "{unset} is the server's choice unless set");
    }
    assert_eq!(
        body["tools"],
        json!([{"name": "ads__campaign_insights", "description": "Insights for one campaign.",
            "input_schema": {"type": "object", "properties": {"campaign_id": {"type": "string"}},
                "required": ["campaign_id"]}}])
    );
    let expected_messages = json!([
        {"role": "user", "content": [{"type": "text", "text": "How did campaign 101 do?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Looking it up."},
            {"type": "tool_use", "id": "call_a", "name": "ads__campaign_insights",
             "input": {"campaign_id": "101", "date_preset": "last_7d"}},
            {"type": "tool_use", "id": "call_b", "name": "crm__find_contact", "input": {"email": "x@y.z"}}
        ]},
        // Both results in one user message, errors flagged.
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_a", "content": "{\"spend\": 12.5}", "is_error": false},
            {"type": "tool_result", "tool_use_id": "call_b", "content": "not found", "is_error": true}
        ]}
    ]);
    assert_eq!(body["messages"], expected_messages);
}

#[tokio::test]
async fn text_turn_max_tokens_and_no_tools_field_when_none() {
    let mock = start(PATH, Auth::XApiKey(KEY.into()), |_, _| {
        Reply::json(
            200,
            json!({"content": [{"type": "text", "text": "Part one"}, {"type": "text", "text": "part two"}],
                   "stop_reason": "max_tokens", "usage": {"input_tokens": 9, "output_tokens": 1024}}),
        )
    })
    .await;
    let vars = vars(&mock.base, KEY);
    let provider = connect(&spec(), &options(&borrow(&vars))).unwrap();
    let mut request = request();
    request.tools.clear();
    request.system.clear();
    let turn = provider.complete(&request).await.unwrap();
    assert_eq!(turn.text.as_deref(), Some("Part one\npart two"));
    assert_eq!(turn.stop, StopReason::MaxTokens);
    assert!(turn.tool_calls.is_empty());
    let body = mock.seen().remove(0).body;
    assert!(body.get("tools").is_none() && body.get("system").is_none(), "{body}");
}

#[tokio::test]
async fn wrong_key_is_401_authentication_error_without_the_key() {
    let mock = start(PATH, Auth::XApiKey(KEY.into()), |_, _| Reply::json(200, json!({}))).await;
    let wrong = "sk-ant-api03-WRONG-a1b2c3d4e5f6g7h8i9j0";
    let vars = vars(&mock.base, wrong);
    let options = options(&borrow(&vars));
    let provider = connect(&spec(), &options).unwrap();
    let error = provider.complete(&request()).await.unwrap_err();
    assert_eq!(
        error,
        ModelError::Http {
            provider: "anthropic".into(),
            status: 401,
            message: "invalid x-api-key (authentication_error) — check ANTHROPIC_API_KEY".into(),
            attempts: 1,
        }
    );
    for text in [error.to_string(), format!("{error:?}"), format!("{options:?}")] {
        assert!(!text.contains(wrong), "key leaked: {text}");
    }
    assert_eq!(mock.seen()[0].headers["x-api-key"], wrong);
}

#[tokio::test]
async fn overloaded_529_is_retried() {
    let mock = start(PATH, Auth::XApiKey(KEY.into()), |n, _| match n {
        0 | 1 => {
            Reply::json(529, json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
        }
        _ => Reply::json(
            200,
            json!({"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                   "usage": {"input_tokens": 1, "output_tokens": 1}}),
        ),
    })
    .await;
    let vars = vars(&mock.base, KEY);
    let turn = connect(&spec(), &options(&borrow(&vars))).unwrap().complete(&request()).await.unwrap();
    assert_eq!(turn.text.as_deref(), Some("ok"));
    assert_eq!(turn.stop, StopReason::EndTurn);
    assert_eq!(mock.count(), 3);
}

#[tokio::test]
async fn missing_content_is_bad_response_and_slow_is_timeout() {
    let mock = start(PATH, Auth::XApiKey(KEY.into()), |n, _| match n {
        0 => Reply::json(200, json!({"type": "message", "stop_reason": "end_turn"})),
        _ => {
            let mut reply = Reply::json(200, json!({}));
            reply.delay = Duration::from_secs(30);
            reply
        }
    })
    .await;
    let vars = vars(&mock.base, KEY);
    let mut options = options(&borrow(&vars));
    options.timeout = Duration::from_millis(200);
    options.max_retries = 0;
    let provider = connect(&spec(), &options).unwrap();
    let error = provider.complete(&request()).await.unwrap_err();
    assert!(matches!(&error, ModelError::BadResponse { message, .. } if message.contains("content")), "{error:?}");
    let error = provider.complete(&request()).await.unwrap_err();
    assert!(matches!(error, ModelError::Timeout { attempts: 1, .. }), "{error:?}");
}

#[test]
fn bad_base_url_and_missing_key_fail_at_connect() {
    let error = connect(&spec(), &options(&[])).err().unwrap();
    assert_eq!(error, ModelError::MissingApiKey { var: "ANTHROPIC_API_KEY".into() });
    let error =
        connect(&spec(), &options(&[("ANTHROPIC_API_KEY", KEY), ("ANTHROPIC_BASE_URL", "ftp://x")])).err().unwrap();
    assert!(matches!(&error, ModelError::BadBaseUrl { origin, .. } if origin == "ANTHROPIC_BASE_URL"), "{error:?}");
}

#[tokio::test]
async fn tool_choice_and_sampling_map_to_the_messages_api() {
    let mock = start(PATH, Auth::XApiKey(KEY.into()), |_, _| {
        Reply::json(200, json!({"content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn"}))
    })
    .await;
    let vars = vars(&mock.base, KEY);
    let provider = connect(&spec(), &options(&borrow(&vars))).unwrap();
    let sampling = Sampling { temperature: Some(0.2), top_p: Some(0.9), stop: vec!["END".into()], seed: Some(7) };
    provider.complete(&ModelRequest { tool_choice: ToolChoice::Required, sampling, ..request() }).await.unwrap();
    let body = mock.seen().remove(0).body;
    assert_eq!(body["tool_choice"], json!({"type": "any"}));
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert!(body.get("seed").is_none() && body.get("stop").is_none(), "{body}");
}
