//! Streams run events to the terminal as they happen: one line per event for people, or one
//! JSON object per line (`--json`) for scripts. While nothing happens for a while (a slow
//! model, a slow tool) it prints a progress line so a long wait never looks like a hang.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tollgate_runtime::{Event, Observer};

/// How long without an event before a progress line.
const QUIET_FOR: Duration = Duration::from_secs(5);

pub struct Printer {
    json: bool,
    last: Mutex<Instant>,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer { json, last: Mutex::new(Instant::now()) }
    }

    pub fn json_mode(&self) -> bool {
        self.json
    }

    /// Prints a progress line if the run has been quiet; called by a ticker task.
    pub fn tick(&self, started: Instant) {
        let Ok(mut last) = self.last.lock() else { return };
        if last.elapsed() >= QUIET_FOR {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            self.print(&Event::Waiting { what: "the model or a tool".into(), elapsed_ms });
            *last = Instant::now();
        }
    }

    fn print(&self, event: &Event) {
        if self.json {
            println!("{}", serde_json::to_string(event).unwrap_or_default());
        } else {
            let line = human(event);
            if !line.is_empty() {
                println!("{line}");
            }
        }
    }
}

impl Observer for Printer {
    fn event(&self, event: &Event) {
        if let Ok(mut last) = self.last.lock() {
            *last = Instant::now();
        }
        self.print(event);
    }
}

fn short(value: &serde_json::Value, max: usize) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.chars().count() <= max { text } else { format!("{}…", text.chars().take(max).collect::<String>()) }
}

fn human(event: &Event) -> String {
    match event {
        Event::RunStarted { run_id, workflow, version, goal } => {
            format!("run {run_id} · {workflow} {version}\n  goal: {goal}")
        }
        Event::Resumed { run_id, status, step } => format!("resuming {run_id} ({status}) after {step} model turns"),
        Event::ModelTurn { step, agent, model, replay, text, tool_calls } => {
            let label = if *replay { format!("[replay] {model}") } else { model.clone() };
            let mut s = format!("\nstep {step} · {agent} · {label}");
            if let Some(t) = text {
                for line in t.lines() {
                    s.push_str(&format!("\n  │ {line}"));
                }
            }
            if tool_calls.is_empty() {
                s.push_str("\n  (no tool calls: the agent is done)");
            }
            s
        }
        Event::Gate { index, tool, decision, reason, .. } => {
            let mark = match decision.as_str() {
                "allow" => "gate: allow",
                "require_approval" => "gate: needs approval",
                _ => "gate: DENY",
            };
            let why = reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default();
            format!("  #{index} {tool}  {mark}{why}")
        }
        Event::ToolStarted { .. } => String::new(),
        Event::ToolFinished { index, tool, outcome, duration_ms, output, .. } => {
            let out = output.as_ref().map(|o| format!(" → {}", short(o, 160))).unwrap_or_default();
            format!("  #{index} {tool}  {outcome} in {duration_ms} ms{out}")
        }
        Event::Handoff { from, to } => format!("\nhandoff: {from} → {to}"),
        Event::ApprovalRequested { approval_id, tool, input, reason } => {
            format!("  ⏸ approval {approval_id}: {tool} {}\n    why: {reason}", short(input, 200))
        }
        Event::ApprovalSettled { approval_id, tool, decision, by, note } => {
            let by = by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
            let note = note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
            format!("  approval {approval_id} ({tool}) {decision}{by}{note}")
        }
        Event::Waiting { what, elapsed_ms } => format!("  … waiting for {what} ({}s)", elapsed_ms / 1000),
        Event::Ended { status, detail, output } => {
            let mut s = format!("\nrun {status}");
            if let Some(d) = detail {
                s.push_str(&format!(": {d}"));
            }
            if let Some(o) = output {
                s.push_str(&format!("\n{o}"));
            }
            s
        }
    }
}
