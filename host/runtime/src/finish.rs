//! The second half of a step: settle decided approvals, run every allowed call that has no
//! recorded result (concurrently, each with its stable idempotency key), and commit the results
//! (the result commit). Re-running this after a crash repeats only calls whose result was not
//! recorded, with the same keys.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::future::join_all;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate_models::Message;
use tollgate_sandbox::CallContext;
use tollgate_store::{
    ApprovalFilter, ApprovalRecord, ApprovalStatus, ApprovalTransition, AuditEvent, Commit, Counters, RunRecord,
    RunStatus, ToolCallRecord, ToolCallStatus,
};
use tollgate_workflow::InstanceMode;

use crate::advance::Pass;
use crate::approvals::binding_hash;
use crate::error::RuntimeError;
use crate::events::{Event, Observer};
use crate::gate::{self, GateContext, Verdict};
use crate::ids::now_ms;
use crate::runtime::Runtime;
use crate::state::{CallTarget, PendingStep, RunState};

impl Runtime {
    pub(crate) async fn finish_step(
        &self,
        run: &mut RunRecord,
        state: &mut RunState,
        pending: &PendingStep,
        started: Instant,
        observer: &dyn Observer,
    ) -> Result<Pass, RuntimeError> {
        let rows = match state.committed_rows.take() {
            Some((step, rows)) if step == pending.step => rows,
            _ => self.store.step_tool_calls(&run.id, pending.step).await?,
        };
        let mut rows: BTreeMap<u32, ToolCallRecord> = rows.into_iter().map(|r| (r.index, r)).collect();
        // Only a step with parked calls has approvals to settle.
        let approvals: BTreeMap<u32, ApprovalRecord> = if rows.values().any(|r| r.status == ToolCallStatus::Parked) {
            let filter = ApprovalFilter { status: None, run_id: Some(run.id.clone()) };
            self.store
                .approvals(&filter)
                .await?
                .into_iter()
                .filter(|a| a.step == pending.step)
                .map(|a| (a.index, a))
                .collect()
        } else {
            BTreeMap::new()
        };

        // 1. Settle decided approvals in one commit: consume approved ones (they become allowed
        //    calls), turn denied and expired ones into denials for the model.
        for row in rows.values().filter(|r| r.status == ToolCallStatus::Parked) {
            let Some(a) = approvals.get(&row.index) else { continue };
            if matches!(a.status, ApprovalStatus::Pending | ApprovalStatus::Consumed) {
                continue;
            }
            observer.event(&Event::ApprovalSettled {
                approval_id: a.id.clone(),
                tool: a.tool.clone(),
                decision: a.status.as_str().into(),
                by: a.decided_by.clone(),
                note: a.note.clone(),
            });
        }
        let settle = self.settle_approvals(run, state, pending, &mut rows, &approvals).await?;
        let still_parked: Vec<ApprovalRecord> = rows
            .values()
            .filter(|r| r.status == ToolCallStatus::Parked)
            .filter_map(|r| approvals.get(&r.index).cloned())
            .collect();
        if let Some(commit) = settle {
            self.commit(run, commit).await?;
            crate::crashtest::pause_point("approvals_settled");
        }

        // 2. Run every allowed call without a result, concurrently.
        let runnable: Vec<ToolCallRecord> =
            rows.values().filter(|r| r.status == ToolCallStatus::Allowed && r.result.is_none()).cloned().collect();
        let finished = join_all(runnable.into_iter().map(|row| self.execute(row, observer))).await;

        // 3. The result commit.
        let now = now_ms();
        let mut counters = run.counters.clone();
        let mut commit = Commit::default();
        for (row, fuel, audit) in finished {
            counters.fuel += fuel;
            commit.audit.push(AuditEvent {
                ts: now,
                run_id: Some(run.id.clone()),
                kind: "tool.call".into(),
                body: audit,
            });
            rows.insert(row.index, row.clone());
            commit.tool_calls.push(row);
        }
        state.active_ms += started.elapsed().as_millis() as u64;
        if !still_parked.is_empty() {
            commit.checkpoint_audit = run.status != RunStatus::WaitingApproval;
            commit.run = Some(self.update(run, state, RunStatus::WaitingApproval, None, counters, now));
            self.commit(run, commit).await?;
            return Ok(Pass::Stop);
        }
        if pending.agent.starts_with(crate::fixed::STEP_AGENT_PREFIX) {
            return self.finish_fixed(run, state, pending, &rows, commit, counters, now, observer).await;
        }
        let mut handoff = None;
        for call in &pending.calls {
            let Some(row) = rows.get(&call.index) else {
                return Err(RuntimeError::State(format!("step {} lost its call #{}", pending.step, call.index)));
            };
            let (content, is_error) = model_result(row);
            state.push_message(
                &pending.agent,
                Message::ToolResult { call_id: call.call_id.clone(), name: call.model_name.clone(), content, is_error },
            );
            if let (CallTarget::Handoff { to }, ToolCallStatus::Done) = (&call.target, row.status) {
                handoff = Some((to.clone(), row.input.clone()));
            }
        }
        if let Some((to, payload)) = handoff {
            let from = pending.agent.clone();
            let brief = format!(
                "Goal of the run: {}\n\nHanded over by `{from}` with this state:\n{}",
                run.goal,
                serde_json::to_string_pretty(&payload).unwrap_or_default()
            );
            state.start_conversation(&to, Message::User { text: brief });
            state.agent = to.clone();
            commit.audit.push(AuditEvent {
                ts: now,
                run_id: Some(run.id.clone()),
                kind: "handoff".into(),
                body: json!({"step": pending.step, "from": from, "to": to, "payload": payload}),
            });
            observer.event(&Event::Handoff { from, to });
        }
        state.pending = None;
        state.next_step = pending.step + 1;
        commit.run = Some(self.update(run, state, RunStatus::Running, None, counters, now));
        self.commit(run, commit).await?;
        crate::crashtest::pause_point("results_committed");
        Ok(Pass::Continue)
    }

    /// The result commit of a fixed tool or approval step.
    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments are the separate fields of the record being built; the runtime rewrite groups them"
    )]
    async fn finish_fixed(
        &self,
        run: &mut RunRecord,
        state: &mut RunState,
        pending: &PendingStep,
        rows: &BTreeMap<u32, ToolCallRecord>,
        mut commit: Commit,
        counters: Counters,
        now: i64,
        observer: &dyn Observer,
    ) -> Result<Pass, RuntimeError> {
        let row =
            rows.get(&0).ok_or_else(|| RuntimeError::State(format!("fixed step {} lost its call", pending.step)))?;
        let failure = self.record_fixed_result(state, pending, row);
        state.pending = None;
        state.next_step = pending.step + 1;
        let Some((status, detail)) = failure else {
            commit.run = Some(self.update(run, state, RunStatus::Running, None, counters, now));
            self.commit(run, commit).await?;
            crate::crashtest::pause_point("results_committed");
            return Ok(Pass::Continue);
        };
        // A failed step ends the run in its own result commit. Ended by a second commit, a crash
        // in between would leave a running run whose cursor still points at the failed step, and
        // a resume would run that step again: ask again a human who said no, or repeat a failed
        // tool call under a new idempotency key.
        commit.audit.push(AuditEvent {
            ts: now,
            run_id: Some(run.id.clone()),
            kind: "run.ended".into(),
            body: json!({
                "status": status.as_str(), "detail": detail, "output": state.final_output,
                "counters": counters, "active_ms": state.active_ms,
            }),
        });
        commit.checkpoint_audit = true;
        commit.run = Some(self.update(run, state, status, Some(detail.clone()), counters, now));
        self.commit(run, commit).await?;
        crate::crashtest::pause_point("results_committed");
        observer.event(&Event::Ended {
            status: status.as_str().into(),
            detail: Some(detail),
            output: state.final_output.clone(),
        });
        Ok(Pass::Stop)
    }

    /// The commit that settles approvals decided since the step parked, or `None`.
    async fn settle_approvals(
        &self,
        run: &RunRecord,
        state: &mut RunState,
        pending: &PendingStep,
        rows: &mut BTreeMap<u32, ToolCallRecord>,
        approvals: &BTreeMap<u32, ApprovalRecord>,
    ) -> Result<Option<Commit>, RuntimeError> {
        let now = now_ms();
        let ctx = GateContext { store: &*self.store, catalogue: &self.catalogue, workflow: &self.workflow, run, now };
        let mut commit = Commit::default();
        let mut counters = run.counters.clone();
        let mut turn_charges = BTreeMap::new();
        let mut allowed = 0u64;
        for row in rows.values_mut().filter(|r| r.status == ToolCallStatus::Parked) {
            let Some(approval) = approvals.get(&row.index) else {
                return Err(RuntimeError::State(format!("parked call {}#{} has no approval", row.step, row.index)));
            };
            let audit =
                |kind: &str, body: Value| AuditEvent { ts: now, run_id: Some(run.id.clone()), kind: kind.into(), body };
            match approval.status {
                ApprovalStatus::Pending => continue,
                ApprovalStatus::Approved if is_human_gate(pending, row.index) => {
                    commit.approval_transitions.push(consumed(approval));
                    commit
                        .audit
                        .push(audit("approval.consumed", json!({"approval_id": approval.id, "tool": row.tool})));
                    row.status = ToolCallStatus::Done;
                    row.result = Some(json!({"output": {"approved_by": approval.decided_by, "note": approval.note}}));
                    row.updated_at = now;
                }
                ApprovalStatus::Approved => {
                    let input = approval.approved_input.clone().unwrap_or_else(|| approval.input.clone());
                    let digest =
                        self.catalogue.tool(&row.tool).map(|(p, _)| p.digest().to_string()).unwrap_or_default();
                    // Fail closed: an approval authorises this plugin build, tool and input only.
                    let verdict = if binding_hash(&digest, &approval.tool, &approval.input) != approval.binding_hash {
                        Verdict::Deny {
                            stage: "approval",
                            reason: "the plugin changed since the approval was requested; the approval is void".into(),
                        }
                    } else {
                        gate::check(&ctx, &row.agent, &row.tool, &input, &mut turn_charges, allowed, true).await
                    };
                    commit.approval_transitions.push(consumed(approval));
                    let mut body = verdict.audit_body();
                    body["approval_id"] = json!(approval.id);
                    body["tool"] = json!(row.tool);
                    body["step"] = json!(row.step);
                    body["index"] = json!(row.index);
                    commit.audit.push(audit("approval.consumed", body));
                    row.input = input;
                    row.decision = verdict.audit_body();
                    row.updated_at = now;
                    match verdict {
                        Verdict::Allow { charges, .. } => {
                            allowed += 1;
                            counters.tool_calls += 1;
                            counters.spend +=
                                charges.iter().filter(|c| c.scope.starts_with("spend:")).map(|c| c.amount).sum::<i64>();
                            commit.cap_charges.extend(charges);
                            row.status = ToolCallStatus::Allowed;
                        }
                        Verdict::Deny { stage, reason } => {
                            row.status = ToolCallStatus::Denied;
                            row.result = Some(json!({"denied": stage, "reason": reason}));
                        }
                        // `approved = true` never asks again; should it, fail closed.
                        Verdict::Park { reason } => {
                            row.status = ToolCallStatus::Denied;
                            row.result = Some(json!({"denied": "approval", "reason": reason}));
                        }
                    }
                }
                ApprovalStatus::Denied => {
                    row.status = ToolCallStatus::Denied;
                    let who = approval.decided_by.clone().unwrap_or_else(|| "a human".into());
                    let why = approval.note.clone().unwrap_or_default();
                    row.result = Some(json!({"denied": "approval", "reason": format!("denied by {who}: {why}")}));
                    row.updated_at = now;
                }
                ApprovalStatus::Expired => {
                    row.status = ToolCallStatus::Denied;
                    row.result = Some(json!({
                        "denied": "approval",
                        "reason": "nobody approved this call before its approval expired; it was escalated to a human",
                    }));
                    row.updated_at = now;
                }
                // Consumed in the same commit that allowed the row: the row is never still parked.
                ApprovalStatus::Consumed => continue,
            }
            commit.tool_calls.push(row.clone());
        }
        if commit.tool_calls.is_empty() {
            return Ok(None);
        }
        commit.run = Some(self.update(run, state, RunStatus::Running, None, counters, now));
        Ok(Some(commit))
    }

    /// Runs one allowed call in the sandbox. Returns the finished row, the fuel it used and the
    /// body of its `tool.call` audit record.
    async fn execute(&self, mut row: ToolCallRecord, observer: &dyn Observer) -> (ToolCallRecord, u64, Value) {
        let (plugin_name, tool) =
            row.tool.split_once('.').map(|(p, t)| (p.to_string(), t.to_string())).unwrap_or_default();
        observer.event(&Event::ToolStarted { step: row.step, index: row.index, tool: row.tool.clone() });
        let Some((plugin, _)) = self.catalogue.tool(&row.tool) else {
            row.status = ToolCallStatus::Done;
            row.result =
                Some(json!({"error": "unknown-tool", "message": format!("tool `{}` is not loaded", row.tool)}));
            return (row, 0, json!({"tool": "unknown"}));
        };
        let ctx = CallContext {
            run_id: row.run_id.clone(),
            call_id: row.call_id.clone(),
            idempotency_key: row.idempotency_key.clone(),
        };
        let input = serde_json::to_string(&row.input).unwrap_or_default();
        crate::crashtest::pause_point("call_started");
        let outcome = match self.workflow.workflow.plugins.get(&plugin_name).map(|p| p.instances) {
            Some(InstanceMode::PerRun) => {
                self.warm.get(&row.run_id, &plugin_name, plugin).call(&tool, &input, &ctx).await
            }
            _ => plugin.call(&tool, &input, &ctx).await,
        };
        crate::crashtest::pause_point("call_finished");
        let report = &outcome.report;
        let (result, output_digest, output) = match &outcome.result {
            Ok(value) => {
                let text = serde_json::to_string(value).unwrap_or_default();
                (json!({"output": value}), Some(hex::encode(Sha256::digest(text.as_bytes()))), Some(value.clone()))
            }
            Err(e) => (json!({"error": e.kind(), "message": e.to_string()}), None, None),
        };
        observer.event(&Event::ToolFinished {
            step: row.step,
            index: row.index,
            tool: row.tool.clone(),
            outcome: report.outcome.clone(),
            duration_ms: report.duration_us / 1000,
            output,
        });
        let audit = json!({
            "step": row.step, "index": row.index, "tool": row.tool, "plugin_digest": report.digest,
            "idempotency_key": row.idempotency_key, "input": row.input, "outcome": report.outcome,
            "error": report.error, "output_sha256": output_digest, "fuel_used": report.fuel_used,
            "duration_us": report.duration_us, "peak_memory_bytes": report.peak_memory_bytes,
            "memory_refused": report.memory_refused, "guest_error": report.guest_error,
            "instance": if report.reused_instance { "reused" } else { "fresh" }, "egress": report.egress,
        });
        row.status = ToolCallStatus::Done;
        row.result = Some(result);
        row.report = serde_json::to_value(report).ok();
        row.updated_at = now_ms();
        (row, report.fuel_used, audit)
    }
}

/// `approved → consumed`: the approval has authorised its call and never authorises again.
fn consumed(approval: &ApprovalRecord) -> ApprovalTransition {
    ApprovalTransition {
        id: approval.id.clone(),
        from: ApprovalStatus::Approved,
        to: ApprovalStatus::Consumed,
        decided_by: approval.decided_by.clone(),
        decided_at: approval.decided_at,
        note: approval.note.clone(),
        approved_input: approval.approved_input.clone(),
    }
}

fn is_human_gate(pending: &PendingStep, index: u32) -> bool {
    pending.calls.iter().any(|c| c.index == index && matches!(c.target, CallTarget::HumanGate { .. }))
}

/// What the model is told about one call: its output, or why it failed or was refused.
fn model_result(row: &ToolCallRecord) -> (String, bool) {
    let result = row.result.clone().unwrap_or(Value::Null);
    if let Some(output) = result.get("output") {
        return (serde_json::to_string(output).unwrap_or_default(), false);
    }
    if let Some(stage) = result.get("denied").and_then(Value::as_str) {
        let reason = result.get("reason").and_then(Value::as_str).unwrap_or_default();
        return (format!("Refused by Tollgate's gate ({stage}): {reason}"), true);
    }
    let kind = result.get("error").and_then(Value::as_str).unwrap_or("error");
    let message = result.get("message").and_then(Value::as_str).unwrap_or_default();
    (format!("The tool failed ({kind}): {message}"), true)
}
