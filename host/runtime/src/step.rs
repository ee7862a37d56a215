//! The first half of a step: ask the model, gate every tool call it made, and commit the turn
//! with the gate's verdicts (the turn commit). Nothing external has happened when this commits.

use std::time::Instant;

use serde_json::{Value, json};
use tollgate_models::{Message, ModelError, ModelRequest, ModelTurn, Sampling, ToolChoice, TurnSource};
use tollgate_store::audit::{self, RequestedCall, TokenUsage};
use tollgate_store::{
    Commit, Durability, RunRecord, RunStatus, StepRecord, StoreError, ToolCallRecord, ToolCallStatus,
};
use tollgate_workflow::{Agent, Sampling as AgentSampling, ToolChoice as AgentToolChoice};

use crate::advance::{Next, Pass};
use crate::apply::StepCommit;
use crate::catalogue;
use crate::error::RuntimeError;
use crate::events::Event;
use crate::guard::Unusable;
use crate::runtime::Runtime;
use crate::state::{CallTarget, PendingCall, PendingStep, RunState};

/// A cap charge can lose a race with another process between gating and committing; the turn
/// is then gated again (the model is not asked again) at most this many times.
const GATE_ATTEMPTS: usize = 3;

/// Why a model turn ended the run instead of answering.
struct NoAnswer {
    status: RunStatus,
    detail: String,
}

impl Runtime {
    /// One model turn of the current agent: its bound, the model's answer, the turn commit.
    pub(crate) async fn model_step(&self, pass: &mut Pass<'_>) -> Result<Next, RuntimeError> {
        let agent = pass.state.agent.clone();
        let spec = self.agent(&agent)?;
        let turns = pass.state.agent_turns.get(&agent).copied().unwrap_or(0);
        if let Some(max) = spec.max_steps
            && u64::from(turns) >= max
        {
            let detail = format!("max_steps: agent `{agent}` took {turns} model turns (bound {max})");
            return self.stop(pass, RunStatus::BoundHit, detail).await;
        }
        let tools = self.catalogue.tools_matching(&spec.tools);
        let turn = match self.ask_model(pass.state, &agent, spec, turns, &tools).await? {
            Ok(turn) => turn,
            Err(NoAnswer { status, detail }) => return self.stop(pass, status, detail).await,
        };
        pass.observer.event(&turn_event(pass.state.next_step, &agent, &turn));
        self.commit_turn(pass, &agent, &turn, &tools).await
    }

    /// The workflow's agent `name`.
    pub(crate) fn agent(&self, name: &str) -> Result<&Agent, RuntimeError> {
        let agents = &self.workflow.definition.agents;
        agents.get(name).ok_or_else(|| RuntimeError::State(format!("run is at unknown agent `{name}`")))
    }

    /// Asks `agent`'s model for its next turn, within what is left of the run's deadline.
    async fn ask_model(
        &self,
        state: &mut RunState,
        agent: &str,
        spec: &Agent,
        turn_index: u32,
        tools: &[String],
    ) -> Result<Result<ModelTurn, NoAnswer>, RuntimeError> {
        let provider = self.provider(agent)?;
        let remaining = self.remaining(state);
        // The conversation is lent to the request, not copied (it grows with the run), and is
        // back in the state before anything else can look at it.
        let mut request = ModelRequest {
            agent: agent.to_string(),
            turn_index,
            system: spec.instructions.clone(),
            messages: state.conversations.remove(agent).unwrap_or_default(),
            tools: self.catalogue.model_tools(tools, &self.handoff_tools(&spec.handoffs)),
            max_output_tokens: u32::try_from(self.workflow.definition.run.max_output_tokens).unwrap_or(u32::MAX),
            tool_choice: model_tool_choice(spec.tool_choice),
            sampling: model_sampling(&spec.sampling),
        };
        let answer = tokio::time::timeout(remaining, provider.complete(&request)).await;
        if state.threads.contains_key(agent) {
            state.conversations.insert(agent.to_string(), std::mem::take(&mut request.messages));
        }
        Ok(match answer {
            Ok(Ok(turn)) => Ok(turn),
            Ok(Err(e)) => Err(NoAnswer {
                status: if matches!(e, ModelError::Timeout { .. }) { RunStatus::BoundHit } else { RunStatus::Failed },
                detail: format!("model {}: {e}", provider.describe()),
            }),
            Err(_) => Err(NoAnswer {
                status: RunStatus::BoundHit,
                detail: format!("deadline: the model did not answer within the {remaining:?} left"),
            }),
        })
    }

    /// Gates and commits `turn`. A commit that loses a cap race to another process is built
    /// again from the state before the turn (the model is not asked again).
    async fn commit_turn(
        &self,
        pass: &mut Pass<'_>,
        agent: &str,
        turn: &ModelTurn,
        tools: &[String],
    ) -> Result<Next, RuntimeError> {
        for attempt in 1..=GATE_ATTEMPTS {
            let mut next = pass.state.attempt(agent);
            let built = self.turn_commit(pass.run, &mut next.state, agent, turn, tools, pass.started).await;
            let (commit, events) = match built {
                Ok(built) => built,
                Err(e) => {
                    next.undo(pass.state);
                    return Err(e);
                }
            };
            let rows = commit.tool_calls.clone();
            let audit: Vec<audit::AuditEvent> = commit.audit.iter().map(|a| a.event.clone()).collect();
            match self.commit(pass.run, commit).await {
                Ok(()) => {
                    crate::crashtest::pause_point("turn_committed");
                    next.state.committed_rows = next.state.pending.as_ref().map(|p| (p.step, rows));
                    next.state.committed_audit = next.state.pending.as_ref().map(|p| (p.step, audit));
                    *pass.state = next.state;
                    events.iter().for_each(|e| pass.observer.event(e));
                    return Ok(if pass.run.status.is_terminal() { Next::Stop } else { Next::Continue });
                }
                Err(RuntimeError::Store(StoreError::CapExceeded { .. })) if attempt < GATE_ATTEMPTS => {
                    next.undo(pass.state);
                }
                Err(e) => {
                    next.undo(pass.state);
                    return Err(e);
                }
            }
        }
        Err(RuntimeError::State("cap charges kept conflicting with other runs".into()))
    }

    /// `(agent, payload schema, description)` of each handoff target.
    pub(crate) fn handoff_tools(&self, targets: &[String]) -> Vec<(String, Value, String)> {
        targets
            .iter()
            .map(|to| {
                let receiver = self.workflow.definition.agents.get(to);
                let schema = receiver.and_then(|a| a.accepts.clone()).unwrap_or_else(|| {
                    json!({"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]})
                });
                let description = format!(
                    "Hand the work over to the `{to}` agent with the state it needs. It continues the run with its own \
                     tools; you stop."
                );
                (to.clone(), schema, description)
            })
            .collect()
    }

    /// The turn commit: the model turn, then either the agent's answer or one gated tool-call
    /// row per call (with approvals, cap charges and audit records) and the step pending.
    async fn turn_commit(
        &self,
        run: &RunRecord,
        state: &mut RunState,
        agent: &str,
        turn: &ModelTurn,
        tools: &[String],
        started: Instant,
    ) -> Result<(Commit, Vec<Event>), RuntimeError> {
        let mut step = StepCommit::new(run, state.next_step, agent);
        record_turn(&mut step, state, turn, started);
        if let Some(unusable) = Unusable::of(turn) {
            return Ok(self.unusable(step, state, unusable));
        }
        state.nudged = false;
        if turn.tool_calls.is_empty() {
            return Ok(self.answer(step, state, turn.text.clone()));
        }
        let handoffs = &self.agent(agent)?.handoffs;
        let mut calls = Vec::with_capacity(turn.tool_calls.len());
        for (index, call) in (0u32..).zip(&turn.tool_calls) {
            let target = catalogue::resolve(&call.name, tools, handoffs);
            let tool = match &target {
                CallTarget::Tool { qualified } => qualified.clone(),
                CallTarget::Handoff { to } => format!("handoff.{to}"),
                // Models never name a human gate; `resolve` cannot produce one.
                CallTarget::Unknown | CallTarget::HumanGate { .. } => call.name.clone(),
            };
            let row = step.row(index, &call.id, &tool, call.input.clone());
            step.decide(self, row, &target, tools, call.arguments_error.as_deref(), None).await;
            calls.push(PendingCall { index, call_id: call.id.clone(), model_name: call.name.clone(), target });
        }
        state.pending = Some(PendingStep { step: step.step, agent: agent.into(), calls });
        if step.waits_for_approval() {
            return Ok(step.finish(self, state, RunStatus::WaitingApproval));
        }
        if step.commit.tool_calls.iter().all(|row| self.only_reads(row)) {
            // Nothing outside the database acts on this turn before the result commit, which is
            // fsynced and carries it to disk: if the machine dies first, the turn is asked again
            // and its calls only read. One fsync per step instead of two.
            step.commit.durability = Durability::Deferred;
        }
        Ok(step.finish(self, state, RunStatus::Running))
    }

    /// A turn the run cannot act on ([`Unusable`]): the model is told why and asked again, or,
    /// the second time in a row, the run ends.
    fn unusable(&self, mut step: StepCommit<'_>, state: &mut RunState, unusable: Unusable) -> (Commit, Vec<Event>) {
        let max_output_tokens = self.workflow.definition.run.max_output_tokens;
        state.next_step += 1;
        if state.nudged {
            let (status, detail) = unusable.ending(max_output_tokens);
            return step.end(self, state, status, Some(detail));
        }
        state.nudged = true;
        let message = unusable.nudge(max_output_tokens);
        state.push_message(&step.agent, Message::User { text: message.clone() });
        step.audit(audit::ModelNudged {
            step: step.step,
            agent: step.agent.clone(),
            reason: unusable.as_str().into(),
            message,
        });
        step.finish(self, state, RunStatus::Running)
    }

    /// A turn with no tool calls: the answer ends an agent step of a fixed-step workflow, or
    /// the run.
    fn answer(&self, step: StepCommit<'_>, state: &mut RunState, text: Option<String>) -> (Commit, Vec<Event>) {
        state.next_step += 1;
        if self.finish_agent_step(state, text.clone()) {
            return step.finish(self, state, RunStatus::Running);
        }
        state.final_output = text;
        let detail = format!("agent `{}` finished", step.agent);
        step.end(self, state, RunStatus::Completed, Some(detail))
    }

    /// A row whose call, if it runs, changes nothing anywhere: denied, a handoff (recorded in
    /// this commit), or a tool that declares no effect beyond `read`.
    fn only_reads(&self, row: &ToolCallRecord) -> bool {
        match row.status {
            ToolCallStatus::Denied | ToolCallStatus::Done => true,
            ToolCallStatus::WaitingApproval | ToolCallStatus::InFlight => false,
            ToolCallStatus::Allowed => self.catalogue.tool(&row.tool).is_some_and(|(_, spec)| {
                let e = &spec.effects;
                !(e.write || e.send_message || e.spend || e.delete)
            }),
        }
    }
}

/// Adds the model turn to the step: counters, the agent's conversation, the step row and the
/// `model.turn` audit record.
fn record_turn(step: &mut StepCommit<'_>, state: &mut RunState, turn: &ModelTurn, started: Instant) {
    let agent = step.agent.clone();
    let counters = &mut step.counters;
    counters.steps += 1;
    counters.input_tokens = counters.input_tokens.saturating_add(turn.usage.input_tokens);
    counters.output_tokens = counters.output_tokens.saturating_add(turn.usage.output_tokens);
    *state.agent_turns.entry(agent.clone()).or_default() += 1;
    state.push_message(&agent, Message::Assistant { text: turn.text.clone(), tool_calls: turn.tool_calls.clone() });
    state.add_active(started);
    step.commit.steps.push(StepRecord {
        run_id: step.run.id.clone(),
        step: step.step,
        agent: agent.clone(),
        turn: serde_json::to_value(turn).unwrap_or_default(),
        created_at: step.now,
    });
    step.audit(audit::ModelTurn {
        step: step.step,
        agent,
        source: match &turn.source {
            TurnSource::Live { provider, model } => {
                audit::TurnSource::Live { provider: provider.clone(), model: model.clone() }
            }
            TurnSource::Replay { script, index } => audit::TurnSource::Replay { script: script.clone(), index: *index },
        },
        reasoning: turn.text.clone(),
        tool_calls: turn
            .tool_calls
            .iter()
            .map(|c| RequestedCall { id: c.id.clone(), name: c.name.clone(), input: c.input.clone() })
            .collect(),
        usage: TokenUsage { input_tokens: turn.usage.input_tokens, output_tokens: turn.usage.output_tokens },
        stop: Some(turn.stop.as_str().to_string()),
    });
}

/// What the observer is told about a model turn: replay is labelled as such.
fn turn_event(step: u32, agent: &str, turn: &ModelTurn) -> Event {
    let (model, replay) = match &turn.source {
        TurnSource::Live { provider, model } => (format!("{provider}:{model}"), false),
        TurnSource::Replay { script, index } => (format!("{script} #{index}"), true),
    };
    Event::ModelTurn {
        step,
        agent: agent.to_string(),
        model,
        replay,
        text: turn.text.clone(),
        tool_calls: turn.tool_calls.iter().map(|c| c.name.clone()).collect(),
    }
}

/// The workflow's `tool_choice` in the models crate's terms (the workflow crate knows no models).
fn model_tool_choice(choice: AgentToolChoice) -> ToolChoice {
    match choice {
        AgentToolChoice::Auto => ToolChoice::Auto,
        AgentToolChoice::Required => ToolChoice::Required,
        AgentToolChoice::None => ToolChoice::None,
    }
}

fn model_sampling(sampling: &AgentSampling) -> Sampling {
    Sampling {
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        stop: sampling.stop.clone(),
        seed: sampling.seed,
    }
}
