//! The audit events: one enum, [`AuditEvent`], with one struct per kind. Writers construct
//! these values and never JSON; the store seals each as `kind` + canonical JSON `body` (the
//! struct's fields). `docs/audit-events.md` documents every kind and field and is generated
//! from these types (`event_doc.rs` checks it is current).
//!
//! Every field of a kind is always present in its body (`null` or empty when it does not
//! apply), so one kind has one shape. Records read back from a store can be parsed with
//! [`AuditEvent::parse`]; the chain itself is verified on the raw `kind` and `body`, so a
//! record of a kind this build does not know still verifies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_contract::EgressRecord;

use crate::{ApprovalAuthority, ApprovalKind, Counters, RunStatus};

/// What happened, by kind. The kind names (`run.started`, …) are the `kind` column of the
/// chain; the variant's struct is its `body`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(tag = "kind", content = "body")]
pub enum AuditEvent {
    /// A run was created.
    #[serde(rename = "run.started")]
    RunStarted(RunStarted),
    /// A model (or a replay script) answered one turn of an agent.
    #[serde(rename = "model.turn")]
    ModelTurn(ModelTurn),
    /// A model turn could not be acted on (empty, or cut off); the model was asked again.
    #[serde(rename = "model.nudged")]
    ModelNudged(ModelNudged),
    /// The gate decided one call before anything ran.
    #[serde(rename = "gate.decision")]
    GateDecision(GateDecision),
    /// A call needs a human's decision; the run waits for approval.
    #[serde(rename = "approval.requested")]
    ApprovalRequested(ApprovalRequested),
    /// A human approved a call (possibly with an edited input).
    #[serde(rename = "approval.granted")]
    ApprovalGranted(ApprovalGranted),
    /// A human denied a call.
    #[serde(rename = "approval.denied")]
    ApprovalDenied(ApprovalDenied),
    /// Nobody decided before the approval's expiry.
    #[serde(rename = "approval.expired")]
    ApprovalExpired(ApprovalExpired),
    /// An approval took effect: the call was gated again and allowed or denied; the approval
    /// never authorises anything again.
    #[serde(rename = "approval.consumed")]
    ApprovalConsumed(ApprovalConsumed),
    /// A process claimed an allowed call and is about to run it; a `tool.call` record follows
    /// unless the process stopped first.
    #[serde(rename = "tool.claimed")]
    ToolClaimed(ToolClaimed),
    /// A plugin tool call ran in the sandbox.
    #[serde(rename = "tool.call")]
    ToolCall(ToolCall),
    /// A person marked an in-doubt call done without running it again (or nobody decided
    /// before its approval expired): whether its effect happened is not known.
    #[serde(rename = "tool.marked_done")]
    ToolMarkedDone(ToolMarkedDone),
    /// An agent handed the run to another agent.
    #[serde(rename = "handoff")]
    Handoff(Handoff),
    /// A fixed agent step started its agent.
    #[serde(rename = "step.started")]
    StepStarted(StepStarted),
    /// A run is waiting on a human after an approval expired.
    #[serde(rename = "run.escalated")]
    RunEscalated(RunEscalated),
    /// A run ended, whatever the reason.
    #[serde(rename = "run.ended")]
    RunEnded(RunEnded),
    /// A person paused a run: nothing advances it until someone resumes it.
    #[serde(rename = "run.paused")]
    RunPaused(RunPaused),
    /// A person resumed a paused run.
    #[serde(rename = "run.resumed")]
    RunResumed(RunResumed),
    /// An API token for `tollgate serve` was created.
    #[serde(rename = "token.created")]
    TokenCreated(TokenCreated),
    /// An API token was revoked.
    #[serde(rename = "token.revoked")]
    TokenRevoked(TokenRevoked),
    /// A workflow version was deployed: validated, snapshotted and made startable.
    #[serde(rename = "workflow.deployed")]
    WorkflowDeployed(WorkflowDeployed),
    /// A workflow was disabled (its kill switch) or enabled again.
    #[serde(rename = "workflow.switched")]
    WorkflowSwitched(WorkflowSwitched),
}

/// One immutable workflow version, as deployed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WorkflowDeployed {
    pub workflow: String,
    pub version: String,
    /// sha256 of the workflow file's bytes.
    pub workflow_sha256: String,
    /// Plugin name → sha256 of its component.
    pub plugins: BTreeMap<String, String>,
    /// Who deployed it.
    pub by: String,
}

/// A workflow's kill switch moved: with `enabled = false` no run of it starts and its runs stop
/// at their next step boundary; `true` lets them go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WorkflowSwitched {
    pub workflow: String,
    pub enabled: bool,
    /// Who moved it.
    pub by: String,
}

/// A new API token: who it names and what it may do. Never the token or its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct TokenCreated {
    /// The token's id (`tok_` + 12 hex characters), the part of the token that is not secret.
    pub token_id: String,
    /// The identity requests made with it act as (in every audit record they cause).
    pub name: String,
    /// admin, operator, approver, auditor or viewer.
    pub role: String,
    /// Unix milliseconds after which it no longer authenticates; absent: never.
    pub expires_at: Option<i64>,
    /// Who created it: `local:<user>` from the command line, or the admin token's name.
    pub by: String,
}

/// A token that no longer authenticates anyone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct TokenRevoked {
    pub token_id: String,
    pub name: String,
    /// Who revoked it.
    pub by: String,
}

/// What the run is bound to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RunStarted {
    /// The workflow's `name`.
    pub workflow: String,
    /// The workflow's `version`.
    pub version: String,
    /// sha256 of the workflow file's bytes.
    pub workflow_sha256: String,
    /// The goal the run was started with.
    pub goal: String,
    /// The entry agent; empty for a workflow of fixed steps.
    pub entry: String,
    /// Agent → the model it runs on (`openai:gpt-4.1`, `replay of turns.toml`).
    pub models: BTreeMap<String, String>,
    /// Plugin name → sha256 of its component.
    pub plugins: BTreeMap<String, String>,
    /// Host → base URL remaps the operator started the run with.
    pub upstreams: BTreeMap<String, String>,
    /// Who started it, when known (an API token's name; absent in records before 0.8).
    #[serde(default)]
    pub by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ModelTurn {
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The agent whose turn it was.
    pub agent: String,
    /// A live model or a replay script.
    pub source: TurnSource,
    /// The turn's text: reasoning, or the final answer when it calls no tools.
    pub reasoning: Option<String>,
    /// The calls the model asked for, in order; each is gated next.
    pub tool_calls: Vec<RequestedCall>,
    /// Tokens the turn used.
    pub usage: TokenUsage,
    /// Why the model stopped: `end_turn`, `tool_use`, `max_tokens` (cut off at the run's
    /// `max_output_tokens`) or the vendor's own reason. `null` in records written before it
    /// was recorded.
    #[serde(default)]
    pub stop: Option<String>,
}

/// A model turn the runtime could not act on: the model is told why and asked again, once.
/// A second such turn in a row ends the run (`run.ended` says how).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ModelNudged {
    /// The step of the turn that could not be acted on.
    pub step: u32,
    /// The agent whose turn it was.
    pub agent: String,
    /// `empty_answer` (no text and no tool calls) or `output_truncated` (an answer cut off at
    /// `max_output_tokens`).
    pub reason: String,
    /// What the model was told.
    pub message: String,
}

/// Where a turn came from. A replayed turn is never presented as a model's thinking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TurnSource {
    /// A live model answered.
    Live { provider: String, model: String },
    /// Line `index` of a replay script.
    Replay { script: String, index: u32 },
}

/// One tool call a model asked for, as it asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RequestedCall {
    /// The model's id for the call.
    pub id: String,
    /// The name the model used (`ads__update_campaign`, `handoff__copywriter`).
    pub name: String,
    /// The input the model gave.
    pub input: Value,
}

/// Tokens a turn used, as the vendor reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct GateDecision {
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The call's position among the calls of its step, from 0.
    pub index: u32,
    /// Qualified `plugin.tool`, `handoff.<agent>`, or the name a model used for a tool it
    /// does not have.
    pub tool: String,
    /// The agent that asked, or `step:<id>` for a fixed tool step.
    pub agent: String,
    /// The input the call would run with.
    pub input: Value,
    /// sha256 of the component that would run it; `null` for handoffs, approval steps and
    /// tools that are not loaded.
    #[serde(default)]
    pub plugin_digest: Option<String>,
    #[serde(flatten)]
    pub verdict: VerdictRecord,
    /// The verdict in words, as the model is told it.
    pub reason: Option<String>,
}

/// A verdict as recorded: `decision` and what it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum VerdictRecord {
    /// The call may run; its cap charges are committed with the verdict.
    Allow {
        /// Index of the `policy.approvals` rule that allowed it, if one did.
        rule: Option<usize>,
        charges: Vec<ChargeRecord>,
    },
    /// A human must approve the call first.
    RequireApproval {},
    /// Refused; the reason goes back to the model.
    Deny { stage: DenyStage },
    /// An in-doubt call (its process stopped while running it) closed without running it
    /// again, as a person decided or because nobody did: whether it happened is unknown.
    MarkDone {},
}

/// The gate check that refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DenyStage {
    /// The tool is not one the agent has (or not loaded).
    Enabled,
    /// The input does not match the tool's (or the handoff receiver's) schema.
    Schema,
    /// The run's `max_tool_calls` bound.
    Bound,
    /// A spend, rate or frequency cap.
    Caps,
    /// A `deny` approval rule, or a rule that could not be evaluated.
    Policy,
    /// Only one handoff per turn.
    Handoff,
    /// A human denied the call, its approval expired, or the approval no longer binds it.
    Approval,
}

impl DenyStage {
    /// The stage's name as recorded (`caps`).
    pub fn as_str(self) -> &'static str {
        match self {
            DenyStage::Enabled => "enabled",
            DenyStage::Schema => "schema",
            DenyStage::Bound => "bound",
            DenyStage::Caps => "caps",
            DenyStage::Policy => "policy",
            DenyStage::Handoff => "handoff",
            DenyStage::Approval => "approval",
        }
    }
}

/// One cap charge of an allowed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ChargeRecord {
    /// The counter: `spend:<run>:<cap>`, `rate:<cap>:<tool>`, `freq:<cap>:<tool>:<target>`.
    pub scope: String,
    /// What the call adds to the counter.
    pub amount: i64,
    /// The cap the counter may not pass.
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApprovalRequested {
    /// The approval (`ap_` + 10 characters), as `tollgate approvals` names it.
    pub approval_id: String,
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The call's position among the calls of its step, from 0.
    pub index: u32,
    /// Qualified `plugin.tool`, or `approval.<step id>` for a fixed approval step.
    pub tool: String,
    /// The exact input the approval is for.
    pub input: Value,
    /// sha256 over the plugin's digest, the tool and the canonical input.
    pub binding_hash: String,
    /// Why approval is needed, as shown to the approver.
    pub reason: String,
    /// When the approval expires unanswered (milliseconds since the Unix epoch).
    pub expires_at: i64,
    /// `call`: may the call run? `in_doubt`: the call may have happened (its process stopped
    /// while running it) — run it again, or mark it done? Absent in records written before
    /// version 0.1 knew in-doubt calls, which are all `call`.
    #[serde(default)]
    pub kind: ApprovalKind,
    /// Who may decide it: approvers, quorum, whether the run's starter may. Absent in records
    /// written before approval authority existed: anyone who may decide, one approval.
    #[serde(default)]
    pub authority: ApprovalAuthority,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApprovalGranted {
    /// The approval (`ap_` + 10 characters), as `tollgate approvals` names it.
    pub approval_id: String,
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The call's position among the calls of its step, from 0.
    pub index: u32,
    /// Qualified `plugin.tool`, or `approval.<step id>` for a fixed approval step.
    pub tool: String,
    /// Who approved.
    pub by: String,
    /// The binding of the approval request this decision answers.
    pub binding_hash: String,
    /// The approver replaced the input; `input` is theirs.
    pub edited: bool,
    /// The input the call runs with.
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApprovalDenied {
    /// The approval (`ap_` + 10 characters), as `tollgate approvals` names it.
    pub approval_id: String,
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The call's position among the calls of its step, from 0.
    pub index: u32,
    /// Qualified `plugin.tool`, or `approval.<step id>` for a fixed approval step.
    pub tool: String,
    /// Who denied.
    pub by: String,
    /// Why, as the model is told.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApprovalExpired {
    /// The approval (`ap_` + 10 characters), as `tollgate approvals` names it.
    pub approval_id: String,
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The call's position among the calls of its step, from 0.
    pub index: u32,
    /// The agent whose call it was, or `step:<id>`.
    pub agent: String,
    /// Qualified `plugin.tool`, or `approval.<step id>` for a fixed approval step.
    pub tool: String,
    /// When it expired (milliseconds since the Unix epoch).
    pub expires_at: i64,
}

/// An approved call passed the gate again (the approval answers a
/// `require_approval` rule, never a `deny`) and was allowed or refused. For a fixed approval
/// step there is no call: the verdict is `allow` with no charges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApprovalConsumed {
    /// The approval (`ap_` + 10 characters), as `tollgate approvals` names it.
    pub approval_id: String,
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The call's position among the calls of its step, from 0.
    pub index: u32,
    /// Qualified `plugin.tool`, or `approval.<step id>` for a fixed approval step.
    pub tool: String,
    /// The input the call runs with (the approver's edit, if any). Absent in records written
    /// before it was recorded (such a record authorises nothing).
    #[serde(default)]
    pub input: Value,
    /// sha256 of the component that would run it; `null` for an approval step.
    #[serde(default)]
    pub plugin_digest: Option<String>,
    #[serde(flatten)]
    pub verdict: VerdictRecord,
    /// The verdict in words.
    pub reason: Option<String>,
}

/// An allowed call with an effect, claimed by the process about to run it (committed before
/// it starts, so two processes never run it at once, and after a crash the call is known to
/// have perhaps happened).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ToolClaimed {
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The call's position among the calls of its step, from 0.
    pub index: u32,
    /// Qualified `plugin.tool`.
    pub tool: String,
    /// `run:step:index`, forwarded to upstreams as `Idempotency-Key`.
    pub idempotency_key: String,
    /// The claiming process: `host:pid`.
    pub by: String,
    /// Until when (ms since the epoch) the claim holds if that process is not seen to have
    /// stopped: the call's timeout and a margin.
    pub lease_until: i64,
}

/// An in-doubt call closed without running it again. No `tool.call` record follows: the
/// process that ran it stopped before it could record one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ToolMarkedDone {
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The call's position among the calls of its step, from 0.
    pub index: u32,
    /// Qualified `plugin.tool`.
    pub tool: String,
    /// `run:step:index`: what the vendor saw, if the call reached it, as `Idempotency-Key`.
    pub idempotency_key: String,
    /// The in-doubt approval that decided it.
    pub approval_id: String,
    /// Who marked it done; `null` when its approval expired undecided.
    pub by: Option<String>,
    /// The person's note, or why it was closed.
    pub reason: String,
}

/// One sandboxed call and what it cost. The output itself is in the run's
/// tool-call row; the record keeps its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ToolCall {
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The call's position among the calls of its step, from 0.
    pub index: u32,
    /// Qualified `plugin.tool`, or `approval.<step id>` for a fixed approval step.
    pub tool: String,
    /// sha256 of the component that ran; `null` when the tool was not loaded.
    pub plugin_digest: Option<String>,
    /// `run:step:index`, forwarded to upstreams as `Idempotency-Key`.
    pub idempotency_key: String,
    /// The input the call ran with.
    pub input: Value,
    /// `ok`, or the error kind (`timeout`, `fuel-exhausted`, `tool-denied`, `unknown-tool`, …).
    pub outcome: String,
    /// The error message, when the call failed.
    pub error: Option<String>,
    /// sha256 of the output's JSON, when the call succeeded.
    pub output_sha256: Option<String>,
    /// Guest instructions the call burned (wasmtime fuel).
    pub fuel_used: u64,
    /// Wall-clock time of the call, in microseconds.
    pub duration_us: u64,
    /// The instance's peak linear memory.
    pub peak_memory_bytes: u64,
    /// The memory limit refused a `memory.grow` during the call.
    pub memory_refused: bool,
    /// The guest's own error text, when the host reported a more precise cause.
    pub guest_error: Option<String>,
    /// A fresh instance, or one an earlier call of the run used (`instances = "per-run"`).
    pub instance: Instance,
    /// Every outbound request attempt, allowed or refused (credentials never appear).
    pub egress: Vec<EgressRecord>,
}

/// Whether a call ran on a fresh instance or one an earlier call of the same run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Instance {
    Fresh,
    Reused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Handoff {
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The agent that handed off.
    pub from: String,
    /// The agent that continues the run.
    pub to: String,
    /// What the sender handed over (matches the receiver's `accepts` schema).
    pub payload: Value,
}

/// A fixed agent step handed the run to its agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct StepStarted {
    /// The run's step number: one model turn, or one fixed step.
    pub step: u32,
    /// The step's `id` in the workflow.
    pub step_id: String,
    /// The agent that runs the step.
    pub agent: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RunEscalated {
    /// Always `approval_expired` today.
    pub reason: String,
    /// The approvals that expired.
    pub approvals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RunEnded {
    /// How the run ended.
    pub status: RunStatus,
    /// Why: the bound hit, the error, who cancelled.
    pub detail: Option<String>,
    /// The final answer, when there is one.
    pub output: Option<String>,
    /// What the run used.
    pub counters: Counters,
    /// Wall-clock time spent advancing the run (not waiting for approval).
    pub active_ms: u64,
    /// Who cancelled the run; `null` unless it was cancelled.
    pub by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RunPaused {
    /// Who paused it (a token's name over the API; the OS user and label on the command line).
    pub by: String,
    /// Why, as they gave it.
    pub reason: String,
    /// The status it had when paused.
    pub was: RunStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RunResumed {
    /// Who resumed it. The run is `running` again; its next advance finds where it stands.
    pub by: String,
}

impl AuditEvent {
    /// The record's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::RunStarted(_) => "run.started",
            AuditEvent::ModelTurn(_) => "model.turn",
            AuditEvent::ModelNudged(_) => "model.nudged",
            AuditEvent::GateDecision(_) => "gate.decision",
            AuditEvent::ApprovalRequested(_) => "approval.requested",
            AuditEvent::ApprovalGranted(_) => "approval.granted",
            AuditEvent::ApprovalDenied(_) => "approval.denied",
            AuditEvent::ApprovalExpired(_) => "approval.expired",
            AuditEvent::ApprovalConsumed(_) => "approval.consumed",
            AuditEvent::ToolClaimed(_) => "tool.claimed",
            AuditEvent::ToolCall(_) => "tool.call",
            AuditEvent::ToolMarkedDone(_) => "tool.marked_done",
            AuditEvent::Handoff(_) => "handoff",
            AuditEvent::StepStarted(_) => "step.started",
            AuditEvent::RunEscalated(_) => "run.escalated",
            AuditEvent::RunEnded(_) => "run.ended",
            AuditEvent::RunPaused(_) => "run.paused",
            AuditEvent::RunResumed(_) => "run.resumed",
            AuditEvent::TokenCreated(_) => "token.created",
            AuditEvent::TokenRevoked(_) => "token.revoked",
            AuditEvent::WorkflowDeployed(_) => "workflow.deployed",
            AuditEvent::WorkflowSwitched(_) => "workflow.switched",
        }
    }

    /// The record's `body`: the kind's struct as JSON.
    pub fn body(&self) -> Value {
        // Plain data with string keys: serialising cannot fail.
        match serde_json::to_value(self) {
            Ok(Value::Object(mut tagged)) => tagged.remove("body").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Reads a stored record's `kind` and `body` back into an event.
    pub fn parse(kind: &str, body: &Value) -> Result<AuditEvent, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "body": body }))
    }
}

/// An event to append to the chain: when, for which run, and what happened. The store
/// assigns `seq` and the hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub ts: i64,
    pub run_id: Option<String>,
    pub event: AuditEvent,
}

impl AuditEntry {
    /// An entry of `run_id` at `ts`.
    pub fn of_run(run_id: &str, ts: i64, event: impl Into<AuditEvent>) -> AuditEntry {
        AuditEntry { ts, run_id: Some(run_id.to_string()), event: event.into() }
    }
}

macro_rules! into_event {
    ($($kind:ident),* $(,)?) => {
        $(impl From<$kind> for AuditEvent {
            fn from(body: $kind) -> AuditEvent {
                AuditEvent::$kind(body)
            }
        })*
    };
}

into_event!(
    RunStarted,
    RunPaused,
    RunResumed,
    ModelTurn,
    ModelNudged,
    GateDecision,
    ApprovalRequested,
    ApprovalGranted,
    ApprovalDenied,
    ApprovalExpired,
    ApprovalConsumed,
    ToolClaimed,
    ToolCall,
    ToolMarkedDone,
    Handoff,
    StepStarted,
    RunEscalated,
    RunEnded,
    TokenCreated,
    TokenRevoked,
    WorkflowDeployed,
    WorkflowSwitched,
);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// One event of every kind.
    fn every_kind() -> Vec<AuditEvent> {
        let verdict = VerdictRecord::Allow {
            rule: Some(1),
            charges: vec![ChargeRecord { scope: "rate:0:crm.add_note".into(), amount: 1, limit: 5 }],
        };
        vec![
            RunStarted {
                workflow: "w".into(),
                version: "1.0.0".into(),
                workflow_sha256: "d".into(),
                goal: "g".into(),
                entry: "a".into(),
                models: BTreeMap::from([("a".into(), "replay of t.toml".into())]),
                plugins: BTreeMap::from([("crm".into(), "e".into())]),
                upstreams: BTreeMap::new(),
                by: Some("ada".into()),
            }
            .into(),
            ModelTurn {
                step: 1,
                agent: "a".into(),
                source: TurnSource::Live { provider: "openai".into(), model: "m".into() },
                reasoning: Some("r".into()),
                tool_calls: vec![RequestedCall { id: "c".into(), name: "crm__add_note".into(), input: json!({}) }],
                usage: TokenUsage { input_tokens: 1, output_tokens: 2 },
                stop: Some("tool_use".into()),
            }
            .into(),
            GateDecision {
                step: 1,
                index: 0,
                tool: "crm.add_note".into(),
                agent: "a".into(),
                input: json!({"x": 1}),
                plugin_digest: Some("e".into()),
                verdict: verdict.clone(),
                reason: None,
            }
            .into(),
            GateDecision {
                step: 1,
                index: 1,
                tool: "x".into(),
                agent: "a".into(),
                input: json!(null),
                plugin_digest: None,
                verdict: VerdictRecord::Deny { stage: DenyStage::Caps },
                reason: Some("caps: over".into()),
            }
            .into(),
            ApprovalRequested {
                approval_id: "ap".into(),
                step: 1,
                index: 0,
                tool: "t".into(),
                input: json!({}),
                binding_hash: "b".into(),
                reason: "r".into(),
                expires_at: 5,
                kind: ApprovalKind::InDoubt,
                authority: ApprovalAuthority {
                    approvers: vec!["role:approver".into()],
                    quorum: 2,
                    self_approval: false,
                },
            }
            .into(),
            ApprovalGranted {
                approval_id: "ap".into(),
                step: 1,
                index: 0,
                tool: "t".into(),
                by: "alice".into(),
                binding_hash: "b".into(),
                edited: true,
                input: json!({}),
            }
            .into(),
            ApprovalDenied {
                approval_id: "ap".into(),
                step: 1,
                index: 0,
                tool: "t".into(),
                by: "bob".into(),
                reason: "no".into(),
            }
            .into(),
            ApprovalExpired {
                approval_id: "ap".into(),
                step: 1,
                index: 0,
                agent: "a".into(),
                tool: "t".into(),
                expires_at: 5,
            }
            .into(),
            ApprovalConsumed {
                approval_id: "ap".into(),
                step: 1,
                index: 0,
                tool: "t".into(),
                input: json!({}),
                plugin_digest: None,
                verdict: VerdictRecord::RequireApproval {},
                reason: None,
            }
            .into(),
            ToolClaimed {
                step: 1,
                index: 0,
                tool: "t".into(),
                idempotency_key: "r:1:0".into(),
                by: "host:42".into(),
                lease_until: 9,
            }
            .into(),
            ToolMarkedDone {
                step: 1,
                index: 0,
                tool: "t".into(),
                idempotency_key: "r:1:0".into(),
                approval_id: "ap".into(),
                by: None,
                reason: "expired".into(),
            }
            .into(),
            ToolCall {
                step: 1,
                index: 0,
                tool: "t".into(),
                plugin_digest: Some("e".into()),
                idempotency_key: "r:1:0".into(),
                input: json!({}),
                outcome: "ok".into(),
                error: None,
                output_sha256: Some("o".into()),
                fuel_used: 3,
                duration_us: 4,
                peak_memory_bytes: 5,
                memory_refused: false,
                guest_error: None,
                instance: Instance::Reused,
                egress: vec![EgressRecord {
                    method: "POST".into(),
                    scheme: "https".into(),
                    host: "api.hubapi.com".into(),
                    port: 443,
                    path: "/crm/v3/objects/notes".into(),
                    status: Some(201),
                    credential: Some("hubspot".into()),
                    ..EgressRecord::default()
                }],
            }
            .into(),
            Handoff { step: 2, from: "a".into(), to: "b".into(), payload: json!({"message": "m"}) }.into(),
            StepStarted { step: 0, step_id: "draft".into(), agent: "writer".into() }.into(),
            RunEscalated { reason: "approval_expired".into(), approvals: vec!["ap".into()] }.into(),
            RunEnded {
                status: RunStatus::Cancelled,
                detail: Some("d".into()),
                output: None,
                counters: Counters::default(),
                active_ms: 7,
                by: Some("carol".into()),
            }
            .into(),
            ModelNudged {
                step: 2,
                agent: "a".into(),
                reason: "empty_answer".into(),
                message: "Your reply was empty.".into(),
            }
            .into(),
            TokenCreated {
                token_id: "tok_0123456789ab".into(),
                name: "ada".into(),
                role: "approver".into(),
                expires_at: Some(9),
                by: "local:root".into(),
            }
            .into(),
            TokenRevoked { token_id: "tok_0123456789ab".into(), name: "ada".into(), by: "admin".into() }.into(),
            WorkflowDeployed {
                workflow: "w".into(),
                version: "1.0.0".into(),
                workflow_sha256: "ab".repeat(32),
                plugins: BTreeMap::from([("echo".into(), "cd".repeat(32))]),
                by: "ada".into(),
            }
            .into(),
            WorkflowSwitched { workflow: "w".into(), enabled: false, by: "ada".into() }.into(),
        ]
    }

    #[test]
    fn every_kind_reads_back_as_written() {
        let events = every_kind();
        let kinds: std::collections::BTreeSet<&str> = events.iter().map(AuditEvent::kind).collect();
        assert_eq!(kinds.len(), 20, "one example per kind: {kinds:?}");
        for event in events {
            let body = event.body();
            assert!(body.is_object(), "{body}");
            assert_eq!(AuditEvent::parse(event.kind(), &body).unwrap(), event, "{body}");
        }
    }

    #[test]
    fn bodies_keep_their_recorded_shape() {
        let gate = &every_kind()[2];
        assert_eq!(
            gate.body(),
            json!({
                "step": 1, "index": 0, "tool": "crm.add_note", "agent": "a", "input": {"x": 1}, "reason": null,
                "plugin_digest": "e",
                "decision": "allow", "rule": 1, "charges": [{"scope": "rate:0:crm.add_note", "amount": 1, "limit": 5}],
            })
        );
        let denied = &every_kind()[3];
        assert_eq!(denied.body()["decision"], "deny");
        assert_eq!(denied.body()["stage"], "caps");
        assert_eq!(every_kind()[8].body()["decision"], "require_approval");
        assert_eq!(every_kind()[1].body()["source"], json!({"kind": "live", "provider": "openai", "model": "m"}));
    }

    #[test]
    fn unknown_kinds_and_bodies_do_not_parse() {
        assert!(AuditEvent::parse("run.paused", &json!({})).is_err());
        assert!(AuditEvent::parse("run.ended", &json!({"status": "completed"})).is_err());
    }
}
