//! Streams run events to the terminal as they happen: one line per event for people, or one
//! JSON object per line (`--json`) for scripts. While nothing happens for a while (a slow
//! model, a slow tool) it prints a progress line so a long wait never looks like a hang.
//! Text from models, plugins, upstreams and the store is escaped ([`crate::render::t`]) so it
//! cannot drive the terminal or forge a line.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tollgate_contract::text::{escape_json_for_terminal, escape_lines_for_terminal};
use tollgate_runtime::{Event, Observer};

use crate::render::{j, t};

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
            outln!("{}", escape_json_for_terminal(&serde_json::to_string(event).unwrap_or_default()));
        } else {
            let line = human(event);
            if !line.is_empty() {
                outln!("{line}");
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
    let text = j(value);
    if text.chars().count() <= max { text } else { format!("{}…", text.chars().take(max).collect::<String>()) }
}

fn human(event: &Event) -> String {
    match event {
        Event::RunStarted { run_id, workflow, version, goal } => {
            format!("run {} · {} {}\n  goal: {}", t(run_id), t(workflow), t(version), t(goal))
        }
        Event::Resumed { run_id, status, step } => {
            format!("resuming {} ({status}) after {step} model turns", t(run_id))
        }
        Event::ModelTurn { step, agent, model, replay, text, tool_calls } => {
            let label = if *replay { format!("[replay] {}", t(model)) } else { t(model).into_owned() };
            let mut s = format!("\nstep {step} · {} · {label}", t(agent));
            if let Some(said) = text {
                for line in said.lines() {
                    s.push_str(&format!("\n  │ {}", t(line)));
                }
            }
            let empty = text.as_deref().is_none_or(|t| t.trim().is_empty());
            if tool_calls.is_empty() && empty {
                // Not an answer: the runtime asks again once, then fails the run (guard.rs).
                s.push_str("\n  (empty answer: no text and no tool call)");
            } else if tool_calls.is_empty() {
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
            let why = reason.as_deref().map(|r| format!(" — {}", t(r))).unwrap_or_default();
            format!("  #{index} {}  {mark}{why}", t(tool))
        }
        Event::ToolStarted { .. } => String::new(),
        Event::ToolFinished { index, tool, outcome, duration_ms, output, .. } => {
            let out = output.as_ref().map(|o| format!(" → {}", short(o, 160))).unwrap_or_default();
            format!("  #{index} {}  {} in {duration_ms} ms{out}", t(tool), t(outcome))
        }
        Event::Handoff { from, to } => format!("\nhandoff: {} → {}", t(from), t(to)),
        Event::ApprovalRequested { approval_id, tool, input, reason } => {
            format!("  ⏸ approval {}: {} {}\n    why: {}", t(approval_id), t(tool), short(input, 200), t(reason))
        }
        Event::ApprovalSettled { approval_id, tool, decision, by, note } => {
            let by = by.as_deref().map(|b| format!(" by {}", t(b))).unwrap_or_default();
            let note = note.as_deref().map(|n| format!(": {}", t(n))).unwrap_or_default();
            format!("  approval {} ({}) {}{by}{note}", t(approval_id), t(tool), t(decision))
        }
        Event::Waiting { what, elapsed_ms } => format!("  … waiting for {} ({}s)", t(what), elapsed_ms / 1000),
        Event::Ended { status, detail, output } => {
            let mut s = format!("\nrun {status}");
            if let Some(d) = detail {
                s.push_str(&format!(": {}", t(d)));
            }
            if let Some(o) = output {
                s.push_str(&format!("\n{}", escape_lines_for_terminal(o)));
            }
            s
        }
    }
}
