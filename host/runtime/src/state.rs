//! The run checkpoint: everything the loop needs to continue a run, stored as JSON in the run
//! row by every commit. Tool-call outcomes live in their own rows (the store's `tool_calls`)
//! and conversation messages in theirs (the store's `messages`); the checkpoint only says which
//! step is in flight and where each agent's conversation starts, so it stays small however
//! long the run gets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tollgate_models::Message;
use tollgate_store::audit::AuditEvent;
use tollgate_store::{MessageRecord, RunRecord, Store, ToolCallRecord};

use crate::error::RuntimeError;

/// The runtime's state of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The agent whose turn it is.
    pub agent: String,
    /// Each agent's own conversation (a receiver of a handoff starts a new one). In memory only:
    /// [`RunState::load_conversations`] reads it from the store's message rows, and
    /// [`RunState::take_new_messages`] turns what was added into rows for the next commit.
    #[serde(skip)]
    pub conversations: BTreeMap<String, Vec<Message>>,
    /// Where each agent's current conversation lives in the run's message rows.
    #[serde(default)]
    pub threads: BTreeMap<String, Thread>,
    /// `seq` of the next message row of this run.
    #[serde(default)]
    pub next_message: u64,
    /// Checkpoints written before message rows existed carried whole conversations: read
    /// once, then written out as rows by the next commit.
    #[serde(default, rename = "conversations", skip_serializing)]
    pub(crate) legacy_conversations: Option<BTreeMap<String, Vec<Message>>>,
    /// The tool-call rows of the step just committed by this process, so finishing the step
    /// need not read them back. In memory only.
    #[serde(skip)]
    pub(crate) committed_rows: Option<(u32, Vec<ToolCallRecord>)>,
    /// The audit events of that commit, so the calls it allowed are authorised from what this
    /// process itself just signed instead of a read back (authorise.rs). In memory only.
    #[serde(skip)]
    pub(crate) committed_audit: Option<(u32, Vec<AuditEvent>)>,
    /// Model turns each agent has had (the scripted provider replays by this index).
    pub agent_turns: BTreeMap<String, u32>,
    /// Number of the next step to start.
    pub next_step: u32,
    /// A step whose model turn is committed but whose tool calls are not all finished.
    pub pending: Option<PendingStep>,
    /// Wall-clock time spent advancing the run (not waiting for approval), for the deadline.
    pub active_ms: u64,
    /// The final answer of the agent that ended the run.
    pub final_output: Option<String>,
    /// Progress through the workflow's fixed steps, when it has them.
    #[serde(default)]
    pub fixed: Option<crate::fixed::FixedCursor>,
    /// Whether the last model turn could not be acted on (empty, or cut off) and the model was
    /// asked again: a second such turn in a row ends the run.
    #[serde(default)]
    pub nudged: bool,
    /// How often each agent's call (by [`crate::guard::call_fingerprint`]) was refused or
    /// failed: the repeated-refusal guard ends the run at `max_repeated_refusals`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refusals: BTreeMap<String, u32>,
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

/// One agent's current conversation in the message rows: its messages are the agent's rows with
/// `seq >= first_seq`; `stored` of them are already committed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    pub first_seq: u64,
    pub stored: u32,
}

/// A copy of the state for one attempt at a commit. The conversations are moved into it, not
/// copied (they grow with the run); the attempt only appends to `agent`'s, and
/// [`Attempt::undo`] puts them back as they were.
pub(crate) struct Attempt {
    pub state: RunState,
    agent: String,
    length_before: Option<usize>,
}

impl Attempt {
    /// Gives the conversations back to `state`, without what the attempt appended.
    pub(crate) fn undo(mut self, state: &mut RunState) {
        state.conversations = std::mem::take(&mut self.state.conversations);
        match self.length_before {
            Some(length) => state.conversations.get_mut(&self.agent).map(|c| c.truncate(length)),
            None => state.conversations.remove(&self.agent).map(drop),
        };
    }
}

impl RunState {
    /// Starts an attempt at a commit that may append to `agent`'s conversation.
    pub(crate) fn attempt(&mut self, agent: &str) -> Attempt {
        let conversations = std::mem::take(&mut self.conversations);
        let mut state = self.clone();
        state.conversations = conversations;
        let length_before = state.conversations.get(agent).map(Vec::len);
        Attempt { state, agent: agent.to_string(), length_before }
    }

    /// Counts the time since `started` as time spent advancing the run.
    pub(crate) fn add_active(&mut self, started: std::time::Instant) {
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.active_ms = self.active_ms.saturating_add(elapsed);
    }

    /// Appends a message to `agent`'s conversation.
    pub(crate) fn push_message(&mut self, agent: &str, message: Message) {
        if !self.threads.contains_key(agent) {
            self.start_conversation(agent, message);
            return;
        }
        self.conversations.entry(agent.to_string()).or_default().push(message);
    }

    /// Starts `agent`'s conversation anew with `first` (its earlier rows stay in the store).
    pub(crate) fn start_conversation(&mut self, agent: &str, first: Message) {
        self.conversations.insert(agent.to_string(), vec![first]);
        self.threads.insert(agent.to_string(), Thread { first_seq: self.next_message, stored: 0 });
    }

    /// The messages added since the last commit, numbered, and marks them stored. Called while
    /// building a commit; a commit that fails aborts the loop, which then reloads everything.
    pub(crate) fn take_new_messages(&mut self) -> Vec<MessageRecord> {
        let mut rows = Vec::new();
        for (agent, thread) in &mut self.threads {
            let Some(messages) = self.conversations.get(agent) else { continue };
            for message in messages.iter().skip(thread.stored as usize) {
                rows.push(MessageRecord {
                    seq: self.next_message,
                    agent: agent.clone(),
                    message: serde_json::to_value(message).unwrap_or_default(),
                });
                self.next_message += 1;
            }
            thread.stored = messages.len() as u32;
        }
        rows
    }

    /// The state a run's checkpoint holds, with every agent's conversation read from the store.
    pub async fn load(store: &dyn Store, run: &RunRecord) -> Result<RunState, RuntimeError> {
        let mut state: RunState = serde_json::from_value(run.checkpoint.clone())
            .map_err(|e| RuntimeError::State(format!("run {} has an unreadable checkpoint: {e}", run.id)))?;
        state.load_conversations(store, run).await?;
        Ok(state)
    }

    /// Reads every agent's conversation from the store. A run that has not had a commit since
    /// it was created starts its entry agent's conversation with the goal.
    async fn load_conversations(&mut self, store: &dyn Store, run: &RunRecord) -> Result<(), RuntimeError> {
        if let Some(legacy) = self.legacy_conversations.take() {
            for (agent, messages) in legacy {
                self.threads.insert(agent.clone(), Thread { first_seq: self.next_message, stored: 0 });
                self.conversations.insert(agent, messages);
            }
            return Ok(());
        }
        if self.threads.is_empty() && self.fixed.is_none() && !self.agent.is_empty() {
            let agent = self.agent.clone();
            self.start_conversation(&agent, Message::User { text: run.goal.clone() });
            return Ok(());
        }
        for (agent, thread) in &self.threads {
            let rows = store.messages(&run.id, agent, thread.first_seq).await?;
            let stored = thread.stored as usize;
            if rows.len() != stored {
                return Err(RuntimeError::State(format!(
                    "run {}: agent `{agent}` should have {stored} stored messages, the store has {}",
                    run.id,
                    rows.len()
                )));
            }
            let messages =
                rows.into_iter().map(serde_json::from_value).collect::<Result<Vec<Message>, _>>().map_err(|e| {
                    RuntimeError::State(format!("run {}: unreadable message of `{agent}`: {e}", run.id))
                })?;
            self.conversations.insert(agent.clone(), messages);
        }
        Ok(())
    }
}
