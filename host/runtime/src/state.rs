//! The run checkpoint: everything the loop needs to continue a run, stored as JSON in the run
//! row by every commit. Tool-call outcomes live in their own rows (the store's `tool_calls`);
//! the checkpoint only says which step is in flight.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tollgate_models::Message;

/// The runtime's state of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The agent whose turn it is.
    pub agent: String,
    /// Each agent's own conversation: a receiver of a handoff starts a new one.
    pub conversations: BTreeMap<String, Vec<Message>>,
    /// Model turns each agent has had (the scripted provider replays by this index).
    pub agent_turns: BTreeMap<String, u32>,
    /// Number of the next step to start.
    pub next_step: u32,
    /// A step whose model turn is committed but whose tool calls are not all finished.
    pub pending: Option<PendingStep>,
    /// Wall-clock time spent advancing the run (not parked), for the deadline.
    pub active_ms: u64,
    /// The final answer of the agent that ended the run.
    pub final_output: Option<String>,
    /// Progress through the workflow's fixed steps, when it has them.
    #[serde(default)]
    pub fixed: Option<crate::fixed::FixedCursor>,
}

/// One committed model turn waiting for its tool calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingStep {
    pub step: u32,
    pub agent: String,
    pub calls: Vec<PendingCall>,
}

/// What the model asked for in one tool call of a pending step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCall {
    pub index: u32,
    /// The model's id for the call.
    pub call_id: String,
    /// The name the model used.
    pub model_name: String,
    pub target: CallTarget,
}

/// What a model-visible tool name resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallTarget {
    /// A plugin tool, by qualified `plugin.tool` name.
    Tool { qualified: String },
    /// A handoff to another agent.
    Handoff { to: String },
    /// Not a tool this agent has; denied by the gate.
    Unknown,
    /// A fixed approval step: a human decision with no tool call behind it.
    HumanGate { step_id: String },
}
