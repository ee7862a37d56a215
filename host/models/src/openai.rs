//! OpenAI Chat Completions (`POST {base}/chat/completions`) and the OpenAI-compatible servers
//! that speak the same wire format (Ollama, llama.cpp server, vLLM).
//!
//! The two flavours differ only where servers differ in practice: the official API needs a key
//! and takes `max_completion_tokens`; compatible servers take an optional key and the older
//! `max_tokens`, and may omit `usage` or tool call ids.

use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde_json::{Value, json};

use crate::http::{ApiKey, Endpoint, Http, join_url, snippet};
use crate::spec::check_base_url;
use crate::{
    Message, ModelError, ModelRequest, ModelTurn, Provider, ProviderOptions, StopReason, ToolCall, TurnFuture,
    TurnSource, Usage,
};

const DEFAULT_BASE: &str = "https://api.openai.com/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Official,
    Compatible,
}

/// A Chat Completions provider (official or compatible).
#[derive(Debug)]
pub(crate) struct OpenAi {
    flavor: Flavor,
    model: String,
    base: String,
    http: Http,
    endpoint: Endpoint,
}

impl OpenAi {
    /// `openai:<model>`: key from `OPENAI_API_KEY`, base from `OPENAI_BASE_URL` or the default.
    pub(crate) fn official(model: &str, options: &ProviderOptions) -> Result<Self, ModelError> {
        let var = "OPENAI_API_KEY";
        let key = options.var(var).ok_or_else(|| ModelError::MissingApiKey { var: var.into() })?;
        let base = match options.var("OPENAI_BASE_URL") {
            Some(url) => checked(url.trim(), "OPENAI_BASE_URL")?,
            None => DEFAULT_BASE.to_string(),
        };
        Self::build(Flavor::Official, model, &base, Some(ApiKey::new(key)), var, options)
    }

    /// `openai-compatible:<model>@<base>`: key from `OPENAI_COMPATIBLE_API_KEY` if set.
    pub(crate) fn compatible(model: &str, base_url: &str, options: &ProviderOptions) -> Result<Self, ModelError> {
        let var = "OPENAI_COMPATIBLE_API_KEY";
        let base = checked(base_url, "the model spec")?;
        let key = options.var(var).map(ApiKey::new);
        Self::build(Flavor::Compatible, model, &base, key, var, options)
    }

    fn build(
        flavor: Flavor,
        model: &str,
        base: &str,
        key: Option<ApiKey>,
        key_var: &'static str,
        options: &ProviderOptions,
    ) -> Result<Self, ModelError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &key {
            headers.insert(AUTHORIZATION, key.header("Bearer ")?);
        }
        let provider = match flavor {
            Flavor::Official => "openai",
            Flavor::Compatible => "openai-compatible",
        };
        let endpoint = Endpoint { provider, url: join_url(base, "chat/completions"), headers, key, key_var };
        Ok(OpenAi { flavor, model: model.to_string(), base: base.to_string(), http: Http::new(options)?, endpoint })
    }

    fn body(&self, request: &ModelRequest) -> Value {
        let mut body = json!({ "model": self.model, "messages": messages(request) });
        let tokens_field = match self.flavor {
            Flavor::Official => "max_completion_tokens",
            Flavor::Compatible => "max_tokens",
        };
        body[tokens_field] = json!(request.max_output_tokens);
        // An empty `tools` array is refused by the official API; omit it instead.
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.input_schema }})
                })
                .collect();
            body["tools"] = Value::Array(tools);
            // Said explicitly: llama-cpp-python's function-calling formats leave the tools out
            // of the prompt when a request has no `tool_choice`.
            body["tool_choice"] = json!(request.tool_choice.as_str());
        }
        let sampling = &request.sampling;
        if let Some(temperature) = sampling.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(top_p) = sampling.top_p {
            body["top_p"] = json!(top_p);
        }
        if !sampling.stop.is_empty() {
            body["stop"] = json!(sampling.stop);
        }
        if let Some(seed) = sampling.seed {
            body["seed"] = json!(seed);
        }
        body
    }

    fn parse(&self, request: &ModelRequest, response: &Value) -> Result<ModelTurn, ModelError> {
        let bad = |message: String| ModelError::BadResponse { provider: self.endpoint.provider.into(), message };
        let choice = response.pointer("/choices/0").ok_or_else(|| {
            bad(format!("no `choices[0]` in {}", snippet(response.to_string().as_bytes(), &self.endpoint)))
        })?;
        let message = choice.get("message").ok_or_else(|| bad("`choices[0]` has no `message`".into()))?;
        let text = content_text(message.get("content"))
            .or_else(|| message.get("refusal").and_then(Value::as_str).map(str::to_string))
            .filter(|t| !t.is_empty());
        let mut tool_calls = Vec::new();
        if let Some(calls) = message.get("tool_calls").filter(|v| !v.is_null()) {
            let calls = calls.as_array().ok_or_else(|| bad("`tool_calls` is not an array".into()))?;
            for (i, call) in calls.iter().enumerate() {
                tool_calls.push(tool_call(call, request.turn_index, i).map_err(bad)?);
            }
        }
        // A turn with neither text nor tool calls is a final answer with no text: it is how
        // llama-cpp-python's function-calling format ends a turn that chose `message:`.
        let finish_reason = choice.get("finish_reason").and_then(Value::as_str);
        let usage = match response.get("usage").filter(|v| !v.is_null()) {
            // Compatible servers (and streaming proxies) may omit usage; 0 means "not reported".
            None => Usage::default(),
            Some(u) => Usage {
                input_tokens: token_count(u.get("prompt_tokens")),
                output_tokens: token_count(u.get("completion_tokens")),
            },
        };
        let stop = match finish_reason {
            // Some servers (older Ollama) say "stop" even when they returned tool calls.
            _ if !tool_calls.is_empty() => StopReason::ToolUse,
            // "tool_calls" with none returned: the turn is text only, and ends the agent.
            Some("stop" | "tool_calls" | "function_call") | None => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
        };
        let source = TurnSource::Live { provider: self.endpoint.provider.into(), model: self.model.clone() };
        Ok(ModelTurn { text, tool_calls, usage, stop, source })
    }
}

impl Provider for OpenAi {
    fn describe(&self) -> String {
        match self.flavor {
            Flavor::Official => format!("openai:{}", self.model),
            Flavor::Compatible => format!("openai-compatible:{}@{}", self.model, self.base),
        }
    }

    fn is_replay(&self) -> bool {
        false
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> TurnFuture<'a> {
        Box::pin(async move {
            let response = self.http.post_json(&self.endpoint, &self.body(request)).await?;
            self.parse(request, &response)
        })
    }
}

fn checked(url: &str, origin: &str) -> Result<String, ModelError> {
    check_base_url(url).map_err(|reason| ModelError::BadBaseUrl { url: url.into(), origin: origin.into(), reason })?;
    Ok(url.to_string())
}

/// The conversation in Chat Completions form: system first, tool results as `role: tool`.
fn messages(request: &ModelRequest) -> Vec<Value> {
    let mut out = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        out.push(json!({"role": "system", "content": request.system}));
    }
    for message in &request.messages {
        out.push(match message {
            Message::User { text } => json!({"role": "user", "content": text}),
            Message::Assistant { text, tool_calls } => {
                // Always a string: `null` beside tool calls is valid for OpenAI but refused by
                // llama-cpp-python (HTTP 500), and every server accepts "".
                let mut m = json!({"role": "assistant", "content": text.as_deref().unwrap_or("")});
                if !tool_calls.is_empty() {
                    let calls: Vec<Value> = tool_calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function",
                                "function": {"name": c.name, "arguments": arguments_text(&c.input)}})
                        })
                        .collect();
                    m["tool_calls"] = Value::Array(calls);
                }
                m
            }
            // Chat Completions has no error flag on tool results; say it in the content.
            Message::ToolResult { call_id, content, is_error, .. } => {
                let content = if *is_error { format!("Error: {content}") } else { content.clone() };
                json!({"role": "tool", "tool_call_id": call_id, "content": content})
            }
        });
    }
    out
}

/// A token count as reported: a float, or an integer too large for `u64`, saturates (so the run's
/// token bound still stops it); a negative or non-numeric count is "not reported".
fn token_count(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Number(n)) => n.as_u64().unwrap_or_else(|| {
            // Not a non-negative integer below 2^64: a float, or a negative integer.
            let f = n.as_f64().unwrap_or(0.0);
            if f.is_finite() && f > 0.0 { f as u64 } else { 0 }
        }),
        _ => 0,
    }
}

/// Arguments go back exactly as the model wrote them when they were not JSON.
fn arguments_text(input: &Value) -> String {
    match input.as_object().filter(|o| o.len() == 1).and_then(|o| o.get("_raw")).and_then(Value::as_str) {
        Some(raw) => raw.to_string(),
        None => input.to_string(),
    }
}

/// `content` is a string, null, or (some servers) an array of `{type: "text", text}` parts.
fn content_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
            (!texts.is_empty()).then(|| texts.join(""))
        }
        _ => None,
    }
}

fn tool_call(call: &Value, turn_index: u32, i: usize) -> Result<ToolCall, String> {
    let function = call.get("function").ok_or_else(|| format!("tool_calls[{i}] has no `function`"))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("tool_calls[{i}].function has no `name`"))?;
    let id = match call.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
        Some(id) => id.to_string(),
        // Some compatible servers omit ids; tool results still need one that is unique per run.
        None => format!("call_t{turn_index}_{i}"),
    };
    let input = match function.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(text)) if text.trim().is_empty() => json!({}),
        // Invalid JSON is passed on, not refused: the runtime's schema check rejects it and the
        // model is told, which is how it recovers. Failing the whole turn would end the run.
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(input) => input,
            Err(e) => {
                let input = json!({ "_raw": text });
                return Ok(ToolCall { id, name: name.to_string(), input, arguments_error: Some(e.to_string()) });
            }
        },
        // Some servers send the object itself instead of a JSON string.
        Some(other) => other.clone(),
    };
    Ok(ToolCall { id, name: name.to_string(), input, arguments_error: None })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = "sk-proj-debug-0123456789abcdefghij";
        let vars = HashMap::from([("OPENAI_API_KEY".to_string(), key.to_string())]);
        let provider = OpenAi::official("gpt-4.1", &ProviderOptions::new(".").with_env_map(vars)).unwrap();
        let debug = format!("{provider:?}");
        assert!(debug.contains("ApiKey([REDACTED])") && debug.contains("authorization"), "{debug}");
        assert!(!debug.contains("0123456789"), "{debug}");
    }
}
