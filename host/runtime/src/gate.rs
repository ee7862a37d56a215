//! The gate every tool call passes, in order: tool enabled for the agent → input schema → run
//! bound on tool calls → caps (spend per run, rate per tool, frequency per target) → approval
//! rules. Only [`check`] decides whether a call may run; the loop records its verdict (and the
//! audit record of it) before anything runs.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tollgate_store::{CapCharge, RunRecord, Store};
use tollgate_workflow::{ApprovalDecision, CallFacts, LoadedWorkflow, RunFacts};

use crate::catalogue::Catalogue;

/// What the gate decided for one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Run it, charging these caps in the same commit that records the intent.
    Allow { charges: Vec<CapCharge>, rule: Option<usize> },
    /// A human must approve it first.
    Park { reason: String },
    /// Refused; the reason goes back to the model.
    Deny { stage: &'static str, reason: String },
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Allow { .. } => "allow",
            Verdict::Park { .. } => "require_approval",
            Verdict::Deny { .. } => "deny",
        }
    }
    pub fn reason(&self) -> Option<String> {
        match self {
            Verdict::Allow { rule, .. } => rule.map(|r| format!("allowed by policy.approvals[{r}]")),
            Verdict::Park { reason } => Some(reason.clone()),
            Verdict::Deny { stage, reason } => Some(format!("{stage}: {reason}")),
        }
    }
    /// The audit body of this decision.
    pub fn audit_body(&self) -> Value {
        match self {
            Verdict::Allow { charges, rule } => json!({
                "decision": "allow",
                "rule": rule,
                "charges": charges.iter().map(|c| json!({"scope": c.scope, "amount": c.amount, "limit": c.limit})).collect::<Vec<_>>(),
            }),
            Verdict::Park { reason } => json!({"decision": "require_approval", "reason": reason}),
            Verdict::Deny { stage, reason } => json!({"decision": "deny", "stage": stage, "reason": reason}),
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

/// Decides one call. `turn_charges` holds what earlier calls of the same turn charged (not yet
/// committed) and is updated on `Allow`; `allowed_in_turn` counts them for the tool-call bound.
/// `approved`: a human approved this call, which satisfies a `require` rule (not a `deny`).
pub async fn check(
    ctx: &GateContext<'_>,
    agent: &str,
    qualified: &str,
    input: &Value,
    turn_charges: &mut BTreeMap<String, i64>,
    allowed_in_turn: u64,
    approved: bool,
) -> Verdict {
    let Some((plugin, spec)) = ctx.catalogue.tool(qualified) else {
        return Verdict::Deny { stage: "enabled", reason: format!("tool `{qualified}` is not loaded") };
    };
    if let Err(message) = plugin.check_input(&spec.name, input) {
        return Verdict::Deny { stage: "schema", reason: format!("input does not match the tool's schema: {message}") };
    }
    let bounds = &ctx.workflow.workflow.run;
    if ctx.run.counters.tool_calls + allowed_in_turn >= bounds.max_tool_calls {
        return Verdict::Deny {
            stage: "bound",
            reason: format!("the run reached its max_tool_calls bound ({})", bounds.max_tool_calls),
        };
    }
    let effects = spec.effects.names();
    let plugin_name = qualified.split_once('.').map(|(p, _)| p).unwrap_or(qualified);
    // Fixed steps run as `step:<id>`; policies see them as no agent, as the format documents.
    let agent = if agent.starts_with(crate::fixed::STEP_AGENT_PREFIX) { "" } else { agent };
    let facts = CallFacts {
        plugin: plugin_name,
        tool: &spec.name,
        agent,
        effects: &effects,
        input,
        run: RunFacts {
            spend: ctx.run.counters.spend,
            steps: ctx.run.counters.steps,
            tool_calls: ctx.run.counters.tool_calls,
        },
    };
    let charges = match charges(ctx, qualified, &facts, turn_charges).await {
        Ok(charges) => charges,
        Err(deny) => return deny,
    };
    // Rules run for approved calls too: a human's approval answers `require`, never `deny`
    // (an edited input, or run facts that moved since, can match a deny rule now).
    let rule = match ctx.workflow.policy().approval(&facts) {
        Ok(ApprovalDecision::Allow { rule }) => rule,
        Ok(ApprovalDecision::Require { .. }) if approved => None,
        Ok(ApprovalDecision::Require { reason, .. }) => return Verdict::Park { reason },
        Ok(ApprovalDecision::Deny { rule, reason }) => {
            return Verdict::Deny { stage: "policy", reason: format!("policy.approvals[{rule}]: {reason}") };
        }
        // Fail closed: a rule that cannot be evaluated cannot allow anything.
        Err(e) => return Verdict::Deny { stage: "policy", reason: format!("policy could not be evaluated: {e}") },
    };
    for charge in &charges {
        *turn_charges.entry(charge.scope.clone()).or_default() += charge.amount;
    }
    Verdict::Allow { charges, rule }
}

/// The cap charges of a call, or the denial of the first cap it would exceed.
async fn charges(
    ctx: &GateContext<'_>,
    qualified: &str,
    facts: &CallFacts<'_>,
    turn_charges: &BTreeMap<String, i64>,
) -> Result<Vec<CapCharge>, Verdict> {
    let policy = ctx.workflow.policy();
    let deny_policy_error = |e: tollgate_workflow::PolicyError| Verdict::Deny {
        stage: "caps",
        reason: format!("cap could not be evaluated: {e}"),
    };
    let mut out = Vec::new();
    for (index, cost, max) in policy.spend_costs(facts).map_err(deny_policy_error)? {
        // Lowering a budget does not refund the cap: only increases count.
        let cost = cost.max(0);
        let scope = format!("spend:{}:{index}", ctx.run.id);
        out.push(charge(ctx, scope, cost, max, None, "spend cap", "policy.spend_caps", index, turn_charges).await?);
    }
    for (index, max, per) in policy.rate_limits(qualified) {
        let scope = format!("rate:{index}:{qualified}");
        let window = Some(per.as_millis() as i64);
        out.push(
            charge(ctx, scope, 1, max as i64, window, "rate limit", "policy.rate_limits", index, turn_charges).await?,
        );
    }
    for (index, max, per, targets) in policy.frequency_targets(facts).map_err(deny_policy_error)? {
        // A target named twice in one call is contacted once; charging it twice would make the
        // store refuse the commit on every attempt and wedge the run.
        let targets: std::collections::BTreeSet<String> = targets.iter().map(|t| t.to_lowercase()).collect();
        for target in targets {
            let scope = format!("freq:{index}:{qualified}:{target}");
            let window = Some(per.as_millis() as i64);
            let kind = "frequency cap";
            out.push(
                charge(ctx, scope, 1, max as i64, window, kind, "policy.frequency_caps", index, turn_charges).await?,
            );
        }
    }
    Ok(out)
}

#[expect(
    clippy::too_many_arguments,
    reason = "the arguments are the separate fields of the record being built; the runtime rewrite groups them"
)]
async fn charge(
    ctx: &GateContext<'_>,
    scope: String,
    amount: i64,
    limit: i64,
    window_ms: Option<i64>,
    kind: &str,
    table: &str,
    index: usize,
    turn_charges: &BTreeMap<String, i64>,
) -> Result<CapCharge, Verdict> {
    let used = match ctx.store.cap_usage(&scope, ctx.now, window_ms).await {
        Ok(used) => used + turn_charges.get(&scope).copied().unwrap_or(0),
        Err(e) => return Err(Verdict::Deny { stage: "caps", reason: format!("cap usage unavailable: {e}") }),
    };
    if used + amount > limit {
        let window = window_ms.map(|ms| format!(" in the last {}", human_window(ms))).unwrap_or_default();
        let target = scope.splitn(4, ':').nth(3).map(|t| format!(" for {t}")).unwrap_or_default();
        return Err(Verdict::Deny {
            stage: "caps",
            reason: format!("{kind} {table}[{index}]{target}: {used} used{window} + {amount} > {limit}"),
        });
    }
    Ok(CapCharge { scope, run_id: ctx.run.id.clone(), amount, at: ctx.now, limit, window_ms })
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
