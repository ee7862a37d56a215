//! Text rendering of one run for `tollgate runs show`.

use std::fmt::Write;

use serde_json::Value;
use tollgate_store::{RunRecord, StepRecord, ToolCallRecord};

use crate::run_cmd::counters_line;

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

pub fn show(run: &RunRecord, steps: &[StepRecord], calls: &[ToolCallRecord]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "run {} · {} {}", run.id, run.workflow_name, run.workflow_version);
    let detail = run.status_detail.as_deref().map(|d| format!(" — {d}")).unwrap_or_default();
    let _ = writeln!(s, "  status   {}{detail}", run.status.as_str());
    let _ = writeln!(s, "  goal     {}", run.goal);
    let _ = writeln!(s, "  workflow {}", run.workflow_path);
    let _ = writeln!(s, "  totals   {}", counters_line(run));
    for step in steps {
        let source = &step.turn["source"];
        let label = match source["kind"].as_str() {
            Some("replay") => format!(" · [replay] {} #{}", source["script"].as_str().unwrap_or("?"), source["index"]),
            Some("live") => {
                format!(" · {}:{}", source["provider"].as_str().unwrap_or("?"), source["model"].as_str().unwrap_or("?"))
            }
            _ => String::new(),
        };
        let _ = writeln!(s, "\nstep {} · {}{label}", step.step, step.agent);
        if let Some(text) = step.turn["text"].as_str() {
            for line in text.lines() {
                let _ = writeln!(s, "  │ {line}");
            }
        }
        for call in calls.iter().filter(|c| c.step == step.step) {
            let result = call.result.as_ref().map(result_line).unwrap_or_else(|| "(no result yet)".into());
            let input = clip(&serde_json::to_string(&call.input).unwrap_or_default(), 120);
            let _ = writeln!(s, "  #{} {} [{}] {input}\n      {result}", call.index, call.tool, call.status.as_str());
        }
    }
    s
}

fn result_line(result: &Value) -> String {
    if let Some(output) = result.get("output") {
        return format!("→ {}", clip(&serde_json::to_string(output).unwrap_or_default(), 160));
    }
    if let Some(stage) = result.get("denied").and_then(Value::as_str) {
        return format!("denied ({stage}): {}", result["reason"].as_str().unwrap_or_default());
    }
    format!("error ({}): {}", result["error"].as_str().unwrap_or("?"), result["message"].as_str().unwrap_or_default())
}
