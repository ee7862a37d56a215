//! `[[steps]]`: fixed steps run in order. Each step's result is stored as `state.<id>`; this
//! module checks ids are unique, every state key a step reads is written by an *earlier* step,
//! the step's kind-specific keys (`input` is a table for a tool, a list of ids for an agent,
//! absent for an approval), and that tools and agents it names are declared.

use std::ops::Range;

use toml::de::DeValue;

use crate::decode::{Names, check_tool_pattern};
use crate::diagnostics::{Reporter, did_you_mean};
use crate::expr::{self, Kind, Source};
use crate::format::{Step, StepInput};
use crate::shape::View;
use crate::spans::to_json;

/// The variables an `input_expr` may read.
pub(crate) const STEP_VARS: &[&str] = &["state", "goal"];

pub(crate) fn decode(
    r: &mut Reporter<'_>,
    file: &str,
    names: &Names,
    steps: &[(usize, Range<usize>, View<'_, '_>)],
) -> Vec<Step> {
    let ids: Vec<Option<(&str, Range<usize>)>> = steps.iter().map(|(_, _, v)| v.str("id")).collect();
    let mut out = Vec::new();
    for (n, (i, _, v)) in steps.iter().enumerate() {
        let Some((id, id_span)) = ids[n].clone() else { continue };
        if let Some(first) = ids[..n].iter().position(|x| x.as_ref().is_some_and(|(x, _)| *x == id)) {
            r.error(id_span, format!("duplicate step id `{id}` (already used by steps[{first}])"));
            continue;
        }
        let earlier: Vec<&str> = ids[..n].iter().flatten().map(|(x, _)| *x).collect();
        let later: Vec<&str> = ids[n + 1..].iter().flatten().map(|(x, _)| *x).collect();
        let state_key = |r: &mut Reporter<'_>, key: &str, at: usize| {
            if earlier.contains(&key) {
                return;
            }
            let (message, help) = if later.contains(&key) {
                (
                    format!("steps[{i}] reads state `{key}`, but step `{key}` runs later"),
                    "a step can only read the results of earlier steps".to_string(),
                )
            } else {
                let help = match did_you_mean(key, earlier.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None if earlier.is_empty() => "this is the first step: there is no state yet".to_string(),
                    None => format!(
                        "earlier steps: {}",
                        earlier.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                    ),
                };
                (format!("steps[{i}] reads state `{key}`, but no step has that id"), help)
            };
            r.error_at(at, message, Some(help));
        };
        let not_here = |r: &mut Reporter<'_>, key: &str, kind: &str| {
            if let Some(s) = v.key_span(key) {
                r.error(s, format!("`{key}` is not allowed on {kind} step"));
            }
        };
        if let Some((tool, span)) = v.str("tool") {
            check_tool_pattern(r, names, tool, span, false);
            let input = if let Some((text, span)) = v.str("input_expr") {
                if let Some(k) = v.key_span("input") {
                    r.error(k, "use either `input` or `input_expr`, not both");
                }
                let src = Source { file, span, text, what: format!("steps[{i}].input_expr") };
                let Some(p) = expr::compile(r, &src, STEP_VARS) else { continue };
                expr::expect_kind(r, &src, &p, &[Kind::Map], "a map (the tool's input)");
                for (key, at) in expr::fields_of(&p, "state") {
                    state_key(r, &key, src.offset(at));
                }
                StepInput::Expr(p)
            } else {
                match v.node("input") {
                    None => StepInput::Literal(serde_json::json!({})),
                    Some(node) if matches!(node.get_ref(), DeValue::Table(_)) => match to_json(node) {
                        Ok(j) => StepInput::Literal(j),
                        Err((s, m)) => {
                            r.error(s, m);
                            continue;
                        }
                    },
                    Some(node) => {
                        r.error(
                            node.span(),
                            format!("`steps[{i}].input` of a tool step must be a table: the tool's input"),
                        );
                        continue;
                    }
                }
            };
            out.push(Step::Tool { id: id.to_string(), tool: tool.to_string(), input });
        } else if let Some((agent, span)) = v.str("agent") {
            if !names.agents.iter().any(|a| a == agent) {
                let help = crate::diagnostics::suggestion(agent, &names.agent_refs(), "agents");
                r.error_help(span, format!("steps[{i}] runs agent `{agent}`, which is not defined"), help);
            }
            not_here(r, "input_expr", "an agent");
            let mut input = Vec::new();
            match v.node("input").map(|n| (n, n.get_ref())) {
                None => {}
                Some((_, DeValue::Array(a))) => {
                    for item in a.iter() {
                        match item.get_ref().as_str() {
                            Some(key) => {
                                state_key(r, key, item.span().start);
                                input.push(key.to_string());
                            }
                            None => r.error(
                                item.span(),
                                format!("`steps[{i}].input` of an agent step lists step ids (strings)"),
                            ),
                        }
                    }
                }
                Some((n, _)) => {
                    r.error(n.span(), format!("`steps[{i}].input` of an agent step must be a list of earlier step ids"))
                }
            }
            out.push(Step::Agent { id: id.to_string(), agent: agent.to_string(), input });
        } else if let Some((prompt, _)) = v.str("approval") {
            not_here(r, "input", "an approval");
            not_here(r, "input_expr", "an approval");
            out.push(Step::Approval { id: id.to_string(), prompt: prompt.to_string() });
        }
    }
    out
}
