//! Typed errors: [`LoadError`] for turning bytes into a runnable plugin, [`CallError`] for one
//! call. The plugin's own typed failure ([`ToolError`]) is kept apart from traps and limits,
//! as wasmtime-wasi keeps guest errors apart from traps.

use std::time::Duration;

use serde::Serialize;
use tollgate_contract::limits::LimitsError;
use tollgate_contract::units::format_bytes;

use crate::capability::ImportError;

/// Why a component could not be loaded under the given grants. Nothing runs when load fails.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    #[error(transparent)]
    Import(#[from] ImportError),
    /// Imports no grant can satisfy, found before compiling: every one is named.
    #[error(
        "component imports {}, which Tollgate does not provide (refused before compiling); Tollgate provides: {}",
        imports.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", "),
        tollgate_contract::capability::PROVIDED
    )]
    UnsupportedImports { imports: Vec<String> },
    #[error("component does not export `tollgate:plugin/tool@0.1.x` (is it built against the Tollgate WIT?): {0}")]
    NotAPlugin(String),
    #[error("plain component cannot be offered as tools: {0}")]
    PlainComponent(String),
    #[error("manifest() failed: {0}")]
    ManifestCall(Box<CallError>),
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// A manifest list or string over its bound (checked before anything reads it).
    #[error("invalid manifest: {what} is {len} long, over the limit of {max}")]
    ManifestTooLarge { what: String, len: usize, max: usize },
    /// The component is over a bound checked before compiling (size, functions, body
    /// complexity, exports): compiling it could stall or exhaust the host.
    #[error("component refused before compiling: {what} is {found}, over the limit of {limit}")]
    ComponentTooComplex { what: String, found: u64, limit: u64 },
    /// Compiling in a child process (`SandboxConfig::compile_isolation`) failed or hit a limit.
    #[error("component refused: {0}")]
    CompileAborted(String),
    #[error("invalid grants: {0}")]
    InvalidGrants(String),
    #[error("invalid limits: {0}")]
    InvalidLimits(#[from] LimitsError),
    #[error("sha256 mismatch: expected {expected}, component is {actual}")]
    DigestMismatch { expected: String, actual: String },
}

/// The plugin's own typed failure, as declared in the WIT `tool-error` variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ToolError {
    #[error("invalid input: {message}")]
    InvalidInput { message: String },
    #[error("denied: {message}")]
    Denied { message: String },
    #[error("not found: {message}")]
    NotFound { message: String },
    #[error("upstream failure{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Upstream { status: Option<u16>, message: String },
    #[error("retryable: {message}")]
    Retryable { message: String },
    #[error("internal plugin error: {message}")]
    Internal { message: String },
}

/// Why one call failed. Every variant leaves the host and other calls untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CallError {
    #[error("unknown tool `{tool}` (this plugin has: {available})")]
    UnknownTool { tool: String, available: String },
    #[error("input is {size} bytes, over the {} limit", format_bytes(*limit))]
    InputTooLarge { size: usize, limit: usize },
    #[error("input is not valid JSON: {message}")]
    InputNotJson { message: String },
    #[error("input does not match the tool's schema: {message}")]
    InvalidInput { message: String },
    #[error("fuel exhausted: the call used its whole budget of {limit} fuel")]
    FuelExhausted { limit: u64 },
    #[error("timed out after {}ms", limit.as_millis())]
    Timeout {
        #[serde(serialize_with = "ser_ms")]
        limit: Duration,
    },
    #[error("memory limit: the plugin tried to grow linear memory beyond {}", format_bytes(*limit))]
    MemoryLimit { limit: usize },
    #[error("stack overflow: the plugin exhausted the wasm call stack")]
    StackOverflow,
    #[error("plugin trapped: {message}{}", backtrace.as_ref().map(|b| format!("\nguest backtrace:\n{b}")).unwrap_or_default())]
    Trap { message: String, backtrace: Option<String> },
    #[error("output is {size} bytes, over the {} limit", format_bytes(*limit))]
    OutputTooLarge { size: usize, limit: usize },
    #[error("output is invalid: {message}")]
    InvalidOutput { message: String },
    /// A plain component's values would take more host memory to convert than the call may
    /// give the guest: the input's, or what the guest handed the host (its result, or an
    /// import call's arguments).
    #[error("{side} would take more than {} of host memory to convert (the call's memory limit)", format_bytes(*limit))]
    ValueTooLarge { side: ValueSide, limit: usize },
    #[error("{0}")]
    Tool(ToolError),
    #[error("host capacity exhausted (retry later): {message}")]
    Capacity { message: String },
}

/// Whose values [`CallError::ValueTooLarge`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueSide {
    /// The caller's input, converted before the guest runs.
    Input,
    /// What the guest handed the host.
    Output,
}

impl std::fmt::Display for ValueSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueSide::Input => "the input's values",
            ValueSide::Output => "the values the guest handed the host",
        })
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl CallError {
    /// A stable, machine-readable name for the error (used in reports and exit messages).
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::UnknownTool { .. } => "unknown-tool",
            CallError::InputTooLarge { .. } => "input-too-large",
            CallError::InputNotJson { .. } => "input-not-json",
            CallError::InvalidInput { .. } => "invalid-input",
            CallError::FuelExhausted { .. } => "fuel-exhausted",
            CallError::Timeout { .. } => "timeout",
            CallError::MemoryLimit { .. } => "memory-limit",
            CallError::StackOverflow => "stack-overflow",
            CallError::Trap { .. } => "trap",
            CallError::OutputTooLarge { .. } => "output-too-large",
            CallError::InvalidOutput { .. } => "invalid-output",
            CallError::ValueTooLarge { .. } => "value-too-large",
            CallError::Tool(ToolError::InvalidInput { .. }) => "tool-invalid-input",
            CallError::Tool(ToolError::Denied { .. }) => "tool-denied",
            CallError::Tool(ToolError::NotFound { .. }) => "tool-not-found",
            CallError::Tool(ToolError::Upstream { .. }) => "tool-upstream",
            CallError::Tool(ToolError::Retryable { .. }) => "tool-retryable",
            CallError::Tool(ToolError::Internal { .. }) => "tool-internal",
            CallError::Capacity { .. } => "capacity",
        }
    }

    /// Whether calling again (with the same idempotency key) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CallError::Capacity { .. } | CallError::Tool(ToolError::Retryable { .. }))
    }

    /// Cuts a plugin's own tool-error message to `max` bytes. Called after redaction, so a
    /// secret is never cut in half where the redactor can no longer see it.
    pub(crate) fn clip_tool_message(&mut self, max: usize) {
        if let CallError::Tool(
            ToolError::InvalidInput { message }
            | ToolError::Denied { message }
            | ToolError::NotFound { message }
            | ToolError::Upstream { message, .. }
            | ToolError::Retryable { message }
            | ToolError::Internal { message },
        ) = self
        {
            *message = crate::limits::clip_text(std::mem::take(message), max);
        }
    }

    /// Applies `f` to every free-text field, for redaction.
    pub(crate) fn map_text(&mut self, f: &impl Fn(&str) -> String) {
        let texts: Vec<&mut String> = match self {
            CallError::InputNotJson { message }
            | CallError::InvalidInput { message }
            | CallError::InvalidOutput { message }
            | CallError::Capacity { message } => vec![message],
            CallError::Trap { message, backtrace } => {
                let mut v = vec![message];
                v.extend(backtrace.as_mut());
                v
            }
            CallError::Tool(
                ToolError::InvalidInput { message }
                | ToolError::Denied { message }
                | ToolError::NotFound { message }
                | ToolError::Upstream { message, .. }
                | ToolError::Retryable { message }
                | ToolError::Internal { message },
            ) => vec![message],
            _ => vec![],
        };
        for t in texts {
            *t = f(t);
        }
    }
}
