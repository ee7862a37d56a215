//! The records the store keeps, shared by every backend. Timestamps are milliseconds since the
//! Unix epoch (`i64`), chosen by the caller so tests and replays control time.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::AuditEntry;

/// Where a run stands. Stored as the lower-case snake name (`waiting_approval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Being advanced by a process (or crashed while it was: resume continues it).
    Running,
    /// Waiting for approval: until every pending approval of the current step is decided.
    WaitingApproval,
    /// An approval expired before anyone decided it; a human must look.
    Escalated,
    Completed,
    /// Ended by an error the run cannot recover from (model failure, script exhausted, ...).
    Failed,
    /// Ended by a bound: max steps, max tool calls, fuel, tokens or deadline.
    BoundHit,
    Cancelled,
    /// Stopped by a person (`pause`) until someone resumes it; nothing advances it meanwhile.
    Paused,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::WaitingApproval => "waiting_approval",
            RunStatus::Escalated => "escalated",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::BoundHit => "bound_hit",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Paused => "paused",
        }
    }
    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::WaitingApproval,
            RunStatus::Escalated,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::BoundHit,
            RunStatus::Cancelled,
            RunStatus::Paused,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
    /// Completed, failed, bound hit or cancelled: nothing will ever advance the run again.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed | RunStatus::BoundHit | RunStatus::Cancelled)
    }
}

/// Running totals a run is bounded by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Counters {
    /// Model turns taken.
    pub steps: u64,
    /// Calls the gate allowed (each runs once): what `max_tool_calls` bounds.
    pub tool_calls: u64,
    /// Plugin tool calls asked for, by a model or a fixed step (handoffs and approval steps
    /// are not tool calls), whatever the gate then decided.
    #[serde(default)]
    pub calls_proposed: u64,
    /// Calls the gate refused, before or after a person decided on them.
    #[serde(default)]
    pub calls_denied: u64,
    /// Calls sent to a person for approval (parked until decided).
    #[serde(default)]
    pub calls_parked: u64,
    /// Calls that ran and ended in an error (the plugin's, the sandbox's or an upstream's).
    #[serde(default)]
    pub calls_failed: u64,
    /// Guest instructions (wasmtime fuel) the run's calls burned.
    pub fuel: u64,
    /// Tokens the model read, as vendors reported them.
    pub input_tokens: u64,
    /// Tokens the model wrote.
    pub output_tokens: u64,
    /// Sum of the declared cost of calls charged against the per-run spend cap.
    pub spend: i64,
}

/// One run. `checkpoint` is the runtime's own state (conversation, cursor), opaque to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub workflow_name: String,
    pub workflow_version: String,
    /// Absolute path of the workflow file the run was started from.
    pub workflow_path: String,
    /// sha256 of the workflow file's bytes at start; resume refuses a changed file.
    pub workflow_digest: String,
    pub goal: String,
    pub status: RunStatus,
    /// Why the run is in its status (the bound hit, the error, who cancelled).
    pub status_detail: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deadline_at: Option<i64>,
    pub counters: Counters,
    /// Operator options the run was started with (model spec, upstream remaps); never secrets.
    pub options: Value,
    pub checkpoint: Value,
    /// Bumped by every commit that touches the run; commits name the version they read.
    pub version: i64,
}

/// A row of `tollgate runs list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    pub workflow_name: String,
    pub workflow_version: String,
    pub goal: String,
    pub status: RunStatus,
    pub status_detail: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub counters: Counters,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    /// A cursor: only runs after this one (its `created_at` and id) in the list's order, newest
    /// first — the last run of the previous page.
    pub after: Option<(i64, String)>,
    /// Newest first; `None` means all.
    pub limit: Option<u32>,
}

/// One model turn of one agent. `turn` is the runtime's serialised model turn (reasoning text,
/// tool calls, usage, provenance: live model or replay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub run_id: String,
    pub step: u32,
    pub agent: String,
    pub turn: Value,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    /// The gate allowed it; not started. No result recorded yet. (A call without effects
    /// runs straight from here.)
    Allowed,
    /// Claimed by a process that is running it, or was when it stopped (its `tool.claimed`
    /// audit record says which, and until when): the effect may have happened.
    InFlight,
    /// Waiting for approval: a human decides (see the approval with the same run, step and
    /// index).
    WaitingApproval,
    /// Refused by the gate or a human; `result` holds the reason sent to the model.
    Denied,
    /// Finished (successfully or with a tool error); `result` and `report` hold what happened.
    Done,
}

impl ToolCallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCallStatus::Allowed => "allowed",
            ToolCallStatus::InFlight => "in_flight",
            ToolCallStatus::WaitingApproval => "waiting_approval",
            ToolCallStatus::Denied => "denied",
            ToolCallStatus::Done => "done",
        }
    }
    pub fn parse(s: &str) -> Option<ToolCallStatus> {
        [
            ToolCallStatus::Allowed,
            ToolCallStatus::InFlight,
            ToolCallStatus::WaitingApproval,
            ToolCallStatus::Denied,
            ToolCallStatus::Done,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// One tool call of a step, keyed by `(run_id, step, index)`. Written with its gate decision
/// before anything runs; upserted when it finishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub run_id: String,
    pub step: u32,
    pub index: u32,
    /// The model's id for the call (tool results are matched to it).
    pub call_id: String,
    pub agent: String,
    /// Qualified `plugin.tool`.
    pub tool: String,
    pub input: Value,
    pub idempotency_key: String,
    pub status: ToolCallStatus,
    /// The gate's decision with its reasons (which rule, which cap).
    pub decision: Value,
    pub result: Option<Value>,
    /// The sandbox call report (already redacted by the sandbox).
    pub report: Option<Value>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    /// An approved call was started: the approval can never authorise anything again.
    Consumed,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Consumed => "consumed",
        }
    }
    pub fn parse(s: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::Expired,
            ApprovalStatus::Consumed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// What a person decides with an approval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// Whether a call may run: a call a rule sent for approval, or a fixed approval step.
    /// Approve runs it (possibly with an edited input); deny refuses it.
    #[default]
    Call,
    /// A call with an effect whose process stopped while running it, for a tool its plugin
    /// does not declare idempotent: the effect may have happened. Approve runs it again with
    /// the same idempotency key (as it was: no edits); deny marks it done without running it.
    InDoubt,
}

impl ApprovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::Call => "call",
            ApprovalKind::InDoubt => "in_doubt",
        }
    }
    pub fn parse(s: &str) -> Option<ApprovalKind> {
        [ApprovalKind::Call, ApprovalKind::InDoubt].into_iter().find(|kind| kind.as_str() == s)
    }
}

/// A request for a human decision on one exact tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Short, unique, typeable (`ap_` + 10 base32 chars).
    pub id: String,
    pub run_id: String,
    pub step: u32,
    pub index: u32,
    pub agent: String,
    pub tool: String,
    pub input: Value,
    pub plugin_digest: String,
    /// sha256 over plugin digest, tool and canonical input (see `binding_hash`).
    pub binding_hash: String,
    /// Why approval is needed (the rule or default that matched), shown to the approver.
    pub reason: String,
    pub status: ApprovalStatus,
    pub requested_at: i64,
    pub expires_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    /// The deny reason or the approver's note.
    pub note: Option<String>,
    /// Set when the approver edited the input; the call runs with this input.
    pub approved_input: Option<Value>,
    /// What approving and denying mean.
    #[serde(default)]
    pub kind: ApprovalKind,
    /// Who may decide it, as the signed request recorded it.
    #[serde(default)]
    pub authority: ApprovalAuthority,
    /// Approvals cast so far, oldest first: with `authority.quorum` of them (distinct names),
    /// it is `approved`.
    #[serde(default)]
    pub votes: Vec<ApprovalVote>,
}

/// Who may decide an approval: `approvers` (`role:<role>`, `user:<name>`; empty: whoever may
/// decide approvals at all), `quorum` distinct approvers to approve it (one denial denies), and
/// whether whoever started the run may decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ApprovalAuthority {
    pub approvers: Vec<String>,
    pub quorum: u32,
    pub self_approval: bool,
}

impl Default for ApprovalAuthority {
    fn default() -> Self {
        ApprovalAuthority { approvers: Vec::new(), quorum: 1, self_approval: false }
    }
}

/// One approver's approval of an approval that needs a quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalVote {
    pub by: String,
    pub at: i64,
}

/// An approval cast in a commit: under the write lock the approval must still be pending, `by`
/// must not have approved it yet, and `approved_input` must be what earlier approvals approved;
/// the vote that brings it to `quorum` makes it `approved`.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteCast {
    pub id: String,
    pub by: String,
    pub at: i64,
    pub approved_input: Option<Value>,
    pub quorum: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
    pub run_id: Option<String>,
    /// A page: at most this many. With `limit` or `after`, approvals come in `(requested_at, id)`
    /// order, so a page's last one is the cursor of the next; without, all of them in the order
    /// they were requested.
    pub limit: Option<u32>,
    /// Only approvals after this `(requested_at, id)` in that order.
    pub after: Option<(i64, String)>,
}

/// A status change of an approval, applied only if the approval is still in `from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalTransition {
    pub id: String,
    pub from: ApprovalStatus,
    pub to: ApprovalStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub note: Option<String>,
    pub approved_input: Option<Value>,
}

/// One use of a capped resource: `scope` names the counter (`rate:email.send_email`,
/// `freq:email.send_email:ana@example.com`, `spend:<run id>`). The store refuses the commit if
/// the sum of `amount` over `[at - window_ms, at]` in this scope, plus this one, exceeds `limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapCharge {
    pub scope: String,
    pub run_id: String,
    pub amount: i64,
    pub at: i64,
    pub limit: i64,
    /// `None`: the whole history counts (per-run caps use a run-scoped `scope`).
    pub window_ms: Option<i64>,
}

/// The new state of a run inside a [`Commit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunUpdate {
    pub id: String,
    /// The version the writer read; the commit fails with `StoreError::Conflict` otherwise.
    pub expected_version: i64,
    pub status: RunStatus,
    pub status_detail: Option<String>,
    pub counters: Counters,
    pub checkpoint: Value,
    pub updated_at: i64,
    /// Conversation messages appended by this update (their `seq`s are new for the run).
    pub messages: Vec<MessageRecord>,
}

/// One message of an agent's conversation, numbered per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub seq: u64,
    pub agent: String,
    pub message: Value,
}

/// Everything one durable step writes, applied in one transaction or not at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commit {
    pub run: Option<RunUpdate>,
    pub steps: Vec<StepRecord>,
    /// Upserted by `(run_id, step, index)`.
    pub tool_calls: Vec<ToolCallRecord>,
    pub new_approvals: Vec<ApprovalRecord>,
    pub approval_transitions: Vec<ApprovalTransition>,
    /// Approvals cast (see [`VoteCast`]).
    pub approval_votes: Vec<VoteCast>,
    /// When set, the commit lands only while this lease is the run's lease.
    pub fence: Option<Fence>,
    pub cap_charges: Vec<CapCharge>,
    pub audit: Vec<AuditEntry>,
    /// Whether to sign the audit head this commit leaves.
    pub checkpoint: Checkpoint,
    pub durability: Durability,
}

/// What a commit asks of the audit head it leaves. Whatever it asks, the head is also signed
/// (and witnessed) each time the chain passes a multiple of 64 records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Checkpoint {
    /// Nothing beyond the regular cadence.
    #[default]
    Regular,
    /// Sign the head in the same transaction, in the database: the commit authorises an effect,
    /// and the runtime acts on that authorisation only once a signature vouches for it (a
    /// writer of the database file cannot forge one).
    Signed,
    /// Sign the head and append the checkpoint to the external file beside the key, outside
    /// the database, so a rollback past it shows: a person decided, a run starts waiting for
    /// approval, or a run ends.
    Witnessed,
}

/// When a commit must be on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// On stable storage before `commit` returns (fsynced): survives power loss.
    #[default]
    Immediate,
    /// Atomic and visible at once, and survives the process dying, but on stable storage only
    /// with the next `Immediate` commit (commits reach the disk in order, so it is never lost
    /// while a later commit survives). Only for commits that nothing outside the database acts
    /// on before a later `Immediate` commit: the runtime uses it for a model turn whose allowed
    /// calls only read.
    Deferred,
}

/// An API token of `tollgate serve`, as stored: the secret itself never is, only its sha256.
/// `signature` is the audit key's signature over [`TokenRecord::signed_message`]; the store
/// returns only rows whose signature holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// `tok_` + 12 hex characters: the public half of the token.
    pub id: String,
    pub name: String,
    pub role: String,
    /// sha256 (hex) of the token's secret half.
    pub secret_hash: String,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub signature: String,
}

impl TokenRecord {
    /// What the signature covers: everything that says who the token is and what it may do.
    /// Revocation is not covered (it only ever takes rights away) and is also in the audit chain.
    pub fn signed_message(&self) -> String {
        format!(
            "tollgate-token-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.id,
            self.name,
            self.role,
            self.secret_hash,
            self.created_at,
            self.created_by,
            self.expires_at.map_or_else(|| "never".to_string(), |t| t.to_string())
        )
    }
}

/// One deployed workflow version: immutable once recorded. `path` is the snapshot of the file
/// in the data dir that runs of it load (its components snapshotted beside it), `digest` and
/// `plugins` what that snapshot held when deployed. `enabled` is the workflow's kill switch,
/// kept on every version's row. `signature` is the audit key's signature over
/// [`DeploymentRecord::signed_message`]; the store returns only rows whose signature holds, so
/// a row forged, edited or re-enabled in the database file is not deployed at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub name: String,
    pub version: String,
    /// sha256 of the workflow file's bytes.
    pub digest: String,
    /// Plugin name → sha256 of its component.
    pub plugins: std::collections::BTreeMap<String, String>,
    /// The snapshot's workflow file (absolute).
    pub path: String,
    pub deployed_at: i64,
    pub deployed_by: String,
    pub enabled: bool,
    /// When the kill switch last moved (`deployed_at` until it does).
    pub switched_at: i64,
    pub signature: String,
}

impl DeploymentRecord {
    /// Everything the signature covers: the whole row but the signature.
    pub fn signed_message(&self) -> String {
        let plugins: Vec<String> = self.plugins.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "tollgate-deployment-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.name,
            self.version,
            self.digest,
            plugins.join(","),
            self.path,
            self.deployed_at,
            self.deployed_by,
            self.enabled,
            self.switched_at
        )
    }

    /// Whether `other` is the same version with the same content (a repeated deploy).
    pub fn same_content(&self, other: &DeploymentRecord) -> bool {
        self.name == other.name
            && self.version == other.version
            && self.digest == other.digest
            && self.plugins == other.plugins
    }
}

/// What [`crate::Store::deploy_workflow`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployed {
    /// A new version, recorded (and audited) now.
    New(DeploymentRecord),
    /// The same name, version and content was deployed before: that record, nothing written.
    Existing(DeploymentRecord),
}

/// An `Idempotency-Key` of a run start: per caller, with the hash of what was asked, so the same
/// key never makes two runs and is never reused for a different start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartKey {
    /// Who asked (a token's name): keys of different callers never collide.
    pub caller: String,
    pub key: String,
    /// sha256 of the request (workflow, version, goal) the key was first used with.
    pub request_hash: String,
}

/// What [`crate::Store::create_run_keyed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The run was created.
    New,
    /// The key had started `run_id` before; `same_request` says whether with this request.
    Existing { run_id: String, same_request: bool },
}

/// A process's hold on advancing one run: `owner` names the process, `token` (the fencing
/// token) grows each time the run changes hands, `expires_at` is when others may take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLease {
    pub run_id: String,
    pub owner: String,
    pub token: i64,
    pub expires_at: i64,
}

impl RunLease {
    /// What commits made under this lease carry.
    pub fn fence(&self) -> Fence {
        Fence { run_id: self.run_id.clone(), owner: self.owner.clone(), token: self.token }
    }
}

/// What [`crate::Store::claim_run`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseClaim {
    /// The lease is the caller's now.
    Granted(RunLease),
    /// Another owner holds it: their lease.
    Held(RunLease),
}

/// The lease a commit is made under (see [`Commit::fence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub run_id: String,
    pub owner: String,
    pub token: i64,
}
