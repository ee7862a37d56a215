//! `[policy]` from the checked tree to a compiled [`Policy`]: tool globs name declared
//! plugins, CEL compiles with only the policy variables, and each expression's result kind is
//! checked where its shape fixes it. A rule with a missing or invalid required key is left out
//! (the error is already reported, so the workflow does not load).

use crate::decode::{Names, check_tool_pattern};
use crate::diagnostics::Reporter;
use crate::expr::{self, Kind, Program, Source};
use crate::policy::{Action, ApprovalRule, Authority, FrequencyCap, POLICY_VARS, Policy, RateLimit, SpendCap};
use crate::shape::View;
use crate::spec::{APPROVAL, FREQUENCY_CAP, RATE_LIMIT, SPEND_CAP};

/// Compiles the CEL policy expression at `key`, if present, and checks its result kind.
fn compile_kind(
    r: &mut Reporter<'_>,
    file: &str,
    v: &View<'_, '_>,
    key: &str,
    what: String,
    allowed: &[Kind],
    want: &str,
) -> Option<Program> {
    let (text, span) = v.str(key)?;
    let src = Source { file, span, text, what };
    let p = expr::compile(r, &src, POLICY_VARS)?;
    expr::expect_kind(r, &src, &p, allowed, want);
    Some(p)
}

pub(crate) fn decode(r: &mut Reporter<'_>, file: &str, names: &Names, p: View<'_, '_>) -> Policy {
    let mut policy = Policy::default();
    if p.node("approval_effects").is_some() {
        policy.approval_effects = p.strs("approval_effects").into_iter().map(|(s, _)| s.to_string()).collect();
    }
    let glob = |r: &mut Reporter<'_>, v: &View<'_, '_>| {
        v.str("tool").map(|(t, span)| {
            check_tool_pattern(r, names, t, span, true);
            t.to_string()
        })
    };
    for (i, span, v) in p.array("approvals", &APPROVAL) {
        let what = format!("policy.approvals[{i}].when");
        let when = compile_kind(r, file, &v, "when", what, &[Kind::Bool], "a boolean");
        let tool = glob(r, &v);
        let action = match v.str("action").map(|(a, _)| a) {
            Some("require_approval") => Action::RequireApproval,
            Some("allow") => Action::Allow,
            Some("deny") => Action::Deny,
            _ => continue,
        };
        if v.has("when") && when.is_none() {
            continue;
        }
        let authority = authority(r, &v, action);
        policy.approvals.push(ApprovalRule {
            tool,
            effects: v.strs("effects").into_iter().map(|(s, _)| s.to_string()).collect(),
            when,
            action,
            reason: v.str("reason").map(|(s, _)| s.to_string()),
            authority,
            location: r.map().location(span.start),
        });
    }
    for (i, span, v) in p.array("spend_caps", &SPEND_CAP) {
        let what = format!("policy.spend_caps[{i}].cost");
        let cost = compile_kind(r, file, &v, "cost", what, &[Kind::Int], "an integer");
        let (Some(tool), Some(cost), Some(max)) = (glob(r, &v), cost, v.int("max_per_run")) else { continue };
        policy.spend_caps.push(SpendCap { tool, cost, max_per_run: max, location: r.map().location(span.start) });
    }
    for (_, span, v) in p.array("rate_limits", &RATE_LIMIT) {
        let (Some(tool), Some(max), Some(per)) = (glob(r, &v), v.int("max"), v.duration("per")) else { continue };
        policy.rate_limits.push(RateLimit { tool, max: max as u64, per, location: r.map().location(span.start) });
    }
    for (i, span, v) in p.array("frequency_caps", &FREQUENCY_CAP) {
        let what = format!("policy.frequency_caps[{i}].target");
        let target =
            compile_kind(r, file, &v, "target", what, &[Kind::String, Kind::List], "a string or a list of strings");
        let (Some(tool), Some(target), Some(max), Some(per)) = (glob(r, &v), target, v.int("max"), v.duration("per"))
        else {
            continue;
        };
        policy.frequency_caps.push(FrequencyCap {
            tool,
            target,
            max: max as u64,
            per,
            location: r.map().location(span.start),
        });
    }
    policy
}

/// Longest approver name (a token name is at most 64 characters).
const MAX_APPROVER_NAME: usize = 64;
/// Most `approvers` entries one rule lists.
const MAX_APPROVERS: usize = 64;

/// A rule's `approvers`, `quorum` and `self_approval`; each entry is `role:<role>` or
/// `user:<name>`, with names as tokens have them. Only a `require_approval` rule has them.
fn authority(r: &mut Reporter<'_>, v: &View<'_, '_>, action: Action) -> Authority {
    let mut authority = Authority::default();
    if action != Action::RequireApproval {
        for key in ["approvers", "quorum", "self_approval"] {
            if let Some(node) = v.node(key) {
                r.error(node.span(), format!("`{key}` applies only to a rule with `action = \"require_approval\"`"));
            }
        }
        return authority;
    }
    let entries = v.strs("approvers");
    if entries.len() > MAX_APPROVERS
        && let Some(node) = v.node("approvers")
    {
        r.error(node.span(), format!("at most {MAX_APPROVERS} approvers"));
    }
    for (entry, span) in entries.into_iter().take(MAX_APPROVERS) {
        let valid = match entry.split_once(':') {
            Some(("role", role)) => ["admin", "operator", "approver", "auditor", "viewer"].contains(&role),
            Some(("user", name)) => {
                !name.is_empty()
                    && name.len() <= MAX_APPROVER_NAME
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
            }
            _ => false,
        };
        if valid {
            authority.approvers.push(entry.to_string());
        } else {
            r.error(
                span,
                format!(
                    "approver `{}` is not `role:<admin|operator|approver|auditor|viewer>` or `user:<name>` \
                     (letters, digits, `.`, `_`, `-`, `@`)",
                    entry.chars().take(80).collect::<String>()
                ),
            );
        }
    }
    if let Some(quorum) = v.int("quorum") {
        authority.quorum = u32::try_from(quorum.clamp(1, 10)).unwrap_or(1);
        // Only people named one by one: more approvals than people can never be had.
        let all_users = !authority.approvers.is_empty() && authority.approvers.iter().all(|a| a.starts_with("user:"));
        if all_users
            && authority.approvers.len() < authority.quorum as usize
            && let Some(node) = v.node("quorum")
        {
            r.error(
                node.span(),
                format!(
                    "quorum {} can never be met by the {} approvers listed",
                    authority.quorum,
                    authority.approvers.len()
                ),
            );
        }
    }
    authority.self_approval = v.bool("self_approval").unwrap_or(false);
    authority
}
