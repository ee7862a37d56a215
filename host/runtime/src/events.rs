//! What a run reports while it advances, for the CLI to stream. Observers only watch: the
//! store and the audit log are the record.

use serde::Serialize;
use serde_json::Value;

/// One thing that happened. Serialised as one JSON line by `tollgate run --json`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        workflow: String,
        version: String,
        goal: String,
    },
    Resumed {
        run_id: String,
        status: String,
        step: u32,
    },
    /// A model turn: `replay` is true when the turn came from a script, not a model.
    ModelTurn {
        step: u32,
        agent: String,
        model: String,
        replay: bool,
        text: Option<String>,
        tool_calls: Vec<String>,
    },
    Gate {
        step: u32,
        index: u32,
        tool: String,
        decision: String,
        reason: Option<String>,
    },
    ToolStarted {
        step: u32,
        index: u32,
        tool: String,
    },
    ToolFinished {
        step: u32,
        index: u32,
        tool: String,
        outcome: String,
        duration_ms: u64,
        output: Option<Value>,
    },
    Handoff {
        from: String,
        to: String,
    },
    ApprovalRequested {
        approval_id: String,
        tool: String,
        input: Value,
        reason: String,
    },
    /// A human's decision took effect as the run continued (`approved`, `denied`, `expired`).
    ApprovalSettled {
        approval_id: String,
        tool: String,
        decision: String,
        by: Option<String>,
        note: Option<String>,
    },
    /// Progress while waiting (on a model, or for a human with `--wait`).
    Waiting {
        what: String,
        elapsed_ms: u64,
    },
    Ended {
        status: String,
        detail: Option<String>,
        output: Option<String>,
    },
}

/// Receives events as they happen.
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event);

    /// Asked at each step boundary, after a step's commit: `false` stops advancing there and
    /// leaves the run where that commit put it (still `running`) for a later advance. A kill
    /// switch. Default: always go on.
    fn keep_going(&self) -> bool {
        true
    }
}

/// Ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: &Event) {}
}
