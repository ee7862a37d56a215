//! [`ModelError`]: every way asking a model can fail, each message written so the operator
//! knows what to do next. No variant ever carries an API key: vendor messages are scrubbed of
//! the key before they get here (see `http::scrub`).

use std::path::PathBuf;
use std::time::Duration;

/// Why a model turn (or connecting to a provider) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The spec string could not be parsed; `reason` says which form was expected.
    #[error("invalid model spec `{input}`: {reason}")]
    InvalidSpec { input: String, reason: String },

    /// A base URL (from the spec or an environment variable) is not a usable http(s) URL.
    #[error("invalid base URL `{url}` (from {origin}): {reason}")]
    BadBaseUrl { url: String, origin: String, reason: String },

    /// The provider needs a key and the environment variable is unset or empty.
    #[error("{var} is not set: export your API key in {var}, or use a `scripted:` spec to run offline")]
    MissingApiKey { var: String },

    /// The vendor answered with a non-success status that retrying will not fix (or retries
    /// ran out). `message` is the vendor's own error text, scrubbed of the key.
    #[error("{provider} returned HTTP {status}{}: {message}", attempts_note(*attempts))]
    Http { provider: String, status: u16, message: String, attempts: u32 },

    /// Still rate limited after the retries, or the vendor asked to wait longer than we wait.
    #[error("{provider} is rate limiting requests{}{}; try again later or lower the run's concurrency",
        attempts_note(*attempts),
        retry_after.map(|d| format!(" (it asks to retry after {}s)", d.as_secs_f64().ceil())).unwrap_or_default())]
    RateLimited { provider: String, retry_after: Option<Duration>, attempts: u32 },

    /// No complete answer within the configured per-request timeout, on every attempt.
    #[error("{provider} did not answer within {}s{}; raise the model timeout or check the server",
        after.as_secs_f64(), attempts_note(*attempts))]
    Timeout { provider: String, after: Duration, attempts: u32 },

    /// The request never got an HTTP answer (DNS, connection refused, TLS, reset).
    #[error("cannot reach {provider}: {message}")]
    Transport { provider: String, message: String },

    /// The vendor answered 2xx but the body is not the documented shape.
    #[error("{provider} sent a response Tollgate cannot read: {message}")]
    BadResponse { provider: String, message: String },

    /// The scripted provider has no turn `turn_index` for `agent`.
    #[error(
        "script {script} has no turn {turn_index} for agent `{agent}` (it has {available} turn(s) for this agent); \
        add a [[turns]] entry with agent = \"{agent}\""
    )]
    ScriptExhausted { agent: String, turn_index: u32, script: String, available: u32 },

    /// The script file cannot be read or is not a valid script. `line`/`col` are 1-based.
    #[error("{}{}: {message}", path.display(), location(*line, *col))]
    Script { path: PathBuf, line: Option<u32>, col: Option<u32>, message: String },
}

impl ModelError {
    /// Whether a later attempt could succeed without the operator changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, ModelError::RateLimited { .. } | ModelError::Timeout { .. } | ModelError::Transport { .. })
            || matches!(self, ModelError::Http { status, .. } if *status >= 500 || *status == 408)
    }
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 { format!(" after {attempts} attempts") } else { String::new() }
}

fn location(line: Option<u32>, col: Option<u32>) -> String {
    match (line, col) {
        (Some(line), Some(col)) => format!(":{line}:{col}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}
