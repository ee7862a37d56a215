//! Turning verdicts into a step's commit. [`StepCommit`] is a step's context (run, step number,
//! agent, time) and the commit it is building; [`StepCommit::decide`] asks the gate about one
//! call and applies the verdict — the one place a verdict becomes a tool-call row, run counters,
//! cap charges, an approval request and audit records. The turn commit (`step.rs`), fixed steps
//! (`fixed.rs`) and settled approvals (`finish.rs`) all build their commits through it.

use serde_json::{Value, json};
use tollgate_store::audit::{
    ApprovalConsumed, ApprovalRequested, AuditEntry, AuditEvent, GateDecision, RunEnded, ToolMarkedDone,
};
use tollgate_store::{
    ApprovalAuthority, ApprovalKind, ApprovalRecord, ApprovalStatus, ApprovalTransition, Checkpoint, Commit, Counters,
    RunRecord, RunStatus, ToolCallRecord, ToolCallStatus,
};

use crate::approvals::binding_hash;
use crate::events::Event;
use crate::gate::{self, CallRequest, CapScope, Charge, GateContext, Tally, Verdict};
use crate::ids::{self, now_ms};
use crate::runtime::Runtime;
use crate::state::{CallTarget, RunState};

/// One step's commit under construction, with the context every record of it shares.
pub(crate) struct StepCommit<'r> {
    pub run: &'r RunRecord,
    pub step: u32,
    /// The agent whose step it is, or `step:<id>` for a fixed step.
    pub agent: String,
    pub now: i64,
    pub commit: Commit,
    /// The run's counters as this commit leaves them.
    pub counters: Counters,
    /// What the gate allowed in this step so far.
    tally: Tally,
    /// What the observer hears once the commit has landed.
    pub events: Vec<Event>,
}

impl<'r> StepCommit<'r> {
    pub fn new(run: &'r RunRecord, step: u32, agent: &str) -> StepCommit<'r> {
        StepCommit {
            run,
            step,
            agent: agent.to_string(),
            now: now_ms(),
            commit: Commit::default(),
            counters: run.counters.clone(),
            tally: Tally::default(),
            events: Vec::new(),
        }
    }

    /// Appends an audit record of this run, now.
    pub fn audit(&mut self, event: impl Into<AuditEvent>) {
        self.commit.audit.push(AuditEntry::of_run(&self.run.id, self.now, event));
    }

    /// A new tool-call row of this step, to be decided.
    pub fn row(&self, index: u32, call_id: &str, tool: &str, input: Value) -> ToolCallRecord {
        ToolCallRecord {
            run_id: self.run.id.clone(),
            step: self.step,
            index,
            call_id: call_id.to_string(),
            agent: self.agent.clone(),
            tool: tool.to_string(),
            input,
            idempotency_key: ids::idempotency_key(&self.run.id, self.step, index),
            status: ToolCallStatus::Allowed,
            decision: Value::Null,
            result: None,
            report: None,
            updated_at: self.now,
        }
    }

    /// Asks the gate about the call `row` describes and applies its verdict to this commit.
    /// `arguments_error` says why the model's arguments were not JSON, when they were not;
    /// `approval` is the human decision behind a call that waited for approval.
    pub async fn decide(
        &mut self,
        rt: &Runtime,
        row: ToolCallRecord,
        target: &CallTarget,
        agent_tools: &[String],
        arguments_error: Option<&str>,
        approval: Option<&ApprovalRecord>,
    ) {
        let ctx = gate_context(rt, self.run, self.now);
        let call =
            CallRequest { agent: &row.agent, target, name: &row.tool, input: &row.input, agent_tools, arguments_error };
        if approval.is_none() && is_tool_call(target) {
            self.counters.calls_proposed += 1;
        }
        let verdict = gate::check(&ctx, &mut self.tally, &call, approval).await;
        self.apply(rt, row, target, verdict, approval)
    }

    /// Asks the gate about a call whose claim by `claimed_by` outlived that process
    /// ([`gate::in_doubt`]) and applies the verdict; `approval` is a person's decision on it.
    /// False when the call simply runs again (its tool is idempotent): nothing to apply.
    pub fn decide_in_doubt(
        &mut self,
        rt: &Runtime,
        row: ToolCallRecord,
        target: &CallTarget,
        claimed_by: &str,
        approval: Option<&ApprovalRecord>,
    ) -> bool {
        let ctx = gate_context(rt, self.run, self.now);
        let call = CallRequest {
            agent: &row.agent,
            target,
            name: &row.tool,
            input: &row.input,
            agent_tools: &[],
            arguments_error: None,
        };
        match gate::in_doubt(&ctx, &call, claimed_by, approval) {
            Some(verdict) => {
                self.apply(rt, row, target, verdict, approval);
                true
            }
            None => false,
        }
    }

    /// Applies `verdict` to the call `row` describes: its audit record, then its row (and
    /// what an allowed call charges, or the approval a waiting one needs).
    fn apply(
        &mut self,
        rt: &Runtime,
        mut row: ToolCallRecord,
        target: &CallTarget,
        verdict: Verdict,
        approval: Option<&ApprovalRecord>,
    ) {
        row.decision = serde_json::to_value(verdict.record()).unwrap_or_default();
        row.updated_at = self.now;
        let digest = rt.catalogue.tool(&row.tool).map(|(p, _)| p.digest().to_string());
        self.record_verdict(&row, digest, &verdict, approval);
        match verdict {
            Verdict::Allow { charges, .. } => match target {
                CallTarget::Handoff { to } => {
                    row.status = ToolCallStatus::Done;
                    row.result = Some(json!({"output": {"handed_off_to": to}}));
                }
                CallTarget::HumanGate { .. } => {
                    let (by, note) = approval.map(|a| (a.decided_by.clone(), a.note.clone())).unwrap_or_default();
                    row.status = ToolCallStatus::Done;
                    row.result = Some(json!({"output": {"approved_by": by, "note": note}}));
                }
                CallTarget::Tool { .. } | CallTarget::Unknown => {
                    row.status = ToolCallStatus::Allowed;
                    // A retried in-doubt call was counted and charged when first allowed.
                    if approval.is_none_or(|a| a.kind == ApprovalKind::Call) {
                        self.charge(&charges);
                    }
                }
            },
            Verdict::RequireApproval { reason, authority } => {
                row.status = ToolCallStatus::WaitingApproval;
                if is_tool_call(target) {
                    self.counters.calls_parked += 1;
                }
                self.request_approval(rt, &row, reason, ApprovalKind::Call, authority);
            }
            Verdict::InDoubt { reason } => {
                row.status = ToolCallStatus::WaitingApproval;
                self.request_approval(rt, &row, reason, ApprovalKind::InDoubt, ApprovalAuthority::default());
            }
            Verdict::MarkDone { reason } => {
                row.status = ToolCallStatus::Done;
                row.result = Some(json!({"in_doubt": "marked_done", "message": reason}));
                self.audit(ToolMarkedDone {
                    step: row.step,
                    index: row.index,
                    tool: row.tool.clone(),
                    idempotency_key: row.idempotency_key.clone(),
                    approval_id: approval.map(|a| a.id.clone()).unwrap_or_default(),
                    by: approval.filter(|a| a.status == ApprovalStatus::Denied).and_then(|a| a.decided_by.clone()),
                    reason,
                });
            }
            Verdict::Deny { stage, reason } => {
                row.status = ToolCallStatus::Denied;
                if is_tool_call(target) {
                    self.counters.calls_denied += 1;
                }
                row.result = Some(json!({"denied": stage.as_str(), "reason": reason}));
            }
        }
        self.commit.tool_calls.push(row);
    }

    /// The verdict's audit record: the gate's decision, or the consumption of the approval it
    /// answered (an approval is `approved → consumed` in the commit that applies it, so it never
    /// authorises again). Denied and expired approvals were audited when they were decided.
    fn record_verdict(
        &mut self,
        row: &ToolCallRecord,
        plugin_digest: Option<String>,
        verdict: &Verdict,
        approval: Option<&ApprovalRecord>,
    ) {
        let (record, reason) = (verdict.record(), verdict.reason());
        match approval {
            None => {
                self.events.push(Event::Gate {
                    step: row.step,
                    index: row.index,
                    tool: row.tool.clone(),
                    decision: verdict.name().into(),
                    reason: reason.clone(),
                });
                self.audit(GateDecision {
                    step: row.step,
                    index: row.index,
                    tool: row.tool.clone(),
                    agent: row.agent.clone(),
                    input: row.input.clone(),
                    plugin_digest,
                    verdict: record,
                    reason,
                });
            }
            Some(approval) if approval.status == ApprovalStatus::Approved => {
                self.commit.approval_transitions.push(consumed(approval));
                self.audit(ApprovalConsumed {
                    approval_id: approval.id.clone(),
                    step: row.step,
                    index: row.index,
                    tool: row.tool.clone(),
                    input: row.input.clone(),
                    plugin_digest,
                    verdict: record,
                    reason,
                });
            }
            Some(_) => {}
        }
    }

    /// Counts an allowed call against the run's bounds and charges its caps in this commit.
    fn charge(&mut self, charges: &[Charge]) {
        let spend = charges
            .iter()
            .filter(|c| matches!(c.scope, CapScope::Spend { .. }))
            .fold(0i64, |sum, c| sum.saturating_add(c.amount));
        self.counters.tool_calls += 1;
        self.counters.spend = self.counters.spend.saturating_add(spend);
        let run_id = &self.run.id;
        self.commit.cap_charges.extend(charges.iter().map(|c| c.to_store(run_id, self.now)));
    }

    /// A pending approval for exactly the call `row` describes, bound to the plugin build that
    /// would run it.
    fn request_approval(
        &mut self,
        rt: &Runtime,
        row: &ToolCallRecord,
        reason: String,
        kind: ApprovalKind,
        authority: ApprovalAuthority,
    ) {
        let digest = rt.catalogue.tool(&row.tool).map(|(p, _)| p.digest().to_string()).unwrap_or_default();
        let expiry = i64::try_from(rt.workflow.definition.run.approval_expiry.as_millis()).unwrap_or(i64::MAX);
        let approval = ApprovalRecord {
            id: ids::approval_id(),
            run_id: self.run.id.clone(),
            step: row.step,
            index: row.index,
            agent: row.agent.clone(),
            tool: row.tool.clone(),
            input: row.input.clone(),
            binding_hash: binding_hash(&digest, &row.tool, &row.input),
            plugin_digest: digest,
            reason,
            status: ApprovalStatus::Pending,
            requested_at: self.now,
            expires_at: self.now.saturating_add(expiry),
            decided_by: None,
            decided_at: None,
            note: None,
            approved_input: None,
            kind,
            authority,
            votes: Vec::new(),
        };
        self.events.push(Event::ApprovalRequested {
            approval_id: approval.id.clone(),
            tool: approval.tool.clone(),
            input: approval.input.clone(),
            reason: approval.reason.clone(),
        });
        self.audit(ApprovalRequested {
            approval_id: approval.id.clone(),
            step: approval.step,
            index: approval.index,
            tool: approval.tool.clone(),
            input: approval.input.clone(),
            binding_hash: approval.binding_hash.clone(),
            reason: approval.reason.clone(),
            expires_at: approval.expires_at,
            kind,
            authority: approval.authority.clone(),
        });
        self.commit.new_approvals.push(approval);
    }

    /// Whether this commit leaves a call waiting for approval.
    pub fn waits_for_approval(&self) -> bool {
        !self.commit.new_approvals.is_empty()
    }

    /// Finishes the commit with the run's new state: `status`, this commit's counters, and the
    /// checkpoint of `state`. A commit that allows a call has its audit head signed (the call
    /// runs only once a signature vouches for its `allow`); a run that starts waiting for
    /// approval has it witnessed outside the database too.
    pub fn finish(mut self, rt: &Runtime, state: &mut RunState, status: RunStatus) -> (Commit, Vec<Event>) {
        if self.commit.tool_calls.iter().any(|row| row.status == ToolCallStatus::Allowed) {
            self.commit.checkpoint = self.commit.checkpoint.max(Checkpoint::Signed);
        }
        if status == RunStatus::WaitingApproval && self.run.status != RunStatus::WaitingApproval {
            self.commit.checkpoint = Checkpoint::Witnessed;
        }
        self.commit.run = Some(rt.update(self.run, state, status, None, self.counters, self.now));
        (self.commit, self.events)
    }
}

impl StepCommit<'_> {
    /// Finishes the commit by ending the run with `status`: the `run.ended` record, a signed
    /// audit checkpoint, and the event that tells the observer.
    pub fn end(
        mut self,
        rt: &Runtime,
        state: &mut RunState,
        status: RunStatus,
        detail: Option<String>,
    ) -> (Commit, Vec<Event>) {
        self.audit(RunEnded {
            status,
            detail: detail.clone(),
            output: state.final_output.clone(),
            counters: self.counters.clone(),
            active_ms: state.active_ms,
            by: None,
        });
        self.events.push(Event::Ended {
            status: status.as_str().into(),
            detail: detail.clone(),
            output: state.final_output.clone(),
        });
        self.commit.checkpoint = Checkpoint::Witnessed;
        self.commit.run = Some(rt.update(self.run, state, status, detail, self.counters, self.now));
        (self.commit, self.events)
    }
}

/// Whether `target` is a call of a plugin tool (or of one the agent does not have), as the run's
/// call counters count them: handoffs and fixed approval steps are not tool calls.
fn is_tool_call(target: &CallTarget) -> bool {
    matches!(target, CallTarget::Tool { .. } | CallTarget::Unknown)
}

/// What the gate reads about `run` at `now`.
fn gate_context<'a>(rt: &'a Runtime, run: &'a RunRecord, now: i64) -> GateContext<'a> {
    GateContext { store: &*rt.store, catalogue: &rt.catalogue, workflow: &rt.workflow, run, now }
}

/// `approved → consumed`.
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
