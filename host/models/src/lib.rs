//! `tollgate-models` asks a model for the next turn of an agent, behind one trait.
//!
//! ```text
//! "openai:gpt-4.1".parse::<ModelSpec>()   spec strings (spec.rs)
//!   └─ connect(&spec, &options)           key from the environment, HTTP client, or the script
//!        └─ provider.complete(&request)   one ModelRequest → one ModelTurn (or a ModelError)
//! ```
//!
//! This crate owns the wire formats of the vendors (OpenAI Chat Completions, Anthropic
//! Messages, OpenAI-compatible servers) and the scripted replay provider. It knows nothing about
//! workflows, tools or the store: tool names arrive already mapped to what vendors accept.
//!
//! Invariants:
//! - API keys never appear in errors, `Debug` output or returned values; vendor error text is
//!   scrubbed of the key before it becomes a [`ModelError`].
//! - Every turn says where it came from ([`TurnSource`]): a live model or a replayed script.
//!   Replayed turns are never presented as a model's reasoning.
//! - Waiting is bounded: per-request timeout, `max_retries`, and no single wait longer than
//!   `max_retry_wait` (a longer `Retry-After` ends the call with [`ModelError::RateLimited`]).
//! - No redirect is followed: a key is sent only to the configured base URL.

mod anthropic;
mod error;
mod http;
mod openai;
mod scripted;
mod spec;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::ModelError;
pub use spec::ModelSpec;

/// A tool the model may call. `name` already matches `^[a-zA-Z0-9_-]{1,64}$`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the tool input (an object schema).
    pub input_schema: serde_json::Value,
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The vendor's call id (or `call_<agent>_<n>_<i>` for replay); tool results refer to it.
    pub id: String,
    pub name: String,
    /// The call input. For OpenAI-style providers, arguments that are not valid JSON arrive as
    /// `{"_raw": "<the text>"}` (sent back to the vendor as written) with `arguments_error` set.
    pub input: serde_json::Value,
    /// Why the arguments the model wrote are not a JSON value, when they are not: the gate
    /// refuses the call and tells the model so, in those words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments_error: Option<String>,
}

/// One entry of the conversation the runtime sends back to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    User { text: String },
    Assistant { text: Option<String>, tool_calls: Vec<ToolCall> },
    ToolResult { call_id: String, name: String, content: String, is_error: bool },
}

/// Everything a provider needs for one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// Which agent is asking (the scripted provider selects turns by it).
    pub agent: String,
    /// 0-based count of model turns this agent already had in this run.
    pub turn_index: u32,
    /// The agent's instructions.
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_output_tokens: u32,
    /// Whether the model may, must or must not call one of `tools`; sent only when there are
    /// tools. Default [`ToolChoice::Auto`].
    #[serde(default)]
    pub tool_choice: ToolChoice,
    /// Sampling settings; those left unset are the server's choice.
    #[serde(default)]
    pub sampling: Sampling,
}

/// What the model is told about calling tools. Sent explicitly whenever tools are offered:
/// some OpenAI-compatible servers (llama-cpp-python's function-calling chat formats) leave
/// the tools out of the prompt when the request does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides: call tools, or answer in text (which ends the agent).
    #[default]
    Auto,
    /// Every turn must call a tool (OpenAI `required`, Anthropic `any`).
    Required,
    /// No tool calls this turn, though the tools are described.
    None,
}

impl ToolChoice {
    /// The spelling in workflow files and OpenAI requests.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolChoice::Auto => "auto",
            ToolChoice::Required => "required",
            ToolChoice::None => "none",
        }
    }
}

/// Sampling settings a request may carry. `None`/empty leaves the server's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 is (near) deterministic; OpenAI accepts 0..=2, Anthropic 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Text that ends the turn when the model writes it (OpenAI `stop`, Anthropic
    /// `stop_sequences`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Seed for servers that sample reproducibly with one (OpenAI, llama.cpp, vLLM); Anthropic
    /// has none, so it is not sent there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Token counts as reported by the vendor (or estimated by the scripted provider).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    /// A vendor reason with no portable meaning (e.g. `content_filter`), kept verbatim.
    Other(String),
}

impl StopReason {
    /// `end_turn`, `tool_use`, `max_tokens`, or the vendor's own word.
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::Other(reason) => reason,
        }
    }
}

/// Where a turn came from: a live model, or a line of a replay script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TurnSource {
    Live { provider: String, model: String },
    Replay { script: String, index: u32 },
}

/// One model turn: optional text (reasoning or final answer) and the tool calls asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTurn {
    pub text: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub stop: StopReason,
    pub source: TurnSource,
}

/// The future a [`Provider`] returns.
pub type TurnFuture<'a> = Pin<Box<dyn Future<Output = Result<ModelTurn, ModelError>> + Send + 'a>>;

/// A model (or a replay of one). Implementations are cheap to share across tasks.
pub trait Provider: Send + Sync {
    /// e.g. "openai:gpt-4.1", "replay of examples/x/turns.toml"
    fn describe(&self) -> String;
    /// true for the scripted provider: output is replay, never "thinking"
    fn is_replay(&self) -> bool;
    /// Ask for the next turn. Transient failures are retried inside, within the options' bounds.
    fn complete<'a>(&'a self, request: &'a ModelRequest) -> TurnFuture<'a>;
}

/// How an environment variable is looked up (the process environment, or a map in tests).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Settings shared by all providers. Build with [`ProviderOptions::new`] and adjust fields.
#[derive(Clone)]
pub struct ProviderOptions {
    /// Relative `scripted:` paths resolve against this directory (the workflow's folder).
    pub base_dir: PathBuf,
    /// Per HTTP attempt, connect to last byte. Default 120 s (long answers take a while).
    pub timeout: Duration,
    /// Retries after the first attempt for 429, 5xx, 408, timeouts and transport errors.
    /// Default 3.
    pub max_retries: u32,
    /// First backoff wait; doubles per retry (plus up to 25% jitter). Default 500 ms.
    pub retry_base: Duration,
    /// No single wait is longer: a `Retry-After` above it ends the call instead. Default 30 s.
    pub max_retry_wait: Duration,
    /// Where API keys and base URL overrides are read from. Default: the process environment.
    pub env: EnvLookup,
}

impl ProviderOptions {
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        ProviderOptions {
            base_dir: base_dir.into(),
            timeout: Duration::from_secs(120),
            max_retries: 3,
            retry_base: Duration::from_millis(500),
            max_retry_wait: Duration::from_secs(30),
            env: Arc::new(|name| std::env::var(name).ok()),
        }
    }

    /// Read variables from `vars` only (tests, or an operator-supplied set).
    pub fn with_env_map(mut self, vars: HashMap<String, String>) -> Self {
        self.env = Arc::new(move |name| vars.get(name).cloned());
        self
    }

    /// The variable's value, with unset and empty treated alike.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|value| !value.trim().is_empty())
    }
}

impl fmt::Debug for ProviderOptions {
    // Manual so the lookup (which may close over keys) is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderOptions")
            .field("base_dir", &self.base_dir)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_base", &self.retry_base)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("env", &"<lookup>")
            .finish()
    }
}

/// Build the provider a spec names: reads keys from `options.env`, loads and checks scripts.
/// Fails early (missing key, bad URL, bad script) so a run never starts half-configured.
pub fn connect(spec: &ModelSpec, options: &ProviderOptions) -> Result<Arc<dyn Provider>, ModelError> {
    Ok(match spec {
        ModelSpec::OpenAi { model } => Arc::new(openai::OpenAi::official(model, options)?),
        ModelSpec::OpenAiCompatible { model, base_url } => {
            Arc::new(openai::OpenAi::compatible(model, base_url, options)?)
        }
        ModelSpec::Anthropic { model } => Arc::new(anthropic::Anthropic::new(model, options)?),
        ModelSpec::Scripted { path } => Arc::new(scripted::Scripted::load(path, &options.base_dir)?),
    })
}
