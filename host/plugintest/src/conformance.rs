//! Conformance: for every tool, inputs generated from its schema. Valid ones must come back as
//! declared output or a typed tool error — never a trap or a limit; invalid ones must be
//! refused by the host before the guest runs. A tool's valid inputs stop at its first
//! breakage: one reproducible finding says more than thirty copies of it.

use serde_json::Value;
use tollgate_sandbox::{CallContext, CallError, Plugin};

use crate::generate::{Rng, invalid_values, valid_value};
use crate::observe::{Observation, Source, is_breakage};
use crate::report::{Finding, Severity, ToolCounts};

/// The seed of one tool's generator: the run's seed mixed with the tool's name, so adding a
/// tool does not change another tool's inputs.
fn tool_seed(seed: u64, tool: &str) -> u64 {
    tool.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A call's context. The key is unusual enough that finding it in output or a log is no
/// coincidence.
fn context(tool: &str, n: usize) -> CallContext {
    let key = format!("plugin-test-key-{tool}-{n}");
    CallContext { run_id: "plugin-test".into(), call_id: key.clone(), idempotency_key: key }
}

/// Runs the generated calls of every tool; returns their observations and per-tool counts.
pub(crate) async fn run(
    plugin: &Plugin,
    only: Option<&str>,
    cases: u32,
    seed: u64,
    observations: &mut Vec<Observation>,
    findings: &mut Vec<Finding>,
) -> Vec<(String, ToolCounts)> {
    let mut counts = Vec::new();
    for spec in plugin.manifest().tools.iter().filter(|t| only.is_none_or(|o| o == t.name)) {
        let tool = spec.name.as_str();
        let mut count = ToolCounts::default();
        let schema: &Value = &spec.input_schema;
        let mut rng = Rng::new(tool_seed(seed, tool));
        let reproduce = |case: u32| format!("--seed {seed} --tool {tool} (case {case})");
        for case in 0..cases {
            let Some(input) = valid_value(schema, schema, &mut rng) else {
                count.not_generated += 1;
                continue;
            };
            // The generator may miss what a schema says (a pattern it cannot read): the host's
            // validator decides, and misses are counted, not called.
            if plugin.check_input(tool, &input).is_err() {
                count.not_generated += 1;
                continue;
            }
            count.valid += 1;
            let ctx = context(tool, case as usize);
            let outcome = plugin.call(tool, &input.to_string(), &ctx).await;
            observations.push(Observation::new(tool, Source::Generated, input.clone(), &ctx.idempotency_key, &outcome));
            if let Err(e) = &outcome.result
                && (is_breakage(e) || matches!(e, CallError::InvalidInput { .. } | CallError::Capacity { .. }))
            {
                let code = match e {
                    CallError::InvalidOutput { .. } => "output-not-declared",
                    CallError::InvalidInput { .. } => "valid-input-refused",
                    CallError::Capacity { .. } => "capacity",
                    _ => "breaks-on-valid-input",
                };
                findings.push(Finding {
                    severity: Severity::Error,
                    code: code.into(),
                    tool: Some(tool.into()),
                    // The guest backtrace is for `plugin call --verbose`, not a report line.
                    message: match e {
                        CallError::Trap { message, .. } => format!("trap: {message}"),
                        _ => format!("{}: {e}", e.kind()),
                    },
                    input: Some(input),
                    reproduce: Some(reproduce(case)),
                });
                count.stopped_early = true;
                break;
            }
        }
        for (n, (why, input)) in
            invalid_values(schema, schema, &mut rng, cases.clamp(1, 8) as usize).into_iter().enumerate()
        {
            count.invalid += 1;
            let ctx = context(tool, 10_000 + n);
            let outcome = plugin.call(tool, &input.to_string(), &ctx).await;
            let refused_first = matches!(outcome.result, Err(CallError::InvalidInput { .. }))
                && outcome.report.fuel_used == 0
                && outcome.report.egress.is_empty();
            observations.push(Observation::new(tool, Source::Invalid, input.clone(), &ctx.idempotency_key, &outcome));
            if refused_first {
                count.invalid_refused += 1;
            } else {
                let got = match &outcome.result {
                    Ok(_) => "the tool ran and returned output".to_string(),
                    Err(e) => format!("got {} after the guest ran", e.kind()),
                };
                findings.push(Finding {
                    severity: Severity::Error,
                    code: "invalid-input-reached-guest".into(),
                    tool: Some(tool.into()),
                    message: format!("an input the schema refuses ({why}) was not refused before the guest ran: {got}"),
                    input: Some(input),
                    reproduce: None,
                });
            }
        }
        counts.push((tool.to_string(), count));
    }
    counts
}
