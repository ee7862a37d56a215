//! Anthropic Messages (`POST {base}/v1/messages`, `anthropic-version: 2023-06-01`).
//!
//! The conversation is rebuilt as alternating user/assistant messages of content blocks: tool
//! results become `tool_result` blocks in a user message, and consecutive user-side entries
//! (several tool results, or results followed by user text) merge into one message, results
//! first, as the API requires.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::http::{ApiKey, Endpoint, Http, join_url, snippet};
use crate::spec::check_base_url;
use crate::{
    Message, ModelError, ModelRequest, ModelTurn, Provider, ProviderOptions, StopReason, ToolCall, ToolChoice,
    TurnFuture, TurnSource, Usage,
};

const DEFAULT_BASE: &str = "https://api.anthropic.com";
const API_VERSION: &str = "2023-06-01";

/// The Anthropic Messages provider.
#[derive(Debug)]
pub(crate) struct Anthropic {
    model: String,
    http: Http,
    endpoint: Endpoint,
}

impl Anthropic {
    /// `anthropic:<model>`: key from `ANTHROPIC_API_KEY`, base from `ANTHROPIC_BASE_URL`.
    pub(crate) fn new(model: &str, options: &ProviderOptions) -> Result<Self, ModelError> {
        let var = "ANTHROPIC_API_KEY";
        let key = ApiKey::new(options.var(var).ok_or_else(|| ModelError::MissingApiKey { var: var.into() })?);
        let base = match options.var("ANTHROPIC_BASE_URL") {
            Some(url) => {
                let url = url.trim().to_string();
                check_base_url(&url).map_err(|reason| ModelError::BadBaseUrl {
                    url: url.clone(),
                    origin: "ANTHROPIC_BASE_URL".into(),
                    reason,
                })?;
                url
            }
            None => DEFAULT_BASE.to_string(),
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key.header("")?);
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        let endpoint = Endpoint {
            provider: "anthropic",
            url: join_url(&base, "v1/messages"),
            headers,
            key: Some(key),
            key_var: var,
        };
        Ok(Anthropic { model: model.to_string(), http: Http::new(options)?, endpoint })
    }

    fn body(&self, request: &ModelRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "max_tokens": request.max_output_tokens,
            "messages": messages(&request.messages),
        });
        if !request.system.is_empty() {
            body["system"] = json!(request.system);
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
                .collect();
            body["tools"] = Value::Array(tools);
            let choice = match request.tool_choice {
                ToolChoice::Auto => "auto",
                ToolChoice::Required => "any",
                ToolChoice::None => "none",
            };
            body["tool_choice"] = json!({ "type": choice });
        }
        let sampling = &request.sampling;
        if let Some(temperature) = sampling.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(top_p) = sampling.top_p {
            body["top_p"] = json!(top_p);
        }
        if !sampling.stop.is_empty() {
            body["stop_sequences"] = json!(sampling.stop);
        }
        // `seed` has no Anthropic equivalent and is not sent.
        body
    }

    fn parse(&self, response: &Value) -> Result<ModelTurn, ModelError> {
        let bad = |message: String| ModelError::BadResponse { provider: "anthropic".into(), message };
        let blocks = response.get("content").and_then(Value::as_array).ok_or_else(|| {
            bad(format!("no `content` array in {}", snippet(response.to_string().as_bytes(), &self.endpoint)))
        })?;
        let mut texts = Vec::new();
        let mut tool_calls = Vec::new();
        for (i, block) in blocks.iter().enumerate() {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => {
                    let text = block.get("text").and_then(Value::as_str);
                    texts.push(text.ok_or_else(|| bad(format!("content[{i}] text block has no `text`")))?);
                }
                Some("tool_use") => {
                    let field = |name: &str| {
                        block
                            .get(name)
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                            .ok_or_else(|| bad(format!("content[{i}] tool_use block has no `{name}`")))
                    };
                    let (id, name) = (field("id")?, field("name")?);
                    let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                    tool_calls.push(ToolCall { id: id.into(), name: name.into(), input, arguments_error: None });
                }
                // Thinking and other block kinds carry nothing the runtime acts on.
                _ => {}
            }
        }
        let text = (!texts.is_empty()).then(|| texts.join("\n")).filter(|t| !t.is_empty());
        let usage = response.get("usage");
        let count = |name: &str| usage.and_then(|u| u.get(name)).and_then(Value::as_u64).unwrap_or(0);
        // Cached prompt tokens are still prompt tokens; the caller budgets on the total.
        let usage = Usage {
            input_tokens: count("input_tokens")
                + count("cache_creation_input_tokens")
                + count("cache_read_input_tokens"),
            output_tokens: count("output_tokens"),
        };
        let stop = match response.get("stop_reason").and_then(Value::as_str) {
            Some("end_turn" | "stop_sequence") | None => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
        };
        let source = TurnSource::Live { provider: "anthropic".into(), model: self.model.clone() };
        Ok(ModelTurn { text, tool_calls, usage, stop, source })
    }
}

impl Provider for Anthropic {
    fn describe(&self) -> String {
        format!("anthropic:{}", self.model)
    }

    fn is_replay(&self) -> bool {
        false
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> TurnFuture<'a> {
        Box::pin(async move {
            let response = self.http.post_json(&self.endpoint, &self.body(request)).await?;
            self.parse(&response)
        })
    }
}

/// Messages as `{role, content: [blocks]}`, same-role neighbours merged.
fn messages(conversation: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in conversation {
        let (role, blocks) = match message {
            Message::User { text } => ("user", vec![json!({"type": "text", "text": text})]),
            Message::Assistant { text, tool_calls } => {
                // The API refuses empty text blocks.
                let text = text.as_deref().filter(|t| !t.is_empty()).map(|t| json!({"type": "text", "text": t}));
                let calls = tool_calls
                    .iter()
                    .map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.input}));
                ("assistant", text.into_iter().chain(calls).collect())
            }
            Message::ToolResult { call_id, content, is_error, .. } => (
                "user",
                vec![json!({"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error})],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    for (_, blocks) in &mut out {
        // tool_result blocks must lead their user message; the sort is stable otherwise.
        blocks.sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
    }
    out.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_assistant_turns_vanish_and_neighbours_merge() {
        let conversation = vec![
            Message::User { text: "a".into() },
            Message::Assistant { text: Some(String::new()), tool_calls: vec![] },
            Message::User { text: "b".into() },
        ];
        let out = messages(&conversation);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["content"].as_array().unwrap().len(), 2);
    }
}
