//! The second half of a step: settle decided approvals, run every allowed call that has no
//! recorded result (concurrently, each with its stable idempotency key), and commit the results
//! (the result commit). Re-running this after a crash repeats only calls whose result was not
//! recorded, with the same keys.

use std::collections::BTreeMap;

use futures::future::join_all;
use serde_json::Value;
use tollgate_models::Message;
use tollgate_store::audit::{AuditEntry, Handoff};
use tollgate_store::{
    ApprovalFilter, ApprovalKind, ApprovalRecord, ApprovalStatus, Checkpoint, Commit, RunStatus, StoreError,
    ToolCallRecord, ToolCallStatus,
};

use crate::advance::{Next, Pass};
use crate::apply::StepCommit;
use crate::approvals::approved_input;
use crate::authorise::StepLog;
use crate::claim;
use crate::error::RuntimeError;
use crate::events::Event;
use crate::execute::Finished;
use crate::fixed::STEP_AGENT_PREFIX;
use crate::guard;
use crate::ids::now_ms;
use crate::runtime::Runtime;
use crate::state::{CallTarget, PendingStep, RunState};

/// A step's tool-call rows by call index.
type Rows = BTreeMap<u32, ToolCallRecord>;

impl Runtime {
    /// Settles, runs and commits the pending step.
    pub(crate) async fn finish_step(&self, pass: &mut Pass<'_>, pending: &PendingStep) -> Result<Next, RuntimeError> {
        let fresh = pass.state.committed_audit.take().filter(|(step, _)| *step == pending.step).map(|(_, a)| a);
        let mut rows = self.step_rows(pass, pending).await?;
        let settled = self.settle_approvals(pass, pending, &mut rows).await?;
        let mut runnable: Vec<ToolCallRecord> = rows
            .values()
            .filter(|r| matches!(r.status, ToolCallStatus::Allowed | ToolCallStatus::InFlight) && r.result.is_none())
            .cloned()
            .collect();
        if !runnable.is_empty() {
            // Only what the signed chain allows runs (authorise.rs), and only once (claim.rs).
            let log = match fresh {
                // Decided by this process a moment ago, and nothing settled since: what it
                // signed is what it knows, with no read back.
                Some(events) if !settled => StepLog::committed(&pass.run.id, pending.step, events),
                _ => StepLog::read(&*self.store, &pass.run.id, pending.step).await?,
            };
            let now = now_ms();
            let mut abandoned = Vec::new();
            for row in &runnable {
                let claim = log.authorises(row, self.catalogue.tool(&row.tool).map(|(p, _)| p.digest()))?;
                match claim {
                    Some(claim) if claim::holds(&claim, now) => {
                        return Err(RuntimeError::InFlight {
                            run_id: pass.run.id.clone(),
                            call: format!("{}#{} ({})", row.step, row.index, row.tool),
                            by: claim.by,
                            until: claim.lease_until,
                        });
                    }
                    Some(claim) => abandoned.push((row.clone(), claim.by)),
                    None => {}
                }
            }
            // A call whose process stopped while running it may have happened: unless its tool
            // is idempotent, it waits for a person instead of running again.
            let asked = self.ask_in_doubt(pass, pending, &abandoned, &mut rows).await?;
            runnable.retain(|row| !asked.contains(&row.index));
            let mut claimed: Vec<ToolCallRecord> =
                runnable.iter().filter(|row| self.has_effects(row)).cloned().collect();
            self.claim(pass, pending, &mut claimed).await?;
            for row in claimed {
                rows.insert(row.index, row.clone());
                if let Some(slot) = runnable.iter_mut().find(|r| r.index == row.index) {
                    *slot = row;
                }
            }
        }
        let finished = join_all(runnable.into_iter().map(|row| self.execute(row, pass.observer))).await;
        self.commit_results(pass, pending, rows, finished).await
    }

    /// Puts the calls of `abandoned` (each with the process whose claim outlived it) whose
    /// tools are not idempotent before a person, in one commit: the gate's in-doubt verdict, a
    /// pending approval of kind `in_doubt` each. The indexes of the calls it asked about.
    async fn ask_in_doubt(
        &self,
        pass: &mut Pass<'_>,
        pending: &PendingStep,
        abandoned: &[(ToolCallRecord, String)],
        rows: &mut Rows,
    ) -> Result<Vec<u32>, RuntimeError> {
        if abandoned.is_empty() {
            return Ok(Vec::new());
        }
        let mut step = StepCommit::new(pass.run, pending.step, &pending.agent);
        for (row, claimed_by) in abandoned {
            let target = self.call_target(pending, row)?;
            step.decide_in_doubt(self, row.clone(), &target, claimed_by, None);
        }
        if step.commit.tool_calls.is_empty() {
            return Ok(Vec::new());
        }
        let asked: Vec<u32> = step.commit.tool_calls.iter().map(|r| r.index).collect();
        rows.extend(step.commit.tool_calls.iter().map(|r| (r.index, r.clone())));
        let (commit, events) = step.finish(self, pass.state, RunStatus::Running);
        self.commit(pass.run, commit).await?;
        events.iter().for_each(|e| pass.observer.event(e));
        Ok(asked)
    }

    /// The target of the step's call `row`.
    fn call_target(&self, pending: &PendingStep, row: &ToolCallRecord) -> Result<CallTarget, RuntimeError> {
        pending
            .calls
            .iter()
            .find(|c| c.index == row.index)
            .map(|c| c.target.clone())
            .ok_or_else(|| RuntimeError::State(format!("step {} lost its call #{}", row.step, row.index)))
    }

    /// The step's rows: the ones this process just committed, or the store's.
    async fn step_rows(&self, pass: &mut Pass<'_>, pending: &PendingStep) -> Result<Rows, RuntimeError> {
        let rows = match pass.state.committed_rows.take() {
            Some((step, rows)) if step == pending.step => rows,
            _ => self.store.step_tool_calls(&pass.run.id, pending.step).await?,
        };
        Ok(rows.into_iter().map(|r| (r.index, r)).collect())
    }

    /// Settles the approvals decided since the step began waiting, in one commit: each decided
    /// call passes the gate again with its approval (approved calls become allowed, denied and
    /// expired ones denials for the model). Whether it committed anything.
    async fn settle_approvals(
        &self,
        pass: &mut Pass<'_>,
        pending: &PendingStep,
        rows: &mut Rows,
    ) -> Result<bool, RuntimeError> {
        let waiting = |r: &&ToolCallRecord| r.status == ToolCallStatus::WaitingApproval;
        if !rows.values().any(|r| waiting(&r)) {
            return Ok(false);
        }
        let stored = self.step_approvals(pass, pending.step).await?;
        // The decisions come from the signed chain; the approval rows must agree with it.
        let log = StepLog::read(&*self.store, &pass.run.id, pending.step).await?;
        let mut step = StepCommit::new(pass.run, pending.step, &pending.agent);
        for row in rows.values().filter(waiting) {
            let (step_no, index) = (row.step, row.index);
            let approval = log.approval(index, &row.agent, stored.get(&index))?.ok_or_else(|| {
                RuntimeError::State(format!("call {step_no}#{index} waits for approval but has none"))
            })?;
            let approval = &approval;
            // Undecided, or consumed by the commit that allowed the row (never still waiting).
            if matches!(approval.status, ApprovalStatus::Pending | ApprovalStatus::Consumed) {
                continue;
            }
            let call = pending
                .calls
                .iter()
                .find(|c| c.index == index)
                .ok_or_else(|| RuntimeError::State(format!("step {step_no} lost its call #{index}")))?;
            pass.observer.event(&Event::ApprovalSettled {
                approval_id: approval.id.clone(),
                tool: approval.tool.clone(),
                decision: approval.status.as_str().into(),
                by: approval.decided_by.clone(),
                note: approval.note.clone(),
            });
            if approval.kind == ApprovalKind::InDoubt {
                step.decide_in_doubt(self, row.clone(), &call.target, "", Some(approval));
                continue;
            }
            let row = ToolCallRecord { input: approved_input(approval).clone(), ..row.clone() };
            step.decide(self, row, &call.target, &[], None, Some(approval)).await;
        }
        if step.commit.tool_calls.is_empty() {
            return Ok(false);
        }
        rows.extend(step.commit.tool_calls.iter().map(|r| (r.index, r.clone())));
        let (commit, _) = step.finish(self, pass.state, RunStatus::Running);
        self.commit(pass.run, commit).await?;
        crate::crashtest::pause_point("approvals_settled");
        Ok(true)
    }

    /// The result commit failed because another process changed the run while its calls ran
    /// (cancelled it, say): what the calls did happened all the same, so their rows and
    /// `tool.call` records are committed on their own, without moving the run.
    async fn record_late_results(&self, run_id: &str, mut late: Commit, failed: RuntimeError) -> RuntimeError {
        late.fence = self.fence_of(run_id);
        if late.tool_calls.is_empty() || !matches!(failed, RuntimeError::Store(StoreError::Conflict { .. })) {
            return failed;
        }
        match self.store.commit(late).await {
            Ok(()) => RuntimeError::State(format!(
                "run {run_id} was changed by another process while its calls ran; what they did is recorded"
            )),
            Err(e) => e.into(),
        }
    }

    /// The approvals of one step of the run, by call index.
    async fn step_approvals(&self, pass: &Pass<'_>, step: u32) -> Result<BTreeMap<u32, ApprovalRecord>, RuntimeError> {
        let filter = ApprovalFilter { status: None, run_id: Some(pass.run.id.clone()), ..ApprovalFilter::default() };
        let approvals = self.store.approvals(&filter).await?;
        Ok(approvals.into_iter().filter(|a| a.step == step).map(|a| (a.index, a)).collect())
    }

    /// The result commit: the finished calls, then either the step still waiting for approval,
    /// or the step's results handed on (to the model, or to the next fixed step).
    async fn commit_results(
        &self,
        pass: &mut Pass<'_>,
        pending: &PendingStep,
        mut rows: Rows,
        finished: Vec<Finished>,
    ) -> Result<Next, RuntimeError> {
        let mut step = StepCommit::new(pass.run, pending.step, &pending.agent);
        let mut late = Commit { checkpoint: Checkpoint::Signed, ..Commit::default() };
        for Finished { row, fuel, audit } in finished {
            step.counters.fuel = step.counters.fuel.saturating_add(fuel);
            if row.result.as_ref().is_some_and(|r| r.get("error").is_some()) {
                step.counters.calls_failed += 1;
            }
            late.audit.push(AuditEntry::of_run(&pass.run.id, step.now, audit.clone()));
            late.tool_calls.push(row.clone());
            step.audit(audit);
            rows.insert(row.index, row.clone());
            step.commit.tool_calls.push(row);
        }
        pass.state.add_active(pass.started);
        if rows.values().any(|r| r.status == ToolCallStatus::WaitingApproval) {
            let (commit, _) = step.finish(self, pass.state, RunStatus::WaitingApproval);
            self.commit(pass.run, commit).await?;
            return Ok(Next::Stop);
        }
        pass.state.pending = None;
        pass.state.next_step = pending.step + 1;
        let (commit, events) = if pending.agent.starts_with(STEP_AGENT_PREFIX) {
            self.fixed_results(step, pass.state, pending, &rows)?
        } else {
            self.agent_results(step, pass.state, pending, &rows)?
        };
        if let Err(e) = self.commit(pass.run, commit).await {
            return Err(self.record_late_results(&pass.run.id, late, e).await);
        }
        crate::crashtest::pause_point("results_committed");
        events.iter().for_each(|e| pass.observer.event(e));
        Ok(if pass.run.status.is_terminal() { Next::Stop } else { Next::Continue })
    }

    /// An agent's step: every call's result goes back to the model, in call order; an allowed
    /// handoff moves the run to the receiving agent. A call the agent has now had refused or
    /// failed `max_repeated_refusals` times ends the run instead (`guard.rs`).
    fn agent_results(
        &self,
        mut step: StepCommit<'_>,
        state: &mut RunState,
        pending: &PendingStep,
        rows: &Rows,
    ) -> Result<(Commit, Vec<Event>), RuntimeError> {
        let limit = self.workflow.definition.run.max_repeated_refusals;
        let (mut handoff, mut repeated) = (None, None);
        for call in &pending.calls {
            let Some(row) = rows.get(&call.index) else {
                return Err(RuntimeError::State(format!("step {} lost its call #{}", pending.step, call.index)));
            };
            let proposed = proposed_input(state, &pending.agent, &call.call_id).unwrap_or_else(|| row.input.clone());
            let edited = (proposed != row.input).then_some(&row.input);
            let (content, is_error) = model_result(row, edited);
            state.push_message(
                &pending.agent,
                Message::ToolResult { call_id: call.call_id.clone(), name: call.model_name.clone(), content, is_error },
            );
            if let (CallTarget::Handoff { to }, ToolCallStatus::Done) = (&call.target, row.status) {
                handoff = Some((to.clone(), row.input.clone()));
            }
            if let Some(why) = refusal(row) {
                let key = guard::call_fingerprint(&pending.agent, &call.model_name, &proposed);
                let times = state.refusals.entry(key).or_default();
                *times = times.saturating_add(1);
                if u64::from(*times) >= limit && repeated.is_none() {
                    repeated = Some(guard::repeated_refusal(&pending.agent, &row.tool, *times, &why));
                }
            }
        }
        if let Some(detail) = repeated {
            return Ok(step.end(self, state, RunStatus::BoundHit, Some(detail)));
        }
        if let Some((to, payload)) = handoff {
            hand_off(&mut step, state, to, payload);
        }
        Ok(step.finish(self, state, RunStatus::Running))
    }
}

/// The input the model proposed for its call `call_id`, from `agent`'s conversation (a person
/// may have approved the call with another).
fn proposed_input(state: &RunState, agent: &str, call_id: &str) -> Option<Value> {
    let conversation = state.conversations.get(agent)?;
    conversation.iter().rev().find_map(|message| match message {
        Message::Assistant { tool_calls, .. } => tool_calls.iter().find(|c| c.id == call_id).map(|c| c.input.clone()),
        _ => None,
    })
}

/// Why a call counts as refused for the repeated-refusal guard: the gate denied it, or it ran
/// and failed. An in-doubt call marked done is neither.
fn refusal(row: &ToolCallRecord) -> Option<String> {
    let result = row.result.as_ref()?;
    let text = |key: &str| result.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(stage) = result.get("denied").and_then(Value::as_str) {
        return Some(format!("denied ({stage}): {}", text("reason")));
    }
    result.get("error").map(|_| format!("failed ({}): {}", text("error"), text("message")))
}

/// Moves the run to agent `to`, whose conversation starts with the goal and `payload`.
fn hand_off(step: &mut StepCommit<'_>, state: &mut RunState, to: String, payload: Value) {
    let from = step.agent.clone();
    let brief = format!(
        "Goal of the run: {}\n\nHanded over by `{from}` with this state:\n{}",
        step.run.goal,
        serde_json::to_string_pretty(&payload).unwrap_or_default()
    );
    state.start_conversation(&to, Message::User { text: brief });
    state.agent = to.clone();
    step.events.push(Event::Handoff { from: from.clone(), to: to.clone() });
    step.audit(Handoff { step: step.step, from, to, payload });
}

/// What the model is told about one call: its output, or why it failed or was refused; and,
/// when a person approved it with an `edited` input, that it ran with that instead.
fn model_result(row: &ToolCallRecord, edited: Option<&Value>) -> (String, bool) {
    let (content, is_error) = call_outcome(row);
    match edited {
        Some(input) => (
            format!(
                "A person approved this call with an edited input, {}, instead of the input you proposed. \
                 The edited call's result: {content}",
                serde_json::to_string(input).unwrap_or_default()
            ),
            is_error,
        ),
        None => (content, is_error),
    }
}

fn call_outcome(row: &ToolCallRecord) -> (String, bool) {
    let result = row.result.clone().unwrap_or(Value::Null);
    if let Some(output) = result.get("output") {
        return (serde_json::to_string(output).unwrap_or_default(), false);
    }
    if result.get("in_doubt").is_some() {
        let why = result.get("message").and_then(Value::as_str).unwrap_or_default();
        return (
            format!(
                "Outcome unknown: the process running this call stopped before its result was recorded, so it \
                 may or may not have taken effect, and it was not run again ({why}). Do not assume it failed; \
                 check before repeating it."
            ),
            true,
        );
    }
    if let Some(stage) = result.get("denied").and_then(Value::as_str) {
        let reason = result.get("reason").and_then(Value::as_str).unwrap_or_default();
        return (format!("Refused by Tollgate's gate ({stage}): {reason}"), true);
    }
    let kind = result.get("error").and_then(Value::as_str).unwrap_or("error");
    let message = result.get("message").and_then(Value::as_str).unwrap_or_default();
    (failure_text(kind, message), true)
}

/// A failed call in words a model can act on: what happened, and whether trying again helps.
/// The kind stays in the text, in brackets, for whoever reads the conversation later.
fn failure_text(kind: &str, message: &str) -> String {
    let what = match kind {
        "tool-not-found" => {
            "The tool ran, and what it looked for does not exist (for example, no record with \
                             that id). The tool itself exists; check the identifiers you passed before trying \
                             again."
        }
        "tool-invalid-input" => "The tool ran and rejected the input. Fix the input before calling it again.",
        "tool-denied" => {
            "The service the tool calls refused the request (not permitted). Repeating it unchanged \
                          will be refused again."
        }
        "tool-upstream" => "The service the tool calls failed to answer properly.",
        "tool-retryable" => "A temporary failure; the same call may succeed later.",
        "tool-internal" => "The tool has an internal error; repeating the call will probably fail the same way.",
        "fuel-exhausted" | "timeout" | "memory-limit" | "stack-overflow" | "output-too-large" | "value-too-large" => {
            "The tool was stopped by Tollgate's sandbox for exceeding its limits; a smaller request may fit."
        }
        "trap" | "invalid-output" => "The tool crashed or returned something invalid; this is a fault in the tool.",
        "unknown-tool" => "The tool is not available.",
        _ => "The tool failed.",
    };
    format!("{what} [{kind}] {message}")
}
