//! The gate: the only place that decides whether a call may run. Every call a step makes passes
//! [`check`] — a model's tool calls and handoffs, a fixed tool step, a fixed approval step, and
//! a call a human has decided (with its approval). For a plugin tool, in order: tool enabled
//! for the agent → the approval still binds this build, tool and input → input schema → run
//! bound on tool calls → caps (spend per run, rate per tool, frequency per target) → approval
//! rules. `apply.rs` turns the verdict into the step's commit; nothing runs before it lands.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tollgate_store::audit::{ChargeRecord, DenyStage, VerdictRecord};
use tollgate_store::{ApprovalAuthority, ApprovalKind, ApprovalRecord, ApprovalStatus, CapCharge, RunRecord, Store};
use tollgate_workflow::{ApprovalDecision, CallFacts, LoadedWorkflow, PolicyError, RunFacts, Step};

use crate::approvals::{approved_input, binding_hash};
use crate::catalogue::{Catalogue, model_name};
use crate::state::CallTarget;

/// What the gate decided for one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Run it, charging these caps in the same commit that records the verdict.
    Allow { charges: Vec<Charge>, rule: Option<usize> },
    /// A human must approve it first — `authority` says who may decide; the run waits for
    /// approval.
    RequireApproval { reason: String, authority: ApprovalAuthority },
    /// Refused; the reason goes back to the model.
    Deny { stage: DenyStage, reason: String },
    /// The call may already have happened (its process stopped while running it) and its tool
    /// is not idempotent: a person decides whether it runs again ([`in_doubt`]).
    InDoubt { reason: String },
    /// An in-doubt call is closed without running it again; whether it happened is unknown.
    MarkDone { reason: String },
}

impl Verdict {
    fn deny(stage: DenyStage, reason: impl Into<String>) -> Verdict {
        Verdict::Deny { stage, reason: reason.into() }
    }

    /// `allow`, `require_approval` or `deny`: the decision's name everywhere users see it.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Allow { .. } => "allow",
            Verdict::RequireApproval { .. } => "require_approval",
            Verdict::Deny { .. } => "deny",
            Verdict::InDoubt { .. } => "in_doubt",
            Verdict::MarkDone { .. } => "mark_done",
        }
    }

    /// The verdict in words, as the model and the operator are told it.
    pub fn reason(&self) -> Option<String> {
        match self {
            Verdict::Allow { rule, .. } => rule.map(|r| format!("allowed by policy.approvals[{r}]")),
            Verdict::RequireApproval { reason, .. } | Verdict::InDoubt { reason } | Verdict::MarkDone { reason } => {
                Some(reason.clone())
            }
            Verdict::Deny { stage, reason } => Some(format!("{}: {reason}", stage.as_str())),
        }
    }

    /// The verdict as the audit log and the tool-call row record it.
    pub fn record(&self) -> VerdictRecord {
        match self {
            Verdict::Allow { charges, rule } => VerdictRecord::Allow {
                rule: *rule,
                charges: charges
                    .iter()
                    .map(|c| ChargeRecord { scope: c.scope.key(), amount: c.amount, limit: c.limit })
                    .collect(),
            },
            Verdict::RequireApproval { .. } | Verdict::InDoubt { .. } => VerdictRecord::RequireApproval {},
            Verdict::Deny { stage, .. } => VerdictRecord::Deny { stage: *stage },
            Verdict::MarkDone { .. } => VerdictRecord::MarkDone {},
        }
    }
}

/// Which counter a cap charge goes to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum CapScope {
    /// `policy.spend_caps[cap]`, counted per run.
    Spend { run_id: String, cap: usize },
    /// `policy.rate_limits[cap]`, per tool across runs.
    Rate { cap: usize, tool: String },
    /// `policy.frequency_caps[cap]`, per tool and target across runs.
    Frequency { cap: usize, tool: String, target: String },
}

impl CapScope {
    /// The store's counter key: `spend:<run>:<cap>`, `rate:<cap>:<tool>`,
    /// `freq:<cap>:<tool>:<target>`.
    pub fn key(&self) -> String {
        match self {
            CapScope::Spend { run_id, cap } => format!("spend:{run_id}:{cap}"),
            CapScope::Rate { cap, tool } => format!("rate:{cap}:{tool}"),
            CapScope::Frequency { cap, tool, target } => format!("freq:{cap}:{tool}:{target}"),
        }
    }
}

/// One cap charge of an allowed call.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub scope: CapScope,
    pub amount: i64,
    pub limit: i64,
    /// `None`: the whole history counts.
    pub window_ms: Option<i64>,
}

impl Charge {
    /// The store's form, charged at `at` for `run_id`.
    pub fn to_store(&self, run_id: &str, at: i64) -> CapCharge {
        CapCharge {
            scope: self.scope.key(),
            run_id: run_id.to_string(),
            amount: self.amount,
            at,
            limit: self.limit,
            window_ms: self.window_ms,
        }
    }
}

/// What the gate reads.
pub struct GateContext<'a> {
    pub store: &'a dyn Store,
    pub catalogue: &'a Catalogue,
    pub workflow: &'a LoadedWorkflow,
    pub run: &'a RunRecord,
    pub now: i64,
}

/// One call as the gate sees it.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    /// The agent that asked, or `step:<id>` for a fixed step.
    pub agent: &'a str,
    pub target: &'a CallTarget,
    /// The name the call was made under (for an unknown tool, the model's name for it).
    pub name: &'a str,
    /// The input the call would run with (an approver's edit, when there is one).
    pub input: &'a Value,
    /// The qualified tools the agent has, named when it asks for one it does not have.
    pub agent_tools: &'a [String],
    /// Why the arguments the model wrote were not JSON, when they were not.
    pub arguments_error: Option<&'a str>,
}

/// What the gate let through earlier in the same step, not yet committed: the caps count what
/// it allowed, the tool-call bound counts what it allowed or sent for approval (a call waiting
/// for approval may still run), and a turn hands off at most once.
#[derive(Debug, Default)]
pub struct Tally {
    charges: BTreeMap<String, i64>,
    claimed: u64,
    handed_off: bool,
}

/// Decides one call. `approval` is the human decision behind a call that waited for approval:
/// approved, it answers `require_approval` rules (never `deny` rules, which are checked again,
/// as are the schema and the caps) as long as it still binds the same plugin build, tool and
/// input; denied or expired, it refuses the call.
pub async fn check(
    ctx: &GateContext<'_>,
    tally: &mut Tally,
    call: &CallRequest<'_>,
    approval: Option<&ApprovalRecord>,
) -> Verdict {
    let verdict = match call.target {
        _ if call.arguments_error.is_some() => malformed_arguments(call),
        CallTarget::Unknown => unknown_tool(call),
        CallTarget::Handoff { to } => handoff(ctx, tally, to, call.input),
        CallTarget::HumanGate { step_id } => human_gate(ctx, step_id, approval),
        CallTarget::Tool { qualified } => tool(ctx, tally, call, qualified, approval).await,
    };
    // A decided call never waits for approval a second time: fail closed.
    let verdict = match verdict {
        Verdict::RequireApproval { reason, .. } if approval.is_some() => Verdict::deny(DenyStage::Approval, reason),
        verdict => verdict,
    };
    if let CallTarget::Tool { .. } = call.target {
        match &verdict {
            Verdict::Allow { charges, .. } => {
                tally.claimed += 1;
                for charge in charges {
                    let counted = tally.charges.entry(charge.scope.key()).or_default();
                    *counted = counted.saturating_add(charge.amount);
                }
            }
            Verdict::RequireApproval { .. } => tally.claimed += 1,
            Verdict::Deny { .. } | Verdict::InDoubt { .. } | Verdict::MarkDone { .. } => {}
        }
    }
    verdict
}

/// Decides a call whose claim outlived its process (`claim.rs`): its effect may have happened.
/// `None`: its plugin declares the tool idempotent, so it simply runs again with the same key.
/// Otherwise a person decides ([`Verdict::InDoubt`]); with their decision (`approval`, of kind
/// [`ApprovalKind::InDoubt`]): approved, it runs again exactly as it was, with the same key
/// and no new charge (it was counted and charged when first allowed) — if the approval still
/// binds this plugin build and the run is within its deadline; anything else marks it done
/// without running it. Never a denial: whether the call happened is not known, and the model
/// is told so.
pub fn in_doubt(
    ctx: &GateContext<'_>,
    call: &CallRequest<'_>,
    claimed_by: &str,
    approval: Option<&ApprovalRecord>,
) -> Option<Verdict> {
    let mark_done = |reason: String| Some(Verdict::MarkDone { reason });
    let CallTarget::Tool { qualified } = call.target else {
        return mark_done("only plugin tools are claimed".into());
    };
    let Some((plugin, spec)) = ctx.catalogue.tool(qualified) else {
        return mark_done(format!("tool `{qualified}` is not loaded"));
    };
    let Some(approval) = approval else {
        return (!spec.idempotent).then(|| Verdict::InDoubt {
            reason: format!(
                "in doubt: `{qualified}` was running in process {claimed_by} when it stopped, before the result \
                 was recorded, so it may have taken effect; the plugin does not declare the tool idempotent, so \
                 the vendor may not recognise a repeat. Approve to run it again exactly as it was (same \
                 idempotency key), or deny to mark it done without running it."
            ),
        });
    };
    match approval.status {
        ApprovalStatus::Approved => {}
        ApprovalStatus::Denied => {
            let who = approval.decided_by.as_deref().unwrap_or("a person");
            let why = approval.note.as_deref().unwrap_or_default();
            return mark_done(format!("marked done by {who} without running it again: {why}"));
        }
        ApprovalStatus::Expired => {
            return mark_done("nobody decided before the approval expired; it was not run again".into());
        }
        ApprovalStatus::Pending | ApprovalStatus::Consumed => {
            return mark_done(format!("approval {} is {}, not approved", approval.id, approval.status.as_str()));
        }
    }
    // Fail closed: a retry runs the call exactly as it was, on the build it was claimed on.
    if approval.kind != ApprovalKind::InDoubt || approval.approved_input.is_some() {
        return mark_done(format!("approval {} does not retry the call as it was", approval.id));
    }
    if approval.tool != *qualified || approval.input != *call.input {
        return mark_done(format!("approval {} is for another call", approval.id));
    }
    if binding_hash(plugin.digest(), &approval.tool, &approval.input) != approval.binding_hash {
        return mark_done("the plugin changed since the approval was requested".into());
    }
    if past_deadline(ctx).is_some() {
        return mark_done("the run passed its deadline".into());
    }
    Some(Verdict::Allow { charges: Vec::new(), rule: None })
}

/// The model wrote arguments that are not JSON (cut off, or not JSON at all): said in words it
/// can act on, not as a schema error about a field it never wrote.
fn malformed_arguments(call: &CallRequest<'_>) -> Verdict {
    let error = call.arguments_error.unwrap_or_default();
    Verdict::deny(
        DenyStage::Schema,
        format!(
            "the arguments of your call to `{}` are not valid JSON ({error}), so it was not run; call it again \
             with the arguments as one JSON object matching the tool's input schema",
            model_name(call.name)
        ),
    )
}

fn unknown_tool(call: &CallRequest<'_>) -> Verdict {
    let available: Vec<String> = call.agent_tools.iter().map(|t| model_name(t)).collect();
    let available = if available.is_empty() { "(none)".to_string() } else { available.join(", ") };
    Verdict::deny(
        DenyStage::Enabled,
        format!("`{}` is not a tool of agent `{}`; its tools are: {available}", call.name, call.agent),
    )
}

fn handoff(ctx: &GateContext<'_>, tally: &mut Tally, to: &str, payload: &Value) -> Verdict {
    if tally.handed_off {
        return Verdict::deny(DenyStage::Handoff, "only one handoff per turn");
    }
    let checked = match ctx.workflow.definition.agents.get(to).and_then(|a| a.accepts.as_ref()) {
        None => match payload.get("message").and_then(Value::as_str) {
            Some(_) => Ok(()),
            None => return Verdict::deny(DenyStage::Schema, "a handoff needs a `message` string"),
        },
        Some(schema) => tollgate_sandbox::Schema::compile(&schema.to_string()).and_then(|s| s.check(payload)),
    };
    match checked {
        Ok(()) => {
            tally.handed_off = true;
            Verdict::Allow { charges: Vec::new(), rule: None }
        }
        Err(message) => Verdict::deny(
            DenyStage::Schema,
            format!("the handoff payload does not match what `{to}` accepts: {message}"),
        ),
    }
}

/// A fixed approval step: a human decides; there is no tool behind it.
fn human_gate(ctx: &GateContext<'_>, step_id: &str, approval: Option<&ApprovalRecord>) -> Verdict {
    if let Some(approval) = approval {
        return match decided(approval) {
            Ok(()) => Verdict::Allow { charges: Vec::new(), rule: None },
            Err(deny) => deny,
        };
    }
    match ctx.workflow.definition.steps.iter().find(|s| s.id() == step_id) {
        Some(Step::Approval { prompt, .. }) => {
            Verdict::RequireApproval { reason: prompt.clone(), authority: ApprovalAuthority::default() }
        }
        _ => Verdict::deny(DenyStage::Enabled, format!("the workflow has no approval step `{step_id}`")),
    }
}

/// `Ok` for an approved approval; the denial a denied, expired or undecided one stands for.
fn decided(approval: &ApprovalRecord) -> Result<(), Verdict> {
    match approval.status {
        ApprovalStatus::Approved => Ok(()),
        ApprovalStatus::Denied => {
            let who = approval.decided_by.as_deref().unwrap_or("a human");
            let why = approval.note.as_deref().unwrap_or_default();
            Err(Verdict::deny(DenyStage::Approval, format!("denied by {who}: {why}")))
        }
        ApprovalStatus::Expired => Err(Verdict::deny(
            DenyStage::Approval,
            "nobody approved this call before its approval expired; it was escalated to a human",
        )),
        // Fail closed: only an approval in `approved` authorises anything.
        ApprovalStatus::Pending | ApprovalStatus::Consumed => Err(Verdict::deny(
            DenyStage::Approval,
            format!("approval {} is {}, not approved", approval.id, approval.status.as_str()),
        )),
    }
}

async fn tool(
    ctx: &GateContext<'_>,
    tally: &Tally,
    call: &CallRequest<'_>,
    qualified: &str,
    approval: Option<&ApprovalRecord>,
) -> Verdict {
    let Some((plugin, spec)) = ctx.catalogue.tool(qualified) else {
        return Verdict::deny(DenyStage::Enabled, format!("tool `{qualified}` is not loaded"));
    };
    if let Some(approval) = approval {
        if let Err(deny) = decided(approval) {
            return deny;
        }
        // Fail closed: an approval authorises this plugin build, tool and input only.
        if approval.tool != qualified || approved_input(approval) != call.input {
            return Verdict::deny(DenyStage::Approval, format!("approval {} is for another call", approval.id));
        }
        if binding_hash(plugin.digest(), &approval.tool, &approval.input) != approval.binding_hash {
            return Verdict::deny(
                DenyStage::Approval,
                "the plugin changed since the approval was requested; the approval is void",
            );
        }
    }
    if let Err(message) = plugin.check_input(&spec.name, call.input) {
        return Verdict::deny(DenyStage::Schema, format!("input does not match the tool's schema: {message}"));
    }
    let bounds = &ctx.workflow.definition.run;
    if ctx.run.counters.tool_calls.saturating_add(tally.claimed) >= bounds.max_tool_calls {
        return Verdict::deny(
            DenyStage::Bound,
            format!("the run reached its max_tool_calls bound ({})", bounds.max_tool_calls),
        );
    }
    if let Some(deny) = past_deadline(ctx) {
        return deny;
    }
    let effects = spec.effects.names();
    let plugin_name = qualified.split_once('.').map(|(p, _)| p).unwrap_or(qualified);
    // Fixed steps run as `step:<id>`; policies see them as no agent, as the format documents.
    let agent = if call.agent.starts_with(crate::fixed::STEP_AGENT_PREFIX) { "" } else { call.agent };
    let facts = CallFacts {
        plugin: plugin_name,
        tool: &spec.name,
        agent,
        effects: &effects,
        input: call.input,
        run: RunFacts {
            spend: ctx.run.counters.spend,
            steps: ctx.run.counters.steps,
            tool_calls: ctx.run.counters.tool_calls,
        },
    };
    let charges = match charges(ctx, qualified, &facts, tally).await {
        Ok(charges) => charges,
        Err(deny) => return with_deny_rule(ctx, &facts, deny),
    };
    // Policy expressions are bounded (`tollgate_workflow::MAX_EVAL_STEPS`) but not free: the
    // deadline is looked at again after the caps' and before the rules'.
    if let Some(deny) = past_deadline(ctx) {
        return deny;
    }
    // Rules run for approved calls too: a human's approval answers `require_approval`, never
    // `deny` (an edited input, or run facts that moved since, can match a deny rule now).
    let rule = match ctx.workflow.policy().approval(&facts) {
        Ok(ApprovalDecision::Allow { rule }) => rule,
        Ok(ApprovalDecision::RequireApproval { .. }) if approval.is_some() => None,
        Ok(ApprovalDecision::RequireApproval { reason, rule }) => {
            let authority = rule.and_then(|i| ctx.workflow.policy().approvals.get(i)).map(|r| &r.authority);
            return Verdict::RequireApproval { reason, authority: authority.map(store_authority).unwrap_or_default() };
        }
        Ok(ApprovalDecision::Deny { rule, reason }) => {
            return Verdict::deny(DenyStage::Policy, format!("policy.approvals[{rule}]: {reason}"));
        }
        // Fail closed: a rule that cannot be evaluated cannot allow anything.
        Err(e) => return Verdict::deny(DenyStage::Policy, format!("policy could not be evaluated: {e}")),
    };
    Verdict::Allow { charges, rule }
}

/// A call a cap refuses may also match an operator's `deny` rule, whose reason is what the
/// operator wrote for exactly this case: the denial names the rule (stage `policy`) and the cap.
fn with_deny_rule(ctx: &GateContext<'_>, facts: &CallFacts<'_>, cap_denial: Verdict) -> Verdict {
    let Verdict::Deny { reason: cap_reason, .. } = &cap_denial else { return cap_denial };
    match ctx.workflow.policy().approval(facts) {
        Ok(ApprovalDecision::Deny { rule, reason }) => Verdict::deny(
            DenyStage::Policy,
            format!("policy.approvals[{rule}]: {reason} (also over a cap: {cap_reason})"),
        ),
        _ => cap_denial,
    }
}

/// The denial of a call gated after the run's deadline (by the clock, not the step's start:
/// gating a turn of many calls takes time).
fn past_deadline(ctx: &GateContext<'_>) -> Option<Verdict> {
    let deadline = ctx.run.deadline_at?;
    (crate::ids::now_ms() > deadline).then(|| Verdict::deny(DenyStage::Bound, "the run passed its deadline"))
}

/// How a cap is named in messages: its kind and table.
struct CapKind {
    kind: &'static str,
    table: &'static str,
}

const SPEND: CapKind = CapKind { kind: "spend cap", table: "policy.spend_caps" };
const RATE: CapKind = CapKind { kind: "rate limit", table: "policy.rate_limits" };
const FREQUENCY: CapKind = CapKind { kind: "frequency cap", table: "policy.frequency_caps" };

/// The cap charges of a call, or the denial of the first cap it would exceed.
async fn charges(
    ctx: &GateContext<'_>,
    qualified: &str,
    facts: &CallFacts<'_>,
    tally: &Tally,
) -> Result<Vec<Charge>, Verdict> {
    let policy = ctx.workflow.policy();
    let unevaluable = |e: PolicyError| Verdict::deny(DenyStage::Caps, format!("cap could not be evaluated: {e}"));
    let mut out = Vec::new();
    for (cap, cost, max) in policy.spend_costs(facts).map_err(unevaluable)? {
        // Lowering a budget does not refund the cap: only increases count.
        let scope = CapScope::Spend { run_id: ctx.run.id.clone(), cap };
        let charge = Charge { scope, amount: cost.max(0), limit: max, window_ms: None };
        out.push(within(ctx, charge, &SPEND, tally).await?);
    }
    for (cap, max, per) in policy.rate_limits(qualified) {
        let scope = CapScope::Rate { cap, tool: qualified.to_string() };
        let charge = Charge { scope, amount: 1, limit: saturating_i64(max), window_ms: Some(window_ms(per)) };
        out.push(within(ctx, charge, &RATE, tally).await?);
    }
    for (cap, max, per, targets) in policy.frequency_targets(facts).map_err(unevaluable)? {
        // A target named twice in one call is contacted once; charging it twice would make the
        // store refuse the commit on every attempt and wedge the run.
        let targets: BTreeSet<String> = targets.iter().map(|t| t.to_lowercase()).collect();
        for target in targets {
            let scope = CapScope::Frequency { cap, tool: qualified.to_string(), target };
            let charge = Charge { scope, amount: 1, limit: saturating_i64(max), window_ms: Some(window_ms(per)) };
            out.push(within(ctx, charge, &FREQUENCY, tally).await?);
        }
    }
    Ok(out)
}

/// `charge` if its counter, with what the step already charged, stays within the limit.
async fn within(ctx: &GateContext<'_>, charge: Charge, cap: &CapKind, tally: &Tally) -> Result<Charge, Verdict> {
    let key = charge.scope.key();
    let used = match ctx.store.cap_usage(&key, ctx.now, charge.window_ms).await {
        Ok(used) => used.saturating_add(tally.charges.get(&key).copied().unwrap_or(0)),
        Err(e) => return Err(Verdict::deny(DenyStage::Caps, format!("cap usage unavailable: {e}"))),
    };
    if used.saturating_add(charge.amount) <= charge.limit {
        return Ok(charge);
    }
    let index = match &charge.scope {
        CapScope::Spend { cap, .. } | CapScope::Rate { cap, .. } | CapScope::Frequency { cap, .. } => cap,
    };
    let target = match &charge.scope {
        CapScope::Frequency { target, .. } => format!(" for {target}"),
        _ => String::new(),
    };
    let window = charge.window_ms.map(|ms| format!(" in the last {}", human_window(ms))).unwrap_or_default();
    let (amount, limit) = (charge.amount, charge.limit);
    Err(Verdict::deny(
        DenyStage::Caps,
        format!("{} {}[{index}]{target}: {used} used{window} + {amount} > {limit}", cap.kind, cap.table),
    ))
}

fn window_ms(per: std::time::Duration) -> i64 {
    i64::try_from(per.as_millis()).unwrap_or(i64::MAX)
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn human_window(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A rule's authority as approvals record it.
fn store_authority(a: &tollgate_workflow::Authority) -> ApprovalAuthority {
    ApprovalAuthority { approvers: a.approvers.clone(), quorum: a.quorum, self_approval: a.self_approval }
}
