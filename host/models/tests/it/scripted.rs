//! The scripted (replay) provider and model spec strings.

use crate::common;

use std::path::{Path, PathBuf};

use common::request;
use serde_json::json;
use tollgate_models::{
    Message, ModelError, ModelRequest, ModelSpec, ModelTurn, ProviderOptions, StopReason, TurnSource, Usage, connect,
};

const SCRIPT: &str = r#"# Replayed model turns — not a model. Tollgate labels every turn from this file as replay.
[[turns]]
agent = "analyst"
text = "Reasoning text for this step."
[[turns.tool_calls]]
name = "ads__campaign_insights"
input = { campaign_id = "120210000000000101", date_preset = "last_7d" }
[[turns.tool_calls]]
name = "not_offered_to_this_agent"

[[turns]]
agent = "writer"
text = "Drafting."
usage = { input_tokens = 7, output_tokens = 3 }

[[turns]]
agent = "analyst"
text = "Final answer (no tool calls ends the agent)."
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn scripted(dir: &Path, path: &str) -> Result<std::sync::Arc<dyn tollgate_models::Provider>, ModelError> {
    connect(&ModelSpec::Scripted { path: PathBuf::from(path) }, &ProviderOptions::new(dir))
}

fn ask_for(agent: &str, turn_index: u32) -> ModelRequest {
    ModelRequest { agent: agent.into(), turn_index, ..request() }
}

async fn turn(provider: &dyn tollgate_models::Provider, agent: &str, n: u32) -> Result<ModelTurn, ModelError> {
    provider.complete(&ask_for(agent, n)).await
}

#[tokio::test]
async fn turns_replay_per_agent_in_file_order_and_are_labelled() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("demo")).unwrap();
    write(&dir.path().join("demo"), "turns.toml", SCRIPT);
    let provider = scripted(dir.path(), "demo/turns.toml").unwrap();
    assert!(provider.is_replay());
    assert_eq!(provider.describe(), "replay of demo/turns.toml");

    let first = turn(&*provider, "analyst", 0).await.unwrap();
    assert_eq!(first.text.as_deref(), Some("Reasoning text for this step."));
    assert_eq!(first.stop, StopReason::ToolUse);
    assert_eq!(first.source, TurnSource::Replay { script: "demo/turns.toml".into(), index: 0 });
    let ids: Vec<&str> = first.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["call_analyst_0_0", "call_analyst_0_1"]);
    assert_eq!(first.tool_calls[0].input, json!({"campaign_id": "120210000000000101", "date_preset": "last_7d"}));
    // Not among request.tools: returned anyway, the runtime's gate denies it.
    assert_eq!(first.tool_calls[1].name, "not_offered_to_this_agent");
    assert_eq!(first.tool_calls[1].input, json!({}));

    // The writer's turn in between does not shift the analyst's numbering.
    let second = turn(&*provider, "analyst", 1).await.unwrap();
    assert_eq!(second.text.as_deref(), Some("Final answer (no tool calls ends the agent)."));
    assert_eq!(second.stop, StopReason::EndTurn);
    assert!(second.tool_calls.is_empty());
    assert_eq!(second.source, TurnSource::Replay { script: "demo/turns.toml".into(), index: 1 });

    let writer = turn(&*provider, "writer", 0).await.unwrap();
    assert_eq!(writer.text.as_deref(), Some("Drafting."));
    assert_eq!(writer.usage, Usage { input_tokens: 7, output_tokens: 3 });

    // Stateless: asking again (a resumed run) gives the same turn.
    assert_eq!(turn(&*provider, "analyst", 0).await.unwrap(), first);
}

#[tokio::test]
async fn usage_defaults_to_a_four_chars_per_token_estimate() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.toml", "[[turns]]\nagent = \"a\"\ntext = \"12345678\"\n");
    let provider = scripted(dir.path(), "t.toml").unwrap();
    let request = ModelRequest {
        agent: "a".into(),
        turn_index: 0,
        system: "abcd".into(),
        messages: vec![Message::User { text: "hello".into() }],
        tools: vec![],
        max_output_tokens: 10,
        tool_choice: Default::default(),
        sampling: Default::default(),
    };
    let turn = provider.complete(&request).await.unwrap();
    // input: 4 + 5 = 9 chars → 3 tokens (rounded up); output: 8 chars → 2 tokens.
    assert_eq!(turn.usage, Usage { input_tokens: 3, output_tokens: 2 });
}

#[tokio::test]
async fn running_out_of_turns_is_script_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "turns.toml", SCRIPT);
    let provider = scripted(dir.path(), "turns.toml").unwrap();
    let error = turn(&*provider, "analyst", 2).await.unwrap_err();
    assert_eq!(
        error,
        ModelError::ScriptExhausted {
            agent: "analyst".into(),
            turn_index: 2,
            script: "turns.toml".into(),
            available: 2
        }
    );
    assert!(error.to_string().contains("add a [[turns]] entry with agent = \"analyst\""), "{error}");
    let error = turn(&*provider, "nobody", 0).await.unwrap_err();
    assert!(matches!(error, ModelError::ScriptExhausted { available: 0, .. }), "{error:?}");
}

fn load_error(text: &str) -> (Option<u32>, Option<u32>, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.toml", text);
    match scripted(dir.path(), "bad.toml").err().unwrap() {
        ModelError::Script { path, line, col, message } => {
            assert_eq!(path, dir.path().join("bad.toml"));
            (line, col, message)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_key_is_reported_with_line_and_column() {
    let (line, col, message) = load_error("[[turns]]\nagent = \"a\"\ntext = \"x\"\ntool_cals = []\n");
    assert_eq!((line, col), (Some(4), Some(1)), "{message}");
    assert!(message.contains("tool_cals"), "{message}");

    let (line, col, message) =
        load_error("[[turns]]\nagent = \"a\"\n[[turns.tool_calls]]\nname = \"t\"\n  inptu = { a = 1 }\n");
    assert_eq!((line, col), (Some(5), Some(3)), "{message}");
    assert!(message.contains("inptu"), "{message}");
}

#[test]
fn bad_toml_and_bad_turns_are_reported_with_line_and_column() {
    let (line, col, message) = load_error("[[turns]]\nagent = \"a\"\ntext = \"unterminated\n");
    assert_eq!(line, Some(3), "{message}");
    assert!(col.is_some());

    let (line, _, message) = load_error("[[turns]]\nagent = \"a\"\ntext = \"ok\"\n\n[[turns]]\nagent = \"b\"\n");
    assert_eq!(line, Some(5), "{message}");
    assert!(message.contains("needs `text` (`text = \"\"` for an empty answer), `tool_calls`"), "{message}");

    let (line, _, message) = load_error(
        "[[turns]]\nagent = \"a\"\n[[turns.tool_calls]]\nname = \"t\"\ninput = { a = 1 }\nraw_arguments = \"{}\"\n",
    );
    assert_eq!(line, Some(1), "{message}");
    assert!(message.contains("has both `input` and `raw_arguments`"), "{message}");

    let (line, _, message) = load_error("[[turns]]\ntext = \"no agent\"\n");
    assert_eq!(line, Some(1), "{message}");
    assert!(message.contains("agent"), "{message}");
}

#[tokio::test]
async fn raw_arguments_replay_as_a_live_provider_parses_them() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
[[turns]]
agent = "a"
text = ""

[[turns]]
agent = "a"
[[turns.tool_calls]]
name = "t"
raw_arguments = '{"note": "cut'
[[turns.tool_calls]]
name = "t"
raw_arguments = '{"note": "whole"}'
"#;
    write(dir.path(), "turns.toml", script);
    let provider = scripted(dir.path(), "turns.toml").unwrap();
    let empty = turn(&*provider, "a", 0).await.unwrap();
    assert_eq!((empty.text, empty.tool_calls.len()), (None, 0), "`text = \"\"` is an empty answer");
    let calls = turn(&*provider, "a", 1).await.unwrap().tool_calls;
    assert_eq!(calls[0].input, serde_json::json!({"_raw": "{\"note\": \"cut"}));
    assert!(calls[0].arguments_error.as_deref().is_some_and(|e| e.contains("EOF")), "{:?}", calls[0]);
    assert_eq!(calls[1].input, serde_json::json!({"note": "whole"}));
    assert_eq!(calls[1].arguments_error, None);
}

#[test]
fn missing_file_names_the_resolved_path() {
    let dir = tempfile::tempdir().unwrap();
    let error = scripted(dir.path(), "missing.toml").err().unwrap();
    let text = error.to_string();
    assert!(text.contains(&dir.path().join("missing.toml").display().to_string()), "{text}");
    assert!(text.contains("cannot read the script"), "{text}");
}

#[test]
fn spec_strings_parse_and_round_trip() {
    let cases = [
        ("openai:gpt-4.1", ModelSpec::OpenAi { model: "gpt-4.1".into() }),
        ("anthropic:claude-sonnet-4-5", ModelSpec::Anthropic { model: "claude-sonnet-4-5".into() }),
        (
            "openai-compatible:llama3.1@http://127.0.0.1:11434/v1",
            ModelSpec::OpenAiCompatible { model: "llama3.1".into(), base_url: "http://127.0.0.1:11434/v1".into() },
        ),
        (
            "openai-compatible:hf.co/org/m:Q4_K_M@https://gpu.internal:8000/v1",
            ModelSpec::OpenAiCompatible {
                model: "hf.co/org/m:Q4_K_M".into(),
                base_url: "https://gpu.internal:8000/v1".into(),
            },
        ),
        ("scripted:path/to/turns.toml", ModelSpec::Scripted { path: "path/to/turns.toml".into() }),
    ];
    for (text, expected) in cases {
        let parsed: ModelSpec = text.parse().unwrap();
        assert_eq!(parsed, expected);
        assert_eq!(parsed.to_string(), text);
        let json = serde_json::to_value(&parsed).unwrap();
        assert_eq!(json, json!(text));
        assert_eq!(serde_json::from_value::<ModelSpec>(json).unwrap(), expected);
    }
}

#[test]
fn spec_errors_show_the_form_to_write() {
    let reason = |text: &str| match text.parse::<ModelSpec>().unwrap_err() {
        ModelError::InvalidSpec { input, reason } => {
            assert_eq!(input, text);
            reason
        }
        other => panic!("{other:?}"),
    };
    let r = reason("http://127.0.0.1:11434/v1");
    assert!(r.contains("openai-compatible:<model>@http://127.0.0.1:11434/v1"), "{r}");
    let r = reason("gemini:pro");
    assert!(r.contains("unknown provider `gemini`") && r.contains("anthropic:<model>"), "{r}");
    assert!(reason("gpt-4.1").contains("did you mean `openai:gpt-4.1`"));
    assert!(reason("openai:").contains("missing the model name"));
    assert!(reason("scripted:").contains("missing the script path"));
    assert!(reason("openai-compatible:llama3.1").contains("openai-compatible:<model>@<http(s) base URL>"));
    assert!(reason("openai-compatible:@http://h/v1").contains("missing the model name"));
    assert!(reason("openai-compatible:m@http://user:pw@h/v1").contains("credentials in the URL"));
    assert!(reason("openai-compatible:m@http://h/v1?x=1").contains("query"));
    assert!(serde_json::from_value::<ModelSpec>(json!("nope:x")).is_err());
}

#[test]
fn records_round_trip_as_json() {
    let turn = ModelTurn {
        text: None,
        tool_calls: vec![],
        usage: Usage { input_tokens: 1, output_tokens: 2 },
        stop: StopReason::Other("content_filter".into()),
        source: TurnSource::Replay { script: "t.toml".into(), index: 3 },
    };
    let json = serde_json::to_value(&turn).unwrap();
    assert_eq!(json["source"], json!({"kind": "replay", "script": "t.toml", "index": 3}));
    assert_eq!(serde_json::from_value::<ModelTurn>(json).unwrap(), turn);
    let message = Message::ToolResult { call_id: "c".into(), name: "t".into(), content: "x".into(), is_error: true };
    let json = serde_json::to_value(&message).unwrap();
    assert_eq!(json["role"], "tool_result");
    assert_eq!(serde_json::from_value::<Message>(json).unwrap(), message);
    assert_eq!(serde_json::to_value(StopReason::EndTurn).unwrap(), json!("end_turn"));
}
