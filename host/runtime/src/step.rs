//! The first half of a step: ask the model, gate every tool call it made, and commit the turn
//! with the gate's verdicts (the turn commit). Nothing external has happened when this commits.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};
use tollgate_models::{Message, ModelError, ModelRequest, ModelTurn, TurnSource};
use tollgate_store::{
    ApprovalRecord, AuditEvent, Commit, Durability, RunRecord, RunStatus, StepRecord, StoreError, ToolCallRecord,
    ToolCallStatus,
};

use crate::advance::Pass;
use crate::approvals::requested_audit;
use crate::catalogue::{self, model_name};
use crate::error::RuntimeError;
use crate::events::{Event, Observer};
use crate::gate::{self, GateContext, Verdict};
use crate::ids::{self, now_ms};
use crate::runtime::Runtime;
use crate::state::{CallTarget, PendingCall, PendingStep, RunState};

/// A cap charge can lose a race with another process between gating and committing; the turn
/// is then gated again (the model is not asked again) at most this many times.
const GATE_ATTEMPTS: usize = 3;

impl Runtime {
    pub(crate) async fn model_step(
        &self,
        run: &mut RunRecord,
        state: &mut RunState,
        started: Instant,
        observer: &dyn Observer,
    ) -> Result<Pass, RuntimeError> {
        let agent_name = state.agent.clone();
        let agent = self
            .workflow
            .workflow
            .agents
            .get(&agent_name)
            .ok_or_else(|| RuntimeError::State(format!("run is at unknown agent `{agent_name}`")))?;
        let turn_index = state.agent_turns.get(&agent_name).copied().unwrap_or(0);
        if let Some(max) = agent.max_steps
            && u64::from(turn_index) >= max
        {
            let detail = format!("max_steps: agent `{agent_name}` took {turn_index} model turns (bound {max})");
            self.end(run, state, started, RunStatus::BoundHit, Some(detail), observer).await?;
            return Ok(Pass::Stop);
        }
        let tools = self.catalogue.tools_matching(&agent.tools);
        let handoffs = self.handoff_tools(&agent.handoffs);
        let provider = self.provider(&agent_name)?;
        let remaining = self.remaining(state);
        // The conversation is lent to the request, not copied (it grows with the run), and is
        // back in the state before anything else can look at it.
        let mut request = ModelRequest {
            agent: agent_name.clone(),
            turn_index,
            system: agent.instructions.clone(),
            messages: state.conversations.remove(&agent_name).unwrap_or_default(),
            tools: self.catalogue.model_tools(&tools, &handoffs),
            max_output_tokens: self.workflow.workflow.run.max_output_tokens.min(u32::MAX as u64) as u32,
        };
        let answer = tokio::time::timeout(remaining, provider.complete(&request)).await;
        if state.threads.contains_key(&agent_name) {
            state.conversations.insert(agent_name.clone(), std::mem::take(&mut request.messages));
        }
        let turn = match answer {
            Ok(Ok(turn)) => turn,
            Ok(Err(e)) => {
                let status =
                    if matches!(e, ModelError::Timeout { .. }) { RunStatus::BoundHit } else { RunStatus::Failed };
                self.end(run, state, started, status, Some(format!("model {}: {e}", provider.describe())), observer)
                    .await?;
                return Ok(Pass::Stop);
            }
            Err(_) => {
                let detail = format!("deadline: the model did not answer within the {remaining:?} left");
                self.end(run, state, started, RunStatus::BoundHit, Some(detail), observer).await?;
                return Ok(Pass::Stop);
            }
        };
        let (model, replay) = match &turn.source {
            TurnSource::Live { provider, model } => (format!("{provider}:{model}"), false),
            TurnSource::Replay { script, index } => (format!("{script} #{index}"), true),
        };
        observer.event(&Event::ModelTurn {
            step: state.next_step,
            agent: agent_name.clone(),
            model,
            replay,
            text: turn.text.clone(),
            tool_calls: turn.tool_calls.iter().map(|c| c.name.clone()).collect(),
        });

        let handoff_names: Vec<String> = agent.handoffs.clone();
        for attempt in 1..=GATE_ATTEMPTS {
            // The attempt works on a copy, so a retry starts from the state before the turn.
            // The conversations are moved, not copied (they grow with the run): the attempt
            // only appends the turn to this agent's, which `undo` cuts off again.
            let conversations = std::mem::take(&mut state.conversations);
            let mut next = state.clone();
            next.conversations = conversations;
            let length_before = next.conversations.get(&agent_name).map(Vec::len);
            let undo = |state: &mut RunState, next: &mut RunState| {
                state.conversations = std::mem::take(&mut next.conversations);
                match length_before {
                    Some(length) => state.conversations.get_mut(&agent_name).map(|c| c.truncate(length)),
                    None => state.conversations.remove(&agent_name).map(drop),
                };
            };
            let commit =
                match self.turn_commit(run, &mut next, &agent_name, &turn, &tools, &handoff_names, started).await {
                    Ok(commit) => commit,
                    Err(e) => {
                        undo(state, &mut next);
                        return Err(e);
                    }
                };
            let parked: Vec<ApprovalRecord> = commit.new_approvals.clone();
            let gates: Vec<Value> =
                commit.audit.iter().filter(|a| a.kind == "gate.decision").map(|a| a.body.clone()).collect();
            let ends = commit.run.as_ref().is_some_and(|r| r.status == RunStatus::Completed);
            let rows = commit.tool_calls.clone();
            match self.commit(run, commit).await {
                Ok(()) => {
                    next.committed_rows = next.pending.as_ref().map(|p| (p.step, rows));
                    crate::crashtest::pause_point("turn_committed");
                    for body in gates {
                        observer.event(&Event::Gate {
                            step: body["step"].as_u64().unwrap_or(0) as u32,
                            index: body["index"].as_u64().unwrap_or(0) as u32,
                            tool: body["tool"].as_str().unwrap_or_default().to_string(),
                            decision: body["decision"].as_str().unwrap_or_default().to_string(),
                            reason: body["reason"].as_str().map(str::to_string),
                        });
                    }
                    for a in parked {
                        observer.event(&Event::ApprovalRequested {
                            approval_id: a.id,
                            tool: a.tool,
                            input: a.input,
                            reason: a.reason,
                        });
                    }
                    *state = next;
                    if ends {
                        observer.event(&Event::Ended {
                            status: RunStatus::Completed.as_str().into(),
                            detail: None,
                            output: state.final_output.clone(),
                        });
                        return Ok(Pass::Stop);
                    }
                    return Ok(Pass::Continue);
                }
                Err(RuntimeError::Store(StoreError::CapExceeded { .. })) if attempt < GATE_ATTEMPTS => {
                    undo(state, &mut next);
                    continue;
                }
                Err(e) => {
                    undo(state, &mut next);
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
                let receiver = self.workflow.workflow.agents.get(to);
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

    /// Builds the turn commit: the model turn, one gated tool-call row per call, approvals,
    /// cap charges, audit records, and the checkpoint (with the step pending, or the run ended
    /// when the model called no tools).
    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments are the separate fields of the record being built; the runtime rewrite groups them"
    )]
    async fn turn_commit(
        &self,
        run: &RunRecord,
        state: &mut RunState,
        agent: &str,
        turn: &ModelTurn,
        tools: &[String],
        handoffs: &[String],
        started: Instant,
    ) -> Result<Commit, RuntimeError> {
        let now = now_ms();
        let step = state.next_step;
        let mut counters = run.counters.clone();
        counters.steps += 1;
        counters.input_tokens += turn.usage.input_tokens;
        counters.output_tokens += turn.usage.output_tokens;
        *state.agent_turns.entry(agent.to_string()).or_default() += 1;
        state.push_message(agent, Message::Assistant { text: turn.text.clone(), tool_calls: turn.tool_calls.clone() });
        state.active_ms += started.elapsed().as_millis() as u64;
        let turn_json = serde_json::to_value(turn).unwrap_or_default();
        let mut commit = Commit {
            steps: vec![StepRecord {
                run_id: run.id.clone(),
                step,
                agent: agent.into(),
                turn: turn_json,
                created_at: now,
            }],
            audit: vec![AuditEvent {
                ts: now,
                run_id: Some(run.id.clone()),
                kind: "model.turn".into(),
                body: json!({
                    "step": step, "agent": agent, "source": turn.source, "reasoning": turn.text,
                    "tool_calls": turn.tool_calls.iter().map(|c| json!({"id": c.id, "name": c.name, "input": c.input})).collect::<Vec<_>>(),
                    "usage": turn.usage,
                }),
            }],
            ..Commit::default()
        };
        if turn.tool_calls.is_empty() && self.finish_agent_step(state, turn.text.clone()) {
            // An agent step of a fixed-step workflow: its answer is the step's result.
            state.next_step += 1;
            commit.run = Some(self.update(run, state, RunStatus::Running, None, counters, now));
            return Ok(commit);
        }
        if turn.tool_calls.is_empty() {
            state.final_output = turn.text.clone();
            state.next_step += 1;
            let detail = Some(format!("agent `{agent}` finished"));
            commit.audit.push(AuditEvent {
                ts: now,
                run_id: Some(run.id.clone()),
                kind: "run.ended".into(),
                body: json!({"status": "completed", "detail": detail, "output": state.final_output, "counters": counters}),
            });
            commit.run = Some(self.update(run, state, RunStatus::Completed, detail, counters, now));
            commit.checkpoint_audit = true;
            return Ok(commit);
        }

        let ctx = GateContext { store: &*self.store, catalogue: &self.catalogue, workflow: &self.workflow, run, now };
        let mut turn_charges = BTreeMap::new();
        let mut allowed = 0u64;
        let mut handed_off = false;
        let mut calls = Vec::new();
        for (index, call) in turn.tool_calls.iter().enumerate() {
            let index = index as u32;
            let target = catalogue::resolve(&call.name, tools, handoffs);
            let key = ids::idempotency_key(&run.id, step, index);
            let (qualified, verdict) = match &target {
                // Models never name a human gate; `resolve` cannot produce one.
                CallTarget::Unknown | CallTarget::HumanGate { .. } => {
                    let available: Vec<String> = tools.iter().map(|t| model_name(t)).collect();
                    let reason = format!(
                        "`{}` is not a tool of agent `{agent}`; its tools are: {}",
                        call.name,
                        if available.is_empty() { "(none)".to_string() } else { available.join(", ") }
                    );
                    (call.name.clone(), Verdict::Deny { stage: "enabled", reason })
                }
                CallTarget::Handoff { to } => {
                    let verdict = if handed_off {
                        Verdict::Deny { stage: "handoff", reason: "only one handoff per turn".into() }
                    } else {
                        self.check_handoff(to, &call.input)
                    };
                    handed_off |= matches!(verdict, Verdict::Allow { .. });
                    (format!("handoff.{to}"), verdict)
                }
                CallTarget::Tool { qualified } => {
                    let verdict =
                        gate::check(&ctx, agent, qualified, &call.input, &mut turn_charges, allowed, false).await;
                    (qualified.clone(), verdict)
                }
            };
            let mut row = ToolCallRecord {
                run_id: run.id.clone(),
                step,
                index,
                call_id: call.id.clone(),
                agent: agent.into(),
                tool: qualified.clone(),
                input: call.input.clone(),
                idempotency_key: key,
                status: ToolCallStatus::Allowed,
                decision: verdict.audit_body(),
                result: None,
                report: None,
                updated_at: now,
            };
            let mut audit = verdict.audit_body();
            audit["step"] = json!(step);
            audit["index"] = json!(index);
            audit["tool"] = json!(qualified);
            audit["agent"] = json!(agent);
            audit["input"] = call.input.clone();
            audit["reason"] = json!(verdict.reason());
            commit.audit.push(AuditEvent {
                ts: now,
                run_id: Some(run.id.clone()),
                kind: "gate.decision".into(),
                body: audit,
            });
            match verdict {
                Verdict::Allow { charges, .. } => {
                    if let CallTarget::Handoff { to } = &target {
                        row.status = ToolCallStatus::Done;
                        row.result = Some(json!({"output": {"handed_off_to": to}}));
                    } else {
                        allowed += 1;
                        counters.tool_calls += 1;
                        counters.spend +=
                            charges.iter().filter(|c| c.scope.starts_with("spend:")).map(|c| c.amount).sum::<i64>();
                        commit.cap_charges.extend(charges);
                    }
                }
                Verdict::Park { reason } => {
                    row.status = ToolCallStatus::Parked;
                    let approval = self.new_approval(run, step, index, agent, &qualified, &call.input, reason, now)?;
                    commit.audit.push(requested_audit(run, now, &approval));
                    commit.new_approvals.push(approval);
                }
                Verdict::Deny { stage, reason } => {
                    row.status = ToolCallStatus::Denied;
                    row.result = Some(json!({"denied": stage, "reason": reason}));
                }
            }
            commit.tool_calls.push(row);
            calls.push(PendingCall { index, call_id: call.id.clone(), model_name: call.name.clone(), target });
        }
        state.pending = Some(PendingStep { step, agent: agent.into(), calls });
        let status = if commit.new_approvals.is_empty() { RunStatus::Running } else { RunStatus::WaitingApproval };
        if status == RunStatus::Running && commit.tool_calls.iter().all(|row| self.only_reads(row)) {
            // Nothing outside the database acts on this turn before the result commit, which is
            // fsynced and carries it to disk: if the machine dies first, the turn is asked again
            // and its calls only read. One fsync per step instead of two.
            commit.durability = Durability::Deferred;
        }
        commit.checkpoint_audit = status == RunStatus::WaitingApproval;
        commit.run = Some(self.update(run, state, status, None, counters, now));
        Ok(commit)
    }

    /// A row whose call, if it runs, changes nothing anywhere: denied, a handoff (recorded in
    /// this commit), or a tool that declares no effect beyond `read`.
    fn only_reads(&self, row: &ToolCallRecord) -> bool {
        match row.status {
            ToolCallStatus::Denied | ToolCallStatus::Done => true,
            ToolCallStatus::Parked => false,
            ToolCallStatus::Allowed => self.catalogue.tool(&row.tool).is_some_and(|(_, spec)| {
                let e = &spec.effects;
                !(e.write || e.send_message || e.spend || e.delete)
            }),
        }
    }

    fn check_handoff(&self, to: &str, payload: &Value) -> Verdict {
        let schema = self.workflow.workflow.agents.get(to).and_then(|a| a.accepts.clone());
        let Some(schema) = schema else {
            return match payload.get("message").and_then(Value::as_str) {
                Some(_) => Verdict::Allow { charges: Vec::new(), rule: None },
                None => Verdict::Deny { stage: "schema", reason: "a handoff needs a `message` string".into() },
            };
        };
        let checked = tollgate_sandbox::Schema::compile(&schema.to_string()).and_then(|s| s.check(payload));
        match checked {
            Ok(()) => Verdict::Allow { charges: Vec::new(), rule: None },
            Err(message) => Verdict::Deny {
                stage: "schema",
                reason: format!("the handoff payload does not match what `{to}` accepts: {message}"),
            },
        }
    }
}
