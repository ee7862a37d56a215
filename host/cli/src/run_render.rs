//! Text rendering of one run for `tollgate runs show`; everything from the store is escaped
//! ([`crate::render::t`]): a model, a plugin or a writer of the database supplied it.

use std::fmt::Write;

use serde_json::Value;
use tollgate_store::{ApprovalRecord, RunRecord, StepRecord, ToolCallRecord};

use crate::render::{j, t};
use crate::run_cmd::counters_line;

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

pub fn show(run: &RunRecord, steps: &[StepRecord], calls: &[ToolCallRecord], approvals: &[ApprovalRecord]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "run {} · {} {}", t(&run.id), t(&run.workflow_name), t(&run.workflow_version));
    let detail = run.status_detail.as_deref().map(|d| format!(" — {}", t(d))).unwrap_or_default();
    let _ = writeln!(s, "  status   {}{detail}", run.status.as_str());
    let _ = writeln!(s, "  goal     {}", t(&run.goal));
    let _ = writeln!(s, "  workflow {}", t(&run.workflow_path));
    let _ = writeln!(s, "  totals   {}", counters_line(run));
    for step in steps {
        let source = &step.turn["source"];
        let label = match source["kind"].as_str() {
            Some("replay") => {
                format!(" · [replay] {} #{}", t(source["script"].as_str().unwrap_or("?")), j(&source["index"]))
            }
            Some("live") => {
                format!(
                    " · {}:{}",
                    t(source["provider"].as_str().unwrap_or("?")),
                    t(source["model"].as_str().unwrap_or("?"))
                )
            }
            _ => String::new(),
        };
        let _ = writeln!(s, "\nstep {} · {}{label}", step.step, t(&step.agent));
        if let Some(text) = step.turn["text"].as_str() {
            for line in text.lines() {
                let _ = writeln!(s, "  │ {}", t(line));
            }
        }
        if let Some(note) = unusable_turn(&step.turn) {
            let _ = writeln!(s, "  ! {note}");
        }
        for call in calls.iter().filter(|c| c.step == step.step) {
            let result = call.result.as_ref().map(result_line).unwrap_or_else(|| "(no result yet)".into());
            let input = clip(&j(&call.input), 120);
            let _ = writeln!(s, "  #{} {} [{}] {input}", call.index, t(&call.tool), call.status.as_str());
            let edit =
                approvals.iter().find(|a| a.step == call.step && a.index == call.index && a.approved_input.is_some());
            if let Some(approval) = edit {
                let by = approval.decided_by.as_deref().unwrap_or("a person");
                let proposed = clip(&j(&approval.input), 120);
                let _ = writeln!(s, "      edited by {} before it ran; proposed {proposed}", t(by));
            }
            let _ = writeln!(s, "      {result}");
        }
    }
    s
}

/// Why a model turn with no tool calls was not taken as an answer, as the runtime judged it
/// (`tollgate_runtime`'s guard): no text, or text cut off at `max_output_tokens`.
fn unusable_turn(turn: &Value) -> Option<&'static str> {
    let calls = turn["tool_calls"].as_array().is_some_and(|c| !c.is_empty());
    if calls || turn.is_null() {
        return None;
    }
    if turn["text"].as_str().is_none_or(|t| t.trim().is_empty()) {
        return Some("empty answer: no text and no tool call");
    }
    (turn["stop"].as_str() == Some("max_tokens")).then_some("cut off at max_output_tokens: not taken as the answer")
}

fn result_line(result: &Value) -> String {
    if let Some(output) = result.get("output") {
        return format!("→ {}", clip(&j(output), 160));
    }
    if let Some(stage) = result.get("denied").and_then(Value::as_str) {
        return format!("denied ({}): {}", t(stage), t(result["reason"].as_str().unwrap_or_default()));
    }
    if result.get("in_doubt").is_some() {
        return format!("marked done, outcome unknown: {}", t(result["message"].as_str().unwrap_or_default()));
    }
    format!(
        "error ({}): {}",
        t(result["error"].as_str().unwrap_or("?")),
        t(result["message"].as_str().unwrap_or_default())
    )
}
