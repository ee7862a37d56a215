//! What the loop does when a model's turns cannot be taken at face value: an empty answer or an
//! answer cut off at `max_output_tokens` is not an answer (the model is told and asked again
//! once; a second in a row ends the run), and an agent that keeps making a call that is refused
//! or fails is stopped at `max_repeated_refusals` instead of being asked until a bound.
//!
//! Only this module decides those statuses; `step.rs` and `finish.rs` call it.

use serde_json::Value;
use sha2::{Digest, Sha256};
use tollgate_models::{ModelTurn, StopReason};
use tollgate_store::RunStatus;
use tollgate_store::audit::canonical_json;

/// A turn with no tool calls that is not an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// No text (or only whitespace) and no tool call.
    Empty,
    /// Text cut off at the run's `max_output_tokens`.
    Truncated,
}

impl Unusable {
    /// Whether `turn` (one with no tool calls) is an answer the run can end with.
    pub(crate) fn of(turn: &ModelTurn) -> Option<Unusable> {
        if !turn.tool_calls.is_empty() {
            return None;
        }
        if turn.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Some(Unusable::Empty);
        }
        (turn.stop == StopReason::MaxTokens).then_some(Unusable::Truncated)
    }

    /// `empty_answer` or `output_truncated`, as the audit records it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unusable::Empty => "empty_answer",
            Unusable::Truncated => "output_truncated",
        }
    }

    /// What the model is told when it is asked again.
    pub(crate) fn nudge(self, max_output_tokens: u64) -> String {
        match self {
            Unusable::Empty => "Your last reply was empty: it had no text and no tool call, so nothing happened. \
                                Call one of your tools, or give your final answer as text."
                .into(),
            Unusable::Truncated => format!(
                "Your last reply was cut off at the limit of {max_output_tokens} output tokens, so it is incomplete \
                 and was not taken as your answer. Give your final answer again, shorter, without repeating \
                 yourself."
            ),
        }
    }

    /// How the run ends when the model does it a second time in a row.
    pub(crate) fn ending(self, max_output_tokens: u64) -> (RunStatus, String) {
        match self {
            Unusable::Empty => (
                RunStatus::Failed,
                "empty answer: the model replied twice in a row with no text and no tool call".into(),
            ),
            Unusable::Truncated => (
                RunStatus::BoundHit,
                format!(
                    "max_output_tokens: the model's answer was cut off at {max_output_tokens} output tokens twice \
                     in a row; raise [run] max_output_tokens or ask for a shorter answer"
                ),
            ),
        }
    }
}

/// Identifies "the same call" for the repeated-refusal guard: the agent, the tool name it used
/// and its input, canonically (key order does not make two calls different).
pub(crate) fn call_fingerprint(agent: &str, tool: &str, input: &Value) -> String {
    let mut h = Sha256::new();
    for part in [agent, tool, &canonical_json(input)] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The `bound_hit` detail of a run the guard ends: `tool` was refused or failed `times` times
/// with the same input, the last time for `why`.
pub(crate) fn repeated_refusal(agent: &str, tool: &str, times: u32, why: &str) -> String {
    format!(
        "max_repeated_refusals: agent `{agent}` made the same call to `{tool}` {times} times and it was refused or \
         failed every time; the last: {why}"
    )
}
