//! The policy language: approval rules, spend caps, rate limits and frequency caps, with CEL
//! predicates compiled once at load, and their evaluation against one call's facts.
//!
//! CEL variables of `when`, `cost` and `target`:
//!
//! | variable | type | value |
//! |---|---|---|
//! | `input` | map | the call's input (JSON) |
//! | `tool` | string | the tool's name without the plugin (`update_campaign`) |
//! | `plugin` | string | the plugin's local name in the workflow (`ads`) |
//! | `agent` | string | the calling agent (empty for a fixed step) |
//! | `effects` | list of strings | the tool's declared effects |
//! | `run` | map | `spend`, `steps`, `tool_calls` of the run so far |
//!
//! **Failing closed.** An expression that fails at run time (a missing field read without
//! `has()`, a type mismatch, a `when` that is not a boolean, a negative cost, or one whose
//! evaluation on this input could take more than [`crate::MAX_EVAL_STEPS`] steps) is a
//! [`PolicyError`] naming the rule and its place in the file. The runtime treats every
//! `PolicyError` as a denial of the call.

use std::time::Duration;

use crate::cel_json::{execute, to_cel};
use crate::expr::Program;
use crate::{Location, tool_matches};

/// `[policy]`, compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `approval_effects`: effects that need approval when no rule matches.
    /// Default: `["spend", "delete", "send-message"]`.
    pub approval_effects: Vec<String>,
    /// `[[policy.approvals]]`, in order; the first matching rule decides.
    pub approvals: Vec<ApprovalRule>,
    /// `[[policy.spend_caps]]`.
    pub spend_caps: Vec<SpendCap>,
    /// `[[policy.rate_limits]]`.
    pub rate_limits: Vec<RateLimit>,
    /// `[[policy.frequency_caps]]`.
    pub frequency_caps: Vec<FrequencyCap>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            approval_effects: ["spend", "delete", "send-message"].map(String::from).to_vec(),
            approvals: Vec::new(),
            spend_caps: Vec::new(),
            rate_limits: Vec::new(),
            frequency_caps: Vec::new(),
        }
    }
}

/// What a matching `[[policy.approvals]]` rule does with a call (`action = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `require_approval`: a human decides before the call runs.
    RequireApproval,
    Allow,
    Deny,
}

/// One `[[policy.approvals]]` rule. It matches a call when all of its conditions do.
#[derive(Debug, Clone)]
pub struct ApprovalRule {
    /// `tool`: glob. Default: every tool.
    pub tool: Option<String>,
    /// `effects`: matches if the tool has any of them. Default (empty): any tool.
    pub effects: Vec<String>,
    /// `when`: CEL predicate. Default: true.
    pub when: Option<Program>,
    /// `action` (required).
    pub action: Action,
    /// `reason`. Default: a text naming the rule.
    pub reason: Option<String>,
    /// `approvers`, `quorum`, `self_approval`: who may decide the approvals it requests.
    pub authority: Authority,
    /// Where the rule starts in the file.
    pub location: Location,
}

/// Who may decide an approval: `approvers` entries (`role:<role>`, `user:<name>`; empty: anyone
/// the server lets decide), `quorum` distinct approvers to approve, and whether the run's
/// starter may decide. The default is what an approval without a rule gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub approvers: Vec<String>,
    pub quorum: u32,
    pub self_approval: bool,
}

impl Default for Authority {
    fn default() -> Self {
        Authority { approvers: Vec::new(), quorum: 1, self_approval: false }
    }
}

/// One `[[policy.spend_caps]]` entry.
#[derive(Debug, Clone)]
pub struct SpendCap {
    pub tool: String,
    /// CEL → non-negative integer.
    pub cost: Program,
    pub max_per_run: i64,
    pub location: Location,
}

/// One `[[policy.rate_limits]]` entry.
#[derive(Debug, Clone)]
pub struct RateLimit {
    pub tool: String,
    pub max: u64,
    pub per: Duration,
    pub location: Location,
}

/// One `[[policy.frequency_caps]]` entry.
#[derive(Debug, Clone)]
pub struct FrequencyCap {
    pub tool: String,
    /// CEL → string or list of strings.
    pub target: Program,
    pub max: u64,
    pub per: Duration,
    pub location: Location,
}

/// What the gate knows about one call.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    pub plugin: &'a str,
    /// Without the plugin.
    pub tool: &'a str,
    pub agent: &'a str,
    pub effects: &'a [&'a str],
    pub input: &'a serde_json::Value,
    pub run: RunFacts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunFacts {
    pub spend: i64,
    pub steps: u64,
    pub tool_calls: u64,
}

/// `(cap index, max, per, targets)` of every frequency cap matching a call.
pub type FrequencyTargets = Vec<(usize, u64, Duration, Vec<String>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalDecision {
    /// No approval needed: by rule `rule`, or (`None`) by default.
    Allow {
        rule: Option<usize>,
    },
    /// A human must approve the call first: by rule `rule`, or (`None`) by `approval_effects`.
    RequireApproval {
        rule: Option<usize>,
        reason: String,
    },
    Deny {
        rule: usize,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyErrorKind {
    /// The expression failed (e.g. read a missing field without `has()`).
    Evaluation,
    /// It returned a value of the wrong type (or a negative cost).
    WrongType,
    /// Evaluating it on this data could take more than `cel_cost::MAX_EVAL_STEPS` steps, so it
    /// was not run.
    TooCostly,
}

/// A policy expression that could not decide. Fail closed: the runtime denies the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{expression} at {location} failed: {message}")]
pub struct PolicyError {
    /// Which key: `policy.approvals[2].when`, `steps[0].input_expr`.
    pub expression: String,
    /// Index of the rule in its list (`approvals`, `spend_caps`, `frequency_caps`), if a rule.
    pub rule: Option<usize>,
    pub location: Location,
    pub kind: PolicyErrorKind,
    pub message: String,
}

impl PolicyError {
    pub(crate) fn new(p: &Program, rule: Option<usize>, kind: PolicyErrorKind, message: String) -> PolicyError {
        PolicyError { expression: p.what().to_string(), rule, location: p.location().clone(), kind, message }
    }
}

impl CallFacts<'_> {
    fn qualified(&self) -> String {
        format!("{}.{}", self.plugin, self.tool)
    }

    fn vars(&self) -> Vec<(&'static str, cel::Value)> {
        let run =
            serde_json::json!({"spend": self.run.spend, "steps": self.run.steps, "tool_calls": self.run.tool_calls});
        vec![
            ("input", to_cel(self.input)),
            ("tool", self.tool.into()),
            ("plugin", self.plugin.into()),
            ("agent", self.agent.into()),
            ("effects", self.effects.iter().map(|e| cel::Value::from(*e)).collect::<Vec<_>>().into()),
            ("run", to_cel(&run)),
        ]
    }
}

/// The CEL variables policy expressions may read.
pub(crate) const POLICY_VARS: &[&str] = &["input", "tool", "plugin", "agent", "effects", "run"];

impl Policy {
    /// The first rule whose tool glob, effects and `when` all match decides; with no match, the
    /// call needs approval if the tool has an effect in `approval_effects`, else it is allowed.
    pub fn approval(&self, facts: &CallFacts<'_>) -> Result<ApprovalDecision, PolicyError> {
        let qualified = facts.qualified();
        let mut vars = None; // built once, on the first rule that has a `when`
        for (i, rule) in self.approvals.iter().enumerate() {
            if rule.tool.as_deref().is_some_and(|g| !tool_matches(g, &qualified))
                || (!rule.effects.is_empty() && !rule.effects.iter().any(|e| facts.effects.contains(&e.as_str())))
            {
                continue;
            }
            if let Some(when) = &rule.when {
                let vars = vars.get_or_insert_with(|| facts.vars());
                match execute(when, vars.iter().cloned(), Some(i))? {
                    cel::Value::Bool(true) => {}
                    cel::Value::Bool(false) => continue,
                    other => {
                        let m = format!("`when` must be a boolean, got {}", other.type_of());
                        return Err(PolicyError::new(when, Some(i), PolicyErrorKind::WrongType, m));
                    }
                }
            }
            let reason = rule.reason.clone().unwrap_or_else(|| format!("policy rule #{i} ({})", rule.location));
            return Ok(match rule.action {
                Action::Allow => ApprovalDecision::Allow { rule: Some(i) },
                Action::RequireApproval => ApprovalDecision::RequireApproval { rule: Some(i), reason },
                Action::Deny => ApprovalDecision::Deny { rule: i, reason },
            });
        }
        match facts.effects.iter().find(|e| self.approval_effects.iter().any(|a| a == *e)) {
            Some(e) => Ok(ApprovalDecision::RequireApproval {
                rule: None,
                reason: format!("{qualified} has the `{e}` effect, which needs approval"),
            }),
            None => Ok(ApprovalDecision::Allow { rule: None }),
        }
    }

    /// `(cap index, cost of this call, max_per_run)` for every spend cap matching the tool.
    pub fn spend_costs(&self, facts: &CallFacts<'_>) -> Result<Vec<(usize, i64, i64)>, PolicyError> {
        let qualified = facts.qualified();
        let mut out = Vec::new();
        for (i, cap) in self.spend_caps.iter().enumerate().filter(|(_, c)| tool_matches(&c.tool, &qualified)) {
            let cost = match execute(&cap.cost, facts.vars(), Some(i))? {
                cel::Value::Int(n) if n >= 0 => n,
                cel::Value::UInt(n) if i64::try_from(n).is_ok() => n as i64,
                other => {
                    let m = format!("`cost` must be a non-negative integer, got {other:?}");
                    return Err(PolicyError::new(&cap.cost, Some(i), PolicyErrorKind::WrongType, m));
                }
            };
            out.push((i, cost, cap.max_per_run));
        }
        Ok(out)
    }

    /// `(limit index, max, per)` for every rate limit matching `plugin.tool`.
    pub fn rate_limits(&self, qualified_tool: &str) -> Vec<(usize, u64, Duration)> {
        self.rate_limits
            .iter()
            .enumerate()
            .filter(|(_, r)| tool_matches(&r.tool, qualified_tool))
            .map(|(i, r)| (i, r.max, r.per))
            .collect()
    }

    /// `(cap index, max, per, targets)` for every frequency cap matching the tool.
    pub fn frequency_targets(&self, facts: &CallFacts<'_>) -> Result<FrequencyTargets, PolicyError> {
        let qualified = facts.qualified();
        let mut out = Vec::new();
        for (i, cap) in self.frequency_caps.iter().enumerate().filter(|(_, c)| tool_matches(&c.tool, &qualified)) {
            let wrong = |got: String| {
                let m = format!("`target` must be a string or a list of strings, got {got}");
                PolicyError::new(&cap.target, Some(i), PolicyErrorKind::WrongType, m)
            };
            let targets = match execute(&cap.target, facts.vars(), Some(i))? {
                cel::Value::String(s) => vec![s.to_string()],
                cel::Value::List(items) => items
                    .iter()
                    .map(|v| match v {
                        cel::Value::String(s) => Ok(s.to_string()),
                        other => Err(wrong(format!("a list holding {}", other.type_of()))),
                    })
                    .collect::<Result<_, _>>()?,
                other => return Err(wrong(other.type_of().to_string())),
            };
            out.push((i, cap.max, cap.per, targets));
        }
        Ok(out)
    }
}
