//! The scripted provider: replays model turns from a TOML file, for offline demos, tests and
//! evals. It is not a model, and every turn it returns says so (`TurnSource::Replay`).
//!
//! Stateless and deterministic: the n-th request of agent A (`turn_index == n`) gets the n-th
//! `[[turns]]` entry whose `agent == A`, whatever happened before — so a resumed run that asks
//! again for index n gets the same turn. The file is read and checked once, at `connect`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::{
    Message, ModelError, ModelRequest, ModelTurn, Provider, StopReason, ToolCall, TurnFuture, TurnSource, Usage,
};

/// Scripts are hand-written; anything this large is a mistake (or not a script).
const MAX_SCRIPT_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    #[serde(default)]
    turns: Vec<toml::Spanned<TurnEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnEntry {
    agent: String,
    text: Option<String>,
    #[serde(default)]
    tool_calls: Vec<CallEntry>,
    usage: Option<UsageEntry>,
    /// Lets a script exercise truncation handling; default: `tool_use` if there are tool calls,
    /// else `end_turn`.
    stop: Option<StopEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallEntry {
    name: String,
    #[serde(default = "empty_object")]
    input: Value,
    /// Arguments as the model wrote them, instead of `input`: lets a script exercise arguments
    /// that are not JSON, as a live model sometimes sends.
    raw_arguments: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageEntry {
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum StopEntry {
    EndTurn,
    ToolUse,
    MaxTokens,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A script's call as a live provider would have parsed it: `raw_arguments` that are not JSON
/// become `{"_raw": text}` with the parse error, as `openai.rs` does.
fn call_of(entry: CallEntry) -> (String, Value, Option<String>) {
    match entry.raw_arguments {
        None => (entry.name, entry.input, None),
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(input) => (entry.name, input, None),
            Err(e) => (entry.name, serde_json::json!({ "_raw": text }), Some(e.to_string())),
        },
    }
}

/// A loaded, checked script.
#[derive(Debug)]
pub(crate) struct Scripted {
    /// The path as the spec gave it: what `describe` and `TurnSource::Replay` show.
    label: String,
    /// Per agent, its turns in file order.
    by_agent: HashMap<String, Vec<Turn>>,
}

#[derive(Debug)]
struct Turn {
    text: Option<String>,
    /// Name, input, and why the arguments are not JSON (for `raw_arguments` that are not).
    calls: Vec<(String, Value, Option<String>)>,
    usage: Option<Usage>,
    stop: StopReason,
}

impl Scripted {
    /// Read and check `path` (relative paths resolve against `base_dir`).
    pub(crate) fn load(path: &Path, base_dir: &Path) -> Result<Self, ModelError> {
        let resolved: PathBuf = if path.is_absolute() { path.to_path_buf() } else { base_dir.join(path) };
        let script_error =
            |line, col, message: String| ModelError::Script { path: resolved.clone(), line, col, message };
        let metadata = std::fs::metadata(&resolved)
            .map_err(|e| script_error(None, None, format!("cannot read the script: {e}")))?;
        if metadata.len() > MAX_SCRIPT_BYTES {
            return Err(script_error(None, None, format!("larger than {} MiB", MAX_SCRIPT_BYTES >> 20)));
        }
        let source = std::fs::read_to_string(&resolved)
            .map_err(|e| script_error(None, None, format!("cannot read the script: {e}")))?;
        let mut scripted = Scripted::parse(&source).map_err(|(offset, message)| {
            let (line, col) = offset.map(|o| line_col(&source, o)).unzip();
            script_error(line, col, message)
        })?;
        scripted.label = path.display().to_string();
        Ok(scripted)
    }

    /// Parse and check; errors carry a byte offset into `source` when one is known.
    fn parse(source: &str) -> Result<Self, (Option<usize>, String)> {
        let file: ScriptFile =
            toml::from_str(source).map_err(|e| (e.span().map(|s| s.start), e.message().trim().to_string()))?;
        let mut by_agent: HashMap<String, Vec<Turn>> = HashMap::new();
        for spanned in file.turns {
            let at = Some(spanned.span().start);
            let entry = spanned.into_inner();
            if entry.agent.trim().is_empty() {
                return Err((at, "`agent` is empty".into()));
            }
            // `text = ""` is a deliberate empty answer (live models give them); a turn with
            // neither key is a mistake in the script.
            if entry.text.is_none() && entry.tool_calls.is_empty() {
                return Err((
                    at,
                    "a turn needs `text` (`text = \"\"` for an empty answer), `tool_calls`, or both".into(),
                ));
            }
            if let Some(i) = entry.tool_calls.iter().position(|c| c.name.trim().is_empty()) {
                return Err((at, format!("tool_calls[{i}] has an empty `name`")));
            }
            if let Some(i) = entry.tool_calls.iter().position(|c| !c.input.is_object()) {
                return Err((at, format!("tool_calls[{i}].input must be a table, e.g. input = {{ key = \"value\" }}")));
            }
            let both = |c: &CallEntry| c.raw_arguments.is_some() && c.input.as_object().is_some_and(|o| !o.is_empty());
            if let Some(i) = entry.tool_calls.iter().position(both) {
                return Err((at, format!("tool_calls[{i}] has both `input` and `raw_arguments`; give one")));
            }
            let stop = match entry.stop {
                Some(StopEntry::EndTurn) => StopReason::EndTurn,
                Some(StopEntry::ToolUse) => StopReason::ToolUse,
                Some(StopEntry::MaxTokens) => StopReason::MaxTokens,
                None if entry.tool_calls.is_empty() => StopReason::EndTurn,
                None => StopReason::ToolUse,
            };
            let turn = Turn {
                text: entry.text.filter(|t| !t.is_empty()),
                calls: entry.tool_calls.into_iter().map(call_of).collect(),
                usage: entry.usage.map(|u| Usage { input_tokens: u.input_tokens, output_tokens: u.output_tokens }),
                stop,
            };
            by_agent.entry(entry.agent).or_default().push(turn);
        }
        Ok(Scripted { label: String::new(), by_agent })
    }

    fn turn(&self, request: &ModelRequest) -> Result<ModelTurn, ModelError> {
        let turns = self.by_agent.get(&request.agent).map(Vec::as_slice).unwrap_or_default();
        let n = request.turn_index;
        let turn = turns.get(n as usize).ok_or_else(|| ModelError::ScriptExhausted {
            agent: request.agent.clone(),
            turn_index: n,
            script: self.label.clone(),
            available: u32::try_from(turns.len()).unwrap_or(u32::MAX),
        })?;
        // Names are not checked against `request.tools`: an unknown tool is returned as the
        // model would return it, and the runtime's gate denies it.
        let tool_calls: Vec<ToolCall> = turn
            .calls
            .iter()
            .enumerate()
            .map(|(i, (name, input, arguments_error))| ToolCall {
                id: format!("call_{}_{n}_{i}", request.agent),
                name: name.clone(),
                input: input.clone(),
                arguments_error: arguments_error.clone(),
            })
            .collect();
        let usage = turn.usage.unwrap_or_else(|| estimate(request, turn.text.as_deref(), &tool_calls));
        Ok(ModelTurn {
            text: turn.text.clone(),
            tool_calls,
            usage,
            stop: turn.stop.clone(),
            source: TurnSource::Replay { script: self.label.clone(), index: n },
        })
    }
}

impl Provider for Scripted {
    fn describe(&self) -> String {
        format!("replay of {}", self.label)
    }

    fn is_replay(&self) -> bool {
        true
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> TurnFuture<'a> {
        Box::pin(std::future::ready(self.turn(request)))
    }
}

/// An estimate, not a count: 4 characters per token, rounded up, over what a vendor would have
/// received (system, messages, tool specs) and produced (text, tool call names and inputs).
fn estimate(request: &ModelRequest, text: Option<&str>, calls: &[ToolCall]) -> Usage {
    let chars = |s: &str| s.chars().count() as u64;
    let mut input = chars(&request.system);
    for message in &request.messages {
        input += match message {
            Message::User { text } => chars(text),
            Message::Assistant { text, tool_calls } => {
                text.as_deref().map_or(0, chars)
                    + tool_calls.iter().map(|c| chars(&c.name) + chars(&c.input.to_string())).sum::<u64>()
            }
            Message::ToolResult { content, .. } => chars(content),
        };
    }
    for tool in &request.tools {
        input += chars(&tool.name) + chars(&tool.description) + chars(&tool.input_schema.to_string());
    }
    let output =
        text.map_or(0, chars) + calls.iter().map(|c| chars(&c.name) + chars(&c.input.to_string())).sum::<u64>();
    Usage { input_tokens: input.div_ceil(4), output_tokens: output.div_ceil(4) }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(col).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let source = "a = 1\nbé = 2\n";
        assert_eq!(line_col(source, 0), (1, 1));
        assert_eq!(line_col(source, 6), (2, 1));
        assert_eq!(line_col(source, 10), (2, 4));
    }
}
