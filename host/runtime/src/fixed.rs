//! Fixed steps (`[[steps]]` in a workflow): tool, approval and agent steps run in order, each
//! step's result saved under its id in an explicit state map that later steps read. Tool steps
//! pass the same gate as an agent's calls; approval steps pass it as a human gate and wait for
//! approval like a gated call; an agent step runs the normal agent loop and its final answer
//! becomes the step's result.
//!
//! A fixed step reuses the step machinery: it commits a pending step whose agent is
//! `step:<id>` (see [`STEP_AGENT_PREFIX`]), and [`Runtime::finish_step`] hands the result back
//! through [`Runtime::fixed_results`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tollgate_models::Message;
use tollgate_store::audit::StepStarted;
use tollgate_store::{Commit, RunStatus, ToolCallRecord};
use tollgate_workflow::{Step, StepInput};

use crate::advance::{Next, Pass};
use crate::apply::StepCommit;
use crate::error::RuntimeError;
use crate::events::Event;
use crate::runtime::Runtime;
use crate::state::{CallTarget, PendingCall, PendingStep, RunState};

/// Pending steps of fixed tool and approval steps run as this pseudo-agent.
pub(crate) const STEP_AGENT_PREFIX: &str = "step:";

/// Where a run is in its fixed steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FixedCursor {
    /// Index of the current step.
    pub index: usize,
    /// Results of finished steps by id.
    pub state: Map<String, Value>,
    /// The current step is an agent step whose agent loop is running.
    pub agent_active: bool,
}

impl Runtime {
    /// Runs the next fixed step if the workflow has them and no agent step is active. `None`
    /// means: continue with the agent loop.
    pub(crate) async fn fixed_step(&self, pass: &mut Pass<'_>) -> Result<Option<Next>, RuntimeError> {
        let steps = &self.workflow.definition.steps;
        let Some(cursor) = pass.state.fixed.clone() else { return Ok(None) };
        if cursor.agent_active {
            return Ok(None);
        }
        let Some(step) = steps.get(cursor.index) else {
            // The last step's result, by step order: the state map is sorted by id.
            let last = steps.last().and_then(|s| cursor.state.get(s.id()));
            pass.state.final_output = last.map(|v| match v {
                Value::String(s) => s.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            });
            return self.stop(pass, RunStatus::Completed, "all steps done".into()).await.map(Some);
        };
        let mut commit = StepCommit::new(pass.run, pass.state.next_step, &format!("{STEP_AGENT_PREFIX}{}", step.id()));
        match step {
            Step::Agent { agent, input, .. } => start_agent(&mut commit, pass.state, &cursor, agent, input),
            Step::Tool { id, tool, input } => {
                let input = match tool_input(input, &cursor, &pass.run.goal) {
                    Ok(input) => input,
                    Err(e) => {
                        let detail = format!("step `{id}`: input_expr failed: {e}");
                        return self.stop(pass, RunStatus::Failed, detail).await.map(Some);
                    }
                };
                let target = CallTarget::Tool { qualified: tool.clone() };
                self.gate_fixed(&mut commit, pass.state, id, tool, input, target).await;
            }
            Step::Approval { id, prompt } => {
                let input = json!({"prompt": prompt, "state": cursor.state});
                let target = CallTarget::HumanGate { step_id: id.clone() };
                self.gate_fixed(&mut commit, pass.state, id, &format!("approval.{id}"), input, target).await;
            }
        }
        let status = if commit.waits_for_approval() { RunStatus::WaitingApproval } else { RunStatus::Running };
        let (commit, events) = commit.finish(self, pass.state, status);
        self.commit(pass.run, commit).await?;
        events.iter().for_each(|e| pass.observer.event(e));
        Ok(Some(Next::Continue))
    }

    /// Gates the one call of a fixed tool or approval step and makes it the pending step.
    async fn gate_fixed(
        &self,
        commit: &mut StepCommit<'_>,
        state: &mut RunState,
        id: &str,
        tool: &str,
        input: Value,
        target: CallTarget,
    ) {
        let call_id = format!("step_{id}");
        let row = commit.row(0, &call_id, tool, input);
        commit.decide(self, row, &target, &[], None, None).await;
        let call = PendingCall { index: 0, call_id, model_name: tool.to_string(), target };
        state.pending = Some(PendingStep { step: commit.step, agent: commit.agent.clone(), calls: vec![call] });
    }

    /// The result commit of a fixed tool or approval step: its result saved under the step's
    /// id, or the run ended in the same commit when the step did not complete. (Ended by a
    /// second commit, a crash in between would leave a running run whose cursor still points at
    /// the failed step, and a resume would run it again: ask again a human who said no, or
    /// repeat a failed tool call under a new idempotency key.)
    pub(crate) fn fixed_results(
        &self,
        step: StepCommit<'_>,
        state: &mut RunState,
        pending: &PendingStep,
        rows: &BTreeMap<u32, ToolCallRecord>,
    ) -> Result<(Commit, Vec<Event>), RuntimeError> {
        let row =
            rows.get(&0).ok_or_else(|| RuntimeError::State(format!("fixed step {} lost its call", pending.step)))?;
        Ok(match record_fixed_result(state, pending, row) {
            None => step.finish(self, state, RunStatus::Running),
            Some((status, detail)) => step.end(self, state, status, Some(detail)),
        })
    }

    /// Called when an agent step's agent answered without tool calls: its answer is the step's
    /// result. Returns false when the run has no fixed steps (the answer ends the run).
    pub(crate) fn finish_agent_step(&self, state: &mut RunState, answer: Option<String>) -> bool {
        let steps = &self.workflow.definition.steps;
        let Some(cursor) = state.fixed.as_mut() else { return false };
        let Some(step) = steps.get(cursor.index) else { return false };
        cursor.state.insert(step.id().to_string(), answer.map(Value::String).unwrap_or(Value::Null));
        cursor.index += 1;
        cursor.agent_active = false;
        true
    }
}

/// An agent step hands the run to its agent, with the state keys it asks for.
fn start_agent(commit: &mut StepCommit<'_>, state: &mut RunState, cursor: &FixedCursor, agent: &str, keys: &[String]) {
    let payload: Map<String, Value> =
        keys.iter().filter_map(|k| Some((k.clone(), cursor.state.get(k)?.clone()))).collect();
    let brief = format!(
        "Goal of the run: {}\n\nState from earlier steps:\n{}",
        commit.run.goal,
        serde_json::to_string_pretty(&payload).unwrap_or_default()
    );
    state.agent = agent.to_string();
    state.start_conversation(agent, Message::User { text: brief });
    if let Some(c) = state.fixed.as_mut() {
        c.agent_active = true;
    }
    let step_id = commit.agent.strip_prefix(STEP_AGENT_PREFIX).unwrap_or_default().to_string();
    commit.audit(StepStarted { step: commit.step, step_id, agent: agent.to_string() });
}

/// A tool step's input: its literal, or its `input_expr` evaluated over the state and goal.
fn tool_input(input: &StepInput, cursor: &FixedCursor, goal: &str) -> Result<Value, String> {
    match input {
        StepInput::Literal(v) => Ok(v.clone()),
        StepInput::Expr(program) => {
            let mut vars = Map::new();
            vars.insert("state".into(), Value::Object(cursor.state.clone()));
            vars.insert("goal".into(), Value::String(goal.to_string()));
            tollgate_workflow::eval_json(program, &vars).map_err(|e| e.to_string())
        }
    }
}

/// Called when a fixed tool or approval step finished: saves its result under the step's id,
/// or says why the run cannot go on (a fixed step has no model to recover).
fn record_fixed_result(
    state: &mut RunState,
    pending: &PendingStep,
    row: &ToolCallRecord,
) -> Option<(RunStatus, String)> {
    let id = pending.agent.strip_prefix(STEP_AGENT_PREFIX)?.to_string();
    let cursor = state.fixed.as_mut()?;
    let result = row.result.clone().unwrap_or(Value::Null);
    if let Some(output) = result.get("output") {
        cursor.state.insert(id, output.clone());
        cursor.index += 1;
        return None;
    }
    let human = matches!(pending.calls.first().map(|c| &c.target), Some(CallTarget::HumanGate { .. }));
    let status = if human { RunStatus::Cancelled } else { RunStatus::Failed };
    let why = result
        .get("reason")
        .or_else(|| result.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("no result")
        .to_string();
    Some((status, format!("step `{id}` did not complete: {why}")))
}
