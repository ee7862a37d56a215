//! Fixed steps (`[[steps]]` in a workflow): tool, approval and agent steps run in order, each
//! step's result saved under its id in an explicit state map that later steps read. Tool steps
//! pass the same gate as an agent's calls; approval steps park the run like a gated call; an
//! agent step runs the normal agent loop and its final answer becomes the step's result.
//!
//! A fixed step reuses the step machinery: it commits a pending step whose agent is
//! `step:<id>` (see [`STEP_AGENT_PREFIX`]), and [`Runtime::finish_step`] hands the result back
//! through [`Runtime::record_fixed_result`].

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tollgate_models::Message;
use tollgate_store::{AuditEvent, Commit, RunRecord, RunStatus, ToolCallRecord, ToolCallStatus};
use tollgate_workflow::{Step, StepInput};

use crate::advance::Pass;
use crate::approvals::requested_audit;
use crate::error::RuntimeError;
use crate::events::{Event, Observer};
use crate::gate::{self, GateContext, Verdict};
use crate::ids::{self, now_ms};
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
    pub(crate) async fn fixed_step(
        &self,
        run: &mut RunRecord,
        state: &mut RunState,
        started: Instant,
        observer: &dyn Observer,
    ) -> Result<Option<Pass>, RuntimeError> {
        let steps = &self.workflow.workflow.steps;
        let Some(cursor) = state.fixed.clone() else { return Ok(None) };
        if cursor.agent_active {
            return Ok(None);
        }
        let Some(step) = steps.get(cursor.index) else {
            // The last step's result, by step order: the state map is sorted by id.
            let last = steps.last().and_then(|s| cursor.state.get(s.id()));
            state.final_output = last.map(|v| match v {
                Value::String(s) => s.clone(),
                other => serde_json::to_string_pretty(other).unwrap_or_default(),
            });
            self.end(run, state, started, RunStatus::Completed, Some("all steps done".into()), observer).await?;
            return Ok(Some(Pass::Stop));
        };
        let now = now_ms();
        let step_no = state.next_step;
        let agent = format!("{STEP_AGENT_PREFIX}{}", step.id());
        match step {
            Step::Agent { agent: name, input, .. } => {
                let payload: Map<String, Value> =
                    input.iter().filter_map(|k| Some((k.clone(), cursor.state.get(k)?.clone()))).collect();
                let brief = format!(
                    "Goal of the run: {}\n\nState from earlier steps:\n{}",
                    run.goal,
                    serde_json::to_string_pretty(&payload).unwrap_or_default()
                );
                state.agent = name.clone();
                state.start_conversation(name, Message::User { text: brief });
                if let Some(c) = state.fixed.as_mut() {
                    c.agent_active = true;
                }
                let commit = Commit {
                    run: Some(self.update(run, state, RunStatus::Running, None, run.counters.clone(), now)),
                    audit: vec![audit(run, now, "step.started", json!({"step": step.id(), "agent": name}))],
                    ..Commit::default()
                };
                self.commit(run, commit).await?;
                Ok(Some(Pass::Continue))
            }
            Step::Tool { id, tool, input } => {
                let input = match input {
                    StepInput::Literal(v) => v.clone(),
                    StepInput::Expr(program) => {
                        let mut vars = Map::new();
                        vars.insert("state".into(), Value::Object(cursor.state.clone()));
                        vars.insert("goal".into(), Value::String(run.goal.clone()));
                        match tollgate_workflow::eval_json(program, &vars) {
                            Ok(v) => v,
                            Err(e) => {
                                let detail = format!("step `{id}`: input_expr failed: {e}");
                                self.end(run, state, started, RunStatus::Failed, Some(detail), observer).await?;
                                return Ok(Some(Pass::Stop));
                            }
                        }
                    }
                };
                let ctx =
                    GateContext { store: &*self.store, catalogue: &self.catalogue, workflow: &self.workflow, run, now };
                let verdict = gate::check(&ctx, &agent, tool, &input, &mut BTreeMap::new(), 0, false).await;
                let mut commit = Commit::default();
                let mut counters = run.counters.clone();
                let mut row = self.row(run, step_no, &agent, tool, input.clone(), &verdict, now);
                let mut body = verdict.audit_body();
                body["step"] = json!(step_no);
                body["index"] = json!(0);
                body["tool"] = json!(tool);
                body["agent"] = json!(agent);
                body["input"] = input.clone();
                body["reason"] = json!(verdict.reason());
                commit.audit.push(audit(run, now, "gate.decision", body));
                observer.event(&Event::Gate {
                    step: step_no,
                    index: 0,
                    tool: tool.clone(),
                    decision: verdict.name().into(),
                    reason: verdict.reason(),
                });
                let mut status = RunStatus::Running;
                match verdict {
                    Verdict::Allow { charges, .. } => {
                        counters.tool_calls += 1;
                        counters.spend +=
                            charges.iter().filter(|c| c.scope.starts_with("spend:")).map(|c| c.amount).sum::<i64>();
                        commit.cap_charges.extend(charges);
                    }
                    Verdict::Park { reason } => {
                        row.status = ToolCallStatus::Parked;
                        let approval = self.new_approval(run, step_no, 0, &agent, tool, &input, reason, now)?;
                        observer.event(&Event::ApprovalRequested {
                            approval_id: approval.id.clone(),
                            tool: tool.clone(),
                            input: input.clone(),
                            reason: approval.reason.clone(),
                        });
                        commit.audit.push(requested_audit(run, now, &approval));
                        commit.new_approvals.push(approval);
                        status = RunStatus::WaitingApproval;
                    }
                    Verdict::Deny { stage, reason } => {
                        row.status = ToolCallStatus::Denied;
                        row.result = Some(json!({"denied": stage, "reason": reason}));
                    }
                }
                commit.tool_calls.push(row);
                let target = CallTarget::Tool { qualified: tool.clone() };
                state.pending = Some(PendingStep {
                    step: step_no,
                    agent,
                    calls: vec![PendingCall {
                        index: 0,
                        call_id: format!("step_{id}"),
                        model_name: tool.clone(),
                        target,
                    }],
                });
                commit.checkpoint_audit = status == RunStatus::WaitingApproval;
                commit.run = Some(self.update(run, state, status, None, counters, now));
                self.commit(run, commit).await?;
                Ok(Some(Pass::Continue))
            }
            Step::Approval { id, prompt } => {
                let tool = format!("approval.{id}");
                let input = json!({"prompt": prompt, "state": cursor.state});
                let approval = self.new_approval(run, step_no, 0, &agent, &tool, &input, prompt.clone(), now)?;
                let verdict = Verdict::Park { reason: prompt.clone() };
                let mut row = self.row(run, step_no, &agent, &tool, input.clone(), &verdict, now);
                row.status = ToolCallStatus::Parked;
                observer.event(&Event::ApprovalRequested {
                    approval_id: approval.id.clone(),
                    tool: tool.clone(),
                    input,
                    reason: prompt.clone(),
                });
                let target = CallTarget::HumanGate { step_id: id.clone() };
                state.pending = Some(PendingStep {
                    step: step_no,
                    agent,
                    calls: vec![PendingCall { index: 0, call_id: format!("step_{id}"), model_name: tool, target }],
                });
                let commit = Commit {
                    audit: vec![requested_audit(run, now, &approval)],
                    new_approvals: vec![approval],
                    tool_calls: vec![row],
                    checkpoint_audit: true,
                    run: Some(self.update(run, state, RunStatus::WaitingApproval, None, run.counters.clone(), now)),
                    ..Commit::default()
                };
                self.commit(run, commit).await?;
                Ok(Some(Pass::Continue))
            }
        }
    }

    /// Called when a fixed tool or approval step finished: saves its result under the step's id,
    /// or says why the run cannot go on (a fixed step has no model to recover).
    pub(crate) fn record_fixed_result(
        &self,
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

    /// Called when an agent step's agent answered without tool calls: its answer is the step's
    /// result. Returns false when the run has no fixed steps (the answer ends the run).
    pub(crate) fn finish_agent_step(&self, state: &mut RunState, answer: Option<String>) -> bool {
        let steps = &self.workflow.workflow.steps;
        let Some(cursor) = state.fixed.as_mut() else { return false };
        let Some(step) = steps.get(cursor.index) else { return false };
        cursor.state.insert(step.id().to_string(), answer.map(Value::String).unwrap_or(Value::Null));
        cursor.index += 1;
        cursor.agent_active = false;
        true
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments are the separate fields of the record being built; the runtime rewrite groups them"
    )]
    fn row(
        &self,
        run: &RunRecord,
        step: u32,
        agent: &str,
        tool: &str,
        input: Value,
        verdict: &Verdict,
        now: i64,
    ) -> ToolCallRecord {
        ToolCallRecord {
            run_id: run.id.clone(),
            step,
            index: 0,
            call_id: agent.to_string(),
            agent: agent.into(),
            tool: tool.into(),
            input,
            idempotency_key: ids::idempotency_key(&run.id, step, 0),
            status: ToolCallStatus::Allowed,
            decision: verdict.audit_body(),
            result: None,
            report: None,
            updated_at: now,
        }
    }
}

fn audit(run: &RunRecord, now: i64, kind: &str, body: Value) -> AuditEvent {
    AuditEvent { ts: now, run_id: Some(run.id.clone()), kind: kind.into(), body }
}
